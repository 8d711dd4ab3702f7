//! What to do about a PostgreSQL error, by SQLSTATE: one table for every place that reports
//! one (a failed step, a failed connection). Most failures are the script's — fix it and run
//! again — but some are a server setting, a leftover of an interrupted run, a missing privilege
//! or a missing database, and "fix the script" would send the user the wrong way.

/// `(SQLSTATE, hint)`, the hint said as an instruction.
pub const HINTS: &[(&str, &str)] = &[
    ("53200", "the run holds more locks than the server's lock table allows (max_locks_per_transaction x max_connections): run with --batch N (a COMMIT every N revisions) or --transaction-per-migration so each transaction holds fewer, or raise max_locks_per_transaction on the server"),
    ("42P07", "the object already exists, created outside these migrations (by hand, or by a run that was not recorded): drop it, or if the database already has what the revision builds, record it with migrate-stamp"),
    ("25001", "this statement cannot run inside a transaction (CREATE INDEX CONCURRENTLY, VACUUM, ALTER TYPE ... ADD VALUE before PostgreSQL 12): mark the script `-- transactional: false`"),
    ("55P03", "another session holds a lock the statement needs: find it in pg_locks / pg_stat_activity, let it finish, and run again"),
    ("57014", "the statement was cancelled (statement_timeout, or an administrator): raise statement_timeout for this script, or run it when the table is quiet"),
    ("42501", "the database user lacks a privilege for this statement: grant it, or run the migrations as the objects' owner"),
    ("40P01", "a deadlock with another session: run again when the other work is done"),
    ("28P01", "check the password in the database URL (DATABASE_URL / PGVECTOR_DB_URL / --database-url)"),
    ("28000", "the server's pg_hba.conf does not admit this user/host/database; ask the administrator"),
    ("3D000", "create the database (createdb NAME, or CREATE DATABASE) or fix the database name in the URL"),
    ("57P03", "the server is starting up or shutting down: retry in a moment, or use --wait"),
    ("53300", "the server's max_connections is reached: retry later, or connect through a pooler"),
];

/// The hint for `sqlstate`, if the table has one.
pub fn hint(sqlstate: &str) -> Option<&'static str> {
    HINTS
        .iter()
        .find(|(code, _)| *code == sqlstate)
        .map(|(_, h)| *h)
}

/// 42P07 when the statement builds an index: most often the INVALID index a failed or
/// interrupted `CREATE INDEX CONCURRENTLY` left under that name.
const INDEX_EXISTS: &str = "the index already exists: if a failed or interrupted CREATE INDEX CONCURRENTLY left an INVALID index of that name (migrate-check lists them), drop it with DROP INDEX CONCURRENTLY, or run migrate-up --repair-invalid-indexes; if it was created by hand, drop it or record the revision with migrate-stamp";

/// The hint for a failed migration statement `sql`: the table's, else the script's own fault.
/// "Already exists" speaks of INVALID indexes only when the statement builds an index.
pub fn statement_hint(sqlstate: &str, sql: &str) -> &'static str {
    if sqlstate == "42P07" && builds_index(sql) {
        return INDEX_EXISTS;
    }
    hint(sqlstate).unwrap_or("fix the script (or the data it trips over) and run the command again")
}

/// Whether `sql` is a `CREATE [UNIQUE] INDEX` statement (after any `--` comment lines).
fn builds_index(sql: &str) -> bool {
    let words: Vec<String> = sql
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .flat_map(str::split_whitespace)
        .take(3)
        .map(str::to_ascii_uppercase)
        .collect();
    match words.as_slice() {
        [create, index, ..] if create == "CREATE" && index == "INDEX" => true,
        [create, unique, index] => create == "CREATE" && unique == "UNIQUE" && index == "INDEX",
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_setting_or_a_leftover_is_not_blamed_on_the_script() {
        let any = "SELECT 1";
        assert!(statement_hint("53200", any).contains("--transaction-per-migration"));
        assert!(statement_hint("53200", any).contains("max_locks_per_transaction"));
        assert!(statement_hint("25001", any).contains("transactional: false"));
        assert!(hint("28P01").unwrap().contains("password"));
        assert!(hint("3D000").unwrap().contains("create the database"));
        assert!(statement_hint("42601", any).starts_with("fix the script"));
        // one entry per code
        let mut codes: Vec<&str> = HINTS.iter().map(|(c, _)| *c).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), HINTS.len());
    }

    #[test]
    fn already_exists_speaks_of_invalid_indexes_only_for_an_index() {
        for sql in [
            "CREATE INDEX CONCURRENTLY items_id ON items (id)",
            "create unique index concurrently items_id on items (id)",
            "-- the index\nCREATE INDEX items_id ON items (id)",
        ] {
            let h = statement_hint("42P07", sql);
            assert!(h.contains("INVALID index"), "{sql}: {h}");
            assert!(h.contains("--repair-invalid-indexes"), "{sql}: {h}");
        }
        for sql in [
            "CREATE TABLE beta (id int)",
            "CREATE UNIQUE something",
            "ALTER TABLE a RENAME TO b",
        ] {
            let h = statement_hint("42P07", sql);
            assert!(!h.contains("INVALID"), "{sql}: {h}");
            assert!(h.contains("migrate-stamp"), "{sql}: {h}");
        }
    }
}
