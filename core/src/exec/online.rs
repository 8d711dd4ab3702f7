//! The online executor: the run loop's statements sent to PostgreSQL on the migration's
//! connection, with the simple query protocol (no prepared statements).
//!
//! A watched run ([`watched_run`], what the migrator uses) sends each statement on the calling
//! thread, as an unwatched one does, so a run of short statements costs what it did. What
//! happens while a statement runs — the [`Monitor`]'s heartbeats and the server's notices —
//! reaches the observer through one pump thread for the whole run, which shares the observer
//! with the run loop behind a mutex (so the observer must be `Send`). Around each statement the
//! interrupt's canceller is armed with the session's cancel key, so SIGINT/SIGTERM cancels the
//! statement on the server.

use super::estimate::GraphOverflow;
use super::monitor::{Live, Monitor};
use super::program::{self, ProgramEnv, ProgramSpec};
use super::watch::{Blocker, Heartbeat, Retry, ServerNotice, StatementAt};
use super::{Bookkeeping, Executor, Observer, ProgramCall, RunReport};
use crate::config::DbUrl;
use crate::db::SqlFailure;
use crate::error::{Error, ErrorKind, Result};
use crate::interrupt;
use crate::plan::Step;
use crate::vector::{plan_build, setting_for, vector_build, BuildFacts, VectorBuild};
use postgres::Client;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Sends the run loop's SQL on `client`.
pub struct PgExecutor<'a> {
    pub client: &'a mut Client,
    /// The server, for cancel requests (with its TLS settings).
    url: Option<DbUrl>,
    monitor: Option<Monitor>,
    /// Where notices go while a statement runs (to the pump), and how many were sent.
    live: Option<(mpsc::Sender<Live>, Arc<AtomicUsize>)>,
    /// How many the pump has handed to the observer.
    delivered: Arc<AtomicUsize>,
    /// The lease's fence, run after each BEGIN and before each COMMIT (see
    /// [`crate::db::lease`]).
    fence: Option<String>,
    /// What program steps get: the database's URL, the migrations directory. None: program
    /// steps cannot run.
    programs: Option<ProgramEnv>,
    /// `MIGRATE_MAX_MAINTENANCE_WORK_MEM` in bytes: the most a planned vector build gets.
    max_maintenance_work_mem: f64,
    /// Raise a vector build's settings (not through transaction pooling).
    plan_builds: bool,
    /// Measure check steps (`-- check: recall`): a real run does; a replay into a shadow
    /// database (empty tables, nothing to measure) passes them.
    measures: bool,
}

impl<'a> PgExecutor<'a> {
    /// No watcher, no cancel on interrupt (shadow replays).
    pub fn new(client: &'a mut Client) -> Self {
        PgExecutor {
            client,
            url: None,
            monitor: None,
            live: None,
            delivered: Arc::new(AtomicUsize::new(0)),
            fence: None,
            programs: None,
            max_maintenance_work_mem: super::DEFAULT_MAX_MAINTENANCE_WORK_MEM as f64,
            plan_builds: true,
            measures: false,
        }
    }

    /// Runs the lease's fence after every BEGIN and before every COMMIT (see
    /// [`crate::db::lease`]).
    pub fn set_fence(&mut self, fence: Option<String>) {
        self.fence = fence;
    }

    /// Lets program steps run, on the database `env` names (see [`super::program`]).
    pub fn set_programs(&mut self, env: Option<ProgramEnv>) {
        self.programs = env;
    }

    /// Whether vector index builds get settings of their own (`false` through transaction
    /// pooling, where a session `SET` would stay on a server connection other clients get).
    pub fn set_plan_vector_builds(&mut self, on: bool) {
        self.plan_builds = on;
    }

    /// The most `maintenance_work_mem` a planned vector index build gets, in bytes.
    pub fn set_max_maintenance_work_mem(&mut self, bytes: u64) {
        self.max_maintenance_work_mem = bytes as f64;
    }

