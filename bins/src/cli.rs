//! The flags every binary shares, logging, prompts, output and exit codes.

use retort::config::{Env, Overrides, Settings};
use retort::error::{Error, Result};
use retort::output::json;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

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
    /// Keep retrying the connection this long while the server is not up yet (e.g. 30s, 2m).
    #[arg(long, value_name = "DURATION", global = true, value_parser = parse_duration_arg)]
    pub wait: Option<std::time::Duration>,
    /// Less output: warnings and errors only.
    #[arg(short, long, global = true, conflicts_with = "debug")]
    pub quiet: bool,
    /// More output: debug logs on stderr (-vv: also the libraries' own).
    #[arg(short = 'v', long, global = true, action = clap::ArgAction::Count)]
    pub debug: u8,
}

/// The flag of the binaries that take the migration lock (up, down, stamp).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LockArgs {
    /// How long to wait for ANOTHER retort run holding the migration lock (default 10m); then
    /// exit 5 naming the holder. Not PostgreSQL's lock_timeout for the statements (that is
    /// --ddl-lock-timeout of migrate-up and migrate-down).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_arg)]
    pub lock_timeout: Option<std::time::Duration>,
    /// The migration lock: auto (the advisory lock on a direct connection, the lease row
    /// through a pooler), session (the advisory lock; refused through transaction pooling) or
    /// lease (a row in the lock table beside the version table, alembic_version_lock by default, renewed while the run lasts). Default:
    /// MIGRATE_LOCK_MODE, else auto.
    #[arg(long, value_name = "MODE", value_parser = ["auto", "session", "lease"])]
    pub lock_mode: Option<String>,
}

/// The flags of a writing binary beside the lock's, as its options take them: the binary
/// that has a flag passes it; one without passes the default (off).
#[derive(Debug, Clone, Default)]
pub struct WriteFlags {
    pub ignore_checksums: bool,
    pub backup_dir: Option<PathBuf>,
    pub repair_invalid_indexes: bool,
    pub allow_unsafe: bool,
    pub contract: bool,
}

impl LockArgs {
    /// Options for the writing operations: the lock's (timeout; mode: the flag, else
    /// `MIGRATE_LOCK_MODE` from the environment or `.env`) and the binary's `flags`.
    pub fn migrator_options(
        &self,
        settings: &Settings,
        flags: WriteFlags,
    ) -> retort::migrator::MigratorOptions {
        let WriteFlags {
            ignore_checksums,
            backup_dir,
            repair_invalid_indexes,
            allow_unsafe,
            contract,
        } = flags;
        retort::migrator::MigratorOptions {
            lock_timeout: self
                .lock_timeout
                .unwrap_or(retort::migrator::DEFAULT_LOCK_TIMEOUT),
            ignore_checksums,
            backup_dir,
            lock_mode: match &self.lock_mode {
                // clap keeps the flag to the three names
                Some(m) => retort::config::LockMode::parse(m).unwrap_or_default(),
                None => settings.lock_mode.unwrap_or_default(),
            },
            repair_invalid_indexes,
            audit_note: None,
            allow_unsafe,
            contract,
        }
    }
}

/// The options of a run (migrate-up, migrate-down), for one database and a fleet alike.
#[derive(Debug, Clone)]
pub struct RunCommand {
    pub migrator: retort::migrator::MigratorOptions,
    pub run: retort::RunOptions,
}

/// How the steps of a run wait and tell (migrate-up, migrate-down).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RunArgs {
    /// PostgreSQL's lock_timeout for every step's statements (default 5s; 0: off): a DDL
    /// statement waiting for a table lock blocks every read and write queued behind it, so it
    /// gives up after this and the step is retried (--ddl-retries). Not --lock-timeout (which
    /// waits for another retort run). A script's '-- lock_timeout:' overrides it.
    /// Default: MIGRATE_DDL_LOCK_TIMEOUT (environment or .env).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_arg)]
    pub ddl_lock_timeout: Option<std::time::Duration>,
    /// How often a step that timed out waiting for a lock is retried, with growing waits (1s,
    /// 2s, 4s, ...), after rolling back its transaction (default 3).
    #[arg(long, value_name = "N")]
    pub ddl_retries: Option<u32>,
    /// PostgreSQL's statement_timeout for every step (default: the server's; 0: off). A
    /// script's '-- statement_timeout:' overrides it.
    /// Default: MIGRATE_STATEMENT_TIMEOUT (environment or .env).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_arg)]
    pub statement_timeout: Option<std::time::Duration>,
    /// How long a program step ('-- run:') may run (default: no limit; 0: none): then it gets
    /// SIGTERM (SIGKILL 5s later) and the step fails, unrecorded. A script's
    /// '-- statement_timeout:' overrides it. Default: MIGRATE_PROGRAM_TIMEOUT (environment or
    /// .env).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_arg)]
    pub program_timeout: Option<std::time::Duration>,
    /// How often a long step logs its progress when stderr is not a terminal (default 10s).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_arg)]
    pub progress_interval: Option<std::time::Duration>,
    /// Backfill steps: the range width adapts so that each range's transaction takes about
    /// this long (default 150ms; a concurrent write to a row of the range waits for it).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_arg)]
    pub backfill_batch_time: Option<std::time::Duration>,
    /// Backfill steps: wait this long between ranges (default 0).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_arg)]
    pub backfill_pause: Option<std::time::Duration>,
    /// Backfill steps: wait before the next range while a replica (pg_stat_replication) has
    /// not replayed what the primary wrote this long ago; it goes on by itself when the
    /// replicas catch up (default: replicas are not watched).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_arg)]
    pub max_replica_lag: Option<std::time::Duration>,
}

