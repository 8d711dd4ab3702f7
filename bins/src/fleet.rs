//! `--targets FILE` / `--targets-query SQL`: the fleet flags of the connecting binaries, the
//! live status on a terminal, the final table and the JSON document (docs/fleets.md).

use crate::cli::{self, Format};
use retort::check::Problem;
use retort::config::{DbUrl, Env, Settings};
use retort::error::{Error, Result};
use retort::fleet::{self, Event, FleetOptions, Outcome, Target, TargetResult};
use retort::output::text::fmt_duration;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

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

    /// `--parallel` (or the default), and for each server of the targets (the first 64 of
    /// them) as many targets at once as its free connections allow: a target holds up to two
    /// connections ([`fleet::cap_parallel`]). A server that cannot be asked is not limited
    /// (its targets then fail or succeed on their own).
    pub fn options(&self, targets: &[Target], app: &str) -> FleetOptions {
        let mut first_of: Vec<(String, usize)> = Vec::new();
        let mut counts: std::collections::HashMap<String, usize> = Default::default();
        for (i, t) in targets.iter().enumerate() {
            let server = fleet::server_of(t);
            let n = counts.entry(server.clone()).or_insert(0);
            if *n == 0 {
                first_of.push((server, i));
            }
            *n += 1;
        }
        let mut per_server = std::collections::HashMap::new();
        for (server, i) in first_of.iter().take(64) {
            let free = retort::db::connect(&targets[*i].url, app)
                .ok()
                .and_then(|mut c| fleet::free_connections(&mut c).ok());
            if let Some(free) = free {
                let cap = fleet::cap_parallel(usize::MAX, counts[server], Some(free));
                log::debug!("{server}: {free} free connections, {cap} target(s) at once");
                per_server.insert(server.clone(), cap);
            }
        }
        // all servers together: their limits summed (a server not asked: its targets)
        let room: usize = counts
            .iter()
            .map(|(server, n)| per_server.get(server).copied().unwrap_or(*n))
            .sum();
        let wanted = self.parallel.map_or(8, |n| n as usize);
        let parallel = wanted.min(room).min(targets.len()).max(1);
        if let Some(n) = self.parallel {
            if parallel < n as usize && parallel < targets.len() {
                log::warn!(
                    "--parallel {n}: the servers' free connections allow {parallel} at once; running {parallel}"
                );
            }
        }
        FleetOptions {
            parallel,
            canary: self.canary,
            continue_on_error: self.continue_on_error,
            per_server,
        }
    }
}

/// What a fleet run found about the whole fleet rather than one target: `migrate-check`'s
/// schema file against the migrations, checked once.
#[derive(Debug, Clone, Default)]
pub struct FleetWide {
    pub problems: Vec<Problem>,
    /// What the schema drift checks did.
    pub drift: Option<String>,
}

/// Runs `job` over the fleet, shows the live status (on a terminal), prints the table or the
/// JSON document, and returns the exit code: 0 every target fine, 1 (check) some have
/// problems, [`fleet::SOME_FAILED`] some failed or were not started.
pub fn drive(
    format: Format,
    command: &str,
    targets: &[Target],
    opts: &FleetOptions,
    job: impl Fn(&Target) -> TargetResult + Sync,
) -> Result<i32> {
    drive_with(format, command, targets, opts, job, FleetWide::default)
}

/// [`drive`], with what `wide` (asked after the run) found about the whole fleet: its
/// problems count for the exit code, and are printed once (in the table after the rows, in
/// the JSON document at the top level).
pub fn drive_with(
    format: Format,
    command: &str,
    targets: &[Target],
    opts: &FleetOptions,
    job: impl Fn(&Target) -> TargetResult + Sync,
    wide: impl FnOnce() -> FleetWide,
) -> Result<i32> {
    let started = Instant::now();
    let live = std::io::stderr().is_terminal() && log::log_enabled!(log::Level::Info);
    let mut running: std::collections::BTreeMap<usize, Instant> = Default::default();
    let (mut done, mut failed) = (0usize, 0usize);
    let mut last = Instant::now() - Duration::from_secs(1);
    log::info!(
        "{command} on {} target{}, {} at once{}",
        targets.len(),
        if targets.len() == 1 { "" } else { "s" },
        opts.parallel,
        if opts.canary > 0 {
            format!(", the first {} as canaries", opts.canary)
        } else {
            String::new()
        }
    );
    let results = fleet::run(targets, opts, job, &mut |ev| {
        match ev {
            Event::Started(k) => {
                running.insert(*k, Instant::now());
            }
            Event::Finished(k, r) => {
                running.remove(k);
                done += 1;
                if r.failed() {
                    failed += 1;
                }
                if !live {
                    match &r.outcome {
                        Outcome::Failed(e) => log::error!("{}: {}", r.name, first_line(&e.message)),
                        _ => log::info!("{}: {}", r.name, result_text(r)),
                    }
                }
            }
            Event::Tick => {}
        }
        if live && last.elapsed() >= Duration::from_millis(100) {
            last = Instant::now();
            let slowest = running
                .iter()
                .min_by_key(|(_, t)| **t)
                .map(|(k, t)| {
                    format!(
                        "; slowest running: {} ({})",
                        targets[*k].name,
                        fmt_duration(t.elapsed())
                    )
                })
                .unwrap_or_default();
            eprint!(
                "\r\x1b[2K{done}/{} done, {} running, {failed} failed{slowest}",
                targets.len(),
                running.len()
            );
            let _ = std::io::stderr().flush();
            STATUS_SHOWN.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    });
    if live {
        STATUS_SHOWN.store(false, std::sync::atomic::Ordering::SeqCst);
        eprint!("\r\x1b[2K");
    }
    let elapsed = started.elapsed();
    let wide = wide();
    let failed = results.iter().filter(|r| r.failed()).count();
    let problems = results
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Problems(_)))
        .count();
    let code = if failed > 0 {
        fleet::SOME_FAILED
    } else if problems > 0 || !wide.problems.is_empty() {
        1
    } else {
        0
    };
    match format {
        Format::Json => cli::print_json(&json(command, &results, &wide, elapsed, code)),
        Format::Text => print!("{}", table(command, &results, &wide, elapsed)),
    }
    Ok(code)
}

