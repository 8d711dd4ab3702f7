//! The diff: the statements that turn schema `a` into schema `b`.
//!
//! Ordering (each phase sorted by name, so the output is deterministic):
//! 1. drops, in reverse dependency order using `a`: views (dependents first), foreign keys
//!    (so tables in a cycle can go in any order), other constraints, indexes, tables;
//! 2. creates and alters, in dependency order using `b`: schemas, extensions, enum types,
//!    sequences, tables (without foreign keys), column changes, constraints, indexes,
//!    sequence ownership, foreign keys (after every table exists), views (dependencies first);
//! 3. late drops: enum types, sequences, extensions, schemas.
//!
//! Constraints and indexes whose names differ but whose definitions are equal (auto-generated
//! names after a rename) are renamed, not rebuilt. An index whose method, opclass, keys,
//! predicate or WITH parameters (compared as a map) change is dropped and created again:
//! PostgreSQL cannot change those in place (`ALTER INDEX ... SET (m = ...)` does not rebuild).

use super::model::*;
use super::render::*;
use std::collections::{BTreeMap, BTreeSet};

/// How to write the statements.
#[derive(Debug, Clone, Default)]
pub struct DiffOptions {
    /// Index builds and drops on tables that exist in `a` use CONCURRENTLY.
    pub concurrently: bool,
}

/// How an enum type changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnumChange {
    /// Only new values: `ALTER TYPE ... ADD VALUE` with positions.
    AddValues(Vec<(String, Option<(bool, String)>)>),
    /// Values removed or reordered: the recreate recipe.
    Recreate,
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
        let pos = if i > 0 && present.contains(&&b[i - 1]) {
            Some((false, b[i - 1].clone()))
        } else {
            b[i + 1..]
                .iter()
                .find(|n| present.contains(n))
                .map(|n| (true, n.clone()))
        };
        adds.push((v.clone(), pos));
        present.push(v);
    }
    Some(EnumChange::AddValues(adds))
}

fn qcol(t: &QName, c: &str) -> String {
    format!("{}.{}", t.sql(), ident(c))
}

/// Pairs of (a-name, b-name) with equal definitions among names only on one side.
fn match_renamed<T>(
    a_only: &[&T],
    b_only: &[&T],
    name: impl Fn(&T) -> String,
    same: impl Fn(&T, &T) -> bool,
) -> Vec<(String, String)> {
    let mut used = BTreeSet::new();
    let mut pairs = Vec::new();
    for x in a_only {
        if let Some(y) = b_only
            .iter()
            .find(|y| !used.contains(&name(y)) && same(x, y))
        {
            used.insert(name(y));
            pairs.push((name(x), name(y)));
        }
    }
    pairs
}

/// Per-table comparison of constraints and indexes, shared by several phases.
#[derive(Default)]
struct TablePlan {
    renamed_constraints: Vec<(String, String)>,
    drop_constraints: BTreeSet<String>,
    add_constraints: BTreeSet<String>,
    validate_constraints: BTreeSet<String>,
    renamed_indexes: Vec<(String, String)>,
    drop_indexes: BTreeSet<String>,
    add_indexes: BTreeSet<String>,
}

/// Computes the statements that turn `a` into `b`.
pub fn diff(a: &Schema, b: &Schema, opts: &DiffOptions) -> Vec<Op> {
    let mut d = Differ {
        a,
        b,
        opts,
        ops: Vec::new(),
    };
    d.run();
    d.ops
}

struct Differ<'s> {
    a: &'s Schema,
    b: &'s Schema,
    opts: &'s DiffOptions,
    ops: Vec<Op>,
}

impl<'s> Differ<'s> {
    fn push(&mut self, op: Op) {
        self.ops.push(op);
    }

