//! Fleets: `--targets FILE` and `--targets-query SQL` over databases of their own (and over
//! the schemas of one database). Each target is a single run on its own — its lock, its
//! transactions, its audit rows — and the fleet reports one row per target.
use crate::common::*;

/// Two revisions: a creates `alpha`, b creates `beta`.
fn two_revisions(s: &Scenario) {
    s.revision(
        "a",
        "",
        "CREATE TABLE alpha (id int PRIMARY KEY);",
        "DROP TABLE alpha;",
    );
    s.revision(
        "b",
        "a",
        "CREATE TABLE beta (id int PRIMARY KEY);",
        "DROP TABLE beta;",
    );
}

/// `n` tenant databases, `tenant00`... in a targets file (with comments); the file's path.
fn tenants(s: &Scenario, n: usize) -> (Vec<TestDb>, String) {
    let dbs: Vec<TestDb> = (0..n).map(|_| TestDb::new()).collect();
    let mut text = String::from("# the tenants\n\n");
    for (i, db) in dbs.iter().enumerate() {
        text.push_str(&format!("tenant{i:02}={}\n", db.url));
    }
    s.write("targets.txt", &text);
    (dbs, s.path("targets.txt").display().to_string())
}

fn password() -> String {
    let cfg: postgres::Config = server_url().parse().unwrap();
    String::from_utf8(cfg.get_password().unwrap_or_default().to_vec()).unwrap()
}

#[track_caller]
fn no_password(r: &Run) {
    let pw = password();
    if !pw.is_empty() {
        assert!(
            !r.all().contains(&pw),
            "the password was printed:\n{}",
            r.all()
        );
    }
}

/// Lines of the final table for `name`.
fn row<'a>(r: &'a Run, name: &str) -> &'a str {
    r.stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no row for {name}:\n{}", r.stdout))
}

#[test]
fn a_fleet_is_migrated_and_a_rerun_skips_the_up_to_date_targets() {
    let s = Scenario::new();
    two_revisions(&s);
    let (dbs, file) = tenants(&s, 12);
    // one tenant is half-way already
    s.run_env("migrate-up", &["a"], &[("DATABASE_URL", &dbs[3].url)])
        .ok();

    let r = s
        .run("migrate-up", &["--targets", &file, "--parallel", "4"])
        .ok();

    no_password(&r);
    for db in &dbs {
        assert_eq!(db.version_rows(), ["b"]);
        assert_eq!(db.tables(), ["alpha", "beta"]);
    }
    assert_eq!(dbs[0].audit(), ["up true a,b"]);
    assert_eq!(dbs[3].audit(), ["up true a", "up true b"]);
    assert!(
        row(&r, "tenant00").contains("<base> → b") && row(&r, "tenant00").contains("applied 2"),
        "{}",
        r.stdout
    );
    assert!(
        row(&r, "tenant03").contains("a → b") && row(&r, "tenant03").contains("applied 1"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("12 targets in")
            && r.stdout
                .contains("12 done, 0 up to date, 0 with problems, 0 failed"),
        "{}",
        r.stdout
    );

    // the resume: nothing to do anywhere, no lock taken, no audit row added
    let r = s.run("migrate-up", &["--targets", &file]).ok();
    assert!(r.stdout.contains("0 done, 12 up to date"), "{}", r.stdout);
    assert!(
        row(&r, "tenant07").contains("b → b") && row(&r, "tenant07").contains("up to date"),
        "{}",
        r.stdout
    );
    assert_eq!(dbs[0].audit(), ["up true a,b"]);

    // the fleet's current revisions, and its status page: all fine
    let r = s.run("migrate-current", &["--targets", &file]).ok();
    assert!(row(&r, "tenant11").contains("b → b"), "{}", r.stdout);
    s.run("migrate-check", &["--targets", &file]).ok();
}

#[test]
fn a_failing_target_stops_new_starts_unless_continue_on_error_and_is_left_as_a_single_run_leaves_it(
) {
    let s = Scenario::new();
    two_revisions(&s);
    let (dbs, file) = tenants(&s, 5);
    // b cannot be applied on tenant01
    dbs[1].execute("CREATE TABLE beta (x int)");

    let r = s
        .run("migrate-up", &["--targets", &file, "--parallel", "1"])
        .code(8);
    no_password(&r);
    assert!(row(&r, "tenant00").contains("applied 2"), "{}", r.stdout);
    assert!(
        row(&r, "tenant01").contains("FAILED: migration failed: upgrade b"),
        "{}",
        r.stdout
    );
    for n in ["tenant02", "tenant03", "tenant04"] {
        assert!(
            row(&r, n).contains("not started: stopped after a failure"),
            "{}",
            r.stdout
        );
    }
    // tenant01 as a single run leaves it: one transaction, rolled back, its failure audited
    assert_eq!(dbs[1].version_rows(), Vec::<String>::new());
    assert_eq!(dbs[1].audit(), ["up false "]);
    assert_eq!(dbs[2].version_rows(), Vec::<String>::new());

    let r = s
        .run(
            "migrate-up",
            &[
                "--targets",
                &file,
                "--continue-on-error",
                "--format",
                "json",
            ],
        )
        .code(8);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc["exit_code"], 8);
    assert_eq!(doc["summary"]["failed"], 1);
    assert_eq!(doc["summary"]["done"], 3);
    assert_eq!(doc["summary"]["up_to_date"], 1);
    let t = doc["targets"].as_array().unwrap();
    assert_eq!(t.len(), 5);
    assert_eq!(t[1]["name"], "tenant01");
    assert_eq!(t[1]["result"], "failed");
    assert_eq!(t[1]["error"]["kind"], "migration");
    assert_eq!(t[4]["result"], "done");
    assert_eq!(t[4]["revisions"], serde_json::json!(["a", "b"]));
    assert!(!t[4]["url"].as_str().unwrap().contains(&password()) || password().is_empty());
    for i in [0, 2, 3, 4] {
        assert_eq!(dbs[i].version_rows(), ["b"]);
    }
}

