//! Running a plan: the one run loop over the plan's transaction segments.
//!
//! The loop is written once, against the small [`Executor`] trait, so an online run
//! ([`online::PgExecutor`]: statements sent to PostgreSQL) and offline SQL ([`offline`]: the
//! same statements written out as a script) cannot disagree about what runs, in which order,
//! and where transactions begin and end. The loop keeps the run's state — which steps are
//! committed, which heads the database is at — so that a failure is reported as data
//! ([`RunError`]), and so that the state machine ("step 3 fails → steps 1 and 2 stay
//! committed") is unit-tested below without a server.
//!
//! Default: every run of transactional steps is one transaction (Alembic's default on
//! PostgreSQL), so a failure leaves the database exactly as it was. With
//! `transaction_per_migration`, each step commits with its version-table write, and a failure
//! leaves the database at the last good step. With `batch` (`--batch N`), every N steps commit
//! together ([`crate::plan::batches`]), and a failure leaves the database at the end of the
//! last committed batch ([`FailureState::batch`]). A `transactional: false` script ends the open
//! transaction, runs its statements one by one outside any transaction, and records its step in
//! a transaction of its own. A program step (`-- run:`) does the same around its program
//! ([`program`]): everything before it is committed, the program runs through
//! [`Executor::run_program`], and only when it exits 0 is its revision recorded, in a
//! transaction of its own.
//!
//! The loop also keeps a run safe to interrupt and to wait: it checks for SIGINT/SIGTERM
//! ([`crate::interrupt`]) before every statement and COMMIT, so an interrupted run ends like a failed
//! one, in a state it can name; it sets each step's session settings (`lock_timeout`,
//! `statement_timeout`, a script's `-- set:`) as statements of the run, so offline SQL shows
//! them too; and a step that times out waiting for a lock (SQLSTATE 55P03) is tried again
//! after a growing wait, after rolling back the open transaction — which, in the default one
//! transaction per run, holds the steps before it as well: a retry runs all of them again,
//! holding no lock while it waits. Heartbeats and server notices reach the [`Observer`]
//! through [`Executor::run_statement`].

pub mod backfill;
mod backfill_worker;
pub mod estimate;
mod failure;
pub mod monitor;
mod observe;
pub mod offline;
pub mod online;
mod options;
pub mod program;
mod report;
mod run;
mod steps;
pub mod watch;

use crate::db::records::Records;
use crate::db::{SqlFailure, VersionTable};
use crate::error::Result;
pub use backfill::{BackfillEvent, BackfillOptions, BackfillProgress};
pub use observe::{
    log_backfill, log_notice, program_line, DebugObserver, LogObserver, Observer, QuietObserver,
};
pub use options::{
    RunOptions, DEFAULT_DDL_LOCK_TIMEOUT, DEFAULT_DDL_RETRIES, DEFAULT_MAX_MAINTENANCE_WORK_MEM,
};
pub use report::{BatchAt, FailureState, ProgramRun, RunError, RunReport, RunResult, StepResult};
pub use run::run_plan;
pub use steps::{step_settings, step_title};
pub use watch::{Blocker, BuildProgress, Heartbeat, Retry, ServerNotice, StatementAt};

/// Where the run loop sends SQL. `BEGIN`, `COMMIT` and `ROLLBACK` go through
/// [`Executor::execute`] like everything else.
pub trait Executor {
    /// Sends one statement of a script, or a transaction command.
    fn execute(&mut self, sql: &str) -> std::result::Result<(), SqlFailure>;
    /// Sends a step's bookkeeping (version-table writes, records): online in one round trip.
    fn execute_batch(&mut self, sqls: &[String]) -> std::result::Result<(), SqlFailure> {
        self.execute(&sqls.join("\n"))
    }
    /// Called once, before the first step's statements (inside its transaction when it has
    /// one): make sure the version table (and the record tables) exist.
    fn prepare(&mut self, books: &Bookkeeping) -> Result<()>;
    /// A line for whoever reads what was sent (offline SQL writes it as a comment).
    fn comment(&mut self, _text: &str) {}
    /// After a statement of a non-transactional script failed: what it left behind that needs
    /// cleaning up (INVALID indexes of a failed concurrent build).
    fn left_behind(&mut self) -> Vec<String> {
        Vec::new()
    }
    /// Sends one statement of a script, telling `observer` what happens while it runs
    /// (heartbeats, server notices) and letting an interrupt cancel it. Default: [`execute`].
    ///
    /// [`execute`]: Executor::execute
    fn run_statement(
        &mut self,
        sql: &str,
        _at: &StatementAt,
        _observer: &mut dyn Observer,
    ) -> std::result::Result<(), SqlFailure> {
        self.execute(sql)
    }
    /// Runs one statement and returns its rows (as text) and the count of its command tag: what
    /// a backfill asks the database (its key, its range, its checkpoint, the replicas' lag).
    /// Offline there is no database to ask.
    fn query(&mut self, _sql: &str) -> std::result::Result<backfill::QueryRows, SqlFailure> {
        Err(backfill::offline_failure())
    }
    /// Who blocked the last statement while it waited for a lock, as last seen.
    fn blockers(&mut self) -> Vec<Blocker> {
        Vec::new()
    }
    /// Measures the recall of a check step's index ([`crate::db::recall::measure`]), outside
    /// any transaction; `None`: this executor passes check steps unmeasured (a replay into a
    /// shadow database, whose tables are empty). Default: an error (offline there is no index
    /// to measure).
    fn recall_check(
        &mut self,
        check: &crate::script::RecallCheck,
    ) -> Result<Option<crate::db::recall::RecallReport>> {
        Err(crate::error::Error::usage(format!(
            "the check step '-- check: {}' measures an index on the database: this run has none \
             (--sql cannot include it)",
            check.header_text()
        ))
        .with_hint("write the SQL up to the revision before the check, run the check online with migrate-up, then the rest"))
    }
    /// Runs a program step's command ([`program::run`]), its output to `observer`; `None`
    /// when this executor does not run programs but wrote what it could instead (offline SQL).
    /// Default: an error (nothing to run a program against).
    fn run_program(
        &mut self,
        call: &ProgramCall,
        _observer: &mut dyn Observer,
    ) -> Result<Option<program::Outcome>> {
        Err(cannot_run_programs(call))
    }
    /// Where this executor's programs run (the database URL and directory they get), for a
    /// backfill's worker program (`backfill_worker`); None when it runs no programs.
    fn program_env(&self) -> Option<program::ProgramEnv> {
        None
    }
}

/// The error of an executor that has no database URL to give a program.
pub(crate) fn cannot_run_programs(call: &ProgramCall) -> crate::error::Error {
    crate::error::Error::usage(format!(
        "{}:{}: revision {} is a program step ('-- run: {}'), which this run cannot start \
         (it has no database URL to give the program)",
        call.path, call.line, call.revision, call.command
    ))
}

/// A program step as the run loop hands it to [`Executor::run_program`].
#[derive(Debug, Clone)]
pub struct ProgramCall {
    pub revision: String,
    pub direction: crate::plan::Direction,
    pub command: String,
    /// The script's path and the `-- run:` line.
    pub path: String,
    pub line: usize,
    pub timeout: Option<std::time::Duration>,
}

/// The bookkeeping a run writes beside each step: the version table always; the applied
/// records (checksum, duration) when `records` is given (online runs).
#[derive(Debug, Clone, Copy)]
pub struct Bookkeeping<'a> {
    pub table: &'a VersionTable,
    pub records: Option<&'a Records>,
}

#[cfg(test)]
mod tests;
