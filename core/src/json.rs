//! `--format json`: stable, documented shapes for scripts and CI (see `docs/json.md`). Every
//! document has `"version": 1`; fields are only ever added, never renamed or removed, within a
//! version. JSON goes to stdout; logs stay on stderr.

use crate::commands::check::CheckReport;
use crate::db::records::AuditRow;
use crate::db::VersionTable;
use crate::graph::RevisionGraph;
use crate::plan::{Direction, Plan};
use crate::project::Project;
use serde_json::{json, Value};

pub const FORMAT_VERSION: u32 = 1;

pub fn current(graph: &RevisionGraph, current: &[String]) -> Value {
    let mut heads = graph.heads();
    heads.sort();
    json!({
        "version": FORMAT_VERSION,
        "current": current,
        "effective_heads": graph.effective_heads(current),
        "script_heads": heads,
        "at_heads": crate::history::at_heads(graph, current),
    })
}

pub fn revision(graph: &RevisionGraph, id: &str, current: &[String]) -> Value {
    let n = graph.get(id);
    let heads = graph.heads();
    json!({
        "revision": id,
        "down_revisions": n.map(|n| n.down_revisions.clone()).unwrap_or_default(),
        "depends_on": n.map(|n| n.depends_on.clone()).unwrap_or_default(),
        "branch_labels": graph.branch_labels_of(id),
        "message": n.map(|n| n.message.clone()).unwrap_or_default(),
        "path": n.map(|n| n.source.clone()).unwrap_or_default(),
        "is_head": heads.iter().any(|h| h == id),
        "is_branch_point": graph.is_branch_point(id),
        "is_merge_point": graph.is_merge_point(id),
        "current": current.iter().any(|c| c == id),
    })
}

pub fn history(graph: &RevisionGraph, revs: &[String], current: &[String]) -> Value {
    json!({
        "version": FORMAT_VERSION,
        "revisions": revs.iter().map(|r| revision(graph, r, current)).collect::<Vec<_>>(),
    })
}

/// `migrate-history --heads`: the script heads, as [`history`]'s revisions.
pub fn heads(graph: &RevisionGraph) -> Value {
    history(graph, &graph.heads(), &[])
}

/// `migrate-history --show REV`: one revision object (as in [`history`]) with `"version"`.
pub fn show(graph: &RevisionGraph, id: &str) -> Value {
    let mut v = revision(graph, id, &[]);
    if let Value::Object(map) = &mut v {
        map.insert("version".into(), json!(FORMAT_VERSION));
    }
    v
}

/// `migrate-history --branches`: each branch point, newest first, with its children.
pub fn branches(graph: &RevisionGraph) -> Value {
    let branches: Vec<Value> = graph
        .history_range(None, &[])
        .unwrap_or_default()
        .into_iter()
        .filter(|id| graph.is_branch_point(id))
        .map(|id| json!({ "children": graph.children(&id), "revision": id }))
        .collect();
    json!({ "version": FORMAT_VERSION, "branches": branches })
}

pub fn audit_log(rows: &[AuditRow]) -> Value {
    let entries: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "at": r.at,
                "action": r.action,
                "target": r.target,
                "from_heads": r.from_heads,
                "to_heads": r.to_heads,
                "revisions": r.revisions,
                "lock_wait_ms": r.lock_wait_ms,
                "duration_ms": r.duration_ms,
                "success": r.success,
                "error": r.error,
                "note": r.note,
                "db_user": r.db_user,
                "client_host": r.client_host,
                "application_name": r.application_name,
                "tool_version": r.tool_version,
            })
        })
        .collect();
    json!({ "version": FORMAT_VERSION, "log": entries })
}

pub fn check(report: &CheckReport) -> Value {
    json!({
        "version": FORMAT_VERSION,
        "ok": report.ok(),
        "problems": report.problems.iter().map(|p| json!({"code": p.code, "message": p.message})).collect::<Vec<_>>(),
        "script_heads": report.heads,
        "current": report.current,
        "pending": report.pending,
        "drift_check": report.drift,
    })
}

pub fn plan(project: &Project, table: &VersionTable, plan: &Plan) -> Value {
    let steps: Vec<Value> = plan
        .steps
        .iter()
        .map(|s| {
            let script = project.script(&s.revision).ok();
            json!({
                "revision": s.revision,
                "direction": match s.direction { Direction::Up => "up", Direction::Down => "down" },
                "from": s.from,
                "to": s.to,
                "message": script.map(|x| x.message.clone()).unwrap_or_default(),
                "path": script.map(|x| x.path.display().to_string()).unwrap_or_default(),
                "transactional": script.map(|x| x.transactional).unwrap_or(true),
                "version_table_sql": s.version_ops.iter().map(|op| table.op_sql(op)).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "version": FORMAT_VERSION,
        "from_heads": plan.start_heads,
        "to_heads": plan.end_heads,
        "steps": steps,
    })
}

/// Pretty JSON and a newline.
pub fn to_string(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|_| "{}".into());
    s.push('\n');
    s
}
