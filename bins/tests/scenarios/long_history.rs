//! Long histories: a run whose one transaction would hold more locks than the server's lock
//! table is refused before its first statement, with the way out; `--batch N` commits every N
//! revisions, and a failure leaves the database at the end of the last committed batch.
use crate::common::*;

/// The first column of every row of `sql` on the database at `url`, as text.
fn rows_at(url: &str, sql: &str) -> Vec<String> {
    connect(url)
        .query(sql, &[])
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect()
}

/// The server's lock table in entries: max_locks_per_transaction × its backends.
fn lock_table_size(url: &str) -> usize {
    rows_at(
        url,
        "SELECT (current_setting('max_locks_per_transaction')::int8 * (current_setting('max_connections')::int8
           + current_setting('autovacuum_max_workers')::int8 + 1 + current_setting('max_worker_processes')::int8
           + current_setting('max_wal_senders')::int8 + current_setting('max_prepared_transactions')::int8))::text",
    )[0]
    .parse()
    .unwrap()
}

/// `n` revisions r00, r01, ... in a chain, each creating `tables` tables with a primary key
/// and a text column (5 lock entries each, and 1 for the version row: 5 × tables + 1).
fn chain(s: &Scenario, n: usize, tables: usize) {
    let mut down = String::new();
    for r in 0..n {
        let rev = format!("r{r:02}");
        let sql: String = (0..tables)
            .map(|i| format!("CREATE TABLE t_{r}_{i} (id int PRIMARY KEY, note text);\n"))
            .collect();
        s.revision(&rev, &down, &sql, "SELECT 1;");
        down = rev;
    }
}

#[test]
fn a_long_history_that_does_not_fit_the_lock_table_runs_in_batches_that_do() {
    // a server with a small lock table: 20 × its backends
    let server = TempServer::init();
    server.start(&["max_locks_per_transaction=20", "max_connections=5"]);
    let url = server.url("127.0.0.1", "");
    let size = lock_table_size(&url);
    let s = Scenario::new();
    // 40 revisions of 10 tables: 51 lock entries each, 2,040 in one transaction
    chain(&s, 40, 10);
    let env = [("DATABASE_URL", url.as_str())];
    assert!(2040 > size, "the lock table holds {size}");
    // the batch that takes at most half of the lock table
    let fits = size / 2 / 51;
    assert!((2..40).contains(&fits), "{size}");

    let r = s.run_env("migrate-up", &[], &env).code(2);
    assert!(
        r.stderr
            .contains("about 2040 locks in one transaction (40 revisions)")
            && r.stderr.contains(&format!("run with --batch {fits} "))
            && r.stderr.contains("--transaction-per-migration"),
        "{}",
        r.stderr
    );
    // the budget is per batch: one too big is refused too, naming it
    let r = s.run_env("migrate-up", &["--batch", "30"], &env).code(2);
    assert!(
        r.stderr.contains(
            "about 1530 locks in one transaction (its largest batch: 30 revisions with --batch 30)"
        ) && r.stderr.contains(&format!("run with --batch {fits} ")),
        "{}",
        r.stderr
    );
    // so is the dry run, which shows the same checks
    s.run_env("migrate-up", &["--dry-run"], &env).code(2);
    assert!(rows_at(
        &url,
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'"
    )
    .is_empty());

    let batch = fits.to_string();
    let r = s.run_env("migrate-up", &["--batch", &batch], &env).ok();
    let batches = 40_usize.div_ceil(fits);
    assert!(
        r.stderr.contains(&format!(
            "committed batch 1 of {batches}: the database is at r{:02}",
            fits - 1
        )) && r.stderr.contains(&format!(
            "committed batch {batches} of {batches}: the database is at r39"
        )),
        "{}",
        r.stderr
    );
    assert_eq!(
        rows_at(&url, "SELECT version_num::text FROM alembic_version"),
        ["r39"]
    );
    assert_eq!(
        rows_at(
            &url,
            "SELECT count(*)::text FROM pg_tables WHERE tablename LIKE 't\\_%'"
        ),
        ["400"]
    );
    // one run, one audit row, every revision recorded
    assert_eq!(
        rows_at(
            &url,
            "SELECT action || ' ' || success || ' ' || cardinality(revisions) || ' ' || array_to_string(to_heads, ',') FROM alembic_version_audit"
        ),
        ["up true 40 r39"]
    );
    assert_eq!(
        rows_at(&url, "SELECT count(*)::text FROM alembic_version_applied"),
        ["40"]
    );
}

