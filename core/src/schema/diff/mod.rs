//! The diff: the [`Change`]s that turn schema `a` into schema `b`.
//!
//! Ordering (each phase sorted by name, so the output is deterministic):
//! 1. drops, in reverse dependency order using `a`: triggers, views (dependents first),
//!    foreign keys (so tables in a cycle can go in any order), other constraints, indexes,
//!    tables, functions created again (their arguments or result change);
//! 2. creates and alters, in dependency order using `b`: schemas, extensions, enum types,
//!    sequences, functions the tables call, tables (without foreign keys), column changes,
//!    constraints, indexes, sequence ownership, foreign keys (after every table exists), the
//!    other functions, views (dependencies first), triggers;
//! 3. late drops: functions, enum types, sequences, extensions, schemas.
//!
//! Constraints and indexes whose names differ but whose definitions are equal (auto-generated
//! names after a rename) are renamed, not rebuilt. An index whose method, opclass, keys,
//! predicate or WITH parameters (compared as a map) change is dropped and created again:
//! PostgreSQL cannot change those in place (`ALTER INDEX ... SET (m = ...)` does not rebuild).
//!
//! `Comparison::new` first works out what changes (per object kind, in the comparer files
//! below); the phases then emit the changes in the order above. Each object kind has its own
//! file: `schemas` (schemas, extensions), `enums`, `sequences`, `tables`, `columns`,
//! `constraints`, `indexes`, `views`, `functions` (functions, procedures, triggers). `hints` and [`unhandled`] report what the diff
//! does not turn into statements.

mod columns;
mod constraints;
mod enums;
mod functions;
mod hints;
mod indexes;
mod schemas;
mod sequences;
mod tables;
mod unhandled;
mod views;

pub use enums::{enum_change, EnumChange, NewEnumValue};
pub use hints::{rename_hints, RenameHint};
pub use unhandled::{unhandled, Unhandled, UnhandledStatus};

use super::change::Change;
use super::model::*;
use super::render::Op;
use columns::RecipeColumn;
use constraints::ForeignKeys;
use functions::RoutinePlan;
use std::collections::{BTreeMap, BTreeSet};
use tables::TablePlan;
use views::ViewPlan;

/// How to write the statements.
#[derive(Debug, Clone, Default)]
pub struct DiffOptions {
    /// Index builds and drops on tables that exist in `a` use CONCURRENTLY.
    pub concurrently: bool,
}

/// The changes that turn `a` into `b`, rendered as statements.
pub fn diff(a: &Schema, b: &Schema, opts: &DiffOptions) -> Vec<Op> {
    super::render::to_ops(&changes(a, b, opts))
}

/// The changes that turn `a` into `b`, in the order they must run.
pub fn changes(a: &Schema, b: &Schema, opts: &DiffOptions) -> Vec<Change> {
    let c = Comparison::new(a, b, opts);
    let mut out = Vec::new();
    c.drops(&mut out);
    let replaced_enums = c.creates_and_alters(&mut out);
    c.late_drops(&replaced_enums, &mut out);
    out
}

/// A pair of names with equal definitions: the object was renamed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Renamed {
    from: String,
    to: String,
}

/// A named object of a table (a constraint), ordered by table then name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct TableItem {
    table: QName,
    name: String,
}

impl TableItem {
    fn new(table: &QName, name: &str) -> TableItem {
        TableItem {
            table: table.clone(),
            name: name.to_string(),
        }
    }
}

/// Everything the phases need to know about how `a` and `b` differ, worked out once.
struct Comparison<'s> {
    a: &'s Schema,
    b: &'s Schema,
    opts: &'s DiffOptions,
    /// Tables on both sides.
    common: Vec<&'s QName>,
    /// Tables only in `a`.
    dropped_tables: BTreeSet<&'s QName>,
    enum_changes: BTreeMap<&'s QName, EnumChange>,
    /// Columns moved to a recreated enum type, per enum type.
    recipe: BTreeMap<&'s QName, Vec<RecipeColumn<'s>>>,
    /// Columns dropped, retyped or moved by the enum recipe: what reads them is rebuilt.
    touched: BTreeSet<ColumnRef>,
    /// Constraints and indexes of the tables on both sides.
    plans: BTreeMap<&'s QName, TablePlan>,
    foreign_keys: ForeignKeys,
    views: ViewPlan<'s>,
    routines: RoutinePlan,
    /// Sequences new serial columns create (written as `serial`, not as a sequence).
    serials: BTreeSet<QName>,
}

