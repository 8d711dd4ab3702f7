//! The run loop: segments, transactions, steps, statements, retries, bookkeeping and
//! COMMITs, over an [`Executor`](super::Executor).

use super::failure::{
    interrupted_error, is_lock_timeout, lock_timeout_exhausted, outside_failure, plain_failure,
    program_failure, refuse_transaction_control, statement_failure, unrecorded,
};
use super::steps::{at, set_sql, step_settings, step_title};
use super::watch::{Retry, StatementAt};
use super::{
    BatchAt, Bookkeeping, Executor, FailureState, Observer, ProgramCall, ProgramRun, RunError,
    RunOptions, RunReport, RunResult, StepResult,
};
use crate::db::SqlFailure;
use crate::error::{Error, ErrorKind, Result};
use crate::interrupt;
use crate::plan::{Direction, Plan, Segment, Step};
use crate::project::Project;
use crate::script::{split_statements, Program, Script, Section, Statement};
use std::time::{Duration, Instant};

/// The run's state while it goes.
pub(super) struct Progress {
    /// Heads as of the last COMMIT.
    committed_heads: Vec<String>,
    /// Heads including the open transaction's steps.
    heads: Vec<String>,
    committed: Vec<StepResult>,
    /// Steps done in the open transaction, not yet committed.
    pub(super) pending: Vec<StepResult>,
    /// Applied records to write just before the open transaction commits (one INSERT for the
    /// whole transaction instead of one per step: the run stays close to psql's speed).
    pending_records: Vec<(String, String, Option<Duration>)>,
    in_tx: bool,
    prepared: bool,
    /// The version table was created in the open transaction (a rollback undoes it).
    prepared_in_tx: bool,
    /// `SET LOCAL`s in force in the open transaction: (name, value).
    tx_settings: Vec<(String, String)>,
    pub(super) failed_step: Option<String>,
    /// The `transactional: false` step whose statements all ran (they stay) and whose
    /// version-table write has not committed yet: a failure now rolls back only the
    /// bookkeeping, and the error says the step is not recorded.
    outside_ran: Option<String>,
    /// The program steps run so far (for the report's audit note).
    pub(super) programs: Vec<ProgramRun>,
    /// The step in flight is a program step.
    in_program: bool,
    /// A backfill step in flight: whether any of its ranges committed (in this run or an
    /// earlier one). A failure before that leaves nothing of it, as if rolled back; after that
    /// its committed ranges stay.
    pub(super) backfill: Option<bool>,
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
        prepared_in_tx: false,
        tx_settings: Vec::new(),
        failed_step: None,
        outside_ran: None,
        programs: Vec::new(),
        in_program: false,
        backfill: None,
    };
    let segments = project.segments(plan, opts.steps_per_transaction());
    let of = segments.len();
    let mut at = 0;
    let result: Result<()> = segments.iter().enumerate().try_for_each(|(i, seg)| {
        at = i;
        run_segment(exec, project, books, plan, seg, opts, &mut p, observer)?;
        if opts.batch.is_some() && !opts.transaction_per_migration {
            observer.batch_committed(BatchAt { number: i + 1, of }, &p.committed_heads);
        }
        Ok(())
    });
    let mut report = RunReport {
        steps: p.committed.clone(),
        start_heads: plan.start_heads.clone(),
        end_heads: p.committed_heads.clone(),
        duration: started.elapsed(),
        programs: p.programs.clone(),
    };
    match result {
        Ok(()) => {
            observer.run_finished(&report);
            Ok(report)
        }
        Err(mut error) => {
            if interrupt::signal().is_some() && error.kind != ErrorKind::Interrupted {
                // the cancel, or a statement that failed while it landed: an interrupt
                error = interrupted_error(p.failed_step.as_deref(), Some(&error));
            }
            if p.in_tx {
                // The connection may be broken; the server rolls back on disconnect anyway.
                let _ = exec.execute("ROLLBACK");
            }
            // after a non-transactional step's statements, only its bookkeeping was rolled back
            let rolled_back = match p.backfill {
                Some(committed) => !committed,
                None => p.in_tx && p.outside_ran.is_none(),
            };
            if let Some(rev) = &p.outside_ran {
                error = unrecorded(error, project, rev);
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
                    batch: (opts.batch.is_some() && !opts.transaction_per_migration)
                        .then_some(BatchAt { number: at + 1, of }),
                    created_tables: Vec::new(),
                    program_step: p.in_program,
                    backfill_step: p.backfill == Some(true),
                }),
            }))
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn run_segment(
    exec: &mut dyn Executor,
    project: &Project,
    books: Bookkeeping,
    plan: &Plan,
    seg: &Segment,
    opts: &RunOptions,
    p: &mut Progress,
    observer: &mut dyn Observer,
) -> Result<()> {
    let steps = &plan.steps[seg.steps.clone()];
    if !seg.transactional {
        let step = &steps[0];
        if step.direction == Direction::Up && project.script(&step.revision)?.backfill.is_some() {
            return super::backfill::run(exec, project, books, step, opts, p, observer);
        }
        prepare_once(exec, books, p)?;
        run_step(exec, project, books, &steps[0], opts, p, observer, true)?;
        // its statements ran and stay: the step is recorded even when an interrupt came while
        // the last one ran, and the run stops after it
        commit(exec, books, p)?;
        return check_interrupt(p);
    }
    let mut attempt = 0;
    loop {
        let tried = (|| {
            begin(exec, p)?;
            prepare_once(exec, books, p)?;
            for step in steps {
                run_step(exec, project, books, step, opts, p, observer, false)?;
            }
            check_interrupt(p)?;
            commit(exec, books, p)
        })();
        let Err(e) = tried else { return Ok(()) };
        if !is_lock_timeout(&e) || interrupt::signal().is_some() {
            return Err(e);
        }
        let blockers = exec.blockers();
        if attempt >= opts.ddl_retries {
            return Err(lock_timeout_exhausted(e, &blockers, attempt));
        }
        attempt += 1;
        // Everything of the open transaction goes: earlier steps of the run included (in the
        // default one-transaction mode), so no lock is held while waiting.
        let redone: Vec<String> = p.pending.iter().map(|s| s.revision.clone()).collect();
        rollback_for_retry(exec, p)?;
        let failed = p.failed_step.clone().unwrap_or_default();
        let wait = opts.retry_wait * 2u32.saturating_pow(attempt - 1);
        observer.retrying(&Retry {
            revision: failed.clone(),
            attempt,
            of: opts.ddl_retries,
            wait,
            blockers,
            repeats: if redone.is_empty() {
                format!("step {failed}")
            } else {
                format!("steps {}, {failed} (one transaction)", redone.join(", "))
            },
            cleaned: Vec::new(),
        });
        if !interrupt::sleep(wait) {
            return Err(interrupted_error(Some(&failed), None));
        }
    }
}