    /// With a watcher on a second connection to `url` (heartbeats, blockers, sent to `live`)
    /// and cancel on interrupt. Without the second connection the run goes on, only without
    /// heartbeats.
    fn watched(
        client: &'a mut Client,
        url: &DbUrl,
        spare: Option<(Client, i32)>,
        live: mpsc::Sender<Live>,
        delivered: Arc<AtomicUsize>,
    ) -> Self {
        // the pooler probe's connection when it left one (renamed for pg_stat_activity; the
        // probe read this session's pid), else a new one
        let spare = spare.and_then(|(mut c, pid)| {
            c.batch_execute("SET application_name = 'retort-monitor'")
                .ok()
                .map(|()| (c, pid))
        });
        let (pid, connection) = match spare {
            Some((c, pid)) => (Some(pid), Some(Ok(c))),
            None => {
                let pid = backend_pid(client);
                let c = pid.map(|_| crate::db::connect(url, "retort-monitor"));
                (pid, c)
            }
        };
        let monitor = match (pid, connection) {
            (Some(pid), Some(Ok(c))) => Monitor::spawn(c, pid, live.clone()),
            (_, Some(Err(e))) => {
                log::warn!("no progress reports for this run: {e}");
                None
            }
            _ => None,
        };
        PgExecutor {
            client,
            url: Some(url.clone()),
            monitor,
            live: Some((live, Arc::new(AtomicUsize::new(0)))),
            delivered,
            fence: None,
            programs: None,
            max_maintenance_work_mem: super::DEFAULT_MAX_MAINTENANCE_WORK_MEM as f64,
            plan_builds: true,
            measures: true,
        }
    }
}

/// The backend pid of `client`'s session (None when it cannot be read: the run goes on
/// unwatched).
fn backend_pid(client: &mut Client) -> Option<i32> {
    client
        .simple_query("SELECT pg_backend_pid()")
        .ok()
        .and_then(|rows| {
            rows.iter().find_map(|m| match m {
                postgres::SimpleQueryMessage::Row(r) => r.get(0).and_then(|v| v.parse().ok()),
                _ => None,
            })
        })
}

/// The observer shared by the run loop and the pump.
struct Shared<'a, 'o>(&'a Mutex<&'o mut (dyn Observer + Send)>);

impl Shared<'_, '_> {
    fn with<T>(&self, f: impl FnOnce(&mut (dyn Observer + Send)) -> T) -> T {
        let mut o = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut **o)
    }
}

impl Observer for Shared<'_, '_> {
    fn step_started(&mut self, step: &Step, title: &str) {
        self.with(|o| o.step_started(step, title))
    }
    fn step_finished(&mut self, step: &Step, d: Duration) {
        self.with(|o| o.step_finished(step, d))
    }
    fn run_finished(&mut self, r: &RunReport) {
        self.with(|o| o.run_finished(r))
    }
    fn batch_committed(&mut self, b: super::BatchAt, heads: &[String]) {
        self.with(|o| o.batch_committed(b, heads))
    }
    fn linted(&mut self, report: &crate::lint::LintReport) -> bool {
        self.with(|o| o.linted(report))
    }
    fn heartbeat(&mut self, hb: &Heartbeat) {
        self.with(|o| o.heartbeat(hb))
    }
    fn notice(&mut self, n: &ServerNotice) {
        self.with(|o| o.notice(n))
    }
    fn retrying(&mut self, r: &Retry) {
        self.with(|o| o.retrying(r))
    }
    fn program_output(&mut self, revision: &str, stream: super::program::Stream, line: &str) {
        self.with(|o| o.program_output(revision, stream, line))
    }

    fn backfill(&mut self, ev: &super::BackfillEvent) {
        self.with(|o| o.backfill(ev))
    }
}