    fn run(&mut self) {
        let (a, b) = (self.a, self.b);
        let common: Vec<&QName> = a
            .tables
            .keys()
            .filter(|k| b.tables.contains_key(*k))
            .collect();
        let dropped_tables: BTreeSet<&QName> = a
            .tables
            .keys()
            .filter(|k| !b.tables.contains_key(*k))
            .collect();

        // Enum changes.
        let mut enum_changes: BTreeMap<&QName, EnumChange> = BTreeMap::new();
        for (n, e) in &a.enums {
            if let Some(be) = b.enums.get(n) {
                if let Some(c) = enum_change(&e.values, &be.values) {
                    enum_changes.insert(n, c);
                }
            }
        }
        let recreated_enums: BTreeSet<&QName> = enum_changes
            .iter()
            .filter(|(_, c)| **c == EnumChange::Recreate)
            .map(|(n, _)| *n)
            .collect();

        // Columns whose type changes, that are dropped, or converted by the enum recipe.
        let mut recipe_cols: BTreeMap<&QName, Vec<(&QName, &Column, &Column)>> = BTreeMap::new();
        let mut touched: BTreeSet<(QName, String)> = BTreeSet::new();
        for t in &common {
            let (ta, tb) = (&a.tables[*t], &b.tables[*t]);
            for ca in &ta.columns {
                match tb.column(&ca.name) {
                    None => {
                        touched.insert(((*t).clone(), ca.name.clone()));
                    }
                    Some(cb) => {
                        let recipe = ca.type_sql == cb.type_sql
                            && ca
                                .enum_type
                                .as_ref()
                                .is_some_and(|e| recreated_enums.contains(e));
                        if recipe {
                            recipe_cols
                                .entry(ca.enum_type.as_ref().expect("enum"))
                                .or_default()
                                .push((*t, ca, cb));
                        }
                        if recipe
                            || ca.type_sql != cb.type_sql
                            || ca.collation != cb.collation
                            || (ca.generated.is_some() && ca.generated != cb.generated)
                        {
                            touched.insert(((*t).clone(), ca.name.clone()));
                        }
                    }
                }
            }
        }

        // Per-table plans for constraints and indexes.
        let mut plans: BTreeMap<&QName, TablePlan> = BTreeMap::new();
        for t in &common {
            let (ta, tb) = (&a.tables[*t], &b.tables[*t]);
            let mut p = TablePlan::default();
            let touches = |cols: &[String]| {
                cols.iter()
                    .any(|c| touched.contains(&((*t).clone(), c.clone())))
            };
            let a_only: Vec<&Constraint> = ta
                .constraints
                .values()
                .filter(|k| !tb.constraints.contains_key(&k.name))
                .collect();
            let b_only: Vec<&Constraint> = tb
                .constraints
                .values()
                .filter(|k| !ta.constraints.contains_key(&k.name))
                .collect();
            p.renamed_constraints = match_renamed(
                &a_only,
                &b_only,
                |k| k.name.clone(),
                |x, y| {
                    x.kind == y.kind && x.definition == y.definition && x.not_valid == y.not_valid
                },
            );
            let ren_a: BTreeSet<&String> = p.renamed_constraints.iter().map(|(x, _)| x).collect();
            let ren_b: BTreeSet<&String> = p.renamed_constraints.iter().map(|(_, y)| y).collect();
            for k in &a_only {
                if !ren_a.contains(&k.name) {
                    p.drop_constraints.insert(k.name.clone());
                }
            }
            for k in &b_only {
                if !ren_b.contains(&k.name) {
                    p.add_constraints.insert(k.name.clone());
                }
            }
            for (n, ka) in &ta.constraints {
                let Some(kb) = tb.constraints.get(n) else {
                    continue;
                };
                let recipe_check = ka.kind == ConstraintKind::Check
                    && touches(&ka.columns)
                    && ka.definition == kb.definition;
                if ka.kind != kb.kind
                    || ka.definition != kb.definition
                    || (!ka.not_valid && kb.not_valid)
                    || recipe_check
                {
                    p.drop_constraints.insert(n.clone());
                    p.add_constraints.insert(n.clone());
                } else if ka.not_valid && !kb.not_valid {
                    p.validate_constraints.insert(n.clone());
                }
            }
            let a_only: Vec<&Index> = ta
                .indexes
                .values()
                .filter(|k| !tb.indexes.contains_key(&k.name))
                .collect();
            let b_only: Vec<&Index> = tb
                .indexes
                .values()
                .filter(|k| !ta.indexes.contains_key(&k.name))
                .collect();
            p.renamed_indexes = match_renamed(
                &a_only,
                &b_only,
                |k| k.name.clone(),
                |x, y| x.same_definition(y),
            );
            let ren_a: BTreeSet<&String> = p.renamed_indexes.iter().map(|(x, _)| x).collect();
            let ren_b: BTreeSet<&String> = p.renamed_indexes.iter().map(|(_, y)| y).collect();
            for k in &a_only {
                if !ren_a.contains(&k.name) {
                    p.drop_indexes.insert(k.name.clone());
                }
            }
            for k in &b_only {
                if !ren_b.contains(&k.name) {
                    p.add_indexes.insert(k.name.clone());
                }
            }
            for (n, ia) in &ta.indexes {
                let Some(ib) = tb.indexes.get(n) else {
                    continue;
                };
                let recipe_ix = recipe_cols
                    .values()
                    .flatten()
                    .any(|(tt, ca, _)| tt == t && ia.columns.contains(&ca.name))
                    && (ia.predicate.is_some() || ia.body.contains("::"));
                if !ia.same_definition(ib) || recipe_ix {
                    p.drop_indexes.insert(n.clone());
                    p.add_indexes.insert(n.clone());
                }
            }
            plans.insert(*t, p);
        }
        // Unique indexes (constraint-owned or not) that go away for a while, per table.
        let gone_index = |t: &QName, ix: &str| -> bool {
            if dropped_tables.contains(t) {
                return true;
            }
            plans
                .get(t)
                .is_some_and(|p| p.drop_constraints.contains(ix) || p.drop_indexes.contains(ix))
        };

        // Foreign keys to drop (and re-add when still wanted).
        let mut fk_drop: BTreeSet<(QName, String)> = BTreeSet::new();
        let mut fk_add: BTreeSet<(QName, String)> = BTreeSet::new();
        for (t, ta) in &a.tables {
            for k in ta
                .constraints
                .values()
                .filter(|k| k.kind == ConstraintKind::ForeignKey)
            {
                if dropped_tables.contains(t) {
                    // Only those pointing at another dropped table need to go first.
                    if k.references
                        .as_ref()
                        .is_some_and(|r| r != t && dropped_tables.contains(r))
                    {
                        fk_drop.insert((t.clone(), k.name.clone()));
                    }
                    continue;
                }
                let p = &plans[t];
                let ref_gone = match (&k.references, &k.ref_index) {
                    (Some(r), Some(ix)) => gone_index(r, ix),
                    _ => false,
                };
                if p.drop_constraints.contains(&k.name) || ref_gone {
                    fk_drop.insert((t.clone(), k.name.clone()));
                    if b.tables[t].constraints.contains_key(&k.name)
                        && !p.renamed_constraints.iter().any(|(x, _)| x == &k.name)
                    {
                        fk_add.insert((t.clone(), k.name.clone()));
                    }
                }
            }
        }
        for (t, tb) in &b.tables {
            for k in tb
                .constraints
                .values()
                .filter(|k| k.kind == ConstraintKind::ForeignKey)
            {
                let new_here = !a.tables.contains_key(t)
                    || plans
                        .get(t)
                        .is_some_and(|p| p.add_constraints.contains(&k.name));
                if new_here {
                    fk_add.insert((t.clone(), k.name.clone()));
                }
            }
        }

        // Views to drop and to create.
        let mut view_drop: BTreeSet<&QName> = BTreeSet::new();
        for (n, va) in &a.views {
            let changed = match b.views.get(n) {
                None => true,
                Some(vb) => {
                    va.definition != vb.definition
                        || va.options != vb.options
                        || va.materialized != vb.materialized
                }
            };
            let reads_touched = va.depends_on.iter().any(|(rel, cols)| {
                dropped_tables.contains(rel)
                    || cols
                        .iter()
                        .any(|c| touched.contains(&(rel.clone(), c.clone())))
            });
            if changed || reads_touched {
                view_drop.insert(n);
            }
        }
        // ... and whatever reads a dropped view.
        loop {
            let more: Vec<&QName> = a
                .views
                .iter()
                .filter(|(n, v)| {
                    !view_drop.contains(n) && v.depends_on.keys().any(|r| view_drop.contains(r))
                })
                .map(|(n, _)| n)
                .collect();
            if more.is_empty() {
                break;
            }
            view_drop.extend(more);
        }
        let view_create: BTreeSet<&QName> = b
            .views
            .keys()
            .filter(|n| !a.views.contains_key(*n) || view_drop.contains(n))
            .collect();

        // ---- 1. drops ----
        for n in view_order(&a.views, &view_drop).into_iter().rev() {
            let v = &a.views[n];
            let op = Op::new(
                format!(
                    "DROP {}VIEW {}",
                    if v.materialized { "MATERIALIZED " } else { "" },
                    n.sql()
                ),
                format!("drop view {n}"),
            );
            self.push(op.hazard_if(
                v.materialized && !b.views.contains_key(n),
                HazardKind::DeletesData,
                format!("the rows of materialized view {n} are lost"),
            ));
        }
        for (t, name) in &fk_drop {
            let op = Op::new(
                format!("ALTER TABLE {} DROP CONSTRAINT {}", t.sql(), ident(name)),
                format!("drop foreign key {name} on {t}"),
            );
            let lock = !dropped_tables.contains(t);
            self.push(op.hazard_if(
                lock,
                HazardKind::AccessExclusiveLock,
                format!("on {t} while the constraint is dropped"),
            ));
        }
        for (t, p) in &plans {
            let ta = &a.tables[*t];
            for name in &p.drop_constraints {
                let k = &ta.constraints[name];
                if k.kind == ConstraintKind::ForeignKey {
                    if !fk_drop.contains(&((*t).clone(), name.clone())) {
                        let op = Op::new(
                            format!("ALTER TABLE {} DROP CONSTRAINT {}", t.sql(), ident(name)),
                            format!("drop foreign key {name} on {t}"),
                        );
                        self.push(op.hazard(
                            HazardKind::AccessExclusiveLock,
                            format!("on {t} while the constraint is dropped"),
                        ));
                    }
                    continue;
                }
                let op = Op::new(
                    format!("ALTER TABLE {} DROP CONSTRAINT {}", t.sql(), ident(name)),
                    format!("drop {} {name} on {t}", k.kind.describe()),
                );
                self.push(op.hazard(
                    HazardKind::AccessExclusiveLock,
                    format!("on {t} while the constraint is dropped"),
                ));
            }
        }
        let conc = self.opts.concurrently;
        for (t, p) in &plans {
            for name in &p.drop_indexes {
                let sql = format!(
                    "DROP INDEX {}{}",
                    if conc { "CONCURRENTLY " } else { "" },
                    QName::new(t.schema.clone(), name.clone()).sql()
                );
                let op = Op::new(sql, format!("drop index {name} on {t}"));
                let op = if conc {
                    op
                } else {
                    op.hazard(
                        HazardKind::AccessExclusiveLock,
                        format!("on {t} while the index is dropped"),
                    )
                };
                self.push(op);
            }
        }
        self.matview_index_drops(&view_drop);
        for t in dropped_tables.iter().rev() {
            let op = Op::new(format!("DROP TABLE {}", t.sql()), format!("drop table {t}"));
            self.push(op.hazard(HazardKind::DeletesData, format!("every row of {t} is lost")));
        }

        // ---- 2. creates and alters ----
        for (s, c) in &b.schemas {
            match a.schemas.get(s) {
                None => {
                    self.push(Op::new(
                        format!("CREATE SCHEMA {}", ident(s)),
                        format!("create schema {s}"),
                    ));
                    if c.is_some() {
                        self.push(Op::new(
                            format!("COMMENT ON SCHEMA {} IS {}", ident(s), comment_value(c)),
                            format!("comment on schema {s}"),
                        ));
                    }
                }
                Some(ca) if ca != c => self.push(Op::new(
                    format!("COMMENT ON SCHEMA {} IS {}", ident(s), comment_value(c)),
                    format!("comment on schema {s}"),
                )),
                _ => {}
            }
        }
        for (e, s) in &b.extensions {
            match a.extensions.get(e) {
                None => self.push(Op::new(
                    format!(
                        "CREATE EXTENSION IF NOT EXISTS {} WITH SCHEMA {}",
                        ident(e),
                        ident(s)
                    ),
                    format!("create extension {e}"),
                )),
                Some(sa) if sa != s => self.push(Op::new(
                    format!("ALTER EXTENSION {} SET SCHEMA {}", ident(e), ident(s)),
                    format!("move extension {e} to schema {s}"),
                )),
                _ => {}
            }
        }
        for (n, e) in &b.enums {
            if !a.enums.contains_key(n) {
                let vals: Vec<String> = e.values.iter().map(|v| literal(v)).collect();
                self.push(Op::new(
                    format!("CREATE TYPE {} AS ENUM ({})", n.sql(), vals.join(", ")),
                    format!("create enum type {n}"),
                ));
            }
        }
        let mut old_enum_names = Vec::new();
        for (n, change) in &enum_changes {
            match change {
                EnumChange::AddValues(adds) => {
                    for (v, pos) in adds {
                        let pos = match pos {
                            Some((true, x)) => format!(" BEFORE {}", literal(x)),
                            Some((false, x)) => format!(" AFTER {}", literal(x)),
                            None => String::new(),
                        };
                        self.push(Op::new(
                            format!("ALTER TYPE {} ADD VALUE {}{pos}", n.sql(), literal(v)),
                            format!("add value {v} to enum type {n}"),
                        ));
                    }
                }
                EnumChange::Recreate => {
                    let old = QName::new(n.schema.clone(), old_type_name(&n.name));
                    self.push(Op::new(
                        format!("ALTER TYPE {} RENAME TO {}", n.sql(), ident(&old.name)),
                        format!("recreate enum type {n} (values removed or reordered)"),
                    ));
                    let vals: Vec<String> = b.enums[*n].values.iter().map(|v| literal(v)).collect();
                    self.push(Op::new(
                        format!("CREATE TYPE {} AS ENUM ({})", n.sql(), vals.join(", ")),
                        format!("recreate enum type {n}"),
                    ));
                    for (t, ca, cb) in recipe_cols.get(n).into_iter().flatten() {
                        let col = qcol(t, &ca.name);
                        if ca.default.is_some() {
                            self.push(Op::new(
                                format!(
                                    "ALTER TABLE {} ALTER COLUMN {} DROP DEFAULT",
                                    t.sql(),
                                    ident(&ca.name)
                                ),
                                format!("drop default of {col}"),
                            ));
                        }
                        let cast = if cb.is_array { "text[]" } else { "text" };
                        let op = Op::new(
                            format!(
                                "ALTER TABLE {} ALTER COLUMN {} TYPE {} USING {}::{cast}::{}",
                                t.sql(),
                                ident(&ca.name),
                                cb.type_sql,
                                ident(&ca.name),
                                cb.type_sql
                            ),
                            format!("move {col} to the new enum type {n}"),
                        )
                        .hazard(
                            HazardKind::RewritesTable,
                            format!("{t} is rewritten under an ACCESS EXCLUSIVE lock"),
                        )
                        .hazard(
                            HazardKind::MayFail,
                            format!("fails if a row of {t} holds a value removed from {n}"),
                        );
                        self.push(op);
                        if let Some(dflt) = &cb.default {
                            self.push(Op::new(
                                format!(
                                    "ALTER TABLE {} ALTER COLUMN {} SET DEFAULT {dflt}",
                                    t.sql(),
                                    ident(&ca.name)
                                ),
                                format!("set default of {col}"),
                            ));
                        }
                    }
                    old_enum_names.push(old);
                }
            }
        }
        for (n, s) in &b.sequences {
            match a.sequences.get(n) {
                None => {
                    let mut sql = format!("CREATE SEQUENCE {}", n.sql());
                    if s.data_type != "bigint" {
                        sql.push_str(&format!(" AS {}", s.data_type));
                    }
                    for o in sequence_options(s) {
                        sql.push(' ');
                        sql.push_str(&o);
                    }
                    self.push(Op::new(sql, format!("create sequence {n}")));
                }
                Some(sa) if !sa.same_options(s) => {
                    self.push(Op::new(
                        format!("ALTER SEQUENCE {} {}", n.sql(), s.options_sql()),
                        format!("change sequence {n}"),
                    ));
                }
                _ => {}
            }
        }
        for (n, t) in &b.tables {
            if a.tables.contains_key(n) {
                continue;
            }
            self.push(Op::new(create_table(t), format!("create table {n}")));
            if t.comment.is_some() {
                self.push(Op::new(
                    format!(
                        "COMMENT ON TABLE {} IS {}",
                        n.sql(),
                        comment_value(&t.comment)
                    ),
                    format!("comment on table {n}"),
                ));
            }
            for c in &t.columns {
                if c.comment.is_some() {
                    self.push(Op::new(
                        format!(
                            "COMMENT ON COLUMN {} IS {}",
                            qcol(n, &c.name),
                            comment_value(&c.comment)
                        ),
                        format!("comment on column {}", qcol(n, &c.name)),
                    ));
                }
            }
        }
        for t in &common {
            self.alter_table(t, &plans[*t], &recipe_cols);
        }
        // Constraints other than foreign keys on existing tables.
        for (t, p) in &plans {
            let tb = &b.tables[*t];
            for name in &p.add_constraints {
                let k = &tb.constraints[name];
                if k.kind == ConstraintKind::ForeignKey {
                    continue;
                }
                let op = Op::new(
                    format!("ALTER TABLE {} ADD {}", t.sql(), constraint_def(k)),
                    format!("add {} {name} on {t}", k.kind.describe()),
                );
                let op = if k.kind.has_index() {
                    op.hazard(
                        HazardKind::BuildsIndex,
                        format!("{t} is locked (ACCESS EXCLUSIVE) while the index is built"),
                    )
                } else if !k.not_valid {
                    op.hazard(HazardKind::ScansTable, format!("every row of {t} is checked under an ACCESS EXCLUSIVE lock (add it NOT VALID, then VALIDATE, to avoid the long lock)"))
                } else {
                    op.hazard(HazardKind::AccessExclusiveLock, format!("on {t}, briefly"))
                };
                self.push(op);
            }
            for name in &p.validate_constraints {
                if tb.constraints[name].kind == ConstraintKind::ForeignKey {
                    continue;
                }
                let op = Op::new(
                    format!(
                        "ALTER TABLE {} VALIDATE CONSTRAINT {}",
                        t.sql(),
                        ident(name)
                    ),
                    format!("validate constraint {name} on {t}"),
                );
                self.push(op.hazard(
                    HazardKind::ScansTable,
                    format!(
                        "every row of {t} is checked (SHARE UPDATE EXCLUSIVE lock: writes go on)"
                    ),
                ));
            }
        }
        // Indexes: on new tables (no hazard: the table is empty), then on existing ones.
        for (n, t) in &b.tables {
            if !a.tables.contains_key(n) {
                for ix in t.indexes.values() {
                    self.push(Op::new(
                        create_index(ix, false),
                        format!("create index {} on {n}", ix.name),
                    ));
                    self.index_comment(n, ix, None);
                }
            }
        }
        for (t, p) in &plans {
            let tb = &b.tables[*t];
            for name in &p.add_indexes {
                let ix = &tb.indexes[name];
                let op = Op::new(
                    create_index(ix, conc),
                    format!("create index {name} on {t}"),
                );
                let op = if conc {
                    op.hazard(HazardKind::BuildsIndex, format!("{} index built concurrently on {t}: writes go on, the build takes longer", ix.method))
                } else {
                    op.hazard(HazardKind::BuildsIndex, format!("{} index built on {t} under a SHARE lock: writes to {t} wait until it is done", ix.method))
                };
                self.push(op);
                self.index_comment(t, ix, None);
            }
            for (_, y) in &p.renamed_indexes {
                let ix = &tb.indexes[y];
                let old = a.tables[*t]
                    .indexes
                    .values()
                    .find(|i| &i.name != y && i.same_definition(ix))
                    .and_then(|i| i.comment.clone());
                self.index_comment(t, ix, Some(old));
            }
            for (n, ib) in &tb.indexes {
                if let Some(ia) = a.tables[*t].indexes.get(n) {
                    if !p.add_indexes.contains(n) && ia.comment != ib.comment {
                        self.index_comment(t, ib, Some(ia.comment.clone()));
                    }
                }
            }
        }
        // Sequence ownership.
        for (n, s) in &b.sequences {
            let before = a.sequences.get(n).and_then(|x| x.owned_by.clone());
            if s.owned_by != before {
                let to = match &s.owned_by {
                    Some((t, c)) => qcol(t, c),
                    None => "NONE".into(),
                };
                self.push(Op::new(
                    format!("ALTER SEQUENCE {} OWNED BY {to}", n.sql()),
                    format!("sequence {n} owned by {to}"),
                ));
            }
        }
        // Foreign keys, once every table exists.
        for (t, name) in &fk_add {
            let k = &b.tables[t].constraints[name];
            let existing = a.tables.contains_key(t);
            let op = Op::new(
                format!("ALTER TABLE {} ADD {}", t.sql(), constraint_def(k)),
                format!("add foreign key {name} on {t}"),
            );
            let target = k.references.as_ref().map(|r| r.sql()).unwrap_or_default();
            let op = if existing && !k.not_valid {
                op.hazard(HazardKind::ScansTable, format!("every row of {t} is checked against {target} (SHARE ROW EXCLUSIVE locks; add it NOT VALID, then VALIDATE, to shorten them)"))
            } else {
                op
            };
            self.push(op);
        }
        for (t, p) in &plans {
            for name in &p.validate_constraints {
                if b.tables[*t].constraints[name].kind == ConstraintKind::ForeignKey {
                    let op = Op::new(
                        format!(
                            "ALTER TABLE {} VALIDATE CONSTRAINT {}",
                            t.sql(),
                            ident(name)
                        ),
                        format!("validate foreign key {name} on {t}"),
                    );
                    self.push(op.hazard(HazardKind::ScansTable, format!("every row of {t} is checked (SHARE UPDATE EXCLUSIVE lock: writes go on)")));
                }
            }
        }
        // Views, dependencies first; then their comments and (materialized) indexes.
        for n in view_order(&b.views, &view_create) {
            let v = &b.views[n];
            let op = Op::new(create_view(v), format!("create view {n}"));
            self.push(op);
            let kind = if v.materialized {
                "MATERIALIZED VIEW"
            } else {
                "VIEW"
            };
            if v.comment.is_some() {
                self.push(Op::new(
                    format!(
                        "COMMENT ON {kind} {} IS {}",
                        n.sql(),
                        comment_value(&v.comment)
                    ),
                    format!("comment on view {n}"),
                ));
            }
            for (c, text) in &v.column_comments {
                self.push(Op::new(
                    format!("COMMENT ON COLUMN {} IS {}", qcol(n, c), literal(text)),
                    format!("comment on column {}", qcol(n, c)),
                ));
            }
            for ix in v.indexes.values() {
                self.push(Op::new(
                    create_index(ix, false),
                    format!("create index {} on {n}", ix.name),
                ));
                self.index_comment(n, ix, None);
            }
        }
        self.view_changes_in_place(&view_create);

        // ---- 3. late drops ----
        for old in &old_enum_names {
            self.push(Op::new(
                format!("DROP TYPE {}", old.sql()),
                format!("drop the replaced enum type {old}"),
            ));
        }
        for n in a.enums.keys().rev() {
            if !b.enums.contains_key(n) {
                self.push(Op::new(
                    format!("DROP TYPE {}", n.sql()),
                    format!("drop enum type {n}"),
                ));
            }
        }
        for (n, s) in a.sequences.iter().rev() {
            if b.sequences.contains_key(n) {
                continue;
            }
            // A sequence owned by a dropped table or column went with it.
            let gone_with_owner = s.owned_by.as_ref().is_some_and(|(t, c)| {
                dropped_tables.contains(t)
                    || b.tables.get(t).is_some_and(|tb| tb.column(c).is_none())
            });
            if !gone_with_owner {
                self.push(Op::new(
                    format!("DROP SEQUENCE {}", n.sql()),
                    format!("drop sequence {n}"),
                ));
            }
        }
        for e in a.extensions.keys().rev() {
            if !b.extensions.contains_key(e) {
                let op = Op::new(
                    format!("DROP EXTENSION {}", ident(e)),
                    format!("drop extension {e}"),
                );
                self.push(op.hazard(
                    HazardKind::DeletesData,
                    format!("the objects of extension {e} are dropped with it"),
                ));
            }
        }
        for s in a.schemas.keys().rev() {
            if !b.schemas.contains_key(s) {
                self.push(Op::new(
                    format!("DROP SCHEMA {}", ident(s)),
                    format!("drop schema {s}"),
                ));
            }
        }
    }

