//! What each view reads: the relations its `_RETURN` rule depends on, and their columns.

use super::relations::Relations;
use super::{query, USER_NS};
use crate::error::Result;
use crate::schema::model::QName;
use postgres::Transaction;
use std::collections::{BTreeMap, HashMap};

/// View oid -> relation it reads -> the columns it reads from it.
pub(super) type ViewDependencies = HashMap<u32, BTreeMap<QName, Vec<String>>>;

pub(super) fn read_view_dependencies(
    tx: &mut Transaction,
    rels: &Relations,
) -> Result<ViewDependencies> {
    let mut view_deps: ViewDependencies = HashMap::new();
    for r in query(tx, "view dependencies", &format!(
        "SELECT DISTINCT r.ev_class, d.refobjid, a.attname::text
         FROM pg_catalog.pg_rewrite r
         JOIN pg_catalog.pg_class c ON c.oid = r.ev_class
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid = r.oid
              AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid <> r.ev_class
         LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid AND d.refobjsubid > 0
         WHERE r.rulename = '_RETURN' AND {USER_NS}
         ORDER BY 1, 2, 3"
    ))? {
        let (view, dep): (u32, u32) = (r.get(0), r.get(1));
        let Some(target) = rels.get(&dep) else { continue };
        let cols = view_deps.entry(view).or_default().entry(target.name.clone()).or_default();
        if let Some(c) = r.get::<_, Option<String>>(2) {
            cols.push(c);
        }
    }
    Ok(view_deps)
}
