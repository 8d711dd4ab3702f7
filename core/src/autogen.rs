//! `migrate-revision --autogenerate` and `migrate-check`'s drift checks.
//!
//! Both schemas are built as real databases on one server ([`shadow`]): one with every revision
//! replayed (the schema the migrations produce), one with `schema.sql` loaded (the schema
//! wanted). Both are read from the catalog, compared, and the statements rendered. Every
//! generated revision is validated before it is written: its up section is applied to the fresh
//! replay and the result must equal `schema.sql`'s schema; its down section is applied after
//! and the result must equal the replay. A failed validation is an error showing what is left.
//!
//! Up to three revisions are written, chained: (1) `ALTER TYPE ... ADD VALUE` statements, in a
//! non-transactional revision, only when the main revision uses a value it adds (PostgreSQL
//! refuses a new enum value in the transaction that added it); (2) the main revision;
//! (3) with `--concurrently`, `CREATE INDEX CONCURRENTLY` for indexes on existing tables, in a
//! non-transactional revision.

use crate::config::{DbUrl, Settings};
use crate::db::records::Records;
use crate::db::VersionTable;
use crate::error::{Error, ErrorKind, Result};
use crate::plan::Plan;
use crate::project::Project;
use crate::revision::{self, RevisionOptions};
use crate::run::{self, RunOptions};
use crate::schema::change::HazardKind;
use crate::schema::diff::{
    enum_change, rename_hints, unhandled, EnumChange, RenameHint, Unhandled,
};
use crate::schema::model::{ident, QName, Schema};
use crate::schema::render::{render_ops, Op};
use crate::schema::shadow::{load_sql_file, run_sql, ShadowDb, ShadowServer};
use crate::schema::{diff, introspect, DiffOptions, IntrospectOptions};
use crate::script::{parse_script, render_script, NewScript, Script};
use postgres::Client;
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
    /// Human-readable summary (for stderr).
    pub summary: Vec<String>,
}

impl Generated {
    pub fn nothing_to_do(&self) -> bool {
        self.revisions.is_empty()
    }
}

/// A rename the user asked for, resolved against the replayed schema.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Rename {
    Table {
        from: QName,
        to: String,
    },
    Column {
        table: QName,
        from: String,
        to: String,
    },
}

fn relations_to_exclude(settings: &Settings) -> IntrospectOptions {
    let table = VersionTable::new(settings.version_table.clone());
    let records = Records::for_table(&table);
    IntrospectOptions {
        exclude_relations: vec![table.qualified(), records.applied, records.audit],
        // retort creates the version table's schema itself (in a replay too).
        ignore_schemas: settings.version_table.schema.iter().cloned().collect(),
    }
}

/// Replays the migrations up to `targets` (each a revision id) on `client`.
fn replay(
    client: &mut Client,
    project: &Project,
    settings: &Settings,
    targets: &[String],
) -> Result<Vec<String>> {
    let table = VersionTable::new(settings.version_table.clone());
    let mut heads: Vec<String> = Vec::new();
    for t in targets {
        let plan = project.graph.upgrade_plan(&heads, t)?;
        heads = execute(client, project, &table, &plan)
            .map_err(|e| wrap(e, "replaying the migrations in a shadow database failed"))?;
    }
    Ok(heads)
}

fn execute(
    client: &mut Client,
    project: &Project,
    table: &VersionTable,
    plan: &Plan,
) -> Result<Vec<String>> {
    if plan.is_empty() {
        return Ok(plan.start_heads.clone());
    }
    // The run loop's step-by-step progress lines are noise in a shadow; -v still shows them.
    let level = log::max_level();
    if level <= log::LevelFilter::Info {
        log::set_max_level(log::LevelFilter::Warn);
    }
    let result = run::execute(client, project, table, plan, &RunOptions::default());
    log::set_max_level(level);
    Ok(result?.end_heads)
}

fn wrap(mut e: Error, context: &str) -> Error {
    e.message = format!("{context}: {}", e.message);
    e
}

fn schema_file_missing(path: &Path) -> Error {
    Error::usage(format!("no schema file at {}", path.display()))
        .with_hint("write the wanted schema there (plain PostgreSQL DDL), or pass --schema PATH / set MIGRATE_SCHEMA_FILE")
}

