//! What the database says about the tables the scripts touch, read once before linting:
//! row counts (the planner's estimate when the table was analyzed, else a count stopped at
//! 10,000,001), the types of vector columns, the vector indexes, and `maintenance_work_mem`
//! (which decides whether an HNSW build fits in memory).

use super::text::normalize_name;
use crate::error::Result;
use postgres::types::Type;
use postgres::GenericClient;
use std::collections::HashMap;

/// A count stops here: "at least 10,000,000 rows" is enough to know a build is long.
pub const COUNT_CAP: i64 = 10_000_001;

#[derive(Debug, Clone, Default)]
pub struct DbFacts {
    /// `maintenance_work_mem` in bytes.
    pub maintenance_work_mem: u64,
    /// Tables (names as [`normalize_name`] writes them) and their rows.
    pub tables: HashMap<String, Rows>,
    /// (table, column, type as `format_type` writes it) for vector, halfvec, sparsevec and bit
    /// columns.
    pub vector_columns: Vec<(String, String, String)>,
    /// (index, table, access method) for hnsw and ivfflat indexes.
    pub vector_indexes: Vec<(String, String, String)>,
    /// Every index (names as [`normalize_name`] writes them) and its table.
    pub indexes: HashMap<String, String>,
    /// The revisions not applied on the database: what a run applies. Tables they create do
    /// not exist before the run ([`super::scope`]). Set by the caller.
    pub pending: std::collections::BTreeSet<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rows {
    pub count: u64,
    /// From `pg_class.reltuples` (as of the last ANALYZE), not counted.
    pub estimated: bool,
}

impl Rows {
    pub fn describe(&self) -> String {
        let n = group(self.count);
        if self.count >= (COUNT_CAP - 1) as u64 && !self.estimated {
            format!("at least {n} rows")
        } else if self.estimated {
            format!("about {n} rows")
        } else {
            format!("{n} rows")
        }
    }
}

pub use crate::words::group;

/// Bytes as "1.3 GB", "512 MB", "64 kB" (powers of 1024, as PostgreSQL's settings).
pub fn bytes(n: u64) -> String {
    let units = [("GB", 1u64 << 30), ("MB", 1 << 20), ("kB", 1 << 10)];
    for (u, size) in units {
        if n >= size {
            let v = n as f64 / size as f64;
            return if v >= 10.0 {
                format!("{v:.0} {u}")
            } else {
                format!("{v:.1} {u}")
            };
        }
    }
    format!("{n} bytes")
}

/// A table's name as the scripts write it: bare when the connection's `search_path` finds it
/// by that name (`public` by default; a tenant's schema for a schema-per-tenant target),
/// else schema-qualified.
const NAME: &str = "CASE WHEN pg_catalog.pg_table_is_visible(c.oid) THEN c.relname::text \
     ELSE n.nspname || '.' || c.relname END";

/// The relations the SQL's words can name (`$1`: the words): by their name, in a schema of
/// the `search_path` (where an unqualified name finds them) or in a schema the words name too
/// — not the same-named tables of every other tenant's schema. Found through the catalog's
/// index on (name, schema), not a scan of every relation; read once, and the queries after
/// it take the oids (`$1::oid[]`).
const NAMED: &str = "ARRAY(SELECT oid FROM pg_catalog.pg_class WHERE relname = ANY($1::name[]) \
     AND relnamespace = ANY(ARRAY(SELECT oid FROM pg_catalog.pg_namespace \
     WHERE nspname = ANY(pg_catalog.current_schemas(true)) OR nspname = ANY($1::name[]))))";

/// An index's name, the same way.
const INDEX_NAME: &str = "CASE WHEN pg_catalog.pg_table_is_visible(i.oid) THEN i.relname::text \
     ELSE n.nspname || '.' || i.relname END";

/// The identifiers of `sql`, each as written and lowercased (an unquoted name is folded; a
/// quoted one keeps its case), each once.
fn words(sql: &str) -> Vec<String> {
    // each distinct word once before anything is allocated (a run of 1,000 scripts repeats
    // the same keywords thousands of times); a word of lowercase ASCII is its own lowercase
    let mut seen: rustc_hash::FxHashSet<&str> = Default::default();
    let mut out: Vec<String> = Vec::new();
    for w in sql
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
        .filter(|w| !w.is_empty() && !w.starts_with(|c: char| c.is_ascii_digit()))
    {
        if !seen.insert(w) {
            continue;
        }
        out.push(w.to_string());
        if !w.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase()) {
            out.push(w.to_lowercase());
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Reads the facts of the tables the linted SQL (`sql`) can be about: those it names, or one
/// of whose indexes it names; no rule can be about another. Their rows are counted when the
/// table was never analyzed. A database of thousands of tables (schema-per-tenant, where
/// every tenant's run is linted) then costs a few small catalog queries per target, not a
/// read of the whole catalog and a count of every table.
pub fn read(client: &mut impl GenericClient, sql: &str) -> Result<DbFacts> {
    let err = |what: &str, e: &postgres::Error| crate::db::db_error(what, e);
    // the catalog rows are only those the SQL's words can name: a database of thousands of
    // tables answers with the few the scripts are about. One round trip for the setting and
    // the named relations (a fleet target's session is new: every catalog read is cold).
    let words = words(sql);
    let first = client
        .query_typed_one(
            &format!(
                "SELECT pg_catalog.pg_size_bytes(pg_catalog.current_setting('maintenance_work_mem')), {NAMED}"
            ),
            &[(&words, Type::TEXT_ARRAY)],
        )
        .map_err(|e| err("cannot read maintenance_work_mem and the tables the scripts name", &e))?;
    let (mwm, named): (i64, Vec<u32>) = (first.get(0), first.get(1));
    let mut facts = DbFacts {
        maintenance_work_mem: mwm.max(0) as u64,
        ..Default::default()
    };
    if named.is_empty() {
        // nothing the scripts name exists yet (a fresh tenant's first run)
        return Ok(facts);
    }
    let named_param = [(
        &named as &(dyn postgres::types::ToSql + Sync),
        Type::OID_ARRAY,
    )];
    let all = client
        .query_typed(
            &format!(
                "SELECT {INDEX_NAME}, {NAME}
                   FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
                   JOIN pg_class c ON c.oid = x.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
                    AND n.nspname NOT LIKE 'pg\\_toast%'
                    AND (x.indexrelid = ANY($1::oid[]) OR x.indrelid = ANY($1::oid[]))"
            ),
            &named_param,
        )
        .map_err(|e| err("cannot read the indexes", &e))?;
    facts.indexes = all.iter().map(|r| (r.get(0), r.get(1))).collect();
    let tables = client
        .query_typed(
            &format!(
                "SELECT {NAME}, format('%I.%I', n.nspname, c.relname), c.reltuples::bigint
                   FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE c.relkind IN ('r', 'p', 'm')
                    AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                    AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
                    AND (c.oid = ANY($1::oid[])
                         OR c.oid = ANY(ARRAY(SELECT x.indrelid FROM pg_catalog.pg_index x
                                               WHERE x.indexrelid = ANY($1::oid[]))))"
            ),
            &named_param,
        )
        .map_err(|e| err("cannot read the tables' sizes", &e))?;
    for r in tables {
        let (name, quoted, reltuples): (String, String, i64) = (r.get(0), r.get(1), r.get(2));
        // 0 may be an estimate from before the table was filled: count (cheap when it is empty)
        let rows = if reltuples > 0 {
            Rows {
                count: reltuples as u64,
                estimated: true,
            }
        } else {
            // never analyzed (PostgreSQL 14+ says -1), or analyzed empty: count, up to the cap
            let n: i64 = client
                .query_typed_one(
                    &format!("SELECT count(*) FROM (SELECT 1 FROM {quoted} LIMIT {COUNT_CAP}) s"),
                    &[],
                )
                .map_err(|e| err(&format!("cannot count the rows of {quoted}"), &e))?
                .get(0);
            Rows {
                count: n as u64,
                estimated: false,
            }
        };
        facts.tables.insert(name, rows);
    }
    let cols = client
        .query_typed(
            &format!(
                "SELECT {NAME}, a.attname::text, format_type(a.atttypid, a.atttypmod)
                   FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
                   JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_type t ON t.oid = a.atttypid
                  WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p')
                    AND t.typname IN ('vector', 'halfvec', 'sparsevec', 'bit')
                    AND c.oid = ANY($1::oid[])"
            ),
            &named_param,
        )
        .map_err(|e| err("cannot read the vector columns", &e))?;
    facts.vector_columns = cols
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let idx = client
        .query_typed(
            &format!(
                "SELECT {INDEX_NAME}, {NAME}, am.amname::text
                   FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
                   JOIN pg_class c ON c.oid = x.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                   JOIN pg_am am ON am.oid = i.relam
                  WHERE am.amname IN ('hnsw', 'ivfflat')
                    AND (x.indexrelid = ANY($1::oid[]) OR x.indrelid = ANY($1::oid[]))"
            ),
            &named_param,
        )
        .map_err(|e| err("cannot read the vector indexes", &e))?;
    facts.vector_indexes = idx.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
    Ok(facts)
}

impl DbFacts {
    pub fn rows(&self, table: &str) -> Option<Rows> {
        self.tables.get(&normalize_name(table)).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_words_of_the_sql_name_its_relations_as_written_and_folded() {
        let w = words(
            "CREATE INDEX docs_e ON \"Docs\" (e);\nALTER TABLE app.chunks ADD x2 int DEFAULT 42;",
        );
        for expected in ["Docs", "docs", "docs_e", "app", "chunks", "x2"] {
            assert!(w.iter().any(|x| x == expected), "{expected}: {w:?}");
        }
        assert!(!w.iter().any(|x| x == "42"), "numbers are no names: {w:?}");
        assert_eq!(w.iter().filter(|x| *x == "docs").count(), 1, "each once");
    }

    #[test]
    fn figures_read_well() {
        assert_eq!(group(1_234_567), "1,234,567");
        assert_eq!(group(999), "999");
        assert_eq!(bytes(64 << 20), "64 MB");
        assert_eq!(bytes(8_000_000_000), "7.5 GB");
        assert_eq!(
            Rows {
                count: 10_000_000,
                estimated: false
            }
            .describe(),
            "at least 10,000,000 rows"
        );
    }
}
