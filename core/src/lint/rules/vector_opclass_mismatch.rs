//! `vector-opclass-mismatch` (error, script): an operator class for another type
//! (`vector_cosine_ops` on a `halfvec` column or cast, `halfvec_*` on `vector`, `bit_*` on
//! non-`bit`): PostgreSQL refuses it, or the index is not the one the queries use.

use super::vector_index::{text, VectorIndex};
use super::{Concern, Meta, Raw, Rule, StmtCx};
use crate::lint::first_token;
use crate::lint::model::VecKind;
use crate::lint::Level;
use squawk_syntax::ast::AstNode;

pub static META: Meta = Meta::new("vector-opclass-mismatch", Level::Error, Concern::Script);

pub struct VectorOpclassMismatch;

impl Rule for VectorOpclassMismatch {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn statement(&mut self, cx: &StmtCx, out: &mut Vec<Raw>) {
        let Some(ix) = VectorIndex::of(cx.stmt, cx.model) else {
            return;
        };
        for e in &ix.elements {
            let Some(oc) = e.item.op_class_ref() else {
                continue;
            };
            let name = text(&oc);
            let Some(ok) = VecKind::of_opclass(&name).filter(|ok| *ok != e.kind) else {
                continue;
            };
            let expr = e.expr.trim();
            out.push(Raw::new(
                &META,
                first_token(oc.syntax()),
                cx.at,
                format!(
                    "operator class {name} is for {} columns, but {expr} is {}",
                    ok.name(),
                    e.ty
                ),
                format!(
                    "use the {kind} operator class of the same distance (e.g. {kind}_cosine_ops), or cast the column (`({expr}::{})`)",
                    ok.name(),
                    kind = e.kind.name(),
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::*;

    #[test]
    fn operator_class_for_another_type() {
        let f = lint_after(
            CHUNKS,
            "-- transactional: false",
            "CREATE INDEX CONCURRENTLY chunks_small ON chunks USING hnsw (small vector_cosine_ops);",
        );
        let hit = f
            .iter()
            .find(|f| f.rule == "vector-opclass-mismatch")
            .expect("finding");
        assert!(hit.message.contains("halfvec(384)"), "{}", hit.message);
        let safe = lint_after(
            CHUNKS,
            "-- transactional: false",
            "CREATE INDEX CONCURRENTLY chunks_small ON chunks USING hnsw (small halfvec_cosine_ops);",
        );
        assert!(
            !rules(&safe).contains(&"vector-opclass-mismatch"),
            "{safe:?}"
        );
    }
}
