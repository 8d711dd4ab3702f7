//! The autogenerate workflow end to end: nothing to do, --empty, --dry-run, determinism,
//! renames and rename hints, --concurrently, enum values split into their own revisions,
//! failures (schema.sql errors, failed validation) that write nothing and leave no shadow
//! database behind, and migrate-check's drift checks (the example project has none).

use crate::autogen_support::*;
use crate::common::Scenario;

const EXAMPLE_SCHEMA: &str = include_str!("../../../schema.sql");

/// Shadow database names the run logged (with -v) as created.
fn shadows_created(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|l| l.split("created shadow database ").nth(1))
        .map(|n| n.trim().to_string())
        .collect()
}

fn existing_databases(s: &Scenario, names: &[String]) -> Vec<String> {
    let all =
        s.db.strings("SELECT datname::text FROM pg_database WHERE datname LIKE 'retort_shadow%'");
    all.into_iter().filter(|d| names.contains(d)).collect()
}

#[test]
fn the_example_schema_file_matches_the_example_migrations() {
    let s = Scenario::with_example();
    s.write("schema.sql", EXAMPLE_SCHEMA);
    let r = autogen(&s, EXAMPLE_SCHEMA, &[]).ok();
    assert!(
        r.stdout
            .contains("No changes in schema.sql: nothing written"),
        "{}",
        r.all()
    );
    assert!(generated(&s).is_empty());
    s.run("migrate-up", &[]).ok();
    let r = s.run("migrate-check", &[]).ok();
    assert!(r.stdout.starts_with("OK: 1 head (004); the database is at 004; schema.sql matches the migrations and the database"), "{}", r.all());
}

#[test]
fn nothing_to_do_writes_nothing_unless_empty_is_given() {
    let s = with_base("CREATE TABLE t (id int);");
    let r = autogen(&s, "CREATE TABLE t (id int);", &[]).ok();
    assert!(r.stdout.contains("nothing written"), "{}", r.all());
    assert!(r.stderr.contains("No changes"), "{}", r.all());
    assert!(generated(&s).is_empty());
    let r = autogen(&s, "CREATE TABLE t (id int);", &["--empty"]).ok();
    assert!(
        r.stdout
            .contains("Generating migrations/002_auto.sql ... done"),
        "{}",
        r.all()
    );
    let (up, down) = sections(&generated(&s)[0].1);
    assert!(
        statements(&up).is_empty() && statements(&down).is_empty(),
        "{up}{down}"
    );
}

#[test]
fn dry_run_prints_the_revision_and_writes_nothing() {
    let s = with_base("CREATE TABLE t (id int);");
    let r = autogen(&s, "CREATE TABLE t (id int, n int);", &["--dry-run"]).ok();
    assert!(
        r.stdout.starts_with(
            "-- would write migrations/002_auto.sql\n-- revision: 002\n-- down_revision: 001\n"
        ),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("ALTER TABLE public.t ADD COLUMN n integer;"),
        "{}",
        r.stdout
    );
    assert!(
        r.stderr.contains("1 change:\n  add column public.t.n"),
        "{}",
        r.stderr
    );
    assert!(generated(&s).is_empty());
    // -q: warnings and errors only: of the summary, the hazards line alone
    let r = autogen(&s, "CREATE TABLE t (id int, n int);", &["--dry-run", "-q"]).ok();
    assert!(r.stdout.contains("ADD COLUMN n integer;"), "{}", r.stdout);
    assert_eq!(
        r.stderr, "hazards (1 ACCESS EXCLUSIVE lock): review the statements marked '-- hazard:'\n",
        "-q prints no summary"
    );
}

