//! The schema model: what introspection reads from the catalog and what the diff compares.
//!
//! Every name is kept unquoted and schema-qualified ([`QName`]); every type, default and
//! definition is the text PostgreSQL's own deparser produced with `search_path = ''`, so two
//! models read from the same server compare by plain string equality. Maps are `BTreeMap`s so
//! that iteration (and therefore the generated SQL) is deterministic.

use std::collections::BTreeMap;
use std::fmt;

/// A schema-qualified name, unquoted.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QName {
    pub schema: String,
    pub name: String,
}

impl QName {
    pub fn new(schema: impl Into<String>, name: impl Into<String>) -> QName {
        QName {
            schema: schema.into(),
            name: name.into(),
        }
    }

    /// `schema.name`, each part quoted only when needed.
    pub fn sql(&self) -> String {
        format!("{}.{}", ident(&self.schema), ident(&self.name))
    }
}

impl fmt::Display for QName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.sql())
    }
}

/// A column of a table (or view), by name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ColumnRef {
    pub table: QName,
    pub column: String,
}

impl ColumnRef {
    pub fn new(table: &QName, column: &str) -> ColumnRef {
        ColumnRef {
            table: table.clone(),
            column: column.to_string(),
        }
    }

    /// `schema.table.column`, each part quoted only when needed.
    pub fn sql(&self) -> String {
        format!("{}.{}", self.table.sql(), ident(&self.column))
    }
}

impl fmt::Display for ColumnRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.sql())
    }
}

/// A whole database schema (the parts retort compares).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schema {
    /// Schema name -> comment.
    pub schemas: BTreeMap<String, Option<String>>,
    /// Extension name -> the schema it lives in (versions are ignored).
    pub extensions: BTreeMap<String, String>,
    pub enums: BTreeMap<QName, EnumType>,
    pub sequences: BTreeMap<QName, Sequence>,
    pub tables: BTreeMap<QName, Table>,
    pub views: BTreeMap<QName, View>,
    /// Functions and procedures by signature (`public.touch()`).
    pub functions: BTreeMap<String, Function>,
    /// Triggers by (table, name).
    pub triggers: BTreeMap<(QName, String), Trigger>,
    /// Objects autogenerate does not handle -> a fingerprint of the definition.
    /// Reported as "not compared", never silently dropped.
    pub unhandled: BTreeMap<ObjectKey, String>,
}

impl Schema {
    /// Keeps only what lives in schema `name` (one tenant of a schema-per-tenant database):
    /// its tables, views, sequences, types, functions, triggers and the objects not compared
    /// that are named in it. Extensions belong to the whole database and are left out.
    pub fn only_schema(&mut self, name: &str) {
        self.schemas.retain(|s, _| s == name);
        self.extensions.clear();
        self.enums.retain(|q, _| q.schema == name);
        self.sequences.retain(|q, _| q.schema == name);
        self.tables.retain(|q, _| q.schema == name);
        self.views.retain(|q, _| q.schema == name);
        self.functions.retain(|_, f| f.name.schema == name);
        self.triggers.retain(|(t, _), _| t.schema == name);
        let prefix = format!("{}.", ident(name));
        let on = format!(" on {prefix}");
        self.unhandled
            .retain(|k, _| k.name.starts_with(&prefix) || k.name.contains(&on));
    }
}

/// An object by kind (`function`, `trigger`, `partitioned table`, ...) and name, ordered by
/// kind then name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    pub kind: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnumType {
    pub name: QName,
    pub values: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sequence {
    pub name: QName,
    /// `bigint`, `integer` or `smallint`.
    pub data_type: String,
    pub start: i64,
    pub increment: i64,
    pub min: i64,
    pub max: i64,
    pub cache: i64,
    pub cycle: bool,
    /// `OWNED BY table.column` (serial columns).
    pub owned_by: Option<ColumnRef>,
}

impl Sequence {
    /// The options of CREATE SEQUENCE / identity columns.
    pub fn options_sql(&self) -> String {
        format!(
            "AS {} INCREMENT BY {} MINVALUE {} MAXVALUE {} START WITH {} CACHE {} {}",
            self.data_type,
            self.increment,
            self.min,
            self.max,
            self.start,
            self.cache,
            if self.cycle { "CYCLE" } else { "NO CYCLE" }
        )
    }

