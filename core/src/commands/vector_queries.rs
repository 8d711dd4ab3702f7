//! Which of the application's nearest-neighbour queries no index can serve, from
//! `pg_stat_statements`. An HNSW or IVFFlat index serves `ORDER BY <key> <op> ...` only when its
//! key is the same expression and its operator class is for that operator (`<=>` needs
//! `*_cosine_ops`, `<->` `*_l2_ops`, `<#>` `*_ip_ops`): a cosine index under an L2 query, or an
//! index on `(embedding::halfvec(1536))` under `ORDER BY embedding <=> ...`, leaves every query a
//! sequential scan that sorts the whole table, and nothing fails. `migrate-check` reports them
//! as findings (they do not fail the check: a small table may need no index); where the
//! extension is not installed or not loaded it says so in one line and goes on.

use crate::commands::recall::operator_for;
use postgres::{Client, SimpleQueryMessage};

/// One `ORDER BY <key> <op>` of a query: the table it reads (as written) and the key,
/// normalized ([`normalize`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistanceOrder {
    pub table: String,
    pub key: String,
    pub operator: String,
}

/// The distance operators an index can serve.
const OPERATORS: [&str; 4] = ["<->", "<=>", "<#>", "<+>"];

/// A key expression without spaces, quotes, a table qualifier or outer parentheses, lower-case:
/// `d."Embedding"` → `embedding`, `(embedding::halfvec(3))` → `embedding::halfvec(3)`.
pub fn normalize(expr: &str) -> String {
    let mut e: String = expr
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '"')
        .collect::<String>()
        .to_ascii_lowercase();
    while e.starts_with('(') && e.ends_with(')') && balanced(&e[1..e.len() - 1]) {
        e = e[1..e.len() - 1].to_string();
    }
    let (base, cast) = match e.split_once("::") {
        Some((b, c)) => (b.to_string(), Some(c.to_string())),
        None => (e.clone(), None),
    };
    let base = base.trim_start_matches('(');
    let base = base.rsplit('.').next().unwrap_or(base).to_string();
    match cast {
        Some(c) => format!(
            "{base}::{}",
            c.trim_end_matches(')').to_string() + &")".repeat(c.matches('(').count())
        ),
        None => base,
    }
}

fn balanced(s: &str) -> bool {
    let mut depth = 0i32;
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            _ => {}
        }
    }
    depth == 0
}

/// The distance orderings of a (normalized) query text: `SELECT id FROM docs ORDER BY embedding
/// <=> $1 LIMIT $2` → (docs, embedding, <=>). The table is the first one after FROM.
pub fn distance_orders(query: &str) -> Vec<DistanceOrder> {
    let lower = query.to_ascii_lowercase();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = lower[from..].find("order by") {
        let start = from + at + "order by".len();
        from = start;
        let rest = &query[start..];
        let Some((pos, op)) = OPERATORS
            .iter()
            .filter_map(|op| rest.find(op).map(|p| (p, *op)))
            .min_by_key(|(p, _)| *p)
        else {
            continue;
        };
        let key = &rest[..pos];
        if key.trim().is_empty() || key.contains(',') || key.to_ascii_lowercase().contains(" limit")
        {
            continue;
        }
        let Some(f) = lower[..start].rfind(" from ") else {
            continue;
        };
        let table: String = query[f + 6..]
            .trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || "_.\"".contains(*c))
            .collect();
        if table.is_empty() {
            continue;
        }
        out.push(DistanceOrder {
            table,
            key: normalize(key),
            operator: op.to_string(),
        });
    }
    out
}

/// An index as the check sees it: its name, normalized first key, operator class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnIndex {
    pub name: String,
    pub key: String,
    pub opclass: String,
}

/// Why no index serves `order` among `indexes` (of its table), or `None` when one does.
pub fn unserved(order: &DistanceOrder, indexes: &[AnnIndex]) -> Option<String> {
    if indexes
        .iter()
        .any(|i| i.key == order.key && operator_for(&i.opclass) == Some(order.operator.as_str()))
    {
        return None;
    }
    let wants = match order.operator.as_str() {
        "<=>" => "*_cosine_ops",
        "<->" => "*_l2_ops",
        "<#>" => "*_ip_ops",
        _ => "*_l1_ops",
    };
    let near: Vec<String> = indexes
        .iter()
        .map(|i| {
            if i.key != order.key {
                format!(
                    "{} is on {} (the query orders by {})",
                    i.name, i.key, order.key
                )
            } else {
                format!(
                    "{} has {}, which serves {}",
                    i.name,
                    i.opclass,
                    operator_for(&i.opclass).unwrap_or("no distance operator")
                )
            }
        })
        .collect();
    Some(if near.is_empty() {
        format!(
            "no hnsw or ivfflat index on {}.{}: every such query reads and sorts the whole table; build one CONCURRENTLY with {wants}",
            order.table, order.key
        )
    } else {
        format!(
            "no index serves ORDER BY {} {}: {}; it needs an index on {} with {wants}",
            order.key,
            order.operator,
            near.join("; "),
            order.key
        )
    })
}

/// One query no index serves.
#[derive(Debug, Clone, PartialEq)]
pub struct Unserved {
    pub query: String,
    pub calls: i64,
    pub why: String,
}

