//! Schemas (and their comments) and extensions (by name and schema; versions are not
//! compared): created first, dropped last.

use super::super::change::{Change, CommentTarget};
use super::Comparison;

impl Comparison<'_> {
    pub(super) fn schemas_and_extensions(&self, out: &mut Vec<Change>) {
        let (a, b) = (self.a, self.b);
        for (s, c) in &b.schemas {
            let comment = || Change::Comment {
                on: CommentTarget::Schema(s.clone()),
                comment: c.clone(),
            };
            match a.schemas.get(s) {
                None => {
                    out.push(Change::CreateSchema { name: s.clone() });
                    if c.is_some() {
                        out.push(comment());
                    }
                }
                Some(ca) if ca != c => out.push(comment()),
                _ => {}
            }
        }
        for (e, s) in &b.extensions {
            let (name, schema) = (e.clone(), s.clone());
            match a.extensions.get(e) {
                None => out.push(Change::CreateExtension { name, schema }),
                Some(sa) if sa != s => out.push(Change::MoveExtension { name, schema }),
                _ => {}
            }
        }
    }

    pub(super) fn drop_extensions_and_schemas(&self, out: &mut Vec<Change>) {
        let (a, b) = (self.a, self.b);
        for e in a.extensions.keys().rev() {
            if !b.extensions.contains_key(e) {
                out.push(Change::DropExtension { name: e.clone() });
            }
        }
        for s in a.schemas.keys().rev() {
            if !b.schemas.contains_key(s) {
                out.push(Change::DropSchema { name: s.clone() });
            }
        }
    }
}
