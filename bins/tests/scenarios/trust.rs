//! Scenarios: checksums, the audit log, adoption of an Alembic database, the migration lock,
//! JSON output and exit codes.
use crate::common::*;
use std::process::{Command, Stdio};

fn applied(s: &Scenario) -> Vec<String> {
    s.db.strings("SELECT revision || ' ' || how FROM alembic_version_applied ORDER BY revision")
}

#[test]
fn an_edited_applied_script_is_refused_until_rehashed() {
    let s = Scenario::with_example();
    s.run("migrate-up", &["003"]).ok();
    assert_eq!(applied(&s), vec!["001 up", "002 up", "003 up"]);
    let path = s.migrations().join("002_server_settings.sql");
    let original = std::fs::read_to_string(&path).unwrap();
    // cosmetic edits (CRLF line endings, trailing spaces, a header message fix) are not drift
    let cosmetic = original
        .replace("server settings table", "server settings")
        .replace('\n', "  \r\n");
    std::fs::write(&path, &cosmetic).unwrap();
    s.run("migrate-check", &["--allow-multiple-heads"]).code(1); // only pending: 004
    let r = s.run("migrate-check", &["--format", "json"]).code(1);
    assert!(!r.stdout.contains("checksum_mismatch"), "{}", r.stdout);
    // a real edit is refused, naming the file and both checksums; nothing runs
    let edited = original.replace("DEFAULT now()", "DEFAULT clock_timestamp()");
    assert_ne!(edited, original);
    std::fs::write(&path, edited).unwrap();
    let r = s.run("migrate-up", &[]).code(7);
    assert!(
        r.stderr.contains("002_server_settings.sql")
            && r.stderr.contains("recorded ")
            && r.stderr.contains("now "),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("migrate-stamp --rehash 002") && r.stderr.contains("--ignore-checksums"),
        "{}",
        r.stderr
    );
    assert_eq!(s.db.version_rows(), vec!["003"]);
    let r = s.run("migrate-check", &[]).code(1);
    assert!(
        r.stdout.contains("checksum_mismatch") && r.stdout.contains("002_server_settings.sql"),
        "{}",
        r.stdout
    );
    // deliberate: rehash, audited; then the upgrade goes through. Under the lease (the lock
    // through a pooler) its write begins with the lease's fence, as a run's do
    let r = s
        .run(
            "migrate-stamp",
            &["--rehash", "002", "--lock-mode", "lease"],
        )
        .ok();
    assert!(r.stdout.starts_with("002: checksum "), "{}", r.stdout);
    assert_eq!(
        s.db.strings("SELECT count(*)::text FROM alembic_version_lock"),
        ["0"],
        "the lease was released"
    );
    s.run("migrate-up", &[]).ok();
    assert_eq!(s.db.version_rows(), vec!["004"]);
    let notes =
        s.db.strings("SELECT note FROM alembic_version_audit WHERE action = 'rehash'");
    assert_eq!(notes.len(), 1);
    assert!(
        notes[0].starts_with("checksum ") && notes[0].contains(" -> "),
        "{}",
        notes[0]
    );
}

#[test]
fn fixing_the_downgrade_of_an_applied_script_is_not_an_edit() {
    let s = Scenario::with_example();
    s.run("migrate-up", &["003"]).ok();
    let path = s.migrations().join("002_server_settings.sql");
    let original = std::fs::read_to_string(&path).unwrap();
    // the down section fixed after 002 was applied: not an edit of what ran
    let fixed = original.replace(
        "DROP TABLE server_settings;",
        "DROP TABLE IF EXISTS server_settings;",
    );
    assert_ne!(fixed, original);
    std::fs::write(&path, &fixed).unwrap();
    let r = s.run("migrate-check", &["--format", "json"]).code(1); // only pending: 004
    assert!(!r.stdout.contains("checksum_mismatch"), "{}", r.stdout);
    assert!(r.stdout.contains("\"pending\""), "{}", r.stdout);
    s.run("migrate-up", &[]).ok();
    assert_eq!(s.db.version_rows(), vec!["004"]);
    // the downgrade that runs is the fixed one
    s.run("migrate-down", &["001"]).ok();
    s.run("migrate-up", &[]).ok();
    // an edit of the up section is still one
    std::fs::write(
        &path,
        fixed.replace("DEFAULT now()", "DEFAULT clock_timestamp()"),
    )
    .unwrap();
    let r = s.run("migrate-check", &[]).code(1);
    assert!(
        r.stdout.contains("checksum_mismatch") && r.stdout.contains("002_server_settings.sql"),
        "{}",
        r.stdout
    );
    s.run("migrate-up", &[]).code(7);
}

