//! Backfill workers: a backfill revision whose up section is `-- run: <command>` starts the
//! program once and hands it the key ranges over the line protocol; the Python helper
//! `retort_migrate.backfill.worker(fn)` runs each range's writes with retort's checkpoint in
//! one transaction. On a populated table with a change that is not idempotent (`n = n + 1`):
//! a normal run, kill -9 of retort and of the worker at random moments, a worker that fails
//! (its message, the checkpoint where it was, a rerun resumes), Ctrl-C, a worker that skips the
//! checkpoint (at least once, said), `--dry-run` and `--sql`.

use crate::common::*;
use std::path::PathBuf;
use std::time::Duration;

/// The Python that runs the workers: the repository's virtualenv (psycopg2 in it), else
/// python3 from PATH.
fn python() -> String {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    if venv.exists() {
        venv.display().to_string()
    } else {
        "python3".to_string()
    }
}

/// A scenario whose runs find `retort_migrate` (this checkout's) for the workers.
fn scenario() -> Scenario {
    let mut s = Scenario::new();
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../python");
    s.env.push((
        "PYTHONPATH".into(),
        src.canonicalize().unwrap().display().to_string(),
    ));
    s
}

/// `t(id int primary key, n int)` with `rows` rows, n = 0, as revision 001, applied.
fn populated(s: &Scenario, rows: usize) {
    s.revision(
        "001",
        "",
        &format!("CREATE TABLE t (id int PRIMARY KEY, n int NOT NULL DEFAULT 0);\nINSERT INTO t (id) SELECT g FROM generate_series(1, {rows}) g;"),
        "DROP TABLE t;",
    );
    s.run("migrate-up", &["001"]).ok();
}

/// Revision 002: a backfill of t.id whose worker is `migrations/002_worker.py` with `body`
/// (Python: the helper imported, `RANGE` the function of one range).
fn worker(s: &Scenario, batch: usize, body: &str) {
    s.write("migrations/002_worker.py", body);
    s.write(
        "migrations/002_x.sql",
        &format!(
            "-- revision: 002\n-- down_revision: 001\n-- message: count every row once\n-- backfill: t.id batch={batch}\n\n\
             -- migrate:up\n-- run: {} 002_worker.py\n\n-- migrate:down\nUPDATE t SET n = 0;\n",
            python()
        ),
    );
}

/// The worker the scenarios use: n = n + 1 over the range (not idempotent), a log line on
/// start (stdout) and one per range on stderr; its pid in `worker.pid` beside the migrations.
const INCREMENT: &str = r#"
import os, sys
from retort_migrate.backfill import worker

here = os.environ["RETORT_MIGRATIONS_DIR"]
with open(os.path.join(here, "..", "worker.pid"), "w") as f:
    f.write(str(os.getpid()))
print("worker ready for", os.environ["RETORT_BACKFILL_TABLE"], os.environ["RETORT_BACKFILL_KEY"],
      os.environ["RETORT_BACKFILL_KEY_TYPE"], flush=True)

def increment(conn, start, end):
    if start <= 2500 < end and not os.path.exists(os.path.join(here, "..", "fixed")) \
            and os.environ.get("FAIL_AT_2500"):
        raise ValueError(f"no embedding for chunk 2500 (range {start}..{end})")
    with conn.cursor() as cur:
        cur.execute("UPDATE t SET n = n + 1 WHERE id >= %s AND id < %s", (start, end))
        return cur.rowcount

worker(increment)
"#;

/// In one snapshot: rows with n = 1, rows with n other than 0 or 1, the checkpoint's next key
/// (an earlier run's worker may commit a range at any moment).
fn state(url: &str) -> (i64, i64, Option<i64>) {
    let mut c = connect(url);
    let books: bool = c
        .query_one(
            "SELECT to_regclass('alembic_version_backfill') IS NOT NULL",
            &[],
        )
        .unwrap()
        .get(0);
    let next = if books {
        "(SELECT next_key FROM alembic_version_backfill WHERE revision = '002')"
    } else {
        "NULL::bigint"
    };
    let r = c
        .query_one(
            &format!(
                "SELECT (SELECT count(*) FROM t WHERE n = 1), (SELECT count(*) FROM t WHERE n NOT IN (0, 1)), {next}"
            ),
            &[],
        )
        .unwrap();
    (r.get(0), r.get(1), r.get(2))
}

const SLOW: [&str; 4] = ["--backfill-batch-time", "1ms", "--backfill-pause", "20ms"];

