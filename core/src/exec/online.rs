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
use super::watch::{Blocker, Heartbeat, Retry, ServerNotice, StatementAt};
use super::{Bookkeeping, Executor, Observer, RunReport};
use crate::config::DbUrl;
use crate::db::SqlFailure;
use crate::error::{Error, ErrorKind, Result};
use crate::interrupt;
use crate::plan::Step;
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
        }
    }

    /// Runs the lease's fence after every BEGIN and before every COMMIT (see
    /// [`crate::db::lease`]).
    pub fn set_fence(&mut self, fence: Option<String>) {
        self.fence = fence;
    }

    /// With a watcher on a second connection to `url` (heartbeats, blockers, sent to `live`)
    /// and cancel on interrupt. Without the second connection the run goes on, only without
    /// heartbeats.
    fn watched(
        client: &'a mut Client,
        url: &DbUrl,
        live: mpsc::Sender<Live>,
        delivered: Arc<AtomicUsize>,
    ) -> Self {
        let pid = client
            .simple_query("SELECT pg_backend_pid()")
            .ok()
            .and_then(|rows| {
                rows.iter().find_map(|m| match m {
                    postgres::SimpleQueryMessage::Row(r) => r.get(0).and_then(|v| v.parse().ok()),
                    _ => None,
                })
            });
        let monitor = pid.and_then(|pid| match crate::db::connect(url, "retort-monitor") {
            Ok(c) => Monitor::spawn(c, pid, live.clone()),
            Err(e) => {
                log::warn!("no progress reports for this run: {e}");
                None
            }
        });
        PgExecutor {
            client,
            url: Some(url.clone()),
            monitor,
            live: Some((live, Arc::new(AtomicUsize::new(0)))),
            delivered,
            fence: None,
        }
    }
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
    fn backfill(&mut self, ev: &super::BackfillEvent) {
        self.with(|o| o.backfill(ev))
    }
}

/// Runs `body` with a watched executor on `client` and the observer it should pass to the
/// run loop: the watcher connection and the pump live as long as `body`.
pub fn watched_run<R>(
    client: &mut Client,
    url: &DbUrl,
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
        let mut exec = PgExecutor::watched(client, url, tx, delivered.clone());
        let r = body(&mut exec, &mut Shared(&shared));
        drop(exec); // ends the watcher and, with the last sender, the pump
        r
    })
}

impl PgExecutor<'_> {
    /// Warns when the HNSW graph of `build` will not fit in `maintenance_work_mem` as it is
    /// for this statement (after the script's `-- set:`), and says so to the ETA. Best effort:
    /// a failed look-up says nothing.
    fn warn_if_graph_does_not_fit(
        &mut self,
        build: &super::estimate::HnswBuild,
        at: &StatementAt,
    ) -> Option<GraphOverflow> {
        use super::estimate::{graph_bytes, setting_for};
        let q = |s: &str| s.replace('\'', "''");
        let sql = format!(
            "SELECT c.reltuples::float8, a.atttypmod, t.typname::text, pg_size_bytes(current_setting('maintenance_work_mem'))::float8,
                    current_setting('maintenance_work_mem')
               FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_type t ON t.oid = a.atttypid
              WHERE a.attrelid = to_regclass('{}') AND a.attname = '{}'",
            q(&build.table),
            q(&build.column)
        );
        let rows = self.client.simple_query(&sql).ok()?;
        let r = rows.iter().find_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => Some(r),
            _ => None,
        })?;
        let num = |i: usize| r.get(i).and_then(|v| v.parse::<f64>().ok());
        let (Some(rows), Some(dims), Some(mwm)) = (num(0), num(1), num(3)) else {
            return None;
        };
        if rows <= 0.0 || dims <= 0.0 {
            return None; // a new or never-analyzed table: no estimate
        }
        let halfvec = r.get(2) == Some("halfvec");
        let need = graph_bytes(rows, dims as i64, halfvec);
        if need > mwm {
            log::warn!(
                "[{} {}:{}] the HNSW graph of {}.{} needs about {} ({rows:.0} rows x {dims:.0} dims), more than maintenance_work_mem = {}: \
                 the build slows down sharply once it no longer fits; '-- set: maintenance_work_mem={}' in the script would fit \
                 (and max_parallel_maintenance_workers builds in parallel)",
                at.revision,
                at.path,
                at.line,
                build.table,
                build.column,
                setting_for(need),
                r.get(4).unwrap_or("?"),
                setting_for(need)
            );
            return Some(GraphOverflow {
                needed: setting_for(need),
                setting: r.get(4).unwrap_or("?").to_string(),
            });
        }
        None
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
        let expected = super::estimate::hnsw_build(sql)
            .and_then(|build| self.warn_if_graph_does_not_fit(&build, at));
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
            m.start(at.clone(), expected);
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
}

/// Runs `plan` on `client` without applied records, logging each step at debug level only:
/// the replay of the migrations into a shadow database.
pub fn execute(
    client: &mut Client,
    project: &crate::project::Project,
    table: &crate::db::VersionTable,
    plan: &crate::plan::Plan,
    opts: &super::RunOptions,
) -> Result<super::RunReport> {
    let books = Bookkeeping {
        table,
        records: None,
    };
    let mut exec = PgExecutor::new(client);
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
