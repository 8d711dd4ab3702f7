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
//! leaves the database at the last good step. With `batch` (`--batch N`), every N steps commit
//! together ([`crate::plan::batches`]), and a failure leaves the database at the end of the
//! last committed batch ([`FailureState::batch`]). A `transactional: false` script ends the open
//! transaction, runs its statements one by one outside any transaction, and records its step in
//! a transaction of its own.
//!
//! The loop also keeps a run safe to interrupt and to wait: it checks for SIGINT/SIGTERM
//! ([`interrupt`]) before every statement and COMMIT, so an interrupted run ends like a failed
//! one, in a state it can name; it sets each step's session settings (`lock_timeout`,
//! `statement_timeout`, a script's `-- set:`) as statements of the run, so offline SQL shows
//! them too; and a step that times out waiting for a lock (SQLSTATE 55P03) is tried again
//! after a growing wait, after rolling back the open transaction — which, in the default one
//! transaction per run, holds the steps before it as well: a retry runs all of them again,
//! holding no lock while it waits. Heartbeats and server notices reach the [`Observer`]
//! through [`Executor::run_statement`].

pub mod estimate;
pub mod monitor;
pub mod offline;
pub mod online;
pub mod watch;

use crate::db::records::Records;
use crate::db::{SqlFailure, VersionTable};
use crate::error::{Error, ErrorKind, Result};
use crate::interrupt;
use crate::plan::{Direction, Plan, Segment, Step};
use crate::project::Project;
use crate::script::{split_statements, Script, Section, Statement};
use crate::words::{fmt_duration, heads_text};
use std::fmt;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};
pub use watch::{Blocker, BuildProgress, Heartbeat, Retry, ServerNotice, StatementAt};

/// The binaries' `--ddl-lock-timeout` default: a statement waits this long for a lock, then
/// the step is retried (the library's [`RunOptions::default`] sets none).
pub const DEFAULT_DDL_LOCK_TIMEOUT: Duration = Duration::from_secs(5);
/// The binaries' `--ddl-retries` default.
pub const DEFAULT_DDL_RETRIES: u32 = 3;

/// How to run a plan.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Commit after each step instead of once at the end.
    pub transaction_per_migration: bool,
    /// `--batch N`: commit every N transactional steps (see [`crate::plan::batches`]); after
    /// each batch the database is at its last step. Not together with
    /// `transaction_per_migration` (which is `--batch 1`); when both are set, that wins.
    pub batch: Option<NonZeroUsize>,
    /// PostgreSQL's `lock_timeout` for every step's statements (`None`: the server's setting;
    /// zero: none). A script's `-- lock_timeout:` overrides it.
    pub ddl_lock_timeout: Option<Duration>,
    /// How often a step that timed out waiting for a lock (55P03) is tried again.
    pub ddl_retries: u32,
    /// The wait before the first retry; it doubles with each.
    pub retry_wait: Duration,
    /// PostgreSQL's `statement_timeout` for every step (`None`: the server's; zero: none). A
    /// script's `-- statement_timeout:` overrides it.
    pub statement_timeout: Option<Duration>,
}

impl Default for RunOptions {
    /// One transaction, no timeouts of its own, no retries: what offline SQL and shadow
    /// replays use. The binaries set [`DEFAULT_DDL_LOCK_TIMEOUT`] and [`DEFAULT_DDL_RETRIES`].
    fn default() -> Self {
        RunOptions {
            transaction_per_migration: false,
            batch: None,
            ddl_lock_timeout: None,
            ddl_retries: 0,
            retry_wait: Duration::from_secs(1),
            statement_timeout: None,
        }
    }
}

impl RunOptions {
    /// The most steps one transaction holds: `None` for the whole run (the default), `Some(1)`
    /// with `transaction_per_migration`, `Some(n)` with `batch`.
    pub fn steps_per_transaction(&self) -> Option<usize> {
        if self.transaction_per_migration {
            Some(1)
        } else {
            self.batch.map(NonZeroUsize::get)
        }
    }
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
    /// With [`RunOptions::batch`]: the batch the failure came in; the batches before it are
    /// committed, and the database is at the last step of the one before.
    pub batch: Option<BatchAt>,
}

/// A batch of a `--batch N` run: the `number`th (from 1) of `of`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchAt {
    pub number: usize,
    pub of: usize,
}

