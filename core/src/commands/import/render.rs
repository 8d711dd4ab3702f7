//! The exporter's JSON document read into typed revisions, and each revision rendered as a
//! retort script: pure, no I/O.

use crate::error::{Error, Result};
use crate::script::{file_name_for, render_script, validate_revision_id, NewScript};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Why one direction of a revision could not be rendered as SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// `upgrade` or `downgrade`.
    pub direction: String,
    pub reason: String,
    pub file: Option<String>,
    pub line: Option<u64>,
}

/// One Alembic revision as the exporter reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AlembicRevision {
    pub revision: String,
    pub down_revisions: Vec<String>,
    pub branch_labels: Vec<String>,
    pub depends_on: Vec<String>,
    pub message: String,
    pub create_date: Option<String>,
    /// The revision file, as the exporter displays it.
    pub path: String,
    /// `None`: it could not be rendered (see `problems`).
    pub upgrade_sql: Option<String>,
    /// `None`: it has no downgrade (or it could not be rendered).
    pub downgrade_sql: Option<String>,
    pub transactional: bool,
    pub problems: Vec<Problem>,
    pub warnings: Vec<String>,
    pub upgrade_source: Option<String>,
    pub downgrade_source: Option<String>,
}

impl AlembicRevision {
    pub fn unconverted(&self) -> bool {
        !self.problems.is_empty()
    }

    /// The first problem as one line: `reason (file, line N)`.
    pub fn reason(&self) -> Option<String> {
        self.problems.first().map(|p| {
            let at = match (&p.file, p.line) {
                (Some(f), _) if p.reason.contains("(line ") => format!(" in {f}"),
                (Some(f), Some(l)) => format!(" ({f}, line {l})"),
                (Some(f), None) => format!(" ({f})"),
                _ => String::new(),
            };
            one_line(&format!("{}{at}", p.reason))
        })
    }
}

/// The exporter's whole document (`ok: true`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Export {
    pub python: String,
    pub alembic_version: String,
    pub version_table: String,
    pub version_table_schema: Option<String>,
    pub heads: Vec<String>,
    /// Parents (and dependencies) first.
    pub revisions: Vec<AlembicRevision>,
    pub warnings: Vec<String>,
    /// target_metadata's naming convention (string keys and templates), for program steps.
    pub naming_convention: Value,
}

