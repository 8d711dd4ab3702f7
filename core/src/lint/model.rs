//! What exists before a statement runs, as far as the rules need it: tables (and the revision
//! that created them), their column types, and the vector indexes. Built by walking the
//! scripts in upgrade order, seeded from the database's [`DbFacts`] when there is one.

use super::facts::DbFacts;
use super::text::normalize_name;
use std::collections::HashMap;

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
