//! Running a backfill step (`-- backfill: <table>.<key>`): the up statement range after range of
//! the key, each range in its own transaction together with the checkpoint of the next one, so
//! that after a crash, a `kill -9` or a failover no range is applied twice and none is skipped.
//!
//! In order, inside the one run loop (`exec::run`), as a step of its own:
//! 1. the key is checked before anything is written: the table exists, the key is an integer
//!    (`smallint`, `integer`, `bigint`) or timestamp (`timestamp`, `timestamptz`) column with a
//!    unique index of its own (a primary key usually); otherwise the step is refused;
//! 2. the range `[min, max + 1)` is read when the backfill starts, and kept in the checkpoint
//!    table (`crate::db::backfill`); a later run continues from the checkpoint's `next_key`
//!    and keeps its end (rows inserted above it later are the application's to fill);
//! 3. each range runs `BEGIN; SET LOCAL lock_timeout ...; <statement>; <checkpoint>; COMMIT`,
//!    where the checkpoint moves `next_key` to the range's end only if it still is the range's
//!    start (a second run on the same backfill would find 0 rows and stop); a lock timeout
//!    rolls the range back and tries it again after a growing wait (`--ddl-retries`);
//! 4. the last range's transaction also deletes the checkpoint and records the revision.
//!
//! Throttling, between ranges: the range width adapts to a target time per range
//! ([`DEFAULT_BATCH_TIME`], `--backfill-batch-time`: a concurrent write to a row of the current
//! range waits for its commit); `--backfill-pause` waits between ranges; with
//! `--max-replica-lag` it waits while a replica of `pg_stat_replication` is further behind
//! (measured here from the WAL positions the primary had when each range committed, and from
//! the view's `replay_lag`); while a vacuum (`pg_stat_progress_vacuum`) works on the table it
//! waits one target range time between ranges (about half the pace). A SIGINT or SIGTERM stops it before the next range: every
//! committed range stays, and the next `migrate-up` continues from the checkpoint.
//!
//! A backfill whose up section is a program (`-- run:`) runs the same way, except that each
//! range's writes and its checkpoint are the program's, over a line protocol
//! (`backfill_worker`).

use super::failure::{
    interrupted_error, is_lock_timeout, lock_timeout_exhausted, plain_failure, statement_failure,
};
use super::run::{
    begin, commit, local_settings, prepare_once, rollback_for_retry, write_bookkeeping, Progress,
};
use super::steps::step_settings;
use super::watch::Retry;
use super::{Bookkeeping, Executor, Observer, RunOptions, StepResult};
use crate::db::backfill::{self as checkpoints, key_text};
use crate::db::{quote_literal, SqlFailure};
use crate::error::{Error, ErrorKind, Result};
use crate::interrupt;
use crate::plan::Step;
use crate::project::Project;
use crate::script::{Backfill, Script, Statement};
use crate::words::{fmt_duration, group};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The target time of one range's transaction: short, because a concurrent write to a row of
/// the range waits until it commits.
pub const DEFAULT_BATCH_TIME: Duration = Duration::from_millis(150);
/// The first range's width for an integer key without `batch=N`.
pub const DEFAULT_INTEGER_BATCH: u64 = 1000;
/// The first range's width (seconds) for a timestamp key without `batch=N`.
pub const DEFAULT_TIMESTAMP_BATCH: u64 = 60;

/// How backfills are paced (`migrate-up --backfill-batch-time`, `--backfill-pause`,
/// `--max-replica-lag`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackfillOptions {
    /// The range width adapts so that a range's transaction takes about this long.
    pub batch_time: Duration,
    /// A wait between ranges.
    pub pause: Duration,
    /// Wait while a replica's replay lag is above this (None: replicas are not watched).
    pub max_replica_lag: Option<Duration>,
}

impl Default for BackfillOptions {
    fn default() -> Self {
        BackfillOptions {
            batch_time: DEFAULT_BATCH_TIME,
            pause: Duration::ZERO,
            max_replica_lag: None,
        }
    }
}

/// The rows a query returned, as text, and the count of its command tag (`UPDATE 500`).
#[derive(Debug, Clone, Default)]
pub struct QueryRows {
    pub rows: Vec<Vec<Option<String>>>,
    pub affected: u64,
}

/// What a backfill tells its observer.
#[derive(Debug, Clone)]
pub enum BackfillEvent {
    Started {
        revision: String,
        /// `documents.id`
        target: String,
        /// The range still to do, as people read the keys.
        from: String,
        to: String,
        /// Rows and ranges a previous run did (continuing from a checkpoint).
        resumed: Option<(i64, i64)>,
    },
    Progress(BackfillProgress),
    Paused {
        revision: String,
        reason: String,
    },
    Resumed {
        revision: String,
        paused_for: Duration,
    },
}

