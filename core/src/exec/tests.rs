//! The run loop's state machine, through an executor that records what it is sent and fails
//! where it is told to. No server: what is checked here is the loop's own bookkeeping — which
//! steps count as committed, which heads the database is at, whether the failed step was
//! rolled back — for every transaction mode.

use super::*;
use crate::config::VersionTableName;
use crate::db::VersionTable;
use crate::error::{Error, ErrorKind};
use crate::graph::Target;
use crate::interrupt;
use crate::project::Project;
use crate::script::parse_script;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Records every statement; fails the first statement containing `fail_on`; the first
/// `lock_timeouts` statements containing `lock_on` time out waiting for a lock (55P03).
struct Recorder {
    sent: Vec<String>,
    fail_on: Option<&'static str>,
    prepared: usize,
    lock_on: Option<&'static str>,
    lock_timeouts: usize,
    /// SIGTERM comes while the statement containing this runs: it is cancelled (57014), or,
    /// for a version-table write (`V`), it completes and the signal is seen after it.
    interrupt_on: Option<&'static str>,
    /// The exit code of every program step's program (sent as `RUN <command>`).
    program_exit: i32,
}

impl Recorder {
    fn failing_on(needle: &'static str) -> Self {
        Recorder {
            sent: Vec::new(),
            fail_on: Some(needle),
            prepared: 0,
            lock_on: None,
            lock_timeouts: 0,
            interrupt_on: None,
            program_exit: 0,
        }
    }
    fn ok() -> Self {
        Recorder {
            sent: Vec::new(),
            fail_on: None,
            prepared: 0,
            lock_on: None,
            lock_timeouts: 0,
            interrupt_on: None,
            program_exit: 0,
        }
    }
    fn lock_timeouts(needle: &'static str, times: usize) -> Self {
        Recorder {
            lock_on: Some(needle),
            lock_timeouts: times,
            ..Recorder::ok()
        }
    }
    /// What was sent, with bookkeeping shortened to `V` (a version-table write).
    fn shape(&self) -> Vec<String> {
        self.sent
            .iter()
            .map(|s| {
                if s.contains("alembic_version") {
                    "V".to_string()
                } else {
                    s.clone()
                }
            })
            .collect()
    }
}

impl Executor for Recorder {
    fn execute(&mut self, sql: &str) -> std::result::Result<(), SqlFailure> {
        self.sent.push(sql.trim().to_string());
        if let Some(n) = self.interrupt_on.filter(|n| sql.contains(n)) {
            self.interrupt_on = None;
            interrupt::request_on_this_thread(interrupt::SIGTERM);
            if n != "alembic_version" {
                return Err(SqlFailure {
                    sqlstate: "57014".into(),
                    message: "canceling statement due to user request".into(),
                    detail: None,
                    hint: None,
                    position: None,
                });
            }
        }
        if matches!(self.lock_on, Some(n) if sql.contains(n)) && self.lock_timeouts > 0 {
            self.lock_timeouts -= 1;
            return Err(SqlFailure {
                sqlstate: "55P03".into(),
                message: "canceling statement due to lock timeout".into(),
                detail: None,
                hint: None,
                position: None,
            });
        }
        match self.fail_on {
            Some(n) if sql.contains(n) => Err(SqlFailure {
                sqlstate: "42P01".into(),
                message: format!("failed on purpose: {n}"),
                detail: None,
                hint: None,
                position: None,
            }),
            _ => Ok(()),
        }
    }
    fn prepare(&mut self, _books: &Bookkeeping) -> Result<()> {
        self.prepared += 1;
        Ok(())
    }
    fn run_program(
        &mut self,
        call: &ProgramCall,
        _observer: &mut dyn Observer,
    ) -> Result<Option<program::Outcome>> {
        self.sent.push(format!("RUN {}", call.command));
        Ok(Some(program::Outcome {
            ended: program::Ended::Exited(self.program_exit),
            forwarded: None,
            duration: Duration::ZERO,
        }))
    }
}

