//! Long histories: a run that is one transaction holds a lock on every relation it creates or
//! alters until it commits, and PostgreSQL's shared lock table holds
//! `max_locks_per_transaction × (max_connections + autovacuum_max_workers + 1 +
//! max_worker_processes + max_wal_senders + max_prepared_transactions)` of them for the whole
//! server. Replaying 10,000 revisions in one transaction fails after minutes with `53200 out of
//! shared memory`; this says so before the first statement, per transaction of the run (each
//! batch with `--batch N`), and suggests a `--batch` that fits ([`suggest_batch`]).
//!
//! The estimate counts, per statement, the lock entries PostgreSQL 16 takes (measured with
//! pg_locks): CREATE TABLE 1, +1 and +1 per index for a PRIMARY KEY / UNIQUE, +2 for a TOAST
//! table (a variable-length column), +3 per serial/identity sequence; CREATE INDEX 2; any other
//! DDL or DML 1. It errs low, so a refusal means the run would not fit.

use super::{db_error, query};
use crate::error::{Error, Result};
use crate::plan::{batches, Plan, Segment, Step};
use crate::project::Project;
use postgres::Client;

/// Lock entries one statement takes (see the module doc).
pub fn statement_locks(sql: &str) -> usize {
    let up = sql.to_ascii_uppercase();
    let words: Vec<&str> = up.split_whitespace().take(6).collect();
    let has = |w: &str| words.contains(&w);
    if words.first() == Some(&"CREATE") && has("TABLE") {
        let indexes = up.matches("PRIMARY KEY").count() + up.matches("UNIQUE").count();
        let toast = [
            " TEXT",
            "VARCHAR",
            "CHARACTER VARYING",
            "JSON",
            "BYTEA",
            "VECTOR(",
            "NUMERIC",
            "[]",
            " XML",
            "TSVECTOR",
        ]
        .iter()
        .any(|t| up.contains(t));
        let seqs = up.matches("SERIAL").count() + up.matches("GENERATED").count();
        1 + if indexes > 0 { 1 + indexes } else { 0 } + if toast { 2 } else { 0 } + 3 * seqs
    } else if words.first() == Some(&"CREATE") && has("INDEX") {
        2
    } else if matches!(
        words.first().copied(),
        Some("CREATE" | "ALTER" | "DROP" | "INSERT" | "UPDATE" | "DELETE" | "COMMENT" | "GRANT")
    ) {
        1
    } else {
        0
    }
}

/// Lock entries each step of `plan` holds until its transaction commits: its statements'
/// and 1 for its version-table row and records.
pub fn step_locks(project: &Project, plan: &Plan) -> Vec<usize> {
    plan.steps
        .iter()
        .map(|step| {
            let Ok(script) = project.script(&step.revision) else {
                return 0;
            };
            let Ok(section) = script.section(step.direction) else {
                return 0;
            };
            crate::script::split_statements(&section.sql, section.line)
                .iter()
                .map(|s| statement_locks(&s.sql))
                .sum::<usize>()
                + 1
        })
        .collect()
}

/// The heaviest transaction of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Estimate {
    /// Lock entries it holds.
    pub locks: usize,
    /// Revisions in it.
    pub steps: usize,
}

/// The heaviest of the transactional `segments`, given each step's `locks`.
pub fn heaviest(segments: &[Segment], locks: &[usize]) -> Estimate {
    segments
        .iter()
        .filter(|seg| seg.transactional)
        .map(|seg| Estimate {
            locks: locks[seg.steps.clone()].iter().sum(),
            steps: seg.steps.len(),
        })
        .max_by_key(|e| (e.locks, e.steps))
        .unwrap_or_default()
}

/// The most lock entries any one transaction of the run would hold: per transaction segment
/// (the whole run by default; each revision with `--transaction-per-migration`; each batch
/// with `--batch N`: `max_steps`).
pub fn estimate(project: &Project, plan: &Plan, max_steps: Option<usize>) -> Estimate {
    let segments = plan.segments(transactional(project), max_steps);
    heaviest(&segments, &step_locks(project, plan))
}

fn transactional(project: &Project) -> impl Fn(&Step) -> bool + '_ {
    |s: &Step| {
        project
            .script(&s.revision)
            .map(|x| x.transactional)
            .unwrap_or(true)
    }
}

/// The largest `--batch N` whose every transaction holds at most `room` lock entries
/// (`runs`: the plan's segments without a batch; `locks`: each step's). `None` when a single
/// revision alone holds more.
pub fn fitting_batch(runs: &[Segment], locks: &[usize], room: usize) -> Option<usize> {
    let longest = runs
        .iter()
        .filter(|r| r.transactional)
        .map(|r| r.steps.len())
        .max()?;
    (1..=longest)
        .rev()
        .find(|&n| heaviest(&batches(runs, n), locks).locks <= room)
}

