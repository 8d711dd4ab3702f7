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
//! revision; (4) `CREATE INDEX CONCURRENTLY` for new or changed indexes on existing tables
//! that hold rows on the target database (autogenerate connects to it: what it writes must
//! pass the lint gate there, which refuses a blocking build on a table with rows), the new
//! index built beside the old one, then the swap; with `--concurrently` on every existing
//! table, with `--blocking` on none. Renames the user asks for are in `renames`,
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
    /// What the generated file's first comment names as its source when `schema_file` is not
    /// the user's (the temporary file of `--schema-command`: "the output of `CMD`"); `None`:
    /// `schema_file`'s name.
    pub schema_source: Option<String>,
    /// Create shadow databases on this server instead of the target's.
    pub shadow_url: Option<DbUrl>,
    /// `--rename table.old=new` (table may be `schema.table`).
    pub renames: Vec<String>,
    /// `--rename-table old=new` (old may be `schema.table`).
    pub table_renames: Vec<String>,
    /// Index builds on every existing table go to a non-transactional revision, CONCURRENTLY
    /// (by default: those on tables that hold rows on the target database).
    pub concurrently: bool,
    /// No concurrent revision: every index build in the main revision, blocking writes to its
    /// table while it runs.
    pub blocking: bool,
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
    /// Index builds on existing tables written as plain `CREATE INDEX`: each blocks writes to
    /// its table while it runs.
    pub blocking_builds: usize,
    /// Whether they were asked for (`--blocking`), on tables that hold rows.
    pub blocking_asked: bool,
    /// What `migrate-up`'s lint gate refuses in the generated revisions on the target database.
    pub refused: Vec<crate::lint::Finding>,
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
    // a vector column changing type on a table with rows: the swap chain, and the rest of the
    // changes from the schema as it leaves it
    let (swaps, needs_program) = if opts.blocking {
        (Vec::new(), Vec::new())
    } else {
        vector_swaps(&renamed, new, settings, &result.rows)
    };
    let renamed = if swaps.is_empty() {
        renamed
    } else {
        swapped(&renamed, new, &swaps)
    };
    let populated = if opts.concurrently || opts.blocking {
        Vec::new()
    } else {
        populated(
            settings,
            &split::tables_with_builds(new, &renamed),
            &result.rows,
        )
    };
    let concurrent =
        |t: &crate::schema::QName| !opts.blocking && (opts.concurrently || populated.contains(t));
    let split = split::split(old, &renamed, new, &rename_changes, &concurrent);
    result.blocking_builds = split::blocking_builds(new, &renamed, &concurrent);
    result.blocking_asked = opts.blocking;
    if split.is_empty() && !opts.empty && swaps.is_empty() {
        result.summary = summary::summary(&result, &[]);
        return Ok(result);
    }

    let notes = summary::file_notes(
        &result.unhandled,
        &result.hints,
        &opts.schema_file,
        opts.schema_source.as_deref(),
    );
    let mut current = project.clone();
    let mut rev_rest = rev.clone();
    let mut swap_lines = Vec::new();
    for (table, column) in &swaps {
        let (chain, after) = swap_chain(&current, settings, &rev_rest, table, column, new)?;
        swap_lines.push(format!(
            "vector swap: {table}.{column} on a table with rows, written as {} revisions ({} to {}): migrate-up stops before the contract until --contract (docs/vector-swap.md; --blocking writes ALTER COLUMN ... TYPE instead)",
            chain.len(),
            chain.first().map(|r| r.revision.as_str()).unwrap_or(""),
            chain.last().map(|r| r.revision.as_str()).unwrap_or("")
        ));
        for r in chain {
            result.revisions.push(GeneratedRevision {
                path: r.path,
                script: r.script,
                text: r.text,
            });
        }
        current = after;
        // what follows chains after the swap, with an id of its own
        rev_rest.rev_id = None;
        rev_rest.head = None;
        rev_rest.splice = false;
        rev_rest.depends_on = Vec::new();
        rev_rest.branch_labels = Vec::new();
    }
    if !split.is_empty() || swaps.is_empty() {
        current = prepare_revisions(&current, &rev_rest, parts(split), &notes, &mut result)?;
    }

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
        up_only: !swaps.is_empty(),
    }
    .run(&replay.heads, &last.script.revision, &down_target, new, old)?;
    let ids: Vec<String> = result
        .revisions
        .iter()
        .map(|r| r.script.revision.clone())
        .collect();
    result.refused = gate_preview(current, settings, &ids);
    result.summary = summary::summary(&result, &result.up_ops);
    result.summary.extend(swap_lines);
    for (t, c, to) in &needs_program {
        result.summary.push(format!(
            "hint: {t}.{c} changes to {to} on a table with rows, which SQL cannot compute from the old values: a new model's embeddings need the program that computes them — migrate-revision --vector-swap {t}.{c} --to '{to}' --run '<command>' writes the safe chain (docs/vector-swap.md)"
        ));
    }
    Ok(result)
}

