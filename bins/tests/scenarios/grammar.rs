//! Scenarios: one command-line grammar across the binaries — JSON results of real runs, the
//! listing detail flag, the stamp's dry run and SQL range, revision's dry run, JSON errors, and
//! the examples at the end of every --help.
use crate::common::*;
use serde_json::{json, Value};

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not one JSON document ({e}): {text}"))
}

#[test]
fn a_real_run_prints_a_json_run_report_and_a_failure_its_committed_state() {
    let s = Scenario::with_example();
    let v = parse(
        &s.run("migrate-up", &["002", "--format", "json"])
            .ok()
            .stdout,
    );
    assert_eq!(v["ok"], true);
    assert_eq!(v["action"], "up");
    assert_eq!(v["from_heads"], json!([]));
    assert_eq!(v["to_heads"], json!(["002"]));
    let steps = v["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[1]["revision"], "002");
    assert_eq!(steps[1]["direction"], "up");
    assert!(steps[1]["duration_ms"].as_f64().unwrap() > 0.0);

    let v = parse(
        &s.run("migrate-down", &["-1", "--format", "json"])
            .ok()
            .stdout,
    );
    assert_eq!(v["action"], "down");
    assert_eq!(v["to_heads"], json!(["001"]));
    assert_eq!(v["steps"][0]["direction"], "down");

    // per migration, 002..004 commit before 005 fails: the document says so, as data
    s.write(
        "migrations/005_bad.sql",
        "-- revision: 005\n-- down_revision: 004\n-- migrate:up\nSELECT 1/0;\n-- migrate:down\n",
    );
    let r = s
        .run(
            "migrate-up",
            &["--transaction-per-migration", "--format", "json"],
        )
        .code(4);
    let v = parse(&r.stdout);
    assert_eq!(v["ok"], false);
    assert_eq!(v["to_heads"], json!(["004"]));
    let revs: Vec<&str> = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["revision"].as_str().unwrap())
        .collect();
    assert_eq!(revs, ["002", "003", "004"]);
    assert_eq!(v["state"]["failed_step"], "005");
    assert_eq!(v["state"]["rolled_back"], true);
    assert_eq!(v["state"]["nothing_applied"], false);
    assert_eq!(v["error"]["kind"], "migration");
    assert_eq!(v["error"]["exit_code"], 4);
    assert_eq!(v["error"]["sqlstate"], "22012");
    // the error is still said on stderr, for people
    assert!(r.stderr.contains("005_bad.sql:4"), "{}", r.stderr);
    assert_eq!(s.db.version_rows(), vec!["004"]);
}

#[test]
fn with_json_every_refusal_is_a_json_document_too() {
    let s = Scenario::with_example();
    s.run("migrate-up", &["001"]).ok();
    for (bin, args, kind, code) in [
        ("migrate-down", vec!["zz", "--format", "json"], "usage", 2),
        ("migrate-up", vec!["zz", "--format", "json"], "usage", 2),
        ("migrate-stamp", vec!["zz", "--format", "json"], "usage", 2),
        (
            "migrate-history",
            vec!["--show", "zz", "--format", "json"],
            "usage",
            2,
        ),
    ] {
        let r = s.run(bin, &args).code(code);
        let v = parse(&r.stdout);
        assert_eq!(v["ok"], false, "{bin}");
        assert_eq!(v["error"]["kind"], kind, "{bin}");
        assert_eq!(v["error"]["exit_code"], code, "{bin}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains("zz"),
            "{bin}: {v}"
        );
    }
    assert_eq!(s.db.version_rows(), vec!["001"]);
}

