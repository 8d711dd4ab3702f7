//! The per-target jobs of the fleet commands: each is the single-target command on that
//! target, with the scripts read once for the whole fleet.

use super::drift::FleetDrift;
use super::{Outcome, Target, TargetResult};
use crate::commands::check::Problem;
use crate::config::Settings;
use crate::exec::{QuietObserver, RunOptions};
use crate::migrator::{Migrator, MigratorOptions};
use crate::plan::Direction;
use crate::project::Project;
use crate::schema::workspace::after_shadows;
use std::time::Instant;

fn open(project: &Project, base: &Settings, t: &Target, app: &str) -> crate::Result<Migrator> {
    let settings = t.settings(base);
    Migrator::with_project(project.clone(), &settings, app)
}

/// Every job's frame: the result starts as `outcome`, `body` fills it in, an error makes it
/// failed, and the duration is the whole job's.
fn job(
    t: &Target,
    outcome: Outcome,
    body: impl FnOnce(&mut TargetResult) -> crate::Result<()>,
) -> TargetResult {
    let t0 = Instant::now();
    let mut r = TargetResult::new(t, outcome);
    if let Err(e) = body(&mut r) {
        r.outcome = Outcome::Failed(e);
    }
    r.duration = t0.elapsed();
    r
}

/// `migrate-up TARGET` (or `migrate-down`) on `t`. A target already at `rev` is answered from
/// a read of its version table and records, without the lock (nor an audit row): re-running a
/// fleet skips the done ones in milliseconds. Everything else is the single run.
#[allow(clippy::too_many_arguments)]
pub fn run(
    project: &Project,
    base: &Settings,
    t: &Target,
    dir: Direction,
    rev: &str,
    options: &MigratorOptions,
    run_opts: &RunOptions,
    app: &str,
) -> TargetResult {
    job(t, Outcome::Done, |r| {
        let mut m = open(project, base, t, app)?.with_options(options.clone());
        let quick = match dir {
            // one read ([`Migrator::up_to_date`])
            Direction::Up => m.up_to_date(rev),
            Direction::Down => m
                .plan_downgrade(rev)
                .ok()
                .filter(|plan| plan.is_empty())
                .map(|plan| plan.start_heads),
        };
        if let Some(heads) = quick {
            r.from = heads.clone();
            r.to = heads;
            r.outcome = Outcome::UpToDate;
            return Ok(());
        }
        match m.run(dir, rev, run_opts, &mut QuietObserver) {
            Ok(report) => {
                r.from = report.start_heads;
                r.to = report.end_heads;
                r.revisions = report.steps.into_iter().map(|s| s.revision).collect();
                Ok(())
            }
            Err(e) => {
                r.from = e.report.start_heads.clone();
                r.to = e.report.end_heads.clone();
                r.revisions = e.report.steps.iter().map(|s| s.revision.clone()).collect();
                Err(crate::Error::from(e))
            }
        }
    })
}

/// `migrate-current` on `t`: its version table's rows.
pub fn current(project: &Project, base: &Settings, t: &Target, app: &str) -> TargetResult {
    job(t, Outcome::Done, |r| {
        let h = open(project, base, t, app)?.heads()?;
        r.from = h.clone();
        r.to = h;
        Ok(())
    })
}

/// `migrate-check` on `t`, the fleet's status page: unknown revisions, edited applied scripts,
/// INVALID indexes, pending revisions (behind), and with `drift` (a schema file exists) its
/// schema against a replay of its applied revisions, shared with the other targets at the
/// same revisions (see docs/fleets.md).
pub fn check(
    project: &Project,
    base: &Settings,
    t: &Target,
    app: &str,
    drift: Option<&FleetDrift>,
) -> TargetResult {
    job(t, Outcome::UpToDate, |r| {
        let mut m = open(project, base, t, app)?;
        let current = m.heads()?;
        r.from = current.clone();
        r.to = project.graph.heads();
        let mut problems = Vec::new();
        if let Err(e) = m.project.graph.check_known(&current) {
            problems.push(Problem {
                code: "unknown_revision",
                message: e.message,
            });
            r.outcome = Outcome::Problems(problems);
            return Ok(());
        }
        for mm in m.checksum_mismatches(&current)? {
            problems.push(Problem {
                code: "checksum_mismatch",
                message: mm.describe(),
            });
        }
        let invalid = crate::db::invalid_indexes(&mut m.client)?;
        if !invalid.is_empty() {
            problems.push(Problem {
                code: "invalid_index",
                message: format!("INVALID index(es): {}", invalid.join(", ")),
            });
        }
        let plan = m
            .project
            .graph
            .upgrade_plan(&current, &crate::graph::Target::Heads)?;
        r.revisions = plan.steps.iter().map(|s| s.revision.clone()).collect();
        if !r.revisions.is_empty() {
            problems.push(Problem {
                code: "pending",
                message: format!("behind: {} revision(s) pending", r.revisions.len()),
            });
        }
        if let Some(d) = drift {
            let (problem, note) = after_shadows(d.check_target(&mut m.client, t, &current))?;
            problems.extend(problem);
            r.drift = Some(note);
        }
        if !problems.is_empty() {
            r.outcome = Outcome::Problems(problems);
        }
        Ok(())
    })
}

