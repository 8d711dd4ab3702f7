//! What a run shows while it goes, fed by the core's [`Observer`] events: a progress bar on a
//! terminal ([`BarObserver`], indicatif), the JSON event stream of `--format json`
//! ([`JsonEvents`], one object a line on stderr, so stdout keeps the one final document), and
//! otherwise the core's [`LogObserver`] (a heartbeat line every `--progress-interval`). A
//! fleet run shows its own: [`FleetStatus`], a status line on a terminal, else a log line per
//! finished target.

use retort::exec::program::Stream;
use retort::exec::{
    log_backfill, log_notice, BackfillEvent, BatchAt, Heartbeat, LogObserver, Observer, Retry,
    RunReport, ServerNotice,
};
use retort::output::json::events;
use retort::plan::{Direction, Step};
use std::io::Write;
use std::time::Duration;

/// One JSON object a line on stderr.
pub struct JsonEvents;

fn emit(v: serde_json::Value) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{}", serde_json::to_string(&v).unwrap_or_default());
}

fn dir(d: Direction) -> &'static str {
    match d {
        Direction::Up => "up",
        Direction::Down => "down",
    }
}

impl Observer for JsonEvents {
    fn step_started(&mut self, step: &Step, title: &str) {
        emit(events::step_started(
            &step.revision,
            dir(step.direction),
            title,
        ));
    }
    fn step_finished(&mut self, step: &Step, d: Duration) {
        emit(events::step_finished(&step.revision, d));
    }
    fn run_finished(&mut self, r: &RunReport) {
        emit(events::run_finished(
            r.steps.len(),
            &r.end_heads,
            r.duration,
        ));
    }
    fn batch_committed(&mut self, b: BatchAt, heads: &[String]) {
        emit(events::batch_committed(b.number, b.of, heads));
    }
    fn heartbeat(&mut self, hb: &Heartbeat) {
        emit(events::heartbeat(hb));
    }
    fn notice(&mut self, n: &ServerNotice) {
        emit(events::notice(n));
    }
    fn retrying(&mut self, r: &Retry) {
        emit(events::retry(r));
    }
    fn program_output(&mut self, revision: &str, stream: Stream, line: &str) {
        emit(events::program_output(revision, stream.name(), line));
    }

    fn backfill(&mut self, ev: &BackfillEvent) {
        emit(events::backfill(ev));
    }
}

/// On a terminal: the step lines as the log prints them, and for a long statement a bar
/// (an index build with a total) or a spinner (anything else) that each heartbeat updates.
pub struct BarObserver {
    log: LogObserver,
    bar: Option<indicatif::ProgressBar>,
}

impl BarObserver {
    pub fn new() -> Self {
        BarObserver {
            log: LogObserver::default(),
            bar: None,
        }
    }

