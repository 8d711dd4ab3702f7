//! SQL text: the statement of each [`Change`], the model's objects as DDL, and the text of a
//! list of statements (each preceded by its `-- hazard:` comments). Pure functions: same input,
//! same bytes.

use super::change::*;
use super::model::*;

/// One rendered statement (without its `;`), what it does, and what it risks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    pub sql: String,
    /// A short description for summaries and drift reports ("add column public.t.c").
    pub what: String,
    pub hazards: Vec<Hazard>,
}

impl Op {
    pub fn new(sql: impl Into<String>, what: impl Into<String>) -> Op {
        Op {
            sql: sql.into(),
            what: what.into(),
            hazards: Vec::new(),
        }
    }

    pub fn hazard(mut self, kind: HazardKind, detail: impl Into<String>) -> Op {
        self.hazards.push(Hazard::new(kind, detail));
        self
    }
}

impl From<&Change> for Op {
    fn from(c: &Change) -> Op {
        Op {
            sql: change_sql(c),
            what: c.what(),
            hazards: c.hazards(),
        }
    }
}

/// The changes rendered, in order.
pub fn to_ops(changes: &[Change]) -> Vec<Op> {
    changes.iter().map(Op::from).collect()
}

/// The text of a list of changes (see [`render_ops`]).
pub fn render_changes(changes: &[Change]) -> String {
    render_ops(&to_ops(changes))
}

/// The statements, each preceded by its hazard comments, separated by blank lines.
pub fn render_ops(ops: &[Op]) -> String {
    render_ops_with(ops, &RowEstimates::new())
}

/// Table -> its estimated number of rows (`pg_class.reltuples` of the target database).
pub type RowEstimates = std::collections::BTreeMap<QName, i64>;

/// [`render_changes`] with the tables' sizes in the hazards.
pub fn render_changes_with(changes: &[Change], rows: &RowEstimates) -> String {
    render_ops_with(&to_ops(changes), rows)
}

/// A hazard's detail, with the size of its table when it is known and the hazard lasts as
/// long as the table is big ("... until the index is built (about 120,000 rows)").
pub fn hazard_detail(h: &Hazard, rows: &RowEstimates) -> String {
    let sized = matches!(
        h.kind,
        HazardKind::RewritesTable
            | HazardKind::BuildsIndex
            | HazardKind::ScansTable
            | HazardKind::DeletesData
    );
    match h.table.as_ref().and_then(|t| rows.get(t)) {
        Some(n) if sized && *n > 0 => format!("{} (about {} rows)", h.detail, thousands(*n)),
        _ => h.detail.clone(),
    }
}

/// 1234567 -> "1,234,567".
fn thousands(n: i64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// [`render_ops`] with the tables' sizes in the hazards.
pub fn render_ops_with(ops: &[Op], rows: &RowEstimates) -> String {
    let mut out = String::new();
    for (i, op) in ops.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        for h in &op.hazards {
            out.push_str(&format!(
                "-- hazard: {}: {}\n",
                h.kind,
                hazard_detail(h, rows)
            ));
        }
        out.push_str(op.sql.trim_end());
        out.push_str(";\n");
    }
    out
}

/// Largest and smallest values of a sequence's type.
fn type_bounds(data_type: &str) -> (i64, i64) {
    match data_type {
        "smallint" => (i16::MIN as i64, i16::MAX as i64),
        "integer" => (i32::MIN as i64, i32::MAX as i64),
        _ => (i64::MIN, i64::MAX),
    }
}

/// Sequence options that differ from PostgreSQL's defaults for the sequence's type (the type
/// itself is left out).
pub fn sequence_options(s: &Sequence) -> Vec<String> {
    let (tmin, tmax) = type_bounds(&s.data_type);
    let (dmin, dmax) = if s.increment > 0 {
        (1, tmax)
    } else {
        (tmin, -1)
    };
    let dstart = if s.increment > 0 { s.min } else { s.max };
    let mut o = Vec::new();
    if s.increment != 1 {
        o.push(format!("INCREMENT BY {}", s.increment));
    }
    if s.min != dmin {
        o.push(format!("MINVALUE {}", s.min));
    }
    if s.max != dmax {
        o.push(format!("MAXVALUE {}", s.max));
    }
    if s.start != dstart {
        o.push(format!("START WITH {}", s.start));
    }
    if s.cache != 1 {
        o.push(format!("CACHE {}", s.cache));
    }
    if s.cycle {
        o.push("CYCLE".into());
    }
    o
}

