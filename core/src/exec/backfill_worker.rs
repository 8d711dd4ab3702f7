//! A program as a backfill's worker: a backfill revision whose up section is `-- run:
//! <command>` starts the program once (a model is loaded once, not per range) and hands it the
//! key ranges one by one over a line protocol on its stdin and stdout:
//!
//! ```text
//! retort -> worker   range <start> <end> <checkpoint statement>
//! worker -> retort   done <start> <end> [<rows>|- [<seconds>]]
//!                    error <message>            (then it exits non-zero)
//! retort -> worker   end of stdin: no more ranges; the worker exits 0
//! ```
//!
//! `start` is inclusive, `end` exclusive; keys are text: an integer as itself, a timestamp as
//! `2026-12-07T20:01:02.5` (UTC, `+00:00` added for `timestamptz`). The checkpoint statement
//! moves the backfill's checkpoint from `start` to `end` and raises an error when it is not at
//! `start` (another run moved it). Everything else the worker prints is its log.
//!
//! What "exactly once" means, and how it is kept: the worker writes on its own connection, so
//! retort cannot put a range's writes and its checkpoint in one transaction itself; the worker
//! does, by running the checkpoint statement in the transaction of the range's writes (first,
//! so it also locks the checkpoint row while it writes). Then a range's writes commit exactly
//! when the checkpoint moves past it, and across a `kill -9` of retort or of the worker, a
//! crash or a failover, each range is applied exactly once: a range whose transaction did not
//! commit is not in the checkpoint and is handed out again; one that did is never handed out
//! again. After each `done`, retort checks that the checkpoint moved to `end`. A worker that
//! does not run the checkpoint statement is at-least-once: retort moves the checkpoint itself
//! after the `done` (in a transaction of its own), says so once per run as a warning, and a
//! range whose writes committed before a crash but whose `done` never came is applied again by
//! the next run (such a worker must be idempotent).
//!
//! Retort's own pacing is the same as for SQL backfills ([`super::backfill`]): the range width
//! follows `--backfill-batch-time` from the seconds the worker reports (or, without them, from
//! the time between `range` and `done`), and `--backfill-pause`, `--max-replica-lag` and the
//! vacuum back-off wait between ranges. SIGINT and SIGTERM reach retort only (the worker runs
//! in a process group of its own): retort waits for the range in flight, closes the worker's
//! stdin, and stops, saying where.

use super::backfill::{self as engine, KeyType, State};
use super::failure::plain_failure;
use super::program::{self, Ended, Outcome, ProgramSpec, Spawned, Stream};
use super::run::Progress;
use super::{Bookkeeping, Executor, Observer, ProgramCall, ProgramRun, RunOptions};
use crate::db::backfill::{self as checkpoints, key_text};
use crate::db::quote_literal;
use crate::error::{Error, ErrorKind, Result};
use crate::interrupt;
use crate::plan::Step;
use crate::script::{Backfill, Program, Script};
use std::io::Write;
use std::process::ChildStdin;
use std::time::{Duration, Instant};

/// After the last range (end of stdin), how long the worker has to exit before SIGTERM.
const EXIT_WAIT: Duration = Duration::from_secs(60);
/// How long a second run waits for the checkpoint row while an earlier run's worker (its
/// retort gone) finishes the range it is in.
const ORPHAN_WAIT: &str = "60s";

/// A key as the protocol writes it: `42`, `2026-12-07T20:01:02.5`, `2026-12-07T20:01:02+00:00`.
pub fn wire_key(kind: KeyType, k: i64) -> String {
    let text = key_text(kind.name(), k);
    match kind {
        KeyType::Integer => text,
        KeyType::Timestamp => text.replace(' ', "T"),
        KeyType::Timestamptz => format!("{}+00:00", text.replace(' ', "T")),
    }
}

