//! Scenarios: a refusal changes nothing, and the dry run refuses what the real run refuses.
use crate::common::*;

/// Alembic migrated this database to 002; retort has never seen it (no records yet).
fn alembic_database_at_002(s: &Scenario) {
    s.db.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)); INSERT INTO alembic_version VALUES ('002')");
    s.db.execute("CREATE EXTENSION IF NOT EXISTS vector; CREATE TABLE documents (id bigint PRIMARY KEY); CREATE TABLE chunks (id bigint, document_id bigint, chunk_index int, content text, embedding vector(384)); CREATE TABLE server_settings (key text PRIMARY KEY, value jsonb)");
}

fn retort_tables(s: &Scenario) -> Vec<String> {
    s.db.strings("SELECT tablename::text FROM pg_tables WHERE tablename LIKE 'alembic\\_version\\_%' ORDER BY 1")
}

#[test]
fn a_typo_in_the_target_writes_nothing_to_an_alembic_database() {
    let s = Scenario::with_example();
    alembic_database_at_002(&s);
    for (bad, named) in [
        ("typo", "typo"),
        ("zzz+1", "zzz"),
        ("nolabel@head", "nolabel"),
    ] {
        let r = s.run("migrate-up", &[bad]).code(2);
        assert!(r.stderr.contains(named), "{bad}: {}", r.stderr);
        assert_eq!(
            retort_tables(&s),
            Vec::<String>::new(),
            "{bad} wrote bookkeeping"
        );
    }
    let r = s.run("migrate-down", &["typo"]).code(2);
    assert!(r.stderr.contains("typo"), "{}", r.stderr);
    assert_eq!(retort_tables(&s), Vec::<String>::new());
    assert_eq!(s.db.version_rows(), vec!["002"]);
    // a good target adopts and applies
    s.run("migrate-up", &["003"]).ok();
    assert_eq!(s.db.audit(), vec!["adopt true 001,002", "up true 003"]);
}

#[test]
fn the_dry_run_refuses_an_edited_applied_script_like_the_real_run() {
    let s = Scenario::with_example();
    s.run("migrate-up", &["002"]).ok();
    let path = s.migrations().join("001_baseline.sql");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace("title       text,", "title       text, -- edited"),
    )
    .unwrap();
    let dry = s.run("migrate-up", &["--dry-run"]).code(7);
    let real = s.run("migrate-up", &[]).code(7);
    for r in [&dry, &real] {
        assert!(
            r.stderr.contains("001_baseline.sql") && r.stderr.contains("--ignore-checksums"),
            "{}",
            r.stderr
        );
    }
    assert!(
        dry.stdout.is_empty(),
        "the refused dry run printed a plan: {}",
        dry.stdout
    );
    // the JSON dry run refuses the same way
    s.run("migrate-up", &["--dry-run", "--format", "json"])
        .code(7);
    // and both accept --ignore-checksums
    let dry = s
        .run("migrate-up", &["--dry-run", "--ignore-checksums"])
        .ok();
    assert!(dry.stdout.contains("Plan: 2 steps"), "{}", dry.stdout);
    assert_eq!(s.db.version_rows(), vec!["002"]);
}

#[test]
fn a_downgrade_past_a_script_without_a_down_section_is_refused_by_the_dry_run_too() {
    let s = Scenario::with_example();
    s.write(
        "migrations/005_no_down.sql",
        "-- revision: 005\n-- down_revision: 004\n-- migrate:up\nCREATE TABLE t5 (id int);\n",
    );
    s.run("migrate-up", &[]).ok();
    let dry = s.run("migrate-down", &["--dry-run"]).code(2);
    let real = s.run("migrate-down", &[]).code(2);
    for r in [&dry, &real] {
        assert!(
            r.stderr.contains("005_no_down.sql") && r.stderr.contains("migrate:down"),
            "{}",
            r.stderr
        );
    }
    assert_eq!(s.db.version_rows(), vec!["005"]);
}
