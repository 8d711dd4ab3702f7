//! Secrets: a database URL that cannot be parsed is never echoed. Every binary, given a
//! malformed URL with a password in it (in the user info or as a `password=` parameter, plain or
//! percent-encoded), from `--database-url`, `DATABASE_URL`, a `.env` file or `--shadow-url`, in
//! text and JSON output, with `-v` and with `RUST_LOG=debug`, says what is wrong and where, and
//! prints neither the password nor any distinctive piece of it.
//!
//! The binaries fail before connecting, so the whole matrix (about 1,400 runs) takes seconds; it
//! runs on a few threads.

use crate::common::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// A malformed URL, the secrets it holds, and a word the error must contain (what is wrong).
struct Case {
    url: &'static str,
    /// The password as the server would see it, and as written in the URL when that differs.
    secrets: &'static [&'static str],
    /// The error names the problem: this appears in it (case-insensitive).
    says: &'static str,
}

const CASES: &[Case] = &[
    // the reports that started this: unencoded / ? # : in the password
    Case {
        url: "postgresql+asyncpg://app:Pa55#word@127.0.0.1:5432/db",
        secrets: &["Pa55#word"],
        says: "port",
    },
    Case {
        url: "postgresql://app:p@ss:w/rd@127.0.0.1/db",
        secrets: &["p@ss:w/rd"],
        says: "port",
    },
    Case {
        url: "postgresql://app@127.0.0.1:54x32/db?password=Sup3r-S3cret!pw",
        secrets: &["Sup3r-S3cret!pw"],
        says: "port",
    },
    Case {
        url: "postgresql://app@127.0.0.1:54x32/db?password=Sup3r%2DS3cret%21pw",
        secrets: &["Sup3r-S3cret!pw", "Sup3r%2DS3cret%21pw"],
        says: "port",
    },
    Case {
        url: "postgresql://svc_k8r:Zq7/xK9mW@127.0.0.1:1/rag",
        secrets: &["Zq7/xK9mW"],
        says: "port",
    },
    Case {
        url: "postgresql://svc_k8r:Zq7?xK9mW@127.0.0.1:1/rag",
        secrets: &["Zq7?xK9mW"],
        says: "port",
    },
    Case {
        url: "postgres://svc_k8r:Zq7#xK9mW@127.0.0.1:1/rag",
        secrets: &["Zq7#xK9mW"],
        says: "port",
    },
    Case {
        url: "postgresql://svc_k8r:Sl4sh/Qu3st?H4sh#@127.0.0.1:1/rag",
        secrets: &["Sl4sh/Qu3st?H4sh#"],
        says: "port",
    },
    Case {
        url: "postgresql://svc_k8r:At@S1gn@Pw@127.0.0.1:xx/rag",
        secrets: &["At@S1gn@Pw"],
        says: "port",
    },
    Case {
        url: "postgresql://svc_k8r:C0l0n:C0l0n:@127.0.0.1:x1/rag",
        secrets: &["C0l0n:C0l0n:"],
        says: "port",
    },
    // no host at all: what follows the colon is the password, not a port
    Case {
        url: "postgresql://svc_k8r:N0At5ignPw/rag",
        secrets: &["N0At5ignPw"],
        says: "port",
    },
    Case {
        url: "postgresql://svc_k8r:Tr0ub4dor&3@127.0.0.1:99999/rag",
        secrets: &["Tr0ub4dor&3"],
        says: "port",
    },
    Case {
        url: "postgresql://svc_k8r:Tw0P0rts!@127.0.0.1:1:5432/rag",
        secrets: &["Tw0P0rts!"],
        says: "port",
    },
    // percent-encoded passwords
    Case {
        url: "postgresql://svc_k8r:P%40ss%2Fw0rd%3F@127.0.0.1:port/rag",
        secrets: &["P@ss/w0rd?", "P%40ss%2Fw0rd%3F"],
        says: "port",
    },
    // IPv6 brackets
    Case {
        url: "postgresql://svc_k8r:Br4ck3tPw@[::1:5432/rag",
        secrets: &["Br4ck3tPw"],
        says: "IPv6",
    },
    Case {
        url: "PostgreSQL+AsyncPG://svc_k8r:Up4Case!Pw@[::1/rag",
        secrets: &["Up4Case!Pw"],
        says: "IPv6",
    },
    Case {
        url: "postgresql://svc_k8r:B4dV6Addr@[fe80::zz]:5432/rag",
        secrets: &["B4dV6Addr"],
        says: "IPv6",
    },
    // schemes
    Case {
        url: "mysql://svc_k8r:My5qlPa55@127.0.0.1:1/rag",
        secrets: &["My5qlPa55"],
        says: "scheme",
    },
    Case {
        url: "postgresq://svc_k8r:Typ0Sch3me@127.0.0.1:1/rag",
        secrets: &["Typ0Sch3me"],
        says: "scheme",
    },
    Case {
        url: "svc_k8r:N0Sch3meHere@127.0.0.1:1/rag",
        secrets: &["N0Sch3meHere"],
        says: "scheme",
    },
    Case {
        url: "postgresql:/svc_k8r:0neSl4shPw@127.0.0.1:1/rag",
        secrets: &["0neSl4shPw"],
        says: "scheme",
    },
    Case {
        url: "svc_k8r:C0l0nSch3me://127.0.0.1:1/rag",
        secrets: &["C0l0nSch3me"],
        says: "scheme",
    },
    // bad percent-encoding
    Case {
        url: "postgresql://svc_k8r:B4d%zzEnc@127.0.0.1:1/rag",
        secrets: &["B4d%zzEnc"],
        says: "percent",
    },
    Case {
        url: "postgresql://svc_k8r:Trunc4ted%2@127.0.0.1:1/rag",
        secrets: &["Trunc4ted%2"],
        says: "percent",
    },
    Case {
        url: "postgresql://svc_k8r:N0tUtf8%FF%FEPw@127.0.0.1:1/rag",
        secrets: &["N0tUtf8%FF%FEPw"],
        says: "UTF-8",
    },
    Case {
        url: "postgresql://svc_k8r@127.0.0.1:1/rag?sslmode=disable&password=Qu3ry%zzPw",
        secrets: &["Qu3ry%zzPw"],
        says: "percent",
    },
    // a password parameter and something else wrong
    Case {
        url: "postgresql://svc_k8r@127.0.0.1:5x/rag?password=Qu3ryP4ss&sslmode=disable",
        secrets: &["Qu3ryP4ss"],
        says: "port",
    },
    Case {
        url: "postgresql://svc_k8r@127.0.0.1:1/rag?sslmode=disable&password=Amp3rs4nd!&port=70000",
        secrets: &["Amp3rs4nd!"],
        says: "port",
    },
    Case {
        url: "postgresql://svc_k8r@127.0.0.1:1/rag?connect_timeout=soon&password=T1meout!Pw",
        secrets: &["T1meout!Pw"],
        says: "connect_timeout",
    },
    Case {
        url: "postgresql://svc_k8r@127.0.0.1:1/rag?sslmode=disable&password=Fr4gm3nt#Pw",
        secrets: &["Fr4gm3nt#Pw"],
        says: "fragment",
    },
    Case {
        url: "postgresql://svc_k8r@127.0.0.1:1/rag?sslmode=disable&password=Amp&S3cr3tTail",
        secrets: &["Amp&S3cr3tTail"],
        says: "has no '='",
    },
    Case {
        url: "postgresql://svc_k8r@127.0.0.1:1/rag?password=Sp%41ced%20Pw%23x&sslmode=bogus",
        secrets: &["SpAced Pw#x", "Sp%41ced%20Pw%23x"],
        says: "sslmode",
    },
];

