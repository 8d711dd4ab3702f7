//! migrate-import: an Alembic history becomes retort scripts with the same revision ids.
use clap::Parser;
use retort::commands::import::{import, ImportOptions, ImportReport};
use retort::plan::Direction;
use retort_cli::cli::{self, CommonArgs};
use serde_json::json;

/// Import an Alembic history: one retort script per revision (same ids, parents, labels,
/// dependencies), rendered by Alembic itself, verified against Alembic's own upgrade and
/// downgrade on two shadow databases, then written. Exit 0: imported (or verified); 1:
/// unconverted revisions or a verification difference, nothing written; 2: usage (no
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
  # write revisions that need a live database as scripts that fail until written
  migrate-import --allow-unconverted
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
    /// Write revisions whose bodies need a live database, with their Python kept as a comment
    /// and SQL that fails until someone writes it (migrate-check reports them).
    #[arg(long)]
    allow_unconverted: bool,
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
            allow_unconverted: a.allow_unconverted,
            force: a.force,
            verify_only: a.verify_only,
            shadow_url,
        };
        let report = import(&settings, &opts)?;
        if a.format == cli::Format::Json {
            cli::print_json(&to_json(&report));
        } else {
            print_text(&report, a.verify_only);
        }
        Ok(if report.ok() {
            0
        } else {
            retort::error::exit::PROBLEMS
        })
    })
}

fn direction(d: Direction) -> &'static str {
    match d {
        Direction::Up => "upgrade",
        Direction::Down => "downgrade",
    }
}

fn print_text(r: &ImportReport, verify_only: bool) {
    let unconverted = r.unconverted();
    if !verify_only {
        if r.written {
            println!(
                "Imported {} Alembic revision{} into {} (heads: {}):",
                r.revisions.len(),
                if r.revisions.len() == 1 { "" } else { "s" },
                r.dir.display(),
                r.heads.join(", ")
            );
            for rev in &r.revisions {
                let tag = match (&rev.unconverted, rev.transactional) {
                    (Some(_), _) => "  (UNCONVERTED: write its SQL)",
                    (None, false) => "  (transactional: false)",
                    _ => "",
                };
                println!("  {}{tag}", rev.path.display());
            }
            for p in &r.replaced {
                println!("  replaced {}", p.display());
            }
        } else if !unconverted.is_empty() && r.verification.is_none() {
            println!(
                "Not imported: {} revision{} cannot be written as SQL (nothing was written):",
                unconverted.len(),
                if unconverted.len() == 1 { "" } else { "s" }
            );
        }
        for rev in &unconverted {
            println!(
                "unconverted {}: {}",
                rev.revision,
                rev.unconverted.as_deref().unwrap_or_default()
            );
        }
        if !r.written && !unconverted.is_empty() && r.verification.is_none() {
            println!(
                "Write the SQL of these revisions in Alembic (op.execute), or pass \
                 --allow-unconverted to write them as scripts that fail until their SQL is written."
            );
        }
    }
    if let Some(v) = &r.verification {
        for d in &v.differences {
            println!(
                "difference after the {} of {} ({}): to match Alembic's, retort's schema would need:",
                direction(d.direction),
                d.revision,
                d.message
            );
            for line in &d.differences {
                println!("  {line}");
            }
        }
        if v.ok() {
            println!(
                "Verified on two shadow databases: after each of {} upgrade{} and {} downgrade{} \
                 the schema is Alembic's.",
                v.upgrades,
                if v.upgrades == 1 { "" } else { "s" },
                v.downgrades,
                if v.downgrades == 1 { "" } else { "s" }
            );
        } else if !verify_only {
            println!("Nothing was written.");
        }
        for n in &v.notes {
            println!("note: {n}");
        }
    } else if r.written {
        println!("Not verified (--no-verify).");
    }
    for rev in &r.revisions {
        for w in &rev.warnings {
            eprintln!("warning: {}: {w}", rev.revision);
        }
    }
    for w in &r.warnings {
        eprintln!("warning: {w}");
    }
}

fn to_json(r: &ImportReport) -> serde_json::Value {
    let revisions: Vec<_> = r
        .revisions
        .iter()
        .map(|rev| {
            json!({
                "revision": rev.revision,
                "message": rev.message,
                "path": rev.path.display().to_string(),
                "source": rev.source,
                "transactional": rev.transactional,
                "unconverted": rev.unconverted,
                "warnings": rev.warnings,
            })
        })
        .collect();
    let verification = r.verification.as_ref().map(|v| {
        json!({
            "ok": v.ok(),
            "upgrades": v.upgrades,
            "downgrades": v.downgrades,
            "notes": v.notes,
            "differences": v.differences.iter().map(|d| json!({
                "revision": d.revision,
                "message": d.message,
                "direction": direction(d.direction),
                "differences": d.differences,
            })).collect::<Vec<_>>(),
            "seconds": r.verify_time.as_secs_f64(),
        })
    });
    json!({
        "version": 1,
        "ok": r.ok(),
        "written": r.written,
        "dir": r.dir.display().to_string(),
        "python": r.python,
        "alembic_version": r.alembic_version,
        "heads": r.heads,
        "revisions": revisions,
        "replaced": r.replaced.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "verification": verification,
        "warnings": r.warnings,
        "export_seconds": r.export_time.as_secs_f64(),
    })
}
