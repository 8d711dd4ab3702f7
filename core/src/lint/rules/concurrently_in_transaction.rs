//! `concurrently-in-transaction` (error, script): `CONCURRENTLY` (index create/drop, reindex,
//! detach partition) in a script retort runs in a transaction (no `-- transactional: false`):
//! PostgreSQL refuses it. Replaces squawk's `ban-concurrent-index-creation-in-transaction`,
//! which does not know retort's header.

use super::{Concern, Meta, Raw, Rule, StmtCx};
use crate::lint::Level;
use squawk_linter::Rule as SquawkRule;
use squawk_syntax::ast::{self, AstNode};
use squawk_syntax::SyntaxKind;

pub static META: Meta = Meta {
    replaces: &[SquawkRule::BanConcurrentIndexCreationInTransaction],
    ..Meta::new("concurrently-in-transaction", Level::Error, Concern::Script)
};

pub struct ConcurrentlyInTransaction;

impl Rule for ConcurrentlyInTransaction {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn statement(&mut self, cx: &StmtCx, out: &mut Vec<Raw>) {
        let concurrent_kind = matches!(
            cx.stmt,
            ast::Stmt::CreateIndex(_)
                | ast::Stmt::DropIndex(_)
                | ast::Stmt::Reindex(_)
                | ast::Stmt::AlterTable(_)
        );
        if !cx.script.transactional || !concurrent_kind {
            return;
        }
        if let Some(tok) = cx
            .stmt
            .syntax()
            .descendants_with_tokens()
            .filter_map(|e| e.into_token())
            .find(|t| t.kind() == SyntaxKind::CONCURRENTLY_KW)
        {
            out.push(Raw::new(
                &META,
                usize::from(tok.text_range().start()),
                cx.at,
                "CONCURRENTLY cannot run inside a transaction block, and this script runs in one: PostgreSQL will refuse it".into(),
                "put the statement in its own revision whose header says `-- transactional: false` (retort then runs it statement by statement, outside a transaction)",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::*;

    #[test]
    fn concurrently_in_a_transactional_script() {
        let f = lint_after(
            CHUNKS,
            "",
            "CREATE INDEX CONCURRENTLY chunks_id ON chunks (id);",
        );
        let hit = f
            .iter()
            .find(|f| f.rule == "concurrently-in-transaction")
            .expect("finding");
        assert_eq!((hit.line, hit.col), (4, 14));
        assert!(
            !rules(&f).contains(&"ban-concurrent-index-creation-in-transaction"),
            "{f:?}"
        );
        let safe = lint_after(
            CHUNKS,
            "-- transactional: false",
            "CREATE INDEX CONCURRENTLY chunks_id ON chunks (id);",
        );
        assert!(
            !rules(&safe).contains(&"concurrently-in-transaction"),
            "{safe:?}"
        );
    }
}
