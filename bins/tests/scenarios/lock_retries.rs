//! A step that waits for a lock gives up after `--ddl-lock-timeout` (PostgreSQL's
//! lock_timeout), so reads and writes of the table do not queue behind it for long, and is
//! retried after a growing wait, each retry naming the session that held the lock.

use crate::common::*;
use std::time::{Duration, Instant};

/// A session of its own (application_name `the-blocker`) in a transaction that holds `lock`.
fn blocker(d: &TestDb, sql: &str) -> (postgres::Client, i32) {
    let mut c = connect(&format!("{}?application_name=the-blocker", d.url));
    let pid: i32 = c.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
    c.batch_execute(&format!("BEGIN; {sql}")).unwrap();
    (c, pid)
}

fn items(s: &Scenario) {
    s.revision(
        "001",
        "",
        "CREATE TABLE items (id int); INSERT INTO items SELECT generate_series(1, 100);",
        "DROP TABLE items;",
    );
}

#[test]
fn a_step_blocked_by_a_transaction_times_out_retries_names_the_blocker_and_succeeds() {
    let s = Scenario::new();
    items(&s);
    s.revision(
        "002",
        "001",
        "CREATE TABLE other (id int);",
        "DROP TABLE other;",
    );
    s.revision(
        "003",
        "002",
        "ALTER TABLE items ADD COLUMN note text;",
        "ALTER TABLE items DROP COLUMN note;",
    );
    s.run("migrate-up", &["001"]).ok();
    let (mut holder, pid) = blocker(&s.db, "SELECT count(*) FROM items");
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1800));
        holder.batch_execute("COMMIT").unwrap();
    });
    let t0 = Instant::now();
    let r = s
        .run(
            "migrate-up",
            &["--ddl-lock-timeout", "300ms", "--ddl-retries", "3"],
        )
        .ok();
    release.join().unwrap();
    assert_eq!(s.db.version_rows(), ["003"]);
    // 300 ms timeout, 1 s wait, 300 ms, 2 s wait, then the blocker is gone
    assert!(t0.elapsed() < Duration::from_secs(8), "{:?}", t0.elapsed());
    let retry = format!(
        "003: lock timeout (blocked by pid {pid} (the-blocker), idle in transaction, transaction open for"
    );
    assert!(r.stderr.contains(&retry), "{}", r.stderr);
    assert!(r.stderr.contains("retry 1 of 3 in 1.00 s"), "{}", r.stderr);
    // one transaction for the run: the retry runs 002 again with 003
    assert!(
        r.stderr
            .contains("running steps 002, 003 (one transaction) again"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("SELECT count(*) FROM items"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_permanent_blocker_gives_a_clear_error_after_the_last_retry() {
    let s = Scenario::new();
    items(&s);
    s.revision(
        "002",
        "001",
        "ALTER TABLE items ADD COLUMN note text;",
        "ALTER TABLE items DROP COLUMN note;",
    );
    s.run("migrate-up", &["001"]).ok();
    let (_holder, pid) = blocker(&s.db, "LOCK TABLE items IN ACCESS SHARE MODE");
    let r = s
        .run(
            "migrate-up",
            &[
                "--ddl-lock-timeout",
                "200ms",
                "--ddl-retries",
                "1",
                "--transaction-per-migration",
            ],
        )
        .code(4);
    assert!(r.stderr.contains("retry 1 of 1"), "{}", r.stderr);
    assert!(
        r.stderr.contains("canceling statement due to lock timeout"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains(&format!("blocked by pid {pid} (the-blocker)")),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("(lock timeout on 2 attempts)"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains(&format!("SELECT pg_terminate_backend({pid})")),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("--ddl-lock-timeout"), "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "state: nothing was applied: the database is as it was before the run, at 001"
        ),
        "{}",
        r.stderr
    );
}

#[test]
fn a_scripts_lock_timeout_overrides_the_runs_and_zero_turns_it_off() {
    let s = Scenario::new();
    items(&s);
    s.revision_with(
        "002",
        "001",
        "-- lock_timeout: 0",
        "ALTER TABLE items ADD COLUMN note text;",
        "ALTER TABLE items DROP COLUMN note;",
    );
    s.run("migrate-up", &["001"]).ok();
    let (mut holder, _) = blocker(&s.db, "SELECT count(*) FROM items");
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        holder.batch_execute("COMMIT").unwrap();
    });
    // the run's 100 ms would time out; the script's 0 waits as long as it takes
    let r = s
        .run(
            "migrate-up",
            &["--ddl-lock-timeout", "100ms", "--ddl-retries", "0"],
        )
        .ok();
    release.join().unwrap();
    assert!(!r.stderr.contains("lock timeout"), "{}", r.stderr);
    assert_eq!(s.db.version_rows(), ["002"]);
    // the offline SQL shows the settings the step runs with
    let sql = s.run("migrate-up", &["--sql", "001:002"]).ok();
    assert!(
        sql.stdout.contains("SET LOCAL lock_timeout = '0';"),
        "{}",
        sql.stdout
    );
}

#[test]
fn a_concurrent_build_that_times_out_leaves_no_invalid_index_behind_its_retry() {
    let s = Scenario::new();
    items(&s);
    s.revision_with(
        "002",
        "001",
        "-- transactional: false",
        "CREATE INDEX CONCURRENTLY items_id ON items (id);",
        "DROP INDEX CONCURRENTLY items_id;",
    );
    s.run("migrate-up", &["001"]).ok();
    // a writer's open transaction: the build waits for it, which is a lock wait too
    let (mut holder, pid) = blocker(&s.db, "INSERT INTO items VALUES (0)");
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        holder.batch_execute("COMMIT").unwrap();
    });
    let r = s
        .run(
            "migrate-up",
            &["--ddl-lock-timeout", "300ms", "--ddl-retries", "3"],
        )
        .ok();
    release.join().unwrap();
    assert!(
        r.stderr
            .contains(&format!("blocked by pid {pid} (the-blocker)")),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("(first dropping the INVALID index it left: public.items_id)"),
        "{}",
        r.stderr
    );
    assert_eq!(s.db.version_rows(), ["002"]);
    assert_eq!(
        s.db.strings("SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = 'items'::regclass AND indisvalid"),
        ["items_id"]
    );
}

#[test]
fn a_statement_timeout_per_run_stops_a_long_step() {
    let s = Scenario::new();
    s.revision("001", "", "SELECT pg_sleep(5);", "");
    let r = s
        .run("migrate-up", &["--statement-timeout", "300ms"])
        .code(4);
    assert!(
        r.stderr
            .contains("canceling statement due to statement timeout"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("state: nothing was applied"),
        "{}",
        r.stderr
    );
}
