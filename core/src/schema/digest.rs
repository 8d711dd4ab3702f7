//! A catalog digest: one md5 of a database's schema, computed on the server in ONE round trip,
//! so that "is the schema the same as before?" costs a query instead of a full catalog read
//! ([`crate::schema::introspect()`]: a dozen queries, every row shipped and assembled). The
//! round trip (`migrate-check --round-trip`) compares digests after every step and reads the
//! full catalogs only when two digests differ, to describe the difference (or to accept what a
//! script declares it keeps).
//!
//! The digest covers at least everything the introspection reads — schemas, extensions,
//! relations (kind, persistence, partitioning, inheritance, options, view definitions),
//! columns (type, default, generated expression, identity and its sequence, collation,
//! position), constraints, indexes (method, key columns and expressions with their operator
//! classes, collations and orderings, INCLUDE columns, predicate, options, uniqueness),
//! every comment (`pg_description`, objects named by `pg_describe_object`), sequences
//! and their owners, enum labels, view dependencies, functions (`pg_get_functiondef`),
//! triggers and the objects autogenerate does not diff (the same query as
//! [`crate::schema::introspect()`] records them with) — with every object named, never by oid
//! (a dropped and recreated table has new oids and the same schema). So equal digests mean
//! equal introspected schemas; the digest may also see what the introspection leaves out
//! (an index's validity; not a dropped column's gap: positions count the live columns, and
//! an index names its columns), which can only make two digests differ where the schemas are equal — the caller
//! then reads both catalogs and compares them as before.
//!
//! Names come schema-qualified (`search_path = ''` for the read), in one read-only
//! REPEATABLE READ transaction, so two digests of one schema on two databases are equal.
//! The costly deparsers are avoided where raw catalog columns say the same (an index from
//! `pg_index` rather than `pg_get_indexdef`, comments in one pass over `pg_description`
//! rather than a look-up per object): the digest of a 1,000-table schema costs a fraction of
//! its full read. An index's key columns are looked up one by one (a join there hashed all of
//! `pg_opclass` once per index), and a caller digesting one connection many times prepares
//! the query once ([`Digester`]: the planning of this many-branch query was a third of a
//! digest at 100 tables).

use super::introspect::{not_ext, unhandled_sql, IntrospectOptions, USER_NS};
use crate::db::{db_error, quote_literal};
use crate::error::Result;
use postgres::{Client, SimpleQueryMessage};

/// The excluded relations' oids, set for the read (`retort.digest_excluded`).
const EXCLUDED: &str =
    "pg_catalog.string_to_array(pg_catalog.current_setting('retort.digest_excluded', true), ',')::pg_catalog.oid[]";