/// Where a backfill is, once a second at most and after its last range.
#[derive(Debug, Clone)]
pub struct BackfillProgress {
    pub revision: String,
    pub target: String,
    /// Every key below this is done.
    pub done_to: String,
    pub end: String,
    /// Share of the key range done, 0 to 1.
    pub fraction: f64,
    /// Rows and ranges, over every run of this backfill.
    pub rows: u64,
    pub ranges: u64,
    /// Rows a second in this run.
    pub rate: f64,
    /// The current range width in key units (microseconds for a timestamp key).
    pub width: i64,
    /// The last range's transaction.
    pub last_range: Duration,
    pub eta: Option<Duration>,
}

impl BackfillEvent {
    /// One line for the log.
    pub fn describe(&self) -> String {
        match self {
            BackfillEvent::Started {
                revision,
                target,
                from,
                to,
                resumed,
            } => match resumed {
                Some((rows, ranges)) => format!(
                    "{revision}: backfill of {target} continues from the checkpoint at {from} (up to {to}); {} rows in {ranges} range{} were done before",
                    group(*rows as u64),
                    crate::words::plural(*ranges as usize)
                ),
                None => format!("{revision}: backfill of {target} over [{from}, {to})"),
            },
            BackfillEvent::Progress(p) => p.describe(),
            BackfillEvent::Paused { revision, reason } => {
                format!("{revision}: backfill paused: {reason}")
            }
            BackfillEvent::Resumed {
                revision,
                paused_for,
            } => format!(
                "{revision}: backfill resumed after {}",
                fmt_duration(*paused_for)
            ),
        }
    }
}

impl BackfillProgress {
    pub fn describe(&self) -> String {
        format!(
            "{}: backfill of {} at {} of {} ({:.0}%): {} rows in {} range{}, {} rows/s{}",
            self.revision,
            self.target,
            self.done_to,
            self.end,
            self.fraction * 100.0,
            group(self.rows),
            self.ranges,
            crate::words::plural(self.ranges as usize),
            group(self.rate.round() as u64),
            self.eta
                .map(|e| format!(", about {} left", fmt_duration(e)))
                .unwrap_or_default()
        )
    }
}

/// The key column's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    Integer,
    Timestamp,
    Timestamptz,
}

impl KeyType {
    /// As the checkpoint table keeps it.
    pub fn name(self) -> &'static str {
        match self {
            KeyType::Integer => "integer",
            KeyType::Timestamp => "timestamp",
            KeyType::Timestamptz => "timestamptz",
        }
    }

    /// A key (microseconds since the epoch for timestamps) as SQL.
    pub fn literal(self, k: i64) -> String {
        match self {
            KeyType::Integer => k.to_string(),
            KeyType::Timestamp => format!("(timestamp 'epoch' + interval '{k} microseconds')"),
            KeyType::Timestamptz => {
                format!("(timestamptz 'epoch' + interval '{k} microseconds')")
            }
        }
    }

    /// `expr` (a key value) as the bigint this module counts in.
    fn as_bigint(self, expr: &str) -> String {
        match self {
            KeyType::Integer => format!("({expr})::bigint"),
            _ => format!("(extract(epoch FROM {expr}) * 1000000)::bigint"),
        }
    }

    /// The first range's width in key units.
    pub fn first_width(self, batch: Option<u64>) -> i64 {
        let n = match self {
            KeyType::Integer => batch.unwrap_or(DEFAULT_INTEGER_BATCH),
            _ => batch
                .unwrap_or(DEFAULT_TIMESTAMP_BATCH)
                .saturating_mul(1_000_000),
        };
        n.min(i64::MAX as u64) as i64
    }
}

fn refused(script: &Script, bf: &Backfill, what: String, hint: &str) -> Error {
    Error::new(
        ErrorKind::Migration,
        format!(
            "{}:{}: backfill {}.{}: {what}",
            script.path.display(),
            bf.line,
            bf.table,
            bf.key
        ),
    )
    .with_hint(hint.to_string())
}

pub(super) fn query(exec: &mut dyn Executor, sql: &str, what: &str) -> Result<QueryRows> {
    exec.query(sql).map_err(|f| plain_failure(what, f))
}

