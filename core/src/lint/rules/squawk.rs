//! squawk's PostgreSQL rules ([`squawk_linter`]), run on the tree retort parsed, named by
//! squawk's own [`Rule`] type. Ids, messages and help are squawk's (one help text is
//! corrected: `prefer-robust-stmts` on an index); levels and concerns are retort's ([`LEVELS`]): what holds a lock
//! for a time proportional to the data (a rewrite, a validating scan, a blocking index build)
//! and what breaks the transaction are errors; brief locks and style are warnings; the
//! per-script timeout rules are off (timeouts are a property of the run and the role). The
//! rules a retort rule replaces do not run ([`super::replaced`]). squawk's opt-in rules can be
//! switched on in `retort.toml`.

use super::{Concern, Raw, RuleId};
use crate::lint::{statement_start, Level, LintConfig};
use squawk_linter::{Linter, Rule};
use squawk_syntax::{ast, Parse, SourceFile};
use std::str::FromStr;

/// squawk rules whose level or concern is not "warning, about the script".
pub const LEVELS: &[(Rule, Level, Concern)] = &[
    // the lock is held for as long as the data takes
    (
        Rule::RequireConcurrentIndexCreation,
        Level::Error,
        Concern::Data,
    ),
    (Rule::ConstraintMissingNotValid, Level::Error, Concern::Data),
    (Rule::AddingFieldWithDefault, Level::Error, Concern::Data),
    (
        Rule::AddingForeignKeyConstraint,
        Level::Error,
        Concern::Data,
    ),
    (Rule::ChangingColumnType, Level::Error, Concern::Data),
    (Rule::AddingNotNullableField, Level::Error, Concern::Data),
    (
        Rule::AddingSerialPrimaryKeyField,
        Level::Error,
        Concern::Data,
    ),
    (
        Rule::DisallowedUniqueConstraint,
        Level::Error,
        Concern::Data,
    ),
    (Rule::AddingRequiredField, Level::Error, Concern::Data),
    (Rule::RequireConcurrentReindex, Level::Error, Concern::Data),
    // a brief lock, waited for under the run's lock_timeout
    (
        Rule::RequireConcurrentIndexDeletion,
        Level::Warning,
        Concern::Lock,
    ),
    (
        Rule::RequireConcurrentPartitionDetach,
        Level::Warning,
        Concern::Lock,
    ),
    // the script breaks the transaction, or destroys what cannot come back
    (Rule::BanDropDatabase, Level::Error, Concern::Script),
    (Rule::BanTruncateCascade, Level::Error, Concern::Script),
    (Rule::TransactionNesting, Level::Error, Concern::Script),
    (
        Rule::BanUncommittedTransaction,
        Level::Error,
        Concern::Script,
    ),
    // a property of the run and the role, not of each script
    (Rule::RequireLockTimeout, Level::Off, Concern::Script),
    (Rule::RequireStatementTimeout, Level::Off, Concern::Script),
];

fn entry(rule: Rule) -> Option<&'static (Rule, Level, Concern)> {
    LEVELS.iter().find(|(r, _, _)| *r == rule)
}

pub fn level(rule: Rule) -> Level {
    entry(rule).map_or(Level::Warning, |e| e.1)
}

pub fn concern(rule: Rule) -> Concern {
    entry(rule).map_or(Concern::Script, |e| e.2)
}

