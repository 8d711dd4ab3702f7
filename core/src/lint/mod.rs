//! Lint: what a migration will do to a running database, found before it runs.
//!
//! Each script's up section is parsed once with squawk's parser ([`squawk_syntax`]); the same
//! tree goes to squawk's PostgreSQL rules ([`squawk`]) and to retort's own: the pgvector rules
//! ([`vector`]) and the rules about how retort runs a script ([`run_rules`]). What the scripts
//! before it created (tables, column types, vector indexes) is tracked in a small [`model`],
//! walked in upgrade order; with a database, [`facts`] adds row counts and
//! `maintenance_work_mem`. Levels come from the rules' defaults and `retort.toml`'s `[lint]`
//! table ([`config`]); `-- retort:allow <rule> <reason>` on the lines just above a statement
//! silences one rule for that statement ([`allow`]).
//!
//! Everything here is a value computed from text (and the facts, read beforehand): a syntax
//! error is a finding with its position, never an error of the run.

pub mod allow;
pub mod config;
pub mod facts;
pub mod gate;
pub mod model;
pub mod run_rules;
pub mod scope;
pub mod squawk;
pub mod text;
pub mod vector;

pub use config::LintConfig;
pub use facts::DbFacts;

use crate::graph::Target;
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
        let plural = |k: usize, w: &str| format!("{k} {w}{}", if k == 1 { "" } else { "s" });
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

/// A finding before its level and position are settled: `offset` is a byte offset into the
/// section's SQL, `stmt` the byte offset of the start of the statement it belongs to (where
/// `-- retort:allow` is looked for).
#[derive(Debug, Clone)]
pub struct Raw {
    pub rule: &'static str,
    pub offset: usize,
    pub stmt: usize,
    pub message: String,
    pub help: Option<String>,
}

/// Squawk rule ids are `String`s from the crate; retort's are `&'static str`. Both end here.
#[derive(Debug, Clone)]
pub struct RawOwned {
    pub rule: String,
    pub offset: usize,
    pub stmt: usize,
    pub message: String,
    pub help: Option<String>,
}

impl From<Raw> for RawOwned {
    fn from(r: Raw) -> Self {
        RawOwned {
            rule: r.rule.to_string(),
            offset: r.offset,
            stmt: r.stmt,
            message: r.message,
            help: r.help,
        }
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
    let order: Vec<String> = project
        .graph
        .upgrade_plan(&[], &Target::Heads)?
        .steps
        .into_iter()
        .map(|s| s.revision)
        .collect();
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
    let mut raw: Vec<RawOwned> = Vec::new();
    let ctx = vector::Ctx {
        revision: &script.revision,
        facts,
    };
    // the model is updated statement by statement: retort's rules see the state before each
    raw.extend(
        vector::check(&stmts, model, &ctx, report)
            .into_iter()
            .map(RawOwned::from),
    );
    if !report {
        return (Vec::new(), Silenced::default());
    }
    raw.extend(
        run_rules::check(script, &stmts, facts)
            .into_iter()
            .map(RawOwned::from),
    );
    // After a syntax error the parser's recovery reports every token up to the next statement
    // it recognises: the first error of each stretch is the one that matters.
    let starts: Vec<usize> = stmts.iter().map(|s| first_token(s.syntax())).collect();
    let mut last_error: Option<usize> = None;
    for e in parse.errors() {
        let at = usize::from(e.range().start());
        if let Some(prev) = last_error {
            if !starts.iter().any(|&s| s > prev && s <= at) {
                continue;
            }
        }
        last_error = Some(at);
        raw.push(RawOwned {
            rule: "syntax-error".into(),
            offset: at,
            stmt: statement_start(&stmts, at),
            message: format!("syntax error: {}", e.message()),
            help: Some(
                "fix the SQL; PostgreSQL would refuse this statement when the migration runs"
                    .into(),
            ),
        });
    }
    // squawk's generic finding is dropped where retort's vector rule says more
    let vector_builds: Vec<usize> = raw
        .iter()
        .filter(|r| r.rule == "vector-index-not-concurrent")
        .map(|r| r.stmt)
        .collect();
    raw.extend(
        squawk::check(&parse, sql, script.transactional, config, &stmts)
            .into_iter()
            .filter(|r| {
                !(r.rule == "require-concurrent-index-creation" && vector_builds.contains(&r.stmt))
            }),
    );
    let out_of_scope = match facts {
        Some(f) => scope::retain(&mut raw, &stmts, model, f),
        None => 0,
    };

    let lines = text::LineIndex::new(sql);
    let allows = allow::Allows::find(sql);
    let mut out = Vec::new();
    let mut allowed = 0;
    for r in raw {
        let level = config.level(&r.rule);
        if level == Level::Off {
            continue;
        }
        if allows.silences(&r.rule, &lines, r.stmt) {
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
            rule: r.rule,
            message: r.message,
            help: r.help,
        });
    }
    for p in allows.problems(&lines) {
        let (line, col) = lines.position(p.offset);
        out.push(Finding {
            path: script.path.display().to_string(),
            revision: script.revision.clone(),
            line: script.up.line + line,
            col,
            level: Level::Error,
            rule: "allow-syntax".into(),
            message: p.message,
            help: Some("write `-- retort:allow <rule> <reason>`, e.g. `-- retort:allow ban-drop-column the column was unused since v2`".into()),
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
    let mut v: Vec<(String, Level)> = run_rules::RULES
        .iter()
        .chain(vector::RULES.iter())
        .map(|(id, l)| (id.to_string(), *l))
        .collect();
    v.push(("syntax-error".into(), Level::Error));
    v.extend(squawk::rules());
    v
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod split_bench;
