//! retort: Alembic-style migrations for PostgreSQL (with pgvector).
//!
//! The crate is a pure core (script parsing, the revision graph, plans) and a thin I/O edge
//! (configuration, the database connection, the version table, the run loop). The `migrate-*`
//! binaries only parse arguments and call into this crate; an application can call the same
//! functions to migrate at start-up (see [`Migrator`] and `docs/library.md`).

pub mod autogen;
pub mod backup;
pub mod cli;
pub mod commands;
pub mod config;
pub mod db;
pub mod error;
pub mod graph;
pub mod history;
pub mod json;
pub mod migrator;
pub mod offline;
pub mod plan;
pub mod project;
pub mod revision;
pub mod run;
pub mod schema;
pub mod script;
pub mod sqlsplit;

pub use error::{Error, ErrorKind, Result};
pub use migrator::Migrator;
pub use project::Project;
pub use run::{RunOptions, RunReport};
