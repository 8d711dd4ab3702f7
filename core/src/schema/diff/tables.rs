//! Tables: created (with their columns and constraints other than foreign keys, then their
//! comments), dropped, and altered. Altering a table on both sides runs, in order: constraint
//! and index renames, column drops and adds, in-place column changes, LOGGED/UNLOGGED, the
//! table comment.

use super::super::change::{Change, CommentTarget};
use super::super::model::*;
use super::constraints::ConstraintPlan;
use super::indexes::IndexPlan;
use super::Comparison;
use std::collections::BTreeMap;

/// Per-table comparison of constraints and indexes, shared by several phases.
#[derive(Default)]
pub(super) struct TablePlan {
    pub constraints: ConstraintPlan,
    pub indexes: IndexPlan,
}

impl<'s> Comparison<'s> {
    /// The plans of the tables on both sides (needs `touched` and `recipe`).
    pub(super) fn table_plans(&self) -> BTreeMap<&'s QName, TablePlan> {
        let (a, b) = (self.a, self.b);
        self.common
            .iter()
            .map(|t| {
                let (ta, tb) = (&a.tables[*t], &b.tables[*t]);
                let plan = TablePlan {
                    constraints: self.constraint_plan(ta, tb),
                    indexes: self.index_plan(ta, tb),
                };
                (*t, plan)
            })
            .collect()
    }

    /// The tables only in `a`, in reverse name order.
    pub(super) fn drop_tables(&self, out: &mut Vec<Change>) {
        for t in self.dropped_tables.iter().rev() {
            out.push(Change::DropTable { name: (*t).clone() });
        }
    }

    /// The tables only in `b`, with their comments.
    pub(super) fn create_tables(&self, out: &mut Vec<Change>) {
        for (n, t) in &self.b.tables {
            if self.a.tables.contains_key(n) {
                continue;
            }
            let mut table = t.clone();
            table.columns = t.columns.iter().map(|c| self.as_written(n, c)).collect();
            out.push(Change::CreateTable { table });
            if t.comment.is_some() {
                out.push(Change::Comment {
                    on: CommentTarget::Table(n.clone()),
                    comment: t.comment.clone(),
                });
            }
            for c in t.columns.iter().filter(|c| c.comment.is_some()) {
                out.push(Change::Comment {
                    on: CommentTarget::Column(ColumnRef::new(n, &c.name)),
                    comment: c.comment.clone(),
                });
            }
        }
    }

    /// A table on both sides.
    pub(super) fn alter_table(&self, t: &QName, out: &mut Vec<Change>) {
        let (ta, tb) = (&self.a.tables[t], &self.b.tables[t]);
        self.rename_constraints(t, out);
        self.rename_indexes(t, out);
        self.drop_and_add_columns(ta, tb, out);
        self.alter_columns(ta, tb, out);
        if ta.unlogged != tb.unlogged {
            out.push(Change::SetLogged {
                table: t.clone(),
                unlogged: tb.unlogged,
            });
        }
        if ta.comment != tb.comment {
            out.push(Change::Comment {
                on: CommentTarget::Table(t.clone()),
                comment: tb.comment.clone(),
            });
        }
    }
}
