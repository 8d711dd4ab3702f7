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
use crate::db::{self, VersionTable};
use crate::error::{Error, Result};
use crate::plan::{stamp_ops, Plan};
use crate::project::Project;
use crate::run::{self, RunOptions, RunReport};
use postgres::Client;

pub struct Migrator {
    pub project: Project,
    pub table: VersionTable,
    pub url: DbUrl,
    pub client: Client,
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
        let client = db::connect(&url, app)?;
        Ok(Migrator { project, table: VersionTable::new(settings.version_table.clone()), url, client })
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
        self.project.graph.upgrade_plan(&heads, target)
    }

    pub fn plan_downgrade(&mut self, target: &str) -> Result<Plan> {
        let heads = self.known_heads()?;
        self.project.graph.downgrade_plan(&heads, target)
    }

    pub fn upgrade(&mut self, target: &str, opts: &RunOptions) -> Result<RunReport> {
        let plan = self.plan_upgrade(target)?;
        if plan.is_empty() {
            log::info!("nothing to upgrade: the database is at {}", run::heads_text(&plan.start_heads));
        }
        run::execute(&mut self.client, &self.project, &self.table, &plan, opts)
    }

    pub fn downgrade(&mut self, target: &str, opts: &RunOptions) -> Result<RunReport> {
        let plan = self.plan_downgrade(target)?;
        if plan.is_empty() {
            log::info!("nothing to downgrade: the database is at {}", run::heads_text(&plan.start_heads));
        }
        run::execute(&mut self.client, &self.project, &self.table, &plan, opts)
    }

    /// Sets the version table to `targets` without running any script. With `purge`, the table's
    /// rows are deleted first (the way out when it holds a revision no script has).
    pub fn stamp(&mut self, targets: &[String], purge: bool) -> Result<Vec<String>> {
        let current = if purge { Vec::new() } else { self.known_heads()? };
        let new_heads = self.project.graph.stamp_heads(&current, targets)?;
        let mut tx = self.client.transaction().map_err(|e| db::db_error("cannot begin", &e))?;
        self.table.ensure(&mut tx)?;
        if purge {
            tx.batch_execute(&format!("DELETE FROM {}", self.table.qualified()))
                .map_err(|e| db::db_error("cannot purge the version table", &e))?;
        }
        for op in stamp_ops(&current, &new_heads) {
            self.table.apply(&mut tx, &op)?;
        }
        tx.commit().map_err(|e| db::db_error("cannot commit", &e))?;
        log::info!("stamped the database at {}", run::heads_text(&new_heads));
        Ok(new_heads)
    }
}

/// Offline SQL for `--sql START:END` (upgrade) or `--sql START:END` (downgrade, START required).
pub fn offline_plan(project: &Project, range: &str, up: bool) -> Result<(Plan, bool)> {
    let (start, end) = match range.split_once(':') {
        Some((s, e)) => (Some(s), e),
        None if up => (None, range),
        None => {
            return Err(Error::usage(format!("offline downgrade needs a range START:END, got '{range}'"))
                .with_hint("e.g. migrate-down --sql head:base (offline mode cannot read the current revision)"))
        }
    };
    let start_heads: Vec<String> = match start {
        None | Some("") | Some("base") => Vec::new(),
        Some(s) => project.graph.stamp_heads(&[], &[s.to_string()])?,
    };
    let from_base = start_heads.is_empty();
    let plan = if up {
        project.graph.upgrade_plan(&start_heads, end)?
    } else {
        project.graph.downgrade_plan(&start_heads, end)?
    };
    Ok((plan, from_base && up))
}

/// Offline `migrate-stamp --sql [START:]END...`: the version-table writes only.
pub fn offline_stamp(project: &Project, table: &VersionTable, revisions: &[String], purge: bool) -> Result<String> {
    let mut start: Vec<String> = Vec::new();
    let mut ends: Vec<String> = Vec::new();
    for r in revisions {
        match r.split_once(':') {
            Some((s, e)) => {
                if !s.is_empty() && s != "base" {
                    start = project.graph.stamp_heads(&[], &[s.to_string()])?;
                }
                ends.push(e.to_string());
            }
            None => ends.push(r.clone()),
        }
    }
    let target = project.graph.stamp_heads(&start, &ends)?;
    let mut out = String::from("BEGIN;\n\n");
    if start.is_empty() {
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
