//! Running a plan: the one run loop over the plan's transaction segments.
//!
//! The loop is written once, against the small [`Executor`] trait, so an online run
//! ([`online::PgExecutor`]: statements sent to PostgreSQL) and offline SQL ([`offline`]: the
//! same statements written out as a script) cannot disagree about what runs, in which order,
//! and where transactions begin and end. The loop keeps the run's state — which steps are
//! committed, which heads the database is at — so that a failure is reported as data
//! ([`RunError`]), and so that the state machine ("step 3 fails → steps 1 and 2 stay
//! committed") is unit-tested below without a server.
//!
//! Default: every run of transactional steps is one transaction (Alembic's default on
//! PostgreSQL), so a failure leaves the database exactly as it was. With
//! `transaction_per_migration`, each step commits with its version-table write, and a failure
//! leaves the database at the last good step. A `transactional: false` script ends the open
//! transaction, runs its statements one by one outside any transaction, and records its step in
//! a transaction of its own.

pub mod offline;
pub mod online;

use crate::db::records::Records;
use crate::db::{SqlFailure, VersionTable};
use crate::error::{Error, ErrorKind, Result};
use crate::output::text::{fmt_duration, heads_text};
use crate::plan::{Direction, Plan, Segment, Step};
use crate::project::Project;
use crate::script::{split_statements, Script, Section, Statement};
use std::fmt;
use std::time::{Duration, Instant};

/// How to run a plan.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Commit after each step instead of once at the end.
    pub transaction_per_migration: bool,
}

/// One step that ran and was committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepResult {
    pub revision: String,
    pub direction: Direction,
    pub duration: Duration,
}

/// What a run did: the committed steps and where the database is now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunReport {
    /// The steps that ran and were committed, in order.
    pub steps: Vec<StepResult>,
    /// The version table's rows before the run.
    pub start_heads: Vec<String>,
    /// The version table's rows after the run (after a failure: as committed).
    pub end_heads: Vec<String>,
    pub duration: Duration,
}

/// Where a failed run left the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureState {
    /// The revision whose step failed (none when the failure came at a COMMIT of several).
    pub failed_step: Option<String>,
    /// `true`: the failed step's transaction was rolled back; `false`: it ran outside a
    /// transaction, and what it did before failing stays (see the error's notes).
    pub rolled_back: bool,
    /// Nothing of this run stayed: the database is as it was before it.
    pub nothing_applied: bool,
}

impl FailureState {
    /// `nothing was applied: ...` / `the database is at ... (N steps of this run committed); ...`
    pub fn describe(&self, report: &RunReport) -> String {
        if self.nothing_applied {
            return format!(
                "nothing was applied: the database is as it was before the run, at {}",
                heads_text(&report.start_heads)
            );
        }
        let n = report.steps.len();
        format!(
            "the database is at {} ({n} step{} of this run committed); {}",
            heads_text(&report.end_heads),
            if n == 1 { "" } else { "s" },
            if self.rolled_back {
                "the failed step was rolled back"
            } else {
                "the failed step ran outside a transaction (see the note above)"
            }
        )
    }
}

/// A run that did not complete: the error, what was committed before it, and (when anything
/// had started) the state the database is in. A refusal before the first statement — a
/// missing down section, an edited applied script, a bad target — has no `state`: nothing ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunError {
    pub error: Error,
    pub report: RunReport,
    pub state: Option<FailureState>,
}

impl RunError {
    /// A refusal before anything ran.
    pub fn refused(error: Error, start_heads: &[String]) -> Box<RunError> {
        Box::new(RunError {
            error,
            report: RunReport {
                start_heads: start_heads.to_vec(),
                end_heads: start_heads.to_vec(),
                ..Default::default()
            },
            state: None,
        })
    }
}

/// What a run returns. The failure is boxed: it carries the whole report.
pub type RunResult = std::result::Result<RunReport, Box<RunError>>;

impl From<Box<RunError>> for Error {
    fn from(r: Box<RunError>) -> Error {
        Error::from(*r)
    }
}

impl From<RunError> for Error {
    /// The error with a `state:` line, as the binaries print it.
    fn from(r: RunError) -> Error {
        let mut e = r.error;
        if let Some(st) = &r.state {
            e.message
                .push_str(&format!("\nstate: {}", st.describe(&r.report)));
        }
        e
    }
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", Error::from(self.clone()))
    }
}

