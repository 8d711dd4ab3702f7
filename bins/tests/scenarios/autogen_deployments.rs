//! Autogenerate and drift where RAG applications run: vector store libraries that create their
//! own tables (`--exclude` / `MIGRATE_EXCLUDE`), application roles that are not superuser
//! (shadows from a template with the extension, or on `MIGRATE_SHADOW_URL`'s server), and the
//! documented reset recipe (`DROP SCHEMA public CASCADE; CREATE SCHEMA public;`).

use crate::autogen_support::*;
use crate::common::{connect, server_url, Scenario};

const CHUNKS: &str = "CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE chunks (id bigserial PRIMARY KEY, body text NOT NULL, embedding vector(3));";

/// What LangChain's PGVector and LlamaIndex's PGVectorStore create at run time.
const VECTOR_STORES: &str = "
CREATE TABLE langchain_pg_collection (uuid uuid PRIMARY KEY, name varchar NOT NULL UNIQUE, cmetadata json);
CREATE TABLE langchain_pg_embedding (id varchar PRIMARY KEY, collection_id uuid REFERENCES langchain_pg_collection (uuid) ON DELETE CASCADE,
  embedding vector(3), document varchar, cmetadata jsonb);
CREATE INDEX ix_cmetadata_gin ON langchain_pg_embedding USING gin (cmetadata jsonb_path_ops);
CREATE TABLE data_llamaindex (id bigserial PRIMARY KEY, text varchar NOT NULL, metadata_ json, node_id varchar, embedding vector(3));";

/// A scenario whose database is at 001 (chunks) and has the vector stores' tables too.
fn with_vector_stores() -> Scenario {
    let s = with_base(CHUNKS);
    s.write("schema.sql", CHUNKS);
    s.run("migrate-up", &[]).ok();
    s.db.execute(VECTOR_STORES);
    s
}

#[test]
fn tables_a_vector_store_creates_at_run_time_are_drift_until_excluded() {
    let mut s = with_vector_stores();
    let r = s.run("migrate-check", &[]).code(1);
    assert!(r.stdout.contains("problem [database_drift]"), "{}", r.all());
    assert!(
        r.stdout
            .contains("drop table public.langchain_pg_embedding"),
        "{}",
        r.all()
    );

    // The flags: every table of both libraries left out, and named.
    let r = s
        .run(
            "migrate-check",
            &["--exclude", "langchain_*", "--exclude", "public.data_*"],
        )
        .ok();
    assert!(
        r.stdout
            .contains("schema.sql matches the migrations and the database (ignored by --exclude langchain_*,public.data_*: public.data_llamaindex, public.langchain_pg_collection, public.langchain_pg_embedding)"),
        "{}",
        r.all()
    );

    // The same from the environment (CI sets it once).
    s.env
        .push(("MIGRATE_EXCLUDE".into(), "langchain_*, data_*".into()));
    let r = s.run("migrate-check", &["--format", "json"]).ok();
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc["ok"], true, "{}", r.stdout);
    assert!(
        doc["drift_check"]
            .as_str()
            .unwrap()
            .contains("public.langchain_pg_collection"),
        "{}",
        r.stdout
    );

    // An exclusion hides only what it matches: a real drift next to them is still reported.
    s.db.execute("ALTER TABLE chunks ADD COLUMN stray int");
    let r = s.run("migrate-check", &[]).code(1);
    assert!(
        r.stdout.contains("drop column public.chunks.stray") && !r.stdout.contains("langchain"),
        "{}",
        r.all()
    );
}

#[test]
fn include_compares_only_what_it_matches_and_autogenerate_leaves_the_rest_out() {
    let s = with_base(CHUNKS);
    // schema.sql also declares a table the application does not own here, with a serial
    let schema = format!(
        "{CHUNKS}\nALTER TABLE chunks ADD COLUMN title text;\nCREATE TABLE data_docs (id bigserial PRIMARY KEY, text text);"
    );
    let r = autogen(&s, &schema, &["--exclude", "data_*"]).ok();
    assert!(
        r.stderr
            .contains("ignored (--exclude data_*): public.data_docs"),
        "{}",
        r.stderr
    );
    let files = generated(&s);
    assert_eq!(files.len(), 1, "{files:?}");
    let (up, down) = sections(&files[0].1);
    assert_eq!(
        statements(&up),
        ["ALTER TABLE public.chunks ADD COLUMN title text"],
        "{up}"
    );
    assert_eq!(
        statements(&down),
        ["ALTER TABLE public.chunks DROP COLUMN title"]
    );
    std::fs::remove_file(s.migrations().join(&files[0].0)).unwrap();

    // --include: only chunks is compared, so data_docs is not created either
    let r = autogen(&s, &schema, &["--include", "public.chunks"]).ok();
    assert!(r.stderr.contains("public.data_docs"), "{}", r.stderr);
    let (up, _) = sections(&generated(&s)[0].1);
    assert!(!up.contains("data_docs"), "{up}");
    // a malformed pattern is refused before any database work
    let r = autogen(&s, &schema, &["--exclude", "a.b.c"]).code(2);
    assert!(
        r.stderr.contains("'a.b.c' is not a table pattern"),
        "{}",
        r.stderr
    );
}

