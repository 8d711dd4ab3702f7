//! One difference between two schemas, as a typed value: what the diff ([`super::diff()`])
//! produces and what autogenerate splits into revisions. A [`Change`] knows what it does
//! ([`Change::what`]) and what it risks ([`Change::hazards`]); its SQL text is written by
//! [`super::render`]. Keeping the three apart lets callers pick changes by kind (enum values,
//! concurrent index builds) instead of by SQL text.

use super::model::*;
use std::fmt;

/// What a statement risks; written as `-- hazard: ...` before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HazardKind {
    DeletesData,
    RewritesTable,
    AccessExclusiveLock,
    BuildsIndex,
    ScansTable,
    MayFail,
}

impl HazardKind {
    /// Every kind, in the order summaries count them.
    pub const ALL: [HazardKind; 6] = [
        HazardKind::DeletesData,
        HazardKind::RewritesTable,
        HazardKind::AccessExclusiveLock,
        HazardKind::BuildsIndex,
        HazardKind::ScansTable,
        HazardKind::MayFail,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            HazardKind::DeletesData => "deletes data",
            HazardKind::RewritesTable => "rewrites the table",
            HazardKind::AccessExclusiveLock => "ACCESS EXCLUSIVE lock",
            HazardKind::BuildsIndex => "builds an index",
            HazardKind::ScansTable => "scans the table",
            HazardKind::MayFail => "may fail on existing data",
        }
    }
}

impl fmt::Display for HazardKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hazard {
    pub kind: HazardKind,
    /// What the application feels ("writes to public.chunks wait until ...").
    pub detail: String,
    /// The table the statement works on, when it has one: the revision's text adds the
    /// table's size to the detail ([`super::render::hazard_detail`]).
    pub table: Option<QName>,
}

impl Hazard {
    pub fn new(kind: HazardKind, detail: impl Into<String>) -> Hazard {
        Hazard {
            kind,
            detail: detail.into(),
            table: None,
        }
    }
}

/// Where `ALTER TYPE ... ADD VALUE` puts a new enum value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnumPosition {
    Before(String),
    After(String),
}

/// One `SET ...` clause of `ALTER COLUMN` on an identity column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityOption {
    Generated(Identity),
    Increment(i64),
    MinValue(i64),
    MaxValue(i64),
    Start(i64),
    Cache(i64),
    Cycle(bool),
}

/// A column's type as far as `ALTER COLUMN ... TYPE` is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnType {
    pub type_sql: String,
    pub collation: Option<String>,
}

/// The object a `COMMENT ON` is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommentTarget {
    Schema(String),
    Table(QName),
    /// A table's or a view's column.
    Column(ColumnRef),
    View {
        name: QName,
        materialized: bool,
    },
    Index(QName),
}

/// What an index is built on, which decides what the build risks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexBuild {
    /// A table or materialized view created in the same revision: it is empty.
    NewRelation,
    ExistingTable,
    ExistingMaterializedView,
    /// A changed index built again on an existing table after its old version was dropped in
    /// the same transaction: the drop's ACCESS EXCLUSIVE lock is held through the build.
    ReplacingIndex,
}

