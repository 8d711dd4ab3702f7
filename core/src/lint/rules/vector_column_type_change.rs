//! `vector-column-type-change` (error, data): `ALTER COLUMN ... TYPE` from or to a vector type
//! rewrites the table under an ACCESS EXCLUSIVE lock, fails on rows of another dimension, and
//! rebuilds (or needs dropped) the vector index. With a database it counts on a table that
//! holds rows; offline, on one that exists before the revision or carries a vector index. It
//! says more than squawk's `changing-column-type` on the same statement.

use super::vector_index::{known_empty, text};
use super::{Concern, Meta, Raw, Rule, StmtCx};
use crate::lint::first_token;
use crate::lint::model::vector_type;
use crate::lint::text::normalize_name;
use crate::lint::Level;
use squawk_linter::Rule as SquawkRule;
use squawk_syntax::ast::{self, AstNode};

pub static META: Meta = Meta {
    scopes_itself: true,
    supersedes: &[SquawkRule::ChangingColumnType],
    ..Meta::new("vector-column-type-change", Level::Error, Concern::Data)
};

pub struct VectorColumnTypeChange;

impl Rule for VectorColumnTypeChange {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn statement(&mut self, cx: &StmtCx, out: &mut Vec<Raw>) {
        let ast::Stmt::AlterTable(at) = cx.stmt else {
            return;
        };
        let Some(table) = crate::lint::model::altered_table(at) else {
            return;
        };
        for action in at.actions() {
            let ast::AlterTableAction::AlterColumn(ac) = action else {
                continue;
            };
            let (Some(col), Some(ast::AlterColumnOption::SetType(st))) =
                (ac.column_name_ref(), ac.option())
            else {
                continue;
            };
            let col = normalize_name(&text(&col));
            let Some(new_ty) = st.ty().map(|t| text(&t)) else {
                continue;
            };
            let old_ty = cx.model.column_type(&table, &col);
            if vector_type(&new_ty).is_none() && old_ty.and_then(vector_type).is_none() {
                continue;
            }
            let indexes = cx.model.vector_indexes_on(&table);
            let rows = cx.facts.and_then(|f| f.rows(&table));
            let empty = known_empty(cx, &table);
            // with the database, an empty table rewrites (and rebuilds its index) in no time:
            // only rows count; offline, an index says the table is in use
            let indexed = !indexes.is_empty() && cx.facts.is_none();
            if !indexed && empty {
                continue;
            }
            let mut why = Vec::new();
            if let Some(r) = rows.filter(|r| r.count > 0) {
                why.push(format!("it holds {}", r.describe()));
            } else if cx.facts.is_none() && !empty {
                why.push("it exists before this revision and may hold rows".to_string());
            }
            if !indexes.is_empty() {
                why.push(format!(
                    "it carries the vector index{} {}",
                    crate::words::plural_es(indexes.len()),
                    indexes.join(", ")
                ));
            }
            out.push(Raw::new(
                &META,
                first_token(ac.syntax()),
                cx.at,
                format!(
                    "changing {table}.{col} from {} to {new_ty} rewrites the table under an ACCESS EXCLUSIVE lock and fails on rows of another dimension; {}",
                    old_ty.unwrap_or("its type"),
                    why.join(" and ")
                ),
                "add a new column of the new type, fill it (re-embed) in batches, build its index CONCURRENTLY, switch the application, then drop the old column",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::*;

    #[test]
    fn changing_a_vector_column_type() {
        let f = lint_after(
            &format!("{CHUNKS}\nCREATE INDEX chunks_hnsw ON chunks USING hnsw (embedding vector_cosine_ops);"),
            "",
            "ALTER TABLE chunks ALTER COLUMN embedding TYPE vector(768);",
        );
        let hit = f
            .iter()
            .find(|f| f.rule == "vector-column-type-change")
            .expect("finding");
        assert!(hit.message.contains("chunks_hnsw"), "{}", hit.message);
        assert!(
            hit.message.contains("vector(384) to vector(768)"),
            "{}",
            hit.message
        );
        assert!(!rules(&f).contains(&"changing-column-type"), "{f:?}");
        // the safe version: a new column beside the old one
        let safe = lint_after(
            &format!("{CHUNKS}\nCREATE INDEX chunks_hnsw ON chunks USING hnsw (embedding vector_cosine_ops);"),
            "",
            "ALTER TABLE chunks ADD COLUMN embedding_768 vector(768);",
        );
        assert!(
            !rules(&safe).contains(&"vector-column-type-change"),
            "{safe:?}"
        );
    }
}