    fn index_comment(&mut self, t: &QName, ix: &Index, before: Option<Option<String>>) {
        let changed = match &before {
            None => ix.comment.is_some(),
            Some(b) => *b != ix.comment,
        };
        if changed {
            let n = QName::new(t.schema.clone(), ix.name.clone());
            self.push(Op::new(
                format!(
                    "COMMENT ON INDEX {} IS {}",
                    n.sql(),
                    comment_value(&ix.comment)
                ),
                format!("comment on index {n}"),
            ));
        }
    }

    /// Materialized views kept as they are: their indexes are compared like a table's.
    fn matview_index_drops(&mut self, view_drop: &BTreeSet<&QName>) {
        let (a, b) = (self.a, self.b);
        for (n, va) in &a.views {
            let Some(vb) = b.views.get(n) else { continue };
            if view_drop.contains(n) || !va.materialized {
                continue;
            }
            for (i, ia) in &va.indexes {
                if vb.indexes.get(i).is_none_or(|ib| !ib.same_definition(ia)) {
                    let op = Op::new(
                        format!(
                            "DROP INDEX {}",
                            QName::new(n.schema.clone(), i.clone()).sql()
                        ),
                        format!("drop index {i} on {n}"),
                    );
                    self.push(op.hazard(
                        HazardKind::AccessExclusiveLock,
                        format!("on {n} while the index is dropped"),
                    ));
                }
            }
        }
    }

