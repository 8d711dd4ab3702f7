//! Backfill steps: `-- backfill: <table>.<key column> [batch=N]` in a script's header makes its
//! up section a data change run range after range of the key, each range in its own
//! transaction with its checkpoint (the engine is `crate::exec::backfill`). This module reads
//! and checks the header and the up section, so a wrong backfill is refused when the scripts
//! load, with the file and line, before anything runs:
//!
//! ```sql
//! -- revision: 0043
//! -- down_revision: 0042
//! -- backfill: documents.id batch=5000
//!
//! -- migrate:up
//! UPDATE documents SET title_lower = lower(title) WHERE id >= :start AND id < :end;
//!
//! -- migrate:down
//! SELECT 1;
//! ```
//!
//! The up section is either a program step (`-- run: <command>`, its only content: the program is
//! the backfill's worker, handed one range after another, see `crate::exec::backfill_worker`)
//! or exactly one data-changing statement (`UPDATE`, `DELETE`, `INSERT`,
//! `MERGE`, or a `WITH` ending in one of them) that uses both `:start` (inclusive) and `:end`
//! (exclusive). They are replaced by the range's bounds as literals wherever they appear as
//! words (a `::start` cast or `x:starts` is left alone; so is nothing else — do not write them
//! inside a string). The down section is an ordinary section.

use super::parse::err_at;
use super::{split_statements, Program, Section};
use crate::error::Result;
use std::path::Path;

/// A script's `-- backfill:` header and its checked up statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backfill {
    /// The table as written: `documents` or `app.documents` (unquoted identifiers, so
    /// PostgreSQL folds them to lower case).
    pub table: String,
    /// The key column as written.
    pub key: String,
    /// `batch=N`: the first range's width in key units (integer keys: N values; timestamp
    /// keys: N seconds). None: the engine's default.
    pub batch: Option<u64>,
    /// The header line (errors about the key, found when the step starts, point here).
    pub line: usize,
    /// The up section's one statement, with `:start` and `:end` in it (empty for a worker).
    pub statement: String,
    /// The statement's file line (the `-- run:` line for a worker).
    pub statement_line: usize,
    /// `-- run: <command>` as the up section: the program that does each range's writes
    /// (started once, handed the ranges over a line protocol).
    pub worker: Option<Program>,
}

impl Backfill {
    /// The header value as the checksum covers it: `documents.id batch=5000`.
    pub fn header_text(&self) -> String {
        match self.batch {
            Some(n) => format!("{}.{} batch={n}", self.table, self.key),
            None => format!("{}.{}", self.table, self.key),
        }
    }

    /// The statement for one range: `:start` and `:end` replaced by `start` and `end` (SQL
    /// literals or expressions).
    pub fn statement_for(&self, start: &str, end: &str) -> String {
        replace_word(&replace_word(&self.statement, ":start", start), ":end", end)
    }
}

