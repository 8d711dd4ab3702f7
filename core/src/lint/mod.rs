//! Lint: what a migration will do to a running database, found before it runs.
//!
//! Each script's up section is parsed once with squawk's parser ([`squawk_syntax`]); the same
//! tree goes to squawk's PostgreSQL rules ([`rules::squawk`]) and to retort's own, one file per
//! rule under [`rules`]: the pgvector rules and the rules about how retort runs a script. What
//! the scripts before it created (tables, column types, vector indexes) is tracked in a small
//! [`model`], walked in upgrade order statement by statement; with a database, [`facts`] adds
//! row counts and `maintenance_work_mem`, and [`scope`] keeps the lock and rewrite findings that
//! matter before the run ([`gate`] decides on them). Levels come from the rules' defaults and `retort.toml`'s `[lint]`
//! table ([`config`]); `-- retort:allow <rule> <reason>` on the lines just above a statement
//! silences one rule for that statement ([`allow`]).
//!
//! Everything here is a value computed from text (and the facts, read beforehand): a statement
//! squawk's parser cannot read is a warning with its position ("not linted"), never an error of
//! the run; PostgreSQL judges it when it runs.

pub mod allow;
pub mod config;
pub mod facts;
pub mod gate;
pub mod model;
pub mod rules;
pub mod scope;
pub mod text;

pub use config::LintConfig;
pub use facts::DbFacts;
pub use rules::{Raw, RuleId};

use crate::project::Project;
use crate::script::Script;
use model::Model;
use squawk_syntax::ast::AstNode;
use squawk_syntax::SourceFile;
use std::collections::BTreeSet;

/// How much a finding matters: an error fails `migrate-check --lint` and stops `migrate-up`
/// (unless `--allow-unsafe`); a warning is printed; `off` rules are not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Off,
    Warning,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Off => "off",
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<Level> {
        match s {
            "off" => Some(Level::Off),
            "warning" | "warn" => Some(Level::Warning),
            "error" => Some(Level::Error),
            _ => None,
        }
    }
}

/// One finding: where (`path:line:col`, 1-based file positions), how bad, which rule, what and
/// what to do instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub path: String,
    pub revision: String,
    pub line: usize,
    pub col: usize,
    pub level: Level,
    pub rule: String,
    pub message: String,
    pub help: Option<String>,
}

/// What a lint run found, in script order.
#[derive(Debug, Clone, Default)]
pub struct LintReport {
    /// The revisions linted, in upgrade order.
    pub revisions: Vec<String>,
    pub findings: Vec<Finding>,
    /// Findings silenced by `-- retort:allow`.
    pub allowed: usize,
    /// Lock and rewrite findings left out because, with the database, their table does not
    /// exist before the run or holds no rows ([`scope`]).
    pub out_of_scope: usize,
}

/// How many findings of a script were not reported, and why.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Silenced {
    /// By `-- retort:allow`.
    pub allowed: usize,
    /// By [`scope`]: on a table the run creates, or an empty one.
    pub out_of_scope: usize,
}

impl LintReport {
    pub fn errors(&self) -> usize {
        self.count(Level::Error)
    }

    pub fn warnings(&self) -> usize {
        self.count(Level::Warning)
    }

    /// `lint: 1 error, 0 warnings in 1 script`, and what was left out.
    pub fn summary(&self) -> String {
        let r = self;
        let n = r.revisions.len();
        let plural = |k: usize, w: &str| format!("{k} {w}{}", crate::words::plural(k));
        let mut s = format!(
            "lint: {}, {} in {}",
            plural(r.errors(), "error"),
            plural(r.warnings(), "warning"),
            plural(n, "script")
        );
        if r.allowed > 0 {
            s.push_str(&format!(" ({} allowed by -- retort:allow)", r.allowed));
        }
        if r.out_of_scope > 0 {
            s.push_str(&format!(
                " ({} on tables created by this run or empty before it, not counted)",
                r.out_of_scope
            ));
        }
        s
    }

    fn count(&self, level: Level) -> usize {
        self.findings.iter().filter(|f| f.level == level).count()
    }
}