/// Seven revisions r1..r7 creating t1..t7; with `fail`, r6 inserts into a table that does not
/// exist.
fn seven(s: &Scenario, fail: bool) {
    let mut down = String::new();
    for i in 1..=7 {
        let rev = format!("r{i}");
        let mut up = format!("CREATE TABLE t{i} (id int PRIMARY KEY);");
        if fail && i == 6 {
            up.push_str("\nINSERT INTO missing VALUES (1);");
        }
        s.revision(&rev, &down, &up, &format!("DROP TABLE t{i};"));
        down = rev;
    }
}

#[test]
fn a_failure_in_the_third_batch_leaves_the_database_at_the_end_of_the_second() {
    let s = Scenario::new();
    seven(&s, true);

    // batches of 2: r1 r2 | r3 r4 | r5 r6 | r7, and r6 fails
    let r = s
        .run("migrate-up", &["--batch", "2", "--format", "json"])
        .code(4);

    assert!(
        r.stderr
            .contains("migration failed: upgrade r6 at migrations/r6_x.sql"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(
            "state: the database is at r4, the end of batch 2 of 4 (4 steps of this run committed); batch 3, with the failed step, was rolled back"
        ),
        "{}",
        r.stderr
    );
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc["to_heads"], serde_json::json!(["r4"]), "{doc}");
    assert_eq!(doc["state"]["failed_step"], "r6", "{doc}");
    assert_eq!(
        doc["state"]["batch"],
        serde_json::json!({"number": 3, "of": 4}),
        "{doc}"
    );
    // the event stream saw two batches commit
    let committed: Vec<(u64, u64, serde_json::Value)> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["event"] == "batch_committed")
        .map(|e| {
            (
                e["batch"].as_u64().unwrap(),
                e["of"].as_u64().unwrap(),
                e["to_heads"].clone(),
            )
        })
        .collect();
    assert_eq!(
        committed,
        [
            (1, 4, serde_json::json!(["r2"])),
            (2, 4, serde_json::json!(["r4"]))
        ],
        "{}",
        r.stderr
    );
    assert_eq!(s.db.version_rows(), ["r4"]);
    assert_eq!(s.db.tables(), ["t1", "t2", "t3", "t4"]);
    assert_eq!(s.db.audit(), ["up false r1,r2,r3,r4"]);
    assert_eq!(
        s.db.strings("SELECT array_to_string(to_heads, ',') FROM alembic_version_audit"),
        ["r4"]
    );
    assert_eq!(
        s.db.strings("SELECT revision::text FROM alembic_version_applied ORDER BY 1"),
        ["r1", "r2", "r3", "r4"]
    );

    // fixed, the next run starts where it stopped
    seven(&s, false);
    s.run("migrate-up", &["--batch", "2"]).ok();
    assert_eq!(s.db.version_rows(), ["r7"]);
    assert_eq!(s.db.audit(), ["up false r1,r2,r3,r4", "up true r5,r6,r7"]);
}