#[test]
fn a_checksum_recorded_in_the_old_form_still_verifies_and_is_converted() {
    let s = Scenario::with_example();
    s.run("migrate-up", &["003"]).ok();
    // the form older versions recorded: the header lines, then the file from '-- migrate:up'
    // to its end, the down section included (computed here by PostgreSQL, not by retort)
    let path = s.migrations().join("002_server_settings.sql");
    let original = std::fs::read_to_string(&path).unwrap();
    let from_up = &original[original.find("-- migrate:up").unwrap()..];
    let old_text = format!("down_revision: 001\n{}", from_up.trim_end());
    s.db.execute(&format!(
        "UPDATE alembic_version_applied
            SET checksum = encode(sha256(convert_to($q${old_text}$q$, 'UTF8')), 'hex')
          WHERE revision = '002'"
    ));
    let old =
        s.db.strings("SELECT checksum FROM alembic_version_applied WHERE revision = '002'");
    assert_eq!(old[0].len(), 64);
    // verifies as it is, with no --rehash
    let r = s.run("migrate-check", &["--format", "json"]).code(1); // only pending: 004
    assert!(!r.stdout.contains("checksum_mismatch"), "{}", r.stdout);
    // a run converts it to the current form, keeping how and when it was applied
    s.run("migrate-up", &[]).ok();
    let now = s.db.strings(
        "SELECT checksum || ' ' || how FROM alembic_version_applied WHERE revision = '002'",
    );
    let up_only = &from_up[..from_up.find("-- migrate:down").unwrap()];
    let new_text = format!("down_revision: 001\n{}", up_only.trim_end());
    let expected = s.db.strings(&format!(
        "SELECT encode(sha256(convert_to($q${new_text}$q$, 'UTF8')), 'hex') || ' up'"
    ));
    assert_ne!(expected[0], format!("{} up", old[0]));
    assert_eq!(now, expected, "converted, how kept");
    // from then on the down section can be fixed like any other
    std::fs::write(
        &path,
        original.replace(
            "DROP TABLE server_settings;",
            "DROP TABLE IF EXISTS server_settings;",
        ),
    )
    .unwrap();
    s.run("migrate-check", &[]).ok();
}

#[test]
fn ignore_checksums_proceeds_once() {
    let s = Scenario::with_example();
    s.run("migrate-up", &["001"]).ok();
    let path = s.migrations().join("001_baseline.sql");
    std::fs::write(
        &path,
        std::fs::read_to_string(&path)
            .unwrap()
            .replace("title       text,", "title       text, -- edited"),
    )
    .unwrap();
    s.run("migrate-up", &["002"]).code(7);
    s.run("migrate-up", &["002", "--ignore-checksums"]).ok();
    assert_eq!(s.db.version_rows(), vec!["002"]);
    s.run("migrate-up", &[]).code(7);
}

#[test]
fn the_audit_log_records_every_write_newest_first() {
    let s = Scenario::with_example();
    s.run("migrate-up", &["002"]).ok();
    s.run("migrate-down", &["-1"]).ok();
    s.run("migrate-stamp", &["003"]).ok();
    s.run("migrate-stamp", &["001", "--purge"]).ok();
    assert_eq!(
        s.db.audit(),
        vec![
            "up true 001,002",
            "down true 002",
            "stamp true ",
            "purge true "
        ]
    );
    // downgrade removed 002's record; stamp recorded 002 and 003; purge then stamp 001 leaves 001
    assert_eq!(applied(&s), vec!["001 stamp"]);
    let r = s.run("migrate-history", &["--log"]).ok();
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(
        lines[0].contains(" purge  001 ") && lines[0].ends_with("ok"),
        "{}",
        r.stdout
    );
    assert!(
        lines
            .last()
            .unwrap()
            .contains(" up     002 base -> 002  2 revisions: 001, 002  by postgres@"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("(migrate-up, retort "), "{}", r.stdout);
    let r = s
        .run("migrate-history", &["--log", "--format", "json"])
        .ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["version"], 1);
    assert_eq!(v["log"][0]["action"], "purge");
    assert_eq!(v["log"][3]["revisions"], serde_json::json!(["001", "002"]));
    assert_eq!(v["log"][3]["success"], true);
    assert_eq!(v["log"][3]["application_name"], "migrate-up");
    // a failure is logged with its error
    s.write(
        "migrations/005_bad.sql",
        "-- revision: 005\n-- down_revision: 004\n\n-- migrate:up\nSELECT 1/0;\n",
    );
    s.run("migrate-up", &[]).code(4);
    let errors =
        s.db.strings("SELECT error FROM alembic_version_audit WHERE NOT success");
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].contains("22012") && errors[0].contains("005_bad.sql"),
        "{}",
        errors[0]
    );
}

