//! migrate-stamp: set the version table without running any migration.
use clap::Parser;
use retort::cli::{self, CommonArgs};
use retort::Migrator;

/// Mark the database as being at REV... without running scripts (adopt an existing schema), or
/// re-record the checksum of an applied script that was edited deliberately (--rehash).
#[derive(Parser)]
#[command(name = "migrate-stamp", version)]
struct Args {
    /// Revision(s): head, heads, base, ids or prefixes. With --sql: [START:]END.
    #[arg(required = true)]
    revisions: Vec<String>,
    /// Delete every row of the version table first (the way out of an unknown revision).
    #[arg(long)]
    purge: bool,
    /// Print the SQL instead of running it.
    #[arg(long)]
    sql: bool,
    /// Re-record the checksums of these applied revisions from their scripts as they are now.
    #[arg(long, conflicts_with_all = ["purge", "sql"])]
    rehash: bool,
    #[command(flatten)]
    common: CommonArgs,
}

fn main() {
    let a = Args::parse();
    cli::init_logging(a.common.quiet, a.common.verbose);
    cli::main(|| {
        let settings = a.common.settings()?;
        if a.sql {
            let project = retort::Project::load(&settings.migrations_dir)?;
            let table = retort::db::VersionTable::new(settings.version_table.clone());
            print!(
                "{}",
                retort::migrator::offline_stamp(&project, &table, &a.revisions, a.purge)?
            );
            return Ok(0);
        }
        let mut m = Migrator::open(&settings, "migrate-stamp")?
            .with_options(a.common.migrator_options(false));
        if a.rehash {
            for rev in &a.revisions {
                let (old, new) = m.rehash(rev)?;
                println!(
                    "{rev}: checksum {} -> {new}",
                    if old.is_empty() { "(none)" } else { &old }
                );
            }
            return Ok(0);
        }
        let heads = m.stamp(&a.revisions, a.purge)?;
        println!("{}", retort::run::heads_text(&heads));
        Ok(0)
    })
}
