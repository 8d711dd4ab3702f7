//! Views and materialized views. A view is dropped and created again (PostgreSQL cannot change
//! a view's columns in place) when its definition or options change, when it reads a dropped
//! table or a touched column, or when it reads a view that is dropped. Drops go dependents
//! first, creates dependencies first. Views that stay get their comment changes, and
//! materialized views' indexes are compared like a table's.

use super::super::change::{Change, CommentTarget, IndexBuild};
use super::super::model::*;
use super::indexes::{create_index, index_comment};
use super::Comparison;
use std::collections::{BTreeMap, BTreeSet};

/// Views to drop (from `a`) and to create (from `b`).
#[derive(Default)]
pub(super) struct ViewPlan<'s> {
    pub(super) drop: BTreeSet<&'s QName>,
    create: BTreeSet<&'s QName>,
}

impl<'s> Comparison<'s> {
    pub(super) fn compare_views(&self) -> ViewPlan<'s> {
        let (a, b) = (self.a, self.b);
        let mut drop: BTreeSet<&QName> = BTreeSet::new();
        for (n, va) in &a.views {
            let changed = match b.views.get(n) {
                None => true,
                Some(vb) => {
                    va.definition != vb.definition
                        || va.options != vb.options
                        || va.materialized != vb.materialized
                }
            };
            let reads_touched = va
                .depends_on
                .iter()
                .any(|(rel, cols)| self.dropped_tables.contains(rel) || self.touches(rel, cols));
            if changed || reads_touched {
                drop.insert(n);
            }
        }
        // ... and whatever reads a dropped view.
        loop {
            let more: Vec<&QName> = a
                .views
                .iter()
                .filter(|(n, v)| !drop.contains(n) && v.depends_on.keys().any(|r| drop.contains(r)))
                .map(|(n, _)| n)
                .collect();
            if more.is_empty() {
                break;
            }
            drop.extend(more);
        }
        let create = b
            .views
            .keys()
            .filter(|n| !a.views.contains_key(*n) || drop.contains(n))
            .collect();
        ViewPlan { drop, create }
    }

    pub(super) fn drop_views(&self, out: &mut Vec<Change>) {
        for n in view_order(&self.a.views, &self.views.drop)
            .into_iter()
            .rev()
        {
            out.push(Change::DropView {
                name: n.clone(),
                materialized: self.a.views[n].materialized,
                kept: self.b.views.contains_key(n),
            });
        }
    }

    /// Materialized views kept as they are: indexes that go or change.
    pub(super) fn drop_matview_indexes(&self, out: &mut Vec<Change>) {
        for (n, va) in &self.a.views {
            let Some(vb) = self.b.views.get(n) else {
                continue;
            };
            if self.views.drop.contains(n) || !va.materialized {
                continue;
            }
            for (i, ia) in &va.indexes {
                if vb.indexes.get(i).is_none_or(|ib| !ib.same_definition(ia)) {
                    out.push(Change::DropIndex {
                        table: n.clone(),
                        name: i.clone(),
                        concurrently: false,
                    });
                }
            }
        }
    }

    /// Views, dependencies first; then their comments and (materialized) indexes.
    pub(super) fn create_views(&self, out: &mut Vec<Change>) {
        for n in view_order(&self.b.views, &self.views.create) {
            let v = &self.b.views[n];
            out.push(Change::CreateView { view: v.clone() });
            if v.comment.is_some() {
                out.push(view_comment(v));
            }
            for (c, text) in &v.column_comments {
                out.push(Change::Comment {
                    on: CommentTarget::Column(ColumnRef::new(n, c)),
                    comment: Some(text.clone()),
                });
            }
            for ix in v.indexes.values() {
                create_index(n, ix, false, IndexBuild::NewRelation, out);
            }
        }
    }

    /// Views that stay: comment changes and materialized views' new indexes.
    pub(super) fn views_in_place(&self, out: &mut Vec<Change>) {
        for (n, vb) in &self.b.views {
            let Some(va) = self.a.views.get(n) else {
                continue;
            };
            if self.views.create.contains(n) {
                continue;
            }
            if va.comment != vb.comment {
                out.push(view_comment(vb));
            }
            let cols: BTreeSet<&String> = va
                .column_comments
                .keys()
                .chain(vb.column_comments.keys())
                .collect();
            for c in cols {
                if va.column_comments.get(c) != vb.column_comments.get(c) {
                    out.push(Change::Comment {
                        on: CommentTarget::Column(ColumnRef::new(n, c)),
                        comment: vb.column_comments.get(c).cloned(),
                    });
                }
            }
            matview_indexes_in_place(n, va, vb, out);
        }
    }
}

fn view_comment(v: &View) -> Change {
    Change::Comment {
        on: CommentTarget::View {
            name: v.name.clone(),
            materialized: v.materialized,
        },
        comment: v.comment.clone(),
    }
}

/// A kept materialized view's indexes: new or changed ones are built, comments follow.
fn matview_indexes_in_place(n: &QName, va: &View, vb: &View, out: &mut Vec<Change>) {
    for (i, ib) in &vb.indexes {
        match va.indexes.get(i) {
            Some(ia) if ia.same_definition(ib) => {
                if ia.comment != ib.comment {
                    index_comment(n, ib, Some(ia.comment.clone()), out);
                }
            }
            _ => create_index(n, ib, false, IndexBuild::ExistingMaterializedView, out),
        }
    }
}

/// The views of `set` in dependency order (a view after the views it reads), ties by name.
fn view_order<'v>(views: &'v BTreeMap<QName, View>, set: &BTreeSet<&'v QName>) -> Vec<&'v QName> {
    let mut done: BTreeSet<&QName> = BTreeSet::new();
    let mut out = Vec::new();
    let mut remaining: Vec<&QName> = set.iter().copied().collect();
    while !remaining.is_empty() {
        let before = remaining.len();
        let mut next = Vec::new();
        for n in remaining {
            let ready = views[n]
                .depends_on
                .keys()
                .all(|d| !set.contains(d) || done.contains(d) || d == n);
            if ready {
                out.push(n);
                done.insert(n);
            } else {
                next.push(n);
            }
        }
        if next.len() == before {
            // A cycle cannot happen between views; keep going in name order if it does.
            out.extend(next);
            break;
        }
        remaining = next;
    }
    out
}
