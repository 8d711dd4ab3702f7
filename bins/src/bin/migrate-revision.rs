//! migrate-revision: write a new migration script.
use clap::Parser;
use retort::output::json;
use retort::revision::{self, RevisionOptions};
use retort_cli::cli::{self, CommonArgs};

/// Create a new revision file in the migrations directory.
#[derive(Parser)]
#[command(
    name = "migrate-revision",
    version,
    after_help = "Examples:
  # an empty revision after the head
  migrate-revision -m \"add documents\"
  # fill it from schema.sql, validated on shadow databases
  migrate-revision -m \"chunks index\" --autogenerate
  # join every head
  migrate-revision -m merge --merge heads
  # a new embedding model on a live table, as a chain of revisions
  migrate-revision --vector-swap chunks.embedding --to 'vector(256)' --run 'python embed.py'"
)]
struct Args {
    /// What the revision does (prompted for on a terminal when missing).
    #[arg(short, long)]
    message: Option<String>,
    /// Use this id (default: the history's convention: 12 hex digits after Alembic's ids, else
    /// the next number; retort.toml's [revision] ids = "hex" | "sequential" fixes it).
    #[arg(long, value_name = "ID")]
    rev_id: Option<String>,
    /// A random 12-hex id (like Alembic's) whatever the history's convention.
    #[arg(long)]
    random_id: bool,
    /// Parent revision (default: the single head); `base` starts a new root.
    #[arg(long, value_name = "REV|base")]
    head: Option<String>,
    /// Allow --head to name a revision that is not a head (starts a branch).
    #[arg(long)]
    splice: bool,
    /// Branch label for the new revision.
    #[arg(long = "branch-label", value_name = "LABEL")]
    branch_label: Vec<String>,
    /// A revision this one depends on (pulled in first on upgrade).
    #[arg(long = "depends-on", value_name = "REV")]
    depends_on: Vec<String>,
    /// The script cannot run in a transaction (CREATE INDEX CONCURRENTLY).
    #[arg(long)]
    non_transactional: bool,
    /// Merge revisions: `heads` for every head, or revision ids.
    #[arg(long, num_args = 1.., value_name = "heads|REV")]
    merge: Option<Vec<String>>,
    /// Fill the revision from the declarative schema: the statements that turn the schema the
    /// migrations produce into the schema file's (and back, in the down section).
    #[arg(long)]
    autogenerate: bool,
    /// The declarative schema file. Default: MIGRATE_SCHEMA_FILE, else schema.sql beside the
    /// migrations directory.
    #[arg(long, value_name = "PATH", requires = "autogenerate")]
    schema: Option<std::path::PathBuf>,
    /// A command whose stdout is the desired schema as SQL, instead of the schema file (e.g.
    /// "python -m retort_migrate.schema app.models"). Default: MIGRATE_SCHEMA_COMMAND.
    #[arg(
        long,
        value_name = "CMD",
        requires = "autogenerate",
        conflicts_with = "schema"
    )]
    schema_command: Option<String>,
    /// Create the shadow databases on this server. Default: MIGRATE_SHADOW_URL, else the target
    /// database's server.
    #[arg(long, value_name = "URL", requires = "autogenerate")]
    shadow_url: Option<String>,
    /// A column rename instead of drop + add: TABLE.OLD=NEW (TABLE may be schema.table).
    #[arg(long, value_name = "TABLE.OLD=NEW", requires = "autogenerate")]
    rename: Vec<String>,
    /// A table rename instead of drop + create: OLD=NEW.
    #[arg(long, value_name = "OLD=NEW", requires = "autogenerate")]
    rename_table: Vec<String>,
    /// Build indexes on every existing table with CREATE INDEX CONCURRENTLY, in a separate
    /// non-transactional revision chained after the main one (by default: those on tables
    /// that hold rows on the database, where the lint gate refuses a blocking build).
    #[arg(long, requires = "autogenerate", conflicts_with = "blocking")]
    concurrently: bool,
    /// Write every index build in the main revision, without CONCURRENTLY, even on tables
    /// that hold rows (migrate-up then refuses it without --allow-unsafe).
    #[arg(long, requires = "autogenerate")]
    blocking: bool,
    /// Write a revision even when there is nothing to do.
    #[arg(long, requires = "autogenerate")]
    empty: bool,
    /// Write baselines/REV.sql: the schema as of REV in one script (from a replay in a shadow
    /// database on the database URL's server), which a fresh database runs instead of the
    /// revisions up to REV. Existing databases keep their history.
    #[arg(long, value_name = "REV", conflicts_with_all = ["autogenerate", "merge", "message", "rev_id", "head", "dry_run"])]
    squash: Option<String>,
    /// Change a vector column's type or embedding model on a live table: writes a chain of
    /// revisions (expand, fill, index, check recall, contract; docs/vector-swap.md). Reads the
    /// column and its index from the database.
    #[arg(long, value_name = "TABLE.COLUMN", requires = "to",
          conflicts_with_all = ["autogenerate", "merge", "squash"])]
    vector_swap: Option<String>,
    /// The column's new type: halfvec(1536), vector(256), bit(1536).
    #[arg(long, value_name = "TYPE", requires = "vector_swap")]
    to: Option<String>,
    /// The program that computes the new embeddings (a backfill worker: key ranges on stdin,
    /// docs/script-format.md); without it the new values must derive from the old in SQL.
    #[arg(long, value_name = "COMMAND", requires = "vector_swap")]
    run: Option<String>,
    /// No new column: an expression index over the existing one (a halfvec cast or a
    /// binary quantization), its recall check, and the old index's drop as the contract.
    #[arg(long, requires = "vector_swap", conflicts_with = "run")]
    index_only: bool,
    /// The recall the swap's check step needs.
    #[arg(
        long,
        value_name = "SHARE",
        requires = "vector_swap",
        default_value_t = 0.9
    )]
    recall_threshold: f64,
    /// The fill's first range, in key values.
    #[arg(long, value_name = "N", requires = "vector_swap", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..))]
    batch: u64,
    /// Print the revision(s) instead of writing them.
    #[arg(long)]
    dry_run: bool,
    /// Leave tables and views matching PATTERN out (a glob on schema.table, or on the table's
    /// name in any schema: `langchain_*`); repeatable; adds to MIGRATE_EXCLUDE.
    #[arg(long, value_name = "PATTERN", requires = "autogenerate")]
    exclude: Vec<String>,
    /// Compare only tables and views matching PATTERN; repeatable; adds to MIGRATE_INCLUDE.
    #[arg(long, value_name = "PATTERN", requires = "autogenerate")]
    include: Vec<String>,
    /// Output: text, or json (the paths written, or with --dry-run the texts).
    #[arg(long, value_enum, default_value_t = cli::Format::Text)]
    format: cli::Format,
    #[command(flatten)]
    common: CommonArgs,
}

