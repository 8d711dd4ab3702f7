//! `migrate-check --lint` and the lint step of `migrate-up`: which scripts to lint, the
//! database's facts, the project's levels, then [`crate::lint::lint_project`].
//!
//! Which scripts: by default the pending ones (not applied on the database; with `--offline`,
//! those not in `--since REV`, or every script when no `--since` is given); `All` for every
//! script; `Files` for the scripts a pre-commit hook passes (of those `Pending` selects);
//! `migrate-up` lints exactly the steps of its plan.
//!
//! With a database, the revisions not applied on it are the run ([`facts::DbFacts::pending`]):
//! lock and rewrite findings on tables the run creates, or on empty ones, are left out
//! ([`crate::lint::scope`]).

use crate::config::Settings;
use crate::error::Result;
use crate::graph::Target;
use crate::lint::gate::sql_of;
use crate::lint::{facts, lint_project, LintConfig, LintReport};
use crate::migrator::Migrator;
use crate::plan::Plan;
use crate::project::Project;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Selection {
    /// Not yet applied on the database (offline: not in `since`, or all).
    #[default]
    Pending,
    All,
    /// The scripts at these paths (as a pre-commit hook passes the changed files), of those
    /// `Pending` selects; paths that are no script of the project are left out.
    Files(Vec<std::path::PathBuf>),
}

/// The revisions of `revisions` whose script is one of `files` (compared as absolute paths, so
/// `migrations/005_x.sql` and `./migrations/005_x.sql` are the same file).
fn of_files(
    project: &Project,
    revisions: Vec<String>,
    files: &[std::path::PathBuf],
) -> Vec<String> {
    let absolute =
        |p: &std::path::Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let wanted: std::collections::HashSet<std::path::PathBuf> =
        files.iter().map(|f| absolute(f)).collect();
    revisions
        .into_iter()
        .filter(|r| {
            project
                .script(r)
                .is_ok_and(|s| wanted.contains(&absolute(&s.path)))
        })
        .collect()
}

#[derive(Debug, Clone, Default)]
pub struct LintOptions {
    pub selection: Selection,
    /// No database: no row counts or memory figures.
    pub offline: bool,
    /// With `offline`: the revision the target database is at (its ancestors are not linted).
    pub since: Option<String>,
}

/// Lints what `opts` selects. Errors only when the lint could not be made (scripts that do not
/// load, no connection, a bad `retort.toml`); findings are in the report.
pub fn lint(settings: &Settings, opts: &LintOptions, app: &str) -> Result<LintReport> {
    let project = Project::load(&settings.migrations_dir)?;
    let config = LintConfig::load(&settings.migrations_dir)?;
    let all: Vec<String> = project.graph.upgrade_order();
    if opts.offline {
        let selected = match (&opts.selection, &opts.since) {
            (Selection::Pending | Selection::Files(_), Some(rev)) => {
                let rev = project.graph.resolve(rev)?;
                let applied = crate::policy::applied_set(&project.graph, &[rev])?;
                all.into_iter().filter(|r| !applied.contains(r)).collect()
            }
            _ => all,
        };
        let selected = match &opts.selection {
            Selection::Files(files) => of_files(&project, selected, files),
            _ => selected,
        };
        return lint_project(&project, &selected, None, &config);
    }
    let mut m = Migrator::with_project(project, settings, app)?;
    let current = m.heads()?;
    let pending: Vec<String> = m
        .project
        .graph
        .upgrade_plan(&current, &Target::Heads)?
        .steps
        .into_iter()
        .map(|s| s.revision)
        .collect();
    let selected = match &opts.selection {
        Selection::All => all,
        Selection::Pending => pending.clone(),
        Selection::Files(files) => of_files(&m.project, pending.clone(), files),
    };
    let mut f = facts::read(&mut m.client, &sql_of(&m.project, &selected))?;
    f.pending = pending.iter().cloned().collect();
    lint_project(&m.project, &selected, Some(&f), &config)
}

/// The lint of what `plan` is about to apply, on the migrator's database
/// ([`crate::lint::gate::lint_plan`]).
pub fn lint_plan(m: &mut Migrator, plan: &Plan) -> Result<LintReport> {
    crate::lint::gate::lint_plan(&mut m.client, &m.project, plan)
}

pub use crate::lint::gate::gate;
