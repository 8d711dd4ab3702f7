//! `migrate-check --recall`'s report: one line of text with the recall, the index and the
//! latencies, then `OK` or the problem; and the JSON document (docs/json.md).

use crate::commands::recall::RecallReport;
use serde_json::{json, Value};
use std::time::Duration;

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// `recall@10 0.97 (worst query 0.80) over 100 queries of chunks.embedding through ...`.
pub fn text(r: &RecallReport) -> String {
    let mut out = format!(
        "recall@{} {:.3} (worst query {:.2}) over {} queries of {}.{} through {} ({} {}, ORDER BY ... {} ..., {}); latency p50/p99: {:.1}/{:.1} ms through the index, {:.1}/{:.1} ms exact\n",
        r.k,
        r.recall,
        r.worst,
        r.queries,
        r.table,
        r.column,
        r.index,
        r.method,
        r.opclass,
        r.operator,
        r.search_setting,
        ms(r.index_p50),
        ms(r.index_p99),
        ms(r.exact_p50),
        ms(r.exact_p99),
    );
    if r.ok() {
        out.push_str(&format!("OK: recall at or above {}\n", r.threshold));
    } else {
        out.push_str(&format!(
            "problem [recall]: recall@{} {:.3} of {} is under the threshold {}: rebuild the index with a larger m / ef_construction (HNSW) or lists (IVFFlat), or search with a larger {}\n",
            r.k,
            r.recall,
            r.index,
            r.threshold,
            if r.method == "hnsw" { "hnsw.ef_search" } else { "ivfflat.probes" }
        ));
    }
    out
}

/// The JSON document: `ok`, `problems` (as `migrate-check`'s) and `recall`.
pub fn json(r: &RecallReport) -> Value {
    let problems: Vec<Value> = if r.ok() {
        Vec::new()
    } else {
        vec![json!({
            "code": "recall",
            "message": format!("recall@{} {:.3} of {} is under the threshold {}", r.k, r.recall, r.index, r.threshold),
        })]
    };
    json!({
        "version": crate::output::json::FORMAT_VERSION,
        "ok": r.ok(),
        "problems": problems,
        "recall": {
            "table": r.table,
            "column": r.column,
            "index": r.index,
            "method": r.method,
            "opclass": r.opclass,
            "operator": r.operator,
            "search_setting": r.search_setting,
            "k": r.k,
            "queries": r.queries,
            "recall": r.recall,
            "worst": r.worst,
            "threshold": r.threshold,
            "index_ms": {"p50": ms(r.index_p50), "p99": ms(r.index_p99)},
            "exact_ms": {"p50": ms(r.exact_p50), "p99": ms(r.exact_p99)},
        },
    })
}
