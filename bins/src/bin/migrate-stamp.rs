//! migrate-stamp: set the version table without running any migration.
use clap::Parser;
use retort::output;
use retort::Migrator;
use retort_cli::cli::{self, CommonArgs, LockArgs, WriteFlags};
use retort_cli::fleet::{self, FleetArgs};

/// Mark the database as being at REV... without running scripts (adopt an existing schema), or
/// re-record the checksum of an applied script that was edited deliberately (--rehash).
#[derive(Parser)]
#[command(
    name = "migrate-stamp",
    version,
    after_help = "Examples:
  # the schema is already there: see the version-table change, then record it
  migrate-stamp head --dry-run
  # replace an unknown revision in the table with 001
  migrate-stamp --purge 001
  # accept a deliberate edit of applied script 002
  migrate-stamp --rehash 002
  # every tenant database of tenants.txt at 003 (each under its own lock, audited)
  migrate-stamp 003 --targets tenants.txt --yes"
)]
struct Args {
    /// Revision(s): head, heads, base, ids or prefixes.
    #[arg(required_unless_present = "sql")]
    revisions: Vec<String>,
    /// Delete every row of the version table first (the way out of an unknown revision).
    #[arg(long)]
    purge: bool,
    /// Print the SQL instead of running it (offline; no database needed). Range: END or START:END,
    /// or the REVISIONs when no value is given.
    #[arg(long, value_name = "[START:]END", num_args = 0..=1, default_missing_value = "",
          conflicts_with_all = ["dry_run", "format"])]
    sql: Option<String>,
    /// Show the version-table change without writing it.
    #[arg(long)]
    dry_run: bool,
    /// Re-record the checksums of these applied revisions from their scripts as they are now.
    #[arg(long, conflicts_with_all = ["purge", "sql", "dry_run"])]
    rehash: bool,
    /// With --targets: stamp every target (marking revisions applied on a whole fleet without
    /// running them is refused without it; --rehash does not need it).
    #[arg(long, short = 'y')]
    yes: bool,
    /// Output: text, or json (a stable document, see docs/json.md).
    #[arg(long, value_enum, default_value_t = cli::Format::Text)]
    format: cli::Format,
    #[command(flatten)]
    fleet: FleetArgs,
    #[command(flatten)]
    lock: LockArgs,
    #[command(flatten)]
    common: CommonArgs,
}

fn main() {
    let a: Args = cli::parse();
    cli::init_logging(&a.common);
    cli::main(a.format, || {
        let (settings, env) = a.common.settings_and_env()?;
        // the one place where the flags become the stamp's options, for one database and a
        // fleet alike
        let options = a.lock.migrator_options(&settings, WriteFlags::default());
        if a.fleet.given()? {
            if a.sql.is_some() || a.dry_run {
                return Err(retort::Error::usage(
                    "--targets/--targets-query run the stamp; --sql and --dry-run are for one database",
                ));
            }
            // a rehash changes no revision
            FleetArgs::require_yes(
                a.yes || a.rehash,
                "migrate-stamp on a fleet records revisions as applied on every target without running them",
                "pass --yes (check where the targets are first: migrate-history --targets)",
            )?;
            let app = "migrate-stamp";
            return if a.rehash {
                fleet::main_for((&settings, &env), &a.fleet, a.format, app, |p, s, t| {
                    retort::fleet::jobs::rehash(p, s, t, &a.revisions, &options, app)
                })
            } else {
                fleet::main_for((&settings, &env), &a.fleet, a.format, app, |p, s, t| {
                    retort::fleet::jobs::stamp(p, s, t, &a.revisions, a.purge, &options, app)
                })
            };
        }
        let json = a.format == cli::Format::Json;
        if let Some(range) = &a.sql {
            let revisions = if range.is_empty() {
                a.revisions.clone()
            } else {
                vec![range.clone()]
            };
            let project = retort::Project::load(&settings.migrations_dir)?;
            let table = retort::db::VersionTable::new(settings.version_table.clone());
            print!(
                "{}",
                retort::exec::offline::offline_stamp(&project, &table, &revisions, a.purge)?
            );
            return Ok(0);
        }
        let mut m = Migrator::open(&settings, "migrate-stamp")?.with_options(options);
        if a.rehash {
            let mut done = Vec::new();
            for rev in &a.revisions {
                let (old, new) = m.rehash(rev)?;
                if !json {
                    println!(
                        "{rev}: checksum {} -> {new}",
                        if old.is_empty() { "(none)" } else { &old }
                    );
                }
                done.push((rev.clone(), old, new));
            }
            if json {
                cli::print_json(&output::json::rehashed(&done));
            }
            return Ok(0);
        }
        if a.dry_run {
            let (from, to) = m.plan_stamp(&a.revisions, a.purge)?;
            if json {
                cli::print_json(&output::json::stamp_dry_run(&from, &to));
            } else {
                println!(
                    "Would stamp the database from {} to {}",
                    retort::output::text::heads_text(&from),
                    retort::output::text::heads_text(&to)
                );
            }
            return Ok(0);
        }
        let heads = m.stamp(&a.revisions, a.purge)?;
        if json {
            cli::print_json(&output::json::stamped(&heads));
        } else {
            println!("{}", retort::output::text::heads_text(&heads));
        }
        Ok(0)
    })
}
