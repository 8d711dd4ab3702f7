//! The watcher of a run's statements: a thread with its own connection that looks at the
//! migration's session while a statement runs — its wait event, who blocks it
//! (`pg_blocking_pids`), and an index build's or CLUSTER's progress — and turns that into
//! [`Heartbeat`]s once the statement has run longer than [`HEARTBEAT_AFTER`].
//!
//! It looks every [`POLL`] from early on, not only after the threshold: a statement that
//! times out waiting for a lock after half a second must still be able to say who held it, so
//! the last blockers seen are kept for [`Monitor::blockers`].
//!
//! Each sample of an index build's progress goes to the statement's [`EtaTracker`], with what
//! the estimate said before the build ([`Monitor::start`]) and pgvector's "graph no longer
//! fits" notice, which reaches the watcher through [`Monitor::overflow_signal`] (the notices
//! arrive on the migration's connection, not the watcher's).
//!
//! Its one query goes with the simple protocol (the session's pid is a number it formats
//! itself): no prepared statements, so it works through PgBouncer too.

use super::estimate::{EtaTracker, GraphOverflow};
use super::watch::{Blocker, BuildProgress, Heartbeat, StatementAt};
use postgres::{Client, SimpleQueryMessage};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A statement gets heartbeats once it has run this long.
pub const HEARTBEAT_AFTER: Duration = Duration::from_secs(2);
/// How often the watcher looks.
pub const POLL: Duration = Duration::from_millis(200);
/// Its first look at a statement: early, for a short lock_timeout's blocker.
pub const FIRST_LOOK: Duration = Duration::from_millis(50);
/// How often a heartbeat is sent after the first.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);

/// What the watcher (and the server's notices) tell while a statement runs; a run-long pump
/// thread hands them to the observer (see [`super::online`]).
pub enum Live {
    Heartbeat(Heartbeat),
    Notice(super::watch::ServerNotice),
}

/// The statement being watched: its place, when it started, a number that tells statements
/// apart.
#[derive(Default)]
struct Current {
    seq: u64,
    running: Option<(StatementAt, Instant)>,
    /// The estimate said the statement's HNSW graph will not fit.
    expected: Option<GraphOverflow>,
    /// The build time estimated before it started.
    estimate: Option<std::time::Duration>,
}

/// The watcher thread's handle; dropping it ends the thread. Starting and ending a statement
/// only writes shared state (no message, no wake-up): a run of short statements costs nothing
/// but the watcher's own 50 ms ticks.
pub struct Monitor {
    current: Arc<Mutex<Current>>,
    blockers: Arc<Mutex<Vec<Blocker>>>,
    alive: Arc<std::sync::atomic::AtomicBool>,
    overflowed: Arc<AtomicBool>,
}

impl Monitor {
    /// Watches the session `pid` over `client` (a second connection); heartbeats go to `out`.
    pub fn spawn(client: Client, pid: i32, out: Sender<Live>) -> Option<Monitor> {
        let m = Monitor {
            current: Arc::new(Mutex::new(Current::default())),
            blockers: Arc::new(Mutex::new(Vec::new())),
            alive: Arc::new(std::sync::atomic::AtomicBool::new(true)),
            overflowed: Arc::new(AtomicBool::new(false)),
        };
        let shared = Shared {
            current: m.current.clone(),
            blockers: m.blockers.clone(),
            alive: m.alive.clone(),
            overflowed: m.overflowed.clone(),
        };
        std::thread::Builder::new()
            .name("retort-monitor".into())
            .spawn(move || watch(client, pid, shared, out))
            .ok()?;
        Some(m)
    }

    /// A statement starts; `expected`: the estimate said its HNSW graph will not fit;
    /// `estimate`: the build time estimated before it.
    pub fn start(
        &self,
        at: StatementAt,
        expected: Option<GraphOverflow>,
        estimate: Option<std::time::Duration>,
    ) {
        self.overflowed.store(false, Ordering::SeqCst);
        if let Ok(mut b) = self.blockers.lock() {
            b.clear();
        }
        if let Ok(mut c) = self.current.lock() {
            c.seq += 1;
            c.running = Some((at, Instant::now()));
            c.expected = expected;
            c.estimate = estimate;
        }
    }

    pub fn stop(&self) {
        if let Ok(mut c) = self.current.lock() {
            c.running = None;
        }
    }

    /// Set when pgvector says the running statement's graph no longer fits in
    /// `maintenance_work_mem` (from the migration connection's notice handler).
    pub fn overflow_signal(&self) -> Arc<AtomicBool> {
        self.overflowed.clone()
    }

    /// Who blocked the current (or last) statement, as last seen.
    pub fn blockers(&self) -> Vec<Blocker> {
        self.blockers.lock().map(|b| b.clone()).unwrap_or_default()
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.alive.store(false, Ordering::SeqCst);
    }
}

/// The watcher's state about the statement it watches.
struct Watched {
    seq: u64,
    last_look: Option<Instant>,
    last_beat: Option<Instant>,
    eta: EtaTracker,
}

/// What the watcher thread shares with its [`Monitor`].
struct Shared {
    current: Arc<Mutex<Current>>,
    blockers: Arc<Mutex<Vec<Blocker>>>,
    alive: Arc<AtomicBool>,
    overflowed: Arc<AtomicBool>,
}

