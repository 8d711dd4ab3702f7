//! migrate-up: apply revisions up to TARGET (default: heads).
use clap::Parser;
use retort::{exec::offline, plan::Direction, Migrator};
use retort_cli::cli::{self, CommonArgs, LockArgs, RunArgs};
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
    /// linted first, docs/lint.md: findings are printed, error-level ones stop the run.)
    #[arg(long)]
    lint: bool,
    /// Run although the lint found error-level findings (they are still printed, and the
    /// audit log notes it).
    #[arg(long)]
    allow_unsafe: bool,
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

fn main() {
    let a: Args = cli::parse();
    cli::init_logging(&a.common);
    cli::main(a.format, || {
        let settings = a.common.settings()?;
        if a.fleet.given()? {
            if a.sql.is_some() || a.dry_run || a.backup_dir.is_some() {
                return Err(retort::Error::usage(
                    "--targets/--targets-query run the upgrade; --sql, --dry-run and --backup-dir are for one database",
                ));
            }
            let opts = a
                .run
                .options(&settings, a.transaction_per_migration, a.batch);
            return retort_cli::fleet::run_main(
                &a.common,
                &a.fleet,
                a.format,
                "migrate-up",
                retort::plan::Direction::Up,
                &a.target,
                &retort::migrator::MigratorOptions {
                    allow_unsafe: a.allow_unsafe,
                    ..a.lock.migrator_options(&settings, a.ignore_checksums)
                },
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
                    a.transaction_per_migration,
                    cli::batch_size(a.batch)
                )?
            );
            return Ok(0);
        }
        let mut m = Migrator::open(&settings, "migrate-up")?.with_options(
            retort::migrator::MigratorOptions {
                backup_dir: a.backup_dir.clone(),
                repair_invalid_indexes: a.repair_invalid_indexes,
                allow_unsafe: a.allow_unsafe,
                ..a.lock.migrator_options(&settings, a.ignore_checksums)
            },
        );
        let opts = a
            .run
            .options(&settings, a.transaction_per_migration, a.batch);
        // the plan's refusals (an unknown revision, an edited applied script) come before the
        // migration lock is taken
        let plan = m.plan_upgrade(&a.target)?;
        if a.dry_run {
            // the checks of the run, without its lock: the lock budget, the lint gate
            m.check_lock_budget(&plan, &opts)?;
            let lint = retort::commands::lint::lint_plan(&mut m, &plan)?;
            print!("{}", cli::show_plan(a.format, &m, &plan, &opts));
            cli::print_lint(&lint, a.common.quiet, a.lint);
            retort::commands::lint::gate(&lint, a.allow_unsafe, "migrate-up", true)?;
            return Ok(0);
        }
        // the lint gate runs under the migration lock, before anything is written
        let mut observer = cli::ShowLint {
            inner: a.run.observer(a.format, a.common.quiet),
            quiet: a.common.quiet,
            summary: a.lint,
        };
        let result = m.run(Direction::Up, &a.target, &opts, &mut observer);
        cli::run_result(a.format, "up", result)
    })
}
