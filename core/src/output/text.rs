//! Text for people: the `--dry-run` plan, and (re-exported from [`crate::words`]) the heads,
//! durations and plurals every command's text uses.

use crate::db::VersionTable;
use crate::exec::step_title;
use crate::plan::Plan;
use crate::project::Project;
pub use crate::words::{fmt_duration, heads_text, plural};

/// The `--dry-run` text: what would run, in order, with the version-table writes. With
/// `max_steps` (`--batch N`; 1 for `--transaction-per-migration`), each COMMIT between the
/// run's transactions is shown where it comes, with the revision the database is at then.
pub fn describe_plan(
    project: &Project,
    table: &VersionTable,
    plan: &Plan,
    max_steps: Option<usize>,
) -> String {
    let mut out = String::new();
    if plan.is_empty() {
        out.push_str(&format!(
            "Nothing to do: the database is at {}.\n",
            heads_text(&plan.start_heads)
        ));
        return out;
    }
    out.push_str(&format!(
        "Plan: {} step{} from {} to {}\n",
        plan.steps.len(),
        plural(plan.steps.len()),
        heads_text(&plan.start_heads),
        heads_text(&plan.end_heads)
    ));
    let segments = project.segments(plan, max_steps);
    let mut heads = plan.start_heads.clone();
    for (i, step) in plan.steps.iter().enumerate() {
        step.apply_version_ops(&mut heads);
        let script = project.script(&step.revision).ok();
        let path = script
            .map(|s| s.path.display().to_string())
            .unwrap_or_default();
        let program = script.and_then(|s| s.program(step.direction));
        let nt = script.map(|s| !s.transactional).unwrap_or(false);
        out.push_str(&format!(
            "  {}  [{}{}]\n",
            step_title(project, step),
            path,
            if program.is_some() {
                ", program step"
            } else if nt {
                ", non-transactional"
            } else {
                ""
            }
        ));
        if let Some(p) = program {
            out.push_str(&format!(
                "      run: {} (after a COMMIT; recorded when it exits 0)\n",
                p.command
            ));
        }
        for op in &step.version_ops {
            out.push_str(&format!("      {}\n", table.op_sql(op)));
        }
        let ends = segments.iter().position(|seg| seg.steps.end == i + 1);
        if let (Some(k), Some(_), true) = (ends, max_steps, segments.len() > 1) {
            out.push_str(&format!(
                "  COMMIT (transaction {} of {}: the database is at {})\n",
                k + 1,
                segments.len(),
                heads_text(&heads)
            ));
        }
    }
    out
}
