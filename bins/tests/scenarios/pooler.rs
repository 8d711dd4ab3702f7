//! Scenarios through a real PgBouncer (Debian's) in front of the test server, in session and in
//! transaction pooling. Transaction pooling hands each transaction to whichever server
//! connection is free, so a named prepared statement (what the driver's `query` prepares)
//! turns up on other clients' connections (`42P05` "already exists", `26000` "does not
//! exist"): retort sends every statement unnamed or by the simple protocol. Its migration lock
//! is a session advisory lock, which transaction pooling cannot hold: the writing commands
//! detect transaction pooling and refuse (exit 2, nothing written); the reading ones work.
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

/// Eight runners at once through transaction pooling. Telling transaction pooling from a direct
/// connection is a probe of which backends the transactions land on (docs/production.md), and
/// eight runners competing for the pool can make one probe inconclusive: so what is asserted is
/// the promise that holds either way — no prepared-statement error reaches anyone, every run is
/// refused with the explanation or completes, and whatever was applied was applied exactly once.
/// (The single runner below is always refused.)
#[test]
fn transaction_pooling_eight_concurrent_ups_never_double_apply() {
    let s = Scenario::new();
    three_revisions(&s);
    let bouncer = PgBouncer::start("transaction");
    let url = bouncer.url(&s.db.name);

    let runs = eight_at_once(&s, &url, "migrate-up", &[]);

    let mut refused = 0;
    for r in &runs {
        no_prepared_statement_errors(r);
        match r.code {
            2 => {
                assert!(
                    r.stderr.contains("transaction pooling")
                        && r.stderr.contains("the migration lock cannot be held")
                        && r.stderr.contains("connect to PostgreSQL directly"),
                    "{}",
                    r.stderr
                );
                refused += 1;
            }
            0 => {}
            _ => panic!("neither refused nor done:\n{}", r.all()),
        }
    }
    assert!(refused >= 1, "the probe never saw the pooler: {runs:?}");
    let applied = applied_counts(&s);
    if refused == runs.len() {
        assert_eq!(s.db.version_rows(), Vec::<String>::new());
        assert_eq!(s.db.tables(), Vec::<String>::new());
        assert_eq!(applied, Vec::<String>::new());
    } else {
        assert_eq!(s.db.version_rows(), ["c"]);
        assert_eq!(applied, ["a 1", "b 1", "c 1"]);
    }
}

#[test]
fn transaction_pooling_reading_commands_work_and_writing_commands_refuse() {
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

    // writing: refused before anything is written, with the way out
    for (bin, args) in [
        ("migrate-up", &[][..]),
        ("migrate-down", &["a"][..]),
        ("migrate-stamp", &["c"][..]),
    ] {
        let r = via(bin, args).code(2);
        assert!(
            r.stderr.contains("transaction pooling")
                && r.stderr.contains("connect to PostgreSQL directly"),
            "{bin}: {}",
            r.stderr
        );
    }
    assert_eq!(s.db.version_rows(), ["b"]);
    assert_eq!(s.db.tables(), ["alpha", "beta"]);
    assert_eq!(applied_counts(&s), ["a 1", "b 1"]);
    assert_eq!(s.db.audit(), ["up true a,b"]);
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
