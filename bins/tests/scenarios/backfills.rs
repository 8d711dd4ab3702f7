//! Backfill steps (`-- backfill: <table>.<key>`): the statement runs range by range, each range
//! committed with its checkpoint, on populated tables. Stopped by SIGINT or killed at random
//! moments, the next run continues and every row is changed exactly once; a paused replica
//! makes it wait; a row lock makes a range retry; `--sql` refuses, `--dry-run` tells the range;
//! migrate-current and migrate-history show a backfill in progress.

use crate::common::*;
use std::process::Command;
use std::time::{Duration, Instant};

/// `t(id int primary key, n int)` with `rows` rows, n = 0, as revision 001.
fn populated(s: &Scenario, rows: usize) {
    s.revision(
        "001",
        "",
        &format!("CREATE TABLE t (id int PRIMARY KEY, n int NOT NULL DEFAULT 0);\nINSERT INTO t (id) SELECT g FROM generate_series(1, {rows}) g;"),
        "DROP TABLE t;",
    );
}

/// Revision 002: `SET n = n + 1` over the key range (not idempotent: a range applied twice
/// shows as n = 2).
fn increment(s: &Scenario, batch: usize) {
    s.revision_with(
        "002",
        "001",
        &format!("-- backfill: t.id batch={batch}"),
        "UPDATE t SET n = n + 1 WHERE id >= :start AND id < :end;",
        "UPDATE t SET n = 0;",
    );
}

