//! Check steps and the contract phase: two header keys that let a chain of ordinary revisions
//! stop where a person must decide.
//!
//! `-- check: recall <table>.<column> [threshold=0.9] [k=10] [queries=100] [index=NAME]` makes the revision
//! a measurement: its up section holds no SQL (comments only), and applying it measures the
//! recall of the column's ANN index against exact search (what `migrate-check --recall` does)
//! and fails the step — the revision stays unrecorded, the run stops there — when the mean
//! recall is below the threshold. A vector swap's check step is one: building a new index
//! over new embeddings can succeed and still find the wrong neighbours.
//!
//! `-- phase: contract` marks a revision that removes what the application may still read
//! (the old column of a swap). `migrate-up` stops before the first such revision unless asked
//! (`--contract`), because the application has to move first; `migrate-check` reports it as
//! "contract pending".

use super::parse::err_at;
use super::{split_statements, Section};
use crate::error::Result;
use std::path::Path;

/// `-- check: recall ...`: what the step measures and the recall it needs.
#[derive(Debug, Clone, PartialEq)]
pub struct RecallCheck {
    /// `table.column` or `schema.table.column`, as written.
    pub target: String,
    /// The lowest mean recall@k that passes.
    pub threshold: f64,
    /// Neighbours compared per query.
    pub k: usize,
    /// Queries sampled from the column's own vectors.
    pub queries: usize,
    /// `index=<name>`: measure this index (an expression index over the column, say) rather
    /// than the first ANN index on the column.
    pub index: Option<String>,
    /// The header line.
    pub line: usize,
}

impl Eq for RecallCheck {}

impl RecallCheck {
    /// The header value as written back and as the checksum covers it.
    pub fn header_text(&self) -> String {
        let mut s = format!(
            "recall {} threshold={} k={} queries={}",
            self.target, self.threshold, self.k, self.queries
        );
        if let Some(i) = &self.index {
            s.push_str(&format!(" index={i}"));
        }
        s
    }
}

/// The phase a revision belongs to (`-- phase:`); only `contract` changes how a run treats it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Phase {
    /// No `-- phase:` line, or `expand`.
    #[default]
    Ordinary,
    /// `-- phase: contract`: `migrate-up` stops before it unless `--contract` is given.
    Contract,
}

/// Reads `-- phase: <value>` at `line`.
pub(super) fn read_phase(path: &Path, line: usize, value: &str) -> Result<Phase> {
    match value.trim().to_ascii_lowercase().as_str() {
        "contract" => Ok(Phase::Contract),
        "expand" => Ok(Phase::Ordinary),
        other => Err(err_at(
            path,
            line,
            format_args!("phase must be 'expand' or 'contract', not '{other}'"),
        )
        .with_hint(
            "'-- phase: contract' marks a revision migrate-up runs only with --contract \
                     (after the application moved); remove the line for an ordinary revision",
        )),
    }
}

