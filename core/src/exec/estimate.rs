//! How long an index build will take, before and while it runs.
//!
//! Before a vector index build, [`crate::vector::plan_build`] sizes the graph (measured bytes a
//! row), raises the session's settings, and estimates the time; what is left here is the
//! build's progress once it runs.
//!
//! While it runs, [`EtaTracker`] turns the progress samples into the time left. A straight line
//! from the rate so far is only honest while the rate holds, and an HNSW build that outgrows
//! `maintenance_work_mem` breaks it: the fast in-memory part would promise a fraction of the
//! real time. So the ETA says what it knows: a floor ("more than ...") while a slowdown is
//! expected but not yet seen, "unknown" right after it is seen (pgvector's NOTICE, or the rate
//! falling to under a third of what it was), and then the rate measured since the slowdown.

use std::time::Duration;

/// The estimate said the HNSW graph will not fit: `about 3MB`, `maintenance_work_mem = 1MB`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphOverflow {
    /// The graph's estimated size, as a setting value (`3MB`).
    pub needed: String,
    /// `maintenance_work_mem` as set for the statement (`1MB`).
    pub setting: String,
}

/// The time left, and how far to trust it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Eta {
    pub left: Option<Duration>,
    /// `left` is a floor: the rate so far is the fast part's, a slowdown is still to come.
    pub at_least: bool,
    /// Why `left` is a floor, unknown, or from the rate since a slowdown.
    pub note: Option<String>,
}

/// Samples the rate is measured over before it is trusted after a slowdown.
const AFTER_SLOWDOWN: Duration = Duration::from_secs(2);
/// The rate-drop check compares the last [`WINDOW`] with the phase (or slowdown) before it.
const WINDOW: Duration = Duration::from_secs(3);
/// A rate under this part of the earlier one is a slowdown.
const DROP: f64 = 1.0 / 3.0;

/// Why the rate changed during a phase.
#[derive(Debug, Clone, PartialEq)]
enum Slowdown {
    /// pgvector's "hnsw graph no longer fits into maintenance_work_mem" NOTICE.
    GraphOverflowed,
    /// The rate fell to under a third, at this percent done.
    RateDropped(f64),
}

/// The ETA of one statement's build, fed its progress samples in order (pure: the times are
/// the statement's elapsed time at each sample).
#[derive(Debug, Clone, Default)]
pub struct EtaTracker {
    phase: Option<String>,
    /// (elapsed, done) the rate is measured from: the phase's first sample, or the first
    /// sample after a slowdown.
    base: Option<(Duration, i64)>,
    /// The samples of the last [`WINDOW`] (and the one just before it).
    recent: std::collections::VecDeque<(Duration, i64)>,
    expected: Option<GraphOverflow>,
    /// The build time estimated before it started: the figure until a rate is measured.
    estimate: Option<Duration>,
    slowed: Option<Slowdown>,
}

impl EtaTracker {
    /// `expected`: the estimate before the build said the graph will not fit.
    pub fn new(expected: Option<GraphOverflow>) -> Self {
        EtaTracker {
            expected,
            ..Default::default()
        }
    }

    /// With the build time estimated before it started ([`crate::vector::hnsw_build_time`]),
    /// said as the time left until the build's own rate has been measured.
    pub fn with_estimate(mut self, estimate: Option<Duration>) -> Self {
        self.estimate = estimate;
        self
    }

    /// pgvector said the graph no longer fits: the rate so far no longer holds.
    pub fn graph_overflowed(&mut self) {
        if self.slowed != Some(Slowdown::GraphOverflowed) {
            self.slowed = Some(Slowdown::GraphOverflowed);
            self.base = None;
            self.recent.clear();
        }
    }