/// A login role of this test's own, dropped at the end, and URLs that use it.
struct Role {
    name: String,
}

impl Role {
    fn new(s: &Scenario, options: &str) -> Role {
        let name = format!("{}_app", s.db.name);
        let mut admin = connect(&server_url());
        admin
            .batch_execute(&format!(
                "DROP ROLE IF EXISTS {name}; CREATE ROLE {name} LOGIN PASSWORD 'app-pw' {options}"
            ))
            .unwrap();
        // The application's database: owned by the role, the extension created by an admin.
        s.db.execute(&format!(
            "ALTER DATABASE {} OWNER TO {name}; ALTER SCHEMA public OWNER TO {name}; CREATE EXTENSION vector;",
            s.db.name
        ));
        Role { name }
    }

    /// The URL of `db` as this role.
    fn url(&self, db: &str) -> String {
        let url = crate::common::with_db(&server_url(), db);
        let at = url.find('@').unwrap();
        format!("postgresql://{}:app-pw{}", self.name, &url[at..])
    }
}

impl Drop for Role {
    fn drop(&mut self) {
        if let Ok(mut admin) = postgres::Client::connect(&server_url(), postgres::NoTls) {
            let _ = admin.batch_execute(&format!(
                "DROP OWNED BY {0}; DROP ROLE IF EXISTS {0}",
                self.name
            ));
        }
    }
}

/// A template database with pgvector, prepared by an administrator; dropped at the end.
struct Template {
    name: String,
}

impl Template {
    fn new(s: &Scenario) -> Template {
        let name = format!("{}_tpl", s.db.name);
        let mut admin = connect(&server_url());
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        connect(&crate::common::with_db(&server_url(), &name))
            .batch_execute("CREATE EXTENSION vector")
            .unwrap();
        admin
            .batch_execute(&format!("ALTER DATABASE {name} IS_TEMPLATE true"))
            .unwrap();
        Template { name }
    }
}

impl Drop for Template {
    fn drop(&mut self) {
        if let Ok(mut admin) = postgres::Client::connect(&server_url(), postgres::NoTls) {
            let _ = admin.batch_execute(&format!(
                "ALTER DATABASE {0} IS_TEMPLATE false; DROP DATABASE IF EXISTS {0} WITH (FORCE)",
                self.name
            ));
        }
    }
}

#[test]
fn a_createdb_only_role_builds_shadows_from_a_template_that_has_the_extension() {
    let mut s = with_base(CHUNKS);
    s.write("schema.sql", CHUNKS);
    let role = Role::new(&s, "CREATEDB");
    let url = role.url(&s.db.name);
    s.run_env("migrate-up", &[], &[("DATABASE_URL", &url)]).ok();

    // From template0 the shadow has no pgvector, and only a superuser may create it.
    let r = s.run_env("migrate-check", &[], &[("DATABASE_URL", &url)]);
    assert_eq!(r.code, 10, "{}", r.all());
    assert!(
        r.stderr
            .contains("permission denied to create extension \"vector\""),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("MIGRATE_SHADOW_TEMPLATE") && r.stderr.contains("MIGRATE_SHADOW_URL"),
        "{}",
        r.stderr
    );
    // nothing about the state of a throwaway database, nor advice to fix a sound script
    for misleading in ["state:", "nothing was applied", "fix the", "replay_failed"] {
        assert!(!r.all().contains(misleading), "{misleading}: {}", r.all());
    }

    // An administrator prepares a template with the extension: the role's checks pass.
    let tpl = Template::new(&s);
    s.env
        .push(("MIGRATE_SHADOW_TEMPLATE".into(), tpl.name.clone()));
    let r = s
        .run_env("migrate-check", &[], &[("DATABASE_URL", &url)])
        .ok();
    assert!(
        r.stdout.contains("matches the migrations and the database"),
        "{}",
        r.all()
    );
    s.write(
        "schema.sql",
        &format!("{CHUNKS}\nALTER TABLE chunks ADD COLUMN title text;"),
    );
    s.run_env(
        "migrate-revision",
        &["--autogenerate", "-m", "title"],
        &[("DATABASE_URL", &url)],
    )
    .ok();
    let (up, _) = sections(&generated(&s)[0].1);
    has(&up, "ALTER TABLE public.chunks ADD COLUMN title text");
}