/// Builds a shadow with `schema_file` loaded and reads it.
fn load_wanted(
    server: &ShadowServer,
    schema_file: &Path,
    excl: &IntrospectOptions,
) -> Result<(ShadowDb, Schema)> {
    let t0 = Instant::now();
    let shadow = server.create()?;
    let mut c = shadow.connect()?;
    load_sql_file(&mut c, schema_file)?;
    let s = introspect(&mut c, excl)?;
    log::debug!(
        "loaded {} and read the result in {}",
        schema_file.display(),
        run::fmt_duration(t0.elapsed())
    );
    Ok((shadow, s))
}

/// A shadow with the migrations replayed up to `targets`, a connection to it, its heads and
/// its schema.
fn build_replay(
    server: &ShadowServer,
    project: &Project,
    settings: &Settings,
    targets: &[String],
    excl: &IntrospectOptions,
) -> Result<Replay> {
    let t0 = Instant::now();
    let db = server.create()?;
    let mut c = db.connect()?;
    let heads = replay(&mut c, project, settings, targets)?;
    let s = introspect(&mut c, excl)?;
    log::debug!(
        "replayed {} and read the result in {}",
        run::heads_text(&heads),
        run::fmt_duration(t0.elapsed())
    );
    Ok((db, c, heads, s))
}

type Replay = (ShadowDb, Client, Vec<String>, Schema);

/// Both shadows at the same time: the migrations replayed to `targets`, and `schema_file`
/// loaded. Both are dropped when the returned values are.
fn build_both(
    server: &ShadowServer,
    project: &Project,
    settings: &Settings,
    targets: &[String],
    schema_file: &Path,
    excl: &IntrospectOptions,
) -> Result<(Replay, (ShadowDb, Schema))> {
    let (replayed, wanted) = std::thread::scope(|sc| {
        let wanted = sc.spawn(|| load_wanted(server, schema_file, excl));
        let replayed = build_replay(server, project, settings, targets, excl);
        (
            replayed,
            wanted.join().expect("the schema file loader panicked"),
        )
    });
    Ok((replayed?, wanted?))
}

/// `migrate-revision --autogenerate`: computes, renders and validates the revision(s). Writes
/// nothing (see [`write`]).
pub fn autogenerate(
    project: &Project,
    settings: &Settings,
    rev: &RevisionOptions,
    opts: &AutogenOptions,
) -> Result<Generated> {
    after_shadows(autogenerate_inner(project, settings, rev, opts))
}

/// On an error, a Ctrl-C may be what caused it: let the interrupt handler finish dropping the
/// shadow databases before the error is reported.
fn after_shadows<T>(result: Result<T>) -> Result<T> {
    if result.is_err() {
        crate::schema::shadow::wait_if_interrupted();
    }
    result
}