#[test]
fn the_sql_and_the_dry_run_of_a_batched_run_commit_where_the_run_does() {
    let s = Scenario::new();
    seven(&s, false);

    let r = s.run("migrate-up", &["--sql", "r5", "--batch", "2"]).ok();
    // the transactions and the version-table writes, in order
    let shape: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| {
            *l == "BEGIN;"
                || *l == "COMMIT;"
                || l.starts_with("-- Running upgrade")
                || l.starts_with("INSERT INTO alembic_version")
                || l.starts_with("UPDATE alembic_version")
        })
        .collect();
    assert_eq!(
        shape,
        [
            "BEGIN;",
            "-- Running upgrade  -> r1, rev r1",
            "INSERT INTO alembic_version (version_num) VALUES ('r1');",
            "-- Running upgrade r1 -> r2, rev r2",
            "UPDATE alembic_version SET version_num='r2' WHERE alembic_version.version_num = 'r1';",
            "COMMIT;",
            "BEGIN;",
            "-- Running upgrade r2 -> r3, rev r3",
            "UPDATE alembic_version SET version_num='r3' WHERE alembic_version.version_num = 'r2';",
            "-- Running upgrade r3 -> r4, rev r4",
            "UPDATE alembic_version SET version_num='r4' WHERE alembic_version.version_num = 'r3';",
            "COMMIT;",
            "BEGIN;",
            "-- Running upgrade r4 -> r5, rev r5",
            "UPDATE alembic_version SET version_num='r5' WHERE alembic_version.version_num = 'r4';",
            "COMMIT;",
        ],
        "{}",
        r.stdout
    );

    // the dry run shows the same COMMITs and where the database is after each
    let r = s
        .run("migrate-up", &["r5", "--dry-run", "--batch", "2"])
        .ok();
    let commits: Vec<&str> = r.stdout.lines().filter(|l| l.contains("COMMIT")).collect();
    assert_eq!(
        commits,
        [
            "  COMMIT (transaction 1 of 3: the database is at r2)",
            "  COMMIT (transaction 2 of 3: the database is at r4)",
            "  COMMIT (transaction 3 of 3: the database is at r5)",
        ],
        "{}",
        r.stdout
    );
    assert_eq!(s.db.version_rows(), Vec::<String>::new());

    // N is at least 1, and --batch is not --transaction-per-migration
    let r = s.run("migrate-up", &["--batch", "0"]).code(2);
    assert!(r.stderr.contains("--batch"), "{}", r.stderr);
    let r = s
        .run(
            "migrate-up",
            &["--batch", "2", "--transaction-per-migration"],
        )
        .code(2);
    assert!(r.stderr.contains("cannot be used with"), "{}", r.stderr);
    assert_eq!(s.db.version_rows(), Vec::<String>::new());
}

#[test]
fn a_run_too_big_for_the_lock_table_is_refused_before_it_starts() {
    let s = Scenario::new();
    let size: i64 = s.db.strings(
        "SELECT (current_setting('max_locks_per_transaction')::int8 * (current_setting('max_connections')::int8
           + current_setting('autovacuum_max_workers')::int8 + 1 + current_setting('max_worker_processes')::int8
           + current_setting('max_wal_senders')::int8 + current_setting('max_prepared_transactions')::int8))::text",
    )[0]
    .parse()
    .unwrap();
    // 20 revisions of tables with a primary key and a text column: 5 lock entries each
    let per_revision = (size / 5 / 20 + 10) as usize;
    let mut down = String::new();
    for r in 0..20 {
        let rev = format!("r{r:02}");
        let sql: String = (0..per_revision)
            .map(|i| format!("CREATE TABLE t_{r}_{i} (id int PRIMARY KEY, note text);\n"))
            .collect();
        s.revision(&rev, &down, &sql, "SELECT 1;");
        down = rev;
    }

    let r = s.run("migrate-up", &[]).code(2);

    assert!(
        r.stderr.contains("more than the server's lock table holds")
            && r.stderr
                .contains(&format!("({size}: max_locks_per_transaction"))
            && r.stderr.contains("20 revisions")
            && r.stderr.contains("--transaction-per-migration"),
        "{}",
        r.stderr
    );
    assert_eq!(s.db.version_rows(), Vec::<String>::new());
    assert_eq!(s.db.tables(), Vec::<String>::new());
}

