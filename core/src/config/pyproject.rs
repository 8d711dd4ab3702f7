//! Finding `pyproject.toml`'s `[tool.retort]` table, as Python tools find their configuration:
//! from the working directory upward, the nearest `pyproject.toml` that has the table (a
//! `pyproject.toml` without it, such as a sub-package's, is passed over). The search stops at
//! the repository's root — the first directory holding `.git` — so a checkout never picks up
//! the settings of whatever project happens to contain it.
//!
//! The file is shown relative to the working directory (`pyproject.toml`,
//! `../pyproject.toml`), which is how a user finds it again.

use super::project_file::ProjectFile;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// The nearest `pyproject.toml` from `start` upward with a `[tool.retort]` table, up to the
/// repository's root. A `pyproject.toml` on the way that is not valid TOML is an error naming
/// it (it may be the one meant).
pub fn find(start: &Path) -> Result<Option<ProjectFile>> {
    let mut dir = Some(start);
    let mut shown = PathBuf::new();
    while let Some(d) = dir {
        let candidate = d.join("pyproject.toml");
        match std::fs::read_to_string(&candidate) {
            Ok(text) => {
                if let Some(file) = ProjectFile::pyproject(&text, &shown.join("pyproject.toml"))? {
                    return Ok(Some(file));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            // a directory named pyproject.toml, or no permission: not a project file
            Err(e) if candidate.is_dir() || e.kind() == std::io::ErrorKind::PermissionDenied => {}
            Err(e) => {
                return Err(Error::io(format!(
                    "cannot read {}: {e}",
                    candidate.display()
                )))
            }
        }
        if d.join(".git").exists() {
            break;
        }
        dir = d.parent();
        shown.push("..");
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn write(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    const TABLE: &str = "[tool.retort.filters]\nexclude = [\"langchain_*\"]\n";

    #[test]
    fn the_nearest_pyproject_with_the_table_is_found_from_a_subdirectory() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("repo");
        fs::create_dir_all(root.join(".git")).unwrap();
        write(&root.join("pyproject.toml"), TABLE);
        // a sub-package's own pyproject.toml without [tool.retort] is passed over
        write(
            &root.join("app/pyproject.toml"),
            "[project]\nname = \"app\"\n",
        );
        let start = root.join("app/src/deep");
        fs::create_dir_all(&start).unwrap();
        let file = find(&start).unwrap().expect("found");
        assert_eq!(file.path, Path::new("../../../pyproject.toml"));
        assert!(file.get("filters").is_some());
        // from the root itself
        let file = find(&root).unwrap().expect("found");
        assert_eq!(file.path, Path::new("pyproject.toml"));
    }

    #[test]
    fn the_search_stops_at_the_repository_root() {
        let tmp = tempfile::tempdir().unwrap();
        // a project above the checkout has the table; the checkout has none
        write(&tmp.path().join("pyproject.toml"), TABLE);
        let repo = tmp.path().join("checkout");
        fs::create_dir_all(repo.join(".git")).unwrap();
        fs::create_dir_all(repo.join("sub")).unwrap();
        assert!(find(&repo.join("sub")).unwrap().is_none());
        // without the .git, the one above is the project's
        fs::remove_dir(repo.join(".git")).unwrap();
        assert_eq!(
            find(&repo.join("sub")).unwrap().unwrap().path,
            Path::new("../../pyproject.toml")
        );
    }

    #[test]
    fn a_broken_pyproject_on_the_way_is_an_error_with_its_line() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir_all(tmp.path().join(".git")).unwrap();
        write(
            &tmp.path().join("pyproject.toml"),
            "[project]\nname = \"app\"\n[tool.retort.filters\n",
        );
        let e = find(tmp.path()).unwrap_err();
        assert!(e.message.starts_with("pyproject.toml:3:"), "{}", e.message);
    }

    #[test]
    fn retort_toml_beside_the_migrations_wins_over_pyproject() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        fs::create_dir_all(root.join(".git")).unwrap();
        fs::create_dir_all(root.join("db/migrations")).unwrap();
        write(&root.join("pyproject.toml"), TABLE);
        let migrations = root.join("db/migrations");
        // only pyproject.toml: its table
        let file = ProjectFile::load_from(&migrations, root).unwrap().unwrap();
        assert_eq!(file.path, Path::new("pyproject.toml"));
        // retort.toml beside the migrations too: it wins whole, nothing merged
        write(
            &root.join("db/retort.toml"),
            "[lint]\nmissing-down = \"off\"\n",
        );
        let file = ProjectFile::load_from(&migrations, root).unwrap().unwrap();
        assert_eq!(file.path, root.join("db/retort.toml"));
        assert!(file.get("filters").is_none() && file.get("lint").is_some());
        // neither: none
        let empty = tempfile::tempdir().unwrap();
        fs::create_dir_all(empty.path().join(".git")).unwrap();
        assert!(
            ProjectFile::load_from(&empty.path().join("migrations"), empty.path())
                .unwrap()
                .is_none()
        );
    }
}