/// Reads `-- backfill: <table>.<key> [batch=N]` (at `line`) and checks the up section.
pub(super) fn read(path: &Path, line: usize, value: &str, up: &Section) -> Result<Backfill> {
    let bad = |what: String| {
        err_at(path, line, format_args!("backfill: {what}")).with_hint(
            "write '-- backfill: <table>.<key column>' with an optional 'batch=N' \
             (e.g. '-- backfill: documents.id batch=5000'; a schema may come first: app.documents.id)",
        )
    };
    let mut words = value.split_whitespace();
    let Some(target) = words.next() else {
        return Err(bad("the table and key column are missing".into()));
    };
    let parts: Vec<&str> = target.split('.').collect();
    if !(2..=3).contains(&parts.len()) || !parts.iter().all(|p| is_identifier(p)) {
        return Err(bad(format!(
            "'{target}' is not <table>.<key column> or <schema>.<table>.<key column> (plain identifiers)"
        )));
    }
    let key = parts[parts.len() - 1].to_string();
    let table = parts[..parts.len() - 1].join(".");
    let mut batch = None;
    for w in words {
        match w.split_once('=') {
            Some(("batch", n)) => match n.parse::<u64>() {
                Ok(n) if n > 0 && batch.is_none() => batch = Some(n),
                Ok(n) if n > 0 => return Err(bad("batch= is given twice".into())),
                _ => {
                    return Err(bad(format!(
                        "batch must be a whole number above 0, not '{n}'"
                    )))
                }
            },
            _ => {
                return Err(bad(format!(
                    "unknown option '{w}' (the one option is batch=N)"
                )))
            }
        }
    }
    if let Some(program) = &up.program {
        return Ok(Backfill {
            table,
            key,
            batch,
            line,
            statement: String::new(),
            statement_line: program.line,
            worker: Some(program.clone()),
        });
    }
    let stmts = split_statements(&up.sql, up.line);
    let one = |msg: String, at: usize| {
        err_at(path, at, msg).with_hint(
            "the up section of a backfill is one UPDATE/DELETE/INSERT statement over the key range, \
             e.g. 'UPDATE documents SET ... WHERE id >= :start AND id < :end;' \
             (schema changes go in a revision of their own, before it)",
        )
    };
    let stmt = match stmts.as_slice() {
        [] => {
            return Err(one(
                "the backfill's up section has no statement".into(),
                up.line,
            ))
        }
        [s] => s,
        [_, second, ..] => {
            return Err(one(
                format!(
                    "the backfill's up section has {} statements; it must be one",
                    stmts.len()
                ),
                second.line,
            ))
        }
    };
    let first = stmt
        .sql
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or("")
        .to_ascii_uppercase();
    if !["UPDATE", "DELETE", "INSERT", "MERGE", "WITH"].contains(&first.as_str()) {
        return Err(one(
            format!("a backfill runs a data change (UPDATE, DELETE, INSERT, MERGE), not '{first}'"),
            stmt.line,
        ));
    }
    for p in [":start", ":end"] {
        if !has_word(&stmt.sql, p) {
            return Err(one(
                format!("the backfill's statement does not use {p}"),
                stmt.line,
            ));
        }
    }
    Ok(Backfill {
        table,
        key,
        batch,
        line,
        statement: stmt.sql.clone(),
        statement_line: stmt.line,
        worker: None,
    })
}

/// A plain SQL identifier: a letter or `_`, then letters, digits, `_` or `$`.
fn is_identifier(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

fn ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$'
}

/// Where `word` (`:start`) occurs on its own: not after another `:` or an identifier
/// character, not before an identifier character.
fn word_positions(text: &str, word: &str) -> Vec<usize> {
    let b = text.as_bytes();
    text.match_indices(word)
        .map(|(i, _)| i)
        .filter(|&i| {
            let before = i.checked_sub(1).map(|j| b[j]);
            let after = b.get(i + word.len()).copied();
            !before.is_some_and(|c| c == b':' || ident_char(c)) && !after.is_some_and(ident_char)
        })
        .collect()
}

fn has_word(text: &str, word: &str) -> bool {
    !word_positions(text, word).is_empty()
}