/// Checks the key (before anything is written): an integer or timestamp column of an existing
/// table, with a unique index of its own.
pub fn inspect_key(exec: &mut dyn Executor, script: &Script, bf: &Backfill) -> Result<KeyType> {
    let sql = format!(
        "SELECT c.oid IS NOT NULL, a.attname IS NOT NULL, coalesce(format_type(a.atttypid, NULL), ''),
                coalesce(a.attnotnull, false),
                EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisunique AND i.indisvalid
                          AND i.indpred IS NULL AND i.indexprs IS NULL AND i.indnkeyatts = 1 AND i.indkey[0] = a.attnum)
           FROM (SELECT to_regclass({}) AS oid) r
           LEFT JOIN pg_class c ON c.oid = r.oid
           LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = {} AND a.attnum > 0 AND NOT a.attisdropped",
        quote_literal(&bf.table),
        quote_literal(&bf.key.to_lowercase())
    );
    let q = query(exec, &sql, "reading the backfill's key")?;
    let row = q.rows.first().cloned().unwrap_or_default();
    let yes = |i: usize| row.get(i).cloned().flatten().as_deref() == Some("t");
    if !yes(0) {
        return Err(refused(
            script,
            bf,
            format!("there is no table {}", bf.table),
            "create the table in an earlier revision, or fix the name in the '-- backfill:' line",
        ));
    }
    if !yes(1) {
        return Err(refused(
            script,
            bf,
            format!("{} has no column {}", bf.table, bf.key),
            "name the table's key column (its primary key usually) in the '-- backfill:' line",
        ));
    }
    let ty = row.get(2).cloned().flatten().unwrap_or_default();
    let kind =
        match ty.as_str() {
            "smallint" | "integer" | "bigint" => KeyType::Integer,
            "timestamp without time zone" => KeyType::Timestamp,
            "timestamp with time zone" => KeyType::Timestamptz,
            other => return Err(refused(
                script,
                bf,
                format!(
                    "the key is of type {other}; a backfill key is an integer or timestamp column"
                ),
                "name an integer or timestamp column with a unique index (the primary key usually)",
            )),
        };
    if !yes(4) {
        return Err(refused(
            script,
            bf,
            format!("{} has no unique index on {} alone", bf.table, bf.key),
            "a backfill's key needs a unique index of its own (the primary key usually): ranges of a key \
             without one are slow to find and may split rows of the same key value",
        ));
    }
    if !yes(3) {
        log::warn!(
            "{}: backfill key {}.{} may be NULL: rows with a NULL key are in no range and are left as they are",
            script.revision,
            bf.table,
            bf.key
        );
    }
    Ok(kind)
}

/// The key's `[min, max + 1)`, None for an empty table.
pub fn key_range(
    exec: &mut dyn Executor,
    bf: &Backfill,
    kind: KeyType,
) -> Result<Option<(i64, i64)>> {
    let sql = format!(
        "SELECT {}, {} FROM {}",
        kind.as_bigint(&format!("min({})", bf.key)),
        kind.as_bigint(&format!("max({})", bf.key)),
        bf.table
    );
    let q = query(exec, &sql, "reading the backfill's key range")?;
    let num = |i: usize| -> Option<i64> {
        q.rows
            .first()
            .and_then(|r| r.get(i).cloned().flatten())
            .and_then(|v| v.parse().ok())
    };
    Ok(match (num(0), num(1)) {
        (Some(lo), Some(hi)) => Some((lo, hi.saturating_add(1))),
        _ => None,
    })
}

/// The checkpoint of `revision`, if a previous run left one.
fn read_checkpoint(
    exec: &mut dyn Executor,
    books: Bookkeeping,
    revision: &str,
) -> Result<Option<checkpoints::Checkpoint>> {
    let sql = format!(
        "SELECT target, key_type, first_key, next_key, end_key, rows, ranges, busy_seconds FROM {} WHERE revision = {}",
        checkpoints::table_name(books.table),
        quote_literal(revision)
    );
    let q = query(exec, &sql, "reading the backfill's checkpoint")?;
    let Some(r) = q.rows.first() else {
        return Ok(None);
    };
    let text = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
    let num = |i: usize| text(i).parse::<i64>().unwrap_or(0);
    Ok(Some(checkpoints::Checkpoint {
        revision: revision.to_string(),
        target: text(0),
        key_type: text(1),
        first_key: num(2),
        next_key: num(3),
        end_key: num(4),
        rows: num(5),
        ranges: num(6),
        busy_seconds: text(7).parse().unwrap_or(0.0),
        started_at: String::new(),
        updated_at: String::new(),
    }))
}

/// Where a backfill stands while it runs.
pub(super) struct State {
    pub(super) kind: KeyType,
    pub(super) target: String,
    pub(super) first: i64,
    pub(super) next: i64,
    pub(super) end: i64,
    pub(super) rows: u64,
    pub(super) ranges: u64,
    /// Whether the checkpoint row exists (a range of an earlier run or this one committed; a
    /// worker backfill's run writes it before its first range).
    pub(super) has_row: bool,
    pub(super) width: i64,
    // this run
    run_rows: u64,
    run_keys: i64,
    busy: Duration,
}

impl State {
    pub(super) fn key(&self, k: i64) -> String {
        key_text(self.kind.name(), k)
    }

    /// The range `start`..`stop` committed with `rows` rows in `took`.
    pub(super) fn advance(&mut self, start: i64, stop: i64, rows: u64, took: Duration) {
        if start < stop {
            self.ranges += 1;
            self.has_row = true;
        }
        self.rows += rows;
        self.run_rows += rows;
        self.run_keys += stop - start;
        self.busy += took;
        self.next = stop;
    }

