//! Shadow databases: throwaway databases on the target's server (or on `--shadow-url`'s) in
//! which the migrations are replayed or `schema.sql` is loaded, so that both schemas are
//! deparsed by the same server.
//!
//! Each has a unique name (`retort_shadow_<pid>_<n>`) and is dropped (`WITH (FORCE)`) when
//! its [`ShadowDb`] goes out of scope — on success, on error, on a panic that unwinds — and on
//! Ctrl-C, by a handler installed with the first shadow.

use crate::config::DbUrl;
use crate::db::{connect, quote_ident, SqlFailure};
use crate::error::{Error, ErrorKind, Result};
use crate::script::split_statements;
use postgres::Client;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

static COUNTER: AtomicUsize = AtomicUsize::new(0);
/// Shadow databases alive in this process: (server URL, database name).
static LIVE: Mutex<Vec<(DbUrl, String)>> = Mutex::new(Vec::new());
#[cfg(feature = "interrupt")]
static HANDLER: std::sync::Once = std::sync::Once::new();
/// Set by the Ctrl-C handler before it drops the shadows.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Where shadow databases are created: the server of `url` (its database is used to connect
/// for CREATE/DROP DATABASE).
#[derive(Debug, Clone)]
pub struct ShadowServer {
    pub admin: DbUrl,
    /// The template database (default `template0`).
    pub template: Option<String>,
}

/// A shadow database; dropped with this value.
#[derive(Debug)]
pub struct ShadowDb {
    pub name: String,
    pub url: DbUrl,
    admin: DbUrl,
}

impl ShadowServer {
    /// Shadows on `shadow_url`'s server when given, else on the target's.
    pub fn new(target: &DbUrl, shadow_url: Option<&DbUrl>) -> ShadowServer {
        ShadowServer {
            admin: shadow_url.unwrap_or(target).clone(),
            template: None,
        }
    }

    /// Creates an empty database (from template0) and registers it for dropping.
    pub fn create(&self) -> Result<ShadowDb> {
        install_interrupt_handler();
        let name = format!(
            "retort_shadow_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let mut admin = connect(&self.admin, "retort-shadow")?;
        let template = self.template.as_deref().unwrap_or("template0");
        let sql = format!(
            "CREATE DATABASE {} TEMPLATE {}",
            quote_ident(&name),
            quote_ident(template)
        );
        admin.batch_execute(&sql).map_err(|e| {
            let f = SqlFailure::from_pg(&e);
            let mut err = Error::new(
                ErrorKind::Database,
                format!("cannot create a shadow database on {} as '{}': {}", self.admin.endpoint(), self.admin.user, f.describe()),
            );
            if f.sqlstate == "42501" && f.message.contains("permission denied to create database") {
                err = err.with_hint(format!(
                    "role '{}' lacks the CREATEDB privilege there; either an administrator runs ALTER ROLE {} CREATEDB, or set MIGRATE_SHADOW_URL (or pass --shadow-url) to a server where it may create databases (same PostgreSQL and pgvector versions)",
                    self.admin.user,
                    super::model::ident(&self.admin.user)
                ));
            } else if f.sqlstate == "42501" || f.message.contains("template") {
                err = err.with_hint(format!(
                    "role '{}' may not copy the template database {template}: an administrator marks it ALTER DATABASE {} IS_TEMPLATE true (or makes the role its owner), or set MIGRATE_SHADOW_TEMPLATE to another template",
                    self.admin.user,
                    super::model::ident(template)
                ));
            }
            err
        })?;
        LIVE.lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((self.admin.clone(), name.clone()));
        log::debug!("created shadow database {name}");
        Ok(ShadowDb {
            url: self.admin.with_dbname(&name),
            name,
            admin: self.admin.clone(),
        })
    }
}

impl ShadowDb {
    pub fn connect(&self) -> Result<Client> {
        connect(&self.url, "retort-shadow")
    }
}

impl Drop for ShadowDb {
    fn drop(&mut self) {
        drop_database(&self.admin, &self.name);
        LIVE.lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(_, n)| n != &self.name);
    }
}

fn drop_database(admin: &DbUrl, name: &str) {
    match connect(admin, "retort-shadow") {
        Ok(mut c) => match c.batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            quote_ident(name)
        )) {
            Ok(()) => log::debug!("dropped shadow database {name}"),
            Err(e) => log::warn!(
                "could not drop shadow database {name}: {}",
                SqlFailure::from_pg(&e).describe()
            ),
        },
        Err(e) => log::warn!("could not drop shadow database {name}: {e}"),
    }
}

