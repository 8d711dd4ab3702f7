//! `vector-index-not-concurrent` (error, data): an hnsw/ivfflat index built without
//! `CONCURRENTLY` on a table that exists before the revision blocks every write to it for the
//! whole build — an hour for a few million embeddings, much longer once the HNSW graph no
//! longer fits in `maintenance_work_mem`. With a database it says the rows and the estimated
//! build memory, and says nothing on a table known to be empty. It says more than squawk's
//! `require-concurrent-index-creation` on the same statement.

use super::vector_index::{known_empty, VectorIndex};
use super::{Concern, Meta, Raw, Rule, StmtCx};
use crate::lint::facts::bytes;
use crate::lint::first_token;
use crate::lint::model::VecKind;
use crate::lint::Level;
use squawk_linter::Rule as SquawkRule;
use squawk_syntax::ast::AstNode;

pub static META: Meta = Meta {
    scopes_itself: true,
    supersedes: &[SquawkRule::RequireConcurrentIndexCreation],
    ..Meta::new("vector-index-not-concurrent", Level::Error, Concern::Data)
};

pub struct VectorIndexNotConcurrent;

impl Rule for VectorIndexNotConcurrent {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn statement(&mut self, cx: &StmtCx, out: &mut Vec<Raw>) {
        let Some(ix) = VectorIndex::of(cx.stmt, cx.model) else {
            return;
        };
        if ix.ci.concurrently_token().is_some() || known_empty(cx, &ix.table) {
            return;
        }
        let (method, table) = (&ix.method, &ix.table);
        let rows = cx.facts.and_then(|f| f.rows(table));
        let mut msg = format!(
            "{method} index built without CONCURRENTLY on {table}, which exists before this revision: writes to {table} are blocked for the whole build"
        );
        match (cx.facts, rows) {
            (Some(f), Some(r)) => {
                msg.push_str(&format!("; it holds {}", r.describe()));
                if let Some((kind, d)) = ix.dims() {
                    if kind.row_bytes(d).is_some() {
                        let element = match kind {
                            VecKind::Halfvec => 2.0,
                            VecKind::Bit => 0.125,
                            _ => 4.0,
                        };
                        let build = crate::vector::vector_build(&ix.ci.syntax().to_string());
                        let rows = r.count as f64;
                        let (est, how) = match &build {
                            Some(b) if b.method == crate::vector::Method::Ivfflat => (
                                crate::vector::ivfflat_bytes(rows, d as i64, b.lists()),
                                format!(
                                    "the k-means sample of 50 rows a list, lists = {}",
                                    b.lists()
                                ),
                            ),
                            _ => {
                                let m = build.as_ref().map_or(16, |b| b.m());
                                (
                                    crate::vector::hnsw_graph_bytes(rows, d as i64, element, m),
                                    format!(
                                        "(8 + {element}·{d} + 32·m + 200) bytes × rows, m = {m}"
                                    ),
                                )
                            }
                        };
                        let mwm = f.maintenance_work_mem;
                        msg.push_str(&format!(
                            "; estimated build memory {} ({how}) against maintenance_work_mem {}{}",
                            bytes(est as u64),
                            bytes(mwm),
                            if est > mwm as f64 && method == "hnsw" {
                                ": the graph will not fit, and the build slows down sharply once it no longer does (migrate-up raises maintenance_work_mem for the build up to MIGRATE_MAX_MAINTENANCE_WORK_MEM)"
                            } else {
                                ""
                            }
                        ));
                    }
                }
            }
            (None, _) => msg.push_str(" (without a database its size is unknown)"),
            _ => {}
        }
        out.push(Raw::new(
            &META,
            first_token(ix.ci.syntax()),
            cx.at,
            msg,
            "use CREATE INDEX CONCURRENTLY in a script marked `-- transactional: false`; raise maintenance_work_mem for the session (SET maintenance_work_mem = '8GB') so the graph fits",
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::*;

    #[test]
    fn vector_index_without_concurrently_on_an_existing_table() {
        let f = lint_after(
            CHUNKS,
            "",
            "CREATE INDEX chunks_hnsw ON chunks USING hnsw (embedding vector_cosine_ops);",
        );
        let hit = f
            .iter()
            .find(|f| f.rule == "vector-index-not-concurrent")
            .expect("finding");
        assert_eq!(hit.level, Level::Error);
        assert_eq!((hit.line, hit.col), (4, 1));
        assert!(
            hit.message.contains("without a database"),
            "{}",
            hit.message
        );
        let safe = lint_after(
            CHUNKS,
            "-- transactional: false",
            "CREATE INDEX CONCURRENTLY chunks_hnsw ON chunks USING hnsw (embedding vector_cosine_ops);",
        );
        assert!(
            !rules(&safe).contains(&"vector-index-not-concurrent"),
            "{safe:?}"
        );
        assert!(
            !rules(&safe).contains(&"concurrently-in-transaction"),
            "{safe:?}"
        );
        // a table created in the same revision is empty: no finding
        let same = lint_after(
            "SELECT 1;",
            "",
            &format!("{CHUNKS}\nCREATE INDEX chunks_hnsw ON chunks USING hnsw (embedding vector_cosine_ops);"),
        );
        assert!(
            !rules(&same).contains(&"vector-index-not-concurrent"),
            "{same:?}"
        );
    }

    #[test]
    fn squawk_says_nothing_more_where_the_vector_rule_speaks() {
        let f = lint_after(
            CHUNKS,
            "",
            "CREATE INDEX chunks_hnsw ON chunks USING hnsw (embedding vector_cosine_ops);",
        );
        assert!(
            !rules(&f).contains(&"require-concurrent-index-creation"),
            "{f:?}"
        );
        // on a plain btree index, squawk's rule stays
        let f = lint_after(CHUNKS, "", "CREATE INDEX chunks_id ON chunks (id);");
        assert!(
            rules(&f).contains(&"require-concurrent-index-creation"),
            "{f:?}"
        );
    }
}
