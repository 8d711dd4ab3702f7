//! `migrate-check`: are the scripts sound, is there one head, is the database at the heads, does
//! it hold only revisions the scripts know? Every problem is listed, not just the first.
//!
//! With a schema file, the drift checks too: the schema file against the migrations replayed
//! to the heads, and the live database against a replay of its applied revisions, both built
//! in shadow databases ([`crate::schema::workspace`]) and compared with the schema diff.
//!
//! On request the scripts' own checks join the report: their lint (`--lint`) and the round
//! trip of every revision in a shadow database (`--round-trip`). Error-level findings and a
//! failed round trip are problems like the others; the report keeps both in full, for the
//! output (`crate::output`).

use crate::commands::roundtrip::RoundTripReport;
use crate::config::{DbUrl, Settings};
use crate::error::{ErrorKind, Result};
use crate::lint::LintReport;
use crate::migrator::Migrator;
use crate::project::Project;
use crate::schema::change::Change;
use crate::schema::diff::{changes, unhandled};
use crate::schema::model::Schema;
use crate::schema::workspace::{after_shadows, Workspace};
use crate::schema::DiffOptions;
use crate::words;
use postgres::Client;
use std::path::Path;

#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// Check the scripts only (CI without a database).
    pub offline: bool,
    pub allow_multiple_heads: bool,
    /// Where to create the shadow databases of the drift checks (default: the database's server).
    pub shadow_url: Option<crate::config::DbUrl>,
    /// Lint these scripts too (`None`: no lint).
    pub lint: Option<crate::commands::lint::LintOptions>,
    /// Upgrade, downgrade and upgrade again every revision in a shadow database.
    pub round_trip: bool,
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
    /// The lint, when asked for and the scripts load.
    pub lint: Option<LintReport>,
    /// The round trip, when asked for and the scripts load.
    pub round_trip: Option<RoundTripReport>,
    /// What is worth knowing but fails nothing: the application's vector queries no index
    /// serves ([`crate::commands::vector_queries`]).
    pub findings: Vec<Problem>,
}

impl CheckReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// Every mention of the file `path` in the problems and the drift line said as `name`
    /// instead (a temporary schema file, named by the command that printed it).
    pub fn name_file(&mut self, path: &Path, name: &str) {
        let path = path.display().to_string();
        for m in self.problems.iter_mut().map(|p| &mut p.message) {
            *m = m.replace(&path, name);
        }
        self.drift = self.drift.as_ref().map(|d| d.replace(&path, name));
    }
}

/// Runs the checks. Returns `Err` only when the check itself could not be made (cannot connect,
/// no URL configured): problems found are in the report.
pub fn check(settings: &Settings, opts: &CheckOptions, app: &str) -> Result<CheckReport> {
    let mut report = check_project_and_database(settings, opts, app)?;
    if report.heads.is_empty() {
        // the scripts do not load: nothing to lint or round-trip
        return Ok(report);
    }
    if let Some(lopts) = &opts.lint {
        let r = crate::commands::lint::lint(settings, lopts, app)?;
        if r.errors() > 0 {
            report.problems.push(Problem {
                code: "lint",
                message: format!(
                    "{}; fix them, or silence one with -- retort:allow <rule> <reason>",
                    crate::output::lint::summary(&r)
                ),
            });
        }
        report.lint = Some(r);
    }
    if opts.round_trip {
        let r = crate::commands::roundtrip::round_trip(settings, opts.shadow_url.as_ref())?;
        if let Some(f) = &r.failure {
            report.problems.push(Problem {
                code: "round_trip",
                message: f.describe(),
            });
        }
        report.round_trip = Some(r);
    }
    Ok(report)
}

/// The scripts (they load, one head, nothing unconverted) and, unless offline, the database.
fn check_project_and_database(
    settings: &Settings,
    opts: &CheckOptions,
    app: &str,
) -> Result<CheckReport> {
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
    for s in project.scripts.iter().filter(|s| s.unconverted.is_some()) {
        report.problems.push(Problem {
            code: "unconverted",
            message: format!(
                "{}: revision {} was imported from Alembic without its SQL ({}); write the SQL \
                 (the Alembic source is in the file), then remove its '-- unconverted:' line",
                s.path.display(),
                s.revision,
                s.unconverted.as_deref().unwrap_or_default()
            ),
        });
    }
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
    check_database(&mut m, settings, opts, &mut report)?;
    Ok(report)
}

