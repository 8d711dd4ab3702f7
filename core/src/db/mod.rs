//! The database edge: connecting (with TLS), and turning PostgreSQL's errors into messages that
//! say which host, which user, and why — never with the password.

pub mod backfill;
pub mod lease;
pub mod leftovers;
pub mod lock;
pub mod lock_budget;
pub mod pooler;
pub mod query;
pub mod recall;
pub mod records;
pub mod sqlstate;
pub mod tls;
pub mod version;

use crate::config::{DbUrl, SslMode};
use crate::error::{Detail, Error, ErrorKind, Result};
use postgres::config::SslMode as PgSslMode;
use postgres::{Client, Config, NoTls};
use std::time::Duration;

pub use version::VersionTable;

/// Default time to wait for the TCP connection and the start-up handshake.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// TCP keepalives on every session: a run whose server vanished mid-step (a host that went
/// away, a dropped route) ends with an error after about a minute instead of waiting on a dead
/// socket forever. A live server answers the probes, however long its statement runs.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_RETRIES: u32 = 3;

/// Opens a connection whose `application_name` is `app` (the binary's name, so it shows in
/// `pg_stat_activity` and in the lock holder report), giving up after the URL's
/// `connect_timeout` (else `PGCONNECT_TIMEOUT`, else 10 s).
pub fn connect(url: &DbUrl, app: &str) -> Result<Client> {
    connect_within(
        url,
        app,
        url.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT),
    )
}

fn pg_config(url: &DbUrl, app: &str, limit: Duration) -> Config {
    let mut cfg = Config::new();
    cfg.host(&url.host)
        .port(url.port)
        .user(&url.user)
        .dbname(&url.dbname)
        .application_name(app)
        .connect_timeout(limit)
        .keepalives(true)
        .keepalives_idle(KEEPALIVE_IDLE)
        .keepalives_interval(KEEPALIVE_INTERVAL)
        .keepalives_retries(KEEPALIVE_RETRIES)
        .notice_callback(notice_hook);
    if let Some(p) = url.password() {
        cfg.password(p);
    }
    if let Some(o) = &url.options {
        cfg.options(o);
    }
    cfg
}

/// The whole connection — TCP, TLS and the start-up handshake — within `limit`. The driver's
/// own timeout covers the TCP connect only: a listener that accepts and then never answers
/// (a half-dead pooler, a firewall that blackholes after the handshake, a server stuck in
/// recovery) would hang it forever. So the handshake runs on a helper thread and is abandoned
/// when the limit passes (the thread ends with the process, or when the socket dies).
fn connect_within(url: &DbUrl, app: &str, limit: Duration) -> Result<Client> {
    let mut cfg = pg_config(url, app, limit);
    let tls = match url.sslmode {
        SslMode::Disable => None,
        mode => {
            cfg.ssl_mode(if mode == SslMode::Prefer {
                PgSslMode::Prefer
            } else {
                PgSslMode::Require
            });
            Some(tls_connector(url)?)
        }
    };
    if url.sslmode == SslMode::Disable {
        cfg.ssl_mode(PgSslMode::Disable);
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("retort-connect".into())
        .spawn(move || {
            let result = match tls {
                None => cfg.connect(NoTls),
                Some(connector) => cfg.connect(connector),
            };
            let _ = tx.send(result);
        });
    if let Err(e) = spawned {
        return Err(Error::io(format!(
            "cannot start the connection thread: {e}"
        )));
    }
    // a little grace beyond the driver's own TCP timeout, so its clearer error wins the race
    match rx.recv_timeout(limit + Duration::from_millis(200)) {
        Ok(result) => result.map_err(|e| connect_error(url, &e)),
        Err(_) => Err(Error::new(
            ErrorKind::Connect,
            format!(
                "cannot connect to {} as user '{}' (database '{}'): timed out after {}: the server accepted the connection but did not answer",
                url.endpoint(),
                url.user,
                url.dbname,
                seconds(limit)
            ),
        )
        .with_hint("is it PostgreSQL (or a pooler in front of it) on that port, and is it out of recovery? Raise connect_timeout in the URL (or PGCONNECT_TIMEOUT) if the network is slow")
        .with_detail(Detail::Connect { retryable: true })),
    }
}

/// `10 s`, `2.5 s`.
fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s:.1} s")
    }
}