/// Rolls back the open transaction and forgets what it did, so the segment can run again.
pub(super) fn rollback_for_retry(exec: &mut dyn Executor, p: &mut Progress) -> Result<()> {
    exec.execute("ROLLBACK")
        .map_err(|f| plain_failure("ROLLBACK", f))?;
    p.in_tx = false;
    p.tx_settings.clear();
    p.heads = p.committed_heads.clone();
    p.pending.clear();
    p.pending_records.clear();
    if p.prepared_in_tx {
        p.prepared = false;
        p.prepared_in_tx = false;
    }
    Ok(())
}

/// An interrupt came: stop before the next statement (or COMMIT).
pub(super) fn check_interrupt(p: &Progress) -> Result<()> {
    match interrupt::signal() {
        None => Ok(()),
        // after a step's statements, before its COMMIT: that step is the one rolled back
        Some(_) => Err(interrupted_error(
            p.failed_step
                .as_deref()
                .or(p.pending.last().map(|s| s.revision.as_str())),
            None,
        )),
    }
}

/// `SET LOCAL`s that take the open transaction from its settings to `want`.
pub(super) fn local_settings(p: &mut Progress, want: &[(String, String)]) -> Vec<String> {
    let mut sqls = Vec::new();
    for (name, _) in &p.tx_settings {
        if !want.iter().any(|(n, _)| n == name) {
            sqls.push(format!("SET LOCAL {name} TO DEFAULT;"));
        }
    }
    for (name, value) in want {
        if !p.tx_settings.contains(&(name.clone(), value.clone())) {
            sqls.push(set_sql(true, name, value));
        }
    }
    p.tx_settings = want.to_vec();
    sqls
}

