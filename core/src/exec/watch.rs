//! What a run tells while a statement runs: heartbeats of a long step (its progress, what it
//! waits for and who blocks it), the server's NOTICE/WARNING messages, and lock-timeout
//! retries. Plain values with their one-line descriptions; the online executor fills them in
//! from a second connection ([`super::monitor`]) and the observers show them (a log line, a
//! progress bar, a JSON event).

use crate::words::fmt_duration;
use std::time::Duration;

/// `12 s`, `1m15s`: whole seconds, for things measured in seconds.
pub fn whole_seconds(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{s} s")
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

/// Where a statement is: its revision and its line in the script.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatementAt {
    pub revision: String,
    pub path: String,
    pub line: usize,
    /// The statement's first line.
    pub first_line: String,
}

impl StatementAt {
    /// `005 (migrations/005_x.sql:3)`
    pub fn describe(&self) -> String {
        format!("{} ({}:{})", self.revision, self.path, self.line)
    }
}

/// A session that holds a lock the statement waits for (`pg_blocking_pids`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Blocker {
    pub pid: i32,
    pub application_name: String,
    /// `active`, `idle in transaction`, ...
    pub state: String,
    /// How long its transaction has been open.
    pub xact_age: Option<Duration>,
    /// Its query's first line.
    pub query: String,
}

impl Blocker {
    /// `pid 123 (psql), idle in transaction, transaction open for 12 s: SELECT ...`
    pub fn describe(&self) -> String {
        let app = if self.application_name.is_empty() {
            "no application_name"
        } else {
            &self.application_name
        };
        let mut s = format!("pid {} ({app})", self.pid);
        if !self.state.is_empty() {
            s.push_str(&format!(", {}", self.state));
        }
        if let Some(age) = self.xact_age {
            s.push_str(&format!(", transaction open for {}", whole_seconds(age)));
        }
        let q = self.query.lines().next().unwrap_or("").trim();
        if !q.is_empty() {
            s.push_str(&format!(": {}", q.chars().take(120).collect::<String>()));
        }
        s
    }
}

/// `pid 1 (...); pid 2 (...)`, or `an unknown session` when none was seen.
pub fn blockers_text(blockers: &[Blocker]) -> String {
    if blockers.is_empty() {
        "a session retort did not see (it let go before the timeout, or holds a lock not visible to pg_blocking_pids)".into()
    } else {
        blockers
            .iter()
            .map(Blocker::describe)
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// An index build's or a CLUSTER's progress, from `pg_stat_progress_create_index` /
/// `pg_stat_progress_cluster`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BuildProgress {
    /// `CREATE INDEX CONCURRENTLY`, `VACUUM FULL`, ...
    pub command: String,
    pub phase: String,
    pub done: i64,
    pub total: i64,
    /// `blocks` or `tuples`.
    pub unit: &'static str,
    /// At the rate seen so far in this phase (or since it slowed down): see
    /// [`super::estimate::EtaTracker`].
    pub eta: Option<Duration>,
    /// `eta` is a floor: a slowdown is expected and not seen yet.
    pub eta_at_least: bool,
    /// Why the ETA is a floor, unknown or from the rate since a slowdown.
    pub eta_note: Option<String>,
}

impl BuildProgress {
    pub fn percent(&self) -> Option<f64> {
        (self.total > 0).then(|| 100.0 * self.done as f64 / self.total as f64)
    }

    /// `about 5 s left` / `more than 8 s left (the HNSW graph needs ...)` / `ETA unknown: the
    /// HNSW graph no longer fits ...` / `about 68 s left (at the rate since ...)`; `None`
    /// when nothing is known yet.
    pub fn eta_text(&self) -> Option<String> {
        let note = self.eta_note.as_deref();
        match (self.eta, note) {
            (None, None) => None,
            (None, Some(n)) => Some(format!("ETA unknown: {n}")),
            (Some(d), n) => {
                let mut s = format!(
                    "{} {} left",
                    if self.eta_at_least {
                        "more than"
                    } else {
                        "about"
                    },
                    whole_seconds(d.max(Duration::from_secs(1)))
                );
                if let Some(n) = n {
                    s.push_str(&format!(" ({n})"));
                }
                Some(s)
            }
        }
    }
}

/// One heartbeat of a statement that has run longer than the heartbeat threshold (2 s).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Heartbeat {
    pub at: StatementAt,
    pub elapsed: Duration,
    /// `Lock:relation`, `IO:DataFileRead`, ... (none: on the CPU).
    pub wait_event: Option<String>,
    pub progress: Option<BuildProgress>,
    pub blockers: Vec<Blocker>,
}

