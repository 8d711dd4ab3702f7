//! The project file: settings that belong to the project rather than to one machine or one
//! run, kept in the repository. Either `retort.toml` beside the migrations directory, or — for
//! Python projects that keep their tools' settings in one place — the `[tool.retort]` table of
//! `pyproject.toml`, found from the working directory upward (`super::pyproject`). Both hold
//! the same tables: `[filters]` (`include` / `exclude` globs on `schema.table` for drift and
//! autogenerate, read here), `[revision]` (`ids = "hex"` or `"sequential"`: how
//! `migrate-revision` names new revisions, read here) and `[lint]` (rule levels, read by
//! `crate::lint::config`). When both
//! files exist, `retort.toml` wins whole and `[tool.retort]` is ignored with a warning: the
//! tables are never merged, so one file says everything. Flags and environment variables add to
//! what the file says.
//!
//! Every mistake names the file and the line of the key (`pyproject.toml:14: unknown key
//! `exclud` in [tool.retort.filters]`): `toml_edit` keeps the keys' positions, which `toml`'s
//! values do not.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::Once;

/// `retort.toml` in the directory that holds `migrations_dir`.
pub fn path_for(migrations_dir: &Path) -> PathBuf {
    migrations_dir
        .parent()
        .unwrap_or(Path::new(""))
        .join("retort.toml")
}

/// retort's settings as read from one file, with the positions of its keys.
#[derive(Debug)]
pub struct ProjectFile {
    /// The file, as it is shown in messages (relative to the working directory when it is
    /// under or above it: `retort.toml`, `../pyproject.toml`).
    pub path: PathBuf,
    /// retort's table: the whole of `retort.toml`, or `[tool.retort]` of `pyproject.toml`.
    table: toml::Table,
    text: String,
    doc: toml_edit::ImDocument<String>,
    /// The keys leading to retort's table: none, or `tool`, `retort`.
    root: &'static [&'static str],
}

const PYPROJECT_ROOT: &[&str] = &["tool", "retort"];

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

fn parse(text: &str, path: &Path) -> Result<(toml::Table, toml_edit::ImDocument<String>)> {
    let doc = toml_edit::ImDocument::parse(text.to_string()).map_err(|e| {
        let start = e.span().map(|s| s.start).unwrap_or(0);
        let line = line_of(text, start);
        let col = start
            - text[..start.min(text.len())]
                .rfind('\n')
                .map_or(0, |n| n + 1)
            + 1;
        Error::usage(format!(
            "{}:{line}:{col}: not valid TOML: {}",
            path.display(),
            e.message().trim_end()
        ))
    })?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        Error::usage(format!(
            "{}: not valid TOML: {}",
            path.display(),
            e.message()
        ))
    })?;
    Ok((table, doc))
}

impl ProjectFile {
    /// `retort.toml`'s text: retort's tables are at the top.
    pub fn retort_toml(text: &str, path: &Path) -> Result<ProjectFile> {
        let (table, doc) = parse(text, path)?;
        Ok(ProjectFile {
            path: path.to_path_buf(),
            table,
            text: text.to_string(),
            doc,
            root: &[],
        })
    }

    /// `pyproject.toml`'s text: its `[tool.retort]` table, `None` when it has none. A file that
    /// is not valid TOML is an error (it may hold the table).
    pub fn pyproject(text: &str, path: &Path) -> Result<Option<ProjectFile>> {
        let (mut whole, doc) = parse(text, path)?;
        let table = match whole.remove("tool") {
            Some(toml::Value::Table(mut tool)) => match tool.remove("retort") {
                Some(toml::Value::Table(t)) => t,
                Some(_) => {
                    let file = ProjectFile {
                        path: path.to_path_buf(),
                        table: toml::Table::new(),
                        text: text.to_string(),
                        doc,
                        root: &[],
                    };
                    return Err(Error::usage(format!(
                        "{}: `tool.retort` must be a table",
                        file.at(&["tool", "retort"])
                    ))
                    .with_hint("write it as [tool.retort.filters] / [tool.retort.lint] sections"));
                }
                None => return Ok(None),
            },
            _ => return Ok(None),
        };
        Ok(Some(ProjectFile {
            path: path.to_path_buf(),
            table,
            text: text.to_string(),
            doc,
            root: PYPROJECT_ROOT,
        }))
    }

    /// The project file for `migrations_dir`, looking upward for `pyproject.toml` from the
    /// working directory: `retort.toml` beside the migrations directory when it exists, else
    /// the nearest `pyproject.toml` with a `[tool.retort]` table, else none.
    pub fn load(migrations_dir: &Path) -> Result<Option<ProjectFile>> {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        Self::load_from(migrations_dir, &cwd)
    }