/// One step: its statements (in the open transaction, or outside one), then its bookkeeping.
#[allow(clippy::too_many_arguments)]
pub(super) fn run_step(
    exec: &mut dyn Executor,
    project: &Project,
    books: Bookkeeping,
    step: &Step,
    opts: &RunOptions,
    p: &mut Progress,
    observer: &mut dyn Observer,
    outside: bool,
) -> Result<()> {
    p.failed_step = Some(step.revision.clone());
    check_interrupt(p)?;
    let script = project.script(&step.revision)?;
    let section = script.section(step.direction)?;
    let title = step_title(project, step);
    observer.step_started(step, &title);
    exec.comment(&title);
    let t0 = Instant::now();
    let settings = step_settings(script, opts);
    if let Some(program) = script.program(step.direction) {
        // everything before it is committed (a program step is a segment of its own)
        p.in_program = true;
        run_program_step(exec, script, program, step, opts, p, observer)?;
        p.outside_ran = Some(step.revision.clone());
        begin(exec, p)?;
    } else if let (Some(check), Direction::Up) = (&script.check, step.direction) {
        // a segment of its own too: it reads, in read-only transactions of its own
        run_check_step(exec, script, check, step)?;
        p.outside_ran = Some(step.revision.clone());
        begin(exec, p)?;
    } else if outside {
        interrupt::set_status(format!(
            "{} is not transactional: the statement running on the server may finish or leave an INVALID index (migrate-check lists them)",
            step.revision
        ));
        exec.comment(&format!(
            "{} is not transactional: it runs outside a transaction",
            script.path.display()
        ));
        let set: Vec<String> = settings.iter().map(|(n, v)| set_sql(false, n, v)).collect();
        if !set.is_empty() {
            exec.execute_batch(&set)
                .map_err(|f| plain_failure("SET", f))?;
        }
        let ran = run_outside(exec, script, section, step, opts, observer);
        if !set.is_empty() {
            let reset: Vec<String> = settings
                .iter()
                .map(|(n, _)| format!("RESET {n};"))
                .collect();
            let reset_done = exec.execute_batch(&reset);
            ran?;
            reset_done.map_err(|f| plain_failure("RESET", f))?;
        } else {
            ran?;
        }
        p.outside_ran = Some(step.revision.clone());
        begin(exec, p)?;
    } else {
        interrupt::set_status(
            "the server rolls back the open transaction when the connection closes, and the migration lock goes with it; no audit row is written",
        );
        let set = local_settings(p, &settings);
        if !set.is_empty() {
            exec.execute_batch(&set)
                .map_err(|f| plain_failure("SET LOCAL", f))?;
        }
        run_inside(exec, script, section, step, observer)?;
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
    p.in_program = false;
    Ok(())
}

/// A check step: measures the recall of the index, logs it, and fails the step (unrecorded,
/// the run stops) below the threshold.
fn run_check_step(
    exec: &mut dyn Executor,
    script: &Script,
    check: &crate::script::RecallCheck,
    step: &Step,
) -> Result<()> {
    let at = format!("{}:{}", script.path.display(), check.line);
    let measured = exec.recall_check(check).map_err(|e| {
        let message = format!(
            "{at}: the check of revision {} could not measure: {}",
            step.revision, e.message
        );
        let mut out = Error::new(ErrorKind::Migration, message).with_note(format!(
            "{} is a check step: it is not recorded as applied; the steps before it are committed",
            step.revision
        ));
        if let Some(h) = &e.hint {
            out = out.with_hint(h.clone());
        }
        out
    })?;
    let Some(r) = measured else {
        log::debug!(
            "[{}] check step passed unmeasured (a replay)",
            step.revision
        );
        return Ok(());
    };
    let measured = format!(
        "recall@{} {:.3} (worst query {:.2}) over {} queries of {}.{} through {} ({} {}, {}); latency p50/p99 {:.1}/{:.1} ms through the index, {:.1}/{:.1} ms exact",
        r.k,
        r.recall,
        r.worst,
        r.queries,
        r.table,
        r.column,
        r.index,
        r.method,
        r.opclass,
        r.search_setting,
        r.index_p50.as_secs_f64() * 1000.0,
        r.index_p99.as_secs_f64() * 1000.0,
        r.exact_p50.as_secs_f64() * 1000.0,
        r.exact_p99.as_secs_f64() * 1000.0,
    );
    if r.ok() {
        log::info!(
            "[{}] {measured}: at or above the threshold {}",
            step.revision,
            r.threshold
        );
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::Migration,
        format!(
            "{at}: the check of revision {} failed: {measured}, under the threshold {}",
            step.revision, r.threshold
        ),
    )
    .with_note(format!(
        "{} is a check step: it is not recorded as applied; the steps before it are committed",
        step.revision
    ))
    .with_hint(format!(
        "rebuild the index with a larger m / ef_construction (HNSW) or lists (IVFFlat), or set a larger {} for the run (the URL's options=-c%20name%3Dvalue, or ALTER DATABASE ... SET); then run migrate-up again (the check runs again)",
        if r.method == "hnsw" { "hnsw.ef_search" } else { "ivfflat.probes" }
    )))
}