/// [`connect`], retrying for up to `wait` in all while the server is not accepting connections
/// yet (refused, timed out, unknown host, starting up): containers start before their database.
/// Authentication and configuration errors are not retried. A line is logged per attempt, at
/// most every few seconds.
pub fn connect_wait(url: &DbUrl, app: &str, wait: Option<Duration>) -> Result<Client> {
    let Some(wait) = wait else {
        return connect(url, app);
    };
    let per_attempt = url.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT);
    let started = std::time::Instant::now();
    let mut delay = Duration::from_millis(250);
    let mut last_report: Option<std::time::Instant> = None;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        // --wait bounds the whole: no attempt outlives it
        let left = wait.saturating_sub(started.elapsed());
        let limit = per_attempt.min(left).max(Duration::from_millis(100));
        match connect_within(url, app, limit) {
            Ok(c) => {
                if attempt > 1 {
                    log::info!(
                        "connected to {} after {} attempts ({:.1} s)",
                        url.endpoint(),
                        attempt,
                        started.elapsed().as_secs_f64()
                    );
                }
                return Ok(c);
            }
            Err(e) if is_retryable(&e) => {
                let elapsed = started.elapsed();
                if elapsed >= wait {
                    return Err(Error::new(
                        ErrorKind::Connect,
                        format!(
                            "gave up after waiting {:.0} s ({attempt} attempt{}): {}",
                            elapsed.as_secs_f64(),
                            crate::words::plural(attempt as usize),
                            e.message
                        ),
                    )
                    .with_hint(e.hint.unwrap_or_default())
                    .with_detail(Detail::Connect { retryable: true }));
                }
                if last_report.is_none_or(|t| t.elapsed() >= Duration::from_secs(3)) {
                    log::info!(
                        "waiting for the database (attempt {attempt}, {:.0} s of {:.0} s): {}",
                        elapsed.as_secs_f64(),
                        wait.as_secs_f64(),
                        e.message
                    );
                    last_report = Some(std::time::Instant::now());
                }
                std::thread::sleep(delay.min(wait.saturating_sub(elapsed)));
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Whether a connection error may go away by itself (the server is not up yet), as the error
/// says in its typed detail.
fn is_retryable(e: &Error) -> bool {
    matches!(e.detail, Detail::Connect { retryable: true })
}

fn tls_connector(url: &DbUrl) -> Result<tls::LazyTls> {
    let root_cert = match &url.sslrootcert {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| {
                Error::new(
                    ErrorKind::Connect,
                    format!("cannot read sslrootcert {}: {e}", path.display()),
                )
            })?;
            Some((path.clone(), pem))
        }
        None => None,
    };
    Ok(tls::LazyTls::new(tls::TlsSettings {
        mode: url.sslmode,
        root_cert,
    }))
}