/// A vector column written as a swap: its table and name.
type SwapColumn = (crate::schema::QName, String);

/// The vector columns (`vector`, `halfvec`, `bit` with dimensions) whose type changes between
/// `old` and `new` on a table that holds rows on the target database. Those whose new values
/// derive from the old in SQL (`vector(n)` → `halfvec(n)`) are written as a vector swap
/// ([`crate::commands::vector_swap`]) instead of `ALTER COLUMN ... TYPE`, which rewrites the
/// table and its index under an exclusive lock (the lint gate refuses it there); the others
/// (a new dimension: new embeddings) are listed with their new type, for a hint: only a
/// program computes them.
fn vector_swaps(
    old: &crate::schema::model::Schema,
    new: &crate::schema::model::Schema,
    settings: &Settings,
    rows: &RowEstimates,
) -> (Vec<SwapColumn>, Vec<(crate::schema::QName, String, String)>) {
    use crate::commands::vector_swap::VectorType;
    let mut found = Vec::new();
    for (t, ta) in &old.tables {
        let Some(tb) = new.tables.get(t) else {
            continue;
        };
        for ca in &ta.columns {
            let Some(cb) = tb.column(&ca.name) else {
                continue;
            };
            if let (true, Some(from), Some(to)) = (
                ca.type_sql != cb.type_sql,
                VectorType::parse(&ca.type_sql),
                VectorType::parse(&cb.type_sql),
            ) {
                found.push((
                    t.clone(),
                    ca.name.clone(),
                    to.to_string(),
                    to.derives_from(from),
                ));
            }
        }
    }
    if found.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let tables: Vec<_> = found.iter().map(|(t, ..)| t.clone()).collect();
    let with_rows = populated(settings, &tables, rows);
    found.retain(|(t, ..)| with_rows.contains(t));
    let (sql, program): (Vec<_>, Vec<_>) = found.into_iter().partition(|f| f.3);
    (
        sql.into_iter().map(|(t, c, ..)| (t, c)).collect(),
        program
            .into_iter()
            .map(|(t, c, to, _)| (t, c, to))
            .collect(),
    )
}

/// `old` with the swapped columns as `new` has them: their type, and the indexes over them.
fn swapped(
    old: &crate::schema::model::Schema,
    new: &crate::schema::model::Schema,
    swaps: &[(crate::schema::QName, String)],
) -> crate::schema::model::Schema {
    let mut out = old.clone();
    for (t, c) in swaps {
        let (Some(ta), Some(tb)) = (out.tables.get_mut(t), new.tables.get(t)) else {
            continue;
        };
        if let (Some(ca), Some(cb)) = (ta.columns.iter_mut().find(|x| &x.name == c), tb.column(c)) {
            ca.type_sql = cb.type_sql.clone();
        }
        ta.indexes.retain(|_, i| !i.columns.contains(c));
        for (name, i) in &tb.indexes {
            if i.columns.contains(c) {
                ta.indexes.insert(name.clone(), i.clone());
            }
        }
    }
    out
}

/// One swap's chain, read from the target database (its key, the index's method, operator
/// class and parameters) and rendered after `rev`'s parent; and the project with it.
fn swap_chain(
    project: &Project,
    settings: &Settings,
    rev: &RevisionOptions,
    table: &crate::schema::QName,
    column: &str,
    new: &crate::schema::model::Schema,
) -> Result<(Vec<crate::commands::vector_swap::SwapRevision>, Project)> {
    use crate::commands::vector_swap::{chain, read_facts, render_chain, SwapOptions};
    let to = new
        .tables
        .get(table)
        .and_then(|t| t.column(column))
        .map(|c| c.type_sql.clone())
        .unwrap_or_default();
    let target = format!("{table}.{column}");
    let url = settings.require_url()?;
    let mut client = crate::db::connect(url, "retort-autogen")?;
    let facts = read_facts(&mut client, &target)?;
    let parts = chain(&facts, &SwapOptions::new(&target, &to)).map_err(|e| {
        let out = Error::usage(format!(
            "{table}.{column} changes from {} to {to} on a table with rows: {}",
            facts.column_type, e.message
        ))
        .with_hint(format!(
            "new embeddings need the program that computes them: migrate-revision --vector-swap {target} --to '{to}' --run '<command>' (docs/vector-swap.md), then autogenerate the rest; or --blocking to write ALTER COLUMN ... TYPE"
        ));
        out
    })?;
    let mut r = rev.clone();
    r.message = String::new();
    render_chain(project, &r, &parts)
}

