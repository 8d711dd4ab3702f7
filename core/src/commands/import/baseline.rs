//! `migrate-import --baseline`: the whole Alembic history up to its head as one script, for
//! teams who want no Python left. Alembic migrates a shadow database from base to the head
//! (online, through env.py, one revision at a time); its catalog, read and rendered by the
//! schema renderer, becomes the script's SQL, followed by the rows the history inserted
//! (reference data: roles, settings, workspaces), table by table in foreign-key order, and the
//! sequences' positions. The script carries the head's revision id, so a database Alembic
//! already migrated to the head needs nothing, and a new one starts in one step.
//!
//! A history with several heads (branches never merged) gets one script per head, so that the
//! version table holds the heads' ids as Alembic's does: the first head's script carries the
//! whole schema and rows; each other head's is empty and, like the first, has no parent (a
//! `depends_on` would make Alembic's bookkeeping replace the first head's row), so a new
//! database records every head beside the others.
//!
//! Verified like a squash: the script runs on a second shadow, whose schema (the one-query
//! digest, then the full diff to describe a difference) and rows (a digest per table) must be
//! Alembic's. Only then is it written.

use super::helper::Helper;
use super::render::Export;
use super::verify::Difference;
use crate::config::{Settings, VersionTableName};
use crate::db::{db_error, VersionTable};
use crate::error::{Error, Result};
use crate::graph::Target;
use crate::plan::Direction;
use crate::project::Project;
use crate::schema::diff::changes;
use crate::schema::digest::catalog_digest;
use crate::schema::introspect::{introspect, IntrospectOptions};
use crate::schema::render::render_changes;
use crate::schema::shadow::ShadowServer;
use crate::schema::workspace::{after_shadows, execute, relations_to_exclude};
use crate::schema::{Change, DiffOptions};
use crate::script::{file_name_for, parse_script, render_script, NewScript};
use postgres::types::Type;
use postgres::Client;
use std::path::Path;

/// The baseline script, rendered and verified (or not).
#[derive(Debug, Clone, Default)]
pub struct BaselineScript {
    /// The first head's id: its script carries the schema and rows.
    pub revision: String,
    pub path: std::path::PathBuf,
    pub text: String,
    /// The other heads' scripts (empty, without parents): id, path, text.
    pub others: Vec<(String, std::path::PathBuf, String)>,
    /// The Alembic revisions it stands for.
    pub revisions: usize,
    /// Tables whose rows it carries, and how many rows.
    pub tables: usize,
    pub rows: usize,
    /// Empty when the script gives Alembic's schema and rows.
    pub differences: Vec<String>,
}

/// Renders the baseline of `project`'s history (the in-memory import, for its graph) from a
/// shadow Alembic migrated, and verifies it on a second shadow.
pub fn baseline(
    project: &Project,
    settings: &Settings,
    server: &ShadowServer,
    helper: &Helper,
    export: &Export,
    dir: &Path,
) -> Result<BaselineScript> {
    if export.heads.is_empty() {
        return Err(
            Error::usage("--baseline needs a history with a revision; this one has none")
                .with_hint("import a history that has revisions"),
        );
    }
    after_shadows(inner(project, settings, server, helper, export, dir))
}

