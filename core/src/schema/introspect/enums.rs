//! Enum types with their values in sort order.

use super::{not_ext, query, USER_NS};
use crate::error::Result;
use crate::schema::model::{EnumType, QName};
use postgres::Transaction;
use std::collections::BTreeMap;

pub(super) fn read_enums(tx: &mut Transaction) -> Result<BTreeMap<QName, EnumType>> {
    let mut out = BTreeMap::new();
    for r in query(tx, "enum types", &format!(
        "SELECT n.nspname::text, t.typname::text, pg_catalog.array_agg(e.enumlabel::text ORDER BY e.enumsortorder)
         FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace JOIN pg_catalog.pg_enum e ON e.enumtypid = t.oid
         WHERE {USER_NS} AND {} GROUP BY 1, 2",
        not_ext("pg_catalog.pg_type", "t.oid")
    ))? {
        let name = QName::new(r.get::<_, String>(0), r.get::<_, String>(1));
        out.insert(name.clone(), EnumType { name, values: r.get(2) });
    }
    Ok(out)
}