impl<'s> Comparison<'s> {
    fn new(a: &'s Schema, b: &'s Schema, opts: &'s DiffOptions) -> Comparison<'s> {
        let mut c = Comparison {
            a,
            b,
            opts,
            common: a
                .tables
                .keys()
                .filter(|k| b.tables.contains_key(*k))
                .collect(),
            dropped_tables: a
                .tables
                .keys()
                .filter(|k| !b.tables.contains_key(*k))
                .collect(),
            enum_changes: enums::enum_changes(a, b),
            recipe: BTreeMap::new(),
            touched: BTreeSet::new(),
            plans: BTreeMap::new(),
            foreign_keys: ForeignKeys::default(),
            views: ViewPlan::default(),
            routines: RoutinePlan::default(),
            serials: BTreeSet::new(),
        };
        c.compare_columns();
        c.plans = c.table_plans();
        c.foreign_keys = c.compare_foreign_keys();
        c.views = c.compare_views();
        c.routines = c.compare_routines();
        c.serials = c.serial_sequences();
        c
    }

    /// Whether `column` of `table` is moved to a recreated enum type.
    fn in_recipe(&self, table: &QName, column: &str) -> bool {
        self.recipe
            .values()
            .flatten()
            .any(|r| r.table == table && r.before.name == column)
    }

    /// Phase 1.
    fn drops(&self, out: &mut Vec<Change>) {
        self.drop_triggers(out);
        self.drop_views(out);
        self.drop_foreign_keys(out);
        self.drop_constraints(out);
        self.drop_indexes(out);
        self.drop_matview_indexes(out);
        self.drop_functions_of_dropped_tables(out);
        self.drop_tables(out);
        self.drop_recreated_functions(out);
    }

    /// Phase 2; returns the enum types the enum recipe left behind (dropped in phase 3).
    fn creates_and_alters(&self, out: &mut Vec<Change>) -> Vec<QName> {
        self.schemas_and_extensions(out);
        self.create_enums(out);
        let replaced = self.change_enums(out);
        self.create_and_alter_sequences(out);
        self.create_early_functions(out);
        self.create_tables(out);
        for t in &self.common {
            self.alter_table(t, out);
        }
        self.add_constraints(out);
        self.create_indexes(out);
        self.sequence_ownership(out);
        self.add_foreign_keys(out);
        self.validate_foreign_keys(out);
        self.create_late_functions(out);
        self.create_views(out);
        self.views_in_place(out);
        self.create_triggers(out);
        replaced
    }

    /// Phase 3.
    fn late_drops(&self, replaced_enums: &[QName], out: &mut Vec<Change>) {
        self.drop_functions(out);
        self.drop_enums(replaced_enums, out);
        self.drop_sequences(out);
        self.drop_extensions_and_schemas(out);
    }
}

/// Pairs of (a-name, b-name) with equal definitions among names only on one side.
fn match_renamed<T>(
    a_only: &[&T],
    b_only: &[&T],
    name: impl Fn(&T) -> String,
    same: impl Fn(&T, &T) -> bool,
) -> Vec<Renamed> {
    let mut used = BTreeSet::new();
    let mut pairs = Vec::new();
    for x in a_only {
        if let Some(y) = b_only
            .iter()
            .find(|y| !used.contains(&name(y)) && same(x, y))
        {
            used.insert(name(y));
            pairs.push(Renamed {
                from: name(x),
                to: name(y),
            });
        }
    }
    pairs
}

/// What to drop, add and rename among one table's named objects (constraints or indexes).
#[derive(Default)]
struct NamedPlan {
    renamed: Vec<Renamed>,
    drop: BTreeSet<String>,
    add: BTreeSet<String>,
}

impl NamedPlan {
    /// Names only in `a` are dropped, only in `b` added, unless matched as renamed.
    fn new<T>(
        a: &BTreeMap<String, T>,
        b: &BTreeMap<String, T>,
        name: impl Fn(&T) -> String,
        same: impl Fn(&T, &T) -> bool,
    ) -> NamedPlan {
        let a_only: Vec<&T> = a
            .iter()
            .filter(|(n, _)| !b.contains_key(*n))
            .map(|(_, v)| v)
            .collect();
        let b_only: Vec<&T> = b
            .iter()
            .filter(|(n, _)| !a.contains_key(*n))
            .map(|(_, v)| v)
            .collect();
        let renamed = match_renamed(&a_only, &b_only, &name, same);
        let ren_a: BTreeSet<&String> = renamed.iter().map(|r| &r.from).collect();
        let ren_b: BTreeSet<&String> = renamed.iter().map(|r| &r.to).collect();
        let drop = a_only
            .iter()
            .map(|k| name(k))
            .filter(|n| !ren_a.contains(n))
            .collect();
        let add = b_only
            .iter()
            .map(|k| name(k))
            .filter(|n| !ren_b.contains(n))
            .collect();
        NamedPlan { renamed, drop, add }
    }
}

#[cfg(test)]
mod tests {
    use super::super::change::{EnumPosition, Hazard, HazardKind};
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn added(v: &str, position: Option<EnumPosition>) -> NewEnumValue {
        NewEnumValue {
            value: v.into(),
            position,
        }
    }