/// The digest query: one text line per catalog fact, sorted, hashed.
fn digest_sql() -> String {
    let not_excluded = |oid: &str| format!("NOT ({oid} = ANY (COALESCE({EXCLUDED}, '{{}}')))");
    let rel = not_excluded("c.oid");
    let unhandled = unhandled_sql();
    // extension members are the extension's (named with its schema above), as in the
    // introspection
    let not_ext_rel = not_ext("pg_catalog.pg_class", "c.oid");
    let not_ext_type = not_ext("pg_catalog.pg_type", "t.oid");
    let not_ext_proc = not_ext("pg_catalog.pg_proc", "p.oid");
    format!(
        "SELECT pg_catalog.md5(COALESCE(pg_catalog.string_agg(f.line, E'\\n' ORDER BY f.line COLLATE \"C\"), '')) FROM (
         SELECT pg_catalog.concat_ws('|', 'schema', n.nspname) AS line
           FROM pg_catalog.pg_namespace n WHERE {USER_NS}
         UNION ALL
         SELECT pg_catalog.concat_ws('|', 'comment', pg_catalog.pg_describe_object(d.classoid, d.objoid, d.objsubid), d.description)
           FROM pg_catalog.pg_description d WHERE d.objoid >= 16384
         UNION ALL
         SELECT pg_catalog.concat_ws('|', 'extension', e.extname, n.nspname)
           FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
         UNION ALL
         SELECT pg_catalog.concat_ws('|', 'relation', n.nspname, c.relname, c.relkind, c.relpersistence, c.relispartition,
                  (SELECT pg_catalog.string_agg(i.inhparent::pg_catalog.regclass::text, ',' ORDER BY i.inhseqno) FROM pg_catalog.pg_inherits i WHERE i.inhrelid = c.oid),
                  CASE WHEN c.relkind IN ('v', 'm') THEN pg_catalog.pg_get_viewdef(c.oid, true) END,
                  c.reloptions::text,
                  CASE WHEN c.relkind = 'p' THEN pg_catalog.pg_get_partkeydef(c.oid) WHEN c.relispartition THEN pg_catalog.pg_get_expr(c.relpartbound, c.oid) END,
                  c.relrowsecurity, c.relforcerowsecurity, c.reloftype::pg_catalog.regtype::text)
           FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S', 'c') AND {USER_NS} AND {rel} AND {not_ext_rel}
         UNION ALL
         SELECT pg_catalog.concat_ws('|', 'column', c.oid::pg_catalog.regclass::text,
                  pg_catalog.row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum),
                  a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attgenerated, a.attidentity,
                  pg_catalog.pg_get_expr(d.adbin, d.adrelid),
                  CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation
                       THEN pg_catalog.quote_ident(cn.nspname) || '.' || pg_catalog.quote_ident(co.collname) END,
                  (SELECT pg_catalog.concat_ws(',', pg_catalog.format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle)
                     FROM pg_catalog.pg_depend sd JOIN pg_catalog.pg_sequence s ON s.seqrelid = sd.objid
                    WHERE a.attidentity <> '' AND sd.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND sd.refobjid = a.attrelid
                      AND sd.refobjsubid = a.attnum AND sd.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND sd.deptype = 'i' LIMIT 1))
           FROM pg_catalog.pg_attribute a
           JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
           JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
           LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
           LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation
           LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
          WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'c') AND {USER_NS} AND {rel}
         UNION ALL
         SELECT pg_catalog.concat_ws('|', 'constraint', con.conrelid::pg_catalog.regclass::text, con.contypid::pg_catalog.regtype::text,
                  con.conname, con.contype, pg_catalog.pg_get_constraintdef(con.oid), con.convalidated, con.condeferrable, con.condeferred,
                  CASE WHEN con.conindid <> 0 THEN con.conindid::pg_catalog.regclass::text END)
           FROM pg_catalog.pg_constraint con JOIN pg_catalog.pg_namespace n ON n.oid = con.connamespace
           LEFT JOIN pg_catalog.pg_class c ON c.oid = con.conrelid
          WHERE {USER_NS} AND (con.conrelid = 0 OR {rel})
         UNION ALL
         SELECT pg_catalog.concat_ws('|', 'index', c.oid::pg_catalog.regclass::text, ic.relname, am.amname,
                  (SELECT pg_catalog.string_agg(
                            COALESCE((SELECT a.attname::text FROM pg_catalog.pg_attribute a
                                       WHERE a.attrelid = i.indrelid AND a.attnum = k.attnum AND k.attnum > 0), '(expression)') || ' '
                            || COALESCE((SELECT opc.opcname::text FROM pg_catalog.pg_opclass opc WHERE opc.oid = i.indclass[k.n - 1]), '') || ' '
                            || COALESCE((SELECT col.collname::text FROM pg_catalog.pg_collation col
                                          WHERE col.oid = i.indcollation[k.n - 1] AND col.oid <> 100), ''), ',' ORDER BY k.n)
                     FROM pg_catalog.unnest(i.indkey::pg_catalog.int2[]) WITH ORDINALITY k(attnum, n)),
                  i.indnkeyatts, i.indoption::text, i.indisprimary, i.indisunique, i.indisexclusion, i.indnullsnotdistinct,
                  i.indimmediate, i.indisvalid, ic.reloptions::text,
                  pg_catalog.pg_get_expr(i.indexprs, i.indrelid), pg_catalog.pg_get_expr(i.indpred, i.indrelid),
                  (SELECT pg_catalog.string_agg(ia.attnum || ' ' || ia.attoptions::text, ',' ORDER BY ia.attnum)
                     FROM pg_catalog.pg_attribute ia WHERE ia.attrelid = i.indexrelid AND ia.attoptions IS NOT NULL))
           FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
           JOIN pg_catalog.pg_am am ON am.oid = ic.relam
           JOIN pg_catalog.pg_class c ON c.oid = i.indrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          WHERE {USER_NS} AND {rel}
         UNION ALL
         SELECT pg_catalog.concat_ws('|', 'sequence', c.oid::pg_catalog.regclass::text, pg_catalog.format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement,
                  s.seqmin, s.seqmax, s.seqcache, s.seqcycle,
                  (SELECT pg_catalog.string_agg(d.deptype::text || ' ' || d.refobjid::pg_catalog.regclass::text || '.' || COALESCE(a.attname::text, ''), ',' ORDER BY 1)
                     FROM pg_catalog.pg_depend d
                     LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                    WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = s.seqrelid
                      AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.deptype IN ('a', 'i')))
           FROM pg_catalog.pg_sequence s JOIN pg_catalog.pg_class c ON c.oid = s.seqrelid
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          WHERE {USER_NS} AND {rel}
         UNION ALL
         SELECT pg_catalog.concat_ws('|', 'type', t.oid::pg_catalog.regtype::text, t.typtype,
                  (SELECT pg_catalog.string_agg(e.enumlabel::text, ',' ORDER BY e.enumsortorder) FROM pg_catalog.pg_enum e WHERE e.enumtypid = t.oid),
                  pg_catalog.format_type(t.typbasetype, t.typtypmod), t.typnotnull, t.typdefault)
           FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
          WHERE t.typtype IN ('e', 'd', 'r', 'm', 'b') AND {USER_NS} AND {not_ext_type}
            AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_type o WHERE o.typarray = t.oid)
         UNION ALL
         SELECT DISTINCT pg_catalog.concat_ws('|', 'view dependency', r.ev_class::pg_catalog.regclass::text, d.refobjid::pg_catalog.regclass::text, a.attname)
           FROM pg_catalog.pg_rewrite r
           JOIN pg_catalog.pg_class c ON c.oid = r.ev_class
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
           JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid = r.oid
                AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid <> r.ev_class
           LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid AND d.refobjsubid > 0
          WHERE r.rulename = '_RETURN' AND {USER_NS}
         UNION ALL
         SELECT pg_catalog.concat_ws('|', 'function', p.oid::pg_catalog.regprocedure::text, p.prokind,
                  CASE WHEN p.prokind IN ('f', 'p') THEN pg_catalog.pg_get_functiondef(p.oid) END,
                  pg_catalog.pg_get_function_result(p.oid))
           FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
          WHERE {USER_NS} AND {not_ext_proc}
         UNION ALL
         SELECT pg_catalog.concat_ws('|', 'trigger', c.oid::pg_catalog.regclass::text, t.tgname, pg_catalog.pg_get_triggerdef(t.oid),
                  t.tgfoid::pg_catalog.regprocedure::text, t.tgenabled)
           FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          WHERE NOT t.tgisinternal AND {USER_NS} AND {rel}
         UNION ALL
         SELECT pg_catalog.concat_ws('|', 'other', u.kind, u.name, u.fingerprint)
           FROM ({unhandled}) u(kind, name, fingerprint)
         ) f"
    )
}