fn replace_word(text: &str, word: &str, with: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for i in word_positions(text, word) {
        out.push_str(&text[last..i]);
        out.push_str(with);
        last = i + word.len();
    }
    out.push_str(&text[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    fn bf(header: &str, up: &str) -> String {
        format!("-- revision: 002\n-- down_revision: 001\n-- backfill: {header}\n\n-- migrate:up\n{up}\n\n-- migrate:down\nSELECT 1;\n")
    }

    #[test]
    fn reads_the_header_and_the_statement() {
        let s = p(&bf(
            "documents.id batch=5000",
            "UPDATE documents SET t = lower(t) WHERE id >= :start AND id < :end;",
        ))
        .unwrap();
        let b = s.backfill.unwrap();
        assert_eq!((b.table.as_str(), b.key.as_str()), ("documents", "id"));
        assert_eq!(b.batch, Some(5000));
        assert_eq!((b.line, b.statement_line), (3, 6));
        assert_eq!(
            b.statement_for("10", "20"),
            "UPDATE documents SET t = lower(t) WHERE id >= 10 AND id < 20"
        );
        let s = p(&bf(
            "app.documents.created_at",
            "DELETE FROM app.documents WHERE created_at >= :start AND created_at < :end AND x::start_t = 1",
        ))
        .unwrap();
        let b = s.backfill.unwrap();
        assert_eq!(
            (b.table.as_str(), b.key.as_str(), b.batch),
            ("app.documents", "created_at", None)
        );
        assert!(b.statement_for("'a'", "'b'").contains("x::start_t"));
    }

    #[test]
    fn a_run_line_makes_the_program_the_backfills_worker() {
        let s = p(&bf(
            "documents.id batch=200",
            "-- the model is loaded once\n-- run: python embed.py --model small",
        ))
        .unwrap();
        let b = s.backfill.unwrap();
        let w = b.worker.clone().expect("a worker");
        assert_eq!(w.command, "python embed.py --model small");
        assert_eq!((w.line, b.statement_line), (7, 7));
        assert!(b.statement.is_empty());
        assert_eq!(b.header_text(), "documents.id batch=200");
        // SQL beside the run line is refused as in any program step
        let e = perr(&bf(
            "documents.id",
            "-- run: python embed.py\nUPDATE t SET a = 1 WHERE id >= :start AND id < :end;",
        ));
        assert!(e.message.contains("SQL beside '-- run:'"), "{e}");
    }

    #[test]
    fn a_wrong_backfill_is_an_error_at_its_line() {
        let cases = [
            (
                "documents",
                "UPDATE t SET a = 1 WHERE id >= :start AND id < :end",
                "documents",
                3,
            ),
            (
                "documents.id batch=0",
                "UPDATE t SET a = 1 WHERE id >= :start AND id < :end",
                "batch must be",
                3,
            ),
            (
                "documents.id size=5",
                "UPDATE t SET a = 1 WHERE id >= :start AND id < :end",
                "unknown option",
                3,
            ),
            (
                "documents.id",
                "UPDATE t SET a = 1 WHERE id >= :start",
                "does not use :end",
                6,
            ),
            (
                "documents.id",
                "UPDATE t SET a = 1 WHERE id >= :start AND id < :end;\nUPDATE t SET b = 1",
                "2 statements",
                7,
            ),
            (
                "documents.id",
                "ALTER TABLE t ADD COLUMN :start int, :end",
                "not 'ALTER'",
                6,
            ),
            ("documents.id", "-- nothing", "no statement", 6),
        ];
        for (header, up, want, line) in cases {
            let e = perr(&bf(header, up));
            assert!(e.message.contains(want), "{header} / {up}: {e}");
            assert!(
                e.message
                    .starts_with(&format!("migrations/002_x.sql:{line}:")),
                "{header} / {up}: {e}"
            );
        }
        let e = perr(&format!(
            "-- revision: 002\n-- transactional: false\n-- backfill: t.id\n-- migrate:up\n{}\n",
            "UPDATE t SET a = 1 WHERE id >= :start AND id < :end;"
        ));
        assert!(e.message.contains("transactional: false"), "{e}");
    }

    #[test]
    fn the_checksum_covers_the_backfill_header() {
        let up = "UPDATE documents SET t = 1 WHERE id >= :start AND id < :end;";
        let a = p(&bf("documents.id batch=5000", up)).unwrap();
        let b = p(&bf("documents.id batch=100", up)).unwrap();
        let c = p(&bf("documents.id   batch=5000", up)).unwrap();
        let plain = p(&bf("documents.id", up)).unwrap();
        assert_ne!(a.checksum, b.checksum);
        assert_ne!(a.checksum, plain.checksum);
        assert_eq!(a.checksum, c.checksum, "spacing is cosmetic");
    }
}