fn autogenerate_inner(
    project: &Project,
    settings: &Settings,
    rev: &RevisionOptions,
    opts: &AutogenOptions,
) -> Result<Generated> {
    if rev.merge.is_some() {
        return Err(
            Error::usage("--autogenerate cannot be combined with --merge")
                .with_hint("merge the heads first, then autogenerate"),
        );
    }
    if !opts.schema_file.is_file() {
        return Err(schema_file_missing(&opts.schema_file));
    }
    let parsed_renames = parse_renames(opts)?;
    // The parents (and a check of the revision options) before any database work.
    let (_, probe) = revision::prepare(project, rev)?;
    let url = settings.require_url()?;
    let server = ShadowServer::new(url, opts.shadow_url.as_ref());
    let excl = relations_to_exclude(settings);

    // The replay and the wanted schema are built at the same time, in two shadows.
    let t0 = Instant::now();
    let ((replay_db, mut rc, start_heads, old), (_wanted_db, new)) = build_both(
        &server,
        project,
        settings,
        &probe.down_revisions,
        &opts.schema_file,
        &excl,
    )?;
    log::debug!(
        "built and read both shadow databases in {}",
        run::fmt_duration(t0.elapsed())
    );
    let _keep = &replay_db;

    // Renames: applied to the replay, read, then undone.
    let renames = resolve_renames(&parsed_renames, &old)?;
    let (rename_up, rename_down) = rename_sql(&renames);
    let renamed = if renames.is_empty() {
        old.clone()
    } else {
        run_sql(
            &mut rc,
            &rename_up
                .iter()
                .map(|o| format!("{};\n", o.sql))
                .collect::<String>(),
            "cannot apply the renames",
        )?;
        let r = introspect(&mut rc, &excl)?;
        run_sql(
            &mut rc,
            &rename_down
                .iter()
                .map(|o| format!("{};\n", o.sql))
                .collect::<String>(),
            "cannot undo the renames",
        )?;
        r
    };

    let hints = rename_hints(&renamed, &new);
    let unhandled_list = unhandled(&old, &new);

    // Split off concurrent index builds: `mid` is the wanted schema with those indexes as before.
    let (mid, moved) = if opts.concurrently {
        revert_indexes(&new, &renamed)
    } else {
        (new.clone(), 0)
    };
    let plain = DiffOptions::default();
    let mut main_up = rename_up.clone();
    main_up.extend(diff(&renamed, &mid, &plain));
    let mut main_down = diff(&mid, &renamed, &plain);
    main_down.extend(rename_down.clone());

    // Enum values added by ALTER TYPE ... ADD VALUE cannot be used in the transaction that
    // added them. Values the main revision's up section uses go to a non-transactional revision
    // before it ("pre"); values its down section adds back and uses (a removal in up) go to a
    // non-transactional revision after it ("post"), so they are committed on the way down.
    let literal_used = |ops: &[Op], added: &[(QName, String)]| {
        ops.iter()
            .filter(|o| !o.sql.starts_with("ALTER TYPE "))
            .any(|o| {
                added
                    .iter()
                    .any(|(_, v)| o.sql.contains(&crate::schema::model::literal(v)))
            })
    };
    let added_up = added_enum_values(&old, &new);
    let added_down = added_enum_values(&new, &old);
    let use_pre = !added_up.is_empty() && literal_used(&main_up, &added_up);
    let use_post = !added_down.is_empty() && literal_used(&main_down, &added_down);
    let mut pre: Option<(Vec<Op>, Vec<Op>)> = None;
    let mut post: Option<(Vec<Op>, Vec<Op>)> = None;
    if use_pre || use_post {
        let mut base = renamed.clone();
        let mut top = mid.clone();
        if use_pre {
            let old_e = with_enum_values(&old, &new, &added_up);
            base = with_enum_values(&renamed, &new, &added_up);
            pre = Some((diff(&old, &old_e, &plain), diff(&old_e, &old, &plain)));
        }
        if use_post {
            top = with_enum_values(&mid, &old, &added_down);
            post = Some((diff(&top, &mid, &plain), diff(&mid, &top, &plain)));
        }
        main_up = rename_up.clone();
        main_up.extend(diff(&base, &top, &plain));
        main_down = diff(&top, &base, &plain);
        main_down.extend(rename_down.clone());
    }
    let conc = if moved > 0 {
        let c = DiffOptions { concurrently: true };
        Some((diff(&mid, &new, &c), diff(&new, &mid, &c)))
    } else {
        None
    };

    let mut result = Generated {
        hints: hints.clone(),
        unhandled: unhandled_list.clone(),
        ..Default::default()
    };
    let nothing = main_up.is_empty() && pre.is_none() && post.is_none() && conc.is_none();
    if nothing && !opts.empty {
        result.summary = summary(&result, &[]);
        return Ok(result);
    }

    // Render and prepare the scripts, in chain order.
    let notes = file_notes(&unhandled_list, &hints, &opts.schema_file);
    let mut parts: Vec<(&str, Vec<Op>, Vec<Op>, bool)> = Vec::new();
    if let Some((u, d)) = pre {
        parts.push(("enum values", u, d, false));
    }
    parts.push(("main", main_up, main_down, true));
    if let Some((u, d)) = post {
        parts.push(("enum values removed", u, d, false));
    }
    if let Some((u, d)) = conc {
        parts.push(("concurrent indexes", u, d, false));
    }
    let mut scripts: Vec<Script> = project.scripts.clone();
    let mut current = project.clone();
    let mut parent: Option<String> = None;
    for (kind, up, down, transactional) in parts {
        let mut o = rev.clone();
        if kind != "main" {
            o.rev_id = None;
            o.message = format!("{} ({kind})", rev.message);
            o.branch_labels = Vec::new();
        }
        if let Some(p) = &parent {
            o.head = Some(p.clone());
            o.splice = false;
            o.depends_on = Vec::new();
        }
        o.non_transactional = !transactional || rev.non_transactional;
        let mut up_text = String::new();
        if kind == "main" {
            up_text.push_str(&notes);
        } else if !transactional {
            up_text.push_str("-- Not transactional: each statement runs and commits on its own.\n");
        }
        up_text.push_str(&render_ops(&up));
        o.up_sql = up_text;
        o.down_sql = if transactional {
            render_ops(&down)
        } else {
            format!(
                "-- Not transactional: each statement runs and commits on its own.\n{}",
                render_ops(&down)
            )
        };
        let (path, ns) = revision::prepare(&current, &o)?;
        let text = render_script(&ns);
        let parsed = parse_script(&path, text.as_bytes())
            .map_err(|e| wrap(e, "internal error: the generated script does not parse"))?;
        scripts.push(parsed);
        current = Project::from_scripts(&project.dir, scripts.clone())?;
        parent = Some(ns.revision.clone());
        result.up_ops.extend(up);
        result.revisions.push(GeneratedRevision {
            path,
            script: ns,
            text,
        });
    }

    // Validate on the fresh replay: up must give the wanted schema, down the replay again.
    let t0 = Instant::now();
    let table = VersionTable::new(settings.version_table.clone());
    let last = parent.expect("at least one revision");
    let plan = current.graph.upgrade_plan(&start_heads, &last)?;
    let check = Check {
        client: &mut rc,
        project: &current,
        table: &table,
        excl: &excl,
        unhandled: &unhandled_list,
    };
    check.apply_and_compare(
        &plan,
        &new,
        "the generated up section does not apply to the replayed migrations",
        "after the generated up section, the schema still differs from the schema file",
    )?;
    let down_target = if probe.down_revisions.is_empty() {
        "base".to_string()
    } else {
        probe.down_revisions[0].clone()
    };
    let plan = current
        .graph
        .downgrade_plan(&plan.end_heads, &down_target)?;
    let check = Check {
        client: &mut rc,
        project: &current,
        table: &table,
        excl: &excl,
        unhandled: &unhandled_list,
    };
    check.apply_and_compare(
        &plan,
        &old,
        "the generated down section does not apply",
        "after the generated down section, the schema differs from the replayed migrations",
    )?;
    log::debug!(
        "validated the revision(s) in {}",
        run::fmt_duration(t0.elapsed())
    );
    result.summary = summary(&result, &result.up_ops);
    Ok(result)
}