    /// [`ProjectFile::load`] with `start` as the working directory.
    pub fn load_from(migrations_dir: &Path, start: &Path) -> Result<Option<ProjectFile>> {
        let retort_toml = path_for(migrations_dir);
        let text = match std::fs::read_to_string(&retort_toml) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(Error::io(format!(
                    "cannot read {}: {e}",
                    retort_toml.display()
                )))
            }
        };
        let pyproject = super::pyproject::find(start)?;
        match (text, pyproject) {
            (Some(text), py) => {
                if let Some(py) = py {
                    static WARNED: Once = Once::new();
                    WARNED.call_once(|| {
                        log::warn!(
                            "{} is used and [tool.retort] in {} is ignored: retort reads one project file; move the settings into one of them",
                            retort_toml.display(),
                            py.path.display()
                        )
                    });
                }
                Ok(Some(Self::retort_toml(&text, &retort_toml)?))
            }
            (None, py) => Ok(py),
        }
    }

    /// A table of retort's (`filters`, `lint`), when the file has it.
    pub fn get(&self, name: &str) -> Option<&toml::Value> {
        self.table.get(name)
    }

    /// How the table `name` is written in this file: `[filters]` or `[tool.retort.filters]`.
    pub fn table_name(&self, name: &str) -> String {
        let mut parts: Vec<&str> = self.root.to_vec();
        parts.push(name);
        format!("[{}]", parts.join("."))
    }

    /// `file:line` of the key reached by `keys` below retort's table (the line of the deepest
    /// key found; the file's first line when none is).
    pub fn at(&self, keys: &[&str]) -> String {
        let mut line = 1;
        let mut item: &toml_edit::Item = self.doc.as_item();
        for key in self.root.iter().chain(keys) {
            let Some((k, next)) = item.as_table_like().and_then(|t| t.get_key_value(key)) else {
                break;
            };
            if let Some(span) = k.span().or_else(|| next.span()) {
                line = line_of(&self.text, span.start);
            }
            item = next;
        }
        format!("{}:{line}", self.path.display())
    }
}

/// The `[filters]` table's `include` and `exclude` lists of the project file for
/// `migrations_dir` ([`ProjectFile::load`]), and where they came from (`retort.toml
/// [filters]`, `pyproject.toml [tool.retort.filters]`) for messages about the patterns; empty
/// when there is no file or no table. A malformed file or a value that is not a list of strings
/// is an error naming the file and line.
pub fn filters(migrations_dir: &Path) -> Result<(Vec<String>, Vec<String>, String)> {
    match ProjectFile::load(migrations_dir)? {
        Some(file) => {
            let (include, exclude) = filters_in(&file)?;
            let source = format!("{} {}", file.path.display(), file.table_name("filters"));
            Ok((include, exclude, source))
        }
        None => Ok((
            Vec::new(),
            Vec::new(),
            format!("{} [filters]", path_for(migrations_dir).display()),
        )),
    }
}