/// The statement a worker runs in its range's transaction: moves the checkpoint of
/// `revision` from `start` to `stop`, or raises an error when it is not at `start`. One line.
pub fn checkpoint_sql(table: &str, revision: &str, start: i64, stop: i64) -> String {
    let msg = format!(
        "retort: the checkpoint of backfill {revision} is not at {start} (another run moved it): roll this range back"
    );
    format!(
        "DO $retort$BEGIN UPDATE {table} SET next_key = {stop}, ranges = ranges + 1, updated_at = now() \
         WHERE revision = {} AND next_key = {start}; IF NOT FOUND THEN RAISE EXCEPTION {}; END IF; END$retort$",
        quote_literal(revision),
        quote_literal(&msg)
    )
}

/// A line of the worker's stdout.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `done <start> <end> [rows|- [seconds]]` for the range in flight.
    Done {
        rows: Option<u64>,
        seconds: Option<f64>,
    },
    /// `error <message>`.
    Failed(String),
    /// Anything else: its log.
    Log,
}

/// Reads a line of the worker's stdout while the range `start`..`stop` (as sent) is in
/// flight. A `done` that is not for that range, or not well formed, is an error (the text
/// says what is wrong).
pub fn parse_reply(line: &str, start: &str, stop: &str) -> std::result::Result<Reply, String> {
    let mut words = line.split_whitespace();
    match words.next() {
        Some("error") => {
            let msg = line.trim_start()["error".len()..].trim();
            Ok(Reply::Failed(if msg.is_empty() {
                "(no message)".to_string()
            } else {
                msg.to_string()
            }))
        }
        Some("done") => {
            let (s, e) = (words.next(), words.next());
            if s != Some(start) || e != Some(stop) {
                return Err(format!(
                    "'done' must name the range in flight: 'done {start} {stop} [rows [seconds]]'"
                ));
            }
            let rows = match words.next() {
                None | Some("-") => None,
                Some(n) => Some(n.parse::<u64>().map_err(|_| {
                    format!("the rows of 'done' must be a whole number or '-', not '{n}'")
                })?),
            };
            let seconds = match words.next() {
                None => None,
                Some(n) => match n.parse::<f64>() {
                    Ok(x) if x.is_finite() && x >= 0.0 => Some(x),
                    _ => {
                        return Err(format!(
                            "the seconds of 'done' must be a number of seconds, not '{n}'"
                        ))
                    }
                },
            };
            if let Some(extra) = words.next() {
                return Err(format!("'done' has a word too many: '{extra}'"));
            }
            Ok(Reply::Done { rows, seconds })
        }
        _ => Ok(Reply::Log),
    }
}

/// How waiting for a range's answer ended, other than `done`.
enum Broke {
    /// `error <message>`, then the worker's end.
    Failed(String, Option<Outcome>),
    /// It ended without answering.
    Ended(Outcome),
    /// It answered something the protocol does not allow.
    Protocol(String, String),
}

/// The running worker.
struct Worker {
    sp: Spawned,
    stdin: Option<ChildStdin>,
    password: Option<String>,
    revision: String,
    started: Instant,
}

impl Worker {
    fn line(&self, observer: &mut dyn Observer, stream: Stream, line: &str) {
        observer.program_output(
            &self.revision,
            stream,
            &program::masked(line, self.password.as_deref()),
        );
    }

    /// Sends one line; false when the worker no longer reads (it ended).
    fn send(&mut self, line: &str) -> bool {
        match &mut self.stdin {
            Some(w) => writeln!(w, "{line}").and_then(|_| w.flush()).is_ok(),
            None => false,
        }
    }