/// Five revisions; the columns of the application's tables, for comparing catalogs.
fn five_revisions(s: &Scenario) {
    s.revision(
        "a",
        "",
        "CREATE TABLE alpha (id bigint PRIMARY KEY, name text NOT NULL);",
        "DROP TABLE alpha;",
    );
    s.revision(
        "b",
        "a",
        "ALTER TABLE alpha ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();",
        "ALTER TABLE alpha DROP COLUMN created_at;",
    );
    s.revision(
        "c",
        "b",
        "CREATE INDEX alpha_name ON alpha (name);",
        "DROP INDEX alpha_name;",
    );
    s.revision("d", "c", "CREATE TABLE beta (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, alpha_id bigint REFERENCES alpha);", "DROP TABLE beta;");
    s.revision(
        "e",
        "d",
        "ALTER TABLE beta ADD COLUMN note text;",
        "ALTER TABLE beta DROP COLUMN note;",
    );
}

fn catalog(db: &TestDb) -> Vec<String> {
    let mut v = db.strings(
        "SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' ' || coalesce(column_default, '') || ' ' || is_identity
           FROM information_schema.columns WHERE table_schema = 'public' AND table_name NOT LIKE 'alembic%' ORDER BY 1",
    );
    v.extend(db.strings("SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename NOT LIKE 'alembic%' ORDER BY 1"));
    v.extend(db.strings("SELECT conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1"));
    v
}

#[test]
fn a_squashed_baseline_takes_a_fresh_database_to_its_revision_in_one_step_and_old_ones_keep_their_history(
) {
    let s = Scenario::new();
    five_revisions(&s);
    // an existing database, half-way
    let old = TestDb::new();
    s.run_env("migrate-up", &["b"], &[("DATABASE_URL", &old.url)])
        .ok();

    let r = s.run("migrate-revision", &["--squash", "d"]).ok();
    assert!(
        r.stdout.trim_end().ends_with("baselines/d.sql"),
        "{}",
        r.stdout
    );
    let text = std::fs::read_to_string(s.path("migrations/baselines/d.sql")).unwrap();
    assert!(
        text.starts_with("-- baseline: d\n") && text.contains("4 revisions squashed"),
        "{text}"
    );
    assert!(
        text.contains("CREATE TABLE") && text.contains("beta"),
        "{text}"
    );

    // the fresh database: the baseline, then e
    let r = s.run("migrate-up", &[]).ok();
    assert!(
        r.stderr.contains("Running baseline d") && r.stderr.contains("4 revisions in one step"),
        "{}",
        r.stderr
    );
    assert_eq!(s.db.version_rows(), ["e"]);
    assert_eq!(
        s.db.strings(
            "SELECT revision || ' ' || how FROM alembic_version_applied ORDER BY revision"
        ),
        [
            "a baseline",
            "b baseline",
            "c baseline",
            "d baseline",
            "e up"
        ]
    );
    assert_eq!(s.db.audit(), ["up true d,e"]);
    // the existing one keeps its history
    s.run_env("migrate-up", &[], &[("DATABASE_URL", &old.url)])
        .ok();
    assert_eq!(old.audit(), ["up true a,b", "up true c,d,e"]);
    assert_eq!(catalog(&s.db), catalog(&old));
    // and the way back down is the revisions' own
    s.run("migrate-down", &["c"]).ok();
    assert_eq!(s.db.tables(), ["alpha"]);

    // migrate-check verifies the baseline against the replay
    s.run("migrate-up", &[]).ok();
    s.run("migrate-check", &[]).ok();
    s.write(
        "migrations/baselines/d.sql",
        &text.replace("alpha_id bigint", "alpha_id integer"),
    );
    let r = s.run("migrate-check", &[]).code(1);
    assert!(
        r.stdout.contains("problem [baseline_mismatch]") && r.stdout.contains("d.sql"),
        "{}",
        r.stdout
    );
}
