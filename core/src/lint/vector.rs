//! retort's pgvector rules, and the walk that keeps the [`Model`] up to date statement by
//! statement (so each rule sees what exists before its statement).
//!
//! | id | default | what |
//! |---|---|---|
//! | `vector-index-not-concurrent` | error | hnsw/ivfflat built without CONCURRENTLY on a table that exists before the revision (writes blocked for the whole build) |
//! | `ivfflat-on-new-table` | warning | ivfflat on a table created in the same revision (no rows: k-means has nothing to learn lists from) |
//! | `vector-index-too-many-dims` | error | more dimensions than hnsw/ivfflat take (vector 2,000, halfvec 4,000, bit 64,000) |
//! | `vector-column-type-change` | error | `ALTER COLUMN ... TYPE` of a vector column on a table with rows (offline: that exists before the revision, or carries a vector index) (rewrite, index rebuilt or dropped) |
//! | `vector-opclass-mismatch` | error | operator class for another type (`vector_cosine_ops` on `halfvec`) |
//! | `vector-index-drop-before-create` | warning | a vector index dropped, then its replacement created (searches scan sequentially in between) |

use super::facts::{bytes, DbFacts};
use super::model::{vector_type, IndexInfo, Model, TableInfo, VecKind};
use super::text::normalize_name;
use super::{first_token, Level, Raw};
use squawk_syntax::ast::{self, AstNode};

pub const RULES: &[(&str, Level)] = &[
    ("vector-index-not-concurrent", Level::Error),
    ("ivfflat-on-new-table", Level::Warning),
    ("vector-index-too-many-dims", Level::Error),
    ("vector-column-type-change", Level::Error),
    ("vector-opclass-mismatch", Level::Error),
    ("vector-index-drop-before-create", Level::Warning),
];

/// The estimate's factor over the raw size of the vectors ((8 + 4·dims) × rows × 1.3).
pub const BUILD_OVERHEAD: f64 = 1.3;

pub struct Ctx<'a> {
    pub revision: &'a str,
    pub facts: Option<&'a DbFacts>,
}

fn text(n: &impl AstNode) -> String {
    n.syntax().text().to_string()
}

/// Whether the table is known to hold no rows: created by this revision, or (with the
/// database) not there before the run (created by a pending revision) or empty ([`scope`]).
///
/// [`scope`]: super::scope
fn known_empty(model: &Model, ctx: &Ctx, table: &str) -> bool {
    if let Some(t) = model.tables.get(table) {
        if t.created_in.as_deref() == Some(ctx.revision) {
            return true;
        }
    }
    match ctx.facts {
        Some(f) => match super::scope::before_run(model, f, table) {
            super::scope::Before::New => true,
            super::scope::Before::Exists(r) => r.count == 0,
        },
        None => false,
    }
}

/// The type an index element indexes: a cast's type (`(embedding::halfvec(3000))`,
/// `binary_quantize(e)::bit(1536)`), else the column's type in the model.
fn element_type(model: &Model, table: &str, expr: &str) -> Option<String> {
    if let Some((_, ty)) = expr.rsplit_once("::") {
        let ty = ty.trim().trim_end_matches(')').trim();
        // `::halfvec(3000))`: keep the type's own parentheses
        let ty = if ty.contains('(') && !ty.ends_with(')') {
            format!("{ty})")
        } else {
            ty.to_string()
        };
        return Some(ty);
    }
    let col = expr.trim().trim_start_matches('(').trim_end_matches(')');
    model.column_type(table, col).map(str::to_string)
}

