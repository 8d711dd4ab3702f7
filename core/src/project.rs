//! A project: the migration scripts of one directory and the revision graph built from them,
//! read once per command (never re-read during a walk).

use crate::error::{Error, Result};
use crate::graph::RevisionGraph;
use crate::plan::{Direction, Plan, Segment};
use crate::script::{self, Script};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Project {
    pub dir: PathBuf,
    pub scripts: Vec<Script>,
    pub graph: RevisionGraph,
    index: HashMap<String, usize>,
}

impl Project {
    /// Reads and validates every script in `dir`: parse errors, duplicate ids, missing parents
    /// and cycles are errors naming the files.
    pub fn load(dir: &Path) -> Result<Project> {
        let scripts = script::load_scripts(dir)?;
        Self::from_scripts(dir, scripts)
    }

    /// Only the revision graph of `dir` — what `migrate-history` and `migrate-current` need —
    /// read through the header index in `cache_dir` ([`script::index`]); the same graph and
    /// the same errors as [`Project::load`].
    pub fn load_graph(dir: &Path, cache_dir: Option<&Path>) -> Result<RevisionGraph> {
        RevisionGraph::new(script::index::load_nodes(dir, cache_dir)?)
    }

    pub fn from_scripts(dir: &Path, scripts: Vec<Script>) -> Result<Project> {
        let graph = RevisionGraph::new(scripts.iter().map(Script::to_node).collect())?;
        let index = scripts
            .iter()
            .enumerate()
            .map(|(i, s)| (s.revision.clone(), i))
            .collect();
        Ok(Project {
            dir: dir.to_path_buf(),
            scripts,
            graph,
            index,
        })
    }

    /// `plan`'s transaction segments as this project's scripts declare them (`transactional:
    /// false` and program steps stand alone; `max_steps`: see [`Plan::segments`]). The run, the dry run and the
    /// plan's rendering all cut the plan here.
    pub fn segments(&self, plan: &Plan, max_steps: Option<usize>) -> Vec<Segment> {
        plan.segments(
            // a backfill's up step stands alone: it commits range by range
            |s| {
                self.script(&s.revision).map_or(true, |x| {
                    x.runs_in_transaction(s.direction)
                        && !(x.backfill.is_some() && s.direction == Direction::Up)
                })
            },
            max_steps,
        )
    }

    /// The script of a revision the graph knows.
    pub fn script(&self, id: &str) -> Result<&Script> {
        self.index
            .get(id)
            .map(|&i| &self.scripts[i])
            .ok_or_else(|| Error::state(format!("Can't locate revision identified by '{id}'")))
    }
}