#[test]
fn a_python_worker_is_started_once_and_backfills_every_row_once() {
    let s = scenario();
    populated(&s, 5000);
    worker(&s, 100, INCREMENT);
    s.db.execute("ANALYZE t");
    let dry = s.run("migrate-up", &["--dry-run"]).ok();
    assert!(
        dry.stdout.contains("backfill 002: t.id over [1, 5001)")
            && dry
                .stdout
                .contains("each range handed to the worker program"),
        "{}",
        dry.stdout
    );
    let r = s.run("migrate-up", &["--format", "json"]).ok();
    assert_eq!(state(&s.db.url), (5000, 0, None), "{}", r.stderr);
    assert_eq!(s.db.version_rows(), ["002"]);
    // started once: one "ready" line, its environment as documented
    let events: Vec<serde_json::Value> = r
        .stderr
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let ready: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| {
            e["line"]
                .as_str()
                .is_some_and(|l| l.starts_with("worker ready"))
        })
        .collect();
    assert_eq!(ready.len(), 1, "{}", r.stderr);
    assert_eq!(ready[0]["line"], "worker ready for t id integer");
    assert_eq!(ready[0]["revision"], "002");
    let last = events
        .iter()
        .rev()
        .find(|e| e["event"] == "backfill_progress")
        .unwrap_or_else(|| panic!("no progress: {}", r.stderr));
    assert_eq!(last["rows"], 5000, "{last}");
    assert_eq!(last["percent"], 100.0, "{last}");
    assert!(last["ranges"].as_u64().unwrap() > 1, "{last}");
    // the protocol lines are not the log
    assert!(!r.stderr.contains("\"line\":\"done "), "{}", r.stderr);
    // the audit row names the worker and its exit
    let notes =
        s.db.strings("SELECT coalesce(note, '') FROM alembic_version_audit");
    assert!(
        notes.iter().any(|n| n.contains("002_worker.py: exit 0")),
        "{notes:?}"
    );
    s.run("migrate-down", &["001"]).ok();
    assert_eq!(state(&s.db.url), (0, 0, None));
}

/// A number in 0..n from the standard library's random hasher keys.
fn random_below(n: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(n);
    h.finish() % n.max(1)
}

#[test]
fn killed_at_random_moments_retort_or_its_worker_every_row_is_changed_exactly_once() {
    let s = scenario();
    populated(&s, 1000);
    worker(&s, 10, INCREMENT);
    let mut inside = 0;
    for round in 0..10 {
        let r = s.spawn("migrate-up", &SLOW);
        let started = r.try_wait_for("worker ready for", Duration::from_secs(30));
        if started {
            std::thread::sleep(Duration::from_millis(random_below(400)));
        }
        // even rounds kill retort (its worker finishes its range and sees its stdin end),
        // odd rounds kill the worker
        let killed_worker = round % 2 == 1 && started;
        if killed_worker {
            let pid = std::fs::read_to_string(s.path("worker.pid")).unwrap();
            let _ = std::process::Command::new("kill")
                .args(["-KILL", pid.trim()])
                .status();
        } else {
            r.signal("KILL");
        }
        let (code, err, _) = r.finish();
        if code == 0 {
            break; // it finished first
        }
        if killed_worker {
            assert_eq!(code, 4, "{err}");
            // sh -c reports its child's SIGKILL as exit code 137
            assert!(
                err.contains("the backfill worker of revision 002")
                    && err.contains("before it answered 'done'"),
                "{err}"
            );
        } else {
            assert_eq!(code, -1, "killed: {err}");
        }
        let (done, other, next) = state(&s.db.url);
        assert_eq!(other, 0, "a row changed twice (round {round}): {err}");
        if let Some(next) = next {
            inside += 1;
            assert_eq!(done, next - 1, "round {round}: {err}");
        }
    }
    assert!(inside > 0, "no kill landed inside the backfill");
    let r = s.run("migrate-up", &[]).ok();
    assert_eq!(state(&s.db.url), (1000, 0, None), "{}", r.stderr);
    assert_eq!(s.db.version_rows(), ["002"]);
}

