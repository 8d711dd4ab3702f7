//! Scenarios from the fault-and-bad-input harness: a server that accepts and never answers,
//! contradicting flags, bytes PostgreSQL cannot store, and SQLSTATEs whose cause is a setting or
//! a leftover rather than the script.
use crate::common::*;
use std::net::TcpListener;
use std::time::{Duration, Instant};

/// A TCP listener on loopback that accepts every connection and never says a word (a half-dead
/// pooler, a firewall that blackholes after the handshake). Lives as long as the process.
fn silent_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in l.incoming().flatten() {
            held.push(c);
        }
    });
    port
}

/// Every connecting binary, with arguments that make it connect.
const CONNECTING: &[(&str, &[&str])] = &[
    ("migrate-up", &[]),
    ("migrate-down", &[]),
    ("migrate-current", &[]),
    ("migrate-check", &[]),
    ("migrate-stamp", &["head"]),
    ("migrate-history", &["-i"]),
];

fn timed(s: &Scenario, bin: &str, args: &[&str], env: &[(&str, &str)]) -> (Run, Duration) {
    let t0 = Instant::now();
    let r = s.run_env(bin, args, env);
    (r, t0.elapsed())
}

#[test]
fn a_server_that_never_answers_times_out_in_every_binary() {
    let s = Scenario::with_example();
    let port = silent_server();
    let in_url = format!("postgresql://app:pw@127.0.0.1:{port}/db?connect_timeout=1");
    let plain = format!("postgresql://app:pw@127.0.0.1:{port}/db");
    std::thread::scope(|scope| {
        let mut jobs = Vec::new();
        for (bin, args) in CONNECTING {
            let (s, in_url, plain) = (&s, &in_url, &plain);
            // the URL's connect_timeout, and PGCONNECT_TIMEOUT when the URL says nothing
            jobs.push(scope.spawn(move || timed(s, bin, args, &[("DATABASE_URL", in_url)])));
            jobs.push(scope.spawn(move || {
                timed(
                    s,
                    bin,
                    args,
                    &[("DATABASE_URL", plain), ("PGCONNECT_TIMEOUT", "1")],
                )
            }));
        }
        for j in jobs {
            let (r, took) = j.join().unwrap();
            let r = r.code(3);
            assert!(
                r.stderr.contains("timed out after 1 s")
                    && r.stderr.contains(&format!("127.0.0.1:{port}")),
                "{}",
                r.stderr
            );
            assert!(took < Duration::from_secs(5), "took {took:?}: {}", r.stderr);
        }
    });
}

#[test]
fn wait_bounds_the_whole_connection_and_the_default_timeout_is_10_s() {
    let s = Scenario::with_example();
    let port = silent_server();
    let url = format!("postgresql://app:pw@127.0.0.1:{port}/db?connect_timeout=30");
    let plain = format!("postgresql://app:pw@127.0.0.1:{port}/db");
    let (s, url, plain) = (&s, &url, &plain);
    std::thread::scope(|scope| {
        let waited = scope
            .spawn(move || timed(s, "migrate-up", &["--wait", "2s"], &[("DATABASE_URL", url)]));
        let default =
            scope.spawn(move || timed(s, "migrate-current", &[], &[("DATABASE_URL", plain)]));
        let (r, took) = waited.join().unwrap();
        let r = r.code(3);
        assert!(
            r.stderr.contains("gave up after waiting 2 s"),
            "{}",
            r.stderr
        );
        assert!(took < Duration::from_secs(5), "--wait 2s took {took:?}");
        let (r, took) = default.join().unwrap();
        let r = r.code(3);
        assert!(r.stderr.contains("timed out after 10 s"), "{}", r.stderr);
        assert!(
            took >= Duration::from_secs(10) && took < Duration::from_secs(14),
            "default took {took:?}"
        );
    });
}

#[test]
fn flags_that_contradict_each_other_are_a_usage_error_naming_both() {
    let s = Scenario::with_example();
    let pairs: &[(&str, &[&str], &str, &str)] = &[
        ("migrate-up", &["--sql", "--dry-run"], "--sql", "--dry-run"),
        (
            "migrate-up",
            &["--sql", "--backup-dir", "b"],
            "--sql",
            "--backup-dir",
        ),
        (
            "migrate-up",
            &["--dry-run", "--backup-dir", "b"],
            "--dry-run",
            "--backup-dir",
        ),
        ("migrate-up", &["-q", "-v"], "--quiet", "--debug"),
        (
            "migrate-down",
            &["--sql", "004:003", "--dry-run"],
            "--sql",
            "--dry-run",
        ),
        (
            "migrate-down",
            &["--dry-run", "--yes"],
            "--dry-run",
            "--yes",
        ),
        (
            "migrate-stamp",
            &["head", "--rehash", "--purge"],
            "--rehash",
            "--purge",
        ),
        (
            "migrate-stamp",
            &["head", "--sql", "--dry-run"],
            "--sql",
            "--dry-run",
        ),
    ];
    for (bin, args, a, b) in pairs {
        let r = s.run(bin, args).code(2);
        assert!(
            r.stderr.contains(a)
                && r.stderr.contains(b)
                && r.stderr.contains("cannot be used with"),
            "{bin} {args:?}: {}",
            r.stderr
        );
    }
    // nothing was touched
    assert_eq!(s.db.version_rows(), Vec::<String>::new());
    // flags that a binary ignores are not offered at all
    for bin in [
        "migrate-history",
        "migrate-revision",
        "migrate-current",
        "migrate-check",
    ] {
        let r = s.run(bin, &["--lock-timeout", "1s"]).code(2);
        assert!(
            r.stderr.contains("unexpected argument '--lock-timeout'"),
            "{bin}: {}",
            r.stderr
        );
    }
}