    /// Views that stay: comment changes and materialized views' new indexes.
    fn view_changes_in_place(&mut self, view_create: &BTreeSet<&QName>) {
        let (a, b) = (self.a, self.b);
        for (n, vb) in &b.views {
            let Some(va) = a.views.get(n) else { continue };
            if view_create.contains(n) {
                continue;
            }
            let kind = if vb.materialized {
                "MATERIALIZED VIEW"
            } else {
                "VIEW"
            };
            if va.comment != vb.comment {
                self.push(Op::new(
                    format!(
                        "COMMENT ON {kind} {} IS {}",
                        n.sql(),
                        comment_value(&vb.comment)
                    ),
                    format!("comment on view {n}"),
                ));
            }
            let cols: BTreeSet<&String> = va
                .column_comments
                .keys()
                .chain(vb.column_comments.keys())
                .collect();
            for c in cols {
                if va.column_comments.get(c) != vb.column_comments.get(c) {
                    let v = vb.column_comments.get(c).cloned();
                    self.push(Op::new(
                        format!("COMMENT ON COLUMN {} IS {}", qcol(n, c), comment_value(&v)),
                        format!("comment on column {}", qcol(n, c)),
                    ));
                }
            }
            for (i, ib) in &vb.indexes {
                match va.indexes.get(i) {
                    Some(ia) if ia.same_definition(ib) => {
                        if ia.comment != ib.comment {
                            self.index_comment(n, ib, Some(ia.comment.clone()));
                        }
                    }
                    _ => {
                        let op =
                            Op::new(create_index(ib, false), format!("create index {i} on {n}"));
                        self.push(op.hazard(
                            HazardKind::BuildsIndex,
                            format!("{} index built on materialized view {n}", ib.method),
                        ));
                        self.index_comment(n, ib, None);
                    }
                }
            }
        }
    }