/// Each binary with arguments that make it parse the URL, and whether it has `--format json`.
const BINARIES: &[(&str, &[&str], bool)] = &[
    ("migrate-up", &[], true),
    ("migrate-down", &[], true),
    ("migrate-current", &[], true),
    ("migrate-history", &["--indicate-current"], true),
    (
        "migrate-revision",
        &["-m", "secrets", "--autogenerate", "--dry-run"],
        false,
    ),
    ("migrate-check", &[], true),
    ("migrate-stamp", &["head"], false),
];

/// A well-formed URL for the runs that put the malformed one in `--shadow-url`: it is parsed
/// and never connected to.
const GOOD_URL: &str = "postgresql://svc_k8r@127.0.0.1:1/rag";

/// Percent-encodes everything but unreserved characters (the form a careful user writes).
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// What must never be printed for a case: each secret, its percent-encoding, and every piece of
/// either at least 4 characters long that is distinctive (not just lower-case letters, which
/// plain words in messages such as "password" are made of).
fn forbidden(case: &Case) -> Vec<String> {
    let mut out = Vec::new();
    for s in case.secrets {
        for form in [s.to_string(), percent_encode(s)] {
            let chars: Vec<char> = form.chars().collect();
            for len in 4..=chars.len() {
                for w in chars.windows(len) {
                    let piece: String = w.iter().collect();
                    if piece.chars().any(|c| !c.is_ascii_lowercase()) && !out.contains(&piece) {
                        out.push(piece);
                    }
                }
            }
        }
    }
    out
}

