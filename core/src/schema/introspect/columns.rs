//! Columns of every relation, in attnum order: type, NOT NULL, default or generated
//! expression, identity (with its sequence's options), collation, comment, and the enum type
//! when the column's type is an enum or an array of one.

use super::relations::Relations;
use super::{query, USER_NS};
use crate::error::Result;
use crate::schema::model::{Column, Identity, IdentityDef, QName, Sequence};
use postgres::{Row, Transaction};
use std::collections::HashMap;

/// Relation oid -> its columns.
pub(super) fn read_columns(
    tx: &mut Transaction,
    rels: &Relations,
) -> Result<HashMap<u32, Vec<Column>>> {
    let mut columns: HashMap<u32, Vec<Column>> = HashMap::new();
    for r in query(tx, "columns", &format!(
        "SELECT a.attrelid, a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull,
                CASE WHEN a.attgenerated = '' THEN pg_catalog.pg_get_expr(d.adbin, d.adrelid) END,
                CASE WHEN a.attgenerated <> '' THEN pg_catalog.pg_get_expr(d.adbin, d.adrelid) END,
                a.attidentity::text,
                CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation
                     THEN pg_catalog.quote_ident(cn.nspname) || '.' || pg_catalog.quote_ident(co.collname) END,
                pg_catalog.col_description(a.attrelid, a.attnum),
                etn.nspname::text, et.typname::text, t.typelem <> 0 AND t.typlen = -1,
                pg_catalog.format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle
         FROM pg_catalog.pg_attribute a
         JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
         LEFT JOIN pg_catalog.pg_type et ON et.oid = CASE WHEN t.typtype = 'e' THEN t.oid ELSE t.typelem END AND et.typtype = 'e'
         LEFT JOIN pg_catalog.pg_namespace etn ON etn.oid = et.typnamespace
         LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation
         LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
         LEFT JOIN pg_catalog.pg_depend sd ON a.attidentity <> '' AND sd.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
              AND sd.refobjid = a.attrelid AND sd.refobjsubid = a.attnum AND sd.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND sd.deptype = 'i'
         LEFT JOIN pg_catalog.pg_sequence s ON s.seqrelid = sd.objid
         WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND {USER_NS}
         ORDER BY a.attrelid, a.attnum"
    ))? {
        let relid: u32 = r.get(0);
        if !rels.contains_key(&relid) {
            continue;
        }
        let enum_type = match (r.get::<_, Option<String>>(9), r.get::<_, Option<String>>(10)) {
            (Some(sch), Some(n)) => Some(QName::new(sch, n)),
            _ => None,
        };
        columns.entry(relid).or_default().push(Column {
            name: r.get(1),
            type_sql: r.get(2),
            enum_type,
            is_array: r.get(11),
            not_null: r.get(3),
            default: r.get(4),
            identity: identity(&r),
            generated: r.get(5),
            collation: r.get(7),
            comment: r.get(8),
            serial: None,
        });
    }
    Ok(columns)
}

/// The identity of a column row, when it has one (and its sequence was found).
fn identity(r: &Row) -> Option<IdentityDef> {
    let kind = match r.get::<_, String>(6).as_str() {
        "a" => Identity::Always,
        "d" => Identity::ByDefault,
        _ => return None,
    };
    r.get::<_, Option<String>>(12)?;
    Some(IdentityDef {
        kind,
        sequence: Sequence {
            name: QName::new("", ""),
            data_type: r.get(12),
            start: r.get(13),
            increment: r.get(14),
            min: r.get(15),
            max: r.get(16),
            cache: r.get(17),
            cycle: r.get(18),
            owned_by: None,
        },
    })
}