impl RunArgs {
    /// `batch`: `--batch N` (clap keeps it at 1 or more).
    /// The flags, else their variables (`settings`, from the environment or `.env`), else
    /// the defaults.
    pub fn options(
        &self,
        settings: &Settings,
        transaction_per_migration: bool,
        batch: Option<u32>,
    ) -> retort::RunOptions {
        retort::RunOptions {
            transaction_per_migration,
            batch: batch_size(batch),
            ddl_lock_timeout: Some(
                self.ddl_lock_timeout
                    .or(settings.ddl_lock_timeout)
                    .unwrap_or(retort::exec::DEFAULT_DDL_LOCK_TIMEOUT),
            ),
            ddl_retries: self
                .ddl_retries
                .unwrap_or(retort::exec::DEFAULT_DDL_RETRIES),
            statement_timeout: self.statement_timeout.or(settings.statement_timeout),
            program_timeout: self.program_timeout.or(settings.program_timeout),
            max_maintenance_work_mem: settings
                .max_maintenance_work_mem
                .unwrap_or(retort::exec::DEFAULT_MAX_MAINTENANCE_WORK_MEM),
            backfill: retort::exec::BackfillOptions {
                batch_time: self
                    .backfill_batch_time
                    .filter(|d| !d.is_zero())
                    .unwrap_or(retort::exec::backfill::DEFAULT_BATCH_TIME),
                pause: self.backfill_pause.unwrap_or_default(),
                max_replica_lag: self.max_replica_lag,
            },
            ..retort::RunOptions::default()
        }
    }

    /// What shows the run: JSON events with `--format json`, a progress bar on a terminal,
    /// else log lines. Also takes over SIGINT/SIGTERM for the run (see retort::interrupt).
    pub fn observer(&self, format: Format, quiet: bool) -> Box<dyn retort::exec::Observer + Send> {
        retort::interrupt::install();
        match format {
            Format::Json => Box::new(crate::progress::JsonEvents),
            Format::Text if !quiet && std::io::stderr().is_terminal() => {
                Box::new(crate::progress::BarObserver::new())
            }
            Format::Text => Box::new(retort::exec::LogObserver::every(
                self.progress_interval
                    .unwrap_or(std::time::Duration::from_secs(10)),
            )),
        }
    }
}

/// Prints the lint of the revisions to apply on stderr: the error-level findings and one
/// summary line ([`retort::output::lint::for_run`]); every finding with `-v` (debug output
/// on); with `quiet`, only the error-level findings; the summary line also when there is
/// nothing to report if `summary` (`--lint`).
pub fn print_lint(lint: &retort::lint::LintReport, quiet: bool, summary: bool) {
    let every = log::log_enabled!(target: "retort", log::Level::Debug);
    eprint!(
        "{}",
        retort::output::lint::for_run(lint, every, summary, quiet)
    );
}

/// An observer that prints the run's lint ([`print_lint`]) and hands everything else to the
/// one that shows the run.
pub struct ShowLint {
    pub inner: Box<dyn retort::exec::Observer + Send>,
    pub quiet: bool,
    pub summary: bool,
}

impl retort::exec::Observer for ShowLint {
    fn linted(&mut self, report: &retort::lint::LintReport) -> bool {
        print_lint(report, self.quiet, self.summary);
        true
    }
    fn step_started(&mut self, step: &retort::plan::Step, title: &str) {
        self.inner.step_started(step, title)
    }
    fn step_finished(&mut self, step: &retort::plan::Step, d: std::time::Duration) {
        self.inner.step_finished(step, d)
    }
    fn run_finished(&mut self, report: &retort::RunReport) {
        self.inner.run_finished(report)
    }
    fn batch_committed(&mut self, b: retort::exec::BatchAt, heads: &[String]) {
        self.inner.batch_committed(b, heads)
    }
    fn heartbeat(&mut self, hb: &retort::exec::Heartbeat) {
        self.inner.heartbeat(hb)
    }
    fn notice(&mut self, n: &retort::exec::ServerNotice) {
        self.inner.notice(n)
    }
    fn retrying(&mut self, r: &retort::exec::Retry) {
        self.inner.retrying(r)
    }
    fn program_output(
        &mut self,
        revision: &str,
        stream: retort::exec::program::Stream,
        line: &str,
    ) {
        self.inner.program_output(revision, stream, line)
    }