/// One difference, turned into one statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    CreateSchema {
        name: String,
    },
    DropSchema {
        name: String,
    },
    CreateExtension {
        name: String,
        schema: String,
    },
    MoveExtension {
        name: String,
        schema: String,
    },
    DropExtension {
        name: String,
    },
    Comment {
        on: CommentTarget,
        comment: Option<String>,
    },

    /// `replacing`: the new type of the enum recipe (values removed or reordered).
    CreateEnum {
        name: QName,
        values: Vec<String>,
        replacing: bool,
    },
    AddEnumValue {
        enum_name: QName,
        value: String,
        position: Option<EnumPosition>,
    },
    /// The enum recipe's first step: the old type is renamed out of the way.
    RenameEnumAside {
        name: QName,
        aside: String,
    },
    /// The enum recipe: a column moves to the new type through text.
    MoveColumnToEnum {
        column: ColumnRef,
        type_sql: String,
        is_array: bool,
        enum_name: QName,
    },
    /// `replaced`: the old type left behind by the enum recipe.
    DropEnum {
        name: QName,
        replaced: bool,
    },

    CreateSequence {
        sequence: Sequence,
    },
    AlterSequence {
        sequence: Sequence,
    },
    SetSequenceOwner {
        sequence: QName,
        owner: Option<ColumnRef>,
    },
    DropSequence {
        name: QName,
    },

    CreateTable {
        table: Table,
    },
    DropTable {
        name: QName,
    },
    /// `reverting`: the down section undoing a rename the user asked for.
    RenameTable {
        from: QName,
        to: String,
        reverting: bool,
    },
    SetLogged {
        table: QName,
        unlogged: bool,
    },

    AddColumn {
        table: QName,
        column: Column,
    },
    /// `regenerated`: a generated column dropped to be added again with a new expression.
    DropColumn {
        column: ColumnRef,
        regenerated: bool,
    },
    RenameColumn {
        table: QName,
        from: String,
        to: String,
        reverting: bool,
    },
    AlterColumnType {
        column: ColumnRef,
        from: ColumnType,
        to: ColumnType,
    },
    /// `enum_recipe`: part of moving the column to a recreated enum type.
    DropDefault {
        column: ColumnRef,
        enum_recipe: bool,
    },
    SetDefault {
        column: ColumnRef,
        default: String,
        enum_recipe: bool,
    },
    DropNotNull {
        column: ColumnRef,
    },
    /// `for_identity`: the column becomes an identity column (which needs NOT NULL).
    SetNotNull {
        column: ColumnRef,
        for_identity: bool,
    },
    AddIdentity {
        column: ColumnRef,
        identity: IdentityDef,
    },
    AlterIdentity {
        column: ColumnRef,
        options: Vec<IdentityOption>,
    },
    DropIdentity {
        column: ColumnRef,
    },
    DropExpression {
        column: ColumnRef,
    },

    /// `existing_table`: the table holds rows already (it is not created in the same revision).
    AddConstraint {
        table: QName,
        constraint: Constraint,
        existing_table: bool,
    },
    /// `table_dropped`: a foreign key dropped before its table (no lock worth noting).
    DropConstraint {
        table: QName,
        name: String,
        kind: ConstraintKind,
        table_dropped: bool,
    },
    RenameConstraint {
        table: QName,
        from: String,
        to: String,
    },
    ValidateConstraint {
        table: QName,
        name: String,
        kind: ConstraintKind,
    },

    CreateIndex {
        table: QName,
        index: Index,
        concurrently: bool,
        build: IndexBuild,
    },
    DropIndex {
        table: QName,
        name: String,
        concurrently: bool,
    },
    RenameIndex {
        table: QName,
        from: String,
        to: String,
    },

    CreateView {
        view: View,
    },
    /// `kept`: the view is created again (its rows, if materialized, are recomputed).
    DropView {
        name: QName,
        materialized: bool,
        kept: bool,
    },

    /// `replace`: the function exists and keeps its arguments and result.
    CreateFunction {
        function: Function,
        replace: bool,
    },
    DropFunction {
        signature: String,
        procedure: bool,
    },
    /// `existing_table`: the trigger's table exists already (not created in the revision).
    CreateTrigger {
        trigger: Trigger,
        existing_table: bool,
    },
    DropTrigger {
        table: QName,
        name: String,
    },
}

fn lock_briefly(t: &QName) -> Vec<Hazard> {
    vec![Hazard::new(
        HazardKind::AccessExclusiveLock,
        format!("reads and writes of {t} wait, briefly (behind any query already running on it)"),
    )]
}

/// An ACCESS EXCLUSIVE lock held for the whole of the work.
fn blocked_while(t: &QName, work: &str) -> String {
    format!("reads and writes of {t} are blocked until {work}")
}

