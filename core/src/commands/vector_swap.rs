//! `migrate-revision --vector-swap <table>.<column> --to <type> [--run <command>]`: changing
//! the embedding model of a live table as a chain of ordinary revisions, each safe to
//! interrupt and run again, each reviewed like any other:
//!
//! 1. **expand** — a new nullable column of the new type (no rewrite) and a trigger that keeps
//!    the rows written during the swap right: with an SQL fill it computes the new value from
//!    the old one on every insert and on every change of the old column; with a program fill
//!    it sets the new value to NULL when the old one changes (an insert keeps what the
//!    application wrote: NULL, or its own new embedding);
//! 2. **fill** — a backfill of the new column over the key: SQL when the new value derives
//!    from the old (`vector(n)` → `halfvec(n)`, `bit(n)` by `binary_quantize`), else the
//!    program of `--run` (the re-embedding worker, handed key ranges with their checkpoints);
//!    it fills only rows whose new value is missing, so a second run over a range is cheap;
//! 3. **catch-up** (program fill only) — the same backfill again over the key range as it is
//!    then: the rows inserted while the fill ran, and those whose old value changed (the
//!    trigger emptied their new value);
//! 4. **index** — the new column's ANN index, `CREATE INDEX CONCURRENTLY` with the method,
//!    operator class (for the new type) and parameters of the old one; the run plans its
//!    memory and workers like any vector build ([`crate::vector`]);
//! 5. **check** — `-- check: recall` of the new index against exact search: the run stops
//!    there when it is below the threshold;
//! 6. **contract** (`-- phase: contract`, run only by `migrate-up --contract`) — refuses while
//!    a row lacks its new value, then in one short transaction drops the trigger and renames
//!    the columns and indexes (the new column takes the old one's name); its down section
//!    renames them back while the old column exists;
//! 7. **drop** (`-- phase: contract`) — drops the old column (and its index with it); no way
//!    back from there, so no down section.
//!
//! With `--index-only` no data changes: a half-precision or binary-quantized **expression
//! index** over the existing column (`(embedding::halfvec(1536)) halfvec_cosine_ops`), its
//! recall check, and a contract revision that drops the old index once the queries use the
//! cast.
//!
//! [`chain`] computes the revisions from what the database says of the column ([`Facts`],
//! read by [`read_facts`]): a pure function, tested without a database.

use crate::error::{Error, Result};
use postgres::{Client, SimpleQueryMessage};

/// What to swap, as `migrate-revision` takes it.
#[derive(Debug, Clone)]
pub struct SwapOptions {
    /// `table.column` or `schema.table.column`.
    pub target: String,
    /// The new type: `halfvec(1536)`, `vector(256)`, `bit(1536)`.
    pub to: String,
    /// The re-embedding worker (`--run`): a backfill program step.
    pub run: Option<String>,
    /// `--index-only`: an expression index over the existing column, no new column.
    pub index_only: bool,
    /// The recall the check step needs (default 0.9).
    pub threshold: f64,
    /// The fill's first range width (`batch=N`).
    pub batch: u64,
}

impl SwapOptions {
    pub fn new(target: &str, to: &str) -> SwapOptions {
        SwapOptions {
            target: target.to_string(),
            to: to.to_string(),
            run: None,
            index_only: false,
            threshold: 0.9,
            batch: 1000,
        }
    }
}

/// A pgvector type with its dimensions: `vector(384)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VectorType {
    pub kind: Kind,
    pub dims: u32,
}

/// The pgvector types a swap knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Vector,
    Halfvec,
    Bit,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Vector => "vector",
            Kind::Halfvec => "halfvec",
            Kind::Bit => "bit",
        }
    }

    /// The most dimensions an HNSW or IVFFlat index takes for this type.
    fn index_limit(self) -> u32 {
        match self {
            Kind::Vector => 2000,
            Kind::Halfvec => 4000,
            Kind::Bit => 64000,
        }
    }
}

impl std::fmt::Display for VectorType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}({})", self.kind.name(), self.dims)
    }
}

impl VectorType {
    /// `vector(384)`, `halfvec(1536)`, `bit(1536)` (as `format_type` writes them, or a user);
    /// None for anything else.
    pub fn parse(s: &str) -> Option<VectorType> {
        let s = s.trim().to_ascii_lowercase();
        let s = s.rsplit('.').next().unwrap_or(&s).replace(' ', "");
        let (name, rest) = s.split_once('(')?;
        let dims: u32 = rest.strip_suffix(')')?.parse().ok()?;
        let kind = match name.trim_matches('"') {
            "vector" => Kind::Vector,
            "halfvec" => Kind::Halfvec,
            "bit" => Kind::Bit,
            _ => return None,
        };
        (dims > 0).then_some(VectorType { kind, dims })
    }