    /// The width follows the target time: at most twice or half the last one.
    pub(super) fn adapt(&mut self, target: Duration, took: Duration) {
        let factor = (target.as_secs_f64() / took.as_secs_f64().max(1e-4)).clamp(0.5, 2.0);
        self.width = ((self.width as f64 * factor) as i64).max(1);
    }

    pub(super) fn progress(&self, revision: &str, last_range: Duration) -> BackfillProgress {
        let secs = self.busy.as_secs_f64();
        let eta = (self.run_keys > 0 && secs > 0.0).then(|| {
            let per_key = secs / self.run_keys as f64;
            Duration::from_secs_f64(((self.end - self.next).max(0) as f64 * per_key).min(1e9))
        });
        BackfillProgress {
            revision: revision.to_string(),
            target: self.target.clone(),
            done_to: self.key(self.next),
            end: self.key(self.end),
            fraction: ((self.next - self.first) as f64 / (self.end - self.first).max(1) as f64)
                .clamp(0.0, 1.0),
            rows: self.rows,
            ranges: self.ranges,
            rate: if secs > 0.0 {
                self.run_rows as f64 / secs
            } else {
                0.0
            },
            width: self.width,
            last_range,
            eta,
        }
    }
}

/// Runs the up step of a backfill script (its own segment: nothing is open on `exec`).
#[allow(clippy::too_many_arguments)]
pub(super) fn run(
    exec: &mut dyn Executor,
    project: &Project,
    books: Bookkeeping,
    step: &Step,
    opts: &RunOptions,
    p: &mut Progress,
    observer: &mut dyn Observer,
) -> Result<()> {
    p.failed_step = Some(step.revision.clone());
    p.backfill = Some(false);
    let script = project.script(&step.revision)?;
    let bf = script
        .backfill
        .as_ref()
        .ok_or_else(|| Error::state(format!("{} is not a backfill", step.revision)))?;
    let title = super::step_title(project, step);
    observer.step_started(step, &title);
    interrupt::set_status(format!(
        "{}: the ranges of the backfill committed so far stay; the next migrate-up continues from its checkpoint",
        step.revision
    ));
    let t0 = Instant::now();
    // checks first: nothing is written before the key passed
    let kind = inspect_key(exec, script, bf)?;
    prepare_once(exec, books, p)?;
    exec.execute(&checkpoints::ensure_sql(books.table))
        .map_err(|f| plain_failure("creating the backfill checkpoint table", f))?;
    let target = format!("{}.{}", bf.table, bf.key);
    let mut st = match read_checkpoint(exec, books, &step.revision)? {
        Some(c) => {
            if c.target != target || c.key_type != kind.name() {
                return Err(refused(
                    script,
                    bf,
                    format!(
                        "a checkpoint of an earlier run is of {} ({}), the script now says {target} ({})",
                        c.target,
                        c.key_type,
                        kind.name()
                    ),
                    &format!(
                        "put the '-- backfill:' line back as it was to continue, or start over: DELETE FROM {} WHERE revision = '{}'",
                        checkpoints::table_name(books.table),
                        step.revision
                    ),
                ));
            }
            p.backfill = Some(true);
            observer.backfill(&BackfillEvent::Started {
                revision: step.revision.clone(),
                target: target.clone(),
                from: key_text(kind.name(), c.next_key),
                to: key_text(kind.name(), c.end_key),
                resumed: Some((c.rows, c.ranges)),
            });
            State {
                kind,
                target,
                first: c.first_key,
                next: c.next_key,
                end: c.end_key,
                rows: c.rows.max(0) as u64,
                ranges: c.ranges.max(0) as u64,
                has_row: true,
                width: kind.first_width(bf.batch),
                run_rows: 0,
                run_keys: 0,
                busy: Duration::ZERO,
            }
        }
        None => {
            let (first, end) = key_range(exec, bf, kind)?.unwrap_or((0, 0));
            if first < end {
                observer.backfill(&BackfillEvent::Started {
                    revision: step.revision.clone(),
                    target: target.clone(),
                    from: key_text(kind.name(), first),
                    to: key_text(kind.name(), end),
                    resumed: None,
                });
            } else {
                log::info!(
                    "{}: {} is empty: nothing to backfill",
                    step.revision,
                    bf.table
                );
            }
            State {
                kind,
                target,
                first,
                next: first,
                end,
                rows: 0,
                ranges: 0,
                has_row: false,
                width: kind.first_width(bf.batch),
                run_rows: 0,
                run_keys: 0,
                busy: Duration::ZERO,
            }
        }
    };
    let settings = step_settings(script, opts);
    match &bf.worker {
        Some(program) => super::backfill_worker::run(
            exec, script, bf, program, books, step, opts, p, observer, &mut st, &settings, t0,
        )?,
        None => sql_ranges(
            exec, script, bf, books, step, opts, p, observer, &mut st, &settings, t0,
        )?,
    }
    let d = t0.elapsed();
    observer.step_finished(step, d);
    p.failed_step = None;
    p.backfill = None;
    Ok(())
}