impl Change {
    /// A short description for summaries and drift reports ("add column public.t.c").
    pub fn what(&self) -> String {
        use Change::*;
        match self {
            CreateSchema { name } => format!("create schema {name}"),
            DropSchema { name } => format!("drop schema {name}"),
            CreateExtension { name, .. } => format!("create extension {name}"),
            MoveExtension { name, schema } => format!("move extension {name} to schema {schema}"),
            DropExtension { name } => format!("drop extension {name}"),
            Comment { on, .. } => on.what(),
            CreateEnum {
                name, replacing, ..
            } => match replacing {
                true => format!("recreate enum type {name}"),
                false => format!("create enum type {name}"),
            },
            AddEnumValue {
                enum_name, value, ..
            } => {
                format!("add value {value} to enum type {enum_name}")
            }
            RenameEnumAside { name, .. } => {
                format!("recreate enum type {name} (values removed or reordered)")
            }
            MoveColumnToEnum {
                column, enum_name, ..
            } => {
                format!("move {column} to the new enum type {enum_name}")
            }
            DropEnum { name, replaced } => match replaced {
                true => format!("drop the replaced enum type {name}"),
                false => format!("drop enum type {name}"),
            },
            CreateSequence { sequence } => format!("create sequence {}", sequence.name),
            AlterSequence { sequence } => format!("change sequence {}", sequence.name),
            SetSequenceOwner { sequence, owner } => {
                format!("sequence {sequence} owned by {}", owner_sql(owner))
            }
            DropSequence { name } => format!("drop sequence {name}"),
            CreateTable { table } => format!("create table {}", table.name),
            DropTable { name } => format!("drop table {name}"),
            RenameTable { from, to, .. } => format!(
                "rename table {from} to {}",
                QName::new(from.schema.clone(), to.clone())
            ),
            SetLogged { table, unlogged } => match unlogged {
                true => format!("{table} becomes unlogged"),
                false => format!("{table} becomes logged"),
            },
            AddColumn { table, column } => {
                format!("add column {}", ColumnRef::new(table, &column.name))
            }
            DropColumn { column, .. } => format!("drop column {column}"),
            RenameColumn {
                table, from, to, ..
            } => format!("rename column {table}.{from} to {to}"),
            AlterColumnType { column, from, to } => format!(
                "change type of {column} from {} to {}",
                from.type_sql, to.type_sql
            ),
            DropDefault { column, .. } => format!("drop default of {column}"),
            SetDefault { column, .. } => format!("set default of {column}"),
            DropNotNull { column } => format!("{column} accepts NULL"),
            SetNotNull { column, .. } => format!("{column} is NOT NULL"),
            AddIdentity { column, .. } => format!("{column} becomes an identity column"),
            AlterIdentity { column, .. } => format!("change identity of {column}"),
            DropIdentity { column } => format!("drop identity of {column}"),
            DropExpression { column } => format!("{column} is no longer generated"),
            AddConstraint {
                table,
                constraint: k,
                ..
            } => {
                format!("add {} {} on {table}", k.kind.describe(), k.name)
            }
            DropConstraint {
                table, name, kind, ..
            } => {
                format!("drop {} {name} on {table}", kind.describe())
            }
            RenameConstraint { table, from, to } => {
                format!("rename constraint {from} on {table} to {to}")
            }
            ValidateConstraint { table, name, kind } => match kind {
                ConstraintKind::ForeignKey => format!("validate foreign key {name} on {table}"),
                _ => format!("validate constraint {name} on {table}"),
            },
            CreateIndex { table, index, .. } => format!("create index {} on {table}", index.name),
            DropIndex { table, name, .. } => format!("drop index {name} on {table}"),
            RenameIndex { table, from, to } => format!("rename index {from} on {table} to {to}"),
            CreateView { view } => format!("create view {}", view.name),
            DropView { name, .. } => format!("drop view {name}"),
            CreateFunction { function, replace } => match replace {
                true => format!("replace {}", function.describe()),
                false => format!("create {}", function.describe()),
            },
            DropFunction {
                signature,
                procedure,
            } => match procedure {
                true => format!("drop procedure {signature}"),
                false => format!("drop function {signature}"),
            },
            CreateTrigger { trigger, .. } => {
                format!("create trigger {} on {}", trigger.name, trigger.table)
            }
            DropTrigger { table, name } => format!("drop trigger {name} on {table}"),
        }
    }

    /// What the statement risks, in the order its `-- hazard:` comments are written.
    pub fn hazards(&self) -> Vec<Hazard> {
        let table = self.table();
        let mut h = self.hazards_of_kind();
        for x in &mut h {
            x.table = table.clone();
        }
        h
    }

    /// The table the statement works on (for the size in its hazards).
    pub fn table(&self) -> Option<QName> {
        use Change::*;
        Some(match self {
            MoveColumnToEnum { column, .. }
            | DropColumn { column, .. }
            | AlterColumnType { column, .. }
            | DropDefault { column, .. }
            | SetDefault { column, .. }
            | DropNotNull { column }
            | SetNotNull { column, .. }
            | AddIdentity { column, .. }
            | AlterIdentity { column, .. }
            | DropIdentity { column }
            | DropExpression { column } => column.table.clone(),
            DropTable { name } => name.clone(),
            RenameTable { from, .. } => from.clone(),
            SetLogged { table, .. }
            | AddColumn { table, .. }
            | RenameColumn { table, .. }
            | AddConstraint { table, .. }
            | DropConstraint { table, .. }
            | RenameConstraint { table, .. }
            | ValidateConstraint { table, .. }
            | CreateIndex { table, .. }
            | DropIndex { table, .. }
            | RenameIndex { table, .. }
            | DropTrigger { table, .. } => table.clone(),
            _ => return None,
        })
    }

