//! Fleets: one command over many databases (or schemas) — tenant databases, schema-per-tenant,
//! regions. [`targets`] reads them; [`run`] schedules the per-target jobs with `--parallel`,
//! `--canary` and `--continue-on-error`; each job is exactly a single run on its target (its
//! own connection, lock, transactions, audit rows and failure state). docs/fleets.md.

pub mod drift;
pub mod jobs;
pub mod targets;

use crate::error::Error;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Condvar, Mutex};
use std::time::{Duration, Instant};
pub use targets::Target;

/// Exit code of a fleet command when some target failed or was not started (every target
/// fine: 0; `migrate-check`: 1 when a target has problems).
pub const SOME_FAILED: i32 = 8;

/// How a fleet runs.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    /// Targets at once.
    pub parallel: usize,
    /// Run this many targets first; go on only if all of them succeeded.
    pub canary: usize,
    /// Keep starting targets after a failure (default: stop starting; running ones finish).
    pub continue_on_error: bool,
    /// At most this many targets at once on a server ([`server_of`]); a server not listed is
    /// limited by `parallel` only.
    pub per_server: HashMap<String, usize>,
}

impl FleetOptions {
    /// The options of a run over `targets`: `parallel` targets at once (default 8), and for
    /// each server of the targets (the first 64 of them) as many at once as its free
    /// connections allow ([`server_limits`]); the whole fleet never more than the servers'
    /// limits added up (a larger `parallel` asked for is lowered, with a warning).
    pub fn for_targets(
        targets: &[Target],
        parallel: Option<usize>,
        canary: usize,
        continue_on_error: bool,
        app: &str,
    ) -> FleetOptions {
        let per_server = server_limits(targets, app);
        let mut counts: HashMap<String, usize> = HashMap::new();
        for t in targets {
            *counts.entry(server_of(t)).or_insert(0) += 1;
        }
        // all servers together: their limits summed (a server not asked: its targets)
        let room: usize = counts
            .iter()
            .map(|(server, n)| per_server.get(server).copied().unwrap_or(*n))
            .sum();
        let wanted = parallel.unwrap_or(8);
        let at_once = wanted.min(room).min(targets.len()).max(1);
        if let Some(n) = parallel {
            if at_once < n && at_once < targets.len() {
                log::warn!(
                    "--parallel {n}: the servers' free connections allow {at_once} at once; running {at_once}"
                );
            }
        }
        FleetOptions {
            parallel: at_once,
            canary,
            continue_on_error,
            per_server,
        }
    }
}

/// For each server of `targets` (the first 64 of them, in the targets' order), how many of
/// its targets may run at once: its free connections ([`free_connections`]) halved, as a
/// target holds up to two ([`cap_parallel`]). A server that cannot be asked is not listed (its
/// targets then fail or succeed on their own).
pub fn server_limits(targets: &[Target], app: &str) -> HashMap<String, usize> {
    let mut first_of: Vec<(String, usize)> = Vec::new();
    let mut counts: HashMap<String, usize> = HashMap::new();
    for (i, t) in targets.iter().enumerate() {
        let server = server_of(t);
        let n = counts.entry(server.clone()).or_insert(0);
        if *n == 0 {
            first_of.push((server, i));
        }
        *n += 1;
    }
    let mut per_server = HashMap::new();
    for (server, i) in first_of.iter().take(64) {
        let free = crate::db::connect(&targets[*i].url, app)
            .ok()
            .and_then(|mut c| free_connections(&mut c).ok());
        if let Some(free) = free {
            let cap = cap_parallel(usize::MAX, counts[server], Some(free));
            log::debug!("{server}: {free} free connections, {cap} target(s) at once");
            per_server.insert(server.clone(), cap);
        }
    }
    per_server
}

/// What a fleet run found about the whole fleet rather than one target: `migrate-check`'s
/// schema file against the migrations, checked once.
#[derive(Debug, Clone, Default)]
pub struct FleetWide {
    pub problems: Vec<crate::commands::check::Problem>,
    /// What the schema drift checks did.
    pub drift: Option<String>,
}

impl FleetWide {
    /// The same, every message passed through `shown` (a temporary schema file named by the
    /// command that printed it).
    pub fn shown(self, shown: &dyn Fn(&str) -> String) -> FleetWide {
        FleetWide {
            problems: self
                .problems
                .into_iter()
                .map(|p| crate::commands::check::Problem {
                    code: p.code,
                    message: shown(&p.message),
                })
                .collect(),
            drift: self.drift.map(|d| shown(&d)),
        }
    }
}