/// A chain a → b → c → d; `outside` names the non-transactional scripts.
fn project(outside: &[&str]) -> Project {
    let mut scripts = Vec::new();
    let mut parent = String::new();
    for rev in ["a", "b", "c", "d"] {
        let mut text = format!("-- revision: {rev}\n");
        if !parent.is_empty() {
            text.push_str(&format!("-- down_revision: {parent}\n"));
        }
        if outside.contains(&rev) {
            text.push_str("-- transactional: false\n");
        }
        text.push_str(&format!(
            "-- migrate:up\nCREATE TABLE t_{rev} (id int);\n-- migrate:down\nDROP TABLE t_{rev};\n"
        ));
        let path = PathBuf::from(format!("migrations/{rev}.sql"));
        scripts.push(parse_script(&path, text.as_bytes()).unwrap());
        parent = rev.to_string();
    }
    Project::from_scripts(Path::new("migrations"), scripts).unwrap()
}

fn table() -> VersionTable {
    VersionTable::new(VersionTableName::default())
}

fn run(exec: &mut Recorder, project: &Project, per_migration: bool) -> RunResult {
    let opts = RunOptions {
        transaction_per_migration: per_migration,
        ..RunOptions::default()
    };
    run_with(exec, project, &opts, &mut QuietObserver)
}

fn run_with(
    exec: &mut Recorder,
    project: &Project,
    opts: &RunOptions,
    observer: &mut dyn Observer,
) -> RunResult {
    let plan = project.graph.upgrade_plan(&[], &Target::Heads).unwrap();
    let t = table();
    let books = Bookkeeping {
        table: &t,
        records: None,
    };
    run_plan(exec, project, books, &plan, opts, observer)
}

fn batch(n: usize) -> RunOptions {
    RunOptions {
        batch: std::num::NonZeroUsize::new(n),
        ..RunOptions::default()
    }
}

/// Runs with lock retries (no waiting between them) and records the retries announced.
fn run_retrying(
    exec: &mut Recorder,
    project: &Project,
    per_migration: bool,
    retries: u32,
) -> (RunResult, Vec<Retry>) {
    struct Retries(Vec<Retry>);
    impl Observer for Retries {
        fn retrying(&mut self, r: &Retry) {
            self.0.push(r.clone());
        }
    }
    let plan = project.graph.upgrade_plan(&[], &Target::Heads).unwrap();
    let t = table();
    let books = Bookkeeping {
        table: &t,
        records: None,
    };
    let opts = RunOptions {
        transaction_per_migration: per_migration,
        ddl_lock_timeout: Some(Duration::from_secs(5)),
        ddl_retries: retries,
        retry_wait: Duration::ZERO,
        ..RunOptions::default()
    };
    let mut seen = Retries(Vec::new());
    let r = run_plan(exec, project, books, &plan, &opts, &mut seen);
    (r, seen.0)
}

fn revs(report: &RunReport) -> Vec<&str> {
    report.steps.iter().map(|s| s.revision.as_str()).collect()
}

#[test]
fn a_whole_run_is_one_transaction_and_a_failure_keeps_nothing() {
    let p = project(&[]);
    let mut ok = Recorder::ok();
    let report = run(&mut ok, &p, false).unwrap();
    assert_eq!(revs(&report), ["a", "b", "c", "d"]);
    assert_eq!(report.end_heads, ["d"]);
    assert_eq!(ok.prepared, 1);
    assert_eq!(ok.shape().first().map(String::as_str), Some("BEGIN"));
    assert_eq!(ok.shape().iter().filter(|s| *s == "COMMIT").count(), 1);

    let mut ex = Recorder::failing_on("t_c");
    let e = run(&mut ex, &p, false).unwrap_err();
    assert!(e.report.steps.is_empty());
    assert!(e.report.end_heads.is_empty());
    let st = e.state.clone().unwrap();
    assert!(st.rolled_back && st.nothing_applied);
    assert_eq!(st.failed_step.as_deref(), Some("c"));
    assert_eq!(ex.sent.last().map(String::as_str), Some("ROLLBACK"));
    assert!(!ex.sent.iter().any(|s| s == "COMMIT"));
    assert!(
        Error::from(e)
            .message
            .contains("state: nothing was applied"),
        "the printed error says so"
    );
}

