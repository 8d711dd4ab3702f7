//! Long histories: a run that is one transaction holds a lock on every relation it creates or
//! alters until it commits, and PostgreSQL's shared lock table holds
//! `max_locks_per_transaction × (max_connections + autovacuum_max_workers + 1 +
//! max_worker_processes + max_wal_senders + max_prepared_transactions)` of them for the whole
//! server. Replaying 10,000 revisions in one transaction fails after minutes with `53200 out of
//! shared memory`; this says so before the first statement.
//!
//! The estimate counts, per statement, the lock entries PostgreSQL 16 takes (measured with
//! pg_locks): CREATE TABLE 1, +1 and +1 per index for a PRIMARY KEY / UNIQUE, +2 for a TOAST
//! table (a variable-length column), +3 per serial/identity sequence; CREATE INDEX 2; any other
//! DDL or DML 1. It errs low, so a refusal means the run would not fit.

use super::{db_error, query};
use crate::error::{Error, Result};
use crate::plan::Plan;
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

/// The most lock entries any one transaction of the run would hold: per transaction segment
/// (the whole run by default; each revision with `--transaction-per-migration`).
pub fn estimate(project: &Project, plan: &Plan, per_migration: bool) -> usize {
    let transactional = |s: &crate::plan::Step| {
        project
            .script(&s.revision)
            .map(|x| x.transactional)
            .unwrap_or(true)
    };
    plan.segments(transactional, per_migration)
        .iter()
        .filter(|seg| seg.transactional)
        .map(|seg| {
            plan.steps[seg.steps.clone()]
                .iter()
                .filter_map(|step| {
                    let script = project.script(&step.revision).ok()?;
                    let section = crate::exec::section_for(script, step.direction).ok()?;
                    Some(
                        crate::script::split_statements(&section.sql, section.line)
                            .iter()
                            .map(|s| statement_locks(&s.sql))
                            .sum::<usize>()
                            // the version table's row and the records
                            + 1,
                    )
                })
                .sum::<usize>()
        })
        .max()
        .unwrap_or(0)
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

/// The refusal when `needed` lock entries exceed the lock table's `size`.
pub fn check(needed: usize, per_transaction: i64, size: i64, steps: usize) -> Result<()> {
    if (needed as i64) <= size {
        return Ok(());
    }
    Err(Error::usage(format!(
        "this run would hold about {needed} locks in one transaction ({steps} revisions), more than the server's lock table holds ({size}: max_locks_per_transaction {per_transaction} × its backends): it would fail with 53200 out of shared memory, so nothing was started"
    ))
    .with_hint("run with --transaction-per-migration (each revision commits on its own), or raise max_locks_per_transaction on the server (a restart)"))
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

    #[test]
    fn over_the_lock_table_is_refused_with_the_way_out() {
        assert!(check(6400, 64, 6400, 10).is_ok());
        let e = check(20_000, 64, 19_200, 10_000).unwrap_err();
        assert!(e.message.contains("about 20000 locks") && e.message.contains("19200"));
        assert!(e.hint.unwrap().contains("--transaction-per-migration"));
    }
}
