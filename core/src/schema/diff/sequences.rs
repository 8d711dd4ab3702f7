//! Standalone sequences (identity sequences are compared as part of their column): created,
//! altered when an option changes, given an owner (`OWNED BY`, serial columns) once the
//! tables exist, and dropped last unless they went with the table or column owning them.

use super::super::change::Change;
use super::super::model::*;
use super::super::render::sequence_options;
use super::Comparison;
use std::collections::BTreeSet;

/// The serial type that creates a sequence like `seq` for a column of type `type_sql`.
fn serial_type(type_sql: &str) -> Option<&'static str> {
    Some(match type_sql {
        "integer" => "serial",
        "bigint" => "bigserial",
        "smallint" => "smallserial",
        _ => return None,
    })
}

impl Comparison<'_> {
    /// The sequences of `b` that a new serial column creates: only in `b`, named
    /// `<table>_<column>_seq`, with the default options of the column's type, owned by the
    /// column, which is NOT NULL and defaults to its `nextval`. They are written as the
    /// column's type (`id bigserial`), not as CREATE SEQUENCE + DEFAULT nextval + OWNED BY.
    pub(super) fn serial_sequences(&self) -> BTreeSet<QName> {
        let mut out = BTreeSet::new();
        for (n, s) in &self.b.sequences {
            if self.a.sequences.contains_key(n) || !sequence_options(s).is_empty() {
                continue;
            }
            let Some(owner) = &s.owned_by else { continue };
            let Some(c) = self
                .b
                .tables
                .get(&owner.table)
                .and_then(|t| t.column(&owner.column))
            else {
                continue;
            };
            let new_column = self
                .a
                .tables
                .get(&owner.table)
                .is_none_or(|t| t.column(&c.name).is_none());
            let expected = format!("nextval({}::regclass)", literal(&n.sql()));
            if new_column
                && n.schema == owner.table.schema
                && n.name == format!("{}_{}_seq", owner.table.name, c.name)
                && c.not_null
                && c.identity.is_none()
                && c.default.as_deref() == Some(expected.as_str())
                && serial_type(&c.type_sql).is_some()
                && s.data_type == c.type_sql
            {
                out.insert(n.clone());
            }
        }
        out
    }

    /// `c` of `table` as a new column is written: `serial` when its sequence is one of
    /// [`Comparison::serial_sequences`].
    pub(super) fn as_written(&self, table: &QName, c: &Column) -> Column {
        let mut c = c.clone();
        let seq = QName::new(
            table.schema.clone(),
            format!("{}_{}_seq", table.name, c.name),
        );
        if self.serials.contains(&seq) {
            c.serial = serial_type(&c.type_sql);
        }
        c
    }

    pub(super) fn create_and_alter_sequences(&self, out: &mut Vec<Change>) {
        for (n, s) in &self.b.sequences {
            if self.serials.contains(n) {
                continue;
            }
            match self.a.sequences.get(n) {
                None => out.push(Change::CreateSequence {
                    sequence: s.clone(),
                }),
                Some(sa) if !sa.same_options(s) => out.push(Change::AlterSequence {
                    sequence: s.clone(),
                }),
                _ => {}
            }
        }
    }

    pub(super) fn sequence_ownership(&self, out: &mut Vec<Change>) {
        for (n, s) in &self.b.sequences {
            if self.serials.contains(n) {
                continue;
            }
            let before = self.a.sequences.get(n).and_then(|x| x.owned_by.clone());
            if s.owned_by != before {
                out.push(Change::SetSequenceOwner {
                    sequence: n.clone(),
                    owner: s.owned_by.clone(),
                });
            }
        }
    }

    pub(super) fn drop_sequences(&self, out: &mut Vec<Change>) {
        let b = self.b;
        for (n, s) in self.a.sequences.iter().rev() {
            if b.sequences.contains_key(n) {
                continue;
            }
            // A sequence owned by a dropped table or column went with it.
            let gone_with_owner = s.owned_by.as_ref().is_some_and(|o| {
                self.dropped_tables.contains(&o.table)
                    || b.tables
                        .get(&o.table)
                        .is_some_and(|tb| tb.column(&o.column).is_none())
            });
            if !gone_with_owner {
                out.push(Change::DropSequence { name: n.clone() });
            }
        }
    }
}
