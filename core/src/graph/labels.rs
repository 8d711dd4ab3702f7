//! Branch labels: names a revision declares (`-- branch_labels: feat`) so that targets can say
//! `feat@head`. A label is checked once, when the graph is built (unique, not a revision id),
//! then spread to the revisions it applies to, following Alembic's rule, so that
//! `migrate-history` and `X@...` targets agree with Alembic.

use rustc_hash::FxHashMap as HashMap;

use super::{RevisionGraph, RevisionNode};
use crate::error::{Error, Result};

/// Every branch label's declaring revision (input index). A label declared twice, or equal to
/// a revision id, is an error naming the revisions and files.
pub(super) fn index_labels(
    nodes: &[RevisionNode],
    index: &HashMap<String, usize>,
) -> Result<HashMap<String, usize>> {
    let mut labels: HashMap<String, usize> = HashMap::default();
    for (i, node) in nodes.iter().enumerate() {
        for label in &node.branch_labels {
            if let Some(&j) = index.get(label) {
                return Err(Error::script(format!(
                    "branch label '{label}' of revision {} ({}) is also the id of revision {} ({})",
                    node.id, node.source, nodes[j].id, nodes[j].source
                ))
                .with_hint("rename the branch label"));
            }
            match labels.get(label) {
                Some(&j) if j == i => {}
                Some(&j) => {
                    return Err(Error::script(format!(
                        "branch label '{label}' is used by two revisions: {} ({}) and {} ({})",
                        nodes[j].id, nodes[j].source, node.id, node.source
                    ))
                    .with_hint(
                        "a branch label names one branch: remove it from one of the two revisions",
                    ));
                }
                None => {
                    labels.insert(label.clone(), i);
                }
            }
        }
    }
    Ok(labels)
}

impl RevisionGraph {
    /// Effective branch labels, sorted: a label declared on R applies to R, all R's
    /// descendants, and R's ancestors up to (excluding) the nearest branch point or merge point.
    pub fn branch_labels_of(&self, id: &str) -> Vec<String> {
        match self.index.get(id) {
            Some(&i) => self.eff_labels[i]
                .iter()
                .map(|&l| self.label_names[l as usize].clone())
                .collect(),
            None => Vec::new(),
        }
    }

    /// Effective labels (Alembic's rule): a label declared on R applies to R, to all of R's
    /// descendants (by `down_revision`), and to R's ancestors up to, not including, the nearest
    /// branch point or merge point.
    pub(super) fn compute_labels(&mut self) {
        let n = self.len();
        let mut names: Vec<String> = self.labels.keys().cloned().collect();
        names.sort();
        let id_of: HashMap<&str, u32> = names
            .iter()
            .enumerate()
            .map(|(k, s)| (s.as_str(), k as u32))
            .collect();
        let mut eff: Vec<Vec<u32>> = vec![Vec::new(); n];
        if !names.is_empty() {
            for i in 0..n {
                let mut set: Vec<u32> = Vec::new();
                for &p in &self.parents[i] {
                    set.extend_from_slice(&eff[p]);
                }
                set.extend(
                    self.nodes[i]
                        .branch_labels
                        .iter()
                        .map(|l| id_of[l.as_str()]),
                );
                if !set.is_empty() {
                    set.sort_unstable();
                    set.dedup();
                }
                eff[i] = set;
            }
            for i in 0..n {
                for label in &self.nodes[i].branch_labels {
                    let l = id_of[label.as_str()];
                    let mut cur = i;
                    while self.parents[cur].len() == 1 {
                        let p = self.parents[cur][0];
                        if self.children[p].len() > 1 || self.parents[p].len() > 1 {
                            break;
                        }
                        if let Err(k) = eff[p].binary_search(&l) {
                            eff[p].insert(k, l);
                        }
                        cur = p;
                    }
                }
            }
        }
        self.label_names = names;
        self.eff_labels = eff;
    }
}
