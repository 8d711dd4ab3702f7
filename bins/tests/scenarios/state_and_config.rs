//! Scenarios: version-table state (unknown revisions, an Alembic-migrated database),
//! configuration precedence, URL forms, and secrets.
use crate::common::*;

#[test]
fn unknown_revision_in_the_table_blocks_every_command_until_purged() {
    let s = Scenario::with_example();
    s.run("migrate-up", &["002"]).ok();
    s.db.execute("UPDATE alembic_version SET version_num = 'deadbeef0000'");
    for (bin, args) in [
        ("migrate-up", vec![]),
        ("migrate-down", vec![]),
        ("migrate-current", vec![]),
        ("migrate-stamp", vec!["head"]),
    ] {
        let r = s.run(bin, &args).code(7);
        assert!(
            r.stderr
                .contains("Can't locate revision identified by 'deadbeef0000'"),
            "{bin}: {}",
            r.stderr
        );
        assert!(
            r.stderr.contains("migrate-stamp --purge"),
            "{bin}: {}",
            r.stderr
        );
    }
    let r = s.run("migrate-check", &[]).code(1);
    assert!(r.stdout.contains("unknown_revision"), "{}", r.stdout);
    assert_eq!(s.db.version_rows(), vec!["deadbeef0000"], "nothing changed");
    s.run("migrate-stamp", &["002", "--purge"]).ok();
    assert_eq!(s.db.version_rows(), vec!["002"]);
    s.run("migrate-up", &[]).ok();
    assert_eq!(s.db.version_rows(), vec!["004"]);
}

#[test]
fn a_database_alembic_migrated_is_taken_over() {
    let s = Scenario::with_example();
    // What Alembic leaves behind after `alembic upgrade 002` with the same revision ids.
    s.db.execute(
        "CREATE EXTENSION IF NOT EXISTS vector;
         CREATE TABLE documents (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, source_uri text NOT NULL UNIQUE, title text, metadata jsonb NOT NULL DEFAULT '{}'::jsonb, created_at timestamptz NOT NULL DEFAULT now());
         CREATE TABLE chunks (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, document_id bigint NOT NULL REFERENCES documents (id), chunk_index integer NOT NULL, content text NOT NULL, embedding vector(384), created_at timestamptz NOT NULL DEFAULT now());
         CREATE TABLE server_settings (key text PRIMARY KEY, value jsonb NOT NULL, updated_at timestamptz NOT NULL DEFAULT now());
         CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num));
         INSERT INTO alembic_version VALUES ('002');",
    );
    let r = s.run("migrate-current", &[]).ok();
    assert_eq!(r.stdout.trim(), "002");
    s.run("migrate-up", &[]).ok();
    assert_eq!(s.db.version_rows(), vec!["004"]);
    assert!(s.db.table_exists("api_keys"));
    // the table keeps Alembic's exact shape, so Alembic can take it back
    let cols = s.db.strings("SELECT column_name || ' ' || data_type || '(' || character_maximum_length || ')' FROM information_schema.columns WHERE table_name = 'alembic_version'");
    assert_eq!(cols, vec!["version_num character varying(32)"]);
}

#[test]
fn stamp_adopts_an_existing_schema_and_offline_stamp_prints_sql() {
    let s = Scenario::with_example();
    s.run("migrate-stamp", &["003"]).ok();
    assert_eq!(s.db.version_rows(), vec!["003"]);
    assert!(!s.db.table_exists("documents"), "stamp runs no script");
    s.run("migrate-stamp", &["base"]).ok();
    assert_eq!(s.db.version_rows(), Vec::<String>::new());
    let r = s.run_env("migrate-stamp", &["head", "--sql"], &[]).ok();
    assert!(
        r.stdout
            .contains("INSERT INTO alembic_version (version_num) VALUES ('004');"),
        "{}",
        r.stdout
    );
}

#[test]
fn configuration_flags_beat_environment_beat_dotenv() {
    let s = Scenario::with_example();
    let other = TestDb::new();
    // .env points at the scenario database, and names another migrations dir
    s.write(
        ".env",
        &format!("DATABASE_URL={}\nMIGRATIONS_DIR=migrations\n", s.db.url),
    );
    s.run_env("migrate-up", &["001"], &[]).ok();
    assert_eq!(s.db.version_rows(), vec!["001"], ".env is read");
    // the environment wins over .env
    s.run_env("migrate-up", &["002"], &[("DATABASE_URL", &other.url)])
        .ok();
    assert_eq!(other.version_rows(), vec!["002"]);
    assert_eq!(s.db.version_rows(), vec!["001"]);
    // the flag wins over both
    s.run_env(
        "migrate-up",
        &["003", "--database-url", &s.db.url],
        &[("DATABASE_URL", &other.url)],
    )
    .ok();
    assert_eq!(s.db.version_rows(), vec!["003"]);
    // PGVECTOR_DB_URL is used when DATABASE_URL is not set; --env-file replaces ./.env
    s.write("alt.env", &format!("PGVECTOR_DB_URL={}\n", other.url));
    s.run_env("migrate-up", &["--env-file", "alt.env"], &[])
        .ok();
    assert_eq!(other.version_rows(), vec!["004"]);
    let r = s
        .run_env("migrate-up", &["--env-file", "missing.env"], &[])
        .code(2);
    assert!(r.stderr.contains("missing.env"), "{}", r.stderr);
    // --dir beats MIGRATIONS_DIR
    std::fs::create_dir(s.path("empty")).unwrap();
    let r = s.run_env("migrate-history", &["--dir", "empty"], &[]).ok();
    assert_eq!(r.stdout, "");
}