#[test]
fn per_migration_a_failure_at_step_3_leaves_steps_1_and_2_committed() {
    let p = project(&[]);
    let mut ex = Recorder::failing_on("t_c");
    let e = run(&mut ex, &p, true).unwrap_err();
    assert_eq!(revs(&e.report), ["a", "b"]);
    assert_eq!(e.report.end_heads, ["b"]);
    let st = e.state.clone().unwrap();
    assert!(st.rolled_back && !st.nothing_applied);
    assert_eq!(ex.sent.iter().filter(|s| *s == "COMMIT").count(), 2);
    assert!(ex.sent.contains(&"ROLLBACK".to_string()));
    let printed = Error::from(e).message;
    assert!(
        printed.contains(
            "the database is at b (2 steps of this run committed); the failed step was rolled back"
        ),
        "{printed}"
    );
}

#[test]
fn a_batch_of_two_commits_after_every_second_step() {
    struct Batches(Vec<(usize, usize, Vec<String>)>);
    impl Observer for Batches {
        fn batch_committed(&mut self, b: BatchAt, heads: &[String]) {
            self.0.push((b.number, b.of, heads.to_vec()));
        }
    }
    let p = project(&[]);
    let mut ok = Recorder::ok();
    let mut seen = Batches(Vec::new());
    let report = run_with(&mut ok, &p, &batch(2), &mut seen).unwrap();
    assert_eq!(revs(&report), ["a", "b", "c", "d"]);
    assert_eq!(
        ok.shape(),
        [
            "BEGIN",
            "CREATE TABLE t_a (id int)",
            "V",
            "CREATE TABLE t_b (id int)",
            "V",
            "COMMIT",
            "BEGIN",
            "CREATE TABLE t_c (id int)",
            "V",
            "CREATE TABLE t_d (id int)",
            "V",
            "COMMIT"
        ]
    );
    assert_eq!(
        ok.prepared, 1,
        "the version table is made once, in the first batch"
    );
    // after each batch the database is at its last step
    assert_eq!(
        seen.0,
        [(1, 2, vec!["b".to_string()]), (2, 2, vec!["d".to_string()])]
    );
}

#[test]
fn a_failure_in_a_later_batch_keeps_the_batches_before_it_and_says_where_it_stopped() {
    let p = project(&[]);
    let mut ex = Recorder::failing_on("t_d");
    let e = run_with(&mut ex, &p, &batch(2), &mut QuietObserver).unwrap_err();
    assert_eq!(revs(&e.report), ["a", "b"]);
    assert_eq!(e.report.end_heads, ["b"]);
    let st = e.state.clone().unwrap();
    assert!(st.rolled_back && !st.nothing_applied);
    assert_eq!(st.failed_step.as_deref(), Some("d"));
    assert_eq!(st.batch, Some(BatchAt { number: 2, of: 2 }));
    assert_eq!(ex.sent.iter().filter(|s| *s == "COMMIT").count(), 1);
    assert_eq!(ex.sent.last().map(String::as_str), Some("ROLLBACK"));
    let printed = Error::from(e).message;
    assert!(
        printed.contains("migration failed: upgrade d at migrations/d.sql"),
        "{printed}"
    );
    assert!(
        printed.contains(
            "state: the database is at b, the end of batch 1 of 2 (2 steps of this run committed); batch 2, with the failed step, was rolled back"
        ),
        "{printed}"
    );

    // a failure in the first batch: nothing stays
    let mut ex = Recorder::failing_on("t_b");
    let e = run_with(&mut ex, &p, &batch(2), &mut QuietObserver).unwrap_err();
    assert!(e.report.steps.is_empty());
    let printed = Error::from(e).message;
    assert!(
        printed.contains("nothing was applied: the database is as it was before the run, at base (no revision applied) (batch 1 of 2 was rolled back)"),
        "{printed}"
    );

    // without --batch the state says nothing of batches
    let mut ex = Recorder::failing_on("t_d");
    let e = run(&mut ex, &p, true).unwrap_err();
    assert_eq!(e.state.unwrap().batch, None);
}

#[test]
fn a_batch_as_large_as_the_run_is_the_run_in_one_transaction() {
    let p = project(&[]);
    let mut one = Recorder::ok();
    run(&mut one, &p, false).unwrap();
    let mut batched = Recorder::ok();
    run_with(&mut batched, &p, &batch(4), &mut QuietObserver).unwrap();
    assert_eq!(one.sent, batched.sent);
}