/// The `[filters]` lists of one project file.
pub fn filters_in(file: &ProjectFile) -> Result<(Vec<String>, Vec<String>)> {
    let Some(filters) = file.get("filters") else {
        return Ok((Vec::new(), Vec::new()));
    };
    let table_name = file.table_name("filters");
    let filters = filters.as_table().ok_or_else(|| {
        Error::usage(format!(
            "{}: `filters` must be a table",
            file.at(&["filters"])
        ))
        .with_hint(format!(
            "write it as {table_name} followed by exclude = [\"langchain_*\"]"
        ))
    })?;
    let mut lists = (Vec::new(), Vec::new());
    for (key, value) in filters {
        let where_is = file.at(&["filters", key]);
        let target = match key.as_str() {
            "include" => &mut lists.0,
            "exclude" => &mut lists.1,
            other => {
                return Err(Error::usage(format!(
                    "{where_is}: unknown key `{other}` in {table_name}"
                ))
                .with_hint(format!(
                    "{table_name} takes include = [...] and exclude = [...]"
                )))
            }
        };
        let items = value.as_array().ok_or_else(|| {
            Error::usage(format!(
                "{where_is}: `{key}` must be a list of patterns, e.g. {key} = [\"langchain_*\"]"
            ))
        })?;
        for item in items {
            let p = item.as_str().ok_or_else(|| {
                Error::usage(format!(
                    "{where_is}: `{key}` holds {}, which is not a string pattern",
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

/// The `[revision]` table's `ids` (`"hex"` or `"sequential"`) of the project file for
/// `migrations_dir` ([`ProjectFile::load`]); None when there is no file, no table or no key
/// (the history's convention decides). Anything else is an error naming the file and line.
pub fn revision_ids(migrations_dir: &Path) -> Result<Option<IdStyle>> {
    match ProjectFile::load(migrations_dir)? {
        Some(file) => revision_ids_in(&file),
        None => Ok(None),
    }
}

/// The `[revision]` table's `ids` of one project file.
pub fn revision_ids_in(file: &ProjectFile) -> Result<Option<IdStyle>> {
    let Some(revision) = file.get("revision") else {
        return Ok(None);
    };
    let table_name = file.table_name("revision");
    let hint = format!(
        "write it as {table_name} followed by ids = \"hex\" (12 hex digits, as Alembic) or \
         ids = \"sequential\" (001, 002, ...)"
    );
    let revision = revision.as_table().ok_or_else(|| {
        Error::usage(format!(
            "{}: `revision` must be a table",
            file.at(&["revision"])
        ))
        .with_hint(hint.clone())
    })?;
    let mut style = None;
    for (key, value) in revision {
        let where_is = file.at(&["revision", key]);
        if key != "ids" {
            return Err(
                Error::usage(format!("{where_is}: unknown key `{key}` in {table_name}"))
                    .with_hint(hint),
            );
        }
        style = Some(match value.as_str() {
            Some("hex") => IdStyle::Hex,
            Some("sequential") => IdStyle::Sequential,
            _ => {
                return Err(Error::usage(format!(
                    "{where_is}: `ids` must be \"hex\" or \"sequential\", not {}",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_revision_table_fixes_the_id_style() {
        let read =
            |t: &str| revision_ids_in(&ProjectFile::retort_toml(t, Path::new("retort.toml"))?);
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
        filters_in(&ProjectFile::retort_toml(text, Path::new("retort.toml"))?)
    }

    fn read_pyproject(text: &str) -> Result<(Vec<String>, Vec<String>)> {
        match ProjectFile::pyproject(text, Path::new("pyproject.toml"))? {
            Some(file) => filters_in(&file),
            None => Ok((vec![], vec![])),
        }
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
            e.message
                .starts_with("retort.toml:3: unknown key `exclud` in [filters]"),
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
            e.message.starts_with("retort.toml:1:9: not valid TOML"),
            "{e}"
        );
    }

    const PYPROJECT: &str = r#"[project]
name = "ragapp"

[tool.ruff]
exclude = ["migrations"]

[tool.retort.filters]
exclude = ["langchain_*"]
include = ["public.*"]

[tool.retort.lint]
missing-down = "error"
"#;

    #[test]
    fn tool_retort_in_pyproject_holds_the_same_tables() {
        let (inc, exc) = read_pyproject(PYPROJECT).unwrap();
        assert_eq!(inc, ["public.*"]);
        // ruff's `exclude` above is another tool's: not read
        assert_eq!(exc, ["langchain_*"]);
        // the dotted-key spelling is the same table
        let (_, exc) =
            read_pyproject("[tool.retort]\nfilters.exclude = [\"x_*\"]\nlint = {}\n").unwrap();
        assert_eq!(exc, ["x_*"]);
        // no [tool.retort]: nothing, and no error
        assert!(
            ProjectFile::pyproject("[tool.ruff]\nline-length = 99\n", Path::new("p"))
                .unwrap()
                .is_none()
        );
        assert!(ProjectFile::pyproject("", Path::new("p"))
            .unwrap()
            .is_none());
    }

    #[test]
    fn pyproject_mistakes_name_its_line_and_the_table_as_written_there() {
        let text = PYPROJECT.replace("include = [", "includ = [");
        let e = read_pyproject(&text).unwrap_err();
        assert!(
            e.message
                .starts_with("pyproject.toml:9: unknown key `includ` in [tool.retort.filters]"),
            "{e}"
        );
        // the `exclude` of [tool.ruff] on line 5 is not the one meant
        let text = PYPROJECT.replace("exclude = [\"langchain_*\"]", "exclude = \"langchain_*\"");
        let e = read_pyproject(&text).unwrap_err();
        assert!(
            e.message
                .starts_with("pyproject.toml:8: `exclude` must be a list"),
            "{e}"
        );
        let e = ProjectFile::pyproject("[tool]\nretort = 3\n", Path::new("pyproject.toml"))
            .unwrap_err();
        assert!(
            e.message
                .starts_with("pyproject.toml:2: `tool.retort` must be a table"),
            "{e}"
        );
        let e = ProjectFile::pyproject("[project]\nname = \"x\n", Path::new("pyproject.toml"))
            .unwrap_err();
        assert!(e.message.starts_with("pyproject.toml:2:"), "{e}");
    }
}