/// Lints the scripts of `selected` (revision ids; reported in upgrade order). Every script of
/// the project is walked in upgrade order so that what earlier revisions created is known;
/// only the selected ones report.
pub fn lint_project(
    project: &Project,
    selected: &[String],
    facts: Option<&DbFacts>,
    config: &LintConfig,
) -> crate::error::Result<LintReport> {
    let order: Vec<String> = project.graph.upgrade_order();
    let wanted: BTreeSet<&str> = selected.iter().map(String::as_str).collect();
    let mut model = Model::default();
    if let Some(f) = facts {
        model.seed(f);
    }
    let mut report = LintReport::default();
    for rev in &order {
        let script = project.script(rev)?;
        let report_it = wanted.contains(rev.as_str());
        let (findings, silenced) = lint_script(script, &mut model, facts, config, report_it);
        if report_it {
            report.revisions.push(rev.clone());
            report.findings.extend(findings);
            report.allowed += silenced.allowed;
            report.out_of_scope += silenced.out_of_scope;
        }
    }
    Ok(report)
}

/// Lints one script against `model` (what exists before it), and applies the script to the
/// model. `report` false: only the model is updated. Returns the findings and how many were
/// not reported (allowed, or out of [`scope`] with the database's facts).
pub fn lint_script(
    script: &Script,
    model: &mut Model,
    facts: Option<&DbFacts>,
    config: &LintConfig,
    report: bool,
) -> (Vec<Finding>, Silenced) {
    let sql = &script.up.sql;
    let parse = SourceFile::parse(sql);
    let file = parse.tree();
    let stmts: Vec<squawk_syntax::ast::Stmt> = file.stmts().collect();
    if !report {
        for stmt in &stmts {
            model.apply(stmt, &script.revision);
        }
        return (Vec::new(), Silenced::default());
    }
    let mut rules = rules::retort();
    let mut raw: Vec<Raw> = Vec::new();
    // each rule sees the model as it is before each statement
    for stmt in &stmts {
        let cx = rules::StmtCx {
            stmt,
            at: first_token(stmt.syntax()),
            model,
            revision: &script.revision,
            script,
            facts,
        };
        for r in rules.iter_mut() {
            r.statement(&cx, &mut raw);
        }
        model.apply(stmt, &script.revision);
    }
    let cx = rules::ScriptCx {
        script,
        parse: &parse,
        stmts: &stmts,
        facts,
    };
    for r in rules.iter_mut() {
        r.finish(&cx, &mut raw);
    }
    raw.extend(rules::squawk::check(
        &parse,
        sql,
        script.transactional,
        config,
        &stmts,
    ));
    rules::drop_superseded(&mut raw);
    // what the parser could not read is not linted: no rule speaks about it but the warning
    let unread = rules::syntax_error::unread(&raw, sql);
    raw.retain(|r| {
        r.rule.is(&rules::syntax_error::META) || !unread.iter().any(|u| u.contains(&r.offset))
    });
    let out_of_scope = match facts {
        Some(f) => scope::retain(&mut raw, &stmts, model, f),
        None => 0,
    };

    let lines = text::LineIndex::new(sql);
    let allows = allow::Allows::find(sql);
    let mut out = Vec::new();
    let mut allowed = 0;
    for r in raw {
        let id = r.rule.id();
        let level = config.level(&id);
        if level == Level::Off {
            continue;
        }
        let whole_script = matches!(r.rule, RuleId::Retort(m) if m.whole_script);
        if allows.silences(&id, whole_script, &lines, r.stmt) {
            allowed += 1;
            continue;
        }
        let (line, col) = lines.position(r.offset);
        out.push(Finding {
            path: script.path.display().to_string(),
            revision: script.revision.clone(),
            line: script.up.line + line,
            col,
            level,
            rule: id,
            message: r.message,
            help: r.help,
        });
    }
    out.sort_by_key(|f| (f.line, f.col));
    (
        out,
        Silenced {
            allowed,
            out_of_scope,
        },
    )
}

/// The byte offset of the first token of the statement holding byte `at` (or of `at` when it
/// is between statements).
pub fn statement_start(stmts: &[squawk_syntax::ast::Stmt], at: usize) -> usize {
    for s in stmts {
        let r = s.syntax().text_range();
        if usize::from(r.start()) <= at && at <= usize::from(r.end()) {
            return first_token(s.syntax());
        }
    }
    at
}

/// The byte offset of a node's first token that is not whitespace or a comment.
pub fn first_token(node: &squawk_syntax::SyntaxNode) -> usize {
    node.descendants_with_tokens()
        .filter_map(|e| e.into_token())
        .find(|t| !t.kind().is_trivia())
        .map(|t| usize::from(t.text_range().start()))
        .unwrap_or_else(|| usize::from(node.text_range().start()))
}

/// Every rule retort knows: its own and squawk's, with their default levels.
pub fn all_rules() -> Vec<(String, Level)> {
    rules::all()
}

#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod split_bench;
