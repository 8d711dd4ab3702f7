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
    assert!(r.stdout.contains("12 targets in"), "{}", r.stdout);
    assert!(r.stdout.contains(": 12 read, 0 up to date"), "{}", r.stdout);
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
    // the row says what PostgreSQL said, not only where it failed
    assert!(
        row(&r, "tenant01").contains(
            "FAILED: migration failed: upgrade b at migrations/b_x.sql:6: ERROR 42P07: relation \"beta\" already exists"
        ),
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
    // a table that is already there: no talk of INVALID indexes
    let hint = t[1]["error"]["hint"].as_str().unwrap();
    assert!(!hint.contains("INVALID index"), "{hint}");
    assert!(hint.contains("already exists"), "{hint}");
    assert!(hint.contains("migrate-stamp"), "{hint}");
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
fn check_on_a_fleet_lists_behind_edited_unknown_and_unreachable_targets() {
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
    assert!(
        row(&r, "tenant02").contains("edited: ") && row(&r, "tenant02").contains("revision a"),
        "{}",
        r.stdout
    );
    // no schema file: no schema drift compared, and the table says so once
    assert!(!r.stdout.contains("drifted"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("schema drift: not checked: no schema file"),
        "{}",
        r.stdout
    );
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

/// `schema.sql` beside the migrations: what revisions a and b build.
fn schema_file(s: &Scenario) {
    s.write(
        "schema.sql",
        "CREATE TABLE alpha (id int PRIMARY KEY);\nCREATE TABLE beta (id int PRIMARY KEY);\n",
    );
}

/// How many lines of the debug log say `what`.
fn logged(r: &Run, what: &str) -> usize {
    r.stderr.lines().filter(|l| l.contains(what)).count()
}

#[test]
fn check_on_a_fleet_compares_each_targets_schema_with_a_replay_of_its_own_revisions() {
    let s = Scenario::new();
    two_revisions(&s);
    schema_file(&s);
    let (dbs, file) = tenants(&s, 3);
    for db in &dbs[..2] {
        s.run_env("migrate-up", &[], &[("DATABASE_URL", &db.url)])
            .ok();
    }
    s.run_env("migrate-up", &["a"], &[("DATABASE_URL", &dbs[2].url)])
        .ok();
    // by hand, on one tenant only
    dbs[1].execute("ALTER TABLE alpha ADD COLUMN stray text");

    let r = s.run("migrate-check", &["--targets", &file, "-v"]).code(1);

    no_password(&r);
    assert!(row(&r, "tenant00").contains("up to date"), "{}", r.stdout);
    assert!(
        row(&r, "tenant01").contains("drifted: ")
            && row(&r, "tenant01").contains("drop column public.alpha.stray"),
        "{}",
        r.stdout
    );
    // behind, and its schema is what ITS revision (a) builds: not drifted
    assert!(
        row(&r, "tenant02").contains("behind: 1 revision(s) pending")
            && !row(&r, "tenant02").contains("drifted"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("schema drift: ") && r.stdout.contains("schema.sql matches the migrations; each target compared with a replay of its applied revisions (2 replays)"),
        "{}",
        r.stdout
    );
    // one replay to the heads (shared by tenant00, tenant01 and the schema file's check), the
    // schema file, one replay of a: three shadow databases for three targets, all dropped
    assert_eq!(logged(&r, "created shadow database"), 3, "{}", r.stderr);
    assert_eq!(logged(&r, "dropped shadow database"), 3, "{}", r.stderr);
    assert_eq!(logged(&r, "replayed "), 2, "{}", r.stderr);

    let r = s
        .run("migrate-check", &["--targets", &file, "--format", "json"])
        .code(1);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let codes = |i: usize| -> Vec<String> {
        doc["targets"][i]["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["code"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(codes(0), Vec::<String>::new(), "{}", r.stdout);
    assert_eq!(codes(1), ["database_drift"], "{}", r.stdout);
    assert_eq!(codes(2), ["pending"], "{}", r.stdout);
    assert!(
        doc["targets"][1]["problems"][0]["message"]
            .as_str()
            .unwrap()
            .contains("drop column public.alpha.stray"),
        "{}",
        r.stdout
    );
    assert_eq!(
        doc["targets"][2]["drift"],
        "matches a replay of its revisions (a)"
    );
    assert_eq!(doc["problems"], serde_json::json!([]), "{}", r.stdout);
    assert_eq!(doc["exit_code"], 1);
}

#[test]
fn check_on_a_fleet_reports_the_schema_file_against_the_migrations_once() {
    let s = Scenario::new();
    two_revisions(&s);
    s.write("schema.sql", "CREATE TABLE alpha (id int PRIMARY KEY);\n");
    let (dbs, file) = tenants(&s, 2);
    for db in &dbs {
        s.run_env("migrate-up", &[], &[("DATABASE_URL", &db.url)])
            .ok();
    }

    let r = s.run("migrate-check", &["--targets", &file]).code(1);

    assert!(row(&r, "tenant00").contains("up to date"), "{}", r.stdout);
    assert!(row(&r, "tenant01").contains("up to date"), "{}", r.stdout);
    assert_eq!(
        r.stdout.matches("problem [schema_drift]").count(),
        1,
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("public.beta"), "{}", r.stdout);
    let r = s
        .run("migrate-check", &["--targets", &file, "--format", "json"])
        .code(1);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc["problems"][0]["code"], "schema_drift", "{}", r.stdout);
    assert_eq!(doc["summary"]["problems"], 0, "{}", r.stdout);

    // --shadow-url is where the shadows go: a server database that does not exist stops the
    // run before any target
    let shadow = with_db(&server_url(), "retort_no_such_shadow_server");
    let r = s.run(
        "migrate-check",
        &["--targets", &file, "--shadow-url", &shadow],
    );
    assert!(r.code != 0 && r.code != 1, "{}", r.all());
    assert!(
        r.stderr.contains("retort_no_such_shadow_server"),
        "{}",
        r.all()
    );
    assert!(!r.stdout.contains("tenant00"), "{}", r.stdout);
    no_password(&r);
}

#[test]
fn check_on_schema_per_tenant_targets_compares_each_tenants_schema_only() {
    let s = Scenario::new();
    two_revisions(&s);
    schema_file(&s);
    s.db.execute("CREATE SCHEMA tenant_a; CREATE SCHEMA tenant_b; CREATE SCHEMA tenant_c");
    s.run(
        "migrate-up",
        &[
            "--targets-query",
            "SELECT 'tenant_a' UNION ALL SELECT 'tenant_b'",
        ],
    )
    .ok();
    s.run("migrate-up", &["a", "--targets-query", "SELECT 'tenant_c'"])
        .ok();
    s.db.execute("ALTER TABLE tenant_b.alpha ADD COLUMN stray text");

    let q = "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'tenant\\_%' ORDER BY 1";
    let r = s
        .run("migrate-check", &["--targets-query", q, "-v"])
        .code(1);

    assert!(row(&r, "tenant_a").contains("up to date"), "{}", r.stdout);
    assert!(
        row(&r, "tenant_b").contains("drifted: ")
            && row(&r, "tenant_b").contains("drop column tenant_b.alpha.stray")
            && !row(&r, "tenant_b").contains("tenant_a"),
        "{}",
        r.stdout
    );
    assert!(
        row(&r, "tenant_c").contains("behind: 1 revision(s) pending")
            && !row(&r, "tenant_c").contains("drifted"),
        "{}",
        r.stdout
    );
    // the schema file's two shadows, then one per applied set (b, a), shared by the tenants
    assert!(r.stdout.contains("(2 replays)"), "{}", r.stdout);
    assert_eq!(logged(&r, "created shadow database"), 4, "{}", r.stderr);
    assert_eq!(logged(&r, "dropped shadow database"), 4, "{}", r.stderr);
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
    // check's single-database modes are not fleet modes: refused, not ignored
    let good = s.path("good.txt").display().to_string();
    s.write("good.txt", &format!("ok={}\n", dbs[0].url));
    for flag in ["--lint", "--lint-all", "--round-trip"] {
        let r = s.run("migrate-check", &["--targets", &good, flag]).code(2);
        assert!(r.stderr.contains(flag), "{flag}: {}", r.stderr);
    }
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

/// A session of its own holding `db`'s migration lock (the advisory lock a single run takes
/// on the default version table) until it is dropped.
fn lock_holder(db: &TestDb) -> postgres::Client {
    let mut c = postgres::Client::connect(
        &format!("{}?application_name=the-holder", db.url),
        postgres::NoTls,
    )
    .unwrap();
    c.batch_execute(
        "SELECT pg_advisory_lock(1920234100, hashtext(current_database() || ':' || 'alembic_version'))",
    )
    .unwrap();
    c
}

#[test]
fn a_fleet_is_stamped_each_target_under_its_lock_with_its_audit_row_and_its_refusals() {
    let s = Scenario::new();
    two_revisions(&s);
    let (dbs, file) = tenants(&s, 4);
    s.run_env("migrate-up", &["a"], &[("DATABASE_URL", &dbs[1].url)])
        .ok();
    // tenant02 names a revision no script has: a single stamp refuses it without --purge
    dbs[2].execute(
        "CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY); INSERT INTO alembic_version VALUES ('zzz')",
    );
    // tenant03's lock is held by another session
    let holder = lock_holder(&dbs[3]);

    let r = s
        .run(
            "migrate-stamp",
            &[
                "b",
                "--targets",
                &file,
                "--yes",
                "--continue-on-error",
                "--lock-timeout",
                "1s",
            ],
        )
        .code(8);

    no_password(&r);
    assert!(
        row(&r, "tenant00").contains("<base> → b") && row(&r, "tenant00").ends_with("stamped"),
        "{}",
        r.stdout
    );
    assert!(
        row(&r, "tenant01").contains("a → b") && row(&r, "tenant01").ends_with("stamped"),
        "{}",
        r.stdout
    );
    assert!(
        row(&r, "tenant02").contains("FAILED") && row(&r, "tenant02").contains("zzz"),
        "{}",
        r.stdout
    );
    assert!(
        row(&r, "tenant03").contains("FAILED") && row(&r, "tenant03").contains("migration lock"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("2 stamped, 0 up to date, 0 with problems, 2 failed, 0 not started"),
        "{}",
        r.stdout
    );
    // stamped, not run: no table of the scripts, one audit row each
    for db in &dbs[..2] {
        assert_eq!(db.version_rows(), ["b"]);
    }
    assert_eq!(dbs[0].tables(), Vec::<String>::new());
    assert_eq!(dbs[1].tables(), ["alpha"]);
    assert_eq!(dbs[0].audit(), ["stamp true "]);
    assert_eq!(dbs[1].audit(), ["up true a", "stamp true "]);
    assert_eq!(dbs[2].version_rows(), ["zzz"]);
    assert_eq!(dbs[3].version_rows(), Vec::<String>::new());

    // once the holder lets go, a re-run stamps tenant03 and says the others did not change
    drop(holder);
    let r = s
        .run(
            "migrate-stamp",
            &["b", "--targets", &file, "--yes", "--continue-on-error"],
        )
        .code(8);
    assert!(
        row(&r, "tenant00").ends_with("stamped (no change)"),
        "{}",
        r.stdout
    );
    assert!(row(&r, "tenant03").ends_with("stamped"), "{}", r.stdout);
    assert_eq!(dbs[3].version_rows(), ["b"]);
    assert_eq!(dbs[0].audit(), ["stamp true ", "stamp true "]);

    // --purge is the way out for tenant02, as on one database
    let r = s
        .run(
            "migrate-stamp",
            &[
                "--purge",
                "b",
                "--targets",
                &file,
                "--yes",
                "--format",
                "json",
            ],
        )
        .ok();
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc["command"], "migrate-stamp");
    assert_eq!(doc["summary"]["done"], 4);
    assert_eq!(doc["targets"][2]["from"], serde_json::json!(["zzz"]));
    assert_eq!(doc["targets"][2]["to"], serde_json::json!(["b"]));
    assert_eq!(dbs[2].version_rows(), ["b"]);
    assert_eq!(dbs[2].audit(), ["purge true "]);
}

#[test]
fn rehash_over_a_fleet_accepts_a_deliberate_edit_on_every_target() {
    let s = Scenario::new();
    two_revisions(&s);
    let (dbs, file) = tenants(&s, 3);
    s.run("migrate-up", &["--targets", &file]).ok();
    // a deliberate edit of applied script a (a comment)
    let path = s.path("migrations/a_x.sql");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace(
            "-- migrate:up\n",
            "-- migrate:up\n-- alpha: the first table\n",
        ),
    )
    .unwrap();
    let r = s.run("migrate-check", &["--targets", &file]).code(1);
    assert!(row(&r, "tenant01").contains("edited: "), "{}", r.stdout);

    let r = s
        .run("migrate-stamp", &["--rehash", "a", "--targets", &file])
        .ok();

    for n in ["tenant00", "tenant01", "tenant02"] {
        assert!(
            row(&r, n).contains("b → b") && row(&r, n).ends_with("rehashed a"),
            "{}",
            r.stdout
        );
    }
    for db in &dbs {
        assert_eq!(db.audit(), ["up true a,b", "rehash true a"]);
        assert_eq!(db.version_rows(), ["b"]);
    }
    s.run("migrate-check", &["--targets", &file]).ok();
}

#[test]
fn stamp_on_a_fleet_needs_yes_refuses_sql_and_dry_run_and_changes_nothing() {
    let s = Scenario::new();
    two_revisions(&s);
    let (dbs, file) = tenants(&s, 2);
    // stamping a whole fleet marks revisions applied without running them: asked for by name
    let r = s.run("migrate-stamp", &["b", "--targets", &file]).code(2);
    assert!(
        r.stderr.contains("migrate-stamp on a fleet records revisions as applied on every target without running them: refusing without --yes"),
        "{}",
        r.stderr
    );
    for extra in [&["--sql"][..], &["--dry-run"][..]] {
        let mut args = vec!["b", "--targets", &file, "--yes"];
        args.extend_from_slice(extra);
        let r = s.run("migrate-stamp", &args).code(2);
        assert!(
            r.stderr.contains(
                "--targets/--targets-query run the stamp; --sql and --dry-run are for one database"
            ),
            "{}",
            r.stderr
        );
    }
    for db in &dbs {
        assert_eq!(db.version_rows(), Vec::<String>::new());
        assert_eq!(db.audit(), Vec::<String>::new());
    }
}

#[test]
fn history_on_a_fleet_shows_each_targets_current_revisions_and_how_far_behind() {
    let s = Scenario::new();
    two_revisions(&s);
    s.revision(
        "c",
        "b",
        "CREATE TABLE gamma (id int PRIMARY KEY);",
        "DROP TABLE gamma;",
    );
    let (dbs, file) = tenants(&s, 4);
    s.run_env("migrate-up", &[], &[("DATABASE_URL", &dbs[0].url)])
        .ok();
    s.run_env("migrate-up", &["a"], &[("DATABASE_URL", &dbs[1].url)])
        .ok();
    dbs[3].execute(
        "CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY); INSERT INTO alembic_version VALUES ('zzz')",
    );

    let r = s
        .run(
            "migrate-history",
            &["--targets", &file, "--continue-on-error"],
        )
        .code(8);

    no_password(&r);
    assert!(
        row(&r, "tenant00").contains("c → c") && row(&r, "tenant00").ends_with("at the heads"),
        "{}",
        r.stdout
    );
    assert!(
        row(&r, "tenant01").contains("a → c") && row(&r, "tenant01").ends_with("at a, 2 behind"),
        "{}",
        r.stdout
    );
    assert!(
        row(&r, "tenant02").contains("<base> → c")
            && row(&r, "tenant02").ends_with("at <base>, 3 behind"),
        "{}",
        r.stdout
    );
    // a revision no script has fails the target, as `migrate-history -i` does on it
    assert!(
        row(&r, "tenant03").contains("FAILED") && row(&r, "tenant03").contains("zzz"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("2 behind, 1 at the heads, 0 with problems, 1 failed"),
        "{}",
        r.stdout
    );

    // the JSON document of the fleets: revisions are the ones the target is behind
    dbs[3].execute("DROP TABLE alembic_version");
    let r = s
        .run("migrate-history", &["--targets", &file, "--format", "json"])
        .ok();
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc["command"], "migrate-history");
    let t = &doc["targets"];
    assert_eq!(t[0]["result"], "up_to_date");
    assert_eq!(t[1]["result"], "done");
    assert_eq!(t[1]["from"], serde_json::json!(["a"]));
    assert_eq!(t[1]["to"], serde_json::json!(["c"]));
    assert_eq!(t[1]["revisions"], serde_json::json!(["b", "c"]));
    assert_eq!(t[3]["revisions"], serde_json::json!(["a", "b", "c"]));
    // reading only: nothing written anywhere
    assert_eq!(dbs[1].version_rows(), ["a"]);
    assert_eq!(dbs[2].audit(), Vec::<String>::new());

    // the flags about the scripts' history or one database are refused with --targets
    for flag in [
        &["--log"][..],
        &["--heads"][..],
        &["-r", "a:c"][..],
        &["--detail"][..],
    ] {
        let mut args = vec!["--targets", &file];
        args.extend_from_slice(flag);
        let r = s.run("migrate-history", &args).code(2);
        assert!(
            r.stderr.contains(&format!(
                "{} is for the scripts' history or one database",
                if flag[0] == "-r" {
                    "-r/--rev-range"
                } else {
                    flag[0]
                }
            )),
            "{}",
            r.stderr
        );
    }
    // -i (what --targets shows anyway) is accepted
    s.run("migrate-history", &["--targets", &file, "-i"]).ok();
}

/// Holds tenant01's migration lock until its `migrate-up` has been connected for 1.5 s, so
/// that tenant01 is the slow target of the fleet (the others finish in milliseconds).
fn slow_tenant01(dbs: &[TestDb]) -> std::thread::JoinHandle<()> {
    let holder = lock_holder(&dbs[1]);
    let name = dbs[1].name.clone();
    let mut watch = connect(&server_url());
    std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let n: i64 = watch
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'migrate-up'",
                    &[&name],
                )
                .unwrap()
                .get(0);
            if n > 0 || std::time::Instant::now() > deadline {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        std::thread::sleep(std::time::Duration::from_millis(1500));
        drop(holder);
    })
}

#[test]
fn on_a_terminal_the_fleet_shows_a_status_line_naming_the_slowest_target_then_the_table() {
    let s = Scenario::new();
    two_revisions(&s);
    let (dbs, file) = tenants(&s, 3);
    let release = slow_tenant01(&dbs);

    let (ok, text) =
        s.run_on_terminal("migrate-up", &format!("--targets {file} --parallel 3"), &[]);
    release.join().unwrap();
    assert!(ok, "{text}");

    // the status line, redrawn in place, names tenant01 while it waits
    assert!(
        text.contains("\r\x1b[2K2/3 done, 1 running, 0 failed; slowest running: tenant01 ("),
        "{text:?}"
    );
    // a log line (the wait for the lock) starts on a cleared line, not after the status
    assert!(
        text.contains("\r\x1b[2KWARN  [retort] tenant01: waiting for the migration lock on alembic_version, held by pid"),
        "{text:?}"
    );
    // then the line is cleared and the table follows, with no status line after it
    let table = text
        .find("\r\x1b[2Ktarget ")
        .unwrap_or_else(|| panic!("no cleared line before the table: {text:?}"));
    let after = &text[table..];
    assert!(!after.contains("running,"), "{text:?}");
    assert!(after.contains("3 targets in"), "{text:?}");
    assert!(
        after
            .lines()
            .any(|l| l.starts_with("tenant01") && l.contains("applied 2")),
        "{text:?}"
    );
    // no per-target log lines on a terminal: the status line says it
    assert!(!text.contains("tenant00: applied 2"), "{text:?}");
    for db in &dbs {
        assert_eq!(db.version_rows(), ["b"]);
    }
}

#[test]
fn without_a_terminal_the_fleet_logs_a_line_per_target_and_no_status_line() {
    let s = Scenario::new();
    two_revisions(&s);
    let (dbs, file) = tenants(&s, 3);
    let release = slow_tenant01(&dbs);

    let r = s
        .run("migrate-up", &["--targets", &file, "--parallel", "3"])
        .ok();
    release.join().unwrap();

    for n in ["tenant00", "tenant01", "tenant02"] {
        assert!(
            r.stderr.contains(&format!("INFO  [retort] {n}: applied 2")),
            "{}",
            r.stderr
        );
    }
    // one tag for retort's lines, as on one database
    assert!(!r.stderr.contains("[retort_cli]"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("INFO  [retort] migrate-up on 3 targets, 3 at once"),
        "{}",
        r.stderr
    );
    assert!(!r.all().contains("slowest running"), "{}", r.all());
    assert!(!r.all().contains('\x1b'), "{}", r.all());
    assert!(row(&r, "tenant01").contains("applied 2"), "{}", r.stdout);
}

#[test]
fn each_server_of_a_fleet_runs_only_as_many_targets_as_its_free_connections_allow() {
    // a small server: 6 connections, 3 reserved, so room for one target at a time
    let small = TempServer::init();
    small.start(&["max_connections=6"]);
    let admin = small.url("127.0.0.1", "");
    let mut c = connect(&admin);
    for i in 0..3 {
        c.batch_execute(&format!("CREATE DATABASE small{i}"))
            .unwrap();
    }
    drop(c);
    let s = Scenario::new();
    // each target records how many other runs were busy on its server when it ran
    s.revision(
        "a",
        "",
        "CREATE TABLE seen AS SELECT (SELECT count(*) FROM pg_stat_activity \
         WHERE application_name = 'migrate-up' AND state = 'active' AND pid <> pg_backend_pid()) AS others \
         FROM pg_sleep(0.4);",
        "DROP TABLE seen;",
    );
    let big: Vec<TestDb> = (0..3).map(|_| TestDb::new()).collect();
    let mut text = String::new();
    for (i, db) in big.iter().enumerate() {
        text.push_str(&format!(
            "small{i}={}\n",
            with_db(&admin, &format!("small{i}"))
        ));
        text.push_str(&format!("big{i}={}\n", db.url));
    }
    s.write("targets.txt", &text);
    let r = s
        .run(
            "migrate-up",
            &["--targets", "targets.txt", "--parallel", "6", "-v"],
        )
        .ok();
    let port = admin.rsplit(':').next().unwrap().split('/').next().unwrap();
    assert!(
        r.stderr.contains(&format!(
            "127.0.0.1:{port}: 2 free connections, 1 target(s) at once"
        )),
        "{}",
        r.stderr
    );
    for (i, db) in big.iter().enumerate() {
        let mut c = connect(&with_db(&admin, &format!("small{i}")));
        let others: i64 = c.query_one("SELECT others FROM seen", &[]).unwrap().get(0);
        assert_eq!(
            others, 0,
            "small{i} ran beside another target of its server"
        );
        assert_eq!(db.version_rows(), ["a"]);
    }
    assert!(r.stdout.contains("6 targets in"), "{}", r.stdout);
    assert!(r.stdout.contains("6 done"), "{}", r.stdout);
}

#[test]
fn the_lint_gate_sees_each_tenant_schemas_own_tables() {
    let s = Scenario::new();
    s.revision(
        "001",
        "",
        "CREATE TABLE items (id bigint PRIMARY KEY, name text);",
        "DROP TABLE items;",
    );
    s.db.execute("CREATE SCHEMA tenant_a; CREATE SCHEMA tenant_b");
    let q = "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'tenant\\_%' ORDER BY 1";
    s.run("migrate-up", &["--targets-query", q]).ok();
    // tenant_a's items holds rows, tenant_b's is empty
    s.db.execute("INSERT INTO tenant_a.items SELECT i, 'n' || i FROM generate_series(1, 500) i");
    s.revision(
        "002",
        "001",
        "CREATE INDEX items_name ON items (name);",
        "DROP INDEX items_name;",
    );

    let r = s
        .run("migrate-up", &["--targets-query", q, "--continue-on-error"])
        .code(8);

    assert!(
        row(&r, "tenant_a").contains("FAILED: migrate-up refuses to run"),
        "{}",
        r.stdout
    );
    assert!(row(&r, "tenant_b").contains("applied 1"), "{}", r.stdout);
    assert_eq!(
        s.db.strings("SELECT version_num::text FROM tenant_a.alembic_version"),
        ["001"]
    );
    let errors = s.db.strings(
        "SELECT coalesce(error, '') FROM tenant_a.alembic_version_audit WHERE NOT success",
    );
    assert!(
        errors.len() == 1 && errors[0].contains("items exists before this run and holds 500 rows"),
        "{errors:?}"
    );
}

/// On every target of `dbs`: the table `items` (1,000 rows, one id twice) at revision 001, and
/// the INVALID index `items_id` a failed `CREATE UNIQUE INDEX CONCURRENTLY` left.
fn invalid_index_on_each(s: &Scenario, dbs: &[TestDb], file: &str) {
    s.run("migrate-up", &["001", "--targets", file]).ok();
    for db in dbs {
        let failed = db
            .client()
            .batch_execute("CREATE UNIQUE INDEX CONCURRENTLY items_id ON items (id)");
        assert!(failed.is_err(), "the unique build should fail");
        assert_eq!(
            db.strings("SELECT indexrelid::regclass::text FROM pg_index WHERE NOT indisvalid"),
            ["items_id"]
        );
    }
}

#[test]
fn repair_invalid_indexes_repairs_every_target_of_a_fleet() {
    let s = Scenario::new();
    s.revision(
        "001",
        "",
        "CREATE TABLE items (id int); INSERT INTO items SELECT generate_series(1, 1000); INSERT INTO items VALUES (1);",
        "DROP TABLE items;",
    );
    s.revision_with(
        "002",
        "001",
        "-- transactional: false",
        "CREATE INDEX CONCURRENTLY items_id ON items (id);",
        "DROP INDEX CONCURRENTLY items_id;",
    );
    let (dbs, file) = tenants(&s, 2);
    invalid_index_on_each(&s, &dbs, &file);

    // without the flag each target trips over the leftover, and says so
    let r = s.run("migrate-up", &["--targets", &file]).code(8);
    assert!(
        row(&r, "tenant00").contains("ERROR 42P07: relation \"items_id\" already exists"),
        "{}",
        r.stdout
    );
    assert!(
        r.stderr.contains("tenant00: INVALID index in the database (left by a failed or interrupted CREATE INDEX CONCURRENTLY): public.items_id"),
        "{}",
        r.stderr
    );
    assert_eq!(dbs[0].version_rows(), ["001"]);

    // with it, every target drops the leftover before its run builds the index
    let r = s
        .run(
            "migrate-up",
            &[
                "--targets",
                &file,
                "--repair-invalid-indexes",
                "--continue-on-error",
            ],
        )
        .ok();
    for (i, db) in dbs.iter().enumerate() {
        let name = format!("tenant{i:02}");
        assert!(
            r.stderr.contains(&format!(
                "{name}: dropping INVALID index public.items_id: a step of this run builds it"
            )),
            "{}",
            r.stderr
        );
        assert!(
            row(&r, &name).contains("001 → 002") && row(&r, &name).contains("applied 1"),
            "{}",
            r.stdout
        );
        assert_eq!(db.version_rows(), ["002"]);
        assert!(db
            .strings("SELECT indexrelid::regclass::text FROM pg_index WHERE NOT indisvalid")
            .is_empty());
        assert_eq!(
            db.strings("SELECT indexname::text FROM pg_indexes WHERE tablename = 'items'"),
            ["items_id"]
        );
    }
}

#[test]
fn a_fleet_downgrade_reports_the_revisions_it_reverted() {
    let s = Scenario::new();
    two_revisions(&s);
    let (dbs, file) = tenants(&s, 2);
    s.run("migrate-up", &["--targets", &file]).ok();

    let r = s
        .run("migrate-down", &["-1", "--targets", &file, "--yes"])
        .ok();

    for (i, db) in dbs.iter().enumerate() {
        let name = format!("tenant{i:02}");
        assert!(
            row(&r, &name).contains("b → a") && row(&r, &name).contains("reverted 1"),
            "{}",
            r.stdout
        );
        assert!(!row(&r, &name).contains("applied"), "{}", r.stdout);
        assert_eq!(db.version_rows(), ["a"]);
    }
    assert!(
        r.stderr.contains("INFO  [retort] tenant00: reverted 1"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.contains("2 targets in"), "{}", r.stdout);
}
