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
            if rec.checksum.trim() != script.checksum {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::parse_script;
    use std::path::{Path, PathBuf};

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