/// The name of the digest's prepared statement on a connection ([`Digester`]).
const PREPARED: &str = "retort_catalog_digest";

/// The digest of the schema `client`'s database holds, leaving out what `opts` leaves out
/// (the version table, one tenant's schema only): a hex md5. One round trip (the simple
/// protocol's several statements in one message). The query is planned anew on each call: a
/// caller that digests one connection many times uses a [`Digester`].
pub fn catalog_digest(client: &mut Client, opts: &IntrospectOptions) -> Result<String> {
    let m = send(client, opts, &digest_sql())
        .map_err(|e| db_error("cannot compute the catalog digest", &e))?;
    last_row(&m)
}

/// Digests of ONE connection, many times (the round trip's shadow, twice per revision): the
/// first call prepares the query on the server (`PREPARE`, in the same message), the next
/// ones only `EXECUTE` it, so the planner's work on the dozen-branch query (about a third of
/// a digest's server time at 100 tables) is done once. A prepared statement has no
/// parameters here, so the server keeps one generic plan; the excluded relations are read
/// from settings made in each call's transaction, as with [`catalog_digest`]. The digest is
/// the same text either way.
///
/// Behind a pooler in transaction mode the next transaction may run on another server
/// session, where the statement does not exist (or already does): the digester then falls
/// back to [`catalog_digest`] for the rest of its calls.
#[derive(Debug, Default)]
pub struct Digester {
    state: Prepared,
}

