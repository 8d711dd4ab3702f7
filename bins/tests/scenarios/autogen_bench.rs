//! Autogenerate benchmarks (ignored by default; scripts/bench-autogen.sh runs them in release
//! mode with `--test scenarios -- --ignored autogen_bench::`):
//! - catalog introspection of a 1,000-table schema (target: under 2 s);
//! - `migrate-revision --autogenerate` end to end for a 300-table schema.sql against a
//!   300-revision history (target: under 10 s).
//!
//! `scripts/pg.sh run -- scripts/bench-autogen.sh` (or `make bench`, which runs it) prints the
//! figures; each test fails when its target is missed.

use crate::common::Scenario;
use std::time::{Duration, Instant};

/// One realistic table: identity key, a foreign key to the previous table, defaults, a check,
/// a comment, an index, and (every tenth table) a vector column with an HNSW index.
fn table_sql(i: usize, extra: &str) -> String {
    let mut s = format!(
        "CREATE TABLE t{i:04} (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    prev_id bigint{fk},
    name text NOT NULL DEFAULT '',
    amount numeric(12,2) NOT NULL DEFAULT 0 CHECK (amount >= 0),
    tags text[] NOT NULL DEFAULT '{{}}',
    meta jsonb,
    created_at timestamptz NOT NULL DEFAULT now(){vec}{extra}
);
CREATE INDEX t{i:04}_name_idx ON t{i:04} (name) WHERE name <> '';
COMMENT ON TABLE t{i:04} IS 'table {i}';
",
        fk = if i > 0 {
            format!(" REFERENCES t{:04} (id)", i - 1)
        } else {
            String::new()
        },
        vec = if i.is_multiple_of(10) {
            ",\n    embedding vector(384)"
        } else {
            ""
        },
    );
    if i.is_multiple_of(10) {
        s.push_str(&format!("CREATE INDEX t{i:04}_emb_idx ON t{i:04} USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64);\n"));
    }
    s
}

#[test]
#[ignore = "benchmark: run scripts/bench-autogen.sh"]
fn bench_introspect_1000_tables() {
    let db = crate::common::TestDb::new();
    let mut sql = String::from("CREATE EXTENSION IF NOT EXISTS vector;\n");
    for i in 0..1000 {
        sql.push_str(&table_sql(i, ""));
    }
    db.execute(&sql);
    let url =
        retort::config::DbUrl::parse(&db.url, &retort::config::Env::from_pairs(&[], &[])).unwrap();
    let mut client = retort::db::connect(&url, "bench").unwrap();
    let opts = retort::schema::IntrospectOptions::default();
    let mut best = Duration::MAX;
    let mut schema = None;
    for _ in 0..3 {
        let t0 = Instant::now();
        let s = retort::schema::introspect(&mut client, &opts).unwrap();
        best = best.min(t0.elapsed());
        schema = Some(s);
    }
    let schema = schema.unwrap();
    assert_eq!(schema.tables.len(), 1000);
    let indexes: usize = schema.tables.values().map(|t| t.indexes.len()).sum();
    let columns: usize = schema.tables.values().map(|t| t.columns.len()).sum();
    println!(
        "BENCH introspect: 1000 tables, {columns} columns, {indexes} indexes: best of 3 {:.3} s (target < 2 s)",
        best.as_secs_f64()
    );
    assert!(best < Duration::from_secs(2), "introspection took {best:?}");
}

#[test]
#[ignore = "benchmark: run scripts/bench-autogen.sh"]
fn bench_autogenerate_300_tables_300_revisions() {
    let s = Scenario::new();
    s.revision(
        "0001",
        "",
        "CREATE EXTENSION IF NOT EXISTS vector;",
        "SELECT 1;",
    );
    let mut schema = String::from("CREATE EXTENSION IF NOT EXISTS vector;\n");
    for i in 0..300 {
        let rev = format!("{:04}", i + 2);
        let parent = format!("{:04}", i + 1);
        let t = table_sql(i, "");
        s.revision(&rev, &parent, &t, &format!("DROP TABLE t{i:04};"));
        // the wanted schema: the same, with a change in one table of three
        let extra = if i.is_multiple_of(3) {
            ",\n    note text"
        } else {
            ""
        };
        schema.push_str(&table_sql(i, extra));
    }
    s.write("schema.sql", &schema);
    let t0 = Instant::now();
    let r = s
        .run("migrate-revision", &["--autogenerate", "-m", "notes"])
        .ok();
    let took = t0.elapsed();
    assert!(
        r.stdout.contains("Generating migrations/0302_notes.sql"),
        "{}",
        r.all()
    );
    assert!(r.stderr.contains("100 changes:"), "{}", r.stderr);
    println!(
        "BENCH autogenerate: 300-table schema.sql, 300-revision history, 100 changes, validated: {:.3} s end to end (target < 10 s)",
        took.as_secs_f64()
    );
    assert!(took < Duration::from_secs(10), "autogenerate took {took:?}");
}
