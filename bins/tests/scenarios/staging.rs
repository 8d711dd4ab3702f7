//! scripts/staging-deploy.sh run for real against the test server (TEST_DATABASE_URL, set by
//! `make test`), with the binaries of this build (RETORT_BIN) and pg_dump from PG_BIN.
//! Exit codes: 0 ok, 10 unreachable, 11 scripts invalid, 12 backup failed, 13 migration failed,
//! 15 state forbids; the password never shows in the output, and a failed check leaves the
//! database as it was.

use crate::common::*;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn script() -> PathBuf {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scripts/staging-deploy.sh"
    ))
    .to_path_buf()
}

fn retort_bin() -> PathBuf {
    bin_path("migrate-up").parent().unwrap().to_path_buf()
}

/// The password of a postgresql://user:password@host/db URL.
fn password_of(url: &str) -> String {
    let rest = url.split_once("://").unwrap().1;
    let userinfo = rest.rsplit_once('@').expect("the test URL has a user").0;
    userinfo
        .split_once(':')
        .expect("the test URL has a password")
        .1
        .to_string()
}

/// Runs the staging script in the scenario directory with only the given environment (plus
/// PATH, HOME, LANG, PG_BIN, RETORT_BIN and BACKUP_DIR=<scenario>/backups).
fn deploy(s: &Scenario, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new("bash");
    cmd.arg(script())
        .args(args)
        .current_dir(s.dir.path())
        .env_clear();
    for k in ["PATH", "HOME", "LANG", "PG_BIN"] {
        if let Ok(v) = std::env::var(k) {
            cmd.env(k, v);
        }
    }
    cmd.env("RETORT_BIN", retort_bin())
        .env("BACKUP_DIR", s.path("backups"))
        .env("WAIT", "10");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::null());
    let o = cmd.output().unwrap();
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn deploy_db(s: &Scenario, args: &[&str]) -> Run {
    deploy(s, args, &[("DATABASE_URL", s.db.url.as_str())])
}

fn backups(s: &Scenario) -> Vec<PathBuf> {
    match std::fs::read_dir(s.path("backups")) {
        Ok(rd) => rd.map(|e| e.unwrap().path()).collect(),
        Err(_) => vec![],
    }
}

#[track_caller]
fn assert_no_password(s: &Scenario, r: &Run) {
    let pw = password_of(&s.db.url);
    assert!(
        !r.all().contains(&pw),
        "the password appears in the output:\n{}",
        r.all()
    );
}

/// A failing check leaves the database exactly as it was.
struct Snapshot {
    versions: Vec<String>,
    tables: Vec<String>,
}

fn snapshot(s: &Scenario) -> Snapshot {
    Snapshot {
        versions: s.db.version_rows(),
        tables: s.db.tables(),
    }
}

#[track_caller]
fn assert_unchanged(s: &Scenario, before: &Snapshot) {
    assert_eq!(s.db.version_rows(), before.versions, "version rows changed");
    assert_eq!(s.db.tables(), before.tables, "tables changed");
}

#[test]
fn pending_revisions_are_backed_up_then_applied() {
    let s = Scenario::with_example();
    s.run("migrate-up", &["002"]).ok();
    s.db.execute(
        "INSERT INTO documents (source_uri, title) VALUES ('doc://1', 'kept in the backup')",
    );
    let r = deploy_db(&s, &[]).code(0);
    assert_eq!(s.db.version_rows(), vec!["004".to_string()]);
    assert!(
        s.db.tables().contains(&"api_keys".to_string()),
        "{:?}",
        s.db.tables()
    );
    let files = backups(&s);
    assert_eq!(files.len(), 1, "one backup: {files:?}\n{}", r.all());
    let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with(&format!("{}-", s.db.name)) && name.ends_with(".dump"),
        "{name}"
    );
    let meta = std::fs::metadata(&files[0]).unwrap();
    assert!(meta.len() > 0, "empty backup");
    assert_eq!(
        meta.permissions().mode() & 0o077,
        0,
        "the backup is readable by its owner only"
    );
    let head = std::fs::read(&files[0]).unwrap();
    assert!(head.starts_with(b"PGDMP"), "pg_dump custom format");
    for step in ["1/6", "2/6", "3/6", "4/6", "5/6", "6/6"] {
        assert!(r.stderr.contains(step), "step {step} missing:\n{}", r.all());
    }
    assert_no_password(&s, &r);
}

#[test]
fn at_the_heads_nothing_is_done_and_no_backup_taken() {
    let s = Scenario::with_example();
    s.run("migrate-up", &[]).ok();
    let r = deploy_db(&s, &[]).code(0);
    assert!(r.stderr.contains("nothing to migrate"), "{}", r.all());
    assert!(backups(&s).is_empty());
    assert_eq!(s.db.version_rows(), vec!["004".to_string()]);
}

#[test]
fn no_backup_flag_and_variable_skip_the_backup() {
    let s = Scenario::with_example();
    let r = deploy_db(&s, &["--no-backup"]).code(0);
    assert!(r.stderr.contains("backup: skipped"), "{}", r.all());
    assert!(backups(&s).is_empty());
    assert_eq!(s.db.version_rows(), vec!["004".to_string()]);

    let s = Scenario::with_example();
    deploy(
        &s,
        &[],
        &[("DATABASE_URL", s.db.url.as_str()), ("SKIP_BACKUP", "1")],
    )
    .code(0);
    assert!(backups(&s).is_empty());
    assert_eq!(s.db.version_rows(), vec!["004".to_string()]);
}

