//! `ivfflat-on-new-table` (warning, script): IVFFlat learns its lists by k-means over the rows
//! present at build time; on a table the same revision creates there are none, and recall is
//! poor.

use super::vector_index::VectorIndex;
use super::{Concern, Meta, Raw, Rule, StmtCx};
use crate::lint::first_token;
use crate::lint::Level;
use squawk_syntax::ast::AstNode;

pub static META: Meta = Meta::new("ivfflat-on-new-table", Level::Warning, Concern::Script);

pub struct IvfflatOnNewTable;

impl Rule for IvfflatOnNewTable {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn statement(&mut self, cx: &StmtCx, out: &mut Vec<Raw>) {
        let Some(ix) = VectorIndex::of(cx.stmt, cx.model) else {
            return;
        };
        let created_here = cx
            .model
            .tables
            .get(&ix.table)
            .and_then(|t| t.created_in.as_deref())
            == Some(cx.revision);
        if ix.method == "ivfflat" && created_here {
            out.push(Raw::new(
                &META,
                first_token(ix.ci.syntax()),
                cx.at,
                format!(
                    "ivfflat index on {}, which this revision creates: the table is empty, so k-means learns its lists from no rows and recall will be poor",
                    ix.table
                ),
                "create the ivfflat index in a later revision, after the data is loaded (CONCURRENTLY), or use hnsw, which needs no training data",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::*;

    #[test]
    fn ivfflat_on_a_table_of_the_same_revision() {
        let f = lint_after(
            "SELECT 1;",
            "",
            &format!("{CHUNKS}\nCREATE INDEX chunks_ivf ON chunks USING ivfflat (embedding vector_l2_ops) WITH (lists = 100);"),
        );
        assert!(rules(&f).contains(&"ivfflat-on-new-table"), "{f:?}");
        let safe = lint_after(
            CHUNKS,
            "-- transactional: false",
            "CREATE INDEX CONCURRENTLY chunks_ivf ON chunks USING ivfflat (embedding vector_l2_ops) WITH (lists = 100);",
        );
        assert!(!rules(&safe).contains(&"ivfflat-on-new-table"), "{safe:?}");
    }
}
