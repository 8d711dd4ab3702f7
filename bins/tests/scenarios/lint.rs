//! Scenarios: lint against the real server (row counts, maintenance_work_mem), the
//! migrate-up gate, the offline pull-request lint, and the round trip catching down sections
//! that forget an index, an enum value, a sequence and a function.
use crate::common::*;

const CHUNKS: &str = "CREATE EXTENSION IF NOT EXISTS vector;\nCREATE TABLE chunks (id bigint PRIMARY KEY, embedding vector(384));";

/// 001 creates chunks and is applied; 1,000 rows go in; maintenance_work_mem is 1 MB.
fn chunks_with_rows() -> Scenario {
    let s = Scenario::new();
    s.revision("001", "", CHUNKS, "DROP TABLE chunks;");
    s.run("migrate-up", &[]).ok();
    s.db.execute("INSERT INTO chunks SELECT i, array_fill(i::real / 1000, ARRAY[384])::vector FROM generate_series(1, 1000) i");
    s.db.execute("DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET maintenance_work_mem = %L', current_database(), '1MB'); END $$");
    s
}

fn lint_json(s: &Scenario, args: &[&str]) -> serde_json::Value {
    let mut a = vec!["--format", "json"];
    a.extend_from_slice(args);
    let r = s.run("migrate-check", &a);
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}\n{}", r.stdout, r.stderr))
}

