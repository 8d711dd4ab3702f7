//! Replicas that wait for the schema: `migrate-check --wait-for-heads` returns as soon as
//! another process's migration commits, reports the state when the time runs out, and stops
//! at once on a database ahead of the scripts.

use crate::common::*;
use std::time::{Duration, Instant};

#[test]
fn the_wait_returns_promptly_once_another_process_migrates() {
    let s = Scenario::with_example();
    let waiting = s.spawn("migrate-check", &["--wait-for-heads", "2m"]);
    waiting.wait_for(
        "waiting for the database to reach the heads (004): at base (empty), 4 revisions pending",
        Duration::from_secs(60),
    );
    // the deploy's job migrates, in another process
    s.run("migrate-up", &[]).ok();
    let migrated = Instant::now();
    let (code, stderr, _) = waiting.finish();
    let after = migrated.elapsed();
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("the database is at the heads (004) after"),
        "{stderr}"
    );
    // it polls every half second: well under the two minutes it was allowed
    assert!(
        after < Duration::from_secs(10),
        "returned {after:?} after the migration"
    );
}

#[test]
fn when_the_time_runs_out_it_exits_1_with_the_state() {
    let s = Scenario::with_example();
    s.run("migrate-up", &["002"]).ok();
    let t0 = Instant::now();
    let r = s
        .run("migrate-check", &["--wait-for-heads", "1500ms"])
        .code(1);
    let took = t0.elapsed();
    assert!(
        r.stdout
            .contains("problem [pending]: the database is still not at the heads after waiting 1."),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("2 revisions pending (003, 004)"),
        "{}",
        r.stdout
    );
    assert!(took >= Duration::from_millis(1500), "{took:?}");
    assert!(took < Duration::from_secs(15), "{took:?}");
    // the same as a JSON document
    let r = s
        .run(
            "migrate-check",
            &["--wait-for-heads", "500ms", "--format", "json"],
        )
        .code(1);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["current"], serde_json::json!(["002"]));
    assert_eq!(doc["pending"], serde_json::json!(["003", "004"]));
    assert_eq!(doc["problems"][0]["code"], "pending");
    // at the heads already: 0 at the first poll
    s.run("migrate-up", &[]).ok();
    let r = s.run("migrate-check", &["--wait-for-heads", "30s"]).ok();
    assert!(r.stdout.starts_with("OK: 1 head (004)"), "{}", r.stdout);
}

#[test]
fn a_database_ahead_of_the_scripts_ends_the_wait_at_once() {
    let s = Scenario::with_example();
    s.run("migrate-up", &[]).ok();
    // a newer image migrated to 005; this replica's scripts stop at 004
    s.db.execute("UPDATE alembic_version SET version_num = '005'");
    let t0 = Instant::now();
    let r = s.run("migrate-check", &["--wait-for-heads", "5m"]).code(1);
    assert!(t0.elapsed() < Duration::from_secs(30), "{:?}", t0.elapsed());
    assert!(
        r.stdout
            .contains("problem [unknown_revision]: Can't locate revision identified by '005'")
            && r.stdout.contains("waiting cannot change"),
        "{}",
        r.stdout
    );
}

#[test]
fn an_unreachable_server_is_exit_3_after_the_wait_and_flags_that_contradict_are_usage() {
    let s = Scenario::with_example();
    let url = format!("postgresql://postgres@127.0.0.1:{}/postgres", free_port());
    let r = s
        .run_env(
            "migrate-check",
            &["--wait-for-heads", "1s"],
            &[("DATABASE_URL", url.as_str())],
        )
        .code(3);
    assert!(r.stderr.contains("gave up after waiting"), "{}", r.stderr);
    let r = s
        .run("migrate-check", &["--wait-for-heads", "1s", "--offline"])
        .code(2);
    assert!(r.stderr.contains("--offline"), "{}", r.stderr);
}

/// The migration lock's key for the default version table (held by the test to show who
/// takes it).
const MIGRATION_LOCK: &str =
    "SELECT pg_advisory_lock(1920234100, hashtext(current_database() || ':' || 'alembic_version'))";

/// `n` concurrent `migrate-up args` processes: each one's exit code and stderr.
fn at_once(s: &Scenario, n: usize, args: &[&str]) -> Vec<(i32, String)> {
    let children: Vec<_> = (0..n)
        .map(|_| {
            s.command("migrate-up", args)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            (
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        })
        .collect()
}

#[test]
fn replicas_starting_with_nothing_pending_take_no_lock_and_those_with_something_pending_wait_for_one(
) {
    let s = Scenario::new();
    s.revision(
        "a",
        "",
        "CREATE TABLE ledger (rev text PRIMARY KEY);\nINSERT INTO ledger VALUES ('a');",
        "DROP TABLE ledger;",
    );
    s.run("migrate-up", &[]).ok();
    let audit = s.db.audit();
    assert_eq!(audit, ["up true a"]);

    // Every replica of the app starts while someone holds the migration lock (a long
    // migration of another database user, an engineer): with nothing pending they never
    // ask for it, so none waits, none times out, none writes an audit row.
    let mut holder = s.db.client();
    holder.batch_execute(MIGRATION_LOCK).unwrap();
    for (code, stderr) in at_once(&s, 10, &["--lock-timeout", "2s"]) {
        assert_eq!(code, 0, "{stderr}");
        assert!(
            stderr.contains("nothing to do: the database is at a"),
            "{stderr}"
        );
        assert!(
            !stderr.contains("waiting for the migration lock"),
            "{stderr}"
        );
    }
    assert_eq!(s.db.audit(), audit, "no audit row for a look");

    // the look only ever concludes "nothing to do": an edited applied script is still refused
    let script = s.migrations().join("a_x.sql");
    let text = std::fs::read_to_string(&script).unwrap();
    std::fs::write(&script, text.replace("VALUES ('a')", "VALUES ('A')")).unwrap();
    let r = s.run("migrate-up", &["--lock-timeout", "2s"]);
    assert_ne!(r.code, 0, "{}", r.all());
    assert!(!r.all().contains("nothing to do"), "{}", r.all());
    std::fs::write(&script, text).unwrap();

    // something pending: the lock is needed; while the holder keeps it, every replica waits
    s.revision(
        "b",
        "a",
        "CREATE TABLE t_b (id int);\nINSERT INTO ledger VALUES ('b');",
        "DROP TABLE t_b;",
    );
    let r = s.run("migrate-up", &["--lock-timeout", "1s"]);
    assert_eq!(
        r.code,
        5,
        "a pending revision waits for the lock: {}",
        r.all()
    );
    drop(holder);
    // six replicas at once: exactly one applies b, the others wait for it, find nothing to
    // do, and exit 0
    for (code, stderr) in at_once(&s, 6, &[]) {
        assert_eq!(code, 0, "{stderr}");
    }
    assert_eq!(
        s.db.strings("SELECT rev FROM ledger ORDER BY rev"),
        ["a", "b"]
    );
    assert_eq!(s.db.version_rows(), ["b"]);
    let applied: Vec<String> =
        s.db.audit()
            .into_iter()
            .filter(|a| a.ends_with(" b"))
            .collect();
    assert_eq!(applied, ["up true b"], "b applied once");
}
