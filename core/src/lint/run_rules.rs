//! retort's rules about how a script runs:
//!
//! | id | default | what |
//! |---|---|---|
//! | `concurrently-in-transaction` | error | `CONCURRENTLY` (index create/drop, reindex, detach partition) in a script that runs in a transaction: PostgreSQL refuses it |
//! | `backfill-with-ddl` | warning | an `UPDATE` without `WHERE`, or of a large table, in the same revision as DDL on that table: the DDL's lock is held for the whole backfill |
//! | `missing-down` | warning | no `-- migrate:down`: the revision cannot be rolled back |
//!
//! squawk's `ban-concurrent-index-creation-in-transaction` is replaced by
//! `concurrently-in-transaction`, which knows retort's `-- transactional: false` header.

use super::facts::{group, DbFacts};
use super::text::normalize_name;
use super::{first_token, Level, Raw};
use crate::script::Script;
use squawk_syntax::ast::{self, AstNode};
use squawk_syntax::SyntaxKind;

pub const RULES: &[(&str, Level)] = &[
    ("concurrently-in-transaction", Level::Error),
    ("backfill-with-ddl", Level::Warning),
    ("missing-down", Level::Warning),
];

/// From this many rows (with the database) an `UPDATE` with a `WHERE` is a backfill too.
pub const LARGE_TABLE_ROWS: u64 = 100_000;

fn table_of(n: &impl AstNode) -> String {
    normalize_name(&n.syntax().text().to_string())
}

pub fn check(script: &Script, stmts: &[ast::Stmt], facts: Option<&DbFacts>) -> Vec<Raw> {
    let mut out = Vec::new();
    let mut ddl: Vec<String> = Vec::new();
    let mut updates: Vec<(String, bool, usize)> = Vec::new();
    for stmt in stmts {
        let at = first_token(stmt.syntax());
        let concurrent_kind = matches!(
            stmt,
            ast::Stmt::CreateIndex(_)
                | ast::Stmt::DropIndex(_)
                | ast::Stmt::Reindex(_)
                | ast::Stmt::AlterTable(_)
        );
        if script.transactional && concurrent_kind {
            if let Some(tok) = stmt
                .syntax()
                .descendants_with_tokens()
                .filter_map(|e| e.into_token())
                .find(|t| t.kind() == SyntaxKind::CONCURRENTLY_KW)
            {
                out.push(Raw {
                    rule: "concurrently-in-transaction",
                    offset: usize::from(tok.text_range().start()),
                    stmt: at,
                    message: "CONCURRENTLY cannot run inside a transaction block, and this script runs in one: PostgreSQL will refuse it".into(),
                    help: Some("put the statement in its own revision whose header says `-- transactional: false` (retort then runs it statement by statement, outside a transaction)".into()),
                });
            }
        }
        match stmt {
            ast::Stmt::AlterTable(a) => {
                if let Some(t) = a.table_relation_name().and_then(|r| r.table_name_ref()) {
                    ddl.push(table_of(&t));
                }
            }
            ast::Stmt::CreateIndex(ci) => {
                if let Some(t) = ci.table_relation_name().and_then(|r| r.table_name_ref()) {
                    ddl.push(table_of(&t));
                }
            }
            ast::Stmt::Update(u) => {
                if let Some(r) = u.relation_name().and_then(|r| r.relation_name_ref()) {
                    updates.push((table_of(&r), u.where_clause_or_current_of().is_some(), at));
                }
            }
            _ => {}
        }
    }
    for (table, has_where, at) in updates {
        if !ddl.contains(&table) {
            continue;
        }
        let rows = facts.and_then(|f| f.rows(&table));
        let large = rows.map(|r| r.count >= LARGE_TABLE_ROWS).unwrap_or(false);
        if has_where && !large {
            continue;
        }
        let what = if has_where {
            format!(
                "an UPDATE of {table}, which holds {} (at least {})",
                rows.map(|r| r.describe()).unwrap_or_default(),
                group(LARGE_TABLE_ROWS)
            )
        } else {
            format!("an UPDATE of every row of {table} (no WHERE)")
        };
        out.push(Raw {
            rule: "backfill-with-ddl",
            offset: at,
            stmt: at,
            message: format!("{what} in the same revision as DDL on {table}: the DDL's lock is held until the backfill commits, blocking reads and writes of {table} meanwhile"),
            help: Some("do the schema change in one revision, and the backfill in a later one, in batches (UPDATE ... WHERE id BETWEEN ...), outside the DDL's transaction".into()),
        });
    }
    if script.down.is_none() && !stmts.is_empty() {
        out.push(Raw {
            rule: "missing-down",
            offset: stmts.first().map(|s| first_token(s.syntax())).unwrap_or(0),
            stmt: 0,
            message: format!("revision {} has no `-- migrate:down` section: it cannot be rolled back", script.revision),
            help: Some("add `-- migrate:down` with the statements that undo the up section (`migrate-check --round-trip` tests them)".into()),
        });
    }
    out
}
