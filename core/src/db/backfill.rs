//! The checkpoints of backfills in progress: `<version table>_backfill`, beside the version
//! table (in its schema), one row per backfill step that has committed at least one range and
//! not its last. Each range's transaction moves its row's `next_key` on (so a range and its
//! checkpoint commit together, or neither does); the last range's transaction deletes the row
//! and records the revision. `migrate-up` continues from `next_key`; `migrate-current` and
//! `migrate-history` show the rows.
//!
//! Keys are kept as `bigint`: an integer key as itself, a timestamp key as microseconds since
//! 1970-01-01 00:00 (UTC for `timestamptz`).

use super::{quote_ident, VersionTable};
use crate::error::{Error, Result};
use postgres::Client;

/// `alembic_version_backfill` (or `"schema".alembic_version_backfill`).
pub fn table_name(table: &VersionTable) -> String {
    let name = quote_ident(&format!("{}_backfill", table.name.name));
    match &table.name.schema {
        Some(s) => format!("{}.{name}", quote_ident(s)),
        None => name,
    }
}

/// Creates the checkpoint table when missing.
pub fn ensure_sql(table: &VersionTable) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {} (
            revision text PRIMARY KEY,
            target text NOT NULL,
            key_type text NOT NULL,
            first_key bigint NOT NULL,
            next_key bigint NOT NULL,
            end_key bigint NOT NULL,
            rows bigint NOT NULL DEFAULT 0,
            ranges bigint NOT NULL DEFAULT 0,
            busy_seconds double precision NOT NULL DEFAULT 0,
            started_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        )",
        table_name(table)
    )
}

/// A backfill's checkpoint row.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    pub revision: String,
    /// `documents.id`
    pub target: String,
    /// `integer`, `timestamp` or `timestamptz`
    pub key_type: String,
    pub first_key: i64,
    /// Where the next range starts: every key below it is done.
    pub next_key: i64,
    /// One past the last key (as read when the backfill started).
    pub end_key: i64,
    pub rows: i64,
    pub ranges: i64,
    /// Time spent in ranges (for the rate), over every run.
    pub busy_seconds: f64,
    pub started_at: String,
    pub updated_at: String,
}

impl Checkpoint {
    /// The share of the key range done, 0 to 1.
    pub fn fraction(&self) -> f64 {
        let all = (self.end_key - self.first_key).max(1) as f64;
        ((self.next_key - self.first_key) as f64 / all).clamp(0.0, 1.0)
    }

    /// Rows a second while it ran.
    pub fn rate(&self) -> f64 {
        if self.busy_seconds > 0.0 {
            self.rows as f64 / self.busy_seconds
        } else {
            0.0
        }
    }

    /// `backfill in progress: documents.id 50001 of [1, 100001) done (50%), 50,000 rows in 25
    /// ranges, 2,100 rows/s, last range 2026-12-07 20:01:02+00`
    pub fn describe(&self) -> String {
        format!(
            "backfill in progress: {} done up to {} of [{}, {}) ({:.0}%), {} rows in {} range{}, {} rows/s, last range at {}",
            self.target,
            key_text(&self.key_type, self.next_key),
            key_text(&self.key_type, self.first_key),
            key_text(&self.key_type, self.end_key),
            self.fraction() * 100.0,
            crate::words::group(self.rows.max(0) as u64),
            self.ranges,
            crate::words::plural(self.ranges as usize),
            crate::words::group(self.rate().round() as u64),
            self.updated_at
        )
    }
}

/// `0043: backfill in progress: ...`, a line each (for migrate-current and migrate-history).
pub fn format_in_progress(list: &[Checkpoint]) -> String {
    list.iter()
        .map(|c| format!("{}: {}\n", c.revision, c.describe()))
        .collect()
}

