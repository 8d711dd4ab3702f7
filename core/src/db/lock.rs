//! The migration lock: a PostgreSQL session advisory lock keyed on the database and the version
//! table, so concurrent runs of any writing binary (up, down, stamp) are serialized.
//!
//! It is taken by polling `pg_try_advisory_lock`, never by a blocking `pg_advisory_lock`: a
//! session blocked on an advisory lock can deadlock with a concurrent `CREATE INDEX
//! CONCURRENTLY`, which waits for every transaction that might see the table. While waiting we
//! say once who holds it; on timeout we fail with the same information. The lock belongs to the
//! connection: a killed process's lock goes with its connection.
//!
//! A session advisory lock cannot be held through a pooler in transaction pooling mode (the
//! lock is taken on one server connection, which other clients then get): the writing
//! commands refuse to run there ([`super::pooler`]), and every statement here also reads
//! its backend, so a session that moves to another backend while it waits is refused too.
//! Connect directly to PostgreSQL (or through a session-pooling PgBouncer) to migrate.

use super::pooler::transaction_pooling_error;
use super::{db_error, query, VersionTable};
use crate::error::{Error, ErrorKind, Result};
use postgres::types::Type;
use postgres::Client;
use std::time::{Duration, Instant};

/// The first key of the two-key advisory lock: "rtrt", so our locks are recognisable in pg_locks.
pub const LOCK_CLASS: i32 = 0x7274_7274;

/// Who holds the lock, from pg_locks and pg_stat_activity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: i32,
    pub application_name: String,
    pub client: String,
    pub since: String,
    pub query: String,
}

impl Holder {
    pub fn describe(&self) -> String {
        format!(
            "pid {} ({}) from {}, connected since {}, running: {}",
            self.pid,
            if self.application_name.is_empty() {
                "no application_name"
            } else {
                &self.application_name
            },
            self.client,
            self.since,
            if self.query.is_empty() {
                "(idle)".to_string()
            } else {
                self.query.chars().take(200).collect::<String>()
            }
        )
    }
}

/// A held lock; release it with [`MigrationLock::release`] (dropping the connection also does).
#[derive(Debug)]
pub struct MigrationLock {
    key: i32,
    pub waited: Duration,
}

/// The second lock key: a hash of the database and the qualified version table.
fn key_sql() -> &'static str {
    "hashtext(current_database() || ':' || $1)"
}

/// Takes the lock, polling until `timeout`. Prints (logs) who holds it once while waiting.
pub fn acquire(
    client: &mut Client,
    table: &VersionTable,
    timeout: Duration,
) -> Result<MigrationLock> {
    let mut wait = Waiter::new();
    let qualified = table.qualified();
    let row = query::one(
        client,
        &format!("SELECT {}, pg_backend_pid()", key_sql()),
        &[(&qualified, Type::TEXT)],
    )
    .map_err(|e| db_error("cannot compute the lock key", &e))?;
    let (key, backend): (i32, i32) = (row.get(0), row.get(1));
    loop {
        let row = query::one(
            client,
            "SELECT pg_try_advisory_lock($1, $2), pg_backend_pid()",
            &[(&LOCK_CLASS, Type::INT4), (&key, Type::INT4)],
        )
        .map_err(|e| db_error("cannot take the migration lock", &e))?;
        let (got, now): (bool, i32) = (row.get(0), row.get(1));
        if now != backend {
            if got {
                // best effort: the lock went to a server connection this session no longer has
                let _ = query::rows(
                    client,
                    "SELECT pg_advisory_unlock($1, $2)",
                    &[(&LOCK_CLASS, Type::INT4), (&key, Type::INT4)],
                );
            }
            return Err(transaction_pooling_error(
                backend,
                now,
                "this session's statements ran on different server connections",
            ));
        }
        if got {
            log::debug!("took the migration lock ({LOCK_CLASS}, {key}) on {qualified}");
            let waited = wait.got("the migration lock");
            return Ok(MigrationLock { key, waited });
        }
        let holder = holder(client, key)?;
        let who = holder
            .as_ref()
            .map(Holder::describe)
            .unwrap_or_else(|| "another session (it just let go?)".into());
        if wait.elapsed() >= timeout {
            return Err(Error::new(
                ErrorKind::LockTimeout,
                format!(
                    "timed out after {} waiting for the migration lock on {} held by {who}",
                    crate::words::fmt_duration(wait.elapsed()),
                    qualified
                ),
            )
            .with_hint("another migration is running; wait for it, raise --lock-timeout, or if that session is stuck end it with SELECT pg_terminate_backend(pid)"));
        }
        if let Some(e) = wait.interrupted(&format!("the migration lock on {qualified}"), &who) {
            return Err(e);
        }
        wait.pause(timeout, || {
            format!("waiting for the migration lock on {qualified}, held by {who}")
        });
    }
}

