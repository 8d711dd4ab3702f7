//! Offline mode (`--sql`): the same plan an online run would execute, rendered as one SQL script
//! on stdout in Alembic's format, version-table writes included, so a DBA can review it or run
//! it with `psql -f`.

use crate::db::VersionTable;
use crate::error::Result;
use crate::plan::Plan;
use crate::project::Project;
use crate::run::{section_for, step_title};
use crate::script::split_statements;

#[derive(Debug, Clone, Default)]
pub struct OfflineOptions {
    /// Emit `CREATE TABLE alembic_version` (only when the range starts from base).
    pub create_version_table: bool,
    /// One BEGIN/COMMIT per step instead of one around everything.
    pub transaction_per_migration: bool,
}

pub fn render(
    project: &Project,
    table: &VersionTable,
    plan: &Plan,
    opts: &OfflineOptions,
) -> Result<String> {
    crate::run::preflight(project, plan)?;
    let mut out = String::new();
    let mut in_tx = false;
    let begin = |out: &mut String, in_tx: &mut bool| {
        if !*in_tx {
            out.push_str("BEGIN;\n\n");
            *in_tx = true;
        }
    };
    let commit = |out: &mut String, in_tx: &mut bool| {
        if *in_tx {
            out.push_str("COMMIT;\n\n");
            *in_tx = false;
        }
    };
    if opts.create_version_table {
        begin(&mut out, &mut in_tx);
        out.push_str(&table.create_sql());
        out.push_str("\n\n");
    }
    for step in &plan.steps {
        let script = project.script(&step.revision)?;
        let section = section_for(script, step.direction)?;
        if script.transactional {
            begin(&mut out, &mut in_tx);
        } else {
            commit(&mut out, &mut in_tx);
        }
        out.push_str(&format!("-- {}\n\n", step_title(project, step)));
        if !script.transactional {
            out.push_str(&format!(
                "-- {} is not transactional: it runs outside a transaction\n\n",
                script.path.display()
            ));
        }
        for stmt in split_statements(&section.sql, section.line) {
            out.push_str(stmt.sql.trim());
            out.push_str(";\n\n");
        }
        begin(&mut out, &mut in_tx);
        for op in &step.version_ops {
            out.push_str(&table.op_sql(op));
            out.push_str("\n\n");
        }
        if opts.transaction_per_migration {
            commit(&mut out, &mut in_tx);
        }
    }
    commit(&mut out, &mut in_tx);
    while out.ends_with("\n\n") {
        out.pop();
    }
    Ok(out)
}

/// `--sql [START:]END` for `migrate-up` (`up`) or `migrate-down`: loads the scripts from
/// `settings` and renders the plan; no database is needed.
pub fn sql_for_range(
    settings: &crate::config::Settings,
    range: &str,
    up: bool,
    transaction_per_migration: bool,
) -> Result<String> {
    let project = Project::load(&settings.migrations_dir)?;
    let (plan, create) = crate::migrator::offline_plan(&project, range, up)?;
    let table = VersionTable::new(settings.version_table.clone());
    let opts = OfflineOptions {
        create_version_table: create,
        transaction_per_migration,
    };
    render(&project, &table, &plan, &opts)
}
