//! Helpers shared by the autogenerate tests (the autogen_* modules): a base revision, a
//! schema.sql, `migrate-revision --autogenerate`, and the generated files' sections.

use crate::common::{Run, Scenario};

/// A scenario whose single revision 001 runs `up`.
pub fn with_base(up: &str) -> Scenario {
    let s = Scenario::new();
    s.revision("001", "", up, "SELECT 1;");
    s
}

/// Writes schema.sql and runs `migrate-revision --autogenerate -m auto` with `args`.
pub fn autogen(s: &Scenario, schema: &str, args: &[&str]) -> Run {
    s.write("schema.sql", schema);
    let mut all = vec!["--autogenerate", "-m", "auto"];
    all.extend_from_slice(args);
    s.run("migrate-revision", &all)
}

/// The files in migrations/ other than the hand-written ones (`*_x.sql` and the example's),
/// sorted, as (file name, text).
pub fn generated(s: &Scenario) -> Vec<(String, String)> {
    let example: Vec<String> =
        std::fs::read_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
    let mut v: Vec<(String, String)> = std::fs::read_dir(s.migrations())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            !name.ends_with("_x.sql") && !example.contains(&name)
        })
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

/// Generates (the run must succeed) and returns the single new file's (up, down) sections.
#[track_caller]
pub fn generate_one(s: &Scenario, schema: &str, args: &[&str]) -> (String, String) {
    autogen(s, schema, args).ok();
    let files = generated(s);
    assert_eq!(files.len(), 1, "expected one new revision, got {files:?}");
    sections(&files[0].1)
}

/// The up and down sections of a script's text.
pub fn sections(text: &str) -> (String, String) {
    let up_at = text.find("-- migrate:up\n").expect("up marker") + "-- migrate:up\n".len();
    let down_at = text.find("-- migrate:down\n").expect("down marker");
    (
        text[up_at..down_at].to_string(),
        text[down_at + "-- migrate:down\n".len()..].to_string(),
    )
}

/// The statements of a section without comments, one per entry, whitespace collapsed.
pub fn statements(section: &str) -> Vec<String> {
    section
        .split(";\n")
        .map(|st| {
            st.lines()
                .filter(|l| !l.trim_start().starts_with("--"))
                .collect::<Vec<_>>()
                .join(" ")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|st| !st.is_empty())
        .collect()
}

/// Asserts that `section` has a statement equal to `stmt` (whitespace collapsed).
#[track_caller]
pub fn has(section: &str, stmt: &str) {
    let want = stmt.split_whitespace().collect::<Vec<_>>().join(" ");
    let got = statements(section);
    assert!(got.contains(&want), "no statement\n  {want}\nin\n{section}");
}

/// The hazard comment lines right before the statement `stmt`.
#[track_caller]
pub fn hazards_before(section: &str, stmt: &str) -> Vec<String> {
    let pos = section
        .find(stmt)
        .unwrap_or_else(|| panic!("no {stmt} in\n{section}"));
    section[..pos]
        .lines()
        .rev()
        .take_while(|l| l.starts_with("-- hazard:"))
        .map(str::to_string)
        .collect()
}

/// Applies everything (migrate-up) and checks that migrate-check reports no drift at all:
/// the generated revisions really turn the migrations into schema.sql. Then the way down:
/// the generated revisions are reverted on the real database, which must then be exactly what
/// its remaining revisions produce (only `pending` is reported), and applied again.
#[track_caller]
pub fn converges(s: &Scenario) {
    converges_with(s, &[]);
}

/// [`converges`], with `up_args` for both upgrades (`--allow-unsafe` where the generated
/// script takes a lock the lint gate refuses; the caller says why).
pub fn converges_with(s: &Scenario, up_args: &[&str]) {
    s.run("migrate-up", up_args).ok();
    let r = s.run("migrate-check", &[]).ok();
    assert!(
        r.stdout.contains("matches the migrations and the database"),
        "{}",
        r.all()
    );
    let n = generated(s).len();
    if n == 0 {
        return;
    }
    s.run("migrate-down", &[&format!("-{n}")]).ok();
    let r = s.run("migrate-check", &["--format", "json"]).code(1);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let codes: Vec<&str> = doc["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["pending"], "after migrate-down -{n}: {}", r.stdout);
    s.run("migrate-up", up_args).ok();
    s.run("migrate-check", &[]).ok();
}

/// pgvector's version on the test server, as (major, minor).
pub fn pgvector_version(s: &Scenario) -> (u32, u32) {
    let v = s
        .db
        .strings("SELECT default_version::text FROM pg_available_extensions WHERE name = 'vector'");
    let v = v.first().expect("pgvector is installed on the test server");
    let mut parts = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}