/// The exit code of a fleet run: [`SOME_FAILED`] when a target failed or was not started,
/// else 1 when a target or the whole fleet has problems (`migrate-check`), else 0.
pub fn exit_code(results: &[TargetResult], wide: &FleetWide) -> i32 {
    if results.iter().any(TargetResult::failed) {
        SOME_FAILED
    } else if !wide.problems.is_empty()
        || results
            .iter()
            .any(|r| matches!(r.outcome, Outcome::Problems(_)))
    {
        crate::error::exit::PROBLEMS
    } else {
        0
    }
}

/// The server a target is on, as the per-server limits name it: `host:port`.
pub fn server_of(t: &Target) -> String {
    format!("{}:{}", t.url.host, t.url.port)
}

/// Per-server slots: a target waits for one of its server's before it starts.
struct Slots<'a> {
    caps: &'a HashMap<String, usize>,
    in_use: Mutex<HashMap<String, usize>>,
    freed: Condvar,
}

impl<'a> Slots<'a> {
    fn new(caps: &'a HashMap<String, usize>) -> Slots<'a> {
        Slots {
            caps,
            in_use: Mutex::new(HashMap::new()),
            freed: Condvar::new(),
        }
    }

    /// Waits for a slot on `server` (none needed when it has no limit); the returned guard
    /// gives it back.
    fn acquire(&self, server: String) -> Option<SlotGuard<'_, 'a>> {
        let cap = *self.caps.get(&server)?;
        let mut in_use = self.in_use.lock().unwrap_or_else(|e| e.into_inner());
        while in_use.get(&server).copied().unwrap_or(0) >= cap.max(1) {
            in_use = self.freed.wait(in_use).unwrap_or_else(|e| e.into_inner());
        }
        *in_use.entry(server.clone()).or_insert(0) += 1;
        Some(SlotGuard {
            slots: self,
            server,
        })
    }
}

struct SlotGuard<'s, 'a> {
    slots: &'s Slots<'a>,
    server: String,
}

impl Drop for SlotGuard<'_, '_> {
    fn drop(&mut self) {
        let mut in_use = self.slots.in_use.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = in_use.get_mut(&self.server) {
            *n = n.saturating_sub(1);
        }
        self.slots.freed.notify_all();
    }
}

/// What happened on one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Revisions were applied (or, for a command that only reads, it answered).
    Done,
    /// Already at the target: nothing to do.
    UpToDate,
    /// `migrate-check`: the target has problems (behind, edited, unknown revisions, ...).
    Problems(Vec<crate::commands::check::Problem>),
    Failed(Error),
    /// Not started: a canary or an earlier target failed.
    NotStarted(String),
}

#[derive(Debug, Clone)]
pub struct TargetResult {
    pub name: String,
    pub shown: String,
    pub from: Vec<String>,
    pub to: Vec<String>,
    /// The revisions this run applied (or, for check: those pending).
    pub revisions: Vec<String>,
    pub duration: Duration,
    pub outcome: Outcome,
    /// The command's own words for a fine result, shown in place of the default ones
    /// (`migrate-stamp`: `stamped`; `migrate-history`: `at b, 2 behind`).
    pub note: Option<String>,
    /// `migrate-check` with a schema file: what its schema was compared with, and whether it
    /// matched (`None`: not compared).
    pub drift: Option<String>,
}

impl TargetResult {
    pub fn new(t: &Target, outcome: Outcome) -> TargetResult {
        TargetResult {
            name: t.name.clone(),
            shown: t.shown(),
            from: Vec::new(),
            to: Vec::new(),
            revisions: Vec::new(),
            duration: Duration::ZERO,
            outcome,
            note: None,
            drift: None,
        }
    }

    pub fn failed(&self) -> bool {
        matches!(self.outcome, Outcome::Failed(_) | Outcome::NotStarted(_))
    }
}

/// What the scheduler reports while it goes (for the live status).
#[derive(Debug)]
pub enum Event<'a> {
    Started(usize),
    Finished(usize, &'a TargetResult),
    /// Nothing happened for a while (so a status line can tick).
    Tick,
}

/// A default for `--parallel`: 8, never more than `free` connections allow (each target
/// holds up to 2 at once: its run's and the lock's probe or heartbeat), never more than the
/// targets.
pub fn default_parallel(targets: usize, free: Option<i64>) -> usize {
    cap_parallel(8, targets, free)
}

