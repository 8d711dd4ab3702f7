//! Resolving a [`Target`] against the graph: which revisions it names, given the database's
//! rows (for relative steps). Keeps Alembic's error messages, which users search for and tests
//! assert; walks are linear in the number of revisions.

use super::target::{Anchor, BranchTarget, Relative, Target};
use super::RevisionGraph;
use crate::error::{Error, Result};

/// What a target names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Resolved {
    /// These revisions (empty: `base`, the empty database).
    Revs(Vec<usize>),
    /// `X@base`: the bottom of X's lineage; everything from there up is "X's branch".
    BranchBase(Vec<usize>),
}

/// How a target may be resolved.
#[derive(Debug, Clone, Copy)]
pub(super) struct Mode {
    /// `+N` / `-N` / `LABEL@+N` are relative to the database's rows (given as `current`).
    relative_to_db: bool,
    /// `current` is accepted (history ranges).
    current_keyword: bool,
}

pub(super) const DB: Mode = Mode {
    relative_to_db: true,
    current_keyword: false,
};
pub(super) const HISTORY: Mode = Mode {
    relative_to_db: true,
    current_keyword: true,
};
pub(super) const NO_DB: Mode = Mode {
    relative_to_db: false,
    current_keyword: false,
};

pub(super) const MULTIPLE_HEADS: &str = "Multiple head revisions are present for given argument 'head'; please specify a specific target revision, '<branchname>@head' to narrow to a specific head, or 'heads' for all heads";

/// Why a walk cannot take its next step.
enum Block {
    /// Going up from a head.
    PastHead,
    /// Going down from base.
    PastBase,
    /// Going up from a branch point (or from base with several roots): the candidates.
    Fork {
        at: Option<usize>,
        cands: Vec<usize>,
    },
    /// Going down from a merge point.
    Merge { at: usize },
}

/// One step of a walk, or why there is none.
type Blocked<T> = std::result::Result<T, Block>;

/// The lineage of `X` in `X@...`: the revisions that descend from X and X's ancestors.
struct Lineage<'a> {
    /// Membership, by index.
    members: Vec<bool>,
    /// X as written, for error messages.
    name: &'a str,
}

impl RevisionGraph {
    /// An exact id, else a branch label (the revision that declared it), else a unique prefix
    /// (even one character). Also accepts the target grammar when it names exactly one
    /// revision (`head`, `LABEL@head`, `REV+N`, `head-N`...), but not forms relative to the
    /// database (`+N`, `-N`).
    pub fn resolve(&self, ident: &str) -> Result<String> {
        match self.resolve_idx(&Target::parse(ident)?, &[], NO_DB)? {
            Resolved::Revs(v) if v.len() == 1 => Ok(self.nodes[v[0]].id.clone()),
            Resolved::Revs(v) if v.len() > 1 => Err(Error::usage(format!(
                "'{ident}' names several revisions: {}",
                self.join(&v)
            ))
            .with_hint("name one revision")),
            _ => Err(Error::usage(format!(
                "'{ident}' names no revision (it means base, before any revision)"
            ))
            .with_hint("name a revision; migrate-history lists them")),
        }
    }

    /// The revisions a target names, with the full grammar (see [`Target`]); `current` is the
    /// version table, for relative targets. Empty for `base` and `X@base`.
    pub fn resolve_target(&self, target: &Target, current: &[String]) -> Result<Vec<String>> {
        self.check_known(current)?;
        let cur = self.indices(current);
        match self.resolve_idx(target, &cur, DB)? {
            Resolved::Revs(v) => Ok(self.ids(v.into_iter())),
            Resolved::BranchBase(_) => Ok(Vec::new()),
        }
    }

