//! SIGINT and SIGTERM during a run: the statement is cancelled on the server, the run ends
//! in the state it names (nothing applied in one transaction, the last good step with
//! `--transaction-per-migration`), the lock is free, the audit log says `interrupted`, and the
//! next run completes. A second signal exits at once.

use crate::common::*;
use std::time::{Duration, Instant};

const REVS: usize = 20;

fn rev(i: usize) -> String {
    format!("{i:03}")
}

/// 20 revisions, each a table and a 50 ms sleep: a run of about 1.2 s.
fn twenty_revisions(s: &Scenario) {
    for i in 1..=REVS {
        let down = if i == 1 { String::new() } else { rev(i - 1) };
        s.revision(
            &rev(i),
            &down,
            &format!("CREATE TABLE t_{0} (id int);\nSELECT pg_sleep(0.05);\nINSERT INTO t_{0} VALUES (1);", rev(i)),
            &format!("DROP TABLE t_{};", rev(i)),
        );
    }
}

/// A number in 0..n from the standard library's random hasher keys.
fn random_below(n: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(n);
    h.finish() % n.max(1)
}

/// Sessions of this database other than ours that are still running something.
fn busy_sessions(d: &TestDb) -> Vec<String> {
    d.strings(
        "SELECT application_name || ': ' || left(query, 60) FROM pg_stat_activity
          WHERE datname = current_database() AND pid <> pg_backend_pid() AND state <> 'idle'",
    )
}

fn migration_locks(d: &TestDb) -> i64 {
    d.client()
        .query_one(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 1920234292::oid",
            &[],
        )
        .unwrap()
        .get(0)
}

/// One trial: start the run, signal it at a random moment, check the state it names.
fn trial(per_migration: bool, sig: &str) -> String {
    let s = Scenario::new();
    twenty_revisions(&s);
    let mut args = vec![];
    if per_migration {
        args.push("--transaction-per-migration");
    }
    let r = s.spawn("migrate-up", &args);
    r.wait_for("Running upgrade", Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(random_below(800)));
    r.signal(sig);
    let (code, err, _) = r.finish();
    let d = &s.db;
    let heads = d.version_rows();
    let applied: Vec<String> = d
        .tables()
        .into_iter()
        .filter(|t| t.starts_with("t_"))
        .collect();
    let outcome = if code == 0 {
        // the run finished before the signal came
        assert_eq!(heads, [rev(REVS)], "{err}");
        "completed".to_string()
    } else {
        let expected_code = if sig == "INT" { 130 } else { 143 };
        assert_eq!(code, expected_code, "{err}");
        assert!(err.contains(&format!("interrupted by SIG{sig}")), "{err}");
        let state = err
            .lines()
            .find(|l| l.starts_with("state: "))
            .unwrap_or_else(|| panic!("no state line:\n{err}"));
        if per_migration {
            // exactly the steps it says are committed, and their tables, nothing more
            let k = applied.len();
            if k == 0 {
                assert!(heads.is_empty(), "{err}");
                assert!(state.contains("nothing was applied"), "{state}");
            } else {
                assert_eq!(heads, [rev(k)], "{err}");
                assert!(
                    state.contains(&format!("the database is at {} ({k} step", rev(k))),
                    "{state}"
                );
                assert_eq!(applied.last().unwrap(), &format!("t_{}", rev(k)));
            }
        } else {
            assert!(heads.is_empty(), "one transaction: {err}");
            assert!(applied.is_empty(), "one transaction: {applied:?}");
            assert!(state.contains("nothing was applied"), "{state}");
        }
        // the cancel landed: nothing of the run still runs, the lock is free, and the audit
        // log says what happened
        assert!(busy_sessions(d).is_empty(), "{:?}", busy_sessions(d));
        assert_eq!(migration_locks(d), 0);
        let notes = d.strings(
            "SELECT coalesce(note, '') FROM alembic_version_audit WHERE NOT success ORDER BY id DESC LIMIT 1",
        );
        assert!(
            notes.first().is_some_and(
                |n| n.starts_with(&format!("interrupted by SIG{sig}")) && n.contains("state: ")
            ),
            "{notes:?}"
        );
        format!(
            "interrupted at {}",
            heads.first().map_or("base", |h| h.as_str())
        )
    };
    // the next run completes
    s.run("migrate-up", &[]).ok();
    assert_eq!(d.version_rows(), [rev(REVS)]);
    assert_eq!(
        d.tables().iter().filter(|t| t.starts_with("t_")).count(),
        REVS
    );
    outcome
}

