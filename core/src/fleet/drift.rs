//! `migrate-check --targets`'s schema drift (docs/fleets.md): each target's catalog against a
//! replay of the revisions applied on IT. A replay is built once per distinct applied set (the
//! sorted heads) in a fleet run, in a shadow database, and shared by every target at that set;
//! the schema file against the migrations is checked once per run, not per target.
//!
//! Schema-per-tenant targets are compared within their schema: the replay runs with
//! `search_path` and the version table in a schema of the first tenant's name, and before
//! each tenant is compared that schema is renamed to the tenant's (the deparsed catalog then
//! names it as the tenant's own schema is named); both sides are read restricted to it.

use super::Target;
use crate::commands::check::{
    database_drift_problem, describe_diff, drift_error_problem, schema_drift_problem, Problem,
};
use crate::config::{DbUrl, Settings};
use crate::db::{db_error, quote_ident};
use crate::error::Result;
use crate::project::Project;
use crate::schema::model::Schema;
use crate::schema::shadow::ShadowDb;
use crate::schema::workspace::{after_shadows, Workspace};
use postgres::Client;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// Values built once per key, by the first thread that asks; the others asking for the same
/// key meanwhile wait for it, and all share the one value.
pub struct Memo<K, V> {
    cells: Mutex<BTreeMap<K, Arc<OnceLock<V>>>>,
    built: AtomicUsize,
}

impl<K, V> Default for Memo<K, V> {
    fn default() -> Self {
        Memo {
            cells: Mutex::new(BTreeMap::new()),
            built: AtomicUsize::new(0),
        }
    }
}

impl<K: Ord + Clone, V: Clone> Memo<K, V> {
    /// The value for `key`: built by `build` if no thread has built it yet.
    pub fn get_or_build(&self, key: &K, build: impl FnOnce() -> V) -> V {
        let cell = self
            .cells
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key.clone())
            .or_default()
            .clone();
        cell.get_or_init(|| {
            self.built.fetch_add(1, Ordering::SeqCst);
            build()
        })
        .clone()
    }

    /// How many values were built.
    pub fn built(&self) -> usize {
        self.built.load(Ordering::SeqCst)
    }
}

/// What a target at one applied set is compared with. One per set, behind an `Arc`: the
/// variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
enum Expected {
    /// Database-per-tenant: the replay's schema (its shadow already dropped).
    Schema(Schema),
    /// Schema-per-tenant: the replayed shadow, kept for the run; renamed to each tenant's
    /// schema in turn, and read then.
    Tenant(Mutex<TenantReplay>),
}

/// Fields drop in order: the connection before its database.
struct TenantReplay {
    client: Client,
    /// The name its replayed schema has now.
    schema: String,
    _db: ShadowDb,
}

/// The fleet's drift checks, shared by the per-target jobs of one `migrate-check --targets`.
pub struct FleetDrift<'a> {
    project: &'a Project,
    /// The base settings pointed at the shadows' server: the first target's (the main
    /// database's for schema-per-tenant), unless `--shadow-url` / `MIGRATE_SHADOW_URL`.
    settings: Settings,
    shadow_url: Option<DbUrl>,
    file: PathBuf,
    /// The schema file against the migrations (once per run): `schema_drift`,
    /// `schema_file_invalid` or `replay_failed`.
    pub problems: Vec<Problem>,
    file_note: String,
    /// False when the migrations do not replay to the heads: targets are not compared.
    compare: bool,
    /// By (schema target?, sorted heads).
    expected: Memo<(bool, Vec<String>), Result<Arc<Expected>>>,
    ignored: Mutex<BTreeSet<String>>,
}

