//! migrate-history: the revision history, newest first.
use clap::Parser;
use retort::cli::{self, CommonArgs};
use retort::history;

/// List revisions newest first (no database needed unless --indicate-current).
#[derive(Parser)]
#[command(name = "migrate-history", version)]
struct Args {
    /// Range START:END (START inclusive); e.g. base:head, 002:, -3:current.
    #[arg(
        short = 'r',
        long,
        value_name = "START:END",
        allow_hyphen_values = true
    )]
    rev_range: Option<String>,
    /// Tag the database's current revisions with (current).
    #[arg(short, long)]
    indicate_current: bool,
    /// Show the heads only.
    #[arg(long, conflicts_with_all = ["branches", "show"])]
    heads: bool,
    /// Show the branch points only.
    #[arg(long, conflicts_with = "show")]
    branches: bool,
    /// Show one revision in full.
    #[arg(long, value_name = "REV")]
    show: Option<String>,
    /// Show the audit log (every up, down, stamp, purge, rehash), newest first.
    #[arg(long, conflicts_with_all = ["heads", "branches", "show"])]
    log: bool,
    /// With --log: at most this many entries.
    #[arg(long, default_value_t = 100)]
    limit: i64,
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
        let project = retort::Project::load(&settings.migrations_dir)?;
        let g = &project.graph;
        let verbose = a.common.verbose > 0;
        let json = a.format == cli::Format::Json;
        if a.log {
            let mut m =
                retort::Migrator::with_project(project.clone(), &settings, "migrate-history")?;
            let rows = m.records.read_audit(&mut m.client, a.limit)?;
            if json {
                print!(
                    "{}",
                    retort::json::to_string(&retort::json::audit_log(&rows))
                );
            } else {
                print!("{}", retort::db::records::format_audit_log(&rows));
            }
            return Ok(0);
        }
        if a.heads {
            if json {
                print!("{}", retort::json::to_string(&retort::json::heads(g)));
            } else {
                print!("{}", history::format_heads(g, verbose));
            }
            return Ok(0);
        }
        if a.branches {
            if json {
                print!("{}", retort::json::to_string(&retort::json::branches(g)));
            } else {
                print!("{}", history::format_branches(g));
            }
            return Ok(0);
        }
        if let Some(rev) = &a.show {
            let id = g.resolve(rev)?;
            if json {
                print!("{}", retort::json::to_string(&retort::json::show(g, &id)));
            } else {
                print!("{}", history::format_show(g, &id));
            }
            return Ok(0);
        }
        let needs_db =
            a.indicate_current || a.rev_range.as_deref().is_some_and(range_needs_database);
        let current = if needs_db {
            let mut m =
                retort::Migrator::with_project(project.clone(), &settings, "migrate-history")?;
            m.known_heads()?
        } else {
            Vec::new()
        };
        let revs = g.history_range(a.rev_range.as_deref(), &current)?;
        if json {
            print!(
                "{}",
                retort::json::to_string(&retort::json::history(g, &revs, &current))
            );
        } else {
            print!(
                "{}",
                history::format_history(g, &revs, verbose, &current, a.indicate_current)
            );
        }
        Ok(0)
    })
}

/// Whether an end of a `-r START:END` range is relative to the database: `current`,
/// `current+N` / `current-N`, `+N` / `-N`, `X@+N` / `X@-N`.
fn range_needs_database(range: &str) -> bool {
    range.split(':').map(str::trim).any(|p| {
        p == "current"
            || p.starts_with(['+', '-'])
            || p.starts_with("current+")
            || p.starts_with("current-")
            || p.contains("@+")
            || p.contains("@-")
    })
}
