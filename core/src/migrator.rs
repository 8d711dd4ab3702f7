//! `Migrator`: a project (scripts + graph) and a connection, and the operations the binaries
//! offer: read the heads, plan, upgrade, downgrade, stamp. An application that migrates at
//! start-up uses this directly:
//!
//! ```no_run
//! use retort::{config::{Env, Overrides, Settings}, Migrator, RunOptions};
//! let settings = Settings::resolve(&Overrides::default(), &Env::load(None)?)?;
//! let mut m = Migrator::open(&settings, "my-api")?;
//! let report = m.upgrade("heads", &RunOptions::default())?;
//! println!("applied {} revisions, now at {:?}", report.steps.len(), report.end_heads);
//! # Ok::<(), retort::Error>(())
//! ```

use crate::config::{DbUrl, Settings};
use crate::db::lock::{self, MigrationLock};
use crate::db::records::{AuditEntry, Records};
use crate::db::{self, VersionTable};
use crate::error::{Error, ErrorKind, Result};
use crate::graph::Target;
use crate::plan::{stamp_ops, Plan};
use crate::project::Project;
use crate::run::{self, RunOptions, RunReport};
use postgres::Client;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Default for `--lock-timeout`.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(600);

/// How the writing operations behave.
#[derive(Debug, Clone)]
pub struct MigratorOptions {
    /// How long to wait for another run's migration lock.
    pub lock_timeout: Duration,
    /// Proceed although an applied script's checksum changed.
    pub ignore_checksums: bool,
    /// Back up the database (pg_dump) into this directory before an upgrade that has
    /// something to run.
    pub backup_dir: Option<std::path::PathBuf>,
}

impl Default for MigratorOptions {
    fn default() -> Self {
        MigratorOptions {
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            ignore_checksums: false,
            backup_dir: None,
        }
    }
}

pub struct Migrator {
    pub project: Project,
    pub table: VersionTable,
    pub records: Records,
    pub url: DbUrl,
    pub client: Client,
    pub options: MigratorOptions,
}

/// An applied script whose text changed since it was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChecksumMismatch {
    pub revision: String,
    pub path: String,
    pub recorded: String,
    pub current: String,
}

impl ChecksumMismatch {
    pub fn describe(&self) -> String {
        format!(
            "{} (revision {}) was edited after it was applied: recorded checksum {}, now {}",
            self.path,
            self.revision,
            &self.recorded[..12.min(self.recorded.len())],
            &self.current[..12.min(self.current.len())]
        )
    }
}

impl Migrator {
    /// Loads and validates the scripts first (a broken script directory fails without touching
    /// the database), then connects with `application_name = app`.
    pub fn open(settings: &Settings, app: &str) -> Result<Migrator> {
        let project = Project::load(&settings.migrations_dir)?;
        Self::with_project(project, settings, app)
    }

    pub fn with_project(project: Project, settings: &Settings, app: &str) -> Result<Migrator> {
        let url = settings.require_url()?.clone();
        log::debug!(
            "{} revisions from {}; connecting to {} as {app} (sslmode={})",
            project.scripts.len(),
            settings.migrations_dir.display(),
            url.redacted(),
            url.sslmode.as_str()
        );
        let client = db::connect_wait(&url, app, settings.wait)?;
        let table = VersionTable::new(settings.version_table.clone());
        let records = Records::for_table(&table);
        Ok(Migrator {
            project,
            table,
            records,
            url,
            client,
            options: MigratorOptions::default(),
        })
    }

    pub fn with_options(mut self, options: MigratorOptions) -> Self {
        self.options = options;
        self
    }

    /// The version table's rows (empty for a new database), as stored.
    pub fn heads(&mut self) -> Result<Vec<String>> {
        self.table.read(&mut self.client)
    }

    /// The rows, refusing revisions that no script has (`migrate-stamp --purge` is the way out).
    pub fn known_heads(&mut self) -> Result<Vec<String>> {
        let heads = self.heads()?;
        self.project.graph.check_known(&heads)?;
        Ok(heads)
    }

    pub fn plan_upgrade(&mut self, target: &str) -> Result<Plan> {
        let heads = self.known_heads()?;
        self.project
            .graph
            .upgrade_plan(&heads, &Target::parse(target)?)
    }

    pub fn plan_downgrade(&mut self, target: &str) -> Result<Plan> {
        let heads = self.known_heads()?;
        self.project
            .graph
            .downgrade_plan(&heads, &Target::parse(target)?)
    }

