//! The Alembic exporter, embedded in this binary and run in the project's Python: a one-shot
//! export (every revision rendered offline), and a session that applies one revision at a time
//! online, through the project's env.py (the verification's Alembic side).

use super::render::{read_export, Export};
use crate::config::{redact_url_text, DbUrl};
use crate::error::{Error, ErrorKind, Result};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};

/// `python/retort_migrate/alembic_export.py`, the same file the wheel ships.
pub const EXPORTER: &str = include_str!("../../../../python/retort_migrate/alembic_export.py");

/// The Python that runs Alembic: the active virtualenv's (`VIRTUAL_ENV`), else `python3`, else
/// `python` on PATH.
pub fn default_python() -> PathBuf {
    if let Some(venv) = std::env::var_os("VIRTUAL_ENV") {
        let py = Path::new(&venv).join("bin").join("python");
        if py.is_file() {
            return py;
        }
    }
    for name in ["python3", "python"] {
        if let Some(path) = std::env::var_os("PATH") {
            for d in std::env::split_paths(&path) {
                if d.join(name).is_file() {
                    return PathBuf::from(name);
                }
            }
        }
    }
    PathBuf::from("python3")
}

/// `python/retort_migrate/alembic_step.py`: runs one revision's own function on a database
/// (the program steps of an import, and their side of the verification).
pub const STEPPER: &str = include_str!("../../../../python/retort_migrate/alembic_step.py");

/// The exporter and the stepper written to temporary files (removed with this value), and how
/// to run them.
pub struct Helper {
    pub python: PathBuf,
    config: PathBuf,
    section: String,
    file: PathBuf,
    stepper: PathBuf,
}

impl Helper {
    pub fn new(python: Option<PathBuf>, config: &Path, section: &str) -> Result<Helper> {
        if !config.is_file() {
            return Err(
                Error::usage(format!("no Alembic configuration at {}", config.display()))
                    .with_hint(
                    "run migrate-import in your project's directory (where you run `alembic`), or \
                 pass --config path/to/alembic.ini",
                ),
            );
        }
        let file = std::env::temp_dir().join(format!(
            "retort-alembic-export-{}-{}.py",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        std::fs::write(&file, EXPORTER).map_err(|e| {
            Error::io(format!(
                "cannot write the Alembic exporter to {}: {e}",
                file.display()
            ))
        })?;
        let stepper = file.with_file_name(format!(
            "{}-step.py",
            file.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        ));
        let written = std::fs::write(&stepper, STEPPER);
        let helper = Helper {
            python: python.unwrap_or_else(default_python),
            config: config.to_path_buf(),
            section: section.to_string(),
            file,
            stepper,
        };
        written.map_err(|e| {
            Error::io(format!(
                "cannot write the Alembic stepper to {}: {e}",
                helper.stepper.display()
            ))
        })?;
        Ok(helper)
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.python);
        c.arg(&self.file)
            .arg("--config")
            .arg(&self.config)
            .arg("--name")
            .arg(&self.section)
            // a revision's print() or a warning is not the document
            .env("PYTHONUNBUFFERED", "1")
            .env_remove("RETORT_ALEMBIC_URL");
        c
    }

    fn spawn_error(&self, e: std::io::Error) -> Error {
        let err = Error::usage(format!(
            "cannot run {} to read the Alembic project: {e}",
            self.python.display()
        ));
        if e.kind() == std::io::ErrorKind::NotFound {
            err.with_hint(
                "pass --python with the interpreter of the environment that runs your \
                 migrations (e.g. --python .venv/bin/python), or activate that virtualenv",
            )
        } else {
            err
        }
    }

    /// Runs the export and reads its document.
    pub fn export(&self, skip_env: bool) -> Result<Export> {
        let mut c = self.command();
        if skip_env {
            c.arg("--skip-env");
        }
        let out = c
            .stdin(Stdio::null())
            .output()
            .map_err(|e| self.spawn_error(e))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        let doc: Value = serde_json::from_slice(&out.stdout).map_err(|_| {
            Error::new(
                ErrorKind::Io,
                format!(
                    "{} did not print the exporter's document (exit status {}){}",
                    self.python.display(),
                    out.status,
                    tail("its stderr", &stderr)
                ),
            )
            .with_hint("is --python a Python 3 interpreter?")
        })?;
        if doc.get("ok").and_then(Value::as_bool) != Some(true) {
            return Err(document_error(&doc, out.status.code(), &stderr));
        }
        read_export(&doc)
    }

    /// A session applying one revision at a time on `url`'s database.
    pub fn session(&self, url: &DbUrl) -> Result<Session> {
        let mut c = self.command();
        c.arg("--steps").env("RETORT_ALEMBIC_URL", url.to_url());
        self.spawn_session(c)
    }

    /// A session running revisions' own functions (`up FILE` / `down FILE`) on `url`'s
    /// database as program steps do, with the naming convention of `context` (a
    /// `_context.json`).
    pub fn stepper(&self, url: &DbUrl, context: &Path) -> Result<Session> {
        let mut c = Command::new(&self.python);
        c.arg(&self.stepper)
            .arg("--serve")
            .arg("--context")
            .arg(context)
            .env("PYTHONUNBUFFERED", "1")
            .env("DATABASE_URL", url.to_url())
            .env_remove("RETORT_REVISION")
            .env_remove("RETORT_DIRECTION");
        self.spawn_session(c)
    }

    fn spawn_session(&self, mut c: Command) -> Result<Session> {
        let mut child = c
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| self.spawn_error(e))?;
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().expect("piped stderr");
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = err_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut s = sink.lock().unwrap_or_else(|p| p.into_inner());
                s.push_str(&String::from_utf8_lossy(&buf[..n]));
                if s.len() > 64 * 1024 {
                    let cut = s.len() - 32 * 1024;
                    let cut = (cut..s.len()).find(|&i| s.is_char_boundary(i)).unwrap_or(0);
                    s.drain(..cut);
                }
            }
        });
        Ok(Session {
            stdin: child.stdin.take(),
            stdout: BufReader::new(child.stdout.take().expect("piped stdout")),
            child,
            stderr,
        })
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
        let _ = std::fs::remove_file(&self.stepper);
    }
}

