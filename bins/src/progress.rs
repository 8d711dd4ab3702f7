//! What a run shows while it goes, fed by the core's [`Observer`] events: a progress bar on a
//! terminal ([`BarObserver`], indicatif), the JSON event stream of `--format json`
//! ([`JsonEvents`], one object a line on stderr, so stdout keeps the one final document), and
//! otherwise the core's [`LogObserver`] (a heartbeat line every `--progress-interval`).

use retort::exec::{
    log_notice, BatchAt, Heartbeat, LogObserver, Observer, Retry, RunReport, ServerNotice,
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
}
