//! The catalog digest (`retort::schema::catalog_digest`) against the real test server: the same
//! schema built again (new oids, a dropped column's gap) has the same digest; anything the
//! schema comparison would see — an index left behind, another default, a comment, an enum
//! value — changes it; and the relations left out of the comparison are left out of it. The
//! prepared digest (`Digester`, planned once per connection) agrees with the plain one at
//! every step, DDL between its calls included.
use retort::schema::{catalog_digest, introspect, Digester, IntrospectOptions};

struct Db {
    name: String,
    admin: String,
    url: String,
}

impl Db {
    fn new(tag: &str) -> Db {
        let admin = std::env::var("TEST_DATABASE_URL")
            .expect("run through `make test` (TEST_DATABASE_URL)");
        let name = format!("retort_digest_{tag}_{}", std::process::id());
        let mut c = postgres::Client::connect(&admin, postgres::NoTls).unwrap();
        c.batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
            .unwrap();
        c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        let url = format!("{}/{name}", &admin[..admin.rfind('/').unwrap()]);
        Db { name, admin, url }
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

const SCHEMA: &str = "CREATE TYPE mood AS ENUM ('ok', 'sad');
    CREATE TABLE t (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL DEFAULT 'x', m mood);
    CREATE INDEX t_name ON t (name);
    CREATE VIEW v AS SELECT id, name FROM t;";
const DROP: &str = "DROP VIEW v; DROP TABLE t; DROP TYPE mood;";

/// How many digest statements the connection's session has prepared.
fn prepared_digests(c: &mut postgres::Client) -> String {
    let rows = c
        .simple_query(
            "SELECT count(*) FROM pg_prepared_statements WHERE name = 'retort_catalog_digest'",
        )
        .unwrap();
    match &rows[1] {
        postgres::SimpleQueryMessage::Row(r) => r.get(0).unwrap().to_string(),
        other => panic!("no row: {other:?}"),
    }
}

#[test]
fn equal_digests_are_equal_schemas_and_every_difference_shows() {
    let db = Db::new("eq");
    let mut c = postgres::Client::connect(&db.url, postgres::NoTls).unwrap();
    let opts = IntrospectOptions {
        exclude_relations: vec!["alembic_version".into()],
        ..Default::default()
    };
    let mut digester = Digester::new();
    let mut digest = |c: &mut postgres::Client| {
        let plain = catalog_digest(c, &opts).unwrap();
        let prepared = digester.digest(c, &opts).unwrap();
        assert_eq!(
            prepared, plain,
            "the prepared digest differs from the plain one"
        );
        plain
    };
    let empty = digest(&mut c);
    assert_eq!(empty.len(), 32, "an md5: {empty}");
    // the Digester prepared its query on this connection once
    assert_eq!(prepared_digests(&mut c), "1");

    c.batch_execute(SCHEMA).unwrap();
    let built = digest(&mut c);
    assert_ne!(built, empty);
    let schema = introspect(&mut c, &opts).unwrap();

    // dropped and built again: new oids, the same schema, the same digest
    c.batch_execute(DROP).unwrap();
    assert_eq!(digest(&mut c), empty);
    c.batch_execute(SCHEMA).unwrap();
    assert_eq!(digest(&mut c), built);
    assert_eq!(introspect(&mut c, &opts).unwrap(), schema);

    // a column added and dropped leaves a gap in attnum, not in the schema
    c.batch_execute("ALTER TABLE t ADD COLUMN extra int; ALTER TABLE t DROP COLUMN extra;")
        .unwrap();
    assert_eq!(digest(&mut c), built);

    // the version table is left out, as the comparison leaves it out
    c.batch_execute("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)")
        .unwrap();
    assert_eq!(digest(&mut c), built);

    // what a downgrade may leave behind changes it
    for (change, undo) in [
        ("CREATE INDEX t_extra ON t (id, name)", "DROP INDEX t_extra"),
        (
            "ALTER TABLE t ALTER COLUMN name SET DEFAULT 'y'",
            "ALTER TABLE t ALTER COLUMN name SET DEFAULT 'x'",
        ),
        ("COMMENT ON TABLE t IS 'note'", "COMMENT ON TABLE t IS NULL"),
        (
            "COMMENT ON COLUMN t.name IS 'note'",
            "COMMENT ON COLUMN t.name IS NULL",
        ),
        // the same index name on another definition: ordering, expression, operator class,
        // predicate, INCLUDE, method
        (
            "DROP INDEX t_name; CREATE INDEX t_name ON t (name DESC)",
            "DROP INDEX t_name; CREATE INDEX t_name ON t (name)",
        ),
        (
            "DROP INDEX t_name; CREATE INDEX t_name ON t (lower(name))",
            "DROP INDEX t_name; CREATE INDEX t_name ON t (name)",
        ),
        (
            "DROP INDEX t_name; CREATE INDEX t_name ON t (name text_pattern_ops)",
            "DROP INDEX t_name; CREATE INDEX t_name ON t (name)",
        ),
        (
            "DROP INDEX t_name; CREATE INDEX t_name ON t (name) WHERE id > 0",
            "DROP INDEX t_name; CREATE INDEX t_name ON t (name)",
        ),
        (
            "DROP INDEX t_name; CREATE INDEX t_name ON t (name) INCLUDE (id)",
            "DROP INDEX t_name; CREATE INDEX t_name ON t (name)",
        ),
        (
            "DROP INDEX t_name; CREATE INDEX t_name ON t USING hash (name)",
            "DROP INDEX t_name; CREATE INDEX t_name ON t (name)",
        ),
        (
            "ALTER TABLE t ADD CONSTRAINT t_name_check CHECK (name <> '')",
            "ALTER TABLE t DROP CONSTRAINT t_name_check",
        ),
        (
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
            "DROP FUNCTION f()",
        ),
        ("CREATE SEQUENCE s", "DROP SEQUENCE s"),
        ("CREATE SCHEMA other", "DROP SCHEMA other"),
    ] {
        c.batch_execute(change).unwrap();
        assert_ne!(digest(&mut c), built, "{change}");
        c.batch_execute(undo).unwrap();
        assert_eq!(digest(&mut c), built, "{undo}");
    }
    // an enum value cannot be dropped: the digest tells the two enums apart
    c.batch_execute("ALTER TYPE mood ADD VALUE 'glad'").unwrap();
    assert_ne!(digest(&mut c), built);
}

/// Behind a pooler in transaction mode a digester's next transaction may run on a server
/// session without its statement, or with one made by an earlier session: it then computes the
/// digest without preparing, and the digest is the same.
#[test]
fn a_session_without_the_prepared_digest_or_with_another_gets_the_plain_digest() {
    let db = Db::new("pool");
    let mut c = postgres::Client::connect(&db.url, postgres::NoTls).unwrap();
    let opts = IntrospectOptions::default();
    c.batch_execute(SCHEMA).unwrap();
    let plain = catalog_digest(&mut c, &opts).unwrap();

    // the statement vanished between two calls (another server session)
    let mut digester = Digester::new();
    assert_eq!(digester.digest(&mut c, &opts).unwrap(), plain);
    c.batch_execute("DEALLOCATE retort_catalog_digest").unwrap();
    assert_eq!(digester.digest(&mut c, &opts).unwrap(), plain);
    assert_eq!(digester.digest(&mut c, &opts).unwrap(), plain);
    assert_eq!(
        prepared_digests(&mut c),
        "0",
        "the digester stopped preparing"
    );

    // a session that has a statement of that name already (made by another digester)
    c.batch_execute("PREPARE retort_catalog_digest AS SELECT 'not a digest'")
        .unwrap();
    let mut digester = Digester::new();
    assert_eq!(digester.digest(&mut c, &opts).unwrap(), plain);
    assert_eq!(digester.digest(&mut c, &opts).unwrap(), plain);
    // the session is usable: no transaction left open
    c.batch_execute("CREATE TABLE after_the_digests (id int)")
        .unwrap();
    assert_ne!(catalog_digest(&mut c, &opts).unwrap(), plain);
}
