//! Standalone sequences (identity sequences are compared as part of their column): created,
//! altered when an option changes, given an owner (`OWNED BY`, serial columns) once the
//! tables exist, and dropped last unless they went with the table or column owning them.

use super::super::change::Change;
use super::Comparison;

impl Comparison<'_> {
    pub(super) fn create_and_alter_sequences(&self, out: &mut Vec<Change>) {
        for (n, s) in &self.b.sequences {
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
