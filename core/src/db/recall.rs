//! The recall of a vector column's ANN index (`migrate-check --recall <table>.<column>` and a
//! run's `-- check: recall` steps): how many of the true nearest neighbours the
//! column's ANN index finds. An HNSW or IVFFlat index answers fast by answering approximately;
//! built with parameters too small for the data, or over a column whose values changed kind
//! (a new embedding model, half precision), it can return mostly wrong neighbours and nothing
//! says so. This measures it where it runs.
//!
//! Queries are the column's own vectors, a random sample of the rows. Each is asked twice, in
//! its own read-only transaction: through the index (sequential scans off, so the planner uses
//! it even on a small table; at the session's `hnsw.ef_search` / `ivfflat.probes`), and exactly
//! (index scans off). Recall@k of one query is the share of the index's k results at most as far
//! as the exact k-th (ties count as found); the report gives the mean, and the latency of both.
//! Under the threshold (default 0.9) the check fails.

use crate::error::{Error, Result};
use postgres::{Client, SimpleQueryMessage};
use std::time::{Duration, Instant};

/// What to measure.
#[derive(Debug, Clone)]
pub struct RecallOptions {
    /// `table.column` or `schema.table.column`.
    pub target: String,
    /// Neighbours compared per query (default 10).
    pub k: usize,
    /// Queries sampled (default 100).
    pub queries: usize,
    /// The lowest mean recall that passes (default 0.9).
    pub threshold: f64,
    /// Measure this index (by name) instead of the first ANN index on the column.
    pub index: Option<String>,
}

impl RecallOptions {
    pub fn new(target: &str) -> RecallOptions {
        RecallOptions {
            target: target.to_string(),
            k: 10,
            queries: 100,
            threshold: 0.9,
            index: None,
        }
    }
}

/// The measurement.
#[derive(Debug, Clone, PartialEq)]
pub struct RecallReport {
    pub table: String,
    pub column: String,
    /// The index the planner used, its method and operator class, and the distance operator.
    pub index: String,
    pub method: String,
    pub opclass: String,
    pub operator: String,
    /// `hnsw.ef_search` or `ivfflat.probes` as the session had it.
    pub search_setting: String,
    pub k: usize,
    pub queries: usize,
    /// Mean recall@k over the queries, and the lowest one.
    pub recall: f64,
    pub worst: f64,
    pub threshold: f64,
    /// Latencies: median and 99th percentile, through the index and exact.
    pub index_p50: Duration,
    pub index_p99: Duration,
    pub exact_p50: Duration,
    pub exact_p99: Duration,
}

impl RecallReport {
    pub fn ok(&self) -> bool {
        self.recall >= self.threshold
    }
}

/// The distance operator an operator class serves: `<->` for `*_l2_ops`, `<=>` cosine,
/// `<#>` inner product, `<+>` L1, `<~>` Hamming, `<%>` Jaccard.
pub fn operator_for(opclass: &str) -> Option<&'static str> {
    let o = opclass.rsplit('.').next().unwrap_or(opclass);
    [
        ("_l2_ops", "<->"),
        ("_cosine_ops", "<=>"),
        ("_ip_ops", "<#>"),
        ("_l1_ops", "<+>"),
        ("_hamming_ops", "<~>"),
        ("_jaccard_ops", "<%>"),
    ]
    .into_iter()
    .find_map(|(suffix, op)| o.ends_with(suffix).then_some(op))
}

/// Recall@k of one query: the share of the index's results at most as far as the exact k-th
/// result (a tie with it counts as found). `exact` is sorted nearest first.
pub fn query_recall(index: &[f64], exact: &[f64]) -> f64 {
    let Some(&kth) = exact.last() else {
        return 1.0;
    };
    let eps = 1e-6 * kth.abs().max(1.0);
    let found = index.iter().filter(|d| **d <= kth + eps).count();
    (found.min(exact.len())) as f64 / exact.len() as f64
}

