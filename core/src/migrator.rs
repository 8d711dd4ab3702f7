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

use crate::config::LockMode;
use crate::config::{DbUrl, Settings};
use crate::db::lease::{self, RunLock};
use crate::db::records::{AuditEntry, Records};
use crate::db::{self, VersionTable};
use crate::error::{Error, ErrorKind, Result};
use crate::exec::online::watched_run;
use crate::exec::{run_plan, Bookkeeping, LogObserver, Observer, RunError, RunOptions, RunResult};
use crate::graph::Target;
use crate::plan::{stamp_ops, Direction, Plan};
use crate::policy::{self, Policy};
use crate::project::Project;
use crate::words::heads_text;
use postgres::Client;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

pub use crate::policy::{checksum_error, ChecksumMismatch};

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
    /// Before running: drop and rebuild the INVALID indexes a failed or interrupted
    /// `CREATE INDEX CONCURRENTLY` left (without it they are only named).
    pub repair_invalid_indexes: bool,
    /// `--lock-mode`: the advisory lock, the lease row, or chosen by the connection.
    pub lock_mode: LockMode,
    /// Kept in the audit entry of the run.
    pub audit_note: Option<String>,
    /// Run although the lint of the revisions to apply has error-level findings (the lint
    /// gate, [`crate::lint::gate::gate`]); the audit entry notes it.
    pub allow_unsafe: bool,
    /// `--contract`: run the revisions marked `-- phase: contract` too; without it an upgrade
    /// stops before the first of them ([`policy::before_contract`]).
    pub contract: bool,
}