    /// Waits for the answer to the range `start`..`stop`, streaming the worker's log. An
    /// interrupt does not stop the wait: the range in flight finishes first.
    fn answer(
        &mut self,
        observer: &mut dyn Observer,
        start: &str,
        stop: &str,
    ) -> std::result::Result<(Option<u64>, Option<f64>), Broke> {
        let mut exited: Option<std::process::ExitStatus> = None;
        let mut quiet_since: Option<Instant> = None;
        loop {
            match self.sp.lines.recv_timeout(Duration::from_millis(50)) {
                Ok((Stream::Stdout, Some(line))) => match parse_reply(&line, start, stop) {
                    Ok(Reply::Log) => self.line(observer, Stream::Stdout, &line),
                    Ok(Reply::Done { rows, seconds }) => return Ok((rows, seconds)),
                    Ok(Reply::Failed(msg)) => {
                        let end = self.wait_end(observer, program::KILL_GRACE);
                        return Err(Broke::Failed(msg, end));
                    }
                    Err(why) => return Err(Broke::Protocol(line, why)),
                },
                Ok((s, Some(line))) => self.line(observer, s, &line),
                Ok((_, None)) => self.sp.open -= 1,
                Err(_) => {
                    if let Some(st) = exited {
                        // the rest of its output is read; then it is over
                        let since = *quiet_since.get_or_insert_with(Instant::now);
                        if self.sp.open == 0 || since.elapsed() >= Duration::from_secs(1) {
                            return Err(Broke::Ended(self.outcome(program::ended(st))));
                        }
                    }
                }
            }
            if exited.is_none() {
                if let Ok(Some(st)) = self.sp.child.try_wait() {
                    exited = Some(st);
                }
            }
        }
    }

    fn outcome(&self, ended: Ended) -> Outcome {
        Outcome {
            ended,
            forwarded: None,
            duration: self.started.elapsed(),
        }
    }

    /// Waits up to `limit` for the worker to exit (its output streamed); SIGTERM then, and
    /// SIGKILL after [`program::KILL_GRACE`]. None when it cannot be waited for.
    fn wait_end(&mut self, observer: &mut dyn Observer, limit: Duration) -> Option<Outcome> {
        let since = Instant::now();
        let mut termed: Option<Instant> = None;
        let mut killed = false;
        let status = loop {
            match self.sp.lines.recv_timeout(Duration::from_millis(50)) {
                Ok((s, Some(line))) => self.line(observer, s, &line),
                Ok((_, None)) => self.sp.open -= 1,
                Err(_) => {}
            }
            match self.sp.child.try_wait() {
                Ok(Some(st)) => break st,
                Ok(None) => {}
                Err(_) => return None,
            }
            match termed {
                None if since.elapsed() >= limit => {
                    self.sp.signal(libc::SIGTERM);
                    termed = Some(Instant::now());
                }
                Some(at) if !killed && at.elapsed() >= program::KILL_GRACE => {
                    self.sp.signal(libc::SIGKILL);
                    killed = true;
                }
                _ => {}
            }
        };
        let mut lines = Vec::new();
        program::drain(&mut self.sp, &mut |s, l| lines.push((s, l.to_string())));
        for (s, l) in lines {
            self.line(observer, s, &l);
        }
        Some(self.outcome(program::ended(status)))
    }

    /// No more ranges: closes its stdin and waits for it to exit.
    fn finish(mut self, observer: &mut dyn Observer) -> Option<Outcome> {
        self.stdin = None;
        self.wait_end(observer, EXIT_WAIT)
    }

    /// Stops it (after a failure of retort's side): closes its stdin, and SIGTERM if it does
    /// not exit at once.
    fn stop(mut self, observer: &mut dyn Observer) -> Option<Outcome> {
        self.stdin = None;
        self.wait_end(observer, Duration::from_secs(2))
    }
}

/// Everything a worker run needs to say where it is.
struct Ctx<'a> {
    script: &'a Script,
    bf: &'a Backfill,
    program: &'a Program,
    books: Bookkeeping<'a>,
    step: &'a Step,
}

impl Ctx<'_> {
    fn call(&self, opts: &RunOptions) -> ProgramCall {
        ProgramCall {
            revision: self.step.revision.clone(),
            direction: self.step.direction,
            command: self.program.command.clone(),
            path: self.script.path.display().to_string(),
            line: self.program.line,
            timeout: opts.program_timeout,
        }
    }

    fn table(&self) -> String {
        checkpoints::table_name(self.books.table)
    }

    fn rev(&self) -> String {
        quote_literal(&self.step.revision)
    }

    /// `migrations/0043_x.sql:7: the backfill worker of revision 0043 ('python embed.py')`
    fn who(&self) -> String {
        format!(
            "{}:{}: the backfill worker of revision {} ('{}')",
            self.script.path.display(),
            self.program.line,
            self.step.revision,
            self.program.command
        )
    }
}

