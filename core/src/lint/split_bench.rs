//! Can squawk's parser replace retort's statement splitter ([`crate::sql::split`])? Measured,
//! not assumed: `cargo test -p retort --release --lib lint::split_bench -- --ignored --nocapture`
//! (run by `scripts/bench.sh`). It compares, on the inputs the splitter must get right, the
//! statements squawk's tree holds with the splitter's, and times both on 1,000 scripts.

use crate::sql::split;
use squawk_syntax::ast::AstNode;
use squawk_syntax::SourceFile;
use std::time::Instant;

/// Statement texts as squawk's tree delimits them (first token to last, without `;`).
fn squawk_split(sql: &str) -> Vec<String> {
    let parse = SourceFile::parse(sql);
    parse
        .tree()
        .stmts()
        .map(|s| {
            let start = super::first_token(s.syntax());
            let end = usize::from(s.syntax().text_range().end());
            sql[start..end]
                .trim_end()
                .trim_end_matches(';')
                .trim_end()
                .to_string()
        })
        .collect()
}

fn retort_split(sql: &str) -> Vec<String> {
    split(sql, 1)
        .iter()
        .map(|s| s.text(sql).to_string())
        .collect()
}

/// What the splitter handles that a script may hold.
const CASES: &[(&str, &str)] = &[
    ("plain", "CREATE TABLE a (x int);\nCREATE INDEX a_x ON a (x);"),
    ("dollar-quoted body", "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$;\nSELECT f();"),
    ("BEGIN ATOMIC body", "CREATE FUNCTION g() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END;\nSELECT g();"),
    ("CREATE RULE with several actions", "CREATE RULE r AS ON INSERT TO a DO ALSO (INSERT INTO b VALUES (1); INSERT INTO b VALUES (2));\nSELECT 1;"),
    ("E'' string with an escaped quote", "INSERT INTO a VALUES (E'it\\'s; fine');\nSELECT 1;"),
    ("quoted identifier with ;", "CREATE TABLE \"a;b\" (x int);\nSELECT 1;"),
    ("syntax squawk may not know", "CREATE TABL oops (x int);\nSELECT 1;"),
    ("psql-style comment between", "SELECT 1; -- one\n/* two; */ SELECT 2;"),
];

#[test]
#[ignore]
fn split_bench() {
    let mut differ = Vec::new();
    for (name, sql) in CASES {
        let (a, b) = (retort_split(sql), squawk_split(sql));
        if a != b {
            differ.push(format!("{name}: splitter {a:?} / squawk {b:?}"));
        }
    }
    let script = "CREATE TABLE bench_1 (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());\nCREATE INDEX bench_1_name_idx ON bench_1 (name);\n";
    let scripts: Vec<String> = (0..1000)
        .map(|i| script.replace("bench_1", &format!("bench_{i}")))
        .collect();
    let t = Instant::now();
    let mut n = 0;
    for s in &scripts {
        n += split(s, 1).len();
    }
    let t_split = t.elapsed();
    let t = Instant::now();
    let mut m = 0;
    for s in &scripts {
        m += SourceFile::parse(s).tree().stmts().count();
    }
    let t_parse = t.elapsed();
    assert_eq!(n, m);
    println!(
        "split 1,000 scripts: splitter {:.2} ms, squawk parse {:.2} ms ({:.0}x)",
        t_split.as_secs_f64() * 1e3,
        t_parse.as_secs_f64() * 1e3,
        t_parse.as_secs_f64() / t_split.as_secs_f64().max(1e-9)
    );
    println!(
        "split cases where squawk's statements differ from the splitter's: {}",
        differ.len()
    );
    for d in differ {
        println!("split   {d}");
    }
}