    fn alter_table(
        &mut self,
        t: &QName,
        p: &TablePlan,
        recipe_cols: &BTreeMap<&QName, Vec<(&QName, &Column, &Column)>>,
    ) {
        let (ta, tb) = (&self.a.tables[t], &self.b.tables[t]);
        let ts = t.sql();
        let lock = |op: Op| op.hazard(HazardKind::AccessExclusiveLock, format!("on {t}, briefly"));
        for (x, y) in &p.renamed_constraints {
            self.push(lock(Op::new(
                format!(
                    "ALTER TABLE {ts} RENAME CONSTRAINT {} TO {}",
                    ident(x),
                    ident(y)
                ),
                format!("rename constraint {x} on {t} to {y}"),
            )));
        }
        for (x, y) in &p.renamed_indexes {
            let q = QName::new(t.schema.clone(), x.clone());
            self.push(lock(Op::new(
                format!("ALTER INDEX {} RENAME TO {}", q.sql(), ident(y)),
                format!("rename index {x} on {t} to {y}"),
            )));
        }
        // Columns dropped; generated columns whose expression changes are dropped and added.
        let mut readd: Vec<&Column> = Vec::new();
        for ca in &ta.columns {
            let cb = tb.column(&ca.name);
            let regenerate =
                cb.is_some_and(|cb| cb.generated.is_some() && ca.generated != cb.generated);
            if cb.is_none() || regenerate {
                let op = Op::new(
                    format!("ALTER TABLE {ts} DROP COLUMN {}", ident(&ca.name)),
                    format!("drop column {}", qcol(t, &ca.name)),
                );
                let op = if regenerate {
                    lock(op)
                } else {
                    op.hazard(
                        HazardKind::DeletesData,
                        format!("the values of {} are lost", qcol(t, &ca.name)),
                    )
                };
                self.push(op);
                if let Some(cb) = cb {
                    readd.push(cb);
                }
            }
        }
        for cb in tb
            .columns
            .iter()
            .filter(|c| ta.column(&c.name).is_none())
            .chain(readd)
        {
            let col = qcol(t, &cb.name);
            let op = Op::new(
                format!("ALTER TABLE {ts} ADD COLUMN {}", column_def(cb)),
                format!("add column {col}"),
            );
            let volatile = cb.generated.is_some()
                || cb.identity.is_some()
                || cb.default.as_deref().is_some_and(|d| {
                    d.contains('(') && !d.starts_with("now()") && !d.contains("CURRENT_")
                });
            let op = if volatile {
                op.hazard(HazardKind::RewritesTable, format!("{t} is rewritten under an ACCESS EXCLUSIVE lock to fill {col} (a volatile default, identity or generated column)"))
            } else {
                lock(op)
            };
            let op = op.hazard_if(
                cb.not_null
                    && cb.default.is_none()
                    && cb.identity.is_none()
                    && cb.generated.is_none(),
                HazardKind::MayFail,
                format!("NOT NULL without a default fails if {t} has rows"),
            );
            self.push(op);
        }
        let in_recipe = |c: &str| {
            recipe_cols
                .values()
                .flatten()
                .any(|(tt, ca, _)| *tt == t && ca.name == c)
        };
        for ca in &ta.columns {
            let Some(cb) = tb.column(&ca.name) else {
                continue;
            };
            if cb.generated.is_some() && ca.generated != cb.generated {
                continue; // re-added above
            }
            let col = qcol(t, &ca.name);
            let cn = ident(&ca.name);
            let alter = |rest: String| format!("ALTER TABLE {ts} ALTER COLUMN {cn} {rest}");
            if ca.identity.is_some() && cb.identity.is_none() {
                self.push(lock(Op::new(
                    alter("DROP IDENTITY".into()),
                    format!("drop identity of {col}"),
                )));
            }
            if ca.generated.is_some() && cb.generated.is_none() {
                self.push(lock(Op::new(
                    alter("DROP EXPRESSION".into()),
                    format!("{col} is no longer generated"),
                )));
            }
            let type_change = ca.type_sql != cb.type_sql || ca.collation != cb.collation;
            let recipe = in_recipe(&ca.name);
            let default_change = ca.default != cb.default && !recipe;
            if (type_change && ca.default.is_some())
                || (default_change && cb.default.is_none() && ca.default.is_some())
            {
                self.push(lock(Op::new(
                    alter("DROP DEFAULT".into()),
                    format!("drop default of {col}"),
                )));
            }
            if type_change {
                let collate = match (&ca.collation, &cb.collation) {
                    (_, Some(c)) => format!(" COLLATE {c}"),
                    (Some(_), None) => " COLLATE pg_catalog.\"default\"".into(),
                    (None, None) => String::new(),
                };
                let using = if ca.type_sql != cb.type_sql {
                    format!(" USING {cn}::{}", cb.type_sql)
                } else {
                    String::new()
                };
                let op = Op::new(
                    alter(format!("TYPE {}{collate}{using}", cb.type_sql)),
                    format!(
                        "change type of {col} from {} to {}",
                        ca.type_sql, cb.type_sql
                    ),
                )
                .hazard(
                    HazardKind::RewritesTable,
                    format!(
                        "{t} is rewritten (and its indexes rebuilt) under an ACCESS EXCLUSIVE lock"
                    ),
                )
                .hazard(
                    HazardKind::MayFail,
                    cast_failure(&col, &ca.type_sql, &cb.type_sql),
                );
                self.push(op);
            }
            if ca.not_null && !cb.not_null && cb.identity.is_none() {
                self.push(lock(Op::new(
                    alter("DROP NOT NULL".into()),
                    format!("{col} accepts NULL"),
                )));
            }
            if !ca.not_null && cb.not_null && cb.identity.is_none() {
                let op = Op::new(alter("SET NOT NULL".into()), format!("{col} is NOT NULL"))
                    .hazard(
                        HazardKind::ScansTable,
                        format!("every row of {t} is read under an ACCESS EXCLUSIVE lock"),
                    )
                    .hazard(HazardKind::MayFail, format!("fails if {col} holds NULLs"));
                self.push(op);
            }
            if let Some(dflt) = &cb.default {
                if (type_change && !recipe) || default_change {
                    self.push(lock(Op::new(
                        alter(format!("SET DEFAULT {dflt}")),
                        format!("set default of {col}"),
                    )));
                }
            }
            match (&ca.identity, &cb.identity) {
                (None, Some(idb)) => {
                    if !ca.not_null {
                        let op =
                            Op::new(alter("SET NOT NULL".into()), format!("{col} is NOT NULL"))
                                .hazard(
                                    HazardKind::ScansTable,
                                    format!(
                                        "every row of {t} is read under an ACCESS EXCLUSIVE lock"
                                    ),
                                );
                        self.push(op);
                    }
                    self.push(lock(Op::new(
                        alter(format!("ADD {}", identity_clause(idb))),
                        format!("{col} becomes an identity column"),
                    )));
                }
                (Some(ida), Some(idb)) => {
                    let mut parts = Vec::new();
                    if ida.kind != idb.kind {
                        parts.push(format!("SET GENERATED {}", idb.kind.sql()));
                    }
                    let (sa, sb) = (&ida.sequence, &idb.sequence);
                    if sa.increment != sb.increment {
                        parts.push(format!("SET INCREMENT BY {}", sb.increment));
                    }
                    if sa.min != sb.min {
                        parts.push(format!("SET MINVALUE {}", sb.min));
                    }
                    if sa.max != sb.max {
                        parts.push(format!("SET MAXVALUE {}", sb.max));
                    }
                    if sa.start != sb.start {
                        parts.push(format!("SET START WITH {}", sb.start));
                    }
                    if sa.cache != sb.cache {
                        parts.push(format!("SET CACHE {}", sb.cache));
                    }
                    if sa.cycle != sb.cycle {
                        parts.push(if sb.cycle {
                            "SET CYCLE".into()
                        } else {
                            "SET NO CYCLE".into()
                        });
                    }
                    if !parts.is_empty() {
                        self.push(lock(Op::new(
                            alter(parts.join(" ")),
                            format!("change identity of {col}"),
                        )));
                    }
                }
                _ => {}
            }
            if ca.comment != cb.comment {
                self.push(Op::new(
                    format!("COMMENT ON COLUMN {col} IS {}", comment_value(&cb.comment)),
                    format!("comment on column {col}"),
                ));
            }
        }
        if ta.unlogged != tb.unlogged {
            let op = Op::new(
                format!(
                    "ALTER TABLE {ts} SET {}",
                    if tb.unlogged { "UNLOGGED" } else { "LOGGED" }
                ),
                format!(
                    "{t} becomes {}",
                    if tb.unlogged { "unlogged" } else { "logged" }
                ),
            );
            self.push(op.hazard(
                HazardKind::RewritesTable,
                format!("{t} is rewritten under an ACCESS EXCLUSIVE lock"),
            ));
        }
        if ta.comment != tb.comment {
            self.push(Op::new(
                format!("COMMENT ON TABLE {ts} IS {}", comment_value(&tb.comment)),
                format!("comment on table {t}"),
            ));
        }
    }
}