impl Default for MigratorOptions {
    fn default() -> Self {
        MigratorOptions {
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            ignore_checksums: false,
            backup_dir: None,
            repair_invalid_indexes: false,
            lock_mode: LockMode::Auto,
            audit_note: None,
            allow_unsafe: false,
            contract: false,
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
    /// The `application_name` of the connection (and of the pooler probe's).
    app: String,
    /// `MIGRATE_DIRECT_URL`, for runs that cannot go through transaction pooling.
    direct_url: Option<DbUrl>,
    /// The last upgrade plan stopped before this contract revision (no `--contract`).
    stopped_before_contract: Option<String>,
    /// While a lease is held: the statement each of the run's transactions begins with.
    fence: Option<String>,
    /// The run's connection goes through transaction pooling: no session settings of retort's
    /// own (a vector build's planned settings would stay on a server connection others get).
    pooled: bool,
    /// The pooler probe's second connection, kept for the run's statement watcher (one
    /// connection fewer to open), and the backend pid of the session it watches.
    spare: Option<(Client, i32)>,
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
            app: app.to_string(),
            direct_url: settings.direct_url.clone(),
            fence: None,
            pooled: false,
            stopped_before_contract: None,
            spare: None,
        })
    }

    /// The version table's rows on the settings' database, without reading the scripts (for
    /// the commands that check them against a graph of their own).
    pub fn read_heads(settings: &Settings, app: &str) -> Result<Vec<String>> {
        let url = settings.require_url()?;
        let mut client = db::connect_wait(url, app, settings.wait)?;
        VersionTable::new(settings.version_table.clone()).read(&mut client)
    }

    /// The database's heads and its backfills in progress (their checkpoints), in one
    /// connection: what migrate-current and migrate-history -i show.
    pub fn read_heads_and_backfills(
        settings: &Settings,
        app: &str,
    ) -> Result<(Vec<String>, Vec<db::backfill::Checkpoint>)> {
        let url = settings.require_url()?;
        let mut client = db::connect_wait(url, app, settings.wait)?;
        let table = VersionTable::new(settings.version_table.clone());
        let heads = table.read(&mut client)?;
        Ok((
            heads,
            db::backfill::in_progress_or_none(&mut client, &table),
        ))
    }

    pub fn with_options(mut self, options: MigratorOptions) -> Self {
        self.options = options;
        self
    }

    fn policy(&self) -> Policy {
        Policy {
            ignore_checksums: self.options.ignore_checksums,
        }
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

    /// The lock-free look before an upgrade (every replica of an app runs `migrate-up` at
    /// start-up): the database's heads when upgrading to `target` has nothing to do, read in
    /// one statement ([`Records::read_with_heads`]) without the migration lock, else `None`
    /// and the caller takes the locked path.
    ///
    /// Why no lock is needed to say "nothing to do": each of a run's transactions writes its
    /// steps' version-table rows and applied records together with their statements, so a
    /// snapshot that shows the target applied shows it committed — a run still in flight is
    /// invisible and the look sees revisions pending (and then waits for the lock like any
    /// run). And it only ever answers "nothing to do": whatever else it sees — something
    /// pending, an unknown revision, an edited applied script, applied revisions without
    /// records to adopt, a missing table — goes to the locked path, which decides and reports
    /// exactly as before.
    pub fn up_to_date(&mut self, target: &str) -> Option<Vec<String>> {
        let (heads, records) = self
            .records
            .read_with_heads(&mut self.client, &self.table)?;
        let target = Target::parse(target).ok()?;
        self.project.graph.check_known(&heads).ok()?;
        let plan = self.project.graph.upgrade_plan(&heads, &target).ok()?;
        if !plan.is_empty() {
            return None;
        }
        let applied = self.applied_set(&heads).ok()?;
        if applied.iter().any(|r| !records.contains_key(r)) {
            return None; // adoption writes their records, under the lock
        }
        if !policy::old_form_checksums(&self.project, &applied, &records)
            .ok()?
            .is_empty()
        {
            return None;
        }
        if !self.options.ignore_checksums
            && !policy::checksum_mismatches(&self.project, &applied, &records)
                .ok()?
                .is_empty()
        {
            return None; // the refusal, with its message, comes from the locked path
        }
        Some(plan.start_heads)
    }

    /// An upgrade to `target` with nothing to do, told as a run tells it (an empty lint, the
    /// "nothing to do" line, the finished run) without the lock or an audit row, when
    /// [`Migrator::up_to_date`] says so; `None`: run [`Migrator::run`].
    pub fn run_if_up_to_date(
        &mut self,
        target: &str,
        observer: &mut dyn Observer,
    ) -> Option<crate::RunReport> {
        let started = Instant::now();
        let heads = self.up_to_date(target)?;
        observer.linted(&crate::lint::LintReport::default());
        log::info!("nothing to do: the database is at {}", heads_text(&heads));
        let report = crate::RunReport {
            steps: Vec::new(),
            start_heads: heads.clone(),
            end_heads: heads,
            duration: started.elapsed(),
            programs: Vec::new(),
        };
        observer.run_finished(&report);
        Some(report)
    }

    /// What `upgrade(target)` would run, with the same refusals (edited applied scripts):
    /// the dry run. Reads only.
    pub fn plan_upgrade(&mut self, target: &str) -> Result<Plan> {
        let heads = self.known_heads()?;
        self.checked_plan(Direction::Up, target, &heads)
    }

    /// After [`Migrator::plan_upgrade`] or a run: the line saying the upgrade stopped before a
    /// contract revision (`-- phase: contract`) because `--contract` was not given.
    pub fn contract_pending_line(&self) -> Option<String> {
        let rev = self.stopped_before_contract.as_deref()?;
        let message = self
            .project
            .script(rev)
            .map(|s| s.message.clone())
            .unwrap_or_default();
        Some(format!(
            "contract pending: stopping before {rev} ({message}), a contract revision; run \
             migrate-up --contract once the application no longer reads what it removes"
        ))
    }

    /// What `downgrade(target)` would run, with the same refusals (missing down sections).
    pub fn plan_downgrade(&mut self, target: &str) -> Result<Plan> {
        let heads = self.known_heads()?;
        self.checked_plan(Direction::Down, target, &heads)
    }

    /// Resolves the target into a plan and applies every refusal of [`policy::check_run`]:
    /// everything a run validates, before it writes anything.
    fn checked_plan(&mut self, dir: Direction, target: &str, heads: &[String]) -> Result<Plan> {
        let target = Target::parse(target)?;
        let target = &target;
        let plan = match dir {
            Direction::Up => self.project.graph.upgrade_plan(heads, target)?,
            Direction::Down => self.project.graph.downgrade_plan(heads, target)?,
        };
        let plan = match dir {
            Direction::Up if !self.options.contract => {
                let (kept, stopped) = policy::before_contract(&self.project, plan);
                self.stopped_before_contract = stopped;
                kept
            }
            _ => plan,
        };
        let records = self.records.applied(&mut self.client)?;
        policy::check_run(&self.project, &plan, &records, self.policy())?;
        Ok(plan)
    }

    /// Every revision applied when the table holds `heads` (ancestors through parents and
    /// dependencies, the heads included), oldest first.
    pub fn applied_set(&self, heads: &[String]) -> Result<Vec<String>> {
        policy::applied_set(&self.project.graph, heads)
    }

    /// Applied scripts whose checksum differs from the recorded one.
    pub fn checksum_mismatches(&mut self, heads: &[String]) -> Result<Vec<ChecksumMismatch>> {
        let records = self.records.applied(&mut self.client)?;
        let applied = self.applied_set(heads)?;
        policy::checksum_mismatches(&self.project, &applied, &records)
    }

    /// What `--dry-run` says of the plan's backfill steps (see
    /// [`crate::exec::backfill::preview`]): one line each.
    pub fn backfill_preview(&mut self, plan: &Plan, opts: &RunOptions) -> Result<Vec<String>> {
        let mut exec = crate::exec::online::PgExecutor::new(&mut self.client);
        let mut out = Vec::new();
        for step in &plan.steps {
            if let Some(line) =
                crate::exec::backfill::preview(&mut exec, &self.project, &self.table, step, opts)?
            {
                out.push(line);
            }
        }
        Ok(out)
    }

    /// Upgrades to `target`, logging each step.
    pub fn upgrade(&mut self, target: &str, opts: &RunOptions) -> RunResult {
        self.run(Direction::Up, target, opts, &mut LogObserver::default())
    }

    /// Downgrades to `target`, logging each step.
    pub fn downgrade(&mut self, target: &str, opts: &RunOptions) -> RunResult {
        self.run(Direction::Down, target, opts, &mut LogObserver::default())
    }

    /// The run, in order: lock → read the heads → resolve the target and apply the policy:
    /// checksums, the lint gate (error-level findings refuse the run unless
    /// [`MigratorOptions::allow_unsafe`]), the lock budget (nothing is written before all
    /// passed) → adopt unrecorded revisions → back up → run the
    /// plan → audit → unlock, on every path.
    pub fn run(
        &mut self,
        dir: Direction,
        target: &str,
        opts: &RunOptions,
        observer: &mut (dyn Observer + Send),
    ) -> RunResult {
        let action = match dir {
            Direction::Up => "up",
            Direction::Down => "down",
        };
        let lock = self
            .lock_for_run(dir, target)
            .map_err(|e| RunError::refused(e, &[]))?;
        let started = Instant::now();
        let mut entry = AuditEntry {
            action: action.into(),
            target: target.into(),
            lock_wait: lock.waited(),
            note: self.options.audit_note.clone(),
            ..Default::default()
        };
        let mut result = self.run_locked(dir, target, opts, observer, &mut entry);
        entry.duration = started.elapsed();
        // the report's duration is the audit row's (from the lock to the end), not the run
        // loop's alone, which takes microseconds when nothing is pending
        match &mut result {
            Ok(r) => r.duration = entry.duration,
            Err(e) => e.report.duration = entry.duration,
        }
        entry.to_heads = match &result {
            Ok(r) => r.end_heads.clone(),
            Err(e) => e.report.end_heads.clone(),
        };
        if let Err(e) = &result {
            if e.error.kind == ErrorKind::Interrupted {
                let state = e
                    .state
                    .as_ref()
                    .map(|s| s.describe(&e.report))
                    .unwrap_or_else(|| "nothing was applied".into());
                let first = e.error.message.lines().next().unwrap_or_default();
                entry.note = Some(format!("{first}; state: {state}"));
            }
        }
        let programs: Vec<String> = match &result {
            Ok(r) => &r.programs,
            Err(e) => &e.report.programs,
        }
        .iter()
        .map(|p| format!("program {}", p.note()))
        .collect();
        if !programs.is_empty() {
            add_note(&mut entry, programs.join("; "));
        }
        let settings = self.session_settings_note(&entry.revisions, opts);
        if !settings.is_empty() {
            entry.note = Some(match entry.note.take() {
                Some(n) => format!("{n}; {settings}"),
                None => settings,
            });
        }
        let for_audit = result.as_ref().map(|_| ()).map_err(|e| e.error.clone());
        crate::interrupt::set_status(
            "the audit row of this run is not written; the migration lock is released when the connection closes",
        );
        // a run that left nothing still leaves its audit entry, in record tables that writing it
        // may create (a fresh database): the state names them (the run's own were rolled back)
        let own_tables = self.own_tables();
        let before_audit = match &result {
            Err(e) if e.state.as_ref().is_some_and(|s| s.nothing_applied) => {
                (!self.client.is_closed())
                    .then(|| db::existing_tables(&mut self.client, &own_tables).ok())
                    .flatten()
            }
            _ => None,
        };
        self.finish(lock, entry, for_audit);
        crate::interrupt::set_status("");
        if let (Some(existed), Err(e)) = (before_audit, result.as_mut()) {
            if let (Some(st), false) = (e.state.as_mut(), self.client.is_closed()) {
                if let Ok(now) = db::existing_tables(&mut self.client, &own_tables) {
                    st.created_tables = now.into_iter().filter(|t| !existed.contains(t)).collect();
                }
            }
        }
        result
    }

    /// retort's tables beside the version table: itself, the records, the lease's lock table.
    fn own_tables(&self) -> Vec<String> {
        vec![
            self.table.qualified(),
            self.records.applied.clone(),
            self.records.audit.clone(),
            lease::table_name(&self.table),
        ]
    }

    /// `set: 004 maintenance_work_mem=2GB, ...` for the audit note: the `-- set:` settings the
    /// steps ran with.
    fn session_settings_note(&self, revisions: &[String], _opts: &RunOptions) -> String {
        let parts: Vec<String> = revisions
            .iter()
            .filter_map(|r| self.project.script(r).ok())
            .filter(|s| !s.session.set.is_empty())
            .map(|s| {
                let pairs: Vec<String> = s
                    .session
                    .set
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                format!("{} {}", s.revision, pairs.join(", "))
            })
            .collect();
        if parts.is_empty() {
            String::new()
        } else {
            format!("set: {}", parts.join("; "))
        }
    }

    /// What an earlier run may have left ([`db::leftovers`]): the last run's failure or
    /// interrupt, INVALID indexes (one that a failed run of retort left and a step of this plan
    /// builds again is dropped; others named, or with `repair_invalid_indexes` dropped and
    /// rebuilt).
    fn look_for_leftovers(&mut self, plan: &Plan) -> Result<()> {
        let statements: Vec<String> = plan
            .steps
            .iter()
            .filter_map(|st| {
                let sc = self.project.script(&st.revision).ok()?;
                sc.section(st.direction).ok()
            })
            .flat_map(|sec| sec.statements().into_iter().map(|x| x.sql))
            .collect();
        db::leftovers::look(
            &mut self.client,
            &self.records,
            self.options.repair_invalid_indexes,
            &statements,
        )
    }

    fn run_locked(
        &mut self,
        dir: Direction,
        target: &str,
        opts: &RunOptions,
        observer: &mut (dyn Observer + Send),
        entry: &mut AuditEntry,
    ) -> RunResult {
        let heads = self.heads().map_err(|e| RunError::refused(e, &[]))?;
        entry.from_heads = heads.clone();
        let refused = |e: Error| RunError::refused(e, &heads);
        self.project.graph.check_known(&heads).map_err(refused)?;
        let mut plan = self.checked_plan(dir, target, &heads).map_err(refused)?;
        let lint = crate::lint::gate::lint_plan(&mut self.client, &self.project, &plan)
            .map_err(refused)?;
        let shown = observer.linted(&lint);
        let allowed = crate::lint::gate::gate(&lint, self.options.allow_unsafe, &self.app, shown)
            .map_err(refused)?;
        if let Some(note) = allowed {
            log::warn!(
                "--allow-unsafe: running despite {} error-level lint finding(s)",
                lint.errors()
            );
            add_note(entry, note);
        }
        let mut baseline = None;
        if dir == Direction::Up && heads.is_empty() && !plan.is_empty() {
            if let Some((b, step)) = self.apply_baseline(&plan)? {
                let note = format!(
                    "baseline {}: {} revisions in one step",
                    b.revision,
                    self.applied_set(std::slice::from_ref(&b.revision))
                        .map_or(0, |v| v.len())
                );
                add_note(entry, note);
                plan = self
                    .checked_plan(dir, target, std::slice::from_ref(&b.revision))
                    .map_err(refused)?;
                baseline = Some(step);
            }
        }
        log::debug!(
            "plan: {} step(s) from {} to {}",
            plan.steps.len(),
            heads_text(&plan.start_heads),
            heads_text(&plan.end_heads)
        );
        self.check_lock_budget(&plan, opts).map_err(refused)?;
        self.adopt(&heads).map_err(refused)?;
        if dir == Direction::Up && !plan.is_empty() {
            self.look_for_leftovers(&plan).map_err(refused)?;
        }
        if let Some(line) = self.contract_pending_line() {
            log::warn!("{line}");
        }
        if plan.is_empty() {
            log::info!(
                "nothing to do: the database is at {}",
                heads_text(&plan.start_heads)
            );
        } else if let (Some(dir), Direction::Up) = (&self.options.backup_dir, dir) {
            let file = crate::backup::dump(&self.url, dir, &heads).map_err(refused)?;
            add_note(entry, format!("backup: {}", file.display()));
        }
        let books = Bookkeeping {
            table: &self.table,
            records: Some(&self.records),
        };
        let project = &self.project;
        let fence = self.fence.clone();
        let programs = crate::exec::program::ProgramEnv {
            url: self.url.clone(),
            dir: project.dir.clone(),
            schema: self.table.name.schema.clone(),
        };
        let pooled = self.pooled;
        let spare = self.spare.take();
        let mut result = watched_run(
            &mut self.client,
            &self.url,
            spare,
            observer,
            |exec, observer| {
                exec.set_fence(fence);
                exec.set_programs(Some(programs));
                exec.set_max_maintenance_work_mem(opts.max_maintenance_work_mem);
                exec.set_plan_vector_builds(!pooled);
                run_plan(exec, project, books, &plan, opts, observer)
            },
        );
        if let Some(step) = baseline {
            let report = match &mut result {
                Ok(r) => r,
                Err(e) => {
                    if let Some(st) = &mut e.state {
                        st.nothing_applied = false;
                    }
                    &mut e.report
                }
            };
            report.start_heads = Vec::new();
            report.steps.insert(0, step);
        }
        let report = match &result {
            Ok(r) => r,
            Err(e) => &e.report,
        };
        entry.revisions = report.steps.iter().map(|s| s.revision.clone()).collect();
        result
    }

    /// A fresh database whose plan passes through a squashed baseline's revision: runs the
    /// baseline and records its revisions in one transaction (see [`crate::baseline`]).
    fn apply_baseline(
        &mut self,
        plan: &Plan,
    ) -> std::result::Result<
        Option<(crate::baseline::Baseline, crate::exec::StepResult)>,
        Box<RunError>,
    > {
        let baselines =
            crate::baseline::load(&self.project).map_err(|e| RunError::refused(e, &[]))?;
        let Some((_, b)) = baselines
            .into_iter()
            .filter_map(|b| {
                plan.steps
                    .iter()
                    .position(|s| s.revision == b.revision)
                    .map(|i| (i, b))
            })
            .max_by_key(|(i, _)| *i)
        else {
            return Ok(None);
        };
        let t0 = Instant::now();
        let applied = self
            .applied_set(std::slice::from_ref(&b.revision))
            .map_err(|e| RunError::refused(e, &[]))?;
        log::info!(
            "Running baseline {} ({}): {} revisions in one step",
            b.revision,
            b.path.display(),
            applied.len()
        );
        let failed = |e: Error| {
            Box::new(RunError {
                error: e,
                report: crate::exec::RunReport::default(),
                state: Some(crate::exec::FailureState {
                    failed_step: Some(b.revision.clone()),
                    rolled_back: true,
                    nothing_applied: true,
                    batch: None,
                    created_tables: Vec::new(),
                    program_step: false,
                    backfill_step: false,
                }),
            })
        };
        let chunks = crate::baseline::chunks(&mut self.client, &b.sql)
            .map_err(|e| RunError::refused(e, &[]))?;
        crate::baseline::apply(
            &mut self.client,
            self.fence.as_deref(),
            (&self.table, &self.records),
            &self.project,
            &b,
            &applied,
            &chunks,
        )
        .map_err(|(e, committed)| {
            let mut r = failed(e);
            if let (Some(st), true) = (&mut r.state, committed > 0) {
                st.nothing_applied = false;
            }
            r
        })?;
        if chunks.len() > 1 {
            log::info!(
                "the baseline ran in {} transactions (its locks do not fit the server's lock table in one)",
                chunks.len()
            );
        }
        let step = crate::exec::StepResult {
            revision: b.revision.clone(),
            direction: Direction::Up,
            duration: t0.elapsed(),
        };
        Ok(Some((b, step)))
    }

    /// Refuses a run whose one transaction (or largest batch) would hold more locks than the
    /// server's lock table (see [`db::lock_budget`]). A dry run checks it too.
    pub fn check_lock_budget(&mut self, plan: &Plan, opts: &RunOptions) -> Result<()> {
        db::lock_budget::check_plan(
            &mut self.client,
            &self.project,
            plan,
            opts.steps_per_transaction(),
        )
    }

    /// Writes the audit entry (success or failure) and releases the lock. A usage error (a bad
    /// target or flag) is the caller's typo, not an event on the database: no row. A refusal
    /// about the database's state (an unknown revision, edited scripts) is logged when the
    /// audit table exists; no table is created for a refusal.
    fn finish(&mut self, lock: RunLock, mut entry: AuditEntry, result: Result<()>) {
        entry.success = result.is_ok();
        entry.error = result.as_ref().err().map(Error::full_message);
        // The connection dropped under the run (a server restart, the network, a terminated
        // backend): its lock went with it; the audit row goes in over a new one, so the next
        // run can tell what this one left.
        let reconnected = self.client.is_closed();
        if reconnected {
            match db::connect(&self.url, "retort-audit") {
                Ok(c) => self.client = c,
                Err(e) => {
                    log::warn!("could not write the audit log: the connection dropped and {e}");
                    return;
                }
            }
        }
        let logged = match &result {
            Ok(()) => self.records.ensure(&mut self.client).map(|()| true),
            Err(e) if e.kind == ErrorKind::Usage => Ok(false),
            Err(e) if e.kind == ErrorKind::State => self.records.exist(&mut self.client),
            Err(_) => self.records.ensure(&mut self.client).map(|()| true),
        };
        let written = logged.and_then(|yes| {
            if yes {
                self.records.audit(&mut self.client, &entry)
            } else {
                Ok(())
            }
        });
        if let Err(e) = written {
            log::warn!("could not write the audit log: {e}");
        }
        self.fence = None;
        if reconnected || self.client.is_closed() {
            return; // the lock went with the old connection
        }
        if let Err(e) = lock.release(&mut self.client) {
            log::warn!("{e}");
        }
    }

    /// Takes the migration lock `--lock-mode` asks for (see [`lease::take`]): the advisory
    /// lock on a direct connection, the lease row through a pooler.
    fn lock(&mut self) -> Result<RunLock> {
        let seen = self.inspect()?;
        self.lock_seen(&seen)
    }

    fn inspect(&mut self) -> Result<lease::Connection> {
        if self.options.lock_mode == LockMode::Lease {
            return Ok(lease::Connection {
                transaction_pooling: None,
                proxied: true,
            });
        }
        let (seen, spare) = lease::inspect(&mut self.client, &self.url, &self.app)?;
        self.spare = spare;
        Ok(seen)
    }

    fn lock_seen(&mut self, seen: &lease::Connection) -> Result<RunLock> {
        let lock = lease::take(
            &mut self.client,
            &self.url,
            &self.app,
            &self.table,
            self.options.lock_mode,
            self.options.lock_timeout,
            seen,
        )?;
        self.fence = lock.fence();
        self.pooled = seen.transaction_pooling.is_some();
        Ok(lock)
    }

    /// The lock for an up/down run. Through transaction pooling, a plan with steps that need
    /// a session (see [`lease::needs_session`]) moves to `MIGRATE_DIRECT_URL`, or is
    /// refused before anything is written.
    fn lock_for_run(&mut self, dir: Direction, target: &str) -> Result<RunLock> {
        let seen = self.inspect()?;
        if let Some(why) = seen.transaction_pooling.clone() {
            let heads = self.heads()?;
            let needs = match self.checked_plan(dir, target, &heads) {
                Ok(plan) => lease::needs_session(&self.project, &plan),
                // the run itself reports it, under the lock
                Err(_) => Vec::new(),
            };
            if !needs.is_empty() {
                let Some(direct) = self.direct_url.clone() else {
                    return Err(Error::usage(format!(
                        "the connection goes through a pooler in transaction pooling mode ({why}), and this run has steps that need a session of their own:\n  {}\nnothing was changed",
                        needs.join("\n  ")
                    ))
                    .with_hint("set MIGRATE_DIRECT_URL to a direct connection to PostgreSQL (retort then runs on it), or use SET LOCAL in a transactional script"));
                };
                log::info!(
                    "this run needs a session ({}): running on MIGRATE_DIRECT_URL",
                    needs.join("; ")
                );
                self.client = db::connect(&direct, &self.app)?;
                self.url = direct;
                let seen = self.inspect()?;
                return self.lock_seen(&seen);
            }
        }
        self.lock_seen(&seen)
    }

    /// Runs `body` under the migration lock with an audit entry for `action`; the entry's
    /// heads are filled in by `body`.
    fn audited<T>(
        &mut self,
        action: &str,
        target: &str,
        body: impl FnOnce(&mut Self, &mut AuditEntry) -> Result<T>,
    ) -> Result<T> {
        let lock = self.lock()?;
        let started = Instant::now();
        let mut entry = AuditEntry {
            action: action.into(),
            target: target.into(),
            lock_wait: lock.waited(),
            ..Default::default()
        };
        let result = body(self, &mut entry);
        entry.duration = started.elapsed();
        let for_audit = result.as_ref().map(|_| ()).map_err(|e| e.clone());
        self.finish(lock, entry, for_audit);
        result
    }

    /// Fills in the records of applied revisions that have none (a database Alembic migrated,
    /// or revisions applied before retort recorded them), and says so in the audit log.
    fn adopt(&mut self, heads: &[String]) -> Result<()> {
        if heads.is_empty() {
            return Ok(());
        }
        let records = self.records.applied(&mut self.client)?;
        let applied = self.applied_set(heads)?;
        let old_form = policy::old_form_checksums(&self.project, &applied, &records)?;
        let missing: Vec<String> = applied
            .into_iter()
            .filter(|r| !records.contains_key(r))
            .collect();
        if missing.is_empty() && old_form.is_empty() {
            return Ok(());
        }
        let mut tx = lease::fenced_transaction(&mut self.client, self.fence.as_deref())?;
        self.records.ensure(&mut tx)?;
        for (rev, old, new) in &old_form {
            self.records.convert_checksum(&mut tx, rev, old, new)?;
        }
        if missing.is_empty() {
            tx.commit().map_err(|e| db::db_error("cannot commit", &e))?;
            log::debug!(
                "converted {} recorded checksum(s) to the up-section form",
                old_form.len()
            );
            return Ok(());
        }
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

    /// What [`Migrator::stamp`] would do, with its refusals: the version table's rows before
    /// and after. Reads only.
    pub fn plan_stamp(
        &mut self,
        targets: &[String],
        purge: bool,
    ) -> Result<(Vec<String>, Vec<String>)> {
        let current = if purge {
            self.heads()?
        } else {
            self.known_heads()?
        };
        let base: Vec<String> = if purge { Vec::new() } else { current.clone() };
        let new_heads = self
            .project
            .graph
            .stamp_heads(&base, &Target::parse_all(targets)?)?;
        Ok((current, new_heads))
    }

    /// Sets the version table to `targets` without running any script. With `purge`, the table's
    /// rows are deleted first (the way out when it holds a revision no script has).
    pub fn stamp(&mut self, targets: &[String], purge: bool) -> Result<Vec<String>> {
        self.stamp_from_to(targets, purge).map(|(_, to)| to)
    }

    /// [`Migrator::stamp`], returning the rows before (read under the lock) and after.
    pub fn stamp_from_to(
        &mut self,
        targets: &[String],
        purge: bool,
    ) -> Result<(Vec<String>, Vec<String>)> {
        let action = if purge { "purge" } else { "stamp" };
        self.audited(action, &targets.join(" "), |m, entry| {
            let current = if purge { m.heads()? } else { m.known_heads()? };
            entry.from_heads = current.clone();
            let base: Vec<String> = if purge { Vec::new() } else { current.clone() };
            let new_heads = m
                .project
                .graph
                .stamp_heads(&base, &Target::parse_all(targets)?)?;
            m.write_stamp(&current, &base, &new_heads, purge)?;
            entry.to_heads = new_heads.clone();
            log::info!("stamped the database at {}", heads_text(&new_heads));
            Ok((current, new_heads))
        })
    }

    /// The stamp's writes in one transaction: version-table rows, then the records of the
    /// revisions that became (un)applied.
    fn write_stamp(
        &mut self,
        current: &[String],
        base: &[String],
        new_heads: &[String],
        purge: bool,
    ) -> Result<()> {
        let now_applied = self.applied_set(new_heads)?;
        let before: BTreeSet<String> = if purge {
            BTreeSet::new()
        } else {
            self.applied_set(current)?.into_iter().collect()
        };
        let mut tx = lease::fenced_transaction(&mut self.client, self.fence.as_deref())?;
        self.table.ensure(&mut tx)?;
        self.records.ensure(&mut tx)?;
        if purge {
            tx.batch_execute(&format!("DELETE FROM {}", self.table.qualified()))
                .map_err(|e| db::db_error("cannot purge the version table", &e))?;
            self.records.forget_all(&mut tx)?;
        }
        for op in stamp_ops(base, new_heads) {
            self.table.apply(&mut tx, &op)?;
        }
        let after: BTreeSet<&String> = now_applied.iter().collect();
        for rev in before.iter().filter(|r| !after.contains(r)) {
            self.records.forget(&mut tx, rev)?;
        }
        for rev in now_applied.iter().filter(|r| !before.contains(*r)) {
            let checksum = &self.project.script(rev)?.checksum;
            self.records.record(&mut tx, rev, checksum, None, "stamp")?;
        }
        tx.commit().map_err(|e| db::db_error("cannot commit", &e))
    }

    /// Re-records the checksum of applied revision `rev` from its script as it is now: the
    /// deliberate "yes, this edit is fine" after an applied script was changed. Audited.
    pub fn rehash(&mut self, rev: &str) -> Result<(String, String)> {
        self.audited("rehash", rev, |m, entry| {
            let heads = m.known_heads()?;
            entry.from_heads = heads.clone();
            entry.to_heads = heads.clone();
            let id = m.project.graph.resolve(rev)?;
            if !m.applied_set(&heads)?.contains(&id) {
                return Err(Error::usage(format!(
                    "revision {id} is not applied, so it has no checksum to re-record"
                )));
            }
            let old = m
                .records
                .applied(&mut m.client)?
                .get(&id)
                .map(|r| r.checksum.trim().to_string())
                .unwrap_or_default();
            let new = m.project.script(&id)?.checksum.clone();
            // in one transaction begun with the lease's fence, as every write of a run
            let mut tx = lease::fenced_transaction(&mut m.client, m.fence.as_deref())?;
            m.records.ensure(&mut tx)?;
            m.records.record(&mut tx, &id, &new, None, "rehash")?;
            tx.commit()
                .map_err(|e| db::db_error("cannot commit the re-recorded checksum", &e))?;
            entry.revisions = vec![id.clone()];
            let shown = if old.is_empty() { "(none)" } else { &old };
            entry.note = Some(format!("checksum {shown} -> {new}"));
            log::info!(
                "re-recorded the checksum of {id}: {} -> {}",
                &shown[..12.min(shown.len())],
                &new[..12]
            );
            Ok((old, new))
        })
    }
}

/// Adds `note` to the audit entry's note (`; ` between them).
fn add_note(entry: &mut AuditEntry, note: String) {
    entry.note = Some(match entry.note.take() {
        Some(n) => format!("{n}; {note}"),
        None => note,
    });
}

fn abbreviate(ids: &[String]) -> String {
    if ids.len() <= 8 {
        ids.join(", ")
    } else {
        format!("{}, ... ({} in all)", ids[..8].join(", "), ids.len())
    }
}