/// n's values and how many rows have each: `["1:5000"]` when every row was changed once.
fn counts(url: &str) -> Vec<String> {
    connect(url)
        .query(
            "SELECT n::text || ':' || count(*)::text FROM t GROUP BY n ORDER BY n",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// The checkpoint's next key, if there is one.
fn next_key(url: &str) -> Option<i64> {
    let mut c = connect(url);
    let exists: bool = c
        .query_one(
            "SELECT to_regclass('alembic_version_backfill') IS NOT NULL",
            &[],
        )
        .unwrap()
        .get(0);
    if !exists {
        return None;
    }
    c.query_opt(
        "SELECT next_key FROM alembic_version_backfill WHERE revision = '002'",
        &[],
    )
    .unwrap()
    .map(|r| r.get(0))
}

/// A run slow enough to stop in the middle: one-key ranges (the width follows a 1 ms target)
/// and a pause between them.
const SLOW: [&str; 4] = ["--backfill-batch-time", "1ms", "--backfill-pause", "20ms"];

#[test]
fn a_backfill_changes_every_row_once_range_by_range_and_records_the_revision() {
    let s = Scenario::new();
    populated(&s, 5000);
    increment(&s, 100);
    let r = s.run("migrate-up", &["--format", "json"]).ok();
    assert_eq!(counts(&s.db.url), ["1:5000"]);
    assert_eq!(s.db.version_rows(), ["002"]);
    assert_eq!(
        next_key(&s.db.url),
        None,
        "the last range deletes the checkpoint"
    );
    // the JSON events: started, progress with rows and rate, and the step's end
    let events: Vec<serde_json::Value> = r
        .stderr
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    assert!(kinds.contains(&"backfill_started"), "{}", r.stderr);
    let last = events
        .iter()
        .rev()
        .find(|e| e["event"] == "backfill_progress")
        .unwrap_or_else(|| panic!("no progress event: {}", r.stderr));
    assert_eq!(last["rows"], 5000, "{last}");
    assert_eq!(last["percent"], 100.0, "{last}");
    assert!(last["ranges"].as_u64().unwrap() > 1, "{last}");
    assert!(last["rows_per_second"].as_f64().unwrap() > 0.0, "{last}");
    // the applied record has the checksum of the script with its header
    let recorded =
        s.db.strings("SELECT revision FROM alembic_version_applied ORDER BY 1");
    assert_eq!(recorded, ["001", "002"]);
    // and down runs the ordinary down section
    s.run("migrate-down", &["001"]).ok();
    assert_eq!(counts(&s.db.url), ["0:5000"]);
}

#[test]
fn sigint_stops_after_a_committed_range_the_state_is_shown_and_the_next_run_continues() {
    let s = Scenario::new();
    populated(&s, 3000);
    increment(&s, 20);
    s.run("migrate-up", &["001"]).ok();
    let r = s.spawn("migrate-up", &SLOW);
    r.wait_for("backfill of t.id over", Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(600));
    r.signal("INT");
    let (code, err, _) = r.finish();
    assert_eq!(code, 130, "{err}");
    let next = next_key(&s.db.url).unwrap_or_else(|| panic!("no checkpoint: {err}"));
    assert!(next > 1 && next < 3001, "{next}");
    assert!(
        err.contains(&format!("backfill 002 stopped at t.id = {next}")),
        "{err}"
    );
    assert!(
        err.contains("the next migrate-up continues from there"),
        "{err}"
    );
    // exactly the rows below the checkpoint are done
    let done: i64 =
        s.db.client()
            .query_one("SELECT count(*) FROM t WHERE n = 1", &[])
            .unwrap()
            .get(0);
    assert_eq!(done, next - 1);
    assert_eq!(counts(&s.db.url).len(), 2, "only 0 and 1");
    assert_eq!(
        s.db.version_rows(),
        ["001"],
        "not recorded before its last range"
    );
    // migrate-current and migrate-history -i show it
    let cur = s.run("migrate-current", &[]).ok();
    assert!(
        cur.stdout.contains(&format!(
            "002: backfill in progress: t.id done up to {next} of [1, 3001)"
        )),
        "{}",
        cur.stdout
    );
    assert!(
        cur.stdout.contains(&format!("{} rows in", done)),
        "{}",
        cur.stdout
    );
    let hist = s.run("migrate-history", &["-i"]).ok();
    assert!(
        hist.stdout.contains("002: backfill in progress"),
        "{}",
        hist.stdout
    );
    let js = s.run("migrate-current", &["--format", "json"]).ok();
    let doc: serde_json::Value = serde_json::from_str(&js.stdout).unwrap();
    assert_eq!(doc["backfills"][0]["rows"], done, "{doc}");
    // the next run continues from the checkpoint and finishes
    let again = s.run("migrate-up", &[]).ok();
    assert!(
        again
            .stderr
            .contains(&format!("continues from the checkpoint at {next}")),
        "{}",
        again.stderr
    );
    assert_eq!(counts(&s.db.url), ["1:3000"]);
    assert_eq!(s.db.version_rows(), ["002"]);
    let cur = s.run("migrate-current", &[]).ok();
    assert!(!cur.stdout.contains("backfill"), "{}", cur.stdout);
}

/// A number in 0..n from the standard library's random hasher keys.
fn random_below(n: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(n);
    h.finish() % n.max(1)
}

#[test]
fn killed_at_random_moments_twenty_times_every_row_is_changed_exactly_once() {
    let s = Scenario::new();
    populated(&s, 1000);
    increment(&s, 10);
    s.run("migrate-up", &["001"]).ok();
    let mut stopped_inside = 0;
    for _ in 0..20 {
        let r = s.spawn(
            "migrate-up",
            &["--backfill-batch-time", "1ms", "--backfill-pause", "20ms"],
        );
        // on a loaded machine the start (connect, lint) can take longer than the kill's delay:
        // the delay counts from the backfill's first line, so most kills land inside it
        if r.try_wait_for(": backfill of t.id", Duration::from_secs(20)) {
            std::thread::sleep(Duration::from_millis(random_below(300)));
        }
        r.signal("KILL");
        let (code, err, _) = r.finish();
        if code == 0 {
            break; // it finished before the kill
        }
        assert_eq!(code, -1, "killed: {err}");
        if next_key(&s.db.url).is_some() {
            stopped_inside += 1;
        }
        // no row twice: values are 0 and 1 only, and the 1s are exactly below the checkpoint
        let c = counts(&s.db.url);
        assert!(
            c.iter().all(|v| v.starts_with("0:") || v.starts_with("1:")),
            "{c:?}"
        );
        if let Some(next) = next_key(&s.db.url) {
            let done: i64 =
                s.db.client()
                    .query_one("SELECT count(*) FROM t WHERE n = 1", &[])
                    .unwrap()
                    .get(0);
            assert_eq!(done, next - 1, "{c:?}");
        }
    }
    assert!(stopped_inside > 0, "no kill landed inside the backfill");
    s.run("migrate-up", &[]).ok();
    assert_eq!(counts(&s.db.url), ["1:1000"]);
    assert_eq!(s.db.version_rows(), ["002"]);
}

#[test]
fn a_row_lock_makes_a_range_wait_and_retry_then_it_goes_on() {
    let s = Scenario::new();
    populated(&s, 2000);
    increment(&s, 500);
    s.run("migrate-up", &["001"]).ok();
    let mut holder = s.db.client();
    holder
        .batch_execute("BEGIN; UPDATE t SET n = n WHERE id = 10")
        .unwrap();
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        holder.batch_execute("COMMIT").unwrap();
    });
    let r = s
        .run(
            "migrate-up",
            &["--ddl-lock-timeout", "200ms", "--ddl-retries", "5"],
        )
        .ok();
    release.join().unwrap();
    assert!(r.stderr.contains("lock timeout"), "{}", r.stderr);
    assert!(r.stderr.contains("retry 1 of 5"), "{}", r.stderr);
    assert!(
        r.stderr.contains("the range [1, 501) of the backfill"),
        "{}",
        r.stderr
    );
    assert_eq!(counts(&s.db.url), ["1:2000"]);
    assert_eq!(s.db.version_rows(), ["002"]);
}