#[test]
fn the_listing_detail_has_its_own_flag_and_v_means_debug_logs() {
    let s = Scenario::with_example();
    s.run("migrate-up", &["002"]).ok();
    let short = s.run("migrate-history", &[]).ok().stdout;
    let detail = s.run("migrate-history", &["--detail"]).ok().stdout;
    let alembic_spelling = s.run("migrate-history", &["--verbose"]).ok().stdout;
    assert!(
        detail.contains("Path: ") && detail.contains("Parent: "),
        "{detail}"
    );
    assert_eq!(detail, alembic_spelling);
    assert!(!short.contains("Path: "), "{short}");
    let v = s.run("migrate-history", &["-v"]).ok();
    assert_eq!(v.stdout, short, "-v does not change the listing");
    assert!(v.stderr.contains("DEBUG [retort]"), "{}", v.stderr);
    let cur = s.run("migrate-current", &["--detail"]).ok().stdout;
    assert!(cur.contains("Path: "), "{cur}");
    let up = s.run("migrate-up", &["-v"]).ok();
    assert!(up.stderr.contains("DEBUG [retort]"), "{}", up.stderr);
}

#[test]
fn stamp_has_a_dry_run_json_and_the_same_sql_range_as_up_and_down() {
    let s = Scenario::with_example();
    let r = s.run("migrate-stamp", &["003", "--dry-run"]).ok();
    assert!(
        r.stdout
            .contains("Would stamp the database from base (no revision applied) to 003"),
        "{}",
        r.stdout
    );
    assert!(!s.db.table_exists("alembic_version"), "the dry run wrote");
    let v = parse(
        &s.run("migrate-stamp", &["003", "--dry-run", "--format", "json"])
            .ok()
            .stdout,
    );
    assert_eq!(
        v,
        json!({"version": 1, "from_heads": [], "to_heads": ["003"], "dry_run": true})
    );
    let v = parse(
        &s.run("migrate-stamp", &["003", "--format", "json"])
            .ok()
            .stdout,
    );
    assert_eq!(v, json!({"version": 1, "to_heads": ["003"]}));
    assert_eq!(s.db.version_rows(), vec!["003"]);
    // --sql takes [START:]END like up and down; without a value, the REVISIONs
    let range = s.run("migrate-stamp", &["--sql", "001:003"]).ok().stdout;
    assert!(range.contains("UPDATE alembic_version SET version_num='003' WHERE alembic_version.version_num = '001';"), "{range}");
    assert!(!range.contains("CREATE TABLE"), "{range}");
    let plain = s.run("migrate-stamp", &["002", "--sql"]).ok().stdout;
    assert!(
        plain.contains("CREATE TABLE alembic_version")
            && plain.contains("INSERT INTO alembic_version (version_num) VALUES ('002');"),
        "{plain}"
    );
}

#[test]
fn revision_dry_run_prints_what_it_would_write_and_writes_nothing() {
    let s = Scenario::with_example();
    let before = std::fs::read_dir(s.migrations()).unwrap().count();
    let r = s
        .run("migrate-revision", &["-m", "add tags", "--dry-run"])
        .ok();
    assert!(
        r.stdout
            .starts_with("-- would write migrations/005_add_tags.sql"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("-- down_revision: 004"), "{}", r.stdout);
    assert_eq!(std::fs::read_dir(s.migrations()).unwrap().count(), before);
    let v = parse(
        &s.run("migrate-revision", &["-m", "add tags", "--format", "json"])
            .ok()
            .stdout,
    );
    assert_eq!(v["revisions"][0]["revision"], "005");
    assert_eq!(v["revisions"][0]["path"], "migrations/005_add_tags.sql");
    assert!(s.migrations().join("005_add_tags.sql").exists());
}

#[test]
fn every_help_ends_with_two_to_four_examples() {
    let s = Scenario::new();
    for bin in COMMANDS {
        let help = s.run_env(bin, &["--help"], &[]).ok().stdout;
        let tail = help
            .split("Examples:\n")
            .nth(1)
            .unwrap_or_else(|| panic!("{bin}: no examples\n{help}"));
        let commands: Vec<&str> = tail
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        assert!((2..=4).contains(&commands.len()), "{bin}: {commands:?}");
        assert!(
            commands.iter().all(|c| c.starts_with(bin)),
            "{bin}: {commands:?}"
        );
    }
}
