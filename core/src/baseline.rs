//! Squashed baselines for long histories: `migrate-revision --squash REV` writes
//! `<migrations>/baselines/REV.sql`, the schema as of REV in one script (the migrations replayed
//! to REV in a shadow database, read from its catalog and rendered by the schema renderer).
//! A fresh database (no revision applied) whose upgrade passes through REV runs the baseline in
//! one transaction instead of the revisions up to REV — recording each of them as applied, with
//! its checksum, `how = 'baseline'` — then the revisions after REV as usual. A database that has
//! any revision applied keeps its history; the baseline is not a revision of the graph.
//! `migrate-check` verifies that the baseline and the replay give the same catalog.

use crate::config::{DbUrl, Settings};
use crate::db::lease::fenced_transaction;
use crate::db::records::Records;
use crate::db::{db_error, SqlFailure, VersionTable};
use crate::error::{Error, ErrorKind, Result};
use crate::plan::VersionOp;
use crate::project::Project;
use crate::schema::diff::{changes, unhandled};
use crate::schema::model::Schema;
use crate::schema::render::render_changes;
use crate::schema::workspace::{after_shadows, Workspace};
use crate::schema::DiffOptions;
use postgres::Client;
use std::path::{Path, PathBuf};

/// A baseline script.
#[derive(Debug, Clone)]
pub struct Baseline {
    pub path: PathBuf,
    /// The revision it stands for (with every ancestor).
    pub revision: String,
    /// The SQL (everything after the header).
    pub sql: String,
    /// Line of the SQL's first line in the file.
    pub line: usize,
}

pub fn dir(migrations: &Path) -> PathBuf {
    migrations.join("baselines")
}

/// The baselines of `project` (none without a `baselines/` directory). A baseline whose
/// revision no script has is an error naming the file.
pub fn load(project: &Project) -> Result<Vec<Baseline>> {
    let d = dir(&project.dir);
    let Ok(entries) = std::fs::read_dir(&d) else {
        return Ok(Vec::new());
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Error::io(format!("cannot read {}: {e}", path.display())))?;
        let mut revision = None;
        let mut line = 1;
        for (i, l) in text.lines().enumerate() {
            if let Some(r) = l.strip_prefix("-- baseline:") {
                revision = Some(r.trim().to_string());
            } else if !l.starts_with("--") && !l.trim().is_empty() {
                line = i + 1;
                break;
            }
        }
        let Some(revision) = revision else {
            return Err(Error::script(format!(
                "{}:1: a baseline needs a '-- baseline: REV' line",
                path.display()
            )));
        };
        if project.script(&revision).is_err() {
            return Err(Error::script(format!(
                "{}: baseline of revision {revision}, which no script has",
                path.display()
            ))
            .with_hint("remove the baseline, or squash again with migrate-revision --squash"));
        }
        let sql = text.lines().skip(line - 1).collect::<Vec<_>>().join("\n");
        out.push(Baseline {
            path,
            revision,
            sql,
            line,
        });
    }
    Ok(out)
}

fn describe(a: &Schema, b: &Schema) -> Vec<String> {
    let mut out: Vec<String> = changes(a, b, &DiffOptions::default())
        .iter()
        .map(|c| c.what())
        .collect();
    for u in unhandled(a, b).into_iter().filter(|u| u.differs()) {
        out.push(u.describe("the replay", "the baseline"));
    }
    out
}

/// Replays the migrations to `rev` in a shadow database and renders its schema: the
/// baseline's SQL. Refused when the rendered SQL does not give back the same catalog (objects
/// the renderer does not know).
pub fn render(
    project: &Project,
    settings: &Settings,
    shadow_url: Option<&DbUrl>,
    rev: &str,
) -> Result<String> {
    after_shadows((|| {
        let ws = Workspace::new(project, settings, shadow_url)?;
        let replay = ws.build_replay(&[rev.to_string()])?;
        // what an empty database already has (the public schema, ...)
        let empty_db = ws.server.create()?;
        let empty = ws.read(&mut empty_db.connect()?)?;
        let sql = render_changes(&changes(&empty, &replay.schema, &DiffOptions::default()));
        let diff = compare(&ws, &replay.schema, &sql)?;
        if !diff.is_empty() {
            return Err(Error::usage(format!(
                "cannot squash to {rev}: the rendered baseline does not give the replay's catalog: {}",
                diff.join("; ")
            )));
        }
        Ok(sql)
    })())
}

/// The differences between `replayed` and a shadow with `sql` run in it.
fn compare(ws: &Workspace, replayed: &Schema, sql: &str) -> Result<Vec<String>> {
    let db = ws.server.create()?;
    let mut c = db.connect()?;
    let chunks = chunks(&mut c, sql)?;
    for chunk in &chunks {
        c.batch_execute(&format!("BEGIN;\n{chunk}\nCOMMIT;"))
            .map_err(|e| {
                let _ = c.batch_execute("ROLLBACK");
                crate::db::db_error("the baseline failed in a shadow database", &e)
            })?;
    }
    let built = ws.read(&mut c)?;
    Ok(describe(replayed, &built))
}

