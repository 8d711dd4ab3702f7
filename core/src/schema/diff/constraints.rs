//! Constraints (primary keys, unique, check, exclusion, foreign keys) of the tables on both
//! sides: renamed when only the name changed, dropped and added again when the definition
//! changed (or when a check reads a touched column), validated when only NOT VALID goes.
//!
//! Foreign keys get their own phases: they are dropped before any table (and whenever the
//! unique index they rely on goes away for a while) and added once every table exists, so
//! tables in a cycle can be created and dropped in any order.

use super::super::change::Change;
use super::super::model::*;
use super::{Comparison, NamedPlan, TableItem};
use std::collections::BTreeSet;

/// What happens to one table's constraints.
#[derive(Default)]
pub(super) struct ConstraintPlan {
    pub named: NamedPlan,
    /// NOT VALID constraints that become valid.
    pub validate: BTreeSet<String>,
}

/// Foreign keys to drop first, and to add last.
#[derive(Default)]
pub(super) struct ForeignKeys {
    drop: BTreeSet<TableItem>,
    add: BTreeSet<TableItem>,
}

fn is_fk(k: &Constraint) -> bool {
    k.kind == ConstraintKind::ForeignKey
}

impl Comparison<'_> {
    /// The constraint plan of a table on both sides.
    pub(super) fn constraint_plan(&self, ta: &Table, tb: &Table) -> ConstraintPlan {
        let mut p = ConstraintPlan {
            named: NamedPlan::new(
                &ta.constraints,
                &tb.constraints,
                |k| k.name.clone(),
                |x, y| {
                    x.kind == y.kind && x.definition == y.definition && x.not_valid == y.not_valid
                },
            ),
            validate: BTreeSet::new(),
        };
        for (n, ka) in &ta.constraints {
            let Some(kb) = tb.constraints.get(n) else {
                continue;
            };
            let recipe_check = ka.kind == ConstraintKind::Check
                && self.touches(&ta.name, &ka.columns)
                && ka.definition == kb.definition;
            if ka.kind != kb.kind
                || ka.definition != kb.definition
                || (!ka.not_valid && kb.not_valid)
                || recipe_check
            {
                p.named.drop.insert(n.clone());
                p.named.add.insert(n.clone());
            } else if ka.not_valid && !kb.not_valid {
                p.validate.insert(n.clone());
            }
        }
        p
    }

    /// Whether the unique index `ix` of table `t` (constraint-owned or not) goes away for a
    /// while.
    fn gone_index(&self, t: &QName, ix: &str) -> bool {
        if self.dropped_tables.contains(t) {
            return true;
        }
        self.plans.get(t).is_some_and(|p| {
            p.constraints.named.drop.contains(ix) || p.indexes.named.drop.contains(ix)
        })
    }

    pub(super) fn compare_foreign_keys(&self) -> ForeignKeys {
        let mut fks = ForeignKeys::default();
        for (t, ta) in &self.a.tables {
            for k in ta.constraints.values().filter(|k| is_fk(k)) {
                self.foreign_key_before(t, k, &mut fks);
            }
        }
        for (t, tb) in &self.b.tables {
            for k in tb.constraints.values().filter(|k| is_fk(k)) {
                let new_here = !self.a.tables.contains_key(t)
                    || self
                        .plans
                        .get(t)
                        .is_some_and(|p| p.constraints.named.add.contains(&k.name));
                if new_here {
                    fks.add.insert(TableItem::new(t, &k.name));
                }
            }
        }
        fks
    }

    /// Whether foreign key `k` of `a`'s table `t` is dropped first (and added again).
    fn foreign_key_before(&self, t: &QName, k: &Constraint, fks: &mut ForeignKeys) {
        if self.dropped_tables.contains(t) {
            // Only those pointing at another dropped table need to go first.
            if k.references
                .as_ref()
                .is_some_and(|r| r != t && self.dropped_tables.contains(r))
            {
                fks.drop.insert(TableItem::new(t, &k.name));
            }
            return;
        }
        let p = &self.plans[t].constraints;
        let ref_gone = match (&k.references, &k.ref_index) {
            (Some(r), Some(ix)) => self.gone_index(r, ix),
            _ => false,
        };
        if p.named.drop.contains(&k.name) || ref_gone {
            fks.drop.insert(TableItem::new(t, &k.name));
            if self.b.tables[t].constraints.contains_key(&k.name)
                && !p.named.renamed.iter().any(|r| r.from == k.name)
            {
                fks.add.insert(TableItem::new(t, &k.name));
            }
        }
    }

    pub(super) fn drop_foreign_keys(&self, out: &mut Vec<Change>) {
        for fk in &self.foreign_keys.drop {
            out.push(Change::DropConstraint {
                table: fk.table.clone(),
                name: fk.name.clone(),
                kind: ConstraintKind::ForeignKey,
                table_dropped: self.dropped_tables.contains(&fk.table),
            });
        }
    }

    /// Constraints of the tables on both sides (foreign keys not already dropped first).
    pub(super) fn drop_constraints(&self, out: &mut Vec<Change>) {
        for (t, p) in &self.plans {
            let ta = &self.a.tables[*t];
            for name in &p.constraints.named.drop {
                let k = &ta.constraints[name];
                if is_fk(k) && self.foreign_keys.drop.contains(&TableItem::new(t, name)) {
                    continue;
                }
                out.push(Change::DropConstraint {
                    table: (*t).clone(),
                    name: name.clone(),
                    kind: k.kind,
                    table_dropped: false,
                });
            }
        }
    }

    /// `ALTER TABLE ... RENAME CONSTRAINT` for one table.
    pub(super) fn rename_constraints(&self, t: &QName, out: &mut Vec<Change>) {
        for r in &self.plans[t].constraints.named.renamed {
            out.push(Change::RenameConstraint {
                table: t.clone(),
                from: r.from.clone(),
                to: r.to.clone(),
            });
        }
    }

    /// Constraints other than foreign keys on existing tables, and their validations.
    pub(super) fn add_constraints(&self, out: &mut Vec<Change>) {
        for (t, p) in &self.plans {
            let tb = &self.b.tables[*t];
            for name in &p.constraints.named.add {
                let k = &tb.constraints[name];
                if !is_fk(k) {
                    out.push(Change::AddConstraint {
                        table: (*t).clone(),
                        constraint: k.clone(),
                        existing_table: true,
                    });
                }
            }
            self.validate(t, p, false, out);
        }
    }

    /// Foreign keys, once every table exists.
    pub(super) fn add_foreign_keys(&self, out: &mut Vec<Change>) {
        for fk in &self.foreign_keys.add {
            out.push(Change::AddConstraint {
                table: fk.table.clone(),
                constraint: self.b.tables[&fk.table].constraints[&fk.name].clone(),
                existing_table: self.a.tables.contains_key(&fk.table),
            });
        }
    }

    pub(super) fn validate_foreign_keys(&self, out: &mut Vec<Change>) {
        for (t, p) in &self.plans {
            self.validate(t, p, true, out);
        }
    }

    /// `VALIDATE CONSTRAINT` for the foreign keys of `t`, or for its other constraints.
    fn validate(&self, t: &QName, p: &super::TablePlan, fks: bool, out: &mut Vec<Change>) {
        for name in &p.constraints.validate {
            let kind = self.b.tables[t].constraints[name].kind;
            if (kind == ConstraintKind::ForeignKey) == fks {
                out.push(Change::ValidateConstraint {
                    table: t.clone(),
                    name: name.clone(),
                    kind,
                });
            }
        }
    }
}
