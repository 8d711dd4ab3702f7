//! Watching long steps: an HNSW build long enough for three heartbeats — log lines without a
//! terminal, JSON events with `--format json`, a bar under a real pseudo-terminal (`script`)
//! — and the server's notices (pgvector's "hnsw graph no longer fits into
//! maintenance_work_mem") tagged with the revision and line, with a script's `-- set:`; a build
//! that outgrows `maintenance_work_mem` promises no time left at its fast part's rate.

use crate::common::*;

/// 001: 40,000 random 64-dimensional vectors; 002: their HNSW index (a build of several
/// seconds on the test server).
fn embeddings(s: &Scenario) {
    s.revision(
        "001",
        "",
        "CREATE EXTENSION IF NOT EXISTS vector;\nCREATE TABLE docs (id int, embedding vector(64));\n\
         INSERT INTO docs SELECT i, (SELECT array_agg(random())::vector(64) FROM generate_series(1, 64) WHERE i > 0)\n\
           FROM generate_series(1, 40000) i;",
        "DROP TABLE docs;",
    );
    s.revision(
        "002",
        "001",
        "CREATE INDEX docs_embedding ON docs USING hnsw (embedding vector_l2_ops);",
        "DROP INDEX docs_embedding;",
    );
    s.run("migrate-up", &["001"]).ok();
}

#[test]
fn an_hnsw_build_logs_its_progress_every_interval_without_a_terminal() {
    let s = Scenario::new();
    embeddings(&s);
    // --allow-unsafe: this builds an HNSW index without CONCURRENTLY on a table that exists
    // before the run and holds rows (the long build is what is observed); the lint gate
    // refuses that by default
    let r = s
        .run(
            "migrate-up",
            // an interval shorter than the watcher's heartbeat (one a second once the step
            // passed 2 s) logs every heartbeat: at 2 s and 3 s at least, as the build takes
            // about 5 s on an idle machine
            &["--progress-interval", "300ms", "--allow-unsafe"],
        )
        .ok();
    let beats: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.contains("002 (migrations/002_x.sql:6) running for"))
        .collect();
    assert!(beats.len() >= 2, "{}", r.stderr);
    // one a second, not one a poll: no two lines at the same second
    let seconds: std::collections::BTreeSet<&str> = beats
        .iter()
        .filter_map(|l| l.split("running for ").nth(1)?.split(':').next())
        .collect();
    assert_eq!(seconds.len(), beats.len(), "{}", r.stderr);
    // from pg_stat_progress_create_index: the command, the phase, how far
    assert!(
        beats
            .iter()
            .any(|l| l.contains(": CREATE INDEX building index")),
        "{}",
        r.stderr
    );
    assert!(beats.iter().any(|l| l.contains("%)")), "{}", r.stderr);
    assert_eq!(s.db.version_rows(), ["002"]);
}

#[test]
fn with_format_json_the_events_stream_on_stderr_and_stdout_keeps_the_report() {
    let s = Scenario::new();
    embeddings(&s);
    // --allow-unsafe: this builds an HNSW index without CONCURRENTLY on a table that exists
    // before the run and holds rows (the long build is what is observed); the lint gate
    // refuses that by default
    let r = s
        .run("migrate-up", &["--format", "json", "--allow-unsafe"])
        .ok();
    let events: Vec<serde_json::Value> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"step_started"));
    assert_eq!(kinds.last(), Some(&"run_finished"));
    let beats: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["event"] == "heartbeat")
        .collect();
    assert!(beats.len() >= 3, "{kinds:?}");
    let b = beats.last().unwrap();
    assert_eq!(b["at"]["revision"], "002");
    assert_eq!(b["at"]["line"], 6);
    assert_eq!(b["progress"]["command"], "CREATE INDEX");
    assert!(b["progress"]["total"].as_i64().unwrap() > 0, "{b}");
    assert!(b["elapsed_ms"].as_f64().unwrap() >= 2000.0, "{b}");
    // stdout: the one run report
    let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(report["ok"], true);
    assert_eq!(report["to_heads"], serde_json::json!(["002"]));
}

