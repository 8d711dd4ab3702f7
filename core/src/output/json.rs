//! `--format json`: stable, documented shapes for scripts and CI (see `docs/json.md`). Every
//! document has `"version": 1`; fields are only ever added, never renamed or removed, within a
//! version. JSON goes to stdout; logs stay on stderr.

use crate::commands::check::CheckReport;
use crate::db::records::AuditRow;
use crate::db::VersionTable;
use crate::error::{Detail, Error};
use crate::exec::{RunError, RunReport};
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
        "programs": n.map(|n| n.programs.clone()).unwrap_or_default(),
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

/// `migrate-check`'s document; `lint` and `round_trip` only when they were asked for.
pub fn check(report: &CheckReport) -> Value {
    let mut doc = json!({
        "version": FORMAT_VERSION,
        "ok": report.ok(),
        "problems": report.problems.iter().map(|p| json!({"code": p.code, "message": p.message})).collect::<Vec<_>>(),
        "script_heads": report.heads,
        "current": report.current,
        "pending": report.pending,
        "drift_check": report.drift,
        "findings": report.findings.iter().map(|p| json!({"code": p.code, "message": p.message})).collect::<Vec<_>>(),
    });
    if let Some(l) = &report.lint {
        doc["lint"] = crate::output::lint::json(l);
    }
    if let Some(r) = &report.round_trip {
        doc["round_trip"] = json!({
            "passed": r.passed,
            "failure": r.failure.as_ref().map(|f| json!({
                "revision": f.revision, "path": f.path, "stage": f.stage, "details": f.details,
            })),
            "accepted": r.accepted,
            "duration_ms": r.elapsed.as_secs_f64() * 1000.0,
        });
    }
    doc
}

