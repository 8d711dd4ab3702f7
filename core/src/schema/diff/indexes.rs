//! Indexes that do not belong to a constraint, on the tables on both sides: renamed when only
//! the name changed, dropped and created again when the definition changed (PostgreSQL cannot
//! change an index's method, opclass, keys, predicate or WITH parameters in place) or when an
//! expression or predicate reads a column moved by the enum recipe; and their comments.
//! With `DiffOptions::concurrently`, builds and drops on existing tables use CONCURRENTLY.

use super::super::change::{Change, CommentTarget, IndexBuild};
use super::super::model::*;
use super::{Comparison, NamedPlan};

/// What happens to one table's indexes.
#[derive(Default)]
pub(super) struct IndexPlan {
    pub named: NamedPlan,
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
            }
        }
        IndexPlan { named }
    }

    pub(super) fn drop_indexes(&self, out: &mut Vec<Change>) {
        for (t, p) in &self.plans {
            for name in &p.indexes.named.drop {
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
        for name in &p.add {
            let conc = self.opts.concurrently;
            create_index(t, &tb.indexes[name], conc, IndexBuild::ExistingTable, out);
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
