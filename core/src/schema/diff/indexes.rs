//! Indexes that do not belong to a constraint, on the tables on both sides: renamed when only
//! the name changed, dropped and created again when the definition changed (PostgreSQL cannot
//! change an index's method, opclass, keys, predicate or WITH parameters in place) or when an
//! expression or predicate reads a column moved by the enum recipe; and their comments.
//! With `DiffOptions::concurrently`, builds and drops on existing tables use CONCURRENTLY, and
//! a changed index is built under a temporary name first, then the old one dropped and the new
//! one renamed: queries always have an index (a vector search never falls back to a scan).

use super::super::change::{Change, CommentTarget, IndexBuild};
use super::super::model::*;
use super::{Comparison, NamedPlan};

/// What happens to one table's indexes.
#[derive(Default)]
pub(super) struct IndexPlan {
    pub named: NamedPlan,
    /// Dropped and created again under the same name (a changed definition).
    pub rebuilt: std::collections::BTreeSet<String>,
}

impl Comparison<'_> {
    /// The index plan of a table on both sides.
    pub(super) fn index_plan(&self, ta: &Table, tb: &Table) -> IndexPlan {
        let mut named = NamedPlan::new(
            &ta.indexes,
            &tb.indexes,
            |k| k.name.clone(),
            |x, y| x.same_definition(y),
        );
        let mut rebuilt = std::collections::BTreeSet::new();
        for (n, ia) in &ta.indexes {
            let Some(ib) = tb.indexes.get(n) else {
                continue;
            };
            let recipe_ix = self
                .recipe
                .values()
                .flatten()
                .any(|r| r.table == &ta.name && ia.columns.contains(&r.before.name))
                && (ia.predicate.is_some() || ia.body.contains("::"));
            if !ia.same_definition(ib) || recipe_ix {
                named.drop.insert(n.clone());
                named.add.insert(n.clone());
                rebuilt.insert(n.clone());
            }
        }
        IndexPlan { named, rebuilt }
    }

    pub(super) fn drop_indexes(&self, out: &mut Vec<Change>) {
        for (t, p) in &self.plans {
            for name in &p.indexes.named.drop {
                if self.opts.concurrently && p.indexes.rebuilt.contains(name) {
                    continue; // swapped after the new build, in create_indexes_on
                }
                out.push(Change::DropIndex {
                    table: (*t).clone(),
                    name: name.clone(),
                    concurrently: self.opts.concurrently,
                });
            }
        }
    }

    /// `ALTER INDEX ... RENAME TO` for one table.
    pub(super) fn rename_indexes(&self, t: &QName, out: &mut Vec<Change>) {
        for r in &self.plans[t].indexes.named.renamed {
            out.push(Change::RenameIndex {
                table: t.clone(),
                from: r.from.clone(),
                to: r.to.clone(),
            });
        }
    }

    /// Indexes on new tables (no hazard: the table is empty), then on existing ones, with
    /// their comments.
    pub(super) fn create_indexes(&self, out: &mut Vec<Change>) {
        for (n, t) in &self.b.tables {
            if !self.a.tables.contains_key(n) {
                for ix in t.indexes.values() {
                    create_index(n, ix, false, IndexBuild::NewRelation, out);
                }
            }
        }
        for t in self.plans.keys() {
            self.create_indexes_on(t, out);
        }
    }

    fn create_indexes_on(&self, t: &QName, out: &mut Vec<Change>) {
        let p = &self.plans[t].indexes.named;
        let (ta, tb) = (&self.a.tables[t], &self.b.tables[t]);
        let rebuilt = &self.plans[t].indexes.rebuilt;
        for name in &p.add {
            let conc = self.opts.concurrently;
            let ix = &tb.indexes[name];
            if !rebuilt.contains(name) {
                create_index(t, ix, conc, IndexBuild::ExistingTable, out);
            } else if !conc {
                create_index(t, ix, false, IndexBuild::ReplacingIndex, out);
            } else {
                swap_index(t, ix, ta, out);
            }
        }
        for r in &p.renamed {
            let ix = &tb.indexes[&r.to];
            let old = ta
                .indexes
                .values()
                .find(|i| i.name != r.to && i.same_definition(ix))
                .and_then(|i| i.comment.clone());
            index_comment(t, ix, Some(old), out);
        }
        for (n, ib) in &tb.indexes {
            if let Some(ia) = ta.indexes.get(n) {
                if !p.add.contains(n) && ia.comment != ib.comment {
                    index_comment(t, ib, Some(ia.comment.clone()), out);
                }
            }
        }
    }
}

/// The concurrent swap of a changed index: the new definition built under a temporary name
/// (`<name>_new`, or `<name>_new2`... when taken), the old index dropped, the new one renamed.
fn swap_index(t: &QName, ix: &Index, ta: &Table, out: &mut Vec<Change>) {
    let base: String = ix.name.chars().take(59).collect();
    let tmp = std::iter::once(format!("{base}_new"))
        .chain((2..).map(|i| format!("{base}_new{i}")))
        .find(|n| !ta.indexes.contains_key(n))
        .unwrap_or_default();
    let mut building = ix.clone();
    building.name = tmp.clone();
    out.push(Change::CreateIndex {
        table: t.clone(),
        index: building,
        concurrently: true,
        build: IndexBuild::ReplacingIndex,
    });
    out.push(Change::DropIndex {
        table: t.clone(),
        name: ix.name.clone(),
        concurrently: true,
    });
    out.push(Change::RenameIndex {
        table: t.clone(),
        from: tmp,
        to: ix.name.clone(),
    });
    index_comment(t, ix, None, out);
}

/// CREATE INDEX, then its comment if it has one.
pub(super) fn create_index(
    on: &QName,
    ix: &Index,
    concurrently: bool,
    build: IndexBuild,
    out: &mut Vec<Change>,
) {
    out.push(Change::CreateIndex {
        table: on.clone(),
        index: ix.clone(),
        concurrently,
        build,
    });
    index_comment(on, ix, None, out);
}

/// COMMENT ON INDEX when the comment differs from `before` (`None`: a new index).
pub(super) fn index_comment(
    t: &QName,
    ix: &Index,
    before: Option<Option<String>>,
    out: &mut Vec<Change>,
) {
    let changed = match &before {
        None => ix.comment.is_some(),
        Some(b) => *b != ix.comment,
    };
    if changed {
        out.push(Change::Comment {
            on: CommentTarget::Index(QName::new(t.schema.clone(), ix.name.clone())),
            comment: ix.comment.clone(),
        });
    }
}
