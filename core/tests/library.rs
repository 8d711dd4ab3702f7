//! The core used as a library by an application that migrates at start-up (see
//! examples/migrate_at_startup.rs and docs/library.md), against the real test server.
use retort::config::{Env, Overrides, Settings};
use retort::{ErrorKind, Migrator, RunOptions};
use std::path::Path;

struct Db {
    name: String,
    admin: String,
}

impl Db {
    fn new(tag: &str) -> (Db, String) {
        let admin = std::env::var("TEST_DATABASE_URL")
            .expect("run through `make test` (TEST_DATABASE_URL)");
        let name = format!("retort_lib_{tag}_{}", std::process::id());
        let mut c = postgres::Client::connect(&admin, postgres::NoTls).unwrap();
        c.batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
            .unwrap();
        c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        let url = format!("{}/{name}", &admin[..admin.rfind('/').unwrap()]);
        (Db { name, admin }, url)
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&self.admin, postgres::NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

fn example_migrations(into: &Path) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), into.join(e.file_name())).unwrap();
    }
}

fn settings(url: &str, dir: &Path) -> Settings {
    let flags = Overrides {
        database_url: Some(url.into()),
        dir: Some(dir.into()),
        ..Default::default()
    };
    Settings::resolve(&flags, &Env::from_pairs(&[], &[])).unwrap()
}

#[test]
fn an_application_migrates_itself_at_start_up() {
    let (_db, url) = Db::new("startup");
    let dir = tempfile::tempdir().unwrap();
    example_migrations(dir.path());
    let mut m = Migrator::open(&settings(&url, dir.path()), "my-api").unwrap();
    let plan = m.plan_upgrade("heads").unwrap();
    assert_eq!(
        plan.steps
            .iter()
            .map(|s| s.revision.as_str())
            .collect::<Vec<_>>(),
        ["001", "002", "003", "004"]
    );
    let report = m.upgrade("heads", &RunOptions::default()).unwrap();
    assert_eq!(report.steps.len(), 4);
    assert_eq!(report.end_heads, ["004"]);
    assert_eq!(m.heads().unwrap(), ["004"]);
    // a second start finds nothing to do
    assert!(m.plan_upgrade("heads").unwrap().is_empty());
    let again = m.upgrade("heads", &RunOptions::default()).unwrap();
    assert!(again.steps.is_empty());
}

#[test]
fn a_failed_run_releases_the_lock_while_the_application_keeps_running() {
    let (_db, url) = Db::new("failure");
    let dir = tempfile::tempdir().unwrap();
    example_migrations(dir.path());
    std::fs::write(
        dir.path().join("005_bad.sql"),
        "-- revision: 005\n-- down_revision: 004\n\n-- migrate:up\nSELECT 1/0;\n",
    )
    .unwrap();
    let mut m = Migrator::open(&settings(&url, dir.path()), "my-api").unwrap();
    let failed = m.upgrade("heads", &RunOptions::default()).unwrap_err();
    // 004 is non-transactional, so 001..004 were committed before 005 ran: as data ...
    let committed: Vec<&str> = failed
        .report
        .steps
        .iter()
        .map(|s| s.revision.as_str())
        .collect();
    assert_eq!(committed, ["001", "002", "003", "004"]);
    assert_eq!(failed.report.end_heads, ["004"]);
    let state = failed.state.clone().expect("the run had started");
    assert_eq!(state.failed_step.as_deref(), Some("005"));
    assert!(state.rolled_back && !state.nothing_applied);
    assert_eq!(
        failed.error.detail,
        retort::error::Detail::Sql {
            sqlstate: "22012".into()
        }
    );
    // ... and as the message the binaries print
    let err = retort::Error::from(failed);
    assert_eq!(err.kind, ErrorKind::Migration);
    assert_eq!(err.exit_code(), 4);
    assert!(err.message.contains("005_bad.sql:5"), "{}", err.message);
    assert!(
        err.message
            .contains("the database is at 004 (4 steps of this run committed)"),
        "{}",
        err.message
    );
    // the migrator's connection is still open; its lock must not be
    let mut other = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let held: i64 = other
        .query_typed_one(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(held, 0);
    assert_eq!(m.heads().unwrap(), ["004"]);
}