    fn hazards_of_kind(&self) -> Vec<Hazard> {
        use Change::*;
        use HazardKind::*;
        match self {
            DropExtension { name } => vec![Hazard::new(
                DeletesData,
                format!("the objects of extension {name} are dropped with it"),
            )],
            MoveColumnToEnum {
                column, enum_name, ..
            } => vec![
                Hazard::new(RewritesTable, blocked_while(&column.table, "it is rewritten")),
                Hazard::new(
                    MayFail,
                    format!(
                        "fails if a row of {} holds a value removed from {enum_name}",
                        column.table
                    ),
                ),
            ],
            DropTable { name } => {
                vec![Hazard::new(
                    DeletesData,
                    format!("every row of {name} is lost"),
                )]
            }
            RenameTable {
                from: t,
                reverting: false,
                ..
            }
            | RenameColumn {
                table: t,
                reverting: false,
                ..
            } => vec![Hazard::new(
                AccessExclusiveLock,
                format!("reads and writes of {t} wait, briefly (behind any query already running on it); queries using the old name fail from then on"),
            )],
            SetLogged { table, .. } => vec![Hazard::new(
                RewritesTable,
                blocked_while(table, "it is rewritten"),
            )],
            DropView {
                name,
                materialized: true,
                kept: false,
            } => vec![Hazard::new(
                DeletesData,
                format!("the rows of materialized view {name} are lost"),
            )],
            AddConstraint { .. }
            | DropConstraint { .. }
            | RenameConstraint { .. }
            | ValidateConstraint { .. } => self.constraint_hazards(),
            CreateIndex { .. } | DropIndex { .. } | RenameIndex { .. } => self.index_hazards(),
            DropTrigger { table, .. } => vec![Hazard::new(
                AccessExclusiveLock,
                format!("reads and writes of {table} wait, briefly, while the trigger is dropped"),
            )],
            _ => self.column_hazards(),
        }
    }

    fn column_hazards(&self) -> Vec<Hazard> {
        use Change::*;
        use HazardKind::*;
        match self {
            AddColumn { table, column } => add_column_hazards(table, column),
            DropColumn {
                column,
                regenerated: true,
            } => lock_briefly(&column.table),
            DropColumn {
                column,
                regenerated: false,
            } => vec![Hazard::new(
                DeletesData,
                format!("the values of {column} are lost"),
            )],
            AlterColumnType { column, from, to } => vec![
                Hazard::new(
                    RewritesTable,
                    blocked_while(&column.table, "it is rewritten and its indexes rebuilt"),
                ),
                Hazard::new(
                    MayFail,
                    cast_failure(&column.sql(), &from.type_sql, &to.type_sql),
                ),
            ],
            DropDefault {
                column,
                enum_recipe: false,
            }
            | SetDefault {
                column,
                enum_recipe: false,
                ..
            }
            | DropNotNull { column }
            | AddIdentity { column, .. }
            | AlterIdentity { column, .. }
            | DropIdentity { column }
            | DropExpression { column } => lock_briefly(&column.table),
            SetNotNull {
                column,
                for_identity,
            } => {
                let mut h = vec![Hazard::new(
                    ScansTable,
                    blocked_while(&column.table, "every row is read"),
                )];
                if !for_identity {
                    h.push(Hazard::new(
                        MayFail,
                        format!("fails if {column} holds NULLs"),
                    ));
                }
                h
            }
            _ => Vec::new(),
        }
    }

