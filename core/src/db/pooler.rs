//! Transaction pooling, detected. A pooler in transaction pooling mode (PgBouncer's
//! `pool_mode = transaction`, pgcat, Supavisor's transaction port, RDS Proxy when it does not
//! pin) gives each transaction whichever server connection is free: a client's consecutive
//! statements run on different backends, and its backend runs other clients' statements in
//! between. A session advisory lock then guards nothing: it stays on a backend other clients
//! use, and they take it again (it is re-entrant there). So where this probe sees transaction
//! pooling, the writing commands take the lease lock instead ([`super::lease`]; with
//! `--lock-mode session` they refuse); the reading commands work through it (every statement
//! is unnamed, see [`super::query`]).
//!
//! No pooler says what it is on an ordinary connection, so this watches what it does: with a
//! second connection inside a transaction, a pooler that shares backends hands this session's
//! backend to it (or moves this session's next statement to another backend). A direct
//! connection or a session pooler never does either.

use super::{connect, db_error, query};
use crate::config::DbUrl;
use crate::error::{Error, ErrorKind, Result};
use postgres::{Client, GenericClient};
use std::sync::mpsc;
use std::time::Duration;

/// Rounds of the probe: a pooler may happen to give the same backend back once.
const ROUNDS: usize = 3;

/// How long the second connection may wait for a backend (a session pool that is full makes
/// it wait until a session ends: then this cannot tell, and says so).
const PROBE_WAIT: Duration = Duration::from_secs(3);

/// The backend serving this statement.
pub fn backend_pid(client: &mut impl GenericClient) -> std::result::Result<i32, postgres::Error> {
    Ok(query::one(client, "SELECT pg_catalog.pg_backend_pid()", &[])?.get(0))
}

/// The refusal: `first` and `then` are the backends two statements of one session ran on
/// (equal when another connection was handed this session's backend).
pub fn transaction_pooling_error(first: i32, then: i32, how: &str) -> Error {
    transaction_pooling_error_text(&format!("{how}: backend pids {first} and {then}"))
}

enum Ask {
    Begin,
    End,
}

/// Refuses (exit 2) when `client`'s connection goes through transaction pooling (the
/// `--lock-mode session` check; `auto` takes the lease there instead, see [`super::lease`]).
pub fn refuse_transaction_pooling(client: &mut Client, url: &DbUrl, app: &str) -> Result<()> {
    match probe(client, url, app)? {
        Some(why) => Err(transaction_pooling_error_text(&why)),
        None => Ok(()),
    }
}

/// The refusal for a probe's finding (`why` holds the backend pids).
pub fn transaction_pooling_error_text(why: &str) -> Error {
    Error::new(
        ErrorKind::Usage,
        format!(
            "the connection goes through a pooler in transaction pooling mode ({why}): the session advisory lock (--lock-mode session) cannot be held through transaction pooling, so nothing was changed"
        ),
    )
    .with_hint("use --lock-mode auto (the default) or lease, which take a lease row that holds through any pooler; or connect to PostgreSQL directly")
}

/// Whether `e` is the advisory lock's "statements moved between server connections".
pub fn is_transaction_pooling_error(e: &Error) -> bool {
    e.kind == ErrorKind::Usage
        && e.message
            .starts_with("the connection goes through a pooler in transaction pooling mode")
}

/// Whether `client`'s connection goes through transaction pooling: `Some(what was seen)`. A
/// second connection to `url` (named `app`) starts a transaction and reads its backend, then
/// this session reads its own again, a few times: the same backend for both connections, or
/// this session on another backend, is transaction pooling. When the second connection cannot
/// be opened or gets no backend in time, this cannot tell: it logs so and answers `None`.
pub fn probe(client: &mut Client, url: &DbUrl, app: &str) -> Result<Option<String>> {
    let first = backend_pid(client).map_err(|e| db_error("cannot read the backend pid", &e))?;
    probe_keeping(client, first, url, app).map(|(why, _)| why)
}

/// [`probe`], and its second connection when the probe saw no transaction pooling and ended
/// cleanly (no transaction open on it): a run's statement watcher takes it over rather than
/// opening a connection of its own (each connection costs a password exchange, with SCRAM as
/// much CPU as linting a few hundred scripts, and a server process). `first`: the backend pid
/// `client`'s session read before.
pub fn probe_keeping(
    client: &mut Client,
    first: i32,
    url: &DbUrl,
    app: &str,
) -> Result<(Option<String>, Option<Client>)> {
    let mut other = match connect(url, app) {
        Ok(c) => c,
        Err(e) => {
            log::warn!("cannot tell whether the connection goes through transaction pooling (a second connection failed: {e}); taking the migration lock as usual");
            return Ok((None, None));
        }
    };
    let (ask, asked) = mpsc::channel::<Ask>();
    let (answer, answers) = mpsc::channel::<std::result::Result<i32, String>>();
    let spawned = std::thread::Builder::new()
        .name("retort-pooler-probe".into())
        .spawn(move || {
            for a in asked {
                let r = match a {
                    Ask::Begin => other
                        .batch_execute("BEGIN")
                        .and_then(|()| backend_pid(&mut other)),
                    Ask::End => other.batch_execute("ROLLBACK").map(|()| 0),
                };
                if answer.send(r.map_err(|e| e.to_string())).is_err() {
                    break;
                }
            }
            other
        });
    let handle = match spawned {
        Ok(h) => h,
        Err(e) => return Err(Error::io(format!("cannot start the pooler probe: {e}"))),
    };
    let undecided = |why: String| {
        log::warn!("cannot tell whether the connection goes through transaction pooling ({why}); taking the migration lock as usual");
        Ok((None, None))
    };
    let reply = |a: Ask| -> std::result::Result<i32, String> {
        ask.send(a).map_err(|_| "the probe ended".to_string())?;
        match answers.recv_timeout(PROBE_WAIT) {
            Ok(r) => r,
            Err(_) => Err(format!(
                "a second connection got no server connection within {} s",
                PROBE_WAIT.as_secs()
            )),
        }
    };
    for _ in 0..ROUNDS {
        let theirs = match reply(Ask::Begin) {
            Ok(pid) => pid,
            Err(why) => return undecided(why),
        };
        if theirs == first {
            let _ = reply(Ask::End);
            return Ok((Some(format!("another connection was handed this session's server connection: backend pids {first} and {theirs}")), None));
        }
        let mine = backend_pid(client).map_err(|e| db_error("cannot read the backend pid", &e))?;
        if let Err(why) = reply(Ask::End) {
            return undecided(why);
        }
        if mine != first {
            return Ok((Some(format!("this session's statements ran on different server connections: backend pids {first} and {mine}")), None));
        }
    }
    log::debug!("the session keeps backend {first}: no transaction pooling");
    // every round was answered: the probe's thread waits for the next question, and ends
    // handing back its connection when there is none
    drop(ask);
    Ok((None, handle.join().ok()))
}