#[test]
fn sql_refuses_a_backfill_and_dry_run_tells_its_range_and_ranges() {
    let s = Scenario::new();
    populated(&s, 4000);
    increment(&s, 1000);
    let r = s.run("migrate-up", &["--sql"]).code(2);
    assert!(
        r.stderr.contains("--sql cannot write 1 backfill step"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("002 (migrations/002_x.sql:4): backfill of t.id"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("--sql up to 001"), "{}", r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    // up to before the backfill, --sql still works
    s.run("migrate-up", &["--sql", "001"]).ok();
    // before 001 runs, the table does not exist yet
    let r = s.run("migrate-up", &["--dry-run"]).ok();
    assert!(
        r.stdout.contains("backfill 002: t does not exist yet"),
        "{}",
        r.stdout
    );
    s.run("migrate-up", &["001"]).ok();
    s.db.execute("ANALYZE t");
    let r = s.run("migrate-up", &["--dry-run"]).ok();
    assert!(
        r.stdout.contains("backfill 002: t.id over [1, 4001); about 4,000 rows in the table (planner estimate); 4 ranges of 1000 keys"),
        "{}",
        r.stdout
    );
    assert_eq!(counts(&s.db.url), ["0:4000"], "a dry run changes nothing");
}

#[test]
fn a_key_without_a_unique_index_or_of_another_type_is_refused_before_any_write() {
    let s = Scenario::new();
    s.revision(
        "001",
        "",
        "CREATE TABLE t (id int, name text UNIQUE, n int NOT NULL DEFAULT 0);\nINSERT INTO t (id, name) SELECT g, 'x' || g FROM generate_series(1, 1000) g;",
        "DROP TABLE t;",
    );
    increment(&s, 100);
    s.run("migrate-up", &["001"]).ok();
    let r = s.run("migrate-up", &[]).code(4);
    assert!(
        r.stderr
            .contains("migrations/002_x.sql:4: backfill t.id: t has no unique index on id alone"),
        "{}",
        r.stderr
    );
    assert!(
        !s.db.table_exists("alembic_version_backfill"),
        "nothing written"
    );
    assert!(
        r.stderr.contains(
            "state: nothing was applied: the database is as it was before the run, at 001"
        ),
        "{}",
        r.stderr
    );
    s.revision_with(
        "002",
        "001",
        "-- backfill: t.name",
        "UPDATE t SET n = n + 1 WHERE name >= :start AND name < :end;",
        "SELECT 1;",
    );
    let r = s.run("migrate-up", &[]).code(4);
    assert!(r.stderr.contains("the key is of type text"), "{}", r.stderr);
    assert_eq!(counts(&s.db.url), ["0:1000"]);
    assert_eq!(s.db.version_rows(), ["001"]);
}

/// A streaming replica of `primary` (pg_basebackup -R), started; stopped when dropped.
struct Standby {
    dir: tempfile::TempDir,
    port: u16,
    bin: std::path::PathBuf,
}

impl Standby {
    fn of(primary: &TempServer) -> Standby {
        let dir = tempfile::tempdir().unwrap();
        if is_root() {
            assert!(Command::new("chown")
                .arg("postgres")
                .arg(dir.path())
                .status()
                .unwrap()
                .success());
        }
        let data = dir.path().join("data");
        let o = as_server_owner(
            &primary.bin().join("pg_basebackup"),
            &[
                "-h",
                "localhost",
                "-p",
                &primary.port.to_string(),
                "-U",
                "postgres",
                "-D",
                data.to_str().unwrap(),
                "-R",
                "-X",
                "stream",
            ],
        );
        assert!(
            o.status.success(),
            "pg_basebackup: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let port = free_port();
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=localhost -c hot_standby=on -c cluster_name=standby1 -c wal_receiver_status_interval=1s",
            dir.path().display()
        );
        let log = dir.path().join("standby.log");
        let o = as_server_owner(
            &primary.bin().join("pg_ctl"),
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-t",
                "60",
                "-o",
                &opts,
                "start",
            ],
        );
        assert!(
            o.status.success(),
            "standby start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        Standby {
            dir,
            port,
            bin: primary.bin().to_path_buf(),
        }
    }

    fn url(&self) -> String {
        format!("postgresql://postgres@localhost:{}/postgres", self.port)
    }
}

impl Drop for Standby {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = as_server_owner(
            &self.bin.join("pg_ctl"),
            &[
                "-D",
                data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }
}

#[test]
fn a_paused_replica_holds_the_backfill_until_its_replay_resumes() {
    let primary = TempServer::init();
    primary.start(&[]);
    let standby = Standby::of(&primary);
    let url = primary.url("localhost", "");
    let s = Scenario::new();
    populated(&s, 2000);
    increment(&s, 10);
    let run = |args: &[&str]| {
        let mut c = s.command("migrate-up", args);
        c.env("DATABASE_URL", &url);
        c
    };
    let o = Run::from(run(&["001"]).output().unwrap()).ok();
    drop(o);
    // the replica is streaming
    let t0 = Instant::now();
    while connect(&url)
        .query("SELECT 1 FROM pg_stat_replication WHERE application_name = 'standby1' AND state = 'streaming'", &[])
        .unwrap()
        .is_empty()
    {
        assert!(t0.elapsed() < Duration::from_secs(20), "the standby does not stream");
        std::thread::sleep(Duration::from_millis(50));
    }
    let r = Running::start(run(&[
        "--backfill-batch-time",
        "1ms",
        "--backfill-pause",
        "50ms",
        "--max-replica-lag",
        "1s",
    ]));
    r.wait_for("backfill of t.id over", Duration::from_secs(20));
    connect(&standby.url())
        .batch_execute("SELECT pg_wal_replay_pause()")
        .unwrap();
    r.wait_for(
        "backfill paused: replica lag above --max-replica-lag",
        Duration::from_secs(20),
    );
    r.wait_for("standby1 (127.0.0.1)", Duration::from_secs(1));
    let held = next_key(&url);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(next_key(&url), held, "no range while the replica lags");
    connect(&standby.url())
        .batch_execute("SELECT pg_wal_replay_resume()")
        .unwrap();
    r.wait_for("backfill resumed after", Duration::from_secs(20));
    let t0 = Instant::now();
    while next_key(&url) == held {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "no range after the resume"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // stop it and let a run without pacing finish
    r.signal("INT");
    let (code, err, _) = r.finish();
    assert_eq!(code, 130, "{err}");
    Run::from(run(&[]).output().unwrap()).ok();
    assert_eq!(counts(&url), ["1:2000"]);
    // the replica has it all too
    let t0 = Instant::now();
    while counts(&standby.url()) != ["1:2000"] {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "{:?}",
            counts(&standby.url())
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_lint_points_a_whole_table_update_of_a_populated_table_to_a_backfill() {
    let s = Scenario::new();
    populated(&s, 100_000);
    s.revision("002", "001", "UPDATE t SET n = 1;", "UPDATE t SET n = 0;");
    s.run("migrate-up", &["001"]).ok();
    let r = s.run("migrate-check", &["--lint"]);
    assert!(r.all().contains("unbatched-update"), "{}", r.all());
    assert!(r.all().contains("which holds 100,000 rows"), "{}", r.all());
    assert!(r.all().contains("-- backfill: t.id"), "{}", r.all());
    // a warning: the run goes on
    s.run("migrate-up", &[]).ok();
    assert_eq!(counts(&s.db.url), ["1:100000"]);
    // the same change as a backfill step is not a finding
    let b = Scenario::new();
    populated(&b, 100_000);
    increment(&b, 10_000);
    b.run("migrate-up", &["001"]).ok();
    let r = b.run("migrate-check", &["--lint"]);
    assert!(!r.all().contains("unbatched-update"), "{}", r.all());
}

#[test]
fn a_fleet_runs_each_targets_backfill_with_its_own_checkpoint() {
    let s = Scenario::new();
    let other = TestDb::new();
    populated(&s, 3000);
    increment(&s, 100);
    s.write(
        "targets.txt",
        &format!("one={}\ntwo={}\n", s.db.url, other.url),
    );
    // the second target is half-way: a checkpoint of an interrupted run
    let r = Run::from(
        s.command("migrate-up", &["001"])
            .env("DATABASE_URL", &other.url)
            .output()
            .unwrap(),
    )
    .ok();
    drop(r);
    let mut slow = s.command("migrate-up", &SLOW);
    slow.env("DATABASE_URL", &other.url);
    let half = Running::start(slow);
    half.wait_for("backfill of t.id over", Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(300));
    half.signal("INT");
    assert_eq!(half.finish().0, 130);
    let stopped_at = next_key(&other.url).expect("a checkpoint");
    let r = s.run("migrate-up", &["--targets", "targets.txt"]).ok();
    assert!(
        r.all()
            .contains(&format!("continues from the checkpoint at {stopped_at}")),
        "{}",
        r.all()
    );
    for url in [&s.db.url, &other.url] {
        assert_eq!(counts(url), ["1:3000"], "{}", r.all());
        assert_eq!(next_key(url), None);
    }
    assert_eq!(other.version_rows(), ["002"]);
    assert_eq!(s.db.version_rows(), ["002"]);
}

#[test]
fn ctrl_c_stops_a_fleets_backfills_and_each_target_says_where_it_stopped() {
    let s = Scenario::new();
    let other = TestDb::new();
    populated(&s, 3000);
    increment(&s, 20);
    s.write(
        "targets.txt",
        &format!("one={}\ntwo={}\n", s.db.url, other.url),
    );
    s.run("migrate-up", &["--targets", "targets.txt", "001"])
        .ok();
    let mut args = vec!["--targets", "targets.txt"];
    args.extend(SLOW);
    let r = s.spawn("migrate-up", &args);
    r.wait_for("two: 002: backfill of t.id over", Duration::from_secs(30));
    r.wait_for("one: 002: backfill of t.id over", Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(500));
    r.signal("INT");
    let (code, err, waited) = r.finish();
    assert_ne!(code, 0, "{err}");
    assert!(waited < Duration::from_secs(20), "{waited:?}: {err}");
    // each target's line names it and where its backfill stopped; the rows below are done
    for (name, url) in [("one", &s.db.url), ("two", &other.url)] {
        let next = next_key(url).unwrap_or_else(|| panic!("{name}: no checkpoint: {err}"));
        assert!(
            err.contains(&format!(
                "{name}: interrupted by SIGINT during 002; backfill 002 stopped at t.id = {next} ("
            )),
            "{err}"
        );
        let done: i64 = connect(url)
            .query_one("SELECT count(*) FROM t WHERE n = 1", &[])
            .unwrap()
            .get(0);
        assert_eq!(done, next - 1, "{name}");
    }
    s.run("migrate-up", &["--targets", "targets.txt"]).ok();
    for url in [&s.db.url, &other.url] {
        assert_eq!(counts(url), ["1:3000"]);
    }
}