impl std::error::Error for RunError {}

/// Where the run loop sends SQL. `BEGIN`, `COMMIT` and `ROLLBACK` go through
/// [`Executor::execute`] like everything else.
pub trait Executor {
    /// Sends one statement of a script, or a transaction command.
    fn execute(&mut self, sql: &str) -> std::result::Result<(), SqlFailure>;
    /// Sends a step's bookkeeping (version-table writes, records): online in one round trip.
    fn execute_batch(&mut self, sqls: &[String]) -> std::result::Result<(), SqlFailure> {
        self.execute(&sqls.join("\n"))
    }
    /// Called once, before the first step's statements (inside its transaction when it has
    /// one): make sure the version table (and the record tables) exist.
    fn prepare(&mut self, books: &Bookkeeping) -> Result<()>;
    /// A line for whoever reads what was sent (offline SQL writes it as a comment).
    fn comment(&mut self, _text: &str) {}
    /// After a statement of a non-transactional script failed: what it left behind that needs
    /// cleaning up (INVALID indexes of a failed concurrent build).
    fn left_behind(&mut self) -> Vec<String> {
        Vec::new()
    }
}

/// Hooks for whoever watches a run (logging today; progress bars and event streams build on
/// it). Every method has a default that does nothing.
pub trait Observer {
    fn step_started(&mut self, _step: &Step, _title: &str) {}
    fn step_finished(&mut self, _step: &Step, _duration: Duration) {}
    fn run_finished(&mut self, _report: &RunReport) {}
}

/// Logs each step at info level: the default for the binaries.
pub struct LogObserver;

impl Observer for LogObserver {
    fn step_started(&mut self, _step: &Step, title: &str) {
        log::info!("{title}");
    }
    fn step_finished(&mut self, step: &Step, d: Duration) {
        log::info!("  done {} in {}", step.revision, fmt_duration(d));
    }
    fn run_finished(&mut self, report: &RunReport) {
        if !report.steps.is_empty() {
            log::info!(
                "{} step{} in {}; database now at {}",
                report.steps.len(),
                if report.steps.len() == 1 { "" } else { "s" },
                fmt_duration(report.duration),
                heads_text(&report.end_heads)
            );
        }
    }
}

/// Logs each step at debug level (replays into shadow databases: shown with `-v`).
pub struct DebugObserver;

impl Observer for DebugObserver {
    fn step_started(&mut self, _step: &Step, title: &str) {
        log::debug!("{title}");
    }
}

/// Says nothing (offline SQL).
pub struct QuietObserver;

impl Observer for QuietObserver {}

/// The bookkeeping a run writes beside each step: the version table always; the applied
/// records (checksum, duration) when `records` is given (online runs).
#[derive(Debug, Clone, Copy)]
pub struct Bookkeeping<'a> {
    pub table: &'a VersionTable,
    pub records: Option<&'a Records>,
}

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

/// The run's state while it goes.
struct Progress {
    /// Heads as of the last COMMIT.
    committed_heads: Vec<String>,
    /// Heads including the open transaction's steps.
    heads: Vec<String>,
    committed: Vec<StepResult>,
    /// Steps done in the open transaction, not yet committed.
    pending: Vec<StepResult>,
    /// Applied records to write just before the open transaction commits (one INSERT for the
    /// whole transaction instead of one per step: the run stays close to psql's speed).
    pending_records: Vec<(String, String, Option<Duration>)>,
    in_tx: bool,
    prepared: bool,
    failed_step: Option<String>,
}