/// Runs `body` with a watched executor on `client` and the observer it should pass to the
/// run loop: the watcher connection (`spare` when given, else a new one) and the pump live as
/// long as `body`.
pub fn watched_run<R>(
    client: &mut Client,
    url: &DbUrl,
    spare: Option<(Client, i32)>,
    observer: &mut (dyn Observer + Send),
    body: impl FnOnce(&mut PgExecutor<'_>, &mut dyn Observer) -> R,
) -> R {
    let shared = Mutex::new(observer);
    let delivered = Arc::new(AtomicUsize::new(0));
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<Live>();
        let pump_shared = Shared(&shared);
        let count = delivered.clone();
        scope.spawn(move || {
            for ev in rx {
                match ev {
                    Live::Heartbeat(hb) => pump_shared.with(|o| o.heartbeat(&hb)),
                    Live::Notice(n) => {
                        pump_shared.with(|o| o.notice(&n));
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
        });
        let mut exec = PgExecutor::watched(client, url, spare, tx, delivered.clone());
        let r = body(&mut exec, &mut Shared(&shared));
        drop(exec); // ends the watcher and, with the last sender, the pump
        r
    })
}

/// What planning a vector index build did: the graph will not fit (for the ETA), the settings
/// it set (to reset after the statement), the build time it estimated.
#[derive(Default)]
struct Planned {
    overflow: Option<GraphOverflow>,
    set: Vec<String>,
    estimate: Option<Duration>,
}

impl PgExecutor<'_> {
    /// Plans a vector index build (see [`crate::vector`]): reads the rows, dimensions and
    /// settings, raises `maintenance_work_mem` and `max_parallel_maintenance_workers` for the
    /// statement where nobody chose them (the names set are returned, to be reset after it),
    /// logs what it chose and why and the time it should take, and warns when the HNSW graph
    /// will not fit even so (which the ETA is told). Best effort: a failed look-up plans nothing.
    fn plan_vector_build(&mut self, build: &VectorBuild, at: &StatementAt) -> Planned {
        let Some(facts) = self.build_facts(build) else {
            return Planned::default();
        };
        if facts.rows <= 0.0 || facts.dims <= 0 {
            return Planned::default(); // a new or never-analyzed table: nothing to size
        }
        // through transaction pooling the settings stay as they are, as if someone chose them
        let planned_on = if self.plan_builds {
            facts.clone()
        } else {
            BuildFacts {
                memory_source: "session".into(),
                workers_source: "session".into(),
                ..facts.clone()
            }
        };
        let mut plan = plan_build(build, &planned_on, self.max_maintenance_work_mem);
        if !self.plan_builds {
            plan.reasons = vec![format!(
                "settings not raised: the connection goes through transaction pooling, where a session SET stays on a server connection other clients get (set MIGRATE_DIRECT_URL, or '-- set:' in a transactional script); maintenance_work_mem = {}, the graph needs about {}",
                crate::vector::size_text(facts.memory),
                crate::vector::size_text(plan.needed)
            )];
        }
        let place = format!("[{} {}:{}]", at.revision, at.path, at.line);
        let mut set = Vec::new();
        for (name, value) in &plan.set {
            match self
                .client
                .batch_execute(&super::steps::set_sql(false, name, value))
            {
                Ok(()) => set.push(name.clone()),
                Err(e) => log::warn!("{place} cannot set {name} = {value}: {e}"),
            }
        }
        for reason in &plan.reasons {
            log::info!("{place} {} build: {reason}", build.method.name());
        }
        if let Some(t) = plan.estimate {
            log::info!(
                "{place} {} build: estimated {} ({:.0} rows x {} dims, m = {}, ef_construction = {}, {} with {} parallel workers)",
                build.method.name(),
                crate::words::fmt_duration(t),
                facts.rows,
                facts.dims,
                build.m(),
                build.ef_construction(),
                if plan.overflows(build) { "partly on disk" } else { "in memory" },
                plan.workers
            );
        }
        if !plan.overflows(build) {
            return Planned {
                overflow: None,
                set,
                estimate: plan.estimate,
            };
        }
        let (needed, setting) = (setting_for(plan.needed), setting_for(plan.memory));
        log::warn!(
            "{place} the HNSW graph of {}.{} needs about {needed} ({:.0} rows x {} dims), more than maintenance_work_mem = {setting}: \
             the build slows down sharply once it no longer fits; '-- set: maintenance_work_mem={needed}' in the script would fit{}",
            build.table,
            build.column,
            facts.rows,
            facts.dims,
            if set.iter().any(|n| n == "maintenance_work_mem") {
                " (above MIGRATE_MAX_MAINTENANCE_WORK_MEM, or raise that)"
            } else {
                ""
            }
        );
        Planned {
            overflow: Some(GraphOverflow { needed, setting }),
            set,
            estimate: plan.estimate,
        }
    }

    /// The table's rows, the column's dimensions and type, and the settings with their sources.
    fn build_facts(&mut self, build: &VectorBuild) -> Option<BuildFacts> {
        let q = |s: &str| s.replace('\'', "''");
        let setting = |name: &str| {
            format!(
                "(SELECT setting || '|' || coalesce(unit, '') || '|' || source || '|' || coalesce(max_val, '') FROM pg_settings WHERE name = '{name}')"
            )
        };
        let sql = format!(
            "SELECT c.reltuples::float8, a.atttypmod, t.typname::text, {}, {}, \
                    current_setting('max_worker_processes'), current_setting('max_parallel_workers'), c.relpages::float8 \
               FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_type t ON t.oid = a.atttypid \
              WHERE a.attrelid = to_regclass('{}') AND a.attname = '{}'",
            setting("maintenance_work_mem"),
            setting("max_parallel_maintenance_workers"),
            q(&build.table),
            q(&build.column)
        );
        let rows = self.client.simple_query(&sql).ok()?;
        let r = rows.iter().find_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => Some(r),
            _ => None,
        })?;
        let num = |i: usize| r.get(i).and_then(|v| v.trim().parse::<f64>().ok());
        let parts = |i: usize| -> Vec<String> {
            r.get(i)
                .unwrap_or("")
                .split('|')
                .map(str::to_string)
                .collect()
        };
        let (mem, workers) = (parts(3), parts(4));
        let unit = match mem.get(1).map(String::as_str) {
            Some("kB") => 1024.0,
            Some("MB") => 1_048_576.0,
            _ => 1.0,
        };
        let kb = |v: Option<&String>| v.and_then(|v| v.parse::<f64>().ok());
        let (typ, dims) = match &build.cast {
            Some((typ, n)) => (typ.clone(), *n),
            None => (r.get(2)?.to_string(), num(1)? as i64),
        };
        Some(BuildFacts {
            rows: num(0)?,
            pages: num(7).unwrap_or(0.0),
            dims,
            typ,
            memory: kb(mem.first())? * unit,
            memory_source: mem.get(2)?.clone(),
            memory_max: kb(mem.get(3)).map_or(f64::MAX, |m| m * unit),
            workers: kb(workers.first())? as i64,
            workers_source: workers.get(2)?.clone(),
            max_worker_processes: num(5)? as i64,
            max_parallel_workers: num(6)? as i64,
        })
    }
}