/// Without the `interrupt` feature the process's signals are left to the application.
#[cfg(not(feature = "interrupt"))]
fn install_interrupt_handler() {}

/// On Ctrl-C: drop every live shadow database, then exit with 130.
#[cfg(feature = "interrupt")]
fn install_interrupt_handler() {
    HANDLER.call_once(|| {
        let installed = ctrlc::set_handler(|| {
            INTERRUPTED.store(true, Ordering::SeqCst);
            let live: Vec<(DbUrl, String)> = LIVE.lock().map(|l| l.clone()).unwrap_or_default();
            for (admin, name) in &live {
                drop_database(admin, name);
            }
            eprintln!(
                "interrupted{}",
                if live.is_empty() {
                    String::new()
                } else {
                    format!(": dropped {} shadow database(s)", live.len())
                }
            );
            std::process::exit(130);
        });
        if let Err(e) = installed {
            log::debug!("no Ctrl-C handler for shadow databases: {e}");
        }
    });
}

/// After Ctrl-C, the work in progress fails (its shadow databases are dropped under it): the
/// caller then waits here for the handler to finish and exit with 130, instead of reporting
/// that failure.
pub fn wait_if_interrupted() {
    if INTERRUPTED.load(Ordering::SeqCst) {
        loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    }
}

/// Runs a SQL file statement by statement (outside any transaction, so it may hold
/// `CREATE INDEX CONCURRENTLY`); an error names `file:line`.
pub fn load_sql_file(client: &mut Client, path: &Path) -> Result<()> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("cannot read {}: {e}", path.display())))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let stmts = split_statements(text, 1);
    // Fast path: the whole file in one transaction (one commit instead of one per statement).
    // Anything that cannot run in a transaction block (CREATE INDEX CONCURRENTLY, a new enum
    // value used right away) or any error sends it down the slow path, which also reports
    // the failing line.
    if client.batch_execute("BEGIN").is_ok() {
        let all_ran = stmts.iter().all(|st| client.batch_execute(&st.sql).is_ok());
        if all_ran && client.batch_execute("COMMIT").is_ok() {
            return Ok(());
        }
        let _ = client.batch_execute("ROLLBACK");
    }
    for stmt in stmts {
        if let Err(e) = client.batch_execute(&stmt.sql) {
            let f = SqlFailure::from_pg(&e);
            let line = f.line_in(&stmt);
            let first = stmt.sql.trim().lines().next().unwrap_or("").to_string();
            let msg = format!(
                "{}:{line}: {}\n  statement: {first}",
                path.display(),
                f.describe()
            );
            return Err(match extension_privilege_hint(&f.sqlstate, &f.message) {
                // not a broken schema file: the shadow's role lacks a privilege
                Some(h) => Error::new(ErrorKind::Database, msg).with_hint(h),
                None => Error::usage(msg).with_hint(format!(
                    "fix {} (it must run on an empty database, in order)",
                    path.display()
                )),
            });
        }
    }
    Ok(())
}

/// `permission denied to create extension "vector"` in a shadow: which privilege is missing,
/// and the two ways out. `None` for other failures.
pub fn extension_privilege_hint(sqlstate: &str, message: &str) -> Option<String> {
    if sqlstate != "42501" || !message.contains("create extension") {
        return None;
    }
    let ext = message
        .split('"')
        .nth(1)
        .unwrap_or("the extension")
        .to_string();
    Some(format!(
        "creating extension {ext} needs superuser (it is not a trusted extension), and the shadow database's role is not one; either an administrator prepares a template that has it (CREATE DATABASE retort_shadow_template; then in it CREATE EXTENSION {ext}; ALTER DATABASE retort_shadow_template IS_TEMPLATE true) and you set MIGRATE_SHADOW_TEMPLATE=retort_shadow_template, or set MIGRATE_SHADOW_URL (or pass --shadow-url) to a server where the role is superuser (same PostgreSQL and pgvector versions)"
    ))
}

/// Runs generated SQL text statement by statement, for checks; an error quotes the statement.
pub fn run_sql(client: &mut Client, sql: &str, what: &str) -> Result<()> {
    for stmt in split_statements(sql, 1) {
        client.batch_execute(&stmt.sql).map_err(|e| {
            Error::new(
                ErrorKind::Database,
                format!(
                    "{what}: {}\n  statement: {}",
                    SqlFailure::from_pg(&e).describe(),
                    stmt.sql.trim()
                ),
            )
        })?;
    }
    Ok(())
}