#[test]
fn run_settings_come_from_dotenv_too_and_a_bad_one_is_named() {
    let s = Scenario::new();
    s.revision("001", "", "CREATE TABLE a (id int);", "DROP TABLE a;");
    s.revision("002", "001", "SELECT pg_sleep(3);", "SELECT 1;");
    // MIGRATE_LOCK_MODE in .env: the lease row (its table) instead of the advisory lock
    s.write(
        ".env",
        &format!("DATABASE_URL={}\nMIGRATE_LOCK_MODE=lease\n", s.db.url),
    );
    s.run_env("migrate-up", &["001"], &[]).ok();
    assert!(
        s.db.table_exists("alembic_version_lock"),
        "the lease's table"
    );
    // MIGRATE_STATEMENT_TIMEOUT in .env stops the 3 s step
    s.write(
        ".env",
        &format!(
            "DATABASE_URL={}\nMIGRATE_STATEMENT_TIMEOUT=500ms\n",
            s.db.url
        ),
    );
    let r = s.run_env("migrate-up", &[], &[]).code(4);
    assert!(r.stderr.contains("statement timeout"), "{}", r.stderr);
    assert_eq!(s.db.version_rows(), ["001"]);
    // a bad value is named, with its variable, and nothing runs
    for (var, value, says) in [
        ("MIGRATE_LOCK_MODE", "sesion", "'sesion' is not a lock mode"),
        ("MIGRATE_DDL_LOCK_TIMEOUT", "5parsecs", "is not a duration"),
    ] {
        s.write(
            ".env",
            &format!("DATABASE_URL={}\n{var}={value}\n", s.db.url),
        );
        let r = s.run_env("migrate-up", &[], &[]).code(2);
        assert!(r.stderr.contains(&format!("{var}: ")), "{}", r.stderr);
        assert!(r.stderr.contains(says), "{}", r.stderr);
        assert!(r.stderr.contains("the .env file"), "{}", r.stderr);
        assert_eq!(s.db.version_rows(), ["001"]);
    }
    // the flag beats the variable
    s.write(
        ".env",
        &format!(
            "DATABASE_URL={}\nMIGRATE_STATEMENT_TIMEOUT=500ms\n",
            s.db.url
        ),
    );
    s.run_env(
        "migrate-up",
        &["--ddl-lock-timeout", "2s", "--statement-timeout", "0"],
        &[],
    )
    .ok();
    assert_eq!(s.db.version_rows(), ["002"]);
}

#[test]
fn every_url_form_connects() {
    let s = Scenario::with_example();
    let url = s.db.url.clone();
    let rest = url.split_once("://").unwrap().1;
    for (i, scheme) in [
        "postgres",
        "postgresql",
        "postgresql+asyncpg",
        "postgresql+psycopg2",
        "postgresql+psycopg",
    ]
    .iter()
    .enumerate()
    {
        let u = format!("{scheme}://{rest}");
        s.run_env(
            "migrate-up",
            &[&format!("00{}", i.min(3) + 1)],
            &[("DATABASE_URL", &u)],
        )
        .ok();
    }
    assert_eq!(s.db.version_rows(), vec!["004"]);
    // asyncpg's ssl= parameter maps to sslmode (the test server has no TLS: disable connects)
    let u = format!("postgresql+asyncpg://{rest}?ssl=disable");
    s.run_env("migrate-current", &[], &[("DATABASE_URL", &u)])
        .ok();
    let u = format!("postgresql+asyncpg://{rest}?ssl=require");
    let r = s
        .run_env("migrate-current", &[], &[("DATABASE_URL", &u)])
        .code(3);
    assert!(r.stderr.contains("cannot connect"), "{}", r.stderr);
}

fn password_of(url: &str) -> String {
    let auth = url.split_once("://").unwrap().1.split_once('@').unwrap().0;
    auth.split_once(':')
        .map(|(_, p)| p.to_string())
        .unwrap_or_default()
}

