//! The import's verification: on two shadow databases, Alembic's own migrations (online,
//! through the project's env.py) and retort's scripts, one revision at a time, in the order of
//! retort's plan — every upgrade from base to the heads, then every downgrade back to base —
//! with the two catalogs compared (introspection and the schema diff) after every step. The
//! first step after which they differ stops the walk and is named with the objects.

use super::helper::Helper;
use super::render::Export;
use crate::config::{Settings, VersionTableName};
use crate::db::VersionTable;
use crate::error::Result;
use crate::graph::Target;
use crate::plan::{Direction, Plan, Step};
use crate::project::Project;
use crate::schema::diff::{changes, unhandled};
use crate::schema::introspect::{introspect, IntrospectOptions};
use crate::schema::shadow::ShadowServer;
use crate::schema::workspace::{after_shadows, execute, relations_to_exclude};
use crate::schema::{Change, DiffOptions};

/// After which step the schemas differ, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub revision: String,
    pub message: String,
    pub direction: Direction,
    /// What retort's database would need to become Alembic's, one line per object; or why
    /// retort's script failed where Alembic's revision ran.
    pub differences: Vec<String>,
}

/// What the verification did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verification {
    /// Steps compared equal, per direction.
    pub upgrades: usize,
    pub downgrades: usize,
    /// Steps that could not be compared (an unconverted revision, one without a downgrade).
    pub notes: Vec<String>,
    /// Empty when every compared step matched.
    pub differences: Vec<Difference>,
}

impl Verification {
    pub fn ok(&self) -> bool {
        self.differences.is_empty()
    }
}

/// Verifies `project` (the scripts) against the Alembic project behind `helper`.
pub fn verify(
    project: &Project,
    settings: &Settings,
    server: &ShadowServer,
    helper: &Helper,
    export: &Export,
) -> Result<Verification> {
    after_shadows(verify_inner(project, settings, server, helper, export))
}

/// The two sides: a shadow and what reads it.
struct Side {
    client: postgres::Client,
    excl: IntrospectOptions,
    /// Where retort's program steps run (retort's side only).
    programs: Option<crate::exec::program::ProgramEnv>,
}

fn verify_inner(
    project: &Project,
    settings: &Settings,
    server: &ShadowServer,
    helper: &Helper,
    export: &Export,
) -> Result<Verification> {
    let alembic_db = server.create()?;
    let retort_db = server.create()?;
    let mut session = helper.session(&alembic_db.url)?;
    let table = VersionTable::new(settings.version_table.clone());
    let mut ours = Side {
        client: retort_db.connect()?,
        excl: relations_to_exclude(settings),
        programs: Some(crate::exec::program::ProgramEnv {
            url: retort_db.url.clone(),
            dir: project.dir.clone(),
            schema: None,
        }),
    };
    let mut alembic_excl = relations_to_exclude(settings);
    alembic_excl.exclude_relations.push(
        VersionTable::new(VersionTableName {
            schema: export.version_table_schema.clone(),
            name: export.version_table.clone(),
        })
        .qualified(),
    );
    let mut theirs = Side {
        client: alembic_db.connect()?,
        excl: alembic_excl,
        programs: None,
    };
    let mut v = Verification::default();

    // one step on both sides, compared; `rows` moves on to the version table after it
    let mut step_both = |step: &Step, rows: &mut Vec<String>| -> Result<Option<Difference>> {
        let r = compare_step(
            project,
            &table,
            &mut session,
            &mut ours,
            &mut theirs,
            step,
            rows,
        )?;
        step.apply_version_ops(rows);
        Ok(r)
    };

    let up = project.graph.upgrade_plan(&[], &Target::Heads)?;
    let mut rows: Vec<String> = Vec::new();
    let mut complete = true;
    for step in &up.steps {
        let script = project.script(&step.revision)?;
        if script.unconverted.is_some() {
            v.notes.push(format!(
                "the upgrade was verified up to {} only: revision {} is unconverted (write its \
                 SQL, then verify again with migrate-import --verify-only)",
                if rows.is_empty() {
                    "base".to_string()
                } else {
                    rows.join(", ")
                },
                step.revision
            ));
            complete = false;
            break;
        }
        if let Some(d) = step_both(step, &mut rows)? {
            v.differences.push(d);
            return Ok(v);
        }
        v.upgrades += 1;
        log::info!(
            "verified upgrade {} ({}/{})",
            step.revision,
            v.upgrades,
            up.steps.len()
        );
    }
    if !complete {
        return Ok(v);
    }
    let down = project.graph.downgrade_plan(&rows, &Target::Base)?;
    for step in &down.steps {
        let script = project.script(&step.revision)?;
        if script.down.is_none() || script.unconverted.is_some() {
            v.notes.push(format!(
                "the downgrade was verified down to {} only: revision {} {}",
                step.revision,
                step.revision,
                if script.down.is_none() {
                    "has no downgrade (neither has its Alembic revision)"
                } else {
                    "is unconverted"
                }
            ));
            break;
        }
        if let Some(d) = step_both(step, &mut rows)? {
            v.differences.push(d);
            return Ok(v);
        }
        v.downgrades += 1;
        log::info!(
            "verified downgrade {} ({}/{})",
            step.revision,
            v.downgrades,
            down.steps.len()
        );
    }
    drop(session);
    Ok(v)
}

/// Runs one step on both sides at the same time, then compares the catalogs.
#[allow(clippy::too_many_arguments)]
fn compare_step(
    project: &Project,
    table: &VersionTable,
    session: &mut super::helper::Session,
    ours: &mut Side,
    theirs: &mut Side,
    step: &Step,
    rows: &[String],
) -> Result<Option<Difference>> {
    let plan = Plan {
        steps: vec![step.clone()],
        start_heads: rows.to_vec(),
        end_heads: {
            let mut end = rows.to_vec();
            step.apply_version_ops(&mut end);
            end
        },
    };
    let direction = if step.direction == Direction::Up {
        "up"
    } else {
        "down"
    };
    let (alembic, retort) = std::thread::scope(|sc| {
        let alembic = sc.spawn(|| -> Result<_> {
            session.step(direction, &step.revision)?;
            introspect(&mut theirs.client, &theirs.excl)
        });
        let retort = execute(
            &mut ours.client,
            project,
            table,
            &plan,
            ours.programs.as_ref(),
        )
        .and_then(|_| introspect(&mut ours.client, &ours.excl));
        (alembic.join().expect("the Alembic side panicked"), retort)
    });
    let alembic = alembic?;
    let message = project
        .script(&step.revision)
        .map(|s| s.message.clone())
        .unwrap_or_default();
    let differences = match retort {
        Err(e) => vec![format!(
            "retort's script fails where Alembic's revision runs: {}",
            e.message
        )],
        Ok(retort) => {
            let mut d: Vec<String> = changes(&retort, &alembic, &DiffOptions::default())
                .iter()
                .map(Change::what)
                .collect();
            for u in unhandled(&retort, &alembic)
                .into_iter()
                .filter(|u| u.differs())
            {
                d.push(u.describe("retort's scripts", "Alembic"));
            }
            d
        }
    };
    if differences.is_empty() {
        return Ok(None);
    }
    Ok(Some(Difference {
        revision: step.revision.clone(),
        message,
        direction: step.direction,
        differences,
    }))
}
