//! Relations (tables, partitioned tables, views, materialized views, foreign tables) by oid:
//! the rows every per-relation reader (columns, constraints, indexes, view dependencies) is
//! joined to.

use super::{not_ext, query, USER_NS};
use crate::error::Result;
use crate::schema::model::QName;
use postgres::Transaction;
use std::collections::HashMap;

/// One `pg_class` row.
pub(super) struct Rel {
    pub name: QName,
    /// `relkind`: r, p, v, m or f.
    pub kind: String,
    pub unlogged: bool,
    pub partition: bool,
    pub inherits: bool,
    pub comment: Option<String>,
    pub viewdef: Option<String>,
    pub options: Vec<String>,
    /// The partition key or bound (part of a partitioned table's fingerprint).
    pub part: Option<String>,
}

impl Rel {
    /// Relations compared as tables; the others are views or reported as not compared.
    pub fn is_table(&self) -> bool {
        self.kind == "r" && !self.partition && !self.inherits
    }
}

/// Relation oid -> relation, without the excluded ones.
pub(super) type Relations = HashMap<u32, Rel>;

pub(super) fn read_relations(tx: &mut Transaction, excluded: &[u32]) -> Result<Relations> {
    let mut rels = HashMap::new();
    for r in query(tx, "relations", &format!(
        "SELECT c.oid, n.nspname::text, c.relname::text, c.relkind::text, c.relpersistence = 'u', c.relispartition,
                EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhrelid = c.oid),
                pg_catalog.obj_description(c.oid, 'pg_class'),
                CASE WHEN c.relkind IN ('v', 'm') THEN pg_catalog.pg_get_viewdef(c.oid, true) END,
                COALESCE(c.reloptions, '{{}}')::text[],
                CASE WHEN c.relkind = 'p' THEN pg_catalog.pg_get_partkeydef(c.oid) WHEN c.relispartition THEN pg_catalog.pg_get_expr(c.relpartbound, c.oid) END
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND {USER_NS} AND {}",
        not_ext("pg_catalog.pg_class", "c.oid")
    ))? {
        let oid: u32 = r.get(0);
        if excluded.contains(&oid) {
            continue;
        }
        rels.insert(
            oid,
            Rel {
                name: QName::new(r.get::<_, String>(1), r.get::<_, String>(2)),
                kind: r.get(3),
                unlogged: r.get(4),
                partition: r.get(5),
                inherits: r.get(6),
                comment: r.get(7),
                viewdef: r.get(8),
                options: r.get(9),
                part: r.get(10),
            },
        );
    }
    Ok(rels)
}
