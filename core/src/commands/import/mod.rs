//! `migrate-import`: an Alembic history becomes retort scripts, with the same revision ids, so
//! a database Alembic migrated is already at the right place.
//!
//! 1. The Alembic exporter (`python/retort_migrate/alembic_export.py`, embedded in the binary)
//!    runs in the project's Python and prints every revision's metadata and its bodies rendered
//!    by Alembic's offline mode ([`helper`]).
//! 2. Each revision becomes a script ([`render`]); the scripts are parsed back and their graph
//!    built, all in memory.
//!    A revision whose body offline SQL cannot say (it inspects the live schema, reads rows,
//!    opens an ORM session) becomes a program step: `-- run:` the revision's own function,
//!    through Alembic's operations on the database (`retort_migrate.alembic_step`), the
//!    Alembic file kept in the migrations directory's `alembic/`. With `strict` it is refused
//!    instead (or written as SQL that fails until written, with `allow_unconverted`).
//! 3. Unless told not to, [`verify`] runs Alembic's own upgrade (online, the project's env.py)
//!    and the scripts (program steps included) side by side on two shadow databases, revision
//!    by revision, up and back down, comparing the catalogs after every step.
//! 4. Only then are the files written; nothing is overwritten without `force`.

pub mod baseline;
pub mod helper;
pub mod render;
pub mod verify;

use crate::config::{DbUrl, Settings};
use crate::error::{Error, ErrorKind, Result};
use crate::plan::Direction;
use crate::project::Project;
use crate::schema::shadow::ShadowServer;
use crate::script::parse_script;
use helper::Helper;
use render::{
    check_ids, render_revision, without_program_lines, Export, Rendered, Unrenderable, PROGRAM_DIR,
    STEP_COMMAND,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
pub use verify::{Difference, Verification};
use verify::{Program, Subject};

/// What to import and how.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The Alembic configuration (`alembic.ini`), relative to the current directory.
    pub config: PathBuf,
    /// Its section (`alembic`), as `alembic --name`.
    pub section: String,
    /// The Python that runs Alembic; `None`: [`helper::default_python`].
    pub python: Option<PathBuf>,
    /// Render without running env.py (no target_metadata, hence no naming conventions).
    pub skip_env: bool,
    /// Compare with Alembic's own upgrade and downgrade on shadow databases.
    pub verify: bool,
    /// Refuse revisions whose bodies need a live database instead of importing them as
    /// program steps.
    pub strict: bool,
    /// Write revisions whose bodies need a live database, as scripts that fail until written
    /// (implies `strict`).
    pub allow_unconverted: bool,
    /// Overwrite existing files (and replace scripts of the same revisions).
    pub force: bool,
    /// Write nothing: verify the scripts already in the directory against Alembic.
    pub verify_only: bool,
    /// Where the shadow databases are created; default: the database's server.
    pub shadow_url: Option<DbUrl>,
    /// The whole history as one baseline script under the head's id, rendered from a shadow
    /// Alembic migrated (schema and rows), verified like a squash.
    pub baseline: bool,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            config: PathBuf::from("alembic.ini"),
            section: "alembic".into(),
            python: None,
            skip_env: false,
            verify: true,
            strict: false,
            allow_unconverted: false,
            force: false,
            verify_only: false,
            shadow_url: None,
            baseline: false,
        }
    }
}

/// One imported revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedRevision {
    pub revision: String,
    pub message: String,
    /// The script (written, or that would be).
    pub path: PathBuf,
    /// The Alembic revision file.
    pub source: String,
    pub transactional: bool,
    /// Why its SQL could not be written, with the Alembic file and line (`strict`).
    pub unconverted: Option<String>,
    /// Why a section is a program step running the Alembic revision's own function (what the
    /// revision does, with the Alembic file and line).
    pub program: Option<String>,
    pub warnings: Vec<String>,
}

