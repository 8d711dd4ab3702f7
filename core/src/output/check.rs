//! `migrate-check`'s report for people: as text (the lint's findings, the round trip's line,
//! then `OK: ...` or one `problem [code]: ...` line each) and as GitHub Actions annotations
//! (`--format github`: the findings and the problems as annotations on the diff, then the same
//! closing lines). The JSON document is [`crate::output::json::check`].

use crate::commands::check::CheckReport;
use crate::output::text::{fmt_duration, heads_text, plural};

/// The text report.
pub fn text(report: &CheckReport) -> String {
    let mut out = String::new();
    if let Some(l) = &report.lint {
        out.push_str(&crate::output::lint::text(l));
    }
    if let Some(r) = &report.round_trip {
        out.push_str(&format!(
            "round trip: {} revision{} upgraded, downgraded without a trace and upgraded again in {}\n",
            r.passed.len(),
            plural(r.passed.len()),
            fmt_duration(r.elapsed)
        ));
        for kept in &r.accepted {
            out.push_str(&format!("  accepted: {kept}\n"));
        }
    }
    for f in &report.findings {
        out.push_str(&format!("finding [{}]: {}\n", f.code, f.message));
    }
    out + &verdict(report)
}

/// The GitHub Actions annotations, then the closing lines of the text.
pub fn github(report: &CheckReport) -> String {
    let mut out = String::new();
    if let Some(l) = &report.lint {
        out.push_str(&crate::output::lint::github(l));
    }
    for p in &report.problems {
        out.push_str(&format!(
            "::error title=migrate-check {}::{}\n",
            p.code,
            p.message.replace('\n', "%0A")
        ));
    }
    out + &verdict(report)
}

/// `OK: 1 head (c); the database is at c; <drift line>`, or one line per problem.
fn verdict(report: &CheckReport) -> String {
    if report.ok() {
        let mut at = match &report.current {
            Some(c) => format!("; the database is at {}", heads_text(c)),
            None => String::new(),
        };
        if let Some(d) = &report.drift {
            at = format!("{at}; {d}");
        }
        return format!(
            "OK: {} head{} ({}){at}\n",
            report.heads.len(),
            plural(report.heads.len()),
            report.heads.join(", ")
        );
    }
    report
        .problems
        .iter()
        .map(|p| format!("problem [{}]: {}\n", p.code, p.message))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::check::Problem;

    #[test]
    fn ok_names_the_heads_the_database_and_the_drift_check() {
        let r = CheckReport {
            heads: vec!["c".into()],
            current: Some(vec!["c".into()]),
            drift: Some("no schema file (schema.sql): schema drift not checked".into()),
            ..Default::default()
        };
        assert_eq!(
            text(&r),
            "OK: 1 head (c); the database is at c; no schema file (schema.sql): schema drift not checked\n"
        );
    }

    #[test]
    fn problems_are_listed_and_annotated_for_github() {
        let r = CheckReport {
            heads: vec!["c".into()],
            problems: vec![Problem {
                code: "pending",
                message: "behind\nby one".into(),
            }],
            ..Default::default()
        };
        assert_eq!(text(&r), "problem [pending]: behind\nby one\n");
        assert_eq!(
            github(&r),
            "::error title=migrate-check pending::behind%0Aby one\nproblem [pending]: behind\nby one\n"
        );
    }
}