#[test]
fn the_url_may_come_from_pgvector_db_url_in_sqlalchemy_form() {
    let s = Scenario::with_example();
    let url =
        s.db.url
            .replacen("postgresql://", "postgresql+asyncpg://", 1);
    let r = deploy(&s, &[], &[("PGVECTOR_DB_URL", url.as_str())]).code(0);
    assert_eq!(s.db.version_rows(), vec!["004".to_string()]);
    assert_eq!(backups(&s).len(), 1, "{}", r.all());
    assert_no_password(&s, &r);
}

#[test]
fn the_url_may_come_from_the_dotenv_file() {
    let s = Scenario::with_example();
    s.write(
        ".env",
        &format!(
            "# the binaries read it too\nMIGRATIONS_DIR=migrations\nDATABASE_URL=\"{}\"\n",
            s.db.url
        ),
    );
    let r = deploy(&s, &[], &[]).code(0);
    assert_eq!(s.db.version_rows(), vec!["004".to_string()]);
    assert_eq!(backups(&s).len(), 1, "{}", r.all());
    assert_no_password(&s, &r);
}

#[test]
fn a_broken_script_stops_before_anything_changes() {
    let s = Scenario::with_example();
    s.run("migrate-up", &["002"]).ok();
    // a parent no script has
    s.revision("005", "nope", "CREATE TABLE t5 (id int);", "DROP TABLE t5;");
    let before = snapshot(&s);
    let r = deploy_db(&s, &[]).code(11);
    assert!(r.stderr.contains("scripts are invalid"), "{}", r.all());
    assert_unchanged(&s, &before);
    assert!(backups(&s).is_empty(), "no backup before the checks pass");
    assert_no_password(&s, &r);
}

#[test]
fn an_unknown_revision_in_the_database_stops_before_anything_changes() {
    let s = Scenario::with_example();
    s.run("migrate-up", &["002"]).ok();
    s.db.execute("UPDATE alembic_version SET version_num = 'ffffffffffff'");
    let before = snapshot(&s);
    let r = deploy_db(&s, &[]).code(15);
    assert!(
        r.all().contains("ffffffffffff"),
        "the unknown revision is named:\n{}",
        r.all()
    );
    assert_unchanged(&s, &before);
    assert!(backups(&s).is_empty());
    assert_no_password(&s, &r);
}

#[test]
fn a_failing_migration_exits_13_after_the_backup() {
    let s = Scenario::with_example();
    s.run("migrate-up", &[]).ok();
    s.revision(
        "005",
        "004",
        "CREATE TABLE t5 (id int);\nSELECT 1/0;",
        "DROP TABLE t5;",
    );
    let before = snapshot(&s);
    let r = deploy_db(&s, &[]).code(13);
    assert_unchanged(&s, &before);
    assert_eq!(
        backups(&s).len(),
        1,
        "the backup was taken before migrating"
    );
    assert!(r.stderr.contains("backup: "), "{}", r.all());
    assert_no_password(&s, &r);
}

#[test]
fn a_failing_backup_exits_12_and_pg_dump_never_sees_the_password_on_its_command_line() {
    let s = Scenario::with_example();
    let before = snapshot(&s);
    // a pg_dump that records its arguments and PGPASSWORD, then fails
    let fake = s.path("fakepg");
    std::fs::create_dir(&fake).unwrap();
    let pg_dump = fake.join("pg_dump");
    std::fs::write(
        &pg_dump,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > {args}\nprintf '%s' \"$PGPASSWORD\" > {pw}\necho 'pg_dump: error: simulated' >&2\nexit 1\n",
            args = s.path("dump-args").display(),
            pw = s.path("dump-pw").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&pg_dump, std::fs::Permissions::from_mode(0o755)).unwrap();
    let r = deploy(
        &s,
        &[],
        &[
            ("DATABASE_URL", s.db.url.as_str()),
            ("PG_BIN", fake.to_str().unwrap()),
        ],
    )
    .code(12);
    assert_unchanged(&s, &before);
    assert!(backups(&s).is_empty(), "a failed backup leaves no file");
    let pw = password_of(&s.db.url);
    let args = std::fs::read_to_string(s.path("dump-args")).unwrap();
    assert!(
        !args.contains(&pw),
        "password on pg_dump's command line: {args}"
    );
    assert!(args.contains("--format=custom"), "{args}");
    assert_eq!(
        std::fs::read_to_string(s.path("dump-pw")).unwrap(),
        pw,
        "PGPASSWORD carries it"
    );
    assert_no_password(&s, &r);
}

#[test]
fn an_unreachable_database_exits_10_without_showing_the_password() {
    let s = Scenario::with_example();
    // a port nothing listens on
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgresql://someone:Very%40Secret@127.0.0.1:{port}/nowhere");
    let r = deploy(&s, &["--wait", "1"], &[("DATABASE_URL", url.as_str())]).code(10);
    assert!(
        r.stderr.contains("did not accept connections"),
        "{}",
        r.all()
    );
    assert!(!r.all().contains("Very"), "{}", r.all());
    assert!(backups(&s).is_empty());
}

#[test]
fn usage_errors_exit_2() {
    let s = Scenario::with_example();
    deploy_db(&s, &["--bogus"]).code(2);
    deploy(&s, &[], &[]).code(2);
    deploy(
        &s,
        &[],
        &[
            ("DATABASE_URL", s.db.url.as_str()),
            ("RETORT_BIN", "/nonexistent"),
        ],
    )
    .code(2);
    assert!(s.db.version_rows().is_empty());
}