/// What the import did.
#[derive(Debug, Clone, Default)]
pub struct ImportReport {
    pub python: String,
    pub alembic_version: String,
    pub dir: PathBuf,
    /// Parents first.
    pub revisions: Vec<ImportedRevision>,
    pub heads: Vec<String>,
    /// Whether the scripts were written (false: stopped, or `verify_only`).
    pub written: bool,
    /// The scripts already in the directory were verified; nothing was to be written.
    pub verify_only: bool,
    /// Scripts of the same revisions under other names, removed (`force`).
    pub replaced: Vec<PathBuf>,
    pub verification: Option<Verification>,
    /// Warnings about the whole history (the dialect, the version table).
    pub warnings: Vec<String>,
    pub export_time: Duration,
    pub verify_time: Duration,
    /// `baseline`: the one script written (or that would be).
    pub baseline: Option<baseline::BaselineScript>,
}

impl ImportReport {
    pub fn unconverted(&self) -> Vec<&ImportedRevision> {
        self.revisions
            .iter()
            .filter(|r| r.unconverted.is_some())
            .collect()
    }

    /// Imported (or verified) without a problem: written, or `verify_only` with no difference.
    pub fn ok(&self) -> bool {
        let verified = self.verification.as_ref().is_none_or(Verification::ok);
        verified && (self.written || self.verify_only && self.verification.is_some())
    }
}

/// Runs the import. `Err` when it cannot be made (see docs/exit-codes.md); a stop for
/// unconverted revisions or verification differences is an `Ok` report with `written: false`.
pub fn import(settings: &Settings, opts: &ImportOptions) -> Result<ImportReport> {
    let dir = &settings.migrations_dir;
    let helper = Helper::new(opts.python.clone(), &opts.config, &opts.section)?;
    let t0 = Instant::now();
    let export = helper.export(opts.skip_env)?;
    let export_time = t0.elapsed();
    log::info!(
        "read {} Alembic revision{} with {} (Alembic {}) in {}",
        export.revisions.len(),
        crate::words::plural(export.revisions.len()),
        export.python,
        export.alembic_version,
        crate::words::fmt_duration(export_time)
    );
    check_ids(&export)?;
    let mut report = ImportReport {
        python: export.python.clone(),
        alembic_version: export.alembic_version.clone(),
        dir: dir.clone(),
        heads: export.heads.clone(),
        warnings: export.warnings.clone(),
        export_time,
        verify_only: opts.verify_only,
        ..Default::default()
    };
    if export.version_table != settings.version_table.name
        || export.version_table_schema != settings.version_table.schema
    {
        report.warnings.push(format!(
            "env.py keeps Alembic's versions in {}{}, retort in {}: set MIGRATE_VERSION_TABLE{} \
             so that retort reads the same table",
            export
                .version_table_schema
                .as_deref()
                .map(|s| format!("{s}."))
                .unwrap_or_default(),
            export.version_table,
            settings.version_table.name,
            if export.version_table_schema.is_some() {
                " and MIGRATE_VERSION_SCHEMA"
            } else {
                ""
            }
        ));
    }
    let unrenderable = if opts.strict || opts.allow_unconverted {
        Unrenderable::Unconverted
    } else {
        Unrenderable::Program
    };
    let rendered: Vec<Rendered> = export
        .revisions
        .iter()
        .map(|r| render_revision(r, dir, &export.alembic_version, unrenderable))
        .collect();
    let programs = unrenderable == Unrenderable::Program;
    report.revisions = export
        .revisions
        .iter()
        .zip(&rendered)
        .map(|(r, w)| ImportedRevision {
            revision: r.revision.clone(),
            message: r.message.clone(),
            path: w.path.clone(),
            source: r.path.clone(),
            transactional: r.transactional,
            unconverted: r.reason().filter(|_| !programs),
            program: r.reason().filter(|_| programs),
            warnings: r.warnings.clone(),
        })
        .collect();
    // what the files will say, parsed back (and what the verification runs)
    let texts: Vec<(PathBuf, String)> = if opts.verify_only {
        let p = Project::load(dir)?;
        same_revisions(&p, &export)?;
        let mut texts = Vec::with_capacity(p.scripts.len());
        for s in &p.scripts {
            let text = std::fs::read_to_string(&s.path)
                .map_err(|e| Error::io(format!("cannot read {}: {e}", s.path.display())))?;
            texts.push((s.path.clone(), text));
        }
        texts
    } else {
        in_memory_project(dir, &rendered)?;
        rendered
            .iter()
            .map(|r| (r.path.clone(), r.text.clone()))
            .collect()
    };
    if opts.baseline && !opts.verify_only {
        return import_baseline(settings, opts, &helper, &export, &rendered, report);
    }
    if !opts.verify_only && !report.unconverted().is_empty() && !opts.allow_unconverted {
        return Ok(report);
    }
    let replaced = if opts.verify_only {
        Vec::new()
    } else {
        check_existing(dir, &rendered, opts.force)?
    };
    if opts.verify || opts.verify_only {
        let server = shadow_server(settings, opts)?;
        let t1 = Instant::now();
        let context = ContextFile::new(&export)?;
        let subject = verification_subject(dir, &texts, &export, context.0.clone())?;
        let v = verify::verify(&subject, settings, &server, &helper, &export)?;
        report.verify_time = t1.elapsed();
        let stop = !v.ok();
        report.verification = Some(v);
        if stop || opts.verify_only {
            return Ok(report);
        }
    }
    write_all(dir, &rendered, &replaced, opts.force, &export)?;
    report.replaced = replaced;
    report.written = true;
    Ok(report)
}

