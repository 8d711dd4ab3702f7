//! The revision graph: every script's revision, its parents (`down_revision`), its
//! dependencies (`depends_on`) and branch labels. Pure, no I/O: it is built from the parsed
//! scripts, validated once, then answers every question a command asks about revisions.
//!
//! It follows Alembic's behaviour, so that projects moving from Alembic see the same results:
//! the target grammar ([`Target`]: `head`, `heads`, `base`, prefixes, labels, relative steps,
//! `X@head`...), which revisions an upgrade or downgrade runs and in which order, and the
//! version-table writes of each step (Alembic's `HeadMaintainer`, simulated on the row set).
//! Alembic's error messages are kept word for word where users may search for them.
//!
//! Nodes are stored in a `Vec` in a deterministic topological order (parents and dependencies
//! before children, ties broken by the order given to [`RevisionGraph::new`], which is file-name
//! order); every walk works on indices into it. An upgrade runs in the reverse of the walk
//! down from the heads (`newest_first`), which is Alembic's order for branches. All
//! operations are linear (or `n log n`) in the number of revisions: 10,000 revisions are
//! handled in a few milliseconds (see the `graph::bench` test).
//!
//! - [`target`]: the target grammar, parsed before the graph is consulted;
//! - `resolve`: what a target names in this graph;
//! - `labels`: branch labels and the revisions they apply to;
//! - `plan`: upgrade, downgrade, stamp and history ranges, with the version-table writes.

mod labels;
mod plan;
mod resolve;
pub mod target;

pub use target::{Anchor, BranchTarget, Relative, Target};

use std::cmp::Reverse;
use std::collections::BinaryHeap;

// ids are hashed on every look-up of every command: FxHash, not SipHash (the keys are the
// project's own revision ids, so there is no untrusted input to defend against)
use rustc_hash::FxHashMap as HashMap;

use crate::error::{Error, Result};

/// One revision, as read from its script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevisionNode {
    pub id: String,
    /// Parents: empty for a root, several for a merge.
    pub down_revisions: Vec<String>,
    /// Extra edges that are not parents (revision ids or branch labels).
    pub depends_on: Vec<String>,
    /// Branch labels declared by this revision.
    pub branch_labels: Vec<String>,
    pub message: String,
    /// The script's path, for error messages and `Path:` lines.
    pub source: String,
    /// Its program steps, `up: <command>` / `down: <command>` (`migrate-history` marks them).
    pub programs: Vec<String>,
    /// `-- phase: contract`: `migrate-up` stops before it unless asked (`migrate-history` marks
    /// it).
    pub contract: bool,
}

/// The validated revision graph. Cheap to query; build it once per command.
#[derive(Debug, Clone)]
pub struct RevisionGraph {
    /// In topological order (the upgrade order).
    nodes: Vec<RevisionNode>,
    index: HashMap<String, usize>,
    /// `down_revision` edges, in declared order, deduplicated.
    parents: Vec<Vec<usize>>,
    /// `depends_on` edges (labels resolved), deduplicated, without entries that are parents.
    deps: Vec<Vec<usize>>,
    /// parents ∪ deps.
    preds: Vec<Vec<usize>>,
    /// Children by `down_revision`, ascending index.
    children: Vec<Vec<usize>>,
    /// Children and dependents (revisions naming this one in `depends_on`), ascending index.
    succs: Vec<Vec<usize>>,
    /// Alembic's `_normalized_down_revisions`: parents, then the dependencies that are not
    /// already ancestors of the parents.
    norm_down: Vec<Vec<usize>>,
    /// Newest first: a reverse topological order, built from the heads down depth first (one
    /// branch after the other, first parent first, ties by file order), like Alembic's walk.
    /// What `history` lists and the order downgrades run in.
    newest_first: Vec<usize>,
    /// Indices sorted by id, for prefix lookups.
    by_id: Vec<usize>,
    /// Branch label -> the revision that declared it.
    labels: HashMap<String, usize>,
    /// All label names, sorted; `eff_labels` holds indices into it.
    label_names: Vec<String>,
    /// Effective branch labels of each revision (sorted label indices).
    eff_labels: Vec<Vec<u32>>,
    heads: Vec<usize>,
}

