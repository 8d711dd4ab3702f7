//! Program steps (`-- run: <command>`): running the command as a step of the run.
//!
//! A revision whose work is a program (a Python data migration, a backfill worker, anything)
//! runs it here: `sh -c '<command>'` in the migrations directory, with the target database's
//! URL in `DATABASE_URL` (password included; retort never prints it), the revision and the
//! direction in `RETORT_REVISION` / `RETORT_DIRECTION`, the directory in
//! `RETORT_MIGRATIONS_DIR` and, for a target in a schema of its own, the schema in
//! `RETORT_SCHEMA`. The run loop commits everything before the step first; the step is
//! recorded only when the program exits 0.
//!
//! What happens meanwhile is kept safe the way a long statement is:
//! - the program's stdout and stderr reach the observer line by line while it runs (a
//!   program that prints one line and then works for an hour shows that line at once);
//! - it runs in a process group of its own, so a terminal's Ctrl-C reaches retort only:
//!   retort's first SIGINT or SIGTERM is forwarded to the whole group (the program and what
//!   it started), and the program decides how to stop; a second signal makes retort exit at
//!   once, leaving the program to the status line's `kill` command;
//! - a timeout (`--program-timeout`, a script's `-- statement_timeout:`) sends SIGTERM to the
//!   group, then SIGKILL after [`KILL_GRACE`], and fails the step.
//!
//! This module knows nothing of the run loop: it spawns, streams, forwards and times out.
//! A backfill's worker program (`exec::backfill_worker`) is started with [`spawn`] too, with
//! a pipe on its standard input, and driven by that module's line protocol.

use crate::config::DbUrl;
use crate::interrupt;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// After SIGTERM (a timeout), how long the program has to stop before SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(5);

/// After the program exited, how long a silence ends the reading of its output (a background
/// child it left may hold the pipes open), and how long the reading goes on at most.
const DRAIN: Duration = Duration::from_secs(1);
const DRAIN_AT_MOST: Duration = Duration::from_secs(30);

/// Which of the program's outputs a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Where a program runs: the database it works on and the migrations directory.
#[derive(Debug, Clone)]
pub struct ProgramEnv {
    pub url: DbUrl,
    /// The migrations directory (the working directory; `RETORT_MIGRATIONS_DIR`, absolute).
    pub dir: PathBuf,
    /// `RETORT_SCHEMA`: the schema of a schema-per-tenant target (or the version table's
    /// configured schema).
    pub schema: Option<String>,
}

impl ProgramEnv {
    /// `DATABASE_URL`: the target as a libpq URL with its password and, when the connection
    /// has `options` (a schema target's `search_path`), those too.
    pub fn database_url(&self) -> String {
        let mut u = self.url.to_url();
        if let Some(o) = &self.url.options {
            let enc: String = ::url::form_urlencoded::byte_serialize(o.as_bytes())
                .collect::<String>()
                .replace('+', "%20");
            u.push(if u.contains('?') { '&' } else { '?' });
            u.push_str("options=");
            u.push_str(&enc);
        }
        u
    }
}

/// One program to run.
#[derive(Debug, Clone)]
pub struct ProgramSpec<'a> {
    pub command: &'a str,
    pub revision: &'a str,
    /// `up` or `down` (`RETORT_DIRECTION`).
    pub direction: &'a str,
    pub env: &'a ProgramEnv,
    /// Stop it (SIGTERM, then SIGKILL) after this long; None or zero: no limit.
    pub timeout: Option<Duration>,
}

/// How a program ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// It exited with this code (0: success).
    Exited(i32),
    /// A signal ended it (the number).
    Killed(i32),
    /// It ran past its timeout and was stopped.
    TimedOut(Duration),
}

/// What a program run did.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub ended: Ended,
    /// A signal retort received while the program ran, forwarded to it.
    pub forwarded: Option<i32>,
    pub duration: Duration,
}

impl Outcome {
    pub fn success(&self) -> bool {
        self.ended == Ended::Exited(0)
    }

    /// The exit code for the audit row: the program's, 128 + the signal that ended it, or
    /// None for a timeout.
    pub fn exit_code(&self) -> Option<i32> {
        match self.ended {
            Ended::Exited(c) => Some(c),
            Ended::Killed(s) => Some(128 + s),
            Ended::TimedOut(_) => None,
        }
    }

    /// `exited with code 3`, `was ended by signal 15`, `timed out after 30s`.
    pub fn describe(&self) -> String {
        match &self.ended {
            Ended::Exited(c) => format!("exited with code {c}"),
            Ended::Killed(s) => format!("was ended by signal {s}"),
            Ended::TimedOut(t) => format!(
                "ran longer than its timeout ({}) and was stopped",
                super::steps::pg_duration(*t)
            ),
        }
    }
}

/// Sends `sig` to the process group `pgid`.
fn signal_group(pgid: u32, sig: i32) {
    // SAFETY: kill(2) with a negative pid signals a process group; no memory is involved.
    unsafe {
        libc::kill(-(pgid as libc::pid_t), sig);
    }
}

