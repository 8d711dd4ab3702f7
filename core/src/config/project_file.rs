//! `retort.toml`, the project file beside the migrations directory: settings that belong to
//! the project rather than to one machine or one run, kept in the repository. This module reads
//! its `[filters]` table (`include` / `exclude` globs on `schema.table` for drift and
//! autogenerate) and its `[revision]` table (`ids = "hex"` or `"sequential"`: how
//! `migrate-revision` names new revisions); the lint reads its `[lint]` table
//! (`crate::lint::config`). Flags and
//! environment variables add to what the file says.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// `retort.toml` in the directory that holds `migrations_dir`.
pub fn path_for(migrations_dir: &Path) -> PathBuf {
    migrations_dir
        .parent()
        .unwrap_or(Path::new(""))
        .join("retort.toml")
}

/// The `[filters]` table's `include` and `exclude` lists; empty when there is no file or no
/// table. A malformed file or a value that is not a list of strings is an error naming the
/// file and line.
pub fn filters(migrations_dir: &Path) -> Result<(Vec<String>, Vec<String>)> {
    let path = path_for(migrations_dir);
    match std::fs::read_to_string(&path) {
        Ok(text) => filters_from(&text, &path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((Vec::new(), Vec::new())),
        Err(e) => Err(Error::io(format!("cannot read {}: {e}", path.display()))),
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

pub fn filters_from(text: &str, path: &Path) -> Result<(Vec<String>, Vec<String>)> {
    let table: toml::Table = parse(text, path)?;
    let Some(filters) = table.get("filters") else {
        return Ok((Vec::new(), Vec::new()));
    };
    let where_is = |key: &str| {
        let line = text
            .lines()
            .position(|l| l.trim_start().starts_with(key))
            .map(|l| l + 1)
            .unwrap_or(1);
        format!("{}:{line}", path.display())
    };
    let filters = filters.as_table().ok_or_else(|| {
        Error::usage(format!(
            "{}: `filters` must be a table",
            where_is("filters")
        ))
        .with_hint("write it as [filters] followed by exclude = [\"langchain_*\"]")
    })?;
    let mut lists = (Vec::new(), Vec::new());
    for (key, value) in filters {
        let target = match key.as_str() {
            "include" => &mut lists.0,
            "exclude" => &mut lists.1,
            other => {
                return Err(Error::usage(format!(
                    "{}: unknown key `{other}` in [filters]",
                    where_is(other)
                ))
                .with_hint("[filters] takes include = [...] and exclude = [...]"))
            }
        };
        let items = value.as_array().ok_or_else(|| {
            Error::usage(format!(
                "{}: `{key}` must be a list of patterns, e.g. {key} = [\"langchain_*\"]",
                where_is(key)
            ))
        })?;
        for item in items {
            let p = item.as_str().ok_or_else(|| {
                Error::usage(format!(
                    "{}: `{key}` holds {}, which is not a string pattern",
                    where_is(key),
                    item.type_str()
                ))
            })?;
            target.push(p.to_string());
        }
    }
    Ok(lists)
}

/// How `migrate-revision` names a new revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdStyle {
    /// One more than the largest all-digit id, zero-padded (`001`, `002`).
    Sequential,
    /// 12 random hex digits, as Alembic writes them (`1fb9e396657a`).
    Hex,
}

/// The `[revision]` table's `ids` (`"hex"` or `"sequential"`); None when there is no file, no
/// table or no key (the history's convention decides). Anything else is an error naming the
/// file and line.
pub fn revision_ids(migrations_dir: &Path) -> Result<Option<IdStyle>> {
    let path = path_for(migrations_dir);
    match std::fs::read_to_string(&path) {
        Ok(text) => revision_ids_from(&text, &path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format!("cannot read {}: {e}", path.display()))),
    }
}

pub fn revision_ids_from(text: &str, path: &Path) -> Result<Option<IdStyle>> {
    let table: toml::Table = parse(text, path)?;
    let Some(revision) = table.get("revision") else {
        return Ok(None);
    };
    let where_is = |key: &str| {
        let line = text
            .lines()
            .position(|l| l.trim_start().starts_with(key))
            .map(|l| l + 1)
            .unwrap_or(1);
        format!("{}:{line}", path.display())
    };
    let hint = "write it as [revision] followed by ids = \"hex\" (12 hex digits, as Alembic) or \
                ids = \"sequential\" (001, 002, ...)";
    let revision = revision.as_table().ok_or_else(|| {
        Error::usage(format!(
            "{}: `revision` must be a table",
            where_is("revision")
        ))
        .with_hint(hint)
    })?;
    let mut style = None;
    for (key, value) in revision {
        if key != "ids" {
            return Err(Error::usage(format!(
                "{}: unknown key `{key}` in [revision]",
                where_is(key)
            ))
            .with_hint(hint));
        }
        style = Some(match value.as_str() {
            Some("hex") => IdStyle::Hex,
            Some("sequential") => IdStyle::Sequential,
            _ => {
                return Err(Error::usage(format!(
                    "{}: `ids` must be \"hex\" or \"sequential\", not {}",
                    where_is(key),
                    match value.as_str() {
                        Some(s) => format!("\"{s}\""),
                        None => value.type_str().to_string(),
                    }
                ))
                .with_hint(hint))
            }
        });
    }
    Ok(style)
}

fn parse(text: &str, path: &Path) -> Result<toml::Table> {
    text.parse().map_err(|e: toml::de::Error| {
        let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(1);
        Error::usage(format!(
            "{}:{line}: not valid TOML: {}",
            path.display(),
            e.message()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_revision_table_fixes_the_id_style() {
        let read = |t: &str| revision_ids_from(t, Path::new("retort.toml"));
        assert_eq!(
            read("[revision]\nids = \"hex\"\n").unwrap(),
            Some(IdStyle::Hex)
        );
        assert_eq!(
            read("[revision]\nids = \"sequential\"\n").unwrap(),
            Some(IdStyle::Sequential)
        );
        assert_eq!(read("[filters]\nexclude = []\n").unwrap(), None);
        let e = read("[revision]\n\nids = \"random\"\n").unwrap_err();
        assert!(
            e.message
                .starts_with("retort.toml:3: `ids` must be \"hex\" or \"sequential\""),
            "{e}"
        );
        let e = read("[revision]\nid = \"hex\"\n").unwrap_err();
        assert!(
            e.message.starts_with("retort.toml:2: unknown key `id`"),
            "{e}"
        );
    }

    fn read(text: &str) -> Result<(Vec<String>, Vec<String>)> {
        filters_from(text, Path::new("retort.toml"))
    }

    #[test]
    fn the_filters_table_gives_both_lists_and_other_tables_are_left_alone() {
        let (inc, exc) = read(
            "[lint]\nmissing-down = \"error\"\n\n[filters]\nexclude = [\"langchain_*\", \"public.data_*\"]\n",
        )
        .unwrap();
        assert!(inc.is_empty());
        assert_eq!(exc, ["langchain_*", "public.data_*"]);
        assert_eq!(read("[lint]\n").unwrap(), (vec![], vec![]));
    }

    #[test]
    fn mistakes_name_the_file_and_line() {
        let e = read("[filters]\n\nexclud = [\"x\"]\n").unwrap_err();
        assert!(
            e.message.starts_with("retort.toml:3: unknown key `exclud`"),
            "{e}"
        );
        let e = read("[filters]\nexclude = \"langchain_*\"\n").unwrap_err();
        assert!(
            e.message
                .starts_with("retort.toml:2: `exclude` must be a list"),
            "{e}"
        );
        let e = read("[filters\n").unwrap_err();
        assert!(
            e.message.starts_with("retort.toml:1: not valid TOML"),
            "{e}"
        );
    }
}
