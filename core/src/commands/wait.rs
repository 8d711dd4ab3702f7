//! `migrate-check --wait-for-heads DURATION`: wait until the database is at the heads this
//! image's scripts expect, for the replicas of an application that did not run the migration
//! themselves (a Kubernetes init container, a Compose `depends_on` check, a FastAPI lifespan).
//!
//! Why polling and no lock: the replicas must not queue on the migration lock behind the one
//! process migrating (nor make it wait), and they must not start on an old schema. Each poll is
//! one `SELECT` of the version table on one connection kept open — no lock taken, no shadow
//! database, no drift check — every half second, so a fleet of waiting replicas costs the
//! server next to nothing and sees the migration's commit within a poll.
//!
//! What it decides from the version table's rows ([`judge`], pure): at the heads (done), behind
//! them (keep waiting: the migration has not run or not committed), or holding a revision no
//! script of this image has (stop at once: waiting cannot change that; an older image is being
//! started against a newer database). A server that is not up yet or goes away mid-wait is
//! retried within the same duration, as `--wait` does.

use crate::config::Settings;
use crate::db::version::VersionTable;
use crate::error::{ErrorKind, Result};
use crate::graph::{RevisionGraph, Target};
use crate::project::Project;
use std::time::{Duration, Instant};

/// How long to wait, and how often to look.
#[derive(Debug, Clone)]
pub struct WaitOptions {
    pub limit: Duration,
    pub interval: Duration,
}

impl WaitOptions {
    /// Waiting up to `limit`, polling every half second.
    pub fn new(limit: Duration) -> WaitOptions {
        WaitOptions {
            limit,
            interval: Duration::from_millis(500),
        }
    }
}

/// Where the database stands against the scripts' heads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    AtHeads,
    /// Behind the heads: these revisions, oldest first, are still to be applied.
    Pending(Vec<String>),
    /// The version table holds a revision no script has (the message says which).
    Unknown(String),
}

/// Where `current` (the version table's rows) stands against `graph`'s heads.
pub fn judge(graph: &RevisionGraph, current: &[String]) -> Result<Standing> {
    if let Err(e) = graph.check_known(current) {
        return Ok(Standing::Unknown(e.to_string()));
    }
    let plan = graph.upgrade_plan(current, &Target::Heads)?;
    if plan.steps.is_empty() {
        Ok(Standing::AtHeads)
    } else {
        Ok(Standing::Pending(
            plan.steps.iter().map(|s| s.revision.clone()).collect(),
        ))
    }
}

/// What the wait found.
#[derive(Debug, Clone)]
pub struct WaitReport {
    /// The scripts' heads.
    pub heads: Vec<String>,
    /// The version table's rows at the last poll.
    pub current: Vec<String>,
    pub standing: Standing,
    pub waited: Duration,
    pub polls: u32,
}

impl WaitReport {
    pub fn at_heads(&self) -> bool {
        self.standing == Standing::AtHeads
    }

    /// The report as `migrate-check` reports: a `pending` or `unknown_revision` problem when
    /// the database is not at the heads, saying how long it waited.
    pub fn into_check_report(self) -> super::check::CheckReport {
        let waited = crate::words::fmt_duration(self.waited);
        let mut report = super::check::CheckReport {
            heads: self.heads,
            current: Some(self.current),
            ..Default::default()
        };
        match self.standing {
            Standing::AtHeads => {}
            Standing::Pending(pending) => {
                report.problems.push(super::check::Problem {
                    code: "pending",
                    message: format!(
                        "the database is still not at the heads after waiting {waited} ({} poll{}): {} revision{} pending ({}); the migration has not run or has not finished: run migrate-up (a pre-deploy job), or wait longer",
                        self.polls,
                        crate::words::plural(self.polls as usize),
                        pending.len(),
                        crate::words::plural(pending.len()),
                        pending.join(", ")
                    ),
                });
                report.pending = pending;
            }
            Standing::Unknown(message) => report.problems.push(super::check::Problem {
                code: "unknown_revision",
                message: format!(
                    "{message}: the database is ahead of this image's scripts (or on another branch), which waiting cannot change; deploy the image whose scripts have it"
                ),
            }),
        }
        report
    }
}