/// `baseline`: one script for the whole history, rendered from a shadow Alembic migrated and
/// verified on another; written when it gives Alembic's schema and rows.
fn import_baseline(
    settings: &Settings,
    opts: &ImportOptions,
    helper: &Helper,
    export: &Export,
    rendered: &[Rendered],
    mut report: ImportReport,
) -> Result<ImportReport> {
    let dir = &settings.migrations_dir;
    let project = in_memory_project(dir, rendered)?;
    let server = shadow_server(settings, opts)?;
    let t1 = Instant::now();
    let b = baseline::baseline(&project, settings, &server, helper, export, dir)?;
    report.verify_time = t1.elapsed();
    let mut written = vec![Rendered {
        revision: b.revision.clone(),
        path: b.path.clone(),
        text: b.text.clone(),
        program: None,
    }];
    for (revision, path, text) in &b.others {
        written.push(Rendered {
            revision: revision.clone(),
            path: path.clone(),
            text: text.clone(),
            program: None,
        });
    }
    let mut v = Verification {
        steps: 1,
        upgrades: usize::from(b.differences.is_empty()),
        ..Verification::default()
    };
    if let Some(d) = baseline::as_difference(&b) {
        v.differences.push(d);
    }
    report.verification = Some(v);
    let ok = b.differences.is_empty();
    report.baseline = Some(b);
    if !ok {
        return Ok(report);
    }
    let replaced = check_existing(dir, &written, opts.force)?;
    write_all(dir, &written, &replaced, opts.force, export)?;
    report.replaced = replaced;
    report.written = true;
    Ok(report)
}

/// `_context.json`: what a program step's MigrationContext needs from env.py (the naming
/// convention of its target_metadata).
fn context_json(export: &Export) -> String {
    let nc = match &export.naming_convention {
        serde_json::Value::Object(m) if !m.is_empty() => export.naming_convention.clone(),
        _ => serde_json::json!({}),
    };
    let mut text = serde_json::to_string_pretty(&serde_json::json!({ "naming_convention": nc }))
        .unwrap_or_else(|_| "{}".into());
    text.push('\n');
    text
}

/// The verification's `_context.json`, in a temporary file removed with this value.
struct ContextFile(PathBuf);

