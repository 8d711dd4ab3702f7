//! Columns of the tables on both sides: dropped, added, and altered in place (type and
//! collation, default, NOT NULL, identity, generated expression, comment). A generated column
//! whose expression changes is dropped and added again. Also works out which columns are
//! "touched" (dropped, retyped, or moved by the enum recipe), since constraints, indexes and
//! views reading them must be rebuilt.

use super::super::change::{Change, ColumnType, CommentTarget, IdentityOption};
use super::super::model::*;
use super::Comparison;

/// A column moved to a recreated enum type (its type text stays the same).
pub(super) struct RecipeColumn<'s> {
    pub table: &'s QName,
    pub before: &'s Column,
    pub after: &'s Column,
}

impl<'s> Comparison<'s> {
    /// Fills `recipe` and `touched`.
    pub(super) fn compare_columns(&mut self) {
        let recreated: Vec<&QName> = self
            .enum_changes
            .iter()
            .filter(|(_, c)| **c == super::EnumChange::Recreate)
            .map(|(n, _)| *n)
            .collect();
        let (a, b) = (self.a, self.b);
        for t in self.common.clone() {
            let (ta, tb) = (&a.tables[t], &b.tables[t]);
            for ca in &ta.columns {
                let Some(cb) = tb.column(&ca.name) else {
                    self.touched.insert(ColumnRef::new(t, &ca.name));
                    continue;
                };
                let recipe = ca.type_sql == cb.type_sql
                    && ca
                        .enum_type
                        .as_ref()
                        .is_some_and(|e| recreated.contains(&e));
                if recipe {
                    let e = ca.enum_type.as_ref().expect("enum");
                    self.recipe.entry(e).or_default().push(RecipeColumn {
                        table: t,
                        before: ca,
                        after: cb,
                    });
                }
                if recipe
                    || ca.type_sql != cb.type_sql
                    || ca.collation != cb.collation
                    || (ca.generated.is_some() && ca.generated != cb.generated)
                {
                    self.touched.insert(ColumnRef::new(t, &ca.name));
                }
            }
        }
    }

    /// Whether any of `columns` of `table` is touched.
    pub(super) fn touches(&self, table: &QName, columns: &[String]) -> bool {
        columns
            .iter()
            .any(|c| self.touched.contains(&ColumnRef::new(table, c)))
    }

    /// Columns dropped (and generated columns to re-add), then columns added.
    pub(super) fn drop_and_add_columns(&self, ta: &Table, tb: &Table, out: &mut Vec<Change>) {
        let t = &ta.name;
        let mut readd: Vec<&Column> = Vec::new();
        for ca in &ta.columns {
            let cb = tb.column(&ca.name);
            let regenerated = cb.is_some_and(|cb| regenerated(ca, cb));
            if cb.is_none() || regenerated {
                out.push(Change::DropColumn {
                    column: ColumnRef::new(t, &ca.name),
                    regenerated,
                });
                readd.extend(cb);
            }
        }
        let added = tb.columns.iter().filter(|c| ta.column(&c.name).is_none());
        for cb in added.chain(readd) {
            out.push(Change::AddColumn {
                table: t.clone(),
                column: self.as_written(t, cb),
            });
        }
    }

    /// The in-place changes of the columns on both sides.
    pub(super) fn alter_columns(&self, ta: &Table, tb: &Table, out: &mut Vec<Change>) {
        for ca in &ta.columns {
            let Some(cb) = tb.column(&ca.name) else {
                continue;
            };
            if regenerated(ca, cb) {
                continue; // re-added by drop_and_add_columns
            }
            let column = ColumnRef::new(&ta.name, &ca.name);
            let recipe = self.in_recipe(&ta.name, &ca.name);
            alter_column(&column, ca, cb, recipe, out);
        }
    }
}

/// A generated column whose expression changes: dropped and added again.
fn regenerated(ca: &Column, cb: &Column) -> bool {
    cb.generated.is_some() && ca.generated != cb.generated
}

