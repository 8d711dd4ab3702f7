//! migrate-check: exit 0 only if the scripts are sound and the database is at the heads.
use clap::Parser;
use retort::check::{check, CheckOptions, Problem};
use retort::commands::lint::{LintOptions, Selection};
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
  # lint the scripts not yet on the database (squawk's rules and retort's pgvector rules)
  migrate-check --lint
  # pull-request CI, no database: lint what comes after 0042, as annotations on the diff
  migrate-check --offline --lint --since 0042 --format github
  # pre-commit: lint the changed scripts only
  migrate-check --offline --lint migrations/0043_add_index.sql
  # every down section undoes its up section (in a shadow database)
  migrate-check --round-trip
  # a replica's init container: wait up to 5 minutes for the migration job, then start
  migrate-check --wait-for-heads 5m"
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
    /// Lint the pending scripts (not applied on the database; with --offline, those not in
    /// --since REV, else all): squawk's rules and retort's pgvector rules (docs/lint.md).
    /// Error-level findings fail the check.
    #[arg(long)]
    lint: bool,
    /// Lint every script.
    #[arg(long, conflicts_with = "since")]
    lint_all: bool,
    /// With --offline --lint: the revision the deployed database is at; only what comes after
    /// it is linted.
    #[arg(long, value_name = "REV", requires = "offline")]
    since: Option<String>,
    /// With --lint: lint only these scripts (of those --lint selects), e.g. the files a
    /// pre-commit hook passes; files that are no script of the migrations directory are left out.
    #[arg(value_name = "FILE", requires = "lint")]
    files: Vec<std::path::PathBuf>,
    /// In a shadow database, for every revision from base: upgrade, downgrade, require the
    /// catalog unchanged, upgrade again.
    #[arg(long, conflicts_with = "offline")]
    round_trip: bool,
    /// Wait up to DURATION (30s, 5m) for the database to reach the scripts' heads, polling its
    /// version table (no lock, no drift check): exit 0 once it is, 1 with the state when the
    /// time runs out or it holds a revision no script has. For replicas that wait for another
    /// process's migration.
    #[arg(long, value_name = "DURATION", conflicts_with_all = ["offline", "lint", "lint_all", "round_trip"],
          value_parser = |s: &str| retort::config::parse_duration(s).map_err(|e| e.to_string()))]
    wait_for_heads: Option<std::time::Duration>,
    /// Output: text, json (a stable document, see docs/json.md), or github (lint findings and
    /// problems as GitHub Actions annotations).
    #[arg(long, value_enum, default_value_t = CheckFormat::Text)]
    format: CheckFormat,
    #[command(flatten)]
    fleet: retort_cli::fleet::FleetArgs,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum CheckFormat {
    Text,
    Json,
    Github,
}

fn main() {
    let a: Args = cli::parse();
    cli::init_logging(&a.common);
    let format = match a.format {
        CheckFormat::Json => cli::Format::Json,
        _ => cli::Format::Text,
    };
    cli::main(format, || {
        let fleet = a.fleet.given()?;
        if fleet && a.wait_for_heads.is_some() {
            return Err(retort::Error::usage(
                "--wait-for-heads waits for one database; a fleet's databases are checked with --targets alone",
            ));
        }
        if fleet && a.offline {
            return Err(retort::Error::usage(
                "--offline checks the scripts only; --targets checks databases",
            ));
        }
        let script_modes = [
            (a.lint, "--lint"),
            (a.lint_all, "--lint-all"),
            (a.round_trip, "--round-trip"),
        ];
        if let Some((_, flag)) = script_modes.iter().find(|(set, _)| fleet && *set) {
            return Err(retort::Error::usage(format!(
                "{flag} checks the scripts, not the targets: run it without --targets (once, in CI)"
            )));
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
        cli::add_filters(&mut settings, &a.include, &a.exclude)?;
        let shadow_url = a
            .shadow_url
            .as_deref()
            .map(|u| retort::config::DbUrl::parse(u, &env))
            .transpose()?;
        // the temporary file is no name for the user: the command is
        let shown = |m: &str| match &printed {
            Some(p) => m.replace(
                &p.path().display().to_string(),
                &format!("the output of `{}`", p.command),
            ),
            None => m.to_string(),
        };
        if fleet {
            return retort_cli::fleet::check_main(
                &a.fleet,
                format,
                &settings,
                &env,
                shadow_url.as_ref(),
                &shown,
            );
        }
        let opts = CheckOptions {
            offline: a.offline,
            allow_multiple_heads: a.allow_multiple_heads,
            shadow_url,
        };
        let mut report = match a.wait_for_heads {
            Some(limit) => {
                let wait = retort::commands::wait::WaitOptions::new(limit);
                retort::commands::wait::wait_for_heads(&settings, &wait, "migrate-check")?
                    .into_check_report()
            }
            None => check(&settings, &opts, "migrate-check")?,
        };
        if printed.is_some() {
            for m in report.problems.iter_mut().map(|p| &mut p.message) {
                *m = shown(m);
            }
            report.drift = report.drift.map(|d| shown(&d));
        }
        let lint = if (a.lint || a.lint_all) && !report.heads.is_empty() {
            let lopts = LintOptions {
                selection: if a.lint_all {
                    Selection::All
                } else if !a.files.is_empty() {
                    Selection::Files(a.files.clone())
                } else {
                    Selection::Pending
                },
                offline: a.offline,
                since: a.since.clone(),
            };
            let r = retort::commands::lint::lint(&settings, &lopts, "migrate-check")?;
            if r.errors() > 0 {
                report.problems.push(Problem {
                    code: "lint",
                    message: format!(
                        "{}; fix them, or silence one with -- retort:allow <rule> <reason>",
                        retort::output::lint::summary(&r)
                    ),
                });
            }
            Some(r)
        } else {
            None
        };
        let round_trip = if a.round_trip && !report.heads.is_empty() {
            let r = retort::commands::roundtrip::round_trip(&settings, opts.shadow_url.as_ref())?;
            if let Some(f) = &r.failure {
                report.problems.push(Problem {
                    code: "round_trip",
                    message: f.describe(),
                });
            }
            Some(r)
        } else {
            None
        };
        if a.format == CheckFormat::Github {
            if let Some(l) = &lint {
                print!("{}", retort::output::lint::github(l));
            }
            for p in &report.problems {
                println!(
                    "::error title=migrate-check {}::{}",
                    p.code,
                    p.message.replace('\n', "%0A")
                );
            }
        }
        if a.format == CheckFormat::Json {
            let mut doc = retort::output::json::check(&report);
            if let Some(l) = &lint {
                doc["lint"] = retort::output::lint::json(l);
            }
            if let Some(r) = &round_trip {
                doc["round_trip"] = serde_json::json!({
                    "passed": r.passed,
                    "failure": r.failure.as_ref().map(|f| serde_json::json!({
                        "revision": f.revision, "path": f.path, "stage": f.stage, "details": f.details,
                    })),
                    "duration_ms": r.elapsed.as_secs_f64() * 1000.0,
                });
            }
            print!("{}", cli::json_text(&doc));
            return Ok(if report.ok() {
                0
            } else {
                retort::error::exit::PROBLEMS
            });
        }
        if a.format == CheckFormat::Text {
            if let Some(l) = &lint {
                print!("{}", retort::output::lint::text(l));
            }
            if let Some(r) = &round_trip {
                println!(
                    "round trip: {} revision{} upgraded, downgraded without a trace and upgraded again in {}",
                    r.passed.len(),
                    if r.passed.len() == 1 { "" } else { "s" },
                    retort::output::text::fmt_duration(r.elapsed)
                );
            }
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
