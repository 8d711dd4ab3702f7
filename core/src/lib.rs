//! retort: Alembic-style migrations for PostgreSQL (with pgvector).
//!
//! The surface an application uses is re-exported here: [`Migrator`] (connect, plan, upgrade,
//! downgrade, stamp), [`Project`] (the scripts and their graph), [`Plan`], the run's
//! [`RunReport`] / [`RunError`], and [`Error`]. The modules below are in layers, each using only
//! the ones above it:
//!
//! - values, no I/O: [`error`], [`config`] (settings and URLs), [`words`] (durations, plurals,
//!   heads in messages), [`interrupt`] (the process's SIGINT/SIGTERM flag), [`script`], [`sql`],
//!   [`graph`], [`plan`] (steps and transaction segments), [`policy`] (pre-run refusals),
//!   [`project`], [`vector`] (pgvector index builds: their memory, time and settings), [`schema::model`], [`schema::change`], [`mod@schema::diff`], [`schema::filter`],
//!   [`schema::render`];
//! - the database edge: [`db`] (connection, version table, lock, records, catalog),
//!   [`mod@schema::introspect`], [`mod@schema::digest`] (catalog digests), [`schema::shadow`] (throwaway databases), [`schema::command`],
//!   [`schema`] (its re-exports), [`backup`], [`lint`] (squawk's rules and retort's pgvector
//!   rules over the scripts, with the catalog's facts) and [`output::lint`] (its findings as
//!   text, JSON and annotations);
//! - running: [`exec`] (the one run loop, online and offline), [`schema::workspace`] (migrations
//!   replayed into shadows), [`baseline`], [`migrator`] (orchestration);
//! - commands and their output: [`commands`], [`autogen`], [`fleet`] (many targets: their list
//!   and the scheduler), [`output`].
//!
//! This list is the one the code has: `core/tests/layers.rs` (run by `make lint` and by
//! `cargo test`) reads it from here, collects every module's imports, and fails on a module the
//! list does not place, on an import that runs upward, and on a cycle between modules.
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
pub mod vector;
pub mod words;

// the database edge (and the schema's modules, each in its layer)
pub mod backup;
pub mod db;
pub mod lint;
pub mod schema;

// running
pub mod baseline;
pub mod exec;
pub mod migrator;

// commands and output
pub mod autogen;
pub mod commands;
pub mod fleet;
pub mod output;

pub use commands::{check, history, revision};
pub use error::{Error, ErrorKind, Result};
pub use exec::{RunError, RunOptions, RunReport, RunResult};
pub use graph::Target;
pub use migrator::Migrator;
pub use plan::Plan;
pub use project::Project;
