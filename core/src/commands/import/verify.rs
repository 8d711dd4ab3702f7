//! The import's verification: on two shadow databases, Alembic's own migrations (online,
//! through the project's env.py) and retort's scripts, one revision at a time, in the order of
//! retort's plan — every upgrade from base to the heads, then every downgrade back to base that
//! Alembic itself can run — with the two schemas compared after every step.
//!
//! A program step (a revision that runs its own Python through Alembic's operations) runs on
//! retort's side through the same stepper the `-- run:` line names, so the walk goes through
//! the whole history. The comparison is a digest of each catalog computed on the server
//! ([`crate::schema::digest`]); only when the digests differ are both catalogs read in full and
//! diffed to say how. The first step after which they differ stops the walk and is named with
//! the objects. An Alembic downgrade that fails, or a revision without a downgrade, ends the
//! downgrades' walk there and is reported as what could not be verified.

use super::helper::{Helper, Session};
use super::render::Export;
use crate::config::{Settings, VersionTableName};
use crate::db::VersionTable;
use crate::error::Result;
use crate::graph::Target;
use crate::plan::{Direction, Plan, Step};
use crate::project::Project;
use crate::schema::diff::{changes, unhandled};
use crate::schema::digest::catalog_digest;
use crate::schema::introspect::{introspect, IntrospectOptions};
use crate::schema::shadow::ShadowServer;
use crate::schema::workspace::{after_shadows, execute, relations_to_exclude};
use crate::schema::{Change, DiffOptions};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// How one direction of a revision that is not SQL runs on retort's side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Program {
    /// The Alembic revision file's own function, through the stepper. `counted`: false for an
    /// unconverted section (`--strict --allow-unconverted`), run only so that the walk goes on.
    Alembic { source: PathBuf, counted: bool },
    /// Another `-- run:` command, run by `sh -c` in the migrations directory.
    Command(String),
}

/// What is verified: the scripts with their `-- run:` lines made comments, and the program
/// steps run beside them, by revision and direction.
pub struct Subject {
    pub project: Project,
    pub programs: HashMap<(String, Direction), Program>,
    /// The `_context.json` the stepper reads (the naming convention).
    pub context: PathBuf,
}

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
    /// Steps of the history, per direction (as many downgrades as upgrades).
    pub steps: usize,
    /// Of the steps compared equal, program steps.
    pub programs: usize,
    /// What could not be verified and why (the walk of the downgrades ended there).
    pub not_verifiable: Vec<String>,
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

/// Verifies `subject` (the scripts) against the Alembic project behind `helper`.
pub fn verify(
    subject: &Subject,
    settings: &Settings,
    server: &ShadowServer,
    helper: &Helper,
    export: &Export,
) -> Result<Verification> {
    after_shadows(verify_inner(subject, settings, server, helper, export))
}

/// The two sides: a shadow and what reads it.
struct Side {
    client: postgres::Client,
    excl: IntrospectOptions,
    /// Where retort's program steps run (retort's side only).
    programs: Option<crate::exec::program::ProgramEnv>,
}

/// Retort's side: its shadow, and the stepper and URL its program steps run on.
struct Ours<'a> {
    side: Side,
    stepper: Option<Session>,
    helper: &'a Helper,
    url: crate::config::DbUrl,
    context: PathBuf,
    dir: PathBuf,
}

/// How one step went.
enum Outcome {
    Same,
    Differs(Difference),
    /// Alembic's own step failed: its error.
    AlembicFailed(String),
}

