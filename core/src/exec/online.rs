//! The online executor: the run loop's statements sent to PostgreSQL on the migration's
//! connection, with the simple query protocol (no prepared statements).

use super::{Bookkeeping, Executor};
use crate::db::SqlFailure;
use crate::error::{Error, ErrorKind, Result};
use postgres::Client;

/// Sends the run loop's SQL on `client`.
pub struct PgExecutor<'a> {
    pub client: &'a mut Client,
    /// The lease's fence, run after each BEGIN (see [`crate::db::lease`]).
    fence: Option<String>,
}

impl<'a> PgExecutor<'a> {
    pub fn new(client: &'a mut Client) -> Self {
        PgExecutor {
            client,
            fence: None,
        }
    }

    pub fn with_fence(mut self, fence: Option<String>) -> Self {
        self.fence = fence;
        self
    }
}

impl Executor for PgExecutor<'_> {
    fn execute(&mut self, sql: &str) -> std::result::Result<(), SqlFailure> {
        self.client
            .batch_execute(sql)
            .map_err(|e| SqlFailure::from_pg(&e))?;
        match &self.fence {
            Some(f) if sql == "BEGIN" => {
                crate::db::lease::check_fence(self.client, f).map_err(|e| SqlFailure {
                    sqlstate: String::new(),
                    message: e.message,
                    detail: None,
                    hint: e.hint,
                    position: None,
                })
            }
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