/// The `--dry-run` plan; each step says which of the run's transactions it is in
/// (`max_steps`: as in [`crate::output::text::describe_plan`]).
pub fn plan(
    project: &Project,
    table: &VersionTable,
    plan: &Plan,
    max_steps: Option<usize>,
) -> Value {
    let segments = project.segments(plan, max_steps);
    let steps: Vec<Value> = plan
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let script = project.script(&s.revision).ok();
            let transaction = segments.iter().position(|seg| seg.steps.contains(&i));
            json!({
                "transaction": transaction.map(|k| k + 1),
                "revision": s.revision,
                "direction": direction(s.direction),
                "from": s.from,
                "to": s.to,
                "message": script.map(|x| x.message.clone()).unwrap_or_default(),
                "path": script.map(|x| x.path.display().to_string()).unwrap_or_default(),
                "transactional": script.map(|x| x.runs_in_transaction(s.direction)).unwrap_or(true),
                "program": script.and_then(|x| x.program(s.direction)).map(|p| p.command.clone()),
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

/// Milliseconds to the microsecond: `12.345`.
fn millis(d: std::time::Duration) -> f64 {
    (d.as_micros() as f64) / 1000.0
}

fn direction(d: Direction) -> &'static str {
    match d {
        Direction::Up => "up",
        Direction::Down => "down",
    }
}

fn steps(report: &RunReport) -> Vec<Value> {
    report
        .steps
        .iter()
        .map(|s| {
            json!({
                "revision": s.revision,
                "direction": direction(s.direction),
                "duration_ms": millis(s.duration),
            })
        })
        .collect()
}

/// A completed run of `migrate-up`/`migrate-down`: the committed steps with their durations
/// and the heads before and after.
pub fn run_report(action: &str, report: &RunReport) -> Value {
    json!({
        "version": FORMAT_VERSION,
        "action": action,
        "ok": true,
        "from_heads": report.start_heads,
        "to_heads": report.end_heads,
        "steps": steps(report),
        "duration_ms": millis(report.duration),
    })
}

/// A run that failed: what it committed, where the database is, whether the failed step was
/// rolled back, and the error. `state` is null for a refusal before anything ran.
pub fn run_failure(action: &str, e: &RunError) -> Value {
    let state = e.state.as_ref().map(|st| {
        json!({
            "failed_step": st.failed_step,
            "rolled_back": st.rolled_back,
            "program_step": st.program_step,
            "backfill_step": st.backfill_step,
            "nothing_applied": st.nothing_applied,
            "created_tables": st.created_tables.iter().map(|t| t.replace('"', "")).collect::<Vec<_>>(),
            "batch": st.batch.map(|b| json!({"number": b.number, "of": b.of})),
            "description": st.describe(&e.report),
        })
    });
    json!({
        "version": FORMAT_VERSION,
        "action": action,
        "ok": false,
        "from_heads": e.report.start_heads,
        "to_heads": e.report.end_heads,
        "steps": steps(&e.report),
        "duration_ms": millis(e.report.duration),
        "state": state,
        "error": error(&e.error),
    })
}

/// Any error, as the `"error"` member of a failure document.
pub fn error(e: &Error) -> Value {
    json!({
        "kind": e.kind.name(),
        "exit_code": e.exit_code(),
        "message": crate::config::redact_url_text(&e.full_message()),
        "hint": e.hint.as_deref().map(crate::config::redact_url_text),
        "sqlstate": match &e.detail { Detail::Sql { sqlstate } => Some(sqlstate.clone()), _ => None },
    })
}

/// `migrate-stamp`: the heads the version table was set to.
pub fn stamped(to_heads: &[String]) -> Value {
    json!({"version": FORMAT_VERSION, "to_heads": to_heads})
}

/// `migrate-stamp --dry-run`: the version-table change it would make.
pub fn stamp_dry_run(from_heads: &[String], to_heads: &[String]) -> Value {
    json!({"version": FORMAT_VERSION, "from_heads": from_heads, "to_heads": to_heads, "dry_run": true})
}

/// `migrate-stamp --rehash`: each revision re-recorded, `(revision, old checksum, new)`.
pub fn rehashed(done: &[(String, String, String)]) -> Value {
    let done: Vec<Value> = done
        .iter()
        .map(|(rev, old, new)| json!({"revision": rev, "old": old, "new": new}))
        .collect();
    json!({"version": FORMAT_VERSION, "rehashed": done})
}

/// `migrate-revision`: the revisions written (with `dry_run`, those that would be, with their
/// `text`), each `(path, revision, text)`; none with `nothing_to_do` (autogenerate found no
/// change).
pub fn revisions_written(
    dry_run: bool,
    revisions: &[(std::path::PathBuf, String, String)],
) -> Value {
    let list: Vec<Value> = revisions
        .iter()
        .map(|(path, rev, text)| {
            let mut v = json!({"path": path.display().to_string(), "revision": rev});
            if dry_run {
                v["text"] = json!(text);
            }
            v
        })
        .collect();
    json!({"version": FORMAT_VERSION, "dry_run": dry_run, "nothing_to_do": revisions.is_empty(), "revisions": list})
}

/// `migrate-revision --squash`: the baseline written.
pub fn baseline_written(revision: &str, path: &std::path::Path) -> Value {
    json!({
        "version": FORMAT_VERSION,
        "ok": true,
        "baseline": {"revision": revision, "path": path.display().to_string()},
    })
}

/// Pretty JSON and a newline.
pub fn to_string(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|_| "{}".into());
    s.push('\n');
    s
}

/// The event stream of `--format json` (one compact object a line, on stderr; see
/// `docs/json.md`): every event has `"event"` and the format version.
pub mod events {
    use super::{millis, FORMAT_VERSION};
    use crate::exec::watch::{Blocker, Heartbeat, Retry, ServerNotice, StatementAt};
    use serde_json::{json, Value};

    fn at(a: &StatementAt) -> Value {
        json!({"revision": a.revision, "path": a.path, "line": a.line, "statement": a.first_line})
    }

    fn blockers(b: &[Blocker]) -> Value {
        b.iter()
            .map(|b| {
                json!({
                    "pid": b.pid,
                    "application_name": b.application_name,
                    "state": b.state,
                    "transaction_age_ms": b.xact_age.map(millis),
                    "query": b.query.lines().next().unwrap_or(""),
                })
            })
            .collect()
    }

    pub fn step_started(revision: &str, direction: &str, title: &str) -> Value {
        json!({"version": FORMAT_VERSION, "event": "step_started", "revision": revision,
               "direction": direction, "title": title})
    }

    pub fn step_finished(revision: &str, d: std::time::Duration) -> Value {
        json!({"version": FORMAT_VERSION, "event": "step_finished", "revision": revision,
               "duration_ms": millis(d)})
    }

    pub fn heartbeat(hb: &Heartbeat) -> Value {
        let progress = hb.progress.as_ref().map(|p| {
            json!({"command": p.command, "phase": p.phase, "done": p.done, "total": p.total,
                   "unit": p.unit, "percent": p.percent(), "eta_ms": p.eta.map(millis),
                   "eta_at_least": p.eta_at_least, "eta_note": p.eta_note})
        });
        json!({"version": FORMAT_VERSION, "event": "heartbeat", "at": at(&hb.at),
               "elapsed_ms": millis(hb.elapsed), "wait_event": hb.wait_event,
               "progress": progress, "blockers": blockers(&hb.blockers),
               "text": hb.describe()})
    }

    pub fn notice(n: &ServerNotice) -> Value {
        json!({"version": FORMAT_VERSION, "event": "notice", "at": at(&n.at),
               "severity": n.severity, "message": n.message, "detail": n.detail, "hint": n.hint})
    }

    pub fn retry(r: &Retry) -> Value {
        json!({"version": FORMAT_VERSION, "event": "retry", "revision": r.revision,
               "attempt": r.attempt, "of": r.of, "wait_ms": millis(r.wait),
               "blockers": blockers(&r.blockers), "repeats": r.repeats, "cleaned": r.cleaned,
               "text": r.describe()})
    }

    /// A line a program step's program wrote (`stream`: `stdout` or `stderr`), as it came.
    pub fn program_output(revision: &str, stream: &str, line: &str) -> Value {
        json!({"version": FORMAT_VERSION, "event": "program_output", "revision": revision,
               "stream": stream, "line": line})
    }

    pub fn run_finished(steps: usize, end_heads: &[String], d: std::time::Duration) -> Value {
        json!({"version": FORMAT_VERSION, "event": "run_finished", "steps": steps,
               "to_heads": end_heads, "duration_ms": millis(d)})
    }

    /// A backfill's event: `backfill_started`, `backfill_progress` (at most once a second),
    /// `backfill_paused` (with the reason), `backfill_resumed`.
    pub fn backfill(ev: &crate::exec::BackfillEvent) -> Value {
        use crate::exec::BackfillEvent as E;
        let text = ev.describe();
        match ev {
            E::Started {
                revision,
                target,
                from,
                to,
                resumed,
            } => json!({
                "version": FORMAT_VERSION, "event": "backfill_started", "revision": revision,
                "target": target, "from": from, "to": to,
                "resumed": resumed.map(|(rows, ranges)| json!({"rows": rows, "ranges": ranges})),
                "text": text}),
            E::Progress(p) => json!({
                "version": FORMAT_VERSION, "event": "backfill_progress", "revision": p.revision,
                "target": p.target, "done_to": p.done_to, "end": p.end,
                "percent": (p.fraction * 1000.0).round() / 10.0, "rows": p.rows,
                "ranges": p.ranges, "rows_per_second": p.rate.round(), "width": p.width,
                "last_range_ms": millis(p.last_range), "eta_ms": p.eta.map(millis),
                "text": text}),
            E::Paused { revision, reason } => json!({
                "version": FORMAT_VERSION, "event": "backfill_paused", "revision": revision,
                "reason": reason, "text": text}),
            E::Resumed {
                revision,
                paused_for,
            } => json!({
                "version": FORMAT_VERSION, "event": "backfill_resumed", "revision": revision,
                "paused_ms": millis(*paused_for), "text": text}),
        }
    }

    /// With `--batch N`: batch `number` of `of` committed; the database is at `heads`.
    pub fn batch_committed(number: usize, of: usize, heads: &[String]) -> Value {
        json!({"version": FORMAT_VERSION, "event": "batch_committed", "batch": number,
               "of": of, "to_heads": heads})
    }
}