/// When a type change fails on existing data.
fn cast_failure(col: &str, from: &str, to: &str) -> String {
    let vector = |t: &str| {
        ["vector(", "halfvec(", "sparsevec("]
            .iter()
            .any(|v| t.contains(v))
    };
    if vector(from) && vector(to) {
        format!("fails if {col} holds vectors of the old dimension (a vector cannot be cast to another dimension): empty the column first, or edit the USING clause to compute new vectors")
    } else {
        format!("fails if a value of {col} cannot be cast to {to}")
    }
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

/// A hint about a drop + add that may be meant as a rename.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenameHint {
    Column {
        table: QName,
        from: String,
        to: String,
        type_sql: String,
    },
    Table {
        from: QName,
        to: QName,
    },
}

impl RenameHint {
    pub fn describe(&self) -> String {
        match self {
            RenameHint::Column { table, from, to, type_sql } => format!(
                "possible rename: column {}.{from} was dropped and {to} ({type_sql}) added; if it is a rename, pass --rename {}.{from}={to}",
                table.sql(),
                rename_table_arg(table)
            ),
            RenameHint::Table { from, to } => format!(
                "possible rename: table {from} was dropped and {to} added with the same columns; if it is a rename, pass --rename-table {}={}",
                rename_table_arg(from),
                to.name
            ),
        }
    }
}