#[test]
fn a_database_alembic_migrated_is_adopted_on_the_first_run() {
    let s = Scenario::with_example();
    s.db.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)); INSERT INTO alembic_version VALUES ('002')");
    s.db.execute("CREATE EXTENSION IF NOT EXISTS vector; CREATE TABLE documents (id bigint PRIMARY KEY); CREATE TABLE chunks (id bigint, document_id bigint, chunk_index int, content text, embedding vector(384)); CREATE TABLE server_settings (key text PRIMARY KEY, value jsonb)");
    s.run("migrate-up", &["003"]).ok();
    assert_eq!(applied(&s), vec!["001 adopt", "002 adopt", "003 up"]);
    assert_eq!(s.db.audit(), vec!["adopt true 001,002", "up true 003"]);
    s.run("migrate-check", &["--allow-multiple-heads"]).code(1);
}

fn lock_key_sql() -> &'static str {
    "SELECT pg_advisory_lock(1920234100, hashtext(current_database() || ':' || 'alembic_version'))"
}

/// The sessions holding the migration lock of `db`'s database, as another session sees them
/// in pg_locks (the two-key advisory lock whose first key is retort's).
const LOCK_HOLDERS_SQL: &str = "SELECT pid FROM pg_locks
  WHERE locktype = 'advisory' AND granted AND classid = 1920234100::oid AND objsubid = 2
    AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
  ORDER BY pid";

