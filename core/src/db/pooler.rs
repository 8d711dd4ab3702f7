//! Transaction pooling, detected. A pooler in transaction pooling mode (PgBouncer's
//! `pool_mode = transaction`, pgcat, Supavisor's transaction port, RDS Proxy when it does not
//! pin) gives each transaction whichever server connection is free: a client's consecutive
//! statements run on different backends, and its backend runs other clients' statements in
//! between. A session advisory lock — the migration lock — then guards nothing: it stays on a
//! backend other clients use, and they take it again (it is re-entrant there). So the
//! commands that take the lock refuse to run through transaction pooling (see
//! docs/production.md); the reading commands work through it (every statement is unnamed, see
//! [`super::query`]).
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
    Error::new(
        ErrorKind::Usage,
        format!(
            "the connection goes through a pooler in transaction pooling mode ({how}: backend pids {first} and {then}): the migration lock cannot be held through transaction pooling (it is a session advisory lock, which stays on a server connection other clients get), so nothing was changed"
        ),
    )
    .with_hint("connect to PostgreSQL directly, or through the pooler in session pooling (PgBouncer: a database entry with pool_mode=session), to migrate: set DATABASE_URL (or --database-url) to that URL for migrate-up, migrate-down and migrate-stamp. migrate-current, migrate-history and migrate-check work through transaction pooling")
}

enum Ask {
    Begin,
    End,
}

/// Refuses (exit 2) when `client`'s connection goes through transaction pooling. A second
/// connection to `url` (named `app`) starts a transaction and reads its backend, then this
/// session reads its own again, a few times: the same backend for both connections, or this
/// session on another backend, is transaction pooling. When the second connection cannot be
/// opened or gets no backend in time, this cannot tell: it logs so and lets the run go on.
pub fn refuse_transaction_pooling(client: &mut Client, url: &DbUrl, app: &str) -> Result<()> {
    let first = backend_pid(client).map_err(|e| db_error("cannot read the backend pid", &e))?;
    let mut other = match connect(url, app) {
        Ok(c) => c,
        Err(e) => {
            log::warn!("cannot tell whether the connection goes through transaction pooling (a second connection failed: {e}); taking the migration lock as usual");
            return Ok(());
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
        });
    if let Err(e) = spawned {
        return Err(Error::io(format!("cannot start the pooler probe: {e}")));
    }
    let undecided = |why: String| {
        log::warn!("cannot tell whether the connection goes through transaction pooling ({why}); taking the migration lock as usual");
        Ok(())
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
            return Err(transaction_pooling_error(
                first,
                theirs,
                "another connection was handed this session's server connection",
            ));
        }
        let mine = backend_pid(client).map_err(|e| db_error("cannot read the backend pid", &e))?;
        if let Err(why) = reply(Ask::End) {
            return undecided(why);
        }
        if mine != first {
            return Err(transaction_pooling_error(
                first,
                mine,
                "this session's statements ran on different server connections",
            ));
        }
    }
    log::debug!("the session keeps backend {first}: no transaction pooling");
    Ok(())
}
