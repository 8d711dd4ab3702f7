//! The pooler-safe migration lock: a lease row in retort's own table `<version table>_lock`,
//! chosen automatically when the connection goes through a pooler (`--lock-mode` forces it).
//!
//! Through transaction pooling a session advisory lock guards nothing (it stays on a server
//! connection other clients get), and a transaction-scoped advisory lock covers only a run that
//! is one transaction — not `--transaction-per-migration`, not a `transactional: false` step,
//! not the heads read and the adoption before the run. A row covers every mode:
//!
//! - **take**: `INSERT ... ON CONFLICT DO UPDATE ... WHERE expires_at < clock_timestamp()` in
//!   one short transaction: the row is ours when it was missing or its lease ran out. Polled
//!   like the advisory lock; while waiting, the holder (host, process, binary) is named.
//! - **heartbeat**: a thread with a second connection pushes `expires_at` forward every
//!   [`RENEW_EVERY`] while the run lasts; a killed process's lease runs out after [`TTL`].
//! - **fence**: every transaction of the run begins by renewing the row *where it is still ours*
//!   (`UPDATE ... WHERE holder = $me RETURNING`): no row, and the run stops before writing
//!   anything in that transaction. The UPDATE also row-locks the lease until the transaction
//!   ends, so nobody can take it over while a step is in flight (a taker's attempt runs with a
//!   short `lock_timeout` and counts as "held"). The fence runs again just before the COMMIT:
//!   a step that outlasted the lease commits it renewed, not run out (a waiting run would
//!   otherwise take it over in the moment before the heartbeat's next renewal, while this
//!   run's next step — perhaps `transactional: false`, outside any transaction — starts).
//! - **release**: `DELETE ... WHERE holder = $me`.
//!
//! Every statement is a short transaction of its own: nothing depends on the server connection,
//! so it holds through PgBouncer, pgcat, Supavisor and RDS Proxy in any pooling mode.

use super::lock::{self as advisory, MigrationLock};
use super::{connect, db_error, pooler, query, quote_ident, quote_literal, VersionTable};
use crate::config::{DbUrl, LockMode};
use crate::error::{Error, ErrorKind, Result};
use postgres::types::Type;
use postgres::{Client, GenericClient};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// How long a lease lasts without a heartbeat (a killed run's lease is free after this).
pub const TTL: Duration = Duration::from_secs(30);
/// How often the heartbeat renews it.
pub const RENEW_EVERY: Duration = Duration::from_secs(5);

/// What was learnt about the connection before locking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// A pooler sharing server connections between clients was seen (why).
    pub transaction_pooling: Option<String>,
    /// Something between us and the server (the server's port is not the URL's).
    pub proxied: bool,
}

/// Looks at the connection: is the server's `port` the URL's (else something forwards it: a
/// pooler, or a container's port mapping), and does the pooler probe see shared backends.
/// With the probe's second connection when it can serve again ([`pooler::probe_keeping`]),
/// and the backend pid of `client`'s session that the probe saw stay the same.
pub fn inspect(
    client: &mut Client,
    url: &DbUrl,
    app: &str,
) -> Result<(Connection, Option<(Client, i32)>)> {
    // the port and the probe's first look at the session's backend, in one round trip
    let row = query::one(
        client,
        "SELECT current_setting('port'), pg_catalog.pg_backend_pid()",
        &[],
    )
    .map_err(|e| db_error("cannot read the server's port", &e))?;
    let (port, pid): (String, i32) = (row.get(0), row.get(1));
    let proxied = port.trim() != url.port.to_string();
    let (transaction_pooling, spare) = pooler::probe_keeping(client, pid, url, app)?;
    Ok((
        Connection {
            transaction_pooling,
            proxied,
        },
        spare.map(|c| (c, pid)),
    ))
}

/// A held migration lock, whichever kind.
#[derive(Debug)]
pub enum RunLock {
    Session(MigrationLock),
    Lease(Lease),
}

impl RunLock {
    pub fn waited(&self) -> Duration {
        match self {
            RunLock::Session(l) => l.waited,
            RunLock::Lease(l) => l.waited,
        }
    }

    /// The statement each transaction of the run begins with (lease only).
    pub fn fence(&self) -> Option<String> {
        match self {
            RunLock::Session(_) => None,
            RunLock::Lease(l) => Some(l.fence_sql()),
        }
    }

    pub fn release(self, client: &mut Client) -> Result<()> {
        match self {
            RunLock::Session(l) => l.release(client),
            RunLock::Lease(l) => l.release(client),
        }
    }
}

