//! migrate-down: revert revisions down to TARGET (default: -1).
use clap::Parser;
use retort::{exec::offline, plan::Direction, Migrator};
use retort_cli::cli::{self, CommonArgs, LockArgs, RunArgs, RunCommand, WriteFlags};
use retort_cli::fleet::FleetArgs;

/// Downgrade the database to TARGET (default: -1, one step back; base: everything).
#[derive(Parser)]
#[command(
    name = "migrate-down",
    version,
    after_help = "Examples:
  # revert the last revision
  migrate-down
  # what reverting two steps would run
  migrate-down -2 --dry-run
  # revert everything, without asking
  migrate-down base --yes
  # the downgrade SQL from 004 to 002; no database needed
  migrate-down --sql 004:002"
)]
struct Args {
    /// -1, -N, a revision (or unique prefix), base, LABEL@base, ...
    #[arg(default_value = "-1", allow_hyphen_values = true)]
    target: String,
    /// Print the SQL instead of running it (offline; no database needed). Range: START:END, or
    /// the TARGET when no value is given (a downgrade needs a START offline).
    #[arg(long, value_name = "[START:]END", num_args = 0..=1, default_missing_value = "",
          allow_hyphen_values = true, conflicts_with_all = ["dry_run", "yes", "format"])]
    sql: Option<String>,
    /// Show what would run, with the same checks as the real run, without running it.
    #[arg(long, conflicts_with = "yes")]
    dry_run: bool,
    /// Do not ask before downgrading to base (required without a terminal).
    #[arg(long, short = 'y')]
    yes: bool,
    /// Commit after each revision instead of once for the whole run.
    #[arg(long)]
    transaction_per_migration: bool,
    /// Commit every N revisions: the run's transactions hold at most N revisions each (a
    /// long history that does not fit the server's lock table in one transaction). After a
    /// failure the database is at the end of the last committed batch.
    #[arg(long, value_name = "N", conflicts_with = "transaction_per_migration",
          value_parser = clap::value_parser!(u32).range(1..))]
    batch: Option<u32>,
    /// Output: text, or json (the plan with --dry-run, else the run report).
    #[arg(long, value_enum, default_value_t = cli::Format::Text)]
    format: cli::Format,
    #[command(flatten)]
    fleet: FleetArgs,
    #[command(flatten)]
    lock: LockArgs,
    #[command(flatten)]
    run: RunArgs,
    #[command(flatten)]
    common: CommonArgs,
}

impl Args {
    /// The one place where the flags become the run's options, for one database and a fleet
    /// alike.
    fn options(&self, settings: &retort::config::Settings) -> RunCommand {
        RunCommand {
            migrator: self.lock.migrator_options(settings, WriteFlags::default()),
            run: self
                .run
                .options(settings, self.transaction_per_migration, self.batch),
        }
    }
}

fn main() {
    let a: Args = cli::parse();
    cli::init_logging(&a.common);
    cli::main(a.format, || {
        let (settings, env) = a.common.settings_and_env()?;
        let opts = a.options(&settings);
        if a.fleet.given()? {
            if a.sql.is_some() || a.dry_run {
                return Err(retort::Error::usage(
                    "--targets/--targets-query run the downgrade; --sql and --dry-run are for one database",
                ));
            }
            FleetArgs::require_yes(
                a.yes,
                "migrate-down on a fleet reverts revisions on every target",
                "pass --yes",
            )?;
            return retort_cli::fleet::run_main(
                (&settings, &env),
                &a.fleet,
                a.format,
                "migrate-down",
                Direction::Down,
                &a.target,
                &opts,
            );
        }
        if let Some(range) = &a.sql {
            let range = if range.is_empty() { &a.target } else { range };
            print!(
                "{}",
                offline::sql_for_range(
                    &settings,
                    range,
                    false,
                    opts.run.transaction_per_migration,
                    opts.run.batch
                )?
            );
            return Ok(0);
        }
        let mut m = Migrator::open(&settings, "migrate-down")?.with_options(opts.migrator);
        let opts = opts.run;
        let plan = m.plan_downgrade(&a.target)?;
        if a.dry_run {
            m.check_lock_budget(&plan, &opts)?;
            print!("{}", cli::show_plan(a.format, &m, &plan, &opts));
            return Ok(0);
        }
        if a.target == "base" && !plan.is_empty() && !a.yes {
            let q = format!("Downgrade to base reverts all {} applied revisions (data in their tables is lost). Continue?", plan.steps.len());
            if !cli::confirm(&q, "--yes")? {
                eprintln!("aborted; nothing was changed");
                return Ok(retort::error::exit::USAGE);
            }
        }
        let mut observer = a.run.observer(a.format, a.common.quiet);
        let result = m.run(Direction::Down, &a.target, &opts, observer.as_mut());
        cli::run_result(a.format, "down", result)
    })
}