/// Runs the vector rules over `stmts` (when `report`) and applies them to the model.
pub fn check(stmts: &[ast::Stmt], model: &mut Model, ctx: &Ctx, report: bool) -> Vec<Raw> {
    let mut out = Vec::new();
    // vector indexes dropped by this revision: (table, index, where)
    let mut dropped: Vec<(String, String)> = Vec::new();
    for stmt in stmts {
        let at = first_token(stmt.syntax());
        let mut push = |rule: &'static str, node_at: usize, message: String, help: &str| {
            if report {
                out.push(Raw {
                    rule,
                    offset: node_at,
                    stmt: at,
                    message,
                    help: Some(help.to_string()),
                });
            }
        };
        match stmt {
            ast::Stmt::CreateTable(ct) => {
                let Some(name) = ct.table_name() else {
                    continue;
                };
                let mut info = TableInfo {
                    created_in: Some(ctx.revision.to_string()),
                    ..Default::default()
                };
                if let Some(args) = ct.table_arg_list() {
                    for arg in args.args() {
                        if let ast::TableArg::Column(c) = arg {
                            if let (Some(n), Some(t)) = (c.name(), c.ty()) {
                                info.columns.insert(normalize_name(&text(&n)), text(&t));
                            }
                        }
                    }
                }
                model.tables.insert(normalize_name(&text(&name)), info);
            }
            ast::Stmt::DropTable(dt) => {
                for t in dt.table_name_refs() {
                    let t = normalize_name(&text(&t));
                    model.tables.remove(&t);
                    model.vector_indexes.retain(|_, i| i.table != t);
                }
            }
            ast::Stmt::AlterTable(at_stmt) => {
                let Some(table) = at_stmt
                    .table_relation_name()
                    .and_then(|r| r.table_name_ref())
                    .map(|n| normalize_name(&text(&n)))
                else {
                    continue;
                };
                for action in at_stmt.actions() {
                    match action {
                        ast::AlterTableAction::AddColumn(a) => {
                            if let (Some(n), Some(t)) = (a.column_name(), a.ty()) {
                                model
                                    .tables
                                    .entry(table.clone())
                                    .or_default()
                                    .columns
                                    .insert(normalize_name(&text(&n)), text(&t));
                            }
                        }
                        ast::AlterTableAction::DropColumn(d) => {
                            if let Some(n) = d.column_name_ref() {
                                if let Some(t) = model.tables.get_mut(&table) {
                                    t.columns.remove(&normalize_name(&text(&n)));
                                }
                            }
                        }
                        ast::AlterTableAction::AlterColumn(ac) => {
                            let (Some(col), Some(ast::AlterColumnOption::SetType(st))) =
                                (ac.column_name_ref(), ac.option())
                            else {
                                continue;
                            };
                            let col = normalize_name(&text(&col));
                            let Some(new_ty) = st.ty().map(|t| text(&t)) else {
                                continue;
                            };
                            let old_ty = model.column_type(&table, &col).map(str::to_string);
                            let is_vec = vector_type(&new_ty).is_some()
                                || old_ty.as_deref().and_then(vector_type).is_some();
                            if is_vec {
                                let indexes = model.vector_indexes_on(&table);
                                let rows = ctx.facts.and_then(|f| f.rows(&table));
                                let empty = known_empty(model, ctx, &table);
                                // with the database, an empty table rewrites (and rebuilds its
                                // index) in no time: only rows count; offline, an index says
                                // the table is in use
                                let indexed = !indexes.is_empty() && ctx.facts.is_none();
                                if indexed || !empty {
                                    let mut why = Vec::new();
                                    if let Some(r) = rows.filter(|r| r.count > 0) {
                                        why.push(format!("it holds {}", r.describe()));
                                    } else if ctx.facts.is_none() && !empty {
                                        why.push(
                                            "it exists before this revision and may hold rows"
                                                .to_string(),
                                        );
                                    }
                                    if !indexes.is_empty() {
                                        why.push(format!(
                                            "it carries the vector index{} {}",
                                            if indexes.len() == 1 { "" } else { "es" },
                                            indexes.join(", ")
                                        ));
                                    }
                                    push(
                                        "vector-column-type-change",
                                        first_token(ac.syntax()),
                                        format!(
                                            "changing {table}.{col} from {} to {new_ty} rewrites the table under an ACCESS EXCLUSIVE lock and fails on rows of another dimension; {}",
                                            old_ty.as_deref().unwrap_or("its type"),
                                            why.join(" and ")
                                        ),
                                        "add a new column of the new type, fill it (re-embed) in batches, build its index CONCURRENTLY, switch the application, then drop the old column",
                                    );
                                }
                            }
                            if let Some(t) = model.tables.get_mut(&table) {
                                t.columns.insert(col, new_ty);
                            }
                        }
                        _ => {}
                    }
                }
            }
            ast::Stmt::DropIndex(di) => {
                for r in di.index_refs() {
                    let name = normalize_name(&text(&r));
                    if let Some(info) = model.vector_indexes.remove(&name) {
                        dropped.push((info.table, name));
                    }
                }
            }
            ast::Stmt::CreateIndex(ci) => {
                let method = ci
                    .using_method()
                    .and_then(|u| u.access_method_ref())
                    .map(|m| text(&m).to_ascii_lowercase())
                    .unwrap_or_else(|| "btree".into());
                let Some(table) = ci
                    .table_relation_name()
                    .and_then(|r| r.table_name_ref())
                    .map(|n| normalize_name(&text(&n)))
                else {
                    continue;
                };
                if method != "hnsw" && method != "ivfflat" {
                    continue;
                }
                let name = ci.index().map(|n| normalize_name(&text(&n)));
                let items: Vec<ast::PartitionItem> = ci
                    .partition_item_list()
                    .map(|l| l.partition_items().collect())
                    .unwrap_or_default();
                let created_here = model
                    .tables
                    .get(&table)
                    .and_then(|t| t.created_in.as_deref())
                    == Some(ctx.revision);
                let index_at = first_token(ci.syntax());
                // the element's type, dims and opclass
                let mut dims_row: Option<(VecKind, u32)> = None;
                for item in &items {
                    let expr = item.expr().map(|e| text(&e)).unwrap_or_default();
                    let Some(ty) = element_type(model, &table, &expr) else {
                        continue;
                    };
                    let Some((kind, dims)) = vector_type(&ty) else {
                        continue;
                    };
                    if let Some(d) = dims {
                        dims_row = Some((kind, d));
                        if let Some(limit) = kind.index_limit().filter(|&l| d > l) {
                            push(
                                "vector-index-too-many-dims",
                                first_token(item.syntax()),
                                format!(
                                    "{method} indexes take at most {} dimensions for {}; {} has {d}: PostgreSQL will refuse this index",
                                    super::facts::group(limit as u64),
                                    kind.name(),
                                    expr.trim()
                                ),
                                match kind {
                                    VecKind::Vector => "index a halfvec cast instead (up to 4,000: `(embedding::halfvec(3072)) halfvec_cosine_ops`), or a binary quantization (`(binary_quantize(embedding)::bit(3072)) bit_hamming_ops`), or reduce the dimensions",
                                    _ => "reduce the dimensions or index a binary quantization (`binary_quantize(...)::bit(N)`)",
                                },
                            );
                        }
                    }
                    if let Some(oc) = item.op_class_ref() {
                        let oc = text(&oc);
                        if let Some(ok) = VecKind::of_opclass(&oc) {
                            if ok != kind {
                                push(
                                    "vector-opclass-mismatch",
                                    first_token(oc_node(item).as_ref().unwrap_or(item.syntax())),
                                    format!(
                                        "operator class {oc} is for {} columns, but {} is {ty}",
                                        ok.name(),
                                        expr.trim()
                                    ),
                                    &format!(
                                        "use the {} operator class of the same distance (e.g. {}_cosine_ops), or cast the column (`({}::{})`)",
                                        kind.name(),
                                        kind.name(),
                                        expr.trim(),
                                        ok.name()
                                    ),
                                );
                            }
                        }
                    }
                }
                if method == "ivfflat" && created_here {
                    push(
                        "ivfflat-on-new-table",
                        index_at,
                        format!(
                            "ivfflat index on {table}, which this revision creates: the table is empty, so k-means learns its lists from no rows and recall will be poor"
                        ),
                        "create the ivfflat index in a later revision, after the data is loaded (CONCURRENTLY), or use hnsw, which needs no training data",
                    );
                }
                if ci.concurrently_token().is_none() && !known_empty(model, ctx, &table) {
                    let rows = ctx.facts.and_then(|f| f.rows(&table));
                    let mut msg = format!(
                        "{method} index built without CONCURRENTLY on {table}, which exists before this revision: writes to {table} are blocked for the whole build"
                    );
                    match (ctx.facts, rows) {
                        (Some(f), Some(r)) => {
                            msg.push_str(&format!("; it holds {}", r.describe()));
                            if let Some((kind, d)) = dims_row {
                                if let Some(per_row) = kind.row_bytes(d) {
                                    let est =
                                        (per_row as f64 * r.count as f64 * BUILD_OVERHEAD) as u64;
                                    let mwm = f.maintenance_work_mem;
                                    msg.push_str(&format!(
                                        "; estimated build memory {} ((8 + {}·{d}) bytes × rows × 1.3) against maintenance_work_mem {}{}",
                                        bytes(est),
                                        if kind == VecKind::Halfvec { 2 } else { 4 },
                                        bytes(mwm),
                                        if est > mwm && method == "hnsw" {
                                            ": the graph will not fit, and the build slows down sharply once it no longer does"
                                        } else {
                                            ""
                                        }
                                    ));
                                }
                            }
                        }
                        (None, _) => msg.push_str(" (without a database its size is unknown)"),
                        _ => {}
                    }
                    push(
                        "vector-index-not-concurrent",
                        index_at,
                        msg,
                        "use CREATE INDEX CONCURRENTLY in a script marked `-- transactional: false`; raise maintenance_work_mem for the session (SET maintenance_work_mem = '8GB') so the graph fits",
                    );
                }
                if let Some((_, old)) = dropped.iter().find(|(t, _)| *t == table) {
                    push(
                        "vector-index-drop-before-create",
                        index_at,
                        format!(
                            "{old} on {table} is dropped before this {method} index is built: until the build ends, vector searches on {table} fall back to a sequential scan"
                        ),
                        "build the new index first (CREATE INDEX CONCURRENTLY new_idx ...), then drop the old one (DROP INDEX CONCURRENTLY old_idx), and rename if the name matters",
                    );
                }
                if let Some(n) = name {
                    model.vector_indexes.insert(
                        n,
                        IndexInfo {
                            table: table.clone(),
                            method: method.clone(),
                        },
                    );
                }
            }
            _ => {}
        }
    }
    out
}

fn oc_node(item: &ast::PartitionItem) -> Option<squawk_syntax::SyntaxNode> {
    item.op_class_ref().map(|o| o.syntax().clone())
}
