//! `migrate-check --round-trip`: does every down section undo its up section? In a shadow
//! database, for every revision in upgrade order from base: upgrade, read the catalog,
//! downgrade, require the catalog equal to the one before the upgrade ("downgrade leaves no
//! trace"), upgrade again. "Equal" is first asked of catalog digests computed on the server
//! ([`crate::schema::catalog_digest`], one query each, planned once for the shadow's
//! connection by a [`Digester`]): only when two differ are the catalogs
//! read in full, to accept what a script keeps and to describe what differs — the catalog
//! before the upgrade then comes from a second shadow database upgraded to the same revisions.
//! The catalog is read by the same introspection autogenerate uses
//! ([`crate::schema::introspect()`]): tables, columns and their types, defaults and comments,
//! indexes with their operator classes and WITH parameters, constraints, enums and their
//! values, sequences, views, extensions, schemas, and the objects autogenerate does not diff
//! but records (functions, triggers, ...). The first failure names the revision and what was
//! left over or missing; nothing else is run after it.

use crate::commands::check::describe_diff;
use crate::config::{DbUrl, Settings};
use crate::error::{ErrorKind, Result};
use crate::graph::Target;
use crate::plan::{stamp_ops, Direction, Plan, Step};
use crate::project::Project;
use crate::schema::digest::Digester;
use crate::schema::model::{QName, Schema};
use crate::schema::workspace::{after_shadows, execute, Workspace};
use crate::script::Script;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct RoundTripFailure {
    pub revision: String,
    pub path: String,
    /// `upgrade`, `downgrade`, `leaves_a_trace`, `upgrade_again` or `no_down`.
    pub stage: &'static str,
    /// What the downgrade left over or removed (for `leaves_a_trace`), described as what would
    /// restore the state before the upgrade; or the error.
    pub details: Vec<String>,
}

impl RoundTripFailure {
    pub fn describe(&self) -> String {
        let what = match self.stage {
            "leaves_a_trace" => "downgrading does not restore the schema from before its upgrade",
            "upgrade" => "the upgrade failed",
            "downgrade" => "the downgrade failed",
            "upgrade_again" => "upgrading again after the downgrade failed",
            _ => "it has no -- migrate:down section",
        };
        format!(
            "round trip of revision {} ({}): {what}: {}",
            self.revision,
            self.path,
            self.details.join("; ")
        )
    }
}

#[derive(Debug, Clone, Default)]
pub struct RoundTripReport {
    /// Revisions that made the whole round trip.
    pub passed: Vec<String>,
    pub failure: Option<RoundTripFailure>,
    /// What down sections left and the round trip accepted: `001 keeps extension vector
    /// (reason)`, by the script's `-- round_trip:` line or, for the extensions a root
    /// revision's down keeps, by default.
    pub accepted: Vec<String>,
    pub elapsed: Duration,
}

/// Makes `back` (the catalog after the down section) equal to `before` for what `script` may
/// keep: the objects of its `-- round_trip: keeps ...` line, and, when it is a root (a
/// baseline: everything before it is the empty database), the extensions its down section
/// leaves installed (other databases of the server may use them; dropping them is rarely
/// right). Returns what was accepted, described.
fn accept_what_is_kept(script: &Script, back: &mut Schema, before: &Schema) -> Vec<String> {
    let mut out = Vec::new();
    if script.down_revisions.is_empty() {
        let kept: Vec<String> = back
            .extensions
            .keys()
            .filter(|e| !before.extensions.contains_key(*e))
            .cloned()
            .collect();
        for e in kept {
            back.extensions.remove(&e);
            out.push(format!(
                "{} keeps extension {e} (the down section of a root revision may keep the extensions it created)",
                script.revision
            ));
        }
    }
    if let Some(ex) = &script.round_trip {
        for (kind, name) in &ex.keeps {
            if align(back, before, kind, name) {
                out.push(format!(
                    "{} keeps {kind} {name} ({})",
                    script.revision, ex.reason
                ));
            }
        }
    }
    out
}

/// Sets `back`'s object `kind name` to what `before` has (removes it when `before` has none);
/// true when they differed.
fn align(back: &mut Schema, before: &Schema, kind: &str, name: &str) -> bool {
    fn entry<K: Ord + Clone, V: Clone + PartialEq>(
        back: &mut BTreeMap<K, V>,
        before: &BTreeMap<K, V>,
        key: K,
    ) -> bool {
        let differed = back.get(&key) != before.get(&key);
        match before.get(&key) {
            Some(v) => {
                back.insert(key, v.clone());
            }
            None => {
                back.remove(&key);
            }
        }
        differed
    }
    let qname = || match name.split_once('.') {
        Some((s, n)) => QName::new(s, n),
        None => QName::new("public", name),
    };
    match kind {
        "extension" => entry(&mut back.extensions, &before.extensions, name.to_string()),
        "schema" => entry(&mut back.schemas, &before.schemas, name.to_string()),
        "type" => entry(&mut back.enums, &before.enums, qname()),
        "table" => entry(&mut back.tables, &before.tables, qname()),
        "sequence" => entry(&mut back.sequences, &before.sequences, qname()),
        "view" => entry(&mut back.views, &before.views, qname()),
        _ => false,
    }
}

