//! What exists before a statement runs, as far as the rules need it: tables (and the revision
//! that created them), their column types, and the vector indexes. Built by walking the
//! scripts in upgrade order, seeded from the database's [`DbFacts`] when there is one.

use super::facts::DbFacts;
use super::text::normalize_name;
use squawk_syntax::ast::{self, AstNode};
use std::collections::HashMap;

fn text(n: &impl AstNode) -> String {
    n.syntax().text().to_string()
}

#[derive(Debug, Clone, Default)]
pub struct TableInfo {
    /// The revision whose script created it (None: it was in the database).
    pub created_in: Option<String>,
    /// column → type as written (`vector(384)`).
    pub columns: HashMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct IndexInfo {
    pub table: String,
    /// `hnsw` or `ivfflat`.
    pub method: String,
}

#[derive(Debug, Clone, Default)]
pub struct Model {
    pub tables: HashMap<String, TableInfo>,
    /// Vector indexes by name.
    pub vector_indexes: HashMap<String, IndexInfo>,
}

impl Model {
    pub fn seed(&mut self, f: &DbFacts) {
        for name in f.tables.keys() {
            self.tables.entry(name.clone()).or_default();
        }
        for (t, c, ty) in &f.vector_columns {
            self.tables
                .entry(t.clone())
                .or_default()
                .columns
                .insert(c.clone(), ty.clone());
        }
        for (i, t, m) in &f.vector_indexes {
            self.vector_indexes.insert(
                i.clone(),
                IndexInfo {
                    table: t.clone(),
                    method: m.clone(),
                },
            );
        }
    }

    /// What `stmt` (of revision `revision`) creates, alters and drops.
    pub fn apply(&mut self, stmt: &ast::Stmt, revision: &str) {
        match stmt {
            ast::Stmt::CreateTable(ct) => {
                let Some(name) = ct.table_name() else {
                    return;
                };
                let mut info = TableInfo {
                    created_in: Some(revision.to_string()),
                    ..Default::default()
                };
                for arg in ct.table_arg_list().into_iter().flat_map(|a| a.args()) {
                    if let ast::TableArg::Column(c) = arg {
                        if let (Some(n), Some(t)) = (c.name(), c.ty()) {
                            info.columns.insert(normalize_name(&text(&n)), text(&t));
                        }
                    }
                }
                self.tables.insert(normalize_name(&text(&name)), info);
            }
            ast::Stmt::DropTable(dt) => {
                for t in dt.table_name_refs() {
                    let t = normalize_name(&text(&t));
                    self.tables.remove(&t);
                    self.vector_indexes.retain(|_, i| i.table != t);
                }
            }
            ast::Stmt::AlterTable(at) => {
                let Some(table) = altered_table(at) else {
                    return;
                };
                for action in at.actions() {
                    match action {
                        ast::AlterTableAction::AddColumn(a) => {
                            if let (Some(n), Some(t)) = (a.column_name(), a.ty()) {
                                self.tables
                                    .entry(table.clone())
                                    .or_default()
                                    .columns
                                    .insert(normalize_name(&text(&n)), text(&t));
                            }
                        }
                        ast::AlterTableAction::DropColumn(d) => {
                            if let (Some(n), Some(t)) =
                                (d.column_name_ref(), self.tables.get_mut(&table))
                            {
                                t.columns.remove(&normalize_name(&text(&n)));
                            }
                        }
                        ast::AlterTableAction::AlterColumn(ac) => {
                            let (Some(col), Some(ast::AlterColumnOption::SetType(st))) =
                                (ac.column_name_ref(), ac.option())
                            else {
                                continue;
                            };
                            if let (Some(ty), Some(t)) = (st.ty(), self.tables.get_mut(&table)) {
                                t.columns.insert(normalize_name(&text(&col)), text(&ty));
                            }
                        }
                        _ => {}
                    }
                }
            }
            ast::Stmt::DropIndex(di) => {
                for r in di.index_refs() {
                    self.vector_indexes.remove(&normalize_name(&text(&r)));
                }
            }
            ast::Stmt::CreateIndex(ci) => {
                let method = super::rules::vector_index::method_of(ci);
                if method != "hnsw" && method != "ivfflat" {
                    return;
                }
                let (Some(table), Some(name)) = (
                    ci.table_relation_name().and_then(|r| r.table_name_ref()),
                    ci.index(),
                ) else {
                    return;
                };
                self.vector_indexes.insert(
                    normalize_name(&text(&name)),
                    IndexInfo {
                        table: normalize_name(&text(&table)),
                        method,
                    },
                );
            }
            _ => {}
        }
    }