/// 20 trials per transaction mode, half SIGINT and half SIGTERM, four at a time.
fn trials(per_migration: bool) {
    let t0 = Instant::now();
    let outcomes: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|w| {
                scope.spawn(move || {
                    (0..5)
                        .map(|i| {
                            trial(per_migration, if (w + i) % 2 == 0 { "INT" } else { "TERM" })
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert_eq!(outcomes.len(), 20);
    let interrupted = outcomes
        .iter()
        .filter(|o| o.starts_with("interrupted"))
        .count();
    eprintln!(
        "{} trials ({}): {interrupted} interrupted, {} completed first, in {:.1} s: {outcomes:?}",
        outcomes.len(),
        if per_migration {
            "transaction per migration"
        } else {
            "one transaction"
        },
        outcomes.len() - interrupted,
        t0.elapsed().as_secs_f64()
    );
    assert!(
        interrupted >= 15,
        "most signals should land mid-run: {outcomes:?}"
    );
    assert!(t0.elapsed() < Duration::from_secs(60));
}

#[test]
fn signals_at_random_moments_of_a_one_transaction_run_leave_nothing_applied() {
    trials(false);
}

#[test]
fn signals_at_random_moments_of_a_per_migration_run_leave_the_last_good_step() {
    trials(true);
}

#[test]
fn sigterm_cancels_a_long_statement_on_the_server_and_frees_the_lock_at_once() {
    let s = Scenario::new();
    s.revision("001", "", "CREATE TABLE a (id int);", "DROP TABLE a;");
    s.revision("002", "001", "SELECT pg_sleep(30);", "");
    let r = s.spawn("migrate-up", &["--transaction-per-migration"]);
    r.wait_for("Running upgrade 001 -> 002", Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(300));
    r.signal("TERM");
    let (code, err, waited) = r.finish();
    assert_eq!(code, 143, "{err}");
    assert!(waited < Duration::from_secs(5), "took {waited:?}");
    assert!(
        err.contains(
            "interrupted by SIGTERM during 002: the running statement was cancelled on the server"
        ),
        "{err}"
    );
    assert!(
        err.contains("state: the database is at 001 (1 step of this run committed); the failed step was rolled back"),
        "{err}"
    );
    assert!(
        busy_sessions(&s.db).is_empty(),
        "{:?}",
        busy_sessions(&s.db)
    );
    assert_eq!(migration_locks(&s.db), 0);
    assert_eq!(s.db.version_rows(), ["001"]);
}

#[test]
fn an_interrupted_concurrent_build_names_the_invalid_index_and_the_next_run_finishes() {
    let s = Scenario::new();
    s.revision(
        "001",
        "",
        "CREATE TABLE items (id int); INSERT INTO items SELECT generate_series(1, 1000);",
        "DROP TABLE items;",
    );
    s.revision_with(
        "002",
        "001",
        "-- transactional: false",
        "CREATE INDEX CONCURRENTLY items_id ON items (id);",
        "DROP INDEX CONCURRENTLY items_id;",
    );
    s.run("migrate-up", &["001"]).ok();
    // an open transaction that wrote to the table: the concurrent build waits for it
    let mut blocker = s.db.client();
    blocker
        .batch_execute("BEGIN; INSERT INTO items VALUES (0)")
        .unwrap();
    let r = s.spawn("migrate-up", &["--ddl-lock-timeout", "0"]);
    r.wait_for("Running upgrade 001 -> 002", Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(500));
    r.signal("INT");
    let (code, err, _) = r.finish();
    blocker.batch_execute("ROLLBACK").unwrap();
    assert_eq!(code, 130, "{err}");
    assert!(err.contains("interrupted by SIGINT during 002"), "{err}");
    assert!(
        err.contains("INVALID index now in the database: public.items_id (clean up with: DROP INDEX CONCURRENTLY IF EXISTS public.items_id;"),
        "{err}"
    );
    assert!(!err.contains(";;"), "one statement, one semicolon: {err}");
    assert_eq!(s.db.version_rows(), ["001"]);

    // the message says what the next run does about it
    assert!(
        err.contains("hint: run the command again to finish: the next migrate-up drops the INVALID index this step left before it builds it again"),
        "{err}"
    );

    // and it does: the index this step itself left is dropped, the step builds it again
    let next = s.run("migrate-up", &[]);
    assert!(
        next.stderr.contains("the last run (up heads at "),
        "{}",
        next.stderr
    );
    assert!(
        next.stderr.contains("dropping INVALID index public.items_id: a failed or interrupted run left it, and a step of this run builds it again"),
        "{}",
        next.stderr
    );
    assert_eq!(next.code, 0, "{}", next.stderr);
    assert_eq!(s.db.version_rows(), ["002"]);
    assert!(s
        .db
        .strings("SELECT indexrelid::regclass::text FROM pg_index WHERE NOT indisvalid")
        .is_empty());
}

#[test]
fn an_invalid_index_retort_did_not_leave_is_only_named_until_repair_is_asked_for() {
    let s = Scenario::new();
    s.revision(
        "001",
        "",
        "CREATE TABLE items (id int); INSERT INTO items SELECT 1 FROM generate_series(1, 2);",
        "DROP TABLE items;",
    );
    s.revision_with(
        "002",
        "001",
        "-- transactional: false",
        "DELETE FROM items WHERE ctid <> (SELECT min(ctid) FROM items);\nCREATE UNIQUE INDEX CONCURRENTLY items_id ON items (id);",
        "DROP INDEX CONCURRENTLY items_id;",
    );
    s.run("migrate-up", &["001"]).ok();
    // a build that failed outside retort (duplicates), leaving an INVALID index of that name
    let mut c = s.db.client();
    assert!(c
        .batch_execute("CREATE UNIQUE INDEX CONCURRENTLY items_id ON items (id)")
        .is_err());
    let plain = s.run("migrate-up", &[]).code(4);
    assert!(
        plain.stderr.contains("INVALID index in the database (left by a failed or interrupted CREATE INDEX CONCURRENTLY): public.items_id")
            && plain.stderr.contains("--repair-invalid-indexes"),
        "{}",
        plain.stderr
    );
    assert!(
        plain.stderr.contains("already exists")
            && plain.stderr.contains("migrate-up --repair-invalid-indexes"),
        "{}",
        plain.stderr
    );
    let fixed = s.run("migrate-up", &["--repair-invalid-indexes"]).ok();
    assert!(
        fixed
            .stderr
            .contains("dropping INVALID index public.items_id: a step of this run builds it"),
        "{}",
        fixed.stderr
    );
    assert_eq!(s.db.version_rows(), ["002"]);
}

#[test]
fn a_second_signal_exits_at_once_and_says_what_it_left() {
    let s = Scenario::new();
    s.revision("001", "", "CREATE TABLE a (id int);", "DROP TABLE a;");
    s.revision("002", "001", "SELECT pg_sleep(30);", "");
    s.run("migrate-up", &["001"]).ok();
    let mut r = s.spawn("migrate-up", &[]);
    r.wait_for("Running upgrade 001 -> 002", Duration::from_secs(20));
    // the audit log is locked: the cleanup after the first signal hangs on writing its row
    let mut holder = s.db.client();
    holder
        .batch_execute("BEGIN; LOCK TABLE alembic_version_audit IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    r.signal("INT");
    r.wait_for(
        "SIGINT received: cancelling the running statement",
        Duration::from_secs(5),
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(r.child.try_wait().unwrap().is_none(), "still cleaning up");
    r.signal("INT");
    let (code, err, waited) = r.finish();
    holder.batch_execute("ROLLBACK").unwrap();
    assert_eq!(code, 130, "{err}");
    assert!(waited < Duration::from_secs(2), "{waited:?}");
    assert!(
        err.contains("SIGINT again: exiting at once; not cleaned up: the audit row of this run"),
        "{err}"
    );
    // the statement was cancelled and its transaction rolled back all the same
    assert_eq!(s.db.version_rows(), ["001"]);
}

#[test]
fn a_dropped_connection_reports_the_state_and_the_next_run_says_what_it_finds() {
    let s = Scenario::new();
    s.revision("001", "", "CREATE TABLE a (id int);", "DROP TABLE a;");
    s.revision("002", "001", "SELECT pg_sleep(30);", "");
    let r = s.spawn("migrate-up", &["--transaction-per-migration"]);
    r.wait_for("Running upgrade 001 -> 002", Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(300));
    // the server ends the migration's session, as a restart would
    let ended: Vec<bool> =
        s.db.client()
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
              WHERE datname = current_database() AND application_name = 'migrate-up'",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
    assert_eq!(ended, [true]);
    let (code, err, _) = r.finish();
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("state: the database is at 001 (1 step of this run committed); the failed step was rolled back"),
        "{err}"
    );
    assert_eq!(s.db.version_rows(), ["001"]);
    // the next run says what the last one left before it goes on
    s.revision("002", "001", "SELECT 1;", "");
    let next = s.run("migrate-up", &[]).ok();
    assert!(
        next.stderr
            .contains("WARN  [retort] the last run (up heads at ")
            && next
                .stderr
                .contains("did not complete: migration failed: upgrade 002"),
        "{}",
        next.stderr
    );
    assert_eq!(s.db.version_rows(), ["002"]);
}

#[test]
fn a_signal_while_queued_behind_another_run_ends_the_wait_at_once() {
    let s = Scenario::new();
    twenty_revisions(&s);
    s.run("migrate-up", &["001", "--lock-mode", "lease"]).ok();
    // the advisory lock, held by a session of its own; then the lease, held by a row
    let mut holder = connect(&s.db.url);
    holder
        .batch_execute(&format!(
            "SELECT pg_advisory_lock({}, hashtext(current_database() || ':' || 'alembic_version'))",
            0x7274_7274
        ))
        .unwrap();
    s.db.execute(
        "INSERT INTO alembic_version_lock VALUES ('alembic_version', 'someone', 'migrate-up (process 4242 on build-7) since then', now(), now() + interval '1 hour')",
    );
    for (mode, what) in [("session", "migration lock"), ("lease", "migration lease")] {
        let run = s.spawn(
            "migrate-up",
            &["--lock-mode", mode, "--lock-timeout", "60s"],
        );
        run.wait_for(&format!("waiting for the {what}"), Duration::from_secs(20));
        run.signal("INT");
        let (code, err, waited) = run.finish();
        assert_eq!(code, 130, "{mode}: {err}");
        assert!(
            err.contains(&format!("interrupted while waiting for the {what}")),
            "{mode}: {err}"
        );
        assert!(waited < Duration::from_secs(5), "{mode}: waited {waited:?}");
        assert_eq!(s.db.version_rows(), ["001"]);
    }
    drop(holder);
}