/// Runs the ranges of a worker backfill from `st` to its end, then records the revision (in
/// a transaction of retort's with the checkpoint's deletion, as the last range of a SQL
/// backfill does).
#[allow(clippy::too_many_arguments)]
pub(super) fn run(
    exec: &mut dyn Executor,
    script: &Script,
    bf: &Backfill,
    program: &Program,
    books: Bookkeeping,
    step: &Step,
    opts: &RunOptions,
    p: &mut Progress,
    observer: &mut dyn Observer,
    st: &mut State,
    settings: &[(String, String)],
    t0: Instant,
) -> Result<()> {
    let cx = Ctx {
        script,
        bf,
        program,
        books,
        step,
    };
    let mut worker: Option<Worker> = None;
    let mut created = false;
    let done = ranges(exec, &cx, opts, p, observer, st, &mut worker, &mut created);
    if let Err(e) = done {
        if let Some(w) = worker.take() {
            if let Some(o) = w.stop(observer) {
                push_run(p, &cx, &o);
            }
        }
        if created && st.ranges == 0 {
            // the row this run made holds no range: the database is as it was
            let _ = exec.execute(&format!(
                "DELETE FROM {} WHERE revision = {} AND ranges = 0 AND next_key = first_key",
                cx.table(),
                cx.rev()
            ));
            st.has_row = false;
        }
        return Err(e);
    }
    engine::record(
        exec, script, bf, books, step, opts, p, observer, settings, st, t0,
    )
}

fn push_run(p: &mut Progress, cx: &Ctx, o: &Outcome) {
    p.programs.push(ProgramRun {
        revision: cx.step.revision.clone(),
        direction: cx.step.direction,
        command: cx.program.command.clone(),
        exit_code: o.exit_code(),
        ended: o.describe(),
    });
}