/// A program step: runs the program; anything but exit 0 is the step's failure, and the
/// revision stays unrecorded.
fn run_program_step(
    exec: &mut dyn Executor,
    script: &Script,
    program: &Program,
    step: &Step,
    opts: &RunOptions,
    p: &mut Progress,
    observer: &mut dyn Observer,
) -> Result<()> {
    let call = ProgramCall {
        revision: step.revision.clone(),
        direction: step.direction,
        command: program.command.clone(),
        path: script.path.display().to_string(),
        line: program.line,
        timeout: script.session.statement_timeout.or(opts.program_timeout),
    };
    let Some(outcome) = exec.run_program(&call, observer)? else {
        return Ok(()); // offline: written as a comment, not run
    };
    p.programs.push(ProgramRun {
        revision: step.revision.clone(),
        direction: step.direction,
        command: program.command.clone(),
        exit_code: outcome.exit_code(),
        ended: outcome.describe(),
    });
    if outcome.success() {
        return Ok(());
    }
    Err(program_failure(&call, &outcome))
}

pub(super) fn write_bookkeeping(
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
    step.apply_version_ops(&mut p.heads);
    Ok(())
}

pub(super) fn begin(exec: &mut dyn Executor, p: &mut Progress) -> Result<()> {
    if !p.in_tx {
        exec.execute("BEGIN")
            .map_err(|f| plain_failure("BEGIN", f))?;
        p.in_tx = true;
    }
    Ok(())
}

pub(super) fn prepare_once(
    exec: &mut dyn Executor,
    books: Bookkeeping,
    p: &mut Progress,
) -> Result<()> {
    if !p.prepared {
        exec.prepare(&books)?;
        p.prepared = true;
        p.prepared_in_tx = p.in_tx;
    }
    Ok(())
}

/// Writes the pending records, then COMMITs the open transaction.
pub(super) fn commit(exec: &mut dyn Executor, books: Bookkeeping, p: &mut Progress) -> Result<()> {
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
    p.tx_settings.clear();
    p.prepared_in_tx = false;
    p.committed_heads = p.heads.clone();
    p.committed.append(&mut p.pending);
    p.outside_ran = None;
    Ok(())
}

pub(super) fn run_inside(
    exec: &mut dyn Executor,
    script: &Script,
    section: &Section,
    step: &Step,
    observer: &mut dyn Observer,
) -> Result<()> {
    for stmt in split_statements(&section.sql, section.line) {
        refuse_transaction_control(script, &stmt)?;
        if interrupt::signal().is_some() {
            return Err(interrupted_error(Some(&step.revision), None));
        }
        if let Err(f) = exec.run_statement(&stmt.sql, &at(script, step, &stmt), observer) {
            return Err(statement_failure(script, step, &stmt, f, false));
        }
    }
    Ok(())
}

