//! Reads a database's schema from `pg_catalog` into a [`Schema`].
//!
//! A fixed number of queries (one per object kind, never one per table), run in one
//! read-only REPEATABLE READ transaction with `search_path = ''` so every name PostgreSQL's
//! deparsers print (`format_type`, `pg_get_expr`, `pg_get_constraintdef`, `pg_get_indexdef`,
//! `pg_get_viewdef`, `pg_get_functiondef`, `pg_get_triggerdef`) comes back schema-qualified. Left out: system schemas (`pg_catalog`,
//! `information_schema`, `pg_toast*`, `pg_temp_*`), extension members (`pg_depend` deptype
//! `'e'`), identity sequences (deptype `'i'`, compared as part of their column), indexes owned
//! by constraints, the version table, and `plpgsql`.
//!
//! Each catalog query has its reader in its own file; `assemble` then puts the per-relation
//! rows (columns, constraints, indexes, view dependencies) into tables and views.

mod assemble;
mod columns;
mod constraints;
mod enums;
mod functions;
mod indexes;
mod relations;
mod schemas;
mod sequences;
mod unhandled;
mod views;

pub use indexes::index_body;
pub(crate) use unhandled::unhandled_sql;

use super::model::*;
use crate::db::db_error;
use crate::error::Result;
use postgres::types::Type;
use postgres::{Client, IsolationLevel, Row, Transaction};
use std::collections::BTreeMap;

/// What to leave out.
#[derive(Debug, Clone, Default)]
pub struct IntrospectOptions {
    /// Relations to leave out, as SQL names resolved with the connection's search_path
    /// (e.g. the version table, `alembic_version`).
    pub exclude_relations: Vec<String>,
    /// Schemas whose existence is not compared (their objects still are).
    pub ignore_schemas: Vec<String>,
    /// Read this schema only (one tenant of a schema-per-tenant database): every catalog
    /// query is restricted to it, on the server.
    pub only_schema: Option<String>,
}

/// The condition that leaves out system schemas (`n` is the object's `pg_namespace` row), and
/// with [`IntrospectOptions::only_schema`] (set as `retort.only_schema` for the reading
/// transaction) every schema but that one.
pub(crate) const USER_NS: &str =
    "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_)' \
     AND (COALESCE(pg_catalog.current_setting('retort.only_schema', true), '') = '' \
          OR n.nspname = pg_catalog.current_setting('retort.only_schema', true))";

/// The condition that leaves out extension members.
pub(crate) fn not_ext(classid: &str, oid: &str) -> String {
    format!("NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend xd WHERE xd.classid = '{classid}'::pg_catalog.regclass AND xd.objid = {oid} AND xd.deptype = 'e')")
}

/// Runs one catalog query; an error says what was being read.
fn query(tx: &mut Transaction, what: &str, sql: &str) -> Result<Vec<Row>> {
    crate::db::query::rows(tx, sql, &[]).map_err(|e| db_error(&format!("cannot read {what}"), &e))
}

/// Reads the schema. Returns an error only when a catalog query fails.
pub fn introspect(client: &mut Client, opts: &IntrospectOptions) -> Result<Schema> {
    let mut tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(|e| db_error("cannot start reading the catalog", &e))?;
    if let Some(only) = &opts.only_schema {
        crate::db::query::one(
            &mut tx,
            "SELECT pg_catalog.set_config('retort.only_schema', $1, true)",
            &[(only, Type::TEXT)],
        )
        .map_err(|e| db_error("cannot restrict the catalog read to one schema", &e))?;
    }
    let excluded = excluded_oids(&mut tx, opts)?;
    tx.batch_execute("SET LOCAL search_path = ''")
        .map_err(|e| db_error("cannot set search_path", &e))?;
    let mut s = Schema {
        schemas: schemas::read_schemas(&mut tx, opts)?,
        extensions: schemas::read_extensions(&mut tx)?,
        enums: enums::read_enums(&mut tx)?,
        ..Schema::default()
    };
    let rels = relations::read_relations(&mut tx, &excluded)?;
    let columns = columns::read_columns(&mut tx, &rels)?;
    let constraints = constraints::read_constraints(&mut tx, &rels)?;
    let indexes = indexes::read_indexes(&mut tx, &rels)?;
    s.sequences = sequences::read_sequences(&mut tx, &excluded)?;
    let per_relation = assemble::PerRelation {
        columns,
        constraints,
        indexes,
        view_deps: views::read_view_dependencies(&mut tx, &rels)?,
    };
    s.unhandled = unhandled::read_unhandled(&mut tx)?;
    s.functions = functions::read_functions(&mut tx)?;
    s.triggers = functions::read_triggers(&mut tx)?;
    tx.commit()
        .map_err(|e| db_error("cannot finish reading the catalog", &e))?;
    assemble::assemble(&mut s, &rels, per_relation);
    // Triggers of relations not compared as tables or views (partitions, inheritance
    // children) are not compared either.
    let (kept, others): (BTreeMap<_, _>, BTreeMap<_, _>) = std::mem::take(&mut s.triggers)
        .into_iter()
        .partition(|((t, _), _)| s.tables.contains_key(t) || s.views.contains_key(t));
    s.triggers = kept;
    for ((t, name), tg) in others {
        let key = ObjectKey {
            kind: "trigger".into(),
            name: format!("{name} on {}", t.sql()),
        };
        s.unhandled.insert(key, tg.definition);
    }
    Ok(s)
}

/// The oids of `opts.exclude_relations` that exist.
fn excluded_oids(tx: &mut Transaction, opts: &IntrospectOptions) -> Result<Vec<u32>> {
    let mut excluded = Vec::new();
    for rel in &opts.exclude_relations {
        let row = crate::db::query::one(
            tx,
            "SELECT pg_catalog.to_regclass($1)::pg_catalog.oid",
            &[(rel, Type::TEXT)],
        )
        .map_err(|e| db_error("cannot resolve an excluded relation", &e))?;
        if let Some(oid) = row.get::<_, Option<u32>>(0) {
            excluded.push(oid);
        }
    }
    Ok(excluded)
}
