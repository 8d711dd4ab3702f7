//! A plan is a value: the ordered steps that take the database from its current heads to a
//! target, each with the version-table writes Alembic would make for it. Online runs
//! (`run.rs`), offline SQL (`offline.rs`) and `--dry-run` are three consumers of the same plan,
//! so they cannot disagree. Plans are computed by `RevisionGraph` (pure, no I/O).

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

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
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