fn lock_holders(db: &TestDb) -> Vec<i32> {
    db.client()
        .query(LOCK_HOLDERS_SQL, &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[test]
fn lock_timeout_names_the_holder_and_exits_5() {
    let s = Scenario::with_example();
    let mut holder = postgres::Client::connect(
        &format!("{}?application_name=test-holder", s.db.url),
        postgres::NoTls,
    )
    .unwrap();
    holder.batch_execute(lock_key_sql()).unwrap();
    let r = s.run("migrate-up", &["--lock-timeout", "1s"]).code(5);
    assert!(
        r.stderr
            .contains("waiting for the migration lock on alembic_version, held by pid"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("(test-holder)"), "{}", r.stderr);
    assert!(r.stderr.contains("timed out after"), "{}", r.stderr);
    assert_eq!(s.db.version_rows(), Vec::<String>::new());
    // once the holder lets go, the same command goes through
    drop(holder);
    s.run("migrate-up", &["--lock-timeout", "10s"]).ok();
    assert_eq!(s.db.version_rows(), vec!["004"]);
}

/// An application that migrates at start-up keeps its connection open afterwards (docs/library.md):
/// the lock must go when `upgrade()` returns, not when the connection closes.
#[test]
fn a_migrator_that_stays_connected_releases_the_lock_after_each_upgrade() {
    use retort::config::{Env, Overrides, Settings};
    use retort::migrator::MigratorOptions;
    use retort::{ErrorKind, Migrator, RunOptions};
    use std::time::Duration;

    let s = Scenario::new();
    // r1 records, from inside the run, which sessions hold the lock: the migrator's own
    s.revision(
        "r1",
        "",
        &format!("CREATE TABLE holders_during_r1 AS {LOCK_HOLDERS_SQL};"),
        "DROP TABLE holders_during_r1;",
    );
    s.revision("r2", "r1", "SELECT 1/0;", "SELECT 1;");
    let settings = Settings::resolve(
        &Overrides {
            database_url: Some(s.db.url.clone()),
            dir: Some(s.migrations()),
            ..Default::default()
        },
        &Env::from_pairs(&[], &[]),
    )
    .unwrap();
    let app_sessions = |db: &TestDb| {
        db.strings("SELECT pid::text FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'stays-connected'")
    };
    let mut m = Migrator::open(&settings, "stays-connected").unwrap();
    let pid = app_sessions(&s.db);
    assert_eq!(pid.len(), 1, "the migrator's session");
    // a second migrator that does not wait at all: it gets the lock only if it is free
    let mut other = Migrator::open(&settings, "second-migrator")
        .unwrap()
        .with_options(MigratorOptions {
            lock_timeout: Duration::ZERO,
            ..Default::default()
        });

    // a successful upgrade: the lock was held during the run, by the migrator's session ...
    let report = m.upgrade("r1", &RunOptions::default()).unwrap();
    assert_eq!(report.end_heads, ["r1"]);
    assert_eq!(s.db.strings("SELECT pid::text FROM holders_during_r1"), pid);
    // ... and is free once upgrade() returns, with that session still connected
    assert_eq!(app_sessions(&s.db), pid);
    assert_eq!(lock_holders(&s.db), Vec::<i32>::new());
    assert!(other
        .upgrade("r1", &RunOptions::default())
        .unwrap()
        .steps
        .is_empty());

    // a failed upgrade: the same
    let err = m.upgrade("heads", &RunOptions::default()).unwrap_err();
    assert_eq!(
        err.error.kind,
        ErrorKind::Migration,
        "{}",
        err.error.message
    );
    assert_eq!(m.heads().unwrap(), ["r1"]);
    assert_eq!(app_sessions(&s.db), pid);
    assert_eq!(lock_holders(&s.db), Vec::<i32>::new());
    assert!(other
        .upgrade("r1", &RunOptions::default())
        .unwrap()
        .steps
        .is_empty());

    // the probes see a held lock: a session holding it shows in pg_locks and the second
    // migrator, not waiting, is refused
    let mut holder = s.db.client();
    holder.batch_execute(lock_key_sql()).unwrap();
    let holder_pid: i32 = holder
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    assert_eq!(lock_holders(&s.db), vec![holder_pid]);
    let refused = other.upgrade("r1", &RunOptions::default()).unwrap_err();
    assert_eq!(
        refused.error.kind,
        ErrorKind::LockTimeout,
        "{}",
        refused.error.message
    );
    drop(holder);

    // the audit log: the second migrator never waited
    assert_eq!(
        s.db.strings("SELECT action || ' ' || success || ' ' || array_to_string(revisions, ',') || ' ' || (lock_wait_ms > 0) FROM alembic_version_audit ORDER BY id"),
        vec!["up true r1 false", "up true  false", "up false  false", "up true  false"]
    );
}

#[test]
fn eight_concurrent_runs_apply_each_revision_exactly_once() {
    use std::io::BufRead;
    use std::sync::mpsc;
    use std::time::Duration;

    let s = Scenario::new();
    s.revision(
        "r1",
        "",
        "CREATE TABLE ledger (rev text PRIMARY KEY);\nINSERT INTO ledger VALUES ('r1');",
        "DROP TABLE ledger;",
    );
    for i in 2..=4 {
        s.revision(
            &format!("r{i}"),
            &format!("r{}", i - 1),
            &format!("CREATE TABLE t{i} (id int);\nINSERT INTO ledger VALUES ('r{i}');"),
            &format!("DROP TABLE t{i};"),
        );
    }
    // the test holds the lock until all eight runs are waiting for it, then lets go: they
    // contend for real, however fast or slow each process starts
    let mut gate = s.db.client();
    gate.batch_execute(lock_key_sql()).unwrap();
    let (waiting, waits) = mpsc::channel();
    let runs: Vec<_> = (0..8)
        .map(|_| {
            let mut child = Command::new(bin_path("migrate-up"))
                .current_dir(s.dir.path())
                .env_clear()
                .env("DATABASE_URL", &s.db.url)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
            let waiting = waiting.clone();
            let reader = std::thread::spawn(move || {
                let mut all = String::new();
                for line in stderr.lines() {
                    let line = line.unwrap();
                    if line.contains("waiting for the migration lock") {
                        let _ = waiting.send(());
                    }
                    all.push_str(&line);
                    all.push('\n');
                }
                all
            });
            (child, reader)
        })
        .collect();
    for n in 0..8 {
        waits
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("only {n} of 8 runs reported waiting for the lock"));
    }
    assert_eq!(
        s.db.version_rows(),
        Vec::<String>::new(),
        "nothing ran under the gate"
    );
    drop(gate);
    for (mut child, reader) in runs {
        let code = child.wait().unwrap().code();
        let stderr = reader.join().unwrap();
        assert_eq!(code, Some(0), "{stderr}");
    }
    // a second application would have failed on the ledger's primary key; the counts say it too
    assert_eq!(
        s.db.strings("SELECT rev FROM ledger ORDER BY rev"),
        vec!["r1", "r2", "r3", "r4"]
    );
    assert_eq!(applied(&s), vec!["r1 up", "r2 up", "r3 up", "r4 up"]);
    assert_eq!(s.db.version_rows(), vec!["r4"]);
    let mut runs = s.db.strings("SELECT array_to_string(revisions, ',') || ' waited ' || (lock_wait_ms > 0) FROM alembic_version_audit WHERE action = 'up' ORDER BY 1");
    runs.dedup();
    assert_eq!(
        runs,
        vec![" waited true", "r1,r2,r3,r4 waited true"],
        "one run applied everything, the others found nothing to do; all of them waited"
    );
    assert_eq!(
        s.db.strings("SELECT count(*)::text FROM alembic_version_audit WHERE action = 'up' AND cardinality(revisions) = 0"),
        vec!["7"]
    );
}

#[test]
fn json_output_has_a_stable_shape() {
    let s = Scenario::with_example();
    s.run("migrate-up", &["002"]).ok();
    let v: serde_json::Value =
        serde_json::from_str(&s.run("migrate-current", &["--format", "json"]).ok().stdout).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"version": 1, "current": ["002"], "effective_heads": [], "script_heads": ["004"], "at_heads": false})
    );
    let v: serde_json::Value =
        serde_json::from_str(&s.run("migrate-check", &["--format", "json"]).code(1).stdout)
            .unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["problems"][0]["code"], "pending");
    assert_eq!(v["pending"], serde_json::json!(["003", "004"]));
    let drift = v["drift_check"].as_str().unwrap();
    assert!(drift.contains("no schema file"), "{drift}");
    let v: serde_json::Value = serde_json::from_str(
        &s.run("migrate-up", &["--dry-run", "--format", "json"])
            .ok()
            .stdout,
    )
    .unwrap();
    assert_eq!(v["from_heads"], serde_json::json!(["002"]));
    assert_eq!(v["to_heads"], serde_json::json!(["004"]));
    assert_eq!(v["steps"][1]["revision"], "004");
    assert_eq!(v["steps"][1]["transactional"], false);
    assert_eq!(
        v["steps"][0]["version_table_sql"][0],
        "UPDATE alembic_version SET version_num='003' WHERE alembic_version.version_num = '002';"
    );
    let v: serde_json::Value = serde_json::from_str(
        &s.run("migrate-down", &["--dry-run", "base", "--format", "json"])
            .ok()
            .stdout,
    )
    .unwrap();
    assert_eq!(v["steps"].as_array().unwrap().len(), 2);
    assert_eq!(v["steps"][0]["direction"], "down");
    let v: serde_json::Value = serde_json::from_str(
        &s.run(
            "migrate-history",
            &["--format", "json", "--indicate-current"],
        )
        .ok()
        .stdout,
    )
    .unwrap();
    assert_eq!(v["revisions"][0]["revision"], "004");
    assert_eq!(v["revisions"][2]["current"], true);
    let path = v["revisions"][3]["path"].as_str().unwrap();
    assert!(path.ends_with("001_baseline.sql"), "{path}");
    assert_eq!(s.db.version_rows(), vec!["002"], "dry runs change nothing");
}

