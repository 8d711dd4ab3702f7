//! What the rules' tests share: a script from its parts, and the lint of a revision 002 after a
//! revision 001 (no database).

pub use super::model::Model;
pub use super::{lint_script, Finding, Level, LintConfig};
use crate::script::{parse_script, Script};
use std::path::Path;

pub const CHUNKS: &str =
    "CREATE TABLE chunks (id bigint PRIMARY KEY, embedding vector(384), small halfvec(384));";

pub fn script(rev: &str, header: &str, up: &str, down: Option<&str>) -> Script {
    let mut t = format!("-- revision: {rev}\n{header}\n-- migrate:up\n{up}\n");
    if let Some(d) = down {
        t.push_str(&format!("-- migrate:down\n{d}\n"));
    }
    parse_script(Path::new(&format!("migrations/{rev}.sql")), t.as_bytes()).unwrap()
}

/// Lints `up` as revision 002 after a revision 001 that created `base` (no database).
pub fn lint_after(base: &str, header: &str, up: &str) -> Vec<Finding> {
    let cfg = LintConfig::default();
    let mut model = Model::default();
    let first = script("001", "", base, Some("SELECT 1;"));
    lint_script(&first, &mut model, None, &cfg, false);
    let s = script("002", header, up, Some("SELECT 1;"));
    lint_script(&s, &mut model, None, &cfg, true).0
}

pub fn rules(f: &[Finding]) -> Vec<&str> {
    f.iter().map(|f| f.rule.as_str()).collect()
}
