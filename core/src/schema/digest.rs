//! A digest of a database's schema, computed on the server in one query: the fast way to ask
//! "are these two databases' schemas the same?" many times (after every step of
//! `migrate-import`'s verification, and of any walk that compares two shadows step by step).
//!
//! [`catalog_digest`] hashes (md5) one sorted line per catalog object — schemas and their
//! comments, extensions, relations (kind, persistence, options, grants, row security, view
//! definitions, partitioning, access method, comments), columns (type, nullability, default,
//! identity, generation, collation, grants, comments), constraints, indexes (definition,
//! validity), sequences, functions and procedures (their definitions), triggers, enums,
//! domains, ranges, policies and rules — as `pg_get_*def` print them. Object identifiers
//! never enter it, so two databases built by the same statements have the same digest.
//!
//! It reads at least what [`super::introspect()`] and the schema diff compare, with the same
//! [`IntrospectOptions`] (the relations left out, such as the version table and whatever
//! depends on it; the schemas whose existence is not compared; one schema only). So equal
//! digests mean no difference the diff could report; different digests mean: read both
//! catalogs in full and let the diff say what differs (it may find nothing the diff compares,
//! such as a column order: the caller decides). Reading a catalog in full costs dozens of
//! queries; the digest costs one round trip.

use super::introspect::IntrospectOptions;
use crate::db::db_error;
use crate::error::Result;
use postgres::types::Type;
use postgres::Client;

