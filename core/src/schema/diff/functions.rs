//! Functions, procedures and triggers. A function whose definition changes is replaced
//! (`CREATE OR REPLACE`) when its arguments and result stay the same, else dropped and created
//! again (with the triggers that run it). A trigger whose definition changes is dropped and
//! created again.
//!
//! Order: functions that `b`'s column defaults, generated columns, constraints or indexes call
//! are created before the tables; the others after the tables, constraints and indexes (a SQL
//! function's body is checked against the tables when it is created) and before the views;
//! among themselves, a function another one's body names comes first. Triggers come last,
//! after the tables, views and functions they need; they are dropped first. Removed functions
//! are dropped late, after what used them.

use super::super::change::Change;
use super::super::model::*;
use super::Comparison;
use std::collections::BTreeSet;

/// What happens to functions and triggers.
#[derive(Default)]
pub(super) struct RoutinePlan {
    /// Functions only in `a`: dropped late.
    drop: BTreeSet<String>,
    /// Functions dropped early to be created again (arguments or result change).
    recreate: BTreeSet<String>,
    /// Functions created (new or recreated) or replaced, in `b`.
    create: BTreeSet<String>,
    /// Triggers dropped (gone, changed, or their function recreated).
    trigger_drop: BTreeSet<(QName, String)>,
    /// Triggers created.
    trigger_create: BTreeSet<(QName, String)>,
}

impl Comparison<'_> {
    pub(super) fn compare_routines(&self) -> RoutinePlan {
        let (a, b) = (self.a, self.b);
        let mut p = RoutinePlan::default();
        for (sig, fa) in &a.functions {
            match b.functions.get(sig) {
                None => {
                    p.drop.insert(sig.clone());
                }
                Some(fb) if fa.definition != fb.definition => {
                    if !fa.replaceable_by(fb) {
                        p.recreate.insert(sig.clone());
                    }
                    p.create.insert(sig.clone());
                }
                Some(_) => {}
            }
        }
        for sig in b.functions.keys() {
            if !a.functions.contains_key(sig) {
                p.create.insert(sig.clone());
            }
        }
        // A trigger goes with its relation when the relation is dropped.
        let relation_dropped = |t: &QName| {
            self.dropped_tables.contains(t)
                || (a.views.contains_key(t) && self.views.drop.contains(t))
        };
        for (k, ta) in &a.triggers {
            let changed = match b.triggers.get(k) {
                None => true,
                Some(tb) => ta.definition != tb.definition || p.recreate.contains(&ta.function),
            };
            if changed && !relation_dropped(&k.0) {
                p.trigger_drop.insert(k.clone());
            }
        }
        for (k, tb) in &b.triggers {
            let missing = match a.triggers.get(k) {
                None => true,
                Some(ta) => {
                    ta.definition != tb.definition
                        || p.recreate.contains(&tb.function)
                        || relation_dropped(&k.0)
                }
            };
            if missing {
                p.trigger_create.insert(k.clone());
            }
        }
        p
    }

    /// Phase 1: triggers that go or change, then functions to create again.
    pub(super) fn drop_triggers(&self, out: &mut Vec<Change>) {
        for (table, name) in &self.routines.trigger_drop {
            out.push(Change::DropTrigger {
                table: table.clone(),
                name: name.clone(),
            });
        }
    }

    /// Phase 1, before the tables: functions whose arguments or result use the row type of a
    /// dropped table (they would keep it from being dropped).
    pub(super) fn drop_functions_of_dropped_tables(&self, out: &mut Vec<Change>) {
        for sig in function_order(self.a, &self.early_drops())
            .into_iter()
            .rev()
        {
            out.push(drop_function(&self.a.functions[&sig]));
        }
    }

    fn early_drops(&self) -> BTreeSet<String> {
        self.routines
            .drop
            .iter()
            .filter(|sig| {
                let f = &self.a.functions[*sig];
                self.dropped_tables.iter().any(|t| {
                    let n = t.sql();
                    mentions(&f.arguments, &n)
                        || f.result.as_deref().is_some_and(|r| mentions(r, &n))
                })
            })
            .cloned()
            .collect()
    }

    /// Phase 1, after the tables: functions to create again (their triggers are gone).
    pub(super) fn drop_recreated_functions(&self, out: &mut Vec<Change>) {
        for sig in function_order(self.a, &self.routines.recreate)
            .into_iter()
            .rev()
        {
            out.push(drop_function(&self.a.functions[&sig]));
        }
    }

    /// Phase 2, before the tables: the functions `b`'s tables call.
    pub(super) fn create_early_functions(&self, out: &mut Vec<Change>) {
        let early: BTreeSet<String> = self
            .routines
            .create
            .iter()
            .filter(|s| self.called_by_tables(&self.b.functions[*s]))
            .cloned()
            .collect();
        self.create_functions_in(&early, out);
    }

    /// Phase 2, before the views: the other functions.
    pub(super) fn create_late_functions(&self, out: &mut Vec<Change>) {
        let late: BTreeSet<String> = self
            .routines
            .create
            .iter()
            .filter(|s| !self.called_by_tables(&self.b.functions[*s]))
            .cloned()
            .collect();
        self.create_functions_in(&late, out);
    }

    fn create_functions_in(&self, set: &BTreeSet<String>, out: &mut Vec<Change>) {
        for sig in function_order(self.b, set) {
            let f = &self.b.functions[&sig];
            let replace =
                self.a.functions.contains_key(&sig) && !self.routines.recreate.contains(&sig);
            out.push(Change::CreateFunction {
                function: f.clone(),
                replace,
            });
        }
    }

    /// Phase 2, last: triggers.
    pub(super) fn create_triggers(&self, out: &mut Vec<Change>) {
        for k in &self.routines.trigger_create {
            let t = &self.b.triggers[k];
            let existing =
                self.a.tables.contains_key(&t.table) && !self.dropped_tables.contains(&t.table);
            out.push(Change::CreateTrigger {
                trigger: t.clone(),
                existing_table: existing,
            });
        }
    }

    /// Phase 3: the other functions only in `a`, dependents first.
    pub(super) fn drop_functions(&self, out: &mut Vec<Change>) {
        let early = self.early_drops();
        let late: BTreeSet<String> = self.routines.drop.difference(&early).cloned().collect();
        for sig in function_order(self.a, &late).into_iter().rev() {
            out.push(drop_function(&self.a.functions[&sig]));
        }
    }

    /// Whether a column default, generated column, constraint or index of `b` calls `f`.
    fn called_by_tables(&self, f: &Function) -> bool {
        let call = format!("{}(", f.name.sql());
        self.b.tables.values().any(|t| {
            t.columns.iter().any(|c| {
                c.default.as_deref().is_some_and(|d| d.contains(&call))
                    || c.generated.as_deref().is_some_and(|g| g.contains(&call))
            }) || t.constraints.values().any(|k| k.definition.contains(&call))
                || t.indexes.values().any(|i| {
                    i.body.contains(&call)
                        || i.predicate.as_deref().is_some_and(|p| p.contains(&call))
                })
        })
    }
}