/// One validation pass on the fresh replay: run a plan, then require an empty diff.
struct Check<'a> {
    client: &'a mut Client,
    project: &'a Project,
    table: &'a VersionTable,
    excl: &'a IntrospectOptions,
    unhandled: &'a [Unhandled],
}

impl Check<'_> {
    fn apply_and_compare(
        self,
        plan: &Plan,
        want: &Schema,
        fails: &str,
        differs: &str,
    ) -> Result<()> {
        execute(self.client, self.project, self.table, plan)
            .map_err(|e| validation_error(e, fails, self.unhandled))?;
        let got = introspect(self.client, self.excl)?;
        let left = diff(&got, want, &DiffOptions::default());
        if !left.is_empty() {
            return Err(left_over(&left, differs));
        }
        Ok(())
    }
}

fn validation_error(e: Error, what: &str, unhandled_list: &[Unhandled]) -> Error {
    let mut err = Error::new(
        ErrorKind::Migration,
        format!("validation failed: {what}: {}", e.message),
    )
    .with_hint("nothing was written; fix schema.sql or write this revision by hand");
    let differing: Vec<String> = unhandled_list
        .iter()
        .filter(|u| u.differs())
        .map(|u| u.describe("the migrations", "the schema file"))
        .collect();
    if !differing.is_empty() {
        err = err.with_hint(format!(
            "nothing was written; the revision may need objects autogenerate does not compare: {} — add them by hand in an earlier revision",
            differing.join("; ")
        ));
    }
    err
}