#[test]
fn same_inputs_give_byte_identical_output() {
    let s = with_base("CREATE TYPE st AS ENUM ('a');\nCREATE TABLE a (id int PRIMARY KEY);\nCREATE TABLE z (id int PRIMARY KEY, a_id int REFERENCES a (id));");
    let schema = "CREATE TYPE st AS ENUM ('a', 'b');
        CREATE TABLE a (id int PRIMARY KEY, z_id int);
        CREATE TABLE z (id int PRIMARY KEY, a_id int REFERENCES a (id), s st, note text);
        ALTER TABLE a ADD CONSTRAINT a_z FOREIGN KEY (z_id) REFERENCES z (id);
        CREATE TABLE m (id int PRIMARY KEY, a_id int REFERENCES a (id), z_id int REFERENCES z (id));
        CREATE INDEX m_a ON m (a_id);
        CREATE INDEX m_z ON m (z_id);
        CREATE VIEW v2 AS SELECT id FROM m;
        CREATE VIEW v1 AS SELECT id FROM v2;";
    let strip = |t: &str| {
        t.lines()
            .filter(|l| !l.starts_with("-- created:"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let one = autogen(&s, schema, &["--dry-run"]).ok();
    let two = autogen(&s, schema, &["--dry-run"]).ok();
    assert_eq!(strip(&one.stdout), strip(&two.stdout));
    assert_eq!(one.stderr, two.stderr);
}

#[test]
fn a_dropped_and_added_column_of_one_type_is_hinted_and_rename_turns_it_into_a_rename() {
    let s = with_base("CREATE TABLE docs (id int PRIMARY KEY, title text);\nCREATE TABLE old_name (id int PRIMARY KEY, v int);\nCREATE INDEX old_name_v ON old_name (v);");
    let schema = "CREATE TABLE docs (id int PRIMARY KEY, heading text);\nCREATE TABLE new_name (id int PRIMARY KEY, v int);\nCREATE INDEX old_name_v ON new_name (v);";
    let r = autogen(&s, schema, &["--dry-run"]).ok();
    assert!(r.stderr.contains("possible rename: column public.docs.title was dropped and heading (text) added; if it is a rename, pass --rename docs.title=heading"), "{}", r.stderr);
    assert!(r.stderr.contains("possible rename: table public.old_name was dropped and public.new_name added with the same columns; if it is a rename, pass --rename-table old_name=new_name"), "{}", r.stderr);
    assert!(
        r.stdout
            .contains("ALTER TABLE public.docs DROP COLUMN title;"),
        "{}",
        r.stdout
    );

    let (up, down) = generate_one(
        &s,
        schema,
        &[
            "--rename",
            "docs.title=heading",
            "--rename-table",
            "old_name=new_name",
        ],
    );
    assert_eq!(
        statements(&up),
        [
            "ALTER TABLE public.old_name RENAME TO new_name",
            "ALTER TABLE public.docs RENAME COLUMN title TO heading",
            "ALTER TABLE public.new_name RENAME CONSTRAINT old_name_pkey TO new_name_pkey"
        ],
        "{up}"
    );
    assert_eq!(
        statements(&down),
        [
            "ALTER TABLE public.new_name RENAME CONSTRAINT new_name_pkey TO old_name_pkey",
            "ALTER TABLE public.docs RENAME COLUMN heading TO title",
            "ALTER TABLE public.new_name RENAME TO old_name"
        ],
        "{down}"
    );
    // data survives
    s.db.execute("SELECT 1");
    converges(&s);
}

#[test]
fn rename_errors_name_what_is_missing() {
    let s = with_base("CREATE TABLE docs (id int PRIMARY KEY, title text);");
    let r = autogen(
        &s,
        "CREATE TABLE docs (id int PRIMARY KEY, heading text);",
        &["--rename", "docs.nope=heading"],
    )
    .code(2);
    assert!(
        r.stderr.contains("table public.docs has no column 'nope'"),
        "{}",
        r.stderr
    );
    let r = autogen(
        &s,
        "CREATE TABLE docs (id int PRIMARY KEY);",
        &["--rename", "title=heading"],
    )
    .code(2);
    assert!(r.stderr.contains("is not TABLE.OLD=NEW"), "{}", r.stderr);
    let r = s
        .run("migrate-revision", &["-m", "x", "--rename", "a.b=c"])
        .code(2);
    assert!(r.stderr.contains("--autogenerate"), "{}", r.stderr);
}

#[test]
fn concurrently_moves_index_builds_on_existing_tables_to_a_non_transactional_revision() {
    let s = with_base("CREATE EXTENSION IF NOT EXISTS vector;\nCREATE TABLE items (id int PRIMARY KEY, e vector(3), body text);\nCREATE INDEX items_e ON items USING hnsw (e vector_cosine_ops) WITH (m = 16);");
    let schema = "CREATE EXTENSION IF NOT EXISTS vector;
        CREATE TABLE items (id int PRIMARY KEY, e vector(3), body text, at timestamptz);
        CREATE INDEX items_e ON items USING hnsw (e vector_cosine_ops) WITH (m = 24);
        CREATE INDEX items_body ON items (body);
        CREATE TABLE fresh (id int PRIMARY KEY, n int);
        CREATE INDEX fresh_n ON fresh (n);";
    // without it, the summary counts the two builds on items (not fresh_n: fresh is new) and
    // points to it; nothing is written with --dry-run
    let r = autogen(&s, schema, &["--dry-run"]).ok();
    assert!(
        r.stderr.contains("hint: 2 index builds on existing tables block writes to them while they run; --concurrently moves them into a revision of their own as CREATE INDEX CONCURRENTLY"),
        "{}",
        r.stderr
    );
    let r = autogen(&s, schema, &["--concurrently"]).ok();
    assert!(!r.stderr.contains("--concurrently moves"), "{}", r.stderr);
    let files = generated(&s);
    assert_eq!(
        files.iter().map(|f| f.0.as_str()).collect::<Vec<_>>(),
        ["002_auto.sql", "003_auto_concurrent_indexes.sql"]
    );
    let (main_up, _) = sections(&files[0].1);
    has(
        &main_up,
        "ALTER TABLE public.items ADD COLUMN at timestamp with time zone",
    );
    // an index on a table created in the same revision stays there, without CONCURRENTLY
    has(
        &main_up,
        "CREATE INDEX fresh_n ON public.fresh USING btree (n)",
    );
    assert!(
        !main_up.contains("items_body") && !main_up.contains("items_e"),
        "{main_up}"
    );
    let text = &files[1].1;
    assert!(
        text.contains("-- down_revision: 002\n") && text.contains("-- transactional: false\n"),
        "{text}"
    );
    let (up, down) = sections(text);
    assert_eq!(
        statements(&up),
        // the changed index is built beside the old one, which serves search until the swap
        [
            "CREATE INDEX CONCURRENTLY items_body ON public.items USING btree (body)",
            "CREATE INDEX CONCURRENTLY items_e_new ON public.items USING hnsw (e public.vector_cosine_ops) WITH (m = 24)",
            "DROP INDEX CONCURRENTLY public.items_e",
            "ALTER INDEX public.items_e_new RENAME TO items_e"
        ],
        "{up}"
    );
    has(&down, "DROP INDEX CONCURRENTLY public.items_body");
    has(&down, "CREATE INDEX CONCURRENTLY items_e_new ON public.items USING hnsw (e public.vector_cosine_ops) WITH (m = 16)");
    has(&down, "ALTER INDEX public.items_e_new RENAME TO items_e");
    converges(&s);
    s.run("migrate-down", &["-2"]).ok();
    assert_eq!(s.db.version_rows(), ["001"]);
}

#[test]
fn an_enum_value_used_in_the_same_revision_gets_a_revision_of_its_own() {
    let s = with_base("CREATE TYPE st AS ENUM ('a', 'b');\nCREATE TABLE t (id int PRIMARY KEY, s st NOT NULL DEFAULT 'a');");
    autogen(&s, "CREATE TYPE st AS ENUM ('a', 'b', 'c');\nCREATE TABLE t (id int PRIMARY KEY, s st NOT NULL DEFAULT 'c');", &[]).ok();
    let files = generated(&s);
    assert_eq!(
        files.iter().map(|f| f.0.as_str()).collect::<Vec<_>>(),
        ["002_auto_enum_values.sql", "003_auto.sql"]
    );
    assert!(
        files[0].1.contains("-- transactional: false\n"),
        "{}",
        files[0].1
    );
    let (up, down) = sections(&files[0].1);
    assert_eq!(
        statements(&up),
        ["ALTER TYPE public.st ADD VALUE 'c' AFTER 'b'"]
    );
    has(&down, "CREATE TYPE public.st AS ENUM ('a', 'b')");
    let (up, _) = sections(&files[1].1);
    assert_eq!(
        statements(&up),
        ["ALTER TABLE public.t ALTER COLUMN s SET DEFAULT 'c'::public.st"]
    );
    converges(&s);
    s.run("migrate-down", &["-2"]).ok();
}

#[test]
fn a_removed_enum_value_used_on_the_way_down_gets_a_revision_after_the_main_one() {
    let s = with_base("CREATE TYPE st AS ENUM ('a', 'b', 'c');\nCREATE TABLE t (id int PRIMARY KEY, s st NOT NULL DEFAULT 'c');");
    autogen(&s, "CREATE TYPE st AS ENUM ('a', 'b');\nCREATE TABLE t (id int PRIMARY KEY, s st NOT NULL DEFAULT 'a');", &[]).ok();
    let files = generated(&s);
    assert_eq!(
        files.iter().map(|f| f.0.as_str()).collect::<Vec<_>>(),
        ["002_auto.sql", "003_auto_enum_values_removed.sql"]
    );
    let (_, down) = sections(&files[1].1);
    assert_eq!(
        statements(&down),
        ["ALTER TYPE public.st ADD VALUE 'c' AFTER 'b'"]
    );
    converges(&s);
    s.run("migrate-down", &["-2"]).ok();
    assert_eq!(
        s.db.strings(
            "SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef WHERE adrelid = 't'::regclass"
        ),
        ["'c'::st"]
    );
}

#[test]
fn a_schema_file_error_names_its_line_writes_nothing_and_drops_the_shadows() {
    let s = with_base("CREATE TABLE t (id int);");
    let r = autogen(
        &s,
        "CREATE TABLE t (id int);\n\nCREATE TABLE u (\n  id int,\n  n nosuchtype\n);\n",
        &["-v"],
    )
    .code(2);
    assert!(
        r.stderr
            .contains("schema.sql:5: ERROR 42704: type \"nosuchtype\" does not exist"),
        "{}",
        r.stderr
    );
    let made = shadows_created(&r.stderr);
    assert_eq!(made.len(), 2, "{}", r.stderr);
    assert!(existing_databases(&s, &made).is_empty());
    assert!(generated(&s).is_empty());
}

#[test]
fn a_failed_validation_is_an_error_that_writes_nothing_and_drops_the_shadows() {
    // The column's type is a domain, which autogenerate does not compare (so it does not
    // create it): the generated up section cannot apply, and the run says so instead of
    // writing a file.
    let s = with_base("CREATE TABLE t (id int);");
    let r = autogen(
        &s,
        "CREATE DOMAIN code AS int CHECK (VALUE > 0);\nCREATE TABLE t (id int, code code);",
        &["-v"],
    )
    .code(4);
    assert!(
        r.stderr
            .contains("validation failed: the generated up section does not apply"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("domain public.code (only in the schema file)"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("nothing was written"), "{}", r.stderr);
    let made = shadows_created(&r.stderr);
    assert!(!made.is_empty(), "{}", r.stderr);
    assert!(existing_databases(&s, &made).is_empty());
    assert!(generated(&s).is_empty());
}

#[test]
fn a_missing_schema_file_is_a_usage_error_and_schema_flag_and_env_choose_the_file() {
    let s = with_base("CREATE TABLE t (id int);");
    let r = s
        .run("migrate-revision", &["--autogenerate", "-m", "x"])
        .code(2);
    assert!(
        r.stderr.contains("no schema file at schema.sql"),
        "{}",
        r.stderr
    );
    s.write("db/wanted.sql", "CREATE TABLE t (id int, n int);");
    let r = s
        .run(
            "migrate-revision",
            &[
                "--autogenerate",
                "-m",
                "x",
                "--schema",
                "db/wanted.sql",
                "--dry-run",
            ],
        )
        .ok();
    assert!(r.stdout.contains("ADD COLUMN n integer"), "{}", r.all());
    let r = s
        .run_env(
            "migrate-revision",
            &["--autogenerate", "-m", "x", "--dry-run"],
            &[
                ("DATABASE_URL", s.db.url.as_str()),
                ("MIGRATE_SCHEMA_FILE", "db/wanted.sql"),
            ],
        )
        .ok();
    assert!(r.stdout.contains("ADD COLUMN n integer"), "{}", r.all());
}

#[test]
fn shadows_can_live_on_another_server_url() {
    let s = with_base("CREATE TABLE t (id int);");
    // the same server, reached through another database name: shadows are made from there
    let other = crate::common::with_db(&crate::common::server_url(), "postgres");
    let r = autogen(
        &s,
        "CREATE TABLE t (id int, n int);",
        &["--shadow-url", &other, "--dry-run"],
    )
    .ok();
    assert!(r.stdout.contains("ADD COLUMN n integer"), "{}", r.all());
}

#[test]
fn check_reports_schema_drift_until_the_revision_is_generated_and_applied() {
    let s = Scenario::with_example();
    s.run("migrate-up", &[]).ok();
    // no schema file: not checked, and the OK line says so
    let r = s.run("migrate-check", &[]).ok();
    assert!(
        r.stdout
            .contains("no schema file (schema.sql): schema drift not checked"),
        "{}",
        r.all()
    );
    let changed =
        format!("{EXAMPLE_SCHEMA}\nALTER TABLE chunks ADD COLUMN embedding_large vector(1536);\n");
    s.write("schema.sql", &changed);
    let r = s.run("migrate-check", &[]).code(1);
    assert!(r.stdout.contains("problem [schema_drift]: schema.sql and the migrations disagree (1 difference): add column public.chunks.embedding_large"), "{}", r.all());
    let r = s.run("migrate-check", &["--offline"]).ok();
    assert!(
        r.stdout
            .contains("schema drift not checked: --offline has no server"),
        "{}",
        r.all()
    );
    autogen(&s, &changed, &[]).ok();
    let r = s.run("migrate-check", &[]).code(1);
    assert!(r.stdout.contains("problem [pending]"), "{}", r.all());
    assert!(!r.stdout.contains("schema_drift"), "{}", r.all());
    converges(&s);
}

#[test]
fn check_reports_database_drift_when_applied_revisions_and_tables_disagree() {
    let s = Scenario::with_example();
    s.write("schema.sql", EXAMPLE_SCHEMA);
    s.run("migrate-up", &[]).ok();
    // an inconsistent state: the version says applied, a table is missing
    s.db.execute("DROP TABLE api_keys; ALTER TABLE chunks ADD COLUMN stray int;");
    let r = s.run("migrate-check", &[]).code(1);
    assert!(r.stdout.contains("problem [database_drift]: the database's schema is not what its applied revisions (004) produce (3 differences); to match them it would need: create table public.api_keys; drop column public.chunks.stray; create index api_keys_active_idx on public.api_keys"), "{}", r.all());
    assert!(!r.stdout.contains("schema_drift"), "{}", r.all());
    // a database behind the heads is compared with a replay of what it has
    let s = Scenario::with_example();
    s.write("schema.sql", EXAMPLE_SCHEMA);
    s.run("migrate-up", &["002"]).ok();
    let r = s.run("migrate-check", &[]).code(1);
    assert!(
        r.stdout.contains("problem [pending]") && !r.stdout.contains("database_drift"),
        "{}",
        r.all()
    );
}

#[test]
fn the_first_revision_of_an_empty_project_comes_from_the_schema_file() {
    let s = Scenario::new();
    autogen(&s, EXAMPLE_SCHEMA, &[]).ok();
    let files = generated(&s);
    assert_eq!(files.len(), 1);
    assert!(
        files[0]
            .1
            .starts_with("-- revision: 001\n-- message: auto\n"),
        "{}",
        files[0].1
    );
    let (up, down) = sections(&files[0].1);
    has(
        &up,
        "CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA public",
    );
    has(&up, "CREATE INDEX chunks_embedding_hnsw_idx ON public.chunks USING hnsw (embedding public.vector_cosine_ops) WITH (m = 16, ef_construction = 64)");
    has(&down, "DROP TABLE public.documents");
    converges(&s);
}

#[test]
fn ctrl_c_drops_the_shadow_databases() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let s = Scenario::new();
    // a history long enough to still be replaying when the signal comes
    let mut prev = String::new();
    for i in 1..=400 {
        let rev = format!("{i:03}");
        s.revision(
            &rev,
            &prev,
            &format!("CREATE TABLE t{i} (id int PRIMARY KEY, n int, s text DEFAULT 'x');\nCREATE INDEX t{i}_n ON t{i} (n);"),
            &format!("DROP TABLE t{i};"),
        );
        prev = rev;
    }
    s.write("schema.sql", "CREATE TABLE only_this (id int);");
    let mut child = Command::new(crate::common::bin_path("migrate-revision"))
        .args(["--autogenerate", "-m", "x", "-v"])
        .current_dir(s.dir.path())
        .env("DATABASE_URL", &s.db.url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut made = Vec::new();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    while made.len() < 2 {
        let line = lines
            .next()
            .expect("the run ended before creating its shadows")
            .unwrap();
        made.extend(shadows_created(&line));
    }
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let rest: Vec<String> = lines.map_while(|l| l.ok()).collect();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{rest:?}");
    assert!(
        rest.iter()
            .any(|l| l.contains("interrupted: dropped 2 shadow database(s)")),
        "{rest:?}"
    );
    assert!(
        existing_databases(&s, &made).is_empty(),
        "left behind: {made:?}"
    );
    assert!(generated(&s).is_empty());
}

#[test]
fn a_version_table_in_its_own_schema_is_not_drift() {
    let s = Scenario::with_example();
    s.write("schema.sql", EXAMPLE_SCHEMA);
    s.run("migrate-up", &["--version-schema", "meta"]).ok();
    let r = s.run("migrate-check", &["--version-schema", "meta"]).ok();
    assert!(
        r.stdout
            .contains("schema.sql matches the migrations and the database"),
        "{}",
        r.all()
    );
    let r = s
        .run(
            "migrate-revision",
            &["--autogenerate", "-m", "x", "--version-schema", "meta"],
        )
        .ok();
    assert!(r.stdout.contains("No changes"), "{}", r.all());
}