#[test]
fn on_a_terminal_a_long_build_shows_a_progress_bar() {
    let s = Scenario::new();
    embeddings(&s);
    // --allow-unsafe: an HNSW build without CONCURRENTLY on a table with rows (see above)
    let (ok, text) = s.run_on_terminal(
        "migrate-up",
        "--progress-interval 1s --allow-unsafe",
        &[("DATABASE_URL", &s.db.url)],
    );
    assert!(ok, "{text}");
    // the bar: "002 3s [=====>     ]  41% building index: ... of ... blocks"
    assert!(text.contains("002 "), "{text}");
    assert!(text.contains("=>"), "{text}");
    assert!(text.contains("% building index"), "{text}");
    // no log-style heartbeat lines on a terminal
    assert!(!text.contains("running for"), "{text}");
    assert_eq!(s.db.version_rows(), ["002"]);
}

#[test]
fn server_notices_reach_the_user_tagged_with_revision_and_line() {
    let s = Scenario::new();
    s.revision(
        "001",
        "",
        "CREATE EXTENSION IF NOT EXISTS vector;\nCREATE TABLE small (id int, embedding vector(256));\n\
         INSERT INTO small SELECT i, (SELECT array_agg(random())::vector(256) FROM generate_series(1, 256) WHERE i > 0)\n\
           FROM generate_series(1, 2000) i;\nANALYZE small;",
        "DROP TABLE small;",
    );
    s.revision_with(
        "002",
        "001",
        "-- set: maintenance_work_mem=1MB",
        "CREATE INDEX small_embedding ON small USING hnsw (embedding vector_l2_ops);\n\
         DO $$ BEGIN RAISE WARNING 'from the script'; END $$;",
        "DROP INDEX small_embedding;",
    );
    s.run("migrate-up", &["001"]).ok();
    // --allow-unsafe: 002 builds an HNSW index without CONCURRENTLY on `small`, which holds
    // 2,000 rows before the run; the notices of that build are what is observed
    let r = s.run("migrate-up", &["--allow-unsafe"]).ok();
    // before the build: the estimate against the script's setting, and what would fit
    // (2,000 rows x (8 + 4 x 256 + 32 x 16 + 200) bytes = 3.5 MB)
    assert!(
        r.stderr.contains("WARN  [retort] [002 migrations/002_x.sql:6] the HNSW graph of small.embedding needs about 4MB (2000 rows x 256 dims), more than maintenance_work_mem = 1MB"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("'-- set: maintenance_work_mem=4MB' in the script would fit"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("INFO  [retort] [002 migrations/002_x.sql:6] NOTICE: hnsw graph no longer fits into maintenance_work_mem after"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("hint: Increase maintenance_work_mem to speed up builds."),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("WARN  [retort] [002 migrations/002_x.sql:7] WARNING: from the script"),
        "{}",
        r.stderr
    );
    // the setting was the script's alone, and the audit log says it ran with it
    let notes = s.db.strings(
        "SELECT coalesce(note, '') FROM alembic_version_audit WHERE action = 'up' ORDER BY id DESC LIMIT 1",
    );
    // (and that --allow-unsafe let the lint's error through)
    assert_eq!(
        notes,
        ["--allow-unsafe: 1 error-level lint finding(s): vector-index-not-concurrent; set: 002 maintenance_work_mem=1MB"]
    );
    let sql = s.run("migrate-up", &["--sql", "001:002"]).ok();
    assert!(
        sql.stdout
            .contains("SET LOCAL maintenance_work_mem = '1MB';"),
        "{}",
        sql.stdout
    );
}

#[test]
fn an_hnsw_build_that_outgrows_maintenance_work_mem_promises_no_short_eta() {
    let s = Scenario::new();
    // 5,000 x 192 dims: about 8MB of graph by the estimate, built with 1MB; pgvector goes on
    // on disk, much slower, after some 700 tuples (several seconds of slow build on an idle
    // machine, so that more than one heartbeat comes after the notice)
    s.revision(
        "001",
        "",
        "CREATE EXTENSION IF NOT EXISTS vector;\nCREATE TABLE docs (id int, embedding vector(192));\n\
         INSERT INTO docs SELECT i, (SELECT array_agg(random())::vector(192) FROM generate_series(1, 192) WHERE i > 0)\n\
           FROM generate_series(1, 5000) i;\nANALYZE docs;",
        "DROP TABLE docs;",
    );
    s.revision_with(
        "002",
        "001",
        "-- set: maintenance_work_mem=1MB",
        "CREATE INDEX docs_embedding ON docs USING hnsw (embedding vector_l2_ops);",
        "DROP INDEX docs_embedding;",
    );
    s.run("migrate-up", &["001"]).ok();
    // --allow-unsafe: an HNSW build without CONCURRENTLY on a table with rows (see above)
    let r = s
        .run(
            "migrate-up",
            &["--progress-interval", "300ms", "--allow-unsafe"],
        )
        .ok();
    assert!(
        r.stderr.contains("the HNSW graph of docs.embedding needs about 8MB (5000 rows x 192 dims), more than maintenance_work_mem = 1MB"),
        "{}",
        r.stderr
    );
    let lines: Vec<&str> = r.stderr.lines().collect();
    let notice = lines
        .iter()
        .position(|l| l.contains("NOTICE: hnsw graph no longer fits into maintenance_work_mem"))
        .unwrap_or_else(|| panic!("{}", r.stderr));
    let beats: Vec<(usize, &str)> = lines
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, l)| l.contains("002 (migrations/002_x.sql:6) running for"))
        .collect();
    // no heartbeat promises the fast part's rate as the time left: before the slowdown a
    // floor with the reason, after it none, then the rate since
    for (_, l) in &beats {
        if l.contains(" left") {
            assert!(
                l.contains("more than ") && l.contains("left (the HNSW graph needs about 8MB, more than maintenance_work_mem = 1MB: the build slows down sharply once it no longer fits)")
                    || l.contains("left (at the rate since the HNSW graph stopped fitting in maintenance_work_mem (about 8MB needed))")
                    // (a loaded machine's own slowdown before the notice is one too)
                    || l.contains("left (at the rate since the build slowed down at ")
                    // before a rate is measured: the estimate, which counts the slow part
                    || l.contains("left (estimated before the build)"),
                "{l}\n{}",
                r.stderr
            );
        }
    }
    // after pgvector's notice the lines say why (the first one may have been sampled just
    // before it)
    let after: Vec<&str> = beats
        .iter()
        .filter(|(i, _)| *i > notice)
        .skip(1)
        .map(|(_, l)| *l)
        .collect();
    assert!(!after.is_empty(), "{}", r.stderr);
    for l in &after {
        assert!(
            l.contains("ETA unknown: the HNSW graph no longer fits in maintenance_work_mem (about 8MB needed)")
                || l.contains("(at the rate since the HNSW graph stopped fitting in maintenance_work_mem (about 8MB needed))")
                || !l.contains("%)"),
            "{l}\n{}",
            r.stderr
        );
    }
    assert_eq!(s.db.version_rows(), ["002"]);
}

/// The pooler probe's second connection is not closed and replaced: the statement watcher takes
/// it over (renamed), so a watched run holds two connections, its own and the watcher's.
#[test]
fn a_watched_run_holds_two_connections_the_watcher_taking_over_the_probes() {
    let s = Scenario::new();
    s.revision("001", "", "SELECT pg_sleep(4);", "SELECT 1;");
    let run = s.spawn("migrate-up", &["--progress-interval", "300ms"]);
    // a heartbeat: the watcher is looking at the statement
    run.wait_for(
        "001 (migrations/001_x.sql:5) running for",
        std::time::Duration::from_secs(60),
    );
    let apps = s.db.strings(&format!(
        "SELECT application_name FROM pg_stat_activity WHERE datname = '{}' AND pid <> pg_backend_pid() ORDER BY 1",
        s.db.name
    ));
    let (code, err, _) = run.finish();
    assert_eq!(code, 0, "{err}");
    assert_eq!(apps, ["migrate-up", "retort-monitor"], "{err}");
    assert_eq!(s.db.version_rows(), ["001"]);
}