/// Reads `-- check: recall <table>.<column> [threshold=X] [k=N] [queries=N]` at `line`, and
/// checks that the up section holds no statement.
pub(super) fn read_check(
    path: &Path,
    line: usize,
    value: &str,
    up: &Section,
) -> Result<RecallCheck> {
    let bad = |what: String| {
        err_at(path, line, format_args!("check: {what}")).with_hint(
            "write '-- check: recall <table>.<column>' with optional 'threshold=0.9', 'k=10', \
             'queries=100' (e.g. '-- check: recall chunks.embedding_v2 threshold=0.95')",
        )
    };
    let mut words = value.split_whitespace();
    match words.next() {
        Some("recall") => {}
        Some(other) => {
            return Err(bad(format!(
                "unknown check '{other}' (the one check is 'recall')"
            )))
        }
        None => return Err(bad("the check is missing".into())),
    }
    let Some(target) = words.next() else {
        return Err(bad("the table and column are missing".into()));
    };
    let parts: Vec<&str> = target.split('.').collect();
    if !(2..=3).contains(&parts.len()) || !parts.iter().all(|p| is_identifier(p)) {
        return Err(bad(format!(
            "'{target}' is not <table>.<column> or <schema>.<table>.<column> (plain identifiers)"
        )));
    }
    let mut check = RecallCheck {
        target: target.to_string(),
        threshold: 0.9,
        k: 10,
        queries: 100,
        index: None,
        line,
    };
    let mut seen: Vec<&str> = Vec::new();
    for w in words {
        let Some((name, v)) = w.split_once('=') else {
            return Err(bad(format!("'{w}' is not name=value")));
        };
        if seen.contains(&name) {
            return Err(bad(format!("{name}= is given twice")));
        }
        seen.push(name);
        match name {
            "threshold" => match v.parse::<f64>() {
                Ok(t) if (0.0..=1.0).contains(&t) => check.threshold = t,
                _ => {
                    return Err(bad(format!(
                        "threshold must be a share between 0 and 1, not '{v}'"
                    )))
                }
            },
            "k" | "queries" => match v.parse::<usize>() {
                Ok(n) if n > 0 && name == "k" => check.k = n,
                Ok(n) if n > 0 => check.queries = n,
                _ => {
                    return Err(bad(format!(
                        "{name} must be a whole number above 0, not '{v}'"
                    )))
                }
            },
            "index" if is_identifier(v) => check.index = Some(v.to_string()),
            "index" => return Err(bad(format!("index must be an index name, not '{v}'"))),
            _ => {
                return Err(bad(format!(
                    "unknown option '{name}' (the options are threshold=, k=, queries=, index=)"
                )))
            }
        }
    }
    if up.program.is_some() {
        return Err(err_at(
            path,
            up.line,
            "a check step's up section cannot be a program",
        )
        .with_hint("put the program in a revision of its own, before the check"));
    }
    if let Some(stmt) = split_statements(&up.sql, up.line).first() {
        return Err(err_at(
            path,
            stmt.line,
            "SQL in the up section of a check step: the step measures, it changes nothing",
        )
        .with_hint("move the SQL to a revision of its own, before or after the check"));
    }
    Ok(check)
}

fn is_identifier(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(sql: &str) -> Section {
        Section {
            sql: sql.to_string(),
            line: 5,
            program: None,
        }
    }

    #[test]
    fn a_recall_check_reads_its_options_and_defaults() {
        let p = Path::new("m/004_check.sql");
        let c = read_check(
            p,
            3,
            "recall chunks.embedding_v2",
            &section("-- measured\n"),
        )
        .unwrap();
        assert_eq!((c.threshold, c.k, c.queries), (0.9, 10, 100));
        assert_eq!(c.target, "chunks.embedding_v2");
        let c = read_check(
            p,
            3,
            "recall app.chunks.e threshold=0.95 k=5 queries=20 index=chunks_half",
            &section(""),
        )
        .unwrap();
        assert_eq!((c.threshold, c.k, c.queries), (0.95, 5, 20));
        assert_eq!(c.index.as_deref(), Some("chunks_half"));
        assert_eq!(
            c.header_text(),
            "recall app.chunks.e threshold=0.95 k=5 queries=20 index=chunks_half"
        );
    }

    #[test]
    fn a_wrong_check_names_its_file_and_line() {
        let p = Path::new("m/004_check.sql");
        for (value, want) in [
            ("precision t.c", "unknown check 'precision'"),
            ("recall", "the table and column are missing"),
            ("recall t", "'t' is not <table>.<column>"),
            ("recall t.c threshold=2", "threshold must be a share"),
            ("recall t.c k=0", "k must be a whole number above 0"),
            ("recall t.c k=3 k=4", "k= is given twice"),
            ("recall t.c probes=3", "unknown option 'probes'"),
        ] {
            let e = read_check(p, 3, value, &section("")).unwrap_err();
            assert!(
                e.message.starts_with("m/004_check.sql:3: check: "),
                "{}",
                e.message
            );
            assert!(e.message.contains(want), "{value}: {}", e.message);
        }
        let e = read_check(p, 3, "recall t.c", &section("\nSELECT 1;\n")).unwrap_err();
        assert!(
            e.message
                .starts_with("m/004_check.sql:6: SQL in the up section"),
            "{}",
            e.message
        );
    }

    #[test]
    fn phases_are_expand_or_contract() {
        let p = Path::new("m/005.sql");
        assert_eq!(read_phase(p, 2, "contract").unwrap(), Phase::Contract);
        assert_eq!(read_phase(p, 2, "Expand").unwrap(), Phase::Ordinary);
        let e = read_phase(p, 2, "switch").unwrap_err();
        assert!(
            e.message.contains("m/005.sql:2: phase must be"),
            "{}",
            e.message
        );
    }
}