#[test]
fn a_non_transactional_step_commits_what_came_before_and_stands_alone() {
    let p = project(&["c"]);
    let mut ok = Recorder::ok();
    run(&mut ok, &p, false).unwrap();
    assert_eq!(
        ok.shape(),
        [
            "BEGIN",
            "CREATE TABLE t_a (id int)",
            "V",
            "CREATE TABLE t_b (id int)",
            "V",
            "COMMIT",
            // outside any transaction, then its version-table write in one of its own
            "CREATE TABLE t_c (id int)",
            "BEGIN",
            "V",
            "COMMIT",
            "BEGIN",
            "CREATE TABLE t_d (id int)",
            "V",
            "COMMIT"
        ]
    );

    // it fails: a and b were committed before it; nothing to roll back
    let mut ex = Recorder::failing_on("t_c");
    let e = run(&mut ex, &p, false).unwrap_err();
    assert_eq!(revs(&e.report), ["a", "b"]);
    let st = e.state.clone().unwrap();
    assert!(!st.rolled_back && !st.nothing_applied);
    assert!(!ex.sent.contains(&"ROLLBACK".to_string()));
    assert!(Error::from(e)
        .message
        .contains("the failed step ran outside a transaction"));

    // the step after it fails: c stays (committed on its own), d is rolled back
    let mut ex = Recorder::failing_on("t_d");
    let e = run(&mut ex, &p, false).unwrap_err();
    assert_eq!(revs(&e.report), ["a", "b", "c"]);
    assert_eq!(e.report.end_heads, ["c"]);
    assert!(e.state.unwrap().rolled_back);
}

#[test]
fn a_failed_commit_counts_nothing_of_its_transaction() {
    let p = project(&[]);
    let mut ex = Recorder::failing_on("COMMIT");
    let e = run(&mut ex, &p, false).unwrap_err();
    assert!(e.report.steps.is_empty());
    assert!(e.error.message.starts_with("COMMIT failed"));
    assert_eq!(e.state.unwrap().failed_step, None);
}

#[test]
fn a_missing_down_section_is_refused_before_anything_is_sent() {
    let mut scripts = Vec::new();
    for (rev, parent) in [("a", ""), ("b", "a")] {
        let mut text = format!("-- revision: {rev}\n");
        if !parent.is_empty() {
            text.push_str(&format!("-- down_revision: {parent}\n"));
        }
        text.push_str(&format!("-- migrate:up\nCREATE TABLE t_{rev} (id int);\n"));
        if rev == "a" {
            text.push_str("-- migrate:down\nDROP TABLE t_a;\n");
        }
        let path = PathBuf::from(format!("migrations/{rev}.sql"));
        scripts.push(parse_script(&path, text.as_bytes()).unwrap());
    }
    let p = Project::from_scripts(Path::new("migrations"), scripts).unwrap();
    let plan = p
        .graph
        .downgrade_plan(&["b".to_string()], &Target::Base)
        .unwrap();
    let t = table();
    let mut ex = Recorder::ok();
    let books = Bookkeeping {
        table: &t,
        records: None,
    };
    let e = run_plan(
        &mut ex,
        &p,
        books,
        &plan,
        &RunOptions::default(),
        &mut QuietObserver,
    )
    .unwrap_err();
    assert!(e.state.is_none(), "nothing ran");
    assert!(e.error.message.contains("migrations/b.sql"), "{}", e.error);
    assert!(ex.sent.is_empty());
}

#[test]
fn in_one_transaction_a_lock_timeout_retries_every_step_of_the_run_so_far() {
    let p = project(&[]);
    let mut ex = Recorder::lock_timeouts("t_c", 2);
    let (r, retries) = run_retrying(&mut ex, &p, false, 3);
    let report = r.unwrap();
    assert_eq!(revs(&report), ["a", "b", "c", "d"]);
    assert_eq!(retries.len(), 2);
    assert_eq!(retries[0].revision, "c");
    assert_eq!(retries[0].repeats, "steps a, b, c (one transaction)");
    // the whole transaction went each time: a ran three times, committed once
    let a_runs = ex.sent.iter().filter(|s| s.contains("t_a")).count();
    assert_eq!(a_runs, 3);
    assert_eq!(ex.sent.iter().filter(|s| *s == "ROLLBACK").count(), 2);
    assert_eq!(ex.sent.iter().filter(|s| *s == "COMMIT").count(), 1);
    // the lock timeout is set once per transaction, first thing after BEGIN (and prepare)
    assert_eq!(
        ex.sent
            .iter()
            .filter(|s| *s == "SET LOCAL lock_timeout = '5s';")
            .count(),
        3
    );
}

