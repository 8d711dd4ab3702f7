//! Scenarios through a real PgBouncer (Debian's) in front of the test server, in session and in
//! transaction pooling. Transaction pooling hands each transaction to whichever server
//! connection is free, so a named prepared statement (what the driver's `query` prepares)
//! turns up on other clients' connections (`42P05` "already exists", `26000` "does not
//! exist"): retort sends every statement unnamed or by the simple protocol. A session advisory
//! lock cannot hold through transaction pooling: there the writing commands take the lease row
//! (`<version table>_lock`, with a heartbeat and a fence on every transaction) instead.
use crate::common::*;

/// Three revisions, each with a table of its own; head `c`.
fn three_revisions(s: &Scenario) {
    s.revision(
        "a",
        "",
        "CREATE TABLE alpha (id int PRIMARY KEY);",
        "DROP TABLE alpha;",
    );
    s.revision(
        "b",
        "a",
        "CREATE TABLE beta (id int PRIMARY KEY, a int REFERENCES alpha);",
        "DROP TABLE beta;",
    );
    s.revision(
        "c",
        "b",
        "CREATE TABLE gamma (id int PRIMARY KEY);\nCREATE INDEX gamma_id ON gamma (id);",
        "DROP TABLE gamma;",
    );
}

/// `bin args` through the pooler, 8 at once; their runs in start order.
fn eight_at_once(s: &Scenario, url: &str, bin: &str, args: &[&str]) -> Vec<Run> {
    std::thread::scope(|scope| {
        let runs: Vec<_> = (0..8)
            .map(|_| scope.spawn(|| s.run_env(bin, args, &[("DATABASE_URL", url)])))
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    })
}

/// The driver's prepared-statement errors, which a pooler provokes.
#[track_caller]
fn no_prepared_statement_errors(r: &Run) {
    for bad in ["42P05", "26000", "prepared statement"] {
        assert!(!r.all().contains(bad), "{bad} in:\n{}", r.all());
    }
}

/// `revision count` of alembic_version_applied, by revision.
fn applied_counts(s: &Scenario) -> Vec<String> {
    if !s.db.table_exists("alembic_version_applied") {
        return vec![];
    }
    s.db.strings("SELECT revision || ' ' || count(*) FROM alembic_version_applied GROUP BY revision ORDER BY revision")
}

#[test]
fn session_pooling_eight_concurrent_ups_apply_each_revision_exactly_once() {
    let s = Scenario::new();
    three_revisions(&s);
    let bouncer = PgBouncer::start("session");
    let url = bouncer.url(&s.db.name);

    let runs = eight_at_once(&s, &url, "migrate-up", &[]);

    for r in &runs {
        no_prepared_statement_errors(r);
        assert_eq!(r.code, 0, "every run succeeds:\n{}", r.all());
    }
    assert_eq!(s.db.version_rows(), ["c"]);
    assert_eq!(s.db.tables(), ["alpha", "beta", "gamma"]);
    assert_eq!(applied_counts(&s), ["a 1", "b 1", "c 1"]);
    // one run applied a, b and c; the seven others found nothing to do
    let mut audit = s.db.audit();
    audit.sort();
    let mut expected = vec!["up true "; 7];
    expected.push("up true a,b,c");
    expected.sort();
    assert_eq!(audit, expected);
}

