//! How a run is asked to go: [`RunOptions`] (transactions, batches, lock waits and retries,
//! session settings) and the binaries' defaults.

use std::num::NonZeroUsize;
use std::time::Duration;

/// The binaries' `--ddl-lock-timeout` default: a statement waits this long for a lock, then
/// the step is retried (the library's [`RunOptions::default`] sets none).
pub const DEFAULT_DDL_LOCK_TIMEOUT: Duration = Duration::from_secs(5);

/// `MIGRATE_MAX_MAINTENANCE_WORK_MEM`'s default: the most `maintenance_work_mem` retort gives a
/// vector index build on its own, 1GB. A quarter of the smallest servers RAG apps run on (4 GB),
/// where one build's memory must not starve the server's queries; it holds the graph of about
/// 400,000 rows of 384 dimensions or 150,000 of 1536 (m = 16). Above it, a team sets the variable
/// for the server it knows, or `-- set: maintenance_work_mem=...` in the script.
pub const DEFAULT_MAX_MAINTENANCE_WORK_MEM: u64 = 1 << 30;

/// The binaries' `--ddl-retries` default.
pub const DEFAULT_DDL_RETRIES: u32 = 3;

/// How to run a plan.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Commit after each step instead of once at the end.
    pub transaction_per_migration: bool,
    /// `--batch N`: commit every N transactional steps (see [`crate::plan::batches`]); after
    /// each batch the database is at its last step. Not together with
    /// `transaction_per_migration` (which is `--batch 1`); when both are set, that wins.
    pub batch: Option<NonZeroUsize>,
    /// PostgreSQL's `lock_timeout` for every step's statements (`None`: the server's setting;
    /// zero: none). A script's `-- lock_timeout:` overrides it.
    pub ddl_lock_timeout: Option<Duration>,
    /// How often a step that timed out waiting for a lock (55P03) is tried again.
    pub ddl_retries: u32,
    /// The wait before the first retry; it doubles with each.
    pub retry_wait: Duration,
    /// PostgreSQL's `statement_timeout` for every step (`None`: the server's; zero: none). A
    /// script's `-- statement_timeout:` overrides it.
    pub statement_timeout: Option<Duration>,
    /// How long a program step (`-- run:`) may run before it is stopped and the step fails
    /// (`None` or zero: no limit). A script's `-- statement_timeout:` overrides it for its
    /// program.
    pub program_timeout: Option<Duration>,
    /// The most `maintenance_work_mem` a vector index build is given when retort plans its
    /// settings (`MIGRATE_MAX_MAINTENANCE_WORK_MEM`), in bytes; see [`crate::vector`].
    pub max_maintenance_work_mem: u64,
    /// How backfill steps are paced.
    pub backfill: super::BackfillOptions,
}

impl Default for RunOptions {
    /// One transaction, no timeouts of its own, no retries: what offline SQL and shadow
    /// replays use. The binaries set [`DEFAULT_DDL_LOCK_TIMEOUT`] and [`DEFAULT_DDL_RETRIES`].
    fn default() -> Self {
        RunOptions {
            transaction_per_migration: false,
            batch: None,
            ddl_lock_timeout: None,
            ddl_retries: 0,
            retry_wait: Duration::from_secs(1),
            statement_timeout: None,
            program_timeout: None,
            max_maintenance_work_mem: DEFAULT_MAX_MAINTENANCE_WORK_MEM,
            backfill: super::BackfillOptions::default(),
        }
    }
}

impl RunOptions {
    /// The most steps one transaction holds: `None` for the whole run (the default), `Some(1)`
    /// with `transaction_per_migration`, `Some(n)` with `batch`.
    pub fn steps_per_transaction(&self) -> Option<usize> {
        if self.transaction_per_migration {
            Some(1)
        } else {
            self.batch.map(NonZeroUsize::get)
        }
    }
}
