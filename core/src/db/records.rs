//! What Alembic does not record: beside the version table, a row per applied revision (its
//! checksum, when, how long, who, from where, which tool version) and an append-only audit log
//! of every up, down, stamp, purge, rehash and adoption, successful or not.
//!
//! Tables (named after the version table, in its schema):
//! - `<table>_applied(revision PK, checksum, applied_at, duration_ms, db_user, client_host,
//!    tool_version, how)`; a downgrade deletes the row (the audit log keeps the event).
//! - `<table>_audit(id, at, action, target, from_heads, to_heads, revisions, lock_wait_ms,
//!    duration_ms, success, error, note, db_user, client_host, application_name, tool_version)`.

use super::{db_error, query, quote_ident, quote_literal, VersionTable};
use crate::error::Result;
pub use crate::policy::AppliedRecord;
use postgres::types::Type;
use postgres::GenericClient;
use std::collections::HashMap;
use std::time::Duration;

pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The two tables beside a version table.
#[derive(Debug, Clone)]
pub struct Records {
    pub applied: String,
    pub audit: String,
}

/// One audit-log entry to write.
#[derive(Debug, Clone, Default)]
pub struct AuditEntry {
    pub action: String,
    pub target: String,
    pub from_heads: Vec<String>,
    pub to_heads: Vec<String>,
    pub revisions: Vec<String>,
    pub lock_wait: Duration,
    pub duration: Duration,
    pub success: bool,
    pub error: Option<String>,
    /// Anything else worth keeping (e.g. the old and new checksum of a rehash).
    pub note: Option<String>,
}

/// One audit-log entry as read back.
#[derive(Debug, Clone)]
pub struct AuditRow {
    pub id: i64,
    pub at: String,
    pub action: String,
    pub target: String,
    pub from_heads: Vec<String>,
    pub to_heads: Vec<String>,
    pub revisions: Vec<String>,
    pub lock_wait_ms: i64,
    pub duration_ms: i64,
    pub success: bool,
    pub error: Option<String>,
    pub note: Option<String>,
    pub db_user: String,
    pub client_host: String,
    pub application_name: String,
    pub tool_version: String,
}

impl Records {
    pub fn for_table(table: &VersionTable) -> Records {
        let q = |suffix: &str| {
            let name = quote_ident(&format!("{}_{suffix}", table.name.name));
            match &table.name.schema {
                Some(s) => format!("{}.{}", quote_ident(s), name),
                None => name,
            }
        };
        Records {
            applied: q("applied"),
            audit: q("audit"),
        }
    }

    pub fn exist(&self, client: &mut impl GenericClient) -> Result<bool> {
        let r = query::one(
            client,
            "SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL",
            &[(&self.applied, Type::TEXT), (&self.audit, Type::TEXT)],
        )
        .map_err(|e| db_error("cannot look up the record tables", &e))?;
        Ok(r.get(0))
    }