#[allow(clippy::too_many_arguments)]
fn ranges(
    exec: &mut dyn Executor,
    cx: &Ctx,
    opts: &RunOptions,
    p: &mut Progress,
    observer: &mut dyn Observer,
    st: &mut State,
    worker: &mut Option<Worker>,
    created: &mut bool,
) -> Result<()> {
    if st.next >= st.end {
        return Ok(());
    }
    let call = cx.call(opts);
    let env = exec
        .program_env()
        .ok_or_else(|| super::cannot_run_programs(&call))?;
    let table = cx.table();
    if st.has_row {
        wait_for_orphans(exec, cx, st)?;
    } else {
        exec.execute(&format!(
            "INSERT INTO {table} (revision, target, key_type, first_key, next_key, end_key) \
             VALUES ({}, {}, '{}', {}, {}, {})",
            cx.rev(),
            quote_literal(&st.target),
            st.kind.name(),
            st.first,
            st.next,
            st.end
        ))
        .map_err(|f| plain_failure("writing the backfill's checkpoint", f))?;
        st.has_row = true;
        *created = true;
    }
    if st.next >= st.end {
        return Ok(());
    }
    let spec = ProgramSpec {
        command: &cx.program.command,
        revision: &cx.step.revision,
        direction: "up",
        env: &env,
        timeout: None,
    };
    let extra = [
        ("RETORT_BACKFILL_TABLE", cx.bf.table.clone()),
        ("RETORT_BACKFILL_KEY", cx.bf.key.clone()),
        ("RETORT_BACKFILL_KEY_TYPE", st.kind.name().to_string()),
    ];
    let mut sp = program::spawn(&spec, &extra, true).map_err(|e| {
        Error::new(
            ErrorKind::Migration,
            format!(
                "{}:{}: cannot start the backfill worker of revision {} (sh -c '{}' in {}): {e}",
                call.path,
                call.line,
                call.revision,
                call.command,
                env.dir.display()
            ),
        )
        .with_hint("check that the migrations directory exists and that sh can be run")
    })?;
    let stdin = sp.child.stdin.take();
    let pgid = sp.pgid;
    *worker = Some(Worker {
        sp,
        stdin,
        password: env.url.password().map(str::to_string),
        revision: cx.step.revision.clone(),
        started: Instant::now(),
    });
    interrupt::set_status(format!(
        "{}: the ranges of the backfill committed so far stay; its worker (process group {pgid}: kill -TERM -{pgid}) \
         may still be in a range, which its checkpoint keeps to once",
        cx.step.revision
    ));
    let mut warned = false;
    let mut lag = engine::LagWatch::default();
    let mut last_report = Instant::now();
    while st.next < st.end {
        if interrupt::signal().is_some() {
            return Err(engine::stopped(cx.step, st, cx.books));
        }
        engine::throttle(exec, cx.bf, opts, observer, &mut lag, &cx.step.revision).map_err(
            |e| {
                if e.kind == ErrorKind::Interrupted {
                    engine::stopped(cx.step, st, cx.books)
                } else {
                    e
                }
            },
        )?;
        let start = st.next;
        let stop = start.saturating_add(st.width).min(st.end);
        let (a, b) = (wire_key(st.kind, start), wire_key(st.kind, stop));
        let line = format!(
            "range {a} {b} {}",
            checkpoint_sql(&table, &cx.step.revision, start, stop)
        );
        let w = worker.as_mut().ok_or_else(|| Error::state("no worker"))?;
        let sent = Instant::now();
        let answered = if w.send(&line) {
            w.answer(observer, &a, &b)
        } else {
            Err(Broke::Ended(
                w.wait_end(observer, program::KILL_GRACE)
                    .unwrap_or_else(|| w.outcome(Ended::Exited(-1))),
            ))
        };
        let (rows, seconds) = match answered {
            Ok(x) => x,
            Err(broke) => {
                let gone = match &broke {
                    Broke::Failed(_, o) => o.clone(),
                    Broke::Ended(o) => Some(o.clone()),
                    Broke::Protocol(..) => None,
                };
                if let Some(o) = &gone {
                    push_run(p, cx, o);
                    *worker = None;
                }
                // it may have committed the range before it ended
                if checkpoint_at(exec, cx)? == Some(stop) {
                    st.advance(start, stop, 0, sent.elapsed());
                    p.backfill = Some(true);
                }
                let e = broken(cx, broke, &a, &b);
                return Err(engine::with_checkpoint_note(e, cx.step, st, cx.books));
            }
        };
        let took = seconds
            .map(Duration::from_secs_f64)
            .unwrap_or_else(|| sent.elapsed());
        confirm(
            exec,
            cx,
            st,
            start,
            stop,
            rows.unwrap_or(0),
            took,
            &mut warned,
        )
        .map_err(|e| engine::with_checkpoint_note(e, cx.step, st, cx.books))?;
        st.advance(start, stop, rows.unwrap_or(0), took);
        p.backfill = Some(true);
        st.adapt(opts.backfill.batch_time, took);
        let last = st.next >= st.end;
        if last || last_report.elapsed() >= Duration::from_secs(1) {
            last_report = Instant::now();
            observer.backfill(&engine::BackfillEvent::Progress(
                st.progress(&cx.step.revision, took),
            ));
        }
    }
    let w = worker.take().ok_or_else(|| Error::state("no worker"))?;
    let outcome = w.finish(observer).unwrap_or(Outcome {
        ended: Ended::Exited(-1),
        forwarded: None,
        duration: Duration::ZERO,
    });
    push_run(p, cx, &outcome);
    if !outcome.success() {
        return Err(Error::new(
            ErrorKind::Migration,
            format!(
                "{} {} after the end of its ranges (end of stdin)",
                cx.who(),
                outcome.describe()
            ),
        )
        .with_note(format!(
            "every range of backfill {} is committed (its checkpoint is at the end, {}); the revision is not recorded: \
             the next migrate-up records it without starting the worker",
            cx.step.revision,
            st.key(st.end)
        ))
        .with_hint("a worker exits 0 when its stdin ends (docs/script-format.md, \"Backfill workers\")"));
    }
    if warned {
        log::warn!(
            "{}: the backfill worker did not run the checkpoint statements: retort moved the checkpoint after each 'done' \
             (at least once: a range whose writes committed just before a crash is applied again by the next run)",
            cx.step.revision
        );
    }
    Ok(())
}

