//! Timings for `docs/benchmarks.md`:
//! `cargo test -p retort --release --lib graph::bench -- --ignored --nocapture`

use super::tests::{branchy, chain};
use super::*;
use std::time::Instant;

fn ms(t: Instant) -> String {
    format!("{:.1} ms", t.elapsed().as_secs_f64() * 1000.0)
}

fn run(name: &str, nodes: Vec<RevisionNode>) {
    let count = nodes.len();
    let ids: Vec<String> = nodes
        .iter()
        .map(|n| n.id[..10.min(n.id.len())].to_string())
        .collect();
    let t = Instant::now();
    let g = RevisionGraph::new(nodes).expect("valid");
    let t_new = ms(t);
    let t = Instant::now();
    let heads = g.heads();
    let t_heads = ms(t);
    let t = Instant::now();
    let up = g.upgrade_plan(&[], &Target::Heads).expect("plan");
    let t_up = ms(t);
    let t = Instant::now();
    let down = g
        .downgrade_plan(&up.end_heads, &Target::Base)
        .expect("plan");
    let t_down = ms(t);
    let t = Instant::now();
    for id in &ids {
        g.resolve(id).expect("resolves");
    }
    let t_resolve = ms(t);
    let t = Instant::now();
    let all = g.history_range(Some("base:heads"), &heads).expect("range");
    let t_hist = ms(t);
    let t = Instant::now();
    let text = crate::history::format_history(&g, &all, false, &heads, true);
    let t_fmt = ms(t);
    assert_eq!(up.steps.len(), count);
    assert_eq!(down.steps.len(), count);
    assert!(text.lines().count() == count);
    println!(
        "graph {count} revisions ({name}): new {t_new}, heads {t_heads}, upgrade base->heads {t_up}, downgrade heads->base {t_down}, resolve {count} prefixes {t_resolve}, history_range {t_hist}, format_history {t_fmt}"
    );
}

#[test]
#[ignore = "timings; run with --release --ignored --nocapture"]
fn timings() {
    run("chain", chain(10_000));
    run("branchy", branchy(10_000));
}