/// Eight runners at once through transaction pooling: the session advisory lock cannot hold
/// there, so retort takes the lease row (`alembic_version_lock`), and exactly one runner
/// applies a, b and c while the seven others wait for the lease and find nothing to do.
/// Asserted over three rounds, each a fresh database.
#[test]
fn transaction_pooling_eight_concurrent_ups_apply_each_revision_exactly_once() {
    let bouncer = PgBouncer::start("transaction");
    for round in 0..3 {
        let s = Scenario::new();
        three_revisions(&s);
        let url = bouncer.url(&s.db.name);

        let runs = eight_at_once(&s, &url, "migrate-up", &[]);

        for r in &runs {
            no_prepared_statement_errors(r);
            assert_eq!(r.code, 0, "round {round}: every run succeeds:\n{}", r.all());
        }
        assert_eq!(s.db.version_rows(), ["c"]);
        assert_eq!(s.db.tables(), ["alpha", "beta", "gamma"]);
        assert_eq!(applied_counts(&s), ["a 1", "b 1", "c 1"]);
        let mut audit = s.db.audit();
        audit.sort();
        let mut expected = vec!["up true "; 7];
        expected.push("up true a,b,c");
        expected.sort();
        assert_eq!(audit, expected, "round {round}");
        // every lease was released
        assert_eq!(
            s.db.strings("SELECT count(*)::text FROM alembic_version_lock"),
            ["0"]
        );
    }
}

#[test]
fn transaction_pooling_reading_and_writing_commands_work() {
    let s = Scenario::new();
    three_revisions(&s);
    // the drift check replays the migrations in a shadow database and reads its catalog
    s.write(
        "schema.sql",
        "CREATE TABLE alpha (id int PRIMARY KEY);\nCREATE TABLE beta (id int PRIMARY KEY, a int REFERENCES alpha);\n",
    );
    s.run("migrate-up", &["b"]).ok();
    let bouncer = PgBouncer::start("transaction");
    let url = bouncer.url(&s.db.name);
    let via = |bin: &str, args: &[&str]| {
        let r = s.run_env(bin, args, &[("DATABASE_URL", url.as_str())]);
        no_prepared_statement_errors(&r);
        r
    };

    // reading: the same answers as on a direct connection, several times over (each statement
    // may land on another server connection)
    for _ in 0..3 {
        assert_eq!(via("migrate-current", &[]).ok().stdout, "b\n");
        assert_eq!(
            via("migrate-history", &["-i"]).ok().stdout,
            "b -> c (head), rev c\na -> b (current), rev b\n<base> -> a, rev a\n"
        );
    }
    via("migrate-check", &["--offline"]).ok();
    // c is pending, and the schema file lacks gamma (found by replaying the migrations in a
    // shadow database and reading its catalog, through the pooler): problems, exit 1
    let r = via("migrate-check", &[]).code(1);
    assert!(
        r.stdout
            .contains("problem [pending]: the database is not up to date: 1 revision pending (c)"),
        "{}",
        r.all()
    );
    assert!(
        r.stdout.contains("problem [schema_drift]") && r.stdout.contains("drop table public.gamma"),
        "{}",
        r.all()
    );

    // writing: under the lease, every command works
    via("migrate-up", &[]).ok();
    via("migrate-down", &["a"]).ok();
    via("migrate-stamp", &["c"]).ok();
    via("migrate-stamp", &["a"]).ok();
    assert_eq!(s.db.version_rows(), ["a"]);
    assert_eq!(s.db.tables(), ["alpha"]);
    assert_eq!(applied_counts(&s), ["a 1"]);
    assert_eq!(
        s.db.audit(),
        [
            "up true a,b",
            "up true c",
            "down true c,b",
            "stamp true ",
            "stamp true "
        ]
    );
    assert_eq!(
        s.db.strings("SELECT count(*)::text FROM alembic_version_lock"),
        ["0"]
    );
}

#[test]
fn transaction_pooling_with_lock_mode_session_is_refused_and_changes_nothing() {
    let s = Scenario::new();
    three_revisions(&s);
    let bouncer = PgBouncer::start("transaction");
    let url = bouncer.url(&s.db.name);

    let r = s
        .run_env(
            "migrate-up",
            &["--lock-mode", "session"],
            &[("DATABASE_URL", &url)],
        )
        .code(2);

    assert!(
        r.stderr.contains("transaction pooling")
            && r.stderr.contains("--lock-mode session")
            && r.stderr.contains("--lock-mode auto"),
        "{}",
        r.stderr
    );
    assert_eq!(s.db.version_rows(), Vec::<String>::new());
    assert_eq!(s.db.audit(), Vec::<String>::new());
}

