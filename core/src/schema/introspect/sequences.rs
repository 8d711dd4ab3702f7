//! Standalone sequences (identity sequences are read with their column) and the column owning
//! each (`OWNED BY`, serial columns); a sequence owned by an excluded table is left out.

use super::{not_ext, query, USER_NS};
use crate::error::Result;
use crate::schema::model::{ColumnRef, QName, Sequence};
use postgres::Transaction;
use std::collections::BTreeMap;

pub(super) fn read_sequences(
    tx: &mut Transaction,
    excluded: &[u32],
) -> Result<BTreeMap<QName, Sequence>> {
    let mut out = BTreeMap::new();
    for r in query(tx, "sequences", &format!(
        "SELECT n.nspname::text, c.relname::text, pg_catalog.format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle,
                own.nspname::text, own.relname::text, own.attname::text, own.refobjid
         FROM pg_catalog.pg_sequence s
         JOIN pg_catalog.pg_class c ON c.oid = s.seqrelid
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         LEFT JOIN LATERAL (
             SELECT tn.nspname, tc.relname, a.attname, d.refobjid FROM pg_catalog.pg_depend d
             JOIN pg_catalog.pg_class tc ON tc.oid = d.refobjid
             JOIN pg_catalog.pg_namespace tn ON tn.oid = tc.relnamespace
             JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
             WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = s.seqrelid
               AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.deptype = 'a' AND d.refobjsubid > 0
             LIMIT 1) own ON true
         WHERE {USER_NS} AND {}
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = s.seqrelid AND d.deptype = 'i')",
        not_ext("pg_catalog.pg_class", "c.oid")
    ))? {
        if r.get::<_, Option<u32>>(12).is_some_and(|o| excluded.contains(&o)) {
            continue;
        }
        let name = QName::new(r.get::<_, String>(0), r.get::<_, String>(1));
        let owned_by = match (r.get::<_, Option<String>>(9), r.get::<_, Option<String>>(10), r.get::<_, Option<String>>(11)) {
            (Some(sch), Some(t), Some(column)) => Some(ColumnRef { table: QName::new(sch, t), column }),
            _ => None,
        };
        out.insert(
            name.clone(),
            Sequence {
                name,
                data_type: r.get(2),
                start: r.get(3),
                increment: r.get(4),
                min: r.get(5),
                max: r.get(6),
                cache: r.get(7),
                cycle: r.get(8),
                owned_by,
            },
        );
    }
    Ok(out)
}
