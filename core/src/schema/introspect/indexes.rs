//! Indexes of tables and materialized views that do not belong to a constraint: name,
//! uniqueness, method, the definition without its name, WITH parameters and predicate
//! ([`index_body`]), the columns they use, and their comments.

use super::relations::Relations;
use super::{query, USER_NS};
use crate::error::Result;
use crate::schema::model::Index;
use postgres::Transaction;
use std::collections::HashMap;

/// Relation oid -> its indexes.
pub(super) fn read_indexes(
    tx: &mut Transaction,
    rels: &Relations,
) -> Result<HashMap<u32, Vec<Index>>> {
    let mut indexes: HashMap<u32, Vec<Index>> = HashMap::new();
    for r in query(tx, "indexes", &format!(
        "SELECT i.indrelid, ic.relname::text, pg_catalog.quote_ident(ic.relname), pg_catalog.pg_get_indexdef(i.indexrelid), am.amname::text,
                COALESCE(ic.reloptions, '{{}}')::text[], i.indisunique, pg_catalog.pg_get_expr(i.indpred, i.indrelid),
                ARRAY(SELECT DISTINCT a.attname::text FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                      WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = i.indexrelid AND d.refobjid = i.indrelid AND d.refobjsubid > 0 ORDER BY 1),
                pg_catalog.obj_description(i.indexrelid, 'pg_class')
         FROM pg_catalog.pg_index i
         JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
         JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_catalog.pg_am am ON am.oid = ic.relam
         WHERE c.relkind IN ('r', 'm', 'p') AND {USER_NS}
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid AND k.contype IN ('p', 'u', 'x'))"
    ))? {
        let relid: u32 = r.get(0);
        if !rels.contains_key(&relid) {
            continue;
        }
        let unique: bool = r.get(6);
        let quoted: String = r.get(2);
        let def: String = r.get(3);
        let options: Vec<String> = r.get(5);
        let predicate: Option<String> = r.get(7);
        let params: Vec<(String, String)> =
            options.iter().map(|o| o.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).unwrap_or((o.clone(), String::new()))).collect();
        indexes.entry(relid).or_default().push(Index {
            name: r.get(1),
            unique,
            method: r.get(4),
            body: index_body(&def, &quoted, unique, &params, predicate.as_deref()),
            params,
            predicate,
            columns: r.get(8),
            comment: r.get(9),
        });
    }
    Ok(indexes)
}

/// `pg_get_indexdef` minus `CREATE [UNIQUE] INDEX name ON `, ` WITH (...)` and ` WHERE ...`:
/// what stays is `[ONLY ]table USING method (keys)[ INCLUDE (...)][ NULLS NOT DISTINCT]`.
pub fn index_body(
    def: &str,
    quoted_name: &str,
    unique: bool,
    params: &[(String, String)],
    predicate: Option<&str>,
) -> String {
    let prefix = format!(
        "CREATE {}INDEX {quoted_name} ON ",
        if unique { "UNIQUE " } else { "" }
    );
    let mut body = def.strip_prefix(&prefix).unwrap_or(def).to_string();
    if let Some(p) = predicate {
        if let Some(b) = body.strip_suffix(&format!(" WHERE {p}")) {
            body = b.to_string();
        }
    }
    if !params.is_empty() {
        let with = format!(
            " WITH ({})",
            params
                .iter()
                .map(|(k, v)| format!("{k}='{}'", v.replace('\'', "''")))
                .collect::<Vec<_>>()
                .join(", ")
        );
        if let Some(b) = body.strip_suffix(&with) {
            body = b.to_string();
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_body_strips_name_with_and_where() {
        let p = vec![
            ("m".to_string(), "16".to_string()),
            ("ef_construction".to_string(), "64".to_string()),
        ];
        assert_eq!(
            index_body(
                "CREATE INDEX t_e ON public.t USING hnsw (e public.vector_cosine_ops) WITH (m='16', ef_construction='64')",
                "t_e",
                false,
                &p,
                None
            ),
            "public.t USING hnsw (e public.vector_cosine_ops)"
        );
        assert_eq!(
            index_body("CREATE UNIQUE INDEX \"X\" ON public.t USING btree (lower(n)) INCLUDE (id) WHERE (id > 3)", "\"X\"", true, &[], Some("(id > 3)")),
            "public.t USING btree (lower(n)) INCLUDE (id)"
        );
    }
}
