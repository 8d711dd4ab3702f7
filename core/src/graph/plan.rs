//! Plans: which revisions `migrate-up`, `migrate-down` and `migrate-stamp` touch, in which
//! order, and the version-table writes of each step. The writes simulate Alembic's
//! `HeadMaintainer` on the set of rows, so that a branchy history leaves the same rows as
//! Alembic would (one row per applied branch head, merges collapsing rows, downgrades
//! "unmerging" them). Also the revision lists of `migrate-history -r START:END`.

use super::resolve::{Resolved, DB, HISTORY};
use super::target::Target;
use super::RevisionGraph;
use crate::error::{Error, Result};
use crate::plan::{Direction, Plan, Step, VersionOp};

impl RevisionGraph {
    /// The steps that take the database from `current` (the version table rows; empty = base)
    /// to `target`: the ancestors-including-self of the target (through `down_revision` and
    /// `depends_on`) minus those of `current`, parents and dependencies first, branches in
    /// Alembic's order (the reverse of its walk down from the heads).
    /// A target behind the current rows gives an empty plan. Relative targets (`+N`) count
    /// from `current`.
    pub fn upgrade_plan(&self, current: &[String], target: &Target) -> Result<Plan> {
        self.check_known(current)?;
        let cur = self.indices(current);
        let targets = match self.resolve_idx(target, &cur, DB)? {
            Resolved::Revs(v) => v,
            Resolved::BranchBase(_) => Vec::new(),
        };
        let have = self.closure(&cur, &self.preds);
        let want = self.closure(&targets, &self.preds);
        // Alembic's order: its walk from the heads down (`newest_first`), reversed. Branches
        // come in the order Alembic runs them, so columns two branches add to one table land
        // in the same positions as Alembic's.
        let order: Vec<usize> = self
            .newest_first
            .iter()
            .rev()
            .copied()
            .filter(|&i| want[i] && !have[i])
            .collect();
        Ok(self.simulate_up(current, &cur, &order))
    }

    /// The steps that take the database from `current` down to `target`: the applied
    /// revisions that descend from the target (through `down_revision` and `depends_on`, so
    /// downgrading a dependency also downgrades what depends on it), the target excluded,
    /// children first. `base` removes everything; `X@base` removes X's branch. A target that
    /// is not applied is an error.
    pub fn downgrade_plan(&self, current: &[String], target: &Target) -> Result<Plan> {
        self.check_known(current)?;
        let cur = self.indices(current);
        let applied = self.closure(&cur, &self.preds);
        let remove: Vec<bool> = match self.resolve_idx(target, &cur, DB)? {
            Resolved::Revs(v) if v.is_empty() => applied.clone(),
            Resolved::Revs(v) => {
                if let Some(&t) = v.iter().find(|&&t| !applied[t]) {
                    let at = if current.is_empty() {
                        "the database is empty".to_string()
                    } else {
                        format!("the database is at {}", current.join(", "))
                    };
                    return Err(Error::usage(format!(
                        "revision {} is not applied; nothing to downgrade to",
                        self.nodes[t].id
                    ))
                    .with_hint(format!("{at}; use migrate-up to go forward")));
                }
                let below = self.closure(&v, &self.preds);
                let above = self.closure(&v, &self.succs);
                (0..self.len())
                    .map(|i| applied[i] && above[i] && !below[i])
                    .collect()
            }
            Resolved::BranchBase(b) => {
                let above = self.closure(&b, &self.succs);
                (0..self.len()).map(|i| applied[i] && above[i]).collect()
            }
        };
        let order: Vec<usize> = self
            .newest_first
            .iter()
            .copied()
            .filter(|&i| remove[i])
            .collect();
        Ok(self.simulate_down(current, &cur, applied, &order))
    }