    fn constraint_hazards(&self) -> Vec<Hazard> {
        use Change::*;
        use HazardKind::*;
        match self {
            AddConstraint {
                table: t,
                constraint: k,
                existing_table,
            } => {
                if k.kind == ConstraintKind::ForeignKey {
                    if !*existing_table || k.not_valid {
                        return Vec::new();
                    }
                    let target = k.references.as_ref().map(|r| r.sql()).unwrap_or_default();
                    vec![Hazard::new(ScansTable, format!("writes to {t} and {target} wait while every row of {t} is checked (SHARE ROW EXCLUSIVE locks; reads go on; add it NOT VALID, then VALIDATE, to shorten them)"))]
                } else if k.kind.has_index() {
                    vec![Hazard::new(
                        BuildsIndex,
                        blocked_while(t, "the constraint's index is built"),
                    )]
                } else if !k.not_valid {
                    vec![Hazard::new(ScansTable, format!("{} (add it NOT VALID, then VALIDATE, to avoid the long lock)", blocked_while(t, "every row is checked")))]
                } else {
                    lock_briefly(t)
                }
            }
            RenameConstraint { table, .. } => lock_briefly(table),
            DropConstraint {
                table_dropped: true,
                ..
            } => Vec::new(),
            DropConstraint { table, .. } => vec![Hazard::new(
                AccessExclusiveLock,
                format!("reads and writes of {table} wait, briefly, while the constraint is dropped"),
            )],
            ValidateConstraint { table, .. } => vec![Hazard::new(
                ScansTable,
                format!(
                    "every row of {table} is read (SHARE UPDATE EXCLUSIVE lock: reads and writes go on)"
                ),
            )],
            _ => Vec::new(),
        }
    }

    fn index_hazards(&self) -> Vec<Hazard> {
        use Change::*;
        use HazardKind::*;
        match self {
            CreateIndex {
                table: t,
                index,
                concurrently,
                build,
            } => {
                let m = &index.method;
                let detail = match (build, concurrently) {
                    (IndexBuild::NewRelation, _) => return Vec::new(),
                    (IndexBuild::ExistingMaterializedView, _) => {
                        format!("reads go on; REFRESH MATERIALIZED VIEW {t} waits until the {m} index is built")
                    }
                    (IndexBuild::ExistingTable, true) => format!(
                        "{m} index built concurrently: reads and writes of {t} go on, the build takes longer"
                    ),
                    (IndexBuild::ExistingTable, false) => format!("reads go on; writes to {t} (INSERT, UPDATE, DELETE) wait until the {m} index is built"),
                    (IndexBuild::ReplacingIndex, true) => format!(
                        "{m} index built concurrently on {t} under a temporary name beside the old one, which serves queries until the swap: writes go on, the build takes longer"
                    ),
                    (IndexBuild::ReplacingIndex, false) => format!(
                        "{m} index rebuilt on {t} after DROP INDEX in the same transaction: reads and writes of {t} are blocked for the whole build (and queries have no index); --concurrently builds the new index beside the old one and swaps them"
                    ),
                };
                vec![Hazard::new(BuildsIndex, detail)]
            }
            DropIndex {
                concurrently: true, ..
            } => Vec::new(),
            DropIndex { table, .. } => vec![Hazard::new(
                AccessExclusiveLock,
                format!("reads and writes of {table} wait, briefly, while the index is dropped"),
            )],
            RenameIndex { table, .. } => lock_briefly(table),
            _ => Vec::new(),
        }
    }
}

impl CommentTarget {
    fn what(&self) -> String {
        match self {
            CommentTarget::Schema(s) => format!("comment on schema {s}"),
            CommentTarget::Table(t) => format!("comment on table {t}"),
            CommentTarget::Column(c) => format!("comment on column {c}"),
            CommentTarget::View { name, .. } => format!("comment on view {name}"),
            CommentTarget::Index(i) => format!("comment on index {i}"),
        }
    }
}

/// `OWNED BY`'s target: the column, or `NONE`.
pub(crate) fn owner_sql(owner: &Option<ColumnRef>) -> String {
    match owner {
        Some(c) => c.sql(),
        None => "NONE".into(),
    }
}

/// Adding a column rewrites the table when every row needs a computed value; otherwise it is a
/// brief lock. NOT NULL without a value to fill it fails on a table with rows.
fn add_column_hazards(t: &QName, c: &Column) -> Vec<Hazard> {
    let col = ColumnRef::new(t, &c.name);
    let volatile = c.generated.is_some()
        || c.identity.is_some()
        || c.default
            .as_deref()
            .is_some_and(|d| d.contains('(') && !d.starts_with("now()") && !d.contains("CURRENT_"));
    let mut h = if volatile {
        vec![Hazard::new(
            HazardKind::RewritesTable,
            format!(
                "{} (to fill {col}: a volatile default, identity or generated column)",
                blocked_while(t, "it is rewritten")
            ),
        )]
    } else {
        lock_briefly(t)
    };
    if c.not_null && c.default.is_none() && c.identity.is_none() && c.generated.is_none() {
        h.push(Hazard::new(
            HazardKind::MayFail,
            format!("NOT NULL without a default fails if {t} has rows"),
        ));
    }
    h
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