/// The checkpoints as JSON (`backfills` of migrate-current's document).
pub fn json(list: &[Checkpoint]) -> serde_json::Value {
    list.iter()
        .map(|c| {
            serde_json::json!({
                "revision": c.revision, "target": c.target, "key_type": c.key_type,
                "first": key_text(&c.key_type, c.first_key),
                "done_to": key_text(&c.key_type, c.next_key),
                "end": key_text(&c.key_type, c.end_key),
                "percent": (c.fraction() * 1000.0).round() / 10.0,
                "rows": c.rows, "ranges": c.ranges, "rows_per_second": c.rate().round(),
                "started_at": c.started_at, "updated_at": c.updated_at,
            })
        })
        .collect()
}

/// The checkpoints of the backfills in progress (none when the table does not exist).
pub fn in_progress(client: &mut Client, table: &VersionTable) -> Result<Vec<Checkpoint>> {
    let name = table_name(table);
    let exists = super::query::one(
        client,
        "SELECT to_regclass($1) IS NOT NULL",
        &[(&name, postgres::types::Type::TEXT)],
    )
    .map_err(|e| super::db_error("cannot look up the backfill checkpoints", &e))?;
    if !exists.get::<_, bool>(0) {
        return Ok(Vec::new());
    }
    let rows = super::query::rows(
            client,
            &format!(
                "SELECT revision, target, key_type, first_key, next_key, end_key, rows, ranges, busy_seconds,
                        to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC',
                        to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC'
                   FROM {name} ORDER BY revision"
            ),
            &[],
        )
    .map_err(|e| super::db_error("cannot read the backfill checkpoints", &e))?;
    Ok(rows
        .iter()
        .map(|r| Checkpoint {
            revision: r.get(0),
            target: r.get(1),
            key_type: r.get(2),
            first_key: r.get(3),
            next_key: r.get(4),
            end_key: r.get(5),
            rows: r.get(6),
            ranges: r.get(7),
            busy_seconds: r.get(8),
            started_at: r.get(9),
            updated_at: r.get(10),
        })
        .collect())
}

/// The checkpoints of the backfills in progress, or nothing when they cannot be read (a
/// display that would rather show less than fail).
pub fn in_progress_or_none(client: &mut Client, table: &VersionTable) -> Vec<Checkpoint> {
    in_progress(client, table).unwrap_or_else(|e: Error| {
        log::debug!("{e}");
        Vec::new()
    })
}

/// A key as people read it: the number, or for a timestamp key the UTC time
/// (`2026-12-07 20:01:02.5`).
pub fn key_text(key_type: &str, key: i64) -> String {
    if key_type == "integer" {
        return key.to_string();
    }
    let secs = key.div_euclid(1_000_000);
    let micros = key.rem_euclid(1_000_000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let mut s = format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
    if micros != 0 {
        s.push_str(format!(".{micros:06}").trim_end_matches('0'));
    }
    s
}

/// Days since 1970-01-01 as (year, month, day) (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_read_as_numbers_or_utc_times() {
        assert_eq!(key_text("integer", -5), "-5");
        assert_eq!(key_text("timestamptz", 0), "1970-01-01 00:00:00");
        assert_eq!(
            key_text("timestamp", 1_796_673_662_500_000),
            "2026-12-07 20:01:02.5"
        );
        assert_eq!(key_text("timestamp", -1_000_000), "1969-12-31 23:59:59");
    }

    #[test]
    fn a_checkpoint_says_how_far_it_is() {
        let c = Checkpoint {
            revision: "0043".into(),
            target: "documents.id".into(),
            key_type: "integer".into(),
            first_key: 1,
            next_key: 50_001,
            end_key: 100_001,
            rows: 50_000,
            ranges: 25,
            busy_seconds: 20.0,
            started_at: "2026-12-07 20:00:00 UTC".into(),
            updated_at: "2026-12-07 20:01:02 UTC".into(),
        };
        assert_eq!(c.fraction(), 0.5);
        assert_eq!(
            c.describe(),
            "backfill in progress: documents.id done up to 50001 of [1, 100001) (50%), 50,000 rows in 25 ranges, 2,500 rows/s, last range at 2026-12-07 20:01:02 UTC"
        );
    }
}
