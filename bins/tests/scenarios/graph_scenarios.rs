//! Scenarios: branches, merges, dependencies and targets, with the version table checked after
//! every step (the semantics doc's graph: 1a2b -> 2b3c -> {3c4d, 4d5e} -> 5e6f).
use crate::common::*;

const A: &str = "1a2b3c4d5e6f";
const B: &str = "2b3c4d5e6f70";
const C: &str = "3c4d5e6f7081";
const D: &str = "4d5e6f708192";
const E: &str = "5e6f708192a3";

fn branchy() -> Scenario {
    let s = Scenario::new();
    s.revision(
        A,
        "",
        "CREATE TABLE users (id int PRIMARY KEY);",
        "DROP TABLE users;",
    );
    s.revision(
        B,
        A,
        "ALTER TABLE users ADD COLUMN email varchar(100);",
        "ALTER TABLE users DROP COLUMN email;",
    );
    s.revision(C, B, "CREATE TABLE orders (id int);", "DROP TABLE orders;");
    s.revision(D, B, "CREATE TABLE posts (id int);", "DROP TABLE posts;");
    s.revision(
        E,
        &format!("{C}, {D}"),
        "CREATE TABLE merged (id int);",
        "DROP TABLE merged;",
    );
    s
}

fn rows(s: &Scenario) -> Vec<String> {
    s.db.version_rows()
}

#[test]
fn branch_and_merge_step_by_step_with_unmerge() {
    let s = branchy();
    s.run("migrate-up", &["+1"]).ok();
    assert_eq!(rows(&s), vec![A]);
    s.run("migrate-up", &["+1"]).ok();
    assert_eq!(rows(&s), vec![B]);
    // +1 from a branch point is an ambiguous walk
    let r = s.run("migrate-up", &["+1"]).code(2);
    assert!(r.stderr.contains("ambiguous"), "{}", r.stderr);
    assert_eq!(rows(&s), vec![B]);
    s.run("migrate-up", &["3c4d"]).ok();
    assert_eq!(rows(&s), vec![C]);
    // opening the second branch INSERTs a row
    s.run("migrate-up", &[D]).ok();
    assert_eq!(rows(&s), vec![C, D]);
    // several current heads: +1 is ambiguous
    s.run("migrate-up", &["+1"]).code(2);
    // the merge collapses both rows into one
    s.run("migrate-up", &["heads"]).ok();
    assert_eq!(rows(&s), vec![E]);
    assert!(s.db.table_exists("merged"));
    // unmerge: downgrading to one parent brings both parent rows back
    s.run("migrate-down", &[C]).ok();
    assert_eq!(rows(&s), vec![C, D]);
    assert!(!s.db.table_exists("merged"));
    // downgrading one branch to the branch point leaves the other branch's row
    s.run("migrate-down", &[B]).ok();
    assert_eq!(rows(&s), vec![B], "both branches above {B} are reverted");
    assert!(!s.db.table_exists("orders") && !s.db.table_exists("posts"));
    s.run("migrate-down", &["base", "--yes"]).ok();
    assert_eq!(rows(&s), Vec::<String>::new());
}

