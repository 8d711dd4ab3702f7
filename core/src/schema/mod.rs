//! Declarative schema support: read a database's schema from the catalog ([`introspect`]),
//! compare two schemas ([`diff`]), write the SQL ([`render`]), and the throwaway databases the
//! schemas are built in ([`shadow`]). `crate::autogen` puts them together for
//! `migrate-revision --autogenerate` and `migrate-check`'s drift checks.

pub mod diff;
pub mod introspect;
pub mod model;
pub mod render;
pub mod shadow;

pub use diff::{diff, DiffOptions};
pub use introspect::{introspect, IntrospectOptions};
pub use model::{QName, Schema};
pub use render::{render_ops, Op};