/// Why a connection failed, said for people: where, as whom, what happened, what to do.
pub fn connect_error(url: &DbUrl, e: &postgres::Error) -> Error {
    let whom = format!(
        "cannot connect to {} as user '{}' (database '{}')",
        url.endpoint(),
        url.user,
        url.dbname
    );
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        let why = match code {
            "28P01" => "password authentication failed".to_string(),
            "3D000" => format!("database '{}' does not exist", url.dbname),
            "57P03" => "the server is starting up or shutting down".to_string(),
            "53300" => "too many connections".to_string(),
            "28000" => db.message().to_string(),
            _ => format!("{} (SQLSTATE {code})", db.message()),
        };
        let hint = match code {
            "3D000" => format!(
                "create it (createdb {}) or fix the database name in the URL",
                url.dbname
            ),
            _ => sqlstate::hint(code)
                .unwrap_or("check the URL and the server's log")
                .to_string(),
        };
        let retryable = matches!(db.code().code(), "57P03" | "53300");
        return Error::new(ErrorKind::Connect, format!("{whom}: {why}"))
            .with_hint(hint)
            .with_detail(Detail::Connect { retryable });
    }
    let text = crate::config::redact_url_text(&error_chain(e));
    let lower = text.to_lowercase();
    let retryable = lower.contains("refused")
        || lower.contains("timed out")
        || lower.contains("timeout")
        || lower.contains("failed to lookup")
        || lower.contains("name or service not known")
        || lower.contains("no such host")
        || lower.contains("resolve")
        || lower.contains("connection reset");
    let (why, hint) = if lower.contains("refused") {
        ("connection refused".to_string(), "is the server running and listening on that host and port? Start it (e.g. docker compose up -d db) or correct the host and port; --wait 30s waits for a server that is still starting")
    } else if lower.contains("timed out") || lower.contains("timeout") {
        ("timed out".to_string(), "check the host, port and firewall; raise connect_timeout in the URL if the network is slow")
    } else if lower.contains("failed to lookup")
        || lower.contains("name or service not known")
        || lower.contains("no such host")
        || lower.contains("resolve")
    {
        (
            "unknown host".to_string(),
            "check the host name in the URL (inside docker compose, use the service name, e.g. db)",
        )
    } else if lower.contains("tls")
        || lower.contains("ssl")
        || lower.contains("certificate")
        || lower.contains("hostname")
    {
        (format!("TLS failed: {text}"), "check sslmode and sslrootcert; verify-full needs the URL host to match the server certificate's name")
    } else {
        (
            text.clone(),
            "check the database URL and that the server is reachable",
        )
    };
    Error::new(ErrorKind::Connect, format!("{whom}: {why}"))
        .with_hint(hint)
        .with_detail(Detail::Connect { retryable })
}

/// The error and its sources on one line ("a: b: c"), without duplicates.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        src = s.source();
    }
    parts.join(": ")
}

/// A database error from a statement, with everything PostgreSQL said about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlFailure {
    pub sqlstate: String,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
    /// 1-based character position in the statement text, when PostgreSQL gave one.
    pub position: Option<u32>,
}

impl SqlFailure {
    /// The line in the file of the failing `stmt`: the error position when PostgreSQL gave one,
    /// otherwise the statement's first line.
    pub fn line_in(&self, stmt: &crate::script::Statement) -> usize {
        crate::sql::line_of_position(
            &stmt.sql,
            stmt.line,
            self.position.map_or(0, |p| p as usize),
        )
    }

    pub fn from_pg(e: &postgres::Error) -> SqlFailure {
        match e.as_db_error() {
            Some(db) => SqlFailure {
                sqlstate: db.code().code().to_string(),
                message: db.message().to_string(),
                detail: db.detail().map(str::to_string),
                hint: db.hint().map(str::to_string),
                position: match db.position() {
                    Some(postgres::error::ErrorPosition::Original(p)) => Some(*p),
                    _ => None,
                },
            },
            None => SqlFailure {
                sqlstate: String::new(),
                message: crate::config::redact_url_text(&error_chain(e)),
                detail: None,
                hint: None,
                position: None,
            },
        }
    }

    /// "ERROR 42P07: relation \"x\" already exists\n  DETAIL: ...\n  HINT: ..."
    pub fn describe(&self) -> String {
        let mut s = if self.sqlstate.is_empty() {
            self.message.clone()
        } else {
            format!("ERROR {}: {}", self.sqlstate, self.message)
        };
        if let Some(d) = &self.detail {
            s.push_str(&format!("\n  DETAIL: {d}"));
        }
        if let Some(h) = &self.hint {
            s.push_str(&format!("\n  HINT: {h}"));
        }
        s
    }
}

