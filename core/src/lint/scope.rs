//! Which lock and rewrite findings matter, with a database: the gate's rule.
//!
//! A finding about locking a table matters only when the table exists before the run (it is in
//! the database, and no revision of the run created it, in an earlier revision or earlier in the
//! same one); a finding whose danger grows with the data (an index build, a rewrite, a
//! validation scan, a backfill) also needs rows in it ([`DbFacts`]: `pg_class.reltuples`, or a
//! count stopped at 10,000,001). A statement on a table the run creates, or on one that is
//! empty, locks nothing anybody waits for long: its finding is left out of the report (and
//! counted in [`super::LintReport::out_of_scope`]).
//!
//! Without a database (`migrate-check --offline`) nothing is known about the tables: every
//! finding stays.
//!
//! Which findings: those of the rules whose [`Concern`] is the data (kept when the table exists
//! before the run and holds rows) or a lock (kept when the table exists before the run). retort's
//! vector rules apply the same rule themselves (they say the row count and the build memory:
//! [`super::rules::Meta::scopes_itself`]).

use super::facts::{DbFacts, Rows};
use super::first_token;
use super::model::Model;
use super::rules::{Concern, Raw, RuleId};
use super::text::normalize_name;
use squawk_syntax::ast::{self, AstNode};

/// A table as it is before the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Before {
    /// Not in the database, or created by a revision of the run.
    New,
    Exists(Rows),
}

/// What `table` is before the run: `model` has walked the scripts up to the statement.
pub fn before_run(model: &Model, facts: &DbFacts, table: &str) -> Before {
    let table = normalize_name(table);
    let created_by_run = model
        .tables
        .get(&table)
        .and_then(|t| t.created_in.as_deref())
        .is_some_and(|rev| facts.pending.contains(rev));
    match facts.tables.get(&table) {
        Some(rows) if !created_by_run => Before::Exists(*rows),
        _ => Before::New,
    }
}

/// The tables a statement locks, from squawk's tree: `None` when the statement is of a kind
/// this does not know (its findings are kept). An index the database does not have (created
/// by the run) counts as a new table.
fn tables_of(stmt: &ast::Stmt, facts: &DbFacts) -> Option<Vec<Option<String>>> {
    let name = |n: &dyn AstNodeText| Some(normalize_name(&n.text()));
    let index_table = |n: String| facts.indexes.get(&normalize_name(&n)).cloned();
    match stmt {
        ast::Stmt::CreateIndex(ci) => {
            let t = ci.table_relation_name()?.table_name_ref()?;
            Some(vec![name(&t)])
        }
        ast::Stmt::AlterTable(a) => {
            let t = a.table_relation_name()?.table_name_ref()?;
            Some(vec![name(&t)])
        }
        ast::Stmt::DropIndex(d) => Some(
            d.index_refs()
                .map(|r| index_table(r.syntax().text().to_string()))
                .collect(),
        ),
        ast::Stmt::Reindex(r) => match r.reindex_target()? {
            ast::ReindexTarget::ReindexTargetTable(t) => Some(vec![name(&t.table_name_ref()?)]),
            ast::ReindexTarget::ReindexTargetIndex(i) => Some(vec![index_table(
                i.index_ref()?.syntax().text().to_string(),
            )]),
            _ => None,
        },
        ast::Stmt::Update(u) => {
            let t = u.relation_name()?.relation_name_ref()?;
            Some(vec![name(&t)])
        }
        _ => None,
    }
}

trait AstNodeText {
    fn text(&self) -> String;
}

impl<T: AstNode> AstNodeText for T {
    fn text(&self) -> String {
        self.syntax().text().to_string()
    }
}

/// Keeps the findings that matter before this run (see the module's text); returns how many
/// were left out. Kept data findings say how many rows the table holds.
pub fn retain(raw: &mut Vec<Raw>, stmts: &[ast::Stmt], model: &Model, facts: &DbFacts) -> usize {
    let before = raw.len();
    raw.retain_mut(|r| {
        let data = match r.rule.concern() {
            Concern::Data => true,
            Concern::Lock => false,
            Concern::Script => return true,
        };
        if matches!(r.rule, RuleId::Retort(m) if m.scopes_itself) {
            return true;
        }
        let Some(stmt) = stmts.iter().find(|s| first_token(s.syntax()) == r.stmt) else {
            return true;
        };
        let Some(tables) = tables_of(stmt, facts) else {
            return true;
        };
        let mut why = Vec::new();
        for t in tables.into_iter().flatten() {
            match before_run(model, facts, &t) {
                Before::Exists(_) if !data => why.push(format!("{t} exists before this run")),
                Before::Exists(rows) if rows.count > 0 => why.push(format!(
                    "{t} exists before this run and holds {}",
                    rows.describe()
                )),
                _ => {}
            }
        }
        if why.is_empty() {
            return false;
        }
        r.message = format!("{} ({})", r.message.trim_end_matches('.'), why.join("; "));
        true
    });
    before - raw.len()
}
