//! What every `migrate-*` binary shares: the common flags, logging set-up, prompting, and the
//! one place where errors are printed and turned into exit codes.

use crate::config::{Env, Overrides, Settings};
use crate::error::{Error, Result};
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

/// Flags accepted by every binary.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CommonArgs {
    /// Database URL (postgresql://user:password@host:5432/db). Default: DATABASE_URL, then
    /// PGVECTOR_DB_URL, from the environment or .env.
    #[arg(long, value_name = "URL", global = true)]
    pub database_url: Option<String>,
    /// Migrations directory. Default: MIGRATIONS_DIR, else ./migrations.
    #[arg(long, value_name = "DIR", global = true)]
    pub dir: Option<PathBuf>,
    /// Read variables from this file instead of ./.env (the environment still wins).
    #[arg(long, value_name = "PATH", global = true)]
    pub env_file: Option<PathBuf>,
    /// Version table name. Default: MIGRATE_VERSION_TABLE, else alembic_version.
    #[arg(long, value_name = "NAME", global = true)]
    pub version_table: Option<String>,
    /// Schema of the version table. Default: MIGRATE_VERSION_SCHEMA, else the search_path.
    #[arg(long, value_name = "SCHEMA", global = true)]
    pub version_schema: Option<String>,
    /// Less output: warnings and errors only.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

impl CommonArgs {
    /// Flags > environment > .env.
    pub fn settings(&self) -> Result<Settings> {
        let env = Env::load(self.env_file.as_deref())?;
        self.settings_with(&env)
    }

    pub fn settings_with(&self, env: &Env) -> Result<Settings> {
        let flags = Overrides {
            database_url: self.database_url.clone(),
            dir: self.dir.clone(),
            version_table: self.version_table.clone(),
            version_schema: self.version_schema.clone(),
            schema_file: None,
        };
        Settings::resolve(&flags, env)
    }
}

/// Logging to stderr: info by default (progress lines), warnings only with `-q`, debug with `-v`;
/// `RUST_LOG` overrides. No colours are ever written, so NO_COLOR holds trivially.
pub fn init_logging(quiet: bool, verbose: u8) {
    let level = if quiet {
        "warn"
    } else if verbose > 0 {
        "debug"
    } else {
        "info"
    };
    let mut b = env_logger::Builder::new();
    b.parse_filters(&format!("warn,retort={level}"));
    if let Ok(spec) = std::env::var("RUST_LOG") {
        b.parse_filters(&spec);
    }
    b.format(|buf, rec| writeln!(buf, "{:<5} [retort] {}", rec.level(), crate::config::redact_url_text(&rec.args().to_string())));
    b.write_style(env_logger::WriteStyle::Never);
    let _ = b.try_init();
}

/// Runs a binary's body; prints an error as `error: ...` (with its hint) on stderr and exits
/// with the error's code. `body` returns the exit code on success (0, or 1 for "problems").
pub fn main(body: impl FnOnce() -> Result<i32>) -> ! {
    let code = match body() {
        Ok(c) => c,
        Err(e) => {
            let _ = std::io::stdout().flush();
            eprintln!("error: {}", crate::config::redact_url_text(&e.to_string()));
            e.exit_code()
        }
    };
    let _ = std::io::stdout().flush();
    std::process::exit(code)
}

/// Asks a yes/no question on the terminal. Without a terminal, returns an error telling the user
/// which flag answers it (`flag`).
pub fn confirm(question: &str, flag: &str) -> Result<bool> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::usage(format!("{question} — refusing without a terminal to ask")).with_hint(format!("pass {flag} to confirm")));
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(|e| Error::io(format!("cannot read the answer: {e}")))?;
    Ok(matches!(line.trim().to_lowercase().as_str(), "y" | "yes"))
}

/// Asks for a line of text on the terminal; an error naming `flag` without one.
pub fn prompt(question: &str, flag: &str) -> Result<String> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::usage(format!("{question}: no terminal to ask on")).with_hint(format!("pass {flag}")));
    }
    eprint!("{question}: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(|e| Error::io(format!("cannot read the answer: {e}")))?;
    Ok(line.trim().to_string())
}