impl Heartbeat {
    /// `005 (migrations/005_x.sql:3) running for 12 s: CREATE INDEX building index: 6887 of
    /// 10000 blocks (68.9%), about 5 s left` / `... waiting for Lock:relation, blocked by pid ...`
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{} running for {}",
            self.at.describe(),
            whole_seconds(self.elapsed)
        );
        if let Some(p) = &self.progress {
            s.push_str(&format!(": {} {}", p.command, p.phase));
            if p.total > 0 {
                s.push_str(&format!(
                    ": {} of {} {} ({:.1}%)",
                    p.done,
                    p.total,
                    p.unit,
                    p.percent().unwrap_or(0.0)
                ));
            }
            if let Some(eta) = p.eta_text() {
                s.push_str(&format!(", {eta}"));
            }
        }
        if let Some(w) = &self.wait_event {
            s.push_str(&format!(", waiting for {w}"));
        }
        if !self.blockers.is_empty() {
            s.push_str(&format!(", blocked by {}", blockers_text(&self.blockers)));
        }
        s
    }
}

/// A NOTICE, WARNING (or INFO) the server sent while a statement ran.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerNotice {
    pub at: StatementAt,
    /// `NOTICE`, `WARNING`, `INFO`, `DEBUG`, `LOG`.
    pub severity: String,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl ServerNotice {
    /// `[005 migrations/005_x.sql:3] WARNING: hnsw graph no longer fits ...`
    pub fn describe(&self) -> String {
        let mut s = format!(
            "[{} {}:{}] {}: {}",
            self.at.revision, self.at.path, self.at.line, self.severity, self.message
        );
        if let Some(d) = &self.detail {
            s.push_str(&format!("\n  detail: {d}"));
        }
        if let Some(h) = &self.hint {
            s.push_str(&format!("\n  hint: {h}"));
        }
        s
    }
}

/// A step that timed out waiting for a lock and is tried again.
#[derive(Debug, Clone, PartialEq)]
pub struct Retry {
    pub revision: String,
    /// 1 for the first retry.
    pub attempt: u32,
    pub of: u32,
    pub wait: Duration,
    pub blockers: Vec<Blocker>,
    /// What the retry runs again: `step 005` / `steps 001..005 (one transaction)` /
    /// `statement at migrations/005_x.sql:3`.
    pub repeats: String,
    /// INVALID indexes the timed-out attempt left, dropped before the retry.
    pub cleaned: Vec<String>,
}

impl Retry {
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{}: lock timeout (blocked by {}); retry {} of {} in {}, running {} again",
            self.revision,
            blockers_text(&self.blockers),
            self.attempt,
            self.of,
            fmt_duration(self.wait),
            self.repeats
        );
        if !self.cleaned.is_empty() {
            s.push_str(&format!(
                " (first dropping the INVALID index{} it left: {})",
                crate::words::plural_es(self.cleaned.len()),
                self.cleaned.join(", ")
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_heartbeat_says_where_how_far_and_who_blocks() {
        let at = StatementAt {
            revision: "005".into(),
            path: "migrations/005_x.sql".into(),
            line: 3,
            first_line: "CREATE INDEX ...".into(),
        };
        let hb = Heartbeat {
            at: at.clone(),
            elapsed: Duration::from_millis(12_400),
            progress: Some(BuildProgress {
                command: "CREATE INDEX".into(),
                phase: "building index".into(),
                done: 6887,
                total: 10000,
                unit: "blocks",
                eta: Some(Duration::from_secs(5)),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            hb.describe(),
            "005 (migrations/005_x.sql:3) running for 12 s: CREATE INDEX building index: 6887 of 10000 blocks (68.9%), about 5 s left"
        );
        let waiting = Heartbeat {
            at,
            elapsed: Duration::from_secs(3),
            wait_event: Some("Lock:relation".into()),
            blockers: vec![Blocker {
                pid: 42,
                application_name: "psql".into(),
                state: "idle in transaction".into(),
                xact_age: Some(Duration::from_secs(75)),
                query: "SELECT * FROM items\nWHERE 1".into(),
            }],
            ..Default::default()
        };
        let text = waiting.describe();
        assert!(text.contains("waiting for Lock:relation, blocked by pid 42 (psql), idle in transaction, transaction open for 1m15s: SELECT * FROM items"), "{text}");
        assert!(!text.contains("WHERE"), "first line only: {text}");
    }

    #[test]
    fn the_time_left_says_whether_it_is_a_floor_unknown_or_since_a_slowdown() {
        let p = |eta: Option<u64>, at_least: bool, note: Option<&str>| BuildProgress {
            eta: eta.map(Duration::from_secs),
            eta_at_least: at_least,
            eta_note: note.map(str::to_string),
            ..Default::default()
        };
        assert_eq!(p(None, false, None).eta_text(), None);
        assert_eq!(
            p(Some(5), false, None).eta_text().as_deref(),
            Some("about 5 s left")
        );
        assert_eq!(
            p(Some(26), true, Some("the graph will not fit"))
                .eta_text()
                .as_deref(),
            Some("more than 26 s left (the graph will not fit)")
        );
        assert_eq!(
            p(None, false, Some("the graph no longer fits"))
                .eta_text()
                .as_deref(),
            Some("ETA unknown: the graph no longer fits")
        );
        assert_eq!(
            p(Some(80), false, Some("at the rate since it slowed down"))
                .eta_text()
                .as_deref(),
            Some("about 1m20s left (at the rate since it slowed down)")
        );
    }
}