/// Polls the database until it is at the scripts' heads, for at most `opts.limit`. Returns
/// the report either way (at the heads, still behind, or holding an unknown revision, which
/// ends the wait at once). `Err` when the wait could not be made: invalid scripts, no URL, a
/// server unreachable for the whole duration, a refused login.
pub fn wait_for_heads(settings: &Settings, opts: &WaitOptions, app: &str) -> Result<WaitReport> {
    let project = Project::load(&settings.migrations_dir)?;
    let url = settings.require_url()?;
    let table = VersionTable::new(settings.version_table.clone());
    let heads = project.graph.heads();
    let started = Instant::now();
    let mut client: Option<postgres::Client> = None;
    let mut polls = 0u32;
    let mut last_note: Option<Instant> = None;
    loop {
        let left = opts.limit.saturating_sub(started.elapsed());
        if client.is_none() {
            // a server not up yet is retried for what is left of the wait
            let mut c =
                crate::db::connect_wait(url, app, Some(left.max(Duration::from_millis(100))))?;
            // never queue behind the migration's locks for long: the next poll looks again
            c.batch_execute("SET lock_timeout = '1s'; SET statement_timeout = '5s'")
                .map_err(|e| crate::db::db_error("cannot set the session's timeouts", &e))?;
            client = Some(c);
        }
        polls += 1;
        let read = table.read(client.as_mut().expect("connected above"));
        let current = match read {
            Ok(rows) => rows,
            Err(e) if matches!(e.kind, ErrorKind::Database | ErrorKind::Io) => {
                // the server went away, or a lock held too long: connect again and look again
                log::debug!("poll {polls} failed ({e}); trying again");
                client = None;
                if started.elapsed() >= opts.limit {
                    return Err(e);
                }
                std::thread::sleep(opts.interval.min(left));
                continue;
            }
            Err(e) => return Err(e),
        };
        let standing = judge(&project.graph, &current)?;
        let done = !matches!(standing, Standing::Pending(_)) || started.elapsed() >= opts.limit;
        if done {
            let report = WaitReport {
                heads,
                current,
                standing,
                waited: started.elapsed(),
                polls,
            };
            if report.at_heads() {
                log::info!(
                    "the database is at the heads ({}) after {} ({} poll{})",
                    report.heads.join(", "),
                    crate::words::fmt_duration(report.waited),
                    polls,
                    crate::words::plural(polls as usize)
                );
            }
            return Ok(report);
        }
        if last_note.is_none_or(|t| t.elapsed() >= Duration::from_secs(5)) {
            let Standing::Pending(p) = &standing else {
                unreachable!("done above otherwise")
            };
            log::info!(
                "waiting for the database to reach the heads ({}): at {}, {} revision{} pending ({:.0} s of {:.0} s)",
                heads.join(", "),
                if current.is_empty() { "base (empty)".to_string() } else { current.join(", ") },
                p.len(),
                crate::words::plural(p.len()),
                started.elapsed().as_secs_f64(),
                opts.limit.as_secs_f64()
            );
            last_note = Some(Instant::now());
        }
        std::thread::sleep(
            opts.interval
                .min(opts.limit.saturating_sub(started.elapsed())),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::RevisionNode;

    fn graph(edges: &[(&str, &[&str])]) -> RevisionGraph {
        RevisionGraph::new(
            edges
                .iter()
                .map(|(id, down)| RevisionNode {
                    id: id.to_string(),
                    down_revisions: down.iter().map(|s| s.to_string()).collect(),
                    depends_on: vec![],
                    branch_labels: vec![],
                    message: String::new(),
                    source: format!("{id}.sql"),
                    programs: Vec::new(),
                    contract: false,
                })
                .collect(),
        )
        .unwrap()
    }

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn behind_the_heads_is_pending_with_what_is_left_in_order() {
        let g = graph(&[("001", &[]), ("002", &["001"]), ("003", &["002"])]);
        assert_eq!(
            judge(&g, &[]).unwrap(),
            Standing::Pending(ids(&["001", "002", "003"]))
        );
        assert_eq!(
            judge(&g, &ids(&["002"])).unwrap(),
            Standing::Pending(ids(&["003"]))
        );
        assert_eq!(judge(&g, &ids(&["003"])).unwrap(), Standing::AtHeads);
    }

    #[test]
    fn every_head_of_a_branched_history_must_be_reached() {
        let g = graph(&[("001", &[]), ("a1", &["001"]), ("b1", &["001"])]);
        assert_eq!(
            judge(&g, &ids(&["a1"])).unwrap(),
            Standing::Pending(ids(&["b1"]))
        );
        assert_eq!(judge(&g, &ids(&["a1", "b1"])).unwrap(), Standing::AtHeads);
    }

    #[test]
    fn a_revision_the_scripts_do_not_have_ends_the_wait() {
        let g = graph(&[("001", &[]), ("002", &["001"])]);
        let Standing::Unknown(m) = judge(&g, &ids(&["003"])).unwrap() else {
            panic!("expected Unknown")
        };
        assert!(m.contains("'003'"), "{m}");
        let report = WaitReport {
            heads: ids(&["002"]),
            current: ids(&["003"]),
            standing: Standing::Unknown(m),
            waited: Duration::from_millis(20),
            polls: 1,
        }
        .into_check_report();
        assert_eq!(report.problems[0].code, "unknown_revision");
        assert!(report.problems[0].message.contains("waiting cannot change"));
    }

    #[test]
    fn a_timed_out_wait_reports_pending_with_the_time_waited() {
        let report = WaitReport {
            heads: ids(&["002"]),
            current: ids(&["001"]),
            standing: Standing::Pending(ids(&["002"])),
            waited: Duration::from_secs(3),
            polls: 7,
        }
        .into_check_report();
        assert!(!report.ok());
        assert_eq!(report.pending, ids(&["002"]));
        assert_eq!(report.problems[0].code, "pending");
        assert!(
            report.problems[0]
                .message
                .contains("after waiting 3.00 s (7 polls): 1 revision pending (002)"),
            "{}",
            report.problems[0].message
        );
    }
}