/// The server's lock table: `(max_locks_per_transaction, its size in entries)`.
pub fn budget(client: &mut Client) -> Result<(i64, i64)> {
    let r = query::one(
        client,
        "SELECT current_setting('max_locks_per_transaction')::int8,
                current_setting('max_locks_per_transaction')::int8 * (
                  current_setting('max_connections')::int8 + current_setting('autovacuum_max_workers')::int8 + 1
                  + current_setting('max_worker_processes')::int8 + current_setting('max_wal_senders')::int8
                  + current_setting('max_prepared_transactions')::int8)",
        &[],
    )
    .map_err(|e| db_error("cannot read max_locks_per_transaction", &e))?;
    Ok((r.get(0), r.get(1)))
}

/// The refusal when the heaviest transaction (`needed`) exceeds the lock table's `size`.
/// `batch`: the run's `--batch N` (or 1 for `--transaction-per-migration`); `fits`: a
/// `--batch` value that would fit (see [`suggest_batch`]).
pub fn check(
    needed: Estimate,
    per_transaction: i64,
    size: i64,
    batch: Option<usize>,
    fits: Option<usize>,
) -> Result<()> {
    if (needed.locks as i64) <= size {
        return Ok(());
    }
    let what = match batch {
        None => format!("{} revisions", needed.steps),
        Some(1) => "one revision, with --transaction-per-migration".to_string(),
        Some(n) => format!(
            "its largest batch: {} revision{} with --batch {n}",
            needed.steps,
            crate::words::plural(needed.steps)
        ),
    };
    let raise = "raise max_locks_per_transaction on the server (a restart)";
    let hint = match fits {
        Some(1) => format!(
            "run with --transaction-per-migration (each revision commits on its own; the same as --batch 1), or {raise}"
        ),
        Some(n) => format!(
            "run with --batch {n} (a COMMIT every {n} revisions; each batch then holds at most half of the lock table), or --transaction-per-migration (each revision commits on its own), or {raise}"
        ),
        None => format!(
            "one revision alone needs more than the lock table holds, so no --batch helps: {raise}, or split the revision"
        ),
    };
    Err(Error::usage(format!(
        "this run would hold about {} locks in one transaction ({what}), more than the server's lock table holds ({size}: max_locks_per_transaction {per_transaction} × its backends): it would fail with 53200 out of shared memory, so nothing was started",
        needed.locks
    ))
    .with_hint(hint))
}

/// The `--batch` to suggest for a lock table of `size`: the largest whose batches hold at most
/// half of it (the rest is the other sessions'), else the largest that fits at all.
pub fn suggest_batch(runs: &[Segment], locks: &[usize], size: i64) -> Option<usize> {
    let size = size.max(0) as usize;
    fitting_batch(runs, locks, size / 2).or_else(|| fitting_batch(runs, locks, size))
}

/// [`suggest_batch`] for `plan` and a lock table of `size`.
pub fn suggest_for(project: &Project, plan: &Plan, size: i64) -> Option<usize> {
    let runs = plan.segments(transactional(project), None);
    suggest_batch(&runs, &step_locks(project, plan), size)
}