    /// The SQL computing a value of this type from `expr` of type `from`, when one exists:
    /// a cast between `vector` and `halfvec` of the same dimensions, `binary_quantize` to
    /// `bit` of the same dimensions.
    fn derive_from(&self, from: VectorType, expr: &str) -> Option<String> {
        if from.dims != self.dims || from == *self {
            return None;
        }
        match (from.kind, self.kind) {
            (Kind::Vector | Kind::Halfvec, Kind::Halfvec | Kind::Vector) => {
                Some(format!("{expr}::{self}"))
            }
            (Kind::Vector | Kind::Halfvec, Kind::Bit) => {
                Some(format!("binary_quantize({expr})::{self}"))
            }
            _ => None,
        }
    }

    /// Whether values of this type derive from values of `from` in SQL (a cast, a
    /// quantization): a swap needs no program then.
    pub fn derives_from(&self, from: VectorType) -> bool {
        self.derive_from(from, "x").is_some()
    }

    /// The operator class for this type that serves what `old` (an operator class of the old
    /// column) serves: `vector_cosine_ops` → `halfvec_cosine_ops`; to `bit`, Hamming distance.
    fn opclass_like(&self, old: &str) -> Result<String> {
        let old = old.rsplit('.').next().unwrap_or(old);
        if self.kind == Kind::Bit {
            return Ok("bit_hamming_ops".to_string());
        }
        let suffix = ["_l2_ops", "_cosine_ops", "_ip_ops", "_l1_ops"]
            .into_iter()
            .find(|s| old.ends_with(s))
            .ok_or_else(|| {
                Error::usage(format!(
                    "the operator class {old} has no counterpart for {}",
                    self.kind.name()
                ))
                .with_hint("build the new index by hand in a revision of its own")
            })?;
        Ok(format!("{}{suffix}", self.kind.name()))
    }
}

/// An ANN index over the column, as the catalog has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexFacts {
    /// Its name (unqualified).
    pub name: String,
    /// `hnsw` or `ivfflat`.
    pub method: String,
    pub opclass: String,
    /// `WITH (...)` options, `m=16`, as `pg_class.reloptions` has them.
    pub options: Vec<String>,
    /// `pg_get_indexdef`: what the down section of a dropping revision builds again.
    pub definition: String,
    /// Its first key is the column itself (not an expression over it).
    pub on_column: bool,
}

/// What the database says of the column: read by [`read_facts`], used by [`chain`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// The table as `regclass` prints it (schema-qualified when not on the search path).
    pub table: String,
    /// The table's bare name (for the names of the trigger and function).
    pub table_name: String,
    pub column: String,
    /// The column's type, `format_type`.
    pub column_type: String,
    /// The table's single-column integer or timestamp primary key (or unique key), the
    /// backfill's key; None when it has none.
    pub key: Option<String>,
    pub indexes: Vec<IndexFacts>,
    /// The database's pgvector version (`pg_extension.extversion`).
    pub pgvector: String,
    /// The types and functions this pgvector has: `halfvec` and `binary_quantize` came in 0.7.
    pub has_halfvec: bool,
    pub has_binary_quantize: bool,
}

/// One revision of the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// The message's tail: `expand`, `fill`, ...
    pub step: &'static str,
    pub message: String,
    pub transactional: bool,
    /// Header keys after `transactional`.
    pub headers: Vec<(String, String)>,
    pub up: String,
    /// None: no down section (the revision cannot be downgraded).
    pub down: Option<String>,
}

fn ident(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
    {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('"', "\"\""))
    }
}

/// `base` with `suffix`, shortened to PostgreSQL's 63 bytes.
fn name_with(base: &str, suffix: &str) -> String {
    let keep = 63usize.saturating_sub(suffix.len());
    let mut b = base.to_string();
    while b.len() > keep {
        b.pop();
    }
    format!("{b}{suffix}")
}

/// The revisions of the swap, in chain order.
pub fn chain(f: &Facts, o: &SwapOptions) -> Result<Vec<Part>> {
    let from = VectorType::parse(&f.column_type).ok_or_else(|| {
        Error::usage(format!(
            "--vector-swap {}: {}.{} is {}, not a vector, halfvec or bit column",
            o.target, f.table, f.column, f.column_type
        ))
        .with_hint("name a pgvector column (vector(n), halfvec(n), bit(n))")
    })?;
    let to = VectorType::parse(&o.to).ok_or_else(|| {
        Error::usage(format!("--to {}: not a pgvector type with dimensions", o.to))
            .with_hint("write the new type with its dimensions: --to halfvec(1536), --to vector(256), --to bit(1536)")
    })?;
    if to == from && (o.run.is_none() || o.index_only) {
        return Err(Error::usage(format!(
            "--vector-swap {}: the column already is {to}",
            o.target
        ))
        .with_hint("a new model with the same type and dimensions is a re-embedding: give the same --to with --run and the worker"));
    }
    chain_checked(f, o, from, to)
}