/// Before a run hands out ranges of a backfill that has a checkpoint: an earlier run's worker
/// may still be in a range (its retort killed, it finishes what it began); its transaction
/// holds the checkpoint row. Waiting for that row, then reading it, the ranges start where
/// that range left them.
fn wait_for_orphans(exec: &mut dyn Executor, cx: &Ctx, st: &mut State) -> Result<()> {
    let sql = format!(
        "SELECT next_key, rows, ranges FROM {} WHERE revision = {} FOR UPDATE",
        cx.table(),
        cx.rev()
    );
    exec.execute("BEGIN")
        .map_err(|f| plain_failure("BEGIN", f))?;
    let got = exec
        .execute(&format!("SET LOCAL lock_timeout = '{ORPHAN_WAIT}'"))
        .and_then(|_| exec.query(&sql));
    let _ = exec.execute("COMMIT");
    let q = got.map_err(|f| {
        plain_failure("reading the backfill's checkpoint", f).with_hint(format!(
            "another session holds the checkpoint row of {} (a worker of an earlier run still in a range?): \
             wait for it to end, then run again",
            cx.step.revision
        ))
    })?;
    let Some(r) = q.rows.first() else {
        return Err(engine::moved_on(0, cx.step, cx.books).unwrap_err());
    };
    let num = |i: usize| {
        r.get(i)
            .cloned()
            .flatten()
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0)
    };
    if num(0) != st.next {
        log::info!(
            "{}: a range of an earlier run's worker committed meanwhile: the backfill continues from {}",
            cx.step.revision,
            st.key(num(0))
        );
    }
    st.next = num(0);
    st.rows = num(1).max(0) as u64;
    st.ranges = num(2).max(0) as u64;
    Ok(())
}

/// The checkpoint's next key now.
fn checkpoint_at(exec: &mut dyn Executor, cx: &Ctx) -> Result<Option<i64>> {
    let q = exec
        .query(&format!(
            "SELECT next_key FROM {} WHERE revision = {}",
            cx.table(),
            cx.rev()
        ))
        .map_err(|f| plain_failure("reading the backfill's checkpoint", f))?;
    Ok(q.rows
        .first()
        .and_then(|r| r.first().cloned().flatten())
        .and_then(|v| v.parse().ok()))
}

/// After `done`: the checkpoint is at `stop` (the worker moved it with its writes), or still at
/// `start` (the worker did not run the checkpoint statement: retort moves it, warned once);
/// the rows and the time are added either way.
#[allow(clippy::too_many_arguments)]
fn confirm(
    exec: &mut dyn Executor,
    cx: &Ctx,
    st: &State,
    start: i64,
    stop: i64,
    rows: u64,
    took: Duration,
    warned: &mut bool,
) -> Result<()> {
    let (table, rev) = (cx.table(), cx.rev());
    let secs = took.as_secs_f64();
    let q = engine::query(
        exec,
        &format!(
            "UPDATE {table} SET rows = rows + {rows}, busy_seconds = busy_seconds + {secs}, updated_at = now() \
             WHERE revision = {rev} AND next_key = {stop}"
        ),
        "updating the backfill's checkpoint",
    )?;
    if q.affected == 1 {
        return Ok(());
    }
    if checkpoint_at(exec, cx)? != Some(start) {
        return engine::moved_on(0, cx.step, cx.books);
    }
    if !*warned {
        *warned = true;
        log::warn!(
            "{}: the worker answered 'done {} {}' but the checkpoint is still at {}: it did not run the checkpoint \
             statement in its transaction; retort moves the checkpoint itself, so this backfill is at least once \
             (a range whose writes committed just before a crash is applied again): the worker must be idempotent",
            cx.step.revision,
            wire_key(st.kind, start),
            wire_key(st.kind, stop),
            st.key(start)
        );
    }
    let q = engine::query(
        exec,
        &format!(
            "UPDATE {table} SET next_key = {stop}, ranges = ranges + 1, rows = rows + {rows}, \
             busy_seconds = busy_seconds + {secs}, updated_at = now() WHERE revision = {rev} AND next_key = {start}"
        ),
        "moving the backfill's checkpoint",
    )?;
    engine::moved_on(q.affected, cx.step, cx.books)
}