pub(super) fn run_outside(
    exec: &mut dyn Executor,
    script: &Script,
    section: &Section,
    step: &Step,
    opts: &RunOptions,
    observer: &mut dyn Observer,
) -> Result<()> {
    let stmts = split_statements(&section.sql, section.line);
    // INVALID indexes from before this script: not its doing, not named as its leftovers
    let invalid_before = exec.left_behind();
    for (ran_before, stmt) in stmts.iter().enumerate() {
        let at = at(script, step, stmt);
        let (e, interrupted) = match run_with_retries(exec, script, stmt, &at, opts, observer)? {
            Attempts::Ran => continue,
            Attempts::Failed { failure, retries } => {
                let blockers = (failure.sqlstate == "55P03").then(|| exec.blockers());
                let e = statement_failure(script, step, stmt, failure, true);
                let e = match blockers {
                    Some(b) => lock_timeout_exhausted(e, &b, retries),
                    None => e,
                };
                (e, interrupt::signal().is_some())
            }
            Attempts::Interrupted => (interrupted_error(Some(&step.revision), None), true),
        };
        let mut invalid = exec.left_behind();
        invalid.retain(|i| !invalid_before.contains(i));
        return Err(outside_failure(
            e,
            script,
            ran_before,
            interrupted,
            &invalid,
        ));
    }
    Ok(())
}

/// How a statement outside a transaction ended, after its retries.
enum Attempts {
    Ran,
    /// It failed for good (`retries`: how many times it was tried again first).
    Failed {
        failure: SqlFailure,
        retries: u32,
    },
    /// A signal came before it ran or while it waited to retry.
    Interrupted,
}

/// Runs one statement outside a transaction; a lock timeout (55P03) is tried again up to
/// `opts.ddl_retries` times after a growing wait, first dropping the INVALID indexes the
/// timed-out attempt left (a `CREATE INDEX CONCURRENTLY` would trip over them).
fn run_with_retries(
    exec: &mut dyn Executor,
    script: &Script,
    stmt: &Statement,
    at: &StatementAt,
    opts: &RunOptions,
    observer: &mut dyn Observer,
) -> Result<Attempts> {
    let mut attempt = 0;
    let mut to_clean: Vec<String> = Vec::new();
    loop {
        if interrupt::signal().is_some() {
            return Ok(Attempts::Interrupted);
        }
        let f = match drop_left_behind(exec, &mut to_clean)? {
            // the drop waits for the same sessions: a drop that times out is a timed-out attempt
            Some(f) => f,
            None => {
                let before = if opts.ddl_retries > 0 {
                    exec.left_behind()
                } else {
                    Vec::new()
                };
                match exec.run_statement(&stmt.sql, at, observer) {
                    Ok(()) => return Ok(Attempts::Ran),
                    Err(f) => {
                        if f.sqlstate == "55P03" && opts.ddl_retries > 0 {
                            to_clean.extend(
                                exec.left_behind()
                                    .into_iter()
                                    .filter(|i| !before.contains(i)),
                            );
                        }
                        f
                    }
                }
            }
        };
        if f.sqlstate != "55P03" || attempt >= opts.ddl_retries || interrupt::signal().is_some() {
            return Ok(Attempts::Failed {
                failure: f,
                retries: attempt,
            });
        }
        attempt += 1;
        let wait = opts.retry_wait * 2u32.saturating_pow(attempt - 1);
        observer.retrying(&Retry {
            revision: at.revision.clone(),
            attempt,
            of: opts.ddl_retries,
            wait,
            blockers: exec.blockers(),
            repeats: format!("the statement at {}:{}", script.path.display(), stmt.line),
            cleaned: to_clean.clone(),
        });
        if !interrupt::sleep(wait) {
            return Ok(Attempts::Interrupted);
        }
    }
}

/// Drops the INVALID indexes a timed-out `CREATE INDEX CONCURRENTLY` left, removing each
/// dropped one from `to_clean`. A drop that times out waiting for a lock is returned (the
/// attempt timed out); any other failure is the step's error.
fn drop_left_behind(
    exec: &mut dyn Executor,
    to_clean: &mut Vec<String>,
) -> Result<Option<SqlFailure>> {
    for idx in to_clean.clone() {
        match exec.execute(&format!("DROP INDEX CONCURRENTLY IF EXISTS {idx};")) {
            Ok(()) => to_clean.retain(|x| *x != idx),
            Err(f) if f.sqlstate == "55P03" => return Ok(Some(f)),
            Err(f) => return Err(plain_failure(&format!("DROP INDEX CONCURRENTLY {idx}"), f)),
        }
    }
    Ok(None)
}