fn chain_checked(
    f: &Facts,
    o: &SwapOptions,
    from: VectorType,
    to: VectorType,
) -> Result<Vec<Part>> {
    let missing = match to.kind {
        Kind::Halfvec if !f.has_halfvec => Some("type halfvec"),
        Kind::Bit if !f.has_binary_quantize && o.run.is_none() => Some("function binary_quantize"),
        _ => None,
    };
    if let Some(what) = missing {
        return Err(Error::usage(format!(
            "--to {to}: pgvector {} on this database has no {what} (pgvector 0.7 and later have)",
            f.pgvector
        ))
        .with_hint("upgrade pgvector (ALTER EXTENSION vector UPDATE after installing 0.7+), or choose another --to"));
    }
    if !(0.0..=1.0).contains(&o.threshold) {
        return Err(Error::usage(format!(
            "--recall-threshold {}: a share between 0 and 1",
            o.threshold
        )));
    }
    let ann: Vec<&IndexFacts> = f.indexes.iter().filter(|i| i.on_column).collect();
    if to.dims > to.kind.index_limit() && !ann.is_empty() {
        return Err(Error::usage(format!(
            "--to {to}: an HNSW or IVFFlat index takes at most {} dimensions of {}",
            to.kind.index_limit(),
            to.kind.name()
        ))
        .with_hint("halfvec indexes take up to 4000 dimensions, bit up to 64000"));
    }
    if o.index_only {
        return index_only(f, o, from, to, &ann);
    }
    let key = f.key.as_deref().ok_or_else(|| {
        Error::usage(format!(
            "--vector-swap {}: {} has no single-column integer or timestamp primary key (or unique key) to fill it range by range",
            o.target, f.table
        ))
        .with_hint("add one first (e.g. an identity column with a unique index built CONCURRENTLY), or use --index-only")
    })?;
    let derived = to.derive_from(from, &format!("NEW.{}", ident(&f.column)));
    if o.run.is_none() && derived.is_none() {
        return Err(Error::usage(format!(
            "--vector-swap {}: the new values ({to}) cannot be computed from the old ones ({from}) in SQL",
            o.target
        ))
        .with_hint("pass --run '<command>': the program that computes the new embeddings (a backfill worker, docs/vector-swap.md)"));
    }
    let t = &f.table;
    let col = ident(&f.column);
    let next_name = name_with(&f.column, "_next");
    let next = ident(&next_name);
    let old_name = name_with(&f.column, "_old");
    let old = ident(&old_name);
    let func = ident(&name_with(
        &format!("{}_{}", f.table_name, f.column),
        "_swap",
    ));
    let label = format!("vector swap {}.{} {from} -> {to}", f.table_name, f.column);
    let program = o.run.is_some();
    let body = match (&o.run, &derived) {
        (None, Some(expr)) => format!(
            "    -- an SQL fill: every row written during the swap gets its new value here\n    NEW.{next} := {expr};\n"
        ),
        _ => format!(
            "    -- a program fill: a changed old value empties the new one, which the fill's\n    -- catch-up (or the application) computes again\n    IF TG_OP = 'UPDATE' AND NEW.{col} IS DISTINCT FROM OLD.{col}\n       AND NEW.{next} IS NOT DISTINCT FROM OLD.{next} THEN\n        NEW.{next} := NULL;\n    END IF;\n"
        ),
    };
    let create_trigger = format!(
        "CREATE FUNCTION {func}() RETURNS trigger LANGUAGE plpgsql AS $swap$\nBEGIN\n{body}    RETURN NEW;\nEND\n$swap$;\nCREATE TRIGGER {func} BEFORE INSERT OR UPDATE OF {col} ON {t}\n    FOR EACH ROW EXECUTE FUNCTION {func}();\n"
    );
    let drop_trigger =
        format!("DROP TRIGGER IF EXISTS {func} ON {t};\nDROP FUNCTION IF EXISTS {func}();\n");
    let mut parts = vec![Part {
        step: "expand",
        message: format!("expand: {label}"),
        transactional: true,
        headers: Vec::new(),
        up: format!(
            "-- The new column (nullable, no default: no rewrite) and the trigger that keeps rows\n-- written during the swap right.\nALTER TABLE {t} ADD COLUMN {next} {to};\n{create_trigger}"
        ),
        down: Some(format!("{drop_trigger}ALTER TABLE {t} DROP COLUMN IF EXISTS {next};\n")),
    }];
    let missing = format!("{next} IS NULL AND {col} IS NOT NULL");
    let keyi = ident(key);
    // without --run the values derive (checked above)
    let sql_fill = to.derive_from(from, &col).unwrap_or_default();
    let fill = |step: &'static str, why: &str| -> Part {
        let up = match &o.run {
            Some(cmd) => format!(
                "-- {why}\n-- The worker computes {next} for the rows of each range where it is NULL\n-- (WHERE {key} >= start AND {key} < end AND {missing}).\n-- run: {cmd}\n"
            ),
            None => format!(
                "UPDATE {t} SET {next} = {sql_fill}\n WHERE {keyi} >= :start AND {keyi} < :end AND {missing};\n"
            ),
        };
        Part {
            step,
            message: format!("{step}: {label}"),
            transactional: true,
            headers: vec![(
                "backfill".to_string(),
                format!("{}.{} batch={}", f.table, key, o.batch),
            )],
            up,
            down: Some(format!(
                "-- nothing: the expand revision's down section drops {next}\n"
            )),
        }
    };
    parts.push(fill(
        "fill",
        "Every row present when the fill starts, range by range of the key.",
    ));
    if program {
        parts.push(fill(
            "catch-up",
            "The rows inserted while the fill ran, and those whose old value changed since.",
        ));
    }
    let renames_up;
    let renames_down;
    if let Some(ix) = ann.first() {
        let new_index = name_with(&ix.name, "_next");
        let old_index = name_with(&ix.name, "_old");
        let opclass = to.opclass_like(&ix.opclass)?;
        let with = if ix.options.is_empty() {
            String::new()
        } else {
            format!(" WITH ({})", ix.options.join(", "))
        };
        parts.push(Part {
            step: "index",
            message: format!("index: {label}"),
            transactional: false,
            headers: Vec::new(),
            up: format!(
                "-- Built CONCURRENTLY like {} ({} {}{with}); migrate-up plans its memory and workers.\nCREATE INDEX CONCURRENTLY {} ON {t} USING {} ({next} {opclass}){with};\n",
                ix.name, ix.method, ix.opclass, ident(&new_index), ix.method
            ),
            down: Some(format!("DROP INDEX CONCURRENTLY IF EXISTS {};\n", ident(&new_index))),
        });
        parts.push(Part {
            step: "check",
            message: format!("check recall: {label}"),
            transactional: true,
            headers: vec![(
                "check".to_string(),
                format!(
                    "recall {}.{} threshold={} index={}",
                    f.table, next_name, o.threshold, new_index
                ),
            )],
            up: format!(
                "-- The recall of {new_index} against exact search; the run stops here below {}.\n",
                o.threshold
            ),
            down: Some(String::new()),
        });
        renames_up = format!(
            "ALTER INDEX {} RENAME TO {};\nALTER INDEX {} RENAME TO {};\n",
            ident(&ix.name),
            ident(&old_index),
            ident(&new_index),
            ident(&ix.name)
        );
        renames_down = format!(
            "ALTER INDEX {} RENAME TO {};\nALTER INDEX {} RENAME TO {};\n",
            ident(&ix.name),
            ident(&new_index),
            ident(&old_index),
            ident(&ix.name)
        );
    } else {
        renames_up = String::new();
        renames_down = String::new();
    }
    let guard = format!(
        "DO $guard$\nBEGIN\n    IF EXISTS (SELECT FROM {t} WHERE {missing}) THEN\n        RAISE EXCEPTION '% row(s) of {t} have no {next_name} yet', (SELECT count(*) FROM {t} WHERE {missing})\n            USING HINT = 'the application must write {next_name} too{}, then run migrate-up --contract again';\n    END IF;\nEND\n$guard$;\n",
        if program { " (or run the catch-up again: migrate-down to before it, migrate-up)" } else { "" }
    );
    parts.push(Part {
        step: "contract",
        message: format!("contract (switch): {label}"),
        transactional: true,
        headers: vec![("phase".to_string(), "contract".to_string())],
        up: format!(
            "-- Run by migrate-up --contract once the application queries {next_name} with the new model.\n-- Refuses while a row lacks its new value; then one short transaction.\n{guard}{drop_trigger}ALTER TABLE {t} RENAME COLUMN {col} TO {old};\nALTER TABLE {t} RENAME COLUMN {next} TO {col};\n{renames_up}"
        ),
        down: Some(format!(
            "{renames_down}ALTER TABLE {t} RENAME COLUMN {col} TO {next};\nALTER TABLE {t} RENAME COLUMN {old} TO {col};\n{create_trigger}"
        )),
    });
    parts.push(Part {
        step: "drop",
        message: format!("drop the old column: {label}"),
        transactional: true,
        headers: vec![("phase".to_string(), "contract".to_string())],
        up: format!(
            "-- The old embeddings and their index go: no way back from here (no down section).\nALTER TABLE {t} DROP COLUMN {old};\n"
        ),
        down: None,
    });
    Ok(parts)
}

