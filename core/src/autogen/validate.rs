//! Every generated revision is validated before it is written, on the replay it was computed
//! from: its up sections applied must give the schema file's schema, and its down sections
//! applied after must give the replay again. A failed validation is an error showing what is
//! left (and nothing is written).

use crate::error::{Error, ErrorKind, Result};
use crate::plan::Plan;
use crate::project::Project;
use crate::schema::diff::{diff, Unhandled};
use crate::schema::model::Schema;
use crate::schema::render::{render_ops, Op};
use crate::schema::workspace::{execute, Workspace};
use crate::schema::DiffOptions;
use crate::words;
use postgres::Client;
use std::time::Instant;

/// What the validation runs on.
pub(super) struct Validation<'a> {
    pub ws: &'a Workspace<'a>,
    pub client: &'a mut Client,
    /// The project with the generated scripts added.
    pub project: &'a Project,
    pub unhandled: &'a [Unhandled],
    /// Check the up sections only: a vector swap's chain ends with the drop of the old column,
    /// which has no down section.
    pub up_only: bool,
}

impl Validation<'_> {
    /// Up from `start_heads` to `last` must give `wanted`; down from there to `down_target`
    /// must give `replayed`.
    pub fn run(
        mut self,
        start_heads: &[String],
        last: &str,
        down_target: &str,
        wanted: &Schema,
        replayed: &Schema,
    ) -> Result<()> {
        let t0 = Instant::now();
        let plan = self
            .project
            .graph
            .upgrade_plan(start_heads, &crate::graph::Target::parse(last)?)?;
        self.apply_and_compare(
            &plan,
            wanted,
            "the generated up section does not apply to the replayed migrations",
            "after the generated up section, the schema still differs from the schema file",
        )?;
        if self.up_only {
            return Ok(());
        }
        let plan = self
            .project
            .graph
            .downgrade_plan(&plan.end_heads, &crate::graph::Target::parse(down_target)?)?;
        self.apply_and_compare(
            &plan,
            replayed,
            "the generated down section does not apply",
            "after the generated down section, the schema differs from the replayed migrations",
        )?;
        log::debug!(
            "validated the revision(s) in {}",
            words::fmt_duration(t0.elapsed())
        );
        Ok(())
    }

    /// One validation pass: run a plan, then require an empty diff.
    fn apply_and_compare(
        &mut self,
        plan: &Plan,
        want: &Schema,
        fails: &str,
        differs: &str,
    ) -> Result<()> {
        let table = self.ws.version_table();
        execute(self.client, self.project, &table, plan, None)
            .map_err(|e| validation_error(e, fails, self.unhandled))?;
        let got = self.ws.read(self.client)?;
        let left = diff(&got, want, &DiffOptions::default());
        if !left.is_empty() {
            return Err(left_over(&left, differs));
        }
        Ok(())
    }
}

fn validation_error(e: Error, what: &str, unhandled_list: &[Unhandled]) -> Error {
    let mut err = Error::new(
        ErrorKind::Migration,
        format!("validation failed: {what}: {}", e.message),
    )
    .with_hint("nothing was written; fix schema.sql or write this revision by hand");
    let differing: Vec<String> = unhandled_list
        .iter()
        .filter(|u| u.differs())
        .map(|u| u.describe("the migrations", "the schema file"))
        .collect();
    if !differing.is_empty() {
        err = err.with_hint(format!(
            "nothing was written; the revision may need objects autogenerate does not compare: {} — add them by hand in an earlier revision",
            differing.join("; ")
        ));
    }
    err
}

fn left_over(ops: &[Op], what: &str) -> Error {
    Error::new(ErrorKind::Migration, format!("validation failed: {what}; remaining difference:\n{}", indent(&render_ops(ops))))
        .with_hint("nothing was written; this is a gap in autogenerate: write this revision by hand (and report it)")
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("    {l}\n")).collect()
}
