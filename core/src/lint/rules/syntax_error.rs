//! `syntax-error` (warning, script): a statement squawk's parser cannot read is **not
//! linted**. squawk's parser does not know every PostgreSQL syntax, so such a statement never
//! blocks a run: the finding names the file and line, and PostgreSQL judges the statement when
//! it runs (a real mistake fails there, with PostgreSQL's own error, file and line). No other
//! rule speaks about a statement that was not read ([`unread`]): what the parser's recovery
//! made of it is not the statement.

use super::{Concern, Meta, Raw, Rule, ScriptCx};
use crate::lint::{first_token, statement_start, Level};
use squawk_syntax::ast::AstNode;
use std::ops::Range;

pub static META: Meta = Meta::new("syntax-error", Level::Warning, Concern::Script);

pub struct SyntaxError;

impl Rule for SyntaxError {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn finish(&mut self, cx: &ScriptCx, out: &mut Vec<Raw>) {
        // After a syntax error the parser's recovery reports every token up to the next
        // statement it recognises: the first error of each stretch is the one that matters.
        let starts: Vec<usize> = cx.stmts.iter().map(|s| first_token(s.syntax())).collect();
        let mut last_error: Option<usize> = None;
        for e in cx.parse.errors() {
            let at = usize::from(e.range().start());
            if let Some(prev) = last_error {
                if !starts.iter().any(|&s| s > prev && s <= at) {
                    continue;
                }
            }
            last_error = Some(at);
            out.push(Raw::new(
                &META,
                at,
                unread_statement(&cx.script.up.sql, at)
                    .map_or_else(|| statement_start(cx.stmts, at), |s| s.start),
                format!(
                    "not linted: squawk's parser cannot read this statement ({}); PostgreSQL judges it when the migration runs",
                    e.message()
                ),
                "if it is a mistake, the run stops on it with PostgreSQL's error and this file and line; if it is valid SQL squawk does not know yet, nothing to do (`-- retort:allow syntax-error <reason>` silences this warning)",
            ));
        }
    }
}

/// The statement (as retort's splitter finds it, the way PostgreSQL will receive it) that holds
/// byte `at`, its `;` included.
fn unread_statement(sql: &str, at: usize) -> Option<Range<usize>> {
    crate::sql::split::split(sql, 0)
        .into_iter()
        .map(|s| s.start..s.end + 1)
        .find(|s| s.start <= at && at < s.end.max(s.start + 1))
}

/// The statements of the section that were not read: each holding a syntax error.
pub fn unread(raw: &[Raw], sql: &str) -> Vec<Range<usize>> {
    raw.iter()
        .filter(|r| r.rule.is(&META))
        .filter_map(|r| unread_statement(sql, r.offset))
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::*;

    #[test]
    fn a_statement_the_parser_cannot_read_is_a_warning_with_its_position() {
        let f = lint_after(
            "SELECT 1;",
            "",
            "CREATE TABLE t (id bigint PRIMARY KEY);\nCREATE TABL oops (x int);",
        );
        let hit = f
            .iter()
            .find(|f| f.rule == "syntax-error")
            .expect("finding");
        assert_eq!(hit.level, Level::Warning);
        assert_eq!(hit.line, 5, "{hit:?}");
        assert!(hit.message.starts_with("not linted: "), "{hit:?}");
    }

    #[test]
    fn a_typo_never_makes_an_error_level_finding() {
        for up in [
            "CREATE INDX items_name ON items (name);",
            "CREATE INDEX items_name ON items (name) WITH BROKEN;",
            "ALTER TABLE items ALTER COLUM name TYPE varchar(3);",
        ] {
            let f = lint_after("CREATE TABLE items (id bigint, name text);", "", up);
            assert!(f.iter().all(|f| f.level != Level::Error), "{up}: {f:?}");
            assert!(rules(&f).contains(&"syntax-error"), "{up}: {f:?}");
        }
    }
}
