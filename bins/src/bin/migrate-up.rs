//! migrate-up: apply revisions up to TARGET (default: heads).
use clap::Parser;
use retort::{exec::offline, plan::Direction, Migrator};
use retort_cli::cli::{self, CommonArgs, LockArgs, RunArgs, RunCommand, WriteFlags};
use retort_cli::fleet::FleetArgs;

/// Upgrade the database to TARGET (default: all heads), or print the SQL (--sql) or the plan (--dry-run).
#[derive(Parser)]
#[command(
    name = "migrate-up",
    version,
    after_help = "Examples:
  # apply everything pending (all heads)
  migrate-up
  # what upgrading to 003 would run, with the same checks (and lint) as the run
  migrate-up 003 --dry-run
  # the SQL for a DBA to review; no database needed
  migrate-up --sql base:head > upgrade.sql
  # commit per revision and print a JSON run report
  migrate-up --transaction-per-migration --format json"
)]
struct Args {
    /// head, heads, a revision (or unique prefix), +N, REV+N, LABEL@head, ...
    #[arg(default_value = "heads")]
    target: String,
    /// Print the SQL instead of running it (offline; no database needed). Range: END or START:END,
    /// or the TARGET when no value is given.
    #[arg(long, value_name = "[START:]END", num_args = 0..=1, default_missing_value = "",
          conflicts_with_all = ["dry_run", "backup_dir", "ignore_checksums", "format"])]
    sql: Option<String>,
    /// Show what would run, with the same checks as the real run, without running it.
    #[arg(long, conflicts_with = "backup_dir")]
    dry_run: bool,
    /// Commit after each revision instead of once for the whole run.
    #[arg(long)]
    transaction_per_migration: bool,
    /// Commit every N revisions: the run's transactions hold at most N revisions each (a
    /// long history that does not fit the server's lock table in one transaction). After a
    /// failure the database is at the end of the last committed batch.
    #[arg(long, value_name = "N", conflicts_with = "transaction_per_migration",
          value_parser = clap::value_parser!(u32).range(1..))]
    batch: Option<u32>,
    /// Proceed even though an applied script was edited (see migrate-stamp --rehash).
    #[arg(long)]
    ignore_checksums: bool,
    /// Print the lint summary even when the revisions to apply are clean. (They are always
    /// linted first, docs/lint.md: error-level findings are printed and stop the run; warnings
    /// are counted in one line, -v lists them.)
    #[arg(long)]
    lint: bool,
    /// Run although the lint found error-level findings (they are still printed, and the
    /// audit log notes it).
    #[arg(long)]
    allow_unsafe: bool,
    /// Run the revisions marked '-- phase: contract' too (a vector swap's switch and the drop
    /// of the old column). Without it the upgrade stops before the first of them: give it once
    /// the application reads what they keep.
    #[arg(long)]
    contract: bool,
    /// Back up the database with pg_dump into this directory first, when there is something
    /// to apply (pg_dump from PG_DUMP, PG_BIN or PATH).
    #[arg(long, value_name = "DIR")]
    backup_dir: Option<std::path::PathBuf>,
    /// Before running, drop and rebuild (concurrently) the INVALID indexes that a failed or
    /// interrupted CREATE INDEX CONCURRENTLY left; without it they are only named (but one that
    /// a failed run's own step left, and this run builds again, is dropped anyway).
    #[arg(long)]
    repair_invalid_indexes: bool,
    /// Output: text, or json (the plan with --dry-run, else the run report on stdout and a
    /// stream of events, one JSON object a line, on stderr).
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
            migrator: self.lock.migrator_options(
                settings,
                WriteFlags {
                    ignore_checksums: self.ignore_checksums,
                    backup_dir: self.backup_dir.clone(),
                    repair_invalid_indexes: self.repair_invalid_indexes,
                    allow_unsafe: self.allow_unsafe,
                    contract: self.contract,
                },
            ),
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
            if a.sql.is_some() || a.dry_run || a.backup_dir.is_some() {
                return Err(retort::Error::usage(
                    "--targets/--targets-query run the upgrade; --sql, --dry-run and --backup-dir are for one database",
                ));
            }
            return retort_cli::fleet::run_main(
                (&settings, &env),
                &a.fleet,
                a.format,
                "migrate-up",
                Direction::Up,
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
                    true,
                    opts.run.transaction_per_migration,
                    opts.run.batch
                )?
            );
            return Ok(0);
        }
        let mut m = Migrator::open(&settings, "migrate-up")?.with_options(opts.migrator);
        let opts = opts.run;
        let mut observer = cli::ShowLint {
            inner: a.run.observer(a.format, a.common.quiet),
            quiet: a.common.quiet,
            summary: a.lint,
        };
        // every replica of an app runs this at start-up: at the target already, one read and
        // no lock (docs/production.md says why that is safe)
        if !a.dry_run && a.backup_dir.is_none() {
            if let Some(report) = m.run_if_up_to_date(&a.target, &mut observer) {
                return cli::run_result(a.format, "up", Ok(report));
            }
        }
        // the plan's refusals (an unknown revision, an edited applied script) come before the
        // migration lock is taken
        let plan = m.plan_upgrade(&a.target)?;
        if a.dry_run {
            // the checks of the run, without its lock: the lock budget, the lint gate
            m.check_lock_budget(&plan, &opts)?;
            let lint = retort::commands::lint::lint_plan(&mut m, &plan)?;
            let backfills = m.backfill_preview(&plan, &opts)?;
            print!("{}", cli::show_plan(a.format, &m, &plan, &opts));
            if a.format == cli::Format::Text {
                for line in backfills {
                    println!("{line}");
                }
                if let Some(line) = m.contract_pending_line() {
                    println!("{line}");
                }
            }
            cli::print_lint(&lint, a.common.quiet, a.lint);
            retort::commands::lint::gate(&lint, a.allow_unsafe, "migrate-up", true)?;
            return Ok(0);
        }
        // the lint gate runs under the migration lock, before anything is written
        let result = m.run(Direction::Up, &a.target, &opts, &mut observer);
        cli::run_result(a.format, "up", result)
    })
}