fn rows(client: &mut Client, sql: &str) -> Option<Vec<Vec<Option<String>>>> {
    let msgs = client.simple_query(sql).ok()?;
    Some(
        msgs.iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(r) => {
                    Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
                }
                _ => None,
            })
            .collect(),
    )
}

/// The queries of `pg_stat_statements` (of this database) that order by a vector distance no
/// index serves; `Err` with the one line to say when the extension cannot be read.
pub fn check(client: &mut Client) -> std::result::Result<Vec<Unserved>, String> {
    let installed = rows(
        client,
        "SELECT n.nspname::text FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_stat_statements'",
    )
    .and_then(|r| r.first().and_then(|r| r[0].clone()));
    let Some(schema) = installed else {
        return Err("pg_stat_statements is not installed in this database: the vector queries' indexes were not checked".into());
    };
    let sql = format!(
        "SELECT query, calls::text FROM \"{}\".pg_stat_statements \
          WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
            AND query ~* 'order\\s+by' AND (query LIKE '%<->%' OR query LIKE '%<=>%' OR query LIKE '%<#>%' OR query LIKE '%<+>%') \
          ORDER BY calls DESC LIMIT 200",
        schema.replace('"', "\"\"")
    );
    let Some(found) = rows(client, &sql) else {
        return Err("pg_stat_statements is installed but cannot be read (is it in shared_preload_libraries?): the vector queries' indexes were not checked".into());
    };
    let mut out = Vec::new();
    for r in found {
        let query = r[0].clone().unwrap_or_default();
        let calls = r[1].as_deref().and_then(|c| c.parse().ok()).unwrap_or(0);
        for order in distance_orders(&query) {
            let lit = order.table.replace('\'', "''");
            let Some(idx) = rows(
                client,
                &format!(
                    "SELECT ic.relname::text, pg_get_indexdef(i.indexrelid, 1, true), op.opcname::text
                       FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
                       JOIN pg_am am ON am.oid = ic.relam AND am.amname IN ('hnsw', 'ivfflat')
                       JOIN pg_opclass op ON op.oid = i.indclass[0]
                      WHERE i.indrelid = to_regclass('{lit}') AND i.indisvalid"
                ),
            ) else {
                continue;
            };
            let indexes: Vec<AnnIndex> = idx
                .iter()
                .map(|r| AnnIndex {
                    name: r[0].clone().unwrap_or_default(),
                    key: normalize(r[1].as_deref().unwrap_or("")),
                    opclass: r[2].clone().unwrap_or_default(),
                })
                .collect();
            if let Some(why) = unserved(&order, &indexes) {
                out.push(Unserved {
                    query: query.clone(),
                    calls,
                    why,
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_orderings_are_found_in_normalized_queries() {
        assert_eq!(
            distance_orders("SELECT id FROM docs ORDER BY embedding <=> $1 LIMIT $2"),
            vec![DistanceOrder {
                table: "docs".into(),
                key: "embedding".into(),
                operator: "<=>".into()
            }]
        );
        let o = distance_orders("select d.id from public.docs d order by (d.\"Embedding\"::halfvec(3)) <-> $1::halfvec(3) limit $2");
        assert_eq!(
            (
                o[0].table.as_str(),
                o[0].key.as_str(),
                o[0].operator.as_str()
            ),
            ("public.docs", "embedding::halfvec(3)", "<->")
        );
        assert!(distance_orders("SELECT id FROM docs ORDER BY id LIMIT $1").is_empty());
        assert_eq!(
            normalize("(embedding::halfvec(3))"),
            "embedding::halfvec(3)"
        );
        assert_eq!(normalize("embedding"), "embedding");
    }

    #[test]
    fn an_index_serves_only_its_key_and_its_operator() {
        let cosine = AnnIndex {
            name: "docs_hnsw".into(),
            key: "embedding".into(),
            opclass: "vector_cosine_ops".into(),
        };
        let order = |key: &str, op: &str| DistanceOrder {
            table: "docs".into(),
            key: key.into(),
            operator: op.into(),
        };
        assert_eq!(
            unserved(&order("embedding", "<=>"), std::slice::from_ref(&cosine)),
            None
        );
        assert_eq!(
            unserved(&order("embedding", "<->"), std::slice::from_ref(&cosine)).unwrap(),
            "no index serves ORDER BY embedding <->: docs_hnsw has vector_cosine_ops, which serves <=>; it needs an index on embedding with *_l2_ops"
        );
        let half = AnnIndex {
            name: "docs_half".into(),
            key: "embedding::halfvec(3)".into(),
            opclass: "halfvec_cosine_ops".into(),
        };
        assert!(
            unserved(&order("embedding", "<=>"), std::slice::from_ref(&half))
                .unwrap()
                .contains("docs_half is on embedding::halfvec(3) (the query orders by embedding)")
        );
        assert_eq!(
            unserved(&order("embedding::halfvec(3)", "<=>"), &[half]),
            None
        );
        assert!(unserved(&order("embedding", "<#>"), &[])
            .unwrap()
            .starts_with("no hnsw or ivfflat index on docs.embedding"));
    }
}