fn s(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

fn list(v: &Value, key: &str) -> Vec<String> {
    match v.get(key) {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        Some(Value::String(x)) => vec![x.clone()],
        _ => Vec::new(),
    }
}

fn bad_document(what: &str) -> Error {
    Error::io(format!(
        "the Alembic exporter's document is not what this retort reads: {what}"
    ))
    .with_hint("the exporter is embedded in this binary; please report this as a bug")
}

/// Reads the exporter's document of a successful export.
pub fn read_export(doc: &Value) -> Result<Export> {
    let revisions = doc
        .get("revisions")
        .and_then(Value::as_array)
        .ok_or_else(|| bad_document("no 'revisions' list"))?;
    let mut out = Vec::with_capacity(revisions.len());
    for r in revisions {
        let revision = s(r, "revision").ok_or_else(|| bad_document("a revision without an id"))?;
        let problems = r
            .get("problems")
            .and_then(Value::as_array)
            .map(|ps| {
                ps.iter()
                    .map(|p| Problem {
                        direction: s(p, "direction").unwrap_or_default(),
                        reason: s(p, "reason").unwrap_or_default(),
                        file: s(p, "file"),
                        line: p.get("line").and_then(Value::as_u64),
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push(AlembicRevision {
            down_revisions: list(r, "down_revision"),
            branch_labels: list(r, "branch_labels"),
            depends_on: list(r, "depends_on"),
            message: s(r, "message").unwrap_or_default(),
            create_date: s(r, "create_date"),
            path: s(r, "path").unwrap_or_default(),
            upgrade_sql: s(r, "upgrade_sql"),
            downgrade_sql: s(r, "downgrade_sql"),
            transactional: r
                .get("transactional")
                .and_then(Value::as_bool)
                .unwrap_or(true),
            problems,
            warnings: list(r, "warnings"),
            upgrade_source: s(r, "upgrade_source"),
            downgrade_source: s(r, "downgrade_source"),
            revision,
        });
    }
    Ok(Export {
        python: s(doc, "python").unwrap_or_default(),
        alembic_version: s(doc, "alembic_version").unwrap_or_default(),
        version_table: s(doc, "version_table").unwrap_or_else(|| "alembic_version".into()),
        version_table_schema: s(doc, "version_table_schema"),
        heads: list(doc, "heads"),
        revisions: out,
        warnings: list(doc, "warnings"),
        naming_convention: doc.get("naming_convention").cloned().unwrap_or(Value::Null),
    })
}

/// A revision rendered as a retort script, not yet written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub revision: String,
    pub path: PathBuf,
    pub text: String,
    /// The Alembic revision file to keep beside the scripts (its path as the exporter shows
    /// it, and where it goes), when a section is a program step running it.
    pub program: Option<(PathBuf, PathBuf)>,
}

/// How a revision whose body Alembic's offline mode cannot render is imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Unrenderable {
    /// A program step running the revision's own function through Alembic's operations.
    #[default]
    Program,
    /// A section that fails until someone writes its SQL (`--strict`).
    Unconverted,
}

/// The directory, inside the migrations directory, that keeps the Alembic revision files
/// program steps run.
pub const PROGRAM_DIR: &str = "alembic";

/// The command of a program step, before the revision file's path (relative to the
/// migrations directory, the step's working directory).
pub const STEP_COMMAND: &str = "\"${RETORT_PYTHON:-python3}\" -m retort_migrate.alembic_step";

/// The program step's file for the Alembic revision file `source`: `alembic/<its name>`.
pub fn program_path(source: &str) -> String {
    let name = Path::new(source)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| source.to_string());
    format!("{PROGRAM_DIR}/{name}")
}

/// `text` quoted for `sh -c` when it is not a plain word.
fn sh_word(text: &str) -> String {
    if text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+,:@".contains(c))
    {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// The `-- run:` command of a program step running `source`'s function.
pub fn step_command(source: &str) -> String {
    format!("{STEP_COMMAND} {}", sh_word(&program_path(source)))
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Checks that every id, label and dependency of the history is one retort accepts, naming
/// every one that is not (Alembic accepts more, such as `-`).
pub fn check_ids(export: &Export) -> Result<()> {
    let mut bad = Vec::new();
    for r in &export.revisions {
        let named = std::iter::once(&r.revision)
            .chain(&r.down_revisions)
            .chain(&r.branch_labels)
            .chain(&r.depends_on);
        for id in named {
            if let Err(e) = validate_revision_id(id) {
                bad.push(format!("{}: {}", r.path, e.message));
            }
        }
    }
    if bad.is_empty() {
        return Ok(());
    }
    bad.dedup();
    Err(Error::script(format!(
        "{} revision id{} or label{} of the Alembic history cannot be retort ids:\n{}",
        bad.len(),
        crate::words::plural(bad.len()),
        crate::words::plural(bad.len()),
        bad.join("\n")
    ))
    .with_hint(
        "rename them in the Alembic revision files (revision, down_revision, depends_on, \
         branch_labels) and in the database's alembic_version table, then import again",
    ))
}

/// The script of one revision, in `dir` under the name `migrate-revision` would give it. A
/// direction Alembic's offline mode could not render becomes what `unrenderable` says.
pub fn render_revision(
    r: &AlembicRevision,
    dir: &Path,
    alembic_version: &str,
    unrenderable: Unrenderable,
) -> Rendered {
    let path = dir.join(file_name_for(&r.revision, &r.message));
    let program = unrenderable == Unrenderable::Program;
    let section = |direction: &str| {
        if program {
            program_section(r, direction)
        } else {
            unconverted_section(r, direction, &path)
        }
    };
    let up = match &r.upgrade_sql {
        Some(sql) if !r.problems.iter().any(|p| p.direction == "upgrade") => sql.clone(),
        _ => section("upgrade"),
    };
    let down_problem = r.problems.iter().any(|p| p.direction == "downgrade");
    let down = match &r.downgrade_sql {
        Some(sql) if !down_problem => Some(sql.clone()),
        _ if down_problem => Some(section("downgrade")),
        _ => None,
    };
    let text = render_script(&NewScript {
        revision: r.revision.clone(),
        down_revisions: r.down_revisions.clone(),
        depends_on: r.depends_on.clone(),
        branch_labels: r.branch_labels.clone(),
        message: r.message.clone(),
        created: r.create_date.clone().unwrap_or_default(),
        transactional: r.transactional,
        headers: Vec::new(),
        up_sql: up,
        down_sql: down.clone().unwrap_or_default(),
    });
    // render_script always ends with the down section; without a downgrade there is none
    // (the script cannot be downgraded, as the Alembic revision could not).
    let text = match down {
        Some(_) => text,
        None => text
            .strip_suffix("\n-- migrate:down\n")
            .map(|t| format!("{t}\n"))
            .unwrap_or(text),
    };
    // The header's extra lines: the unconverted key, where it came from, the warnings. They
    // go before the `-- migrate:up` line (ordinary comments never start with `word:`).
    let mut extra = String::new();
    match r.reason() {
        Some(reason) if !program => extra.push_str(&format!("-- unconverted: {reason}\n")),
        _ => {}
    }
    extra.push_str(&format!(
        "-- Imported from the Alembic revision {} by migrate-import{}.\n",
        r.path,
        if alembic_version.is_empty() {
            String::new()
        } else {
            format!(" (Alembic {alembic_version})")
        }
    ));
    for w in &r.warnings {
        extra.push_str(&format!("-- import warning - {}\n", one_line(w)));
    }
    let text = match text.split_once("\n-- migrate:up\n") {
        Some((head, body)) => format!("{head}\n{extra}\n-- migrate:up\n{body}"),
        None => text,
    };
    Rendered {
        revision: r.revision.clone(),
        path,
        text,
        program: (program && r.unconverted())
            .then(|| (PathBuf::from(&r.path), dir.join(program_path(&r.path)))),
    }
}

/// A section that runs the revision's own function as a program step: what it does (in
/// comments) and the `-- run:` line.
fn program_section(r: &AlembicRevision, direction: &str) -> String {
    let problem = r.problems.iter().find(|p| p.direction == direction);
    let what = problem
        .map(|p| {
            one_line(&p.reason)
                .strip_prefix(&format!("{direction}() "))
                .map(str::to_string)
                .unwrap_or_else(|| one_line(&p.reason))
        })
        .unwrap_or_else(|| "needs a live database".into());
    format!(
        "-- Alembic's {direction}() of this revision {what}: offline SQL cannot say it, so this\n\
         -- step runs it, through Alembic's own operations on the database (DATABASE_URL), from\n\
         -- the revision file kept in {}.\n\
         -- run: {}\n",
        program_path(&r.path),
        step_command(&r.path)
    )
}

/// The lines `-- run: <command>` of a script's text replaced by comments, and the commands per
/// direction (`up` / `down`): the script as the import's verification runs it (the program
/// step runs beside it).
pub fn without_program_lines(text: &str) -> (String, Vec<(String, String)>) {
    let mut out = String::with_capacity(text.len());
    let mut commands = Vec::new();
    let mut direction = "";
    for line in text.split_inclusive('\n') {
        let t = line.trim();
        if t == "-- migrate:up" {
            direction = "up";
        } else if t == "-- migrate:down" {
            direction = "down";
        }
        match t.strip_prefix("-- run:") {
            Some(cmd) if !direction.is_empty() => {
                commands.push((direction.to_string(), cmd.trim().to_string()));
                out.push_str("-- (program step) ");
                out.push_str(cmd.trim());
                if line.ends_with('\n') {
                    out.push('\n');
                }
            }
            _ => out.push_str(line),
        }
    }
    (out, commands)
}

/// A section whose SQL could not be rendered: Alembic's Python kept as a comment, and a
/// statement that fails, saying what to do, until someone writes the SQL.
fn unconverted_section(r: &AlembicRevision, direction: &str, path: &Path) -> String {
    let problem = r.problems.iter().find(|p| p.direction == direction);
    let reason = problem
        .map(|p| one_line(&p.reason))
        .unwrap_or_else(|| format!("{direction}() was not rendered"));
    let at = problem
        .map(|p| match (&p.file, p.line) {
            (Some(f), Some(l)) => format!("{f}, line {l}"),
            (Some(f), None) => f.clone(),
            _ => r.path.clone(),
        })
        .unwrap_or_else(|| r.path.clone());
    let source = if direction == "upgrade" {
        &r.upgrade_source
    } else {
        &r.downgrade_source
    };
    let mut out = String::new();
    out.push_str(&format!(
        "-- migrate-import could not write this section's SQL: {reason}\n-- ({at}).\n"
    ));
    if let Some(src) = source {
        out.push_str("-- Alembic's Python, kept for reference:\n--\n");
        for line in src.trim_end().lines() {
            // `-- |` keeps a Python line from ever reading as a section marker
            out.push_str(&format!("-- | {}\n", line.trim_end()).replace("-- | \n", "-- |\n"));
        }
        out.push_str("--\n");
    }
    out.push_str(
        "-- Replace this comment and the DO block below with the SQL that does the same, then\n\
         -- remove the '-- unconverted:' line of the header (migrate-check reports the revision\n\
         -- until then).\n",
    );
    let message = format!(
        "revision {} ({}) was imported from Alembic without its {direction} SQL: write it in {} \
         (its comments have the Alembic source), then remove the -- unconverted: line",
        r.revision,
        one_line(&r.message),
        path.display()
    );
    out.push_str(&format!(
        "DO $retort$ BEGIN RAISE EXCEPTION '%', '{}'; END $retort$;\n",
        message
            .replace('\'', "''")
            .replace("$retort$", "$ retort $")
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::parse_script;
    use serde_json::json;

    fn doc() -> Value {
        json!({
            "version": 1, "ok": true, "python": "/venv/bin/python", "alembic_version": "1.16.5",
            "version_table": "alembic_version", "heads": ["c3"],
            "warnings": [],
            "revisions": [
                {"revision": "a1", "down_revision": [], "branch_labels": ["core"],
                 "depends_on": [], "message": "baseline: documents",
                 "create_date": "2025-03-04 10:11:12.345678",
                 "path": "migrations/versions/a1_baseline.py",
                 "upgrade_sql": "CREATE TABLE documents (id bigint);",
                 "downgrade_sql": "DROP TABLE documents;", "transactional": true,
                 "unconverted": false, "problems": [], "warnings": []},
                {"revision": "b2", "down_revision": ["a1"], "branch_labels": [],
                 "depends_on": ["a1"], "message": "index concurrently",
                 "create_date": null, "path": "migrations/versions/b2_index.py",
                 "upgrade_sql": "CREATE INDEX CONCURRENTLY ix ON documents (id);",
                 "downgrade_sql": null, "transactional": false,
                 "unconverted": false, "problems": [],
                 "warnings": ["downgrade() raises NotImplementedError (line 30): the revision cannot be downgraded"]},
                {"revision": "c3", "down_revision": ["b2"], "branch_labels": [],
                 "depends_on": [], "message": "backfill titles", "create_date": "2025-03-05",
                 "path": "migrations/versions/c3_backfill.py",
                 "upgrade_sql": null, "downgrade_sql": "", "transactional": true,
                 "unconverted": true,
                 "problems": [{"direction": "upgrade",
                               "reason": "upgrade() reads rows through op.get_bind() (line 23)",
                               "file": "migrations/versions/c3_backfill.py", "line": 23,
                               "code": "rows = conn.execute(...)", "exception": "NeedsDatabase"}],
                 "warnings": [],
                 "upgrade_source": "def upgrade() -> None:\n    conn = op.get_bind()\n\n    migrate: int = 1  # 'quoted'\n",
                 "downgrade_source": "def downgrade() -> None:\n    pass\n"}
            ]
        })
    }

    #[test]
    fn a_converted_revision_keeps_its_ids_labels_and_date() {
        let e = read_export(&doc()).unwrap();
        assert_eq!(e.alembic_version, "1.16.5");
        let r = render_revision(
            &e.revisions[0],
            Path::new("migrations"),
            &e.alembic_version,
            Unrenderable::Program,
        );
        assert_eq!(r.path, Path::new("migrations/a1_baseline_documents.sql"));
        assert_eq!(
            r.text,
            "-- revision: a1\n-- message: baseline: documents\n\
             -- created: 2025-03-04 10:11:12.345678\n-- branch_labels: core\n\n\
             -- Imported from the Alembic revision migrations/versions/a1_baseline.py by \
             migrate-import (Alembic 1.16.5).\n\n\
             -- migrate:up\nCREATE TABLE documents (id bigint);\n\n\
             -- migrate:down\nDROP TABLE documents;\n"
        );
        let s = parse_script(&r.path, r.text.as_bytes()).unwrap();
        assert_eq!(s.branch_labels, ["core"]);
        assert!(s.transactional && s.unconverted.is_none());
    }

    #[test]
    fn a_non_transactional_revision_without_downgrade_has_no_down_section() {
        let e = read_export(&doc()).unwrap();
        let r = render_revision(&e.revisions[1], Path::new("m"), "", Unrenderable::Program);
        let s = parse_script(&r.path, r.text.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.down_revisions, ["a1"]);
        assert_eq!(s.depends_on, ["a1"]);
        assert!(!s.transactional);
        assert!(s.down.is_none(), "{}", r.text);
        assert!(s.created.is_none());
        assert!(r.text.contains(
            "-- import warning - downgrade() raises NotImplementedError (line 30): the revision \
             cannot be downgraded\n"
        ));
    }

    #[test]
    fn an_unconverted_revision_keeps_its_python_and_fails_until_written() {
        let e = read_export(&doc()).unwrap();
        let r = render_revision(
            &e.revisions[2],
            Path::new("migrations"),
            "",
            Unrenderable::Unconverted,
        );
        assert!(r.program.is_none());
        let s =
            parse_script(&r.path, r.text.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{}", r.text));
        assert_eq!(
            s.unconverted.as_deref(),
            Some(
                "upgrade() reads rows through op.get_bind() (line 23) in \
                 migrations/versions/c3_backfill.py"
            )
        );
        assert!(s
            .up
            .sql
            .contains("-- |     conn = op.get_bind()\n-- |\n-- |     migrate: int"));
        let statements = s.up.statements();
        assert_eq!(statements.len(), 1, "{statements:?}");
        assert_eq!(
            statements[0].sql,
            "DO $retort$ BEGIN RAISE EXCEPTION '%', 'revision c3 (backfill titles) was imported \
             from Alembic without its upgrade SQL: write it in migrations/c3_backfill_titles.sql \
             (its comments have the Alembic source), then remove the -- unconverted: line'; END \
             $retort$"
        );
        // its downgrade converted (an empty body)
        assert_eq!(s.down.unwrap().sql.trim(), "");
    }

    #[test]
    fn a_revision_offline_sql_cannot_say_becomes_a_program_step_running_its_own_file() {
        let e = read_export(&doc()).unwrap();
        let r = render_revision(
            &e.revisions[2],
            Path::new("migrations"),
            "",
            Unrenderable::Program,
        );
        let s =
            parse_script(&r.path, r.text.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{}", r.text));
        assert!(s.unconverted.is_none(), "{}", r.text);
        assert!(
            s.up.sql.ends_with(
                "-- run: \"${RETORT_PYTHON:-python3}\" -m retort_migrate.alembic_step \
                 alembic/c3_backfill.py\n\n"
            ),
            "{}",
            s.up.sql
        );
        assert!(s.up.sql.contains(
            "-- Alembic's upgrade() of this revision reads rows through op.get_bind() (line 23): \
             offline SQL cannot say it"
        ));
        assert_eq!(
            r.program,
            Some((
                PathBuf::from("migrations/versions/c3_backfill.py"),
                PathBuf::from("migrations/alembic/c3_backfill.py")
            ))
        );
        // the verification's copy: the run line a comment, the down section untouched
        let (plain, commands) = without_program_lines(&r.text);
        assert_eq!(
            commands,
            [(
                "up".to_string(),
                format!("{STEP_COMMAND} alembic/c3_backfill.py")
            )]
        );
        assert!(!plain.contains("-- run:") && plain.contains("-- (program step) \""));
        assert_eq!(
            plain.len(),
            r.text.len() + "(program step) ".len() - "run: ".len()
        );
    }

    #[test]
    fn a_program_file_with_a_space_is_quoted_for_sh() {
        assert_eq!(
            step_command("m/versions/0001 it's.py"),
            format!("{STEP_COMMAND} 'alembic/0001 it'\\''s.py'")
        );
    }

    #[test]
    fn ids_retort_cannot_take_are_all_named() {
        let mut e = read_export(&doc()).unwrap();
        e.revisions[1].revision = "b-2".into();
        e.revisions[2].down_revisions = vec!["b-2".into()];
        let err = check_ids(&e).unwrap_err();
        assert_eq!(err.kind, crate::error::ErrorKind::Script);
        assert!(err.message.starts_with("2 revision ids or labels"), "{err}");
        assert!(err
            .message
            .contains("migrations/versions/b2_index.py: invalid revision id 'b-2'"));
        assert!(err
            .message
            .contains("migrations/versions/c3_backfill.py: invalid revision id 'b-2'"));
    }

    #[test]
    fn a_broken_document_is_a_bug_report() {
        let err = read_export(&json!({"ok": true})).unwrap_err();
        assert!(err.message.contains("no 'revisions' list"));
    }
}