fn rules_of(doc: &serde_json::Value) -> Vec<String> {
    doc["lint"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn an_hnsw_build_on_a_table_with_rows_is_refused_with_its_size_and_memory() {
    let s = chunks_with_rows();
    s.revision(
        "002",
        "001",
        "CREATE INDEX chunks_hnsw ON chunks USING hnsw (embedding vector_cosine_ops);",
        "DROP INDEX chunks_hnsw;",
    );
    let doc = lint_json(&s, &["--lint"]);
    let f = doc["lint"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "vector-index-not-concurrent")
        .cloned()
        .unwrap_or_else(|| panic!("no finding: {doc}"));
    let msg = f["message"].as_str().unwrap();
    assert!(msg.contains("1,000 rows"), "{msg}");
    // (8 + 4·384 + 32·16 + 200) × 1,000 = 2.3 MB against 1 MB
    assert!(
        msg.contains(
            "estimated build memory 2.2 MB ((8 + 4·384 + 32·m + 200) bytes × rows, m = 16)"
        ),
        "{msg}"
    );
    assert!(
        msg.contains("maintenance_work_mem 1.0 MB") && msg.contains("will not fit"),
        "{msg}"
    );
    assert_eq!(
        (f["line"].as_u64(), f["column"].as_u64()),
        (Some(6), Some(1))
    );

    // migrate-up prints it and refuses; nothing changes
    let r = s.run("migrate-up", &["--lint"]).code(7);
    assert!(
        r.stderr
            .contains("002_x.sql:6:1  error  vector-index-not-concurrent"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("--allow-unsafe"), "{}", r.stderr);
    assert_eq!(s.db.version_rows(), vec!["001"]);
    let r = s.run("migrate-up", &["--dry-run", "--lint"]).code(7);
    assert!(
        r.stderr.contains("vector-index-not-concurrent"),
        "{}",
        r.stderr
    );
    s.run("migrate-up", &["--lint", "--allow-unsafe"]).ok();
    assert_eq!(s.db.version_rows(), vec!["002"]);
}

#[test]
fn the_concurrent_build_of_the_same_index_passes() {
    let s = chunks_with_rows();
    s.revision_with(
        "002",
        "001",
        "-- transactional: false",
        "CREATE INDEX CONCURRENTLY chunks_hnsw ON chunks USING hnsw (embedding vector_cosine_ops);",
        "DROP INDEX CONCURRENTLY chunks_hnsw;",
    );
    let doc = lint_json(&s, &["--lint"]);
    assert_eq!(doc["lint"]["errors"], 0, "{doc}");
    s.run("migrate-up", &["--lint"]).ok();
    assert_eq!(s.db.version_rows(), vec!["002"]);
}

#[test]
fn a_dimension_change_is_an_error_on_a_table_with_rows_and_not_on_an_empty_one() {
    let s = chunks_with_rows();
    s.revision(
        "002",
        "001",
        "ALTER TABLE chunks ALTER COLUMN embedding TYPE vector(768);",
        "SELECT 1;",
    );
    let doc = lint_json(&s, &["--lint"]);
    let rules = rules_of(&doc);
    assert!(
        rules.contains(&"vector-column-type-change".to_string()),
        "{doc}"
    );
    let msg = doc["lint"]["findings"].to_string();
    assert!(msg.contains("it holds 1,000 rows"), "{msg}");

    s.db.execute("TRUNCATE chunks");
    let doc = lint_json(&s, &["--lint"]);
    assert!(
        !rules_of(&doc).contains(&"vector-column-type-change".to_string()),
        "{doc}"
    );
}

#[test]
fn the_pull_request_lint_reads_only_what_comes_after_since_and_annotates_lines() {
    let s = Scenario::new();
    s.revision("001", "", CHUNKS, "DROP TABLE chunks;");
    s.revision(
        "002",
        "001",
        "ALTER TABLE chunks ADD COLUMN n bigint NOT NULL;",
        "ALTER TABLE chunks DROP COLUMN n;",
    );
    s.revision("003", "002", "CREATE INDEX chunks_small ON chunks USING hnsw ((embedding::halfvec(384)) vector_cosine_ops);\nCREATE TABL oops (x int);", "SELECT 1;");
    let r = s
        .run_env(
            "migrate-check",
            &[
                "--offline",
                "--lint",
                "--since",
                "002",
                "--format",
                "github",
            ],
            &[],
        )
        .code(1);
    assert!(
        !r.stdout.contains("adding-required-field"),
        "002 is deployed: {}",
        r.stdout
    );
    assert!(
        r.stdout.contains(
            "::error file=migrations/003_x.sql,line=6,col=1,title=vector-index-not-concurrent::"
        ),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("title=vector-opclass-mismatch::"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("line=7,col=1,title=syntax-error::"),
        "{}",
        r.stdout
    );
    assert_eq!(
        r.stdout.matches("title=syntax-error").count(),
        1,
        "one per statement: {}",
        r.stdout
    );
    assert!(
        !r.stdout.contains("require-concurrent-index-creation"),
        "{}",
        r.stdout
    );
    let r = s
        .run_env("migrate-check", &["--offline", "--lint"], &[])
        .code(1);
    assert!(
        r.stdout
            .contains("002_x.sql:6:20  error  adding-required-field"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("problem [lint]: lint: "), "{}", r.stdout);

    // the user knows better, and says why; a project file switches a rule off
    s.revision("002", "001", "-- retort:allow adding-required-field the table is empty in every environment\nALTER TABLE chunks ADD COLUMN n bigint NOT NULL;", "ALTER TABLE chunks DROP COLUMN n;");
    s.write(
        "retort.toml",
        "[lint]\nsyntax-error = \"off\"\nvector-opclass-mismatch = \"warning\"\n",
    );
    let r = s.run_env("migrate-check", &["--offline", "--lint"], &[]);
    assert!(!r.stdout.contains("adding-required-field"), "{}", r.stdout);
    assert!(
        r.stdout.contains("warning  vector-opclass-mismatch"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("(1 allowed by -- retort:allow)"),
        "{}",
        r.stdout
    );
    s.write("retort.toml", "[lint]\nsyntax-eror = \"off\"\n");
    let r = s
        .run_env("migrate-check", &["--offline", "--lint"], &[])
        .code(2);
    assert!(
        r.stderr
            .contains("retort.toml:2: unknown lint rule `syntax-eror`"),
        "{}",
        r.stderr
    );
}

const ITEMS: &str = "CREATE TABLE items (id bigint PRIMARY KEY, name text);";
const ITEMS_INDEX: &str = "CREATE INDEX items_name ON items (name);";

#[test]
fn migrate_up_refuses_a_plain_index_build_on_a_table_with_rows_by_default() {
    let s = Scenario::new();
    s.revision("001", "", ITEMS, "DROP TABLE items;");
    s.run("migrate-up", &[]).ok();
    s.db.execute("INSERT INTO items SELECT i, 'n' || i FROM generate_series(1, 500) i");
    s.revision("002", "001", ITEMS_INDEX, "DROP INDEX items_name;");

    // no flag: the gate is on; exit 7 as docs/exit-codes.md says, nothing written
    let r = s.run("migrate-up", &[]).code(7);
    assert!(
        r.stderr
            .contains("002_x.sql:6:1  error  require-concurrent-index-creation"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("items exists before this run and holds 500 rows"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("refuses to run"), "{}", r.stderr);
    assert!(r.stderr.contains("--allow-unsafe"), "{}", r.stderr);
    assert_eq!(s.db.version_rows(), vec!["001"]);
    assert!(
        s.db.strings("SELECT indexname::text FROM pg_indexes WHERE indexname = 'items_name'")
            .is_empty(),
        "the index was not built"
    );
    // --dry-run shows the same refusal
    let r = s.run("migrate-up", &["--dry-run"]).code(7);
    assert!(
        r.stderr.contains("require-concurrent-index-creation"),
        "{}",
        r.stderr
    );

    // --allow-unsafe runs it, says so, and the audit log keeps it
    let r = s.run("migrate-up", &["--allow-unsafe"]).ok();
    assert!(
        r.stderr.contains("require-concurrent-index-creation"),
        "the findings are still printed: {}",
        r.stderr
    );
    assert_eq!(s.db.version_rows(), vec!["002"]);
    let notes = s.db.strings(
        "SELECT coalesce(note, '') FROM alembic_version_audit WHERE success ORDER BY id DESC LIMIT 1",
    );
    assert_eq!(
        notes,
        vec!["--allow-unsafe: 1 error-level lint finding(s): require-concurrent-index-creation"]
    );

    // a script that names only the index: the lint still finds the table it would lock, but
    // dropping an index is a brief lock (under the run's lock_timeout): a warning, not a refusal
    s.revision("003", "002", "DROP INDEX items_name;", "SELECT 1;");
    let r = s.run("migrate-check", &["--lint"]).code(1); // pending, not lint
    assert!(
        r.stdout
            .contains("warning  require-concurrent-index-deletion")
            && r.stdout.contains("(items exists before this run)"),
        "{}",
        r.stdout
    );
    s.run("migrate-up", &[]).ok();
    assert_eq!(s.db.version_rows(), vec!["003"]);
}

#[test]
fn the_same_index_build_passes_where_the_run_creates_the_table_or_it_is_empty() {
    // a fresh database replaying the history: items is created earlier in the same run
    let s = Scenario::new();
    s.revision("001", "", ITEMS, "DROP TABLE items;");
    s.revision("002", "001", ITEMS_INDEX, "DROP INDEX items_name;");
    let r = s.run("migrate-up", &["--lint"]).ok();
    assert!(
        r.stderr.contains("lint: 0 errors, 0 warnings in 2 scripts (1 on tables created by this run or empty before it, not counted)"),
        "{}",
        r.stderr
    );
    assert_eq!(s.db.version_rows(), vec!["002"]);

    // the offline lint cannot know the tables: it stays strict
    let r = s.run("migrate-check", &["--offline", "--lint"]).code(1);
    assert!(
        r.stdout.contains("require-concurrent-index-creation"),
        "{}",
        r.stdout
    );

    // the table exists before the run but is empty: nothing waits for the build
    let s = Scenario::new();
    s.revision("001", "", ITEMS, "DROP TABLE items;");
    s.run("migrate-up", &[]).ok();
    s.revision("002", "001", ITEMS_INDEX, "DROP INDEX items_name;");
    s.run("migrate-up", &[]).ok();
    assert_eq!(s.db.version_rows(), vec!["002"]);

    // dropped and re-created by the run: the rows that were there do not matter
    let s = Scenario::new();
    s.revision("001", "", ITEMS, "DROP TABLE items;");
    s.run("migrate-up", &[]).ok();
    s.db.execute("INSERT INTO items SELECT i, 'n' || i FROM generate_series(1, 500) i");
    s.revision(
        "002",
        "001",
        &format!("DROP TABLE items;\n{ITEMS}"),
        "SELECT 1;",
    );
    s.revision("003", "002", ITEMS_INDEX, "DROP INDEX items_name;");
    s.run("migrate-up", &[]).ok();
    assert_eq!(s.db.version_rows(), vec!["003"]);
}

#[test]
fn a_brief_lock_is_a_warning_and_the_project_file_can_make_it_an_error() {
    // DROP INDEX locks the table however small it is, briefly: a warning where the table
    // exists before the run; on an index the run itself builds, nothing
    let s = Scenario::new();
    s.revision(
        "001",
        "",
        &format!("{ITEMS}\n{ITEMS_INDEX}"),
        "DROP TABLE items;",
    );
    s.revision("002", "001", "DROP INDEX items_name;", "SELECT 1;");
    let r = s.run("migrate-check", &["--lint"]).code(1); // pending, not lint
    assert!(
        !r.stdout.contains("require-concurrent-index-deletion"),
        "{}",
        r.stdout
    );
    s.run("migrate-up", &["001"]).ok();
    let r = s.run("migrate-check", &["--lint"]).code(1);
    assert!(
        r.stdout
            .contains("warning  require-concurrent-index-deletion")
            && r.stdout.contains("items exists before this run"),
        "{}",
        r.stdout
    );
    // a team that wants every DROP INDEX concurrent says so
    s.write(
        "retort.toml",
        "[lint]\nrequire-concurrent-index-deletion = \"error\"\n",
    );
    let r = s.run("migrate-up", &[]).code(7);
    assert!(
        r.stderr
            .contains("002_x.sql:6:1  error  require-concurrent-index-deletion"),
        "{}",
        r.stderr
    );
    assert_eq!(s.db.version_rows(), vec!["001"]);
    s.write("retort.toml", "");
    s.run("migrate-up", &[]).ok();
    assert_eq!(s.db.version_rows(), vec!["002"]);
}

/// An applied history: items (5,000 rows) with an index and a column to drop, an empty
/// `audit` table, a small `tags` table (3 rows).
fn applied_history() -> Scenario {
    let s = Scenario::new();
    s.revision(
        "001",
        "",
        "CREATE TABLE items (id bigint PRIMARY KEY, name text, legacy text);\nCREATE INDEX items_name ON items (name);\nCREATE TABLE audit (id bigint PRIMARY KEY, what text);\nCREATE TABLE tags (id int PRIMARY KEY, label varchar(20));",
        "DROP TABLE tags;\nDROP TABLE audit;\nDROP TABLE items;",
    );
    s.run("migrate-up", &[]).ok();
    s.db.execute("INSERT INTO items SELECT i, 'n' || i, 'x' FROM generate_series(1, 5000) i");
    s.db.execute("INSERT INTO tags VALUES (1, 'a'), (2, 'b'), (3, 'c')");
    s.db.execute("ANALYZE items");
    s
}

#[test]
fn an_ordinary_history_passes_the_gate_with_one_summary_line() {
    let s = applied_history();
    // brief locks: drop an index, rename, drop a column, add a nullable column, a new index on
    // an empty table, drop a table
    s.revision(
        "002",
        "001",
        "DROP INDEX items_name;\nALTER TABLE items RENAME COLUMN name TO title;\nALTER TABLE items DROP COLUMN legacy;\nALTER TABLE items ADD COLUMN note text;\nCREATE INDEX audit_what ON audit (what);\nDROP TABLE tags;",
        "SELECT 1;",
    );
    // the deploy log: no warning listed, one line that counts them and says where they are
    let r = s.run("migrate-up", &["--dry-run"]).ok();
    assert!(
        r.stderr.contains("(migrate-check --lint lists them)"),
        "{}",
        r.stderr
    );
    for rule in [
        "renaming-column",
        "ban-drop-column",
        "require-concurrent-index-deletion",
        "prefer-robust-stmts",
    ] {
        assert!(!r.stderr.contains(rule), "{rule}: {}", r.stderr);
    }
    // -v lists them, and so does migrate-check --lint
    let r = s.run("migrate-up", &["--dry-run", "-v"]).ok();
    assert!(
        r.stderr.contains("warning  renaming-column")
            && r.stderr
                .contains("warning  require-concurrent-index-deletion"),
        "{}",
        r.stderr
    );
    let r = s.run("migrate-check", &["--lint"]).code(1); // pending
    assert!(
        r.stdout.contains("warning  ban-drop-column"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("problem [lint]"), "{}", r.stdout);
    let r = s.run("migrate-up", &[]).ok();
    assert!(
        r.stderr.contains("lint: ") && r.stderr.contains("(migrate-check --lint lists them)"),
        "{}",
        r.stderr
    );
    assert_eq!(s.db.version_rows(), vec!["002"]);
}

#[test]
fn what_holds_a_lock_as_long_as_the_data_is_refused_on_thousands_of_rows() {
    for up in [
        "CREATE INDEX items_legacy ON items (legacy);",
        "ALTER TABLE items ALTER COLUMN name TYPE varchar(40);",
        "ALTER TABLE items ADD CONSTRAINT items_name_key UNIQUE (name);",
    ] {
        let s = applied_history();
        s.revision("002", "001", up, "SELECT 1;");
        let r = s.run("migrate-up", &[]).code(7);
        assert!(
            r.stderr
                .contains("items exists before this run and holds about 5,000 rows"),
            "{up}: {}",
            r.stderr
        );
        assert!(r.stderr.contains("refuses to run"), "{up}: {}", r.stderr);
        assert_eq!(s.db.version_rows(), vec!["001"], "{up}");
        // the same build on the empty table passes
        let on_audit = up.replace("items (legacy)", "audit (what)");
        if on_audit != up {
            s.revision("002", "001", &on_audit, "SELECT 1;");
            s.run("migrate-up", &[]).ok();
        }
    }
}

#[test]
fn a_statement_the_lint_cannot_read_is_left_to_postgresql() {
    let s = applied_history();
    s.revision(
        "002",
        "001",
        "ALTER TABLE items ADD COLUMN note text;\nCREATE INDX items_note ON items (note);",
        "SELECT 1;",
    );
    // the lint says it did not read it, and does not block
    let r = s.run("migrate-check", &["--lint"]).code(1); // pending
    assert!(
        r.stdout
            .contains("002_x.sql:7:1  warning  syntax-error  not linted: "),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("problem [lint]"), "{}", r.stdout);
    // PostgreSQL judges it: its error, with the file and the line; nothing applied
    let r = s.run("migrate-up", &[]).code(4);
    assert!(r.stderr.contains("syntax error at or near"), "{}", r.stderr);
    assert!(
        r.stderr.contains("upgrade 002 at migrations/002_x.sql:7"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("--allow-unsafe"), "{}", r.stderr);
    assert_eq!(s.db.version_rows(), vec!["001"]);
    assert!(
        s.db.strings("SELECT column_name::text FROM information_schema.columns WHERE table_name = 'items' AND column_name = 'note'")
            .is_empty(),
        "the step was rolled back"
    );
}

/// A project whose 002 forgets to undo one object in its down section.
fn forgetful(up: &str, down: &str) -> Run {
    let s = Scenario::new();
    s.revision(
        "001",
        "",
        "CREATE TABLE t (id bigint PRIMARY KEY, name text);",
        "DROP TABLE t;",
    );
    s.revision("002", "001", up, down);
    s.revision(
        "003",
        "002",
        "CREATE TABLE u (id bigint PRIMARY KEY);",
        "DROP TABLE u;",
    );
    s.run("migrate-check", &["--round-trip"])
}

#[test]
fn the_round_trip_catches_what_a_down_section_forgets() {
    let cases = [
        ("CREATE INDEX t_name ON t (name);", "SELECT 1;", "t_name"),
        (
            "CREATE TYPE mood AS ENUM ('sad');\nALTER TYPE mood ADD VALUE 'happy';",
            "SELECT 1;",
            "mood",
        ),
        ("CREATE SEQUENCE ticket_seq;", "SELECT 1;", "ticket_seq"),
        (
            "CREATE FUNCTION answer() RETURNS int LANGUAGE sql AS $$ SELECT 42 $$;",
            "SELECT 1;",
            "answer",
        ),
    ];
    for (up, down, object) in cases {
        let r = forgetful(up, down).code(1);
        assert!(
            r.stdout
                .contains("problem [round_trip]: round trip of revision 002"),
            "{up}: {}",
            r.stdout
        );
        assert!(
            r.stdout.contains("downgrading does not restore the schema"),
            "{up}: {}",
            r.stdout
        );
        assert!(r.stdout.contains(object), "{up}: {}", r.stdout);
    }
    // an enum value forgotten: the type is dropped and re-created with one value less
    let r = forgetful("CREATE TYPE mood AS ENUM ('sad');", "SELECT 1;").code(1);
    assert!(r.stdout.contains("mood"), "{}", r.stdout);
}

/// 001 creates an enum and a table using it; 002 adds a value to that existing enum.
fn enum_value_added(down: &str) -> Run {
    let s = Scenario::new();
    s.revision(
        "001",
        "",
        "CREATE TYPE mood AS ENUM ('sad', 'ok');\nCREATE TABLE diary (id bigint PRIMARY KEY, m mood);",
        "DROP TABLE diary;\nDROP TYPE mood;",
    );
    s.revision("002", "001", "ALTER TYPE mood ADD VALUE 'happy';", down);
    s.run("migrate-check", &["--round-trip", "--format", "json"])
}

#[test]
fn the_round_trip_catches_a_value_added_to_an_existing_enum_and_left_behind() {
    // PostgreSQL cannot drop an enum value: a down that does nothing leaves 'happy' behind
    let r = enum_value_added("SELECT 1;").code(1);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        doc["round_trip"]["passed"],
        serde_json::json!(["001"]),
        "{doc}"
    );
    let failure = doc["round_trip"]["failure"].to_string();
    assert!(failure.contains("\"002\""), "{failure}");
    assert!(failure.contains("\"leaves_a_trace\""), "{failure}");
    // what it takes to get back: the type without the value ('happy' is not named: the
    // schema diff describes the recreation, not the value)
    assert!(
        failure.contains("recreate enum type public.mood (values removed or reordered)"),
        "{failure}"
    );

    // the safe down re-creates the type without the value, converting the column
    let r = enum_value_added(
        "ALTER TYPE mood RENAME TO mood_old;\nCREATE TYPE mood AS ENUM ('sad', 'ok');\nALTER TABLE diary ALTER COLUMN m TYPE mood USING m::text::mood;\nDROP TYPE mood_old;",
    )
    .ok(); // the database itself is not migrated: not the round trip's business
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc["problems"], serde_json::json!([]), "{doc}");
    assert_eq!(
        doc["round_trip"]["passed"],
        serde_json::json!(["001", "002"]),
        "{doc}"
    );
    assert!(doc["round_trip"]["failure"].is_null(), "{doc}");
}

#[test]
fn a_faithful_down_section_passes_the_round_trip() {
    let s = Scenario::new();
    s.revision(
        "001",
        "",
        "CREATE TABLE t (id bigint PRIMARY KEY, name text);",
        "DROP TABLE t;",
    );
    s.revision("002", "001", "CREATE INDEX t_name ON t (name);\nCREATE TYPE mood AS ENUM ('sad');\nCREATE SEQUENCE ticket_seq;\nCREATE FUNCTION answer() RETURNS int LANGUAGE sql AS $$ SELECT 42 $$;", "DROP FUNCTION answer();\nDROP SEQUENCE ticket_seq;\nDROP TYPE mood;\nDROP INDEX t_name;");
    let r = s.run("migrate-check", &["--round-trip", "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        doc["round_trip"]["passed"],
        serde_json::json!(["001", "002"]),
        "{doc}"
    );
    assert!(doc["round_trip"]["failure"].is_null(), "{doc}");
    // the database itself was not touched
    assert_eq!(s.db.version_rows(), Vec::<String>::new());
}

#[test]
fn what_autogenerate_writes_for_a_sqlalchemy_model_passes_the_gate_without_a_word() {
    // the tables SQLAlchemy declares: bigserial keys (prefer-identity is a style warning, not
    // a rule of the gate: the model's column is a sequence default, and autogenerate writes
    // what the model says), integer and varchar columns, a foreign key, an index
    let s = Scenario::new();
    s.revision(
        "001",
        "",
        "CREATE TABLE base (id int PRIMARY KEY);",
        "DROP TABLE base;",
    );
    s.run("migrate-up", &[]).ok();
    crate::autogen_support::autogen(
        &s,
        "CREATE TABLE base (id int PRIMARY KEY);
         CREATE TABLE documents (id bigserial PRIMARY KEY, title varchar(200) NOT NULL, pages integer, created_at timestamp without time zone DEFAULT now());
         CREATE TABLE chunks (id bigserial PRIMARY KEY, document_id bigint NOT NULL REFERENCES documents (id), body text);
         CREATE INDEX chunks_document_id ON chunks (document_id);",
        &[],
    )
    .ok();
    let doc = lint_json(&s, &["--lint"]);
    assert_eq!(doc["lint"]["errors"], 0, "{doc}");
    assert!(
        rules_of(&doc).contains(&"prefer-identity".to_string()),
        "the warning is still listed by migrate-check --lint: {doc}"
    );
    let r = s.run("migrate-up", &[]).ok();
    assert!(!r.stderr.contains("prefer-identity"), "{}", r.stderr);
    assert!(
        r.stderr.contains("(migrate-check --lint lists them)"),
        "{}",
        r.stderr
    );
    assert_eq!(s.db.version_rows().len(), 1);
}

/// An imported-style history (Alembic's hex ids): the root creates the `vector` extension and
/// a table, its down drops the table and keeps the extension, as Alembic baselines do; 2f1c...
/// creates a schema shared with other jobs, which its down keeps for a stated reason.
fn imported_history(s: &Scenario, exemption: &str) {
    s.revision(
        "4b1e0c9a7d21",
        "",
        "CREATE EXTENSION IF NOT EXISTS vector;\nCREATE TABLE docs (id bigint PRIMARY KEY, embedding vector(3));",
        "DROP TABLE docs;",
    );
    s.revision_with(
        "2f1c8e6b3a90",
        "4b1e0c9a7d21",
        exemption,
        "CREATE SCHEMA IF NOT EXISTS reporting;\nCREATE TABLE reporting.daily (day date PRIMARY KEY);",
        "DROP TABLE reporting.daily;",
    );
}

#[test]
fn an_imported_history_whose_baseline_keeps_vector_passes_the_round_trip_on_a_fresh_database() {
    // without a reason the schema the down keeps fails the round trip, naming it
    let s = Scenario::new();
    imported_history(&s, "");
    let r = s.run("migrate-check", &["--round-trip"]).code(1);
    assert!(
        r.stdout
            .contains("problem [round_trip]: round trip of revision 2f1c8e6b3a90")
            && r.stdout.contains("reporting"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("problem [pending]"), "{}", r.stdout);

    // with it, everything passes on the fresh database, nothing applied there: the extension
    // the root's down keeps by default, the schema by the script's own reasoned line
    let s = Scenario::new();
    let line = "-- round_trip: keeps schema reporting (shared with the reporting jobs' own tables)";
    imported_history(&s, line);
    let r = s.run("migrate-check", &["--round-trip"]).ok();
    assert!(
        r.stdout.contains("round trip: 2 revisions upgraded")
            && r.stdout.contains("accepted: 4b1e0c9a7d21 keeps extension vector")
            && r.stdout.contains(
                "accepted: 2f1c8e6b3a90 keeps schema reporting (shared with the reporting jobs' own tables)"
            ),
        "{}",
        r.stdout
    );
    assert_eq!(
        s.db.version_rows(),
        Vec::<String>::new(),
        "the target untouched"
    );
    assert!(!s.db.table_exists("docs"));

    // the exemption is not an edit of what ran: added to an applied script, no mismatch
    s.run("migrate-up", &[]).ok();
    let path = s.migrations().join("2f1c8e6b3a90_x.sql");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace(
            line,
            "-- round_trip: keeps schema reporting (owned by the jobs)",
        ),
    )
    .unwrap();
    s.run("migrate-check", &[]).ok();
}

#[test]
fn the_round_trip_runs_offline_on_a_shadow_server_without_a_database_url() {
    let s = Scenario::new();
    imported_history(&s, "-- round_trip: keeps schema reporting (shared)");
    // the pull-request form: no DATABASE_URL, only a server for the shadow
    let r = s
        .run_env(
            "migrate-check",
            &["--offline", "--round-trip", "--shadow-url", &s.db.url],
            &[],
        )
        .ok();
    assert!(
        r.stdout.contains("round trip: 2 revisions upgraded"),
        "{}",
        r.stdout
    );
    // neither a URL nor a shadow server: said, with what to set
    let r = s
        .run_env("migrate-check", &["--offline", "--round-trip"], &[])
        .code(2);
    assert!(
        r.stderr.contains("no database URL configured") && r.stderr.contains("--shadow-url"),
        "{}",
        r.stderr
    );
    // a broken exemption line is a script error with its line
    s.revision_with(
        "3a",
        "2f1c8e6b3a90",
        "-- round_trip: keeps extension vector",
        "SELECT 1;",
        "SELECT 1;",
    );
    let r = s.run("migrate-check", &["--offline"]).code(1);
    assert!(
        r.stdout
            .contains("3a_x.sql:4: round_trip: the reason is missing"),
        "{}",
        r.stdout
    );
}