#[test]
fn passwords_never_appear_in_output() {
    let s = Scenario::with_example();
    let real = password_of(&s.db.url);
    assert!(
        !real.is_empty(),
        "the test server uses password authentication"
    );
    let wrong =
        s.db.url
            .replacen(&format!(":{real}@"), ":Wr0ngSecret-xyz@", 1);
    for bin in [
        "migrate-up",
        "migrate-current",
        "migrate-check",
        "migrate-stamp",
    ] {
        let args: &[&str] = if bin == "migrate-stamp" {
            &["head"]
        } else {
            &[]
        };
        let r = s.run_env(bin, args, &[("DATABASE_URL", &wrong)]).code(3);
        assert!(
            r.stderr.contains("password authentication failed"),
            "{bin}: {}",
            r.stderr
        );
        assert!(
            !r.all().contains("Wr0ngSecret"),
            "{bin} printed the password: {}",
            r.all()
        );
    }
    // unreachable host: says where and as whom, not the password
    let r = s
        .run_env(
            "migrate-up",
            &["-v"],
            &[(
                "DATABASE_URL",
                "postgresql://app:Hunter2pass@127.0.0.1:1/db",
            )],
        )
        .code(3);
    assert!(
        r.stderr.contains("127.0.0.1:1")
            && r.stderr.contains("'app'")
            && r.stderr.contains("refused"),
        "{}",
        r.stderr
    );
    assert!(!r.all().contains("Hunter2pass"), "{}", r.all());
    // a malformed URL is not echoed with its password either
    let r = s
        .run_env(
            "migrate-up",
            &[],
            &[(
                "DATABASE_URL",
                "postgresql://app:Hunter2pass@host:notaport/db",
            )],
        )
        .code(2);
    assert!(!r.all().contains("Hunter2pass"), "{}", r.all());
    let r = s.run_env("migrate-up", &[], &[]).code(2);
    assert!(r.stderr.contains("DATABASE_URL"), "{}", r.stderr);
}

#[test]
fn missing_database_is_reported_as_such() {
    let s = Scenario::with_example();
    let u = with_db(&s.db.url, "no_such_db_here");
    let r = s
        .run_env("migrate-current", &[], &[("DATABASE_URL", &u)])
        .code(3);
    assert!(
        r.stderr
            .contains("database 'no_such_db_here' does not exist"),
        "{}",
        r.stderr
    );
}

/// The application's `.env`, as a FastAPI app and Docker Compose keep it, is read as
/// python-dotenv reads it: an unquoted value with spaces, `export`, inline comments, quotes,
/// empty values and lines retort has no use for stop no command.
#[test]
fn an_applications_dotenv_works_for_every_binary() {
    let s = Scenario::with_example();
    let app_lines = "# the app's settings\n\
        APP_TITLE=My RAG App\n\
        export OPENAI_MODEL=\"text-embedding-3-small\"\n\
        WORKERS=4  # one per core\n\
        GREETING='hello, world'\n\
        SENTRY_DSN=\n\
        LEGACY_FLAG\n\
        BROKEN=\"never closed\n";
    s.write(
        ".env",
        &format!(
            "{app_lines}export DATABASE_URL='{}'  # the app's database\nMIGRATIONS_DIR=migrations # ours\n",
            s.db.url
        ),
    );
    let none: &[(&str, &str)] = &[];
    s.run_env("migrate-up", &["003"], none).ok();
    assert_eq!(s.db.version_rows(), ["003"], ".env's DATABASE_URL is used");
    for (bin, args) in [
        ("migrate-current", vec![]),
        ("migrate-history", vec![]),
        ("migrate-up", vec![]),
        ("migrate-check", vec![]),
        ("migrate-down", vec!["003"]),
        ("migrate-stamp", vec!["004"]),
        ("migrate-revision", vec!["-m", "add tags"]),
    ] {
        let r = s.run_env(bin, &args, none);
        assert!(
            !r.stderr.contains("env file") && r.code != 2,
            "{bin}: {}",
            r.all()
        );
        r.ok();
    }
    assert_eq!(s.db.version_rows(), ["004"]);
    // migrate-import reads the same file: what it says is about the missing Alembic project
    let r = s.run_env("migrate-import", &[], none);
    assert!(!r.stderr.contains("env file"), "{}", r.all());
    assert!(r.stderr.contains("alembic.ini"), "{}", r.all());

    // a line retort reads that cannot be read: the file, the line and the variable, never
    // the line's text (it holds the password); nothing runs
    s.write(
        ".env",
        &format!(
            "{app_lines}DATABASE_URL='postgresql://app:Sekr1t-pw@db.internal/rag\nMIGRATIONS_DIR=migrations\n"
        ),
    );
    let r = s.run_env("migrate-current", &[], none).code(2);
    assert!(
        r.stderr
            .contains(".env, line 9: DATABASE_URL: the quote that opens the value is not closed"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("Sekr1t-pw"), "{}", r.stderr);
}
