//! STUB — being replaced by the script helper. Signatures are the contract.
use crate::error::Result;
use crate::graph::RevisionNode;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section { pub sql: String, pub line: usize }

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    pub path: PathBuf,
    pub revision: String,
    pub down_revisions: Vec<String>,
    pub depends_on: Vec<String>,
    pub branch_labels: Vec<String>,
    pub message: String,
    pub created: Option<String>,
    pub transactional: bool,
    pub up: Section,
    pub down: Option<Section>,
    pub checksum: String,
}

impl Script {
    pub fn to_node(&self) -> RevisionNode { todo!() }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement { pub sql: String, pub line: usize }

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewScript {
    pub revision: String,
    pub down_revisions: Vec<String>,
    pub depends_on: Vec<String>,
    pub branch_labels: Vec<String>,
    pub message: String,
    pub created: String,
    pub transactional: bool,
    pub up_sql: String,
    pub down_sql: String,
}

pub fn parse_script(_path: &Path, _bytes: &[u8]) -> Result<Script> { todo!() }
pub fn load_scripts(_dir: &Path) -> Result<Vec<Script>> { todo!() }
pub fn checksum(_text: &str) -> String { todo!() }
pub fn split_statements(_sql: &str, _first_line: usize) -> Vec<Statement> { todo!() }
pub fn render_script(_n: &NewScript) -> String { todo!() }
pub fn file_name_for(_revision: &str, _message: &str) -> String { todo!() }
pub fn validate_revision_id(_id: &str) -> Result<()> { todo!() }