#[test]
fn a_failed_canary_keeps_the_rest_of_the_fleet_untouched() {
    let s = Scenario::new();
    two_revisions(&s);
    let (dbs, file) = tenants(&s, 4);
    dbs[1].execute("CREATE TABLE alpha (x int)");

    let r = s
        .run(
            "migrate-up",
            &["--targets", &file, "--canary", "2", "--continue-on-error"],
        )
        .code(8);

    assert!(row(&r, "tenant00").contains("applied 2"), "{}", r.stdout);
    assert!(row(&r, "tenant01").contains("FAILED"), "{}", r.stdout);
    assert!(
        row(&r, "tenant02").contains("not started: a canary"),
        "{}",
        r.stdout
    );
    assert_eq!(dbs[2].version_rows(), Vec::<String>::new());
    assert_eq!(dbs[3].audit(), Vec::<String>::new());
}

#[test]
fn schema_per_tenant_targets_from_a_query() {
    let s = Scenario::new();
    two_revisions(&s);
    s.db.execute("CREATE SCHEMA tenant_a; CREATE SCHEMA tenant_b; CREATE SCHEMA other");

    let q = "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'tenant\\_%' ORDER BY 1";
    let r = s.run("migrate-up", &["--targets-query", q]).ok();

    assert!(
        row(&r, "tenant_a").contains("applied 2") && row(&r, "tenant_b").contains("applied 2"),
        "{}",
        r.stdout
    );
    for schema in ["tenant_a", "tenant_b"] {
        assert_eq!(
            s.db.strings(&format!(
                "SELECT version_num::text FROM {schema}.alembic_version"
            )),
            ["b"]
        );
        assert_eq!(
            s.db.strings(&format!("SELECT tablename::text FROM pg_tables WHERE schemaname = '{schema}' AND tablename NOT LIKE 'alembic%' ORDER BY 1")),
            ["alpha", "beta"]
        );
    }
    assert_eq!(s.db.tables(), Vec::<String>::new(), "nothing in public");
    assert!(!s.db.table_exists("alembic_version"));
    let r = s.run("migrate-up", &["--targets-query", q]).ok();
    assert!(r.stdout.contains("0 done, 2 up to date"), "{}", r.stdout);
}

#[test]
fn check_on_a_fleet_lists_behind_drifted_unknown_and_unreachable_targets() {
    let s = Scenario::new();
    two_revisions(&s);
    let (dbs, _) = tenants(&s, 4);
    for db in &dbs {
        s.run_env("migrate-up", &[], &[("DATABASE_URL", &db.url)])
            .ok();
    }
    s.run_env("migrate-down", &["a"], &[("DATABASE_URL", &dbs[1].url)])
        .ok();
    dbs[2].execute("UPDATE alembic_version_applied SET checksum = 'edited' WHERE revision = 'a'");
    dbs[3].execute("UPDATE alembic_version SET version_num = 'zzz'");
    let mut text = std::fs::read_to_string(s.path("targets.txt")).unwrap();
    text.push_str(&format!(
        "gone={}\n",
        with_db(&server_url(), "retort_no_such_database")
    ));
    s.write("targets.txt", &text);
    let file = s.path("targets.txt").display().to_string();

    let r = s
        .run(
            "migrate-check",
            &["--targets", &file, "--continue-on-error"],
        )
        .code(8);

    no_password(&r);
    assert!(row(&r, "tenant00").contains("up to date"), "{}", r.stdout);
    assert!(
        row(&r, "tenant01").contains("behind: 1 revision(s) pending"),
        "{}",
        r.stdout
    );
    assert!(row(&r, "tenant02").contains("drifted"), "{}", r.stdout);
    assert!(
        row(&r, "tenant03").contains("unknown revision") && row(&r, "tenant03").contains("zzz"),
        "{}",
        r.stdout
    );
    assert!(
        row(&r, "gone").contains("FAILED") && row(&r, "gone").contains("does not exist"),
        "{}",
        r.stdout
    );
    // reading only
    assert_eq!(dbs[1].version_rows(), ["a"]);
}