#[test]
fn per_migration_a_retry_repeats_only_the_blocked_step() {
    let p = project(&[]);
    let mut ex = Recorder::lock_timeouts("t_c", 1);
    let (r, retries) = run_retrying(&mut ex, &p, true, 3);
    assert_eq!(revs(&r.unwrap()), ["a", "b", "c", "d"]);
    assert_eq!(retries.len(), 1);
    assert_eq!(retries[0].repeats, "step c");
    assert_eq!(ex.sent.iter().filter(|s| s.contains("t_a")).count(), 1);
}

#[test]
fn after_the_last_retry_the_error_says_so_and_keeps_what_was_committed() {
    let p = project(&[]);
    let mut ex = Recorder::lock_timeouts("t_c", 100);
    let (r, retries) = run_retrying(&mut ex, &p, true, 2);
    let e = r.unwrap_err();
    assert_eq!(retries.len(), 2);
    assert_eq!(revs(&e.report), ["a", "b"]);
    assert!(
        e.error.message.contains("lock timeout on 3 attempts"),
        "{}",
        e.error
    );
    assert!(e
        .error
        .hint
        .as_deref()
        .unwrap()
        .contains("--ddl-lock-timeout"));
    assert!(e.state.unwrap().rolled_back);
}

#[test]
fn a_non_transactional_step_retries_the_statement_that_timed_out() {
    let p = project(&["c"]);
    let mut ex = Recorder::lock_timeouts("t_c", 1);
    let (r, retries) = run_retrying(&mut ex, &p, false, 3);
    r.unwrap();
    assert_eq!(retries.len(), 1);
    assert_eq!(retries[0].repeats, "the statement at migrations/c.sql:5");
    // outside a transaction the timeout is a session setting, reset after the script
    let i = ex
        .sent
        .iter()
        .position(|s| s == "SET lock_timeout = '5s';")
        .unwrap();
    assert_eq!(ex.sent[i + 1], "CREATE TABLE t_c (id int)");
    assert_eq!(ex.sent[i + 3], "RESET lock_timeout;");
}

#[test]
fn a_scripts_own_settings_apply_to_it_alone() {
    let mut scripts = Vec::new();
    for (rev, parent, header) in [
        (
            "a",
            "",
            "-- set: maintenance_work_mem=2GB\n-- lock_timeout: 0\n",
        ),
        ("b", "a", ""),
    ] {
        let mut text = format!("-- revision: {rev}\n{header}");
        if !parent.is_empty() {
            text.push_str(&format!("-- down_revision: {parent}\n"));
        }
        text.push_str(&format!("-- migrate:up\nCREATE TABLE t_{rev} (id int);\n"));
        let path = PathBuf::from(format!("migrations/{rev}.sql"));
        scripts.push(parse_script(&path, text.as_bytes()).unwrap());
    }
    let p = Project::from_scripts(Path::new("migrations"), scripts).unwrap();
    let mut ex = Recorder::ok();
    let (r, _) = run_retrying(&mut ex, &p, false, 0);
    r.unwrap();
    let shape = ex.shape();
    let a = shape
        .iter()
        .position(|s| s == "CREATE TABLE t_a (id int)")
        .unwrap();
    assert_eq!(
        shape[a - 1],
        "SET LOCAL lock_timeout = '0';\nSET LOCAL maintenance_work_mem = '2GB';"
    );
    let b = shape
        .iter()
        .position(|s| s == "CREATE TABLE t_b (id int)")
        .unwrap();
    assert_eq!(
        shape[b - 1],
        "SET LOCAL maintenance_work_mem TO DEFAULT;\nSET LOCAL lock_timeout = '5s';"
    );
}