    /// The revisions `target` names; `cur` holds the database's rows.
    pub(super) fn resolve_idx(
        &self,
        target: &Target,
        cur: &[usize],
        mode: Mode,
    ) -> Result<Resolved> {
        let one = |i: usize| Ok(Resolved::Revs(vec![i]));
        match target {
            Target::Heads => Ok(Resolved::Revs(self.heads.clone())),
            Target::Head => one(self.single_head()?),
            Target::Base => Ok(Resolved::Revs(Vec::new())),
            Target::Current if mode.current_keyword => Ok(Resolved::Revs(cur.to_vec())),
            Target::Current => one(self.resolve_ident("current", None)?),
            Target::Rev(rev) => one(self.resolve_ident(rev, None)?),
            Target::Relative(rel) => {
                let start = match &rel.from {
                    Anchor::Database => self.current_row(&rel.text, cur, mode)?,
                    Anchor::Current if mode.current_keyword => {
                        self.current_row(&rel.text, cur, mode)?
                    }
                    Anchor::Current => Some(self.resolve_ident("current", None)?),
                    Anchor::Head => Some(self.single_head()?),
                    Anchor::Base => None,
                    Anchor::Rev(rev) => Some(self.resolve_ident(rev, None)?),
                };
                let end = self.walk(&rel.text, start, rel.steps, None)?;
                Ok(Resolved::Revs(end.into_iter().collect()))
            }
            Target::Branch { branch, at } => self.resolve_in_branch(branch, at, cur, mode),
        }
    }

    /// `X@...`: X is a branch label or a revision (id or prefix).
    fn resolve_in_branch(
        &self,
        branch: &str,
        at: &BranchTarget,
        cur: &[usize],
        mode: Mode,
    ) -> Result<Resolved> {
        let anchor = self.resolve_ident(branch, None)?;
        let desc = self.closure(&[anchor], &self.children);
        let anc = self.closure(&[anchor], &self.parents);
        let lineage = Lineage {
            members: desc.iter().zip(&anc).map(|(a, b)| *a || *b).collect(),
            name: branch,
        };
        let branch_heads: Vec<usize> = self.heads.iter().copied().filter(|&h| desc[h]).collect();
        match at {
            BranchTarget::Heads => Ok(Resolved::Revs(branch_heads)),
            BranchTarget::Base => Ok(Resolved::BranchBase(vec![self.lineage_base(anchor)])),
            BranchTarget::Rev(rev) => Ok(Resolved::Revs(vec![
                self.resolve_ident(rev, Some(&lineage))?
            ])),
            BranchTarget::Relative(rel) => {
                let start = self.branch_start(rel, &lineage, &branch_heads, cur, mode)?;
                let end = self.walk(&rel.text, start, rel.steps, Some(&lineage.members))?;
                Ok(Resolved::Revs(end.into_iter().collect()))
            }
        }
    }

    /// Where `X@FROM+N` starts (None: base).
    fn branch_start(
        &self,
        rel: &Relative,
        lineage: &Lineage,
        branch_heads: &[usize],
        cur: &[usize],
        mode: Mode,
    ) -> Result<Option<usize>> {
        let t = &rel.text;
        let branch = lineage.name;
        Ok(match &rel.from {
            Anchor::Database => self.branch_position(t, lineage, cur, mode)?,
            Anchor::Head => match branch_heads {
                [h] => Some(*h),
                _ => {
                    return Err(Error::usage(format!(
                        "ambiguous walk: '{t}': branch '{branch}' has several heads ({})",
                        self.join(branch_heads)
                    ))
                    .with_hint("name one of the heads instead: REV-N"))
                }
            },
            Anchor::Base => None,
            // `parse` gives `current` inside a branch as a revision name.
            Anchor::Current => Some(self.resolve_ident("current", Some(lineage))?),
            Anchor::Rev(rev) => Some(self.resolve_ident(rev, Some(lineage))?),
        })
    }

    /// The single script head, or Alembic's error.
    fn single_head(&self) -> Result<usize> {
        match self.heads.as_slice() {
            [h] => Ok(*h),
            [] => Err(Error::usage("there are no revisions: 'head' names nothing")
                .with_hint("create one with migrate-revision")),
            hs => {
                Err(Error::usage(MULTIPLE_HEADS)
                    .with_hint(format!("the heads are {}", self.join(hs))))
            }
        }
    }