/// Reads `from` line by line into `tx` (invalid UTF-8 replaced), until the end.
fn pump(from: impl Read, stream: Stream, tx: mpsc::Sender<(Stream, Option<String>)>) {
    let mut r = BufReader::new(from);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match r.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buf);
                let line = line.trim_end_matches(['\n', '\r']).to_string();
                if tx.send((stream, Some(line))).is_err() {
                    return;
                }
            }
        }
    }
    let _ = tx.send((stream, None));
}

/// A started program: its process group, and its output lines as they come (`None`: that
/// stream ended).
pub struct Spawned {
    pub child: std::process::Child,
    /// The process group (the program's pid).
    pub pgid: u32,
    pub lines: mpsc::Receiver<(Stream, Option<String>)>,
    /// Output streams still open.
    pub open: usize,
}

impl Spawned {
    /// Sends `sig` to the program's process group.
    pub fn signal(&self, sig: i32) {
        signal_group(self.pgid, sig);
    }
}

/// Starts `spec` in a process group of its own, its output read line by line into
/// [`Spawned::lines`]; with `stdin`, its standard input is a pipe ([`Spawned::child`]'s
/// `stdin`), else empty. `extra` is added to its environment.
pub fn spawn(
    spec: &ProgramSpec,
    extra: &[(&str, String)],
    stdin: bool,
) -> std::io::Result<Spawned> {
    let dir = absolute(&spec.env.dir);
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(spec.command)
        .current_dir(&dir)
        .env("DATABASE_URL", spec.env.database_url())
        .env("RETORT_REVISION", spec.revision)
        .env("RETORT_DIRECTION", spec.direction)
        .env("RETORT_MIGRATIONS_DIR", &dir)
        .stdin(if stdin { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    match &spec.env.schema {
        Some(s) => cmd.env("RETORT_SCHEMA", s),
        None => cmd.env_remove("RETORT_SCHEMA"),
    };
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn()?;
    let pgid = child.id();
    let (tx, rx) = mpsc::channel();
    let mut open = 0;
    if let Some(out) = child.stdout.take() {
        let tx = tx.clone();
        open += 1;
        std::thread::spawn(move || pump(out, Stream::Stdout, tx));
    }
    if let Some(err) = child.stderr.take() {
        let tx = tx.clone();
        open += 1;
        std::thread::spawn(move || pump(err, Stream::Stderr, tx));
    }
    Ok(Spawned {
        child,
        pgid,
        lines: rx,
        open,
    })
}

/// After the program exited: the rest of its output, until its streams end, a silence of
/// `DRAIN` (a background child it left may hold the pipes open), or `DRAIN_AT_MOST`.
pub fn drain(s: &mut Spawned, on_line: &mut dyn FnMut(Stream, &str)) {
    let draining = Instant::now();
    while s.open > 0 && draining.elapsed() < DRAIN_AT_MOST {
        match s.lines.recv_timeout(DRAIN) {
            Ok((st, Some(line))) => on_line(st, &line),
            Ok((_, None)) => s.open -= 1,
            Err(_) => break,
        }
    }
}

/// How a program's exit status reads.
pub fn ended(status: std::process::ExitStatus) -> Ended {
    match (status.code(), status.signal()) {
        (Some(c), _) => Ended::Exited(c),
        (None, Some(s)) => Ended::Killed(s),
        (None, None) => Ended::Exited(-1),
    }
}

/// Runs `spec`, handing each line of its output to `on_line` as it comes. An error only when
/// the program cannot be started (`sh` missing, the directory gone).
pub fn run(spec: &ProgramSpec, on_line: &mut dyn FnMut(Stream, &str)) -> std::io::Result<Outcome> {
    let started = Instant::now();
    let mut sp = spawn(spec, &[], false)?;
    let pgid = sp.pgid;
    interrupt::set_status(format!(
        "the program of {} may still be running (process group {pgid}: kill -TERM -{pgid}); \
         the revision is not recorded",
        spec.revision
    ));
    // the first SIGINT/SIGTERM, forwarded to the group as it comes
    let armed = interrupt::arm(Box::new(move || {
        if let Some(sig) = interrupt::signal() {
            signal_group(pgid, sig);
        }
    }));
    let mut forwarded = None;
    if armed.is_none() {
        // a signal came before the program started: it gets it at once
        if let Some(sig) = interrupt::signal() {
            signal_group(pgid, sig);
        }
    }
    let password = spec.env.url.password().map(str::to_string);
    // a program that prints its DATABASE_URL (or the password) does not put it in retort's log
    let mut on_line = |s: Stream, line: &str| on_line(s, &masked(line, password.as_deref()));
    let timeout = spec.timeout.filter(|t| !t.is_zero());
    let mut timed_out: Option<Instant> = None;
    let mut killed = false;
    let status = loop {
        match sp.lines.recv_timeout(Duration::from_millis(50)) {
            Ok((s, Some(line))) => on_line(s, &line),
            Ok((_, None)) => sp.open -= 1,
            Err(_) => {}
        }
        if let Some(st) = sp.child.try_wait()? {
            break st;
        }
        if forwarded.is_none() {
            forwarded = interrupt::signal();
        }
        match (timeout, timed_out) {
            (Some(t), None) if started.elapsed() >= t => {
                signal_group(pgid, libc::SIGTERM);
                timed_out = Some(Instant::now());
            }
            (_, Some(at)) if !killed && at.elapsed() >= KILL_GRACE => {
                signal_group(pgid, libc::SIGKILL);
                killed = true;
            }
            _ => {}
        }
    };
    drop(armed);
    drain(&mut sp, &mut on_line);
    interrupt::set_status("");
    let ended = match timed_out {
        Some(_) => Ended::TimedOut(timeout.unwrap_or_default()),
        None => ended(status),
    };
    Ok(Outcome {
        ended,
        forwarded: forwarded.or_else(interrupt::signal),
        duration: started.elapsed(),
    })
}

/// `line` with the passwords of URLs in it masked, and `password` itself wherever it appears
/// (when it is long enough not to mask ordinary words).
pub(super) fn masked(line: &str, password: Option<&str>) -> String {
    let line = crate::config::redact_url_text(line);
    match password {
        Some(p) if p.len() >= 4 => line.replace(p, "***"),
        _ => line,
    }
}

/// `dir` as an absolute path (the program's `RETORT_MIGRATIONS_DIR`).
fn absolute(dir: &Path) -> PathBuf {
    std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(dir: &Path) -> ProgramEnv {
        ProgramEnv {
            url: DbUrl::parse(
                "postgresql://app:s3cret@db.example:5433/shop",
                &crate::config::Env::default(),
            )
            .unwrap(),
            dir: dir.to_path_buf(),
            schema: Some("tenant_a".into()),
        }
    }

    fn spec<'a>(command: &'a str, env: &'a ProgramEnv) -> ProgramSpec<'a> {
        ProgramSpec {
            command,
            revision: "003",
            direction: "up",
            env,
            timeout: None,
        }
    }

    fn lines(spec: &ProgramSpec) -> (Outcome, Vec<(Stream, String)>) {
        let mut got = Vec::new();
        let o = run(spec, &mut |s, l| got.push((s, l.to_string()))).unwrap();
        (o, got)
    }

    #[test]
    fn the_environment_and_the_working_directory() {
        let dir = tempfile::tempdir().unwrap();
        let env = env(dir.path());
        let (o, got) = lines(&spec(
            "echo \"$DATABASE_URL\"; echo \"$RETORT_REVISION $RETORT_DIRECTION $RETORT_SCHEMA\"; pwd; echo \"$RETORT_MIGRATIONS_DIR\"",
            &env,
        ));
        assert!(o.success(), "{o:?}");
        let text: Vec<&str> = got.iter().map(|(_, l)| l.as_str()).collect();
        // the program gets the password; what it prints of it is masked
        assert_eq!(text[0], "postgresql://app:***@db.example:5433/shop");
        assert_eq!(text[1], "003 up tenant_a");
        let real = dir.path().canonicalize().unwrap();
        assert_eq!(Path::new(text[2]).canonicalize().unwrap(), real);
        assert_eq!(Path::new(text[3]).canonicalize().unwrap(), real);
    }

    #[test]
    fn the_program_gets_the_password_and_the_log_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let env = env(dir.path());
        let (o, got) = lines(&spec(
            "case \"$DATABASE_URL\" in *:s3cret@*) echo has it;; esac; echo \"pw=s3cret\"",
            &env,
        ));
        assert!(o.success(), "{o:?}");
        let text: Vec<&str> = got.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(text, ["has it", "pw=***"]);
    }

    #[test]
    fn options_go_into_the_url() {
        let mut e = env(Path::new("."));
        e.url.options = Some("-c search_path=\"t a\"".into());
        assert_eq!(
            e.database_url(),
            "postgresql://app:s3cret@db.example:5433/shop?options=-c%20search_path%3D%22t%20a%22"
        );
    }

    #[test]
    fn both_streams_line_by_line_and_the_exit_code() {
        let dir = tempfile::tempdir().unwrap();
        let env = env(dir.path());
        let (o, got) = lines(&spec(
            "echo one; echo two >&2; printf 'no newline'; exit 3",
            &env,
        ));
        assert_eq!(o.ended, Ended::Exited(3));
        assert_eq!(o.exit_code(), Some(3));
        assert!(!o.success());
        assert!(got.contains(&(Stream::Stdout, "one".into())));
        assert!(got.contains(&(Stream::Stderr, "two".into())));
        assert!(got.contains(&(Stream::Stdout, "no newline".into())));
        assert_eq!(o.describe(), "exited with code 3");
    }

    #[test]
    fn a_timeout_stops_the_program_group() {
        let dir = tempfile::tempdir().unwrap();
        let env = env(dir.path());
        let mut s = spec("sleep 30 & wait", &env);
        s.timeout = Some(Duration::from_millis(300));
        let (o, _) = lines(&s);
        assert!(matches!(o.ended, Ended::TimedOut(_)), "{o:?}");
        assert_eq!(o.exit_code(), None);
        assert!(o.duration < Duration::from_secs(5), "{:?}", o.duration);
    }
}
