//! `migrate-revision --autogenerate`: the revision(s) that take the migrations to the schema
//! file's schema.
//!
//! Both schemas are built as real databases on one server ([`crate::schema::workspace`]): one
//! with every revision replayed (the schema the migrations produce), one with `schema.sql`
//! loaded (the schema wanted). Both are read from the catalog, compared, and the statements
//! rendered. Every generated revision is validated before it is written (`validate`).
//!
//! Up to four revisions are written, chained (`split`): (1) `ALTER TYPE ... ADD VALUE`
//! statements, in a non-transactional revision, only when the main revision uses a value it
//! adds (PostgreSQL refuses a new enum value in the transaction that added it); (2) the main
//! revision; (3) enum values its down section adds back and uses, in a non-transactional
//! revision; (4) with `--concurrently`, `CREATE INDEX CONCURRENTLY` for indexes on existing
//! tables, in a non-transactional revision. Renames the user asks for are in `renames`,
//! what is printed in `summary`.

mod renames;
mod split;
mod summary;
mod validate;

use crate::config::DbUrl;
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::project::Project;
use crate::revision::{self, RevisionOptions};
use crate::schema::diff::{rename_hints, unhandled, RenameHint, Unhandled};
use crate::schema::render::{render_changes_with, to_ops, Op, RowEstimates};
use crate::schema::workspace::{after_shadows, wrap, Workspace};
use crate::script::{parse_script, render_script, NewScript, Script};
use crate::words;
use split::{Section, Split};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What `--autogenerate` was asked for (besides the revision options).
#[derive(Debug, Clone, Default)]
pub struct AutogenOptions {
    pub schema_file: PathBuf,
    /// Create shadow databases on this server instead of the target's.
    pub shadow_url: Option<DbUrl>,
    /// `--rename table.old=new` (table may be `schema.table`).
    pub renames: Vec<String>,
    /// `--rename-table old=new` (old may be `schema.table`).
    pub table_renames: Vec<String>,
    /// Index builds on existing tables go to a non-transactional revision, CONCURRENTLY.
    pub concurrently: bool,
    /// Write a revision even when there is nothing to do.
    pub empty: bool,
}

/// One revision to write.
#[derive(Debug, Clone)]
pub struct GeneratedRevision {
    pub path: PathBuf,
    pub script: NewScript,
    /// The file's text.
    pub text: String,
}

/// The outcome: revisions to write (none when there is nothing to do) and the summary lines.
#[derive(Debug, Clone, Default)]
pub struct Generated {
    pub revisions: Vec<GeneratedRevision>,
    /// The up statements of every revision, in order.
    pub up_ops: Vec<Op>,
    pub hints: Vec<RenameHint>,
    pub unhandled: Vec<Unhandled>,
    /// Tables and views `--exclude` / `--include` left out, `schema.name`.
    pub ignored: Vec<String>,
    /// The patterns, as given (`--exclude langchain_*`).
    pub filter: String,
    /// The target database's table sizes, for the hazards.
    pub rows: RowEstimates,
    /// Index builds on existing tables written as plain `CREATE INDEX` (no `--concurrently`):
    /// each blocks writes to its table while it runs.
    pub blocking_builds: usize,
    /// Human-readable summary (for stderr).
    pub summary: Vec<String>,
}

impl Generated {
    pub fn nothing_to_do(&self) -> bool {
        self.revisions.is_empty()
    }
}

/// `migrate-revision --autogenerate`: computes, renders and validates the revision(s). Writes
/// nothing (see [`write()`]).
pub fn autogenerate(
    project: &Project,
    settings: &Settings,
    rev: &RevisionOptions,
    opts: &AutogenOptions,
) -> Result<Generated> {
    after_shadows(autogenerate_inner(project, settings, rev, opts))
}

fn schema_file_missing(path: &Path) -> Error {
    Error::usage(format!("no schema file at {}", path.display()))
        .with_hint("write the wanted schema there (plain PostgreSQL DDL), or pass --schema PATH / set MIGRATE_SCHEMA_FILE")
}

/// The checks made before any database work.
fn check_request(rev: &RevisionOptions, opts: &AutogenOptions) -> Result<()> {
    if rev.merge.is_some() {
        return Err(
            Error::usage("--autogenerate cannot be combined with --merge")
                .with_hint("merge the heads first, then autogenerate"),
        );
    }
    if !opts.schema_file.is_file() {
        return Err(schema_file_missing(&opts.schema_file));
    }
    Ok(())
}