fn left_over(ops: &[Op], what: &str) -> Error {
    Error::new(ErrorKind::Migration, format!("validation failed: {what}; remaining difference:\n{}", indent(&render_ops(ops))))
        .with_hint("nothing was written; this is a gap in autogenerate: write this revision by hand (and report it)")
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("    {l}\n")).collect()
}

/// Comment lines at the top of the main up section.
fn file_notes(unhandled_list: &[Unhandled], hints: &[RenameHint], schema_file: &Path) -> String {
    let file = schema_file
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| "schema.sql".into());
    let mut s = format!("-- Generated by migrate-revision --autogenerate from {file}.\n");
    for u in unhandled_list.iter().filter(|u| u.differs()) {
        s.push_str(&format!(
            "-- not compared (write it by hand): {}\n",
            u.describe("the migrations", &file)
        ));
    }
    for h in hints {
        s.push_str(&format!("-- {}\n", h.describe()));
    }
    s.push('\n');
    s
}

/// The summary printed on stderr.
fn summary(g: &Generated, up: &[Op]) -> Vec<String> {
    let mut out = Vec::new();
    if g.revisions.is_empty() && up.is_empty() {
        out.push(
            "No changes: the migrations already produce the schema of the schema file.".into(),
        );
    } else {
        out.push(format!(
            "{} change{}:",
            up.len(),
            if up.len() == 1 { "" } else { "s" }
        ));
        for op in up {
            out.push(format!("  {}", op.what));
        }
        let hz: Vec<&Op> = up.iter().filter(|o| !o.hazards.is_empty()).collect();
        if !hz.is_empty() {
            let count = |k: HazardKind| {
                up.iter()
                    .filter(|o| o.hazards.iter().any(|h| h.kind == k))
                    .count()
            };
            let kinds = [
                HazardKind::DeletesData,
                HazardKind::RewritesTable,
                HazardKind::AccessExclusiveLock,
                HazardKind::BuildsIndex,
                HazardKind::ScansTable,
                HazardKind::MayFail,
            ];
            let counts: Vec<String> = kinds
                .iter()
                .map(|k| (k, count(*k)))
                .filter(|(_, n)| *n > 0)
                .map(|(k, n)| format!("{n} {k}"))
                .collect();
            out.push(format!(
                "hazards ({}): review the statements marked '-- hazard:'",
                counts.join(", ")
            ));
            for op in hz {
                for h in &op.hazards {
                    out.push(format!("  {}: {} — {}", op.what, h.kind, h.detail));
                }
            }
        }
    }
    for h in &g.hints {
        out.push(h.describe());
    }
    let not_compared: Vec<&Unhandled> = g.unhandled.iter().collect();
    if !not_compared.is_empty() {
        out.push(format!(
            "not compared ({} object{} autogenerate does not handle):",
            not_compared.len(),
            if not_compared.len() == 1 { "" } else { "s" }
        ));
        for u in not_compared {
            out.push(format!(
                "  {}",
                u.describe("the migrations", "the schema file")
            ));
        }
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

/// (enum, value) pairs that the change from `old` to `new` adds with ADD VALUE.
fn added_enum_values(old: &Schema, new: &Schema) -> Vec<(QName, String)> {
    let mut out = Vec::new();
    for (n, e) in &old.enums {
        if let Some(ne) = new.enums.get(n) {
            if let Some(EnumChange::AddValues(adds)) = enum_change(&e.values, &ne.values) {
                out.extend(adds.into_iter().map(|v| (n.clone(), v.value)));
            }
        }
    }
    out
}

fn with_enum_values(s: &Schema, from: &Schema, added: &[(QName, String)]) -> Schema {
    let mut s = s.clone();
    for (n, _) in added {
        if let (Some(e), Some(f)) = (s.enums.get_mut(n), from.enums.get(n)) {
            e.values = f.values.clone();
        }
    }
    s
}

/// `target` with the indexes that are new or changed on tables `base` already has put back as
/// in `base`; returns it and how many indexes were put back.
fn revert_indexes(target: &Schema, base: &Schema) -> (Schema, usize) {
    let mut mid = target.clone();
    let mut moved = 0;
    for (t, tb) in &target.tables {
        let Some(ta) = base.tables.get(t) else {
            continue;
        };
        let m = mid.tables.get_mut(t).expect("same tables");
        for (name, ib) in &tb.indexes {
            match ta.indexes.get(name) {
                Some(ia) if ia.same_definition(ib) => {}
                Some(ia) => {
                    let usable = ia
                        .columns
                        .iter()
                        .all(|c| match (ta.column(c), tb.column(c)) {
                            (Some(x), Some(y)) => x.type_sql == y.type_sql,
                            _ => false,
                        });
                    if usable {
                        m.indexes.insert(name.clone(), ia.clone());
                        moved += 1;
                    }
                }
                None => {
                    let renamed = ta
                        .indexes
                        .values()
                        .any(|ia| !tb.indexes.contains_key(&ia.name) && ia.same_definition(ib));
                    if !renamed {
                        m.indexes.remove(name);
                        moved += 1;
                    }
                }
            }
        }
    }
    (mid, moved)
}

fn parse_renames(opts: &AutogenOptions) -> Result<Vec<(Option<String>, String, String)>> {
    // (Some(table), old column, new column) or (None, old table, new table)
    let mut out = Vec::new();
    for r in &opts.table_renames {
        let (from, to) = r
            .split_once('=')
            .filter(|(f, t)| !f.is_empty() && !t.is_empty())
            .ok_or_else(|| {
                Error::usage(format!("--rename-table '{r}' is not OLD=NEW"))
                    .with_hint("e.g. --rename-table docs=documents (OLD may be schema.table)")
            })?;
        out.push((None, from.to_string(), to.to_string()));
    }
    for r in &opts.renames {
        let parsed = r.split_once('=').and_then(|(lhs, to)| {
            lhs.rsplit_once('.')
                .map(|(t, from)| (t.to_string(), from.to_string(), to.to_string()))
        });
        match parsed {
            Some((t, from, to)) if !t.is_empty() && !from.is_empty() && !to.is_empty() => {
                out.push((Some(t), from, to))
            }
            _ => {
                return Err(Error::usage(format!("--rename '{r}' is not TABLE.OLD=NEW"))
                    .with_hint("e.g. --rename documents.title=name (TABLE may be schema.table)"))
            }
        }
    }
    Ok(out)
}

fn find_table(s: &Schema, spec: &str) -> Option<QName> {
    if let Some((sch, n)) = spec.split_once('.') {
        let q = QName::new(sch, n);
        return s.tables.contains_key(&q).then_some(q);
    }
    let found: Vec<&QName> = s.tables.keys().filter(|q| q.name == spec).collect();
    match found.as_slice() {
        [one] => Some((*one).clone()),
        many => many
            .iter()
            .find(|q| q.schema == "public")
            .map(|q| (*q).clone()),
    }
}

fn resolve_renames(
    parsed: &[(Option<String>, String, String)],
    old: &Schema,
) -> Result<Vec<Rename>> {
    let mut out = Vec::new();
    let mut table_map: Vec<(QName, QName)> = Vec::new();
    for (t, from, to) in parsed {
        if t.is_none() {
            let q = find_table(old, from).ok_or_else(|| {
                Error::usage(format!(
                    "--rename-table: the migrations have no table '{from}'"
                ))
            })?;
            let new_q = QName::new(q.schema.clone(), to.clone());
            if old.tables.contains_key(&new_q) {
                return Err(Error::usage(format!(
                    "--rename-table: table {new_q} already exists in the migrations"
                )));
            }
            table_map.push((q.clone(), new_q));
            out.push(Rename::Table {
                from: q,
                to: to.clone(),
            });
        }
    }
    for (t, from, to) in parsed {
        let Some(t) = t else { continue };
        let q = match find_table(old, t) {
            Some(q) => q,
            None => table_map
                .iter()
                .find(|(_, n)| n.name == *t || format!("{}.{}", n.schema, n.name) == *t)
                .map(|(o, _)| o.clone())
                .ok_or_else(|| {
                    Error::usage(format!("--rename: the migrations have no table '{t}'"))
                })?,
        };
        let table = &old.tables[&q];
        if table.column(from).is_none() {
            return Err(Error::usage(format!(
                "--rename: table {q} has no column '{from}' in the migrations"
            )));
        }
        if table.column(to).is_some() {
            return Err(Error::usage(format!(
                "--rename: table {q} already has a column '{to}'"
            )));
        }
        let current = table_map
            .iter()
            .find(|(o, _)| *o == q)
            .map(|(_, n)| n.clone())
            .unwrap_or(q);
        out.push(Rename::Column {
            table: current,
            from: from.clone(),
            to: to.clone(),
        });
    }
    Ok(out)
}

/// The rename statements (up), and their reverse in reverse order (down).
fn rename_sql(renames: &[Rename]) -> (Vec<Op>, Vec<Op>) {
    let mut up = Vec::new();
    let mut down = Vec::new();
    for r in renames {
        match r {
            Rename::Table { from, to } => {
                let to_q = QName::new(from.schema.clone(), to.clone());
                up.push(
                    Op::new(
                        format!("ALTER TABLE {} RENAME TO {}", from.sql(), ident(to)),
                        format!("rename table {from} to {to_q}"),
                    )
                    .hazard(
                        HazardKind::AccessExclusiveLock,
                        format!("on {from}, briefly; code using the old name breaks"),
                    ),
                );
                down.push(Op::new(
                    format!("ALTER TABLE {} RENAME TO {}", to_q.sql(), ident(&from.name)),
                    format!("rename table {to_q} to {from}"),
                ));
            }
            Rename::Column { table, from, to } => {
                up.push(
                    Op::new(
                        format!(
                            "ALTER TABLE {} RENAME COLUMN {} TO {}",
                            table.sql(),
                            ident(from),
                            ident(to)
                        ),
                        format!("rename column {table}.{from} to {to}"),
                    )
                    .hazard(
                        HazardKind::AccessExclusiveLock,
                        format!("on {table}, briefly; code using the old name breaks"),
                    ),
                );
                down.push(Op::new(
                    format!(
                        "ALTER TABLE {} RENAME COLUMN {} TO {}",
                        table.sql(),
                        ident(to),
                        ident(from)
                    ),
                    format!("rename column {table}.{to} to {from}"),
                ));
            }
        }
    }
    down.reverse();
    (up, down)
}

/// What the drift checks found.
#[derive(Debug, Clone, Default)]
pub struct DriftReport {
    /// Differences between the schema file and the replayed migrations (statements that would
    /// fix them, described).
    pub schema_drift: Vec<String>,
    /// Differences between the live database and a replay of its applied revisions.
    pub database_drift: Vec<String>,
}

fn describe_diff(a: &Schema, b: &Schema, a_side: &str, b_side: &str) -> Vec<String> {
    let mut out: Vec<String> = diff(a, b, &DiffOptions::default())
        .into_iter()
        .map(|o| o.what)
        .collect();
    for u in unhandled(a, b).into_iter().filter(|u| u.differs()) {
        out.push(format!(
            "{} (not compared by autogenerate)",
            u.describe(a_side, b_side)
        ));
    }
    out
}

/// `migrate-check`'s drift checks: `schema_file` against the migrations replayed to the heads,
/// and the live database (`live`, at `current`) against a replay of its applied revisions.
pub fn check_drift(
    project: &Project,
    settings: &Settings,
    schema_file: &Path,
    shadow_url: Option<&DbUrl>,
    live: &mut Client,
    current: &[String],
) -> Result<DriftReport> {
    after_shadows(check_drift_inner(
        project,
        settings,
        schema_file,
        shadow_url,
        live,
        current,
    ))
}

fn check_drift_inner(
    project: &Project,
    settings: &Settings,
    schema_file: &Path,
    shadow_url: Option<&DbUrl>,
    live: &mut Client,
    current: &[String],
) -> Result<DriftReport> {
    let url = settings.require_url()?;
    let server = ShadowServer::new(url, shadow_url);
    let excl = relations_to_exclude(settings);
    let heads = project.graph.heads();
    let ((_replay_db, _rc, _, at_heads), (_wanted_db, wanted)) =
        build_both(&server, project, settings, &heads, schema_file, &excl)?;
    let mut report = DriftReport {
        schema_drift: describe_diff(&at_heads, &wanted, "the migrations", "the schema file"),
        ..Default::default()
    };
    let mut cur: Vec<String> = current.to_vec();
    cur.sort();
    let mut hs = heads.clone();
    hs.sort();
    let expected = if cur == hs {
        at_heads
    } else {
        let db2 = server.create()?;
        let mut c2 = db2.connect()?;
        replay(&mut c2, project, settings, &cur)?;
        introspect(&mut c2, &excl)?
    };
    let actual = introspect(live, &excl)?;
    // Described as what would repair the database.
    report.database_drift =
        describe_diff(&actual, &expected, "the database", "the applied revisions");
    Ok(report)
}

/// `migrate-check`'s drift step: problems (`schema_drift`, `database_drift`,
/// `schema_file_invalid`, `replay_failed`) and one line saying what was checked. Without a
/// schema file nothing is checked (and the line says so).
pub fn drift_problems(
    project: &Project,
    settings: &Settings,
    shadow_url: Option<&DbUrl>,
    live: &mut Client,
    current: &[String],
) -> Result<(Vec<crate::check::Problem>, String)> {
    use crate::check::Problem;
    let file = &settings.schema_file;
    if !file.is_file() {
        return Ok((
            Vec::new(),
            format!(
                "no schema file ({}): schema drift not checked",
                file.display()
            ),
        ));
    }
    let limit = |v: &[String]| -> String {
        let mut s: Vec<String> = v.iter().take(20).cloned().collect();
        if v.len() > 20 {
            s.push(format!("... and {} more", v.len() - 20));
        }
        s.join("; ")
    };
    let report = match check_drift(project, settings, file, shadow_url, live, current) {
        Ok(r) => r,
        Err(e)
            if e.kind == ErrorKind::Usage && e.message.starts_with(&file.display().to_string()) =>
        {
            return Ok((
                vec![Problem {
                    code: "schema_file_invalid",
                    message: e.to_string(),
                }],
                format!("{} does not load", file.display()),
            ));
        }
        Err(e) if e.kind == ErrorKind::Migration => {
            return Ok((
                vec![Problem {
                    code: "replay_failed",
                    message: e.to_string(),
                }],
                "the migrations do not replay on an empty database".into(),
            ));
        }
        Err(e) => return Err(e),
    };
    let mut problems = Vec::new();
    if !report.schema_drift.is_empty() {
        problems.push(Problem {
            code: "schema_drift",
            message: format!(
                "{} and the migrations disagree ({} difference{}): {}; run migrate-revision --autogenerate -m \"...\"",
                file.display(),
                report.schema_drift.len(),
                if report.schema_drift.len() == 1 { "" } else { "s" },
                limit(&report.schema_drift)
            ),
        });
    }
    if !report.database_drift.is_empty() {
        problems.push(Problem {
            code: "database_drift",
            message: format!(
                "the database's schema is not what its applied revisions ({}) produce ({} difference{}); to match them it would need: {}",
                run::heads_text(current),
                report.database_drift.len(),
                if report.database_drift.len() == 1 { "" } else { "s" },
                limit(&report.database_drift)
            ),
        });
    }
    Ok((
        problems,
        format!("{} matches the migrations and the database", file.display()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rename_arguments_are_parsed() {
        let o = AutogenOptions {
            renames: vec!["docs.title=name".into(), "s.t.a=b".into()],
            table_renames: vec!["old=new".into()],
            ..Default::default()
        };
        assert_eq!(
            parse_renames(&o).unwrap(),
            vec![
                (None, "old".into(), "new".into()),
                (Some("docs".into()), "title".into(), "name".into()),
                (Some("s.t".into()), "a".into(), "b".into())
            ]
        );
        let bad = AutogenOptions {
            renames: vec!["title=name".into()],
            ..Default::default()
        };
        assert!(parse_renames(&bad)
            .unwrap_err()
            .message
            .contains("TABLE.OLD=NEW"));
    }
}