fn verify_inner(
    subject: &Subject,
    settings: &Settings,
    server: &ShadowServer,
    helper: &Helper,
    export: &Export,
) -> Result<Verification> {
    let project = &subject.project;
    let alembic_db = server.create()?;
    let retort_db = server.create()?;
    let mut session = helper.session(&alembic_db.url)?;
    let table = VersionTable::new(settings.version_table.clone());
    let mut ours = Ours {
        side: Side {
            client: retort_db.connect()?,
            excl: relations_to_exclude(settings),
            programs: Some(crate::exec::program::ProgramEnv {
                url: retort_db.url.clone(),
                dir: project.dir.clone(),
                schema: None,
            }),
        },
        stepper: None,
        helper,
        url: retort_db.url.clone(),
        context: subject.context.clone(),
        dir: project.dir.clone(),
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

    let up = project.graph.upgrade_plan(&[], &Target::Heads)?;
    v.steps = up.steps.len();
    let mut rows: Vec<String> = Vec::new();
    let mut unverified_up = Vec::new();
    for step in &up.steps {
        let program = subject
            .programs
            .get(&(step.revision.clone(), Direction::Up));
        match compare_step(
            project,
            &table,
            &mut session,
            &mut ours,
            &mut theirs,
            step,
            &rows,
            program,
        )? {
            Outcome::Same => {}
            Outcome::Differs(d) => {
                v.differences.push(d);
                return Ok(v);
            }
            Outcome::AlembicFailed(e) => {
                return Err(crate::error::Error::script(format!(
                    "Alembic itself cannot run the upgrade of revision {}: {e}",
                    step.revision
                ))
                .with_hint(
                    "nothing was written; fix the revision (or env.py) so that `alembic upgrade` \
                     runs it on an empty database, then import again",
                ))
            }
        }
        step.apply_version_ops(&mut rows);
        if matches!(program, Some(Program::Alembic { counted: false, .. })) {
            unverified_up.push(step.revision.clone());
            continue;
        }
        v.upgrades += 1;
        if program.is_some() {
            v.programs += 1;
        }
        log::info!(
            "verified upgrade {} ({}/{})",
            step.revision,
            v.upgrades,
            up.steps.len()
        );
    }
    if !unverified_up.is_empty() {
        v.notes.push(format!(
            "not verified: the upgrade of {} (unconverted: Alembic's own code ran in its place \
             so that the revisions after it could be verified)",
            unverified_up.join(", ")
        ));
    }
    let down = project.graph.downgrade_plan(&rows, &Target::Base)?;
    for step in &down.steps {
        let script = project.script(&step.revision)?;
        if script.down.is_none() {
            v.not_verifiable.push(format!(
                "{} and the revisions below it: {} has no downgrade (neither has its Alembic \
                 revision)",
                step.revision, step.revision
            ));
            break;
        }
        let program = subject
            .programs
            .get(&(step.revision.clone(), Direction::Down));
        match compare_step(
            project,
            &table,
            &mut session,
            &mut ours,
            &mut theirs,
            step,
            &rows,
            program,
        )? {
            Outcome::Same => {}
            Outcome::Differs(d) => {
                v.differences.push(d);
                return Ok(v);
            }
            Outcome::AlembicFailed(e) => {
                v.not_verifiable.push(format!(
                    "{} and the revisions below it, because Alembic's own downgrade fails: {e}",
                    step.revision
                ));
                break;
            }
        }
        step.apply_version_ops(&mut rows);
        if matches!(program, Some(Program::Alembic { counted: false, .. })) {
            v.not_verifiable.push(format!(
                "the downgrade of {} (unconverted; Alembic's own code ran in its place)",
                step.revision
            ));
            continue;
        }
        v.downgrades += 1;
        if program.is_some() {
            v.programs += 1;
        }
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

impl Ours<'_> {
    /// Runs a program step on retort's shadow.
    fn run_program(&mut self, program: &Program, step: &Step) -> Result<()> {
        let direction = if step.direction == Direction::Up {
            "up"
        } else {
            "down"
        };
        match program {
            Program::Alembic { source, .. } => {
                if self.stepper.is_none() {
                    self.stepper = Some(self.helper.stepper(&self.url, &self.context)?);
                }
                let stepper = self.stepper.as_mut().expect("started above");
                stepper.step(direction, &source.display().to_string())
            }
            Program::Command(cmd) => {
                let status = std::process::Command::new("sh")
                    .arg("-c")
                    .arg(cmd)
                    .current_dir(&self.dir)
                    .env("DATABASE_URL", self.url.to_url())
                    .env("RETORT_REVISION", &step.revision)
                    .env("RETORT_DIRECTION", direction)
                    .env("RETORT_MIGRATIONS_DIR", absolute(&self.dir))
                    .status()
                    .map_err(|e| crate::error::Error::io(format!("cannot run {cmd}: {e}")))?;
                if status.success() {
                    Ok(())
                } else {
                    Err(crate::error::Error::script(format!(
                        "the program step `{cmd}` of {} exited with {status}",
                        step.revision
                    )))
                }
            }
        }
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Runs one step on both sides at the same time, then compares the schemas: their digests,
/// and when those differ, the catalogs read in full.
#[allow(clippy::too_many_arguments)]
fn compare_step(
    project: &Project,
    table: &VersionTable,
    session: &mut Session,
    ours: &mut Ours<'_>,
    theirs: &mut Side,
    step: &Step,
    rows: &[String],
    program: Option<&Program>,
) -> Result<Outcome> {
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
            if let Err(e) = session.step(direction, &step.revision) {
                return Ok(Err(e.message));
            }
            catalog_digest(&mut theirs.client, &theirs.excl).map(Ok)
        });
        // A program step of the import runs through the verification's own Alembic session
        // (one Python process for the whole walk), then only its version rows are written;
        // every other step runs through the run loop as migrate-up runs it.
        let retort = match program {
            Some(p) => ours.run_program(p, step).and_then(|_| {
                // the first revision may be a program: the version table is not there yet
                let missing = crate::db::query::one(
                    &mut ours.side.client,
                    "SELECT to_regclass($1) IS NULL",
                    &[(&table.qualified(), postgres::types::Type::TEXT)],
                )
                .map_err(|e| crate::db::db_error("cannot read the version table", &e))?
                .get::<_, bool>(0);
                let mut sql = if missing {
                    format!("{}\n", table.create_sql())
                } else {
                    String::new()
                };
                for op in &step.version_ops {
                    sql.push_str(&format!("{};\n", table.op_sql(op)));
                }
                ours.side
                    .client
                    .batch_execute(&sql)
                    .map_err(|e| crate::db::db_error("cannot record the program step", &e))
            }),
            None => execute(
                &mut ours.side.client,
                project,
                table,
                &plan,
                ours.side.programs.as_ref(),
            )
            .map(|_| ()),
        }
        .and_then(|_| catalog_digest(&mut ours.side.client, &ours.side.excl));
        (alembic.join().expect("the Alembic side panicked"), retort)
    });
    let alembic_digest = match alembic? {
        Ok(d) => d,
        Err(e) => return Ok(Outcome::AlembicFailed(e)),
    };
    let message = project
        .script(&step.revision)
        .map(|s| s.message.clone())
        .unwrap_or_default();
    let differences = match retort {
        Err(e) => vec![format!(
            "retort's script fails where Alembic's revision runs: {}",
            e.message
        )],
        Ok(d) if d == alembic_digest => return Ok(Outcome::Same),
        Ok(_) => {
            let retort = introspect(&mut ours.side.client, &ours.side.excl)?;
            let alembic = introspect(&mut theirs.client, &theirs.excl)?;
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
        return Ok(Outcome::Same);
    }
    Ok(Outcome::Differs(Difference {
        revision: step.revision.clone(),
        message,
        direction: step.direction,
        differences,
    }))
}