fn autogenerate_inner(
    project: &Project,
    settings: &Settings,
    rev: &RevisionOptions,
    opts: &AutogenOptions,
) -> Result<Generated> {
    check_request(rev, opts)?;
    let parsed_renames = renames::parse_renames(opts)?;
    // The parents (and a check of the revision options) before any database work.
    let (_, probe) = revision::prepare(project, rev)?;
    let ws = Workspace::new(project, settings, opts.shadow_url.as_ref())?;

    // The replay and the wanted schema are built at the same time, in two shadows.
    let t0 = Instant::now();
    let (mut replay, wanted) = ws.build_both(&probe.down_revisions, &opts.schema_file)?;
    log::debug!(
        "built and read both shadow databases in {}",
        words::fmt_duration(t0.elapsed())
    );
    let (old, new) = (&replay.schema, &wanted.schema);

    // Renames: applied to the replay, read, then undone.
    let (renamed, rename_changes) =
        renames::apply_renames(&ws, &mut replay.client, &parsed_renames, old)?;
    let mut result = Generated {
        hints: rename_hints(&renamed, new),
        unhandled: unhandled(old, new),
        ignored: ws.ignored(),
        filter: ws.filter.describe(),
        rows: row_estimates(settings),
        ..Default::default()
    };
    let split = split::split(old, &renamed, new, &rename_changes, opts.concurrently);
    if !opts.concurrently {
        result.blocking_builds = split::blocking_builds(new, &renamed);
    }
    if split.is_empty() && !opts.empty {
        result.summary = summary::summary(&result, &[]);
        return Ok(result);
    }

    let notes = summary::file_notes(&result.unhandled, &result.hints, &opts.schema_file);
    let current = prepare_revisions(project, rev, parts(split), &notes, &mut result)?;

    // Validate on the fresh replay: up must give the wanted schema, down the replay again.
    let last = result.revisions.last().expect("at least one revision");
    let down_target = probe
        .down_revisions
        .first()
        .cloned()
        .unwrap_or_else(|| "base".to_string());
    validate::Validation {
        ws: &ws,
        client: &mut replay.client,
        project: &current,
        unhandled: &result.unhandled,
    }
    .run(&replay.heads, &last.script.revision, &down_target, new, old)?;
    result.summary = summary::summary(&result, &result.up_ops);
    Ok(result)
}

/// One revision of the chain; `label: None` is the main, transactional revision.
struct Part {
    label: Option<&'static str>,
    section: Section,
}

/// The revisions to write, in chain order.
fn parts(split: Split) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut add = |label, section: Option<Section>| {
        if let Some(section) = section {
            parts.push(Part { label, section });
        }
    };
    add(Some("enum values"), split.pre);
    add(None, Some(split.main));
    add(Some("enum values removed"), split.post);
    add(Some("concurrent indexes"), split.concurrent);
    parts
}

const NOT_TRANSACTIONAL: &str =
    "-- Not transactional: each statement runs and commits on its own.\n";

/// Renders and prepares the scripts, in chain order, into `result`; returns the project with
/// them added.
fn prepare_revisions(
    project: &Project,
    rev: &RevisionOptions,
    parts: Vec<Part>,
    notes: &str,
    result: &mut Generated,
) -> Result<Project> {
    let mut scripts: Vec<Script> = project.scripts.clone();
    let mut current = project.clone();
    let mut parent: Option<String> = None;
    for part in parts {
        let o = part_options(rev, &part, parent.as_deref(), notes, &result.rows);
        let (path, ns) = revision::prepare(&current, &o)?;
        let text = render_script(&ns);
        let parsed = parse_script(&path, text.as_bytes())
            .map_err(|e| wrap(e, "internal error: the generated script does not parse"))?;
        scripts.push(parsed);
        current = Project::from_scripts(&project.dir, scripts.clone())?;
        parent = Some(ns.revision.clone());
        result.up_ops.extend(to_ops(&part.section.up));
        result.revisions.push(GeneratedRevision {
            path,
            script: ns,
            text,
        });
    }
    Ok(current)
}

/// The revision options of one part: the others are chained after `parent`, with their own
/// message and id, and are not transactional.
fn part_options(
    rev: &RevisionOptions,
    part: &Part,
    parent: Option<&str>,
    notes: &str,
    rows: &RowEstimates,
) -> RevisionOptions {
    let mut o = rev.clone();
    let transactional = part.label.is_none();
    if let Some(kind) = part.label {
        o.rev_id = None;
        o.message = format!("{} ({kind})", rev.message);
        o.branch_labels = Vec::new();
    }
    if let Some(p) = parent {
        o.head = Some(p.to_string());
        o.splice = false;
        o.depends_on = Vec::new();
    }
    o.non_transactional = !transactional || rev.non_transactional;
    let (up, down) = (&part.section.up, &part.section.down);
    o.up_sql = if transactional {
        format!("{notes}{}", render_changes_with(up, rows))
    } else {
        format!("{NOT_TRANSACTIONAL}{}", render_changes_with(up, rows))
    };
    o.down_sql = if transactional {
        render_changes_with(down, rows)
    } else {
        format!("{NOT_TRANSACTIONAL}{}", render_changes_with(down, rows))
    };
    o
}

/// The target database's tables and their estimated rows (`pg_class.reltuples`), for the
/// hazards' "(about N rows)". Empty when the database cannot be read: the hazards then say
/// no size.
fn row_estimates(settings: &Settings) -> RowEstimates {
    let read = || -> Result<RowEstimates> {
        let url = settings.require_url()?;
        let mut c = crate::db::connect(url, "retort-autogen")?;
        let rows = c
            .query_typed(
                "SELECT n.nspname::text, c.relname::text, c.reltuples::int8 FROM pg_catalog.pg_class c
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                 WHERE c.relkind IN ('r', 'm', 'p') AND c.reltuples > 0",
                &[],
            )
            .map_err(|e| crate::db::db_error("cannot read the tables' sizes", &e))?;
        Ok(rows
            .iter()
            .map(|r| {
                (
                    crate::schema::QName::new(r.get::<_, String>(0), r.get::<_, String>(1)),
                    r.get(2),
                )
            })
            .collect())
    };
    read().unwrap_or_else(|e| {
        log::debug!("no table sizes for the hazards: {e}");
        RowEstimates::new()
    })
}

/// Writes the revisions (refusing to overwrite); on a failure, removes what it wrote.
pub fn write(g: &Generated) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for r in &g.revisions {
        if let Err(e) = revision::write_new(&r.path, &r.text) {
            for p in &written {
                let _ = std::fs::remove_file(p);
            }
            return Err(e);
        }
        written.push(r.path.clone());
    }
    Ok(written)
}
