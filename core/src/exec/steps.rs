//! Pure helpers of the run loop: a step's title, its session settings as SQL, the version
//! table's rows after its writes, where a statement is.

use super::failure::truncate;
use super::watch::StatementAt;
use super::RunOptions;
use crate::plan::{Direction, Step};
use crate::project::Project;
use crate::script::{Script, Statement};
use std::time::Duration;

/// `Running upgrade 001 -> 002, message` (offline SQL prefixes it with `-- `).
pub fn step_title(project: &Project, step: &Step) -> String {
    let verb = match step.direction {
        Direction::Up => "upgrade",
        Direction::Down => "downgrade",
    };
    let msg = project
        .script(&step.revision)
        .map(|s| s.message.clone())
        .unwrap_or_default();
    let mut t = format!(
        "Running {verb} {} -> {}",
        step.from.join(", "),
        step.to.join(", ")
    );
    if !msg.is_empty() {
        t.push_str(", ");
        t.push_str(&msg);
    }
    t
}

/// A duration as PostgreSQL takes it: `'5s'`, `'250ms'`, `'0'`.
pub(super) fn pg_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        "0".into()
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// The settings a step runs with: the run's timeouts unless the script has its own, then the
/// script's `-- set:` pairs.
pub fn step_settings(script: &Script, opts: &RunOptions) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let lock = script.session.lock_timeout.or(opts.ddl_lock_timeout);
    if let Some(d) = lock {
        out.push(("lock_timeout".to_string(), pg_duration(d)));
    }
    if let Some(d) = script.session.statement_timeout.or(opts.statement_timeout) {
        out.push(("statement_timeout".to_string(), pg_duration(d)));
    }
    for (k, v) in &script.session.set {
        out.retain(|(n, _)| n != k);
        out.push((k.clone(), v.clone()));
    }
    out
}

pub(super) fn set_sql(local: bool, name: &str, value: &str) -> String {
    format!(
        "SET {}{name} = '{}';",
        if local { "LOCAL " } else { "" },
        value.replace('\'', "''")
    )
}

pub(super) fn at(script: &Script, step: &Step, stmt: &Statement) -> StatementAt {
    StatementAt {
        revision: step.revision.clone(),
        path: script.path.display().to_string(),
        line: stmt.line,
        first_line: truncate(stmt.sql.trim().lines().next().unwrap_or(""), 120),
    }
}