fn watch(mut client: Client, pid: i32, shared: Shared, out: Sender<Live>) {
    let Shared {
        current,
        blockers,
        alive,
        overflowed,
    } = shared;
    let mut w = Watched {
        seq: 0,
        last_look: None,
        last_beat: None,
        eta: EtaTracker::default(),
    };
    while alive.load(Ordering::SeqCst) {
        std::thread::sleep(FIRST_LOOK);
        let (seq, running, expected, estimate) = match current.lock() {
            Ok(c) => (c.seq, c.running.clone(), c.expected.clone(), c.estimate),
            Err(_) => return,
        };
        let Some((at, started)) = running else {
            continue;
        };
        if seq != w.seq {
            w = Watched {
                seq,
                last_look: None,
                last_beat: None,
                eta: EtaTracker::new(expected).with_estimate(estimate),
            };
        }
        let elapsed = started.elapsed();
        let look_due = match w.last_look {
            None => elapsed >= FIRST_LOOK,
            Some(t) => t.elapsed() >= POLL,
        };
        if !look_due {
            continue;
        }
        w.last_look = Some(Instant::now());
        let Some(mut sample) = sample(&mut client, pid) else {
            continue;
        };
        if overflowed.swap(false, Ordering::SeqCst) {
            w.eta.graph_overflowed();
        }
        if let Some(p) = &mut sample.progress {
            let eta = w.eta.sample(elapsed, &p.phase, p.done, p.total);
            p.eta = eta.left;
            p.eta_at_least = eta.at_least;
            p.eta_note = eta.note;
        }
        if !sample.blockers.is_empty() {
            if let Ok(mut b) = blockers.lock() {
                *b = sample.blockers.clone();
            }
        }
        let due = w.last_beat.is_none_or(|t| t.elapsed() >= HEARTBEAT_EVERY);
        if elapsed < HEARTBEAT_AFTER || !due {
            continue;
        }
        w.last_beat = Some(Instant::now());
        let beat = Heartbeat {
            at,
            elapsed,
            wait_event: sample.wait_event,
            progress: sample.progress,
            blockers: sample.blockers,
        };
        if out.send(Live::Heartbeat(beat)).is_err() {
            return;
        }
    }
}

struct Sample {
    wait_event: Option<String>,
    blockers: Vec<Blocker>,
    progress: Option<BuildProgress>,
}

/// One look at session `pid`: activity, blockers, progress views.
fn sample(client: &mut Client, pid: i32) -> Option<Sample> {
    let sql = format!(
        "SELECT a.wait_event_type, a.wait_event,
                (SELECT json_agg(json_build_object('pid', b.pid, 'app', b.application_name, 'state', b.state,
                        'xact_secs', extract(epoch FROM now() - b.xact_start), 'query', left(b.query, 300)))
                   FROM pg_stat_activity b WHERE b.pid = ANY (pg_blocking_pids(a.pid)))::text,
                (SELECT json_build_object('command', c.command, 'phase', c.phase,
                        'blocks_done', c.blocks_done, 'blocks_total', c.blocks_total,
                        'tuples_done', c.tuples_done, 'tuples_total', c.tuples_total)
                   FROM pg_stat_progress_create_index c WHERE c.pid = a.pid)::text,
                (SELECT json_build_object('command', c.command, 'phase', c.phase,
                        'blocks_done', c.heap_blks_scanned, 'blocks_total', c.heap_blks_total,
                        'tuples_done', c.heap_tuples_scanned, 'tuples_total', 0)
                   FROM pg_stat_progress_cluster c WHERE c.pid = a.pid)::text
           FROM pg_stat_activity a WHERE a.pid = {pid}"
    );
    let rows = client.simple_query(&sql).ok()?;
    let row = rows.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(r) => Some(r),
        _ => None,
    })?;
    let wait_event = match (row.get(0), row.get(1)) {
        (Some(t), Some(e)) => Some(format!("{t}:{e}")),
        (Some(t), None) => Some(t.to_string()),
        _ => None,
    };
    let blockers = row
        .get(2)
        .and_then(|j| serde_json::from_str::<serde_json::Value>(j).ok())
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|b| Blocker {
            pid: b["pid"].as_i64().unwrap_or(0) as i32,
            application_name: b["app"].as_str().unwrap_or("").to_string(),
            state: b["state"].as_str().unwrap_or("").to_string(),
            xact_age: b["xact_secs"]
                .as_f64()
                .map(|s| Duration::from_secs_f64(s.max(0.0))),
            query: b["query"].as_str().unwrap_or("").to_string(),
        })
        .collect();
    let progress = row
        .get(3)
        .or(row.get(4))
        .and_then(|j| serde_json::from_str::<serde_json::Value>(j).ok())
        .map(|v| {
            let n = |k: &str| v[k].as_i64().unwrap_or(0);
            let (done, total, unit) = if n("blocks_total") > 0 {
                (n("blocks_done"), n("blocks_total"), "blocks")
            } else {
                (n("tuples_done"), n("tuples_total"), "tuples")
            };
            BuildProgress {
                command: v["command"].as_str().unwrap_or("").to_string(),
                phase: v["phase"].as_str().unwrap_or("").to_string(),
                done,
                total,
                unit,
                ..Default::default()
            }
        });
    Some(Sample {
        wait_event,
        blockers,
        progress,
    })
}