/// `GENERATED ALWAYS AS IDENTITY [(options)]`
pub fn identity_clause(id: &IdentityDef) -> String {
    let opts = sequence_options(&id.sequence);
    let mut s = format!("GENERATED {} AS IDENTITY", id.kind.sql());
    if !opts.is_empty() {
        s.push_str(&format!(" ({})", opts.join(" ")));
    }
    s
}

/// A column as written in CREATE TABLE / ADD COLUMN.
pub fn column_def(c: &Column) -> String {
    if let Some(serial) = c.serial {
        // the type creates the sequence, its ownership, the default and NOT NULL
        return format!("{} {serial}", ident(&c.name));
    }
    let mut s = format!("{} {}", ident(&c.name), c.type_sql);
    if let Some(col) = &c.collation {
        s.push_str(&format!(" COLLATE {col}"));
    }
    if let Some(g) = &c.generated {
        // pg_get_expr's `(id * 2)` needs no second pair of parentheses
        let g = if closes_at_end(g) {
            g.to_string()
        } else {
            format!("({g})")
        };
        s.push_str(&format!(" GENERATED ALWAYS AS {g} STORED"));
    } else if let Some(d) = &c.default {
        s.push_str(&format!(" DEFAULT {d}"));
    }
    if c.not_null && c.identity.is_none() {
        s.push_str(" NOT NULL");
    }
    if let Some(id) = &c.identity {
        s.push(' ');
        s.push_str(&identity_clause(id));
    }
    s
}

/// `ALTER TABLE t ADD CONSTRAINT name def [NOT VALID]` (or the inline form without ALTER).
pub fn constraint_def(k: &Constraint) -> String {
    let def = match k.kind {
        ConstraintKind::Check => readable_check(&k.definition),
        _ => k.definition.clone(),
    };
    let mut s = format!("CONSTRAINT {} {def}", ident(&k.name));
    if k.not_valid {
        s.push_str(" NOT VALID");
    }
    s
}

/// A CHECK definition as a person writes it, where the catalog's form can be simplified
/// without changing what PostgreSQL makes of it (it deparses the result back to the same
/// text, which validation confirms): `CHECK ((n > 0))` -> `CHECK (n > 0)`, and
/// `CHECK ((status = ANY (ARRAY['a'::text, 'b'::text])))` (or its varchar form) ->
/// `CHECK (status IN ('a', 'b'))`. Anything else is left as the catalog has it.
pub fn readable_check(def: &str) -> String {
    let Some(body) = def
        .strip_prefix("CHECK (")
        .and_then(|b| b.strip_suffix(')'))
    else {
        return def.to_string();
    };
    if !balanced(body) {
        return def.to_string();
    }
    let expr = unwrap_parens(body);
    format!(
        "CHECK ({})",
        in_list(expr).unwrap_or_else(|| expr.to_string())
    )
}

/// `(e)` -> `e` when the first parenthesis closes at the end; quotes are skipped.
pub fn unwrap_parens(e: &str) -> &str {
    match e.strip_prefix('(').and_then(|x| x.strip_suffix(')')) {
        Some(inner) if closes_at_end(e) => inner,
        _ => e,
    }
}

/// Whether `e`'s parentheses and quotes balance.
fn balanced(e: &str) -> bool {
    depths(e).is_some_and(|d| d.last().copied().unwrap_or(0) == 0)
}

/// Whether the parenthesis opening `e` closes at its last character (and nowhere before).
fn closes_at_end(e: &str) -> bool {
    match depths(e) {
        Some(d) => d.iter().rev().skip(1).all(|x| *x > 0) && d.last() == Some(&0),
        None => false,
    }
}

