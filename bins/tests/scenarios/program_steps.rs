//! Scenarios: program steps (`-- run: <command>`). A revision whose work is a program runs it
//! in the revision order, after committing what came before, with the database's URL in
//! `DATABASE_URL`; it is recorded only when the program exits 0; its output is streamed with
//! the revision's prefix while it runs; SIGTERM reaches it; a timeout stops it; its file is
//! part of the checksum; `--sql`, `--dry-run`, `migrate-history` and `--round-trip` know it.

use crate::common::*;
use std::time::{Duration, Instant};

/// psql of the test server's installation (scripts/pg.sh exports PG_BIN), else from PATH.
fn psql() -> String {
    match std::env::var("PG_BIN") {
        Ok(bin) if std::path::Path::new(&bin).join("psql").exists() => format!("{bin}/psql"),
        _ => "psql".to_string(),
    }
}

/// 001 creates `items`, 002 is a program step that fills it (and empties it on the way
/// down), 003 adds a column.
fn three_revisions(s: &Scenario, fill: &str) {
    s.revision(
        "001",
        "",
        "CREATE TABLE items (id int PRIMARY KEY);",
        "DROP TABLE items;",
    );
    s.write("migrations/002_fill.sh", fill);
    s.write(
        "migrations/002_x.sql",
        "-- revision: 002\n-- down_revision: 001\n-- message: fill items\n\n\
         -- migrate:up\n-- the rows come from a program\n-- run: sh 002_fill.sh\n\n\
         -- migrate:down\n-- run: sh 002_fill.sh\n",
    );
    s.revision(
        "003",
        "002",
        "ALTER TABLE items ADD COLUMN note text;",
        "ALTER TABLE items DROP COLUMN note;",
    );
}

/// A program that inserts 100 rows on the way up and deletes them on the way down, telling
/// what it got in its environment.
fn filler() -> String {
    format!(
        "set -e\n\
         echo \"program $RETORT_REVISION $RETORT_DIRECTION in $(basename \"$PWD\")\"\n\
         if [ \"$RETORT_DIRECTION\" = up ]; then\n\
           {psql} \"$DATABASE_URL\" -v ON_ERROR_STOP=1 -qc 'INSERT INTO items SELECT g FROM generate_series(1, 100) g'\n\
         else\n\
           {psql} \"$DATABASE_URL\" -v ON_ERROR_STOP=1 -qc 'DELETE FROM items'\n\
         fi\n\
         echo 'a warning on stderr' >&2\n",
        psql = psql()
    )
}

fn count(d: &TestDb, sql: &str) -> i64 {
    d.client().query_one(sql, &[]).unwrap().get(0)
}

#[test]
fn a_program_step_between_two_sql_steps_runs_in_order_and_is_recorded() {
    let s = Scenario::new();
    three_revisions(&s, &filler());
    let r = s.run("migrate-up", &[]).ok();
    assert_eq!(s.db.version_rows(), ["003"]);
    assert_eq!(count(&s.db, "SELECT count(*) FROM items"), 100);
    // the output, with the revision's prefix, in order between the step lines
    let err = &r.stderr;
    let started = err.find("Running upgrade 001 -> 002").expect(err);
    let line = err.find("[002] program 002 up in migrations").expect(err);
    let warn = err.find("[002 stderr] a warning on stderr").expect(err);
    let next = err.find("Running upgrade 002 -> 003").expect(err);
    assert!(started < line && line < warn && warn < next, "{err}");
    // the password-free audit row names the command and its exit code
    let notes =
        s.db.strings("SELECT coalesce(note, '') FROM alembic_version_audit");
    assert!(
        notes
            .iter()
            .any(|n| n.contains("program 002 up: sh 002_fill.sh: exit 0")),
        "{notes:?}"
    );
    // down: 003's SQL, then 002's program
    let r = s.run("migrate-down", &["001"]).ok();
    assert!(r.stderr.contains("[002] program 002 down"), "{}", r.stderr);
    assert_eq!(s.db.version_rows(), ["001"]);
    assert_eq!(count(&s.db, "SELECT count(*) FROM items"), 0);
    // and the JSON events carry the lines too
    let r = s.run("migrate-up", &["--format", "json"]).ok();
    assert!(
        r.stderr
            .lines()
            .any(|l| l.contains("\"event\":\"program_output\"")
                && l.contains("\"revision\":\"002\"")
                && l.contains("\"stream\":\"stdout\"")),
        "{}",
        r.stderr
    );
}