/// pgvector's NOTICE when an HNSW build's graph outgrows `maintenance_work_mem` (the build
/// goes on, much slower).
const GRAPH_OVERFLOW_NOTICE: &str = "hnsw graph no longer fits into maintenance_work_mem";

fn notice(at: &StatementAt, n: &postgres::error::DbError) -> ServerNotice {
    ServerNotice {
        at: at.clone(),
        severity: n.severity().to_string(),
        message: n.message().to_string(),
        detail: n.detail().map(str::to_string),
        hint: n.hint().map(str::to_string),
    }
}

impl PgExecutor<'_> {
    /// Sends `sql` with the watcher on it and cancel on interrupt.
    fn run_watched(
        &mut self,
        sql: &str,
        at: &StatementAt,
        url: DbUrl,
        expected: Option<GraphOverflow>,
        estimate: Option<Duration>,
    ) -> std::result::Result<(), SqlFailure> {
        let token = self.client.cancel_token();
        let armed = interrupt::arm(Box::new(move || {
            if let Err(e) = crate::db::cancel(&url, &token) {
                eprintln!("{e}");
            }
        }));
        let Some(_armed) = armed else {
            return Err(SqlFailure {
                sqlstate: "57014".into(),
                message: "not sent: the run was interrupted".into(),
                detail: None,
                hint: None,
                position: None,
            });
        };
        let Some((live, sent)) = self.live.clone() else {
            return self.execute(sql);
        };
        let overflowed = self.monitor.as_ref().map(|m| {
            m.start(at.clone(), expected, estimate);
            m.overflow_signal()
        });
        let at_n = at.clone();
        let counter = sent.clone();
        let result = crate::db::with_notices(
            move |n| {
                if n.message().starts_with(GRAPH_OVERFLOW_NOTICE) {
                    if let Some(o) = &overflowed {
                        o.store(true, Ordering::SeqCst);
                    }
                }
                if live.send(Live::Notice(notice(&at_n, n))).is_ok() {
                    counter.fetch_add(1, Ordering::SeqCst);
                }
            },
            || self.client.batch_execute(sql),
        );
        if let Some(m) = &self.monitor {
            m.stop();
        }
        // the statement's notices are shown before whatever the run loop says next (the pump
        // is quick; the bound is for a pump that died)
        let waiting = std::time::Instant::now();
        while self.delivered.load(Ordering::SeqCst) < sent.load(Ordering::SeqCst)
            && waiting.elapsed() < Duration::from_secs(1)
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        result.map_err(|e| SqlFailure::from_pg(&e))
    }
}