/// The query: `$1` the relations left out (resolved by `to_regclass` with the session's
/// search_path), `$2` the schemas whose existence is not compared, `$3` one schema only (or
/// empty: all user schemas).
const DIGEST_SQL: &str = r#"
WITH ex AS (
  SELECT COALESCE(pg_catalog.array_agg(pg_catalog.to_regclass(x)::pg_catalog.oid)
           FILTER (WHERE pg_catalog.to_regclass(x) IS NOT NULL), '{}') AS oids
  FROM pg_catalog.unnest($1::text[]) x
),
ns AS (
  SELECT n.oid, n.nspname::text AS nspname FROM pg_catalog.pg_namespace n
  WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_)'
    AND ($3 = '' OR n.nspname = $3)
),
noext AS (
  SELECT d.classid, d.objid FROM pg_catalog.pg_depend d WHERE d.deptype = 'e'
),
rel AS (
  SELECT c.oid, ns.nspname || '.' || c.relname AS qname, c.relkind, c.relpersistence, c.reloptions,
         c.relacl, c.relrowsecurity, c.relforcerowsecurity, c.relam, c.relispartition, c.relpartbound
  FROM pg_catalog.pg_class c
  JOIN ns ON ns.oid = c.relnamespace, ex
  WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'c')
    AND c.oid <> ALL (ex.oids)
    AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                    WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
                      AND d.objid = c.oid AND d.refobjid = ANY (ex.oids))
    AND NOT EXISTS (SELECT 1 FROM noext x
                    WHERE x.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND x.objid = c.oid)
),
lines AS (
  SELECT 'n ' || ns.nspname || ' ' || COALESCE(pg_catalog.obj_description(ns.oid, 'pg_namespace'), '') AS l
  FROM ns WHERE ns.nspname <> ALL ($2::text[])
    AND NOT EXISTS (SELECT 1 FROM noext x
                    WHERE x.classid = 'pg_catalog.pg_namespace'::pg_catalog.regclass AND x.objid = ns.oid)
  UNION ALL
  SELECT 'x ' || e.extname || ' ' || e.extversion || ' ' || n.nspname
  FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
  UNION ALL
  SELECT 'c ' || c.qname || ' ' || c.relkind::text || c.relpersistence::text || ' ' || COALESCE(c.reloptions::text, '')
      || ' ' || COALESCE(c.relacl::text, '') || c.relrowsecurity::text || c.relforcerowsecurity::text
      || ' ' || COALESCE(am.amname, '') || ' ' || COALESCE(pg_catalog.obj_description(c.oid, 'pg_class'), '')
      || ' ' || CASE WHEN c.relkind IN ('v', 'm') THEN pg_catalog.pg_get_viewdef(c.oid, true) ELSE '' END
      || ' ' || CASE WHEN c.relkind = 'p' THEN pg_catalog.pg_get_partkeydef(c.oid)
                     WHEN c.relispartition THEN pg_catalog.pg_get_expr(c.relpartbound, c.oid) ELSE '' END
  FROM rel c LEFT JOIN pg_catalog.pg_am am ON am.oid = c.relam
  UNION ALL
  SELECT 'a ' || c.qname || '.' || a.attname || ' ' || pg_catalog.format_type(a.atttypid, a.atttypmod)
      || ' ' || a.attnotnull::text || a.attidentity::text || a.attgenerated::text
      || ' ' || COALESCE(pg_catalog.pg_get_expr(ad.adbin, ad.adrelid), '')
      || ' ' || COALESCE(co.collname, '') || ' ' || COALESCE(a.attacl::text, '')
      || ' ' || COALESCE(pg_catalog.col_description(c.oid, a.attnum), '')
  FROM pg_catalog.pg_attribute a JOIN rel c ON c.oid = a.attrelid
  LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
  LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation AND a.attcollation <> 100
  WHERE a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
  SELECT 'k ' || n.nspname || '.' || COALESCE(c.relname::text, t.typname::text, '') || ' ' || con.conname
      || ' ' || pg_catalog.pg_get_constraintdef(con.oid) || con.condeferrable::text || con.condeferred::text
      || con.convalidated::text || ' ' || COALESCE(pg_catalog.obj_description(con.oid, 'pg_constraint'), '')
  FROM pg_catalog.pg_constraint con JOIN ns n ON n.oid = con.connamespace
  LEFT JOIN pg_catalog.pg_class c ON c.oid = con.conrelid
  LEFT JOIN pg_catalog.pg_type t ON t.oid = con.contypid
  WHERE (con.conrelid = 0 OR con.conrelid IN (SELECT oid FROM rel))
  UNION ALL
  SELECT 'i ' || pg_catalog.pg_get_indexdef(i.indexrelid) || ' ' || i.indisvalid::text
      || ' ' || COALESCE(ic.reloptions::text, '')
      || ' ' || COALESCE(pg_catalog.obj_description(i.indexrelid, 'pg_class'), '')
  FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
  WHERE i.indrelid IN (SELECT oid FROM rel)
  UNION ALL
  SELECT 's ' || c.qname || ' ' || pg_catalog.format_type(s.seqtypid, NULL) || ' ' || s.seqstart
      || ' ' || s.seqincrement || ' ' || s.seqmax || ' ' || s.seqmin || ' ' || s.seqcache
      || ' ' || s.seqcycle::text
  FROM pg_catalog.pg_sequence s JOIN rel c ON c.oid = s.seqrelid
  UNION ALL
  SELECT 'f ' || n.nspname || '.' || p.proname || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid)
      || ') ' || p.prokind::text || ' ' || CASE WHEN p.prokind IN ('f', 'p', 'w')
                        THEN pg_catalog.pg_get_functiondef(p.oid)
                        ELSE pg_catalog.pg_get_function_result(p.oid) END
      || ' ' || COALESCE(p.proacl::text, '') || ' ' || COALESCE(pg_catalog.obj_description(p.oid, 'pg_proc'), '')
  FROM pg_catalog.pg_proc p JOIN ns n ON n.oid = p.pronamespace
  WHERE NOT EXISTS (SELECT 1 FROM noext x
                    WHERE x.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND x.objid = p.oid)
  UNION ALL
  SELECT 't ' || pg_catalog.pg_get_triggerdef(t.oid) || ' ' || t.tgenabled::text
  FROM pg_catalog.pg_trigger t
  WHERE NOT t.tgisinternal AND t.tgrelid IN (SELECT oid FROM rel)
  UNION ALL
  SELECT 'y ' || n.nspname || '.' || t.typname || ' ' || t.typtype::text
      || ' ' || CASE WHEN t.typtype = 'd' THEN pg_catalog.format_type(t.typbasetype, t.typtypmod) ELSE '' END
      || ' ' || t.typnotnull::text || ' ' || COALESCE(t.typdefault, '')
      || ' ' || COALESCE((SELECT pg_catalog.string_agg(e.enumlabel::text, ',' ORDER BY e.enumsortorder)
                          FROM pg_catalog.pg_enum e WHERE e.enumtypid = t.oid), '')
      || ' ' || COALESCE((SELECT pg_catalog.format_type(r.rngsubtype, NULL)
                          FROM pg_catalog.pg_range r WHERE r.rngtypid = t.oid), '')
      || ' ' || COALESCE(pg_catalog.obj_description(t.oid, 'pg_type'), '')
  FROM pg_catalog.pg_type t JOIN ns n ON n.oid = t.typnamespace
  WHERE t.typtype IN ('e', 'd', 'r', 'm')
    AND NOT EXISTS (SELECT 1 FROM noext x
                    WHERE x.classid = 'pg_catalog.pg_type'::pg_catalog.regclass AND x.objid = t.oid)
  UNION ALL
  SELECT 'p ' || c.qname || ' ' || p.polname || ' ' || p.polcmd::text || p.polpermissive::text
      || ' ' || p.polroles::text || ' ' || COALESCE(pg_catalog.pg_get_expr(p.polqual, p.polrelid), '')
      || ' ' || COALESCE(pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid), '')
  FROM pg_catalog.pg_policy p JOIN rel c ON c.oid = p.polrelid
  UNION ALL
  SELECT 'r ' || pg_catalog.pg_get_ruledef(r.oid)
  FROM pg_catalog.pg_rewrite r JOIN rel c ON c.oid = r.ev_class
  WHERE r.rulename <> '_RETURN'
)
SELECT pg_catalog.md5(COALESCE(pg_catalog.string_agg(l, E'\n' ORDER BY l COLLATE "C"), '')),
       pg_catalog.count(*)::int8
FROM lines
"#;

/// The digest of the schema `client` is connected to, left out what `opts` leaves out: an
/// md5 of every object's definition (see the module documentation), and the number of lines
/// it covers.
pub fn catalog_digest(client: &mut Client, opts: &IntrospectOptions) -> Result<(String, i64)> {
    let only = opts.only_schema.clone().unwrap_or_default();
    let row = crate::db::query::one(
        client,
        DIGEST_SQL,
        &[
            (&opts.exclude_relations, Type::TEXT_ARRAY),
            (&opts.ignore_schemas, Type::TEXT_ARRAY),
            (&only, Type::TEXT),
        ],
    )
    .map_err(|e| db_error("cannot compute the schema's digest", &e))?;
    Ok((row.get(0), row.get(1)))
}