/// The database's checks: known revisions, checksums, invalid indexes, pending revisions,
/// drift.
fn check_database(
    m: &mut Migrator,
    settings: &Settings,
    opts: &CheckOptions,
    report: &mut CheckReport,
) -> Result<()> {
    let current = m.heads()?;
    if let Err(e) = m.project.graph.check_known(&current) {
        report.problems.push(Problem {
            code: "unknown_revision",
            message: e.to_string(),
        });
        report.current = Some(current);
        return Ok(());
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
                crate::words::plural_es(invalid.len()),
                invalid.join(", "),
                if invalid.len() == 1 { "it" } else { "them" }
            ),
        });
    }
    match crate::commands::vector_queries::check(&mut m.client) {
        Ok(unserved) => report
            .findings
            .extend(unserved.into_iter().map(|u| Problem {
                code: "vector_query_unindexed",
                message: format!(
                    "{} ({} call{}): {}",
                    u.query.split_whitespace().collect::<Vec<_>>().join(" "),
                    u.calls,
                    crate::words::plural(u.calls.max(0) as usize),
                    u.why
                ),
            })),
        Err(line) => log::info!("{line}"),
    }
    let plan = m
        .project
        .graph
        .upgrade_plan(&current, &crate::graph::Target::Heads)?;
    report.pending = plan.steps.iter().map(|s| s.revision.clone()).collect();
    // what migrate-up runs without --contract is pending; a contract revision after it waits
    // for the application (a finding: the expected state between its two deploys)
    let (before, contract) = crate::policy::before_contract(&m.project, plan.clone());
    if !before.steps.is_empty() {
        let ids: Vec<String> = before.steps.iter().map(|s| s.revision.clone()).collect();
        report.problems.push(Problem {
            code: "pending",
            message: format!(
                "the database is not up to date: {} revision{} pending ({}); run migrate-up",
                ids.len(),
                crate::words::plural(ids.len()),
                abbreviate(&ids, 10)
            ),
        });
    }
    if let Some(rev) = contract {
        let message = m
            .project
            .script(&rev)
            .map(|s| s.message.clone())
            .unwrap_or_default();
        report.findings.push(Problem {
            code: "contract_pending",
            message: format!(
                "contract pending: {rev} ({message}) is a contract revision that migrate-up runs only with --contract{}; run it once the application no longer reads what it removes",
                if before.steps.is_empty() {
                    String::new()
                } else {
                    " (after the pending revisions above)".to_string()
                }
            ),
        });
    }
    let (drift, note) = drift_problems(
        &m.project,
        settings,
        opts.shadow_url.as_ref(),
        &mut m.client,
        &current,
    )?;
    report.problems.extend(drift);
    for message in crate::baseline::verify(&m.project, settings, opts.shadow_url.as_ref())? {
        report.problems.push(Problem {
            code: "baseline_mismatch",
            message,
        });
    }
    report.drift = Some(note);
    report.current = Some(current);
    Ok(())
}

fn abbreviate(ids: &[String], n: usize) -> String {
    if ids.len() <= n {
        ids.join(", ")
    } else {
        format!("{}, ... and {} more", ids[..n].join(", "), ids.len() - n)
    }
}

/// What the drift checks found.
#[derive(Debug, Clone, Default)]
pub struct DriftReport {
    /// Differences between the schema file and the replayed migrations (statements that would
    /// fix them, described).
    pub schema_drift: Vec<String>,
    /// Differences between the live database and a replay of its applied revisions.
    pub database_drift: Vec<String>,
    /// Tables and views `--exclude` / `--include` left out (on any side), `schema.name`.
    pub ignored: Vec<String>,
}