/// `<base>` or `b` or `c, d`.
fn short_heads(h: &[String]) -> String {
    if h.is_empty() {
        "<base>".into()
    } else {
        h.join(", ")
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

fn result_text(r: &TargetResult) -> String {
    match &r.outcome {
        Outcome::Done | Outcome::UpToDate if r.note.is_some() => r.note.clone().unwrap_or_default(),
        Outcome::Done if r.revisions.is_empty() => "ok".into(),
        Outcome::Done => format!("applied {}", r.revisions.len()),
        Outcome::UpToDate => "up to date".into(),
        Outcome::Problems(ps) => ps
            .iter()
            .map(|p| match p.code {
                "pending" => p.message.clone(),
                "checksum_mismatch" => format!("edited: {}", p.message),
                "database_drift" => format!("drifted: {}", p.message),
                "unknown_revision" => format!("unknown revision: {}", p.message),
                _ => p.message.clone(),
            })
            .collect::<Vec<_>>()
            .join("; "),
        Outcome::Failed(e) => format!("FAILED: {}", first_line(&e.message)),
        Outcome::NotStarted(why) => format!("not started: {why}"),
    }
}

fn result_code(o: &Outcome) -> &'static str {
    match o {
        Outcome::Done => "done",
        Outcome::UpToDate => "up_to_date",
        Outcome::Problems(_) => "problems",
        Outcome::Failed(_) => "failed",
        Outcome::NotStarted(_) => "not_started",
    }
}

/// The final table: name, from → to, duration, result; then the fleet-wide lines (schema
/// drift), then one summary line.
/// What the summary line calls a target that is fine and not "up to date", per command.
fn done_word(command: &str) -> &'static str {
    match command {
        "migrate-history" => "behind",
        "migrate-current" => "read",
        "migrate-stamp" => "stamped",
        _ => "done",
    }
}

