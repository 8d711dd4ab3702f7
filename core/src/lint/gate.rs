//! The lint gate of every run: the lint of what a plan is about to apply, with the
//! database's facts ([`lint_plan`]), and the decision it leads to ([`gate`]). It takes a client,
//! the project and the plan, not the migrator: the run ([`crate::migrator`]) calls it under its
//! migration lock, `migrate-up --dry-run` without the lock, and nothing here depends on the
//! layers that run.

use super::{facts, lint_project, Finding, Level, LintConfig, LintReport};
use crate::error::{Error, Result};
use crate::plan::{Direction, Plan};
use crate::project::Project;
use postgres::GenericClient;

/// The lint of what `plan` is about to apply (its up steps), with the database's facts. A
/// plan with no up step (a downgrade) has nothing to lint and reads nothing.
pub fn lint_plan(
    client: &mut impl GenericClient,
    project: &Project,
    plan: &Plan,
) -> Result<LintReport> {
    let selected: Vec<String> = plan
        .steps
        .iter()
        .filter(|s| s.direction == Direction::Up)
        .map(|s| s.revision.clone())
        .collect();
    if selected.is_empty() {
        return Ok(LintReport::default());
    }
    let config = LintConfig::load(&project.dir)?;
    let mut f = facts::read(client, &sql_of(project, &selected))?;
    f.pending = selected.iter().cloned().collect();
    lint_project(project, &selected, Some(&f), &config)
}

/// The SQL the lint reads of `revisions` (their up and down sections), for
/// [`facts::read`] to know which tables it can be about.
pub fn sql_of(project: &Project, revisions: &[String]) -> String {
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

/// The lint gate of every run ([`crate::migrator::Migrator::run`], one database or a fleet's): error-level
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
    let summary = report.summary();
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
