//! `vector-index-drop-before-create` (warning, script): a vector index dropped, then a vector
//! index built on the same table: between the two, vector searches fall back to a sequential
//! scan over every row. Build the new one first, then drop the old one.

use super::vector_index::{text, VectorIndex};
use super::{Concern, Meta, Raw, Rule, StmtCx};
use crate::lint::first_token;
use crate::lint::text::normalize_name;
use crate::lint::Level;
use squawk_syntax::ast::{self, AstNode};

pub static META: Meta = Meta::new(
    "vector-index-drop-before-create",
    Level::Warning,
    Concern::Script,
);

/// Remembers the vector indexes the script dropped: (table, index).
#[derive(Default)]
pub struct VectorIndexDropBeforeCreate {
    dropped: Vec<(String, String)>,
}

impl Rule for VectorIndexDropBeforeCreate {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn statement(&mut self, cx: &StmtCx, out: &mut Vec<Raw>) {
        if let ast::Stmt::DropIndex(di) = cx.stmt {
            for r in di.index_refs() {
                let name = normalize_name(&text(&r));
                if let Some(info) = cx.model.vector_indexes.get(&name) {
                    self.dropped.push((info.table.clone(), name));
                }
            }
            return;
        }
        let Some(ix) = VectorIndex::of(cx.stmt, cx.model) else {
            return;
        };
        if let Some((_, old)) = self.dropped.iter().find(|(t, _)| *t == ix.table) {
            out.push(Raw::new(
                &META,
                first_token(ix.ci.syntax()),
                cx.at,
                format!(
                    "{old} on {table} is dropped before this {} index is built: until the build ends, vector searches on {table} fall back to a sequential scan",
                    ix.method,
                    table = ix.table
                ),
                "build the new index first (CREATE INDEX CONCURRENTLY new_idx ...), then drop the old one (DROP INDEX CONCURRENTLY old_idx), and rename if the name matters",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::*;

    #[test]
    fn dropping_a_vector_index_before_building_its_replacement() {
        let base = format!(
            "{CHUNKS}\nCREATE INDEX chunks_hnsw ON chunks USING hnsw (embedding vector_cosine_ops);"
        );
        let f = lint_after(
            &base,
            "-- transactional: false",
            "DROP INDEX CONCURRENTLY chunks_hnsw;\nCREATE INDEX CONCURRENTLY chunks_hnsw2 ON chunks USING hnsw (embedding vector_cosine_ops) WITH (m = 32);",
        );
        let hit = f
            .iter()
            .find(|f| f.rule == "vector-index-drop-before-create")
            .expect("finding");
        assert_eq!(hit.line, 5);
        let safe = lint_after(
            &base,
            "-- transactional: false",
            "CREATE INDEX CONCURRENTLY chunks_hnsw2 ON chunks USING hnsw (embedding vector_cosine_ops) WITH (m = 32);\nDROP INDEX CONCURRENTLY chunks_hnsw;",
        );
        assert!(
            !rules(&safe).contains(&"vector-index-drop-before-create"),
            "{safe:?}"
        );
    }
}
