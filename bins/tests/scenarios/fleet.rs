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
    // fleet flags need targets
    let r = s.run("migrate-up", &["--parallel", "3"]).code(2);
    assert!(
        r.stderr.contains("--parallel needs --targets"),
        "{}",
        r.stderr
    );
}
