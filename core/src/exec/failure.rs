//! The run's failure text: a failed statement (file, line, SQLSTATE hint), a lock wait that
//! ran out of retries, an interrupt, a transaction command in a transactional script, and the
//! notes a non-transactional step's failure adds.

use super::program::{Ended, Outcome};
use super::watch::{self, Blocker};
use super::ProgramCall;
use crate::db::SqlFailure;
use crate::error::{Error, ErrorKind, Result};
use crate::interrupt;
use crate::plan::{Direction, Step};
use crate::project::Project;
use crate::script::{Script, Statement};

pub(super) fn is_lock_timeout(e: &Error) -> bool {
    matches!(&e.detail, crate::error::Detail::Sql { sqlstate } if sqlstate == "55P03")
}

/// The last retry timed out too: name the blocker and the ways out.
pub(super) fn lock_timeout_exhausted(mut e: Error, blockers: &[Blocker], retries: u32) -> Error {
    e.message.push_str(&format!(
        "\nblocked by {} (lock timeout on {} attempt{})",
        watch::blockers_text(blockers),
        retries + 1,
        crate::words::plural(retries as usize + 1)
    ));
    let pid = blockers
        .first()
        .map_or("PID".to_string(), |b| b.pid.to_string());
    e.with_hint(format!(
        "wait for the blocking transaction to end and run again; or end it (SELECT pg_terminate_backend({pid})); \
         or wait longer for the lock (--ddl-lock-timeout, or '-- lock_timeout: 30s' in the script — reads and writes of the table queue behind the waiting statement meanwhile) \
         or retry more often (--ddl-retries)"
    ))
}

/// What the next run does about the INVALID index a failed or interrupted concurrent build of
/// a step left (the migrator's check for leftovers, `db::leftovers`).
const AGAIN: &str =
    "the next migrate-up drops the INVALID index this step left before it builds it again";

/// The error of an interrupted run (`during`: the step that was running; `cause`: the
/// statement's own failure, which the cancel caused).
pub(super) fn interrupted_error(during: Option<&str>, cause: Option<&Error>) -> Error {
    let sig = interrupt::signal().unwrap_or(interrupt::SIGINT);
    let mut msg = format!("interrupted by {}", interrupt::signal_name(sig));
    match during {
        Some(rev) => msg.push_str(&format!(" during {rev}")),
        None => msg.push_str(" between steps"),
    }
    if let Some(c) = cause {
        // keep where it was and what was left behind (the notes of a non-transactional step)
        let cancelled = c
            .message
            .contains("canceling statement due to user request");
        if cancelled {
            msg.push_str(": the running statement was cancelled on the server");
        }
        if !cancelled {
            msg.push_str(&format!(
                " ({})",
                c.message.lines().next().unwrap_or_default()
            ));
        }
        for line in c.message.lines() {
            if line.trim_start().starts_with("statement:") {
                msg.push('\n');
                msg.push_str(line);
            }
        }
    }
    let notes = cause.map_or(&[][..], |c| c.notes());
    let hint = if notes.iter().any(|n| n.contains("INVALID index")) {
        format!("run the command again to finish: {AGAIN}")
    } else {
        "run the command again to finish; it starts from the state above".to_string()
    };
    Error::new(ErrorKind::Interrupted, msg)
        .with_notes(notes)
        .with_hint(hint)
        .with_detail(crate::error::Detail::Interrupted { signal: sig })
}

/// The note of a `transactional: false` step whose statements all ran (and stay) but whose
/// version-table write did not commit: the next run would run them again.
pub(super) fn unrecorded(e: Error, project: &Project, revision: &str) -> Error {
    let path = project
        .script(revision)
        .map(|s| s.path.display().to_string())
        .unwrap_or_else(|_| revision.to_string());
    if project.script(revision).is_ok_and(|s| {
        s.up.program.is_some() || s.down.as_ref().is_some_and(|d| d.program.is_some())
    }) {
        return e.with_note(format!(
            "{path} is a program step: its program ended with exit code 0, but {revision} is not recorded in the version table; the next run runs the program again"
        ));
    }
    e.with_note(format!(
        "{path} is not transactional: all its statements ran and stayed, but {revision} is not recorded in the version table; the next run runs them again (safe when they say IF NOT EXISTS / IF EXISTS), or record it with migrate-stamp once you have checked the schema"
    ))
}