/// `--index-only`: an expression index over the existing column, its check, and the drop of
/// the old index as the contract.
fn index_only(
    f: &Facts,
    o: &SwapOptions,
    from: VectorType,
    to: VectorType,
    ann: &[&IndexFacts],
) -> Result<Vec<Part>> {
    if o.run.is_some() {
        return Err(
            Error::usage("--index-only changes no data: it takes no --run")
                .with_hint("leave out --run, or --index-only for a swap of the column"),
        );
    }
    let col = ident(&f.column);
    let expr = to.derive_from(from, &col).ok_or_else(|| {
        Error::usage(format!(
            "--index-only --to {to}: an index over {}.{} ({from}) can cast it to halfvec or quantize it to bit of the same dimensions, not to {to}",
            f.table, f.column
        ))
        .with_hint(format!("--to halfvec({}) or --to bit({})", from.dims, from.dims))
    })?;
    let Some(ix) = ann.first() else {
        return Err(Error::usage(format!(
            "--index-only: {}.{} has no hnsw or ivfflat index to take the method and operator class from",
            f.table, f.column
        ))
        .with_hint("write the CREATE INDEX CONCURRENTLY by hand in a revision of its own"));
    };
    let t = &f.table;
    let label = format!("vector index {}.{} as {to}", f.table_name, f.column);
    let opclass = to.opclass_like(&ix.opclass)?;
    let suffix = if to.kind == Kind::Bit {
        "_bit"
    } else {
        "_half"
    };
    let new_index = name_with(&ix.name, suffix);
    let with = if ix.options.is_empty() {
        String::new()
    } else {
        format!(" WITH ({})", ix.options.join(", "))
    };
    let cast_note = if to.kind == Kind::Bit {
        format!("ORDER BY binary_quantize({col})::{to} <~> binary_quantize($1)::{to} (then re-rank by the full vectors)")
    } else {
        format!("ORDER BY {col}::{to} <=> $1::{to} (the same cast)")
    };
    Ok(vec![
        Part {
            step: "index",
            message: format!("index: {label}"),
            transactional: false,
            headers: Vec::new(),
            up: format!(
                "-- An expression index: no data changes. Queries use it only with the same expression:\n-- {cast_note}.\nCREATE INDEX CONCURRENTLY {} ON {t} USING {} (({expr}) {opclass}){with};\n",
                ident(&new_index), ix.method
            ),
            down: Some(format!("DROP INDEX CONCURRENTLY IF EXISTS {};\n", ident(&new_index))),
        },
        Part {
            step: "check",
            message: format!("check recall: {label}"),
            transactional: true,
            headers: vec![(
                "check".to_string(),
                format!(
                    "recall {}.{} threshold={} index={new_index}",
                    f.table, f.column, o.threshold
                ),
            )],
            up: format!(
                "-- The recall of {new_index} against exact search; the run stops here below {}.\n",
                o.threshold
            ),
            down: Some(String::new()),
        },
        Part {
            step: "contract",
            message: format!("drop the old index: {label}"),
            transactional: false,
            headers: vec![("phase".to_string(), "contract".to_string())],
            up: format!(
                "-- Run by migrate-up --contract once the application's queries use the new expression.\nDROP INDEX CONCURRENTLY IF EXISTS {};\n",
                ident(&ix.name)
            ),
            down: Some(format!(
                "{};\n",
                ix.definition
                    .replacen("CREATE INDEX ", "CREATE INDEX CONCURRENTLY IF NOT EXISTS ", 1)
            )),
        },
    ])
}

