//! Who watches a run: the [`Observer`] hooks and the three observers the library has (log
//! lines, debug lines, silence).

use super::backfill::BackfillEvent;
use super::program::Stream;
use super::watch::{Heartbeat, Retry, ServerNotice};
use super::{BatchAt, RunReport};
use crate::plan::Step;
use crate::words::{fmt_duration, heads_text};
use std::time::{Duration, Instant};

/// Hooks for whoever watches a run (logging today; progress bars and event streams build on
/// it). Every method has a default that does nothing.
pub trait Observer {
    fn step_started(&mut self, _step: &Step, _title: &str) {}
    fn step_finished(&mut self, _step: &Step, _duration: Duration) {}
    fn run_finished(&mut self, _report: &RunReport) {}
    /// With `--batch`: a batch committed; the database is at `heads`.
    fn batch_committed(&mut self, _batch: BatchAt, _heads: &[String]) {}
    /// The lint of the revisions to apply, before anything is written (see
    /// [`crate::lint::gate::gate`]). Returns whether the findings were shown to the user
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
    /// A line a program step's program wrote, as it came (see [`program_line`]).
    fn program_output(&mut self, revision: &str, stream: Stream, line: &str) {
        log::info!("{}", program_line(revision, stream, line));
    }
    /// A backfill started, moved on (at most once a second), paused or resumed.
    fn backfill(&mut self, ev: &BackfillEvent) {
        log_backfill(ev);
    }
}

/// A backfill's event as a log line: a pause as a warning, the rest as info.
pub fn log_backfill(ev: &BackfillEvent) {
    match ev {
        BackfillEvent::Paused { .. } => log::warn!("{}", ev.describe()),
        _ => log::info!("{}", ev.describe()),
    }
}

/// A program's line as the log shows it, under its step's title: `  [003] line`, or
/// `  [003 stderr] line`.
pub fn program_line(revision: &str, stream: Stream, line: &str) -> String {
    match stream {
        Stream::Stdout => format!("  [{revision}] {line}"),
        Stream::Stderr => format!("  [{revision} stderr] {line}"),
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
    /// A backfill's progress once per `every` (and its last), its other events always.
    fn backfill(&mut self, ev: &BackfillEvent) {
        if let BackfillEvent::Progress(p) = ev {
            let last = p.fraction >= 1.0;
            if !last && self.last.is_some_and(|t| t.elapsed() < self.every) {
                return;
            }
            self.last = Some(Instant::now());
        }
        log_backfill(ev);
    }
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
    /// The error-level findings as warnings, and the summary line
    /// ([`crate::output::lint::log_run`]).
    fn linted(&mut self, report: &crate::lint::LintReport) -> bool {
        crate::output::lint::log_run(report);
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
                crate::words::plural(report.steps.len()),
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
    fn program_output(&mut self, revision: &str, stream: Stream, line: &str) {
        log::debug!("{}", program_line(revision, stream, line));
    }
}

/// Says nothing (offline SQL).
pub struct QuietObserver;

impl Observer for QuietObserver {
    fn notice(&mut self, _n: &ServerNotice) {}
    fn retrying(&mut self, _r: &Retry) {}
    fn program_output(&mut self, _revision: &str, _stream: Stream, _line: &str) {}
}
