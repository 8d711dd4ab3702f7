//! Lint findings for people (`path:line:col  level  rule  message`, a help line), for programs
//! (JSON, see docs/json.md) and for GitHub Actions (workflow-command annotations, so a pull
//! request shows each finding on its line).

use crate::lint::{Finding, LintReport};
use serde_json::{json, Value};

/// One lint finding as the log and `migrate-check`'s text show it: `path:line:col  level
/// rule  message`, and its help on the next line.
pub fn finding_line(f: &Finding) -> String {
    let mut s = format!(
        "{}:{}:{}  {}  {}  {}",
        f.path,
        f.line,
        f.col,
        f.level.as_str(),
        f.rule,
        f.message
    );
    if let Some(h) = &f.help {
        s.push_str(&format!("\n    help: {h}"));
    }
    s
}

/// Every finding, then one summary line.
pub fn text(r: &LintReport) -> String {
    let mut out = String::new();
    for f in &r.findings {
        out.push_str(&finding_line(f));
        out.push('\n');
    }
    out.push_str(&summary(r));
    out.push('\n');
    out
}

pub fn summary(r: &LintReport) -> String {
    let n = r.revisions.len();
    let plural = |k: usize, w: &str| format!("{k} {w}{}", crate::words::plural(k));
    let mut s = format!(
        "lint: {}, {} in {}",
        plural(r.errors(), "error"),
        plural(r.warnings(), "warning"),
        plural(n, "script")
    );
    if r.allowed > 0 {
        s.push_str(&format!(" ({} allowed by -- retort:allow)", r.allowed));
    }
    if r.out_of_scope > 0 {
        s.push_str(&format!(
            " ({} on tables created by this run or empty before it, not counted)",
            r.out_of_scope
        ));
    }
    s
}

pub fn json(r: &LintReport) -> Value {
    json!({
        "revisions": r.revisions,
        "errors": r.errors(),
        "warnings": r.warnings(),
        "allowed": r.allowed,
        "out_of_scope": r.out_of_scope,
        "findings": r.findings.iter().map(|f| json!({
            "path": f.path,
            "revision": f.revision,
            "line": f.line,
            "column": f.col,
            "level": f.level.as_str(),
            "rule": f.rule,
            "message": f.message,
            "help": f.help,
        })).collect::<Vec<_>>(),
    })
}

/// `::error file=...,line=...,col=...,title=rule::message` per finding (GitHub's escaping:
/// `%`, CR and LF in the message; also `:` and `,` in properties).
pub fn github(r: &LintReport) -> String {
    let mut out = String::new();
    for f in &r.findings {
        let cmd = match f.level {
            crate::lint::Level::Error => "error",
            _ => "warning",
        };
        let mut msg = f.message.clone();
        if let Some(h) = &f.help {
            msg.push_str(&format!("\nhelp: {h}"));
        }
        out.push_str(&format!(
            "::{cmd} file={},line={},col={},title={}::{}\n",
            prop(&f.path),
            f.line,
            f.col,
            prop(&f.rule),
            data(&msg)
        ));
    }
    out
}

fn data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn prop(s: &str) -> String {
    data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::Level;

    #[test]
    fn annotations_escape_what_github_parses() {
        let r = LintReport {
            revisions: vec!["002".into()],
            findings: vec![Finding {
                path: "migrations/002_a,b.sql".into(),
                revision: "002".into(),
                line: 7,
                col: 3,
                level: Level::Error,
                rule: "missing-down".into(),
                message: "100% sure: no down".into(),
                help: Some("add one".into()),
            }],
            allowed: 0,
            out_of_scope: 0,
        };
        assert_eq!(
            github(&r),
            "::error file=migrations/002_a%2Cb.sql,line=7,col=3,title=missing-down::100%25 sure: no down%0Ahelp: add one\n"
        );
        assert!(text(&r).starts_with(
            "migrations/002_a,b.sql:7:3  error  missing-down  100% sure: no down\n    help: add one\n"
        ));
        assert!(text(&r).ends_with("lint: 1 error, 0 warnings in 1 script\n"));
    }
}