/// What [`RevisionGraph::tagged`] says of a revision: the same answers as
/// [`RevisionGraph::is_head`], [`RevisionGraph::is_real_head`],
/// [`RevisionGraph::is_branch_point`], [`RevisionGraph::is_merge_point`] and
/// [`RevisionGraph::branch_labels_of`].
#[derive(Debug, Clone, Copy)]
pub struct Tags<'a> {
    pub head: bool,
    pub real_head: bool,
    pub branch_point: bool,
    pub merge_point: bool,
    labels: &'a [u32],
    names: &'a [String],
}

impl<'a> Tags<'a> {
    /// The effective branch labels, sorted.
    pub fn labels(&self) -> impl Iterator<Item = &'a str> + 'a {
        let names = self.names;
        self.labels.iter().map(move |&l| names[l as usize].as_str())
    }

    pub fn has_labels(&self) -> bool {
        !self.labels.is_empty()
    }
}

/// The edges between the nodes as given to [`RevisionGraph::new`] (indices in input order),
/// before they are renumbered into topological order.
struct Edges {
    /// `down_revision`, in declared order, deduplicated.
    parents: Vec<Vec<usize>>,
    /// `depends_on` (labels resolved), deduplicated, without parents.
    deps: Vec<Vec<usize>>,
    /// parents, then deps.
    preds: Vec<Vec<usize>>,
    /// The reverse of `preds`, ascending.
    succs: Vec<Vec<usize>>,
}

/// Input index -> topological index, and back.
struct Renumbering {
    /// `order[k]`: the input index of the node at topological position `k`.
    order: Vec<usize>,
    /// `pos[i]`: the topological position of input node `i`.
    pos: Vec<usize>,
}

impl RevisionGraph {
    /// Validates the revisions and builds the graph. `nodes` should be in file-name order: it
    /// breaks ties in every ordering. Errors (`ErrorKind::Script`) name the file(s) and ids:
    /// duplicate ids, a parent or dependency that names no revision, cycles, a branch label
    /// used twice (or equal to a revision id).
    pub fn new(nodes: Vec<RevisionNode>) -> Result<Self> {
        let index = index_ids(&nodes)?;
        let labels = labels::index_labels(&nodes, &index)?;
        let edges = Edges::resolve(&nodes, &index, &labels)?;
        let renumbering = edges.topological_order(&nodes)?;
        let newest_first = edges.newest_first();
        let mut graph = Self::assemble(nodes, index, labels, &edges, &renumbering, &newest_first);
        graph.norm_down = graph.compute_norm_down();
        graph.compute_labels();
        Ok(graph)
    }

    /// The graph in topological numbering, with the derived indices (children, successors,
    /// heads, the by-id order); `norm_down` and the effective labels are left to compute.
    fn assemble(
        nodes: Vec<RevisionNode>,
        mut index: HashMap<String, usize>,
        mut labels: HashMap<String, usize>,
        edges: &Edges,
        renumbering: &Renumbering,
        newest_in: &[usize],
    ) -> Self {
        let Renumbering { order, pos } = renumbering;
        let n = nodes.len();
        let mut slots: Vec<Option<RevisionNode>> = nodes.into_iter().map(Some).collect();
        let nodes: Vec<RevisionNode> = order
            .iter()
            .map(|&i| slots[i].take().expect("each node once"))
            .collect();
        let remap = |v: &Vec<usize>| -> Vec<usize> { v.iter().map(|&i| pos[i]).collect() };
        let parents: Vec<Vec<usize>> = order.iter().map(|&i| remap(&edges.parents[i])).collect();
        let deps: Vec<Vec<usize>> = order.iter().map(|&i| remap(&edges.deps[i])).collect();
        let preds: Vec<Vec<usize>> = order.iter().map(|&i| remap(&edges.preds[i])).collect();
        let newest_first: Vec<usize> = newest_in.iter().map(|&i| pos[i]).collect();
        for v in index.values_mut().chain(labels.values_mut()) {
            *v = pos[*v];
        }

        let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut succs: Vec<Vec<usize>> = vec![Vec::new(); n];
        for i in 0..n {
            for &p in &parents[i] {
                children[p].push(i);
            }
            for &p in &preds[i] {
                succs[p].push(i);
            }
        }
        let heads: Vec<usize> = (0..n).filter(|&i| children[i].is_empty()).collect();
        let mut by_id: Vec<usize> = (0..n).collect();
        by_id.sort_unstable_by(|&a, &b| nodes[a].id.cmp(&nodes[b].id));

        RevisionGraph {
            nodes,
            index,
            parents,
            deps,
            preds,
            children,
            succs,
            norm_down: Vec::new(),
            newest_first,
            by_id,
            labels,
            label_names: Vec::new(),
            eff_labels: Vec::new(),
            heads,
        }
    }

