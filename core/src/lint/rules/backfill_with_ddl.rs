//! `backfill-with-ddl` (warning, data): an `UPDATE` without `WHERE` (or, with a database, of a
//! table of 100,000 rows or more) in the same revision as DDL on that table: the DDL's lock is
//! held until the backfill commits, so reads and writes of the table wait for the whole
//! backfill.

use super::{Concern, Meta, Raw, Rule, ScriptCx, StmtCx};
use crate::lint::facts::group;
use crate::lint::Level;
use squawk_syntax::ast;

pub static META: Meta = Meta::new("backfill-with-ddl", Level::Warning, Concern::Data);

/// From this many rows (with the database) an `UPDATE` with a `WHERE` is a backfill too.
pub const LARGE_TABLE_ROWS: u64 = 100_000;

/// The tables the script alters, and its updates: (table, has a WHERE, where).
#[derive(Default)]
pub struct BackfillWithDdl {
    ddl: Vec<String>,
    updates: Vec<(String, bool, usize)>,
}

impl Rule for BackfillWithDdl {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn statement(&mut self, cx: &StmtCx, _out: &mut Vec<Raw>) {
        if let Some(t) = super::ddl_table(cx.stmt) {
            self.ddl.push(t);
            return;
        }
        if let ast::Stmt::Update(u) = cx.stmt {
            if let Some(r) = u.relation_name().and_then(|r| r.relation_name_ref()) {
                self.updates.push((
                    super::relation_name(&r),
                    u.where_clause_or_current_of().is_some(),
                    cx.at,
                ));
            }
        }
    }

    fn finish(&mut self, cx: &ScriptCx, out: &mut Vec<Raw>) {
        for (table, has_where, at) in &self.updates {
            if !self.ddl.contains(table) {
                continue;
            }
            let rows = cx.facts.and_then(|f| f.rows(table));
            let large = rows.is_some_and(|r| r.count >= LARGE_TABLE_ROWS);
            if *has_where && !large {
                continue;
            }
            let what = if *has_where {
                format!(
                    "an UPDATE of {table}, which holds {} (at least {})",
                    rows.map(|r| r.describe()).unwrap_or_default(),
                    group(LARGE_TABLE_ROWS)
                )
            } else {
                format!("an UPDATE of every row of {table} (no WHERE)")
            };
            out.push(Raw::new(
                &META,
                *at,
                *at,
                format!("{what} in the same revision as DDL on {table}: the DDL's lock is held until the backfill commits, blocking reads and writes of {table} meanwhile"),
                "do the schema change in one revision, and the backfill in a later one, in batches (UPDATE ... WHERE id BETWEEN ...), outside the DDL's transaction",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::*;

    #[test]
    fn backfill_in_the_revision_that_alters_the_table() {
        let f = lint_after(
            CHUNKS,
            "",
            "ALTER TABLE chunks ADD COLUMN lang text;\nUPDATE chunks SET lang = 'en';",
        );
        let hit = f
            .iter()
            .find(|f| f.rule == "backfill-with-ddl")
            .expect("finding");
        assert_eq!(hit.line, 5);
        // the backfill in its own revision is the safe version
        let safe = lint_after(
            CHUNKS,
            "",
            "UPDATE chunks SET lang = 'en' WHERE id BETWEEN 1 AND 1000;",
        );
        assert!(!rules(&safe).contains(&"backfill-with-ddl"), "{safe:?}");
        let bounded = lint_after(
            CHUNKS,
            "",
            "ALTER TABLE chunks ADD COLUMN lang text;\nUPDATE chunks SET lang = 'en' WHERE id = 1;",
        );
        assert!(
            !rules(&bounded).contains(&"backfill-with-ddl"),
            "{bounded:?}"
        );
    }
}
