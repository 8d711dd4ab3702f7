//! Executes a plan against the database, step by step, with the version-table writes in the
//! same transaction as each step.
//!
//! Default: the whole run is one transaction (Alembic's default on PostgreSQL), so a failure
//! leaves the database exactly as it was. With `transaction_per_migration`, each step commits
//! with its version-table write, and a failure leaves the database at the last good step. A
//! script marked `transactional: false` closes the open transaction (COMMIT), runs its
//! statements one by one outside any transaction, and opens a new one for what follows.
//! Every failure says which file and line, PostgreSQL's SQLSTATE, message, detail and hint, and
//! what state the database is in now.

use crate::db::records::Records;
use crate::db::{SqlFailure, VersionTable};
use crate::error::{Error, ErrorKind, Result};
use crate::plan::{Direction, Plan, Step};
use crate::project::Project;
use crate::script::{split_statements, Script, Section, Statement};
use postgres::Client;
use std::time::{Duration, Instant};

/// How to run a plan.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Commit after each step instead of once at the end.
    pub transaction_per_migration: bool,
}

/// One step that ran.
#[derive(Debug, Clone)]
pub struct StepResult {
    pub revision: String,
    pub direction: Direction,
    pub duration: Duration,
}

#[derive(Debug, Clone, Default)]
pub struct RunReport {
    /// The steps that ran and were committed.
    pub steps: Vec<StepResult>,
    /// The version table's rows after the run (after a failure: as committed).
    pub end_heads: Vec<String>,
    pub duration: Duration,
}

/// A run's result: the report of what was committed, and the error if it failed.
#[derive(Debug)]
pub struct RunOutcome {
    pub report: RunReport,
    pub error: Option<Error>,
}

impl RunOutcome {
    pub fn into_result(self) -> Result<RunReport> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.report),
        }
    }
}

/// `-- Running upgrade 001 -> 002, message` (without the leading `-- `).
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

/// The section of `script` that a step runs; a missing down section is an error naming the file.
pub fn section_for(script: &Script, direction: Direction) -> Result<&Section> {
    match direction {
        Direction::Up => Ok(&script.up),
        Direction::Down => script.down.as_ref().ok_or_else(|| {
            Error::usage(format!(
                "{}: revision {} has no '-- migrate:down' section, so it cannot be downgraded",
                script.path.display(),
                script.revision
            ))
            .with_hint("add a '-- migrate:down' section to the script, or stamp past it with migrate-stamp")
        }),
    }
}

/// Checks before anything runs that every step can run (down sections exist).
pub fn preflight(project: &Project, plan: &Plan) -> Result<()> {
    for step in &plan.steps {
        section_for(project.script(&step.revision)?, step.direction)?;
    }
    Ok(())
}

/// Runs `plan` (see [`execute_recorded`]) without applied-revision records.
pub fn execute(
    client: &mut Client,
    project: &Project,
    table: &VersionTable,
    plan: &Plan,
    opts: &RunOptions,
) -> Result<RunReport> {
    execute_recorded(client, project, table, None, plan, opts).into_result()
}

/// Runs `plan`. The caller has read `plan.start_heads` from `table` on this connection (under
/// the migration lock); nothing is open on `client` when this is called. With `records`, each
/// step also records (upgrade) or forgets (downgrade) its revision in the same transaction.
pub fn execute_recorded(
    client: &mut Client,
    project: &Project,
    table: &VersionTable,
    records: Option<&Records>,
    plan: &Plan,
    opts: &RunOptions,
) -> RunOutcome {
    let mut report = RunReport {
        end_heads: plan.start_heads.clone(),
        ..Default::default()
    };
    if let Err(e) = preflight(project, plan) {
        return RunOutcome {
            report,
            error: Some(e),
        };
    }
    let started = Instant::now();
    if plan.is_empty() {
        return RunOutcome {
            report,
            error: None,
        };
    }
    let mut st = RunState {
        committed_heads: plan.start_heads.clone(),
        heads: plan.start_heads.clone(),
        committed_steps: 0,
        pending_steps: 0,
        pending_records: Vec::new(),
        in_tx: false,
    };
    let mut done = Vec::new();
    let result = run_steps(
        client, project, table, records, plan, opts, &mut st, &mut done,
    )
    .and_then(|()| {
        if st.in_tx {
            commit(client, records, &mut st)
        } else {
            Ok(())
        }
    });
    report.duration = started.elapsed();
    report.steps = done[..st.committed_steps.min(done.len())].to_vec();
    report.end_heads = st.committed_heads.clone();
    match result {
        Ok(()) => {
            log::info!(
                "{} step{} in {}; database now at {}",
                report.steps.len(),
                if report.steps.len() == 1 { "" } else { "s" },
                fmt_duration(report.duration),
                heads_text(&report.end_heads)
            );
            RunOutcome {
                report,
                error: None,
            }
        }
        Err(mut e) => {
            let rolled_back = st.in_tx;
            if rolled_back {
                // The connection may be broken; the server rolls back on disconnect anyway.
                let _ = client.batch_execute("ROLLBACK");
            }
            let failed_step = if rolled_back {
                "the failed step was rolled back"
            } else {
                "the failed step ran outside a transaction (see the note above)"
            };
            let state =
                if st.committed_steps == 0 && st.committed_heads == plan.start_heads && rolled_back
                {
                    format!(
                        "nothing was applied: the database is as it was before the run, at {}",
                        heads_text(&plan.start_heads)
                    )
                } else {
                    format!(
                        "the database is at {} ({} step{} of this run committed); {failed_step}",
                        heads_text(&st.committed_heads),
                        st.committed_steps,
                        if st.committed_steps == 1 { "" } else { "s" }
                    )
                };
            e.message.push_str(&format!("\nstate: {state}"));
            RunOutcome {
                report,
                error: Some(e),
            }
        }
    }
}