#[test]
fn every_exit_code_is_what_the_table_says() {
    let s = Scenario::with_example();
    s.run("migrate-check", &["--offline"]).code(0);
    s.run("migrate-check", &[]).code(1);
    s.run("migrate-up", &["--bogus"]).code(2);
    s.run("migrate-up", &["nosuchrev"]).code(2);
    s.run_env(
        "migrate-up",
        &[],
        &[("DATABASE_URL", "postgresql://x@127.0.0.1:1/x")],
    )
    .code(3);
    s.write(
        "migrations/005_bad.sql",
        "-- revision: 005\n-- down_revision: 004\n\n-- migrate:up\nSELECT nope;\n",
    );
    s.run("migrate-up", &[]).code(4);
    s.run("migrate-up", &["004"]).ok();
    let mut holder = s.db.client();
    holder.batch_execute(lock_key_sql()).unwrap();
    s.run("migrate-up", &["--lock-timeout", "200ms"]).code(5);
    drop(holder);
    s.write(
        "migrations/006_broken.sql",
        "-- revision: 006\n-- bogus: 1\n",
    );
    s.run("migrate-up", &[]).code(6);
    std::fs::remove_file(s.migrations().join("006_broken.sql")).unwrap();
    s.db.execute("INSERT INTO alembic_version VALUES ('ffff0000')");
    s.run("migrate-up", &[]).code(7);
}