    fn backfill(&mut self, ev: &retort::exec::BackfillEvent) {
        self.inner.backfill(ev)
    }
}

fn parse_duration_arg(s: &str) -> std::result::Result<std::time::Duration, String> {
    retort::config::parse_duration(s).map_err(|e| e.to_string())
}

/// `--format text|json` for the binaries that report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    #[default]
    Text,
    Json,
}

impl CommonArgs {
    /// Flags > environment > .env.
    pub fn settings(&self) -> Result<Settings> {
        Ok(self.settings_and_env()?.0)
    }

    /// The settings and the environment they came from (for binaries that parse more URLs,
    /// such as `--shadow-url`), reading `.env` once.
    pub fn settings_and_env(&self) -> Result<(Settings, Env)> {
        let env = Env::load(self.env_file.as_deref())?;
        Ok((self.settings_with(&env)?, env))
    }

    pub fn settings_with(&self, env: &Env) -> Result<Settings> {
        let flags = Overrides {
            database_url: self.database_url.clone(),
            dir: self.dir.clone(),
            version_table: self.version_table.clone(),
            version_schema: self.version_schema.clone(),
            schema_file: None,
        };
        let mut s = Settings::resolve(&flags, env)?;
        s.wait = self.wait;
        Ok(s)
    }
}

/// `--include` / `--exclude` patterns, added to those of MIGRATE_INCLUDE / MIGRATE_EXCLUDE.
pub fn add_filters(settings: &mut Settings, include: &[String], exclude: &[String]) -> Result<()> {
    let f = &settings.filter;
    settings.filter = retort::schema::filter::ObjectFilter::new(
        f.include.iter().chain(include).cloned().collect(),
        f.exclude.iter().chain(exclude).cloned().collect(),
    )?;
    Ok(())
}

/// Parses the command line. clap's own errors quote what was typed (`unexpected argument
/// 'postgresql://app:secret@...'`), so they go through URL redaction before they are printed;
/// `--help` and `--version` print as they are.
pub fn parse<T: clap::Parser>() -> T {
    match T::try_parse() {
        Ok(args) => args,
        Err(e) if e.use_stderr() => {
            let text = e.render().to_string();
            eprint!("{}", retort::config::redact_url_text(&text));
            std::process::exit(e.exit_code());
        }
        Err(e) => e.exit(),
    }
}

/// Logging to stderr: info by default (progress lines), warnings only with `-q`, retort's
/// debug logs with `-v`, everyone's with `-vv`; `RUST_LOG` overrides. No colours are ever
/// written, so NO_COLOR holds trivially. Every line goes through URL redaction.
pub fn init_logging(common: &CommonArgs) {
    let level = if common.quiet {
        "warn"
    } else if common.debug > 0 {
        "debug"
    } else {
        "info"
    };
    let others = if common.debug > 1 { "debug" } else { "warn" };
    let mut b = env_logger::Builder::new();
    b.parse_filters(&format!("{others},retort={level}"));
    if let Ok(spec) = std::env::var("RUST_LOG") {
        b.parse_filters(&spec);
    }
    b.format(|buf, rec| {
        // retort's own lines say [retort] (the core's and this crate's alike); a library's
        // (-vv) say whose they are
        let who = match rec.target().split("::").next() {
            None | Some("retort_cli") => "retort",
            Some(w) => w,
        };
        // a fleet's job names its target: `INFO  [retort] acme: stamped the database at b`
        let on = current_target()
            .map(|t| format!("{t}: "))
            .unwrap_or_default();
        // over a fleet's live status line: clear it first (the next tick redraws it); straight
        // to stderr, as the formatter drops escape sequences
        if crate::progress::status_shown() {
            eprint!("\r\x1b[2K");
        }
        writeln!(
            buf,
            "{:<5} [{who}] {on}{}",
            rec.level(),
            retort::config::redact_url_text(&rec.args().to_string())
        )
    });
    b.write_style(env_logger::WriteStyle::Never);
    let _ = b.try_init();
}