/// `migrate-stamp REV...` (with `purge`: `--purge`) on `t`: exactly the single stamp — its
/// lock, its audit row, its refusals (a revision no script has, without `--purge`). Written
/// also when the target is already there, as the single command does.
pub fn stamp(
    project: &Project,
    base: &Settings,
    t: &Target,
    revisions: &[String],
    purge: bool,
    options: &MigratorOptions,
    app: &str,
) -> TargetResult {
    job(t, Outcome::Done, |r| {
        let (from, to) = open(project, base, t, app)?
            .with_options(options.clone())
            .stamp_from_to(revisions, purge)?;
        r.note = Some(
            match (purge, from == to) {
                (true, _) => "purged, stamped",
                (false, false) => "stamped",
                (false, true) => "stamped (no change)",
            }
            .into(),
        );
        r.from = from;
        r.to = to;
        Ok(())
    })
}

/// `migrate-stamp --rehash REV...` on `t`: re-records the checksum of each applied revision
/// from its script as it is now, each audited under the lock, as the single command does (a
/// revision not applied on `t` fails `t`). `revisions` are the ones re-recorded.
pub fn rehash(
    project: &Project,
    base: &Settings,
    t: &Target,
    revisions: &[String],
    options: &MigratorOptions,
    app: &str,
) -> TargetResult {
    job(t, Outcome::Done, |r| {
        let mut m = open(project, base, t, app)?.with_options(options.clone());
        for rev in revisions {
            m.rehash(rev)?;
            r.revisions.push(project.graph.resolve(rev)?);
        }
        let heads = m.heads()?;
        r.from = heads.clone();
        r.to = heads;
        r.note = Some(format!("rehashed {}", r.revisions.join(", ")));
        Ok(())
    })
}

/// `migrate-history --targets`: where `t` is in the history — its current revisions (from;
/// a revision no script has fails it, as `migrate-history -i` does), the scripts' heads (to)
/// and the revisions it is behind (revisions, in the order an upgrade applies them): up to
/// date `at the heads`, else done `at b, 2 behind`. Reads only.
pub fn history(project: &Project, base: &Settings, t: &Target, app: &str) -> TargetResult {
    job(t, Outcome::Done, |r| {
        let mut m = open(project, base, t, app)?;
        let current = m.known_heads()?;
        let plan = project
            .graph
            .upgrade_plan(&current, &crate::graph::Target::Heads)?;
        r.revisions = plan.steps.iter().map(|s| s.revision.clone()).collect();
        let mut heads = project.graph.heads();
        heads.sort();
        r.note = Some(behind_text(&current, r.revisions.len()));
        if r.revisions.is_empty() {
            r.outcome = Outcome::UpToDate;
        }
        r.from = current;
        r.to = heads;
        Ok(())
    })
}

/// `at the heads`, or `at b, 2 behind` (`at <base>, 3 behind` for an empty version table).
pub fn behind_text(current: &[String], behind: usize) -> String {
    if behind == 0 {
        return "at the heads".into();
    }
    let at = if current.is_empty() {
        "<base>".to_string()
    } else {
        current.join(", ")
    };
    format!("at {at}, {behind} behind")
}

#[cfg(test)]
mod tests {
    use super::behind_text;

    #[test]
    fn where_a_target_is_in_the_history() {
        assert_eq!(behind_text(&["c".into()], 0), "at the heads");
        assert_eq!(behind_text(&["b".into()], 2), "at b, 2 behind");
        assert_eq!(
            behind_text(&["b".into(), "x".into()], 1),
            "at b, x, 1 behind"
        );
        assert_eq!(behind_text(&[], 3), "at <base>, 3 behind");
    }
}