    /// Parents, then those dependencies that are not already ancestors (through any edge) of
    /// the parents.
    fn compute_norm_down(&self) -> Vec<Vec<usize>> {
        let n = self.len();
        let mut mark: Vec<u32> = vec![0; n];
        let mut generation: u32 = 0;
        let mut stack: Vec<usize> = Vec::new();
        (0..n)
            .map(|r| {
                let mut nd = self.parents[r].clone();
                for &d in &self.deps[r] {
                    // Is d an ancestor of one of the parents? Ancestors of x have smaller
                    // indices, so the search never needs to go below d.
                    generation += 1;
                    stack.clear();
                    stack.extend(self.parents[r].iter().copied().filter(|&p| p > d));
                    let mut found = false;
                    while let Some(x) = stack.pop() {
                        if mark[x] == generation {
                            continue;
                        }
                        mark[x] = generation;
                        for &p in &self.preds[x] {
                            if p == d {
                                found = true;
                                break;
                            }
                            if p > d && mark[p] != generation {
                                stack.push(p);
                            }
                        }
                        if found {
                            break;
                        }
                    }
                    if !found {
                        nd.push(d);
                    }
                }
                nd
            })
            .collect()
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The revision with exactly this id.
    pub fn get(&self, id: &str) -> Option<&RevisionNode> {
        self.index.get(id).map(|&i| &self.nodes[i])
    }

    /// All revisions, parents and dependencies before children (ties: file order).
    /// Every revision's id in upgrade order (parents and dependencies first): what a replay
    /// into an empty database runs, in the order it runs them.
    pub fn upgrade_order(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.id.clone()).collect()
    }

    pub fn nodes(&self) -> Vec<&RevisionNode> {
        self.nodes.iter().collect()
    }

    /// Revisions no other revision names as `down_revision`, in `nodes()` order.
    pub fn heads(&self) -> Vec<String> {
        self.ids(self.heads.iter().copied())
    }

    /// The revisions whose `down_revision` names `id` (empty for an unknown id).
    pub fn children(&self, id: &str) -> Vec<String> {
        self.index
            .get(id)
            .map(|&i| self.ids(self.children[i].iter().copied()))
            .unwrap_or_default()
    }

    /// No revision names `id` as `down_revision` (false for an unknown id).
    pub fn is_head(&self, id: &str) -> bool {
        self.index
            .get(id)
            .is_some_and(|&i| self.children[i].is_empty())
    }

    /// A head that nothing depends on either (Alembic prints `(head)` for these and
    /// `(effective head)` for heads that something depends on).
    pub fn is_real_head(&self, id: &str) -> bool {
        self.index
            .get(id)
            .is_some_and(|&i| self.succs[i].is_empty())
    }

    /// The revision with exactly this id and what the one-line formats say of it, found with
    /// one look-up (the history of a long chain asks this once per revision).
    pub fn tagged(&self, id: &str) -> Option<(&RevisionNode, Tags<'_>)> {
        let &i = self.index.get(id)?;
        let tags = Tags {
            head: self.children[i].is_empty(),
            real_head: self.succs[i].is_empty(),
            branch_point: self.children[i].len() > 1,
            merge_point: self.parents[i].len() > 1,
            labels: self.eff_labels.get(i).map_or(&[], Vec::as_slice),
            names: &self.label_names,
        };
        Some((&self.nodes[i], tags))
    }

    /// More than one revision names `id` as `down_revision`.
    pub fn is_branch_point(&self, id: &str) -> bool {
        self.index
            .get(id)
            .is_some_and(|&i| self.children[i].len() > 1)
    }

    /// `id` has more than one `down_revision`.
    pub fn is_merge_point(&self, id: &str) -> bool {
        self.index
            .get(id)
            .is_some_and(|&i| self.parents[i].len() > 1)
    }

    /// Fails on the first version-table row that no script has.
    pub fn check_known(&self, current: &[String]) -> Result<()> {
        let unknown: Vec<&String> = current
            .iter()
            .filter(|c| !self.index.contains_key(c.as_str()))
            .collect();
        let Some(first) = unknown.first() else {
            return Ok(());
        };
        let mut hint = String::from(
            "the version table names a revision that no script has: the scripts directory may be the wrong one or out of date (an old checkout?); if the revision is gone for good, reset the table with `migrate-stamp --purge <revision>`",
        );
        if unknown.len() > 1 {
            let rest: Vec<&str> = unknown[1..].iter().map(|s| s.as_str()).collect();
            hint.push_str(&format!(" (also unknown: {})", rest.join(", ")));
        }
        Err(Error::state(format!("Can't locate revision identified by '{first}'")).with_hint(hint))
    }