/// The ranges of a SQL backfill, from `st` to its end: the last one's transaction deletes the
/// checkpoint and records the revision.
#[allow(clippy::too_many_arguments)]
fn sql_ranges(
    exec: &mut dyn Executor,
    script: &Script,
    bf: &Backfill,
    books: Bookkeeping,
    step: &Step,
    opts: &RunOptions,
    p: &mut Progress,
    observer: &mut dyn Observer,
    st: &mut State,
    settings: &[(String, String)],
    t0: Instant,
) -> Result<()> {
    let mut lag = LagWatch::default();
    let mut last_report = Instant::now();
    loop {
        if let Some(_sig) = interrupt::signal() {
            return Err(stopped(step, st, books));
        }
        if st.next < st.end {
            throttle(exec, bf, opts, observer, &mut lag, &step.revision).map_err(|e| {
                if e.kind == ErrorKind::Interrupted {
                    stopped(step, st, books)
                } else {
                    e
                }
            })?;
        }
        let start = st.next;
        let stop = if start >= st.end {
            st.end
        } else {
            start.saturating_add(st.width).min(st.end)
        };
        let last = stop >= st.end;
        let (rows, took) = range_with_retries(
            exec, script, bf, books, step, opts, p, observer, settings, st, start, stop, last, t0,
        )
        .map_err(|e| with_checkpoint_note(e, step, st, books))?;
        p.backfill = Some(true);
        st.advance(start, stop, rows, took);
        st.adapt(opts.backfill.batch_time, took);
        if last || last_report.elapsed() >= Duration::from_secs(1) {
            last_report = Instant::now();
            if st.end > st.first {
                observer.backfill(&BackfillEvent::Progress(st.progress(&step.revision, took)));
            }
        }
        if last {
            break;
        }
    }
    Ok(())
}

/// Records a backfill whose ranges are all done (a worker's): one transaction that deletes
/// the checkpoint (if there is one) and writes the revision's bookkeeping.
#[allow(clippy::too_many_arguments)]
pub(super) fn record(
    exec: &mut dyn Executor,
    script: &Script,
    bf: &Backfill,
    books: Bookkeeping,
    step: &Step,
    opts: &RunOptions,
    p: &mut Progress,
    observer: &mut dyn Observer,
    settings: &[(String, String)],
    st: &State,
    t0: Instant,
) -> Result<()> {
    range_with_retries(
        exec, script, bf, books, step, opts, p, observer, settings, st, st.end, st.end, true, t0,
    )
    .map(|_| ())
    .map_err(|e| with_checkpoint_note(e, step, st, books))
}

/// One range, tried again after a lock timeout. Returns its rows and how long its
/// transaction took.
#[allow(clippy::too_many_arguments)]
fn range_with_retries(
    exec: &mut dyn Executor,
    script: &Script,
    bf: &Backfill,
    books: Bookkeeping,
    step: &Step,
    opts: &RunOptions,
    p: &mut Progress,
    observer: &mut dyn Observer,
    settings: &[(String, String)],
    st: &State,
    start: i64,
    stop: i64,
    last: bool,
    t0: Instant,
) -> Result<(u64, Duration)> {
    let mut attempt = 0;
    loop {
        let began = Instant::now();
        let tried = one_range(
            exec, script, bf, books, step, p, settings, st, start, stop, last, t0, began,
        );
        let e = match tried {
            Ok(rows) => return Ok((rows, began.elapsed())),
            Err(e) => e,
        };
        if !is_lock_timeout(&e) || interrupt::signal().is_some() {
            return Err(e);
        }
        let blockers = exec.blockers();
        if attempt >= opts.ddl_retries {
            return Err(lock_timeout_exhausted(e, &blockers, attempt));
        }
        attempt += 1;
        rollback_for_retry(exec, p)?;
        let wait = opts.retry_wait * 2u32.saturating_pow(attempt - 1);
        observer.retrying(&Retry {
            revision: step.revision.clone(),
            attempt,
            of: opts.ddl_retries,
            wait,
            blockers,
            repeats: format!(
                "the range [{}, {}) of the backfill",
                st.key(start),
                st.key(stop)
            ),
            cleaned: Vec::new(),
        });
        if !interrupt::sleep(wait) {
            return Err(interrupted_error(Some(&step.revision), None));
        }
    }
}

