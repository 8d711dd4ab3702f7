//! Each rule: a script that triggers it, and the safe version of the same change that does not.
//! Offline (no database); the database-backed figures are in the scenarios (bins/tests).

use super::*;
use crate::script::parse_script;
use std::path::Path;

fn script(rev: &str, header: &str, up: &str, down: Option<&str>) -> Script {
    let mut t = format!("-- revision: {rev}\n{header}\n-- migrate:up\n{up}\n");
    if let Some(d) = down {
        t.push_str(&format!("-- migrate:down\n{d}\n"));
    }
    parse_script(Path::new(&format!("migrations/{rev}.sql")), t.as_bytes()).unwrap()
}

/// Lints `up` as revision 002 after a revision 001 that created `base` (no database).
fn lint_after(base: &str, header: &str, up: &str) -> Vec<Finding> {
    let cfg = LintConfig::default();
    let mut model = Model::default();
    let first = script("001", "", base, Some("SELECT 1;"));
    lint_script(&first, &mut model, None, &cfg, false);
    let s = script("002", header, up, Some("SELECT 1;"));
    lint_script(&s, &mut model, None, &cfg, true).0
}

fn rules(f: &[Finding]) -> Vec<&str> {
    f.iter().map(|f| f.rule.as_str()).collect()
}

const CHUNKS: &str =
    "CREATE TABLE chunks (id bigint PRIMARY KEY, embedding vector(384), small halfvec(384));";

#[test]
fn vector_index_without_concurrently_on_an_existing_table() {
    let f = lint_after(
        CHUNKS,
        "",
        "CREATE INDEX chunks_hnsw ON chunks USING hnsw (embedding vector_cosine_ops);",
    );
    let hit = f
        .iter()
        .find(|f| f.rule == "vector-index-not-concurrent")
        .expect("finding");
    assert_eq!(hit.level, Level::Error);
    assert_eq!((hit.line, hit.col), (4, 1));
    assert!(
        hit.message.contains("without a database"),
        "{}",
        hit.message
    );
    let safe = lint_after(
        CHUNKS,
        "-- transactional: false",
        "CREATE INDEX CONCURRENTLY chunks_hnsw ON chunks USING hnsw (embedding vector_cosine_ops);",
    );
    assert!(
        !rules(&safe).contains(&"vector-index-not-concurrent"),
        "{safe:?}"
    );
    assert!(
        !rules(&safe).contains(&"concurrently-in-transaction"),
        "{safe:?}"
    );
    // a table created in the same revision is empty: no finding
    let same = lint_after(
        "SELECT 1;",
        "",
        &format!("{CHUNKS}\nCREATE INDEX chunks_hnsw ON chunks USING hnsw (embedding vector_cosine_ops);"),
    );
    assert!(
        !rules(&same).contains(&"vector-index-not-concurrent"),
        "{same:?}"
    );
}

#[test]
fn ivfflat_on_a_table_of_the_same_revision() {
    let f = lint_after(
        "SELECT 1;",
        "",
        &format!("{CHUNKS}\nCREATE INDEX chunks_ivf ON chunks USING ivfflat (embedding vector_l2_ops) WITH (lists = 100);"),
    );
    assert!(rules(&f).contains(&"ivfflat-on-new-table"), "{f:?}");
    let safe = lint_after(
        CHUNKS,
        "-- transactional: false",
        "CREATE INDEX CONCURRENTLY chunks_ivf ON chunks USING ivfflat (embedding vector_l2_ops) WITH (lists = 100);",
    );
    assert!(!rules(&safe).contains(&"ivfflat-on-new-table"), "{safe:?}");
}

#[test]
fn too_many_dimensions_for_an_index() {
    let f = lint_after(
        "CREATE TABLE docs (id bigint PRIMARY KEY, e vector(3072));",
        "-- transactional: false",
        "CREATE INDEX CONCURRENTLY docs_e ON docs USING hnsw (e vector_cosine_ops);",
    );
    let hit = f
        .iter()
        .find(|f| f.rule == "vector-index-too-many-dims")
        .expect("finding");
    assert!(
        hit.message.contains("at most 2,000") && hit.message.contains("3072"),
        "{}",
        hit.message
    );
    assert_eq!(hit.level, Level::Error);
    // the safe version: index a halfvec cast (up to 4,000)
    let safe = lint_after(
        "CREATE TABLE docs (id bigint PRIMARY KEY, e vector(3072));",
        "-- transactional: false",
        "CREATE INDEX CONCURRENTLY docs_e ON docs USING hnsw ((e::halfvec(3072)) halfvec_cosine_ops);",
    );
    assert!(
        !rules(&safe).contains(&"vector-index-too-many-dims"),
        "{safe:?}"
    );
    assert!(
        !rules(&safe).contains(&"vector-opclass-mismatch"),
        "{safe:?}"
    );
    let too_half = lint_after(
        "CREATE TABLE docs (id bigint PRIMARY KEY, e vector(8000));",
        "-- transactional: false",
        "CREATE INDEX CONCURRENTLY docs_e ON docs USING hnsw ((e::halfvec(8000)) halfvec_cosine_ops);",
    );
    assert!(
        rules(&too_half).contains(&"vector-index-too-many-dims"),
        "{too_half:?}"
    );
}

