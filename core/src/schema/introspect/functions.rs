//! Functions and procedures (`pg_get_functiondef`, with their argument list and result), and
//! the triggers of tables, views and materialized views (`pg_get_triggerdef`). Aggregates and
//! the triggers of other relations stay among the objects not compared.

use super::{not_ext, USER_NS};
use crate::db::db_error;
use crate::error::Result;
use crate::schema::model::{Function, QName, Trigger};
use postgres::Transaction;
use std::collections::BTreeMap;

pub(super) fn read_functions(tx: &mut Transaction) -> Result<BTreeMap<String, Function>> {
    let sql = format!(
        "SELECT n.nspname::text, p.proname::text, p.oid::pg_catalog.regprocedure::text, p.prokind = 'p',
                pg_catalog.pg_get_functiondef(p.oid), pg_catalog.pg_get_function_arguments(p.oid),
                pg_catalog.pg_get_function_result(p.oid)
         FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
         WHERE p.prokind IN ('f', 'p') AND {USER_NS} AND {}",
        not_ext("pg_catalog.pg_proc", "p.oid")
    );
    let rows = tx
        .query_typed(&sql, &[])
        .map_err(|e| db_error("cannot read functions", &e))?;
    let mut out = BTreeMap::new();
    for r in rows {
        let def: String = r.get(4);
        let f = Function {
            name: QName::new(r.get::<_, String>(0), r.get::<_, String>(1)),
            signature: r.get(2),
            procedure: r.get(3),
            definition: def.trim_end().to_string(),
            arguments: r.get(5),
            result: r.get(6),
        };
        out.insert(f.signature.clone(), f);
    }
    Ok(out)
}

pub(super) fn read_triggers(tx: &mut Transaction) -> Result<BTreeMap<(QName, String), Trigger>> {
    let sql = format!(
        "SELECT n.nspname::text, c.relname::text, t.tgname::text, pg_catalog.pg_get_triggerdef(t.oid),
                t.tgfoid::pg_catalog.regprocedure::text
         FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         WHERE NOT t.tgisinternal AND c.relkind IN ('r', 'v', 'm') AND {USER_NS} AND {}",
        not_ext("pg_catalog.pg_trigger", "t.oid")
    );
    let rows = tx
        .query_typed(&sql, &[])
        .map_err(|e| db_error("cannot read triggers", &e))?;
    let mut out = BTreeMap::new();
    for r in rows {
        let t = Trigger {
            table: QName::new(r.get::<_, String>(0), r.get::<_, String>(1)),
            name: r.get(2),
            definition: r.get(3),
            function: r.get(4),
        };
        out.insert((t.table.clone(), t.name.clone()), t);
    }
    Ok(out)
}