    #[test]
    fn enum_additions_get_positions_and_removals_recreate() {
        assert_eq!(enum_change(&s(&["a", "b"]), &s(&["a", "b"])), None);
        assert_eq!(
            enum_change(&s(&["a", "c"]), &s(&["a", "b", "c", "d"])),
            Some(EnumChange::AddValues(vec![
                added("b", Some(EnumPosition::After("a".into()))),
                added("d", Some(EnumPosition::After("c".into())))
            ]))
        );
        assert_eq!(
            enum_change(&s(&["b"]), &s(&["a", "b"])),
            Some(EnumChange::AddValues(vec![added(
                "a",
                Some(EnumPosition::Before("b".into()))
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
            serial: None,
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

    fn enum_schema(values: &[&str], default: Option<&str>) -> Schema {
        let mut s = Schema::default();
        let e = QName::new("public", "status");
        s.enums.insert(
            e.clone(),
            EnumType {
                name: e.clone(),
                values: values.iter().map(|v| v.to_string()).collect(),
            },
        );
        let mut c = col("state", "public.status");
        c.enum_type = Some(e);
        c.default = default.map(str::to_string);
        let t = table("jobs", vec![col("id", "integer"), c]);
        s.tables.insert(t.name.clone(), t);
        s
    }

    #[test]
    fn a_removed_enum_value_recreates_the_type_and_moves_its_columns() {
        let a = enum_schema(&["new", "old", "done"], Some("'new'::public.status"));
        let b = enum_schema(&["new", "done"], Some("'new'::public.status"));
        let ops = diff(&a, &b, &DiffOptions::default());
        let sql: Vec<&str> = ops.iter().map(|o| o.sql.as_str()).collect();
        assert_eq!(
            sql,
            vec![
                "ALTER TYPE public.status RENAME TO status_retort_old",
                "CREATE TYPE public.status AS ENUM ('new', 'done')",
                "ALTER TABLE public.jobs ALTER COLUMN state DROP DEFAULT",
                "ALTER TABLE public.jobs ALTER COLUMN state TYPE public.status USING state::text::public.status",
                "ALTER TABLE public.jobs ALTER COLUMN state SET DEFAULT 'new'::public.status",
                "DROP TYPE public.status_retort_old",
            ]
        );
        // Only the move itself carries hazards; the default steps are part of it.
        let hazardous: Vec<usize> = ops
            .iter()
            .enumerate()
            .filter(|(_, o)| !o.hazards.is_empty())
            .map(|(i, _)| i)
            .collect();
        assert_eq!(hazardous, vec![3]);
        assert_eq!(
            ops[3].hazards[1].detail,
            "fails if a row of public.jobs holds a value removed from public.status"
        );
    }

    #[test]
    fn added_enum_values_are_add_value_changes() {
        let a = enum_schema(&["new", "done"], None);
        let b = enum_schema(&["new", "running", "done"], None);
        let c = changes(&a, &b, &DiffOptions::default());
        assert_eq!(
            c,
            vec![Change::AddEnumValue {
                enum_name: QName::new("public", "status"),
                value: "running".into(),
                position: Some(EnumPosition::After("new".into())),
            }]
        );
        assert_eq!(
            c[0].sql(),
            "ALTER TYPE public.status ADD VALUE 'running' AFTER 'new'"
        );
    }

    fn with_index(mut s: Schema, name: &str, method: &str) -> Schema {
        let t = s.tables.get_mut(&QName::new("public", "a")).unwrap();
        t.indexes.insert(
            name.into(),
            Index {
                name: name.into(),
                unique: false,
                method: method.into(),
                body: format!("public.a USING {method} (b_id)"),
                params: Vec::new(),
                predicate: None,
                columns: vec!["b_id".into()],
                comment: Some("lookups".into()),
            },
        );
        s
    }

    #[test]
    fn index_builds_and_drops_on_existing_tables_follow_the_concurrently_option() {
        let a = cycle();
        let b = with_index(cycle(), "a_b_idx", "btree");
        let conc = DiffOptions { concurrently: true };
        let up = diff(&a, &b, &conc);
        assert_eq!(up.len(), 2);
        assert_eq!(
            up[0].sql,
            "CREATE INDEX CONCURRENTLY a_b_idx ON public.a USING btree (b_id)"
        );
        assert_eq!(
            up[0].hazards,
            vec![Hazard {
                table: Some(QName::new("public", "a")),
                ..Hazard::new(
                    HazardKind::BuildsIndex,
                    "btree index built concurrently: reads and writes of public.a go on, the build takes longer"
                )
            }]
        );
        assert_eq!(up[1].sql, "COMMENT ON INDEX public.a_b_idx IS 'lookups'");
        let down = diff(&b, &a, &conc);
        assert_eq!(down[0].sql, "DROP INDEX CONCURRENTLY public.a_b_idx");
        assert!(down[0].hazards.is_empty());
        let plain = diff(&b, &a, &DiffOptions::default());
        assert_eq!(plain[0].sql, "DROP INDEX public.a_b_idx");
        assert_eq!(
            plain[0].hazards[0].detail,
            "reads and writes of public.a wait, briefly, while the index is dropped"
        );
        // A changed method is a drop and a create under the same name (its comment again).
        let hash = with_index(cycle(), "a_b_idx", "hash");
        let what: Vec<String> = diff(&b, &hash, &DiffOptions::default())
            .into_iter()
            .map(|o| o.what)
            .collect();
        assert_eq!(
            what,
            vec![
                "drop index a_b_idx on public.a",
                "create index a_b_idx on public.a",
                "comment on index public.a_b_idx"
            ]
        );
        // ... whose build then blocks reads and writes: the drop's lock is held through it
        let rebuild = diff(&b, &hash, &DiffOptions::default());
        assert!(
            rebuild[1].hazards[0]
                .detail
                .contains("reads and writes of public.a are blocked for the whole build"),
            "{:?}",
            rebuild[1].hazards
        );
    }

    #[test]
    fn with_concurrently_a_changed_index_is_built_beside_the_old_one_and_swapped() {
        let b = with_index(cycle(), "a_b_idx", "btree");
        let hash = with_index(cycle(), "a_b_idx", "hash");
        let up = diff(&b, &hash, &DiffOptions { concurrently: true });
        let sql: Vec<&str> = up.iter().map(|o| o.sql.as_str()).collect();
        assert_eq!(
            sql,
            [
                "CREATE INDEX CONCURRENTLY a_b_idx_new ON public.a USING hash (b_id)",
                "DROP INDEX CONCURRENTLY public.a_b_idx",
                "ALTER INDEX public.a_b_idx_new RENAME TO a_b_idx",
                "COMMENT ON INDEX public.a_b_idx IS 'lookups'"
            ]
        );
        assert!(up[0].hazards[0].detail.contains("beside the old one"));
        // a temporary name that is taken is not used
        let mut taken = with_index(b.clone(), "a_b_idx_new", "btree");
        taken = with_index(taken, "a_b_idx", "btree");
        let mut want = with_index(hash.clone(), "a_b_idx_new", "btree");
        want = with_index(want, "a_b_idx", "hash");
        let up = diff(&taken, &want, &DiffOptions { concurrently: true });
        assert!(
            up[0]
                .sql
                .starts_with("CREATE INDEX CONCURRENTLY a_b_idx_new2 "),
            "{}",
            up[0].sql
        );
    }
}
