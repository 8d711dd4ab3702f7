//! Constraints of every relation (primary keys, unique, check, exclusion, foreign keys), with
//! their columns and, for foreign keys, the referenced table and the index they rely on.

use super::relations::Relations;
use super::{query, USER_NS};
use crate::error::Result;
use crate::schema::model::{Constraint, ConstraintKind, QName};
use postgres::Transaction;
use std::collections::HashMap;

/// Relation oid -> its constraints.
pub(super) fn read_constraints(
    tx: &mut Transaction,
    rels: &Relations,
) -> Result<HashMap<u32, Vec<Constraint>>> {
    let mut constraints: HashMap<u32, Vec<Constraint>> = HashMap::new();
    for r in query(tx, "constraints", &format!(
        "SELECT con.conrelid, con.conname::text, con.contype::text, pg_catalog.pg_get_constraintdef(con.oid), con.convalidated,
                ARRAY(SELECT a.attname::text FROM pg_catalog.unnest(con.conkey) WITH ORDINALITY k(num, ord)
                      JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num ORDER BY k.ord),
                fn.nspname::text, fc.relname::text, ic.relname::text
         FROM pg_catalog.pg_constraint con
         JOIN pg_catalog.pg_class c ON c.oid = con.conrelid
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         LEFT JOIN pg_catalog.pg_class fc ON con.contype = 'f' AND fc.oid = con.confrelid
         LEFT JOIN pg_catalog.pg_namespace fn ON fn.oid = fc.relnamespace
         LEFT JOIN pg_catalog.pg_class ic ON con.contype = 'f' AND ic.oid = con.conindid
         WHERE con.contype IN ('p', 'u', 'f', 'c', 'x') AND {USER_NS}"
    ))? {
        let relid: u32 = r.get(0);
        if !rels.contains_key(&relid) {
            continue;
        }
        let Some(kind) = ConstraintKind::from_contype(&r.get::<_, String>(2)) else { continue };
        let def: String = r.get(3);
        let validated: bool = r.get(4);
        let definition = def.strip_suffix(" NOT VALID").map(str::to_string).unwrap_or(def);
        let references = match (r.get::<_, Option<String>>(6), r.get::<_, Option<String>>(7)) {
            (Some(sch), Some(n)) => Some(QName::new(sch, n)),
            _ => None,
        };
        constraints.entry(relid).or_default().push(Constraint {
            name: r.get(1),
            kind,
            definition,
            not_valid: !validated,
            columns: r.get(5),
            references,
            ref_index: r.get(8),
        });
    }
    Ok(constraints)
}
