//! What an earlier run may have left in the database, looked at before a run: the audit log's
//! last entry when that run failed or was interrupted (a warning), and INVALID indexes a failed
//! or interrupted `CREATE INDEX CONCURRENTLY` left (named, or dropped and built again with
//! `--repair-invalid-indexes`).

use super::records::Records;
use super::SqlFailure;
use crate::error::{Error, ErrorKind, Result};
use postgres::Client;

/// Warns of the last run's failure and of INVALID indexes, or with `repair` drops and rebuilds
/// them (`CONCURRENTLY`); an index whose name the plan's up SQL (`pending_sql`, lowercased)
/// mentions is only dropped, since a step of the run builds it.
pub fn look(client: &mut Client, records: &Records, repair: bool, pending_sql: &str) -> Result<()> {
    if let Ok(rows) = records.read_audit(client, 1) {
        if let Some(last) = rows.first().filter(|r| !r.success) {
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
    }
    let invalid = super::invalid_index_definitions(client)?;
    if invalid.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = invalid.iter().map(|(n, _)| n.as_str()).collect();
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
    for (name, def) in &invalid {
        let bare = name
            .rsplit('.')
            .next()
            .unwrap_or(name)
            .trim_matches('"')
            .to_lowercase();
        let built_by_run = pending_sql
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .any(|w| w == bare);
        if built_by_run {
            log::info!("dropping INVALID index {name}: a step of this run builds it");
            let sql = format!("DROP INDEX CONCURRENTLY IF EXISTS {name}");
            client.batch_execute(&sql).map_err(|e| {
                Error::new(
                    ErrorKind::Migration,
                    format!(
                        "cannot drop INVALID index {name}: {}",
                        SqlFailure::from_pg(&e).describe()
                    ),
                )
            })?;
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