/// The helper in `--steps` mode: `up REV` / `down REV` in, one JSON line out.
pub struct Session {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    stderr: Arc<Mutex<String>>,
}

impl Session {
    /// Alembic applies (`up`) or removes (`down`) exactly `revision`.
    pub fn step(&mut self, direction: &str, revision: &str) -> Result<()> {
        let before = self.stderr_text().len();
        let sent = self
            .stdin
            .as_mut()
            .map(|i| writeln!(i, "{direction} {revision}").and_then(|_| i.flush()));
        let mut line = String::new();
        let read = match sent {
            Some(Ok(())) => self.stdout.read_line(&mut line).ok(),
            _ => None,
        };
        // what this step printed (the session's earlier steps' lines are not its error)
        let all = self.stderr_text();
        let stderr = all.get(before..).unwrap_or(&all).to_string();
        let doc: Option<Value> = match read {
            Some(n) if n > 0 => serde_json::from_str(&line).ok(),
            _ => None,
        };
        match doc {
            Some(d) if d.get("ok").and_then(Value::as_bool) == Some(true) => Ok(()),
            Some(d) => Err(document_error(&d, None, &stderr)),
            None => Err(Error::io(format!(
                "the Alembic helper stopped while running {direction} {revision}{}",
                tail("its stderr", &stderr)
            ))),
        }
    }

    fn stderr_text(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(mut i) = self.stdin.take() {
            let _ = writeln!(i, "quit");
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The last lines of a child's stderr, redacted, for a message (empty when there are none).
fn tail(what: &str, text: &str) -> String {
    // Alembic's own progress lines ("INFO  [alembic.runtime.migration] Running upgrade ...")
    // say nothing about an error
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("INFO  [alembic"))
        .collect();
    if lines.is_empty() {
        return String::new();
    }
    let from = lines.len().saturating_sub(12);
    format!(
        "; {what} ends with:\n  {}",
        redact_url_text(&lines[from..].join("\n  "))
    )
}

/// The exporter's error document as an error: its exit code 2 is a usage error (no
/// alembic.ini, Alembic not importable), 3 a broken project (env.py, a revision file, the
/// revision graph, a revision Alembic cannot run), anything else a failure of the exporter.
fn document_error(doc: &Value, code: Option<i32>, stderr: &str) -> Error {
    let e = doc.get("error").cloned().unwrap_or(Value::Null);
    let field = |k: &str| e.get(k).and_then(Value::as_str).map(str::to_string);
    let at = match (field("file"), e.get("line").and_then(Value::as_u64)) {
        (Some(f), Some(l)) => format!(" ({f}:{l})"),
        (Some(f), None) => format!(" ({f})"),
        _ => String::new(),
    };
    let what = field("code").unwrap_or_default();
    let kind = match code {
        Some(2) => ErrorKind::Usage,
        Some(3) => ErrorKind::Script,
        Some(_) => ErrorKind::Io,
        None => match what.as_str() {
            "usage" | "no_url" | "unknown_revision" | "alembic_missing" | "no_config" => {
                ErrorKind::Usage
            }
            "internal" => ErrorKind::Io,
            _ => ErrorKind::Script,
        },
    };
    let mut message = format!(
        "{}{at}",
        field("message").unwrap_or_else(|| "the Alembic exporter failed".into())
    );
    if what == "internal" || what == "online_failed" {
        message.push_str(&tail("the helper's stderr", stderr));
    }
    let err = Error::new(kind, redact_url_text(&message));
    match field("hint") {
        Some(h) => err.with_hint(redact_url_text(
            &h.replace("--skip-env", "--skip-env (of migrate-import)"),
        )),
        None => err,
    }
}
