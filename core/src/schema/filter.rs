//! Which tables and views autogenerate and the drift checks look at: `--exclude PATTERN` /
//! `--include PATTERN` (and `MIGRATE_EXCLUDE` / `MIGRATE_INCLUDE`), globs on `schema.table`.
//!
//! Vector store libraries create their own tables at run time (LangChain's
//! `langchain_pg_collection` and `langchain_pg_embedding`, LlamaIndex's `data_*`): excluded,
//! they are left out of both sides of every comparison — with their columns, constraints,
//! indexes, triggers and the sequences they own — and `migrate-check` names them.
//!
//! A pattern with a dot matches `schema.table` (`public.data_*`, `*.tmp_*`); without one it
//! matches the table's name in any schema (`langchain_*`). `*` matches any run of characters,
//! `?` one character. With include patterns, only what matches one of them is compared;
//! exclude patterns then take out what they match.

use super::model::{ObjectKey, QName, Schema};
use crate::error::{Error, Result};
use std::collections::BTreeSet;

/// Include and exclude patterns; empty: everything is compared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectFilter {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

impl ObjectFilter {
    /// Checks the patterns (a pattern must name something: not empty, at most one dot).
    pub fn new(include: Vec<String>, exclude: Vec<String>) -> Result<ObjectFilter> {
        for p in include.iter().chain(&exclude) {
            if p.is_empty() || p.matches('.').count() > 1 {
                return Err(Error::usage(format!("'{p}' is not a table pattern")).with_hint(
                    "write TABLE or SCHEMA.TABLE, with * and ? as wildcards (e.g. langchain_* or public.data_*)",
                ));
            }
        }
        Ok(ObjectFilter { include, exclude })
    }

    /// Patterns from a variable's value: separated by commas or whitespace.
    pub fn split_list(value: &str) -> Vec<String> {
        value
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.include.is_empty() && self.exclude.is_empty()
    }

    /// Whether the table or view `name` is compared.
    pub fn keeps(&self, name: &QName) -> bool {
        let m = |p: &String| pattern_matches(p, name);
        (self.include.is_empty() || self.include.iter().any(m)) && !self.exclude.iter().any(m)
    }

    /// Removes from `s` what the patterns leave out; returns the tables and views removed
    /// (`schema.name`), sorted.
    pub fn apply(&self, s: &mut Schema) -> BTreeSet<String> {
        let mut gone: BTreeSet<QName> = BTreeSet::new();
        if self.is_empty() {
            return BTreeSet::new();
        }
        s.tables
            .retain(|n, _| self.keeps(n) || !gone.insert(n.clone()));
        s.views
            .retain(|n, _| self.keeps(n) || !gone.insert(n.clone()));
        // The sequences they own (serial columns) go with them.
        s.sequences
            .retain(|_, q| q.owned_by.as_ref().is_none_or(|c| !gone.contains(&c.table)));
        // So do their triggers, rules and policies ("name on schema.table").
        s.triggers.retain(|(t, _), _| !gone.contains(t));
        let on: BTreeSet<String> = gone.iter().map(|n| format!(" on {}", n.sql())).collect();
        s.unhandled
            .retain(|k: &ObjectKey, _| !on.iter().any(|suffix| k.name.ends_with(suffix.as_str())));
        gone.iter().map(QName::sql).collect()
    }

    /// `--exclude a --exclude b` as the notes say it.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.include.is_empty() {
            parts.push(format!("--include {}", self.include.join(",")));
        }
        if !self.exclude.is_empty() {
            parts.push(format!("--exclude {}", self.exclude.join(",")));
        }
        parts.join(" ")
    }
}

/// A pattern against `schema.table` (with a dot) or the table's name (without).
fn pattern_matches(pattern: &str, name: &QName) -> bool {
    match pattern.split_once('.') {
        Some((sp, tp)) => glob(sp, &name.schema) && glob(tp, &name.name),
        None => glob(pattern, &name.name),
    }
}

/// `*` and `?` globbing, on characters.
fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str, n: &str) -> QName {
        QName::new(s, n)
    }

    #[test]
    fn patterns_match_schema_dot_table_or_the_name_in_any_schema() {
        let f =
            ObjectFilter::new(vec![], vec!["langchain_*".into(), "public.data_*".into()]).unwrap();
        assert!(!f.keeps(&q("public", "langchain_pg_embedding")));
        assert!(!f.keeps(&q("rag", "langchain_pg_collection")));
        assert!(!f.keeps(&q("public", "data_docs")));
        assert!(f.keeps(&q("rag", "data_docs")));
        assert!(f.keeps(&q("public", "chunks")));
        let only = ObjectFilter::new(vec!["rag.*".into()], vec!["*.tmp?".into()]).unwrap();
        assert!(only.keeps(&q("rag", "chunks")));
        assert!(!only.keeps(&q("rag", "tmp1")));
        assert!(!only.keeps(&q("public", "chunks")));
        assert!(glob("a*b*c", "axxbyyc") && !glob("a*b*c", "axxbyy") && glob("*", ""));
        assert!(ObjectFilter::new(vec![], vec!["a.b.c".into()]).is_err());
        assert_eq!(
            ObjectFilter::split_list("langchain_*, data_* x"),
            ["langchain_*", "data_*", "x"]
        );
    }
}