/// Maps a failed statement on an open connection to an error (used outside the run loop).
pub fn db_error(context: &str, e: &postgres::Error) -> Error {
    Error::new(
        ErrorKind::Database,
        format!("{context}: {}", SqlFailure::from_pg(e).describe()),
    )
}

type NoticeSink = Box<dyn Fn(&postgres::error::DbError)>;

thread_local! {
    /// Where this thread's server notices go while [`with_notices`] runs.
    static NOTICE_SINK: std::cell::RefCell<Option<NoticeSink>> =
        const { std::cell::RefCell::new(None) };
}

/// The driver calls a connection's notice callback on the thread that is waiting for that
/// connection's statement: so a run loop that sends a statement inside [`with_notices`] gets
/// that statement's notices, and no one else's. Elsewhere they are debug lines.
fn notice_hook(n: postgres::error::DbError) {
    NOTICE_SINK.with(|s| match &*s.borrow() {
        Some(sink) => sink(&n),
        None => log::debug!("server {}: {}", n.severity(), n.message()),
    })
}

/// Runs `f` with this thread's server notices sent to `sink`.
pub fn with_notices<T>(
    sink: impl Fn(&postgres::error::DbError) + 'static,
    f: impl FnOnce() -> T,
) -> T {
    NOTICE_SINK.with(|s| *s.borrow_mut() = Some(Box::new(sink)));
    let out = f();
    NOTICE_SINK.with(|s| *s.borrow_mut() = None);
    out
}

/// Cancels the statement running on `token`'s session (a new connection carrying the cancel
/// key, with the URL's TLS); returns once the server has taken the request.
pub fn cancel(url: &DbUrl, token: &postgres::CancelToken) -> Result<()> {
    let sent = match url.sslmode {
        SslMode::Disable => token.cancel_query(NoTls),
        _ => token.cancel_query(tls_connector(url)?),
    };
    sent.map_err(|e| db_error("cannot cancel the running statement", &e))
}

/// Indexes PostgreSQL marks INVALID (a failed or interrupted CREATE INDEX CONCURRENTLY, or
/// REINDEX CONCURRENTLY), as `schema.index`.
pub fn invalid_indexes(client: &mut impl postgres::GenericClient) -> Result<Vec<String>> {
    let rows = query::rows(
        client,
        "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_index i
           JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE NOT i.indisvalid ORDER BY 1",
        &[],
    )
    .map_err(|e| db_error("cannot look for invalid indexes", &e))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Those of `tables` (qualified, quoted names) that exist, in the order given.
pub fn existing_tables(
    client: &mut impl postgres::GenericClient,
    tables: &[String],
) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for t in tables {
        let row = query::one(
            client,
            "SELECT to_regclass($1) IS NOT NULL",
            &[(t, postgres::types::Type::TEXT)],
        )
        .map_err(|e| db_error("cannot look up retort's tables", &e))?;
        if row.get::<_, bool>(0) {
            out.push(t.clone());
        }
    }
    Ok(out)
}

/// The INVALID indexes with their definitions (`pg_get_indexdef`), to rebuild them.
pub fn invalid_index_definitions(client: &mut Client) -> Result<Vec<(String, String)>> {
    let rows = client
        .simple_query(
            "SELECT format('%I.%I', n.nspname, c.relname), pg_get_indexdef(c.oid) FROM pg_index i
               JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE NOT i.indisvalid ORDER BY 1",
        )
        .map_err(|e| db_error("cannot look for invalid indexes", &e))?;
    Ok(rows
        .iter()
        .filter_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => {
                Some((r.get(0)?.to_string(), r.get(1)?.to_string()))
            }
            _ => None,
        })
        .collect())
}

/// Quotes an identifier for SQL ("a""b").
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Quotes a string literal for SQL ('it''s').
pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}
