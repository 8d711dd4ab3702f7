//! Not a rule: what the pgvector rules read of a statement — an hnsw/ivfflat `CREATE INDEX`
//! (its table, the type, dimensions and operator class of each element), and whether a table
//! is known to hold no rows.

use super::StmtCx;
use crate::lint::model::{vector_type, Model, VecKind};
use crate::lint::scope::{before_run, Before};
use crate::lint::text::normalize_name;
use squawk_syntax::ast::{self, AstNode};

pub fn text(n: &impl AstNode) -> String {
    n.syntax().text().to_string()
}

/// Whether the table is known to hold no rows: created by this revision, or (with the
/// database) not there before the run (created by a pending revision) or empty.
pub fn known_empty(cx: &StmtCx, table: &str) -> bool {
    if let Some(t) = cx.model.tables.get(table) {
        if t.created_in.as_deref() == Some(cx.revision) {
            return true;
        }
    }
    match cx.facts {
        Some(f) => match before_run(cx.model, f, table) {
            Before::New => true,
            Before::Exists(r) => r.count == 0,
        },
        None => false,
    }
}

/// One indexed element of a vector type.
pub struct Element {
    pub item: ast::PartitionItem,
    /// As written (`embedding`, `(embedding::halfvec(3000))`).
    pub expr: String,
    /// Its type (`halfvec(3000)`).
    pub ty: String,
    pub kind: VecKind,
    pub dims: Option<u32>,
}

/// An hnsw or ivfflat `CREATE INDEX`.
pub struct VectorIndex {
    pub ci: ast::CreateIndex,
    /// `hnsw` or `ivfflat`.
    pub method: String,
    pub table: String,
    pub name: Option<String>,
    /// The elements of a vector type (others are left out).
    pub elements: Vec<Element>,
}

impl VectorIndex {
    /// The statement as a vector index, with the types the model knows.
    pub fn of(stmt: &ast::Stmt, model: &Model) -> Option<VectorIndex> {
        let ast::Stmt::CreateIndex(ci) = stmt else {
            return None;
        };
        let method = method_of(ci);
        if method != "hnsw" && method != "ivfflat" {
            return None;
        }
        let table = normalize_name(&text(&ci.table_relation_name()?.table_name_ref()?));
        let name = ci.index().map(|n| normalize_name(&text(&n)));
        let mut elements = Vec::new();
        for item in ci
            .partition_item_list()
            .map(|l| l.partition_items().collect::<Vec<_>>())
            .unwrap_or_default()
        {
            let expr = item.expr().map(|e| text(&e)).unwrap_or_default();
            let Some(ty) = element_type(model, &table, &expr) else {
                continue;
            };
            let Some((kind, dims)) = vector_type(&ty) else {
                continue;
            };
            elements.push(Element {
                item,
                expr,
                ty,
                kind,
                dims,
            });
        }
        Some(VectorIndex {
            ci: ci.clone(),
            method,
            table,
            name,
            elements,
        })
    }

    /// The last element's type and dimensions, when known (for the memory estimate).
    pub fn dims(&self) -> Option<(VecKind, u32)> {
        self.elements
            .iter()
            .rev()
            .find_map(|e| e.dims.map(|d| (e.kind, d)))
    }
}

/// `USING hnsw` → `hnsw`; no `USING`: `btree`.
pub fn method_of(ci: &ast::CreateIndex) -> String {
    ci.using_method()
        .and_then(|u| u.access_method_ref())
        .map(|m| text(&m).to_ascii_lowercase())
        .unwrap_or_else(|| "btree".into())
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