impl<'a> FleetDrift<'a> {
    /// The schema file against the migrations replayed to the heads (the replay kept for the
    /// targets at the heads), or `None` when there is no schema file (nothing is checked, as
    /// for one database). An `Err` is a check that could not be made (no shadow database
    /// could be created, ...).
    pub fn prepare(
        project: &'a Project,
        base: &Settings,
        targets: &[Target],
        shadow_url: Option<&DbUrl>,
    ) -> Result<Option<FleetDrift<'a>>> {
        let file = base.schema_file.clone();
        if !file.is_file() || targets.is_empty() {
            return Ok(None);
        }
        let mut settings = base.clone();
        settings.database_url = Some(match &targets[0].schema {
            Some(_) => base.require_url()?.clone(),
            None => targets[0].url.clone(),
        });
        let mut d = FleetDrift {
            project,
            settings,
            shadow_url: shadow_url.cloned(),
            file,
            problems: Vec::new(),
            file_note: String::new(),
            compare: true,
            expected: Memo::default(),
            ignored: Mutex::new(BTreeSet::new()),
        };
        let ws = Workspace::new(project, &d.settings, d.shadow_url.as_ref())?;
        let heads = project.graph.heads();
        match after_shadows(ws.build_both(&heads, &d.file)) {
            Ok((replay, wanted)) => {
                let diffs = describe_diff(
                    &replay.schema,
                    &wanted.schema,
                    "the migrations",
                    "the schema file",
                );
                d.file_note = if diffs.is_empty() {
                    format!("{} matches the migrations", d.file.display())
                } else {
                    d.problems.push(schema_drift_problem(&d.file, &diffs));
                    format!("{} differs from the migrations", d.file.display())
                };
                if targets[0].schema.is_none() {
                    let mut heads = replay.heads.clone();
                    heads.sort();
                    let key = (false, heads);
                    let schema = replay.schema.clone();
                    let _seeded = d
                        .expected
                        .get_or_build(&key, || Ok(Arc::new(Expected::Schema(schema))));
                }
            }
            Err(e) => {
                let (p, note) = drift_error_problem(&d.file, e)?;
                d.compare = p.code != "replay_failed";
                d.problems.push(p);
                d.file_note = note;
            }
        }
        d.note_ignored(&ws);
        Ok(Some(d))
    }

    fn note_ignored(&self, ws: &Workspace) {
        self.ignored
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(ws.ignored());
    }

    /// Compares target `t` (read on `live`, at `current`, its applied revisions known) with a
    /// replay of its applied revisions: a `database_drift` problem when they differ (or
    /// `replay_failed` when they do not replay), and a line saying what was compared.
    pub fn check_target(
        &self,
        live: &mut Client,
        t: &Target,
        current: &[String],
    ) -> Result<(Option<Problem>, String)> {
        if !self.compare {
            return Ok((
                None,
                "not compared: the migrations do not replay on an empty database".into(),
            ));
        }
        let mut heads = current.to_vec();
        heads.sort();
        let key = (t.schema.is_some(), heads);
        let expected = self
            .expected
            .get_or_build(&key, || after_shadows(self.build(&key.1, t)).map(Arc::new));
        let expected = match expected {
            Ok(e) => e,
            Err(e) => {
                let (p, _) = drift_error_problem(&self.file, e)?;
                return Ok((Some(p), "not compared: its revisions do not replay".into()));
            }
        };
        let settings = t.settings(&self.settings);
        let ws = Workspace::new(self.project, &settings, self.shadow_url.as_ref())?;
        let diffs = match (&*expected, &t.schema) {
            (Expected::Schema(wanted), None) => {
                let actual = ws.read(live)?;
                describe_diff(&actual, wanted, "the database", "the applied revisions")
            }
            (Expected::Tenant(replay), Some(name)) => {
                let actual = ws.read_schema(live, name)?;
                let mut r = replay.lock().unwrap_or_else(|p| p.into_inner());
                if &r.schema != name {
                    let sql = format!(
                        "ALTER SCHEMA {} RENAME TO {}",
                        quote_ident(&r.schema),
                        quote_ident(name)
                    );
                    r.client.batch_execute(&sql).map_err(|e| {
                        db_error(
                            &format!("cannot rename the replay's schema to {name} in its shadow database"),
                            &e,
                        )
                    })?;
                    r.schema = name.clone();
                }
                let wanted = ws.read_schema(&mut r.client, name)?;
                drop(r);
                describe_diff(&actual, &wanted, "the schema", "the applied revisions")
            }
            _ => {
                return Err(crate::Error::usage(
                    "the fleet mixes databases and schemas: schema drift compares one kind",
                ))
            }
        };
        self.note_ignored(&ws);
        let shown = crate::words::heads_text(current);
        if diffs.is_empty() {
            Ok((None, format!("matches a replay of its revisions ({shown})")))
        } else {
            Ok((
                Some(database_drift_problem(current, &diffs)),
                format!("differs from a replay of its revisions ({shown})"),
            ))
        }
    }

    /// A shadow with the revisions `key` replayed: read at once (and dropped) for a database
    /// target; kept, in a schema of `t`'s name, for a schema target.
    fn build(&self, key: &[String], t: &Target) -> Result<Expected> {
        match &t.schema {
            None => {
                let ws = Workspace::new(self.project, &self.settings, self.shadow_url.as_ref())?;
                let replay = ws.build_replay(key)?;
                self.note_ignored(&ws);
                Ok(Expected::Schema(replay.schema))
            }
            Some(name) => {
                let mut settings = self.settings.clone();
                settings.version_table.schema = Some(name.clone());
                let ws = Workspace::new(self.project, &settings, self.shadow_url.as_ref())?;
                let db = ws.server.create()?;
                let mut client = db.connect()?;
                client
                    .batch_execute(&format!("SET search_path TO {}", quote_ident(name)))
                    .map_err(|e| db_error("cannot set search_path in a shadow database", &e))?;
                let t0 = std::time::Instant::now();
                ws.replay(&mut client, &ws.programs(&db.url, Some(name)), key)?;
                log::debug!(
                    "replayed {} in schema {name} in {}",
                    crate::words::heads_text(key),
                    crate::words::fmt_duration(t0.elapsed())
                );
                Ok(Expected::Tenant(Mutex::new(TenantReplay {
                    client,
                    schema: name.clone(),
                    _db: db,
                })))
            }
        }
    }

    /// How many replays were built (one per distinct applied set, the heads' included).
    pub fn replays(&self) -> usize {
        self.expected.built()
    }

    /// One line for the fleet: what the schema file check found, and how the targets were
    /// compared.
    pub fn summary(&self) -> String {
        let mut s = self.file_note.clone();
        if self.compare {
            let n = self.replays();
            s.push_str(&format!(
                "; each target compared with a replay of its applied revisions ({n} replay{})",
                crate::words::plural(n)
            ));
        } else {
            s.push_str("; the targets were not compared");
        }
        let ignored = self.ignored.lock().unwrap_or_else(|p| p.into_inner());
        if !ignored.is_empty() {
            s.push_str(&format!(
                " (ignored by {}: {})",
                self.settings.filter.describe(),
                ignored.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        s
    }

    /// What the fleet's drift checks found about the whole fleet (`drift`: `None` without a
    /// schema file, `schema_file` then named as not found).
    pub fn wide(drift: Option<&FleetDrift>, schema_file: &std::path::Path) -> super::FleetWide {
        match drift {
            None => super::FleetWide {
                problems: Vec::new(),
                drift: Some(format!(
                    "not checked: no schema file ({})",
                    schema_file.display()
                )),
            },
            Some(d) => super::FleetWide {
                problems: d.problems.clone(),
                drift: Some(d.summary()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_memo_builds_each_key_once_however_many_threads_ask() {
        let memo: Memo<Vec<String>, Arc<String>> = Memo::default();
        let calls = AtomicUsize::new(0);
        let keys = [vec!["a".to_string()], vec!["b".into(), "c".into()]];
        std::thread::scope(|s| {
            for i in 0..8 {
                let (memo, calls, key) = (&memo, &calls, &keys[i % 2]);
                s.spawn(move || {
                    let v = memo.get_or_build(key, || {
                        calls.fetch_add(1, Ordering::SeqCst);
                        // long enough for the other threads to ask meanwhile
                        std::thread::sleep(Duration::from_millis(50));
                        Arc::new(key.join(","))
                    });
                    assert_eq!(*v, key.join(","));
                });
            }
        });
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(memo.built(), 2);
        // a key asked again later is not built again
        let v = memo.get_or_build(&keys[0], || unreachable!("built twice"));
        assert_eq!(*v, "a");
    }
}