/// Takes the lock `mode` asks for. `Auto`: the lease through a pooler or a port forward, the
/// advisory lock on a direct connection (and the lease after all when the advisory lock sees
/// its statements move between server connections). `Session` refuses transaction pooling.
pub fn take(
    client: &mut Client,
    url: &DbUrl,
    app: &str,
    table: &VersionTable,
    mode: LockMode,
    timeout: Duration,
    seen: &Connection,
) -> Result<RunLock> {
    match mode {
        LockMode::Lease => Ok(RunLock::Lease(Lease::acquire(
            client, url, app, table, timeout,
        )?)),
        LockMode::Session => {
            if let Some(why) = &seen.transaction_pooling {
                return Err(pooler::transaction_pooling_error_text(why));
            }
            Ok(RunLock::Session(advisory::acquire(client, table, timeout)?))
        }
        LockMode::Auto => {
            if let Some(why) = &seen.transaction_pooling {
                log::info!("transaction pooling ({why}): taking the lease lock");
            } else if seen.proxied {
                log::debug!("the server's port is not the URL's (a pooler or a port forward): taking the lease lock");
            } else {
                match advisory::acquire(client, table, timeout) {
                    Ok(l) => return Ok(RunLock::Session(l)),
                    Err(e) if pooler::is_transaction_pooling_error(&e) => {
                        log::info!("{}: taking the lease lock instead", e.message);
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok(RunLock::Lease(Lease::acquire(
                client, url, app, table, timeout,
            )?))
        }
    }
}

/// A held lease; its heartbeat runs until [`Lease::release`] (or the process ends).
#[derive(Debug)]
pub struct Lease {
    table: String,
    key: String,
    holder: String,
    pub waited: Duration,
    stop: Option<mpsc::Sender<()>>,
    lost: Arc<AtomicBool>,
    heartbeat: Option<std::thread::JoinHandle<()>>,
}

/// `"schema".alembic_version_lock`: beside the version table.
pub fn table_name(table: &VersionTable) -> String {
    let name = quote_ident(&format!("{}_lock", table.name.name));
    match &table.name.schema {
        Some(s) => format!("{}.{name}", quote_ident(s)),
        None => name,
    }
}

fn ttl_ms() -> i64 {
    TTL.as_millis() as i64
}

/// Creates the lease table when missing. Concurrent first runs race on `CREATE TABLE IF NOT
/// EXISTS` (23505 in pg_type, 42P07, 42710): the loser tries again and finds the table there.
fn ensure_table(client: &mut Client, t: &str) -> Result<()> {
    let sql = format!(
        "CREATE TABLE IF NOT EXISTS {t} (\n    lock_key text PRIMARY KEY,\n    holder text NOT NULL,\n    holder_info text NOT NULL,\n    acquired_at timestamptz NOT NULL,\n    expires_at timestamptz NOT NULL\n)"
    );
    for attempt in 0..10 {
        match client.batch_execute(&sql) {
            Ok(()) => return Ok(()),
            Err(e)
                if attempt < 9
                    && matches!(
                        e.code().map(|c| c.code()),
                        Some("23505") | Some("42P07") | Some("42710")
                    ) =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(db_error("cannot create the migration lease table", &e)),
        }
    }
    Ok(())
}

/// A random-enough holder id: host, process and time, with the randomness of a hash seed.
fn holder_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    format!("{:016x}", h.finish())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "?".into())
}

/// One short transaction: `BEGIN; SET LOCAL lock_timeout; <sql>; COMMIT`, rows returned. A
/// failure rolls back (the server connection goes back to the pool clean).
fn short_tx(
    client: &mut Client,
    sql: &str,
    params: &[query::Param<'_>],
) -> std::result::Result<usize, postgres::Error> {
    client.batch_execute("BEGIN; SET LOCAL lock_timeout = '200ms'")?;
    let r = query::rows(client, sql, params).map(|rows| rows.len());
    match r {
        Ok(n) => {
            client.batch_execute("COMMIT")?;
            Ok(n)
        }
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK");
            Err(e)
        }
    }
}

fn is_lock_timeout(e: &postgres::Error) -> bool {
    e.code().map(|c| c.code()) == Some("55P03")
}

impl Lease {
    /// Takes the lease on `table`'s migrations, polling until `timeout`; says once who holds it.
    pub fn acquire(
        client: &mut Client,
        url: &DbUrl,
        app: &str,
        table: &VersionTable,
        timeout: Duration,
    ) -> Result<Lease> {
        let t = table_name(table);
        ensure_table(client, &t)?;
        let key = table.qualified();
        let holder = holder_id();
        let info = format!(
            "{app} (process {} on {}) since {}",
            std::process::id(),
            hostname(),
            chrono_now()
        );
        let take = format!(
            "INSERT INTO {t} AS l (lock_key, holder, holder_info, acquired_at, expires_at)
             VALUES ($1, $2, $3, clock_timestamp(), clock_timestamp() + $4 * interval '1 millisecond')
             ON CONFLICT (lock_key) DO UPDATE SET holder = EXCLUDED.holder, holder_info = EXCLUDED.holder_info,
                    acquired_at = EXCLUDED.acquired_at, expires_at = EXCLUDED.expires_at
              WHERE l.expires_at < clock_timestamp()
             RETURNING l.holder"
        );
        let ttl = ttl_ms();
        let mut wait = super::lock::Waiter::new();
        loop {
            let got = match short_tx(
                client,
                &take,
                &[
                    (&key, Type::TEXT),
                    (&holder, Type::TEXT),
                    (&info, Type::TEXT),
                    (&ttl, Type::INT8),
                ],
            ) {
                Ok(n) => n == 1,
                // the holder's transaction has the row locked: held
                Err(e) if is_lock_timeout(&e) => false,
                Err(e) => return Err(db_error("cannot take the migration lease", &e)),
            };
            if got {
                let waited = wait.got("the migration lease");
                log::debug!("took the migration lease on {key} as {holder}");
                let mut lease = Lease {
                    table: t,
                    key,
                    holder,
                    waited,
                    stop: None,
                    lost: Arc::new(AtomicBool::new(false)),
                    heartbeat: None,
                };
                lease.start_heartbeat(url, app)?;
                return Ok(lease);
            }
            let who = Self::holder(client, &t, &key)?
                .unwrap_or_else(|| "another run (it just let go?)".into());
            if wait.elapsed() >= timeout {
                return Err(Error::new(
                    ErrorKind::LockTimeout,
                    format!(
                        "timed out after {} waiting for the migration lease on {key} held by {who}",
                        crate::words::fmt_duration(wait.elapsed()),
                    ),
                )
                .with_hint(format!("another migration is running; wait for it or raise --lock-timeout. A killed run's lease runs out {} s after its last heartbeat; to free it at once: DELETE FROM {t} WHERE lock_key = {}", TTL.as_secs(), quote_literal(&key))));
            }
            // Ctrl-C while queued behind another run ends the wait, as for the advisory lock
            if let Some(e) = wait.interrupted(&format!("the migration lease on {key}"), &who) {
                return Err(e);
            }
            wait.pause(timeout, || {
                format!("waiting for the migration lease on {key}, held by {who}")
            });
        }
    }

    /// `retort-up (process 123 on host) since ..., lease runs out in 27 s`.
    fn holder(client: &mut Client, t: &str, key: &str) -> Result<Option<String>> {
        let rows = query::rows(
            client,
            &format!("SELECT holder_info, greatest(0, extract(epoch FROM expires_at - clock_timestamp()))::int FROM {t} WHERE lock_key = $1"),
            &[(&key, Type::TEXT)],
        )
        .map_err(|e| db_error("cannot look up the lease holder", &e))?;
        Ok(rows.first().map(|r| {
            let info: String = r.get(0);
            let left: i32 = r.get(1);
            format!("{info} (its lease runs out in {left} s without a heartbeat)")
        }))
    }

    fn start_heartbeat(&mut self, url: &DbUrl, app: &str) -> Result<()> {
        let mut other = connect(url, &format!("{app} heartbeat")).map_err(|mut e| {
            e.message = format!(
                "cannot open the lease heartbeat's connection: {}",
                e.message
            );
            e
        })?;
        let renew = format!(
            "UPDATE {} SET expires_at = clock_timestamp() + $3 * interval '1 millisecond' WHERE lock_key = $1 AND holder = $2 RETURNING 1",
            self.table
        );
        let (key, holder, lost) = (self.key.clone(), self.holder.clone(), self.lost.clone());
        let (stop, stopped) = mpsc::channel::<()>();
        let handle = std::thread::Builder::new()
            .name("retort-lease-heartbeat".into())
            .spawn(move || {
                let ttl = ttl_ms();
                let mut wait = RENEW_EVERY;
                loop {
                    match stopped.recv_timeout(wait) {
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                        _ => return,
                    }
                    match short_tx(
                        &mut other,
                        &renew,
                        &[(&key, Type::TEXT), (&holder, Type::TEXT), (&ttl, Type::INT8)],
                    ) {
                        Ok(1) => wait = RENEW_EVERY,
                        Ok(_) => {
                            log::error!("the migration lease on {key} was taken over: this run's next transaction will stop");
                            lost.store(true, Ordering::SeqCst);
                            return;
                        }
                        // the run's own transaction holds the row (its fence renewed it): soon again
                        Err(e) if is_lock_timeout(&e) => wait = Duration::from_secs(1),
                        Err(e) => {
                            log::warn!("cannot renew the migration lease: {e}");
                            wait = Duration::from_secs(1);
                        }
                    }
                }
            })
            .map_err(|e| Error::io(format!("cannot start the lease heartbeat: {e}")))?;
        self.stop = Some(stop);
        self.heartbeat = Some(handle);
        Ok(())
    }

    /// Renews the lease where it is still ours; the first statement of each of the run's
    /// transactions. Returns one row while the lease holds.
    pub fn fence_sql(&self) -> String {
        format!(
            "UPDATE {} SET expires_at = clock_timestamp() + interval '{} milliseconds' WHERE lock_key = {} AND holder = {} RETURNING 1",
            self.table,
            ttl_ms(),
            quote_literal(&self.key),
            quote_literal(&self.holder)
        )
    }

    pub fn release(mut self, client: &mut Client) -> Result<()> {
        self.stop.take();
        if let Some(h) = self.heartbeat.take() {
            let _ = h.join();
        }
        let n = query::rows(
            client,
            &format!(
                "DELETE FROM {} WHERE lock_key = $1 AND holder = $2 RETURNING 1",
                self.table
            ),
            &[(&self.key, Type::TEXT), (&self.holder, Type::TEXT)],
        )
        .map_err(|e| db_error("cannot release the migration lease", &e))?
        .len();
        if n == 0 || self.lost.load(Ordering::SeqCst) {
            return Err(Error::new(
                ErrorKind::Database,
                "the migration lease was no longer this run's when it was released (its heartbeat stopped for longer than the lease lasts?)",
            ));
        }
        Ok(())
    }
}

/// Runs a lock's fence on `client` (inside a transaction that was just begun): an error when
/// the lease is no longer this run's.
pub fn check_fence(client: &mut impl GenericClient, fence: &str) -> Result<()> {
    let rows = client
        .simple_query(fence)
        .map_err(|e| db_error("cannot renew the migration lease", &e))?;
    let got = rows
        .iter()
        .any(|m| matches!(m, postgres::SimpleQueryMessage::Row(_)));
    if got {
        Ok(())
    } else {
        Err(lost_error())
    }
}

pub fn lost_error() -> Error {
    Error::new(
        ErrorKind::Migration,
        "the migration lease is no longer this run's (its heartbeat could not renew it in time, and another run took it over): stopped before this transaction wrote anything",
    )
    .with_hint("re-run: the database is at the state reported, and the other run sees it")
}

fn chrono_now() -> String {
    let s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("unix time {s}")
}

/// The steps of `plan` that cannot run through transaction pooling, one line each with
/// file:line: a `transactional: false` script of several statements (each may land on another
/// server connection), and a session `SET`/`RESET` anywhere (it stays on a server connection
/// other clients get; `SET LOCAL` in a transactional script is fine).
pub fn needs_session(project: &crate::project::Project, plan: &crate::plan::Plan) -> Vec<String> {
    let mut out = Vec::new();
    for step in &plan.steps {
        let Ok(script) = project.script(&step.revision) else {
            continue;
        };
        let Ok(section) = script.section(step.direction) else {
            continue;
        };
        let stmts = crate::script::split_statements(&section.sql, section.line);
        if !script.transactional && stmts.len() > 1 {
            out.push(format!(
                "{}:{}: a non-transactional script of {} statements (each could run on another server connection)",
                script.path.display(),
                stmts.first().map_or(section.line, |s| s.line),
                stmts.len()
            ));
        }
        for st in &stmts {
            let words: Vec<String> = st
                .sql
                .split_whitespace()
                .take(2)
                .map(|w| w.to_ascii_uppercase())
                .collect();
            let first = words.first().map(String::as_str).unwrap_or("");
            let second = words.get(1).map(String::as_str).unwrap_or("");
            let session_set = (first == "SET"
                && second != "LOCAL"
                && second != "CONSTRAINTS"
                && second != "TRANSACTION")
                || first == "RESET";
            if session_set {
                out.push(format!(
                    "{}:{}: a session setting ({}) stays on the server connection, which other clients get next",
                    script.path.display(),
                    st.line,
                    st.sql.lines().next().unwrap_or("").trim()
                ));
            }
        }
    }
    out
}

/// A transaction of this run's bookkeeping, begun with the lease's fence when the run holds a
/// lease (so a run that lost it writes nothing).
pub fn fenced_transaction<'c>(
    client: &'c mut Client,
    fence: Option<&str>,
) -> Result<postgres::Transaction<'c>> {
    let mut tx = client
        .transaction()
        .map_err(|e| db_error("cannot begin", &e))?;
    if let Some(f) = fence {
        check_fence(&mut tx, f)?;
    }
    Ok(tx)
}
