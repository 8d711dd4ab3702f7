//! `unbatched-update` (warning, data, with a database): an `UPDATE` or `DELETE` without
//! `WHERE` of a table that holds many rows ([`LARGE_TABLE_ROWS`] or more, as the database
//! says) in an ordinary revision. One statement over every row holds their row locks until it
//! commits (a concurrent write to any of them waits that long), writes all its WAL at once (the
//! replicas fall behind), and on failure at 90 % leaves nothing done. A backfill step
//! (`-- backfill: <table>.<key>`) does the same change range by range, each range committed
//! with its checkpoint, paced on the replicas.
//!
//! Offline the rows are unknown, so it says nothing (a small table's `UPDATE` is fine). A
//! table the same revision alters is `backfill-with-ddl`'s finding, not this one's.

use super::backfill_with_ddl::LARGE_TABLE_ROWS;
use super::{Concern, Meta, Raw, Rule, ScriptCx, StmtCx};
use crate::lint::facts::group;
use crate::lint::Level;
use squawk_syntax::ast;

pub static META: Meta = Meta {
    scopes_itself: true,
    ..Meta::new("unbatched-update", Level::Warning, Concern::Data)
};

/// The tables the script alters, and its whole-table updates and deletes: (verb, table, where).
#[derive(Default)]
pub struct UnbatchedUpdate {
    ddl: Vec<String>,
    whole: Vec<(&'static str, String, usize)>,
}

impl Rule for UnbatchedUpdate {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn statement(&mut self, cx: &StmtCx, _out: &mut Vec<Raw>) {
        if let Some(t) = super::ddl_table(cx.stmt) {
            self.ddl.push(t);
            return;
        }
        match cx.stmt {
            ast::Stmt::Update(u) if u.where_clause_or_current_of().is_none() => {
                if let Some(r) = u.relation_name().and_then(|r| r.relation_name_ref()) {
                    self.whole.push(("UPDATE", super::relation_name(&r), cx.at));
                }
            }
            ast::Stmt::Delete(d) if d.where_clause_or_current_of().is_none() => {
                if let Some(r) = d.relation_name().and_then(|r| r.relation_name_ref()) {
                    self.whole.push(("DELETE", super::relation_name(&r), cx.at));
                }
            }
            _ => {}
        }
    }

    fn finish(&mut self, cx: &ScriptCx, out: &mut Vec<Raw>) {
        if cx.script.backfill.is_some() {
            return;
        }
        for (verb, table, at) in &self.whole {
            if self.ddl.contains(table) {
                continue; // backfill-with-ddl says it, with the lock it holds
            }
            let Some(rows) = cx.facts.and_then(|f| f.rows(table)) else {
                continue;
            };
            if rows.count < LARGE_TABLE_ROWS {
                continue;
            }
            out.push(Raw::new(
                &META,
                *at,
                *at,
                format!(
                    "{verb} of every row of {table}, which holds {} (at least {}), in one statement: \
                     its row locks are held until it commits (concurrent writes to {table} wait), \
                     its WAL reaches the replicas all at once, and a failure leaves nothing done",
                    rows.describe(),
                    group(LARGE_TABLE_ROWS)
                ),
                format!(
                    "make it a backfill step: a revision of its own with '-- backfill: {table}.id' in the header and \
                     '{verb} ... WHERE id >= :start AND id < :end' as its up section (docs/script-format.md): it runs \
                     range by range, each committed with its checkpoint, resumable and paced on the replicas"
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::facts::{DbFacts, Rows};
    use crate::lint::model::Model;
    use crate::lint::testing::*;

    fn with_rows(up: &str, header: &str, count: u64) -> Vec<Finding> {
        let mut facts = DbFacts::default();
        facts.tables.insert(
            "chunks".into(),
            Rows {
                count,
                estimated: false,
            },
        );
        let cfg = LintConfig::default();
        let mut model = Model::default();
        let first = script("001", "", CHUNKS, Some("SELECT 1;"));
        lint_script(&first, &mut model, Some(&facts), &cfg, false);
        let s = script("002", header, up, Some("SELECT 1;"));
        lint_script(&s, &mut model, Some(&facts), &cfg, true).0
    }

    #[test]
    fn a_whole_table_update_of_many_rows_points_to_a_backfill() {
        let f = with_rows("UPDATE chunks SET small = NULL;", "", 250_000);
        let hit = f
            .iter()
            .find(|f| f.rule == "unbatched-update")
            .unwrap_or_else(|| panic!("{f:?}"));
        assert_eq!(hit.level, Level::Warning);
        assert!(hit.message.contains("250,000 rows"), "{}", hit.message);
        assert!(
            hit.help
                .as_deref()
                .unwrap_or("")
                .contains("-- backfill: chunks.id"),
            "{hit:?}"
        );
        let del = with_rows("DELETE FROM chunks;", "", 250_000);
        assert!(rules(&del).contains(&"unbatched-update"), "{del:?}");
    }

    #[test]
    fn few_rows_a_where_a_backfill_or_no_database_say_nothing() {
        let few = with_rows("UPDATE chunks SET small = NULL;", "", 5_000);
        assert!(!rules(&few).contains(&"unbatched-update"), "{few:?}");
        let bounded = with_rows("UPDATE chunks SET small = NULL WHERE id < 10;", "", 250_000);
        assert!(
            !rules(&bounded).contains(&"unbatched-update"),
            "{bounded:?}"
        );
        let offline = lint_after(CHUNKS, "", "UPDATE chunks SET small = NULL;");
        assert!(
            !rules(&offline).contains(&"unbatched-update"),
            "{offline:?}"
        );
        let backfill = with_rows(
            "UPDATE chunks SET small = NULL WHERE id >= :start AND id < :end;",
            "-- backfill: chunks.id",
            250_000,
        );
        assert!(
            !rules(&backfill).contains(&"unbatched-update"),
            "{backfill:?}"
        );
        // with DDL on the table in the same revision it is backfill-with-ddl's finding
        let ddl = with_rows(
            "ALTER TABLE chunks ADD COLUMN lang text;\nUPDATE chunks SET lang = 'en';",
            "",
            250_000,
        );
        assert!(!rules(&ddl).contains(&"unbatched-update"), "{ddl:?}");
        assert!(rules(&ddl).contains(&"backfill-with-ddl"), "{ddl:?}");
    }
}
