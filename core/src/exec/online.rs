//! The online executor: the run loop's statements sent to PostgreSQL on the migration's
//! connection, with the simple query protocol (no prepared statements).
//!
//! A watched executor ([`PgExecutor::watched`], what the migrator uses) sends each script
//! statement from a helper thread while the calling thread, which owns the observer, passes
//! on what happens meanwhile: the server's notices for that statement and the
//! [`Monitor`]'s heartbeats. Around each statement it arms the interrupt's canceller with the
//! session's cancel key, so SIGINT/SIGTERM cancels the statement on the server.

use super::monitor::Monitor;
use super::watch::{Blocker, Heartbeat, ServerNotice, StatementAt};
use super::{interrupt, Bookkeeping, Executor, Observer};
use crate::config::DbUrl;
use crate::db::SqlFailure;
use crate::error::{Error, ErrorKind, Result};
use postgres::Client;
use std::sync::mpsc;

/// Sends the run loop's SQL on `client`.
pub struct PgExecutor<'a> {
    pub client: &'a mut Client,
    /// The server, for cancel requests (with its TLS settings).
    url: Option<DbUrl>,
    monitor: Option<Monitor>,
}

impl<'a> PgExecutor<'a> {
    /// No watcher, no cancel on interrupt (shadow replays).
    pub fn new(client: &'a mut Client) -> Self {
        PgExecutor {
            client,
            url: None,
            monitor: None,
        }
    }

    /// With a watcher on a second connection to `url` (heartbeats, blockers) and cancel on
    /// interrupt. Without the second connection the run goes on, only without heartbeats.
    pub fn watched(client: &'a mut Client, url: &DbUrl) -> Self {
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
            Ok(c) => Monitor::spawn(c, pid),
            Err(e) => {
                log::warn!("no progress reports for this run: {e}");
                None
            }
        });
        PgExecutor {
            client,
            url: Some(url.clone()),
            monitor,
        }
    }
}

impl PgExecutor<'_> {
    /// Warns when the HNSW graph of `build` will not fit in `maintenance_work_mem` as it is
    /// for this statement (after the script's `-- set:`). Best effort: a failed look-up says
    /// nothing.
    fn warn_if_graph_does_not_fit(&mut self, build: &super::estimate::HnswBuild, at: &StatementAt) {
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
        let Ok(rows) = self.client.simple_query(&sql) else {
            return;
        };
        let Some(r) = rows.iter().find_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => Some(r),
            _ => None,
        }) else {
            return;
        };
        let num = |i: usize| r.get(i).and_then(|v| v.parse::<f64>().ok());
        let (Some(rows), Some(dims), Some(mwm)) = (num(0), num(1), num(3)) else {
            return;
        };
        if rows <= 0.0 || dims <= 0.0 {
            return; // a new or never-analyzed table: no estimate
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
        }
    }
}

enum Event {
    Notice(ServerNotice),
    Done(std::result::Result<(), postgres::Error>),
}

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
        observer: &mut dyn Observer,
    ) -> std::result::Result<(), SqlFailure> {
        let Some(url) = self.url.clone() else {
            return self.execute(sql);
        };
        if let Some(build) = super::estimate::hnsw_build(sql) {
            self.warn_if_graph_does_not_fit(&build, at);
        }
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
        let (tx, rx) = mpsc::channel::<Event>();
        let (beats, beat_rx) = mpsc::channel::<Heartbeat>();
        if let Some(m) = &self.monitor {
            m.start(at.clone(), beats);
        }
        let client = &mut *self.client;
        let result = std::thread::scope(|scope| {
            let notices = tx.clone();
            let at_n = at.clone();
            scope.spawn(move || {
                let r = crate::db::with_notices(
                    move |n| {
                        let _ = notices.send(Event::Notice(notice(&at_n, n)));
                    },
                    || client.batch_execute(sql),
                );
                let _ = tx.send(Event::Done(r));
            });
            // heartbeats come on their own channel, looked at every 100 ms; the statement's
            // end wakes this loop at once
            loop {
                while let Ok(hb) = beat_rx.try_recv() {
                    observer.heartbeat(&hb);
                }
                match rx.recv_timeout(std::time::Duration::from_millis(100)) {
                    Ok(Event::Notice(n)) => observer.notice(&n),
                    Ok(Event::Done(r)) => break r,
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => {
                        break Ok(());
                    }
                }
            }
        });
        if let Some(m) = &self.monitor {
            m.stop();
        }
        result.map_err(|e| SqlFailure::from_pg(&e))
    }

    fn blockers(&mut self) -> Vec<Blocker> {
        self.monitor
            .as_ref()
            .map(Monitor::blockers)
            .unwrap_or_default()
    }

    fn execute(&mut self, sql: &str) -> std::result::Result<(), SqlFailure> {
        self.client
            .batch_execute(sql)
            .map_err(|e| SqlFailure::from_pg(&e))
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
