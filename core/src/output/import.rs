//! `migrate-import`'s report: as text (stdout), its warnings (stderr), and as the JSON
//! document of docs/json.md.

use crate::commands::import::ImportReport;
use crate::plan::Direction;
use serde_json::{json, Value};

fn direction(d: Direction) -> &'static str {
    match d {
        Direction::Up => "upgrade",
        Direction::Down => "downgrade",
    }
}

/// The report for people, on stdout: what was imported (or why not), the unconverted
/// revisions, and the verification's result.
pub fn text(r: &ImportReport, verify_only: bool) -> String {
    let mut out = String::new();
    macro_rules! say {
        ($($t:tt)*) => {{
            out.push_str(&format!($($t)*));
            out.push('\n');
        }};
    }
    let unconverted = r.unconverted();
    if let Some(b) = &r.baseline {
        say!(
            "{} the Alembic history ({} revision{} to {}) as one baseline script: {} (the \
             schema, and {} row{} of {} table{})",
            if r.written {
                "Imported"
            } else {
                "Not imported:"
            },
            b.revisions,
            crate::words::plural(b.revisions),
            b.revision,
            b.path.display(),
            b.rows,
            crate::words::plural(b.rows),
            b.tables,
            crate::words::plural(b.tables)
        );
        if !b.others.is_empty() {
            say!(
                "The other head{} of the history, recorded beside it by empty script{}: {}",
                crate::words::plural(b.others.len()),
                crate::words::plural(b.others.len()),
                b.others
                    .iter()
                    .map(|(rev, path, _)| format!("{rev} ({})", path.display()))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        if b.differences.is_empty() {
            say!(
                "Verified on shadow databases: the baseline gives the schema and rows Alembic's \
                 upgrade leaves."
            );
        } else {
            say!("The baseline does not give what Alembic's upgrade leaves (nothing was written):");
            for d in &b.differences {
                say!("  {d}");
            }
        }
        return out;
    }
    if !verify_only {
        if r.written {
            say!(
                "Imported {} Alembic revision{} into {} (heads: {}):",
                r.revisions.len(),
                crate::words::plural(r.revisions.len()),
                r.dir.display(),
                r.heads.join(", ")
            );
            for rev in &r.revisions {
                let tag = match (&rev.unconverted, &rev.program, rev.transactional) {
                    (Some(_), _, _) => "  (UNCONVERTED: write its SQL)",
                    (None, Some(_), _) => "  (program step: Alembic's own code)",
                    (None, None, false) => "  (transactional: false)",
                    _ => "",
                };
                say!("  {}{tag}", rev.path.display());
            }
            for p in &r.replaced {
                say!("  replaced {}", p.display());
            }
            let programs: Vec<_> = r.revisions.iter().filter(|x| x.program.is_some()).collect();
            if !programs.is_empty() {
                say!(
                    "Program steps: {} revision{} (the revision's own Python, run through \
                     Alembic's operations from the file kept in {}):",
                    programs.len(),
                    crate::words::plural(programs.len()),
                    r.dir.join("alembic").display()
                );
                for rev in programs {
                    say!(
                        "  program {}: {}",
                        rev.revision,
                        rev.program.as_deref().unwrap_or_default()
                    );
                }
            }
        } else if !unconverted.is_empty() && r.verification.is_none() {
            say!(
                "Not imported: {} revision{} cannot be written as SQL (nothing was written):",
                unconverted.len(),
                crate::words::plural(unconverted.len())
            );
        }
        for rev in &unconverted {
            say!(
                "unconverted {}: {}",
                rev.revision,
                rev.unconverted.as_deref().unwrap_or_default()
            );
        }
        if !r.written && !unconverted.is_empty() && r.verification.is_none() {
            say!(
                "Run without --strict to import them as program steps (their own Python, run \
                 through Alembic's operations), write their SQL in Alembic (op.execute), or pass \
                 --allow-unconverted to write them as scripts that fail until their SQL is written."
            );
        }
    }
    if let Some(v) = &r.verification {
        for d in &v.differences {
            say!(
                "difference after the {} of {} ({}): to match Alembic's, retort's schema would need:",
                direction(d.direction),
                d.revision,
                d.message
            );
            for line in &d.differences {
                say!("  {line}");
            }
        }
        if v.ok() {
            say!(
                "Verified on two shadow databases: {} of {} upgrade{}, {} of {} downgrade{}{} \
                 (after each, the schema is Alembic's).",
                v.upgrades,
                v.steps,
                crate::words::plural(v.steps),
                v.downgrades,
                v.steps,
                crate::words::plural(v.steps),
                if v.programs > 0 {
                    format!(
                        ", {} of them program step{}",
                        v.programs,
                        crate::words::plural(v.programs)
                    )
                } else {
                    String::new()
                }
            );
            for n in &v.not_verifiable {
                say!("not verifiable: {n}");
            }
        } else if !verify_only {
            say!("Nothing was written.");
        }
        for n in &v.notes {
            say!("note: {n}");
        }
    } else if r.written {
        say!("Not verified (--no-verify).");
    }
    out
}

/// The warnings, one line each (for stderr): each revision's (`warning: REV: ...`), then the
/// import's own.
pub fn warnings(r: &ImportReport) -> Vec<String> {
    let mut out = Vec::new();
    for rev in &r.revisions {
        for w in &rev.warnings {
            out.push(format!("warning: {}: {w}", rev.revision));
        }
    }
    for w in &r.warnings {
        out.push(format!("warning: {w}"));
    }
    out
}

/// The JSON document (docs/json.md#migrate-import).
pub fn json(r: &ImportReport) -> Value {
    let revisions: Vec<_> = r
        .revisions
        .iter()
        .map(|rev| {
            json!({
                "revision": rev.revision,
                "message": rev.message,
                "path": rev.path.display().to_string(),
                "source": rev.source,
                "transactional": rev.transactional,
                "unconverted": rev.unconverted,
                "program": rev.program,
                "warnings": rev.warnings,
            })
        })
        .collect();
    let verification = r.verification.as_ref().map(|v| {
        json!({
            "ok": v.ok(),
            "upgrades": v.upgrades,
            "downgrades": v.downgrades,
            "steps": v.steps,
            "program_steps": v.programs,
            "not_verifiable": v.not_verifiable,
            "notes": v.notes,
            "differences": v.differences.iter().map(|d| json!({
                "revision": d.revision,
                "message": d.message,
                "direction": direction(d.direction),
                "differences": d.differences,
            })).collect::<Vec<_>>(),
            "seconds": r.verify_time.as_secs_f64(),
        })
    });
    json!({
        "version": 1,
        "ok": r.ok(),
        "written": r.written,
        "dir": r.dir.display().to_string(),
        "python": r.python,
        "alembic_version": r.alembic_version,
        "heads": r.heads,
        "revisions": revisions,
        "replaced": r.replaced.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "verification": verification,
        "warnings": r.warnings,
        "export_seconds": r.export_time.as_secs_f64(),
        "baseline": r.baseline.as_ref().map(|b| json!({
            "revision": b.revision,
            "path": b.path.display().to_string(),
            "heads": std::iter::once(&b.revision).chain(b.others.iter().map(|o| &o.0)).collect::<Vec<_>>(),
            "paths": std::iter::once(&b.path).chain(b.others.iter().map(|o| &o.1))
                .map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "revisions": b.revisions,
            "tables": b.tables,
            "rows": b.rows,
            "differences": b.differences,
        })),
    })
}