/// The error-level findings `migrate-up`'s lint gate has for the revisions `ids` on the target
/// database (with its rows), so the user learns at once what the run would refuse. Empty when
/// the database cannot be read.
fn gate_preview(
    project: Project,
    settings: &Settings,
    ids: &[String],
) -> Vec<crate::lint::Finding> {
    let read = || -> Result<crate::lint::LintReport> {
        let mut m = crate::migrator::Migrator::with_project(project, settings, "retort-autogen")?;
        let heads = m.heads()?;
        let plan = m
            .project
            .graph
            .upgrade_plan(&heads, &crate::graph::Target::Heads)?;
        crate::lint::gate::lint_plan(&mut m.client, &m.project, &plan)
    };
    match read() {
        Ok(report) => report
            .findings
            .into_iter()
            .filter(|f| f.level == crate::lint::Level::Error && ids.contains(&f.revision))
            .collect(),
        Err(e) => {
            log::debug!("no lint of the generated revisions on the database: {e}");
            Vec::new()
        }
    }
}

/// One revision of the chain; `label: None` is the main, transactional revision.
struct Part {
    label: Option<&'static str>,
    section: Section,
}

/// The revisions to write, in chain order. The main revision is left out when it has nothing
/// to do and another revision does (an index change moved to the concurrent revision).
fn parts(split: Split) -> Vec<Part> {
    let main_empty = split.main.up.is_empty() && split.main.down.is_empty();
    let others = split.pre.is_some() || split.post.is_some() || split.concurrent.is_some();
    let mut parts = Vec::new();
    let mut add = |label, section: Option<Section>| {
        if let Some(section) = section {
            parts.push(Part { label, section });
        }
    };
    add(Some("enum values"), split.pre);
    add(None, (!main_empty || !others).then_some(split.main));
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
    // the revision options' id goes to the main revision, or to the first when there is none
    let has_main = parts.iter().any(|p| p.label.is_none());
    for (i, part) in parts.into_iter().enumerate() {
        let keeps_id = part.label.is_none() || (!has_main && i == 0);
        let o = part_options(rev, &part, parent.as_deref(), notes, &result.rows, keeps_id);
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
/// message and id (`keeps_id`: the one given, for the first part when there is no main one),
/// and are not transactional.
fn part_options(
    rev: &RevisionOptions,
    part: &Part,
    parent: Option<&str>,
    notes: &str,
    rows: &RowEstimates,
    keeps_id: bool,
) -> RevisionOptions {
    let mut o = rev.clone();
    let transactional = part.label.is_none();
    if let Some(kind) = part.label {
        if !keeps_id {
            o.rev_id = None;
        }
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

/// Which of `tables` hold rows on the target database: the planner's estimate, else a look for
/// one row (a table never analyzed since its rows went in). None when the database cannot be
/// read (the builds then stay in the main revision, and the summary's hint says so).
fn populated(
    settings: &Settings,
    tables: &[crate::schema::QName],
    rows: &RowEstimates,
) -> Vec<crate::schema::QName> {
    let (known, unknown): (Vec<_>, Vec<_>) = tables.iter().partition(|t| rows.contains_key(*t));
    let mut out: Vec<crate::schema::QName> = known.into_iter().cloned().collect();
    if unknown.is_empty() {
        return out;
    }
    let probe = || -> Result<Vec<crate::schema::QName>> {
        let url = settings.require_url()?;
        let mut c = crate::db::connect(url, "retort-autogen")?;
        let mut found = Vec::new();
        for t in unknown {
            let sql = format!("SELECT EXISTS (SELECT 1 FROM {})", t.sql());
            match c.query_typed(&sql, &[]) {
                Ok(rows) if rows.first().is_some_and(|r| r.get::<_, bool>(0)) => {
                    found.push(t.clone())
                }
                Ok(_) => {}
                // not on the target database (created by a revision not applied there)
                Err(e) => log::debug!("no rows known for {t}: {e}"),
            }
        }
        Ok(found)
    };
    match probe() {
        Ok(found) => out.extend(found),
        Err(e) => log::debug!("no row counts for the index builds: {e}"),
    }
    out
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
