//! `--schema-command CMD` (or `MIGRATE_SCHEMA_COMMAND`): the desired schema printed as SQL by
//! a command — an external schema provider such as `python -m retort_migrate.schema
//! app.models` — instead of read from `schema.sql`. The command runs through `sh -c` in the
//! current directory; its stdout is kept in a temporary file, used wherever the schema file is
//! used (autogenerate, drift), and removed with the returned value.

use crate::config::{redact_url_text, Env};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The schema a command printed, in a temporary file.
#[derive(Debug)]
pub struct CommandSchema {
    pub command: String,
    dir: PathBuf,
    path: PathBuf,
}

impl CommandSchema {
    /// The file holding the command's output.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for CommandSchema {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The command of `--schema-command` (`flag`), else of `MIGRATE_SCHEMA_COMMAND`; `None`
/// when neither is set (the schema file is used).
pub fn configured(flag: Option<&str>, env: &Env) -> Option<String> {
    flag.map(str::to_string)
        .or_else(|| env.get("MIGRATE_SCHEMA_COMMAND"))
        .filter(|c| !c.trim().is_empty())
}

/// Runs `command` and keeps its stdout. A command that cannot start, exits non-zero or
/// prints nothing is a usage error quoting its stderr.
pub fn run(command: &str) -> Result<CommandSchema> {
    let t0 = std::time::Instant::now();
    let out = Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::usage(format!("cannot run the schema command with sh: {e}")))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail = |text: &str| {
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let from = lines.len().saturating_sub(15);
        if lines.is_empty() {
            " (it printed nothing on stderr)".to_string()
        } else {
            format!(":\n  {}", redact_url_text(&lines[from..].join("\n  ")))
        }
    };
    if !out.status.success() {
        return Err(Error::usage(format!(
            "the schema command `{}` failed ({}){}",
            redact_url_text(command),
            out.status,
            tail(&stderr)
        ))
        .with_hint(
            "run the command yourself to see what is wrong; it must print the desired schema as \
             SQL on stdout (--schema-command or MIGRATE_SCHEMA_COMMAND)",
        ));
    }
    if out.stdout.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::usage(format!(
            "the schema command `{}` printed no SQL on stdout{}",
            redact_url_text(command),
            tail(&stderr)
        ))
        .with_hint("it must print the desired schema as SQL (CREATE TABLE ...) on stdout"));
    }
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "retort-schema-command-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::io(format!("cannot create {}: {e}", dir.display())))?;
    let path = dir.join("schema-command-output.sql");
    std::fs::write(&path, &out.stdout)
        .map_err(|e| Error::io(format!("cannot write {}: {e}", path.display())))?;
    log::debug!(
        "the schema command printed {} bytes in {}",
        out.stdout.len(),
        crate::words::fmt_duration(t0.elapsed())
    );
    Ok(CommandSchema {
        command: command.to_string(),
        dir,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_output_is_kept_in_a_file_removed_afterwards() {
        let s = run("echo 'CREATE TABLE t (id int);'").unwrap();
        let path = s.path().to_path_buf();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "CREATE TABLE t (id int);\n"
        );
        drop(s);
        assert!(!path.exists());
    }

    #[test]
    fn a_failing_command_is_a_usage_error_with_its_stderr() {
        let e = run("echo 'No module named app' >&2; exit 3").unwrap_err();
        assert_eq!(e.kind, crate::error::ErrorKind::Usage);
        assert!(e.message.starts_with("the schema command `echo"), "{e}");
        assert!(e.message.ends_with(":\n  No module named app"), "{e}");
        let e = run("true").unwrap_err();
        assert!(e.message.contains("printed no SQL on stdout"), "{e}");
    }

    #[test]
    fn the_flag_beats_the_environment() {
        let env = Env::from_pairs(&[("MIGRATE_SCHEMA_COMMAND", "from-env")], &[]);
        assert_eq!(configured(Some("flag"), &env).as_deref(), Some("flag"));
        assert_eq!(configured(None, &env).as_deref(), Some("from-env"));
        assert_eq!(configured(None, &Env::from_pairs(&[], &[])), None);
    }
}
