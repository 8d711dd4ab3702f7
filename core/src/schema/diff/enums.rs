//! Enum types: created, given new values (`ADD VALUE` with a position), recreated when values
//! are removed or reordered (the enum recipe: rename the old type aside, create the new one,
//! move every column through text, drop the old type last), and dropped.

use super::super::change::{Change, EnumPosition};
use super::super::model::*;
use super::columns::RecipeColumn;
use super::Comparison;
use std::collections::BTreeMap;

/// How an enum type changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnumChange {
    /// Only new values: `ALTER TYPE ... ADD VALUE` with positions.
    AddValues(Vec<NewEnumValue>),
    /// Values removed or reordered: the recreate recipe.
    Recreate,
}

/// A value `ADD VALUE` adds, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEnumValue {
    pub value: String,
    pub position: Option<EnumPosition>,
}

/// The change from `a`'s values to `b`'s.
pub fn enum_change(a: &[String], b: &[String]) -> Option<EnumChange> {
    if a == b {
        return None;
    }
    // a must be a subsequence of b, in the same order, for ADD VALUE to do.
    let kept: Vec<&String> = b.iter().filter(|v| a.contains(v)).collect();
    if kept.len() != a.len() || kept.iter().zip(a).any(|(x, y)| *x != y) {
        return Some(EnumChange::Recreate);
    }
    let mut adds = Vec::new();
    let mut present: Vec<&String> = a.iter().collect();
    for (i, v) in b.iter().enumerate() {
        if a.contains(v) {
            continue;
        }
        // Place after the previous value of b (already present), else before the next one.
        let position = if i > 0 && present.contains(&&b[i - 1]) {
            Some(EnumPosition::After(b[i - 1].clone()))
        } else {
            b[i + 1..]
                .iter()
                .find(|n| present.contains(n))
                .map(|n| EnumPosition::Before(n.clone()))
        };
        adds.push(NewEnumValue {
            value: v.clone(),
            position,
        });
        present.push(v);
    }
    Some(EnumChange::AddValues(adds))
}

/// The enum types on both sides whose values differ.
pub(super) fn enum_changes<'s>(a: &'s Schema, b: &Schema) -> BTreeMap<&'s QName, EnumChange> {
    let mut out = BTreeMap::new();
    for (n, e) in &a.enums {
        if let Some(be) = b.enums.get(n) {
            if let Some(c) = enum_change(&e.values, &be.values) {
                out.insert(n, c);
            }
        }
    }
    out
}

/// `{name}_retort_old`, within PostgreSQL's 63-byte limit.
fn old_type_name(name: &str) -> String {
    let suffix = "_retort_old";
    let mut base = name.to_string();
    while base.len() + suffix.len() > 63 {
        base.pop();
    }
    format!("{base}{suffix}")
}

impl Comparison<'_> {
    pub(super) fn create_enums(&self, out: &mut Vec<Change>) {
        for (n, e) in &self.b.enums {
            if !self.a.enums.contains_key(n) {
                out.push(Change::CreateEnum {
                    name: n.clone(),
                    values: e.values.clone(),
                    replacing: false,
                });
            }
        }
    }

    /// New values and recreated types; returns the old types the recipe renamed aside.
    pub(super) fn change_enums(&self, out: &mut Vec<Change>) -> Vec<QName> {
        let mut replaced = Vec::new();
        for (n, change) in &self.enum_changes {
            match change {
                EnumChange::AddValues(adds) => {
                    for add in adds {
                        out.push(Change::AddEnumValue {
                            enum_name: (*n).clone(),
                            value: add.value.clone(),
                            position: add.position.clone(),
                        });
                    }
                }
                EnumChange::Recreate => replaced.push(self.recreate_enum(n, out)),
            }
        }
        replaced
    }

    /// The enum recipe for `n`, but the final drop of the old type.
    fn recreate_enum(&self, n: &QName, out: &mut Vec<Change>) -> QName {
        let old = QName::new(n.schema.clone(), old_type_name(&n.name));
        out.push(Change::RenameEnumAside {
            name: n.clone(),
            aside: old.name.clone(),
        });
        out.push(Change::CreateEnum {
            name: n.clone(),
            values: self.b.enums[n].values.clone(),
            replacing: true,
        });
        for r in self.recipe.get(n).into_iter().flatten() {
            move_column(n, r, out);
        }
        old
    }

    /// The replaced types, then the types only in `a`.
    pub(super) fn drop_enums(&self, replaced: &[QName], out: &mut Vec<Change>) {
        for old in replaced {
            out.push(Change::DropEnum {
                name: old.clone(),
                replaced: true,
            });
        }
        for n in self.a.enums.keys().rev() {
            if !self.b.enums.contains_key(n) {
                out.push(Change::DropEnum {
                    name: n.clone(),
                    replaced: false,
                });
            }
        }
    }
}

/// One column moved to the recreated type: its default goes for the move and comes back.
fn move_column(n: &QName, r: &RecipeColumn, out: &mut Vec<Change>) {
    let column = ColumnRef::new(r.table, &r.before.name);
    if r.before.default.is_some() {
        out.push(Change::DropDefault {
            column: column.clone(),
            enum_recipe: true,
        });
    }
    out.push(Change::MoveColumnToEnum {
        column: column.clone(),
        type_sql: r.after.type_sql.clone(),
        is_array: r.after.is_array,
        enum_name: n.clone(),
    });
    if let Some(dflt) = &r.after.default {
        out.push(Change::SetDefault {
            column,
            default: dflt.clone(),
            enum_recipe: true,
        });
    }
}