    /// Upgrade steps with the version-table writes of Alembic's HeadMaintainer.
    fn simulate_up(&self, current: &[String], cur: &[usize], order: &[usize]) -> Plan {
        let mut row = vec![false; self.len()];
        for &c in cur {
            row[c] = true;
        }
        let mut steps = Vec::with_capacity(order.len());
        for &r in order {
            let id = &self.nodes[r].id;
            let hits: Vec<usize> = self.norm_down[r]
                .iter()
                .copied()
                .filter(|&d| row[d])
                .collect();
            let mut ops = Vec::with_capacity(hits.len().max(1));
            match hits.split_last() {
                // A root, or none of its parents is a row: a new branch.
                None => ops.push(VersionOp::Insert(id.clone())),
                // One row: a linear step; several: a merge collapses them.
                Some((&last, rest)) => {
                    for &d in rest {
                        ops.push(VersionOp::Delete(self.nodes[d].id.clone()));
                        row[d] = false;
                    }
                    ops.push(VersionOp::Update {
                        from: self.nodes[last].id.clone(),
                        to: id.clone(),
                    });
                    row[last] = false;
                }
            }
            row[r] = true;
            steps.push(Step {
                revision: id.clone(),
                direction: Direction::Up,
                from: self.nodes[r].down_revisions.clone(),
                to: vec![id.clone()],
                version_ops: ops,
            });
        }
        Plan {
            steps,
            start_heads: current.to_vec(),
            end_heads: self.ids((0..self.len()).filter(|&i| row[i])),
        }
    }

    /// Downgrade steps with the version-table writes of Alembic's HeadMaintainer. A parent
    /// (or normalized dependency) of the removed revision becomes a row unless it is still
    /// below another applied revision; with several, the merge is undone ("unmerge").
    fn simulate_down(
        &self,
        current: &[String],
        cur: &[usize],
        mut applied: Vec<bool>,
        order: &[usize],
    ) -> Plan {
        let n = self.len();
        let mut row = vec![false; n];
        for &c in cur {
            row[c] = true;
        }
        // Applied successors of each revision (through any edge).
        let mut above: Vec<u32> = vec![0; n];
        for i in (0..n).filter(|&i| applied[i]) {
            for &p in &self.preds[i] {
                above[p] += 1;
            }
        }
        let mut steps = Vec::with_capacity(order.len());
        for &r in order {
            let id = &self.nodes[r].id;
            applied[r] = false;
            for &p in &self.preds[r] {
                above[p] -= 1;
            }
            let mut ops = Vec::new();
            if row[r] {
                let to: Vec<usize> = self.norm_down[r]
                    .iter()
                    .copied()
                    .filter(|&t| !row[t] && above[t] == 0)
                    .collect();
                match to.split_last() {
                    None => ops.push(VersionOp::Delete(id.clone())),
                    Some((&last, rest)) => {
                        for &t in rest {
                            ops.push(VersionOp::Insert(self.nodes[t].id.clone()));
                            row[t] = true;
                        }
                        ops.push(VersionOp::Update {
                            from: id.clone(),
                            to: self.nodes[last].id.clone(),
                        });
                        row[last] = true;
                    }
                }
                row[r] = false;
            }
            steps.push(Step {
                revision: id.clone(),
                direction: Direction::Down,
                from: vec![id.clone()],
                to: self.nodes[r].down_revisions.clone(),
                version_ops: ops,
            });
        }
        Plan {
            steps,
            start_heads: current.to_vec(),
            end_heads: self.ids((0..n).filter(|&i| row[i])),
        }
    }

