//! Reading a migrations directory: every script file, in file-name order, with every problem
//! (unreadable entry, parse error, an id defined twice) collected into one error, so that a
//! broken directory is fixed in one pass and never half-applied.

use std::collections::HashMap;
use std::fs::ReadDir;
use std::path::{Path, PathBuf};

use super::parse::{err_at, parse, Parsed};
use super::Script;
use crate::error::{Error, ErrorKind, Result};

/// Reads and parses every `*.sql` file directly in `dir` (not in subdirectories), in file-name
/// order. Other files, and files whose name starts with `.` (editor and macOS metadata files),
/// are ignored. An entry named like a script that is not a readable file (a dangling symbolic
/// link, a link loop, a directory) is a problem, not skipped. Every problem (unreadable entry,
/// parse error, a revision id defined by two files) is reported, one per line, in a single
/// error.
pub fn load_scripts(dir: &Path) -> Result<Vec<Script>> {
    let entries = open_dir(dir)?;
    let mut problems: Vec<Error> = Vec::new();
    let files = script_files(dir, entries, &mut problems);
    let scripts = read_scripts(files, &mut problems);
    if let Some(e) = aggregate(dir, problems) {
        return Err(e);
    }
    if scripts.is_empty() {
        if let Some(e) = alembic_directory(dir) {
            return Err(e);
        }
    }
    Ok(scripts)
}

/// A directory without scripts that holds an Alembic project (`env.py` beside `versions/`) or
/// Alembic revision files (`*.py` defining `down_revision`): an error saying to import it,
/// rather than an empty history that would have nothing to do.
pub(super) fn alembic_directory(dir: &Path) -> Option<Error> {
    let is_revision = |p: &Path| {
        p.extension().is_some_and(|e| e == "py")
            && std::fs::read_to_string(p).is_ok_and(|t| {
                t.lines()
                    .any(|l| l.trim_start().starts_with("down_revision"))
            })
    };
    let revisions_in = |d: &Path| {
        std::fs::read_dir(d).map_or(0, |entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| is_revision(&e.path()))
                .count()
        })
    };
    let (what, n) = if dir.join("env.py").is_file() && dir.join("versions").is_dir() {
        (
            "an Alembic script directory",
            revisions_in(&dir.join("versions")),
        )
    } else {
        match revisions_in(dir) {
            0 => return None,
            n => ("an Alembic versions directory", n),
        }
    };
    Some(
        Error::usage(format!(
            "{} holds no retort scripts (*.sql) but looks like {what} ({n} Alembic revision \
             file{}): run migrate-import",
            dir.display(),
            crate::words::plural(n)
        ))
        .with_hint(
            "migrate-import --config alembic.ini --dir DIR writes one retort script per Alembic \
             revision, with the same ids, and verifies them (docs/switching-from-alembic.md); \
             or point --dir / MIGRATIONS_DIR at the retort scripts",
        ),
    )
}

/// Opens the directory; a missing one is a usage error saying how to name or create it.
pub(super) fn open_dir(dir: &Path) -> Result<ReadDir> {
    match std::fs::read_dir(dir) {
        Ok(e) => Ok(e),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::usage(format!(
            "the migrations directory {} does not exist",
            dir.display()
        ))
        .with_hint(
            "pass the right directory with --dir or the MIGRATIONS_DIR setting \
             (environment or .env), or create it (mkdir -p DIR) and add revisions \
             with migrate-revision",
        )),
        Err(e) => {
            let kind: fn(String) -> Error = if dir.is_file() {
                Error::usage
            } else {
                Error::io
            };
            Err(kind(format!(
                "cannot read the migrations directory {}: {e}",
                dir.display()
            ))
            .with_hint("check the path given with --dir or MIGRATIONS_DIR, and its permissions"))
        }
    }
}

/// A name that looks like a script: `*.sql` (any case), not hidden.
fn looks_like_script(name: &str) -> bool {
    !name.starts_with('.')
        && name.len() > 4
        && name.is_char_boundary(name.len() - 4)
        && name[name.len() - 4..].eq_ignore_ascii_case(".sql")
}

