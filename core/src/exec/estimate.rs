//! Before an HNSW build on an existing table: will the graph fit in `maintenance_work_mem`?
//! pgvector builds fast while it does and slows down sharply once it does not (it says so
//! only in a NOTICE, mid-build). The estimate used in practice is
//! (8 + 4·dims) bytes × rows × 1.3 for `vector` (`halfvec`: 2·dims), from the table's row
//! estimate; the warning names the setting that would fit.

/// What an `CREATE INDEX ... USING hnsw (column ...)` statement builds on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HnswBuild {
    /// The table as written (possibly schema-qualified, possibly quoted).
    pub table: String,
    pub column: String,
}

/// Finds the table and the first key column of an HNSW index build; `None` for anything
/// else (an expression key, another method).
pub fn hnsw_build(sql: &str) -> Option<HnswBuild> {
    let lower = sql.to_ascii_lowercase();
    if !lower.trim_start().starts_with("create") || !lower.contains(" index") {
        return None;
    }
    let using = lower.find("using hnsw")?;
    let on = lower[..using].rfind(" on ")?;
    let mut table = sql[on + 4..using].trim();
    if table.to_ascii_lowercase().starts_with("only ") {
        table = table[5..].trim();
    }
    let rest = sql[using + "using hnsw".len()..].trim_start();
    let inner = rest.strip_prefix('(')?.trim_start();
    let end = inner.find(|c: char| c.is_whitespace() || c == ')' || c == ',')?;
    let column = &inner[..end];
    let plain =
        |s: &str| !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || "_.\"".contains(c));
    (plain(table) && plain(column) && !column.contains('(')).then(|| HnswBuild {
        table: table.to_string(),
        column: column.trim_matches('"').to_string(),
    })
}

/// Bytes the graph needs: (8 + bytes per element·dims) × rows × 1.3.
pub fn graph_bytes(rows: f64, dims: i64, halfvec: bool) -> f64 {
    let per = if halfvec { 2.0 } else { 4.0 };
    (8.0 + per * dims as f64) * rows.max(0.0) * 1.3
}

/// `150MB`, `2GB`: a setting value that holds `bytes`, rounded up.
pub fn setting_for(bytes: f64) -> String {
    let mb = (bytes / (1024.0 * 1024.0)).ceil() as u64;
    if mb >= 1024 {
        format!("{}GB", mb.div_ceil(1024))
    } else {
        format!("{}MB", mb.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_hnsw_build_is_recognised_and_sized() {
        assert_eq!(
            hnsw_build("CREATE INDEX CONCURRENTLY docs_e ON public.docs USING hnsw (embedding vector_l2_ops) WITH (m = 16)"),
            Some(HnswBuild { table: "public.docs".into(), column: "embedding".into() })
        );
        assert_eq!(
            hnsw_build("create index on ONLY docs using hnsw (\"Emb\" vector_cosine_ops)")
                .map(|b| b.column),
            Some("Emb".into())
        );
        assert_eq!(hnsw_build("CREATE INDEX x ON docs USING btree (id)"), None);
        assert_eq!(
            hnsw_build("CREATE INDEX x ON docs USING hnsw ((e::halfvec(3)) halfvec_l2_ops)"),
            None
        );
        // 1M x 1536 vector: about 8 GB
        let b = graph_bytes(1_000_000.0, 1536, false);
        assert!((7.0e9..8.5e9).contains(&b), "{b}");
        assert_eq!(setting_for(b), "8GB");
        assert_eq!(setting_for(graph_bytes(30_000.0, 64, false)), "10MB");
        assert!(graph_bytes(10.0, 100, true) < graph_bytes(10.0, 100, false));
    }
}