/// Runs `plan` through `exec`. The caller has read `plan.start_heads` (under the migration
/// lock, online); nothing is open on the executor when this is called. Every refusal that
/// needs no database (a missing down section) comes before the first statement.
pub fn run_plan(
    exec: &mut dyn Executor,
    project: &Project,
    books: Bookkeeping,
    plan: &Plan,
    opts: &RunOptions,
    observer: &mut dyn Observer,
) -> RunResult {
    if let Err(e) = crate::policy::require_down_sections(project, plan) {
        return Err(RunError::refused(e, &plan.start_heads));
    }
    let started = Instant::now();
    let mut p = Progress {
        committed_heads: plan.start_heads.clone(),
        heads: plan.start_heads.clone(),
        committed: Vec::new(),
        pending: Vec::new(),
        pending_records: Vec::new(),
        in_tx: false,
        prepared: false,
        failed_step: None,
    };
    let transactional = |s: &Step| {
        project
            .script(&s.revision)
            .map(|x| x.transactional)
            .unwrap_or(true)
    };
    let segments = plan.segments(transactional, opts.transaction_per_migration);
    let result = segments
        .iter()
        .try_for_each(|seg| run_segment(exec, project, books, plan, seg, &mut p, observer));
    let mut report = RunReport {
        steps: p.committed.clone(),
        start_heads: plan.start_heads.clone(),
        end_heads: p.committed_heads.clone(),
        duration: started.elapsed(),
    };
    match result {
        Ok(()) => {
            observer.run_finished(&report);
            Ok(report)
        }
        Err(error) => {
            let rolled_back = p.in_tx;
            if rolled_back {
                // The connection may be broken; the server rolls back on disconnect anyway.
                let _ = exec.execute("ROLLBACK");
            }
            report.duration = started.elapsed();
            let nothing_applied =
                rolled_back && report.steps.is_empty() && p.committed_heads == plan.start_heads;
            Err(Box::new(RunError {
                error,
                report,
                state: Some(FailureState {
                    failed_step: p.failed_step,
                    rolled_back,
                    nothing_applied,
                }),
            }))
        }
    }
}

fn run_segment(
    exec: &mut dyn Executor,
    project: &Project,
    books: Bookkeeping,
    plan: &Plan,
    seg: &Segment,
    p: &mut Progress,
    observer: &mut dyn Observer,
) -> Result<()> {
    if seg.transactional {
        begin(exec, p)?;
        prepare_once(exec, books, p)?;
        for step in &plan.steps[seg.steps.clone()] {
            run_step(exec, project, books, step, p, observer, false)?;
        }
    } else {
        prepare_once(exec, books, p)?;
        let step = &plan.steps[seg.steps.start];
        run_step(exec, project, books, step, p, observer, true)?;
    }
    commit(exec, books, p)
}

/// One step: its statements (in the open transaction, or outside one), then its bookkeeping.
fn run_step(
    exec: &mut dyn Executor,
    project: &Project,
    books: Bookkeeping,
    step: &Step,
    p: &mut Progress,
    observer: &mut dyn Observer,
    outside: bool,
) -> Result<()> {
    p.failed_step = Some(step.revision.clone());
    let script = project.script(&step.revision)?;
    let section = section_for(script, step.direction)?;
    let title = step_title(project, step);
    observer.step_started(step, &title);
    exec.comment(&title);
    let t0 = Instant::now();
    if outside {
        exec.comment(&format!(
            "{} is not transactional: it runs outside a transaction",
            script.path.display()
        ));
        run_outside(exec, script, section, step)?;
        begin(exec, p)?;
    } else {
        run_inside(exec, script, section, step)?;
    }
    write_bookkeeping(exec, books, script, step, t0.elapsed(), p)?;
    let d = t0.elapsed();
    observer.step_finished(step, d);
    p.pending.push(StepResult {
        revision: step.revision.clone(),
        direction: step.direction,
        duration: d,
    });
    p.failed_step = None;
    Ok(())
}

fn write_bookkeeping(
    exec: &mut dyn Executor,
    books: Bookkeeping,
    script: &Script,
    step: &Step,
    elapsed: Duration,
    p: &mut Progress,
) -> Result<()> {
    let mut sqls: Vec<String> = step
        .version_ops
        .iter()
        .map(|op| books.table.op_sql(op))
        .collect();
    if let Some(r) = books.records {
        match step.direction {
            Direction::Up => p.pending_records.push((
                step.revision.clone(),
                script.checksum.clone(),
                Some(elapsed),
            )),
            Direction::Down => sqls.push(r.forget_sql(&step.revision)),
        }
    }
    if !sqls.is_empty() {
        exec.execute_batch(&sqls).map_err(|f| {
            Error::new(
                ErrorKind::Migration,
                format!(
                    "cannot write {} for {}: {}",
                    books.table.qualified(),
                    step.revision,
                    f.describe()
                ),
            )
        })?;
    }
    apply_ops(&mut p.heads, step);
    Ok(())
}

