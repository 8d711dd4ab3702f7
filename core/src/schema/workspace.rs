//! The two schemas autogenerate and `migrate-check`'s drift checks compare, each built as a
//! real database on one server (so both are deparsed alike): a shadow with the migrations
//! replayed, and a shadow with the schema file loaded. Both are built at the same time and
//! read from the catalog; the shadows are dropped with the returned values.

use super::filter::ObjectFilter;
use super::introspect::{introspect, IntrospectOptions};
use super::model::Schema;
use super::shadow::{load_sql_file, ShadowDb, ShadowServer};
use crate::config::{DbUrl, Settings};
use crate::db::records::Records;
use crate::db::VersionTable;
use crate::error::{Error, Result};
use crate::exec::program::ProgramEnv;
use crate::exec::{online, RunOptions};
use crate::plan::Plan;
use crate::project::Project;
use postgres::Client;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

/// Where and how the shadows of one command are built.
pub struct Workspace<'a> {
    pub project: &'a Project,
    pub settings: &'a Settings,
    pub server: ShadowServer,
    /// What introspection leaves out: the version table and retort's own tables.
    pub excl: IntrospectOptions,
    /// Tables and views left out of every comparison (`--exclude` / `--include`).
    pub filter: ObjectFilter,
    /// What the filter left out, on any side read so far.
    ignored: Mutex<BTreeSet<String>>,
}

/// A shadow with the migrations replayed, kept connected for what follows (renames,
/// validation). Fields drop in order: the connection before its database.
pub struct Replay {
    pub client: Client,
    /// The heads the replay reached.
    pub heads: Vec<String>,
    pub schema: Schema,
    pub db: ShadowDb,
}

/// A shadow with the schema file loaded.
pub struct Wanted {
    pub schema: Schema,
    pub db: ShadowDb,
}

impl<'a> Workspace<'a> {
    /// Shadows on `shadow_url`'s server when given, else on `MIGRATE_SHADOW_URL`'s, else on
    /// the target database's (which must then be configured).
    pub fn new(
        project: &'a Project,
        settings: &'a Settings,
        shadow_url: Option<&DbUrl>,
    ) -> Result<Workspace<'a>> {
        // a shadow server of its own needs no database URL (`migrate-check --offline --round-trip`)
        let mut server = match shadow_url.or(settings.shadow_url.as_ref()) {
            Some(shadow) => ShadowServer::new(shadow, None),
            None => ShadowServer::new(
                settings.require_url().map_err(|e| {
                    let hint = "the shadow database needs a server: pass --database-url or \
                            --shadow-url, or set DATABASE_URL or MIGRATE_SHADOW_URL (in the \
                            environment or in .env); nothing is written to that database";
                    e.with_hint(hint)
                })?,
                None,
            ),
        };
        server.template = settings.shadow_template.clone();
        Ok(Workspace {
            project,
            settings,
            server,
            excl: relations_to_exclude(settings),
            filter: settings.filter.clone(),
            ignored: Mutex::new(BTreeSet::new()),
        })
    }

    /// The tables and views the filter left out so far, sorted.
    pub fn ignored(&self) -> Vec<String> {
        let g = self.ignored.lock().unwrap_or_else(|p| p.into_inner());
        g.iter().cloned().collect()
    }

    /// Introspects and applies the filter.
    fn read_filtered(&self, client: &mut Client) -> Result<Schema> {
        self.read_with(client, &self.excl)
    }

    fn read_with(&self, client: &mut Client, opts: &IntrospectOptions) -> Result<Schema> {
        let mut s = introspect(client, opts)?;
        let gone = self.filter.apply(&mut s);
        self.ignored
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(gone);
        Ok(s)
    }

    /// The digest of the schema on `client`, leaving out what [`Workspace::excl`] leaves out
    /// ([`crate::schema::catalog_digest`]; the filter is not applied: two digests that differ
    /// only in a filtered-out object send the caller to [`Workspace::read`]).
    pub fn digest(&self, client: &mut Client) -> Result<String> {
        crate::schema::digest::catalog_digest(client, &self.excl)
    }

    pub fn version_table(&self) -> VersionTable {
        VersionTable::new(self.settings.version_table.clone())
    }

    /// Reads a database's schema, leaving out what [`Workspace::excl`] and
    /// [`Workspace::filter`] say.
    pub fn read(&self, client: &mut Client) -> Result<Schema> {
        self.read_filtered(client)
    }

    /// [`Workspace::read`] restricted to schema `name` (one tenant of a schema-per-tenant
    /// database): its objects only, read on the server (see [`Schema::only_schema`]).
    pub fn read_schema(&self, client: &mut Client, name: &str) -> Result<Schema> {
        let opts = IntrospectOptions {
            only_schema: Some(name.to_string()),
            ..self.excl.clone()
        };
        let mut s = self.read_with(client, &opts)?;
        s.only_schema(name);
        Ok(s)
    }

    /// What a shadow's program steps get: the shadow's URL (with the `search_path` of
    /// `schema`, a tenant's replay, which `RETORT_SCHEMA` names too) and the migrations
    /// directory.
    pub fn programs(&self, shadow: &DbUrl, schema: Option<&str>) -> ProgramEnv {
        let mut url = shadow.clone();
        if let Some(s) = schema {
            let path = format!("-c search_path={}", crate::db::quote_ident(s));
            url.options = Some(match &url.options {
                Some(o) => format!("{o} {path}"),
                None => path,
            });
        }
        ProgramEnv {
            url,
            dir: self.project.dir.clone(),
            schema: schema.map(str::to_string),
        }
    }

    /// Replays the migrations up to `targets` (each a revision id) on `client`, its program
    /// steps on `programs`.
    pub fn replay(
        &self,
        client: &mut Client,
        programs: &ProgramEnv,
        targets: &[String],
    ) -> Result<Vec<String>> {
        let table = self.version_table();
        let mut heads: Vec<String> = Vec::new();
        for t in targets {
            let plan = self
                .project
                .graph
                .upgrade_plan(&heads, &crate::graph::Target::parse(t)?)?;
            heads = execute(client, self.project, &table, &plan, Some(programs))
                .map_err(shadow_replay_error)?;
        }
        Ok(heads)
    }

    /// A shadow with the migrations replayed up to `targets`, read.
    pub fn build_replay(&self, targets: &[String]) -> Result<Replay> {
        let t0 = Instant::now();
        let db = self.server.create()?;
        let mut client = db.connect()?;
        let heads = self.replay(&mut client, &self.programs(&db.url, None), targets)?;
        let schema = self.read(&mut client)?;
        log::debug!(
            "replayed {} and read the result in {}",
            crate::words::heads_text(&heads),
            crate::words::fmt_duration(t0.elapsed())
        );
        Ok(Replay {
            client,
            heads,
            schema,
            db,
        })
    }

    /// Both shadows at the same time: the migrations replayed to `targets`, and `schema_file`
    /// loaded.
    pub fn build_both(&self, targets: &[String], schema_file: &Path) -> Result<(Replay, Wanted)> {
        let (replayed, wanted) = std::thread::scope(|sc| {
            let wanted = sc.spawn(move || self.load_wanted(schema_file));
            let replayed = self.build_replay(targets);
            (
                replayed,
                wanted.join().expect("the schema file loader panicked"),
            )
        });
        Ok((replayed?, wanted?))
    }
}