fn inner(
    project: &Project,
    settings: &Settings,
    server: &ShadowServer,
    helper: &Helper,
    export: &Export,
    dir: &Path,
) -> Result<BaselineScript> {
    let head = export.heads[0].clone();
    let alembic_db = server.create()?;
    let mut session = helper.session(&alembic_db.url)?;
    let up = project.graph.upgrade_plan(&[], &Target::Heads)?;
    for step in &up.steps {
        session.step("up", &step.revision).map_err(|e| {
            Error::script(format!(
                "Alembic itself cannot run the upgrade of revision {}: {}",
                step.revision, e.message
            ))
        })?;
    }
    drop(session);
    let mut theirs = alembic_db.connect()?;
    let mut excl = relations_to_exclude(settings);
    excl.exclude_relations.push(
        VersionTable::new(VersionTableName {
            schema: export.version_table_schema.clone(),
            name: export.version_table.clone(),
        })
        .qualified(),
    );
    let alembic_schema = introspect(&mut theirs, &excl)?;
    let empty_db = server.create()?;
    let empty = introspect(&mut empty_db.connect()?, &excl)?;
    let schema_sql = render_changes(&changes(&empty, &alembic_schema, &DiffOptions::default()));
    let data = reference_rows(&mut theirs, &excl)?;
    let mut up_sql = schema_sql.trim_end().to_string();
    if !data.sql.is_empty() {
        up_sql.push_str(
            "\n\n-- The rows the Alembic history inserted (reference data), parents first.\n",
        );
        up_sql.push_str(&data.sql);
    }
    let others: Vec<String> = export.heads[1..].to_vec();
    let message = format!(
        "baseline: the Alembic history ({} revision{}) to {}",
        up.steps.len(),
        crate::words::plural(up.steps.len()),
        export.heads.join(", ")
    );
    let mut text = render_script(&NewScript {
        revision: head.clone(),
        down_revisions: Vec::new(),
        depends_on: Vec::new(),
        branch_labels: Vec::new(),
        message: message.clone(),
        created: String::new(),
        transactional: true,
        headers: Vec::new(),
        up_sql,
        down_sql: String::new(),
    });
    // no down section: the baseline is not downgraded (drop the database instead)
    if let Some(t) = text.strip_suffix("\n-- migrate:down\n") {
        text = format!("{t}\n");
    }
    let note = format!(
        "-- Imported by migrate-import --baseline{}: the schema and rows Alembic's upgrade from\n\
         -- base to {head} leaves, read from a shadow database Alembic migrated.\n",
        if export.alembic_version.is_empty() {
            String::new()
        } else {
            format!(" (Alembic {})", export.alembic_version)
        }
    );
    if let Some((h, b)) = text.split_once("\n-- migrate:up\n") {
        text = format!("{h}\n{note}\n-- migrate:up\n{b}");
    }
    let path = dir.join(file_name_for(&head, &message));
    let mut scripts = vec![parse_script(&path, text.as_bytes()).map_err(|e| {
        Error::script(format!("the baseline script does not parse: {}", e.message))
    })?];
    let mut other_scripts = Vec::new();
    for other in &others {
        let (p, t) = other_head_script(dir, other, &head)?;
        scripts.push(parse_script(&p, t.as_bytes()).map_err(|e| {
            Error::script(format!("the baseline script does not parse: {}", e.message))
        })?);
        other_scripts.push((other.clone(), p, t));
    }
    let ours_project = Project::from_scripts(dir, scripts)?;

    // verified like a squash: run it on a fresh shadow, compare schema and rows
    let ours_db = server.create()?;
    let mut ours = ours_db.connect()?;
    let table = VersionTable::new(settings.version_table.clone());
    let plan = ours_project.graph.upgrade_plan(&[], &Target::Heads)?;
    let ours_excl = relations_to_exclude(settings);
    let mut differences = Vec::new();
    match execute(&mut ours, &ours_project, &table, &plan, None) {
        Err(e) => differences.push(format!("the baseline fails: {}", e.message)),
        Ok(mut heads) => {
            heads.sort();
            let mut want = export.heads.clone();
            want.sort();
            if heads != want {
                differences.push(format!(
                    "the baseline records {} in the version table, not the heads {}",
                    heads.join(", "),
                    want.join(", ")
                ));
            }
            let a = catalog_digest(&mut theirs, &excl)?;
            let b = catalog_digest(&mut ours, &ours_excl)?;
            if a != b {
                let s = introspect(&mut ours, &ours_excl)?;
                differences.extend(
                    changes(&s, &alembic_schema, &DiffOptions::default())
                        .iter()
                        .map(Change::what),
                );
            }
            for t in &data.tables {
                let theirs_rows = table_digest(&mut theirs, t)?;
                let ours_rows = table_digest(&mut ours, t)?;
                if theirs_rows != ours_rows {
                    differences.push(format!(
                        "the rows of {t} differ from those Alembic's history leaves"
                    ));
                }
            }
        }
    }
    Ok(BaselineScript {
        revision: head,
        path,
        text,
        others: other_scripts,
        revisions: up.steps.len(),
        tables: data.tables.len(),
        rows: data.rows,
        differences,
    })
}

/// The script of another head of a baseline: empty (the first head's script carries the schema
/// of every branch) and without a parent, so that its id is recorded beside the first's.
fn other_head_script(
    dir: &Path,
    revision: &str,
    first: &str,
) -> Result<(std::path::PathBuf, String)> {
    let message = format!("baseline: head {revision} of the Alembic history");
    let mut text = render_script(&NewScript {
        revision: revision.to_string(),
        down_revisions: Vec::new(),
        depends_on: Vec::new(),
        branch_labels: Vec::new(),
        message: message.clone(),
        created: String::new(),
        transactional: true,
        headers: Vec::new(),
        up_sql: String::new(),
        down_sql: String::new(),
    });
    if let Some(t) = text.strip_suffix("\n-- migrate:down\n") {
        text = format!("{t}\n");
    }
    let note = format!(
        "-- Imported by migrate-import --baseline: the history has several heads; the schema and\n\
         -- rows of all of them are in {first}'s script. This one records {revision} in the version\n\
         -- table, as Alembic does.\n"
    );
    if let Some((h, b)) = text.split_once("\n-- migrate:up\n") {
        text = format!("{h}\n{note}\n-- migrate:up\n{b}");
    }
    Ok((dir.join(file_name_for(revision, &message)), text))
}

/// The baseline's differences as the verification reports them.
pub fn as_difference(b: &BaselineScript) -> Option<Difference> {
    (!b.differences.is_empty()).then(|| Difference {
        revision: b.revision.clone(),
        message: "baseline".into(),
        direction: Direction::Up,
        differences: b.differences.clone(),
    })
}

struct Rows {
    sql: String,
    tables: Vec<String>,
    rows: usize,
}

