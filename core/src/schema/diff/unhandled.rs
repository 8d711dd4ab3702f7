//! Objects no comparer handles (functions, triggers, policies, domains, partitioned tables,
//! ...): introspection fingerprints them, and this says which exist on one side only or differ,
//! so they are reported as "not compared" instead of being silently left out.

use super::super::model::{ObjectKey, Schema};
use std::collections::BTreeSet;

/// How an object no comparer handles compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnhandledStatus {
    /// Only in `a` (the migrations, or the database).
    OnlyInA,
    /// Only in `b` (the schema file, or the applied revisions).
    OnlyInB,
    Differs,
    Same,
}

/// An object autogenerate does not handle, and how it compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unhandled {
    pub kind: String,
    pub name: String,
    pub status: UnhandledStatus,
}

impl Unhandled {
    pub fn differs(&self) -> bool {
        self.status != UnhandledStatus::Same
    }

    pub fn describe(&self, a_side: &str, b_side: &str) -> String {
        let status = match self.status {
            UnhandledStatus::OnlyInA => format!("only in {a_side}"),
            UnhandledStatus::OnlyInB => format!("only in {b_side}"),
            UnhandledStatus::Differs => format!("differs between {a_side} and {b_side}"),
            UnhandledStatus::Same => "the same on both sides".into(),
        };
        format!("{} {} ({status})", self.kind, self.name)
    }
}

/// Every object neither side can be compared on, with whether its definition differs.
pub fn unhandled(a: &Schema, b: &Schema) -> Vec<Unhandled> {
    let keys: BTreeSet<&ObjectKey> = a.unhandled.keys().chain(b.unhandled.keys()).collect();
    keys.into_iter()
        .map(|k| {
            let status = match (a.unhandled.get(k), b.unhandled.get(k)) {
                (Some(_), None) => UnhandledStatus::OnlyInA,
                (None, Some(_)) => UnhandledStatus::OnlyInB,
                (Some(x), Some(y)) if x != y => UnhandledStatus::Differs,
                _ => UnhandledStatus::Same,
            };
            Unhandled {
                kind: k.kind.clone(),
                name: k.name.clone(),
                status,
            }
        })
        .collect()
}