/// A non-transactional script of two statements (a session SET, then the index build): through
/// transaction pooling the SET may apply to another server connection, so the run is refused
/// naming the file and line; with MIGRATE_DIRECT_URL it runs there instead.
#[test]
fn transaction_pooling_refuses_session_steps_unless_a_direct_url_is_given() {
    let s = Scenario::new();
    three_revisions(&s);
    s.revision_with(
        "d",
        "c",
        "-- transactional: false",
        "SET maintenance_work_mem = '64MB';\nCREATE INDEX CONCURRENTLY alpha_id ON alpha (id);",
        "DROP INDEX CONCURRENTLY alpha_id;",
    );
    s.run("migrate-up", &["c"]).ok();
    let bouncer = PgBouncer::start("transaction");
    let url = bouncer.url(&s.db.name);

    let r = s
        .run_env("migrate-up", &[], &[("DATABASE_URL", &url)])
        .code(2);
    assert!(
        r.stderr.contains("need a session")
            && r.stderr.contains("d_x.sql:")
            && r.stderr
                .contains("non-transactional script of 2 statements")
            && r.stderr.contains("SET maintenance_work_mem")
            && r.stderr.contains("MIGRATE_DIRECT_URL"),
        "{}",
        r.stderr
    );
    assert_eq!(s.db.version_rows(), ["c"]);
    assert_eq!(s.db.audit(), ["up true a,b,c"]);

    let r = s
        .run_env(
            "migrate-up",
            &[],
            &[("DATABASE_URL", &url), ("MIGRATE_DIRECT_URL", &s.db.url)],
        )
        .ok();
    assert!(
        r.stderr.contains("running on MIGRATE_DIRECT_URL"),
        "{}",
        r.stderr
    );
    assert_eq!(s.db.version_rows(), ["d"]);
    assert_eq!(s.db.audit(), ["up true a,b,c", "up true d"]);
}

/// A lease another run holds (a row whose expiry is in the future) makes the run wait and time
/// out naming the holder; once it has run out, the next run takes it over.
#[test]
fn a_held_lease_is_waited_for_and_an_expired_one_is_taken_over() {
    let s = Scenario::new();
    three_revisions(&s);
    s.run("migrate-up", &["a", "--lock-mode", "lease"]).ok();
    s.db.execute(
        "INSERT INTO alembic_version_lock VALUES ('alembic_version', 'someone', 'migrate-up (process 4242 on build-7) since then', now(), now() + interval '1 hour')",
    );

    let r = s
        .run(
            "migrate-up",
            &["--lock-mode", "lease", "--lock-timeout", "1s"],
        )
        .code(5);
    assert!(
        r.stderr.contains("waiting for the migration lease")
            && r.stderr.contains("process 4242 on build-7"),
        "{}",
        r.stderr
    );
    assert_eq!(s.db.version_rows(), ["a"]);

    s.db.execute("UPDATE alembic_version_lock SET expires_at = now() - interval '1 second'");
    s.run("migrate-up", &["--lock-mode", "lease"]).ok();
    assert_eq!(s.db.version_rows(), ["c"]);
    assert_eq!(
        s.db.strings("SELECT count(*)::text FROM alembic_version_lock"),
        ["0"]
    );
    // the lease table is retort's own: no drift
    s.write(
        "schema.sql",
        "CREATE TABLE alpha (id int PRIMARY KEY);\nCREATE TABLE beta (id int PRIMARY KEY, a int REFERENCES alpha);\nCREATE TABLE gamma (id int PRIMARY KEY);\nCREATE INDEX gamma_id ON gamma (id);\n",
    );
    let r = s.run("migrate-check", &[]);
    assert!(
        !r.stdout.contains("alembic_version_lock") && !r.stdout.contains("database_drift"),
        "{}",
        r.all()
    );
}