    fn clear(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

impl Default for BarObserver {
    fn default() -> Self {
        Self::new()
    }
}

impl Observer for BarObserver {
    fn step_started(&mut self, step: &Step, title: &str) {
        self.clear();
        self.log.step_started(step, title);
    }
    fn step_finished(&mut self, step: &Step, d: Duration) {
        self.clear();
        self.log.step_finished(step, d);
    }
    fn run_finished(&mut self, r: &RunReport) {
        self.clear();
        self.log.run_finished(r);
    }
    fn batch_committed(&mut self, b: BatchAt, heads: &[String]) {
        self.clear();
        self.log.batch_committed(b, heads);
    }
    fn heartbeat(&mut self, hb: &Heartbeat) {
        let bar = self.bar.get_or_insert_with(|| {
            let b = indicatif::ProgressBar::with_draw_target(
                None,
                indicatif::ProgressDrawTarget::stderr_with_hz(4),
            );
            b.enable_steady_tick(Duration::from_millis(250));
            b
        });
        match hb.progress.as_ref().filter(|p| p.total > 0) {
            Some(p) => {
                bar.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{prefix} [{bar:30}] {percent:>3}% {msg}",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                bar.set_length(p.total as u64);
                bar.set_position(p.done.max(0) as u64);
                bar.set_message(format!(
                    "{} {} of {} {}{}",
                    p.phase,
                    p.done,
                    p.total,
                    p.unit,
                    p.eta_text().map(|e| format!(", {e}")).unwrap_or_default()
                ));
            }
            None => {
                bar.set_style(
                    indicatif::ProgressStyle::with_template("{prefix} {spinner} {msg}")
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
                );
                bar.set_message(hb.describe());
            }
        }
        bar.set_prefix(format!("{} {}s", hb.at.revision, hb.elapsed.as_secs()));
    }
    fn notice(&mut self, n: &ServerNotice) {
        match &self.bar {
            Some(b) => b.suspend(|| log_notice(n)),
            None => log_notice(n),
        }
    }
    fn retrying(&mut self, r: &Retry) {
        self.clear();
        self.log.retrying(r);
    }
    fn program_output(&mut self, revision: &str, stream: Stream, line: &str) {
        self.clear();
        self.log.program_output(revision, stream, line);
    }

    /// A bar over the key range, its message the rows, rate and ETA; pauses as log lines.
    fn backfill(&mut self, ev: &BackfillEvent) {
        let BackfillEvent::Progress(p) = ev else {
            match &self.bar {
                Some(b) => b.suspend(|| log_backfill(ev)),
                None => log_backfill(ev),
            }
            return;
        };
        let bar = self.bar.get_or_insert_with(|| {
            let b = indicatif::ProgressBar::with_draw_target(
                Some(1000),
                indicatif::ProgressDrawTarget::stderr_with_hz(4),
            );
            b.set_style(
                indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            b
        });
        bar.set_prefix(format!("{} backfill", p.revision));
        bar.set_position((p.fraction * 1000.0) as u64);
        bar.set_message(format!(
            "{:.0}% {} rows, {} rows/s{}",
            p.fraction * 100.0,
            retort::words::group(p.rows),
            retort::words::group(p.rate.round() as u64),
            p.eta
                .map(|e| format!(", about {} left", retort::words::fmt_duration(e)))
                .unwrap_or_default()
        ));
    }
}

/// Whether a fleet's live status line is on stderr now (a log line clears it first).
static STATUS_SHOWN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether a fleet's live status line is on stderr now, so a log line clears it first (the
/// next tick redraws it).
pub fn status_shown() -> bool {
    STATUS_SHOWN.load(std::sync::atomic::Ordering::SeqCst)
}

/// What a fleet run shows while it goes: on a terminal (with info logs on) a status line,
/// redrawn in place at most every 100 ms (`12/200 done, 8 running, 1 failed; slowest running:
/// acme (41.2 s)`), cleared before the table; otherwise one log line per finished target.
pub struct FleetStatus<'a> {
    command: &'a str,
    targets: &'a [retort::fleet::Target],
    live: bool,
    running: std::collections::BTreeMap<usize, std::time::Instant>,
    done: usize,
    failed: usize,
    last: std::time::Instant,
}

impl<'a> FleetStatus<'a> {
    pub fn new(command: &'a str, targets: &'a [retort::fleet::Target]) -> FleetStatus<'a> {
        use std::io::IsTerminal;
        FleetStatus {
            command,
            targets,
            live: std::io::stderr().is_terminal() && log::log_enabled!(log::Level::Info),
            running: Default::default(),
            done: 0,
            failed: 0,
            last: std::time::Instant::now() - Duration::from_secs(1),
        }
    }

    /// Takes one of the scheduler's events.
    pub fn event(&mut self, ev: &retort::fleet::Event) {
        use retort::fleet::{Event, Outcome};
        use retort::output::fleet::finished_line;
        match ev {
            Event::Started(k) => {
                self.running.insert(*k, std::time::Instant::now());
            }
            Event::Finished(k, r) => {
                self.running.remove(k);
                self.done += 1;
                if r.failed() {
                    self.failed += 1;
                }
                if !self.live {
                    match &r.outcome {
                        Outcome::Failed(_) => log::error!("{}", finished_line(self.command, r)),
                        _ => log::info!("{}", finished_line(self.command, r)),
                    }
                }
            }
            Event::Tick => {}
        }
        if self.live && self.last.elapsed() >= Duration::from_millis(100) {
            self.last = std::time::Instant::now();
            let slowest = self
                .running
                .iter()
                .min_by_key(|(_, t)| **t)
                .map(|(k, t)| {
                    format!(
                        "; slowest running: {} ({})",
                        retort::config::redact_url_text(&self.targets[*k].name),
                        retort::output::text::fmt_duration(t.elapsed())
                    )
                })
                .unwrap_or_default();
            eprint!(
                "\r\x1b[2K{}/{} done, {} running, {} failed{slowest}",
                self.done,
                self.targets.len(),
                self.running.len(),
                self.failed
            );
            let _ = std::io::stderr().flush();
            STATUS_SHOWN.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// Clears the status line (before the table).
    pub fn finish(self) {
        if self.live {
            STATUS_SHOWN.store(false, std::sync::atomic::Ordering::SeqCst);
            eprint!("\r\x1b[2K");
        }
    }
}
