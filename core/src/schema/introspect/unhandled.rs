//! Objects autogenerate does not compare (aggregates, triggers of partitioned and foreign tables,
//! policies, row level security, rules, domains, composite, range and base types, event
//! triggers): each is read as (kind, name) -> a fingerprint of its definition, so that a
//! difference can be reported as "not compared" instead of being silently left out.

use super::{not_ext, query, USER_NS};
use crate::error::Result;
use crate::schema::model::ObjectKey;
use postgres::Transaction;
use std::collections::BTreeMap;

/// Object -> fingerprint.
/// The query of the objects autogenerate does not diff: (kind, name, fingerprint) rows. The
/// catalog digest (`schema::digest`) hashes the same rows.
pub(crate) fn unhandled_sql() -> String {
    format!(
        "SELECT 'aggregate', p.oid::pg_catalog.regprocedure::text, pg_catalog.pg_get_function_result(p.oid)
         FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace WHERE p.prokind = 'a' AND {USER_NS} AND {}
         UNION ALL
         SELECT 'trigger', t.tgname::text || ' on ' || t.tgrelid::pg_catalog.regclass::text, pg_catalog.pg_get_triggerdef(t.oid)
         FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         WHERE NOT t.tgisinternal AND c.relkind NOT IN ('r', 'v', 'm') AND {USER_NS} AND {}
         UNION ALL
         SELECT 'policy', p.polname::text || ' on ' || p.polrelid::pg_catalog.regclass::text,
                p.polcmd::text || p.polpermissive::text || p.polroles::text || COALESCE(pg_catalog.pg_get_expr(p.polqual, p.polrelid), '') || '|' || COALESCE(pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid), '')
         FROM pg_catalog.pg_policy p JOIN pg_catalog.pg_class c ON c.oid = p.polrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE {USER_NS}
         UNION ALL
         SELECT 'row level security', c.oid::pg_catalog.regclass::text, c.relrowsecurity::text || c.relforcerowsecurity::text
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE (c.relrowsecurity OR c.relforcerowsecurity) AND {USER_NS}
         UNION ALL
         SELECT 'rule', r.rulename::text || ' on ' || r.ev_class::pg_catalog.regclass::text, pg_catalog.pg_get_ruledef(r.oid)
         FROM pg_catalog.pg_rewrite r JOIN pg_catalog.pg_class c ON c.oid = r.ev_class JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         WHERE r.rulename <> '_RETURN' AND {USER_NS}
         UNION ALL
         SELECT CASE t.typtype WHEN 'd' THEN 'domain' WHEN 'c' THEN 'composite type' WHEN 'r' THEN 'range type' ELSE 'base type' END,
                t.oid::pg_catalog.regtype::text,
                CASE t.typtype
                  WHEN 'd' THEN pg_catalog.format_type(t.typbasetype, t.typtypmod) || ' ' || t.typnotnull::text || ' ' || COALESCE(t.typdefault, '') || ' ' ||
                       COALESCE((SELECT pg_catalog.string_agg(pg_catalog.pg_get_constraintdef(k.oid), ', ' ORDER BY k.conname) FROM pg_catalog.pg_constraint k WHERE k.contypid = t.oid), '')
                  WHEN 'c' THEN (SELECT pg_catalog.string_agg(a.attname::text || ' ' || pg_catalog.format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum)
                                 FROM pg_catalog.pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped)
                  WHEN 'r' THEN (SELECT pg_catalog.format_type(rg.rngsubtype, NULL) FROM pg_catalog.pg_range rg WHERE rg.rngtypid = t.oid)
                  ELSE t.typname::text END
         FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
         WHERE t.typtype IN ('d', 'c', 'r', 'b') AND {USER_NS} AND {}
           AND (t.typtype <> 'c' OR (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = t.typrelid) = 'c')
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_type o WHERE o.typarray = t.oid)
         UNION ALL
         SELECT 'event trigger', e.evtname::text, e.evtevent::text || ' ' || e.evtfoid::pg_catalog.regproc::text || ' ' || e.evtenabled::text
         FROM pg_catalog.pg_event_trigger e WHERE {}",
        not_ext("pg_catalog.pg_proc", "p.oid"),
        not_ext("pg_catalog.pg_trigger", "t.oid"),
        not_ext("pg_catalog.pg_type", "t.oid"),
        not_ext("pg_catalog.pg_event_trigger", "e.oid"),
    )
}

pub(super) fn read_unhandled(tx: &mut Transaction) -> Result<BTreeMap<ObjectKey, String>> {
    let unhandled_sql = unhandled_sql();
    let mut out = BTreeMap::new();
    for r in query(tx, "other objects", &unhandled_sql)? {
        let fp: Option<String> = r.get(2);
        let key = ObjectKey {
            kind: r.get(0),
            name: r.get(1),
        };
        out.insert(key, fp.unwrap_or_default());
    }
    Ok(out)
}