/// One column's changes, in the order PostgreSQL needs them: what goes away first, the type,
/// NOT NULL, the default, identity, comment.
fn alter_column(col: &ColumnRef, ca: &Column, cb: &Column, recipe: bool, out: &mut Vec<Change>) {
    if ca.identity.is_some() && cb.identity.is_none() {
        out.push(Change::DropIdentity {
            column: col.clone(),
        });
    }
    if ca.generated.is_some() && cb.generated.is_none() {
        out.push(Change::DropExpression {
            column: col.clone(),
        });
    }
    let type_change = ca.type_sql != cb.type_sql || ca.collation != cb.collation;
    let default_change = ca.default != cb.default && !recipe;
    if (type_change && ca.default.is_some())
        || (default_change && cb.default.is_none() && ca.default.is_some())
    {
        out.push(Change::DropDefault {
            column: col.clone(),
            enum_recipe: false,
        });
    }
    if type_change {
        out.push(Change::AlterColumnType {
            column: col.clone(),
            from: column_type(ca),
            to: column_type(cb),
        });
    }
    not_null(col, ca, cb, out);
    if let Some(dflt) = &cb.default {
        if (type_change && !recipe) || default_change {
            out.push(Change::SetDefault {
                column: col.clone(),
                default: dflt.clone(),
                enum_recipe: false,
            });
        }
    }
    identity(col, ca, cb, out);
    if ca.comment != cb.comment {
        out.push(Change::Comment {
            on: CommentTarget::Column(col.clone()),
            comment: cb.comment.clone(),
        });
    }
}

fn column_type(c: &Column) -> ColumnType {
    ColumnType {
        type_sql: c.type_sql.clone(),
        collation: c.collation.clone(),
    }
}

/// NOT NULL dropped or set (an identity column's NOT NULL comes with the identity).
fn not_null(col: &ColumnRef, ca: &Column, cb: &Column, out: &mut Vec<Change>) {
    if ca.not_null && !cb.not_null && cb.identity.is_none() {
        out.push(Change::DropNotNull {
            column: col.clone(),
        });
    }
    if !ca.not_null && cb.not_null && cb.identity.is_none() {
        out.push(Change::SetNotNull {
            column: col.clone(),
            for_identity: false,
        });
    }
}

/// A column becoming an identity column, or its identity's options changing.
fn identity(col: &ColumnRef, ca: &Column, cb: &Column, out: &mut Vec<Change>) {
    match (&ca.identity, &cb.identity) {
        (None, Some(idb)) => {
            if !ca.not_null {
                out.push(Change::SetNotNull {
                    column: col.clone(),
                    for_identity: true,
                });
            }
            out.push(Change::AddIdentity {
                column: col.clone(),
                identity: idb.clone(),
            });
        }
        (Some(ida), Some(idb)) => {
            let options = identity_options(ida, idb);
            if !options.is_empty() {
                out.push(Change::AlterIdentity {
                    column: col.clone(),
                    options,
                });
            }
        }
        _ => {}
    }
}

/// The identity options that differ, in the order `ALTER COLUMN` lists them.
fn identity_options(ida: &IdentityDef, idb: &IdentityDef) -> Vec<IdentityOption> {
    let mut parts = Vec::new();
    if ida.kind != idb.kind {
        parts.push(IdentityOption::Generated(idb.kind));
    }
    let (sa, sb) = (&ida.sequence, &idb.sequence);
    if sa.increment != sb.increment {
        parts.push(IdentityOption::Increment(sb.increment));
    }
    if sa.min != sb.min {
        parts.push(IdentityOption::MinValue(sb.min));
    }
    if sa.max != sb.max {
        parts.push(IdentityOption::MaxValue(sb.max));
    }
    if sa.start != sb.start {
        parts.push(IdentityOption::Start(sb.start));
    }
    if sa.cache != sb.cache {
        parts.push(IdentityOption::Cache(sb.cache));
    }
    if sa.cycle != sb.cycle {
        parts.push(IdentityOption::Cycle(sb.cycle));
    }
    parts
}
