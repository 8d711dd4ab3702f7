//! Objects no comparer handles (functions, triggers, policies, domains, partitioned tables,
//! ...): introspection fingerprints them, and this says which exist on one side only or differ,
//! so they are reported as "not compared" instead of being silently left out.

use super::super::model::Schema;
use std::collections::BTreeSet;

/// An object autogenerate does not handle, and how it compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unhandled {
    pub kind: String,
    pub name: String,
    /// "only in the migrations", "only in schema.sql", "differs", "same".
    pub status: &'static str,
}

impl Unhandled {
    pub fn differs(&self) -> bool {
        self.status != "same"
    }

    pub fn describe(&self, a_side: &str, b_side: &str) -> String {
        let status = match self.status {
            "a" => format!("only in {a_side}"),
            "b" => format!("only in {b_side}"),
            "differs" => format!("differs between {a_side} and {b_side}"),
            _ => "the same on both sides".into(),
        };
        format!("{} {} ({status})", self.kind, self.name)
    }
}

/// Every object neither side can be compared on, with whether its definition differs.
pub fn unhandled(a: &Schema, b: &Schema) -> Vec<Unhandled> {
    let keys: BTreeSet<&(String, String)> = a.unhandled.keys().chain(b.unhandled.keys()).collect();
    keys.into_iter()
        .map(|k| {
            let status = match (a.unhandled.get(k), b.unhandled.get(k)) {
                (Some(_), None) => "a",
                (None, Some(_)) => "b",
                (Some(x), Some(y)) if x != y => "differs",
                _ => "same",
            };
            Unhandled {
                kind: k.0.clone(),
                name: k.1.clone(),
                status,
            }
        })
        .collect()
}
