//! A plan is a value: the ordered steps that take the database from its current heads to a
//! target, each with the version-table writes Alembic would make for it, and the transaction
//! segments those steps run in. Online runs (`exec::online`), offline SQL (`exec::offline`) and
//! `--dry-run` are consumers of the same plan and the same [`Plan::segments`], so they cannot
//! disagree about what runs or where a transaction begins and ends. Plans are computed by
//! `RevisionGraph` (pure, no I/O).

use std::ops::Range;

/// Upgrade or downgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Up,
    Down,
}

/// One write to the version table, in the order it must be executed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionOp {
    Insert(String),
    Update { from: String, to: String },
    Delete(String),
}

impl VersionOp {
    /// `rows` (the version table) after this write, as the SQL does it: an insert adds a row;
    /// an update replaces `from` where it is (and changes nothing when no row is `from`); a
    /// delete removes the row.
    pub fn apply(&self, rows: &mut Vec<String>) {
        match self {
            VersionOp::Insert(r) => rows.push(r.clone()),
            VersionOp::Update { from, to } => {
                if let Some(h) = rows.iter_mut().find(|h| *h == from) {
                    *h = to.clone();
                }
            }
            VersionOp::Delete(r) => rows.retain(|h| h != r),
        }
    }
}

/// One migration step: run `revision`'s up (or down) section, then apply `version_ops`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The revision whose script runs.
    pub revision: String,
    pub direction: Direction,
    /// For the "-- Running upgrade A, B -> C" line: upgrade: the revision's parents
    /// (`down_revision`, empty for a root) -> \[revision\]; downgrade: \[revision\] -> its parents.
    pub from: Vec<String>,
    pub to: Vec<String>,
    /// Version-table writes, executed in order, in the same transaction as the step.
    pub version_ops: Vec<VersionOp>,
}

impl Step {
    /// `heads` (the version table's rows) after the step's writes, sorted: what the run loop,
    /// the dry run and the import's verification all take the database to be at after it.
    pub fn apply_version_ops(&self, heads: &mut Vec<String>) {
        for op in &self.version_ops {
            op.apply(heads);
        }
        heads.sort();
    }
}

/// The whole plan. `start_heads` are the version table rows before, `end_heads` after.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    pub steps: Vec<Step>,
    pub start_heads: Vec<String>,
    pub end_heads: Vec<String>,
}

/// A run of consecutive steps and how they are wrapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Indices into [`Plan::steps`].
    pub steps: Range<usize>,
    /// `true`: `BEGIN`, the steps with their version-table writes, `COMMIT`. `false`: exactly one
    /// step of a `transactional: false` script, whose statements run one by one outside any
    /// transaction; its version-table writes follow in a transaction of their own.
    pub transactional: bool,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The transaction groups of this plan. By default (`max_steps: None`) every run of
    /// transactional steps shares one transaction (a failure rolls all of it back);
    /// `Some(n)` cuts each such run into transactions of at most `n` steps ([`batches`]:
    /// `--batch N`; `--transaction-per-migration` is `Some(1)`). A non-transactional step
    /// always ends the open group and stands alone. `transactional(step)` says whether the
    /// step's script is transactional.
    pub fn segments(
        &self,
        transactional: impl Fn(&Step) -> bool,
        max_steps: Option<usize>,
    ) -> Vec<Segment> {
        let mut out: Vec<Segment> = Vec::new();
        for (i, step) in self.steps.iter().enumerate() {
            let tx = transactional(step);
            match out.last_mut() {
                Some(last) if tx && last.transactional => last.steps.end = i + 1,
                _ => out.push(Segment {
                    steps: i..i + 1,
                    transactional: tx,
                }),
            }
        }
        match max_steps {
            None => out,
            Some(n) => batches(&out, n),
        }
    }
}

/// The batching of `--batch N`: every transactional segment cut into consecutive transactions
/// of `n` steps (the last of each may hold fewer), counted from the segment's first step; a
/// non-transactional segment stays as it is. After each of them commits, the database is at
/// its last step. `n` is at least 1 (0 counts as 1).
pub fn batches(segments: &[Segment], n: usize) -> Vec<Segment> {
    let n = n.max(1);
    let mut out = Vec::new();
    for seg in segments {
        if !seg.transactional {
            out.push(seg.clone());
            continue;
        }
        let mut start = seg.steps.start;
        while start < seg.steps.end {
            let end = (start + n).min(seg.steps.end);
            out.push(Segment {
                steps: start..end,
                transactional: true,
            });
            start = end;
        }
    }
    out
}