fn rename_table_arg(t: &QName) -> String {
    if t.schema == "public" {
        t.name.clone()
    } else {
        format!("{}.{}", t.schema, t.name)
    }
}

/// Columns dropped and added with the same type in one table, tables dropped and added with the
/// same columns: reported as possible renames.
pub fn rename_hints(a: &Schema, b: &Schema) -> Vec<RenameHint> {
    let mut hints = Vec::new();
    for (t, ta) in &a.tables {
        let Some(tb) = b.tables.get(t) else { continue };
        let dropped: Vec<&Column> = ta
            .columns
            .iter()
            .filter(|c| tb.column(&c.name).is_none())
            .collect();
        let added: Vec<&Column> = tb
            .columns
            .iter()
            .filter(|c| ta.column(&c.name).is_none())
            .collect();
        for d in &dropped {
            for n in added.iter().filter(|n| n.type_sql == d.type_sql) {
                hints.push(RenameHint::Column {
                    table: t.clone(),
                    from: d.name.clone(),
                    to: n.name.clone(),
                    type_sql: n.type_sql.clone(),
                });
            }
        }
    }
    let shape = |t: &Table| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = t
            .columns
            .iter()
            .map(|c| (c.name.clone(), c.type_sql.clone()))
            .collect();
        v.sort();
        v
    };
    for (n, ta) in &a.tables {
        if b.tables.contains_key(n) {
            continue;
        }
        for (m, tb) in &b.tables {
            if !a.tables.contains_key(m) && m.schema == n.schema && shape(ta) == shape(tb) {
                hints.push(RenameHint::Table {
                    from: n.clone(),
                    to: m.clone(),
                });
            }
        }
    }
    hints
}

