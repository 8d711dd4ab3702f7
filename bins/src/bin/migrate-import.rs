//! migrate-import: an Alembic history becomes retort scripts with the same revision ids.
use clap::Parser;
use retort::commands::import::{import, ImportOptions};
use retort::output;
use retort_cli::cli::{self, CommonArgs};

/// Import an Alembic history: one retort script per revision (same ids, parents, labels,
/// dependencies), rendered by Alembic itself, verified against Alembic's own upgrade and
/// downgrade on two shadow databases, then written. A revision whose body is Python that offline
/// SQL cannot say becomes a program step running that Python through Alembic's operations
/// (--strict refuses it instead). Exit 0: imported (or verified); 1: unconverted revisions
/// (--strict) or a verification difference, nothing written; 2: usage (no
/// alembic.ini, no Python or Alembic, files in the way); 3: cannot connect; 6: the Alembic
/// project is broken (env.py, a revision file, the revision graph).
#[derive(Parser)]
#[command(
    name = "migrate-import",
    version,
    after_help = "Examples:
  # in the project's directory, with its virtualenv active
  migrate-import --dir migrations
  # another interpreter, another ini file, no verification
  migrate-import --config deploy/alembic.ini --python .venv/bin/python --no-verify
  # no Python left: the whole history as one baseline script (schema and reference rows)
  migrate-import --baseline
  # after editing the scripts: compare them with Alembic again, write nothing
  migrate-import --verify-only"
)]
struct Args {
    /// The Alembic configuration file.
    #[arg(long, short = 'c', value_name = "PATH", default_value = "alembic.ini")]
    config: std::path::PathBuf,
    /// Its section, as `alembic --name`.
    #[arg(long, value_name = "SECTION", default_value = "alembic")]
    name: String,
    /// The Python that runs Alembic (default: the active virtualenv's, else python3 on PATH).
    #[arg(long, value_name = "PYTHON")]
    python: Option<std::path::PathBuf>,
    /// Do not run env.py to read target_metadata (its naming conventions are then not applied).
    #[arg(long)]
    skip_env: bool,
    /// Do not compare with Alembic's own upgrade and downgrade on shadow databases.
    #[arg(long, conflicts_with = "verify_only")]
    no_verify: bool,
    /// Compare the scripts already in --dir with Alembic's own upgrade and downgrade; write
    /// nothing.
    #[arg(long)]
    verify_only: bool,
    /// Refuse revisions whose bodies offline SQL cannot say (they inspect the live schema,
    /// read rows, open an ORM session) instead of importing them as program steps that run
    /// their own Python through Alembic's operations.
    #[arg(long)]
    strict: bool,
    /// With --strict: write those revisions with their Python kept as a comment and SQL that
    /// fails until someone writes it (migrate-check reports them).
    #[arg(long)]
    allow_unconverted: bool,
    /// Import the whole history as one baseline script under the head's revision id: the
    /// schema and rows Alembic's upgrade leaves on a shadow database, verified like a squash
    /// (several heads: the other heads' ids in empty scripts beside it).
    #[arg(long, conflicts_with_all = ["verify_only", "no_verify", "strict", "allow_unconverted"])]
    baseline: bool,
    /// Overwrite existing files (and replace scripts of the same revisions).
    #[arg(long)]
    force: bool,
    /// Create the verification's shadow databases on this server (default: the database's).
    #[arg(long, value_name = "URL")]
    shadow_url: Option<String>,
    /// Output: text, or json.
    #[arg(long, value_enum, default_value_t = cli::Format::Text)]
    format: cli::Format,
    #[command(flatten)]
    common: CommonArgs,
}

fn main() {
    let a: Args = cli::parse();
    cli::init_logging(&a.common);
    cli::main(a.format, || {
        let (settings, env) = a.common.settings_and_env()?;
        let shadow_url = a
            .shadow_url
            .as_deref()
            .map(|u| retort::config::DbUrl::parse(u, &env))
            .transpose()?;
        let opts = ImportOptions {
            config: a.config.clone(),
            section: a.name.clone(),
            python: a.python.clone(),
            skip_env: a.skip_env,
            verify: !a.no_verify,
            strict: a.strict,
            allow_unconverted: a.allow_unconverted,
            force: a.force,
            verify_only: a.verify_only,
            shadow_url,
            baseline: a.baseline,
        };
        let report = import(&settings, &opts)?;
        if a.format == cli::Format::Json {
            cli::print_json(&output::import::json(&report));
        } else {
            print!("{}", output::import::text(&report, a.verify_only));
            for w in output::import::warnings(&report) {
                eprintln!("{w}");
            }
        }
        Ok(if report.ok() {
            0
        } else {
            retort::error::exit::PROBLEMS
        })
    })
}