/// The parenthesis depth after each character outside quotes; `None` when it goes negative or
/// a quote is left open.
fn depths(e: &str) -> Option<Vec<i32>> {
    let mut out = Vec::new();
    let (mut depth, mut quote) = (0i32, None::<char>);
    for c in e.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == '(' => depth += 1,
            None if c == ')' => depth -= 1,
            None => {}
        }
        if depth < 0 {
            return None;
        }
        out.push(depth);
    }
    quote.is_none().then_some(out)
}

/// `col = ANY (ARRAY['a'::text, ...])` and `(col)::text = ANY ((ARRAY['a'::character
/// varying, ...])::text[])` -> `col IN ('a', ...)`, for a plain column name.
fn in_list(expr: &str) -> Option<String> {
    let (lhs, rhs) = expr.split_once(" = ANY (")?;
    let (col, lits, cast) = if let Some(inner) = lhs
        .strip_prefix('(')
        .and_then(|l| l.strip_suffix(")::text"))
    {
        let list = rhs.strip_prefix("(ARRAY[")?.strip_suffix("])::text[])")?;
        (inner, list, "::character varying")
    } else {
        (
            lhs,
            rhs.strip_prefix("ARRAY[")?.strip_suffix("])")?,
            "::text",
        )
    };
    let plain = !col.is_empty()
        && col
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && ident(col) == col;
    if !plain {
        return None;
    }
    let mut values = Vec::new();
    let mut rest = lits;
    loop {
        // one 'literal'::type ('' inside a literal is a quote)
        let body = rest.strip_prefix('\'')?;
        let mut end = None;
        let chars: Vec<(usize, char)> = body.char_indices().collect();
        let mut i = 0;
        while i < chars.len() {
            if chars[i].1 == '\'' {
                if chars.get(i + 1).is_some_and(|(_, c)| *c == '\'') {
                    i += 2;
                    continue;
                }
                end = Some(chars[i].0);
                break;
            }
            i += 1;
        }
        let end = end?;
        values.push(format!("'{}'", &body[..end]));
        rest = body[end + 1..].strip_prefix(cast)?;
        if rest.is_empty() {
            break;
        }
        rest = rest.strip_prefix(", ")?;
    }
    Some(format!("{col} IN ({})", values.join(", ")))
}

/// CREATE TABLE with its columns and its constraints other than foreign keys (those are added
/// once every table exists).
pub fn create_table(t: &Table) -> String {
    let mut lines: Vec<String> = t.columns.iter().map(column_def).collect();
    for k in t.constraints.values() {
        if k.kind != ConstraintKind::ForeignKey {
            lines.push(constraint_def(k));
        }
    }
    format!(
        "CREATE {}TABLE {} (\n    {}\n)",
        if t.unlogged { "UNLOGGED " } else { "" },
        t.name.sql(),
        lines.join(",\n    ")
    )
}

fn param_value(v: &str) -> String {
    let simple_number = !v.is_empty()
        && v.chars().all(|c| c.is_ascii_digit() || c == '.')
        && v.chars().next().is_some_and(|c| c.is_ascii_digit());
    let simple_word = v.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && v.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if simple_number || simple_word {
        v.to_string()
    } else {
        literal(v)
    }
}