    /// Every revision at or below `ids` (through `down_revision` and `depends_on`), `ids`
    /// included, in upgrade order: what is applied when the version table holds `ids`.
    /// Fails like [`check_known`](Self::check_known) on an id no script has.
    pub fn ancestors(&self, ids: &[String]) -> Result<Vec<String>> {
        self.check_known(ids)?;
        let below = self.closure(&self.indices(ids), &self.preds);
        Ok(self.ids((0..self.len()).filter(|&i| below[i])))
    }

    /// Indices of the known ids in `current` (unknown ones are skipped; call `check_known`).
    fn indices(&self, current: &[String]) -> Vec<usize> {
        current
            .iter()
            .filter_map(|c| self.index.get(c.as_str()).copied())
            .collect()
    }

    fn ids(&self, it: impl Iterator<Item = usize>) -> Vec<String> {
        it.map(|i| self.nodes[i].id.clone()).collect()
    }

    fn join(&self, v: &[usize]) -> String {
        v.iter()
            .map(|&i| self.nodes[i].id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `start` and everything reachable from it through `edges`.
    fn closure(&self, start: &[usize], edges: &[Vec<usize>]) -> Vec<bool> {
        let mut seen = vec![false; self.len()];
        let mut stack: Vec<usize> = Vec::new();
        for &s in start {
            if !seen[s] {
                seen[s] = true;
                stack.push(s);
            }
        }
        while let Some(x) = stack.pop() {
            for &y in &edges[x] {
                if !seen[y] {
                    seen[y] = true;
                    stack.push(y);
                }
            }
        }
        seen
    }

    /// The members of `set` that are not strict ancestors of another member, in index order.
    fn minimal(&self, set: &[usize]) -> Vec<usize> {
        let mut strict_below: Vec<usize> = Vec::new();
        for &s in set {
            strict_below.extend(&self.preds[s]);
        }
        let below = self.closure(&strict_below, &self.preds);
        let mut member = vec![false; self.len()];
        for &s in set {
            member[s] = true;
        }
        (0..self.len())
            .filter(|&i| member[i] && !below[i])
            .collect()
    }
}

/// Every id's input index; two nodes with one id are an error naming both files.
fn index_ids(nodes: &[RevisionNode]) -> Result<HashMap<String, usize>> {
    let mut index: HashMap<String, usize> =
        HashMap::with_capacity_and_hasher(nodes.len(), Default::default());
    for (i, node) in nodes.iter().enumerate() {
        if let Some(&j) = index.get(&node.id) {
            return Err(Error::script(format!(
                "duplicate revision id '{}': in {} and in {}",
                node.id, nodes[j].source, node.source
            ))
            .with_hint("every revision needs its own id: give one of the two files a new id, or delete the copy"));
        }
        index.insert(node.id.clone(), i);
    }
    Ok(index)
}

impl Edges {
    /// Resolves every `down_revision` (to an id) and `depends_on` (to an id or a branch
    /// label); a name that resolves to nothing is an error naming the file.
    fn resolve(
        nodes: &[RevisionNode],
        index: &HashMap<String, usize>,
        labels: &HashMap<String, usize>,
    ) -> Result<Edges> {
        let n = nodes.len();
        let mut parents: Vec<Vec<usize>> = Vec::with_capacity(n);
        let mut deps: Vec<Vec<usize>> = Vec::with_capacity(n);
        for node in nodes {
            let mut ps = Vec::with_capacity(node.down_revisions.len());
            for d in &node.down_revisions {
                let Some(&p) = index.get(d) else {
                    return Err(Error::script(format!(
                        "revision {} ({}) has down_revision '{d}', but no revision has that id",
                        node.id, node.source
                    ))
                    .with_hint("fix the down_revision line, or restore the missing script"));
                };
                if !ps.contains(&p) {
                    ps.push(p);
                }
            }
            let mut ds = Vec::new();
            for d in &node.depends_on {
                let Some(&p) = index.get(d).or_else(|| labels.get(d)) else {
                    return Err(Error::script(format!(
                        "revision {} ({}) depends_on '{d}', but no revision or branch label has that name",
                        node.id, node.source
                    ))
                    .with_hint("fix the depends_on line, or restore the missing script"));
                };
                if !ps.contains(&p) && !ds.contains(&p) {
                    ds.push(p);
                }
            }
            parents.push(ps);
            deps.push(ds);
        }
        let preds: Vec<Vec<usize>> = (0..n)
            .map(|i| parents[i].iter().chain(&deps[i]).copied().collect())
            .collect();
        let mut succs: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (i, ps) in preds.iter().enumerate() {
            for &p in ps {
                succs[p].push(i);
            }
        }
        Ok(Edges {
            parents,
            deps,
            preds,
            succs,
        })
    }

    /// The upgrade order: Kahn's algorithm, smallest input index first. A cycle is an error
    /// naming one.
    fn topological_order(&self, nodes: &[RevisionNode]) -> Result<Renumbering> {
        let n = self.preds.len();
        let mut indegree: Vec<usize> = self.preds.iter().map(Vec::len).collect();
        let mut heap: BinaryHeap<Reverse<usize>> =
            (0..n).filter(|&i| indegree[i] == 0).map(Reverse).collect();
        let mut order: Vec<usize> = Vec::with_capacity(n);
        while let Some(Reverse(i)) = heap.pop() {
            order.push(i);
            for &s in &self.succs[i] {
                indegree[s] -= 1;
                if indegree[s] == 0 {
                    heap.push(Reverse(s));
                }
            }
        }
        if order.len() < n {
            return Err(cycle_error(nodes, &self.preds, &indegree));
        }
        let mut pos = vec![0usize; n];
        for (k, &i) in order.iter().enumerate() {
            pos[i] = k;
        }
        Ok(Renumbering { order, pos })
    }

    /// The newest-first order (input indices): Kahn from the heads down, depth first (like
    /// Alembic's walk: follow the first parent while it is ready, finish a branch before the
    /// next), ties by file order.
    fn newest_first(&self) -> Vec<usize> {
        let n = self.preds.len();
        let mut outdegree: Vec<usize> = self.succs.iter().map(Vec::len).collect();
        let mut ready: Vec<usize> = (0..n).rev().filter(|&i| outdegree[i] == 0).collect();
        let mut newest: Vec<usize> = Vec::with_capacity(n);
        while let Some(i) = ready.pop() {
            newest.push(i);
            for &p in self.preds[i].iter().rev() {
                outdegree[p] -= 1;
                if outdegree[p] == 0 {
                    ready.push(p);
                }
            }
        }
        newest
    }
}

/// Names one cycle among the nodes Kahn's algorithm could not order (`indegree` > 0).
fn cycle_error(nodes: &[RevisionNode], preds: &[Vec<usize>], indegree: &[usize]) -> Error {
    let stuck = |i: usize| indegree[i] > 0;
    let start = (0..nodes.len())
        .find(|&i| stuck(i))
        .expect("a node in a cycle");
    let mut at: HashMap<usize, usize> = HashMap::default();
    let mut path: Vec<usize> = Vec::new();
    let mut cur = start;
    let cycle: Vec<usize> = loop {
        if let Some(&k) = at.get(&cur) {
            break path[k..].to_vec();
        }
        at.insert(cur, path.len());
        path.push(cur);
        // Every node left over has a predecessor that is left over too.
        cur = *preds[cur]
            .iter()
            .find(|&&p| stuck(p))
            .expect("a stuck predecessor");
    };
    // `cycle` runs child -> parent; show it parent -> child, starting from the first file.
    let mut cycle: Vec<usize> = cycle.into_iter().rev().collect();
    let first = (0..cycle.len()).min_by_key(|&k| cycle[k]).unwrap_or(0);
    cycle.rotate_left(first);
    let mut names: Vec<&str> = cycle.iter().map(|&i| nodes[i].id.as_str()).collect();
    names.push(&nodes[cycle[0]].id);
    let mut files: Vec<&str> = Vec::new();
    for &i in &cycle {
        if !files.contains(&nodes[i].source.as_str()) {
            files.push(&nodes[i].source);
        }
    }
    Error::script(format!(
        "cycle in the revision graph: {} (in {})",
        names.join(" -> "),
        files.join(", ")
    ))
    .with_hint("a revision's down_revision and depends_on must name older revisions")
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod bench;