/// `wanted` lowered to what `free` connections and the number of targets allow.
pub fn cap_parallel(wanted: usize, targets: usize, free: Option<i64>) -> usize {
    let by_server = free.map_or(usize::MAX, |f| (f.max(2) / 2) as usize);
    wanted.min(by_server).min(targets).max(1)
}

/// The server's free client connections: max_connections less the reserved ones less the
/// client backends now connected.
pub fn free_connections(client: &mut postgres::Client) -> crate::Result<i64> {
    let r = crate::db::query::one(
        client,
        "SELECT current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int
                - (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::int",
        &[],
    )
    .map_err(|e| crate::db::db_error("cannot count the server's free connections", &e))?;
    Ok(r.get::<_, i32>(0) as i64)
}

/// Runs `job` on every target: the first `canary` ones first (stopping there unless all
/// succeeded), then the rest, `parallel` at a time. After a failure no new target starts
/// unless `continue_on_error`; the results come back in the targets' order, the ones never
/// started as [`Outcome::NotStarted`].
pub fn run<F>(
    targets: &[Target],
    opts: &FleetOptions,
    job: F,
    events: &mut dyn FnMut(&Event),
) -> Vec<TargetResult>
where
    F: Fn(&Target) -> TargetResult + Sync,
{
    let mut results: Vec<Option<TargetResult>> = vec![None; targets.len()];
    let canary = opts.canary.min(targets.len());
    let mut phases: Vec<std::ops::Range<usize>> = Vec::new();
    if canary > 0 {
        phases.push(0..canary);
    }
    phases.push(canary..targets.len());
    let stopped = AtomicBool::new(false);
    for (i, phase) in phases.into_iter().enumerate() {
        if stopped.load(Ordering::SeqCst) {
            let why = if i == 1 && canary > 0 {
                format!("a canary (of the first {canary}) failed")
            } else {
                "stopped after a failure (--continue-on-error runs the rest)".into()
            };
            for k in phase {
                results[k] = Some(TargetResult::new(
                    &targets[k],
                    Outcome::NotStarted(why.clone()),
                ));
            }
            continue;
        }
        run_phase(targets, phase, opts, &job, &stopped, &mut results, events);
        if i == 0 && canary > 0 && results[..canary].iter().flatten().any(|r| r.failed()) {
            stopped.store(true, Ordering::SeqCst);
        }
    }
    results
        .into_iter()
        .enumerate()
        .map(|(k, r)| {
            r.unwrap_or_else(|| {
                TargetResult::new(
                    &targets[k],
                    Outcome::NotStarted(
                        "stopped after a failure (--continue-on-error runs the rest)".into(),
                    ),
                )
            })
        })
        .collect()
}

fn run_phase<F>(
    targets: &[Target],
    phase: std::ops::Range<usize>,
    opts: &FleetOptions,
    job: &F,
    stopped: &AtomicBool,
    results: &mut [Option<TargetResult>],
    events: &mut dyn FnMut(&Event),
) where
    F: Fn(&Target) -> TargetResult + Sync,
{
    let next = AtomicUsize::new(phase.start);
    let end = phase.end;
    let slots = Slots::new(&opts.per_server);
    let slots = &slots;
    let workers = opts.parallel.max(1).min(phase.len().max(1));
    let (tx, rx) = mpsc::channel::<(usize, Option<TargetResult>)>();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let tx = tx.clone();
            let next = &next;
            scope.spawn(move || loop {
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                let k = next.fetch_add(1, Ordering::SeqCst);
                if k >= end {
                    return;
                }
                let slot = slots.acquire(server_of(&targets[k]));
                if stopped.load(Ordering::SeqCst) {
                    // a failure while this one waited for its server: it does not start
                    return;
                }
                if tx.send((k, None)).is_err() {
                    return;
                }
                let t0 = Instant::now();
                let mut r = job(&targets[k]);
                drop(slot);
                if r.duration.is_zero() {
                    r.duration = t0.elapsed();
                }
                if r.failed() && !opts.continue_on_error {
                    stopped.store(true, Ordering::SeqCst);
                }
                if tx.send((k, Some(r))).is_err() {
                    return;
                }
            });
        }
        drop(tx);
        loop {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok((k, None)) => events(&Event::Started(k)),
                Ok((k, Some(r))) => {
                    events(&Event::Finished(k, &r));
                    results[k] = Some(r);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => events(&Event::Tick),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fleet(n: usize) -> Vec<Target> {
        let env = crate::config::Env::from_pairs(&[], &[]);
        (0..n)
            .map(|i| Target {
                name: format!("t{i}"),
                url: crate::config::DbUrl::parse(&format!("postgresql://u@h/d{i}"), &env).unwrap(),
                schema: None,
            })
            .collect()
    }

    fn outcome_of(t: &Target, fail: &[&str]) -> TargetResult {
        let o = if fail.contains(&t.name.as_str()) {
            Outcome::Failed(Error::usage("boom"))
        } else {
            Outcome::Done
        };
        TargetResult::new(t, o)
    }

    fn summary(rs: &[TargetResult]) -> Vec<String> {
        rs.iter()
            .map(|r| match &r.outcome {
                Outcome::Done => format!("{} done", r.name),
                Outcome::Failed(_) => format!("{} failed", r.name),
                Outcome::NotStarted(_) => format!("{} not started", r.name),
                _ => format!("{} other", r.name),
            })
            .collect()
    }

    fn opts(parallel: usize, canary: usize, continue_on_error: bool) -> FleetOptions {
        FleetOptions {
            parallel,
            canary,
            continue_on_error,
            per_server: HashMap::new(),
        }
    }

    #[test]
    fn a_failed_canary_stops_the_fleet() {
        let t = fleet(5);
        let r = run(
            &t,
            &opts(4, 2, true),
            |t| outcome_of(t, &["t1"]),
            &mut |_| {},
        );
        assert_eq!(
            summary(&r),
            [
                "t0 done",
                "t1 failed",
                "t2 not started",
                "t3 not started",
                "t4 not started"
            ]
        );
    }

    #[test]
    fn the_first_failure_stops_new_starts_unless_continue_on_error() {
        let t = fleet(4);
        let r = run(
            &t,
            &opts(1, 0, false),
            |t| outcome_of(t, &["t1"]),
            &mut |_| {},
        );
        assert_eq!(
            summary(&r),
            ["t0 done", "t1 failed", "t2 not started", "t3 not started"]
        );
        let r = run(
            &t,
            &opts(1, 0, true),
            |t| outcome_of(t, &["t1"]),
            &mut |_| {},
        );
        assert_eq!(summary(&r), ["t0 done", "t1 failed", "t2 done", "t3 done"]);
    }

    #[test]
    fn parallel_runs_at_most_n_at_once() {
        let t = fleet(12);
        let now = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        let r = run(
            &t,
            &opts(3, 0, false),
            |t| {
                let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(n, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
                now.fetch_sub(1, Ordering::SeqCst);
                outcome_of(t, &[])
            },
            &mut |_| {},
        );
        assert!(r.iter().all(|r| r.outcome == Outcome::Done));
        assert_eq!(most.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn each_server_runs_at_most_its_limit_at_once() {
        let env = crate::config::Env::from_pairs(&[], &[]);
        // 12 targets alternating between two servers; a has room for 1, b for 2
        let t: Vec<Target> = (0..12)
            .map(|i| Target {
                name: format!("t{i}"),
                url: crate::config::DbUrl::parse(
                    &format!("postgresql://u@{}/d{i}", if i % 2 == 0 { "a" } else { "b" }),
                    &env,
                )
                .unwrap(),
                schema: None,
            })
            .collect();
        let mut o = opts(6, 0, false);
        o.per_server = HashMap::from([("a:5432".to_string(), 1), ("b:5432".to_string(), 2)]);
        let now: Mutex<HashMap<String, usize>> = Mutex::new(HashMap::new());
        let most: Mutex<HashMap<String, usize>> = Mutex::new(HashMap::new());
        let r = run(
            &t,
            &o,
            |t| {
                let server = server_of(t);
                {
                    let mut n = now.lock().unwrap();
                    let c = n.entry(server.clone()).or_insert(0);
                    *c += 1;
                    let mut m = most.lock().unwrap();
                    let best = m.entry(server.clone()).or_insert(0);
                    *best = (*best).max(*c);
                }
                std::thread::sleep(Duration::from_millis(30));
                *now.lock().unwrap().get_mut(&server).unwrap() -= 1;
                outcome_of(t, &[])
            },
            &mut |_| {},
        );
        assert!(r.iter().all(|r| r.outcome == Outcome::Done));
        let most = most.into_inner().unwrap();
        assert_eq!(most["a:5432"], 1);
        assert_eq!(most["b:5432"], 2);
    }

    #[test]
    fn parallel_is_capped_by_free_connections_and_targets() {
        assert_eq!(default_parallel(100, Some(300)), 8);
        assert_eq!(default_parallel(3, Some(300)), 3);
        assert_eq!(cap_parallel(50, 100, Some(10)), 5);
        assert_eq!(cap_parallel(50, 100, Some(0)), 1);
    }
}