/// `BEGIN; SET LOCAL ...; <statement over [start, stop)>; <checkpoint>; COMMIT`; the last
/// range deletes the checkpoint and records the revision instead.
#[allow(clippy::too_many_arguments)]
fn one_range(
    exec: &mut dyn Executor,
    script: &Script,
    bf: &Backfill,
    books: Bookkeeping,
    step: &Step,
    p: &mut Progress,
    settings: &[(String, String)],
    st: &State,
    start: i64,
    stop: i64,
    last: bool,
    t0: Instant,
    began: Instant,
) -> Result<u64> {
    begin(exec, p)?;
    let set = local_settings(p, settings);
    if !set.is_empty() {
        exec.execute_batch(&set)
            .map_err(|f| plain_failure("SET LOCAL", f))?;
    }
    let mut rows = 0;
    if start < stop {
        let sql = bf.statement_for(&st.kind.literal(start), &st.kind.literal(stop));
        rows = exec
            .query(&sql)
            .map_err(|f| {
                let stmt = Statement {
                    sql: bf.statement.clone(),
                    line: bf.statement_line,
                };
                let mut e = statement_failure(script, step, &stmt, f, false);
                e.message
                    .push_str(&format!("\nrange: [{}, {})", st.key(start), st.key(stop)));
                e
            })?
            .affected;
    }
    let table = checkpoints::table_name(books.table);
    let rev = quote_literal(&step.revision);
    if last {
        if st.has_row {
            let q = query(
                exec,
                &format!("DELETE FROM {table} WHERE revision = {rev} AND next_key = {start}"),
                "deleting the backfill's checkpoint",
            )?;
            moved_on(q.affected, step, books)?;
        }
        write_bookkeeping(exec, books, script, step, t0.elapsed(), p)?;
        p.pending.push(StepResult {
            revision: step.revision.clone(),
            direction: step.direction,
            duration: t0.elapsed(),
        });
    } else {
        let sql = format!(
            "INSERT INTO {table} AS c (revision, target, key_type, first_key, next_key, end_key, rows, ranges, busy_seconds)
             VALUES ({rev}, {}, '{}', {}, {stop}, {}, {rows}, 1, {})
             ON CONFLICT (revision) DO UPDATE SET next_key = EXCLUDED.next_key, rows = c.rows + EXCLUDED.rows,
                 ranges = c.ranges + 1, busy_seconds = c.busy_seconds + EXCLUDED.busy_seconds, updated_at = now()
             WHERE c.next_key = {start}",
            quote_literal(&st.target),
            st.kind.name(),
            st.first,
            st.end,
            began.elapsed().as_secs_f64()
        );
        let q = query(exec, &sql, "writing the backfill's checkpoint")?;
        moved_on(q.affected, step, books)?;
    }
    commit(exec, books, p)?;
    Ok(rows)
}

/// The checkpoint row was not where this run left it: another run moved it.
pub(super) fn moved_on(affected: u64, step: &Step, books: Bookkeeping) -> Result<()> {
    if affected == 1 {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::Migration,
        format!(
            "the checkpoint of backfill {} in {} is not where this run left it: another run works on it",
            step.revision,
            checkpoints::table_name(books.table)
        ),
    )
    .with_hint("let the other run finish (migrate-current shows where the backfill is)"))
}

/// The error of a backfill stopped by SIGINT/SIGTERM between ranges: where it stopped.
pub(super) fn stopped(step: &Step, st: &State, books: Bookkeeping) -> Error {
    let e = interrupted_error(Some(&step.revision), None);
    with_checkpoint_note(e, step, st, books)
}

/// Adds where the backfill is to an error: the ranges committed so far stay.
pub(super) fn with_checkpoint_note(e: Error, step: &Step, st: &State, books: Bookkeeping) -> Error {
    if !st.has_row || st.ranges == 0 {
        return e.with_note(format!(
            "backfill {} committed no range: nothing of it was applied",
            step.revision
        ));
    }
    e.with_note(format!(
        "backfill {} stopped at {} = {} ({} rows in {} ranges committed, {:.0}% of [{}, {})); \
         the next migrate-up continues from there (checkpoint in {})",
        step.revision,
        st.target,
        st.key(st.next),
        group(st.rows),
        st.ranges,
        (st.next - st.first) as f64 * 100.0 / (st.end - st.first).max(1) as f64,
        st.key(st.first),
        st.key(st.end),
        checkpoints::table_name(books.table)
    ))
}

/// The WAL positions of the primary when the ranges committed, so a replica's lag is the age
/// of the oldest one it has not replayed (this keeps growing while its replay is paused,
/// where `pg_stat_replication.replay_lag` stays at its last value).
#[derive(Default)]
pub(super) struct LagWatch {
    samples: VecDeque<(i64, Instant)>,
    warned: bool,
    /// Since when a vacuum of the table has been seen (the backfill slowed down).
    vacuum_since: Option<Instant>,
}