/// squawk's default rules with retort's levels.
pub fn rules() -> Vec<(String, Level)> {
    let replaced = super::replaced();
    let mut v: Vec<(String, Level)> = Linter::with_default_rules()
        .rules
        .iter()
        .filter(|r| !replaced.contains(r) && **r != Rule::UnusedIgnore)
        .map(|r| (r.to_string(), level(*r)))
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
) -> Vec<Raw> {
    let rules = config.squawk_rules(|| {
        let include: Vec<Rule> = config
            .enabled_extra()
            .iter()
            .filter_map(|r| Rule::from_str(r).ok())
            .collect();
        let mut linter = Linter::with_rules(&include, &super::replaced());
        linter.rules.remove(&Rule::UnusedIgnore);
        linter
            .rules
            .retain(|r| config.level(&r.to_string()) != Level::Off);
        linter.rules.into_iter().collect()
    });
    // `with_rules` left no alias, so `from` adds nothing to the set
    let mut linter = Linter::from(rules.iter().copied());
    linter.settings.assume_in_transaction = transactional;
    linter
        .lint(parse, sql)
        .into_iter()
        .map(|v| {
            let at = usize::from(v.text_range.start());
            let stmt = statement_start(stmts, at);
            Raw {
                rule: RuleId::Squawk(v.code),
                offset: at,
                stmt,
                help: help(v.code, stmts, stmt, v.help),
                message: v.message,
            }
        })
        .collect()
}

/// squawk's help, corrected where it says the wrong thing: `prefer-robust-stmts` on a
/// `CREATE INDEX` (always a named one: squawk does not report an unnamed index) says "Use an
/// explicit name for a concurrently created index".
fn help(rule: Rule, stmts: &[ast::Stmt], stmt: usize, help: Option<String>) -> Option<String> {
    use squawk_syntax::ast::AstNode;
    let is_index = stmts.iter().any(|s| {
        matches!(s, ast::Stmt::CreateIndex(_)) && crate::lint::first_token(s.syntax()) == stmt
    });
    if rule == Rule::PreferRobustStmts && is_index {
        return Some("write `CREATE INDEX IF NOT EXISTS name ...`, so that running the script again after a failure part way through does not stop on the index; after a failed CONCURRENTLY build, drop the INVALID index it leaves (`migrate-up --repair-invalid-indexes`)".into());
    }
    help
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::*;

    #[test]
    fn squawk_rules_run_with_their_ids() {
        let f = lint_after(
            CHUNKS,
            "",
            "ALTER TABLE chunks ADD COLUMN n bigint NOT NULL;",
        );
        assert!(rules(&f).contains(&"adding-required-field"), "{f:?}");
        let safe = lint_after(CHUNKS, "", "ALTER TABLE chunks ADD COLUMN n bigint;");
        assert!(!rules(&safe).contains(&"adding-required-field"), "{safe:?}");
    }

    #[test]
    fn an_allow_above_a_squawk_finding_silences_it() {
        let f = lint_after(CHUNKS, "", "-- retort:allow adding-required-field the table is empty everywhere\nALTER TABLE chunks ADD COLUMN n bigint NOT NULL;");
        assert!(!rules(&f).contains(&"adding-required-field"), "{f:?}");
    }

    #[test]
    fn the_help_for_a_named_index_without_if_not_exists_asks_for_if_not_exists() {
        let f = lint_after(
            CHUNKS,
            "-- transactional: false",
            "CREATE INDEX CONCURRENTLY chunks_id ON chunks (id);",
        );
        let hit = f
            .iter()
            .find(|f| f.rule == "prefer-robust-stmts")
            .expect("finding");
        let help = hit.help.as_deref().unwrap();
        assert!(!help.contains("explicit name"), "{help}");
        assert!(help.contains("IF NOT EXISTS"), "{help}");
    }

    #[test]
    fn brief_locks_are_warnings_and_data_proportional_locks_errors() {
        let f = lint_after(
            &format!("{CHUNKS}\nCREATE INDEX chunks_id ON chunks (id);"),
            "",
            "DROP INDEX chunks_id;",
        );
        let hit = f
            .iter()
            .find(|f| f.rule == "require-concurrent-index-deletion")
            .expect("finding");
        assert_eq!(hit.level, Level::Warning);
        let f = lint_after(CHUNKS, "", "ALTER TABLE chunks ALTER COLUMN id TYPE text;");
        let hit = f
            .iter()
            .find(|f| f.rule == "changing-column-type")
            .expect("finding");
        assert_eq!(hit.level, Level::Error);
    }
}