    /// The single current row for `+N` / `-N` (None: the empty database).
    fn current_row(&self, t: &str, cur: &[usize], mode: Mode) -> Result<Option<usize>> {
        if !mode.relative_to_db {
            return Err(Error::usage(format!(
                "'{t}' is relative to the database's current revision and can't be used here"
            ))
            .with_hint("name a revision, or use REV+N / head-N"));
        }
        match cur {
            [] => Ok(None),
            [c] => Ok(Some(*c)),
            _ => Err(Error::usage(format!(
                "relative target '{t}' is ambiguous: the database has several heads ({})",
                self.join(cur)
            ))
            .with_hint("say which branch: REV+N, REV-N, LABEL@+N or LABEL@-N")),
        }
    }

    /// Where the database is within a branch: the highest applied revision of the lineage.
    fn branch_position(
        &self,
        t: &str,
        lineage: &Lineage,
        cur: &[usize],
        mode: Mode,
    ) -> Result<Option<usize>> {
        let branch = lineage.name;
        if !mode.relative_to_db {
            return Err(Error::usage(format!(
                "'{t}' is relative to the database's current revision and can't be used here"
            ))
            .with_hint(format!("name a revision, or use {branch}@head-N")));
        }
        let applied = self.closure(cur, &self.preds);
        let inside: Vec<bool> = (0..self.len())
            .map(|i| lineage.members[i] && applied[i])
            .collect();
        let tops: Vec<usize> = (0..self.len())
            .filter(|&i| inside[i] && !self.children[i].iter().any(|&c| inside[c]))
            .collect();
        match tops.as_slice() {
            [] => Ok(None),
            [x] => Ok(Some(*x)),
            _ => Err(Error::usage(format!(
                "relative target '{t}' is ambiguous: the database has several heads in branch '{branch}' ({})",
                self.join(&tops)
            ))
            .with_hint("name the revision to start from: REV+N or REV-N")),
        }
    }

    /// The lowest revision of X's branch: walk down single parents while the parent is
    /// neither a branch point nor a merge point.
    fn lineage_base(&self, anchor: usize) -> usize {
        let mut cur = anchor;
        while let [p] = self.parents[cur].as_slice() {
            if self.children[*p].len() > 1 || self.parents[*p].len() > 1 {
                break;
            }
            cur = *p;
        }
        cur
    }

    /// Walks `steps` steps up (> 0, children) or down (< 0, parents) from `start` (None:
    /// base). Forks going up and merges going down are ambiguous; `within` restricts the
    /// children considered (a branch's lineage). `t` is the target, for errors.
    fn walk(
        &self,
        t: &str,
        start: Option<usize>,
        steps: i64,
        within: Option<&[bool]>,
    ) -> Result<Option<usize>> {
        let mut pos = start;
        for done in 0..steps.unsigned_abs() {
            let next = if steps > 0 {
                self.step_up(pos, within)
            } else {
                self.step_down(pos)
            };
            pos = next.map_err(|blocked| self.walk_error(t, start, done, blocked))?;
        }
        Ok(pos)
    }

    /// The one child of `pos` (None: base, whose children are the roots) within the lineage.
    fn step_up(&self, pos: Option<usize>, within: Option<&[bool]>) -> Blocked<Option<usize>> {
        let cands: Vec<usize> = match pos {
            None => (0..self.len())
                .filter(|&i| self.parents[i].is_empty())
                .collect(),
            Some(p) => self.children[p].clone(),
        };
        let cands: Vec<usize> = cands
            .into_iter()
            .filter(|&c| within.is_none_or(|w| w[c]))
            .collect();
        match cands.as_slice() {
            [] => Err(Block::PastHead),
            [c] => Ok(Some(*c)),
            _ => Err(Block::Fork { at: pos, cands }),
        }
    }