/// The error of a worker that failed, ended or broke the protocol in the range `a`..`b`.
fn broken(cx: &Ctx, broke: Broke, a: &str, b: &str) -> Error {
    let hint = "its output above says why (the lines marked with the revision); a worker answers each 'range' line \
                with 'done <start> <end>' after its transaction committed (docs/script-format.md, \"Backfill workers\"); \
                the next migrate-up starts it again from the checkpoint";
    match broke {
        Broke::Failed(msg, end) => Error::new(
            ErrorKind::Migration,
            format!(
                "{} failed in the range [{a}, {b}): {msg}{}",
                cx.who(),
                end.map(|o| format!(" (it {})", o.describe()))
                    .unwrap_or_default()
            ),
        )
        .with_hint(hint),
        Broke::Ended(o) => Error::new(
            ErrorKind::Migration,
            format!(
                "{} {} in the range [{a}, {b}), before it answered 'done'",
                cx.who(),
                o.describe()
            ),
        )
        .with_hint(hint),
        Broke::Protocol(line, why) => Error::new(
            ErrorKind::Migration,
            format!(
                "{} answered '{line}' to the range [{a}, {b}): {why}",
                cx.who()
            ),
        )
        .with_hint(
            "print log lines to stderr, or let them not begin with 'done' or 'error' (docs/script-format.md, \
             \"Backfill workers\")",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_on_the_wire_have_no_spaces() {
        assert_eq!(wire_key(KeyType::Integer, -42), "-42");
        assert_eq!(
            wire_key(KeyType::Timestamp, 1_796_673_662_500_000),
            "2026-12-07T20:01:02.5"
        );
        assert_eq!(
            wire_key(KeyType::Timestamptz, 0),
            "1970-01-01T00:00:00+00:00"
        );
    }

    #[test]
    fn the_checkpoint_statement_is_one_line_that_raises_when_the_checkpoint_moved() {
        let sql = checkpoint_sql("\"alembic_version_backfill\"", "0043", 100, 200);
        assert!(!sql.contains('\n'), "{sql}");
        assert!(sql.starts_with("DO $retort$BEGIN UPDATE \"alembic_version_backfill\" SET next_key = 200, ranges = ranges + 1"), "{sql}");
        assert!(
            sql.contains("WHERE revision = '0043' AND next_key = 100;"),
            "{sql}"
        );
        assert!(sql.contains("IF NOT FOUND THEN RAISE EXCEPTION 'retort: the checkpoint of backfill 0043 is not at 100"), "{sql}");
        assert!(sql.ends_with("END$retort$"), "{sql}");
    }

    #[test]
    fn replies_done_error_and_log() {
        let p = |l: &str| parse_reply(l, "1", "101");
        assert_eq!(
            p("done 1 101"),
            Ok(Reply::Done {
                rows: None,
                seconds: None
            })
        );
        assert_eq!(
            p("done 1 101 100 0.25"),
            Ok(Reply::Done {
                rows: Some(100),
                seconds: Some(0.25)
            })
        );
        assert_eq!(
            p("done 1 101 - 0.5"),
            Ok(Reply::Done {
                rows: None,
                seconds: Some(0.5)
            })
        );
        assert_eq!(
            p("error  model not found: small "),
            Ok(Reply::Failed("model not found: small".into()))
        );
        assert_eq!(p("error"), Ok(Reply::Failed("(no message)".into())));
        assert_eq!(p("loading the model"), Ok(Reply::Log));
        assert_eq!(p("errors: 0"), Ok(Reply::Log));
        assert_eq!(p(""), Ok(Reply::Log));
        // a done for another range, or not well formed, is an error that says why
        assert!(p("done 101 201").unwrap_err().contains("range in flight"));
        assert!(p("done").unwrap_err().contains("range in flight"));
        assert!(p("done 1 101 many").unwrap_err().contains("whole number"));
        assert!(p("done 1 101 5 soon").unwrap_err().contains("seconds"));
        assert!(p("done 1 101 5 -1").unwrap_err().contains("seconds"));
        assert!(p("done 1 101 5 1 x").unwrap_err().contains("too many"));
    }
}