#[derive(Debug, Default, Clone, Copy, PartialEq)]
enum Prepared {
    #[default]
    NotYet,
    Yes,
    /// A session without the statement, or with one of an earlier call: plain queries only.
    Never,
}

impl Digester {
    pub fn new() -> Digester {
        Digester::default()
    }

    /// [`catalog_digest`] of `client`, which must be the connection of every earlier call.
    pub fn digest(&mut self, client: &mut Client, opts: &IntrospectOptions) -> Result<String> {
        let query = match self.state {
            Prepared::Never => return catalog_digest(client, opts),
            Prepared::Yes => format!("EXECUTE {PREPARED}"),
            // prepared after `search_path = ''` (as the plain query is analysed); a prepared
            // statement outlives the transaction it was made in
            Prepared::NotYet => format!(
                "PREPARE {PREPARED} AS {};\n         EXECUTE {PREPARED}",
                digest_sql()
            ),
        };
        match send(client, opts, &query) {
            Ok(m) => {
                self.state = Prepared::Yes;
                last_row(&m)
            }
            Err(e) => {
                use postgres::error::SqlState;
                let code = e.code();
                if code == Some(&SqlState::INVALID_SQL_STATEMENT_NAME)
                    || code == Some(&SqlState::DUPLICATE_PSTATEMENT)
                {
                    self.state = Prepared::Never;
                    return catalog_digest(client, opts);
                }
                if self.state == Prepared::NotYet {
                    // PREPARE is not undone by the ROLLBACK: the next call prepares it again
                    let _ = client.batch_execute(&format!("DEALLOCATE {PREPARED}"));
                }
                Err(db_error("cannot compute the catalog digest", &e))
            }
        }
    }
}

/// Runs `query` (the digest, or its prepared statement's EXECUTE) in its read-only
/// transaction with the settings it reads; on an error, ends that transaction.
fn send(
    client: &mut Client,
    opts: &IntrospectOptions,
    query: &str,
) -> std::result::Result<Vec<SimpleQueryMessage>, postgres::Error> {
    let excluded: Vec<String> = opts
        .exclude_relations
        .iter()
        .map(|r| quote_literal(r))
        .collect();
    let only = opts.only_schema.as_deref().unwrap_or("");
    let sql = format!(
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
         SELECT pg_catalog.set_config('retort.digest_excluded',
                  COALESCE((SELECT pg_catalog.string_agg(o::pg_catalog.oid::text, ',') FROM pg_catalog.unnest(ARRAY[{}]::text[]) x,
                            LATERAL pg_catalog.to_regclass(x) o WHERE o IS NOT NULL), ''), true),
                pg_catalog.set_config('retort.only_schema', {}, true);
         SET LOCAL search_path = '';
         {};
         COMMIT",
        excluded.join(", "),
        quote_literal(only),
        query
    );
    client.simple_query(&sql).inspect_err(|_| {
        // the transaction is left open by a failed statement: end it
        let _ = client.batch_execute("ROLLBACK");
    })
}

/// The digest: the last row of the messages (the set_config row comes first).
fn last_row(messages: &[SimpleQueryMessage]) -> Result<String> {
    // the rows of the last SELECT: the set_config row first, then the digest
    let digest = messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r),
            _ => None,
        })
        .last()
        .and_then(|r| r.get(0).map(str::to_string));
    digest.ok_or_else(|| {
        crate::error::Error::new(
            crate::error::ErrorKind::Database,
            "cannot compute the catalog digest: the server returned no row",
        )
    })
}