#[test]
fn session_pooling_runs_every_command() {
    let s = Scenario::new();
    three_revisions(&s);
    let bouncer = PgBouncer::start("session");
    let url = bouncer.url(&s.db.name);
    let via = |bin: &str, args: &[&str]| {
        let r = s.run_env(bin, args, &[("DATABASE_URL", url.as_str())]);
        no_prepared_statement_errors(&r);
        r
    };

    via("migrate-up", &["b"]).ok();
    assert_eq!(via("migrate-current", &[]).ok().stdout, "b\n");
    via("migrate-history", &["-i"]).ok();
    via("migrate-stamp", &["c"]).ok();
    assert_eq!(s.db.version_rows(), ["c"]);
    via("migrate-stamp", &["b"]).ok();
    via("migrate-up", &[]).ok();
    via("migrate-down", &["a"]).ok();
    assert_eq!(s.db.version_rows(), ["a"]);
    assert_eq!(s.db.tables(), ["alpha"]);
    via("migrate-check", &["--offline"]).ok();
    assert_eq!(
        s.db.audit(),
        [
            "up true a,b",
            "stamp true ",
            "stamp true ",
            "up true c",
            "down true c,b"
        ]
    );
}

/// A fleet of three tenant databases, all reached through one PgBouncer in transaction
/// pooling (its `* =` entry forwards every database name to the test server): each tenant is
/// a single run under its lease, three at once; every revision is applied exactly once per
/// tenant (counted on a direct connection), a re-run finds them all up to date, and the
/// status page through the pooler is clean.
#[test]
fn transaction_pooling_a_fleet_of_tenants_is_migrated_once_each_and_checked_through_the_pooler() {
    let s = Scenario::new();
    three_revisions(&s);
    let bouncer = PgBouncer::start("transaction");
    let tenants: Vec<TestDb> = (0..3).map(|_| TestDb::new()).collect();
    let mut file = String::new();
    for (i, db) in tenants.iter().enumerate() {
        file.push_str(&format!("tenant{i}={}\n", bouncer.url(&db.name)));
    }
    s.write("targets.txt", &file);
    let file = s.path("targets.txt").display().to_string();

    let r = s
        .run("migrate-up", &["--targets", &file, "--parallel", "3"])
        .ok();

    no_prepared_statement_errors(&r);
    assert!(
        r.stderr.contains("migrate-up on 3 targets, 3 at once"),
        "{}",
        r.stderr
    );
    assert!(
        r.stdout.contains("3 targets in")
            && r.stdout
                .contains("3 done, 0 up to date, 0 with problems, 0 failed, 0 not started"),
        "{}",
        r.all()
    );
    for db in &tenants {
        assert_eq!(db.version_rows(), ["c"]);
        assert_eq!(db.tables(), ["alpha", "beta", "gamma"]);
        assert_eq!(
            db.strings("SELECT revision || ' ' || count(*) FROM alembic_version_applied GROUP BY revision ORDER BY revision"),
            ["a 1", "b 1", "c 1"]
        );
        assert_eq!(db.audit(), ["up true a,b,c"]);
        // under the lease (the advisory lock cannot hold through transaction pooling), released
        assert_eq!(
            db.strings("SELECT count(*)::text FROM alembic_version_lock"),
            ["0"]
        );
    }

    let r = s.run("migrate-up", &["--targets", &file]).ok();
    no_prepared_statement_errors(&r);
    assert!(r.stdout.contains("0 done, 3 up to date"), "{}", r.all());
    for db in &tenants {
        assert_eq!(db.audit(), ["up true a,b,c"]);
    }

    let r = s.run("migrate-check", &["--targets", &file]).ok();
    no_prepared_statement_errors(&r);
    assert!(
        r.stdout
            .contains("0 done, 3 up to date, 0 with problems, 0 failed"),
        "{}",
        r.all()
    );
}

