//! A plan is a value: the ordered steps that take the database from its current heads to a
//! target, each with the version-table writes Alembic would make for it, and the transaction
//! segments those steps run in. Online runs (`exec::online`), offline SQL (`exec::offline`) and
//! `--dry-run` are consumers of the same plan and the same [`Plan::segments`], so they cannot
//! disagree about what runs or where a transaction begins and ends. Plans are computed by
//! `RevisionGraph` (pure, no I/O).

use std::ops::Range;

/// Upgrade or downgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// One migration step: run `revision`'s up (or down) section, then apply `version_ops`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The revision whose script runs.
    pub revision: String,
    pub direction: Direction,
    /// For the "-- Running upgrade A, B -> C" line: upgrade: the revision's parents
    /// (`down_revision`, empty for a root) -> [revision]; downgrade: [revision] -> its parents.
    pub from: Vec<String>,
    pub to: Vec<String>,
    /// Version-table writes, executed in order, in the same transaction as the step.
    pub version_ops: Vec<VersionOp>,
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

    /// The transaction groups of this plan. By default every run of transactional steps shares
    /// one transaction (a failure rolls all of it back); `per_migration` gives each step its
    /// own. A non-transactional step always ends the open group and stands alone.
    /// `transactional(step)` says whether the step's script is transactional.
    pub fn segments(
        &self,
        transactional: impl Fn(&Step) -> bool,
        per_migration: bool,
    ) -> Vec<Segment> {
        let mut out: Vec<Segment> = Vec::new();
        for (i, step) in self.steps.iter().enumerate() {
            let tx = transactional(step);
            match out.last_mut() {
                Some(last) if tx && last.transactional && !per_migration => last.steps.end = i + 1,
                _ => out.push(Segment {
                    steps: i..i + 1,
                    transactional: tx,
                }),
            }
        }
        out
    }
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
            shape(&plan.segments(tx, false)),
            vec![(0, 2, true), (2, 3, false), (3, 5, true)]
        );
        assert_eq!(
            shape(&plan.segments(tx, true)),
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
            shape(&plan_of(&["a", "b"]).segments(all_outside, false)),
            vec![(0, 1, false), (1, 2, false)]
        );
        assert!(Plan::default().segments(tx, false).is_empty());
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
}
