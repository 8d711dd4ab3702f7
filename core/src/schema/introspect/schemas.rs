//! Schemas (with their comments) and extensions (with the schema they live in).

use super::{not_ext, query, IntrospectOptions, USER_NS};
use crate::error::Result;
use postgres::Transaction;
use std::collections::BTreeMap;

/// The comment `initdb` gives the public schema. A database where `public` was dropped and
/// created again (the reset recipe `DROP SCHEMA public CASCADE; CREATE SCHEMA public;`) has
/// none, while shadows made from template0 have it: both read as no comment, so the reset is
/// not drift.
const PUBLIC_DEFAULT_COMMENT: &str = "standard public schema";

/// Schema name -> comment, without the ignored schemas and extension members.
pub(super) fn read_schemas(
    tx: &mut Transaction,
    opts: &IntrospectOptions,
) -> Result<BTreeMap<String, Option<String>>> {
    let mut out = BTreeMap::new();
    for r in query(tx, "schemas", &format!(
        "SELECT n.nspname::text, pg_catalog.obj_description(n.oid, 'pg_namespace') FROM pg_catalog.pg_namespace n WHERE {USER_NS} AND {}",
        not_ext("pg_catalog.pg_namespace", "n.oid")
    ))? {
        let name: String = r.get(0);
        let mut comment: Option<String> = r.get(1);
        if name == "public" && comment.as_deref() == Some(PUBLIC_DEFAULT_COMMENT) {
            comment = None;
        }
        if !opts.ignore_schemas.contains(&name) {
            out.insert(name, comment);
        }
    }
    Ok(out)
}

/// Extension name -> its schema (`plpgsql` left out).
pub(super) fn read_extensions(tx: &mut Transaction) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for r in query(tx, "extensions", "SELECT e.extname::text, n.nspname::text FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname <> 'plpgsql'")? {
        out.insert(r.get(0), r.get(1));
    }
    Ok(out)
}