/// An object autogenerate does not handle, and how it compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unhandled {
    pub kind: String,
    pub name: String,
    /// "only in the migrations", "only in schema.sql", "differs", "same".
    pub status: &'static str,
}

impl Unhandled {
    pub fn differs(&self) -> bool {
        self.status != "same"
    }

    pub fn describe(&self, a_side: &str, b_side: &str) -> String {
        let status = match self.status {
            "a" => format!("only in {a_side}"),
            "b" => format!("only in {b_side}"),
            "differs" => format!("differs between {a_side} and {b_side}"),
            _ => "the same on both sides".into(),
        };
        format!("{} {} ({status})", self.kind, self.name)
    }
}

/// Every object neither side can be compared on, with whether its definition differs.
pub fn unhandled(a: &Schema, b: &Schema) -> Vec<Unhandled> {
    let keys: BTreeSet<&(String, String)> = a.unhandled.keys().chain(b.unhandled.keys()).collect();
    keys.into_iter()
        .map(|k| {
            let status = match (a.unhandled.get(k), b.unhandled.get(k)) {
                (Some(_), None) => "a",
                (None, Some(_)) => "b",
                (Some(x), Some(y)) if x != y => "differs",
                _ => "same",
            };
            Unhandled {
                kind: k.0.clone(),
                name: k.1.clone(),
                status,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn enum_additions_get_positions_and_removals_recreate() {
        assert_eq!(enum_change(&s(&["a", "b"]), &s(&["a", "b"])), None);
        assert_eq!(
            enum_change(&s(&["a", "c"]), &s(&["a", "b", "c", "d"])),
            Some(EnumChange::AddValues(vec![
                ("b".into(), Some((false, "a".into()))),
                ("d".into(), Some((false, "c".into())))
            ]))
        );
        assert_eq!(
            enum_change(&s(&["b"]), &s(&["a", "b"])),
            Some(EnumChange::AddValues(vec![(
                "a".into(),
                Some((true, "b".into()))
            )]))
        );
        assert_eq!(
            enum_change(&s(&["a", "b"]), &s(&["a"])),
            Some(EnumChange::Recreate)
        );
        assert_eq!(
            enum_change(&s(&["a", "b"]), &s(&["b", "a"])),
            Some(EnumChange::Recreate)
        );
    }

    fn col(name: &str, ty: &str) -> Column {
        Column {
            name: name.into(),
            type_sql: ty.into(),
            enum_type: None,
            is_array: false,
            not_null: false,
            default: None,
            identity: None,
            generated: None,
            collation: None,
            comment: None,
        }
    }

    fn table(name: &str, cols: Vec<Column>) -> Table {
        Table {
            name: QName::new("public", name),
            columns: cols,
            constraints: BTreeMap::new(),
            indexes: BTreeMap::new(),
            comment: None,
            unlogged: false,
        }
    }

    fn fk(name: &str, col: &str, to: &str) -> Constraint {
        Constraint {
            name: name.into(),
            kind: ConstraintKind::ForeignKey,
            definition: format!("FOREIGN KEY ({col}) REFERENCES public.{to}(id)"),
            not_valid: false,
            columns: vec![col.into()],
            references: Some(QName::new("public", to)),
            ref_index: Some(format!("{to}_pkey")),
        }
    }

    fn pk(table: &str) -> Constraint {
        Constraint {
            name: format!("{table}_pkey"),
            kind: ConstraintKind::PrimaryKey,
            definition: "PRIMARY KEY (id)".into(),
            not_valid: false,
            columns: vec!["id".into()],
            references: None,
            ref_index: None,
        }
    }

    fn cycle() -> Schema {
        let mut s = Schema::default();
        let mut a = table("a", vec![col("id", "integer"), col("b_id", "integer")]);
        a.constraints.insert("a_pkey".into(), pk("a"));
        a.constraints
            .insert("a_b_fk".into(), fk("a_b_fk", "b_id", "b"));
        let mut b = table("b", vec![col("id", "integer"), col("a_id", "integer")]);
        b.constraints.insert("b_pkey".into(), pk("b"));
        b.constraints
            .insert("b_a_fk".into(), fk("b_a_fk", "a_id", "a"));
        s.tables.insert(a.name.clone(), a);
        s.tables.insert(b.name.clone(), b);
        s
    }

    #[test]
    fn foreign_key_cycles_are_added_after_the_tables_and_dropped_before_them() {
        let empty = Schema::default();
        let up: Vec<String> = diff(&empty, &cycle(), &DiffOptions::default())
            .into_iter()
            .map(|o| o.sql)
            .collect();
        assert!(
            up[0].starts_with("CREATE TABLE public.a")
                && up[1].starts_with("CREATE TABLE public.b"),
            "{up:?}"
        );
        assert_eq!(
            up[2],
            "ALTER TABLE public.a ADD CONSTRAINT a_b_fk FOREIGN KEY (b_id) REFERENCES public.b(id)"
        );
        assert_eq!(
            up[3],
            "ALTER TABLE public.b ADD CONSTRAINT b_a_fk FOREIGN KEY (a_id) REFERENCES public.a(id)"
        );
        let down: Vec<String> = diff(&cycle(), &empty, &DiffOptions::default())
            .into_iter()
            .map(|o| o.sql)
            .collect();
        assert_eq!(
            down,
            vec![
                "ALTER TABLE public.a DROP CONSTRAINT a_b_fk",
                "ALTER TABLE public.b DROP CONSTRAINT b_a_fk",
                "DROP TABLE public.b",
                "DROP TABLE public.a"
            ]
        );
    }

    #[test]
    fn equal_schemas_give_nothing_and_renamed_columns_are_hinted() {
        assert!(diff(&cycle(), &cycle(), &DiffOptions::default()).is_empty());
        let mut b = cycle();
        let t = b.tables.get_mut(&QName::new("public", "a")).unwrap();
        t.columns[1].name = "b_ref".into();
        t.constraints.clear();
        let hints = rename_hints(&cycle(), &b);
        assert!(hints.contains(&RenameHint::Column {
            table: QName::new("public", "a"),
            from: "b_id".into(),
            to: "b_ref".into(),
            type_sql: "integer".into()
        }));
    }
}