/// A replica over the bound: its name and lag.
struct Behind {
    name: String,
    lag: Duration,
}

impl LagWatch {
    /// The replicas further behind than `bound`.
    fn behind(&mut self, exec: &mut dyn Executor, bound: Duration) -> Vec<Behind> {
        let sql = "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint,
                          coalesce(nullif(r.application_name, ''), 'replica') || ' (' || coalesce(host(r.client_addr), 'local') || ')',
                          pg_wal_lsn_diff(r.replay_lsn, '0/0')::bigint,
                          extract(epoch FROM r.replay_lag)::float8,
                          r.pid IS NOT NULL
                     FROM (SELECT 1) one LEFT JOIN pg_stat_replication r ON true";
        let q = match exec.query(sql) {
            Ok(q) => q,
            Err(f) => {
                if !self.warned {
                    self.warned = true;
                    log::warn!(
                        "cannot read the replicas' lag (--max-replica-lag is not applied): {}",
                        f.describe()
                    );
                }
                return Vec::new();
            }
        };
        let now = Instant::now();
        let cell = |r: &Vec<Option<String>>, i: usize| r.get(i).cloned().flatten();
        if let Some(cur) = q
            .rows
            .first()
            .and_then(|r| cell(r, 0))
            .and_then(|v| v.parse::<i64>().ok())
        {
            if self.samples.back().is_none_or(|(l, _)| *l < cur) {
                self.samples.push_back((cur, now));
            }
        }
        let mut out = Vec::new();
        let mut min_replayed = i64::MAX;
        for r in &q.rows {
            if cell(r, 4).as_deref() != Some("t") {
                continue;
            }
            let name = cell(r, 1).unwrap_or_default();
            let Some(replayed) = cell(r, 2).and_then(|v| v.parse::<i64>().ok()) else {
                if !self.warned {
                    self.warned = true;
                    log::warn!(
                        "cannot see how far replica {name} has replayed (the database user needs pg_monitor or pg_read_all_stats): --max-replica-lag is not applied to it"
                    );
                }
                continue;
            };
            min_replayed = min_replayed.min(replayed);
            let ours = self
                .samples
                .iter()
                .find(|(l, _)| *l > replayed)
                .map_or(Duration::ZERO, |(_, at)| now - *at);
            let theirs = cell(r, 3)
                .and_then(|v| v.parse::<f64>().ok())
                .map_or(Duration::ZERO, |s| Duration::from_secs_f64(s.max(0.0)));
            let lag = ours.max(theirs);
            if lag > bound {
                out.push(Behind { name, lag });
            }
        }
        // what every replica has replayed is of no more use (the newest sample stays)
        while self.samples.len() > 1
            && self
                .samples
                .front()
                .is_some_and(|(l, _)| *l <= min_replayed)
        {
            self.samples.pop_front();
        }
        out
    }
}

/// Waits before a range as asked: while a replica lags, while autovacuum works on the table,
/// and `--backfill-pause`. An interrupt while waiting is an error of kind Interrupted.
pub(super) fn throttle(
    exec: &mut dyn Executor,
    bf: &Backfill,
    opts: &RunOptions,
    observer: &mut dyn Observer,
    lag: &mut LagWatch,
    revision: &str,
) -> Result<()> {
    let interrupted = || interrupted_error(Some(revision), None);
    if let Some(bound) = opts.backfill.max_replica_lag {
        let mut paused: Option<Instant> = None;
        let mut told = Instant::now();
        loop {
            let behind = lag.behind(exec, bound);
            if behind.is_empty() {
                if let Some(since) = paused {
                    observer.backfill(&BackfillEvent::Resumed {
                        revision: revision.to_string(),
                        paused_for: since.elapsed(),
                    });
                }
                break;
            }
            if paused.is_none() || told.elapsed() >= Duration::from_secs(10) {
                told = Instant::now();
                let names: Vec<String> = behind
                    .iter()
                    .map(|b| format!("{} {} behind", b.name, fmt_duration(b.lag)))
                    .collect();
                observer.backfill(&BackfillEvent::Paused {
                    revision: revision.to_string(),
                    reason: format!(
                        "replica lag above --max-replica-lag {}: {}",
                        fmt_duration(bound),
                        names.join(", ")
                    ),
                });
            }
            paused.get_or_insert_with(Instant::now);
            if !interrupt::sleep(Duration::from_millis(500)) {
                return Err(interrupted());
            }
        }
    }
    let vacuum = format!(
        "SELECT count(*) FROM pg_stat_progress_vacuum WHERE relid = to_regclass({})",
        quote_literal(&bf.table)
    );
    let vacuum_running = exec
        .query(&vacuum)
        .ok()
        .and_then(|q| q.rows.first().cloned())
        .and_then(|r| r.first().cloned().flatten())
        .is_some_and(|n| n != "0");
    match (vacuum_running, lag.vacuum_since) {
        (true, since) => {
            if since.is_none() {
                observer.backfill(&BackfillEvent::Paused {
                    revision: revision.to_string(),
                    reason: format!(
                        "(auto)vacuum is working on {}: waiting {} between ranges until it ends",
                        bf.table,
                        fmt_duration(opts.backfill.batch_time)
                    ),
                });
                lag.vacuum_since = Some(Instant::now());
            }
            if !interrupt::sleep(opts.backfill.batch_time) {
                return Err(interrupted());
            }
        }
        (false, Some(since)) => {
            lag.vacuum_since = None;
            observer.backfill(&BackfillEvent::Resumed {
                revision: revision.to_string(),
                paused_for: since.elapsed(),
            });
        }
        (false, None) => {}
    }
    if !opts.backfill.pause.is_zero() && !interrupt::sleep(opts.backfill.pause) {
        return Err(interrupted());
    }
    Ok(())
}

