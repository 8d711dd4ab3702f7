//! Long histories: a run whose one transaction would hold more locks than the server's lock
//! table is refused before its first statement, with the way out.
use crate::common::*;

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