fn rows(client: &mut Client, sql: &str) -> Result<Vec<Vec<Option<String>>>> {
    let msgs = client
        .simple_query(sql)
        .map_err(|e| Error::new(crate::error::ErrorKind::Database, format!("{e}")))?;
    Ok(msgs
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            _ => None,
        })
        .collect())
}

fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Reads the column, its table's key and its ANN indexes.
pub fn read_facts(client: &mut Client, target: &str) -> Result<Facts> {
    let (relation, column) = target.rsplit_once('.').ok_or_else(|| {
        Error::usage(format!("--vector-swap {target}: not <table>.<column>"))
            .with_hint("name the vector column with its table, e.g. --vector-swap chunks.embedding")
    })?;
    let col = rows(
        client,
        &format!(
            "SELECT c.oid::regclass::text, c.relname::text, format_type(a.atttypid, a.atttypmod)
               FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
              WHERE c.oid = to_regclass({}) AND a.attname = {} AND a.attnum > 0 AND NOT a.attisdropped",
            literal(relation),
            literal(column)
        ),
    )?;
    let Some(c) = col.first() else {
        return Err(Error::usage(format!(
            "--vector-swap {target}: no column {column} in a table {relation} on the database"
        ))
        .with_hint(
            "name an existing table and its vector column (the swap reads them from the database)",
        ));
    };
    let table = c[0].clone().unwrap_or_default();
    let key = rows(
        client,
        &format!(
            "SELECT a.attname::text FROM pg_index i
               JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
              WHERE i.indrelid = {rel}::regclass AND i.indisunique AND i.indisvalid AND i.indnatts = 1
                AND i.indexprs IS NULL AND i.indpred IS NULL
                AND a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype,
                                   'timestamp'::regtype, 'timestamptz'::regtype)
              ORDER BY i.indisprimary DESC, i.indexrelid LIMIT 1",
            rel = literal(&table)
        ),
    )?
    .first()
    .and_then(|r| r[0].clone());
    let found = rows(
        client,
        &format!(
            "SELECT ic.relname::text, am.amname::text, op.opcname::text,
                    coalesce(array_to_string(ic.reloptions, ', '), ''),
                    pg_get_indexdef(i.indexrelid), (i.indkey[0] = a.attnum)::text
               FROM pg_index i
               JOIN pg_class ic ON ic.oid = i.indexrelid
               JOIN pg_am am ON am.oid = ic.relam AND am.amname IN ('hnsw', 'ivfflat')
               JOIN pg_opclass op ON op.oid = i.indclass[0]
               JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attname = {col}
              WHERE i.indrelid = {rel}::regclass AND i.indisvalid
                AND (i.indkey[0] = a.attnum
                     OR (i.indkey[0] = 0 AND pg_get_indexdef(i.indexrelid, 1, true) LIKE '%' || {col} || '%'))
              ORDER BY i.indexrelid",
            rel = literal(&table),
            col = literal(column)
        ),
    )?;
    let ext = rows(
        client,
        "SELECT coalesce((SELECT extversion FROM pg_extension WHERE extname = 'vector'), 'not installed'),
                (to_regtype('halfvec') IS NOT NULL)::text,
                EXISTS (SELECT FROM pg_proc WHERE proname = 'binary_quantize')::text",
    )?;
    let flag = |i: usize| ext.first().and_then(|r| r[i].as_deref()) == Some("true");
    Ok(Facts {
        pgvector: ext.first().and_then(|r| r[0].clone()).unwrap_or_default(),
        has_halfvec: flag(1),
        has_binary_quantize: flag(2),
        table,
        table_name: c[1].clone().unwrap_or_default(),
        column: column.to_string(),
        column_type: c[2].clone().unwrap_or_default(),
        key,
        indexes: found
            .into_iter()
            .map(|r| IndexFacts {
                name: r[0].clone().unwrap_or_default(),
                method: r[1].clone().unwrap_or_default(),
                opclass: r[2].clone().unwrap_or_default(),
                options: r[3]
                    .as_deref()
                    .filter(|s| !s.is_empty())
                    .map(|s| s.split(", ").map(str::to_string).collect())
                    .unwrap_or_default(),
                definition: r[4].clone().unwrap_or_default(),
                on_column: r[5].as_deref() == Some("true"),
            })
            .collect(),
    })
}