    /// The time left after a sample: `done` of `total` in `phase` at `now`.
    pub fn sample(&mut self, now: Duration, phase: &str, done: i64, total: i64) -> Eta {
        if self.phase.as_deref() != Some(phase) {
            self.phase = Some(phase.to_string());
            self.base = None;
            self.recent.clear();
            if matches!(self.slowed, Some(Slowdown::RateDropped(_))) {
                self.slowed = None;
            }
        }
        let base = *self.base.get_or_insert((now, done));
        self.recent.push_back((now, done));
        while self.recent.len() > 2 && now - self.recent[1].0 >= WINDOW {
            self.recent.pop_front();
        }
        self.check_rate(now, done, total, base);
        let base = self.base.unwrap_or((now, done));
        let span = now.saturating_sub(base.0);
        let rate = (done - base.1) as f64 / span.as_secs_f64();
        let left = (span > Duration::ZERO && rate > 0.0 && total > done)
            .then(|| Duration::from_secs_f64((total - done) as f64 / rate));
        let needed = |o: &Option<GraphOverflow>| {
            o.as_ref()
                .map(|o| format!(" (about {} needed)", o.needed))
                .unwrap_or_default()
        };
        if let (None, None, Some(e)) = (left, &self.slowed, self.estimate) {
            if e > now {
                return Eta {
                    left: Some(e - now),
                    at_least: false,
                    note: Some("estimated before the build".into()),
                };
            }
        }
        match &self.slowed {
            None => match &self.expected {
                None => Eta {
                    left,
                    ..Eta::default()
                },
                Some(o) => Eta {
                    left,
                    at_least: left.is_some(),
                    note: Some(format!(
                        "the HNSW graph needs about {}, more than maintenance_work_mem = {}: the build slows down sharply once it no longer fits",
                        o.needed, o.setting
                    )),
                },
            },
            Some(slowdown) => {
                let trusted = span >= AFTER_SLOWDOWN;
                let left = left.filter(|_| trusted);
                let note = match (slowdown, left.is_some()) {
                    (Slowdown::GraphOverflowed, true) => format!(
                        "at the rate since the HNSW graph stopped fitting in maintenance_work_mem{}",
                        needed(&self.expected)
                    ),
                    (Slowdown::GraphOverflowed, false) => format!(
                        "the HNSW graph no longer fits in maintenance_work_mem{}",
                        needed(&self.expected)
                    ),
                    (Slowdown::RateDropped(at), true) => {
                        format!("at the rate since the build slowed down at {at:.0}%")
                    }
                    (Slowdown::RateDropped(at), false) => {
                        format!("the build slowed down sharply at {at:.0}%")
                    }
                };
                Eta {
                    left,
                    at_least: false,
                    note: Some(note),
                }
            }
        }
    }