/// Whether `text` names `name` (`public.chunks`, not `public.chunks_old`).
fn mentions(text: &str, name: &str) -> bool {
    text.match_indices(name).any(|(at, _)| {
        let next = text[at + name.len()..].chars().next();
        !next.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$')
    })
}

fn drop_function(f: &Function) -> Change {
    Change::DropFunction {
        signature: f.signature.clone(),
        procedure: f.procedure,
    }
}

/// The functions of `set` in `s`, each after the functions of the set its body names
/// (`name(`); by signature otherwise, and where names form a cycle.
fn function_order(s: &Schema, set: &BTreeSet<String>) -> Vec<String> {
    let mut left: Vec<&String> = set.iter().collect();
    let mut out: Vec<String> = Vec::new();
    let body = |sig: &String| {
        let def = &s.functions[sig].definition;
        // the body only: after the header's `AS` / `BEGIN ATOMIC`
        def.split_once("\nAS ")
            .or_else(|| def.split_once("BEGIN ATOMIC"))
            .map(|(_, b)| b.to_string())
            .unwrap_or_default()
    };
    let names = |sig: &String, other: &String| {
        let n = &s.functions[other].name.name;
        let b = body(sig);
        sig != other && (b.contains(&format!("{n}(")) || b.contains(&format!("{n} (")))
    };
    while !left.is_empty() {
        let ready = left
            .iter()
            .position(|x| !left.iter().any(|y| names(x, y)))
            .unwrap_or(0);
        out.push(left.remove(ready).clone());
    }
    out
}
