//! Pure pre-run checks: given the plan, the scripts and what the database recorded, decide
//! whether a run may go ahead. The dry run, the real run and `migrate-check` all ask these
//! functions, so a dry run cannot print a plan that the real run then refuses, and a refusal
//! comes before anything is written.

use crate::error::{Detail, Error, ErrorKind, Result};
use crate::graph::{RevisionGraph, Target};
use crate::plan::{Direction, Plan};
use crate::project::Project;
use std::collections::{BTreeSet, HashMap};

/// An applied revision's record.
#[derive(Debug, Clone)]
pub struct AppliedRecord {
    pub revision: String,
    pub checksum: String,
    pub applied_at: Option<String>,
    pub how: String,
}

/// What the caller allows.
#[derive(Debug, Clone, Copy, Default)]
pub struct Policy {
    /// Proceed although an applied script's checksum changed.
    pub ignore_checksums: bool,
}

/// An applied script whose text changed since it was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChecksumMismatch {
    pub revision: String,
    pub path: String,
    pub recorded: String,
    pub current: String,
}

impl ChecksumMismatch {
    pub fn describe(&self) -> String {
        format!(
            "{} (revision {}) was edited after it was applied: recorded checksum {}, now {}",
            self.path,
            self.revision,
            &self.recorded[..12.min(self.recorded.len())],
            &self.current[..12.min(self.current.len())]
        )
    }
}

/// Every revision applied when the version table holds `heads` (ancestors through parents and
/// dependencies, the heads included), oldest first.
pub fn applied_set(graph: &RevisionGraph, heads: &[String]) -> Result<Vec<String>> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for h in heads {
        for step in graph.upgrade_plan(&[], &Target::Rev(h.clone()))?.steps {
            if seen.insert(step.revision.clone()) {
                out.push(step.revision);
            }
        }
    }
    Ok(out)
}

/// Applied scripts (of `applied`) whose checksum differs from the recorded one. Revisions
/// without a record (adopted later) are not mismatches.
pub fn checksum_mismatches(
    project: &Project,
    applied: &[String],
    records: &HashMap<String, AppliedRecord>,
) -> Result<Vec<ChecksumMismatch>> {
    let mut out = Vec::new();
    for rev in applied {
        if let Some(rec) = records.get(rev) {
            let script = project.script(rev)?;
            if !script.matches_checksum(&rec.checksum) {
                out.push(ChecksumMismatch {
                    revision: rev.clone(),
                    path: script.path.display().to_string(),
                    recorded: rec.checksum.trim().to_string(),
                    current: script.checksum.clone(),
                });
            }
        }
    }
    Ok(out)
}

/// Records of `applied` that hold the checksum form covering the down section too (written
/// before it was left out) of a script that has not changed since: (revision, recorded,
/// current form). A run converts them, so that editing such a script's down section later is
/// not taken for an edit of what was applied.
pub fn old_form_checksums(
    project: &Project,
    applied: &[String],
    records: &HashMap<String, AppliedRecord>,
) -> Result<Vec<(String, String, String)>> {
    let mut out = Vec::new();
    for rev in applied {
        let Some(rec) = records.get(rev) else {
            continue;
        };
        let script = project.script(rev)?;
        let recorded = rec.checksum.trim();
        if script.legacy_checksum.as_deref() == Some(recorded) {
            out.push((rev.clone(), recorded.to_string(), script.checksum.clone()));
        }
    }
    Ok(out)
}

/// The INVALID indexes that retort's own failed or interrupted steps said they left (the
/// `note: INVALID index(es) now in the database: a, b (clean up with: ...)` line of a run's
/// error, as the audit log keeps it), from the texts of failed audit rows.
pub fn invalid_indexes_left_by_runs<'a>(errors: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out = Vec::new();
    for text in errors {
        for line in text.lines() {
            let Some(rest) = line
                .split_once("INVALID index now in the database: ")
                .or_else(|| line.split_once("INVALID indexes now in the database: "))
                .map(|(_, r)| r)
            else {
                continue;
            };
            let names = rest.split(" (clean up with:").next().unwrap_or_default();
            for n in names.split(", ").map(str::trim).filter(|n| !n.is_empty()) {
                if !out.iter().any(|o| o == n) {
                    out.push(n.to_string());
                }
            }
        }
    }
    out
}