/// Who holds our lock right now, if anyone.
pub fn holder(client: &mut Client, key: i32) -> Result<Option<Holder>> {
    let rows = query::rows(
        client,
        "SELECT a.pid, coalesce(a.application_name, ''), coalesce(host(a.client_addr), 'local socket'),
                coalesce(to_char(a.backend_start, 'YYYY-MM-DD HH24:MI:SS TZ'), '?'), coalesce(a.query, '')
           FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
          WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1::int::oid AND l.objid = $2::int::oid
            AND l.objsubid = 2 AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        &[(&LOCK_CLASS, Type::INT4), (&key, Type::INT4)],
    )
    .map_err(|e| db_error("cannot look up the lock holder", &e))?;
    Ok(rows.first().map(|r| Holder {
        pid: r.get(0),
        application_name: r.get(1),
        client: r.get(2),
        since: r.get(3),
        query: r.get(4),
    }))
}

impl MigrationLock {
    pub fn release(self, client: &mut Client) -> Result<()> {
        let released: bool = query::one(
            client,
            "SELECT pg_advisory_unlock($1, $2)",
            &[(&LOCK_CLASS, Type::INT4), (&self.key, Type::INT4)],
        )
        .map_err(|e| db_error("cannot release the migration lock", &e))?
        .get(0);
        if !released {
            return Err(Error::new(
                ErrorKind::Database,
                "the migration lock was not held by this session when it was released (was the connection moved to another server connection, as a transaction pooler does?)",
            ));
        }
        Ok(())
    }
}

/// Waiting for a lock another run holds — the advisory lock's and the lease's: since when,
/// whether the user was told, and the next pause (50 ms, doubling to 500 ms, never past the
/// timeout).
pub(crate) struct Waiter {
    started: Instant,
    delay: Duration,
    announced: bool,
}

impl Waiter {
    pub(crate) fn new() -> Waiter {
        Waiter {
            started: Instant::now(),
            delay: Duration::from_millis(50),
            announced: false,
        }
    }

    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The lock (`what`) was taken: how long this waited — zero when the first attempt got it
    /// — said in a log line when there was a wait.
    pub(crate) fn got(&self, what: &str) -> Duration {
        if !self.announced {
            return Duration::ZERO;
        }
        let waited = self.started.elapsed();
        log::info!(
            "got {what} after waiting {}",
            crate::words::fmt_duration(waited)
        );
        waited
    }

    /// A SIGINT/SIGTERM came while waiting for `what` (held by `who`): the error that ends the
    /// wait at once, nothing applied.
    pub(crate) fn interrupted(&self, what: &str, who: &str) -> Option<Error> {
        let sig = crate::interrupt::signal()?;
        Some(
            Error::new(
                ErrorKind::Interrupted,
                format!(
                    "interrupted while waiting for {what} (held by {who}); nothing was applied"
                ),
            )
            .with_detail(crate::error::Detail::Interrupted { signal: sig }),
        )
    }

    /// Says once (`waiting`, a warning) that it waits, then pauses.
    pub(crate) fn pause(&mut self, timeout: Duration, waiting: impl FnOnce() -> String) {
        if !self.announced {
            log::warn!("{}", waiting());
            self.announced = true;
        }
        std::thread::sleep(
            self.delay
                .min(timeout.saturating_sub(self.started.elapsed()))
                .max(Duration::from_millis(10)),
        );
        self.delay = (self.delay * 2).min(Duration::from_millis(500));
    }
}