impl Workspace<'_> {
    /// Builds a shadow with `schema_file` loaded and reads it.
    fn load_wanted(&self, schema_file: &Path) -> Result<Wanted> {
        let t0 = Instant::now();
        let db = self.server.create()?;
        let mut c = db.connect()?;
        load_sql_file(&mut c, schema_file)?;
        let schema = self.read_filtered(&mut c)?;
        log::debug!(
            "loaded {} and read the result in {}",
            schema_file.display(),
            crate::words::fmt_duration(t0.elapsed())
        );
        Ok(Wanted { schema, db })
    }
}

/// What a shadow's introspection leaves out: the version table and retort's own tables.
pub fn relations_to_exclude(settings: &Settings) -> IntrospectOptions {
    let table = VersionTable::new(settings.version_table.clone());
    let records = Records::for_table(&table);
    IntrospectOptions {
        exclude_relations: vec![
            table.qualified(),
            records.applied,
            records.audit,
            crate::db::lease::table_name(&table),
            // the checkpoints of backfills (a history with a backfill step creates it)
            crate::db::backfill::table_name(&table),
        ],
        // retort creates the version table's schema itself (in a replay too).
        ignore_schemas: settings.version_table.schema.iter().cloned().collect(),
        only_schema: None,
    }
}

/// Runs `plan` on a shadow (its program steps on `programs`); returns the heads it ends at.
pub fn execute(
    client: &mut Client,
    project: &Project,
    table: &VersionTable,
    plan: &Plan,
    programs: Option<&ProgramEnv>,
) -> Result<Vec<String>> {
    if plan.is_empty() {
        return Ok(plan.start_heads.clone());
    }
    // The run loop's step-by-step lines are noise in a shadow: at debug level only (-v).
    // A replay too big for the server's lock table in one transaction (a long history)
    // commits in batches that fit (one revision at a time when none does): a shadow has
    // nothing to roll back to.
    let needed = crate::db::lock_budget::estimate(project, plan, None).locks;
    let size = (needed > 1000)
        .then(|| crate::db::lock_budget::budget(client).ok())
        .flatten()
        .map(|(_, size)| size);
    let batch = match size {
        Some(size) if needed as i64 > size => std::num::NonZeroUsize::new(
            crate::db::lock_budget::suggest_for(project, plan, size).unwrap_or(1),
        ),
        _ => None,
    };
    let opts = RunOptions {
        batch,
        ..RunOptions::default()
    };
    let report = online::execute(client, project, table, plan, &opts, programs.cloned())?;
    Ok(report.end_heads)
}

/// A revision failed in a shadow database: the run loop's `state:` line (about a throwaway
/// database) is left out, and a missing privilege is named instead of "fix the script".
fn shadow_replay_error(e: Error) -> Error {
    let mut e = wrap(e, "replaying the migrations in a shadow database failed");
    if let Some(at) = e.message.find("\nstate: ") {
        e.message.truncate(at);
    }
    if let crate::error::Detail::Sql { sqlstate } = &e.detail {
        if let Some(h) = super::shadow::extension_privilege_hint(sqlstate, &e.message) {
            // not a broken revision: the shadow's role lacks a privilege
            e.kind = crate::error::ErrorKind::Database;
            e.hint = Some(h);
        }
    }
    e
}

/// `context: message`.
pub fn wrap(mut e: Error, context: &str) -> Error {
    e.message = format!("{context}: {}", e.message);
    e
}

/// On an error, a Ctrl-C may be what caused it: let the interrupt handler finish dropping the
/// shadow databases before the error is reported.
pub fn after_shadows<T>(result: Result<T>) -> Result<T> {
    if result.is_err() {
        super::shadow::wait_if_interrupted();
    }
    result
}
