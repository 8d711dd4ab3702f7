//! migrate-current: the database's current revision(s).
use clap::Parser;
use retort::output::json;
use retort::Migrator;
use retort_cli::cli::{self, CommonArgs};

/// Show the revision(s) the database is at: one line per head, nothing for an empty database.
#[derive(Parser)]
#[command(
    name = "migrate-current",
    version,
    after_help = "Examples:
  # the revision(s) the database is at
  migrate-current
  # each in full: parents, branches, path, message
  migrate-current --detail
  # exit 1 when something is left to upgrade (for scripts)
  migrate-current --check-heads
  # the same for programs
  migrate-current --format json"
)]
struct Args {
    /// Exit 1 unless the database is at every head of the scripts (nothing left to upgrade).
    #[arg(long)]
    check_heads: bool,
    /// Show each revision in full (Alembic's --verbose).
    #[arg(long, visible_alias = "verbose")]
    detail: bool,
    /// Output: text, or json (a stable document, see docs/json.md).
    #[arg(long, value_enum, default_value_t = cli::Format::Text)]
    format: cli::Format,
    #[command(flatten)]
    fleet: retort_cli::fleet::FleetArgs,
    #[command(flatten)]
    common: CommonArgs,
}

fn main() {
    let a: Args = cli::parse();
    cli::init_logging(&a.common);
    cli::main(a.format, || {
        if a.fleet.given()? {
            let (settings, env) = a.common.settings_and_env()?;
            return retort_cli::fleet::main_for(
                (&settings, &env),
                &a.fleet,
                a.format,
                "migrate-current",
                |p, s, t| retort::fleet::jobs::current(p, s, t, "migrate-current"),
            );
        }
        let settings = a.common.settings()?;
        // the graph only (through the header index), then the version table
        let graph =
            retort::Project::load_graph(&settings.migrations_dir, settings.cache_dir.as_deref())?;
        let (current, backfills) =
            Migrator::read_heads_and_backfills(&settings, "migrate-current")?;
        graph.check_known(&current)?;
        match a.format {
            cli::Format::Json => {
                let mut doc = json::current(&graph, &current);
                if let (Some(o), false) = (doc.as_object_mut(), backfills.is_empty()) {
                    o.insert("backfills".into(), retort::db::backfill::json(&backfills));
                }
                print!("{}", cli::json_text(&doc))
            }
            cli::Format::Text => print!(
                "{}{}",
                retort::history::format_current(&graph, &current, a.detail),
                retort::db::backfill::format_in_progress(&backfills)
            ),
        }
        if a.check_heads && !retort::history::at_heads(&graph, &current) {
            let mut heads = graph.heads();
            heads.sort();
            eprintln!(
                "the database is not at the heads: it is at {}, the scripts' heads are {}",
                retort::output::text::heads_text(&current),
                heads.join(", ")
            );
            return Ok(retort::error::exit::PROBLEMS);
        }
        // the process exits next: freeing a long history node by node is only waiting
        std::mem::forget(graph);
        Ok(0)
    })
}