#[test]
fn changing_a_vector_column_type() {
    let f = lint_after(
        &format!("{CHUNKS}\nCREATE INDEX chunks_hnsw ON chunks USING hnsw (embedding vector_cosine_ops);"),
        "",
        "ALTER TABLE chunks ALTER COLUMN embedding TYPE vector(768);",
    );
    let hit = f
        .iter()
        .find(|f| f.rule == "vector-column-type-change")
        .expect("finding");
    assert!(hit.message.contains("chunks_hnsw"), "{}", hit.message);
    assert!(
        hit.message.contains("vector(384) to vector(768)"),
        "{}",
        hit.message
    );
    // the safe version: a new column beside the old one
    let safe = lint_after(
        &format!("{CHUNKS}\nCREATE INDEX chunks_hnsw ON chunks USING hnsw (embedding vector_cosine_ops);"),
        "",
        "ALTER TABLE chunks ADD COLUMN embedding_768 vector(768);",
    );
    assert!(
        !rules(&safe).contains(&"vector-column-type-change"),
        "{safe:?}"
    );
}

#[test]
fn operator_class_for_another_type() {
    let f = lint_after(
        CHUNKS,
        "-- transactional: false",
        "CREATE INDEX CONCURRENTLY chunks_small ON chunks USING hnsw (small vector_cosine_ops);",
    );
    let hit = f
        .iter()
        .find(|f| f.rule == "vector-opclass-mismatch")
        .expect("finding");
    assert!(hit.message.contains("halfvec(384)"), "{}", hit.message);
    let safe = lint_after(
        CHUNKS,
        "-- transactional: false",
        "CREATE INDEX CONCURRENTLY chunks_small ON chunks USING hnsw (small halfvec_cosine_ops);",
    );
    assert!(
        !rules(&safe).contains(&"vector-opclass-mismatch"),
        "{safe:?}"
    );
}

#[test]
fn dropping_a_vector_index_before_building_its_replacement() {
    let base = format!(
        "{CHUNKS}\nCREATE INDEX chunks_hnsw ON chunks USING hnsw (embedding vector_cosine_ops);"
    );
    let f = lint_after(
        &base,
        "-- transactional: false",
        "DROP INDEX CONCURRENTLY chunks_hnsw;\nCREATE INDEX CONCURRENTLY chunks_hnsw2 ON chunks USING hnsw (embedding vector_cosine_ops) WITH (m = 32);",
    );
    let hit = f
        .iter()
        .find(|f| f.rule == "vector-index-drop-before-create")
        .expect("finding");
    assert_eq!(hit.line, 5);
    let safe = lint_after(
        &base,
        "-- transactional: false",
        "CREATE INDEX CONCURRENTLY chunks_hnsw2 ON chunks USING hnsw (embedding vector_cosine_ops) WITH (m = 32);\nDROP INDEX CONCURRENTLY chunks_hnsw;",
    );
    assert!(
        !rules(&safe).contains(&"vector-index-drop-before-create"),
        "{safe:?}"
    );
}

#[test]
fn concurrently_in_a_transactional_script() {
    let f = lint_after(
        CHUNKS,
        "",
        "CREATE INDEX CONCURRENTLY chunks_id ON chunks (id);",
    );
    let hit = f
        .iter()
        .find(|f| f.rule == "concurrently-in-transaction")
        .expect("finding");
    assert_eq!((hit.line, hit.col), (4, 14));
    assert!(
        !rules(&f).contains(&"ban-concurrent-index-creation-in-transaction"),
        "{f:?}"
    );
    let safe = lint_after(
        CHUNKS,
        "-- transactional: false",
        "CREATE INDEX CONCURRENTLY chunks_id ON chunks (id);",
    );
    assert!(
        !rules(&safe).contains(&"concurrently-in-transaction"),
        "{safe:?}"
    );
}

#[test]
fn backfill_in_the_revision_that_alters_the_table() {
    let f = lint_after(
        CHUNKS,
        "",
        "ALTER TABLE chunks ADD COLUMN lang text;\nUPDATE chunks SET lang = 'en';",
    );
    let hit = f
        .iter()
        .find(|f| f.rule == "backfill-with-ddl")
        .expect("finding");
    assert_eq!(hit.line, 5);
    // the backfill in its own revision is the safe version
    let safe = lint_after(
        CHUNKS,
        "",
        "UPDATE chunks SET lang = 'en' WHERE id BETWEEN 1 AND 1000;",
    );
    assert!(!rules(&safe).contains(&"backfill-with-ddl"), "{safe:?}");
    let bounded = lint_after(
        CHUNKS,
        "",
        "ALTER TABLE chunks ADD COLUMN lang text;\nUPDATE chunks SET lang = 'en' WHERE id = 1;",
    );
    assert!(
        !rules(&bounded).contains(&"backfill-with-ddl"),
        "{bounded:?}"
    );
}