/// The rows of every user table (but those left out) as INSERT statements, parents before
/// children, then `setval` of every sequence that was used.
fn reference_rows(client: &mut Client, excl: &IntrospectOptions) -> Result<Rows> {
    let list = crate::db::query::rows(
        client,
        "WITH ex AS (SELECT pg_catalog.to_regclass(x)::pg_catalog.oid AS oid FROM pg_catalog.unnest($1::text[]) x)
         SELECT c.oid::pg_catalog.int8,
                pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname),
                ARRAY(SELECT DISTINCT k.confrelid::pg_catalog.int8 FROM pg_catalog.pg_constraint k
                      WHERE k.conrelid = c.oid AND k.contype = 'f' AND k.confrelid <> c.oid),
                (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum)
                 FROM pg_catalog.pg_attribute a
                 WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '')
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
           AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_'
           AND c.oid NOT IN (SELECT oid FROM ex WHERE oid IS NOT NULL)
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
                           AND d.objid = c.oid AND d.deptype = 'e')
         ORDER BY 2",
        &[(&excl.exclude_relations, Type::TEXT_ARRAY)],
    )
    .map_err(|e| db_error("cannot list the tables of Alembic's shadow", &e))?;
    // parents first (a table after those it references; a cycle keeps the name order)
    let mut pending: Vec<(i64, String, Vec<i64>, String)> = list
        .iter()
        .map(|r| {
            (
                r.get(0),
                r.get(1),
                r.get(2),
                r.get::<_, Option<String>>(3).unwrap_or_default(),
            )
        })
        .collect();
    let mut ordered = Vec::new();
    let mut done = std::collections::HashSet::new();
    while !pending.is_empty() {
        let ids: std::collections::HashSet<i64> = pending.iter().map(|p| p.0).collect();
        let ready: Vec<usize> = (0..pending.len())
            .filter(|&i| {
                pending[i]
                    .2
                    .iter()
                    .all(|d| done.contains(d) || !ids.contains(d))
            })
            .collect();
        let take = if ready.is_empty() { vec![0] } else { ready };
        let mut round = Vec::with_capacity(take.len());
        for i in take.into_iter().rev() {
            let p = pending.remove(i);
            done.insert(p.0);
            round.push(p);
        }
        round.reverse();
        ordered.extend(round);
    }
    let mut sql = String::new();
    let mut tables = Vec::new();
    let mut rows = 0;
    for (_, name, _, cols) in &ordered {
        if cols.is_empty() {
            continue;
        }
        let inserts = crate::db::query::rows(
            client,
            &format!(
                "SELECT pg_catalog.format('INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM \
                 pg_catalog.json_populate_record(NULL::%s, %L);', $1::text, $2::text, $2::text, $1::text, \
                 pg_catalog.row_to_json(t)::text) AS s FROM {name} t ORDER BY 1"
            ),
            &[(name, Type::TEXT), (cols, Type::TEXT)],
        )
        .map_err(|e| db_error(&format!("cannot read the rows of {name}"), &e))?;
        if inserts.is_empty() {
            continue;
        }
        tables.push(name.clone());
        rows += inserts.len();
        for r in inserts {
            sql.push_str(&r.get::<_, String>(0));
            sql.push('\n');
        }
    }
    let seqs = crate::db::query::rows(
        client,
        "WITH ex AS (SELECT pg_catalog.to_regclass(x)::pg_catalog.oid AS oid FROM pg_catalog.unnest($1::text[]) x)
         SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname)
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind = 'S' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_'
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
                           AND d.objid = c.oid
                           AND (d.deptype = 'e' OR d.refobjid IN (SELECT oid FROM ex WHERE oid IS NOT NULL)))
         ORDER BY 1",
        &[(&excl.exclude_relations, Type::TEXT_ARRAY)],
    )
    .map_err(|e| db_error("cannot list the sequences of Alembic's shadow", &e))?;
    for s in seqs {
        let name: String = s.get(0);
        let r = crate::db::query::one(
            client,
            &format!("SELECT last_value::pg_catalog.int8, is_called FROM {name}"),
            &[],
        )
        .map_err(|e| db_error(&format!("cannot read the sequence {name}"), &e))?;
        if r.get::<_, bool>(1) {
            sql.push_str(&format!(
                "SELECT pg_catalog.setval('{}', {}, true);\n",
                name.replace('\'', "''"),
                r.get::<_, i64>(0)
            ));
        }
    }
    Ok(Rows { sql, tables, rows })
}

/// A digest of a table's rows.
fn table_digest(client: &mut Client, name: &str) -> Result<String> {
    let r = crate::db::query::one(
        client,
        &format!(
            "SELECT pg_catalog.md5(COALESCE(pg_catalog.string_agg(t::text, E'\\n' ORDER BY t::text), '')) FROM {name} t"
        ),
        &[],
    )
    .map_err(|e| db_error(&format!("cannot read the rows of {name}"), &e))?;
    Ok(r.get(0))
}
