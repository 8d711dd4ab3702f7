//! retort: Alembic-style migrations for PostgreSQL (with pgvector).
//!
//! The crate is a pure core (script parsing, the revision graph, plans) and a thin I/O edge
//! (configuration, the database connection, the version table, the run loop). The `migrate-*`
//! binaries only parse arguments and call into this crate; an application can call the same
//! functions to migrate at start-up (see [`Migrator`] and `docs/library.md`).

pub mod autogen;
pub mod backup;
pub mod commands;
pub mod config;
pub mod db;
pub mod error;
pub mod exec;
pub mod graph;
pub mod migrator;
pub mod output;
pub mod plan;
pub mod policy;
pub mod project;
pub use commands::{check, history, revision};
pub mod schema;
pub mod script;
pub mod sql;

pub use error::{Error, ErrorKind, Result};
pub use exec::{RunError, RunOptions, RunReport, RunResult};
pub use migrator::Migrator;
pub use project::Project;