/// The baseline's statements in as few transactions as the server's lock table allows: one
/// when its locks fit in half the table, else consecutive chunks that do.
pub fn chunks(client: &mut postgres::Client, sql: &str) -> Result<Vec<String>> {
    use crate::db::lock_budget::{budget, statement_locks};
    let stmts = crate::script::split_statements(sql, 1);
    let total: usize = stmts.iter().map(|s| statement_locks(&s.sql)).sum();
    if total < 1000 {
        return Ok(vec![sql.to_string()]);
    }
    let (_, size) = budget(client)?;
    let limit = (size / 2).max(100) as usize;
    if total <= limit {
        return Ok(vec![sql.to_string()]);
    }
    let mut out = Vec::new();
    let (mut cur, mut locks) = (String::new(), 0usize);
    for st in stmts {
        let n = statement_locks(&st.sql);
        if locks + n > limit && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
            locks = 0;
        }
        cur.push_str(st.sql.trim_end());
        if !cur.ends_with(';') {
            cur.push(';');
        }
        cur.push('\n');
        locks += n;
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    Ok(out)
}
/// Runs baseline `b` (its SQL cut into `chunks`, see [`chunks`]) on a database with no
/// revision applied, and records the revisions it stands for (`applied`) in the version table
/// (its one row: `b`) and the applied records. Every chunk but the last commits without the
/// version row; the last commits with it. Each transaction is begun with the lease's `fence`.
/// A failure returns the error (with a note when chunks had committed) and how many had.
pub fn apply(
    client: &mut Client,
    fence: Option<&str>,
    (table, records): (&VersionTable, &Records),
    project: &Project,
    b: &Baseline,
    applied: &[String],
    chunks: &[String],
) -> std::result::Result<(), (Error, usize)> {
    let mut committed = 0;
    let result = (|| -> Result<()> {
        // a baseline bigger than the lock table runs in several transactions, all but the
        // last without the version row
        for chunk in &chunks[..chunks.len() - 1] {
            let mut tx = fenced_transaction(client, fence)?;
            tx.batch_execute(chunk).map_err(|e| {
                Error::new(
                    ErrorKind::Migration,
                    format!(
                        "baseline {} failed ({}): {}",
                        b.revision,
                        b.path.display(),
                        SqlFailure::from_pg(&e).describe()
                    ),
                )
            })?;
            tx.commit().map_err(|e| db_error("cannot commit", &e))?;
            committed += 1;
        }
        let mut tx = fenced_transaction(client, fence)?;
        table.ensure(&mut tx)?;
        records.ensure(&mut tx)?;
        tx.batch_execute(&chunks[chunks.len() - 1]).map_err(|e| {
            let f = SqlFailure::from_pg(&e);
            Error::new(
                ErrorKind::Migration,
                format!(
                    "baseline {} failed ({}:{}): {}",
                    b.revision,
                    b.path.display(),
                    b.line,
                    f.describe()
                ),
            )
        })?;
        table.apply(&mut tx, &VersionOp::Insert(b.revision.clone()))?;
        for rev in applied {
            let checksum = &project.script(rev)?.checksum;
            records.record(&mut tx, rev, checksum, None, "baseline")?;
        }
        tx.commit().map_err(|e| db_error("cannot commit", &e))
    })();
    result.map_err(|mut e| {
        if committed > 0 {
            e = e.with_note(format!(
                "the baseline is too big for the server's lock table in one transaction: it ran in {} transactions, and {committed} committed before the failure; the database (it had no revision applied) holds part of the schema: drop and re-create it before running again",
                chunks.len()
            ));
        }
        (e, committed)
    })
}

/// Writes `baselines/REV.sql`; its path.
pub fn write(project: &Project, rev: &str, sql: &str) -> Result<PathBuf> {
    let d = dir(&project.dir);
    std::fs::create_dir_all(&d)
        .map_err(|e| Error::io(format!("cannot create {}: {e}", d.display())))?;
    let path = d.join(format!("{rev}.sql"));
    let n = crate::policy::applied_set(&project.graph, &[rev.to_string()])?.len();
    let text = format!(
        "-- baseline: {rev}\n-- message: the schema as of {rev}, in one step ({n} revisions squashed)\n-- Written by migrate-revision --squash from a replay in a shadow database. A fresh\n-- database runs this instead of the {n} revisions; databases with history keep it.\n\n{}\n",
        sql.trim_end()
    );
    std::fs::write(&path, text)
        .map_err(|e| Error::io(format!("cannot write {}: {e}", path.display())))?;
    Ok(path)
}

/// `migrate-check`: each baseline against the replay of its revisions; one line per baseline
/// that differs.
pub fn verify(
    project: &Project,
    settings: &Settings,
    shadow_url: Option<&DbUrl>,
) -> Result<Vec<String>> {
    let baselines = load(project)?;
    if baselines.is_empty() {
        return Ok(Vec::new());
    }
    after_shadows((|| {
        let ws = Workspace::new(project, settings, shadow_url)?;
        let mut out = Vec::new();
        for b in &baselines {
            let replay = ws.build_replay(std::slice::from_ref(&b.revision))?;
            let diff = compare(&ws, &replay.schema, &b.sql)?;
            if !diff.is_empty() {
                out.push(format!(
                    "{}: the baseline of {} and the replay of its revisions differ: {}; squash again (migrate-revision --squash {})",
                    b.path.display(),
                    b.revision,
                    diff.join("; "),
                    b.revision
                ));
            }
        }
        Ok(out)
    })())
}