/// The down step that undoes the up step `s`.
fn inverse(s: &Step) -> Step {
    Step {
        revision: s.revision.clone(),
        direction: Direction::Down,
        from: s.to.clone(),
        to: s.from.clone(),
        version_ops: stamp_ops(&s.to, &s.from),
    }
}

pub fn round_trip(settings: &Settings, shadow_url: Option<&DbUrl>) -> Result<RoundTripReport> {
    let project = Project::load(&settings.migrations_dir)?;
    after_shadows(run(&project, settings, shadow_url))
}

/// The schema before the revision under test, kept as its digest; read in full only when a
/// downgrade's digest differs from it. It is then rebuilt in a second shadow database that
/// follows the round trip's heads by plain upgrades (created on the first need, advanced
/// from where it was on the next).
struct Before<'w, 'a> {
    ws: &'w Workspace<'a>,
    digest: String,
    heads: Vec<String>,
    shadow: Option<(
        crate::schema::shadow::ShadowDb,
        postgres::Client,
        Vec<String>,
    )>,
}

impl Before<'_, '_> {
    /// The full schema at `self.heads`.
    fn read(&mut self) -> Result<Schema> {
        if self.shadow.is_none() {
            let db = self.ws.server.create()?;
            let client = db.connect()?;
            self.shadow = Some((db, client, Vec::new()));
        }
        let Some((db, client, at)) = self.shadow.as_mut() else {
            unreachable!("created above")
        };
        let programs = self.ws.programs(&db.url, None);
        for t in &self.heads {
            let p = self
                .ws
                .project
                .graph
                .upgrade_plan(at, &Target::Rev(t.clone()))?;
            if !p.is_empty() {
                *at = execute(
                    client,
                    self.ws.project,
                    &self.ws.version_table(),
                    &p,
                    Some(&programs),
                )?;
            }
        }
        self.ws.read(client)
    }
}

fn run(
    project: &Project,
    settings: &Settings,
    shadow_url: Option<&DbUrl>,
) -> Result<RoundTripReport> {
    let t0 = Instant::now();
    let ws = Workspace::new(project, settings, shadow_url)?;
    let table = ws.version_table();
    let db = ws.server.create()?;
    let mut client = db.connect()?;
    let programs = ws.programs(&db.url, None);
    let order = project.graph.upgrade_plan(&[], &Target::Heads)?;
    let mut report = RoundTripReport::default();
    let mut heads: Vec<String> = Vec::new();
    // one connection digested twice per revision: the query is planned once
    let mut digester = Digester::new();
    let mut digest = |c: &mut postgres::Client| digester.digest(c, &ws.excl);
    let mut before = Before {
        ws: &ws,
        digest: digest(&mut client)?,
        heads: Vec::new(),
        shadow: None,
    };
    // A SQL failure in a shadow is a finding of the round trip, not an error of the command.
    let failed =
        |rev: &str, stage: &'static str, details: Vec<String>| -> Result<RoundTripFailure> {
            Ok(RoundTripFailure {
                revision: rev.to_string(),
                path: project.script(rev)?.path.display().to_string(),
                stage,
                details,
            })
        };
    let sql_error = |e: crate::error::Error| -> Result<Vec<String>> {
        if e.kind == ErrorKind::Migration || e.kind == ErrorKind::Database {
            Ok(vec![e.to_string()])
        } else {
            Err(e)
        }
    };
    for step in &order.steps {
        let rev = step.revision.as_str();
        if project.script(rev)?.down.is_none() {
            report.failure = Some(failed(rev, "no_down", vec!["add one to test it".into()])?);
            break;
        }
        let up = project
            .graph
            .upgrade_plan(&heads, &Target::Rev(rev.to_string()))?;
        let after_heads = match execute(&mut client, project, &table, &up, Some(&programs)) {
            Ok(h) => h,
            Err(e) => {
                report.failure = Some(failed(rev, "upgrade", sql_error(e)?)?);
                break;
            }
        };
        let after = digest(&mut client)?;
        let down = Plan {
            steps: up.steps.iter().rev().map(inverse).collect(),
            start_heads: after_heads.clone(),
            end_heads: heads.clone(),
        };
        if let Err(e) = execute(&mut client, project, &table, &down, Some(&programs)) {
            report.failure = Some(failed(rev, "downgrade", sql_error(e)?)?);
            break;
        }
        // the same digest: the same schema. Another: read both in full, accept what the
        // script keeps, and compare (the digest also sees details the comparison leaves out)
        if digest(&mut client)? != before.digest {
            let mut back = ws.read(&mut client)?;
            let full_before = before.read()?;
            report.accepted.extend(accept_what_is_kept(
                project.script(rev)?,
                &mut back,
                &full_before,
            ));
            if back != full_before {
                let mut d = describe_diff(
                    &back,
                    &full_before,
                    "after the downgrade",
                    "before the upgrade",
                );
                if d.is_empty() {
                    d.push("the catalogs differ in a detail retort does not describe".into());
                }
                report.failure = Some(failed(rev, "leaves_a_trace", d)?);
                break;
            }
        }
        if let Err(e) = execute(&mut client, project, &table, &up, Some(&programs)) {
            report.failure = Some(failed(rev, "upgrade_again", sql_error(e)?)?);
            break;
        }
        report.passed.push(rev.to_string());
        before.digest = after;
        before.heads = after_heads.clone();
        heads = after_heads;
    }
    drop(before);
    drop(client);
    drop(db);
    report.elapsed = t0.elapsed();
    Ok(report)
}
