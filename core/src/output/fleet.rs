//! A fleet run's results for people (the final table, one line per target) and for programs
//! (the JSON document of docs/json.md#fleets). Every name, URL and message goes through URL
//! redaction: a target file's lines are URLs with passwords.

use crate::config::redact_url_text as redact;
use crate::fleet::{FleetWide, Outcome, TargetResult};
use crate::output::json::{self, FORMAT_VERSION};
use crate::output::text::{fmt_duration, plural};
use serde_json::{json, Value};
use std::time::Duration;

/// `<base>` or `b` or `c, d`.
fn short_heads(h: &[String]) -> String {
    if h.is_empty() {
        "<base>".into()
    } else {
        h.join(", ")
    }
}

/// What a failed target's error says in one line: where it failed, and what PostgreSQL said
/// (`migration failed: upgrade b at migrations/b.sql:6: ERROR 42P07: relation "beta" already
/// exists`), and for a backfill where it stopped (`interrupted by SIGINT during 002; backfill
/// 002 stopped at t.id = 238 (237 rows in 34 ranges committed, 8% of [1, 3001))`). The full
/// error, with its hint, is in the JSON document.
pub fn failure_line(message: &str) -> String {
    let mut lines = message.lines();
    let first = lines.next().unwrap_or("").trim_end();
    let rest: Vec<&str> = lines.map(str::trim).collect();
    let mut out = match rest.iter().find(|l| l.starts_with("ERROR ")) {
        Some(pg) => format!("{first}: {pg}"),
        None => first.to_string(),
    };
    if let Some(bf) = rest.iter().find_map(|l| {
        l.strip_prefix("note: ")
            .filter(|n| n.starts_with("backfill "))
    }) {
        out.push_str("; ");
        out.push_str(bf.split("; the next migrate-up").next().unwrap_or(bf));
    }
    out
}

/// A target's result in the command's words: `applied 2` (`reverted 2` for `migrate-down`),
/// `up to date`, its problems, `FAILED: ...`, `not started: ...`. Not redacted.
pub fn result_text(command: &str, r: &TargetResult) -> String {
    match &r.outcome {
        Outcome::Done | Outcome::UpToDate if r.note.is_some() => r.note.clone().unwrap_or_default(),
        Outcome::Done if r.revisions.is_empty() => "ok".into(),
        Outcome::Done if command == "migrate-down" => format!("reverted {}", r.revisions.len()),
        Outcome::Done => format!("applied {}", r.revisions.len()),
        Outcome::UpToDate => "up to date".into(),
        Outcome::Problems(ps) => ps
            .iter()
            .map(|p| match p.code {
                "checksum_mismatch" => format!("edited: {}", p.message),
                "database_drift" => format!("drifted: {}", p.message),
                "unknown_revision" => format!("unknown revision: {}", p.message),
                _ => p.message.clone(),
            })
            .collect::<Vec<_>>()
            .join("; "),
        Outcome::Failed(e) => format!("FAILED: {}", failure_line(&e.message)),
        Outcome::NotStarted(why) => format!("not started: {why}"),
    }
}

/// The log line of a finished target (without a terminal): `acme: applied 2`, or for a failed
/// one (logged as an error) `acme: migration failed: ...: ERROR ...`; redacted.
pub fn finished_line(command: &str, r: &TargetResult) -> String {
    let what = match &r.outcome {
        Outcome::Failed(e) => failure_line(&e.message),
        _ => result_text(command, r),
    };
    redact(&format!("{}: {what}", r.name))
}

/// The stable code of an outcome, as `result` in the JSON document.
pub fn result_code(o: &Outcome) -> &'static str {
    match o {
        Outcome::Done => "done",
        Outcome::UpToDate => "up_to_date",
        Outcome::Problems(_) => "problems",
        Outcome::Failed(_) => "failed",
        Outcome::NotStarted(_) => "not_started",
    }
}

/// What the summary line calls a target that is fine and not "up to date", per command.
fn done_word(command: &str) -> &'static str {
    match command {
        "migrate-history" => "behind",
        "migrate-current" => "read",
        "migrate-stamp" => "stamped",
        _ => "done",
    }
}

/// The opening line of a run: `migrate-up on 12 targets, 4 at once, the first 2 as canaries`.
pub fn start_line(command: &str, targets: usize, parallel: usize, canary: usize) -> String {
    format!(
        "{command} on {targets} target{}, {parallel} at once{}",
        plural(targets),
        if canary > 0 {
            format!(", the first {canary} as canaries")
        } else {
            String::new()
        }
    )
}

