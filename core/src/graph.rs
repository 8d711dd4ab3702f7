//! STUB — being replaced by the graph helper. Signatures are the contract.
use crate::error::Result;
use crate::plan::Plan;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevisionNode {
    pub id: String,
    pub down_revisions: Vec<String>,
    pub depends_on: Vec<String>,
    pub branch_labels: Vec<String>,
    pub message: String,
    pub source: String,
}

#[derive(Debug, Clone)]
pub struct RevisionGraph {}

impl RevisionGraph {
    pub fn new(_nodes: Vec<RevisionNode>) -> Result<Self> { todo!() }
    pub fn len(&self) -> usize { todo!() }
    pub fn is_empty(&self) -> bool { todo!() }
    pub fn get(&self, _id: &str) -> Option<&RevisionNode> { todo!() }
    pub fn nodes(&self) -> Vec<&RevisionNode> { todo!() }
    pub fn heads(&self) -> Vec<String> { todo!() }
    pub fn bases(&self) -> Vec<String> { todo!() }
    pub fn children(&self, _id: &str) -> Vec<String> { todo!() }
    pub fn is_branch_point(&self, _id: &str) -> bool { todo!() }
    pub fn is_merge_point(&self, _id: &str) -> bool { todo!() }
    pub fn branch_labels_of(&self, _id: &str) -> Vec<String> { todo!() }
    pub fn resolve(&self, _ident: &str) -> Result<String> { todo!() }
    pub fn check_known(&self, _current: &[String]) -> Result<()> { todo!() }
    pub fn upgrade_plan(&self, _current: &[String], _target: &str) -> Result<Plan> { todo!() }
    pub fn downgrade_plan(&self, _current: &[String], _target: &str) -> Result<Plan> { todo!() }
    pub fn stamp_heads(&self, _current: &[String], _targets: &[String]) -> Result<Vec<String>> { todo!() }
    pub fn effective_heads(&self, _current: &[String]) -> Vec<String> { todo!() }
    pub fn history_range(&self, _range: Option<&str>, _current: &[String]) -> Result<Vec<String>> { todo!() }
}