/// One run of the matrix.
struct Job {
    case: usize,
    bin: &'static str,
    args: Vec<String>,
    env: Vec<(String, String)>,
    how: String,
}

/// Where a run takes the URL from: arguments and environment.
struct Source {
    name: &'static str,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

fn jobs(s: &Scenario) -> Vec<Job> {
    let mut jobs = Vec::new();
    for (i, case) in CASES.iter().enumerate() {
        let env_file = format!("case{i}.env");
        s.write(&env_file, &format!("DATABASE_URL='{}'\n", case.url));
        for &(bin, bin_args, has_json) in BINARIES {
            let sources = [
                Source {
                    name: "--database-url",
                    args: vec!["--database-url".into(), case.url.into()],
                    env: vec![],
                },
                Source {
                    name: "DATABASE_URL",
                    args: vec![],
                    env: vec![("DATABASE_URL".into(), case.url.into())],
                },
                Source {
                    name: "--env-file",
                    args: vec!["--env-file".into(), env_file.clone()],
                    env: vec![],
                },
            ];
            for source in &sources {
                // text with -v; JSON (where there is one) with RUST_LOG=debug and -vv
                for (mode, extra, log) in [
                    ("text -v", vec!["-v"], None),
                    (
                        if has_json {
                            "json RUST_LOG=debug -vv"
                        } else {
                            "text RUST_LOG=debug -vv"
                        },
                        if has_json {
                            vec!["--format", "json", "-vv"]
                        } else {
                            vec!["-vv"]
                        },
                        Some("debug"),
                    ),
                ] {
                    let mut args: Vec<String> = bin_args.iter().map(|a| a.to_string()).collect();
                    args.extend(extra.iter().map(|a| a.to_string()));
                    args.extend(source.args.iter().cloned());
                    let mut env = source.env.clone();
                    if let Some(l) = log {
                        env.push(("RUST_LOG".into(), l.into()));
                    }
                    jobs.push(Job {
                        case: i,
                        bin,
                        args,
                        env,
                        how: format!("{}, {mode}", source.name),
                    });
                }
            }
        }
        // the second URL some binaries parse
        for (bin, extra) in [
            ("migrate-check", vec!["--format", "json"]),
            (
                "migrate-revision",
                vec!["-m", "secrets", "--autogenerate", "--dry-run"],
            ),
        ] {
            let mut args: Vec<String> = extra.iter().map(|a| a.to_string()).collect();
            args.extend(["-v".into(), "--shadow-url".into(), case.url.into()]);
            jobs.push(Job {
                case: i,
                bin,
                args,
                env: vec![
                    ("DATABASE_URL".into(), GOOD_URL.into()),
                    ("RUST_LOG".into(), "debug".into()),
                ],
                how: "--shadow-url, RUST_LOG=debug -v".into(),
            });
        }
    }
    jobs
}

/// What is wrong with one run's output, if anything.
fn check(case: &Case, forbidden: &[String], r: &Run) -> Option<String> {
    let all = r.all();
    if let Some(p) = forbidden.iter().find(|p| all.contains(p.as_str())) {
        return Some(format!("printed '{p}' (from the password)"));
    }
    if all.contains("svc_k8r") {
        return Some("printed the user name from the malformed URL".into());
    }
    if r.code != 2 {
        return Some(format!("exit {} instead of 2 (usage)", r.code));
    }
    if !r.stderr.contains("error:") {
        return Some("no error message".into());
    }
    if !r.stderr.to_lowercase().contains(&case.says.to_lowercase()) {
        return Some(format!("the error does not say '{}'", case.says));
    }
    None
}

#[test]
fn malformed_urls_are_reported_without_any_of_their_password() {
    assert!(CASES.len() >= 20);
    let s = Scenario::new();
    let jobs = jobs(&s);
    let forbidden: Vec<Vec<String>> = CASES.iter().map(forbidden).collect();
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism()
        .map(|n| n.get() * 2)
        .unwrap_or(4)
        .min(8);
    let started = std::time::Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(job) = jobs.get(i) else { break };
                let args: Vec<&str> = job.args.iter().map(String::as_str).collect();
                let env: Vec<(&str, &str)> = job
                    .env
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                let r = s.run_env(job.bin, &args, &env);
                let case = &CASES[job.case];
                if let Some(why) = check(case, &forbidden[job.case], &r) {
                    failures.lock().unwrap().push(format!(
                        "{} ({}) with {}: {why}\n  stdout: {}\n  stderr: {}",
                        job.bin,
                        job.how,
                        case.url,
                        r.stdout.trim(),
                        r.stderr.trim().replace('\n', "\n          ")
                    ));
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    eprintln!(
        "{} runs in {:.1} s on {threads} threads",
        jobs.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "{} of {} runs failed; the first ones:\n{}",
        failures.len(),
        jobs.len(),
        failures
            .iter()
            .take(25)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The error says where the problem is: a column, and which part of the URL.
#[test]
fn a_malformed_url_error_says_which_part_and_where() {
    let s = Scenario::new();
    for (url, part) in [
        (
            "postgresql://app@127.0.0.1:54x32/db?password=Sup3r-S3cret!pw",
            "the port",
        ),
        ("mysql://app:My5qlPa55@127.0.0.1:1/rag", "scheme"),
        ("postgresql://app:B4d%zzEnc@127.0.0.1:1/rag", "the password"),
        ("postgresql://app:Br4ck3tPw@[::1:5432/rag", "the host"),
    ] {
        let r = s
            .run_env("migrate-current", &[], &[("DATABASE_URL", url)])
            .code(2);
        assert!(
            r.stderr.contains("column") && r.stderr.contains(part),
            "{url}: {}",
            r.stderr
        );
        assert!(r.stderr.contains("DATABASE_URL"), "{url}: {}", r.stderr);
    }
}

/// A password with an unencoded `&` that still parses (`password=Amp&S3cr=etTail`): the tail
/// becomes a parameter of its own, which the "connecting to" debug line must not show.
#[test]
fn a_password_split_by_an_ampersand_is_not_shown_as_a_parameter() {
    let s = Scenario::new();
    let url = "postgresql://svc@127.0.0.1:1/rag?sslmode=disable&password=Amp&S3cr=etTail";
    let r = s
        .run_env(
            "migrate-up",
            &["-v"],
            &[("DATABASE_URL", url), ("RUST_LOG", "debug")],
        )
        .code(3);
    assert!(r.stderr.contains("connecting to"), "{}", r.stderr);
    for piece in ["Amp&", "S3cr", "etTail"] {
        assert!(!r.all().contains(piece), "printed '{piece}': {}", r.all());
    }
}

#[test]
fn a_url_typed_where_no_argument_belongs_is_not_echoed_by_the_usage_error() {
    let s = Scenario::new();
    for bin in ["migrate-current", "migrate-history", "migrate-check"] {
        let r = s
            .run_env(bin, &["postgresql://app:Hunt3r2pw@db.internal/rag"], &[])
            .code(2);
        // migrate-check takes script files after --lint: a lone URL is one without --lint
        assert!(
            r.stderr.contains("unexpected argument")
                || (bin == "migrate-check"
                    && r.stderr
                        .contains("required arguments were not provided:\n  --lint")),
            "{bin}: {}",
            r.stderr
        );
        assert!(!r.all().contains("Hunt3r2pw"), "{bin} leaked: {}", r.all());
    }
}