#[test]
fn a_failing_worker_stops_with_its_message_at_its_checkpoint_and_a_rerun_resumes() {
    let mut s = scenario();
    s.env.push(("FAIL_AT_2500".into(), "1".into()));
    populated(&s, 5000);
    worker(&s, 100, INCREMENT);
    let r = s.run("migrate-up", &[]).code(4);
    assert!(
        r.stderr
            .contains("migrations/002_x.sql:7: the backfill worker of revision 002 ('"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("ValueError: no embedding for chunk 2500"),
        "{}",
        r.stderr
    );
    // the traceback is its log, with the revision's prefix
    assert!(r.stderr.contains("[002 stderr] Traceback"), "{}", r.stderr);
    let (done, other, next) = state(&s.db.url);
    let next = next.unwrap_or_else(|| panic!("no checkpoint: {}", r.stderr));
    assert!(next > 1 && next <= 2500, "{next}");
    assert_eq!((done, other), (next - 1, 0));
    assert!(
        r.stderr
            .contains(&format!("backfill 002 stopped at t.id = {next}")),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(&format!("failed in the range [{next}, ")),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(
            "state: the database is at 001 (0 steps of this run committed); 002 (a backfill) is not recorded; \
             its committed ranges stay, and the next migrate-up continues from its checkpoint"
        ),
        "{}",
        r.stderr
    );
    assert_eq!(s.db.version_rows(), ["001"]);
    let cur = s.run("migrate-current", &[]).ok();
    assert!(
        cur.stdout.contains(&format!(
            "002: backfill in progress: t.id done up to {next}"
        )),
        "{}",
        cur.stdout
    );
    // fixed: the next run continues from the checkpoint
    s.write("fixed", "");
    let again = s.run("migrate-up", &[]).ok();
    assert!(
        again
            .stderr
            .contains(&format!("continues from the checkpoint at {next}")),
        "{}",
        again.stderr
    );
    assert_eq!(state(&s.db.url), (5000, 0, None));
    assert_eq!(s.db.version_rows(), ["002"]);
}

#[test]
fn ctrl_c_lets_the_range_in_flight_commit_then_stops_and_says_where() {
    let s = scenario();
    populated(&s, 3000);
    worker(&s, 20, INCREMENT);
    let r = s.spawn("migrate-up", &SLOW);
    r.wait_for("worker ready for", Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(700));
    r.signal("INT");
    let (code, err, _) = r.finish();
    assert_eq!(code, 130, "{err}");
    let (done, other, next) = state(&s.db.url);
    let next = next.unwrap_or_else(|| panic!("no checkpoint: {err}"));
    assert_eq!((done, other), (next - 1, 0), "{err}");
    assert!(
        err.contains(&format!("backfill 002 stopped at t.id = {next}")),
        "{err}"
    );
    // the worker was not signalled: it saw its stdin end and exited 0
    assert!(!err.contains("KeyboardInterrupt"), "{err}");
    let notes =
        s.db.strings("SELECT coalesce(note, '') FROM alembic_version_audit");
    assert!(
        notes.iter().any(|n| n.contains("002_worker.py: exit 0")),
        "{notes:?}"
    );
    s.run("migrate-up", &[]).ok();
    assert_eq!(state(&s.db.url), (3000, 0, None));
}

#[test]
fn a_worker_that_skips_the_checkpoint_is_at_least_once_and_retort_says_so() {
    let s = scenario();
    populated(&s, 2000);
    // its own autocommit writes, no checkpoint statement: the protocol by hand
    worker(
        &s,
        500,
        r#"
import os, sys, psycopg2
conn = psycopg2.connect(os.environ["DATABASE_URL"])
conn.autocommit = True
for line in sys.stdin:
    _, a, b, _checkpoint = line.rstrip("\n").split(" ", 3)
    with conn.cursor() as cur:
        cur.execute("UPDATE t SET n = 1 WHERE id >= %s AND id < %s", (int(a), int(b)))
        print(f"done {a} {b} {cur.rowcount}", flush=True)
"#,
    );
    let r = s.run("migrate-up", &[]).ok();
    assert!(
        r.stderr
            .contains("it did not run the checkpoint statement in its transaction"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("at least once"), "{}", r.stderr);
    assert_eq!(state(&s.db.url), (2000, 0, None));
    assert_eq!(s.db.version_rows(), ["002"]);
}

#[test]
fn sql_refuses_a_worker_backfill_and_a_protocol_error_is_named() {
    let s = scenario();
    populated(&s, 100);
    worker(
        &s,
        10,
        "import sys\nfor line in sys.stdin:\n    print('done 5 6', flush=True)\n",
    );
    let r = s.run("migrate-up", &["--sql"]).code(2);
    assert!(
        r.stderr
            .contains("002 (migrations/002_x.sql:4): backfill of t.id"),
        "{}",
        r.stderr
    );
    let r = s.run("migrate-up", &[]).code(4);
    assert!(
        r.stderr.contains(
            "answered 'done 5 6' to the range [1, 11): 'done' must name the range in flight"
        ),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("backfill 002 committed no range: nothing of it was applied"),
        "{}",
        r.stderr
    );
    assert_eq!(
        s.db.strings("SELECT count(*)::text FROM alembic_version_backfill"),
        ["0"],
        "the checkpoint row of a run that committed nothing is removed"
    );
    assert_eq!(state(&s.db.url), (0, 0, None));
}