thread_local! {
    /// The fleet target the job on this thread runs on (for the log lines of the library).
    static TARGET: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// The name of the fleet target a job on this thread runs on, if any: the log lines name it.
fn current_target() -> Option<String> {
    TARGET.with(|t| t.borrow().clone())
}

/// Runs `f` (a fleet's job) with log lines naming the target `name` (redacted):
/// `INFO  [retort] acme: stamped the database at b`.
pub fn on_target<T>(name: &str, f: impl FnOnce() -> T) -> T {
    TARGET.with(|t| *t.borrow_mut() = Some(retort::config::redact_url_text(name)));
    let out = f();
    TARGET.with(|t| *t.borrow_mut() = None);
    out
}

/// Whether this process has printed its JSON document (so an error does not print a second).
static JSON_PRINTED: AtomicBool = AtomicBool::new(false);

/// Runs a binary's body; prints an error as `error: ...` (with its hint) on stderr and exits
/// with the error's code. With `--format json`, an error also leaves one JSON document on
/// stdout (`{"version": 1, "ok": false, "error": {...}}`) unless the body printed its own (a
/// failed run prints its run report). `body` returns the exit code on success (0, or 1 for
/// "problems").
pub fn main(format: Format, body: impl FnOnce() -> Result<i32>) -> ! {
    let code = match body() {
        Ok(c) => c,
        Err(e) => {
            if format == Format::Json && !JSON_PRINTED.load(Ordering::SeqCst) {
                print_json(&serde_json::json!({
                    "version": json::FORMAT_VERSION,
                    "ok": false,
                    "error": json::error(&e),
                }));
            }
            let _ = std::io::stdout().flush();
            eprintln!("error: {}", retort::config::redact_url_text(&e.to_string()));
            e.exit_code()
        }
    };
    let _ = std::io::stdout().flush();
    std::process::exit(code)
}

/// Asks a yes/no question on the terminal. Without a terminal, returns an error telling the user
/// which flag answers it (`flag`).
pub fn confirm(question: &str, flag: &str) -> Result<bool> {
    let answer = ask(&format!("{question} [y/N] "), || {
        Error::usage(format!("{question} — refusing without a terminal to ask"))
            .with_hint(format!("pass {flag} to confirm"))
    })?;
    Ok(matches!(answer.to_lowercase().as_str(), "y" | "yes"))
}

/// Asks for a line of text on the terminal; an error naming `flag` without one.
pub fn prompt(question: &str, flag: &str) -> Result<String> {
    ask(&format!("{question}: "), || {
        Error::usage(format!("{question}: no terminal to ask on")).with_hint(format!("pass {flag}"))
    })
}

/// Prints `prompt` on stderr and reads one trimmed line from a terminal.
fn ask(prompt: &str, no_terminal: impl FnOnce() -> Error) -> Result<String> {
    if !std::io::stdin().is_terminal() {
        return Err(no_terminal());
    }
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Error::io(format!("cannot read the answer: {e}")))?;
    Ok(line.trim().to_string())
}

/// A `--dry-run` plan in the requested format, its transactions as `opts` group them.
pub fn show_plan(
    format: Format,
    m: &retort::Migrator,
    plan: &retort::plan::Plan,
    opts: &retort::RunOptions,
) -> String {
    let grouping = opts.steps_per_transaction();
    match format {
        Format::Json => {
            JSON_PRINTED.store(true, Ordering::SeqCst);
            json::to_string(&json::plan(&m.project, &m.table, plan, grouping))
        }
        Format::Text => retort::output::text::describe_plan(&m.project, &m.table, plan, grouping),
    }
}

/// `--batch N` as the run takes it (clap keeps N at 1 or more).
pub fn batch_size(n: Option<u32>) -> Option<std::num::NonZeroUsize> {
    n.and_then(|n| std::num::NonZeroUsize::new(n as usize))
}

/// A JSON document as text, to be printed on stdout as the command's result.
pub fn json_text(v: &serde_json::Value) -> String {
    JSON_PRINTED.store(true, Ordering::SeqCst);
    json::to_string(v)
}

/// Prints a JSON document on stdout.
pub fn print_json(v: &serde_json::Value) {
    JSON_PRINTED.store(true, Ordering::SeqCst);
    print!("{}", json::to_string(v));
}

/// The result of `migrate-up`/`migrate-down` in the requested format: with JSON, the run report
/// (or the failure state) on stdout; the error itself is still printed on stderr.
pub fn run_result(format: Format, action: &str, result: retort::exec::RunResult) -> Result<i32> {
    match (format, result) {
        (Format::Json, Ok(report)) => {
            print_json(&json::run_report(action, &report));
            Ok(0)
        }
        (Format::Json, Err(e)) => {
            print_json(&json::run_failure(action, &e));
            Err(e.into())
        }
        (Format::Text, r) => r.map(|_| 0).map_err(Error::from),
    }
}
