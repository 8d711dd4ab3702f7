//! Reads a database's schema from `pg_catalog` into a [`Schema`].
//!
//! A fixed number of queries (one per object kind, never one per table), run in one
//! read-only REPEATABLE READ transaction with `search_path = ''` so every name PostgreSQL's
//! deparsers print (`format_type`, `pg_get_expr`, `pg_get_constraintdef`, `pg_get_indexdef`,
//! `pg_get_viewdef`) comes back schema-qualified. Left out: system schemas (`pg_catalog`,
//! `information_schema`, `pg_toast*`, `pg_temp_*`), extension members (`pg_depend` deptype
//! `'e'`), identity sequences (deptype `'i'`, compared as part of their column), indexes owned
//! by constraints, the version table, and `plpgsql`.

use super::model::*;
use crate::db::db_error;
use crate::error::Result;
use postgres::{Client, IsolationLevel};
use std::collections::{BTreeMap, HashMap};

/// What to leave out.
#[derive(Debug, Clone, Default)]
pub struct IntrospectOptions {
    /// Relations to leave out, as SQL names resolved with the connection's search_path
    /// (e.g. the version table, `alembic_version`).
    pub exclude_relations: Vec<String>,
    /// Schemas whose existence is not compared (their objects still are).
    pub ignore_schemas: Vec<String>,
}

const USER_NS: &str =
    "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_)'";

fn not_ext(classid: &str, oid: &str) -> String {
    format!("NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend xd WHERE xd.classid = '{classid}'::pg_catalog.regclass AND xd.objid = {oid} AND xd.deptype = 'e')")
}