/// Whether one of `statements` builds the index named `bare` (its name without schema, in
/// lowercase) concurrently: `CREATE [UNIQUE] INDEX CONCURRENTLY [IF NOT EXISTS] bare ON ...`.
pub fn builds_index(statements: &[String], bare: &str) -> bool {
    statements.iter().any(|st| {
        let words: Vec<String> = st
            .split_whitespace()
            .map(|w| w.trim_matches('"').to_lowercase())
            .collect();
        let w: Vec<&str> = words.iter().map(String::as_str).collect();
        let after = match w.as_slice() {
            ["create", "index", "concurrently", rest @ ..] => rest,
            ["create", "unique", "index", "concurrently", rest @ ..] => rest,
            _ => return false,
        };
        let after = match after {
            ["if", "not", "exists", rest @ ..] => rest,
            rest => rest,
        };
        after
            .first()
            .is_some_and(|name| name.rsplit('.').next().unwrap_or(name).trim_matches('"') == bare)
            && after.get(1) == Some(&"on")
    })
}

/// The refusal when applied scripts were edited.
pub fn checksum_error(bad: &[ChecksumMismatch]) -> Error {
    let mut msg = format!(
        "{} applied script{} changed since {} applied:",
        bad.len(),
        crate::words::plural(bad.len()),
        if bad.len() == 1 {
            "it was"
        } else {
            "they were"
        }
    );
    for m in bad {
        msg.push_str(&format!(
            "\n  {}\n    recorded {}\n    now      {}",
            m.path, m.recorded, m.current
        ));
    }
    let revs: Vec<&str> = bad.iter().map(|m| m.revision.as_str()).collect();
    Error::new(ErrorKind::State, msg)
        .with_hint(format!(
            "revert the edit and put the change in a new revision; if the edit is deliberate (the database already matches it), run: migrate-stamp --rehash {}; to proceed once anyway: --ignore-checksums",
            revs.join(" ")
        ))
        .with_detail(Detail::ChecksumMismatch {
            scripts: bad
                .iter()
                .map(|m| (m.revision.clone(), m.path.clone()))
                .collect(),
        })
}

/// Every downgrade step of `plan` has a `-- migrate:down` section.
pub fn require_down_sections(project: &Project, plan: &Plan) -> Result<()> {
    for step in &plan.steps {
        project.script(&step.revision)?.section(step.direction)?;
    }
    Ok(())
}

/// Offline SQL (`--sql`) has no backfill steps to write: a backfill runs range by range, each
/// range in its own transaction with its checkpoint, reading the key's range and pacing itself
/// on the database; one script would be the single long UPDATE it avoids. Every backfill step of
/// the plan is named.
pub fn refuse_offline_backfills(project: &Project, plan: &Plan) -> Result<()> {
    let mut found = Vec::new();
    for step in plan.steps.iter().filter(|s| s.direction == Direction::Up) {
        let script = project.script(&step.revision)?;
        if let Some(b) = &script.backfill {
            found.push(format!(
                "  {} ({}:{}): backfill of {}.{}",
                step.revision,
                script.path.display(),
                b.line,
                b.table,
                b.key
            ));
        }
    }
    if found.is_empty() {
        return Ok(());
    }
    let first = plan
        .steps
        .iter()
        .position(|s| found[0].starts_with(&format!("  {} ", s.revision)))
        .unwrap_or(0);
    let before = first
        .checked_sub(1)
        .map(|i| format!(" (e.g. --sql up to {})", plan.steps[i].revision))
        .unwrap_or_default();
    Err(Error::usage(format!(
        "--sql cannot write {} backfill step{}: a backfill runs range by range, each range in its own transaction with its checkpoint, \
         which one SQL script cannot do (it would be the single long UPDATE the backfill avoids):\n{}",
        found.len(),
        crate::words::plural(found.len()),
        found.join("\n")
    ))
    .with_hint(format!(
        "write the SQL for the revisions before the first backfill{before}, run the backfill online with migrate-up, then the rest"
    )))
}

