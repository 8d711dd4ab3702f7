//! migrate-current: the database's current revision(s).
use clap::Parser;
use retort::cli::{self, CommonArgs};
use retort::Migrator;

/// Show the revision(s) the database is at: one line per head, nothing for an empty database.
#[derive(Parser)]
#[command(name = "migrate-current", version)]
struct Args {
    /// Exit 1 unless the database is at every head of the scripts (nothing left to upgrade).
    #[arg(long)]
    check_heads: bool,
    #[arg(long, value_enum, default_value_t = cli::Format::Text)]
    format: cli::Format,
    #[command(flatten)]
    common: CommonArgs,
}

fn main() {
    let a = Args::parse();
    cli::init_logging(a.common.quiet, a.common.verbose.saturating_sub(1));
    cli::main(|| {
        let settings = a.common.settings()?;
        let mut m = Migrator::open(&settings, "migrate-current")?;
        let current = m.known_heads()?;
        match a.format {
            cli::Format::Json => print!(
                "{}",
                retort::json::to_string(&retort::json::current(&m.project.graph, &current))
            ),
            cli::Format::Text => print!(
                "{}",
                retort::history::format_current(&m.project.graph, &current, a.common.verbose > 0)
            ),
        }
        if a.check_heads && !retort::history::at_heads(&m.project.graph, &current) {
            let mut heads = m.project.graph.heads();
            heads.sort();
            eprintln!(
                "the database is not at the heads: it is at {}, the scripts' heads are {}",
                retort::run::heads_text(&current),
                heads.join(", ")
            );
            return Ok(retort::error::exit::PROBLEMS);
        }
        Ok(0)
    })
}
