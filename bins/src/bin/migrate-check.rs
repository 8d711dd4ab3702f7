//! migrate-check: exit 0 only if the scripts are sound and the database is at the heads.
use clap::Parser;
use retort::check::{check, CheckOptions};
use retort_cli::cli::{self, CommonArgs};

/// Check the scripts (parse, no cycles, one head) and the database (at the heads, no unknown
/// revision). Exit 0: all good; 1: problems found (listed); 3: cannot connect; 2: usage.
#[derive(Parser)]
#[command(
    name = "migrate-check",
    version,
    after_help = "Examples:
  # scripts, database and schema drift; exit 1 on problems
  migrate-check
  # the scripts only, no database (pull-request CI)
  migrate-check --offline
  # the same report for programs
  migrate-check --format json"
)]
struct Args {
    /// Check the scripts only; no database needed (for CI on pull requests).
    #[arg(long)]
    offline: bool,
    /// Do not count several heads as a problem.
    #[arg(long)]
    allow_multiple_heads: bool,
    /// The declarative schema compared with the migrations and the database (drift). Default:
    /// MIGRATE_SCHEMA_FILE, else schema.sql beside the migrations directory; no file, no check.
    #[arg(long, value_name = "PATH")]
    schema: Option<std::path::PathBuf>,
    /// A command whose stdout is the desired schema as SQL, instead of the schema file (e.g.
    /// "python -m retort_migrate.schema app.models"). Default: MIGRATE_SCHEMA_COMMAND.
    #[arg(long, value_name = "CMD", conflicts_with = "schema")]
    schema_command: Option<String>,
    /// Create the drift checks' shadow databases on this server (default: the database's).
    #[arg(long, value_name = "URL")]
    shadow_url: Option<String>,
    /// Output: text, or json (a stable document, see docs/json.md).
    #[arg(long, value_enum, default_value_t = cli::Format::Text)]
    format: cli::Format,
    #[command(flatten)]
    fleet: retort_cli::fleet::FleetArgs,
    #[command(flatten)]
    common: CommonArgs,
}

fn main() {
    let a: Args = cli::parse();
    cli::init_logging(&a.common);
    cli::main(a.format, || {
        if a.fleet.given()? {
            if a.offline {
                return Err(retort::Error::usage(
                    "--offline checks the scripts only; --targets checks databases",
                ));
            }
            return retort_cli::fleet::main_for(
                &a.common,
                &a.fleet,
                a.format,
                "migrate-check",
                |p, s, t| retort::fleet::jobs::check(p, s, t, "migrate-check"),
            );
        }
        let (mut settings, env) = a.common.settings_and_env()?;
        if let Some(p) = &a.schema {
            settings.schema_file = p.clone();
        }
        let command = match (&a.schema, a.offline) {
            (None, false) => retort::schema::command::configured(a.schema_command.as_deref(), &env),
            _ => None,
        };
        let printed = command
            .as_deref()
            .map(retort::schema::command::run)
            .transpose()?;
        if let Some(p) = &printed {
            settings.schema_file = p.path().to_path_buf();
        }
        let shadow_url = a
            .shadow_url
            .as_deref()
            .map(|u| retort::config::DbUrl::parse(u, &env))
            .transpose()?;
        let opts = CheckOptions {
            offline: a.offline,
            allow_multiple_heads: a.allow_multiple_heads,
            shadow_url,
        };
        let mut report = check(&settings, &opts, "migrate-check")?;
        if let Some(p) = &printed {
            // the temporary file is no name for the user: the command is
            let (file, what) = (
                p.path().display().to_string(),
                format!("the output of `{}`", p.command),
            );
            for m in report.problems.iter_mut().map(|p| &mut p.message) {
                *m = m.replace(&file, &what);
            }
            report.drift = report.drift.map(|d| d.replace(&file, &what));
        }
        if a.format == cli::Format::Json {
            print!("{}", cli::json_text(&retort::output::json::check(&report)));
            return Ok(if report.ok() {
                0
            } else {
                retort::error::exit::PROBLEMS
            });
        }
        if report.ok() {
            let at = match &report.current {
                Some(c) => format!(
                    "; the database is at {}",
                    retort::output::text::heads_text(c)
                ),
                None => String::new(),
            };
            let at = match &report.drift {
                Some(d) => format!("{at}; {d}"),
                None => at,
            };
            println!(
                "OK: {} head{} ({}){at}",
                report.heads.len(),
                if report.heads.len() == 1 { "" } else { "s" },
                report.heads.join(", ")
            );
            return Ok(0);
        }
        for p in &report.problems {
            println!("problem [{}]: {}", p.code, p.message);
        }
        Ok(retort::error::exit::PROBLEMS)
    })
}
