//! `migrate-check`: are the scripts sound, is there one head, is the database at the heads, does
//! it hold only revisions the scripts know? Every problem is listed, not just the first.

use crate::config::Settings;
use crate::error::{ErrorKind, Result};
use crate::graph::Target;
use crate::migrator::Migrator;
use crate::project::Project;

#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// Check the scripts only (CI without a database).
    pub offline: bool,
    pub allow_multiple_heads: bool,
    /// Where to create the shadow databases of the drift checks (default: the database's server).
    pub shadow_url: Option<crate::config::DbUrl>,
}

/// One problem found; `code` is stable (used in JSON output).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub code: &'static str,
    pub message: String,
}

#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    pub problems: Vec<Problem>,
    /// The scripts' heads (empty when the scripts could not be read).
    pub heads: Vec<String>,
    /// The database's rows, when it was checked.
    pub current: Option<Vec<String>>,
    /// Revisions the database still needs, oldest first.
    pub pending: Vec<String>,
    /// What the schema drift checks did (or why they were not made), for the OK line.
    pub drift: Option<String>,
}

impl CheckReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Runs the checks. Returns `Err` only when the check itself could not be made (cannot connect,
/// no URL configured): problems found are in the report.
pub fn check(settings: &Settings, opts: &CheckOptions, app: &str) -> Result<CheckReport> {
    let mut report = CheckReport::default();
    let project = match Project::load(&settings.migrations_dir) {
        Ok(p) => p,
        Err(e) if e.kind == ErrorKind::Script || e.kind == ErrorKind::Io => {
            report.problems.push(Problem {
                code: "scripts_invalid",
                message: e.to_string(),
            });
            if !opts.offline {
                settings.require_url()?;
            }
            return Ok(report);
        }
        Err(e) => return Err(e),
    };
    report.heads = project.graph.heads();
    if report.heads.len() > 1 && !opts.allow_multiple_heads {
        report.problems.push(Problem {
            code: "multiple_heads",
            message: format!(
                "the scripts have {} heads ({}); merge them with: migrate-revision --merge heads -m \"merge\"",
                report.heads.len(),
                report.heads.join(", ")
            ),
        });
    }
    if opts.offline {
        report.drift = Some(if settings.schema_file.is_file() {
            format!("schema drift not checked: --offline has no server to build {} and the migrations on", settings.schema_file.display())
        } else {
            format!(
                "no schema file ({}): schema drift not checked",
                settings.schema_file.display()
            )
        });
        return Ok(report);
    }
    let mut m = Migrator::with_project(project, settings, app)?;
    let current = m.heads()?;
    if let Err(e) = m.project.graph.check_known(&current) {
        report.problems.push(Problem {
            code: "unknown_revision",
            message: e.to_string(),
        });
        report.current = Some(current);
        return Ok(report);
    }
    for mismatch in m.checksum_mismatches(&current)? {
        report.problems.push(Problem {
            code: "checksum_mismatch",
            message: format!(
                "{}; revert the edit, or if it is deliberate run migrate-stamp --rehash {}",
                mismatch.describe(),
                mismatch.revision
            ),
        });
    }
    let invalid = crate::db::invalid_indexes(&mut m.client)?;
    if !invalid.is_empty() {
        report.problems.push(Problem {
            code: "invalid_index",
            message: format!(
                "INVALID index{} (a failed CREATE INDEX CONCURRENTLY?): {}; drop and rebuild {}",
                if invalid.len() == 1 { "" } else { "es" },
                invalid.join(", "),
                if invalid.len() == 1 { "it" } else { "them" }
            ),
        });
    }
    let plan = m.project.graph.upgrade_plan(&current, &Target::Heads)?;
    report.pending = plan.steps.iter().map(|s| s.revision.clone()).collect();
    if !report.pending.is_empty() {
        report.problems.push(Problem {
            code: "pending",
            message: format!(
                "the database is not up to date: {} revision{} pending ({}); run migrate-up",
                report.pending.len(),
                if report.pending.len() == 1 { "" } else { "s" },
                abbreviate(&report.pending, 10)
            ),
        });
    }
    let (drift, note) = crate::autogen::drift_problems(
        &m.project,
        settings,
        opts.shadow_url.as_ref(),
        &mut m.client,
        &current,
    )?;
    report.problems.extend(drift);
    report.drift = Some(note);
    report.current = Some(current);
    Ok(report)
}

fn abbreviate(ids: &[String], n: usize) -> String {
    if ids.len() <= n {
        ids.join(", ")
    } else {
        format!("{}, ... and {} more", ids[..n].join(", "), ids.len() - n)
    }
}
