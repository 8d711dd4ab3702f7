//! migrate-check: exit 0 only if the scripts are sound and the database is at the heads.
use clap::Parser;
use retort::check::{check, CheckOptions};
use retort::commands::lint::{LintOptions, Selection};
use retort::output;
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
  # pull-request CI, no database: lint what comes after 0042, as annotations on the diff
  migrate-check --offline --lint --since 0042 --format github
  # a replica's init container: wait up to 5 minutes for the migration job, then start
  migrate-check --wait-for-heads 5m
  # the ANN index of chunks.embedding finds at least 95 % of the 10 nearest neighbours
  migrate-check --recall chunks.embedding --recall-threshold 0.95"
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
    /// catalog unchanged, upgrade again. Checks the scripts, not the database (as --offline):
    /// the database URL, or --shadow-url, only names the server of the shadow.
    #[arg(long)]
    round_trip: bool,
    /// Wait up to DURATION (30s, 5m) for the database to reach the scripts' heads, polling its
    /// version table (no lock, no drift check): exit 0 once it is, 1 with the state when the
    /// time runs out or it holds a revision no script has. For replicas that wait for another
    /// process's migration.
    #[arg(long, value_name = "DURATION", conflicts_with_all = ["offline", "lint", "lint_all", "round_trip"],
          value_parser = |s: &str| retort::config::parse_duration(s).map_err(|e| e.to_string()))]
    wait_for_heads: Option<std::time::Duration>,
    /// Measure the recall of the hnsw/ivfflat index on TABLE.COLUMN instead of the other checks:
    /// a sample of the column's own vectors as queries, the index's top k against exact search
    /// (index scans off), at the session's hnsw.ef_search / ivfflat.probes; exit 1 under
    /// --recall-threshold (docs/vector-builds.md).
    #[arg(long, value_name = "TABLE.COLUMN", conflicts_with_all = ["offline", "lint", "lint_all", "round_trip", "wait_for_heads"])]
    recall: Option<String>,
    /// The lowest mean recall@k that passes (default 0.9).
    #[arg(long, value_name = "SHARE", requires = "recall")]
    recall_threshold: Option<f64>,
    /// Neighbours compared per query (default 10).
    #[arg(long, value_name = "K", requires = "recall")]
    recall_k: Option<usize>,
    /// Queries sampled from the column (default 100).
    #[arg(long, value_name = "N", requires = "recall")]
    recall_queries: Option<usize>,
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

impl Args {
    /// The one place where the flags become the check's options (`shadow_url`: `--shadow-url`,
    /// read against the environment); the fleet form takes its shadow server from them too.
    fn options(&self, shadow_url: Option<retort::config::DbUrl>) -> CheckOptions {
        CheckOptions {
            // the round trip is a check of the scripts, on a shadow: the target's state
            // (revisions pending on a fresh CI database, say) is not its business
            offline: self.offline || self.round_trip,
            allow_multiple_heads: self.allow_multiple_heads,
            shadow_url,
            lint: (self.lint || self.lint_all).then(|| LintOptions {
                selection: if self.lint_all {
                    Selection::All
                } else if !self.files.is_empty() {
                    Selection::Files(self.files.clone())
                } else {
                    Selection::Pending
                },
                offline: self.offline,
                since: self.since.clone(),
            }),
            round_trip: self.round_trip,
        }
    }
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
        if let Some(target) = &a.recall {
            if fleet {
                return Err(retort::Error::usage(
                    "--recall measures one database's index: run it without --targets",
                ));
            }
            let (settings, _) = a.common.settings_and_env()?;
            let mut opts = retort::commands::recall::RecallOptions::new(target);
            opts.threshold = a.recall_threshold.unwrap_or(opts.threshold);
            opts.k = a.recall_k.unwrap_or(opts.k);
            opts.queries = a.recall_queries.unwrap_or(opts.queries);
            let r = retort::commands::recall::recall(&settings, &opts, "migrate-check")?;
            match a.format {
                CheckFormat::Json => print!("{}", cli::json_text(&output::recall::json(&r))),
                _ => print!("{}", output::recall::text(&r)),
            }
            return Ok(if r.ok() {
                0
            } else {
                retort::error::exit::PROBLEMS
            });
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
        let opts = a.options(shadow_url);
        // the temporary file is no name for the user: the command is
        let named = printed
            .as_ref()
            .map(|p| (p.path(), format!("the output of `{}`", p.command)));
        if fleet {
            let shown = |m: &str| match &named {
                Some((path, name)) => m.replace(&path.display().to_string(), name),
                None => m.to_string(),
            };
            return retort_cli::fleet::check_main(
                &a.fleet,
                format,
                &settings,
                &env,
                opts.shadow_url.as_ref(),
                &shown,
            );
        }
        let mut report = match a.wait_for_heads {
            Some(limit) => {
                let wait = retort::commands::wait::WaitOptions::new(limit);
                retort::commands::wait::wait_for_heads(&settings, &wait, "migrate-check")?
                    .into_check_report()
            }
            None => check(&settings, &opts, "migrate-check")?,
        };
        if a.round_trip && !a.offline {
            report.drift = Some(
                "the database and schema drift not checked: --round-trip checks the scripts, \
                 on a shadow (run migrate-check without it for those)"
                    .into(),
            );
        }
        if let Some((path, name)) = &named {
            report.name_file(path, name);
        }
        match a.format {
            CheckFormat::Json => print!("{}", cli::json_text(&output::json::check(&report))),
            CheckFormat::Text => print!("{}", output::check::text(&report)),
            CheckFormat::Github => print!("{}", output::check::github(&report)),
        }
        Ok(if report.ok() {
            0
        } else {
            retort::error::exit::PROBLEMS
        })
    })
}
