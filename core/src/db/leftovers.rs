//! What an earlier run may have left in the database, looked at before a run: the audit log's
//! last entry when that run failed or was interrupted (a warning), and INVALID indexes a failed
//! or interrupted `CREATE INDEX CONCURRENTLY` left. An INVALID index that a failed run of retort
//! said it left, and that a step of this run builds again under that name, is dropped: it is
//! provably that step's half-built leftover, and "run the command again" then finishes. Any
//! other is named, or with `--repair-invalid-indexes` dropped (when a step builds it) or
//! dropped and built again.

use super::records::Records;
use super::SqlFailure;
use crate::error::{Error, ErrorKind, Result};
use crate::policy;
use postgres::Client;

/// Warns of the last run's failure and handles INVALID indexes as the module says.
/// `statements`: the SQL of the plan's steps, in the direction each runs.
pub fn look(
    client: &mut Client,
    records: &Records,
    repair: bool,
    statements: &[String],
) -> Result<()> {
    let recent = records.read_audit(client, 20).unwrap_or_default();
    if let Some(last) = recent.first().filter(|r| !r.success) {
        log::warn!(
            "the last run ({} {} at {}) did not complete: {}",
            last.action,
            last.target,
            last.at,
            last.note
                .clone()
                .or(last.error.clone())
                .unwrap_or_default()
                .lines()
                .next()
                .unwrap_or_default()
        );
    }
    let invalid = super::invalid_index_definitions(client)?;
    if invalid.is_empty() {
        return Ok(());
    }
    let left_by_runs = policy::invalid_indexes_left_by_runs(
        recent
            .iter()
            .filter(|r| !r.success)
            .filter_map(|r| r.error.as_deref()),
    );
    let bare = |name: &str| {
        name.rsplit('.')
            .next()
            .unwrap_or(name)
            .trim_matches('"')
            .to_lowercase()
    };
    let mut others = Vec::new();
    for (name, def) in invalid {
        if left_by_runs.contains(&name) && policy::builds_index(statements, &bare(&name)) {
            log::info!(
                "dropping INVALID index {name}: a failed or interrupted run left it, and a step of this run builds it again"
            );
            drop_invalid(client, &name)?;
        } else {
            others.push((name, def));
        }
    }
    if others.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = others.iter().map(|(n, _)| n.as_str()).collect();
    if !repair {
        log::warn!(
            "INVALID index{} in the database (left by a failed or interrupted CREATE INDEX CONCURRENTLY): {}; \
             queries do not use them but writes maintain them. Drop them with DROP INDEX CONCURRENTLY, or pass \
             --repair-invalid-indexes to drop and rebuild them before the run",
            crate::words::plural_es(names.len()),
            names.join(", ")
        );
        return Ok(());
    }
    // An index that a step of this run creates is only dropped: the step builds it.
    let pending_sql: String = statements.join(";").to_lowercase();
    for (name, def) in &others {
        let built_by_run = pending_sql
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .any(|w| w == bare(name));
        if built_by_run {
            log::info!("dropping INVALID index {name}: a step of this run builds it");
            drop_invalid(client, name)?;
            continue;
        }
        log::info!("repairing INVALID index {name}: dropping it and building it again");
        let concurrently = def
            .replacen("CREATE INDEX ", "CREATE INDEX CONCURRENTLY ", 1)
            .replacen(
                "CREATE UNIQUE INDEX ",
                "CREATE UNIQUE INDEX CONCURRENTLY ",
                1,
            );
        for sql in [
            format!("DROP INDEX CONCURRENTLY IF EXISTS {name}"),
            concurrently,
        ] {
            client.batch_execute(&sql).map_err(|e| {
                Error::new(
                    ErrorKind::Migration,
                    format!(
                        "cannot repair INVALID index {name}: {}\n  statement: {sql}",
                        SqlFailure::from_pg(&e).describe()
                    ),
                )
                .with_hint("drop the index by hand (DROP INDEX CONCURRENTLY) and run again")
            })?;
        }
    }
    Ok(())
}

/// Drops an INVALID index (a step of the run builds it again).
fn drop_invalid(client: &mut Client, name: &str) -> Result<()> {
    let sql = format!("DROP INDEX CONCURRENTLY IF EXISTS {name}");
    client.batch_execute(&sql).map_err(|e| {
        Error::new(
            ErrorKind::Migration,
            format!(
                "cannot drop INVALID index {name}: {}",
                SqlFailure::from_pg(&e).describe()
            ),
        )
    })
}