impl FailureState {
    /// `nothing was applied: ...` / `the database is at ... (N steps of this run committed); ...`
    /// (with `--batch`: `the database is at ..., the end of batch 2 of 5 (...); batch 3 ...`).
    pub fn describe(&self, report: &RunReport) -> String {
        if self.nothing_applied {
            return format!(
                "nothing was applied: the database is as it was before the run, at {}{}",
                heads_text(&report.start_heads),
                match self.batch {
                    Some(b) => format!(" (batch 1 of {} was rolled back)", b.of),
                    None => String::new(),
                }
            );
        }
        let n = report.steps.len();
        let end_of = match self.batch {
            Some(b) if b.number > 1 => format!(", the end of batch {} of {}", b.number - 1, b.of),
            _ => String::new(),
        };
        format!(
            "the database is at {}{end_of} ({n} step{} of this run committed); {}",
            heads_text(&report.end_heads),
            if n == 1 { "" } else { "s" },
            match (self.rolled_back, self.batch) {
                (true, Some(b)) =>
                    format!("batch {}, with the failed step, was rolled back", b.number),
                (true, None) => "the failed step was rolled back".to_string(),
                (false, _) if self.failed_step.is_none() => "no step was in flight".to_string(),
                (false, _) => {
                    "the failed step ran outside a transaction (see the note above)".to_string()
                }
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
    /// Sends one statement of a script, telling `observer` what happens while it runs
    /// (heartbeats, server notices) and letting an interrupt cancel it. Default: [`execute`].
    ///
    /// [`execute`]: Executor::execute
    fn run_statement(
        &mut self,
        sql: &str,
        _at: &StatementAt,
        _observer: &mut dyn Observer,
    ) -> std::result::Result<(), SqlFailure> {
        self.execute(sql)
    }
    /// Who blocked the last statement while it waited for a lock, as last seen.
    fn blockers(&mut self) -> Vec<Blocker> {
        Vec::new()
    }
}

/// Hooks for whoever watches a run (logging today; progress bars and event streams build on
/// it). Every method has a default that does nothing.
pub trait Observer {
    fn step_started(&mut self, _step: &Step, _title: &str) {}
    fn step_finished(&mut self, _step: &Step, _duration: Duration) {}
    fn run_finished(&mut self, _report: &RunReport) {}
    /// With `--batch`: a batch committed; the database is at `heads`.
    fn batch_committed(&mut self, _batch: BatchAt, _heads: &[String]) {}
    /// The lint of the revisions to apply, before anything is written (see
    /// [`crate::commands::lint::gate`]). Returns whether the findings were shown to the user
    /// (a refusal then does not repeat them). Default: not shown.
    fn linted(&mut self, _report: &crate::lint::LintReport) -> bool {
        false
    }
    /// A statement has run longer than 2 s: about once a second while it runs.
    fn heartbeat(&mut self, _hb: &Heartbeat) {}
    /// The server sent a NOTICE/WARNING/INFO while a statement ran.
    fn notice(&mut self, n: &ServerNotice) {
        log_notice(n);
    }
    /// A step timed out waiting for a lock and is tried again.
    fn retrying(&mut self, r: &Retry) {
        log::warn!("{}", r.describe());
    }
}

/// A server message at the log level of its severity: WARNING as a warning, NOTICE and INFO
/// as info, DEBUG and LOG as debug.
pub fn log_notice(n: &ServerNotice) {
    match n.severity.as_str() {
        "WARNING" => log::warn!("{}", n.describe()),
        "NOTICE" | "INFO" => log::info!("{}", n.describe()),
        _ => log::debug!("{}", n.describe()),
    }
}

/// Logs each step at info level, and a long statement's heartbeat once per `every` (the
/// first at the first heartbeat): the binaries' observer when stderr is not a terminal.
pub struct LogObserver {
    pub every: Duration,
    last: Option<Instant>,
}

impl LogObserver {
    pub fn every(every: Duration) -> Self {
        LogObserver { every, last: None }
    }
}

impl Default for LogObserver {
    /// A heartbeat line every 10 s.
    fn default() -> Self {
        LogObserver::every(Duration::from_secs(10))
    }
}

impl Observer for LogObserver {
    fn heartbeat(&mut self, hb: &Heartbeat) {
        if self.last.is_none_or(|t| t.elapsed() >= self.every) {
            self.last = Some(Instant::now());
            log::info!("  {}", hb.describe());
        }
    }
    fn step_started(&mut self, _step: &Step, title: &str) {
        self.last = None;
        log::info!("{title}");
    }
    fn step_finished(&mut self, step: &Step, d: Duration) {
        log::info!("  done {} in {}", step.revision, fmt_duration(d));
    }
    /// Each finding as a warning.
    fn linted(&mut self, report: &crate::lint::LintReport) -> bool {
        for f in &report.findings {
            log::warn!("{}", crate::output::lint::finding_line(f));
        }
        true
    }
    fn batch_committed(&mut self, b: BatchAt, heads: &[String]) {
        log::info!(
            "committed batch {} of {}: the database is at {}",
            b.number,
            b.of,
            heads_text(heads)
        );
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
    fn notice(&mut self, n: &ServerNotice) {
        log::debug!("{}", n.describe());
    }
}

/// Says nothing (offline SQL).
pub struct QuietObserver;

impl Observer for QuietObserver {
    fn notice(&mut self, _n: &ServerNotice) {}
    fn retrying(&mut self, _r: &Retry) {}
}

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
    /// The version table was created in the open transaction (a rollback undoes it).
    prepared_in_tx: bool,
    /// `SET LOCAL`s in force in the open transaction: (name, value).
    tx_settings: Vec<(String, String)>,
    failed_step: Option<String>,
    /// The `transactional: false` step whose statements all ran (they stay) and whose
    /// version-table write has not committed yet: a failure now rolls back only the
    /// bookkeeping, and the error says the step is not recorded.
    outside_ran: Option<String>,
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
            let rolled_back = p.in_tx && p.outside_ran.is_none();
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
                }),
            }))
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn run_segment(
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
fn rollback_for_retry(exec: &mut dyn Executor, p: &mut Progress) -> Result<()> {
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

fn is_lock_timeout(e: &Error) -> bool {
    matches!(&e.detail, crate::error::Detail::Sql { sqlstate } if sqlstate == "55P03")
}

/// The last retry timed out too: name the blocker and the ways out.
fn lock_timeout_exhausted(mut e: Error, blockers: &[Blocker], retries: u32) -> Error {
    e.message.push_str(&format!(
        "\nblocked by {} (lock timeout on {} attempt{})",
        watch::blockers_text(blockers),
        retries + 1,
        if retries == 0 { "" } else { "s" }
    ));
    let pid = blockers
        .first()
        .map_or("PID".to_string(), |b| b.pid.to_string());
    e.with_hint(format!(
        "wait for the blocking transaction to end and run again; or end it (SELECT pg_terminate_backend({pid})); \
         or wait longer for the lock (--ddl-lock-timeout, or '-- lock_timeout: 30s' in the script — reads and writes of the table queue behind the waiting statement meanwhile) \
         or retry more often (--ddl-retries)"
    ))
}

/// The error of an interrupted run (`during`: the step that was running; `cause`: the
/// statement's own failure, which the cancel caused).
fn interrupted_error(during: Option<&str>, cause: Option<&Error>) -> Error {
    let sig = interrupt::signal().unwrap_or(interrupt::SIGINT);
    let mut msg = format!("interrupted by {}", interrupt::signal_name(sig));
    match during {
        Some(rev) => msg.push_str(&format!(" during {rev}")),
        None => msg.push_str(" between steps"),
    }
    if let Some(c) = cause {
        // keep where it was and what was left behind (the notes of a non-transactional step)
        let cancelled = c
            .message
            .contains("canceling statement due to user request");
        if cancelled {
            msg.push_str(": the running statement was cancelled on the server");
        }
        let notes: Vec<&str> = c
            .message
            .lines()
            .filter(|l| l.starts_with("note:") || l.trim_start().starts_with("statement:"))
            .collect();
        if !cancelled {
            msg.push_str(&format!(
                " ({})",
                c.message.lines().next().unwrap_or_default()
            ));
        }
        for n in notes {
            msg.push('\n');
            msg.push_str(n);
        }
    }
    Error::new(ErrorKind::Interrupted, msg)
        .with_hint("run the command again to finish; it starts from the state above")
        .with_detail(crate::error::Detail::Interrupted { signal: sig })
}

/// An interrupt came: stop before the next statement (or COMMIT).
fn check_interrupt(p: &Progress) -> Result<()> {
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

/// A duration as PostgreSQL takes it: `'5s'`, `'250ms'`, `'0'`.
fn pg_duration(d: Duration) -> String {
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

fn set_sql(local: bool, name: &str, value: &str) -> String {
    format!(
        "SET {}{name} = '{}';",
        if local { "LOCAL " } else { "" },
        value.replace('\'', "''")
    )
}

/// `SET LOCAL`s that take the open transaction from its settings to `want`.
fn local_settings(p: &mut Progress, want: &[(String, String)]) -> Vec<String> {
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
fn run_step(
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
    if outside {
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
        p.prepared_in_tx = p.in_tx;
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
    p.tx_settings.clear();
    p.prepared_in_tx = false;
    p.committed_heads = p.heads.clone();
    p.committed.append(&mut p.pending);
    p.outside_ran = None;
    Ok(())
}

/// The note of a `transactional: false` step whose statements all ran (and stay) but whose
/// version-table write did not commit: the next run would run them again.
fn unrecorded(mut e: Error, project: &Project, revision: &str) -> Error {
    let path = project
        .script(revision)
        .map(|s| s.path.display().to_string())
        .unwrap_or_else(|_| revision.to_string());
    e.message.push_str(&format!(
        "\nnote: {path} is not transactional: all its statements ran and stayed, but {revision} is not recorded in the version table; the next run runs them again (safe when they say IF NOT EXISTS / IF EXISTS), or record it with migrate-stamp once you have checked the schema"
    ));
    e
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

fn at(script: &Script, step: &Step, stmt: &Statement) -> StatementAt {
    StatementAt {
        revision: step.revision.clone(),
        path: script.path.display().to_string(),
        line: stmt.line,
        first_line: truncate(stmt.sql.trim().lines().next().unwrap_or(""), 120),
    }
}

fn run_inside(
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

fn run_outside(
    exec: &mut dyn Executor,
    script: &Script,
    section: &Section,
    step: &Step,
    opts: &RunOptions,
    observer: &mut dyn Observer,
) -> Result<()> {
    let stmts = split_statements(&section.sql, section.line);
    for (i, stmt) in stmts.iter().enumerate() {
        let mut attempt = 0;
        // INVALID indexes a timed-out CREATE INDEX CONCURRENTLY left: dropped before the
        // retry, or it trips over "already exists". The drop waits for the same sessions, so
        // a drop that times out counts as a timed-out attempt too.
        let mut to_clean: Vec<String> = Vec::new();
        let failure = loop {
            if interrupt::signal().is_some() {
                break None;
            }
            let mut timed_out = None;
            for idx in to_clean.clone() {
                match exec.execute(&format!("DROP INDEX CONCURRENTLY IF EXISTS {idx};")) {
                    Ok(()) => to_clean.retain(|x| *x != idx),
                    Err(f) if f.sqlstate == "55P03" => {
                        timed_out = Some(f);
                        break;
                    }
                    Err(f) => {
                        return Err(plain_failure(&format!("DROP INDEX CONCURRENTLY {idx}"), f))
                    }
                }
            }
            let f = match timed_out {
                Some(f) => f,
                None => {
                    let before = if opts.ddl_retries > 0 {
                        exec.left_behind()
                    } else {
                        Vec::new()
                    };
                    match exec.run_statement(&stmt.sql, &at(script, step, stmt), observer) {
                        Ok(()) => break Some(Ok(())),
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
            if f.sqlstate != "55P03" || attempt >= opts.ddl_retries || interrupt::signal().is_some()
            {
                break Some(Err(f));
            }
            attempt += 1;
            let wait = opts.retry_wait * 2u32.saturating_pow(attempt - 1);
            observer.retrying(&Retry {
                revision: step.revision.clone(),
                attempt,
                of: opts.ddl_retries,
                wait,
                blockers: exec.blockers(),
                repeats: format!("the statement at {}:{}", script.path.display(), stmt.line),
                cleaned: to_clean.clone(),
            });
            if !interrupt::sleep(wait) {
                break None;
            }
        };
        let (e, interrupted) = match failure {
            Some(Ok(())) => continue,
            Some(Err(f)) => {
                let blockers = (f.sqlstate == "55P03").then(|| exec.blockers());
                let e = statement_failure(script, step, stmt, f, true);
                let e = match blockers {
                    Some(b) => lock_timeout_exhausted(e, &b, attempt),
                    None => e,
                };
                (e, interrupt::signal().is_some())
            }
            None => (interrupted_error(Some(&step.revision), None), true),
        };
        let mut e = e;
        if i > 0 {
            e.message.push_str(&format!(
                "\nnote: {} is not transactional: {} ran before the {} and stayed (it cannot be rolled back)",
                script.path.display(),
                if i == 1 { "its first statement".to_string() } else { format!("its first {i} statements") },
                if interrupted { "interrupt" } else { "failure" }
            ));
        }
        // A failed CREATE INDEX CONCURRENTLY leaves an INVALID index behind: say which.
        let invalid = exec.left_behind();
        if !invalid.is_empty() {
            e.message.push_str(&format!(
                "\nnote: INVALID index{} now in the database: {} (clean up with: {}; IF NOT EXISTS would skip it)",
                if invalid.len() == 1 { "" } else { "es" },
                invalid.join(", "),
                invalid
                    .iter()
                    .map(|i| format!("DROP INDEX CONCURRENTLY IF EXISTS {i};"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ));
        }
        return Err(e);
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
    let line = f.line_in(stmt);
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
