//! `vector-index-too-many-dims` (error, script): an hnsw/ivfflat index over more dimensions
//! than the type allows (vector 2,000, halfvec 4,000, bit 64,000; also through a cast):
//! PostgreSQL refuses it at run time, in the middle of the deploy.

use super::vector_index::VectorIndex;
use super::{Concern, Meta, Raw, Rule, StmtCx};
use crate::lint::facts::group;
use crate::lint::first_token;
use crate::lint::model::VecKind;
use crate::lint::Level;
use squawk_syntax::ast::AstNode;

pub static META: Meta = Meta::new("vector-index-too-many-dims", Level::Error, Concern::Script);

pub struct VectorIndexTooManyDims;

impl Rule for VectorIndexTooManyDims {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn statement(&mut self, cx: &StmtCx, out: &mut Vec<Raw>) {
        let Some(ix) = VectorIndex::of(cx.stmt, cx.model) else {
            return;
        };
        for e in &ix.elements {
            let Some(d) = e.dims else { continue };
            let Some(limit) = e.kind.index_limit().filter(|&l| d > l) else {
                continue;
            };
            out.push(Raw::new(
                &META,
                first_token(e.item.syntax()),
                cx.at,
                format!(
                    "{} indexes take at most {} dimensions for {}; {} has {d}: PostgreSQL will refuse this index",
                    ix.method,
                    group(limit as u64),
                    e.kind.name(),
                    e.expr.trim()
                ),
                match e.kind {
                    VecKind::Vector => "index a halfvec cast instead (up to 4,000: `(embedding::halfvec(3072)) halfvec_cosine_ops`), or a binary quantization (`(binary_quantize(embedding)::bit(3072)) bit_hamming_ops`), or reduce the dimensions",
                    _ => "reduce the dimensions or index a binary quantization (`binary_quantize(...)::bit(N)`)",
                },
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::*;

    #[test]
    fn too_many_dimensions_for_an_index() {
        let f = lint_after(
            "CREATE TABLE docs (id bigint PRIMARY KEY, e vector(3072));",
            "-- transactional: false",
            "CREATE INDEX CONCURRENTLY docs_e ON docs USING hnsw (e vector_cosine_ops);",
        );
        let hit = f
            .iter()
            .find(|f| f.rule == "vector-index-too-many-dims")
            .expect("finding");
        assert!(
            hit.message.contains("at most 2,000") && hit.message.contains("3072"),
            "{}",
            hit.message
        );
        assert_eq!(hit.level, Level::Error);
        // the safe version: index a halfvec cast (up to 4,000)
        let safe = lint_after(
            "CREATE TABLE docs (id bigint PRIMARY KEY, e vector(3072));",
            "-- transactional: false",
            "CREATE INDEX CONCURRENTLY docs_e ON docs USING hnsw ((e::halfvec(3072)) halfvec_cosine_ops);",
        );
        assert!(
            !rules(&safe).contains(&"vector-index-too-many-dims"),
            "{safe:?}"
        );
        assert!(
            !rules(&safe).contains(&"vector-opclass-mismatch"),
            "{safe:?}"
        );
        let too_half = lint_after(
            "CREATE TABLE docs (id bigint PRIMARY KEY, e vector(8000));",
            "-- transactional: false",
            "CREATE INDEX CONCURRENTLY docs_e ON docs USING hnsw ((e::halfvec(8000)) halfvec_cosine_ops);",
        );
        assert!(
            rules(&too_half).contains(&"vector-index-too-many-dims"),
            "{too_half:?}"
        );
    }
}