/// An entry of the directory named like a script.
pub(super) struct ScriptEntry {
    pub path: PathBuf,
    /// Why it cannot be read as a file, if it cannot.
    pub problem: Option<Error>,
    /// The directory entry, when it is a regular file itself (not a link to one): its
    /// metadata is then one `stat` relative to the open directory, not a walk of the path.
    pub dirent: Option<std::fs::DirEntry>,
}

impl ScriptEntry {
    /// The file's metadata (a symbolic link followed).
    pub fn metadata(&self) -> std::io::Result<std::fs::Metadata> {
        match &self.dirent {
            Some(d) => d.metadata(),
            None => std::fs::metadata(&self.path),
        }
    }
}

/// The entries of the directory named like scripts, sorted by file name.
pub(super) fn script_files(
    dir: &Path,
    entries: ReadDir,
    problems: &mut Vec<Error>,
) -> Vec<ScriptEntry> {
    let mut files: Vec<ScriptEntry> = Vec::new();
    for entry in entries {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                problems.push(Error::io(format!(
                    "{}: cannot list the directory: {e}",
                    dir.display()
                )));
                continue;
            }
        };
        if !looks_like_script(&entry.file_name().to_string_lossy()) {
            continue;
        }
        let path = entry.path();
        let (problem, dirent) = if entry.file_type().is_ok_and(|t| t.is_file()) {
            (None, Some(entry))
        } else {
            (not_a_file(&path), None)
        };
        files.push(ScriptEntry {
            path,
            problem,
            dirent,
        });
    }
    // the key once per file (comparing `path.file_name()` re-parses both paths each time)
    files.sort_by_cached_key(|f| f.path.file_name().map(|n| n.to_os_string()));
    files
}

/// Why `path` (a symbolic link, or something else named like a script) does not lead to a
/// file; None when it does.
fn not_a_file(path: &Path) -> Option<Error> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => None,
        Ok(m) => Some(not_a_script_file(
            path,
            if m.is_dir() {
                "it is a directory".to_string()
            } else {
                "it is not a regular file".to_string()
            },
        )),
        Err(e) => {
            let why = match std::fs::read_link(path) {
                Ok(to) => format!(
                    "it is a symbolic link to {} that cannot be followed: {e}",
                    to.display()
                ),
                Err(_) => e.to_string(),
            };
            Some(not_a_script_file(path, why))
        }
    }
}

/// An entry named like a script that cannot be read as one. Kind Script: the directory is
/// wrong, and running the other scripts without this one could apply a broken history.
fn not_a_script_file(path: &Path, why: String) -> Error {
    Error::script(format!(
        "{}: named like a script, but cannot be read as a file: {why}",
        path.display()
    ))
    .with_hint(
        "every *.sql entry of the migrations directory must be a readable script file: \
         fix or remove it (or the symbolic link), or rename it so that it does not end in .sql",
    )
}

