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
use crate::error::{Error, Result};
use crate::graph::Target;
use crate::lint::{facts, lint_project, Finding, Level, LintConfig, LintReport};
use crate::migrator::Migrator;
use crate::plan::{Direction, Plan};
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
    let all: Vec<String> = project
        .graph
        .upgrade_plan(&[], &Target::Heads)?
        .steps
        .into_iter()
        .map(|s| s.revision)
        .collect();
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

/// The lint of what `plan` is about to apply (its up steps), with the database's facts. A
/// plan with no up step (a downgrade) has nothing to lint and reads nothing.
pub fn lint_plan(m: &mut Migrator, plan: &Plan) -> Result<LintReport> {
    let selected: Vec<String> = plan
        .steps
        .iter()
        .filter(|s| s.direction == Direction::Up)
        .map(|s| s.revision.clone())
        .collect();
    if selected.is_empty() {
        return Ok(LintReport::default());
    }
    let config = LintConfig::load(&m.project.dir)?;
    let mut f = facts::read(&mut m.client, &sql_of(&m.project, &selected))?;
    f.pending = selected.iter().cloned().collect();
    lint_project(&m.project, &selected, Some(&f), &config)
}

/// The SQL the lint reads of `revisions` (their up and down sections), for
/// [`facts::read`] to know which tables it can be about.
fn sql_of(project: &crate::project::Project, revisions: &[String]) -> String {
    let mut sql = String::new();
    for s in revisions.iter().filter_map(|r| project.script(r).ok()) {
        sql.push_str(&s.up.sql);
        sql.push('\n');
        if let Some(d) = &s.down {
            sql.push_str(&d.sql);
            sql.push('\n');
        }
    }
    sql
}

/// The lint gate of every run ([`Migrator::run`], one database or a fleet's): error-level
/// findings refuse the run before anything is written, unless `allow_unsafe`; then the run
/// goes ahead and the returned note goes into its audit entry. `who` names the refusing
/// command; `shown`: the findings were already shown to the user (the refusal then does not
/// repeat them; otherwise it lists the error-level ones).
pub fn gate(
    report: &LintReport,
    allow_unsafe: bool,
    who: &str,
    shown: bool,
) -> Result<Option<String>> {
    let errors: Vec<&Finding> = report
        .findings
        .iter()
        .filter(|f| f.level == Level::Error)
        .collect();
    if errors.is_empty() {
        return Ok(None);
    }
    if allow_unsafe {
        let mut rules: Vec<&str> = errors.iter().map(|f| f.rule.as_str()).collect();
        rules.sort_unstable();
        rules.dedup();
        return Ok(Some(format!(
            "--allow-unsafe: {} error-level lint finding(s): {}",
            errors.len(),
            rules.join(", ")
        )));
    }
    let listed = if shown {
        " (listed above)".to_string()
    } else {
        errors
            .iter()
            .map(|f| {
                format!(
                    "\n  {}:{}:{}  {}  {}",
                    f.path, f.line, f.col, f.rule, f.message
                )
            })
            .collect::<String>()
    };
    let summary = crate::output::lint::summary(report);
    Err(Error::state(if shown {
        format!("{who} refuses to run: {summary} in the revisions to apply{listed}; nothing was changed")
    } else {
        format!("{who} refuses to run: {summary} in the revisions to apply; nothing was changed{listed}")
    })
    .with_hint("fix them, silence one with `-- retort:allow <rule> <reason>` on the line before the statement, or run with --allow-unsafe"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(level: Level, rule: &str) -> Finding {
        Finding {
            path: "migrations/002_x.sql".into(),
            revision: "002".into(),
            line: 6,
            col: 1,
            level,
            rule: rule.into(),
            message: "items exists before this run and holds 500 rows".into(),
            help: None,
        }
    }

    fn report(findings: Vec<Finding>) -> LintReport {
        LintReport {
            revisions: vec!["002".into()],
            findings,
            ..Default::default()
        }
    }

    #[test]
    fn error_level_findings_refuse_the_run_and_warnings_do_not() {
        let warned = report(vec![finding(Level::Warning, "ban-char-field")]);
        assert_eq!(gate(&warned, false, "migrate-up", false).unwrap(), None);
        assert_eq!(
            gate(&LintReport::default(), false, "migrate-up", false).unwrap(),
            None
        );

        let unsafe_ = report(vec![
            finding(Level::Error, "require-concurrent-index-creation"),
            finding(Level::Warning, "ban-char-field"),
        ]);
        let e = gate(&unsafe_, false, "migrate-up", false).unwrap_err();
        assert_eq!(e.kind, crate::error::ErrorKind::State);
        let first = e.message.lines().next().unwrap();
        assert_eq!(
            first,
            "migrate-up refuses to run: lint: 1 error, 1 warning in 1 script in the revisions to apply; nothing was changed"
        );
        // not shown before (a fleet's target): the refusal lists the error-level ones only
        assert!(
            e.message.contains(
                "\n  migrations/002_x.sql:6:1  require-concurrent-index-creation  items exists"
            ),
            "{}",
            e.message
        );
        assert!(!e.message.contains("ban-char-field"), "{}", e.message);
        assert!(e.hint.unwrap().contains("--allow-unsafe"));
        // shown before (one database, printed on stderr): they are not repeated
        let e = gate(&unsafe_, false, "migrate-up", true).unwrap_err();
        assert!(e.message.contains("(listed above)") && !e.message.contains("002_x.sql"));
    }

    #[test]
    fn allow_unsafe_lets_the_run_go_and_names_the_rules_for_the_audit_log() {
        let r = report(vec![
            finding(Level::Error, "require-concurrent-index-deletion"),
            finding(Level::Error, "require-concurrent-index-creation"),
            finding(Level::Error, "require-concurrent-index-creation"),
        ]);
        assert_eq!(
            gate(&r, true, "migrate-up", false).unwrap().as_deref(),
            Some("--allow-unsafe: 3 error-level lint finding(s): require-concurrent-index-creation, require-concurrent-index-deletion")
        );
    }
}