/// Runs with SIGTERM coming at `needle`, then clears it for the thread.
fn run_interrupted(
    needle: &'static str,
    outside: &[&str],
    per_migration: bool,
) -> (Recorder, Box<RunError>) {
    let p = project(outside);
    let mut ex = Recorder {
        interrupt_on: Some(needle),
        ..Recorder::ok()
    };
    let r = run(&mut ex, &p, per_migration);
    interrupt::request_on_this_thread(0);
    (ex, r.unwrap_err())
}

#[test]
fn an_interrupt_in_one_transaction_cancels_the_statement_and_keeps_nothing() {
    let (ex, e) = run_interrupted("t_c", &[], false);
    assert_eq!(e.error.kind, ErrorKind::Interrupted);
    assert_eq!(e.error.exit_code(), 143);
    assert!(
        e.error.message.starts_with(
            "interrupted by SIGTERM during c: the running statement was cancelled on the server"
        ),
        "{}",
        e.error
    );
    let st = e.state.clone().unwrap();
    assert!(st.rolled_back && st.nothing_applied);
    assert_eq!(ex.sent.last().map(String::as_str), Some("ROLLBACK"));
    assert!(
        !ex.sent.iter().any(|s| s.contains("t_d")),
        "nothing after the cancel"
    );
}

#[test]
fn an_interrupt_per_migration_keeps_the_steps_before_and_rolls_back_its_own() {
    let (ex, e) = run_interrupted("t_c", &[], true);
    assert_eq!(revs(&e.report), ["a", "b"]);
    assert_eq!(e.state.unwrap().failed_step.as_deref(), Some("c"));
    assert!(!ex.sent.iter().any(|s| s.contains("t_d")));
}

#[test]
fn a_signal_after_a_steps_last_statement_stops_before_its_commit() {
    // the version-table write of a completes; the signal is seen before COMMIT
    let (ex, e) = run_interrupted("alembic_version", &[], true);
    assert!(e.report.steps.is_empty(), "a was not committed");
    assert!(e.state.unwrap().nothing_applied);
    assert!(!ex.sent.iter().any(|s| s == "COMMIT"));
    assert!(
        e.error
            .message
            .starts_with("interrupted by SIGTERM during a"),
        "{}",
        e.error
    );
}

#[test]
fn an_interrupted_non_transactional_step_says_what_stayed() {
    let (_, e) = run_interrupted("t_c", &["c"], false);
    assert_eq!(revs(&e.report), ["a", "b"]);
    let st = e.state.unwrap();
    assert!(!st.rolled_back && !st.nothing_applied);
    assert_eq!(e.error.kind, ErrorKind::Interrupted);
}

#[test]
fn a_signal_while_a_non_transactional_step_finishes_records_the_step_then_stops() {
    // a runs outside a transaction; the signal comes as its version-table write completes:
    // its statements stay, so it is recorded (committed), and the run stops before b
    let (ex, e) = run_interrupted("alembic_version", &["a"], true);
    assert_eq!(revs(&e.report), ["a"]);
    assert_eq!(e.report.end_heads, ["a"]);
    assert_eq!(e.error.kind, ErrorKind::Interrupted);
    assert!(
        e.error
            .message
            .starts_with("interrupted by SIGTERM between steps"),
        "{}",
        e.error
    );
    let st = e.state.clone().unwrap();
    assert_eq!(st.failed_step, None);
    assert!(!st.rolled_back && !st.nothing_applied);
    assert!(
        st.describe(&e.report).ends_with("no step was in flight"),
        "{}",
        st.describe(&e.report)
    );
    assert_eq!(
        ex.shape()[..4],
        ["CREATE TABLE t_a (id int)", "BEGIN", "V", "COMMIT"]
    );
    assert!(!ex.sent.iter().any(|s| s.contains("t_b")));
}

#[test]
fn a_non_transactional_step_whose_version_write_fails_says_its_statements_stayed() {
    let p = project(&["c"]);
    let mut ex = Recorder::failing_on("'c'");
    let e = run(&mut ex, &p, false).unwrap_err();
    // c's statement ran, then its version-table write failed and was rolled back
    let n = ex.sent.len();
    assert_eq!(
        ex.shape()[n - 4..],
        ["CREATE TABLE t_c (id int)", "BEGIN", "V", "ROLLBACK"]
    );
    let st = e.state.clone().unwrap();
    assert!(!st.rolled_back && !st.nothing_applied, "{st:?}");
    assert_eq!(revs(&e.report), ["a", "b"]);
    let msg = Error::from(e).message;
    assert!(
        msg.contains("note: migrations/c.sql is not transactional: all its statements ran and stayed, but c is not recorded in the version table"),
        "{msg}"
    );
    assert!(
        msg.contains("the failed step ran outside a transaction"),
        "{msg}"
    );
}