/// Reads the schema. Returns an error only when a catalog query fails.
pub fn introspect(client: &mut Client, opts: &IntrospectOptions) -> Result<Schema> {
    let mut tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(|e| db_error("cannot start reading the catalog", &e))?;
    let mut excluded: Vec<u32> = Vec::new();
    for rel in &opts.exclude_relations {
        let row = tx
            .query_one("SELECT pg_catalog.to_regclass($1)::pg_catalog.oid", &[rel])
            .map_err(|e| db_error("cannot resolve an excluded relation", &e))?;
        if let Some(oid) = row.get::<_, Option<u32>>(0) {
            excluded.push(oid);
        }
    }
    tx.batch_execute("SET LOCAL search_path = ''")
        .map_err(|e| db_error("cannot set search_path", &e))?;
    let q = |tx: &mut postgres::Transaction, what: &str, sql: &str| {
        tx.query(sql, &[])
            .map_err(|e| db_error(&format!("cannot read {what}"), &e))
    };
    let mut s = Schema::default();

    // 1. schemas
    for r in q(&mut tx, "schemas", &format!(
        "SELECT n.nspname::text, pg_catalog.obj_description(n.oid, 'pg_namespace') FROM pg_catalog.pg_namespace n WHERE {USER_NS} AND {}",
        not_ext("pg_catalog.pg_namespace", "n.oid")
    ))? {
        let name: String = r.get(0);
        if !opts.ignore_schemas.contains(&name) {
            s.schemas.insert(name, r.get(1));
        }
    }

    // 2. extensions
    for r in q(&mut tx, "extensions", "SELECT e.extname::text, n.nspname::text FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname <> 'plpgsql'")? {
        s.extensions.insert(r.get(0), r.get(1));
    }

    // 3. enums
    for r in q(&mut tx, "enum types", &format!(
        "SELECT n.nspname::text, t.typname::text, pg_catalog.array_agg(e.enumlabel::text ORDER BY e.enumsortorder)
         FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace JOIN pg_catalog.pg_enum e ON e.enumtypid = t.oid
         WHERE {USER_NS} AND {} GROUP BY 1, 2",
        not_ext("pg_catalog.pg_type", "t.oid")
    ))? {
        let name = QName::new(r.get::<_, String>(0), r.get::<_, String>(1));
        s.enums.insert(name.clone(), EnumType { name, values: r.get(2) });
    }

    // 4. relations
    struct Rel {
        name: QName,
        kind: String,
        unlogged: bool,
        partition: bool,
        inherits: bool,
        comment: Option<String>,
        viewdef: Option<String>,
        options: Vec<String>,
        part: Option<String>,
    }
    let mut rels: HashMap<u32, Rel> = HashMap::new();
    for r in q(&mut tx, "relations", &format!(
        "SELECT c.oid, n.nspname::text, c.relname::text, c.relkind::text, c.relpersistence = 'u', c.relispartition,
                EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhrelid = c.oid),
                pg_catalog.obj_description(c.oid, 'pg_class'),
                CASE WHEN c.relkind IN ('v', 'm') THEN pg_catalog.pg_get_viewdef(c.oid, true) END,
                COALESCE(c.reloptions, '{{}}')::text[],
                CASE WHEN c.relkind = 'p' THEN pg_catalog.pg_get_partkeydef(c.oid) WHEN c.relispartition THEN pg_catalog.pg_get_expr(c.relpartbound, c.oid) END
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND {USER_NS} AND {}",
        not_ext("pg_catalog.pg_class", "c.oid")
    ))? {
        let oid: u32 = r.get(0);
        if excluded.contains(&oid) {
            continue;
        }
        rels.insert(
            oid,
            Rel {
                name: QName::new(r.get::<_, String>(1), r.get::<_, String>(2)),
                kind: r.get(3),
                unlogged: r.get(4),
                partition: r.get(5),
                inherits: r.get(6),
                comment: r.get(7),
                viewdef: r.get(8),
                options: r.get(9),
                part: r.get(10),
            },
        );
    }
    // Relations compared as tables; the others are reported as not compared.
    let is_table = |rel: &Rel| rel.kind == "r" && !rel.partition && !rel.inherits;

    // 5. columns
    let mut columns: HashMap<u32, Vec<Column>> = HashMap::new();
    for r in q(&mut tx, "columns", &format!(
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
        let name: String = r.get(1);
        let identity = match r.get::<_, String>(6).as_str() {
            "a" | "d" if r.get::<_, Option<String>>(12).is_some() => Some(IdentityDef {
                kind: if r.get::<_, String>(6) == "a" { Identity::Always } else { Identity::ByDefault },
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
            }),
            _ => None,
        };
        let enum_type = match (r.get::<_, Option<String>>(9), r.get::<_, Option<String>>(10)) {
            (Some(sch), Some(n)) => Some(QName::new(sch, n)),
            _ => None,
        };
        columns.entry(relid).or_default().push(Column {
            name,
            type_sql: r.get(2),
            enum_type,
            is_array: r.get(11),
            not_null: r.get(3),
            default: r.get(4),
            identity,
            generated: r.get(5),
            collation: r.get(7),
            comment: r.get(8),
        });
    }

    // 6. constraints
    let mut constraints: HashMap<u32, Vec<Constraint>> = HashMap::new();
    for r in q(&mut tx, "constraints", &format!(
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

    // 7. indexes (not those owned by a constraint)
    let mut indexes: HashMap<u32, Vec<Index>> = HashMap::new();
    for r in q(&mut tx, "indexes", &format!(
        "SELECT i.indrelid, ic.relname::text, pg_catalog.quote_ident(ic.relname), pg_catalog.pg_get_indexdef(i.indexrelid), am.amname::text,
                COALESCE(ic.reloptions, '{{}}')::text[], i.indisunique, pg_catalog.pg_get_expr(i.indpred, i.indrelid),
                ARRAY(SELECT DISTINCT a.attname::text FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                      WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = i.indexrelid AND d.refobjid = i.indrelid AND d.refobjsubid > 0 ORDER BY 1),
                pg_catalog.obj_description(i.indexrelid, 'pg_class')
         FROM pg_catalog.pg_index i
         JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
         JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_catalog.pg_am am ON am.oid = ic.relam
         WHERE c.relkind IN ('r', 'm', 'p') AND {USER_NS}
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid AND k.contype IN ('p', 'u', 'x'))"
    ))? {
        let relid: u32 = r.get(0);
        if !rels.contains_key(&relid) {
            continue;
        }
        let unique: bool = r.get(6);
        let quoted: String = r.get(2);
        let def: String = r.get(3);
        let options: Vec<String> = r.get(5);
        let predicate: Option<String> = r.get(7);
        let params: Vec<(String, String)> =
            options.iter().map(|o| o.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).unwrap_or((o.clone(), String::new()))).collect();
        indexes.entry(relid).or_default().push(Index {
            name: r.get(1),
            unique,
            method: r.get(4),
            body: index_body(&def, &quoted, unique, &params, predicate.as_deref()),
            params,
            predicate,
            columns: r.get(8),
            comment: r.get(9),
        });
    }

    // 8. sequences (not identity sequences)
    for r in q(&mut tx, "sequences", &format!(
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
        s.sequences.insert(
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

    // 9. what views read
    let mut view_deps: HashMap<u32, BTreeMap<QName, Vec<String>>> = HashMap::new();
    for r in q(&mut tx, "view dependencies", &format!(
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

    // 10. objects autogenerate does not compare: (kind, name, fingerprint)
    let unhandled_sql = format!(
        "SELECT CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate' ELSE 'function' END, p.oid::pg_catalog.regprocedure::text,
                CASE WHEN p.prokind = 'a' THEN pg_catalog.pg_get_function_result(p.oid) ELSE pg_catalog.pg_get_functiondef(p.oid) END
         FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace WHERE {USER_NS} AND {}
         UNION ALL
         SELECT 'trigger', t.tgname::text || ' on ' || t.tgrelid::pg_catalog.regclass::text, pg_catalog.pg_get_triggerdef(t.oid)
         FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         WHERE NOT t.tgisinternal AND {USER_NS} AND {}
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
    );
    for r in q(&mut tx, "other objects", &unhandled_sql)? {
        let fp: Option<String> = r.get(2);
        s.unhandled
            .insert((r.get(0), r.get(1)), fp.unwrap_or_default());
    }
    tx.commit()
        .map_err(|e| db_error("cannot finish reading the catalog", &e))?;

    // Assemble.
    let mut oids: Vec<u32> = rels.keys().copied().collect();
    oids.sort_unstable();
    for oid in oids {
        let rel = &rels[&oid];
        let cols = columns.remove(&oid).unwrap_or_default();
        match rel.kind.as_str() {
            "v" | "m" => {
                let mut ixs = BTreeMap::new();
                for ix in indexes.remove(&oid).unwrap_or_default() {
                    ixs.insert(ix.name.clone(), ix);
                }
                s.views.insert(
                    rel.name.clone(),
                    View {
                        name: rel.name.clone(),
                        materialized: rel.kind == "m",
                        definition: rel.viewdef.clone().unwrap_or_default(),
                        options: rel.options.clone(),
                        comment: rel.comment.clone(),
                        column_comments: cols
                            .iter()
                            .filter_map(|c| c.comment.clone().map(|t| (c.name.clone(), t)))
                            .collect(),
                        indexes: ixs,
                        depends_on: view_deps.remove(&oid).unwrap_or_default(),
                    },
                );
            }
            _ if is_table(rel) => {
                let mut t = Table {
                    name: rel.name.clone(),
                    columns: cols,
                    constraints: BTreeMap::new(),
                    indexes: BTreeMap::new(),
                    comment: rel.comment.clone(),
                    unlogged: rel.unlogged,
                };
                for c in constraints.remove(&oid).unwrap_or_default() {
                    t.constraints.insert(c.name.clone(), c);
                }
                for ix in indexes.remove(&oid).unwrap_or_default() {
                    t.indexes.insert(ix.name.clone(), ix);
                }
                s.tables.insert(rel.name.clone(), t);
            }
            _ => {
                let kind = if rel.kind == "p" {
                    "partitioned table"
                } else if rel.partition {
                    "partition"
                } else if rel.kind == "f" {
                    "foreign table"
                } else {
                    "inheritance child table"
                };
                let mut fp: Vec<String> = cols
                    .iter()
                    .map(|c| format!("{} {} {} {:?}", c.name, c.type_sql, c.not_null, c.default))
                    .collect();
                fp.extend(rel.part.clone());
                for c in constraints.remove(&oid).unwrap_or_default() {
                    fp.push(format!("{} {}", c.name, c.definition));
                }
                for ix in indexes.remove(&oid).unwrap_or_default() {
                    fp.push(format!("{} {}", ix.name, ix.body));
                }
                s.unhandled
                    .insert((kind.to_string(), rel.name.sql()), fp.join("; "));
            }
        }
    }
    Ok(s)
}

/// `pg_get_indexdef` minus `CREATE [UNIQUE] INDEX name ON `, ` WITH (...)` and ` WHERE ...`:
/// what stays is `[ONLY ]table USING method (keys)[ INCLUDE (...)][ NULLS NOT DISTINCT]`.
pub fn index_body(
    def: &str,
    quoted_name: &str,
    unique: bool,
    params: &[(String, String)],
    predicate: Option<&str>,
) -> String {
    let prefix = format!(
        "CREATE {}INDEX {quoted_name} ON ",
        if unique { "UNIQUE " } else { "" }
    );
    let mut body = def.strip_prefix(&prefix).unwrap_or(def).to_string();
    if let Some(p) = predicate {
        if let Some(b) = body.strip_suffix(&format!(" WHERE {p}")) {
            body = b.to_string();
        }
    }
    if !params.is_empty() {
        let with = format!(
            " WITH ({})",
            params
                .iter()
                .map(|(k, v)| format!("{k}='{}'", v.replace('\'', "''")))
                .collect::<Vec<_>>()
                .join(", ")
        );
        if let Some(b) = body.strip_suffix(&with) {
            body = b.to_string();
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_body_strips_name_with_and_where() {
        let p = vec![
            ("m".to_string(), "16".to_string()),
            ("ef_construction".to_string(), "64".to_string()),
        ];
        assert_eq!(
            index_body(
                "CREATE INDEX t_e ON public.t USING hnsw (e public.vector_cosine_ops) WITH (m='16', ef_construction='64')",
                "t_e",
                false,
                &p,
                None
            ),
            "public.t USING hnsw (e public.vector_cosine_ops)"
        );
        assert_eq!(
            index_body("CREATE UNIQUE INDEX \"X\" ON public.t USING btree (lower(n)) INCLUDE (id) WHERE (id > 3)", "\"X\"", true, &[], Some("(id > 3)")),
            "public.t USING btree (lower(n)) INCLUDE (id)"
        );
    }
}