#[test]
fn backup_before_migrating_only_when_something_runs() {
    let mut s = Scenario::with_example();
    s.env.push((
        "PG_BIN".into(),
        std::env::var("PG_BIN").expect("make test sets PG_BIN"),
    ));
    s.run("migrate-up", &["002"]).ok();
    let r = s.run("migrate-up", &["--backup-dir", "backups"]).ok();
    let files: Vec<_> = std::fs::read_dir(s.path("backups"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().unwrap().to_string_lossy().to_string();
    assert!(
        name.starts_with(&format!("{}-", s.db.name)) && name.ends_with("-at-002.dump"),
        "{name}"
    );
    let bytes = std::fs::read(&files[0]).unwrap();
    assert!(
        bytes.starts_with(b"PGDMP") && bytes.len() > 1000,
        "a custom-format dump"
    );
    assert!(r.stderr.contains("backup done in"), "{}", r.stderr);
    let password =
        s.db.url
            .split_once("://")
            .unwrap()
            .1
            .split_once('@')
            .unwrap()
            .0
            .split_once(':')
            .unwrap()
            .1
            .to_string();
    assert!(!r.all().contains(&password));
    let notes = s
        .db
        .strings("SELECT note FROM alembic_version_audit WHERE action = 'up' AND note IS NOT NULL");
    assert_eq!(notes.len(), 1);
    assert!(
        notes[0].starts_with("backup: ") && notes[0].ends_with("-at-002.dump"),
        "{}",
        notes[0]
    );
    // nothing to do: no backup
    s.run("migrate-up", &["--backup-dir", "backups"]).ok();
    assert_eq!(std::fs::read_dir(s.path("backups")).unwrap().count(), 1);
    // a backup that cannot be taken stops the run before anything is applied
    s.write(
        "migrations/005_x.sql",
        "-- revision: 005\n-- down_revision: 004\n\n-- migrate:up\nCREATE TABLE t5 (id int);\n",
    );
    let r = s
        .run_env(
            "migrate-up",
            &["--backup-dir", "backups"],
            &[
                ("DATABASE_URL", &s.db.url),
                ("PG_DUMP", "/nonexistent/pg_dump"),
            ],
        )
        .code(4);
    assert!(
        r.stderr.contains("cannot run /nonexistent/pg_dump")
            && r.stderr.contains("nothing was migrated"),
        "{}",
        r.stderr
    );
    assert_eq!(s.db.version_rows(), vec!["004"]);
}

#[test]
fn a_failed_first_run_on_an_empty_database_says_what_it_left() {
    let s = Scenario::new();
    s.revision("001", "", "CREATE TABLE a (id int);", "DROP TABLE a;");
    s.revision(
        "002",
        "001",
        "CREATE TABLE b (id int REFERENCES nowhere);",
        "DROP TABLE b;",
    );
    let retort_tables = |s: &Scenario| {
        s.db.strings("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
    };
    assert_eq!(retort_tables(&s), Vec::<String>::new());
    let r = s.run("migrate-up", &[]).code(4);
    // what stays is exactly what the state line names: the audit log of this failure
    assert_eq!(
        retort_tables(&s),
        ["alembic_version_applied", "alembic_version_audit"]
    );
    assert!(
        r.stderr.contains("state: nothing was applied: the database is as it was before the run, at base (no revision applied), but for retort's own tables alembic_version_applied, alembic_version_audit, created by this run to record it in the audit log"),
        "{}",
        r.stderr
    );
    assert_eq!(s.db.audit(), ["up false "]);
    assert_eq!(
        s.db.strings("SELECT count(*)::text FROM alembic_version_applied"),
        ["0"]
    );
    let r = s.run("migrate-up", &["--format", "json"]).code(4);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    // the second failure finds them there: nothing created, nothing named
    assert_eq!(
        doc["state"]["created_tables"],
        serde_json::json!([]),
        "{doc}"
    );
    assert!(
        doc["state"]["description"]
            .as_str()
            .unwrap()
            .ends_with("at base (no revision applied)"),
        "{doc}"
    );
}
