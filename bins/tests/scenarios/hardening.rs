//! Scenarios from the fault-and-bad-input harness: a server that accepts and never answers,
//! contradicting flags, bytes PostgreSQL cannot store, and SQLSTATEs whose cause is a setting or
//! a leftover rather than the script.
use crate::common::*;
use std::net::TcpListener;
use std::time::{Duration, Instant};

/// A TCP listener on loopback that accepts every connection and never says a word (a half-dead
/// pooler, a firewall that blackholes after the handshake). Lives as long as the process.
fn silent_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in l.incoming().flatten() {
            held.push(c);
        }
    });
    port
}

/// Every connecting binary, with arguments that make it connect.
const CONNECTING: &[(&str, &[&str])] = &[
    ("migrate-up", &[]),
    ("migrate-down", &[]),
    ("migrate-current", &[]),
    ("migrate-check", &[]),
    ("migrate-stamp", &["head"]),
    ("migrate-history", &["-i"]),
];

fn timed(s: &Scenario, bin: &str, args: &[&str], env: &[(&str, &str)]) -> (Run, Duration) {
    let t0 = Instant::now();
    let r = s.run_env(bin, args, env);
    (r, t0.elapsed())
}

#[test]
fn a_server_that_never_answers_times_out_in_every_binary() {
    let s = Scenario::with_example();
    let port = silent_server();
    let in_url = format!("postgresql://app:pw@127.0.0.1:{port}/db?connect_timeout=1");
    let plain = format!("postgresql://app:pw@127.0.0.1:{port}/db");
    std::thread::scope(|scope| {
        let mut jobs = Vec::new();
        for (bin, args) in CONNECTING {
            let (s, in_url, plain) = (&s, &in_url, &plain);
            // the URL's connect_timeout, and PGCONNECT_TIMEOUT when the URL says nothing
            jobs.push(scope.spawn(move || timed(s, bin, args, &[("DATABASE_URL", in_url)])));
            jobs.push(scope.spawn(move || {
                timed(
                    s,
                    bin,
                    args,
                    &[("DATABASE_URL", plain), ("PGCONNECT_TIMEOUT", "1")],
                )
            }));
        }
        for j in jobs {
            let (r, took) = j.join().unwrap();
            let r = r.code(3);
            assert!(
                r.stderr.contains("timed out after 1 s")
                    && r.stderr.contains(&format!("127.0.0.1:{port}")),
                "{}",
                r.stderr
            );
            assert!(took < Duration::from_secs(5), "took {took:?}: {}", r.stderr);
        }
    });
}

#[test]
fn wait_bounds_the_whole_connection_and_the_default_timeout_is_10_s() {
    let s = Scenario::with_example();
    let port = silent_server();
    let url = format!("postgresql://app:pw@127.0.0.1:{port}/db?connect_timeout=30");
    let plain = format!("postgresql://app:pw@127.0.0.1:{port}/db");
    let (s, url, plain) = (&s, &url, &plain);
    std::thread::scope(|scope| {
        let waited = scope
            .spawn(move || timed(s, "migrate-up", &["--wait", "2s"], &[("DATABASE_URL", url)]));
        let default =
            scope.spawn(move || timed(s, "migrate-current", &[], &[("DATABASE_URL", plain)]));
        let (r, took) = waited.join().unwrap();
        let r = r.code(3);
        assert!(
            r.stderr.contains("gave up after waiting 2 s"),
            "{}",
            r.stderr
        );
        assert!(took < Duration::from_secs(5), "--wait 2s took {took:?}");
        let (r, took) = default.join().unwrap();
        let r = r.code(3);
        assert!(r.stderr.contains("timed out after 10 s"), "{}", r.stderr);
        assert!(
            took >= Duration::from_secs(10) && took < Duration::from_secs(14),
            "default took {took:?}"
        );
    });
}

#[test]
fn flags_that_contradict_each_other_are_a_usage_error_naming_both() {
    let s = Scenario::with_example();
    let pairs: &[(&str, &[&str], &str, &str)] = &[
        ("migrate-up", &["--sql", "--dry-run"], "--sql", "--dry-run"),
        (
            "migrate-up",
            &["--sql", "--backup-dir", "b"],
            "--sql",
            "--backup-dir",
        ),
        (
            "migrate-up",
            &["--dry-run", "--backup-dir", "b"],
            "--dry-run",
            "--backup-dir",
        ),
        ("migrate-up", &["-q", "-v"], "--quiet", "--debug"),
        (
            "migrate-down",
            &["--sql", "004:003", "--dry-run"],
            "--sql",
            "--dry-run",
        ),
        (
            "migrate-down",
            &["--dry-run", "--yes"],
            "--dry-run",
            "--yes",
        ),
        (
            "migrate-stamp",
            &["head", "--rehash", "--purge"],
            "--rehash",
            "--purge",
        ),
        (
            "migrate-stamp",
            &["head", "--sql", "--dry-run"],
            "--sql",
            "--dry-run",
        ),
    ];
    for (bin, args, a, b) in pairs {
        let r = s.run(bin, args).code(2);
        assert!(
            r.stderr.contains(a)
                && r.stderr.contains(b)
                && r.stderr.contains("cannot be used with"),
            "{bin} {args:?}: {}",
            r.stderr
        );
    }
    // nothing was touched
    assert_eq!(s.db.version_rows(), Vec::<String>::new());
    // flags that a binary ignores are not offered at all
    for bin in [
        "migrate-history",
        "migrate-revision",
        "migrate-current",
        "migrate-check",
    ] {
        let r = s.run(bin, &["--lock-timeout", "1s"]).code(2);
        assert!(
            r.stderr.contains("unexpected argument '--lock-timeout'"),
            "{bin}: {}",
            r.stderr
        );
    }
}