pub(crate) fn describe_diff(a: &Schema, b: &Schema, a_side: &str, b_side: &str) -> Vec<String> {
    let mut out: Vec<String> = changes(a, b, &DiffOptions::default())
        .iter()
        .map(Change::what)
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
    let ws = Workspace::new(project, settings, shadow_url)?;
    let heads = project.graph.heads();
    let (replay, wanted) = ws.build_both(&heads, schema_file)?;
    let mut report = DriftReport {
        schema_drift: describe_diff(
            &replay.schema,
            &wanted.schema,
            "the migrations",
            "the schema file",
        ),
        ..Default::default()
    };
    let mut cur: Vec<String> = current.to_vec();
    cur.sort();
    let mut hs = heads.clone();
    hs.sort();
    let expected = if cur == hs {
        replay.schema
    } else {
        let db2 = ws.server.create()?;
        let mut c2 = db2.connect()?;
        ws.replay(&mut c2, &ws.programs(&db2.url, None), &cur)?;
        ws.read(&mut c2)?
    };
    let actual = ws.read(live)?;
    // Described as what would repair the database.
    report.database_drift =
        describe_diff(&actual, &expected, "the database", "the applied revisions");
    report.ignored = ws.ignored();
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
) -> Result<(Vec<Problem>, String)> {
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
    let report = match check_drift(project, settings, file, shadow_url, live, current) {
        Ok(r) => r,
        Err(e) => {
            let (problem, note) = drift_error_problem(file, e)?;
            return Ok((vec![problem], note));
        }
    };
    let mut problems = Vec::new();
    if !report.schema_drift.is_empty() {
        problems.push(schema_drift_problem(file, &report.schema_drift));
    }
    if !report.database_drift.is_empty() {
        problems.push(database_drift_problem(current, &report.database_drift));
    }
    // The line says what the check found: "matches" only when nothing differs.
    let mut note = match (
        report.schema_drift.is_empty(),
        report.database_drift.is_empty(),
    ) {
        (true, true) => format!("{} matches the migrations and the database", file.display()),
        (false, true) => format!(
            "{} differs from the migrations; the database matches its applied revisions",
            file.display()
        ),
        (true, false) => format!(
            "{} matches the migrations; the database differs from its applied revisions",
            file.display()
        ),
        (false, false) => format!(
            "{} differs from the migrations, and the database from its applied revisions",
            file.display()
        ),
    };
    if !report.ignored.is_empty() {
        note.push_str(&format!(
            " (ignored by {}: {})",
            settings.filter.describe(),
            report.ignored.join(", ")
        ));
    }
    Ok((problems, note))
}

/// The first 20 of `v`, `; `-separated (and how many more).
fn limit(v: &[String]) -> String {
    let mut s: Vec<String> = v.iter().take(20).cloned().collect();
    if v.len() > 20 {
        s.push(format!("... and {} more", v.len() - 20));
    }
    s.join("; ")
}

/// `schema_drift`: the schema file and the migrations replayed to the heads differ by `diffs`.
pub(crate) fn schema_drift_problem(file: &Path, diffs: &[String]) -> Problem {
    Problem {
        code: "schema_drift",
        message: format!(
            "{} and the migrations disagree ({} difference{}): {}; run migrate-revision --autogenerate -m \"...\"",
            file.display(),
            diffs.len(),
            crate::words::plural(diffs.len()),
            limit(diffs)
        ),
    }
}

/// `database_drift`: a database at `current` differs by `diffs` (what would repair it) from a
/// replay of its applied revisions.
pub(crate) fn database_drift_problem(current: &[String], diffs: &[String]) -> Problem {
    Problem {
        code: "database_drift",
        message: format!(
            "the database's schema is not what its applied revisions ({}) produce ({} difference{}); to match them it would need: {}",
            words::heads_text(current),
            diffs.len(),
            crate::words::plural(diffs.len()),
            limit(diffs)
        ),
    }
}

/// A drift check that could not be made because of the project, not the server: the schema
/// file does not load (`schema_file_invalid`) or the migrations do not replay on an empty
/// database (`replay_failed`), as a problem and the line saying so. Other errors are returned.
pub(crate) fn drift_error_problem(file: &Path, e: crate::Error) -> Result<(Problem, String)> {
    if e.kind == ErrorKind::Usage && e.message.starts_with(&file.display().to_string()) {
        return Ok((
            Problem {
                code: "schema_file_invalid",
                message: e.to_string(),
            },
            format!("{} does not load", file.display()),
        ));
    }
    if e.kind == ErrorKind::Migration {
        return Ok((
            Problem {
                code: "replay_failed",
                message: e.to_string(),
            },
            "the migrations do not replay on an empty database".into(),
        ));
    }
    Err(e)
}
