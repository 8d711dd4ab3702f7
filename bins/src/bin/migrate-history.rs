//! migrate-history: the revision history, newest first.
use clap::Parser;
use retort::history;
use retort::output::json as js;
use retort_cli::cli::{self, CommonArgs};
use retort_cli::fleet::{self, FleetArgs};

/// List revisions newest first (no database needed unless --indicate-current); with --targets,
/// where each target is: its current revisions and how many it is behind the heads.
#[derive(Parser)]
#[command(
    name = "migrate-history",
    version,
    after_help = "Examples:
  # every revision, newest first, the database's current one(s) marked
  migrate-history -i
  # a range, each revision in full
  migrate-history -r 002:head --detail
  # the audit log: who ran what, when, and how it ended
  migrate-history --log
  # per tenant database: its current revision(s) and how far behind the heads
  migrate-history --targets tenants.txt"
)]
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
    /// Show each revision in full: parents, branches, path, message (Alembic's --verbose).
    #[arg(long, visible_alias = "verbose")]
    detail: bool,
    /// Output: text, or json (a stable document, see docs/json.md).
    #[arg(long, value_enum, default_value_t = cli::Format::Text)]
    format: cli::Format,
    #[command(flatten)]
    fleet: FleetArgs,
    #[command(flatten)]
    common: CommonArgs,
}

fn main() {
    let a: Args = cli::parse();
    cli::init_logging(&a.common);
    cli::main(a.format, || {
        if a.fleet.given()? {
            let one = [
                (a.rev_range.is_some(), "-r/--rev-range"),
                (a.heads, "--heads"),
                (a.branches, "--branches"),
                (a.show.is_some(), "--show"),
                (a.log, "--log"),
                (a.detail, "--detail"),
            ];
            if let Some((_, flag)) = one.iter().find(|(set, _)| *set) {
                return Err(retort::Error::usage(format!(
                    "--targets/--targets-query show where each target is (its current revisions, how far behind the heads); {flag} is for the scripts' history or one database"
                ))
                .with_hint("run it without --targets, on one database (--database-url)"));
            }
            let (settings, env) = a.common.settings_and_env()?;
            return fleet::main_for(
                (&settings, &env),
                &a.fleet,
                a.format,
                "migrate-history",
                |p, s, t| retort::fleet::jobs::history(p, s, t, "migrate-history"),
            );
        }
        let settings = a.common.settings()?;
        if a.log {
            let mut m = retort::Migrator::open(&settings, "migrate-history")?;
            let rows = m.records.read_audit(&mut m.client, a.limit)?;
            if a.format == cli::Format::Json {
                print!("{}", cli::json_text(&js::audit_log(&rows)));
            } else {
                print!("{}", retort::db::records::format_audit_log(&rows));
            }
            return Ok(0);
        }
        let graph =
            retort::Project::load_graph(&settings.migrations_dir, settings.cache_dir.as_deref())?;
        let g = &graph;
        let verbose = a.detail;
        let json = a.format == cli::Format::Json;
        if a.heads {
            if json {
                print!("{}", cli::json_text(&js::heads(g)));
            } else {
                print!("{}", history::format_heads(g, verbose));
            }
            return Ok(0);
        }
        if a.branches {
            if json {
                print!("{}", cli::json_text(&js::branches(g)));
            } else {
                print!("{}", history::format_branches(g));
            }
            return Ok(0);
        }
        if let Some(rev) = &a.show {
            let id = g.resolve(rev)?;
            if json {
                print!("{}", cli::json_text(&js::show(g, &id)));
            } else {
                print!("{}", history::format_show(g, &id));
            }
            return Ok(0);
        }
        let needs_db =
            a.indicate_current || a.rev_range.as_deref().is_some_and(range_needs_database);
        let (current, backfills) = if needs_db {
            let (heads, backfills) =
                retort::Migrator::read_heads_and_backfills(&settings, "migrate-history")?;
            g.check_known(&heads)?;
            (heads, backfills)
        } else {
            (Vec::new(), Vec::new())
        };
        let revs = g.history_range(a.rev_range.as_deref(), &current)?;
        if json {
            print!("{}", cli::json_text(&js::history(g, &revs, &current)));
        } else {
            print!(
                "{}{}",
                history::format_history(g, &revs, verbose, &current, a.indicate_current),
                retort::db::backfill::format_in_progress(&backfills)
            );
        }
        // the process exits next: freeing a long history node by node is only waiting
        std::mem::forget(graph);
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
