//! Rule levels: each rule's default, overridden by the project file's `[lint]` table —
//! `retort.toml` beside the migrations directory (where `schema.sql` is looked for too), else
//! `[tool.retort.lint]` in `pyproject.toml` (`crate::config::project_file`):
//!
//! ```toml
//! [lint]
//! prefer-robust-stmts = "off"
//! backfill-with-ddl = "error"
//! require-lock-timeout = "warning"
//! ```
//!
//! A rule name that retort does not know, or a level other than error/warning/off, is an error
//! naming the file and line: a typo must not switch a rule off silently.

use super::{all_rules, Level};
use crate::config::project_file::ProjectFile;
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct LintConfig {
    defaults: HashMap<String, Level>,
    overrides: HashMap<String, Level>,
    /// The file the overrides came from.
    pub source: Option<PathBuf>,
    /// squawk's rules to run, worked out from the levels on the first script linted (the same
    /// for every script of a run: 1,000 scripts used to build the set 1,000 times).
    squawk_rules: std::sync::OnceLock<Vec<squawk_linter::Rule>>,
}

impl Default for LintConfig {
    fn default() -> Self {
        LintConfig {
            defaults: all_rules().into_iter().collect(),
            overrides: HashMap::new(),
            source: None,
            squawk_rules: std::sync::OnceLock::new(),
        }
    }
}

impl LintConfig {
    /// The level of `rule` (a rule without a default, such as a squawk rule added in a newer
    /// version, is a warning).
    pub fn level(&self, rule: &str) -> Level {
        self.overrides
            .get(rule)
            .or_else(|| self.defaults.get(rule))
            .copied()
            .unwrap_or(Level::Warning)
    }

    /// squawk's rules to run under this configuration: `build`'s answer, asked once.
    pub(crate) fn squawk_rules(
        &self,
        build: impl FnOnce() -> Vec<squawk_linter::Rule>,
    ) -> &[squawk_linter::Rule] {
        self.squawk_rules.get_or_init(build)
    }

    /// Rules without a default (squawk's opt-in rules) that the file switches on.
    pub fn enabled_extra(&self) -> Vec<String> {
        self.overrides
            .iter()
            .filter(|(r, l)| **l != Level::Off && !self.defaults.contains_key(*r))
            .map(|(r, _)| r.clone())
            .collect()
    }

    /// The project file for `migrations_dir`: `retort.toml` in the directory that holds it.
    pub fn file_for(migrations_dir: &Path) -> PathBuf {
        crate::config::project_file::path_for(migrations_dir)
    }

    /// The defaults with the project file's `[lint]` table applied (`retort.toml` beside the
    /// migrations directory, else `[tool.retort.lint]` of `pyproject.toml`), when there is one.
    pub fn load(migrations_dir: &Path) -> Result<LintConfig> {
        match ProjectFile::load(migrations_dir)? {
            Some(file) => Self::from_file(&file),
            None => Ok(LintConfig::default()),
        }
    }

    /// [`LintConfig::from_file`] of `retort.toml`'s text.
    pub fn from_toml(text: &str, path: &Path) -> Result<LintConfig> {
        Self::from_file(&ProjectFile::retort_toml(text, path)?)
    }

    /// The defaults with `file`'s `[lint]` table applied.
    pub fn from_file(file: &ProjectFile) -> Result<LintConfig> {
        let mut cfg = LintConfig::default();
        let Some(lint) = file.get("lint") else {
            return Ok(cfg);
        };
        let table_name = file.table_name("lint");
        let lint = lint.as_table().ok_or_else(|| {
            Error::usage(format!("{}: `lint` must be a table", file.at(&["lint"]))).with_hint(
                format!("write it as {table_name} followed by lines rule-id = \"error\""),
            )
        })?;
        for (rule, value) in lint {
            let where_is = file.at(&["lint", rule]);
            if !cfg.defaults.contains_key(rule) && !super::rules::is_rule(rule) {
                return Err(Error::usage(format!(
                    "{where_is}: unknown lint rule `{rule}` in {table_name}"
                ))
                .with_hint("the rules are listed in docs/lint.md (retort's and squawk's ids)"));
            }
            let level = value.as_str().and_then(Level::parse).ok_or_else(|| {
                Error::usage(format!(
                    "{where_is}: `{rule}` = {value:?}: a level is \"error\", \"warning\" or \"off\""
                ))
            })?;
            cfg.overrides.insert(rule.clone(), level);
        }
        cfg.source = Some(file.path.clone());
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_come_from_the_file_over_the_defaults() {
        let cfg = LintConfig::from_toml(
            "[lint]\nmissing-down = \"error\"\nprefer-robust-stmts = \"off\"\n",
            Path::new("retort.toml"),
        )
        .unwrap();
        assert_eq!(cfg.level("missing-down"), Level::Error);
        assert_eq!(cfg.level("prefer-robust-stmts"), Level::Off);
        assert_eq!(cfg.level("vector-index-too-many-dims"), Level::Error);
        assert_eq!(LintConfig::default().level("missing-down"), Level::Warning);
    }

    #[test]
    fn typos_are_errors_with_the_line() {
        let e = LintConfig::from_toml(
            "# x\n[lint]\nmissing-donw = \"off\"\n",
            Path::new("retort.toml"),
        )
        .unwrap_err();
        assert!(
            e.message
                .starts_with("retort.toml:3: unknown lint rule `missing-donw`"),
            "{e}"
        );
        let e = LintConfig::from_toml("[lint]\nmissing-down = \"loud\"\n", Path::new("r.toml"))
            .unwrap_err();
        assert!(e.message.contains("r.toml:2:"), "{e}");
        let e = LintConfig::from_toml("[lint\n", Path::new("r.toml")).unwrap_err();
        assert!(e.message.starts_with("r.toml:1:"), "{e}");
    }
}
