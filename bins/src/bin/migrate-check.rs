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
    /// Create the drift checks' shadow databases on this server. Default: MIGRATE_SHADOW_URL, else
    /// the database's server.
    #[arg(long, value_name = "URL")]
    shadow_url: Option<String>,
    /// Leave tables and views matching PATTERN out (a glob on schema.table, or on the table's
    /// name in any schema: `langchain_*`); repeatable; adds to MIGRATE_EXCLUDE.
    #[arg(long, value_name = "PATTERN")]
    exclude: Vec<String>,
    /// Compare only tables and views matching PATTERN; repeatable; adds to MIGRATE_INCLUDE.
    #[arg(long, value_name = "PATTERN")]
    include: Vec<String>,
    /// Output: text, or json (a stable document, see docs/json.md).
    #[arg(long, value_enum, default_value_t = cli::Format::Text)]
    format: cli::Format,
    #[command(flatten)]
    common: CommonArgs,
}

fn main() {
    let a: Args = cli::parse();
    cli::init_logging(&a.common);
    cli::main(a.format, || {
        let (mut settings, env) = a.common.settings_and_env()?;
        if let Some(p) = &a.schema {
            settings.schema_file = p.clone();
        }
        cli::add_filters(&mut settings, &a.include, &a.exclude)?;
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
        let report = check(&settings, &opts, "migrate-check")?;
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