/// Version-table writes that take the table from `current` rows to `target` rows without
/// running any script (used by `migrate-stamp`). Pairs a removed row with an added one as an
/// UPDATE, as Alembic does, then DELETEs and INSERTs what is left.
pub fn stamp_ops(current: &[String], target: &[String]) -> Vec<VersionOp> {
    let removed: Vec<&String> = current.iter().filter(|c| !target.contains(c)).collect();
    let added: Vec<&String> = target.iter().filter(|t| !current.contains(t)).collect();
    let mut ops = Vec::new();
    let pairs = removed.len().min(added.len());
    for i in 0..pairs {
        ops.push(VersionOp::Update {
            from: removed[i].clone(),
            to: added[i].clone(),
        });
    }
    for r in &removed[pairs..] {
        ops.push(VersionOp::Delete((*r).clone()));
    }
    for a in &added[pairs..] {
        ops.push(VersionOp::Insert((*a).clone()));
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn plan_of(revs: &[&str]) -> Plan {
        Plan {
            steps: revs
                .iter()
                .map(|r| Step {
                    revision: r.to_string(),
                    direction: Direction::Up,
                    from: vec![],
                    to: vec![r.to_string()],
                    version_ops: vec![],
                })
                .collect(),
            ..Default::default()
        }
    }

    fn shape(segs: &[Segment]) -> Vec<(usize, usize, bool)> {
        segs.iter()
            .map(|s| (s.steps.start, s.steps.end, s.transactional))
            .collect()
    }

    #[test]
    fn transactional_steps_share_one_segment_and_a_non_transactional_one_stands_alone() {
        // "c" is a `transactional: false` script (a concurrent index build)
        let plan = plan_of(&["a", "b", "c", "d", "e"]);
        let tx = |s: &Step| s.revision != "c";
        assert_eq!(
            shape(&plan.segments(tx, None)),
            vec![(0, 2, true), (2, 3, false), (3, 5, true)]
        );
        assert_eq!(
            shape(&plan.segments(tx, Some(1))),
            vec![
                (0, 1, true),
                (1, 2, true),
                (2, 3, false),
                (3, 4, true),
                (4, 5, true)
            ]
        );
        let all_outside = |_: &Step| false;
        assert_eq!(
            shape(&plan_of(&["a", "b"]).segments(all_outside, None)),
            vec![(0, 1, false), (1, 2, false)]
        );
        assert!(Plan::default().segments(tx, None).is_empty());
    }

    #[test]
    fn a_batch_commits_every_n_transactional_steps_and_a_non_transactional_one_still_stands_alone()
    {
        let plan = plan_of(&["a", "b", "c", "d", "e", "f", "g", "h"]);
        let all = |_: &Step| true;
        // 8 steps by 3: 3 + 3 + 2
        assert_eq!(
            shape(&plan.segments(all, Some(3))),
            vec![(0, 3, true), (3, 6, true), (6, 8, true)]
        );
        // a batch as big as the run, or bigger, is the run's one transaction
        assert_eq!(shape(&plan.segments(all, Some(8))), vec![(0, 8, true)]);
        assert_eq!(
            shape(&plan.segments(all, Some(100))),
            shape(&plan.segments(all, None))
        );
        // "d" runs outside a transaction: it ends the batch it falls in, and the count
        // starts again after it
        let tx = |s: &Step| s.revision != "d";
        assert_eq!(
            shape(&plan.segments(tx, Some(2))),
            vec![
                (0, 2, true),
                (2, 3, true),
                (3, 4, false),
                (4, 6, true),
                (6, 8, true)
            ]
        );
        // one by one is --transaction-per-migration
        assert_eq!(
            shape(&plan.segments(all, Some(1))),
            (0..8).map(|i| (i, i + 1, true)).collect::<Vec<_>>()
        );
        // the batches cover every step once, in order
        for n in 1..10 {
            let segs = plan.segments(tx, Some(n));
            let covered: Vec<usize> = segs.iter().flat_map(|s| s.steps.clone()).collect();
            assert_eq!(covered, (0..8).collect::<Vec<_>>(), "--batch {n}");
            assert!(segs.iter().all(|s| s.steps.len() <= n), "--batch {n}");
        }
        assert!(batches(&[], 2).is_empty());
    }

    #[test]
    fn stamp_from_base_inserts() {
        assert_eq!(
            stamp_ops(&[], &s(&["a"])),
            vec![VersionOp::Insert("a".into())]
        );
    }

    #[test]
    fn stamp_linear_updates_and_extra_rows_are_deleted() {
        assert_eq!(
            stamp_ops(&s(&["a", "b"]), &s(&["c"])),
            vec![
                VersionOp::Update {
                    from: "a".into(),
                    to: "c".into()
                },
                VersionOp::Delete("b".into())
            ]
        );
        assert!(stamp_ops(&s(&["a"]), &s(&["a"])).is_empty());
    }

    #[test]
    fn version_ops_change_the_rows_as_their_sql_does() {
        let mut rows = s(&["b", "a"]);
        VersionOp::Update {
            from: "a".into(),
            to: "c".into(),
        }
        .apply(&mut rows);
        assert_eq!(rows, s(&["b", "c"]), "an update replaces its row in place");
        VersionOp::Update {
            from: "zzz".into(),
            to: "d".into(),
        }
        .apply(&mut rows);
        assert_eq!(rows, s(&["b", "c"]), "an update of no row changes nothing");
        VersionOp::Insert("a".into()).apply(&mut rows);
        assert_eq!(rows, s(&["b", "c", "a"]));
        VersionOp::Delete("b".into()).apply(&mut rows);
        assert_eq!(rows, s(&["c", "a"]));
        VersionOp::Delete("b".into()).apply(&mut rows);
        assert_eq!(rows, s(&["c", "a"]), "a delete of no row changes nothing");
    }

    #[test]
    fn a_step_leaves_the_heads_sorted() {
        let step = Step {
            revision: "m".into(),
            direction: Direction::Up,
            from: s(&["x", "y"]),
            to: s(&["m"]),
            version_ops: vec![
                VersionOp::Delete("y".into()),
                VersionOp::Update {
                    from: "x".into(),
                    to: "m".into(),
                },
                VersionOp::Insert("b".into()),
            ],
        };
        let mut heads = s(&["y", "x", "k"]);
        step.apply_version_ops(&mut heads);
        assert_eq!(heads, s(&["b", "k", "m"]));
    }
}