impl ContextFile {
    fn new(export: &Export) -> Result<ContextFile> {
        let path = std::env::temp_dir().join(format!(
            "retort-alembic-context-{}-{}.json",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        std::fs::write(&path, context_json(export))
            .map_err(|e| Error::io(format!("cannot write {}: {e}", path.display())))?;
        Ok(ContextFile(path))
    }
}

impl Drop for ContextFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The scripts as the verification runs them: `-- run:` lines made comments, each program
/// step run beside (the import's own, `retort_migrate.alembic_step alembic/FILE.py`, on the
/// Alembic revision file itself, which is what `alembic/FILE.py` will be), and an unconverted
/// section's Alembic function run in its place so that the walk goes on.
fn verification_subject(
    dir: &Path,
    texts: &[(PathBuf, String)],
    export: &Export,
    context: PathBuf,
) -> Result<Subject> {
    let sources: HashMap<&str, &str> = export
        .revisions
        .iter()
        .map(|r| (r.revision.as_str(), r.path.as_str()))
        .collect();
    let mut scripts = Vec::with_capacity(texts.len());
    let mut programs = HashMap::new();
    for (path, text) in texts {
        let (plain, commands) = without_program_lines(text);
        let script = parse_script(path, plain.as_bytes())
            .map_err(|e| Error::script(format!("{}: {}", path.display(), e.message)))?;
        let source = sources.get(script.revision.as_str()).copied();
        for (direction, command) in commands {
            let d = if direction == "up" {
                Direction::Up
            } else {
                Direction::Down
            };
            let program = match (command.strip_prefix(STEP_COMMAND), source) {
                (Some(rest), Some(src)) if rest.trim().starts_with(PROGRAM_DIR) => {
                    Program::Alembic {
                        source: PathBuf::from(src),
                        counted: true,
                    }
                }
                _ => Program::Command(command),
            };
            programs.insert((script.revision.clone(), d), program);
        }
        if script.unconverted.is_some() {
            if let Some(src) = source {
                let marker = "DO $retort$ BEGIN RAISE EXCEPTION";
                let sections = [
                    (Direction::Up, Some(&script.up)),
                    (Direction::Down, script.down.as_ref()),
                ];
                for (d, section) in sections {
                    if section.is_some_and(|s| s.sql.contains(marker)) {
                        programs.insert(
                            (script.revision.clone(), d),
                            Program::Alembic {
                                source: PathBuf::from(src),
                                counted: false,
                            },
                        );
                    }
                }
            }
        }
        scripts.push(script);
    }
    let mut project = Project::from_scripts(dir, scripts)?;
    // the blanked unconverted sections: their DO block would fail
    for s in &mut project.scripts {
        for (d, section) in [
            (Direction::Up, Some(&mut s.up)),
            (Direction::Down, s.down.as_mut()),
        ] {
            if let Some(sec) = section {
                if programs
                    .get(&(s.revision.clone(), d))
                    .is_some_and(|p| matches!(p, Program::Alembic { counted: false, .. }))
                {
                    sec.sql = String::new();
                }
            }
        }
    }
    Ok(Subject {
        project,
        programs,
        context,
    })
}

/// The scripts parsed back and their graph built: what the files will say, checked before
/// any is written.
fn in_memory_project(dir: &Path, rendered: &[Rendered]) -> Result<Project> {
    let mut scripts = Vec::with_capacity(rendered.len());
    for r in rendered {
        let s = parse_script(&r.path, r.text.as_bytes()).map_err(|e| {
            Error::script(format!(
                "revision {} cannot be written as a retort script: {}",
                r.revision, e.message
            ))
            .with_hint(
                "its SQL holds a line that reads as a section marker ('-- migrate:...'): \
                 change that comment in the Alembic revision, then import again",
            )
        })?;
        scripts.push(s);
    }
    // in file-name order, as the written directory is read: it breaks ties between branches
    scripts.sort_by(|a, b| a.path.file_name().cmp(&b.path.file_name()));
    Project::from_scripts(dir, scripts)
}

/// `verify_only`: the directory's scripts must be the Alembic history's revisions.
fn same_revisions(project: &Project, export: &Export) -> Result<()> {
    let ours: std::collections::BTreeSet<&str> = project
        .scripts
        .iter()
        .map(|s| s.revision.as_str())
        .collect();
    let theirs: std::collections::BTreeSet<&str> = export
        .revisions
        .iter()
        .map(|r| r.revision.as_str())
        .collect();
    let missing: Vec<&str> = theirs.difference(&ours).copied().collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::usage(format!(
        "{} has no script for {} Alembic revision{}: {}",
        project.dir.display(),
        missing.len(),
        crate::words::plural(missing.len()),
        missing.join(", ")
    ))
    .with_hint("run migrate-import without --verify-only to write them"))
}

/// The files the import would overwrite, and the scripts of the same revisions under other
/// names: an error listing them without `force`; with it, the latter (to be removed).
fn check_existing(dir: &Path, rendered: &[Rendered], force: bool) -> Result<Vec<PathBuf>> {
    let mut clashes: Vec<String> = rendered
        .iter()
        .filter(|r| r.path.exists())
        .map(|r| r.path.display().to_string())
        .collect();
    for (source, dest) in rendered.iter().filter_map(|r| r.program.as_ref()) {
        if dest.exists() && std::fs::read(dest).ok() != std::fs::read(source).ok() {
            clashes.push(dest.display().to_string());
        }
    }
    let mut replaced = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        let ids: std::collections::HashMap<&str, &Path> = rendered
            .iter()
            .map(|r| (r.revision.as_str(), r.path.as_path()))
            .collect();
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("sql")))
            .collect();
        paths.sort();
        for p in paths {
            let Ok(bytes) = std::fs::read(&p) else {
                continue;
            };
            let Ok(s) = parse_script(&p, &bytes) else {
                continue;
            };
            if let Some(&ours) = ids.get(s.revision.as_str()) {
                if ours != p {
                    clashes.push(format!("{} (revision {})", p.display(), s.revision));
                    replaced.push(p);
                }
            }
        }
    }
    if clashes.is_empty() || force {
        return Ok(replaced);
    }
    let n = clashes.len();
    let shown: Vec<String> = clashes.iter().take(10).cloned().collect();
    Err(Error::usage(format!(
        "{n} file{} in {} would be overwritten or would define the same revision: {}{}",
        crate::words::plural(n),
        dir.display(),
        shown.join(", "),
        if n > 10 {
            format!(", ... and {} more", n - 10)
        } else {
            String::new()
        }
    ))
    .with_hint(
        "nothing was written; pass --force to replace them with the import, or --dir DIR to \
         write elsewhere",
    ))
}