struct RunState {
    committed_heads: Vec<String>,
    heads: Vec<String>,
    committed_steps: usize,
    /// Steps done in the open transaction, not yet committed.
    pending_steps: usize,
    /// Applied-revision records to write before the open transaction commits (one INSERT for
    /// the whole transaction instead of one per step: the run stays close to psql's speed).
    pending_records: Vec<(String, String, Option<Duration>)>,
    in_tx: bool,
}

/// Writes the pending records, then COMMITs the open transaction.
fn commit(client: &mut Client, records: Option<&Records>, st: &mut RunState) -> Result<()> {
    if let (Some(r), false) = (records, st.pending_records.is_empty()) {
        simple(client, &r.record_many_sql(&st.pending_records, "up")).map_err(|f| {
            Error::new(
                ErrorKind::Migration,
                format!("cannot record the applied revisions: {}", f.describe()),
            )
        })?;
        st.pending_records.clear();
    }
    simple(client, "COMMIT").map_err(failure_at_commit)?;
    st.in_tx = false;
    mark_committed(st);
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn run_steps(
    client: &mut Client,
    project: &Project,
    table: &VersionTable,
    records: Option<&Records>,
    plan: &Plan,
    opts: &RunOptions,
    st: &mut RunState,
    done: &mut Vec<StepResult>,
) -> Result<()> {
    let mut table_checked = false;
    for step in &plan.steps {
        let script = project.script(&step.revision)?;
        let section = section_for(script, step.direction)?;
        let title = step_title(project, step);
        log::info!("{title}");
        let t0 = Instant::now();
        if script.transactional {
            if !st.in_tx {
                simple(client, "BEGIN").map_err(|f| plain_failure("BEGIN", f))?;
                st.in_tx = true;
            }
            if !table_checked {
                ensure_tables(client, table, records)?;
                table_checked = true;
            }
            run_section(client, script, section, step)?;
        } else {
            if st.in_tx {
                commit(client, records, st)?;
            }
            if !table_checked {
                ensure_tables(client, table, records)?;
                table_checked = true;
            }
            run_non_transactional(client, script, section, step)?;
            simple(client, "BEGIN").map_err(|f| plain_failure("BEGIN", f))?;
            st.in_tx = true;
        }
        // The step's bookkeeping in one round trip: version-table writes, then its record.
        let mut bookkeeping: Vec<String> =
            step.version_ops.iter().map(|op| table.op_sql(op)).collect();
        if let Some(r) = records {
            match step.direction {
                Direction::Up => st.pending_records.push((
                    step.revision.clone(),
                    script.checksum.clone(),
                    Some(t0.elapsed()),
                )),
                Direction::Down => bookkeeping.push(r.forget_sql(&step.revision)),
            }
        }
        if !bookkeeping.is_empty() {
            simple(client, &bookkeeping.join("\n")).map_err(|f| {
                Error::new(
                    ErrorKind::Migration,
                    format!(
                        "cannot write {} for {}: {}",
                        table.qualified(),
                        step.revision,
                        f.describe()
                    ),
                )
            })?;
        }
        apply_ops(&mut st.heads, step);
        st.pending_steps += 1;
        if opts.transaction_per_migration || !script.transactional {
            commit(client, records, st)?;
        }
        let d = t0.elapsed();
        log::info!("  done {} in {}", step.revision, fmt_duration(d));
        done.push(StepResult {
            revision: step.revision.clone(),
            direction: step.direction,
            duration: d,
        });
    }
    Ok(())
}

fn ensure_tables(
    client: &mut Client,
    table: &VersionTable,
    records: Option<&Records>,
) -> Result<()> {
    // e.g. "permission denied for schema public": the run cannot start, which is a failed run
    let as_migration = |e: Error| {
        Error::new(ErrorKind::Migration, e.message).with_hint(
        "the database user needs CREATE on the version table's schema (or create the tables beforehand)",
    )
    };
    table.ensure(client).map_err(as_migration)?;
    if let Some(r) = records {
        r.ensure(client).map_err(as_migration)?;
    }
    Ok(())
}

fn mark_committed(st: &mut RunState) {
    st.committed_heads = st.heads.clone();
    st.committed_steps += st.pending_steps;
    st.pending_steps = 0;
}

/// Simulates the version table rows after a step's writes.
pub fn apply_ops(heads: &mut Vec<String>, step: &Step) {
    use crate::plan::VersionOp::*;
    for op in &step.version_ops {
        match op {
            Insert(r) => heads.push(r.clone()),
            Update { from, to } => {
                if let Some(h) = heads.iter_mut().find(|h| *h == from) {
                    *h = to.clone();
                }
            }
            Delete(r) => heads.retain(|h| h != r),
        }
    }
    heads.sort();
}

fn run_section(client: &mut Client, script: &Script, section: &Section, step: &Step) -> Result<()> {
    for stmt in split_statements(&section.sql, section.line) {
        refuse_transaction_control(script, &stmt)?;
        if let Err(f) = simple(client, &stmt.sql) {
            return Err(statement_failure(script, step, &stmt, f, false));
        }
    }
    Ok(())
}

fn run_non_transactional(
    client: &mut Client,
    script: &Script,
    section: &Section,
    step: &Step,
) -> Result<()> {
    let stmts = split_statements(&section.sql, section.line);
    for (i, stmt) in stmts.iter().enumerate() {
        if let Err(f) = simple(client, &stmt.sql) {
            let mut e = statement_failure(script, step, stmt, f, true);
            if i > 0 {
                e.message.push_str(&format!(
                    "\nnote: {} is not transactional: {} ran before the failure and stayed (it cannot be rolled back)",
                    script.path.display(),
                    if i == 1 { "its first statement".to_string() } else { format!("its first {i} statements") }
                ));
            }
            // A failed CREATE INDEX CONCURRENTLY leaves an INVALID index behind: say which.
            if let Ok(invalid) = crate::db::invalid_indexes(client) {
                if !invalid.is_empty() {
                    e.message.push_str(&format!(
                        "\nnote: INVALID index{} now in the database: {} (drop with DROP INDEX CONCURRENTLY before retrying; IF NOT EXISTS would skip it)",
                        if invalid.len() == 1 { "" } else { "es" },
                        invalid.join(", ")
                    ));
                }
            }
            return Err(e);
        }
    }
    Ok(())
}

/// BEGIN/COMMIT/ROLLBACK inside a transactional script would end retort's transaction half-way
/// through a run: refused before it is sent (a `transactional: false` script may group its own
/// statements).
fn refuse_transaction_control(script: &Script, stmt: &Statement) -> Result<()> {
    let first: String = stmt
        .sql
        .split_whitespace()
        .next()
        .unwrap_or("")
        .trim_end_matches(';')
        .to_ascii_uppercase();
    let second = stmt
        .sql
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_ascii_uppercase();
    let control = matches!(
        first.as_str(),
        "BEGIN" | "COMMIT" | "ROLLBACK" | "END" | "ABORT"
    ) || (first == "START" && second.starts_with("TRANSACTION"))
        || (first == "PREPARE" && second == "TRANSACTION");
    if control {
        return Err(Error::new(
            ErrorKind::Migration,
            format!("{}:{}: '{}' in a transactional script: retort runs each script inside its own transaction", script.path.display(), stmt.line, stmt.sql.lines().next().unwrap_or("").trim()),
        )
        .with_hint("remove it, or mark the script `-- transactional: false` to manage transactions yourself"));
    }
    Ok(())
}

fn simple(client: &mut Client, sql: &str) -> std::result::Result<(), SqlFailure> {
    client
        .batch_execute(sql)
        .map_err(|e| SqlFailure::from_pg(&e))
}

fn plain_failure(what: &str, f: SqlFailure) -> Error {
    Error::new(
        ErrorKind::Migration,
        format!("{what} failed: {}", f.describe()),
    )
}

fn failure_at_commit(f: SqlFailure) -> Error {
    Error::new(
        ErrorKind::Migration,
        format!("COMMIT failed (a deferred constraint?): {}", f.describe()),
    )
}

/// The line in the file of a failing statement: the error position when PostgreSQL gave one,
/// otherwise the statement's first line.
pub fn failure_line(stmt: &Statement, f: &SqlFailure) -> usize {
    let Some(pos) = f.position else {
        return stmt.line;
    };
    let text: Vec<char> = stmt.sql.chars().collect();
    let start = leading_trivia_chars(&text);
    let upto = (pos as usize).saturating_sub(1).min(text.len());
    if upto <= start {
        return stmt.line;
    }
    stmt.line + text[start..upto].iter().filter(|c| **c == '\n').count()
}

// Whitespace and comments before the statement's first token (the statement's `line` is the
// line of that token).
fn leading_trivia_chars(t: &[char]) -> usize {
    let mut i = 0;
    loop {
        while i < t.len() && t[i].is_whitespace() {
            i += 1;
        }
        if i + 1 < t.len() && t[i] == '-' && t[i + 1] == '-' {
            while i < t.len() && t[i] != '\n' {
                i += 1;
            }
        } else if i + 1 < t.len() && t[i] == '/' && t[i + 1] == '*' {
            let mut depth = 0usize;
            while i + 1 < t.len() {
                if t[i] == '/' && t[i + 1] == '*' {
                    depth += 1;
                    i += 2;
                } else if t[i] == '*' && t[i + 1] == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else {
            return i;
        }
    }
}

fn statement_failure(
    script: &Script,
    step: &Step,
    stmt: &Statement,
    f: SqlFailure,
    non_tx: bool,
) -> Error {
    let verb = if step.direction == Direction::Up {
        "upgrade"
    } else {
        "downgrade"
    };
    let line = failure_line(stmt, &f);
    let mut msg = format!(
        "migration failed: {verb} {} at {}:{line}{}\n{}",
        step.revision,
        script.path.display(),
        if non_tx {
            " (non-transactional script)"
        } else {
            ""
        },
        f.describe()
    );
    let first = stmt.sql.trim().lines().next().unwrap_or("");
    msg.push_str(&format!("\n  statement: {}", truncate(first, 120)));
    Error::new(ErrorKind::Migration, msg)
        .with_hint("fix the script (or the data it trips over) and run the command again")
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}...", s.chars().take(n).collect::<String>())
    }
}

/// The `--dry-run` text: what would run, in order, with the version-table writes.
pub fn describe_plan(project: &Project, table: &VersionTable, plan: &Plan) -> String {
    let mut out = String::new();
    if plan.is_empty() {
        out.push_str(&format!(
            "Nothing to do: the database is at {}.\n",
            heads_text(&plan.start_heads)
        ));
        return out;
    }
    out.push_str(&format!(
        "Plan: {} step{} from {} to {}\n",
        plan.steps.len(),
        if plan.steps.len() == 1 { "" } else { "s" },
        heads_text(&plan.start_heads),
        heads_text(&plan.end_heads)
    ));
    for step in &plan.steps {
        let path = project
            .script(&step.revision)
            .map(|s| s.path.display().to_string())
            .unwrap_or_default();
        let nt = project
            .script(&step.revision)
            .map(|s| !s.transactional)
            .unwrap_or(false);
        out.push_str(&format!(
            "  {}  [{}{}]\n",
            step_title(project, step),
            path,
            if nt { ", non-transactional" } else { "" }
        ));
        for op in &step.version_ops {
            out.push_str(&format!("      {}\n", table.op_sql(op)));
        }
    }
    out
}

/// "base" for no heads, else the heads joined by ", ".
pub fn heads_text(heads: &[String]) -> String {
    if heads.is_empty() {
        "base (no revision applied)".into()
    } else {
        heads.join(", ")
    }
}

pub fn fmt_duration(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 1000.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.2} s", ms / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(pos: Option<u32>) -> SqlFailure {
        SqlFailure {
            sqlstate: "42601".into(),
            message: "x".into(),
            detail: None,
            hint: None,
            position: pos,
        }
    }

    #[test]
    fn failure_line_follows_the_error_position() {
        let stmt = Statement {
            sql: "-- lead\nCREATE TABLE t (\n  a int,\n  b nope\n)".into(),
            line: 11,
        };
        // position of "nope": after "CREATE TABLE t (\n  a int,\n  b "
        let body = "CREATE TABLE t (\n  a int,\n  b ";
        let pos = ("-- lead\n".chars().count() + body.chars().count() + 1) as u32;
        assert_eq!(failure_line(&stmt, &f(Some(pos))), 13);
        assert_eq!(failure_line(&stmt, &f(None)), 11);
    }
}
