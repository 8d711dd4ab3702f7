//! Declarative schema support: read a database's schema from the catalog ([`introspect()`]),
//! hash it on the server in one query ([`catalog_digest`], to compare two without reading
//! either), compare two schemas into typed [`Change`]s ([`diff()`], [`change`]), write their SQL
//! ([`render`]), the throwaway databases the schemas are built in ([`shadow`]), and the pair of
//! shadows autogenerate and drift checks compare ([`workspace`]). `crate::autogen` and
//! `crate::commands::check` put them together for `migrate-revision --autogenerate` and
//! `migrate-check`'s drift checks; [`command`] runs `--schema-command` in place of the file.

pub mod change;
pub mod command;
pub mod diff;
pub mod digest;
pub mod filter;
pub mod introspect;
pub mod model;
pub mod render;
pub mod shadow;
pub mod workspace;

pub use change::{Change, Hazard, HazardKind};
pub use diff::{changes, diff, DiffOptions};
pub use digest::{catalog_digest, Digester};
pub use introspect::{introspect, IntrospectOptions};
pub use model::{QName, Schema};
pub use render::{render_changes, render_ops, Op};