    /// The one parent of `pos` (None: base, below a root).
    fn step_down(&self, pos: Option<usize>) -> Blocked<Option<usize>> {
        let Some(p) = pos else {
            return Err(Block::PastBase);
        };
        match self.parents[p].as_slice() {
            [] => Ok(None),
            [q] => Ok(Some(*q)),
            _ => Err(Block::Merge { at: p }),
        }
    }

    /// The error for a walk from `start` stopped after `done` steps.
    fn walk_error(&self, t: &str, start: Option<usize>, done: u64, block: Block) -> Error {
        let from = start.map_or("base".to_string(), |i| self.nodes[i].id.clone());
        match block {
            Block::PastHead => Error::usage(format!(
                "relative revision '{t}' runs past a head: only {} available from {from}",
                steps_word(done)
            ))
            .with_hint("use a smaller step, or 'heads'"),
            Block::PastBase => Error::usage(format!(
                "relative revision '{t}' runs past base: only {} available from {from}",
                steps_word(done)
            ))
            .with_hint("use a smaller step, or 'base'"),
            Block::Fork { at, cands } => {
                let what = match at {
                    None => "base, which has several roots".to_string(),
                    Some(p) => format!(
                        "branch point {}, which has several children",
                        self.nodes[p].id
                    ),
                };
                Error::usage(format!(
                    "ambiguous walk: '{t}' reaches {what} ({})",
                    self.join(&cands)
                ))
                .with_hint(
                    "name the revision instead, or use REV+N / LABEL@+N to follow one branch",
                )
            }
            Block::Merge { at } => Error::usage(format!(
                "ambiguous walk: '{t}' reaches merge point {}, which has several parents ({})",
                self.nodes[at].id,
                self.join(&self.parents[at])
            ))
            .with_hint("name the revision instead, or use REV-N to follow one parent"),
        }
    }

    /// Exact id, else branch label.
    fn exact(&self, s: &str) -> Option<usize> {
        self.index.get(s).or_else(|| self.labels.get(s)).copied()
    }

    /// Exact id, else branch label, else unique prefix; `within` restricts to a branch.
    fn resolve_ident(&self, s: &str, within: Option<&Lineage>) -> Result<usize> {
        let in_branch = |i: usize| within.is_none_or(|l| l.members[i]);
        if let Some(i) = self.exact(s) {
            if in_branch(i) {
                return Ok(i);
            }
            let branch = within.expect("filtered").name;
            return Err(Error::usage(format!(
                "revision {} is not in branch '{branch}'",
                self.nodes[i].id
            ))
            .with_hint("migrate-history --verbose shows the branches"));
        }
        let start = self
            .by_id
            .partition_point(|&i| self.nodes[i].id.as_str() < s);
        let all: Vec<usize> = self.by_id[start..]
            .iter()
            .copied()
            .take_while(|&i| self.nodes[i].id.starts_with(s))
            .collect();
        let matches: Vec<usize> = all.iter().copied().filter(|&i| in_branch(i)).collect();
        match matches.as_slice() {
            [i] => Ok(*i),
            [] => {
                let msg = match within {
                    Some(l) if !all.is_empty() => {
                        format!("no revision in branch '{}' starts with '{s}'", l.name)
                    }
                    _ => format!("no revision starts with '{s}'"),
                };
                Err(Error::usage(msg).with_hint("run migrate-history to list the revisions"))
            }
            ms => {
                let shown: Vec<&str> = ms
                    .iter()
                    .take(10)
                    .map(|&i| self.nodes[i].id.as_str())
                    .collect();
                let more = if ms.len() > 10 {
                    format!(" and {} more", ms.len() - 10)
                } else {
                    String::new()
                };
                Err(Error::usage(format!(
                    "ambiguous revision '{s}': matches {}{more}",
                    shown.join(", ")
                ))
                .with_hint("give more characters of the revision id"))
            }
        }
    }
}

fn steps_word(n: u64) -> String {
    if n == 1 {
        "1 step is".to_string()
    } else {
        format!("{n} steps are")
    }
}