/// A step longer than the lease lasts (30 s): while its transaction is open, the fence's row
/// lock keeps every taker out; at its COMMIT the lease is renewed, not run out — so a run
/// waiting for it cannot take it over in the moment before the heartbeat's next renewal,
/// while the next step runs outside any transaction.
#[test]
fn a_step_that_outlasts_the_lease_commits_it_renewed_and_no_waiting_run_slips_in() {
    let s = Scenario::new();
    s.revision(
        "001",
        "",
        "CREATE TABLE a (id int);\nSELECT pg_sleep(31);",
        "DROP TABLE a;",
    );
    s.revision_with(
        "002",
        "001",
        "-- transactional: false",
        "SELECT pg_sleep(6);",
        "",
    );
    let first = s.spawn(
        "migrate-up",
        &["--lock-mode", "lease", "--transaction-per-migration"],
    );
    // 002 starts right after 001's COMMIT; its 6 s leave the second run below ample time to
    // ask for the lease while the first still holds it
    first.wait_for(
        "Running upgrade 001 -> 002",
        std::time::Duration::from_secs(90),
    );
    let lasts = s.db.strings(
        "SELECT (expires_at > clock_timestamp() + interval '20 seconds')::text FROM alembic_version_lock",
    );
    assert_eq!(lasts, ["true"], "the lease ran out during 001");
    let second = s
        .run(
            "migrate-up",
            &["--lock-mode", "lease", "--lock-timeout", "1s"],
        )
        .code(5);
    assert!(
        second.stderr.contains("waiting for the migration lease"),
        "{}",
        second.stderr
    );
    let (code, err, _) = first.finish();
    assert_eq!(code, 0, "{err}");
    assert_eq!(s.db.version_rows(), ["002"]);
    assert_eq!(
        s.db.strings("SELECT count(*)::text FROM alembic_version_lock"),
        ["0"]
    );
}

/// A lease taken over while the run is in a step outside a transaction (its heartbeat could
/// not renew it in time, say): the step's bookkeeping transaction begins with the fence, finds
/// the lease another run's, and stops before writing — the step is not recorded, the next
/// never runs, and the other run's lease is left alone.
#[test]
fn a_run_whose_lease_was_taken_over_stops_before_its_next_write() {
    let s = Scenario::new();
    s.revision("001", "", "CREATE TABLE a (id int);", "DROP TABLE a;");
    s.revision_with(
        "002",
        "001",
        "-- transactional: false",
        "SELECT pg_sleep(4);",
        "",
    );
    s.revision("003", "002", "CREATE TABLE c (id int);", "DROP TABLE c;");
    let run = s.spawn("migrate-up", &["--lock-mode", "lease"]);
    // the takeover comes while 002 sleeps (4 s): before its bookkeeping's fence
    run.wait_for(
        "Running upgrade 001 -> 002",
        std::time::Duration::from_secs(30),
    );
    s.db.execute(
        "UPDATE alembic_version_lock SET holder = 'another run', holder_info = 'migrate-up (process 4242 on build-7)', expires_at = now() + interval '1 hour'",
    );
    let (code, err, _) = run.finish();
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("the migration lease is no longer this run's"),
        "{err}"
    );
    assert!(
        err.contains("note: migrations/002_x.sql is not transactional: all its statements ran and stayed, but 002 is not recorded"),
        "{err}"
    );
    assert!(
        err.contains("state: the database is at 001 (1 step of this run committed)"),
        "{err}"
    );
    assert_eq!(s.db.version_rows(), ["001"]);
    assert_eq!(
        s.db.strings("SELECT coalesce(to_regclass('c')::text, 'none')"),
        ["none"]
    );
    assert_eq!(
        s.db.strings("SELECT holder::text FROM alembic_version_lock"),
        ["another run"]
    );
}