fn main() {
    let a: Args = cli::parse();
    cli::init_logging(&a.common);
    cli::main(a.format, || {
        let (mut settings, env) = a.common.settings_and_env()?;
        cli::add_filters(&mut settings, &a.include, &a.exclude)?;
        let project = retort::Project::load(&settings.migrations_dir)?;
        if let Some(rev) = &a.squash {
            let id = project.graph.resolve(rev)?;
            let sql = retort::baseline::render(&project, &settings, None, &id)?;
            let path = retort::baseline::write(&project, &id, &sql)?;
            match a.format {
                cli::Format::Json => cli::print_json(&json::baseline_written(&id, &path)),
                cli::Format::Text => println!("{}", path.display()),
            }
            return Ok(0);
        }
        let message = match (&a.message, &a.vector_swap) {
            (Some(m), _) => m.clone(),
            // the chain's messages say what each step does
            (None, Some(_)) => String::new(),
            (None, None) => cli::prompt("Message for the new revision", "-m \"message\"")?,
        };
        let opts = RevisionOptions {
            message,
            rev_id: a.rev_id.clone(),
            random_id: a.random_id,
            head: a.head.clone(),
            splice: a.splice,
            branch_labels: a.branch_label.clone(),
            depends_on: a.depends_on.clone(),
            non_transactional: a.non_transactional,
            merge: a.merge.clone(),
            ..Default::default()
        };
        if a.autogenerate {
            return autogenerate(&a, &settings, &env, &project, &opts);
        }
        if let (Some(target), Some(to)) = (&a.vector_swap, &a.to) {
            use retort::commands::vector_swap::{self, SwapOptions};
            let swap = SwapOptions {
                run: a.run.clone(),
                index_only: a.index_only,
                threshold: a.recall_threshold,
                batch: a.batch,
                ..SwapOptions::new(target, to)
            };
            let chain = vector_swap::generate(&project, &settings, &opts, &swap)?;
            if !a.dry_run {
                for r in &chain {
                    revision::write_new(&r.path, &r.text)?;
                }
            }
            let written: Vec<_> = chain
                .into_iter()
                .map(|r| (r.path, r.revision, r.text))
                .collect();
            report(a.format, a.dry_run, &written);
            return Ok(0);
        }
        if a.dry_run {
            let (path, script, text) = revision::render_new(&project, &opts)?;
            report(a.format, true, &[(path, script.revision, text)]);
            return Ok(0);
        }
        let (path, script, text) = revision::render_new(&project, &opts)?;
        revision::write_new(&path, &text)?;
        report(a.format, false, &[(path, script.revision, text)]);
        Ok(0)
    })
}

