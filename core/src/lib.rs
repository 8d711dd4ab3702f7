//! retort: Alembic-style migrations for PostgreSQL (with pgvector).
//!
//! The crate is a pure core (script parsing, the revision graph, plans) and a thin I/O edge
//! (configuration, the database connection, the version table, the run loop). The `migrate-*`
//! binaries only parse arguments and call [`commands`]; an application can call the same
//! functions to migrate at start-up (see `examples/` and `docs/library.md`).

pub mod error;
pub mod graph;
pub mod plan;
pub mod script;

pub use error::{Error, ErrorKind, Result};