#[test]
fn a_script_without_a_down_section() {
    let cfg = LintConfig::default();
    let s = script("001", "", "CREATE TABLE t (id bigint PRIMARY KEY);", None);
    let (f, _) = lint_script(&s, &mut Model::default(), None, &cfg, true);
    assert!(rules(&f).contains(&"missing-down"), "{f:?}");
    let s = script(
        "001",
        "",
        "CREATE TABLE t (id bigint PRIMARY KEY);",
        Some("DROP TABLE t;"),
    );
    let (f, _) = lint_script(&s, &mut Model::default(), None, &cfg, true);
    assert!(!rules(&f).contains(&"missing-down"), "{f:?}");
}

#[test]
fn a_syntax_error_is_a_finding_with_its_position() {
    let f = lint_after(
        "SELECT 1;",
        "",
        "CREATE TABLE t (id bigint PRIMARY KEY);\nCREATE TABL oops (x int);",
    );
    let hit = f
        .iter()
        .find(|f| f.rule == "syntax-error")
        .expect("finding");
    assert_eq!(hit.level, Level::Error);
    assert_eq!(hit.line, 5, "{hit:?}");
}

#[test]
fn squawk_rules_run_with_their_ids() {
    let f = lint_after(
        CHUNKS,
        "",
        "ALTER TABLE chunks ADD COLUMN n bigint NOT NULL;",
    );
    assert!(rules(&f).contains(&"adding-required-field"), "{f:?}");
    let safe = lint_after(CHUNKS, "", "ALTER TABLE chunks ADD COLUMN n bigint;");
    assert!(!rules(&safe).contains(&"adding-required-field"), "{safe:?}");
}

#[test]
fn allow_comments_need_a_reason_and_reach_one_statement() {
    let up = "-- retort:allow backfill-with-ddl the table has 12 rows\nALTER TABLE chunks ADD COLUMN lang text;\nUPDATE chunks SET lang = 'en';";
    let f = lint_after(CHUNKS, "", up);
    assert!(
        rules(&f).contains(&"backfill-with-ddl"),
        "the allow is above another statement: {f:?}"
    );
    let up = "ALTER TABLE chunks ADD COLUMN lang text;\n-- retort:allow backfill-with-ddl the table has 12 rows\nUPDATE chunks SET lang = 'en';";
    let f = lint_after(CHUNKS, "", up);
    assert!(!rules(&f).contains(&"backfill-with-ddl"), "{f:?}");
    let up = "ALTER TABLE chunks ADD COLUMN lang text;\n-- retort:allow backfill-with-ddl\nUPDATE chunks SET lang = 'en';";
    let f = lint_after(CHUNKS, "", up);
    assert!(rules(&f).contains(&"backfill-with-ddl"), "{f:?}");
    let bad = f
        .iter()
        .find(|f| f.rule == "allow-syntax")
        .expect("finding");
    assert_eq!(bad.line, 5);
}

#[test]
fn levels_from_the_config_apply() {
    let cfg = LintConfig::from_toml(
        "[lint]\nbackfill-with-ddl = \"off\"\nmissing-down = \"error\"\n",
        Path::new("retort.toml"),
    )
    .unwrap();
    let s = script(
        "001",
        "",
        &format!(
            "{CHUNKS}\nALTER TABLE chunks ADD COLUMN lang text;\nUPDATE chunks SET lang = 'en';"
        ),
        None,
    );
    let (f, _) = lint_script(&s, &mut Model::default(), None, &cfg, true);
    assert!(!rules(&f).contains(&"backfill-with-ddl"), "{f:?}");
    assert_eq!(
        f.iter().find(|f| f.rule == "missing-down").unwrap().level,
        Level::Error
    );
}

#[test]
fn squawk_says_nothing_more_where_the_vector_rule_speaks() {
    let f = lint_after(
        CHUNKS,
        "",
        "CREATE INDEX chunks_hnsw ON chunks USING hnsw (embedding vector_cosine_ops);",
    );
    assert!(
        !rules(&f).contains(&"require-concurrent-index-creation"),
        "{f:?}"
    );
    // on a plain btree index, squawk's rule stays
    let f = lint_after(CHUNKS, "", "CREATE INDEX chunks_id ON chunks (id);");
    assert!(
        rules(&f).contains(&"require-concurrent-index-creation"),
        "{f:?}"
    );
}

#[test]
fn an_allow_above_a_squawk_finding_silences_it() {
    let f = lint_after(CHUNKS, "", "-- retort:allow adding-required-field the table is empty everywhere\nALTER TABLE chunks ADD COLUMN n bigint NOT NULL;");
    assert!(!rules(&f).contains(&"adding-required-field"), "{f:?}");
}