#[test]
fn a_run_error_converts_with_its_notes_before_the_state_and_names_its_source() {
    let error = Error::new(ErrorKind::Migration, "migration failed").with_note("it stayed");
    let r = RunError {
        error: error.clone(),
        report: RunReport::default(),
        state: Some(FailureState {
            failed_step: Some("a".into()),
            rolled_back: false,
            nothing_applied: true,
            batch: None,
            created_tables: Vec::new(),
            program_step: false,
            backfill_step: false,
        }),
    };
    let source = std::error::Error::source(&r).map(|s| s.to_string());
    assert_eq!(source, Some(error.to_string()));
    let e = Error::from(r);
    assert!(e.notes().is_empty());
    assert!(
        e.message
            .starts_with("migration failed\nnote: it stayed\nstate: nothing was applied"),
        "{}",
        e.message
    );
}

/// a → b → c, b's up section a program.
fn project_with_program() -> Project {
    let texts = [
        "-- revision: a\n-- migrate:up\nCREATE TABLE t_a (id int);\n-- migrate:down\nDROP TABLE t_a;\n",
        "-- revision: b\n-- down_revision: a\n-- migrate:up\n-- run: ./b.sh\n-- migrate:down\n",
        "-- revision: c\n-- down_revision: b\n-- migrate:up\nCREATE TABLE t_c (id int);\n-- migrate:down\nDROP TABLE t_c;\n",
    ];
    let scripts = texts
        .iter()
        .zip(["a", "b", "c"])
        .map(|(t, rev)| {
            parse_script(
                &PathBuf::from(format!("migrations/{rev}.sql")),
                t.as_bytes(),
            )
            .unwrap()
        })
        .collect();
    Project::from_scripts(Path::new("migrations"), scripts).unwrap()
}

#[test]
fn a_program_step_runs_after_a_commit_and_is_recorded_in_its_own_transaction() {
    let p = project_with_program();
    let mut exec = Recorder::ok();
    let r = run(&mut exec, &p, false).unwrap();
    assert_eq!(r.end_heads, ["c"]);
    assert_eq!(r.programs.len(), 1);
    assert_eq!(r.programs[0].note(), "b up: ./b.sh: exit 0");
    let shape = exec.shape();
    let at = |x: &str| shape.iter().position(|s| s == x).unwrap();
    let program = at("RUN ./b.sh");
    // a's transaction committed before the program; b's record in a transaction after it
    assert_eq!(
        &shape[..program],
        ["BEGIN", "CREATE TABLE t_a (id int)", "V", "COMMIT"]
    );
    assert_eq!(&shape[program + 1..program + 4], ["BEGIN", "V", "COMMIT"]);
    assert!(shape[program..].contains(&"CREATE TABLE t_c (id int)".to_string()));
}

#[test]
fn a_failing_program_leaves_its_revision_unrecorded_and_the_steps_before_committed() {
    let p = project_with_program();
    let mut exec = Recorder {
        program_exit: 3,
        ..Recorder::ok()
    };
    let e = run(&mut exec, &p, false).unwrap_err();
    assert_eq!(e.error.kind, ErrorKind::Migration);
    assert!(
        e.error
            .message
            .contains("the program of revision b (upgrade) exited with code 3"),
        "{}",
        e.error.message
    );
    assert_eq!(e.report.end_heads, ["a"]);
    assert_eq!(e.report.programs[0].exit_code, Some(3));
    let st = e.state.clone().unwrap();
    assert!(st.program_step && !st.rolled_back && !st.nothing_applied);
    assert_eq!(st.failed_step.as_deref(), Some("b"));
    let shape = exec.shape();
    assert_eq!(
        shape.last().map(String::as_str),
        Some("RUN ./b.sh"),
        "{shape:?}"
    );
    assert!(Error::from(*e)
        .message
        .contains("state: the database is at a (1 step of this run committed); b (a program step) is not recorded"));
}
