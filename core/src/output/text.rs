//! Text for people: heads, durations, plurals and the `--dry-run` plan.

use crate::db::VersionTable;
use crate::exec::step_title;
use crate::plan::Plan;
use crate::project::Project;
use std::time::Duration;

/// "base (no revision applied)" for no heads, else the heads joined by ", ".
pub fn heads_text(heads: &[String]) -> String {
    if heads.is_empty() {
        "base (no revision applied)".into()
    } else {
        heads.join(", ")
    }
}

/// `12.3 ms` under a second, `1.25 s` above.
pub fn fmt_duration(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 1000.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.2} s", ms / 1000.0)
    }
}

/// `""` for one, `"s"` otherwise.
pub fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

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
        crate::exec::apply_ops(&mut heads, step);
        let script = project.script(&step.revision).ok();
        let path = script
            .map(|s| s.path.display().to_string())
            .unwrap_or_default();
        let nt = script.map(|s| !s.transactional).unwrap_or(false);
        out.push_str(&format!(
            "  {}  [{}{}]\n",
            step_title(project, step),
            path,
            if nt { ", non-transactional" } else { "" }
        ));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_heads_read_as_people_write_them() {
        assert_eq!(fmt_duration(Duration::from_micros(12_340)), "12.3 ms");
        assert_eq!(fmt_duration(Duration::from_millis(1_250)), "1.25 s");
        assert_eq!(heads_text(&[]), "base (no revision applied)");
        assert_eq!(heads_text(&["a".into(), "b".into()]), "a, b");
        assert_eq!(plural(1), "");
        assert_eq!(plural(0), "s");
    }
}