#[test]
fn a_script_with_a_nul_byte_is_refused_with_its_line_and_nothing_runs() {
    let s = Scenario::new();
    s.revision("001", "", "CREATE TABLE a (id int);", "DROP TABLE a;");
    s.write(
        "migrations/002_x.sql",
        "-- revision: 002\n-- down_revision: 001\n-- migrate:up\nINSERT INTO a VALUES (1);\nSELECT 'x\0y';\n",
    );
    let r = s.run("migrate-up", &[]).code(6);
    assert!(r.stderr.contains("002_x.sql:5"), "{}", r.stderr);
    assert!(r.stderr.to_lowercase().contains("nul"), "{}", r.stderr);
    assert!(!s.db.table_exists("alembic_version"));
    assert!(s.db.tables().is_empty());
}

#[test]
fn a_lock_table_too_small_for_one_transaction_names_the_setting_not_the_script() {
    let server = TempServer::init();
    server.start(&["max_locks_per_transaction=10", "max_connections=5"]);
    let s = Scenario::new();
    // one revision creating many tables: every table takes locks until the run commits
    let creates: String = (0..300)
        .map(|i| format!("CREATE TABLE t{i} (id int PRIMARY KEY);\n"))
        .collect();
    s.revision("001", "", &creates, "SELECT 1;");
    let url = server.url("127.0.0.1", "");
    let r = s
        .run_env("migrate-up", &[], &[("DATABASE_URL", &url)])
        .code(4);
    assert!(r.stderr.contains("53200"), "{}", r.stderr);
    assert!(
        r.stderr.contains("--transaction-per-migration")
            && r.stderr.contains("max_locks_per_transaction")
            && !r.stderr.contains("fix the script"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("nothing was applied"), "{}", r.stderr);
}

#[test]
fn a_concurrent_index_in_a_transactional_script_says_to_mark_it_non_transactional() {
    let s = Scenario::new();
    s.revision("001", "", "CREATE TABLE a (id int);", "DROP TABLE a;");
    s.revision(
        "002",
        "001",
        "CREATE INDEX CONCURRENTLY a_id ON a (id);",
        "DROP INDEX a_id;",
    );
    // the lint says it first, before anything runs ...
    let r = s.run("migrate-up", &[]).code(7);
    assert!(
        r.stderr
            .contains("002_x.sql:6:14  error  concurrently-in-transaction"),
        "{}",
        r.stderr
    );
    assert_eq!(s.db.version_rows(), Vec::<String>::new());
    // ... and past the lint (--allow-unsafe, only to reach it) PostgreSQL's refusal is
    // explained the same way
    let r = s.run("migrate-up", &["--allow-unsafe"]).code(4);
    assert!(r.stderr.contains("25001"), "{}", r.stderr);
    assert!(
        r.stderr.contains("`-- transactional: false`"),
        "{}",
        r.stderr
    );
    assert_eq!(s.db.version_rows(), Vec::<String>::new());
}

#[test]
fn an_index_left_invalid_by_a_failed_concurrent_build_is_dropped_by_the_next_run() {
    let s = Scenario::new();
    s.revision(
        "001",
        "",
        "CREATE TABLE a (id int); INSERT INTO a VALUES (1), (1);",
        "DROP TABLE a;",
    );
    s.revision_with(
        "002",
        "001",
        "-- transactional: false",
        "CREATE UNIQUE INDEX CONCURRENTLY a_id ON a (id);",
        "DROP INDEX CONCURRENTLY a_id;",
    );
    // the duplicate makes the unique build fail, leaving a_id INVALID; the hint says what the
    // next run does about it
    let r = s.run("migrate-up", &[]).code(4);
    assert!(
        r.stderr.contains("INVALID index") && r.stderr.contains("a_id"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(
            "the next migrate-up drops the INVALID index this step left before it builds it again"
        ),
        "{}",
        r.stderr
    );
    // the data fixed, the retry does not trip over the leftover: it drops it and builds it
    s.db.execute("DELETE FROM a WHERE ctid = (SELECT max(ctid) FROM a)");
    let r = s.run("migrate-up", &[]).ok();
    assert!(
        r.stderr
            .contains("dropping INVALID index public.a_id: a failed or interrupted run left it"),
        "{}",
        r.stderr
    );
    assert_eq!(s.db.version_rows(), vec!["002"]);
    assert!(s
        .db
        .strings("SELECT indexrelid::regclass::text FROM pg_index WHERE NOT indisvalid")
        .is_empty());
}
