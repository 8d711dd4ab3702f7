//! retort: Alembic-style migrations for PostgreSQL (with pgvector).
//!
//! The surface an application uses is re-exported here: [`Migrator`] (connect, plan, upgrade,
//! downgrade, stamp), [`Project`] (the scripts and their graph), [`Plan`], the run's
//! [`RunReport`] / [`RunError`], and [`Error`]. The modules below are in layers, each using only
//! the ones above it:
//!
//! - values, no I/O: [`error`], [`config`] (settings and URLs), [`script`], [`sql`],
//!   [`graph`], [`interrupt`] (the process's SIGINT/SIGTERM flag), [`plan`] (steps and transaction segments), [`policy`] (pre-run refusals),
//!   [`project`], [`words`] (durations, plurals, heads in messages), [`schema::model`], [`schema::change`], [`schema::diff`], [`schema::filter`],
//!   [`schema::render`];
//! - the database edge: [`db`] (connection, version table, lock, records, catalog),
//!   [`schema::introspect`], [`schema::shadow`], [`schema::workspace`], [`schema::command`],
//!   [`schema`], [`backup`], [`baseline`];
//! - running: [`exec`] (the one run loop, online and offline), [`migrator`] (orchestration),
//!   [`fleet`] (many targets: their list and the scheduler);
//! - commands and their output: [`commands`], [`autogen`], [`lint`] (squawk's rules and
//!   retort's pgvector rules over the scripts), [`output`].
//!
//! The `migrate-*` binaries (the bins crate) only parse arguments, call these, print and exit;
//! nothing here depends on a command-line parser or a logger implementation.

// values
pub mod config;
pub mod error;
pub mod graph;
pub mod interrupt;
pub mod plan;
pub mod policy;
pub mod project;
pub mod script;
pub mod sql;
pub mod words;

// the database edge
pub mod backup;
pub mod baseline;
pub mod db;
pub mod schema;

// running
pub mod exec;
pub mod fleet;
pub mod migrator;

// commands and output
pub mod autogen;
pub mod commands;
pub mod lint;
pub mod output;

pub use commands::{check, history, revision};
pub use error::{Error, ErrorKind, Result};
pub use exec::{RunError, RunOptions, RunReport, RunResult};
pub use graph::Target;
pub use migrator::Migrator;
pub use plan::Plan;
pub use project::Project;