/// `--autogenerate`: compute, validate, then print (`--dry-run`) or write the revision(s).
fn autogenerate(
    a: &Args,
    settings: &retort::config::Settings,
    env: &retort::config::Env,
    project: &retort::Project,
    opts: &RevisionOptions,
) -> retort::Result<i32> {
    use retort::autogen::{self, AutogenOptions};
    let shadow_url = a
        .shadow_url
        .as_deref()
        .map(|u| retort::config::DbUrl::parse(u, env))
        .transpose()?;
    // --schema wins over MIGRATE_SCHEMA_COMMAND; --schema-command over both
    let command = match &a.schema {
        Some(_) => None,
        None => retort::schema::command::configured(a.schema_command.as_deref(), env),
    };
    let printed = command
        .as_deref()
        .map(retort::schema::command::run)
        .transpose()?;
    let ag = AutogenOptions {
        schema_file: match &printed {
            Some(p) => p.path().to_path_buf(),
            None => a
                .schema
                .clone()
                .unwrap_or_else(|| settings.schema_file.clone()),
        },
        schema_source: printed
            .as_ref()
            .map(|p| format!("the output of `{}`", p.command)),
        shadow_url,
        renames: a.rename.clone(),
        table_renames: a.rename_table.clone(),
        concurrently: a.concurrently,
        blocking: a.blocking,
        empty: a.empty,
    };
    let generated = autogen::autogenerate(project, settings, opts, &ag)?;
    // -q: warnings only, so of the summary just the hazards line (the statements it names are
    // marked '-- hazard:' in the file)
    for line in generated
        .summary
        .iter()
        .filter(|l| !a.common.quiet || l.starts_with("hazards ("))
    {
        eprintln!("{line}");
    }
    if generated.nothing_to_do() {
        if a.format == cli::Format::Json {
            cli::print_json(&json::revisions_written(a.dry_run, &[]));
            return Ok(0);
        }
        println!(
            "No changes in {}: nothing written (pass --empty to write an empty revision anyway)",
            match &printed {
                Some(p) => format!("the output of `{}`", p.command),
                None => ag.schema_file.display().to_string(),
            }
        );
        return Ok(0);
    }
    let revisions: Vec<_> = generated
        .revisions
        .iter()
        .map(|r| (r.path.clone(), r.script.revision.clone(), r.text.clone()))
        .collect();
    if !a.dry_run {
        autogen::write(&generated)?;
    }
    report(a.format, a.dry_run, &revisions);
    Ok(0)
}

/// What was written (or, with --dry-run, would be): `Generating PATH ... done` per file, the
/// texts with --dry-run, or one JSON document.
fn report(format: cli::Format, dry_run: bool, revisions: &[(std::path::PathBuf, String, String)]) {
    if format == cli::Format::Json {
        cli::print_json(&json::revisions_written(dry_run, revisions));
        return;
    }
    for (path, _, text) in revisions {
        if dry_run {
            println!("-- would write {}", path.display());
            print!("{text}");
        } else {
            println!("Generating {} ... done", path.display());
        }
    }
}