/// The `p`-th percentile (0–100) of `v` (sorted here).
pub fn percentile(v: &mut [Duration], p: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    v.sort();
    let i = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
    v[i.min(v.len() - 1)]
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
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

/// Measures the recall of the index on `opts.target` on `client`, outside any open
/// transaction (each query runs in a read-only transaction of its own, rolled back). Used by
/// `migrate-check --recall` and by the check steps of a run (`-- check: recall ...`).
pub fn measure(client: &mut Client, opts: &RecallOptions) -> Result<RecallReport> {
    let (relation, column) = opts.target.rsplit_once('.').ok_or_else(|| {
        Error::usage(format!("--recall {}: not <table>.<column>", opts.target))
            .with_hint("name the vector column with its table, e.g. --recall chunks.embedding")
    })?;
    if opts.k == 0 || opts.queries == 0 {
        return Err(Error::usage(
            "--recall-k and --recall-queries must be at least 1",
        ));
    }
    if !(0.0..=1.0).contains(&opts.threshold) {
        return Err(Error::usage(format!(
            "--recall-threshold {}: a share between 0 and 1 (0.9: nine of ten neighbours found)",
            opts.threshold
        )));
    }
    // the column, and the ANN indexes whose first key is it or a cast of it
    let found = rows(
        client,
        &format!(
            "SELECT c.oid::regclass::text, i.indexrelid::regclass::text, am.amname::text, op.opcname::text,
                    pg_get_indexdef(i.indexrelid, 1, true), a.attname::text
               FROM pg_class c
               JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = {col} AND NOT a.attisdropped
               LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisvalid
               LEFT JOIN pg_class ic ON ic.oid = i.indexrelid
               LEFT JOIN pg_am am ON am.oid = ic.relam AND am.amname IN ('hnsw', 'ivfflat')
               LEFT JOIN pg_opclass op ON op.oid = i.indclass[0]
              WHERE c.oid = to_regclass({rel})
              ORDER BY i.indexrelid",
            col = literal(column),
            rel = literal(relation),
        ),
    )?;
    if found.is_empty() {
        return Err(Error::usage(format!(
            "--recall {}: no column {column} in a table {relation}",
            opts.target
        ))
        .with_hint("name an existing table and its vector column"));
    }
    let table = found[0][0].clone().unwrap_or_default();
    let col = quote_ident(column);
    let index = found.iter().find(|r| {
        let named = match &opts.index {
            None => true,
            Some(want) => r[1].as_deref().is_some_and(|n| {
                n == want || n.rsplit('.').next().map(|b| b.trim_matches('"')) == Some(want)
            }),
        };
        // a named index may have any expression over the column as its key
        named
            && r[2].is_some()
            && (opts.index.is_some() && r[4].is_some()
                || r[4].as_deref().is_some_and(|key| {
                    let k = key.trim_matches(|c| c == '(' || c == ')');
                    k == column
                        || k == col
                        || k.starts_with(&format!("{column}::"))
                        || k.starts_with(&format!("{col}::"))
                }))
    });
    let Some(ix) = index else {
        return Err(Error::new(
            crate::error::ErrorKind::Usage,
            format!("--recall {}: {table}.{column} has no valid hnsw or ivfflat index", opts.target),
        )
        .with_hint("build one first (CREATE INDEX CONCURRENTLY ... USING hnsw (column vector_cosine_ops)); recall is the index's"));
    };
    let (index_name, method, opclass, key) = (
        ix[1].clone().unwrap_or_default(),
        ix[2].clone().unwrap_or_default(),
        ix[3].clone().unwrap_or_default(),
        ix[4].clone().unwrap_or_default(),
    );
    let operator = operator_for(&opclass).ok_or_else(|| {
        Error::usage(format!(
            "--recall: the operator class {opclass} of {index_name} serves no distance operator retort knows"
        ))
    })?;
    let search_name = if method == "hnsw" {
        "hnsw.ef_search"
    } else {
        "ivfflat.probes"
    };
    let search_setting = rows(
        client,
        &format!("SELECT current_setting({}, true)", literal(search_name)),
    )?
    .first()
    .and_then(|r| r[0].clone())
    .map(|v| format!("{search_name} = {v}"))
    .unwrap_or_else(|| format!("{search_name} = default"));
    // the sample: rows with a value, spread over the table
    let sample = rows(
        client,
        &format!(
            "SELECT ctid::text FROM {table} WHERE {col} IS NOT NULL ORDER BY random() LIMIT {}",
            opts.queries
        ),
    )?;
    if sample.is_empty() {
        return Err(Error::usage(format!(
            "--recall {}: {table} has no row with a value in {column} to query with",
            opts.target
        )));
    }
    let k = opts.k;
    let query = |ctid: &str| {
        format!(
            "SELECT {key} {operator} (SELECT {key} FROM {table} WHERE ctid = {}) FROM {table} \
              WHERE {col} IS NOT NULL ORDER BY {key} {operator} (SELECT {key} FROM {table} WHERE ctid = {}) LIMIT {k}",
            literal(ctid),
            literal(ctid)
        )
    };
    let run = |client: &mut Client, settings: &str, sql: &str| -> Result<(Vec<f64>, Duration)> {
        client
            .batch_execute(&format!("BEGIN READ ONLY; {settings}"))
            .map_err(|e| Error::new(crate::error::ErrorKind::Database, format!("{e}")))?;
        let t = Instant::now();
        let r = rows(client, sql);
        let took = t.elapsed();
        let _ = client.batch_execute("ROLLBACK");
        let d = r?
            .iter()
            .filter_map(|r| r[0].as_deref()?.parse::<f64>().ok())
            .collect();
        Ok((d, took))
    };
    const VIA_INDEX: &str = "SET LOCAL enable_seqscan = off;";
    const EXACT: &str = "SET LOCAL enable_indexscan = off; SET LOCAL enable_bitmapscan = off;";
    // the index must be what answers: a plan that does not use it measures nothing
    let first = sample[0][0].clone().unwrap_or_default();
    client
        .batch_execute(&format!("BEGIN READ ONLY; {VIA_INDEX}"))
        .map_err(|e| Error::new(crate::error::ErrorKind::Database, format!("{e}")))?;
    let plan = rows(client, &format!("EXPLAIN {}", query(&first)));
    let _ = client.batch_execute("ROLLBACK");
    let plan: String = plan?
        .iter()
        .filter_map(|r| r[0].clone())
        .collect::<Vec<_>>()
        .join("\n");
    let bare = index_name
        .rsplit('.')
        .next()
        .unwrap_or(&index_name)
        .trim_matches('"');
    if !plan.contains(bare) {
        return Err(Error::new(
            crate::error::ErrorKind::Usage,
            format!(
                "--recall {}: the query ORDER BY {key} {operator} ... does not use {index_name}:\n{plan}",
                opts.target
            ),
        ));
    }
    let (mut sum, mut worst) = (0.0, 1.0f64);
    let (mut via_index, mut exact) = (Vec::new(), Vec::new());
    for r in &sample {
        let ctid = r[0].clone().unwrap_or_default();
        let sql = query(&ctid);
        let (approx, t1) = run(client, VIA_INDEX, &sql)?;
        let (truth, t2) = run(client, EXACT, &sql)?;
        let q = query_recall(&approx, &truth);
        sum += q;
        worst = worst.min(q);
        via_index.push(t1);
        exact.push(t2);
    }
    Ok(RecallReport {
        table,
        column: column.to_string(),
        index: index_name,
        method,
        opclass,
        operator: operator.to_string(),
        search_setting,
        k,
        queries: sample.len(),
        recall: sum / sample.len() as f64,
        worst,
        threshold: opts.threshold,
        index_p50: percentile(&mut via_index, 50.0),
        index_p99: percentile(&mut via_index, 99.0),
        exact_p50: percentile(&mut exact, 50.0),
        exact_p99: percentile(&mut exact, 99.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_classes_name_their_operators() {
        assert_eq!(operator_for("vector_cosine_ops"), Some("<=>"));
        assert_eq!(operator_for("public.halfvec_l2_ops"), Some("<->"));
        assert_eq!(operator_for("vector_ip_ops"), Some("<#>"));
        assert_eq!(operator_for("bit_hamming_ops"), Some("<~>"));
        assert_eq!(operator_for("int4_ops"), None);
    }

    #[test]
    fn recall_counts_ties_with_the_kth_as_found() {
        assert_eq!(query_recall(&[0.1, 0.2, 0.3], &[0.1, 0.2, 0.3]), 1.0);
        // one of three further than the exact third
        assert!((query_recall(&[0.1, 0.2, 0.5], &[0.1, 0.2, 0.3]) - 2.0 / 3.0).abs() < 1e-9);
        // a different row at the same distance as the exact third is as good
        assert_eq!(query_recall(&[0.1, 0.3, 0.3], &[0.1, 0.2, 0.3]), 1.0);
        // the index returning fewer rows than k
        assert_eq!(query_recall(&[0.1], &[0.1, 0.2]), 0.5);
        let mut v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&mut v, 50.0), Duration::from_millis(51));
        assert_eq!(percentile(&mut v, 99.0), Duration::from_millis(99));
    }
}
