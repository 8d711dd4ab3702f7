//! Offline mode (`--sql`): the same plan and the same run loop as an online run, with an
//! executor that writes each statement into one SQL script in Alembic's format (version-table
//! writes included) instead of sending it, so a DBA can review it or run it with `psql -f`.
//!
//! A program step (`-- run:`) cannot be SQL: in its place the script has a comment block
//! marked `PROGRAM STEP NOT INCLUDED` naming the command, and each such step is a warning on
//! stderr (the script is incomplete; the command still exits 0, as the SQL is what it was asked
//! for). Nothing is skipped silently.

use super::{run_plan, Bookkeeping, Executor, ProgramCall, QuietObserver, RunOptions};
use crate::config::Settings;
use crate::db::{SqlFailure, VersionTable};
use crate::error::{Error, Result};
use crate::graph::Target;
use crate::plan::{stamp_ops, Direction, Plan};
use crate::project::Project;
use std::num::NonZeroUsize;

#[derive(Debug, Clone, Default)]
pub struct OfflineOptions {
    /// Emit `CREATE TABLE alembic_version` (only when the range starts from base).
    pub create_version_table: bool,
    /// One BEGIN/COMMIT per step instead of one around everything.
    pub transaction_per_migration: bool,
    /// `--batch N`: a COMMIT and a BEGIN after every N steps.
    pub batch: Option<NonZeroUsize>,
}

/// Collects the SQL an online run would send.
struct SqlWriter {
    out: String,
    create_version_table: bool,
    /// Program steps written as comments (not run).
    programs: usize,
}

impl SqlWriter {
    fn block(&mut self, sql: &str) {
        let sql = sql.trim();
        self.out.push_str(sql);
        if !sql.ends_with(';') {
            self.out.push(';');
        }
        self.out.push_str("\n\n");
    }
}

impl Executor for SqlWriter {
    fn execute(&mut self, sql: &str) -> std::result::Result<(), SqlFailure> {
        self.block(sql);
        Ok(())
    }

    fn execute_batch(&mut self, sqls: &[String]) -> std::result::Result<(), SqlFailure> {
        for s in sqls {
            self.block(s);
        }
        Ok(())
    }

    fn prepare(&mut self, books: &Bookkeeping) -> Result<()> {
        if self.create_version_table {
            let sql = books.table.create_sql();
            self.block(&sql);
        }
        Ok(())
    }

    fn comment(&mut self, text: &str) {
        self.out.push_str(&format!("-- {text}\n\n"));
    }

    /// A program cannot be written as SQL: a marked comment in its place naming the command
    /// (and how to run it by hand), and a warning on stderr, so the script is never taken for
    /// complete. Its version-table write follows, as online.
    fn run_program(
        &mut self,
        call: &ProgramCall,
        _observer: &mut dyn super::Observer,
    ) -> Result<Option<super::program::Outcome>> {
        let dir = match call.direction {
            Direction::Up => "up",
            Direction::Down => "down",
        };
        let rule = "-- ".to_string() + &"=".repeat(76);
        self.out.push_str(&format!(
            "{rule}\n\
             -- PROGRAM STEP NOT INCLUDED: revision {rev} ({dir}) runs a program, not SQL\n\
             -- ({path}:{line}). This script is incomplete: before the statements that follow,\n\
             -- run it yourself in the migrations directory, against this database:\n\
             --   DATABASE_URL='postgresql://...' RETORT_REVISION={rev} RETORT_DIRECTION={dir} \\\n\
             --   RETORT_MIGRATIONS_DIR=\"$PWD\" sh -c '{cmd}'\n\
             -- and go on only when it exits 0.\n\
             {rule}\n\n",
            rev = call.revision,
            path = call.path,
            line = call.line,
            cmd = call.command.replace('\'', "'\\''"),
        ));
        log::warn!(
            "{}:{}: revision {} ({dir}) is a program step ('{}'): --sql cannot include it; the \
             script is incomplete and has a marked comment in its place (run the program there \
             yourself)",
            call.path,
            call.line,
            call.revision,
            call.command
        );
        self.programs += 1;
        Ok(None)
    }
}