/// ` WITH (m = 16, ef_construction = 64)`, or nothing.
pub fn with_params(params: &[(String, String)]) -> String {
    if params.is_empty() {
        return String::new();
    }
    format!(
        " WITH ({})",
        params
            .iter()
            .map(|(k, v)| format!("{} = {}", k, param_value(v)))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// CREATE INDEX from the model (the body holds the table, method, keys and INCLUDE).
pub fn create_index(ix: &Index, concurrently: bool) -> String {
    let mut s = format!(
        "CREATE {}INDEX {}{} ON {}{}",
        if ix.unique { "UNIQUE " } else { "" },
        if concurrently { "CONCURRENTLY " } else { "" },
        ident(&ix.name),
        ix.body,
        with_params(&ix.params)
    );
    if let Some(p) = &ix.predicate {
        s.push_str(&format!(" WHERE {p}"));
    }
    s
}

/// `CREATE [MATERIALIZED] VIEW`.
pub fn create_view(v: &View) -> String {
    let def = v.definition.trim().trim_end_matches(';').trim_end();
    let opts = if v.options.is_empty() {
        String::new()
    } else {
        format!(" WITH ({})", v.options.join(", "))
    };
    format!(
        "CREATE {}VIEW {}{opts} AS\n{def}",
        if v.materialized { "MATERIALIZED " } else { "" },
        v.name.sql()
    )
}

pub fn comment_value(c: &Option<String>) -> String {
    match c {
        Some(t) => literal(t),
        None => "NULL".into(),
    }
}

impl Change {
    /// The statement (without its `;`): [`change_sql`]. It is written here, with the rest of
    /// the rendering, so that the changes do not depend on their SQL's module.
    pub fn sql(&self) -> String {
        change_sql(self)
    }
}

/// The statement of one change (without its `;`).
pub fn change_sql(c: &Change) -> String {
    use Change::*;
    match c {
        CreateSchema { name } => format!("CREATE SCHEMA {}", ident(name)),
        DropSchema { name } => format!("DROP SCHEMA {}", ident(name)),
        CreateExtension { name, schema } => create_extension(name, schema),
        MoveExtension { name, schema } => move_extension(name, schema),
        DropExtension { name } => format!("DROP EXTENSION {}", ident(name)),
        Comment { on, comment } => comment_on(on, comment),
        CreateEnum { name, values, .. } => create_enum(name, values),
        AddEnumValue {
            enum_name,
            value,
            position,
        } => add_enum_value(enum_name, value, position),
        RenameEnumAside { name, aside } => rename_type(name, aside),
        MoveColumnToEnum {
            column,
            type_sql,
            is_array,
            ..
        } => move_to_enum(column, type_sql, *is_array),
        DropEnum { name, .. } => format!("DROP TYPE {}", name.sql()),
        CreateSequence { sequence } => create_sequence(sequence),
        AlterSequence { sequence } => alter_sequence(sequence),
        SetSequenceOwner { sequence, owner } => sequence_owner(sequence, owner),
        DropSequence { name } => format!("DROP SEQUENCE {}", name.sql()),
        CreateTable { table } => create_table(table),
        DropTable { name } => format!("DROP TABLE {}", name.sql()),
        RenameTable { from, to, .. } => alter_table(from, &format!("RENAME TO {}", ident(to))),
        SetLogged { table, unlogged } => alter_table(table, logged(*unlogged)),
        AddColumn { table, column } => {
            alter_table(table, &format!("ADD COLUMN {}", column_def(column)))
        }
        DropColumn { column: c, .. } => {
            alter_table(&c.table, &format!("DROP COLUMN {}", ident(&c.column)))
        }
        RenameColumn {
            table, from, to, ..
        } => rename_column(table, from, to),
        AlterColumnType { column, from, to } => {
            alter_column(column, &column_type(column, from, to))
        }
        DropDefault { column, .. } => alter_column(column, "DROP DEFAULT"),
        SetDefault {
            column, default, ..
        } => alter_column(column, &format!("SET DEFAULT {default}")),
        DropNotNull { column } => alter_column(column, "DROP NOT NULL"),
        SetNotNull { column, .. } => alter_column(column, "SET NOT NULL"),
        AddIdentity { column, identity } => add_identity(column, identity),
        AlterIdentity { column, options } => alter_identity(column, options),
        DropIdentity { column } => alter_column(column, "DROP IDENTITY"),
        DropExpression { column } => alter_column(column, "DROP EXPRESSION"),
        AddConstraint {
            table, constraint, ..
        } => alter_table(table, &format!("ADD {}", constraint_def(constraint))),
        DropConstraint { table, name, .. } => {
            alter_table(table, &format!("DROP CONSTRAINT {}", ident(name)))
        }
        RenameConstraint { table, from, to } => rename_constraint(table, from, to),
        ValidateConstraint { table, name, .. } => {
            alter_table(table, &format!("VALIDATE CONSTRAINT {}", ident(name)))
        }
        CreateIndex {
            index,
            concurrently,
            ..
        } => create_index(index, *concurrently),
        DropIndex {
            table,
            name,
            concurrently,
        } => drop_index(table, name, *concurrently),
        RenameIndex { table, from, to } => rename_index(table, from, to),
        CreateView { view } => create_view(view),
        DropView {
            name, materialized, ..
        } => drop_view(name, *materialized),
        // pg_get_functiondef writes CREATE OR REPLACE, which creates as well
        CreateFunction { function, .. } => function.definition.clone(),
        DropFunction {
            signature,
            procedure,
        } => format!(
            "DROP {} {signature}",
            if *procedure { "PROCEDURE" } else { "FUNCTION" }
        ),
        CreateTrigger { trigger, .. } => trigger.definition.clone(),
        DropTrigger { table, name } => format!("DROP TRIGGER {} ON {table}", ident(name)),
    }
}

fn create_extension(name: &str, schema: &str) -> String {
    format!(
        "CREATE EXTENSION IF NOT EXISTS {} WITH SCHEMA {}",
        ident(name),
        ident(schema)
    )
}

fn move_extension(name: &str, schema: &str) -> String {
    format!(
        "ALTER EXTENSION {} SET SCHEMA {}",
        ident(name),
        ident(schema)
    )
}

fn comment_on(on: &CommentTarget, comment: &Option<String>) -> String {
    format!(
        "COMMENT ON {} IS {}",
        comment_target(on),
        comment_value(comment)
    )
}

fn add_enum_value(n: &QName, value: &str, position: &Option<EnumPosition>) -> String {
    let pos = match position {
        Some(EnumPosition::Before(x)) => format!(" BEFORE {}", literal(x)),
        Some(EnumPosition::After(x)) => format!(" AFTER {}", literal(x)),
        None => String::new(),
    };
    format!("ALTER TYPE {} ADD VALUE {}{pos}", n.sql(), literal(value))
}

fn rename_type(n: &QName, to: &str) -> String {
    format!("ALTER TYPE {} RENAME TO {}", n.sql(), ident(to))
}

/// The enum recipe's move of a column to the new type, through text.
fn move_to_enum(c: &ColumnRef, type_sql: &str, is_array: bool) -> String {
    let cast = if is_array { "text[]" } else { "text" };
    let cn = ident(&c.column);
    alter_column(
        c,
        &format!("TYPE {type_sql} USING {cn}::{cast}::{type_sql}"),
    )
}

fn alter_sequence(s: &Sequence) -> String {
    format!("ALTER SEQUENCE {} {}", s.name.sql(), s.options_sql())
}

fn sequence_owner(sequence: &QName, owner: &Option<ColumnRef>) -> String {
    format!(
        "ALTER SEQUENCE {} OWNED BY {}",
        sequence.sql(),
        owner_sql(owner)
    )
}

/// `ALTER TABLE t rest`.
fn alter_table(t: &QName, rest: &str) -> String {
    format!("ALTER TABLE {} {rest}", t.sql())
}

fn logged(unlogged: bool) -> &'static str {
    if unlogged {
        "SET UNLOGGED"
    } else {
        "SET LOGGED"
    }
}

fn rename_column(t: &QName, from: &str, to: &str) -> String {
    alter_table(
        t,
        &format!("RENAME COLUMN {} TO {}", ident(from), ident(to)),
    )
}

fn rename_constraint(t: &QName, from: &str, to: &str) -> String {
    alter_table(
        t,
        &format!("RENAME CONSTRAINT {} TO {}", ident(from), ident(to)),
    )
}

fn add_identity(c: &ColumnRef, identity: &IdentityDef) -> String {
    alter_column(c, &format!("ADD {}", identity_clause(identity)))
}

fn alter_identity(c: &ColumnRef, options: &[IdentityOption]) -> String {
    let parts: Vec<String> = options.iter().map(identity_option).collect();
    alter_column(c, &parts.join(" "))
}

fn drop_index(t: &QName, name: &str, concurrently: bool) -> String {
    format!(
        "DROP INDEX {}{}",
        if concurrently { "CONCURRENTLY " } else { "" },
        QName::new(t.schema.clone(), name).sql()
    )
}

fn rename_index(t: &QName, from: &str, to: &str) -> String {
    format!(
        "ALTER INDEX {} RENAME TO {}",
        QName::new(t.schema.clone(), from).sql(),
        ident(to)
    )
}

fn drop_view(n: &QName, materialized: bool) -> String {
    format!(
        "DROP {}VIEW {}",
        if materialized { "MATERIALIZED " } else { "" },
        n.sql()
    )
}

/// `ALTER TABLE t ALTER COLUMN c rest`.
fn alter_column(c: &ColumnRef, rest: &str) -> String {
    format!(
        "ALTER TABLE {} ALTER COLUMN {} {rest}",
        c.table.sql(),
        ident(&c.column)
    )
}

/// `TYPE t [COLLATE c] [USING col::t]`: USING only when the type itself changes.
fn column_type(c: &ColumnRef, from: &ColumnType, to: &ColumnType) -> String {
    let collate = match (&from.collation, &to.collation) {
        (_, Some(c)) => format!(" COLLATE {c}"),
        (Some(_), None) => " COLLATE pg_catalog.\"default\"".into(),
        (None, None) => String::new(),
    };
    let using = if from.type_sql != to.type_sql {
        format!(" USING {}::{}", ident(&c.column), to.type_sql)
    } else {
        String::new()
    };
    format!("TYPE {}{collate}{using}", to.type_sql)
}

fn identity_option(o: &IdentityOption) -> String {
    match o {
        IdentityOption::Generated(kind) => format!("SET GENERATED {}", kind.sql()),
        IdentityOption::Increment(n) => format!("SET INCREMENT BY {n}"),
        IdentityOption::MinValue(n) => format!("SET MINVALUE {n}"),
        IdentityOption::MaxValue(n) => format!("SET MAXVALUE {n}"),
        IdentityOption::Start(n) => format!("SET START WITH {n}"),
        IdentityOption::Cache(n) => format!("SET CACHE {n}"),
        IdentityOption::Cycle(true) => "SET CYCLE".into(),
        IdentityOption::Cycle(false) => "SET NO CYCLE".into(),
    }
}

/// `SCHEMA s`, `TABLE t`, `COLUMN t.c`, `[MATERIALIZED ]VIEW v`, `INDEX i`.
fn comment_target(on: &CommentTarget) -> String {
    match on {
        CommentTarget::Schema(s) => format!("SCHEMA {}", ident(s)),
        CommentTarget::Table(t) => format!("TABLE {}", t.sql()),
        CommentTarget::Column(c) => format!("COLUMN {}", c.sql()),
        CommentTarget::View { name, materialized } => format!(
            "{} {}",
            if *materialized {
                "MATERIALIZED VIEW"
            } else {
                "VIEW"
            },
            name.sql()
        ),
        CommentTarget::Index(i) => format!("INDEX {}", i.sql()),
    }
}

/// CREATE TYPE ... AS ENUM.
pub fn create_enum(name: &QName, values: &[String]) -> String {
    let vals: Vec<String> = values.iter().map(|v| literal(v)).collect();
    format!("CREATE TYPE {} AS ENUM ({})", name.sql(), vals.join(", "))
}

/// CREATE SEQUENCE with the options that differ from the defaults.
pub fn create_sequence(s: &Sequence) -> String {
    let mut sql = format!("CREATE SEQUENCE {}", s.name.sql());
    if s.data_type != "bigint" {
        sql.push_str(&format!(" AS {}", s.data_type));
    }
    for o in sequence_options(s) {
        sql.push(' ');
        sql.push_str(&o);
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_expressions_lose_redundant_parentheses_and_casts_only_where_safe() {
        assert_eq!(readable_check("CHECK ((n > 0))"), "CHECK (n > 0)");
        assert_eq!(
            readable_check("CHECK (((a > 0) AND (b > 0)))"),
            "CHECK ((a > 0) AND (b > 0))"
        );
        // the outer pair belongs to the first operand only: kept
        assert_eq!(
            readable_check("CHECK ((a > 0) OR (b > 0))"),
            "CHECK ((a > 0) OR (b > 0))"
        );
        assert_eq!(
            readable_check("CHECK ((status = ANY (ARRAY['draft'::text, 'it''s'::text])))"),
            "CHECK (status IN ('draft', 'it''s'))"
        );
        assert_eq!(
            readable_check("CHECK (((kind)::text = ANY ((ARRAY['a'::character varying, 'b'::character varying])::text[])))"),
            "CHECK (kind IN ('a', 'b'))"
        );
        // other casts, quoted names, a paren inside a literal: as the catalog has them
        assert_eq!(
            readable_check("CHECK ((\"Kind\" = ANY (ARRAY['a'::text])))"),
            "CHECK (\"Kind\" = ANY (ARRAY['a'::text]))"
        );
        assert_eq!(
            readable_check("CHECK ((price > (0)::numeric))"),
            "CHECK (price > (0)::numeric)"
        );
        assert_eq!(
            readable_check("CHECK ((s <> ')'::text))"),
            "CHECK (s <> ')'::text)"
        );
        assert_eq!(
            readable_check("CHECK ((n > 0)) NO INHERIT"),
            "CHECK ((n > 0)) NO INHERIT"
        );
    }

    #[test]
    fn hazards_that_last_as_long_as_the_table_is_big_say_its_size() {
        let t = QName::new("public", "chunks");
        let rows: RowEstimates = [(t.clone(), 1_234_567)].into_iter().collect();
        let build = Hazard {
            table: Some(t.clone()),
            ..Hazard::new(
                HazardKind::BuildsIndex,
                "writes wait until the index is built",
            )
        };
        assert_eq!(
            hazard_detail(&build, &rows),
            "writes wait until the index is built (about 1,234,567 rows)"
        );
        // a brief lock does not depend on the size; an unknown table has none
        let brief = Hazard {
            table: Some(t),
            ..Hazard::new(HazardKind::AccessExclusiveLock, "briefly")
        };
        assert_eq!(hazard_detail(&brief, &rows), "briefly");
        assert_eq!(hazard_detail(&build, &RowEstimates::new()), build.detail);
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
    }

    fn seq(t: &str, start: i64, inc: i64, min: i64, max: i64) -> Sequence {
        Sequence {
            name: QName::new("public", "s"),
            data_type: t.into(),
            start,
            increment: inc,
            min,
            max,
            cache: 1,
            cycle: false,
            owned_by: None,
        }
    }

    #[test]
    fn default_sequence_options_are_left_out() {
        assert!(sequence_options(&seq("bigint", 1, 1, 1, i64::MAX)).is_empty());
        assert!(sequence_options(&seq("integer", 1, 1, 1, i32::MAX as i64)).is_empty());
        assert_eq!(
            sequence_options(&seq("integer", 5, 1, 1, i32::MAX as i64)),
            vec!["START WITH 5"]
        );
        assert_eq!(
            sequence_options(&seq("integer", -1, -1, i32::MIN as i64, -1)),
            vec!["INCREMENT BY -1"]
        );
    }

    #[test]
    fn index_with_parameters_and_predicate() {
        let ix = Index {
            name: "items_emb".into(),
            unique: false,
            method: "hnsw".into(),
            body: "public.items USING hnsw (emb public.vector_cosine_ops)".into(),
            params: vec![
                ("m".into(), "16".into()),
                ("ef_construction".into(), "64".into()),
            ],
            predicate: Some("(emb IS NOT NULL)".into()),
            columns: vec!["emb".into()],
            comment: None,
        };
        assert_eq!(
            create_index(&ix, true),
            "CREATE INDEX CONCURRENTLY items_emb ON public.items USING hnsw (emb public.vector_cosine_ops) WITH (m = 16, ef_construction = 64) WHERE (emb IS NOT NULL)"
        );
    }

    #[test]
    fn ops_render_hazards_first() {
        let ops = vec![
            Op::new("DROP TABLE public.t", "drop table public.t")
                .hazard(HazardKind::DeletesData, "every row of public.t is lost"),
            Op::new("CREATE SCHEMA s", "create schema s"),
        ];
        assert_eq!(render_ops(&ops), "-- hazard: deletes data: every row of public.t is lost\nDROP TABLE public.t;\n\nCREATE SCHEMA s;\n");
    }
}