#[test]
fn a_role_without_createdb_is_told_what_is_missing_and_uses_the_shadow_url() {
    let mut s = with_base(CHUNKS);
    s.write("schema.sql", CHUNKS);
    let role = Role::new(&s, "NOCREATEDB NOSUPERUSER");
    let url = role.url(&s.db.name);
    s.run_env("migrate-up", &[], &[("DATABASE_URL", &url)]).ok();

    let r = s.run_env("migrate-check", &[], &[("DATABASE_URL", &url)]);
    assert_eq!(r.code, 10, "{}", r.all());
    assert!(
        r.stderr.contains(&format!(
            "cannot create a shadow database on {}",
            url.split('@').nth(1).unwrap().split('/').next().unwrap()
        )),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(&format!(
            "role '{}' lacks the CREATEDB privilege there; either an administrator runs ALTER ROLE {} CREATEDB, or set MIGRATE_SHADOW_URL",
            role.name, role.name
        )),
        "{}",
        r.stderr
    );

    // Shadows on another server (here: the same one, as a superuser), given by the environment.
    s.env.push(("MIGRATE_SHADOW_URL".into(), server_url()));
    let r = s
        .run_env("migrate-check", &[], &[("DATABASE_URL", &url)])
        .ok();
    assert!(
        r.stdout.contains("matches the migrations and the database"),
        "{}",
        r.all()
    );
    // and the drift it finds in the role's database is still its database's
    s.db.execute(&format!(
        "SET ROLE {}; ALTER TABLE chunks ADD COLUMN stray int",
        role.name
    ));
    let r = s
        .run_env("migrate-check", &[], &[("DATABASE_URL", &url)])
        .code(1);
    assert!(
        r.stdout.contains("drop column public.chunks.stray"),
        "{}",
        r.all()
    );
}

#[test]
fn the_reset_recipe_is_not_drift_and_the_json_never_contradicts_itself() {
    let s = Scenario::with_example();
    let schema = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema.sql"),
    )
    .unwrap();
    s.write("schema.sql", &schema);
    s.run("migrate-up", &[]).ok();
    // the documented reset, then the migrations again
    s.db.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;");
    s.run("migrate-up", &[]).ok();
    let r = s.run("migrate-check", &["--format", "json"]).ok();
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc["ok"], true, "{}", r.stdout);
    assert_eq!(doc["problems"].as_array().unwrap().len(), 0, "{}", r.stdout);
    assert!(
        !r.stdout.contains("comment on schema public"),
        "{}",
        r.stdout
    );

    // Real drift: ok is false, and drift_check says what differs instead of "matches".
    s.db.execute("CREATE TABLE stray (id int)");
    let r = s.run("migrate-check", &["--format", "json"]).code(1);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["problems"][0]["code"], "database_drift", "{}", r.stdout);
    assert_eq!(
        doc["drift_check"],
        "schema.sql matches the migrations; the database differs from its applied revisions",
        "{}",
        r.stdout
    );
}

#[test]
fn the_project_file_keeps_the_vector_stores_out_for_everyone() {
    let s = with_vector_stores();
    // kept in the repository beside migrations/, so every developer and CI job has it
    s.write(
        "retort.toml",
        "[filters]\nexclude = [\"langchain_*\", \"public.data_*\"]\n",
    );
    let r = s.run("migrate-check", &[]).ok();
    assert!(
        r.stdout.contains("public.langchain_pg_embedding") && r.stdout.contains("matches"),
        "{}",
        r.all()
    );
    // flags add to the file: leaving chunks out too leaves nothing to compare but the file's
    s.db.execute("ALTER TABLE chunks ADD COLUMN stray int");
    let r = s.run("migrate-check", &[]).code(1);
    assert!(
        r.stdout.contains("drop column public.chunks.stray"),
        "{}",
        r.all()
    );
    s.run("migrate-check", &["--exclude", "chunks"]).ok();
    // a mistake in the file is an error with its line, and nothing is checked
    s.write("retort.toml", "[filters]\nexclude = \"langchain_*\"\n");
    let r = s.run("migrate-check", &[]).code(2);
    assert!(
        r.stderr.contains("retort.toml:2: `exclude` must be a list"),
        "{}",
        r.stderr
    );
}