/// Renders `plan` as one SQL script.
pub fn render(
    project: &Project,
    table: &VersionTable,
    plan: &Plan,
    opts: &OfflineOptions,
) -> Result<String> {
    let mut w = SqlWriter {
        out: String::new(),
        create_version_table: opts.create_version_table,
        programs: 0,
    };
    let books = Bookkeeping {
        table,
        records: None,
    };
    let run = RunOptions {
        transaction_per_migration: opts.transaction_per_migration,
        batch: opts.batch,
        ..RunOptions::default()
    };
    crate::policy::refuse_offline_backfills(project, plan)?;
    run_plan(&mut w, project, books, plan, &run, &mut QuietObserver).map_err(|e| e.error)?;
    if w.programs > 0 {
        log::warn!(
            "the SQL script is incomplete: {} program step{} must be run by hand where the \
             script says PROGRAM STEP NOT INCLUDED",
            w.programs,
            crate::words::plural(w.programs)
        );
    }
    let mut out = w.out;
    while out.ends_with("\n\n") {
        out.pop();
    }
    Ok(out)
}

/// The plan for an offline range `[START:]END`: upgrade (`up`) from START (default base), or
/// downgrade, where START is required (offline mode cannot read the current revision). The
/// flag says whether the script must create the version table (an upgrade from base).
pub fn offline_plan(project: &Project, range: &str, up: bool) -> Result<(Plan, bool)> {
    let (start, end) =
        match range.split_once(':') {
            Some((s, e)) => (Some(s), e),
            None if up => (None, range),
            None => return Err(Error::usage(format!(
                "offline downgrade needs a range START:END, got '{range}'"
            ))
            .with_hint(
                "e.g. migrate-down --sql head:base (offline mode cannot read the current revision)",
            )),
        };
    let start_heads: Vec<String> = match start {
        None | Some("") | Some("base") => Vec::new(),
        Some(s) => project.graph.stamp_heads(&[], &[Target::parse(s)?])?,
    };
    let from_base = start_heads.is_empty();
    let plan = if up {
        project
            .graph
            .upgrade_plan(&start_heads, &Target::parse(end)?)?
    } else {
        project
            .graph
            .downgrade_plan(&start_heads, &Target::parse(end)?)?
    };
    Ok((plan, from_base && up))
}

/// `--sql [START:]END` for `migrate-up` (`up`) or `migrate-down`: loads the scripts from
/// `settings` and renders the plan, its transactions as `transaction_per_migration` or
/// `batch` group them; no database is needed.
pub fn sql_for_range(
    settings: &Settings,
    range: &str,
    up: bool,
    transaction_per_migration: bool,
    batch: Option<NonZeroUsize>,
) -> Result<String> {
    let project = Project::load(&settings.migrations_dir)?;
    let (plan, create) = offline_plan(&project, range, up)?;
    let table = VersionTable::new(settings.version_table.clone());
    let opts = OfflineOptions {
        create_version_table: create,
        transaction_per_migration,
        batch,
    };
    render(&project, &table, &plan, &opts)
}

/// Offline `migrate-stamp --sql [START:]END...`: the version-table writes only.
pub fn offline_stamp(
    project: &Project,
    table: &VersionTable,
    revisions: &[String],
    purge: bool,
) -> Result<String> {
    let mut start: Vec<String> = Vec::new();
    let mut ends: Vec<String> = Vec::new();
    for r in revisions {
        match r.split_once(':') {
            Some((s, e)) => {
                if !s.is_empty() && s != "base" {
                    start = project.graph.stamp_heads(&[], &[Target::parse(s)?])?;
                }
                ends.push(e.to_string());
            }
            None => ends.push(r.clone()),
        }
    }
    let target = project
        .graph
        .stamp_heads(&start, &Target::parse_all(&ends)?)?;
    let mut out = String::from("BEGIN;\n\n");
    if start.is_empty() && !purge {
        out.push_str(&table.create_sql());
        out.push_str("\n\n");
    }
    if purge {
        out.push_str(&format!("DELETE FROM {};\n\n", table.qualified()));
        start.clear();
    }
    for op in stamp_ops(&start, &target) {
        out.push_str(&table.op_sql(&op));
        out.push_str("\n\n");
    }
    out.push_str("COMMIT;\n");
    Ok(out)
}
