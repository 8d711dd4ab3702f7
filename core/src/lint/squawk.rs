//! squawk's PostgreSQL rules ([`squawk_linter`]), run on the tree retort parsed. Rule ids are
//! squawk's own (`adding-field-with-default`, ...); levels are retort's: the rules about locks
//! and table rewrites are errors, the rest warnings, and two are off by default:
//! `require-lock-timeout` and `require-statement-timeout` (timeouts are set per run, not per
//! script). squawk's `ban-concurrent-index-creation-in-transaction` is replaced by retort's
//! `concurrently-in-transaction`. squawk's opt-in rules can be switched on in `retort.toml`.

use super::{statement_start, Level, LintConfig, RawOwned};
use squawk_linter::{Linter, Rule};
use squawk_syntax::{ast, Parse, SourceFile};
use std::str::FromStr;

/// squawk rules that are errors by default: they lock a busy table for long or rewrite it,
/// or break the transaction retort runs the script in.
const ERRORS: &[&str] = &[
    "require-concurrent-index-creation",
    "require-concurrent-index-deletion",
    "constraint-missing-not-valid",
    "adding-field-with-default",
    "adding-foreign-key-constraint",
    "changing-column-type",
    "adding-not-nullable-field",
    "adding-serial-primary-key-field",
    "disallowed-unique-constraint",
    "adding-required-field",
    "ban-drop-database",
    "ban-truncate-cascade",
    "transaction-nesting",
    "ban-uncommitted-transaction",
    "require-concurrent-reindex",
    "require-concurrent-partition-detach",
];

const OFF: &[&str] = &["require-lock-timeout", "require-statement-timeout"];

/// Replaced by retort's own rules.
const REPLACED: &[Rule] = &[Rule::BanConcurrentIndexCreationInTransaction];

/// squawk's default rules with retort's levels.
pub fn rules() -> Vec<(String, Level)> {
    let mut v: Vec<(String, Level)> = Linter::with_default_rules()
        .rules
        .iter()
        .filter(|r| !REPLACED.contains(r) && **r != Rule::UnusedIgnore)
        .map(|r| {
            let id = r.to_string();
            let level = if ERRORS.contains(&id.as_str()) {
                Level::Error
            } else if OFF.contains(&id.as_str()) {
                Level::Off
            } else {
                Level::Warning
            };
            (id, level)
        })
        .collect();
    v.sort();
    v
}

/// Whether `id` is one of squawk's rules (opt-in ones included).
pub fn is_rule(id: &str) -> bool {
    Rule::from_str(id).is_ok()
}

/// Lints one section. `transactional`: retort runs the section in a transaction.
pub fn check(
    parse: &Parse<SourceFile>,
    sql: &str,
    transactional: bool,
    config: &LintConfig,
    stmts: &[ast::Stmt],
) -> Vec<RawOwned> {
    let include: Vec<Rule> = config
        .enabled_extra()
        .iter()
        .filter_map(|r| Rule::from_str(r).ok())
        .collect();
    let mut linter = Linter::with_rules(&include, REPLACED);
    linter.rules.remove(&Rule::UnusedIgnore);
    linter
        .rules
        .retain(|r| config.level(&r.to_string()) != Level::Off);
    linter.settings.assume_in_transaction = transactional;
    linter
        .lint(parse, sql)
        .into_iter()
        .map(|v| {
            let at = usize::from(v.text_range.start());
            RawOwned {
                rule: v.code.to_string(),
                offset: at,
                stmt: statement_start(stmts, at),
                message: v.message,
                help: v.help,
            }
        })
        .collect()
}