    /// Creates both tables when missing (idempotent; callers hold the migration lock).
    pub fn ensure(&self, client: &mut impl GenericClient) -> Result<()> {
        if self.exist(client)? {
            return Ok(());
        }
        client
            .batch_execute(&format!(
                "CREATE TABLE IF NOT EXISTS {a} (
                    revision     varchar(32) PRIMARY KEY,
                    checksum     char(64) NOT NULL,
                    applied_at   timestamptz NOT NULL DEFAULT now(),
                    duration_ms  bigint,
                    db_user      text NOT NULL DEFAULT current_user,
                    client_host  text DEFAULT host(inet_client_addr()),
                    tool_version text NOT NULL,
                    how          text NOT NULL
                 );
                 CREATE TABLE IF NOT EXISTS {l} (
                    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    at               timestamptz NOT NULL DEFAULT clock_timestamp(),
                    action           text NOT NULL,
                    target           text NOT NULL DEFAULT '',
                    from_heads       text[] NOT NULL DEFAULT '{{}}',
                    to_heads         text[] NOT NULL DEFAULT '{{}}',
                    revisions        text[] NOT NULL DEFAULT '{{}}',
                    lock_wait_ms     bigint NOT NULL DEFAULT 0,
                    duration_ms      bigint NOT NULL DEFAULT 0,
                    success          boolean NOT NULL,
                    error            text,
                    note             text,
                    db_user          text NOT NULL DEFAULT current_user,
                    client_host      text DEFAULT host(inet_client_addr()),
                    application_name text NOT NULL DEFAULT current_setting('application_name'),
                    tool_version     text NOT NULL
                 );
                 COMMENT ON TABLE {l} IS 'retort audit log: append-only';",
                a = self.applied,
                l = self.audit
            ))
            .map_err(|e| db_error("cannot create the record tables", &e))
    }

    /// Records (or re-records) a revision as applied.
    pub fn record(
        &self,
        client: &mut impl GenericClient,
        revision: &str,
        checksum: &str,
        duration: Option<Duration>,
        how: &str,
    ) -> Result<()> {
        client
            .batch_execute(&self.record_sql(revision, checksum, duration, how))
            .map_err(|e| db_error("cannot record the applied revision", &e))
    }

    /// Replaces a record's checksum with `new` where it is still `old`, keeping when and how
    /// the revision was applied (a record of the form written before the down section was
    /// left out of the checksum, brought to the current form: the script has not changed).
    pub fn convert_checksum(
        &self,
        client: &mut impl GenericClient,
        revision: &str,
        old: &str,
        new: &str,
    ) -> Result<()> {
        client
            .batch_execute(&format!(
                "UPDATE {} SET checksum = {} WHERE revision = {} AND checksum = {};",
                self.applied,
                quote_literal(new),
                quote_literal(revision),
                quote_literal(old)
            ))
            .map_err(|e| db_error("cannot convert a recorded checksum", &e))
    }

    /// The statement [`Records::record`] runs (the run loop sends it in one round trip with the
    /// step's version-table writes).
    pub fn record_sql(
        &self,
        revision: &str,
        checksum: &str,
        duration: Option<Duration>,
        how: &str,
    ) -> String {
        self.record_many_sql(
            &[(revision.to_string(), checksum.to_string(), duration)],
            how,
        )
    }

    /// One INSERT recording several revisions (each at most once), as the run loop does at the
    /// end of a single-transaction run.
    pub fn record_many_sql(
        &self,
        rows: &[(String, String, Option<Duration>)],
        how: &str,
    ) -> String {
        let values: Vec<String> = rows
            .iter()
            .map(|(revision, checksum, duration)| {
                let ms = duration
                    .map(|d| (d.as_millis() as i64).to_string())
                    .unwrap_or_else(|| "NULL".into());
                format!(
                    "({}, {}, {ms}, {}, {})",
                    quote_literal(revision),
                    quote_literal(checksum),
                    quote_literal(TOOL_VERSION),
                    quote_literal(how)
                )
            })
            .collect();
        format!(
            "INSERT INTO {} (revision, checksum, duration_ms, tool_version, how) VALUES {}
             ON CONFLICT (revision) DO UPDATE SET checksum = EXCLUDED.checksum, applied_at = now(),
               duration_ms = EXCLUDED.duration_ms, db_user = current_user, client_host = host(inet_client_addr()),
               tool_version = EXCLUDED.tool_version, how = EXCLUDED.how;",
            self.applied,
            values.join(",\n")
        )
    }

    pub fn forget(&self, client: &mut impl GenericClient, revision: &str) -> Result<()> {
        client
            .batch_execute(&self.forget_sql(revision))
            .map_err(|e| db_error("cannot delete the applied revision's record", &e))
    }

    pub fn forget_sql(&self, revision: &str) -> String {
        format!(
            "DELETE FROM {} WHERE revision = {};",
            self.applied,
            quote_literal(revision)
        )
    }

    pub fn forget_all(&self, client: &mut impl GenericClient) -> Result<()> {
        client
            .batch_execute(&format!("DELETE FROM {}", self.applied))
            .map_err(|e| db_error("cannot delete the applied records", &e))
    }

    /// Every applied record, by revision (empty when the table does not exist yet).
    pub fn applied(
        &self,
        client: &mut impl GenericClient,
    ) -> Result<HashMap<String, AppliedRecord>> {
        if !self.exist(client)? {
            return Ok(HashMap::new());
        }
        let rows = query::rows(
            client,
            &format!(
                "SELECT revision::text, checksum::text, to_char(applied_at, 'YYYY-MM-DD HH24:MI:SS TZ'), how FROM {}",
                self.applied
            ),
            &[],
        )
        .map_err(|e| db_error("cannot read the applied records", &e))?;
        Ok(rows
            .iter()
            .map(|r| {
                let rec = AppliedRecord {
                    revision: r.get(0),
                    checksum: r.get(1),
                    applied_at: r.get(2),
                    how: r.get(3),
                };
                (rec.revision.clone(), rec)
            })
            .collect())
    }

    /// The version table's rows (sorted) and every applied record, in ONE statement: the
    /// lock-free look of `migrate-up` at the heads (see [`crate::migrator::Migrator::up_to_date`]).
    /// One snapshot, so the rows and records agree with each other: a run in flight has
    /// committed neither. `None` when either table is missing (a new database, one Alembic
    /// migrated) or the read fails: the caller then takes the locked path, which creates,
    /// adopts and reports as usual.
    pub fn read_with_heads(
        &self,
        client: &mut impl GenericClient,
        table: &VersionTable,
    ) -> Option<(Vec<String>, HashMap<String, AppliedRecord>)> {
        let sql = format!(
            "SELECT true, version_num::text, NULL::text, NULL::text, NULL::text FROM {}
             UNION ALL
             SELECT false, revision::text, checksum::text, to_char(applied_at, 'YYYY-MM-DD HH24:MI:SS TZ'), how::text FROM {}
             ORDER BY 1 DESC, 2",
            table.qualified(),
            self.applied
        );
        let rows = match query::rows(client, &sql, &[]) {
            Ok(rows) => rows,
            Err(e) => {
                log::debug!("the one-read look at the version table did not answer ({e}): taking the locked path");
                return None;
            }
        };
        let mut heads = Vec::new();
        let mut records = HashMap::new();
        for r in &rows {
            if r.get::<_, bool>(0) {
                heads.push(r.get::<_, String>(1));
            } else {
                let rec = AppliedRecord {
                    revision: r.get(1),
                    checksum: r.get(2),
                    applied_at: r.get(3),
                    how: r.get(4),
                };
                records.insert(rec.revision.clone(), rec);
            }
        }
        Some((heads, records))
    }

    /// Appends an audit entry.
    pub fn audit(&self, client: &mut impl GenericClient, e: &AuditEntry) -> Result<()> {
        // Whatever a failure said goes in, even bytes a text column cannot hold: the row of a
        // failed run must never be lost to the failure's own message.
        let list = |v: &[String]| v.iter().map(|x| storable(x)).collect::<Vec<_>>();
        let (from_heads, to_heads, revisions) =
            (list(&e.from_heads), list(&e.to_heads), list(&e.revisions));
        let (target, error, note) = (
            storable(&e.target),
            e.error.as_deref().map(storable),
            e.note.as_deref().map(storable),
        );
        let (lock_wait_ms, duration_ms) = (
            e.lock_wait.as_millis() as i64,
            e.duration.as_millis() as i64,
        );
        query::rows(
            client,
            &format!(
                "INSERT INTO {} (action, target, from_heads, to_heads, revisions, lock_wait_ms, duration_ms, success, error, note, tool_version)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                self.audit
            ),
            &[
                (&e.action, Type::TEXT),
                (&target, Type::TEXT),
                (&from_heads, Type::TEXT_ARRAY),
                (&to_heads, Type::TEXT_ARRAY),
                (&revisions, Type::TEXT_ARRAY),
                (&lock_wait_ms, Type::INT8),
                (&duration_ms, Type::INT8),
                (&e.success, Type::BOOL),
                (&error, Type::TEXT),
                (&note, Type::TEXT),
                (&TOOL_VERSION, Type::TEXT),
            ],
        )
        .map_err(|e| db_error("cannot write the audit log", &e))?;
        Ok(())
    }

    /// The audit log, newest first (at most `limit` rows; empty when there is none yet).
    pub fn read_audit(&self, client: &mut impl GenericClient, limit: i64) -> Result<Vec<AuditRow>> {
        if !self.exist(client)? {
            return Ok(Vec::new());
        }
        let rows = query::rows(
            client,
            &format!(
                "SELECT id, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), action, target, from_heads, to_heads,
                        revisions, lock_wait_ms, duration_ms, success, error, note, db_user, coalesce(client_host, 'local socket'),
                        application_name, tool_version
                   FROM {} ORDER BY id DESC LIMIT $1",
                self.audit
            ),
            &[(&limit, Type::INT8)],
        )
        .map_err(|e| db_error("cannot read the audit log", &e))?;
        Ok(rows
            .iter()
            .map(|r| AuditRow {
                id: r.get(0),
                at: r.get(1),
                action: r.get(2),
                target: r.get(3),
                from_heads: r.get(4),
                to_heads: r.get(5),
                revisions: r.get(6),
                lock_wait_ms: r.get(7),
                duration_ms: r.get(8),
                success: r.get(9),
                error: r.get(10),
                note: r.get(11),
                db_user: r.get(12),
                client_host: r.get(13),
                application_name: r.get(14),
                tool_version: r.get(15),
            })
            .collect())
    }
}