/// Refuses a run of `plan` whose heaviest transaction (as `max_steps` groups them) would not
/// fit the lock table, reading its size from the server only for runs that could exceed it.
pub fn check_plan(
    client: &mut Client,
    project: &Project,
    plan: &Plan,
    max_steps: Option<usize>,
) -> Result<()> {
    let locks = step_locks(project, plan);
    let runs = plan.segments(transactional(project), None);
    let grouped = match max_steps {
        None => runs.clone(),
        Some(n) => batches(&runs, n),
    };
    let needed = heaviest(&grouped, &locks);
    // a small run is not worth the round trip: the default lock table (64 × the backends)
    // holds several thousand
    if needed.locks < 1000 {
        return Ok(());
    }
    let (per, size) = budget(client)?;
    if needed.locks as i64 <= size {
        return Ok(());
    }
    check(
        needed,
        per,
        size,
        max_steps,
        suggest_batch(&runs, &locks, size),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_per_statement_as_measured_on_postgresql_16() {
        assert_eq!(
            statement_locks("CREATE TABLE t1 (id int PRIMARY KEY, t text)"),
            5
        );
        assert_eq!(statement_locks("CREATE TABLE t2 (id int)"), 1);
        assert_eq!(
            statement_locks("create table t3 (id int primary key, u int unique)"),
            4
        );
        assert_eq!(
            statement_locks("CREATE TABLE t4 (id serial PRIMARY KEY)"),
            6
        );
        assert_eq!(statement_locks("CREATE INDEX t2_id ON t2 (id)"), 2);
        assert_eq!(statement_locks("ALTER TABLE t2 ADD COLUMN x int"), 1);
        assert_eq!(statement_locks("SELECT 1"), 0);
    }

    fn est(locks: usize, steps: usize) -> Estimate {
        Estimate { locks, steps }
    }

    #[test]
    fn over_the_lock_table_is_refused_with_the_way_out() {
        assert!(check(est(6400, 10), 64, 6400, None, Some(5)).is_ok());
        let e = check(est(20_000, 10_000), 64, 19_200, None, Some(4_000)).unwrap_err();
        assert!(e.message.contains("about 20000 locks") && e.message.contains("19200"));
        assert!(e.message.contains("(10000 revisions)"), "{}", e.message);
        let hint = e.hint.unwrap();
        assert!(
            hint.contains("--batch 4000") && hint.contains("--transaction-per-migration"),
            "{hint}"
        );
        // with --batch: the batch is named; a batch of 1 is --transaction-per-migration
        let e = check(est(20_000, 50), 64, 19_200, Some(50), Some(1)).unwrap_err();
        assert!(
            e.message
                .contains("its largest batch: 50 revisions with --batch 50"),
            "{}",
            e.message
        );
        let hint = e.hint.unwrap();
        assert!(
            hint.starts_with("run with --transaction-per-migration")
                && !hint.contains("--batch 1 "),
            "{hint}"
        );
        // nothing fits: only the server's setting helps
        let e = check(est(20_000, 1), 64, 19_200, Some(1), None).unwrap_err();
        assert!(e
            .message
            .contains("one revision, with --transaction-per-migration"));
        assert!(e.hint.unwrap().contains("no --batch helps"));
    }

    fn seg(r: std::ops::Range<usize>, transactional: bool) -> Segment {
        Segment {
            steps: r,
            transactional,
        }
    }

    #[test]
    fn the_heaviest_transaction_is_the_one_that_counts() {
        let locks = [10, 10, 10, 500, 10, 10];
        // one transaction: all of it
        assert_eq!(heaviest(&[seg(0..6, true)], &locks), est(550, 6));
        // step 3 outside a transaction holds its locks only statement by statement
        let runs = [seg(0..3, true), seg(3..4, false), seg(4..6, true)];
        assert_eq!(heaviest(&runs, &locks), est(30, 3));
        assert_eq!(heaviest(&batches(&runs, 2), &locks), est(20, 2));
        assert_eq!(heaviest(&[], &locks), est(0, 0));
    }

    #[test]
    fn the_suggested_batch_is_the_largest_that_fits() {
        // 40 revisions of 51 locks: 255 for a batch of 5
        let locks = vec![51; 40];
        let runs = [seg(0..40, true)];
        assert_eq!(fitting_batch(&runs, &locks, 255), Some(5));
        assert_eq!(fitting_batch(&runs, &locks, 254), Some(4));
        assert_eq!(fitting_batch(&runs, &locks, 51 * 40), Some(40));
        assert_eq!(fitting_batch(&runs, &locks, 50), None);
        // half of a lock table of 540 for the run, the rest for the other sessions
        assert_eq!(suggest_batch(&runs, &locks, 540), Some(5));
        // one revision takes more than half of it: the largest that fits at all
        let heavy = [10, 300, 10];
        let runs = [seg(0..3, true)];
        assert_eq!(suggest_batch(&runs, &heavy, 315), Some(2));
        assert_eq!(suggest_batch(&runs, &heavy, 305), Some(1));
        assert_eq!(suggest_batch(&runs, &heavy, 200), None);
        // batches count from each run's start: with the heavy steps at 2 and 3, a batch of 2
        // puts them together and a batch of 3 does not
        let locks = [0, 0, 10, 10, 0, 0];
        let runs = [seg(0..6, true)];
        assert_eq!(heaviest(&batches(&runs, 2), &locks).locks, 20);
        assert_eq!(heaviest(&batches(&runs, 3), &locks).locks, 10);
        assert_eq!(fitting_batch(&runs, &locks, 10), Some(3));
        // whatever it suggests fits
        for room in [10, 15, 20, 25] {
            let n = fitting_batch(&runs, &locks, room).unwrap();
            assert!(heaviest(&batches(&runs, n), &locks).locks <= room);
        }
        // only non-transactional steps: nothing to batch
        assert_eq!(fitting_batch(&[seg(0..1, false)], &[5], 100), None);
    }
}