pub fn table(
    command: &str,
    results: &[TargetResult],
    wide: &FleetWide,
    elapsed: Duration,
) -> String {
    let rows: Vec<[String; 4]> = results
        .iter()
        .map(|r| {
            let moved = match &r.outcome {
                Outcome::NotStarted(_) => "-".to_string(),
                Outcome::Failed(_) if r.from.is_empty() && r.to.is_empty() => "-".to_string(),
                _ => format!("{} → {}", short_heads(&r.from), short_heads(&r.to)),
            };
            let d = match r.outcome {
                Outcome::NotStarted(_) => "-".into(),
                _ => fmt_duration(r.duration),
            };
            [
                redact(&r.name),
                moved,
                d,
                retort::config::redact_url_text(&result_text(r)),
            ]
        })
        .collect();
    let head = ["target", "from → to", "duration", "result"];
    let mut w = head.map(|h| h.chars().count());
    for row in &rows {
        for (i, c) in row.iter().enumerate().take(3) {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: [&str; 4]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i < 3 {
                s.push_str(c);
                s.push_str(&" ".repeat(w[i] - c.chars().count() + 2));
            } else {
                s.push_str(c);
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(head);
    for row in &rows {
        out.push_str(&line([&row[0], &row[1], &row[2], &row[3]]));
    }
    if let Some(d) = &wide.drift {
        out.push_str(&format!("schema drift: {}\n", redact(d)));
    }
    for p in &wide.problems {
        out.push_str(&format!("problem [{}]: {}\n", p.code, redact(&p.message)));
    }
    let count = |f: &dyn Fn(&Outcome) -> bool| results.iter().filter(|r| f(&r.outcome)).count();
    let applied = count(&|o| matches!(o, Outcome::Done));
    let up = count(&|o| matches!(o, Outcome::UpToDate));
    let problems = count(&|o| matches!(o, Outcome::Problems(_)));
    let failed = count(&|o| matches!(o, Outcome::Failed(_)));
    let not_started = count(&|o| matches!(o, Outcome::NotStarted(_)));
    out.push_str(&format!(
        "{} target{} in {}: {applied} {}, {up} {}, {problems} with problems, {failed} failed, {not_started} not started\n",
        results.len(),
        if results.len() == 1 { "" } else { "s" },
        fmt_duration(elapsed),
        done_word(command),
        if command == "migrate-history" { "at the heads" } else { "up to date" },
    ));
    out
}

fn redact(s: &str) -> String {
    retort::config::redact_url_text(s)
}

pub fn json(
    command: &str,
    results: &[TargetResult],
    wide: &FleetWide,
    elapsed: Duration,
    code: i32,
) -> serde_json::Value {
    let targets: Vec<serde_json::Value> = results
        .iter()
        .map(|r| {
            serde_json::json!({
                "name": redact(&r.name),
                "url": r.shown,
                "result": result_code(&r.outcome),
                "from": r.from,
                "to": r.to,
                "revisions": r.revisions,
                "duration_ms": r.duration.as_millis() as u64,
                "problems": match &r.outcome {
                    Outcome::Problems(ps) => ps.iter().map(|p| serde_json::json!({"code": p.code, "message": redact(&p.message)})).collect::<Vec<_>>(),
                    _ => Vec::new(),
                },
                "drift": r.drift,
                "error": match &r.outcome {
                    Outcome::Failed(e) => retort::output::json::error(e),
                    Outcome::NotStarted(why) => serde_json::json!({"kind": "not_started", "message": why}),
                    _ => serde_json::Value::Null,
                },
            })
        })
        .collect();
    let n = |c: &str| {
        results
            .iter()
            .filter(|r| result_code(&r.outcome) == c)
            .count()
    };
    serde_json::json!({
        "version": retort::output::json::FORMAT_VERSION,
        "command": command,
        "ok": code == 0,
        "exit_code": code,
        "duration_ms": elapsed.as_millis() as u64,
        "summary": {
            "targets": results.len(),
            "done": n("done"),
            "up_to_date": n("up_to_date"),
            "problems": n("problems"),
            "failed": n("failed"),
            "not_started": n("not_started"),
        },
        "drift": wide.drift.as_deref().map(redact),
        "problems": wide.problems.iter().map(|p| serde_json::json!({"code": p.code, "message": redact(&p.message)})).collect::<Vec<_>>(),
        "targets": targets,
    })
}

/// Whether the live status line is on stderr now (a log line clears it first).
static STATUS_SHOWN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn status_shown() -> bool {
    STATUS_SHOWN.load(std::sync::atomic::Ordering::SeqCst)
}

thread_local! {
    /// The target the job on this thread is running on (for the log lines of the library).
    static TARGET: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// The name of the target a fleet job on this thread runs on, if any.
pub fn current_target() -> Option<String> {
    TARGET.with(|t| t.borrow().clone())
}

/// Runs `f` with log lines naming `name` (see [`current_target`]).
fn on_target<T>(name: &str, f: impl FnOnce() -> T) -> T {
    TARGET.with(|t| *t.borrow_mut() = Some(redact(name)));
    let out = f();
    TARGET.with(|t| *t.borrow_mut() = None);
    out
}

/// The fleet form of a connecting binary: reads the targets (and the scripts, once), then
/// runs `job` on each. Bad input — a bad targets file, a broken script — fails before any
/// target is touched.
pub fn main_for(
    common: &crate::cli::CommonArgs,
    args: &FleetArgs,
    format: Format,
    app: &str,
    job: impl Fn(&retort::Project, &Settings, &Target) -> TargetResult + Sync,
) -> Result<i32> {
    let (settings, env) = common.settings_and_env()?;
    let project = retort::Project::load(&settings.migrations_dir)?;
    let targets = args.targets(&settings, &env, app)?;
    let opts = args.options(&targets, app);
    drive(format, app, &targets, &opts, |t| {
        on_target(&t.name, || job(&project, &settings, t))
    })
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
    drive_with(
        format,
        app,
        &targets,
        &opts,
        |t| fleet::jobs::check(&project, settings, t, app, d),
        || match d {
            None => FleetWide {
                problems: Vec::new(),
                drift: Some(format!(
                    "not checked: no schema file ({})",
                    settings.schema_file.display()
                )),
            },
            Some(d) => FleetWide {
                problems: d
                    .problems
                    .iter()
                    .map(|p| Problem {
                        code: p.code,
                        message: shown(&p.message),
                    })
                    .collect(),
                drift: Some(shown(&d.summary())),
            },
        },
    )
}

/// `migrate-up` / `migrate-down` over a fleet.
#[allow(clippy::too_many_arguments)]
pub fn run_main(
    common: &crate::cli::CommonArgs,
    args: &FleetArgs,
    format: Format,
    app: &str,
    dir: retort::plan::Direction,
    target: &str,
    options: &retort::migrator::MigratorOptions,
    run_opts: &retort::RunOptions,
) -> Result<i32> {
    main_for(common, args, format, app, |p, s, t| {
        fleet::jobs::run(p, s, t, dir, target, options, run_opts, app)
    })
}