#[test]
fn a_bad_targets_file_names_file_and_line_and_changes_nothing() {
    let s = Scenario::new();
    two_revisions(&s);
    let (dbs, _) = tenants(&s, 1);
    s.write(
        "bad.txt",
        &format!(
            "ok={}\n# fine\nbad name={}\nmysql://app:Sup3rSecret@h/d\n",
            dbs[0].url, dbs[0].url
        ),
    );
    let file = s.path("bad.txt").display().to_string();

    let r = s.run("migrate-up", &["--targets", &file]).code(2);

    assert!(r.stderr.contains("bad.txt:3: the name"), "{}", r.stderr);
    assert!(r.stderr.contains("bad.txt:4:"), "{}", r.stderr);
    assert!(!r.all().contains("Sup3rSecret"), "{}", r.all());
    no_password(&r);
    assert_eq!(dbs[0].version_rows(), Vec::<String>::new());
    // fleet flags need targets
    let r = s.run("migrate-up", &["--parallel", "3"]).code(2);
    assert!(
        r.stderr.contains("--parallel needs --targets"),
        "{}",
        r.stderr
    );
}

#[test]
fn batch_passes_through_to_every_target_of_a_fleet() {
    let s = Scenario::new();
    two_revisions(&s);
    // c cannot be applied anywhere: with --batch 2, a and b are committed before it
    s.revision(
        "c",
        "b",
        "CREATE TABLE gamma (id int PRIMARY KEY);\nINSERT INTO missing VALUES (1);",
        "DROP TABLE gamma;",
    );
    let (dbs, file) = tenants(&s, 2);

    let r = s
        .run(
            "migrate-up",
            &["--targets", &file, "--batch", "2", "--continue-on-error"],
        )
        .code(8);

    for (i, db) in dbs.iter().enumerate() {
        let name = format!("tenant{i:02}");
        assert!(
            row(&r, &name).contains("<base> → b")
                && row(&r, &name).contains("FAILED: migration failed: upgrade c"),
            "{}",
            r.stdout
        );
        assert_eq!(db.version_rows(), ["b"]);
        assert_eq!(db.tables(), ["alpha", "beta"]);
        assert_eq!(db.audit(), ["up false a,b"]);
    }
    // --batch conflicts with --transaction-per-migration on a fleet too
    s.run(
        "migrate-up",
        &[
            "--targets",
            &file,
            "--batch",
            "2",
            "--transaction-per-migration",
        ],
    )
    .code(2);
}

#[test]
fn the_lint_gate_refuses_a_fleet_run_on_every_target_unless_allow_unsafe() {
    let s = Scenario::new();
    s.revision(
        "001",
        "",
        "CREATE TABLE items (id bigint PRIMARY KEY, name text);",
        "DROP TABLE items;",
    );
    let (dbs, file) = tenants(&s, 2);
    s.run("migrate-up", &["--targets", &file]).ok();
    for db in &dbs {
        db.execute("INSERT INTO items SELECT i, 'n' || i FROM generate_series(1, 500) i");
    }
    // a plain index build on a table that exists and holds rows
    s.revision(
        "002",
        "001",
        "CREATE INDEX items_name ON items (name);",
        "DROP INDEX items_name;",
    );
    let index = "SELECT indexname::text FROM pg_indexes WHERE indexname = 'items_name'";

    let r = s.run("migrate-up", &["--targets", &file]).code(8);

    no_password(&r);
    for (i, db) in dbs.iter().enumerate() {
        let name = format!("tenant{i:02}");
        assert!(
            row(&r, &name).contains(
                "FAILED: migrate-up refuses to run: lint: 1 error, 0 warnings in 1 script in the revisions to apply; nothing was changed"
            ),
            "{}",
            r.stdout
        );
        assert_eq!(db.version_rows(), ["001"]);
        assert!(db.strings(index).is_empty(), "the index was not built");
        // the refusal is in the audit log, with the finding it names
        let errors =
            db.strings("SELECT coalesce(error, '') FROM alembic_version_audit WHERE NOT success");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].contains("002_x.sql:6:1  require-concurrent-index-creation")
                && errors[0].contains("items exists before this run and holds 500 rows"),
            "{}",
            errors[0]
        );
    }
    // the JSON document carries the whole refusal, the finding included
    let r = s
        .run("migrate-up", &["--targets", &file, "--format", "json"])
        .code(8);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let message = doc["targets"][0]["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("require-concurrent-index-creation"),
        "{doc}"
    );
    assert_eq!(doc["summary"]["failed"], 2, "{doc}");

    // --allow-unsafe: applied everywhere, and each audit row says why it went ahead
    let r = s
        .run("migrate-up", &["--targets", &file, "--allow-unsafe"])
        .ok();
    assert!(r.stdout.contains("2 done"), "{}", r.stdout);
    for db in &dbs {
        assert_eq!(db.version_rows(), ["002"]);
        assert_eq!(db.strings(index), ["items_name"]);
        assert_eq!(
            db.strings("SELECT coalesce(note, '') FROM alembic_version_audit WHERE success ORDER BY id DESC LIMIT 1"),
            ["--allow-unsafe: 1 error-level lint finding(s): require-concurrent-index-creation"]
        );
    }
}