fn begin(exec: &mut dyn Executor, p: &mut Progress) -> Result<()> {
    if !p.in_tx {
        exec.execute("BEGIN")
            .map_err(|f| plain_failure("BEGIN", f))?;
        p.in_tx = true;
    }
    Ok(())
}

fn prepare_once(exec: &mut dyn Executor, books: Bookkeeping, p: &mut Progress) -> Result<()> {
    if !p.prepared {
        exec.prepare(&books)?;
        p.prepared = true;
    }
    Ok(())
}

/// Writes the pending records, then COMMITs the open transaction.
fn commit(exec: &mut dyn Executor, books: Bookkeeping, p: &mut Progress) -> Result<()> {
    if !p.in_tx {
        return Ok(());
    }
    if let (Some(r), false) = (books.records, p.pending_records.is_empty()) {
        exec.execute(&r.record_many_sql(&p.pending_records, "up"))
            .map_err(|f| {
                Error::new(
                    ErrorKind::Migration,
                    format!("cannot record the applied revisions: {}", f.describe()),
                )
            })?;
        p.pending_records.clear();
    }
    exec.execute("COMMIT").map_err(|f| {
        Error::new(
            ErrorKind::Migration,
            format!("COMMIT failed (a deferred constraint?): {}", f.describe()),
        )
    })?;
    p.in_tx = false;
    p.committed_heads = p.heads.clone();
    p.committed.append(&mut p.pending);
    Ok(())
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

fn run_inside(
    exec: &mut dyn Executor,
    script: &Script,
    section: &Section,
    step: &Step,
) -> Result<()> {
    for stmt in split_statements(&section.sql, section.line) {
        refuse_transaction_control(script, &stmt)?;
        if let Err(f) = exec.execute(&stmt.sql) {
            return Err(statement_failure(script, step, &stmt, f, false));
        }
    }
    Ok(())
}

fn run_outside(
    exec: &mut dyn Executor,
    script: &Script,
    section: &Section,
    step: &Step,
) -> Result<()> {
    let stmts = split_statements(&section.sql, section.line);
    for (i, stmt) in stmts.iter().enumerate() {
        if let Err(f) = exec.execute(&stmt.sql) {
            let mut e = statement_failure(script, step, stmt, f, true);
            if i > 0 {
                e.message.push_str(&format!(
                    "\nnote: {} is not transactional: {} ran before the failure and stayed (it cannot be rolled back)",
                    script.path.display(),
                    if i == 1 { "its first statement".to_string() } else { format!("its first {i} statements") }
                ));
            }
            // A failed CREATE INDEX CONCURRENTLY leaves an INVALID index behind: say which.
            let invalid = exec.left_behind();
            if !invalid.is_empty() {
                e.message.push_str(&format!(
                    "\nnote: INVALID index{} now in the database: {} (drop with DROP INDEX CONCURRENTLY before retrying; IF NOT EXISTS would skip it)",
                    if invalid.len() == 1 { "" } else { "es" },
                    invalid.join(", ")
                ));
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
    let mut words = stmt.sql.split_whitespace();
    let first = words
        .next()
        .unwrap_or("")
        .trim_end_matches(';')
        .to_ascii_uppercase();
    let second = words.next().unwrap_or("").to_ascii_uppercase();
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

fn plain_failure(what: &str, f: SqlFailure) -> Error {
    Error::new(
        ErrorKind::Migration,
        format!("{what} failed: {}", f.describe()),
    )
}

/// The line in the file of a failing statement: the error position when PostgreSQL gave one,
/// otherwise the statement's first line.
pub fn failure_line(stmt: &Statement, f: &SqlFailure) -> usize {
    crate::sql::line_of_position(&stmt.sql, stmt.line, f.position.map_or(0, |p| p as usize))
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
    let sqlstate = f.sqlstate.clone();
    Error::new(ErrorKind::Migration, msg)
        .with_hint(crate::db::sqlstate::statement_hint(&sqlstate))
        .with_detail(crate::error::Detail::Sql { sqlstate })
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}...", s.chars().take(n).collect::<String>())
    }
}

#[cfg(test)]
mod tests;