#[test]
fn offline_sql_for_the_branchy_graph_matches_alembic() {
    let s = branchy();
    let r = s.run_env("migrate-up", &["heads", "--sql"], &[]).ok();
    let expected_tail = format!(
        "-- Running upgrade {C}, {D} -> {E}, rev {E}\n\nCREATE TABLE merged (id int);\n\nDELETE FROM alembic_version WHERE alembic_version.version_num = '{C}';\n\nUPDATE alembic_version SET version_num='{E}' WHERE alembic_version.version_num = '{D}';\n\nCOMMIT;\n"
    );
    assert!(r.stdout.starts_with("BEGIN;\n\nCREATE TABLE alembic_version (\n    version_num VARCHAR(32) NOT NULL,\n    CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)\n);\n\n-- Running upgrade  -> 1a2b3c4d5e6f, rev 1a2b3c4d5e6f\n\nCREATE TABLE users"), "{}", r.stdout);
    assert!(r.stdout.ends_with(&expected_tail), "{}", r.stdout);
    // Alembic's order (`alembic upgrade heads --sql` on these ids): D's branch first, then C's
    assert!(
        r.stdout.contains(&format!(
            "UPDATE alembic_version SET version_num='{D}' WHERE alembic_version.version_num = '{B}';"
        )),
        "first branch updates the row: {}",
        r.stdout
    );
    assert!(
        r.stdout.contains(&format!(
            "INSERT INTO alembic_version (version_num) VALUES ('{C}');"
        )),
        "second branch opens with an INSERT: {}",
        r.stdout
    );
    // the offline script really works: run it with psql semantics through one connection
    s.db.execute(&r.stdout);
    assert_eq!(rows(&s), vec![E]);
    // a range that does not start from base does not create the table
    let r = s
        .run_env("migrate-up", &["--sql", &format!("{B}:{C}")], &[])
        .ok();
    assert!(
        !r.stdout.contains("CREATE TABLE alembic_version"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains(&format!(
        "UPDATE alembic_version SET version_num='{C}' WHERE alembic_version.version_num = '{B}';"
    )));
    // offline downgrade needs a range
    let r = s.run_env("migrate-down", &["--sql", "base"], &[]).code(2);
    assert!(r.stderr.contains("range"), "{}", r.stderr);
    let r = s
        .run_env("migrate-down", &["--sql", &format!("{E}:{B}")], &[])
        .ok();
    assert!(
        r.stdout
            .contains(&format!("-- Running downgrade {E} -> {C}, {D}")),
        "{}",
        r.stdout
    );
}

#[test]
fn depends_on_pulls_the_dependency_in_and_takes_dependents_down() {
    let s = Scenario::new();
    s.revision("base1", "", "CREATE TABLE a (id int);", "DROP TABLE a;");
    s.revision_with(
        "other1",
        "",
        "-- branch_labels: other",
        "CREATE TABLE o (id int);",
        "DROP TABLE o;",
    );
    s.revision_with(
        "base2",
        "base1",
        "-- depends_on: other1",
        "CREATE TABLE b (id int, o int);",
        "DROP TABLE b;",
    );
    s.run("migrate-up", &["base2"]).ok();
    assert!(s.db.table_exists("o"), "the dependency was applied first");
    assert!(s.db.table_exists("b"));
    assert_eq!(
        rows(&s),
        vec!["base2"],
        "the dependency row merges into its dependent, as in Alembic"
    );
    // downgrading the dependency also downgrades what depends on it
    s.run("migrate-down", &["base1"]).ok();
    assert!(!s.db.table_exists("b"));
    assert!(s.db.table_exists("o"));
}

#[test]
fn partial_and_relative_targets_and_their_errors() {
    let s = Scenario::new();
    s.revision(
        "aaaa1111",
        "",
        "CREATE TABLE t1 (id int);",
        "DROP TABLE t1;",
    );
    s.revision(
        "aaaa9999",
        "aaaa1111",
        "CREATE TABLE t2 (id int);",
        "DROP TABLE t2;",
    );
    s.revision(
        "bbbb0000",
        "aaaa9999",
        "CREATE TABLE t3 (id int);",
        "DROP TABLE t3;",
    );
    let r = s.run("migrate-up", &["aaaa"]).code(2);
    assert!(
        r.stderr
            .contains("ambiguous revision 'aaaa': matches aaaa1111, aaaa9999"),
        "{}",
        r.stderr
    );
    let r = s.run("migrate-up", &["zz"]).code(2);
    assert!(
        r.stderr.contains("no revision starts with 'zz'"),
        "{}",
        r.stderr
    );
    assert_eq!(s.db.tables(), Vec::<String>::new(), "errors change nothing");
    s.run("migrate-up", &["aaaa9"]).ok();
    assert_eq!(rows(&s), vec!["aaaa9999"]);
    s.run("migrate-down", &["-1"]).ok();
    assert_eq!(rows(&s), vec!["aaaa1111"]);
    s.run("migrate-up", &["+2"]).ok();
    assert_eq!(rows(&s), vec!["bbbb0000"]);
    let r = s.run("migrate-down", &["-5"]).code(2);
    assert_eq!(rows(&s), vec!["bbbb0000"], "{}", r.stderr);
    s.run("migrate-down", &["head-2"]).ok();
    assert_eq!(rows(&s), vec!["aaaa1111"]);
    s.run("migrate-up", &["base+2"]).ok();
    assert_eq!(rows(&s), vec!["aaaa9999"]);
    s.run("migrate-up", &["aaaa9999+1"]).ok();
    assert_eq!(rows(&s), vec!["bbbb0000"]);
}

#[test]
fn head_with_several_heads_gives_alembics_message() {
    let s = branchy();
    std::fs::remove_file(s.migrations().join(format!("{E}_x.sql"))).unwrap();
    let r = s.run("migrate-up", &["head"]).code(2);
    assert!(r.stderr.contains("Multiple head revisions are present for given argument 'head'; please specify a specific target revision, '<branchname>@head' to narrow to a specific head, or 'heads' for all heads"), "{}", r.stderr);
    s.run("migrate-up", &["heads"]).ok();
    assert_eq!(rows(&s), vec![C, D]);
    let r = s.run("migrate-current", &[]).ok();
    assert_eq!(r.stdout, format!("{C} (head)\n{D} (head)\n"));
    s.run("migrate-current", &["--check-heads"]).ok();
}

#[test]
fn branch_labels_select_a_branch() {
    let s = Scenario::new();
    s.revision_with(
        "m1",
        "",
        "-- branch_labels: main",
        "CREATE TABLE m1 (id int);",
        "DROP TABLE m1;",
    );
    s.revision("m2", "m1", "CREATE TABLE m2 (id int);", "DROP TABLE m2;");
    s.revision_with(
        "f1",
        "",
        "-- branch_labels: feature",
        "CREATE TABLE f1 (id int);",
        "DROP TABLE f1;",
    );
    s.revision("f2", "f1", "CREATE TABLE f2 (id int);", "DROP TABLE f2;");
    s.run("migrate-up", &["feature@head"]).ok();
    assert_eq!(rows(&s), vec!["f2"]);
    s.run("migrate-up", &["main@+1"]).ok();
    assert_eq!(rows(&s), vec!["f2", "m1"]);
    s.run("migrate-down", &["feature@base"]).ok();
    assert_eq!(rows(&s), vec!["m1"]);
    assert!(!s.db.table_exists("f1"));
}

#[test]
fn history_ranges_relative_to_the_database_read_it() {
    let s = Scenario::new();
    s.revision_with(
        "r1",
        "",
        "-- branch_labels: main\n",
        "SELECT 1;",
        "SELECT 1;",
    );
    s.revision("r2", "r1", "SELECT 1;", "SELECT 1;");
    s.revision("r3", "r2", "SELECT 1;", "SELECT 1;");
    s.revision("r4", "r3", "SELECT 1;", "SELECT 1;");
    s.run("migrate-up", &["r3"]).ok();
    let ids = |args: &[&str]| -> Vec<String> {
        let r = s.run("migrate-history", args).ok();
        r.stdout
            .lines()
            .map(|l| {
                let after = l.split(" -> ").nth(1).unwrap_or(l);
                after.split([' ', ',']).next().unwrap().to_string()
            })
            .collect()
    };
    assert_eq!(ids(&["-r", ":+1"]), ["r4", "r3", "r2", "r1"]);
    assert_eq!(ids(&["-r", "r2:-1"]), ["r2"]);
    assert_eq!(ids(&["-r", "main@-1:"]), ["r4", "r3", "r2"]);
    assert_eq!(ids(&["-r", "current-1:current"]), ["r3", "r2"]);
    assert_eq!(ids(&["-r", "r3:"]), ["r4", "r3"]);
    // no database needed for a range that is not relative to it
    let r = s.run_env("migrate-history", &["-r", "r3:head"], &[]).ok();
    assert_eq!(r.stdout.lines().count(), 2, "{}", r.stdout);
    s.run_env("migrate-history", &["-r", ":+1"], &[]).code(2);
}

#[test]
fn check_heads_counts_a_head_applied_through_depends_on() {
    let s = Scenario::new();
    s.revision("a", "", "SELECT 1;", "SELECT 1;");
    s.revision_with(
        "b",
        "a",
        "-- branch_labels: feat\n",
        "SELECT 1;",
        "SELECT 1;",
    );
    s.revision("c", "a", "SELECT 1;", "SELECT 1;");
    s.revision_with("d", "c", "-- depends_on: b\n", "SELECT 1;", "SELECT 1;");
    s.run("migrate-up", &["c"]).ok();
    s.run("migrate-current", &["--check-heads"]).code(1);
    let r = s.run("migrate-current", &["--format", "json"]).ok();
    assert!(r.stdout.contains("\"at_heads\": false"), "{}", r.stdout);
    s.run("migrate-up", &["heads"]).ok();
    assert_eq!(s.db.version_rows(), vec!["d"]);
    let r = s.run("migrate-current", &["--check-heads"]).ok();
    assert_eq!(r.stdout, "b (effective head)\nd (head)\n");
    let r = s.run("migrate-current", &["--format", "json"]).ok();
    assert!(r.stdout.contains("\"at_heads\": true"), "{}", r.stdout);
}