/// The server of the shadow databases: `shadow_url`'s, else the database's.
fn shadow_server(settings: &Settings, opts: &ImportOptions) -> Result<ShadowServer> {
    match (&opts.shadow_url, &settings.database_url) {
        (Some(s), _) => Ok(ShadowServer::new(s, None)),
        (None, Some(u)) => Ok(ShadowServer::new(u, None)),
        (None, None) => Err(Error::usage(
            "verifying the import needs a PostgreSQL server for two shadow databases, and no \
             database URL is configured",
        )
        .with_hint(
            "pass --database-url or --shadow-url (a server where the user may CREATE DATABASE), \
             set DATABASE_URL, or skip the verification with --no-verify",
        )),
    }
}

/// Writes every script (the directory is created when missing), and the Alembic revision
/// files program steps run with their `_context.json`; with `force`, replaces.
fn write_all(
    dir: &Path,
    rendered: &[Rendered],
    replaced: &[PathBuf],
    force: bool,
    export: &Export,
) -> Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io(format!("cannot create {}: {e}", dir.display())))?;
    let kept: Vec<&(PathBuf, PathBuf)> =
        rendered.iter().filter_map(|r| r.program.as_ref()).collect();
    if !kept.is_empty() {
        let pdir = dir.join(PROGRAM_DIR);
        std::fs::create_dir_all(&pdir)
            .map_err(|e| Error::io(format!("cannot create {}: {e}", pdir.display())))?;
        for (source, dest) in &kept {
            std::fs::copy(source, dest).map_err(|e| {
                Error::io(format!(
                    "cannot copy {} to {}: {e}",
                    source.display(),
                    dest.display()
                ))
            })?;
        }
        let ctx = pdir.join("_context.json");
        std::fs::write(&ctx, context_json(export))
            .map_err(|e| Error::io(format!("cannot write {}: {e}", ctx.display())))?;
    }
    for p in replaced {
        std::fs::remove_file(p)
            .map_err(|e| Error::io(format!("cannot remove {}: {e}", p.display())))?;
    }
    for r in rendered {
        let mut o = std::fs::OpenOptions::new();
        o.write(true);
        if force {
            o.create(true).truncate(true);
        } else {
            o.create_new(true);
        }
        let written = o.open(&r.path).and_then(|mut f| {
            use std::io::Write;
            f.write_all(r.text.as_bytes())
        });
        written.map_err(|e| {
            let kind = if e.kind() == std::io::ErrorKind::AlreadyExists {
                ErrorKind::Usage
            } else {
                ErrorKind::Io
            };
            Error::new(kind, format!("cannot write {}: {e}", r.path.display()))
        })?;
    }
    Ok(())
}