/// A program step whose program did not exit 0: where, what it ran, how it ended, and the
/// state of the revision (not recorded; what the program committed itself stays).
pub(super) fn program_failure(call: &ProgramCall, outcome: &Outcome) -> Error {
    let dir = match call.direction {
        Direction::Up => "upgrade",
        Direction::Down => "downgrade",
    };
    let recorded = match call.direction {
        Direction::Up => "recorded as applied",
        Direction::Down => "removed from the version table",
    };
    let mut e = Error::new(
        ErrorKind::Migration,
        format!(
            "{}:{}: the program of revision {} ({dir}) {}\n  command: {}",
            call.path,
            call.line,
            call.revision,
            outcome.describe(),
            call.command
        ),
    )
    .with_note(format!(
        "{} is a program step: it is not {recorded}; the steps before it are committed; whatever \
         the program committed itself before it stopped stays (retort cannot roll it back), and \
         the next run runs the program again",
        call.revision
    ));
    e = match outcome.ended {
        Ended::TimedOut(_) => e.with_hint(
            "make the program faster, or give it longer: --program-timeout (MIGRATE_PROGRAM_TIMEOUT), \
             or '-- statement_timeout: 2h' in the script",
        ),
        _ => e.with_hint(
            "read the program's output above, fix it and run again (a program step must be safe to \
             run again: idempotent, or all its work in one transaction)",
        ),
    };
    e
}

/// BEGIN/COMMIT/ROLLBACK inside a transactional script would end retort's transaction half-way
/// through a run: refused before it is sent (a `transactional: false` script may group its own
/// statements).
pub(super) fn refuse_transaction_control(script: &Script, stmt: &Statement) -> Result<()> {
    let mut words = stmt.sql.split_whitespace();
    let first = words
        .next()
        .unwrap_or("")
        .trim_end_matches(';')
        .to_ascii_uppercase();
    let second = words.next().unwrap_or("").to_ascii_uppercase();
    let control = matches!(
        first.as_str(),
        "BEGIN" | "COMMIT" | "ROLLBACK" | "END" | "ABORT"
    ) || (first == "START" && second.starts_with("TRANSACTION"))
        || (first == "PREPARE" && second == "TRANSACTION");
    if control {
        return Err(Error::new(
            ErrorKind::Migration,
            format!("{}:{}: '{}' in a transactional script: retort runs each script inside its own transaction", script.path.display(), stmt.line, stmt.sql.lines().next().unwrap_or("").trim()),
        )
        .with_hint("remove it, or mark the script `-- transactional: false` to manage transactions yourself"));
    }
    Ok(())
}

pub(super) fn plain_failure(what: &str, f: SqlFailure) -> Error {
    Error::new(
        ErrorKind::Migration,
        format!("{what} failed: {}", f.describe()),
    )
}

pub(super) fn statement_failure(
    script: &Script,
    step: &Step,
    stmt: &Statement,
    f: SqlFailure,
    non_tx: bool,
) -> Error {
    let verb = if step.direction == Direction::Up {
        "upgrade"
    } else {
        "downgrade"
    };
    let line = f.line_in(stmt);
    let mut msg = format!(
        "migration failed: {verb} {} at {}:{line}{}\n{}",
        step.revision,
        script.path.display(),
        if non_tx {
            " (non-transactional script)"
        } else {
            ""
        },
        f.describe()
    );
    let first = stmt.sql.trim().lines().next().unwrap_or("");
    msg.push_str(&format!("\n  statement: {}", truncate(first, 120)));
    let sqlstate = f.sqlstate.clone();
    Error::new(ErrorKind::Migration, msg)
        .with_hint(crate::db::sqlstate::statement_hint(&sqlstate, &stmt.sql))
        .with_detail(crate::error::Detail::Sql { sqlstate })
}

pub(super) fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}...", s.chars().take(n).collect::<String>())
    }
}

/// The notes of a failed (or interrupted) statement of a non-transactional script: the
/// statements before it that ran and stayed (`ran_before` of them), and the INVALID indexes a
/// failed `CREATE INDEX CONCURRENTLY` left behind (`invalid`).
pub(super) fn outside_failure(
    mut e: Error,
    script: &Script,
    ran_before: usize,
    interrupted: bool,
    invalid: &[String],
) -> Error {
    if ran_before > 0 {
        e = e.with_note(format!(
            "{} is not transactional: {} ran before the {} and stayed (it cannot be rolled back)",
            script.path.display(),
            if ran_before == 1 {
                "its first statement".to_string()
            } else {
                format!("its first {ran_before} statements")
            },
            if interrupted { "interrupt" } else { "failure" }
        ));
    }
    if !invalid.is_empty() {
        e = e.with_note(format!(
            "INVALID index{} now in the database: {} (clean up with: {} — IF NOT EXISTS would skip it)",
            crate::words::plural_es(invalid.len()),
            invalid.join(", "),
            invalid
                .iter()
                .map(|i| format!("DROP INDEX CONCURRENTLY IF EXISTS {i};"))
                .collect::<Vec<_>>()
                .join(" ")
        ));
        // the next run drops what this step left before building it again
        e.hint = Some(match e.hint.take() {
            Some(_) if interrupted => format!("run the command again to finish: {AGAIN}"),
            Some(h) => format!("{h}; {AGAIN}"),
            None => AGAIN.to_string(),
        });
    }
    e
}