/// The final table: name, from → to, duration, result; then the fleet-wide lines (schema
/// drift), then one summary line.
pub fn table(
    command: &str,
    results: &[TargetResult],
    wide: &FleetWide,
    elapsed: Duration,
) -> String {
    let rows: Vec<[String; 4]> = results
        .iter()
        .map(|r| {
            let moved = match &r.outcome {
                Outcome::NotStarted(_) => "-".to_string(),
                Outcome::Failed(_) if r.from.is_empty() && r.to.is_empty() => "-".to_string(),
                _ => format!("{} → {}", short_heads(&r.from), short_heads(&r.to)),
            };
            let d = match r.outcome {
                Outcome::NotStarted(_) => "-".into(),
                _ => fmt_duration(r.duration),
            };
            [redact(&r.name), moved, d, redact(&result_text(command, r))]
        })
        .collect();
    let head = ["target", "from → to", "duration", "result"];
    let mut w = head.map(|h| h.chars().count());
    for row in &rows {
        for (i, c) in row.iter().enumerate().take(3) {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: [&str; 4]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            s.push_str(c);
            if i < 3 {
                s.push_str(&" ".repeat(w[i] - c.chars().count() + 2));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(head);
    for row in &rows {
        out.push_str(&line([&row[0], &row[1], &row[2], &row[3]]));
    }
    if let Some(d) = &wide.drift {
        out.push_str(&format!("schema drift: {}\n", redact(d)));
    }
    for p in &wide.problems {
        out.push_str(&format!("problem [{}]: {}\n", p.code, redact(&p.message)));
    }
    let count = |f: &dyn Fn(&Outcome) -> bool| results.iter().filter(|r| f(&r.outcome)).count();
    let applied = count(&|o| matches!(o, Outcome::Done));
    let up = count(&|o| matches!(o, Outcome::UpToDate));
    let problems = count(&|o| matches!(o, Outcome::Problems(_)));
    let failed = count(&|o| matches!(o, Outcome::Failed(_)));
    let not_started = count(&|o| matches!(o, Outcome::NotStarted(_)));
    out.push_str(&format!(
        "{} target{} in {}: {applied} {}, {up} {}, {problems} with problems, {failed} failed, {not_started} not started\n",
        results.len(),
        plural(results.len()),
        fmt_duration(elapsed),
        done_word(command),
        if command == "migrate-history" { "at the heads" } else { "up to date" },
    ));
    out
}

/// The JSON document of a fleet run (docs/json.md#fleets); `code` is the run's exit code.
pub fn json(
    command: &str,
    results: &[TargetResult],
    wide: &FleetWide,
    elapsed: Duration,
    code: i32,
) -> Value {
    let problems = |ps: &[crate::commands::check::Problem]| {
        ps.iter()
            .map(|p| json!({"code": p.code, "message": redact(&p.message)}))
            .collect::<Vec<_>>()
    };
    let targets: Vec<Value> = results
        .iter()
        .map(|r| {
            json!({
                "name": redact(&r.name),
                "url": r.shown,
                "result": result_code(&r.outcome),
                "from": r.from,
                "to": r.to,
                "revisions": r.revisions,
                "duration_ms": r.duration.as_millis() as u64,
                "problems": match &r.outcome {
                    Outcome::Problems(ps) => problems(ps),
                    _ => Vec::new(),
                },
                "drift": r.drift,
                "error": match &r.outcome {
                    Outcome::Failed(e) => json::error(e),
                    Outcome::NotStarted(why) => json!({"kind": "not_started", "message": why}),
                    _ => Value::Null,
                },
            })
        })
        .collect();
    let n = |c: &str| {
        results
            .iter()
            .filter(|r| result_code(&r.outcome) == c)
            .count()
    };
    json!({
        "version": FORMAT_VERSION,
        "command": command,
        "ok": code == 0,
        "exit_code": code,
        "duration_ms": elapsed.as_millis() as u64,
        "summary": {
            "targets": results.len(),
            "done": n("done"),
            "up_to_date": n("up_to_date"),
            "problems": n("problems"),
            "failed": n("failed"),
            "not_started": n("not_started"),
        },
        "drift": wide.drift.as_deref().map(redact),
        "problems": problems(&wide.problems),
        "targets": targets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Error, ErrorKind};
    use crate::fleet::Target;

    fn target(name: &str) -> Target {
        let env = crate::config::Env::from_pairs(&[], &[]);
        Target {
            name: name.into(),
            url: crate::config::DbUrl::parse("postgresql://u:secret@h/d", &env).unwrap(),
            schema: None,
        }
    }

    fn done(revisions: &[&str]) -> TargetResult {
        let mut r = TargetResult::new(&target("acme"), Outcome::Done);
        r.from = vec!["b".into()];
        r.to = vec!["a".into()];
        r.revisions = revisions.iter().map(|s| s.to_string()).collect();
        r
    }

    #[test]
    fn a_downgrade_says_reverted_an_upgrade_applied() {
        let r = done(&["b"]);
        assert_eq!(result_text("migrate-down", &r), "reverted 1");
        assert_eq!(result_text("migrate-up", &r), "applied 1");
        assert_eq!(finished_line("migrate-down", &r), "acme: reverted 1");
    }

    #[test]
    fn a_failed_target_shows_what_postgresql_said() {
        let e = Error::new(
            ErrorKind::Migration,
            "migration failed: upgrade b at migrations/b.sql:6\nERROR 42P07: relation \"beta\" already exists\n  statement: CREATE TABLE beta (id int)",
        );
        let r = TargetResult::new(&target("acme"), Outcome::Failed(e));
        assert_eq!(
            result_text("migrate-up", &r),
            "FAILED: migration failed: upgrade b at migrations/b.sql:6: ERROR 42P07: relation \"beta\" already exists"
        );
        // an error of one line is that line
        assert_eq!(failure_line("cannot connect"), "cannot connect");
        // a backfill's says where it stopped
        assert_eq!(
            failure_line(
                "interrupted by SIGINT during 002\nnote: backfill 002 stopped at t.id = 238 (237 rows in 34 ranges committed, 8% of [1, 3001)); \
                 the next migrate-up continues from there (checkpoint in \"alembic_version_backfill\")\nstate: the database is at 001"
            ),
            "interrupted by SIGINT during 002; backfill 002 stopped at t.id = 238 (237 rows in 34 ranges committed, 8% of [1, 3001))"
        );
        let t = table(
            "migrate-up",
            std::slice::from_ref(&r),
            &FleetWide::default(),
            Duration::ZERO,
        );
        assert!(t.contains("ERROR 42P07"), "{t}");
        assert!(t.contains("1 target in"), "{t}");
        assert_eq!(
            finished_line("migrate-up", &r),
            "acme: migration failed: upgrade b at migrations/b.sql:6: ERROR 42P07: relation \"beta\" already exists"
        );
    }
}