/// One revision of the chain, ready to write: its path, id and text.
#[derive(Debug, Clone)]
pub struct SwapRevision {
    pub path: std::path::PathBuf,
    pub revision: String,
    pub script: crate::script::NewScript,
    pub text: String,
}

/// Reads the column on the settings' database and renders the chain after the head (or
/// `rev.head`), each revision the next one's parent, ids by the history's convention
/// (`rev.rev_id` goes to the first). Writes nothing.
pub fn generate(
    project: &crate::project::Project,
    settings: &crate::config::Settings,
    rev: &crate::commands::revision::RevisionOptions,
    o: &SwapOptions,
) -> Result<Vec<SwapRevision>> {
    let url = settings.require_url()?;
    let mut client = crate::db::connect(url, "migrate-revision")?;
    let facts = read_facts(&mut client, &o.target)?;
    let parts = chain(&facts, o)?;
    Ok(render_chain(project, rev, &parts)?.0)
}

/// The parts as revisions chained after `rev`'s parent (see [`generate`]), and the project
/// with them added (what a revision chained after them is prepared against).
pub fn render_chain(
    project: &crate::project::Project,
    rev: &crate::commands::revision::RevisionOptions,
    parts: &[Part],
) -> Result<(Vec<SwapRevision>, crate::project::Project)> {
    use crate::script::{parse_script, render_script};
    let mut scripts = project.scripts.clone();
    let mut current = project.clone();
    let mut out = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let mut o = rev.clone();
        if i > 0 {
            o.rev_id = None;
            o.head = out.last().map(|r: &SwapRevision| r.revision.clone());
            o.splice = false;
            o.depends_on = Vec::new();
            o.branch_labels = Vec::new();
        }
        o.message = if rev.message.is_empty() {
            part.message.clone()
        } else {
            format!("{} ({})", rev.message, part.step)
        };
        o.non_transactional = !part.transactional;
        o.headers = part.headers.clone();
        o.up_sql = part.up.clone();
        o.down_sql = part.down.clone().unwrap_or_default();
        let (path, ns) = crate::commands::revision::prepare(&current, &o)?;
        let mut text = render_script(&ns);
        if part.down.is_none() {
            // no down section: the revision cannot be downgraded
            if let Some(at) = text.find("\n-- migrate:down\n") {
                text.truncate(at + 1);
            }
        }
        // what is written must read back; the id bookkeeping needs the script either way
        let parsed = parse_script(&path, text.as_bytes()).map_err(|e| {
            Error::new(
                crate::error::ErrorKind::Script,
                format!(
                    "internal error: the generated revision {} does not parse: {}",
                    ns.revision, e.message
                ),
            )
        })?;
        scripts.push(parsed);
        current = crate::project::Project::from_scripts(&project.dir, scripts.clone())?;
        out.push(SwapRevision {
            path,
            revision: ns.revision.clone(),
            script: ns,
            text,
        });
    }
    Ok((out, current))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(column_type: &str) -> Facts {
        Facts {
            table: "chunks".into(),
            table_name: "chunks".into(),
            column: "embedding".into(),
            column_type: column_type.into(),
            key: Some("id".into()),
            indexes: vec![IndexFacts {
                name: "chunks_embedding_idx".into(),
                method: "hnsw".into(),
                opclass: "vector_cosine_ops".into(),
                options: vec!["m=8".into(), "ef_construction=32".into()],
                definition: "CREATE INDEX chunks_embedding_idx ON public.chunks USING hnsw (embedding vector_cosine_ops) WITH (m='8', ef_construction='32')".into(),
                on_column: true,
            }],
            pgvector: "0.8.0".into(),
            has_halfvec: true,
            has_binary_quantize: true,
        }
    }

    fn steps(parts: &[Part]) -> Vec<&str> {
        parts.iter().map(|p| p.step).collect()
    }

    #[test]
    fn types_parse_as_format_type_writes_them() {
        let t = VectorType::parse("public.vector(384)").unwrap();
        assert_eq!((t.kind, t.dims), (Kind::Vector, 384));
        assert_eq!(
            VectorType::parse("halfvec(1536)").unwrap().to_string(),
            "halfvec(1536)"
        );
        assert_eq!(VectorType::parse("bit(8)").unwrap().kind, Kind::Bit);
        assert!(VectorType::parse("vector").is_none());
        assert!(VectorType::parse("text").is_none());
        assert!(VectorType::parse("vector(0)").is_none());
    }

    #[test]
    fn a_halfvec_swap_fills_in_sql_and_keeps_the_index_parameters() {
        let parts = chain(
            &facts("vector(1536)"),
            &SwapOptions::new("chunks.embedding", "halfvec(1536)"),
        )
        .unwrap();
        assert_eq!(
            steps(&parts),
            ["expand", "fill", "index", "check", "contract", "drop"]
        );
        let expand = &parts[0];
        assert!(expand
            .up
            .contains("ALTER TABLE chunks ADD COLUMN embedding_next halfvec(1536);"));
        assert!(
            expand
                .up
                .contains("NEW.embedding_next := NEW.embedding::halfvec(1536);"),
            "{}",
            expand.up
        );
        assert!(expand
            .up
            .contains("BEFORE INSERT OR UPDATE OF embedding ON chunks"));
        let fill = &parts[1];
        assert_eq!(
            fill.headers,
            [("backfill".to_string(), "chunks.id batch=1000".to_string())]
        );
        assert!(fill
            .up
            .contains("SET embedding_next = embedding::halfvec(1536)"));
        assert!(fill.up.contains(
            "id >= :start AND id < :end AND embedding_next IS NULL AND embedding IS NOT NULL"
        ));
        let index = &parts[2];
        assert!(!index.transactional);
        assert!(index.up.contains("CREATE INDEX CONCURRENTLY chunks_embedding_idx_next ON chunks USING hnsw (embedding_next halfvec_cosine_ops) WITH (m=8, ef_construction=32);"), "{}", index.up);
        assert_eq!(
            parts[3].headers[0].1,
            "recall chunks.embedding_next threshold=0.9 index=chunks_embedding_idx_next"
        );
        let contract = &parts[4];
        assert_eq!(
            contract.headers,
            [("phase".to_string(), "contract".to_string())]
        );
        assert!(contract.up.contains("RENAME COLUMN embedding TO embedding_old;\nALTER TABLE chunks RENAME COLUMN embedding_next TO embedding;"));
        assert!(contract
            .up
            .contains("ALTER INDEX chunks_embedding_idx_next RENAME TO chunks_embedding_idx;"));
        assert!(contract.down.as_deref().unwrap().contains("CREATE TRIGGER"));
        assert!(parts[5].down.is_none());
        assert!(parts[5].up.contains("DROP COLUMN embedding_old"));
    }

    #[test]
    fn a_new_model_runs_the_worker_twice_and_its_trigger_empties_changed_rows() {
        let mut o = SwapOptions::new("chunks.embedding", "vector(256)");
        o.run = Some("python embed.py".into());
        let parts = chain(&facts("vector(384)"), &o).unwrap();
        assert_eq!(
            steps(&parts),
            ["expand", "fill", "catch-up", "index", "check", "contract", "drop"]
        );
        assert!(parts[0].up.contains("NEW.embedding_next := NULL;"));
        assert!(!parts[0].up.contains("::vector(256)"));
        for p in &parts[1..3] {
            assert!(p.up.contains("-- run: python embed.py\n"), "{}", p.up);
            assert_eq!(p.headers[0].0, "backfill");
        }
        assert!(parts[3].up.contains("(embedding_next vector_cosine_ops)"));
    }

    #[test]
    fn an_index_only_swap_builds_an_expression_index_and_drops_the_old_as_contract() {
        let mut o = SwapOptions::new("chunks.embedding", "halfvec(1536)");
        o.index_only = true;
        let parts = chain(&facts("vector(1536)"), &o).unwrap();
        assert_eq!(steps(&parts), ["index", "check", "contract"]);
        assert!(parts[0].up.contains("USING hnsw ((embedding::halfvec(1536)) halfvec_cosine_ops) WITH (m=8, ef_construction=32);"), "{}", parts[0].up);
        assert!(parts[1].headers[0]
            .1
            .ends_with("index=chunks_embedding_idx_half"));
        assert!(parts[2]
            .up
            .contains("DROP INDEX CONCURRENTLY IF EXISTS chunks_embedding_idx;"));
        assert!(parts[2]
            .down
            .as_deref()
            .unwrap()
            .starts_with("CREATE INDEX CONCURRENTLY IF NOT EXISTS chunks_embedding_idx ON"));
        o.to = "bit(1536)".into();
        let parts = chain(&facts("vector(1536)"), &o).unwrap();
        assert!(
            parts[0]
                .up
                .contains("((binary_quantize(embedding)::bit(1536)) bit_hamming_ops)"),
            "{}",
            parts[0].up
        );
    }

    #[test]
    fn what_cannot_be_swapped_says_why_and_what_to_do() {
        let o = SwapOptions::new("chunks.embedding", "vector(256)");
        let e = chain(&facts("vector(384)"), &o).unwrap_err();
        assert!(
            e.message.contains("cannot be computed from the old ones"),
            "{}",
            e.message
        );
        assert!(e.hint.unwrap().contains("--run"));
        let mut f = facts("vector(384)");
        f.key = None;
        let e = chain(&f, &SwapOptions::new("chunks.embedding", "halfvec(384)")).unwrap_err();
        assert!(
            e.message
                .contains("no single-column integer or timestamp primary key"),
            "{}",
            e.message
        );
        let e = chain(&facts("text"), &o).unwrap_err();
        assert!(e.message.contains("is text, not a vector"), "{}", e.message);
        let e = chain(
            &facts("vector(3000)"),
            &SwapOptions::new("chunks.embedding", "vector(3000)"),
        )
        .unwrap_err();
        assert!(
            e.message.contains("already is vector(3000)"),
            "{}",
            e.message
        );
        let e = chain(
            &facts("vector(384)"),
            &SwapOptions::new("chunks.embedding", "halfvec"),
        )
        .unwrap_err();
        assert!(
            e.message.contains("--to halfvec: not a pgvector type"),
            "{}",
            e.message
        );
        let mut o = SwapOptions::new("chunks.embedding", "vector(3000)");
        o.run = Some("x".into());
        let e = chain(&facts("vector(384)"), &o).unwrap_err();
        assert!(
            e.message.contains("at most 2000 dimensions"),
            "{}",
            e.message
        );
        let mut old = facts("vector(384)");
        (old.pgvector, old.has_halfvec, old.has_binary_quantize) = ("0.6.2".into(), false, false);
        let e = chain(&old, &SwapOptions::new("chunks.embedding", "halfvec(384)")).unwrap_err();
        assert!(
            e.message
                .contains("pgvector 0.6.2 on this database has no type halfvec"),
            "{}",
            e.message
        );
    }
}