impl Executor for PgExecutor<'_> {
    fn run_statement(
        &mut self,
        sql: &str,
        at: &StatementAt,
        _observer: &mut dyn Observer,
    ) -> std::result::Result<(), SqlFailure> {
        let Some(url) = self.url.clone() else {
            return self.execute(sql);
        };
        let planned = match vector_build(sql) {
            Some(build) => self.plan_vector_build(&build, at),
            None => Planned::default(),
        };
        let result = self.run_watched(sql, at, url, planned.overflow, planned.estimate);
        if !planned.set.is_empty() {
            // back to what it was (in a failed transaction this fails; its ROLLBACK undoes the SET)
            let reset: Vec<String> = planned.set.iter().map(|n| format!("RESET {n};")).collect();
            let _ = self.client.batch_execute(&reset.join("\n"));
        }
        result
    }

    fn query(&mut self, sql: &str) -> std::result::Result<super::backfill::QueryRows, SqlFailure> {
        let msgs = self
            .client
            .simple_query(sql)
            .map_err(|e| SqlFailure::from_pg(&e))?;
        let mut out = super::backfill::QueryRows::default();
        for m in msgs {
            match m {
                postgres::SimpleQueryMessage::Row(r) => out
                    .rows
                    .push((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect()),
                postgres::SimpleQueryMessage::CommandComplete(n) => out.affected = n,
                _ => {}
            }
        }
        Ok(out)
    }

    fn blockers(&mut self) -> Vec<Blocker> {
        self.monitor
            .as_ref()
            .map(Monitor::blockers)
            .unwrap_or_default()
    }

    /// With a lease, BEGIN is followed by the fence, and COMMIT preceded by it: a transaction
    /// that outlasted the lease's 30 s (its row lock kept every taker out meanwhile) commits a
    /// lease renewed to last another 30 s, not one that ran out during the step, so no waiting
    /// run can take it over before the heartbeat's next renewal — while a `transactional:
    /// false` step right after runs outside any transaction.
    fn execute(&mut self, sql: &str) -> std::result::Result<(), SqlFailure> {
        let fence = |client: &mut Client, f: &str| {
            crate::db::lease::check_fence(client, f).map_err(|e| SqlFailure {
                sqlstate: String::new(),
                message: e.message,
                detail: None,
                hint: e.hint,
                position: None,
            })
        };
        if let (Some(f), "COMMIT") = (&self.fence, sql) {
            fence(self.client, f)?;
        }
        self.client
            .batch_execute(sql)
            .map_err(|e| SqlFailure::from_pg(&e))?;
        match &self.fence {
            Some(f) if sql == "BEGIN" => fence(self.client, f),
            _ => Ok(()),
        }
    }

    fn prepare(&mut self, books: &Bookkeeping) -> Result<()> {
        // e.g. "permission denied for schema public": the run cannot start, which is a failed run
        let as_migration = |e: Error| {
            Error::new(ErrorKind::Migration, e.message).with_hint(
                "the database user needs CREATE on the version table's schema (or create the tables beforehand)",
            )
        };
        books.table.ensure(self.client).map_err(as_migration)?;
        if let Some(r) = books.records {
            r.ensure(self.client).map_err(as_migration)?;
        }
        Ok(())
    }

    fn left_behind(&mut self) -> Vec<String> {
        crate::db::invalid_indexes(self.client).unwrap_or_default()
    }

    fn recall_check(
        &mut self,
        check: &crate::script::RecallCheck,
    ) -> Result<Option<crate::db::recall::RecallReport>> {
        if !self.measures {
            return Ok(None);
        }
        let opts = crate::db::recall::RecallOptions {
            target: check.target.clone(),
            k: check.k,
            queries: check.queries,
            threshold: check.threshold,
            index: check.index.clone(),
        };
        crate::db::recall::measure(self.client, &opts).map(Some)
    }

    fn program_env(&self) -> Option<ProgramEnv> {
        self.programs.clone()
    }
    fn run_program(
        &mut self,
        call: &ProgramCall,
        observer: &mut dyn Observer,
    ) -> Result<Option<program::Outcome>> {
        let Some(env) = &self.programs else {
            return Err(super::cannot_run_programs(call));
        };
        let spec = ProgramSpec {
            command: &call.command,
            revision: &call.revision,
            direction: match call.direction {
                crate::plan::Direction::Up => "up",
                crate::plan::Direction::Down => "down",
            },
            env,
            timeout: call.timeout,
        };
        let rev = call.revision.as_str();
        program::run(&spec, &mut |stream, line| {
            observer.program_output(rev, stream, line)
        })
        .map(Some)
        .map_err(|e| {
            Error::new(
                ErrorKind::Migration,
                format!(
                    "{}:{}: cannot start the program of revision {} (sh -c '{}' in {}): {e}",
                    call.path,
                    call.line,
                    call.revision,
                    call.command,
                    env.dir.display()
                ),
            )
            .with_hint("check that the migrations directory exists and that sh can be run")
        })
    }
}

/// Runs `plan` on `client` without applied records, logging each step at debug level only:
/// the replay of the migrations into a shadow database (`programs`: where its program steps
/// run; None: a program step is an error).
pub fn execute(
    client: &mut Client,
    project: &crate::project::Project,
    table: &crate::db::VersionTable,
    plan: &crate::plan::Plan,
    opts: &super::RunOptions,
    programs: Option<ProgramEnv>,
) -> Result<super::RunReport> {
    let books = Bookkeeping {
        table,
        records: None,
    };
    let mut exec = PgExecutor::new(client);
    exec.set_programs(programs);
    super::run_plan(
        &mut exec,
        project,
        books,
        plan,
        opts,
        &mut super::DebugObserver,
    )
    .map_err(Error::from)
}
