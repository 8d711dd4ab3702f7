//! Lint findings for people (`path:line:col  level  rule  message`, a help line), for programs
//! (JSON, see docs/json.md) and for GitHub Actions (workflow-command annotations, so a pull
//! request shows each finding on its line).

use crate::lint::{Finding, LintReport};
use crate::words::plural;
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

/// What a run (`migrate-up`, a fleet's target) shows of the lint of its plan: the error-level
/// findings (what refuses it, or what `--allow-unsafe` lets through), and one summary line. A
/// deploy log is not the place for style warnings: the line says how many there are and where
/// to read them (`migrate-check --lint`). `every` (`-v`): every finding, and the full summary.
/// `summary` (`--lint`): the summary line also when there is nothing to report. `quiet`: the
/// error-level findings only.
pub fn for_run(r: &LintReport, every: bool, summary_always: bool, quiet: bool) -> String {
    let mut out = String::new();
    for f in r
        .findings
        .iter()
        .filter(|f| every || f.level == crate::lint::Level::Error)
    {
        out.push_str(&finding_line(f));
        out.push('\n');
    }
    if quiet {
        return out;
    }
    let (errors, warnings) = (r.errors(), r.warnings());
    let line = if every || errors > 0 {
        let mut line = r.summary();
        if !every && warnings > 0 {
            line.push_str(" (migrate-check --lint lists the warnings)");
        }
        Some(line)
    } else if warnings > 0 {
        let mut scripts: Vec<&str> = r.findings.iter().map(|f| f.path.as_str()).collect();
        scripts.sort_unstable();
        scripts.dedup();
        Some(format!(
            "lint: {warnings} warning{} in {} script{} (migrate-check --lint lists them)",
            plural(warnings),
            scripts.len(),
            plural(scripts.len())
        ))
    } else if summary_always {
        Some(r.summary())
    } else {
        None
    };
    if let Some(line) = line {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// [`for_run`] for a run that logs (a library caller's, a fleet's target): the error-level
/// findings as warnings, the summary line at info.
pub fn log_run(r: &LintReport) {
    for f in r
        .findings
        .iter()
        .filter(|f| f.level == crate::lint::Level::Error)
    {
        log::warn!("{}", finding_line(f));
    }
    for f in r
        .findings
        .iter()
        .filter(|f| f.level != crate::lint::Level::Error)
    {
        log::debug!("{}", finding_line(f));
    }
    if r.errors() + r.warnings() > 0 {
        let shown = for_run(r, false, false, false);
        if let Some(line) = shown.lines().last() {
            log::info!("{line}");
        }
    }
}

/// `lint: 1 error, 0 warnings in 1 script` ([`LintReport::summary`]).
pub fn summary(r: &LintReport) -> String {
    r.summary()
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