/// The refusals of a run, in the order a user should hear them: edited applied scripts (for
/// an upgrade, unless allowed), then missing down sections.
pub fn check_run(
    project: &Project,
    plan: &Plan,
    records: &HashMap<String, AppliedRecord>,
    policy: Policy,
) -> Result<()> {
    let upgrading = plan.steps.iter().all(|s| s.direction == Direction::Up);
    if upgrading && !policy.ignore_checksums {
        let applied = applied_set(&project.graph, &plan.start_heads)?;
        let bad = checksum_mismatches(project, &applied, records)?;
        if !bad.is_empty() {
            return Err(checksum_error(&bad));
        }
    }
    require_down_sections(project, plan)
}

/// `plan` cut before its first up step of a contract revision (`-- phase: contract`), and that
/// revision; the plan as it is and None when it has none. The steps after it (even of another
/// branch) wait for the next run with `--contract`: a run stops there as it stops at a
/// failure, so that what it did is one prefix of the plan.
pub fn before_contract(project: &Project, plan: Plan) -> (Plan, Option<String>) {
    let cut = plan.steps.iter().position(|s| {
        s.direction == crate::plan::Direction::Up
            && project
                .script(&s.revision)
                .is_ok_and(|x| x.phase == crate::script::Phase::Contract)
    });
    let Some(i) = cut else {
        return (plan, None);
    };
    let stopped = plan.steps[i].revision.clone();
    let mut heads = plan.start_heads.clone();
    let steps: Vec<_> = plan.steps.into_iter().take(i).collect();
    for s in &steps {
        s.apply_version_ops(&mut heads);
    }
    (
        Plan {
            steps,
            start_heads: plan.start_heads,
            end_heads: heads,
        },
        Some(stopped),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::parse_script;
    use std::path::{Path, PathBuf};

    #[test]
    fn the_invalid_indexes_a_run_left_and_the_statements_that_build_them() {
        let errors = [
            "interrupted by SIGINT during 002\n  statement: CREATE INDEX CONCURRENTLY a ON t (x)\nnote: INVALID index now in the database: public.a (clean up with: DROP INDEX CONCURRENTLY IF EXISTS public.a;)",
            "migration failed\nnote: INVALID indexes now in the database: public.b, s.\"C\" (clean up with: ...)",
            "no index here",
        ];
        assert_eq!(
            invalid_indexes_left_by_runs(errors.into_iter()),
            ["public.a", "public.b", "s.\"C\""]
        );
        let st = |s: &str| vec![s.to_string()];
        assert!(builds_index(
            &st("CREATE INDEX CONCURRENTLY a ON t (x)"),
            "a"
        ));
        assert!(builds_index(
            &st("create unique index concurrently if not exists public.a\n  on t (x)"),
            "a"
        ));
        assert!(
            !builds_index(&st("CREATE INDEX a ON t (x)"), "a"),
            "not concurrent"
        );
        assert!(!builds_index(
            &st("CREATE INDEX CONCURRENTLY ab ON t (x)"),
            "a"
        ));
        assert!(!builds_index(&st("DROP INDEX CONCURRENTLY a"), "a"));
    }

    fn project() -> Project {
        let a = "-- revision: a\n-- migrate:up\nCREATE TABLE a (id int);\n-- migrate:down\nDROP TABLE a;\n";
        let b = "-- revision: b\n-- down_revision: a\n-- migrate:up\nCREATE TABLE b (id int);\n";
        let c = "-- revision: c\n-- down_revision: b\n-- migrate:up\nCREATE TABLE c (id int);\n-- migrate:down\nDROP TABLE c;\n";
        let scripts = [("a", a), ("b", b), ("c", c)]
            .iter()
            .map(|(r, t)| parse_script(&PathBuf::from(format!("m/{r}.sql")), t.as_bytes()).unwrap())
            .collect();
        Project::from_scripts(Path::new("m"), scripts).unwrap()
    }

    #[test]
    fn an_upgrade_stops_before_the_first_contract_revision_and_names_it() {
        let texts = [
            ("a", "-- revision: a\n-- migrate:up\n"),
            (
                "b",
                "-- revision: b\n-- down_revision: a\n-- phase: contract\n-- migrate:up\n",
            ),
            (
                "c",
                "-- revision: c\n-- down_revision: b\n-- phase: contract\n-- migrate:up\n",
            ),
        ];
        let scripts = texts
            .iter()
            .map(|(r, t)| parse_script(&PathBuf::from(format!("m/{r}.sql")), t.as_bytes()).unwrap())
            .collect();
        let p = Project::from_scripts(Path::new("m"), scripts).unwrap();
        let plan = p.graph.upgrade_plan(&[], &Target::Heads).unwrap();
        let (kept, stopped) = before_contract(&p, plan.clone());
        assert_eq!(stopped.as_deref(), Some("b"));
        assert_eq!(kept.steps.len(), 1);
        assert_eq!(kept.end_heads, ["a"]);
        // past the first, the next contract revision stops the next plan
        let plan = p.graph.upgrade_plan(&["b".into()], &Target::Heads).unwrap();
        assert_eq!(before_contract(&p, plan).1.as_deref(), Some("c"));
        // a plan without one is left as it is
        let plan = p
            .graph
            .upgrade_plan(&[], &Target::parse("a").unwrap())
            .unwrap();
        let (same, none) = before_contract(&p, plan.clone());
        assert_eq!((same, none), (plan, None));
    }

    fn record(p: &Project, rev: &str, edited: bool) -> (String, AppliedRecord) {
        let mut checksum = p.script(rev).unwrap().checksum.clone();
        if edited {
            checksum = "0".repeat(64);
        }
        (
            rev.to_string(),
            AppliedRecord {
                revision: rev.into(),
                checksum,
                applied_at: None,
                how: "up".into(),
            },
        )
    }

    #[test]
    fn an_upgrade_over_an_edited_applied_script_is_refused_unless_allowed() {
        let p = project();
        let plan = p.graph.upgrade_plan(&["b".into()], &Target::Heads).unwrap();
        let records: HashMap<_, _> = [record(&p, "a", true), record(&p, "b", false)]
            .into_iter()
            .collect();
        let e = check_run(&p, &plan, &records, Policy::default()).unwrap_err();
        assert_eq!(e.kind, ErrorKind::State);
        assert_eq!(
            e.detail,
            Detail::ChecksumMismatch {
                scripts: vec![("a".into(), "m/a.sql".into())]
            }
        );
        let allow = Policy {
            ignore_checksums: true,
        };
        check_run(&p, &plan, &records, allow).unwrap();
        // no records at all (a database Alembic migrated): nothing to compare, no refusal
        check_run(&p, &plan, &HashMap::new(), Policy::default()).unwrap();
    }

    #[test]
    fn a_downgrade_through_a_script_without_a_down_section_is_refused() {
        let p = project();
        let plan = p
            .graph
            .downgrade_plan(&["c".into()], &Target::Base)
            .unwrap();
        let e = check_run(&p, &plan, &HashMap::new(), Policy::default()).unwrap_err();
        assert!(e.message.contains("m/b.sql"), "{e}");
        let one = p
            .graph
            .downgrade_plan(&["c".into()], &Target::parse("-1").unwrap())
            .unwrap();
        check_run(&p, &one, &HashMap::new(), Policy::default()).unwrap();
    }
}