    /// The rows the version table should hold after `stamp TARGET...` (Alembic's rule): each
    /// target replaces the current rows in its lineage (its ancestors and descendants);
    /// rows in unrelated branches stay. `base` empties the table; `X@base` takes X's branch
    /// back to where it forked. The result is minimal (no row is an ancestor of another), in
    /// `nodes()` order. With `--purge`, pass an empty `current`.
    pub fn stamp_heads(&self, current: &[String], targets: &[Target]) -> Result<Vec<String>> {
        self.check_known(current)?;
        if targets.is_empty() {
            return Err(Error::usage(
                "nothing to stamp: give a revision, 'heads' or 'base'",
            ));
        }
        let cur = self.indices(current);
        let n = self.len();
        let mut revs: Vec<usize> = Vec::new();
        let mut to_base = false;
        let mut branch_bases: Vec<usize> = Vec::new();
        for t in targets {
            match self.resolve_idx(t, &cur, DB)? {
                Resolved::Revs(v) if v.is_empty() => to_base = true,
                Resolved::Revs(v) => revs.extend(v),
                Resolved::BranchBase(b) => branch_bases.extend(b),
            }
        }
        let mut candidates = revs.clone();
        if !to_base {
            let below = self.closure(&revs, &self.preds);
            let above = self.closure(&revs, &self.succs);
            let region = self.closure(&branch_bases, &self.succs);
            candidates.extend(
                cur.iter()
                    .copied()
                    .filter(|&r| !below[r] && !above[r] && !region[r]),
            );
            let inside: Vec<usize> = cur.iter().copied().filter(|&r| region[r]).collect();
            if !inside.is_empty() {
                // A branch taken back to its base: what is left below it becomes the rows.
                let left = self.closure(&inside, &self.preds);
                candidates.extend((0..n).filter(|&i| {
                    left[i] && !region[i] && !self.succs[i].iter().any(|&s| left[s] && !region[s])
                }));
            }
        }
        Ok(self.ids(self.minimal(&candidates).into_iter()))
    }

    /// Script heads that are applied only implicitly: ancestors (through `depends_on`) of the
    /// current rows but not rows themselves. `migrate-current` shows them as
    /// `(effective head)`. Unknown rows are ignored.
    pub fn effective_heads(&self, current: &[String]) -> Vec<String> {
        let cur = self.indices(current);
        let applied = self.closure(&cur, &self.preds);
        let mut row = vec![false; self.len()];
        for &c in &cur {
            row[c] = true;
        }
        self.ids(
            self.heads
                .iter()
                .copied()
                .filter(|&h| applied[h] && !row[h]),
        )
    }

    /// The revisions `migrate-history -r START:END` lists, newest first. START is inclusive;
    /// either side may be empty (open). START/END take the target grammar plus `current`
    /// (the database's rows), e.g. `base:head`, `1a2b:`, `:current`, `-3:current`,
    /// `mylabel@base:`. `None` lists every revision.
    pub fn history_range(&self, range: Option<&str>, current: &[String]) -> Result<Vec<String>> {
        let Some(range) = range else {
            return Ok(self.ids(self.newest_first.iter().copied()));
        };
        self.check_known(current)?;
        let Some((start, end)) = range.split_once(':') else {
            return Err(Error::usage(format!(
                "history range '{range}' must be START:END, START: or :END"
            ))
            .with_hint("e.g. -r base:head, -r 1a2b:, -r -3:current"));
        };
        let cur = self.indices(current);
        let n = self.len();
        let lower: Vec<bool> = match start.trim() {
            "" => vec![true; n],
            s => match self.resolve_idx(&Target::parse(s)?, &cur, HISTORY)? {
                Resolved::Revs(v) if v.is_empty() => vec![true; n],
                Resolved::Revs(v) | Resolved::BranchBase(v) => self.closure(&v, &self.succs),
            },
        };
        let upper: Vec<bool> = match end.trim() {
            "" => vec![true; n],
            s => match self.resolve_idx(&Target::parse(s)?, &cur, HISTORY)? {
                Resolved::Revs(v) => self.closure(&v, &self.preds),
                Resolved::BranchBase(_) => vec![false; n],
            },
        };
        Ok(self.ids(
            self.newest_first
                .iter()
                .copied()
                .filter(|&i| lower[i] && upper[i]),
        ))
    }
}