/// The audit log as text, one entry per line (a second, indented line for an error or note).
pub fn format_audit_log(rows: &[AuditRow]) -> String {
    let heads = |h: &[String]| {
        if h.is_empty() {
            "base".to_string()
        } else {
            h.join(",")
        }
    };
    let mut out = String::new();
    for r in rows {
        let what = if r.revisions.is_empty() {
            "nothing applied".to_string()
        } else if r.revisions.len() <= 6 {
            format!(
                "{} revision{}: {}",
                r.revisions.len(),
                crate::words::plural(r.revisions.len()),
                r.revisions.join(", ")
            )
        } else {
            format!(
                "{} revisions: {}, ... {}",
                r.revisions.len(),
                r.revisions[..3].join(", "),
                r.revisions[r.revisions.len() - 1]
            )
        };
        let waited = if r.lock_wait_ms > 0 {
            format!(", waited {} ms for the lock", r.lock_wait_ms)
        } else {
            String::new()
        };
        out.push_str(&format!(
            "{}  {:<6} {} {} -> {}  {}  by {}@{} ({}, retort {})  {} ms{}  {}\n",
            r.at,
            r.action,
            if r.target.is_empty() { "-" } else { &r.target },
            heads(&r.from_heads),
            heads(&r.to_heads),
            what,
            r.db_user,
            r.client_host,
            r.application_name,
            r.tool_version,
            r.duration_ms,
            waited,
            if r.success { "ok" } else { "FAILED" }
        ));
        if let Some(n) = &r.note {
            out.push_str(&format!("    note: {n}\n"));
        }
        if let Some(e) = &r.error {
            out.push_str(&format!("    error: {}\n", e.lines().next().unwrap_or("")));
        }
    }
    out
}

/// `text` as PostgreSQL can store it: a NUL (which no text column holds) is written `\0`.
pub fn storable(text: &str) -> String {
    text.replace('\0', "\\0")
}

#[cfg(test)]
mod storable_tests {
    #[test]
    fn a_nul_byte_becomes_visible_text() {
        assert_eq!(super::storable("a\0b"), "a\\0b");
        assert_eq!(super::storable("plain"), "plain");
    }
}
