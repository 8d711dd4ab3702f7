//! `--targets FILE` / `--targets-query SQL`: the fleet flags of the connecting binaries, and
//! the fleet form of each command — read the targets, run the command's job on each
//! (`retort::fleet`), print what came back (`retort::output::fleet`). docs/fleets.md.

use crate::cli::{self, Format};
use crate::progress::FleetStatus;
use retort::config::{DbUrl, Env, Settings};
use retort::error::{Error, Result};
use retort::fleet::{self, FleetOptions, FleetWide, Target, TargetResult};
use retort::output::fleet as out;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, Clone, Default, clap::Args)]
pub struct FleetArgs {
    /// Run on every database of FILE (one URL per line, `name=URL` to name it, # comments)
    /// instead of the one database URL.
    #[arg(long, value_name = "FILE", conflicts_with = "targets_query")]
    pub targets: Option<PathBuf>,
    /// Run on every row of SQL, run on the database URL's database: URLs, or schema names
    /// (schema-per-tenant: version table and search_path in that schema).
    #[arg(long, value_name = "SQL")]
    pub targets_query: Option<String>,
    /// Targets at once (default: 8; on each server never more than its free connections allow).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub parallel: Option<u32>,
    /// Run the first K targets first, and the rest only if all K succeeded.
    #[arg(long, value_name = "K", default_value_t = 0)]
    pub canary: usize,
    /// Keep starting targets after one failed (default: stop starting; running ones finish).
    #[arg(long)]
    pub continue_on_error: bool,
}

impl FleetArgs {
    /// Whether this is a fleet run; fleet-only flags without targets are a usage error.
    pub fn given(&self) -> Result<bool> {
        let fleet = self.targets.is_some() || self.targets_query.is_some();
        if !fleet {
            for (set, flag) in [
                (self.parallel.is_some(), "--parallel"),
                (self.canary > 0, "--canary"),
                (self.continue_on_error, "--continue-on-error"),
            ] {
                if set {
                    return Err(Error::usage(format!(
                        "{flag} needs --targets FILE or --targets-query SQL"
                    )));
                }
            }
        }
        Ok(fleet)
    }

    /// A fleet command that changes what every target's version table says (a downgrade, a
    /// stamp) runs only with `--yes`: refused, nothing touched, saying `what` it would do.
    pub fn require_yes(yes: bool, what: &str, hint: &str) -> Result<()> {
        if yes {
            return Ok(());
        }
        Err(Error::usage(format!("{what}: refusing without --yes")).with_hint(hint))
    }

    pub fn targets(&self, settings: &Settings, env: &Env, app: &str) -> Result<Vec<Target>> {
        if let Some(path) = &self.targets {
            return fleet::targets::parse_file(path, env);
        }
        let sql = self.targets_query.as_deref().unwrap_or_default();
        let main = settings.require_url().map_err(|e| {
            e.with_hint("--targets-query runs on the database URL's database: pass --database-url or set DATABASE_URL")
        })?;
        fleet::targets::from_query(main, sql, env, app)
    }

    /// `--parallel` (or the default), `--canary`, `--continue-on-error`, within what the
    /// targets' servers allow ([`FleetOptions::for_targets`]).
    pub fn options(&self, targets: &[Target], app: &str) -> FleetOptions {
        FleetOptions::for_targets(
            targets,
            self.parallel.map(|n| n as usize),
            self.canary,
            self.continue_on_error,
            app,
        )
    }
}

/// Runs `job` over the fleet, shows the live status ([`FleetStatus`]), prints the table or the
/// JSON document, and returns the exit code ([`fleet::exit_code`]). `wide` (asked after the
/// run) is what was found about the whole fleet: its problems count for the exit code, and
/// are printed once (in the table after the rows, in the JSON document at the top level).
pub fn drive(
    format: Format,
    command: &str,
    targets: &[Target],
    opts: &FleetOptions,
    job: impl Fn(&Target) -> TargetResult + Sync,
    wide: impl FnOnce() -> FleetWide,
) -> Result<i32> {
    let started = Instant::now();
    log::info!(
        "{}",
        out::start_line(command, targets.len(), opts.parallel, opts.canary)
    );
    let mut status = FleetStatus::new(command, targets);
    let results = fleet::run(targets, opts, job, &mut |ev| status.event(ev));
    status.finish();
    let elapsed = started.elapsed();
    let wide = wide();
    let code = fleet::exit_code(&results, &wide);
    match format {
        Format::Json => cli::print_json(&out::json(command, &results, &wide, elapsed, code)),
        Format::Text => print!("{}", out::table(command, &results, &wide, elapsed)),
    }
    Ok(code)
}

/// The fleet form of a connecting binary: with the settings (and environment) the binary's
/// options were built from, reads the targets (and the scripts, once), then runs `job` on
/// each. Bad input — a bad targets file, a broken script — fails before any
/// target is touched.
pub fn main_for(
    (settings, env): (&Settings, &Env),
    args: &FleetArgs,
    format: Format,
    app: &str,
    job: impl Fn(&retort::Project, &Settings, &Target) -> TargetResult + Sync,
) -> Result<i32> {
    let project = retort::Project::load(&settings.migrations_dir)?;
    let targets = args.targets(settings, env, app)?;
    let opts = args.options(&targets, app);
    drive(
        format,
        app,
        &targets,
        &opts,
        |t| cli::on_target(&t.name, || job(&project, settings, t)),
        FleetWide::default,
    )
}

/// `migrate-check --targets`: the status page. With a schema file (`settings.schema_file`, as
/// for one database) the schema file is checked against the migrations once, and each
/// target's schema against a replay of its applied revisions (one replay per distinct set),
/// in shadow databases on `shadow_url`'s server (else `MIGRATE_SHADOW_URL`'s, else the first
/// target's), dropped at the end. `shown` rewrites the fleet-wide messages (a temporary
/// schema file is named by its command).
pub fn check_main(
    args: &FleetArgs,
    format: Format,
    settings: &Settings,
    env: &Env,
    shadow_url: Option<&DbUrl>,
    shown: &dyn Fn(&str) -> String,
) -> Result<i32> {
    let app = "migrate-check";
    let project = retort::Project::load(&settings.migrations_dir)?;
    let targets = args.targets(settings, env, app)?;
    let opts = args.options(&targets, app);
    if settings.schema_file.is_file() {
        log::info!(
            "checking {} against the migrations in shadow databases",
            shown(&settings.schema_file.display().to_string())
        );
    }
    let drift = retort::schema::workspace::after_shadows(fleet::drift::FleetDrift::prepare(
        &project, settings, &targets, shadow_url,
    ))?;
    let d = drift.as_ref();
    drive(
        format,
        app,
        &targets,
        &opts,
        |t| fleet::jobs::check(&project, settings, t, app, d),
        || fleet::drift::FleetDrift::wide(d, &settings.schema_file).shown(shown),
    )
}

/// `migrate-up` / `migrate-down` over a fleet: the single run, with `opts`, on each target.
pub fn run_main(
    (settings, env): (&Settings, &Env),
    args: &FleetArgs,
    format: Format,
    app: &str,
    dir: retort::plan::Direction,
    target: &str,
    opts: &crate::cli::RunCommand,
) -> Result<i32> {
    // Ctrl-C / SIGTERM stop each target's run as they stop one database's (a backfill after
    // its range in flight, saying where), not the process at once
    retort::interrupt::install();
    main_for((settings, env), args, format, app, |p, s, t| {
        fleet::jobs::run(p, s, t, dir, target, &opts.migrator, &opts.run, app)
    })
}