    pub fn column_type(&self, table: &str, column: &str) -> Option<&str> {
        self.tables
            .get(table)?
            .columns
            .get(&normalize_name(column))
            .map(String::as_str)
    }

    pub fn vector_indexes_on(&self, table: &str) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .vector_indexes
            .iter()
            .filter(|(_, i)| i.table == table)
            .map(|(n, _)| n.as_str())
            .collect();
        v.sort();
        v
    }
}

/// pgvector's types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VecKind {
    Vector,
    Halfvec,
    Sparsevec,
    Bit,
}

impl VecKind {
    pub fn name(self) -> &'static str {
        match self {
            VecKind::Vector => "vector",
            VecKind::Halfvec => "halfvec",
            VecKind::Sparsevec => "sparsevec",
            VecKind::Bit => "bit",
        }
    }

    /// The most dimensions an hnsw or ivfflat index takes (sparsevec's limit is on non-zero
    /// elements, which the type does not say).
    pub fn index_limit(self) -> Option<u32> {
        match self {
            VecKind::Vector => Some(2_000),
            VecKind::Halfvec => Some(4_000),
            VecKind::Bit => Some(64_000),
            VecKind::Sparsevec => None,
        }
    }

    /// Bytes per row in an index build: (8 + 4·dims) for vector, (8 + 2·dims) for halfvec,
    /// (8 + dims/8) for bit.
    pub fn row_bytes(self, dims: u32) -> Option<u64> {
        let d = dims as u64;
        match self {
            VecKind::Vector => Some(8 + 4 * d),
            VecKind::Halfvec => Some(8 + 2 * d),
            VecKind::Bit => Some(8 + d.div_ceil(8)),
            VecKind::Sparsevec => None,
        }
    }

    /// The kind an operator class is for (`vector_cosine_ops` → vector).
    pub fn of_opclass(opclass: &str) -> Option<VecKind> {
        let o = normalize_name(opclass);
        let o = o.rsplit('.').next().unwrap_or(&o);
        if !o.ends_with("_ops") {
            return None;
        }
        [
            ("vector_", VecKind::Vector),
            ("halfvec_", VecKind::Halfvec),
            ("sparsevec_", VecKind::Sparsevec),
            ("bit_", VecKind::Bit),
        ]
        .into_iter()
        .find(|(p, _)| o.starts_with(p))
        .map(|(_, k)| k)
    }
}

/// `vector(384)` → (Vector, Some(384)); `public.halfvec` → (Halfvec, None); other types None.
pub fn vector_type(ty: &str) -> Option<(VecKind, Option<u32>)> {
    let t: String = ty
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '"')
        .collect::<String>()
        .to_ascii_lowercase();
    if t.ends_with("[]") {
        return None;
    }
    let t = t.rsplit_once('.').map(|(_, b)| b.to_string()).unwrap_or(t);
    let (base, args) = match t.split_once('(') {
        Some((b, rest)) => (b.to_string(), Some(rest.trim_end_matches(')').to_string())),
        None => (t.clone(), None),
    };
    let kind = match base.as_str() {
        "vector" => VecKind::Vector,
        "halfvec" => VecKind::Halfvec,
        "sparsevec" => VecKind::Sparsevec,
        "bit" => VecKind::Bit,
        _ => return None,
    };
    let dims = args.and_then(|a| a.parse::<u32>().ok());
    Some((kind, dims))
}

/// The table an `ALTER TABLE` names, normalized as the model keys it.
pub(crate) fn altered_table(at: &ast::AlterTable) -> Option<String> {
    at.table_relation_name()
        .and_then(|r| r.table_name_ref())
        .map(|n| normalize_name(&text(&n)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vector_types_are_recognised() {
        assert_eq!(
            vector_type("vector(384)"),
            Some((VecKind::Vector, Some(384)))
        );
        assert_eq!(
            vector_type("public.HALFVEC( 3000 )"),
            Some((VecKind::Halfvec, Some(3000)))
        );
        assert_eq!(vector_type("bit(64)"), Some((VecKind::Bit, Some(64))));
        assert_eq!(vector_type("vector"), Some((VecKind::Vector, None)));
        assert_eq!(vector_type("vector(3)[]"), None);
        assert_eq!(vector_type("text"), None);
        assert_eq!(
            VecKind::of_opclass("vector_cosine_ops"),
            Some(VecKind::Vector)
        );
        assert_eq!(
            VecKind::of_opclass("halfvec_l2_ops"),
            Some(VecKind::Halfvec)
        );
        assert_eq!(VecKind::of_opclass("bit_hamming_ops"), Some(VecKind::Bit));
        assert_eq!(VecKind::of_opclass("text_pattern_ops"), None);
    }
}
