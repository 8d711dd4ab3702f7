//! migrate-revision: write a new migration script.
use clap::Parser;
use retort::cli::{self, CommonArgs};
use retort::revision::{self, RevisionOptions};

/// Create a new revision file in the migrations directory.
#[derive(Parser)]
#[command(name = "migrate-revision", version)]
struct Args {
    /// What the revision does (prompted for on a terminal when missing).
    #[arg(short, long)]
    message: Option<String>,
    /// Use this id instead of the next sequential number.
    #[arg(long, value_name = "ID")]
    rev_id: Option<String>,
    /// Random 12-hex ids (like Alembic's) instead of sequential numbers.
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
    /// More log output.
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(flatten)]
    common: CommonArgs,
}

fn main() {
    let a = Args::parse();
    cli::init_logging(a.common.quiet, a.verbose);
    cli::main(|| {
        let settings = a.common.settings()?;
        let project = retort::Project::load(&settings.migrations_dir)?;
        let message = match &a.message {
            Some(m) => m.clone(),
            None => cli::prompt("Message for the new revision", "-m \"message\"")?,
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
        let path = revision::create(&project, &opts)?;
        println!("Generating {} ... done", path.display());
        Ok(0)
    })
}