    /// Every revision applied when the table holds `heads` (ancestors through parents and
    /// dependencies, the heads included), oldest first.
    pub fn applied_set(&self, heads: &[String]) -> Result<Vec<String>> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for h in heads {
            for step in self
                .project
                .graph
                .upgrade_plan(&[], &Target::Rev(h.clone()))?
                .steps
            {
                if seen.insert(step.revision.clone()) {
                    out.push(step.revision);
                }
            }
        }
        Ok(out)
    }

    /// Applied scripts whose checksum differs from the recorded one.
    pub fn checksum_mismatches(&mut self, heads: &[String]) -> Result<Vec<ChecksumMismatch>> {
        let records = self.records.applied(&mut self.client)?;
        let mut out = Vec::new();
        for rev in self.applied_set(heads)? {
            if let Some(rec) = records.get(&rev) {
                let script = self.project.script(&rev)?;
                if rec.checksum.trim() != script.checksum {
                    out.push(ChecksumMismatch {
                        revision: rev.clone(),
                        path: script.path.display().to_string(),
                        recorded: rec.checksum.trim().to_string(),
                        current: script.checksum.clone(),
                    });
                }
            }
        }
        Ok(out)
    }

    pub fn upgrade(&mut self, target: &str, opts: &RunOptions) -> Result<RunReport> {
        let ignore = self.options.ignore_checksums;
        self.locked_run("up", target, opts, move |m, heads| {
            if !ignore {
                let bad = m.checksum_mismatches(heads)?;
                if !bad.is_empty() {
                    return Err(checksum_error(&bad));
                }
            }
            m.project.graph.upgrade_plan(heads, &Target::parse(target)?)
        })
    }

    pub fn downgrade(&mut self, target: &str, opts: &RunOptions) -> Result<RunReport> {
        self.locked_run("down", target, opts, move |m, heads| {
            m.project
                .graph
                .downgrade_plan(heads, &Target::parse(target)?)
        })
    }

    /// Takes the lock, reads the heads, adopts unrecorded revisions, plans with `plan`, runs,
    /// writes the audit log, releases the lock — on every path.
    fn locked_run(
        &mut self,
        action: &str,
        target: &str,
        opts: &RunOptions,
        plan: impl FnOnce(&mut Self, &[String]) -> Result<Plan>,
    ) -> Result<RunReport> {
        let lock = lock::acquire(&mut self.client, &self.table, self.options.lock_timeout)?;
        let started = Instant::now();
        let mut entry = AuditEntry {
            action: action.into(),
            target: target.into(),
            lock_wait: lock.waited,
            ..Default::default()
        };
        let result = (|| {
            let heads = self.heads()?;
            entry.from_heads = heads.clone();
            entry.to_heads = heads.clone();
            self.project.graph.check_known(&heads)?;
            self.adopt(&heads)?;
            let plan = plan(self, &heads)?;
            log::debug!(
                "plan: {} step(s) from {} to {}",
                plan.steps.len(),
                run::heads_text(&plan.start_heads),
                run::heads_text(&plan.end_heads)
            );
            if plan.is_empty() {
                log::info!(
                    "nothing to do: the database is at {}",
                    run::heads_text(&plan.start_heads)
                );
            } else if let (Some(dir), "up") = (&self.options.backup_dir, action) {
                let file = crate::backup::dump(&self.url, dir, &heads)?;
                entry.note = Some(format!("backup: {}", file.display()));
            }
            let outcome = run::execute_recorded(
                &mut self.client,
                &self.project,
                &self.table,
                Some(&self.records),
                &plan,
                opts,
            );
            entry.to_heads = outcome.report.end_heads.clone();
            entry.revisions = outcome
                .report
                .steps
                .iter()
                .map(|s| s.revision.clone())
                .collect();
            outcome.into_result()
        })();
        entry.duration = started.elapsed();
        self.finish(lock, entry, result)
    }

    /// Writes the audit entry (success or failure) and releases the lock.
    fn finish<T>(
        &mut self,
        lock: MigrationLock,
        mut entry: AuditEntry,
        result: Result<T>,
    ) -> Result<T> {
        entry.success = result.is_ok();
        entry.error = result.as_ref().err().map(|e| e.message.clone());
        // A bad target or flag is the caller's typo, not an event on the database: no row.
        // Refusals about the database's state (an unknown revision, edited scripts) are logged.
        let worth_logging = !matches!(&result, Err(e) if e.kind == ErrorKind::Usage);
        if worth_logging {
            let logged = self
                .records
                .ensure(&mut self.client)
                .and_then(|()| self.records.audit(&mut self.client, &entry));
            if let Err(e) = logged {
                log::warn!("could not write the audit log: {e}");
            }
        }
        if let Err(e) = lock.release(&mut self.client) {
            log::warn!("{e}");
        }
        result
    }

    /// Fills in the records of applied revisions that have none (a database Alembic migrated,
    /// or revisions applied before retort recorded them), and says so in the audit log.
    fn adopt(&mut self, heads: &[String]) -> Result<()> {
        if heads.is_empty() {
            return Ok(());
        }
        let records = self.records.applied(&mut self.client)?;
        let missing: Vec<String> = self
            .applied_set(heads)?
            .into_iter()
            .filter(|r| !records.contains_key(r))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let mut tx = self
            .client
            .transaction()
            .map_err(|e| db::db_error("cannot begin", &e))?;
        self.records.ensure(&mut tx)?;
        for rev in &missing {
            let checksum = &self.project.script(rev)?.checksum;
            self.records.record(&mut tx, rev, checksum, None, "adopt")?;
        }
        let entry = AuditEntry {
            action: "adopt".into(),
            from_heads: heads.to_vec(),
            to_heads: heads.to_vec(),
            revisions: missing.clone(),
            success: true,
            note: Some(format!("recorded {} applied revision(s) that had no record (checksums taken from the current scripts)", missing.len())),
            ..Default::default()
        };
        self.records.audit(&mut tx, &entry)?;
        tx.commit().map_err(|e| db::db_error("cannot commit", &e))?;
        log::info!(
            "adopted {} applied revision(s) without records: {}",
            missing.len(),
            abbreviate(&missing)
        );
        Ok(())
    }

    /// Sets the version table to `targets` without running any script. With `purge`, the table's
    /// rows are deleted first (the way out when it holds a revision no script has).
    pub fn stamp(&mut self, targets: &[String], purge: bool) -> Result<Vec<String>> {
        let lock = lock::acquire(&mut self.client, &self.table, self.options.lock_timeout)?;
        let started = Instant::now();
        let action = if purge { "purge" } else { "stamp" };
        let mut entry = AuditEntry {
            action: action.into(),
            target: targets.join(" "),
            lock_wait: lock.waited,
            ..Default::default()
        };
        let result = (|| {
            let current = if purge {
                self.heads()?
            } else {
                self.known_heads()?
            };
            entry.from_heads = current.clone();
            let base: Vec<String> = if purge { Vec::new() } else { current.clone() };
            let new_heads = self
                .project
                .graph
                .stamp_heads(&base, &Target::parse_all(targets)?)?;
            let now_applied = self.applied_set(&new_heads)?;
            let before: BTreeSet<String> = if purge {
                BTreeSet::new()
            } else {
                self.applied_set(&current)?.into_iter().collect()
            };
            let mut tx = self
                .client
                .transaction()
                .map_err(|e| db::db_error("cannot begin", &e))?;
            self.table.ensure(&mut tx)?;
            self.records.ensure(&mut tx)?;
            if purge {
                tx.batch_execute(&format!("DELETE FROM {}", self.table.qualified()))
                    .map_err(|e| db::db_error("cannot purge the version table", &e))?;
                self.records.forget_all(&mut tx)?;
            }
            for op in stamp_ops(&base, &new_heads) {
                self.table.apply(&mut tx, &op)?;
            }
            let after: BTreeSet<&String> = now_applied.iter().collect();
            for rev in before.iter().filter(|r| !after.contains(r)) {
                self.records.forget(&mut tx, rev)?;
            }
            for rev in now_applied.iter().filter(|r| !before.contains(*r)) {
                self.records.record(
                    &mut tx,
                    rev,
                    &self.project.script(rev)?.checksum,
                    None,
                    "stamp",
                )?;
            }
            tx.commit().map_err(|e| db::db_error("cannot commit", &e))?;
            entry.to_heads = new_heads.clone();
            log::info!("stamped the database at {}", run::heads_text(&new_heads));
            Ok(new_heads)
        })();
        entry.duration = started.elapsed();
        self.finish(lock, entry, result)
    }

    /// Re-records the checksum of applied revision `rev` from its script as it is now: the
    /// deliberate "yes, this edit is fine" after an applied script was changed. Audited.
    pub fn rehash(&mut self, rev: &str) -> Result<(String, String)> {
        let lock = lock::acquire(&mut self.client, &self.table, self.options.lock_timeout)?;
        let started = Instant::now();
        let mut entry = AuditEntry {
            action: "rehash".into(),
            target: rev.into(),
            lock_wait: lock.waited,
            ..Default::default()
        };
        let result = (|| {
            let heads = self.known_heads()?;
            entry.from_heads = heads.clone();
            entry.to_heads = heads.clone();
            let id = self.project.graph.resolve(rev)?;
            if !self.applied_set(&heads)?.contains(&id) {
                return Err(Error::usage(format!(
                    "revision {id} is not applied, so it has no checksum to re-record"
                )));
            }
            let old = self
                .records
                .applied(&mut self.client)?
                .get(&id)
                .map(|r| r.checksum.trim().to_string())
                .unwrap_or_default();
            let new = self.project.script(&id)?.checksum.clone();
            self.records.ensure(&mut self.client)?;
            self.records
                .record(&mut self.client, &id, &new, None, "rehash")?;
            entry.revisions = vec![id.clone()];
            entry.note = Some(format!(
                "checksum {} -> {}",
                if old.is_empty() { "(none)" } else { &old },
                new
            ));
            log::info!(
                "re-recorded the checksum of {id}: {} -> {}",
                if old.is_empty() {
                    "(none)"
                } else {
                    &old[..12.min(old.len())]
                },
                &new[..12]
            );
            Ok((old, new))
        })();
        entry.duration = started.elapsed();
        self.finish(lock, entry, result)
    }
}