    /// The same options (the name and owner aside).
    pub fn same_options(&self, o: &Sequence) -> bool {
        (
            &self.data_type,
            self.start,
            self.increment,
            self.min,
            self.max,
            self.cache,
            self.cycle,
        ) == (
            &o.data_type,
            o.start,
            o.increment,
            o.min,
            o.max,
            o.cache,
            o.cycle,
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub name: QName,
    /// Columns in attnum order (the order is used by CREATE TABLE only, never compared).
    pub columns: Vec<Column>,
    pub constraints: BTreeMap<String, Constraint>,
    /// Indexes that do not belong to a constraint.
    pub indexes: BTreeMap<String, Index>,
    pub comment: Option<String>,
    pub unlogged: bool,
}

impl Table {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    Always,
    ByDefault,
}

impl Identity {
    pub fn sql(self) -> &'static str {
        match self {
            Identity::Always => "ALWAYS",
            Identity::ByDefault => "BY DEFAULT",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityDef {
    pub kind: Identity,
    /// The identity sequence's options (its name is not compared).
    pub sequence: Sequence,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    /// `format_type(atttypid, atttypmod)`: `integer`, `public.vector(1536)`, `text[]`.
    pub type_sql: String,
    /// The enum type when the column's type is an enum or an array of one (enum recipe).
    pub enum_type: Option<QName>,
    pub is_array: bool,
    pub not_null: bool,
    /// `pg_get_expr` of the default (never set for a generated column).
    pub default: Option<String>,
    pub identity: Option<IdentityDef>,
    /// `GENERATED ALWAYS AS (expr) STORED`: the expression.
    pub generated: Option<String>,
    /// An explicit collation differing from the type's default, e.g. `pg_catalog."C"`.
    pub collation: Option<String>,
    pub comment: Option<String>,
    /// `serial`, `bigserial` or `smallserial`: how a new column is written when its default
    /// and its sequence are exactly what that type creates. Set by the diff for rendering,
    /// never read from the catalog, never compared.
    pub serial: Option<&'static str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ConstraintKind {
    PrimaryKey,
    Unique,
    Check,
    Exclusion,
    ForeignKey,
}

impl ConstraintKind {
    pub fn from_contype(c: &str) -> Option<ConstraintKind> {
        Some(match c {
            "p" => ConstraintKind::PrimaryKey,
            "u" => ConstraintKind::Unique,
            "c" => ConstraintKind::Check,
            "x" => ConstraintKind::Exclusion,
            "f" => ConstraintKind::ForeignKey,
            _ => return None,
        })
    }

    /// Whether the constraint owns an index (which is then not listed among the indexes).
    pub fn has_index(self) -> bool {
        matches!(
            self,
            ConstraintKind::PrimaryKey | ConstraintKind::Unique | ConstraintKind::Exclusion
        )
    }

    pub fn describe(self) -> &'static str {
        match self {
            ConstraintKind::PrimaryKey => "primary key",
            ConstraintKind::Unique => "unique constraint",
            ConstraintKind::Check => "check constraint",
            ConstraintKind::Exclusion => "exclusion constraint",
            ConstraintKind::ForeignKey => "foreign key",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraint {
    pub name: String,
    pub kind: ConstraintKind,
    /// `pg_get_constraintdef` without a trailing ` NOT VALID`.
    pub definition: String,
    pub not_valid: bool,
    /// The constrained columns (conkey), for dependency checks.
    pub columns: Vec<String>,
    /// Foreign keys: the referenced table, and the name of the unique index they rely on.
    pub references: Option<QName>,
    pub ref_index: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    pub name: String,
    pub unique: bool,
    /// Access method: btree, hash, gin, gist, brin, spgist, hnsw, ivfflat, ...
    pub method: String,
    /// `pg_get_indexdef` after ` ON `, without WITH and WHERE:
    /// `public.items USING hnsw (embedding public.vector_cosine_ops)`.
    pub body: String,
    /// WITH parameters in the order PostgreSQL keeps them (compared as a map).
    pub params: Vec<(String, String)>,
    /// The partial index predicate (`pg_get_expr(indpred)`).
    pub predicate: Option<String>,
    /// Columns the index uses (keys, INCLUDE, expressions, predicate), for dependency checks.
    pub columns: Vec<String>,
    pub comment: Option<String>,
}

impl Index {
    pub fn params_map(&self) -> BTreeMap<&str, &str> {
        self.params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    /// The same index apart from its name.
    pub fn same_definition(&self, o: &Index) -> bool {
        self.unique == o.unique
            && self.body == o.body
            && self.predicate == o.predicate
            && self.params_map() == o.params_map()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub name: QName,
    pub materialized: bool,
    /// `pg_get_viewdef(oid, true)`.
    pub definition: String,
    /// WITH options (`security_barrier=true`, `check_option=local`), as stored.
    pub options: Vec<String>,
    pub comment: Option<String>,
    /// Column name -> comment.
    pub column_comments: BTreeMap<String, String>,
    /// Materialized views' indexes.
    pub indexes: BTreeMap<String, Index>,
    /// Relations the view reads -> the columns it reads from them.
    pub depends_on: BTreeMap<QName, Vec<String>>,
}

/// A function or procedure (not an aggregate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    pub name: QName,
    /// `regprocedure` text: `public.touch()`, `public.match_chunks(public.vector,integer)`.
    pub signature: String,
    pub procedure: bool,
    /// `pg_get_functiondef`: `CREATE OR REPLACE FUNCTION ...` with the body as written.
    pub definition: String,
    /// `pg_get_function_arguments` and `pg_get_function_result`: when either changes,
    /// `CREATE OR REPLACE` cannot be used (the function is dropped and created again).
    pub arguments: String,
    pub result: Option<String>,
}

impl Function {
    /// Whether `CREATE OR REPLACE` can turn `self` into `o`.
    pub fn replaceable_by(&self, o: &Function) -> bool {
        self.procedure == o.procedure && self.arguments == o.arguments && self.result == o.result
    }

    /// `function public.touch()` / `procedure public.p(integer)`.
    pub fn describe(&self) -> String {
        format!(
            "{} {}",
            if self.procedure {
                "procedure"
            } else {
                "function"
            },
            self.signature
        )
    }
}

/// A trigger of a table or view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    pub table: QName,
    pub name: String,
    /// `pg_get_triggerdef`: `CREATE TRIGGER ... EXECUTE FUNCTION public.touch()`.
    pub definition: String,
    /// The signature of the function it runs.
    pub function: String,
}

/// Quotes an identifier only when PostgreSQL would (as `quote_ident` does).
pub fn ident(s: &str) -> String {
    let simple = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$')
        && RESERVED.binary_search(&s).is_err();
    if simple {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('"', "\"\""))
    }
}

/// A string literal ('it''s').
pub fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// PostgreSQL 16's keywords that are not unreserved (`pg_get_keywords()` where catcode <> 'U'),
/// sorted: an identifier spelled like one of these must be quoted.
const RESERVED: &[&str] = &[
    "all",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "asymmetric",
    "authorization",
    "between",
    "bigint",
    "binary",
    "bit",
    "boolean",
    "both",
    "case",
    "cast",
    "char",
    "character",
    "check",
    "coalesce",
    "collate",
    "collation",
    "column",
    "concurrently",
    "constraint",
    "create",
    "cross",
    "current_catalog",
    "current_date",
    "current_role",
    "current_schema",
    "current_time",
    "current_timestamp",
    "current_user",
    "dec",
    "decimal",
    "default",
    "deferrable",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "exists",
    "extract",
    "false",
    "fetch",
    "float",
    "for",
    "foreign",
    "freeze",
    "from",
    "full",
    "grant",
    "greatest",
    "group",
    "grouping",
    "having",
    "ilike",
    "in",
    "initially",
    "inner",
    "inout",
    "int",
    "integer",
    "intersect",
    "interval",
    "into",
    "is",
    "isnull",
    "join",
    "json_array",
    "json_arrayagg",
    "json_object",
    "json_objectagg",
    "lateral",
    "leading",
    "least",
    "left",
    "like",
    "limit",
    "localtime",
    "localtimestamp",
    "national",
    "natural",
    "nchar",
    "none",
    "normalize",
    "not",
    "notnull",
    "null",
    "nullif",
    "numeric",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "out",
    "outer",
    "overlaps",
    "overlay",
    "placing",
    "position",
    "precision",
    "primary",
    "real",
    "references",
    "returning",
    "right",
    "row",
    "select",
    "session_user",
    "setof",
    "similar",
    "smallint",
    "some",
    "substring",
    "symmetric",
    "system_user",
    "table",
    "tablesample",
    "then",
    "time",
    "timestamp",
    "to",
    "trailing",
    "treat",
    "trim",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "values",
    "varchar",
    "variadic",
    "verbose",
    "when",
    "where",
    "window",
    "with",
    "xmlattributes",
    "xmlconcat",
    "xmlelement",
    "xmlexists",
    "xmlforest",
    "xmlnamespaces",
    "xmlparse",
    "xmlpi",
    "xmlroot",
    "xmlserialize",
    "xmltable",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_only_when_needed() {
        assert!(RESERVED.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(ident("documents"), "documents");
        assert_eq!(ident("user"), "\"user\"");
        assert_eq!(ident("Mixed"), "\"Mixed\"");
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(ident("2x"), "\"2x\"");
        assert_eq!(QName::new("public", "order").sql(), "public.\"order\"");
    }

    #[test]
    fn only_schema_keeps_one_tenants_objects() {
        let mut s = Schema::default();
        for schema in ["tenant_a", "tenant_b", "public"] {
            let q = QName::new(schema, "items");
            s.schemas.insert(schema.into(), None);
            s.tables.insert(
                q.clone(),
                Table {
                    name: q.clone(),
                    columns: Vec::new(),
                    constraints: BTreeMap::new(),
                    indexes: BTreeMap::new(),
                    comment: None,
                    unlogged: false,
                },
            );
            s.unhandled.insert(
                ObjectKey {
                    kind: "policy".into(),
                    name: format!("p on {}", q.sql()),
                },
                String::new(),
            );
        }
        s.extensions.insert("vector".into(), "public".into());

        s.only_schema("tenant_b");

        assert_eq!(s.schemas.keys().collect::<Vec<_>>(), ["tenant_b"]);
        assert_eq!(
            s.tables.keys().map(QName::sql).collect::<Vec<_>>(),
            ["tenant_b.items"]
        );
        assert_eq!(
            s.unhandled
                .keys()
                .map(|k| k.name.as_str())
                .collect::<Vec<_>>(),
            ["p on tenant_b.items"]
        );
        assert!(s.extensions.is_empty());
    }
}