    /// A slowdown nobody announced: the last [`WINDOW`]'s rate under a third of the rate from
    /// the base to the window's start. The rate is measured afresh from now on (the window
    /// straddles the fall, and would count some of the fast part).
    fn check_rate(&mut self, now: Duration, done: i64, total: i64, base: (Duration, i64)) {
        let Some(&(t0, d0)) = self.recent.front() else {
            return;
        };
        let (window, before) = (now.saturating_sub(t0), t0.saturating_sub(base.0));
        if window < WINDOW || before < WINDOW || self.base != Some(base) {
            return;
        }
        let recent = (done - d0) as f64 / window.as_secs_f64();
        let earlier = (d0 - base.1) as f64 / before.as_secs_f64();
        if earlier > 0.0 && recent < earlier * DROP {
            let at = if total > 0 {
                100.0 * d0 as f64 / total as f64
            } else {
                0.0
            };
            self.slowed = Some(match self.slowed.take() {
                Some(Slowdown::GraphOverflowed) => Slowdown::GraphOverflowed,
                _ => Slowdown::RateDropped(at),
            });
            self.base = Some((now, done));
            self.recent.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    const LOAD: &str = "building index: loading tuples";

    #[test]
    fn a_steady_build_gets_the_time_left_at_its_rate() {
        let mut t = EtaTracker::new(None);
        assert_eq!(t.sample(secs(2.0), LOAD, 100, 1000), Eta::default());
        // 100 a second: 800 left
        let e = t.sample(secs(3.0), LOAD, 200, 1000);
        assert_eq!(e.left, Some(secs(8.0)));
        assert!(!e.at_least && e.note.is_none(), "{e:?}");
        // a new phase measures its own rate
        assert_eq!(
            t.sample(secs(4.0), "building index: sorting", 0, 50).left,
            None
        );
        assert_eq!(
            t.sample(secs(5.0), "building index: sorting", 10, 50).left,
            Some(secs(4.0))
        );
    }

    #[test]
    fn the_estimate_before_the_build_stands_until_a_rate_is_measured() {
        let mut t = EtaTracker::new(None).with_estimate(Some(secs(30.0)));
        let e = t.sample(secs(2.0), LOAD, 100, 1000);
        assert_eq!(e.left, Some(secs(28.0)));
        assert_eq!(e.note.as_deref(), Some("estimated before the build"));
        // then the build's own rate: 100 a second, 800 left
        let e = t.sample(secs(3.0), LOAD, 200, 1000);
        assert_eq!((e.left, e.note), (Some(secs(8.0)), None));
        // an estimate already passed says nothing
        let mut t = EtaTracker::new(None).with_estimate(Some(secs(1.0)));
        assert_eq!(t.sample(secs(2.0), LOAD, 100, 1000), Eta::default());
    }

    #[test]
    fn a_build_expected_to_outgrow_memory_gets_a_floor_and_the_reason() {
        let mut t = EtaTracker::new(Some(GraphOverflow {
            needed: "3MB".into(),
            setting: "1MB".into(),
        }));
        t.sample(secs(2.0), LOAD, 100, 1000);
        let e = t.sample(secs(3.0), LOAD, 200, 1000);
        assert_eq!(e.left, Some(secs(8.0)));
        assert!(e.at_least, "the fast part's rate is a floor: {e:?}");
        assert_eq!(
            e.note.as_deref(),
            Some("the HNSW graph needs about 3MB, more than maintenance_work_mem = 1MB: the build slows down sharply once it no longer fits")
        );
        // pgvector's notice: no figure until the slower rate has been measured for 2 s
        t.graph_overflowed();
        let e = t.sample(secs(4.0), LOAD, 300, 1000);
        assert_eq!(e.left, None);
        assert_eq!(
            e.note.as_deref(),
            Some("the HNSW graph no longer fits in maintenance_work_mem (about 3MB needed)")
        );
        assert_eq!(t.sample(secs(5.0), LOAD, 310, 1000).left, None);
        // 20 in 2 s: 10 a second, 680 left: 68 s, not the 7 s the first rate would promise
        let e = t.sample(secs(6.0), LOAD, 320, 1000);
        assert_eq!(e.left, Some(secs(68.0)));
        assert!(!e.at_least);
        assert_eq!(
            e.note.as_deref(),
            Some("at the rate since the HNSW graph stopped fitting in maintenance_work_mem (about 3MB needed)")
        );
        // the notice again (a second statement's would be a new tracker): nothing restarts
        t.graph_overflowed();
        assert_eq!(t.sample(secs(7.0), LOAD, 330, 1000).left, Some(secs(67.0)));
    }

    #[test]
    fn the_notice_alone_is_enough_without_an_estimate() {
        let mut t = EtaTracker::new(None);
        t.sample(secs(2.0), LOAD, 100, 1000);
        assert_eq!(t.sample(secs(3.0), LOAD, 200, 1000).left, Some(secs(8.0)));
        t.graph_overflowed();
        let e = t.sample(secs(3.5), LOAD, 205, 1000);
        assert_eq!(e.left, None);
        assert_eq!(
            e.note.as_deref(),
            Some("the HNSW graph no longer fits in maintenance_work_mem")
        );
    }

    #[test]
    fn a_rate_that_falls_to_under_a_third_restarts_the_estimate_from_the_fall() {
        let mut t = EtaTracker::new(None);
        // 100 a second for 4 s, then 10 a second
        let mut last = Eta::default();
        for s in 0..=4 {
            last = t.sample(secs(2.0 + s as f64), LOAD, 100 * s, 10_000);
        }
        assert_eq!(last.left, Some(secs(96.0)));
        let mut slow = vec![];
        for s in 1..=6 {
            slow.push(t.sample(secs(6.0 + s as f64), LOAD, 400 + 10 * s, 10_000));
        }
        // within the first 3 s of the slower rate the straight line still counts the fast part
        assert!(slow[0].note.is_none() && slow[1].note.is_none(), "{slow:?}");
        // once the last 3 s ran at under a third: no figure until the new rate has been
        // measured for 2 s
        let e = &slow[2];
        assert_eq!(e.left, None);
        assert_eq!(
            e.note.as_deref(),
            Some("the build slowed down sharply at 4%")
        );
        assert_eq!(slow[3].left, None);
        let e = &slow[4];
        assert_eq!(
            e.note.as_deref(),
            Some("at the rate since the build slowed down at 4%")
        );
        // 20 in 2 s: 10 a second, 9550 left
        assert_eq!(e.left, Some(secs(955.0)));
        assert_eq!(slow[5].left, Some(secs(954.0)));
        // a rate that varies less does not count as a slowdown
        let mut t = EtaTracker::new(None);
        for s in 0..=10 {
            let done = if s <= 5 { 100 * s } else { 500 + 50 * (s - 5) };
            last = t.sample(secs(2.0 + s as f64), LOAD, done, 10_000);
        }
        assert!(last.note.is_none(), "{last:?}");
    }

    /// The build a user saw promise "26 s left" at 25 % and take 106 s: 288 blocks a second
    /// for the first 2,500 of 10,000, then 77 a second.
    #[test]
    fn the_build_that_promised_26_s_and_took_106_s() {
        let at = |t: f64| {
            let fast = 2500.0 / 288.0;
            if t <= fast {
                (288.0 * t) as i64
            } else {
                2500 + (77.0 * (t - fast)) as i64
            }
        };
        let run = |expected: Option<GraphOverflow>, notice: bool| {
            let mut t = EtaTracker::new(expected);
            let mut etas = vec![];
            for tick in 1..=60 {
                let now = tick as f64 * 0.25;
                if notice && (9.0..9.25).contains(&now) {
                    t.graph_overflowed();
                }
                etas.push((now, t.sample(secs(now), LOAD, at(now), 10_000)));
            }
            etas
        };
        let left = |e: &Eta| e.left.map(|d| d.as_secs()).unwrap_or(0);
        // known before: at 25 % the figure is a floor
        let etas = run(
            Some(GraphOverflow {
                needed: "8GB".into(),
                setting: "64MB".into(),
            }),
            true,
        );
        let (_, e) = &etas[33]; // 8.5 s, 2,448 done
        assert!(e.at_least && left(e) == 26, "{e:?}");
        // after the notice: no figure for 2 s, then about the 91 s that were left
        assert!(
            etas[35..43].iter().all(|(_, e)| e.left.is_none()),
            "{etas:?}"
        );
        let (_, e) = &etas[43]; // 11 s
        assert!((85..=95).contains(&left(e)), "{e:?}");
        // no estimate, no notice (client_min_messages = warning): the rate's fall is enough,
        // seen within 3 s of it and measured for 2 s
        let etas = run(None, false);
        let (_, e) = &etas[55]; // 14 s
        assert!((85..=95).contains(&left(e)), "{e:?}");
        assert_eq!(
            e.note.as_deref(),
            Some("at the rate since the build slowed down at 24%")
        );
        // without either, what the straight line said then: about 26 s
        assert!(etas[33].1.note.is_none() && left(&etas[33].1) == 26);
    }
}