/// The refusal when applied scripts were edited.
pub fn checksum_error(bad: &[ChecksumMismatch]) -> Error {
    let mut msg = format!(
        "{} applied script{} changed since {} applied:",
        bad.len(),
        if bad.len() == 1 { "" } else { "s" },
        if bad.len() == 1 {
            "it was"
        } else {
            "they were"
        }
    );
    for m in bad {
        msg.push_str(&format!(
            "\n  {}\n    recorded {}\n    now      {}",
            m.path, m.recorded, m.current
        ));
    }
    let revs: Vec<&str> = bad.iter().map(|m| m.revision.as_str()).collect();
    Error::new(ErrorKind::State, msg).with_hint(format!(
        "revert the edit and put the change in a new revision; if the edit is deliberate (the database already matches it), run: migrate-stamp --rehash {}; to proceed once anyway: --ignore-checksums",
        revs.join(" ")
    ))
}

fn abbreviate(ids: &[String]) -> String {
    if ids.len() <= 8 {
        ids.join(", ")
    } else {
        format!("{}, ... ({} in all)", ids[..8].join(", "), ids.len())
    }
}

/// Offline SQL for `--sql START:END` (upgrade) or `--sql START:END` (downgrade, START required).
pub fn offline_plan(project: &Project, range: &str, up: bool) -> Result<(Plan, bool)> {
    let (start, end) =
        match range.split_once(':') {
            Some((s, e)) => (Some(s), e),
            None if up => (None, range),
            None => return Err(Error::usage(format!(
                "offline downgrade needs a range START:END, got '{range}'"
            ))
            .with_hint(
                "e.g. migrate-down --sql head:base (offline mode cannot read the current revision)",
            )),
        };
    let start_heads: Vec<String> = match start {
        None | Some("") | Some("base") => Vec::new(),
        Some(s) => project.graph.stamp_heads(&[], &[Target::parse(s)?])?,
    };
    let from_base = start_heads.is_empty();
    let plan = if up {
        project
            .graph
            .upgrade_plan(&start_heads, &Target::parse(end)?)?
    } else {
        project
            .graph
            .downgrade_plan(&start_heads, &Target::parse(end)?)?
    };
    Ok((plan, from_base && up))
}

/// Offline `migrate-stamp --sql [START:]END...`: the version-table writes only.
pub fn offline_stamp(
    project: &Project,
    table: &VersionTable,
    revisions: &[String],
    purge: bool,
) -> Result<String> {
    let mut start: Vec<String> = Vec::new();
    let mut ends: Vec<String> = Vec::new();
    for r in revisions {
        match r.split_once(':') {
            Some((s, e)) => {
                if !s.is_empty() && s != "base" {
                    start = project.graph.stamp_heads(&[], &[Target::parse(s)?])?;
                }
                ends.push(e.to_string());
            }
            None => ends.push(r.clone()),
        }
    }
    let target = project
        .graph
        .stamp_heads(&start, &Target::parse_all(&ends)?)?;
    let mut out = String::from("BEGIN;\n\n");
    if start.is_empty() && !purge {
        out.push_str(&table.create_sql());
        out.push_str("\n\n");
    }
    if purge {
        out.push_str(&format!("DELETE FROM {};\n\n", table.qualified()));
        start.clear();
    }
    for op in stamp_ops(&start, &target) {
        out.push_str(&table.op_sql(&op));
        out.push_str("\n\n");
    }
    out.push_str("COMMIT;\n");
    Ok(out)
}