/// Reads and parses each file; a revision id already defined by an earlier file is a problem
/// naming both.
fn read_scripts(files: Vec<ScriptEntry>, problems: &mut Vec<Error>) -> Vec<Script> {
    let mut scripts: Vec<Script> = Vec::with_capacity(files.len());
    let mut by_id: HashMap<String, usize> = HashMap::with_capacity(files.len());
    for (path, parsed) in read_and_parse(files) {
        let Parsed {
            script,
            revision_line,
        } = match parsed {
            Ok(p) => p,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        if let Some(&first) = by_id.get(&script.revision) {
            problems.push(defined_twice(
                &path,
                revision_line,
                &script.revision,
                &scripts[first].path,
            ));
        } else {
            by_id.insert(script.revision.clone(), scripts.len());
            scripts.push(script);
        }
    }
    scripts
}

/// The problem of a revision id defined at `path:line` and by the earlier file `other`.
pub(super) fn defined_twice(path: &Path, line: usize, revision: &str, other: &Path) -> Error {
    err_at(
        path,
        line,
        format_args!(
            "revision '{revision}' is also defined in {}",
            other.display()
        ),
    )
    .with_hint(format!(
        "revision ids must be unique: give one of the files {} and {} a new id \
         (and update the down_revision lines that point to it)",
        other.display(),
        path.display()
    ))
}

/// Reads and parses one entry.
pub(super) fn read_one(entry: ScriptEntry) -> (PathBuf, Result<Parsed>) {
    let ScriptEntry { path, problem, .. } = entry;
    if let Some(e) = problem {
        return (path, Err(e));
    }
    let parsed = match read_file(&path) {
        Ok(bytes) => parse(&path, &bytes),
        Err(e) => Err(
            Error::io(format!("{}: cannot read the file: {e}", path.display()))
                .with_hint("check the file's permissions"),
        ),
    };
    (path, parsed)
}

/// The file's bytes. Not `std::fs::read` (nor `File::read_to_end`), which first ask for the
/// file's size: one more system call per file, a tenth of the time of reading 10,000 small
/// scripts. Through `take`, the reads go into a growing buffer without that question.
fn read_file(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::with_capacity(4096);
    std::fs::File::open(path)?
        .take(u64::MAX)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Every entry read and parsed, in order. (Reading them on several threads was tried for
/// 10,000 files: the same CPU time, and no shorter wall time on a loaded 2-core machine; the
/// time is the kernel's open and read of each file.)
fn read_and_parse(files: Vec<ScriptEntry>) -> Vec<(PathBuf, Result<Parsed>)> {
    files.into_iter().map(read_one).collect()
}

/// One error for all the problems (None: there were none): a single problem as it is, several
/// one per line (with their hints), of kind Io when all are I/O problems, else Script.
pub(super) fn aggregate(dir: &Path, mut problems: Vec<Error>) -> Option<Error> {
    match problems.len() {
        0 => None,
        1 => Some(problems.remove(0)),
        n => {
            let all_io = problems.iter().all(|p| p.kind == ErrorKind::Io);
            let mut msg = format!(
                "{n} problems in the migration scripts in {}:",
                dir.display()
            );
            for p in &problems {
                msg.push('\n');
                msg.push_str(&p.message);
                if let Some(h) = &p.hint {
                    msg.push_str(" (");
                    msg.push_str(h);
                    msg.push(')');
                }
            }
            let kind: fn(String) -> Error = if all_io { Error::io } else { Error::script };
            Some(kind(msg).with_hint("fix each file listed above, then run the command again"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    /// A unique, empty temporary directory, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            use std::sync::atomic::{AtomicUsize, Ordering};
            static N: AtomicUsize = AtomicUsize::new(0);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let dir = std::env::temp_dir().join(format!(
                "retort-script-{tag}-{}-{nanos}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&dir).expect("create temp dir");
            TempDir(dir)
        }

        fn write(&self, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
            let path = self.0.join(name);
            std::fs::write(&path, content).expect("write");
            path
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn load_reads_sql_files_in_name_order() {
        let d = TempDir::new("order");
        d.write("002_b.sql", script_text("002", "001"));
        d.write("001_a.sql", script_text("001", "none"));
        d.write("010_c.SQL", script_text("010", "002"));
        d.write("README.md", "not a script");
        d.write(".#001_a.sql", "editor lock file");
        d.write("._001_a.sql", b"\x00\x05\x16\x07 mac metadata \xff");
        d.write("notes.sql.bak", "backup");
        std::fs::create_dir(d.0.join("sub")).unwrap();
        std::fs::write(d.0.join("sub").join("099_x.sql"), "not read: not recursive").unwrap();
        let scripts = load_scripts(&d.0).unwrap();
        let ids: Vec<_> = scripts.iter().map(|s| s.revision.as_str()).collect();
        assert_eq!(ids, ["001", "002", "010"]);
        assert_eq!(scripts[1].path, d.0.join("002_b.sql"));
        assert_eq!(
            scripts[1].to_node().source,
            d.0.join("002_b.sql").display().to_string()
        );
    }

    #[test]
    fn an_alembic_directory_says_to_import_it() {
        let rev = "revision = 'a1'\ndown_revision = None\n\ndef upgrade():\n    pass\n";
        let versions = TempDir::new("alembic-versions");
        versions.write("a1_first.py", rev);
        versions.write("__init__.py", "");
        let e = load_scripts(&versions.0).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Usage, "{e}");
        assert!(
            e.message.ends_with(
                "holds no retort scripts (*.sql) but looks like an Alembic versions directory \
                 (1 Alembic revision file): run migrate-import"
            ),
            "{e}"
        );
        assert!(e.hint.unwrap().contains("switching-from-alembic.md"));
        let project = TempDir::new("alembic-project");
        project.write("env.py", "from alembic import context\n");
        std::fs::create_dir(project.0.join("versions")).unwrap();
        std::fs::write(project.0.join("versions").join("a1_first.py"), rev).unwrap();
        let e = load_scripts(&project.0).unwrap_err();
        assert!(
            e.message.contains("looks like an Alembic script directory"),
            "{e}"
        );
        // once imported, the scripts beside env.py are what counts
        project.write("a1_first.sql", script_text("a1", "none"));
        assert_eq!(load_scripts(&project.0).unwrap().len(), 1);
        // other Python files are not Alembic revisions
        let other = TempDir::new("python");
        other.write("tool.py", "print('hi')\n");
        assert!(load_scripts(&other.0).unwrap().is_empty());
    }

    #[test]
    fn load_empty_directory() {
        let d = TempDir::new("empty");
        assert!(load_scripts(&d.0).unwrap().is_empty());
    }

    #[test]
    fn load_missing_directory() {
        let d = TempDir::new("missing");
        let missing = d.0.join("nope");
        let e = load_scripts(&missing).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Usage);
        assert!(e.message.contains(&missing.display().to_string()), "{e}");
        let hint = e.hint.unwrap();
        assert!(
            hint.contains("--dir") && hint.contains("MIGRATIONS_DIR") && hint.contains("mkdir"),
            "{hint}"
        );
        assert!(!hint.contains("migrate-init"), "no such binary: {hint}");
        let file = d.write("file.txt", "x");
        let e = load_scripts(&file).unwrap_err();
        assert!(e.message.contains(&file.display().to_string()), "{e}");
    }

    #[test]
    fn load_reports_duplicates_naming_both_files() {
        let d = TempDir::new("dup");
        d.write("001_a.sql", script_text("001", "none"));
        d.write("002_b.sql", script_text("001", "none"));
        let e = load_scripts(&d.0).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Script);
        let a = d.0.join("001_a.sql").display().to_string();
        let b = d.0.join("002_b.sql").display().to_string();
        assert!(
            e.message
                .starts_with(&format!("{b}:1: revision '001' is also defined in {a}")),
            "{e}"
        );
        assert!(e.hint.unwrap().contains(&a));
    }

    #[test]
    fn load_reports_every_problem() {
        let d = TempDir::new("many");
        d.write("001_ok.sql", script_text("001", "none"));
        d.write(
            "002_bad.sql",
            "-- revision: 002\n-- down_revison: 001\n-- migrate:up\n",
        );
        d.write("003_dup.sql", script_text("001", "none"));
        d.write("004_noup.sql", "-- revision: 004\nSELECT 1;\n");
        let e = load_scripts(&d.0).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Script);
        let lines: Vec<&str> = e.message.lines().collect();
        assert_eq!(lines.len(), 4, "{e}");
        assert!(lines[0].starts_with("3 problems"), "{e}");
        assert!(
            lines[1].starts_with(&format!(
                "{}:2: unknown header key",
                d.0.join("002_bad.sql").display()
            )),
            "{e}"
        );
        assert!(
            lines[2].starts_with(&format!(
                "{}:1: revision '001'",
                d.0.join("003_dup.sql").display()
            )),
            "{e}"
        );
        assert!(
            lines[3].starts_with(&format!(
                "{}:2: SQL before",
                d.0.join("004_noup.sql").display()
            )),
            "{e}"
        );
        assert!(e.hint.is_some());
    }

    /// An entry named like a script that cannot be read as a file (a dangling symbolic link, a
    /// symbolic link loop, a directory) is a problem naming it, reported with the others:
    /// skipping it would apply the other scripts without it.
    #[cfg(unix)]
    #[test]
    fn load_refuses_script_entries_that_are_not_readable_files() {
        use std::os::unix::fs::symlink;
        let d = tempfile::tempdir().unwrap();
        let dir = d.path();
        std::fs::write(dir.join("001_a.sql"), script_text("001", "none")).unwrap();
        std::fs::write(dir.join("002_b.sql"), script_text("002", "001")).unwrap();
        symlink("nowhere.sql", dir.join("003_c.sql")).unwrap();
        symlink("004_d.sql", dir.join("004_d.sql")).unwrap();
        std::fs::create_dir(dir.join("005_e.sql")).unwrap();
        // Still fine: a link to a script, and entries that do not look like scripts.
        symlink("002_b.sql", dir.join("006_f.sql")).unwrap();
        symlink("nowhere", dir.join("notes.txt")).unwrap();
        std::fs::create_dir(dir.join("archive")).unwrap();

        let e = load_scripts(dir).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Script, "{e}");
        let lines: Vec<&str> = e.message.lines().collect();
        // 006_f.sql is a second copy of revision 002: reported too.
        assert_eq!(lines.len(), 5, "{e}");
        assert!(lines[0].starts_with("4 problems"), "{e}");
        let named =
            |line: &str, name: &str| line.starts_with(&format!("{}:", dir.join(name).display()));
        assert!(
            named(lines[1], "003_c.sql") && lines[1].contains("nowhere.sql"),
            "{e}"
        );
        assert!(named(lines[2], "004_d.sql"), "{e}");
        assert!(
            named(lines[3], "005_e.sql") && lines[3].contains("directory"),
            "{e}"
        );
        assert!(
            named(lines[4], "006_f.sql") && lines[4].contains("also defined"),
            "{e}"
        );

        // Alone, such an entry is the error, with a hint.
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("001_a.sql"), script_text("001", "none")).unwrap();
        symlink("gone.sql", d.path().join("002_b.sql")).unwrap();
        let e = load_scripts(d.path()).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Script, "{e}");
        assert!(
            e.message
                .starts_with(&format!("{}:", d.path().join("002_b.sql").display())),
            "{e}"
        );
        assert!(e.hint.is_some(), "{e}");
    }

    #[test]
    fn load_is_fast() {
        let d = TempDir::new("fast");
        let count = if cfg!(debug_assertions) {
            2_000
        } else {
            10_000
        };
        for i in 0..count {
            let rev = format!("{i:05}");
            let down = if i == 0 {
                "none".to_string()
            } else {
                format!("{:05}", i - 1)
            };
            let body = format!(
                "-- revision: {rev}\n-- down_revision: {down}\n-- message: step {i}\n-- created: 2026-01-01T00:00:00Z\n\n\
                 -- migrate:up\nCREATE TABLE t{i} (id bigint PRIMARY KEY, name text NOT NULL DEFAULT '');\n\
                 CREATE INDEX t{i}_name ON t{i} (name);\n\n-- migrate:down\nDROP TABLE t{i};\n"
            );
            d.write(&format!("{rev}_step_{i}.sql"), body);
        }
        let start = std::time::Instant::now();
        let scripts = load_scripts(&d.0).unwrap();
        let elapsed = start.elapsed();
        assert_eq!(scripts.len(), count);
        assert_eq!(scripts[count - 1].revision, format!("{:05}", count - 1));
        // Generous bound so a busy CI machine does not flake; typically far below.
        assert!(
            elapsed < std::time::Duration::from_secs(5),
            "{count} files took {elapsed:?}"
        );
    }
}