#[test]
fn a_failing_program_stops_the_run_with_its_revision_unrecorded() {
    let s = Scenario::new();
    three_revisions(
        &s,
        &format!(
            "{psql} \"$DATABASE_URL\" -qc 'INSERT INTO items VALUES (1)'\n\
             echo 'cannot go on' >&2\nexit 3\n",
            psql = psql()
        ),
    );
    let r = s.run("migrate-up", &[]);
    assert_ne!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("002_x.sql:7: the program of revision 002 (upgrade) exited with code 3"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("[002 stderr] cannot go on"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("002 is a program step: it is not recorded as applied"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("state: the database is at 001"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("002 (a program step) is not recorded"),
        "{}",
        r.stderr
    );
    assert!(
        !r.stderr.contains("Running upgrade 002 -> 003"),
        "{}",
        r.stderr
    );
    // 001 committed before the program ran; 003 never ran; what the program committed stays
    assert_eq!(s.db.version_rows(), ["001"]);
    assert!(!s.db.table_exists("items") || count(&s.db, "SELECT count(*) FROM items") == 1);
    assert_eq!(
        count(
            &s.db,
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'items' AND column_name = 'note'"
        ),
        0
    );
    let notes = s.db.strings(
        "SELECT success::text || ' ' || coalesce(note, '') FROM alembic_version_audit ORDER BY id",
    );
    assert!(
        notes
            .last()
            .is_some_and(|n| n.starts_with("false") && n.contains("sh 002_fill.sh: exit 3")),
        "{notes:?}"
    );
}

/// The program traps `sig`, writes a marker and exits 1; retort gets `sig` once the program's
/// first line is shown (while it still sleeps).
fn signal_during_the_program(sig: &str, code: i32, name: &str) {
    let s = Scenario::new();
    let marker = s.path("got-signal");
    three_revisions(
        &s,
        &format!(
            "trap 'echo {sig} > {}; exit 1' {sig}\necho started\nsleep 20 &\nwait\necho finished\n",
            marker.display()
        ),
    );
    let t0 = Instant::now();
    let r = s.spawn("migrate-up", &[]);
    // the first line is there while the program still sleeps
    r.wait_for("[002] started", Duration::from_secs(15));
    assert!(t0.elapsed() < Duration::from_secs(15));
    assert!(!marker.exists());
    r.signal(sig);
    let (got, err, _) = r.finish();
    assert_eq!(got, code, "{err}");
    assert!(t0.elapsed() < Duration::from_secs(15), "{err}");
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap_or_default().trim(),
        sig,
        "the program did not get the signal: {err}"
    );
    assert!(!err.contains("finished"), "{err}");
    assert!(
        err.contains(&format!("interrupted by {name} during 002")),
        "{err}"
    );
    assert!(err.contains("it is not recorded as applied"), "{err}");
    assert!(err.contains("state: the database is at 001"), "{err}");
    assert!(
        err.contains("002 (a program step) is not recorded"),
        "{err}"
    );
    assert_eq!(s.db.version_rows(), ["001"]);
}

#[test]
fn output_is_streamed_while_the_program_runs_and_sigterm_reaches_it() {
    signal_during_the_program("TERM", 143, "SIGTERM");
}

#[test]
fn ctrl_c_reaches_the_program_too() {
    signal_during_the_program("INT", 130, "SIGINT");
}

#[test]
fn a_program_past_its_timeout_is_stopped_and_the_step_fails() {
    let s = Scenario::new();
    three_revisions(&s, "echo working\nsleep 30\n");
    let t0 = Instant::now();
    let r = s.run("migrate-up", &["--program-timeout", "500ms"]);
    assert_ne!(r.code, 0, "{}", r.stderr);
    assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", t0.elapsed());
    assert!(
        r.stderr
            .contains("the program of revision 002 (upgrade) ran longer than its timeout (500ms) and was stopped"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("--program-timeout"), "{}", r.stderr);
    assert_eq!(s.db.version_rows(), ["001"]);
}

#[test]
fn editing_the_program_file_of_an_applied_revision_is_detected() {
    let s = Scenario::new();
    three_revisions(&s, &filler());
    s.run("migrate-up", &[]).ok();
    s.run("migrate-check", &[]).ok();
    std::fs::write(
        s.migrations().join("002_fill.sh"),
        filler().replace("100)", "200)"),
    )
    .unwrap();
    let r = s.run("migrate-check", &[]).code(1);
    assert!(
        r.stdout.contains("checksum_mismatch") && r.stdout.contains("002_x.sql"),
        "{}",
        r.stdout
    );
}

#[test]
fn sql_and_dry_run_and_history_show_the_program_step() {
    let s = Scenario::new();
    three_revisions(&s, &filler());
    // --sql: a marked comment in its place, a warning on stderr, never silently skipped
    let r = s.run("migrate-up", &["--sql"]).ok();
    let marked = r
        .stdout
        .find("PROGRAM STEP NOT INCLUDED: revision 002 (up)")
        .expect(&r.stdout);
    assert!(
        r.stdout[marked..].contains("sh -c 'sh 002_fill.sh'"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.find("CREATE TABLE items").unwrap() < marked
            && marked < r.stdout.find("ADD COLUMN note").unwrap(),
        "{}",
        r.stdout
    );
    assert!(r.stderr.contains("--sql cannot include it"), "{}", r.stderr);
    assert!(
        r.stderr.contains("the SQL script is incomplete"),
        "{}",
        r.stderr
    );
    assert!(
        !r.stdout.contains("program 002 up"),
        "the program ran: {}",
        r.stdout
    );
    assert!(!s.db.table_exists("items"));
    // --dry-run
    let r = s.run("migrate-up", &["--dry-run"]).ok();
    assert!(
        r.all().contains("002_x.sql, program step]") && r.all().contains("run: sh 002_fill.sh"),
        "{}",
        r.all()
    );
    let r = s.run("migrate-up", &["--dry-run", "--format", "json"]).ok();
    assert!(
        r.stdout.contains("\"program\": \"sh 002_fill.sh\""),
        "{}",
        r.stdout
    );
    // history
    let r = s.run("migrate-history", &[]).ok();
    assert!(
        r.stdout.contains("001 -> 002 (program), fill items"),
        "{}",
        r.stdout
    );
    let r = s.run("migrate-history", &["--verbose"]).ok();
    assert!(
        r.stdout.contains("Program: up: sh 002_fill.sh"),
        "{}",
        r.stdout
    );
    assert!(!s.db.table_exists("items"));
}

#[test]
fn the_round_trip_runs_program_steps_up_and_down_on_the_shadow() {
    let s = Scenario::new();
    let log = s.path("ran.log");
    three_revisions(
        &s,
        &format!(
            "{fill}echo \"$RETORT_DIRECTION $({psql} \"$DATABASE_URL\" -Atc 'SELECT current_database()')\" >> {log}\n",
            fill = filler(),
            psql = psql(),
            log = log.display()
        ),
    );
    s.run("migrate-check", &["--round-trip"]).ok();
    let ran = std::fs::read_to_string(&log).unwrap_or_default();
    let lines: Vec<&str> = ran.lines().collect();
    assert_eq!(lines.len(), 3, "up, down, up again: {ran}");
    assert!(
        lines[0].starts_with("up ") && lines[1].starts_with("down ") && lines[2].starts_with("up "),
        "{ran}"
    );
    assert!(
        !lines[0].ends_with(&s.db.name),
        "ran on the database, not a shadow: {ran}"
    );
    assert!(!s.db.table_exists("items"));
}

#[test]
fn a_schema_per_tenant_fleet_runs_the_program_in_each_tenants_schema() {
    let s = Scenario::new();
    // 001 creates items in the tenant's schema (search_path); 002's program fills it through
    // an unqualified name, and says which schema it was given
    three_revisions(
        &s,
        &format!(
            "{psql} \"$DATABASE_URL\" -v ON_ERROR_STOP=1 -qc \"INSERT INTO items VALUES (1); INSERT INTO items SELECT 2 WHERE current_schema() = '$RETORT_SCHEMA'\"\n",
            psql = psql()
        ),
    );
    s.db.execute("CREATE SCHEMA tenant_a; CREATE SCHEMA tenant_b");
    let q = "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'tenant\\_%' ORDER BY 1";
    s.run("migrate-up", &["--targets-query", q]).ok();
    for schema in ["tenant_a", "tenant_b"] {
        assert_eq!(
            count(&s.db, &format!("SELECT count(*) FROM {schema}.items")),
            2,
            "{schema}"
        );
        assert_eq!(
            s.db.strings(&format!(
                "SELECT version_num::text FROM {schema}.alembic_version"
            )),
            ["003"]
        );
    }
    assert!(!s.db.table_exists("items"), "nothing in public");
}

#[test]
fn sql_beside_a_run_line_is_refused_with_its_line_and_nothing_runs() {
    let s = Scenario::new();
    three_revisions(&s, &filler());
    s.write(
        "migrations/002_x.sql",
        "-- revision: 002\n-- down_revision: 001\n-- migrate:up\n-- run: sh 002_fill.sh\nUPDATE items SET id = id;\n-- migrate:down\n-- run:\n",
    );
    let r = s.run("migrate-up", &[]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr
            .contains("002_x.sql:5: SQL beside '-- run:' (line 4)"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("002_x.sql:7: '-- run:' without a command"),
        "{}",
        r.stderr
    );
    assert!(!s.db.table_exists("items"), "nothing ran");
    assert!(!s.db.table_exists("alembic_version"));
}