/// Used by offline executors: there is no database to ask.
pub(super) fn offline_failure() -> SqlFailure {
    SqlFailure {
        sqlstate: String::new(),
        message: "no database: a backfill runs only online".into(),
        detail: None,
        hint: None,
        position: None,
    }
}

/// What `migrate-up --dry-run` says of a backfill step: its range (or the checkpoint it
/// continues from), about how many rows, and how many ranges at the starting width (the
/// width then follows `opts.batch_time`). Reads only.
pub fn preview(
    exec: &mut dyn Executor,
    project: &Project,
    table: &crate::db::VersionTable,
    step: &Step,
    opts: &RunOptions,
) -> Result<Option<String>> {
    let script = project.script(&step.revision)?;
    let Some(bf) = script
        .backfill
        .as_ref()
        .filter(|_| step.direction == crate::plan::Direction::Up)
    else {
        return Ok(None);
    };
    let exists = query(
        exec,
        &format!(
            "SELECT to_regclass({}) IS NOT NULL",
            quote_literal(&bf.table)
        ),
        "looking up the backfill's table",
    )?;
    if exists
        .rows
        .first()
        .and_then(|r| r.first().cloned().flatten())
        .as_deref()
        != Some("t")
    {
        return Ok(Some(format!(
            "backfill {}: {} does not exist yet (an earlier step creates it?): its key and range are read when the step starts",
            step.revision, bf.table
        )));
    }
    let kind = inspect_key(exec, script, bf)?;
    let books_table = checkpoints::table_name(table);
    let has_books = query(
        exec,
        &format!(
            "SELECT to_regclass({}) IS NOT NULL",
            quote_literal(&books_table)
        ),
        "looking up the backfill checkpoints",
    )?
    .rows
    .first()
    .and_then(|r| r.first().cloned().flatten())
    .as_deref()
        == Some("t");
    let checkpoint = if has_books {
        read_checkpoint(
            exec,
            Bookkeeping {
                table,
                records: None,
            },
            &step.revision,
        )?
    } else {
        None
    };
    let (from, end, note) = match &checkpoint {
        Some(c) => (
            c.next_key,
            c.end_key,
            format!(
                ", continuing from the checkpoint ({} rows in {} ranges done)",
                group(c.rows.max(0) as u64),
                c.ranges
            ),
        ),
        None => match key_range(exec, bf, kind)? {
            Some((a, b)) => (a, b, String::new()),
            None => {
                return Ok(Some(format!(
                    "backfill {}: {} is empty: nothing to backfill",
                    step.revision, bf.table
                )))
            }
        },
    };
    let rows = query(
        exec,
        &format!(
            "SELECT greatest(c.reltuples, 0)::bigint FROM pg_class c WHERE c.oid = to_regclass({})",
            quote_literal(&bf.table)
        ),
        "reading the table's size",
    )?
    .rows
    .first()
    .and_then(|r| r.first().cloned().flatten())
    .and_then(|v| v.parse::<i64>().ok())
    .unwrap_or(0);
    let width = kind.first_width(bf.batch);
    let keys = (end - from).max(0);
    let ranges = (keys + width - 1) / width.max(1);
    let name = kind.name();
    Ok(Some(format!(
        "backfill {}: {}.{} over [{}, {}){note}; about {} rows in the table (planner estimate); \
         {} range{} of {} at the starting width, which then adapts to about {} per range{}",
        step.revision,
        bf.table,
        bf.key,
        key_text(name, from),
        key_text(name, end),
        group(rows.max(0) as u64),
        group(ranges as u64),
        crate::words::plural(ranges as usize),
        match kind {
            KeyType::Integer => format!("{width} keys"),
            _ => format!("{} s", width / 1_000_000),
        },
        fmt_duration(opts.backfill.batch_time),
        bf.worker
            .as_ref()
            .map(|w| format!("; each range handed to the worker program '{}'", w.command))
            .unwrap_or_default()
    )))
}
