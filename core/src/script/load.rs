//! Reading a migrations directory: every script file, in file-name order, with every problem
//! (unreadable entry, parse error, an id defined twice) collected into one error, so that a
//! broken directory is fixed in one pass and never half-applied.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::fs::ReadDir;
use std::path::{Path, PathBuf};

use super::checksum::with_files;
use super::parse::{edit_distance, err_at, header_key, parse, Failed, Parsed};
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
    /// The file's name in the directory (what the files are sorted by).
    pub name: std::ffi::OsString,
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
        let name = entry.file_name();
        let script = match name.to_str() {
            Some(n) => looks_like_script(n),
            None => looks_like_script(&name.to_string_lossy()),
        };
        if !script {
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
            name,
            problem,
            dirent,
        });
    }
    // by the names read from the directory (`path.file_name()` would re-parse each path);
    // a directory holds each name once
    files.sort_unstable_by(|a, b| a.name.cmp(&b.name));
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
/// naming both, and so is a parent or dependency that names no revision (with its line).
fn read_scripts(files: Vec<ScriptEntry>, problems: &mut Vec<Error>) -> Vec<Script> {
    let mut scripts: Vec<Script> = Vec::with_capacity(files.len());
    let mut lines: Vec<(usize, usize)> = Vec::with_capacity(files.len());
    let mut failed_ids: Vec<String> = Vec::new();
    let mut by_id: HashMap<String, usize> =
        HashMap::with_capacity_and_hasher(files.len(), Default::default());
    for (path, parsed) in read_and_parse(files) {
        let Parsed {
            script,
            revision_line,
            down_revision_line,
            depends_on_line,
        } = match parsed {
            Ok(p) => p,
            Err(f) => {
                problems.extend(f.errors);
                failed_ids.extend(f.revision);
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
            lines.push((down_revision_line, depends_on_line));
        }
    }
    let refs: Vec<Refs> = scripts
        .iter()
        .zip(&lines)
        .map(|(s, &(down_line, deps_line))| Refs {
            path: &s.path,
            id: &s.revision,
            down: &s.down_revisions,
            deps: &s.depends_on,
            labels: &s.branch_labels,
            lines: Some((down_line, deps_line)),
        })
        .collect();
    unknown_references(&refs, &failed_ids, problems);
    scripts
}

/// What a script names, for [`unknown_references`].
pub(super) struct Refs<'a> {
    pub path: &'a Path,
    pub id: &'a str,
    pub down: &'a [String],
    pub deps: &'a [String],
    pub labels: &'a [String],
    /// The lines of its `down_revision` and `depends_on` keys; None: read the file to find
    /// them (only when there is a problem to report).
    pub lines: Option<(usize, usize)>,
}

/// A `down_revision` that names no revision, or a `depends_on` that names no revision and no
/// branch label, among `refs` and the ids of the files that failed to parse: a problem at its
/// line, with the closest id as a suggestion ("did you mean"), reported with the files' other
/// problems rather than after them are fixed.
pub(super) fn unknown_references(refs: &[Refs], failed_ids: &[String], problems: &mut Vec<Error>) {
    let ids: HashSet<&str> = refs
        .iter()
        .map(|r| r.id)
        .chain(failed_ids.iter().map(String::as_str))
        .collect();
    let labels: HashSet<&str> = refs
        .iter()
        .flat_map(|r| r.labels.iter().map(String::as_str))
        .collect();
    for r in refs {
        let line = |key: &str, k: usize| match r.lines {
            Some(l) => {
                if k == 0 {
                    l.0
                } else {
                    l.1
                }
            }
            None => header_line_in(r.path, key),
        };
        for d in r.down.iter().filter(|d| !ids.contains(d.as_str())) {
            problems.push(
                err_at(
                    r.path,
                    line("down_revision", 0),
                    format_args!(
                        "revision {} has down_revision '{d}', but no revision has that id{}",
                        r.id,
                        did_you_mean(d, &ids)
                    ),
                )
                .with_hint("fix the down_revision line, or restore the missing script"),
            );
        }
        for d in r
            .deps
            .iter()
            .filter(|d| !ids.contains(d.as_str()) && !labels.contains(d.as_str()))
        {
            problems.push(
                err_at(
                    r.path,
                    line("depends_on", 1),
                    format_args!(
                        "revision {} depends_on '{d}', but no revision or branch label has that name{}",
                        r.id,
                        did_you_mean(d, &ids.iter().chain(&labels).copied().collect())
                    ),
                )
                .with_hint("fix the depends_on line, or restore the missing script"),
            );
        }
    }
}

/// ` (did you mean 'x'?)` for the id `name` was probably meant to be: the only one it is a
/// prefix of, else the closest by edit distance (at most a quarter of its length, at least 1);
/// empty when none is close.
fn did_you_mean(name: &str, ids: &HashSet<&str>) -> String {
    let mut prefixed = ids.iter().filter(|id| id.starts_with(name));
    if let (Some(only), None) = (prefixed.next(), prefixed.next()) {
        return format!(" (did you mean '{only}'?)");
    }
    let limit = (name.len() / 4).max(1);
    ids.iter()
        .map(|id| (edit_distance(name, id), *id))
        .filter(|&(d, _)| d <= limit)
        .min()
        .map(|(_, id)| format!(" (did you mean '{id}'?)"))
        .unwrap_or_default()
}

/// The line of header key `key` in the file at `path` (1 when it cannot be read or found).
fn header_line_in(path: &Path, key: &str) -> usize {
    let Ok(text) = std::fs::read_to_string(path) else {
        return 1;
    };
    text.lines()
        .position(|l| {
            l.trim()
                .strip_prefix("--")
                .and_then(header_key)
                .is_some_and(|(k, _)| k == key)
        })
        .map_or(1, |i| i + 1)
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
pub(super) fn read_one(entry: ScriptEntry) -> (PathBuf, std::result::Result<Parsed, Failed>) {
    let ScriptEntry { path, problem, .. } = entry;
    if let Some(e) = problem {
        return (path, Err(e.into()));
    }
    let parsed = match read_file(&path) {
        Ok(bytes) => parse(&path, &bytes).and_then(|p| with_program_files(&path, p)),
        Err(e) => Err(
            Error::io(format!("{}: cannot read the file: {e}", path.display()))
                .with_hint("check the file's permissions")
                .into(),
        ),
    };
    (path, parsed)
}

/// A script whose up section is a program step: its checksums extended with the files the
/// command names in the migrations directory (see [`Program::files_in`]).
///
/// [`Program::files_in`]: super::Program::files_in
fn with_program_files(path: &Path, mut parsed: Parsed) -> std::result::Result<Parsed, Failed> {
    let Some(program) = parsed.script.up.program.clone() else {
        return Ok(parsed);
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut files = Vec::new();
    for name in program.files_in(dir) {
        let file = dir.join(&name);
        let bytes = std::fs::read(&file).map_err(|e| {
            Failed::from(
                err_at(
                    path,
                    program.line,
                    format_args!("cannot read {}, which '-- run:' names: {e}", file.display()),
                )
                .with_hint(
                    "the checksum covers the files the command names: check the file's permissions",
                ),
            )
        })?;
        files.push((name.display().to_string(), bytes));
    }
    let s = &mut parsed.script;
    s.checksum = with_files(&s.checksum, &files);
    s.legacy_checksum = s.legacy_checksum.as_deref().map(|c| with_files(c, &files));
    Ok(parsed)
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
fn read_and_parse(files: Vec<ScriptEntry>) -> Vec<(PathBuf, std::result::Result<Parsed, Failed>)> {
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
        assert_eq!(lines.len(), 5, "{e}");
        assert!(lines[0].starts_with("4 problems"), "{e}");
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
        // every problem of a file, not only its first
        assert!(
            lines[4].starts_with(&format!(
                "{}:2: reached the end of the file without a '-- migrate:up' line",
                d.0.join("004_noup.sql").display()
            )),
            "{e}"
        );
        assert!(e.hint.is_some());
    }

    #[test]
    fn every_problem_of_every_file_at_once_and_a_typod_parent_with_its_line() {
        let d = TempDir::new("three");
        d.write("4b1e0c9a7d21_a.sql", script_text("4b1e0c9a7d21", "none"));
        // two mistakes in one file
        d.write(
            "2f1c8e6b3a90_b.sql",
            "-- revision: 2f1c8e6b3a90\n-- down_revision: 4b1e0c9a7d21\n-- transactional: no\n-- lock_timeout: soon\n-- migrate:up\n",
        );
        // a parent one character off, on line 3
        d.write(
            "9c3d5e7f1a2b_c.sql",
            "-- revision: 9c3d5e7f1a2b\n-- message: c\n-- down_revision: 2f1c8e6b3a9\n-- depends_on: 4b1e0c9a7d2l\n-- migrate:up\n",
        );
        let e = load_scripts(&d.0).unwrap_err();
        let lines: Vec<&str> = e.message.lines().collect();
        assert!(lines[0].starts_with("4 problems"), "{e}");
        let c = d.0.join("9c3d5e7f1a2b_c.sql").display().to_string();
        assert!(lines[1].contains("_b.sql:3: transactional must be"), "{e}");
        assert!(lines[2].contains("_b.sql:4: lock_timeout must be"), "{e}");
        // the parent's own file failed, but its id was read: no false report against it
        assert!(
            lines[3].starts_with(&format!("{c}:3: revision 9c3d5e7f1a2b has down_revision '2f1c8e6b3a9', but no revision has that id (did you mean '2f1c8e6b3a90'?)")),
            "{e}"
        );
        assert!(
            lines[4].starts_with(&format!("{c}:4: revision 9c3d5e7f1a2b depends_on '4b1e0c9a7d2l', but no revision or branch label has that name (did you mean '4b1e0c9a7d21'?)")),
            "{e}"
        );
        // the header index reports the same
        let cache = TempDir::new("three-cache");
        let e2 = crate::script::index::load_nodes(&d.0, Some(&cache.0)).unwrap_err();
        assert_eq!(e2.message, e.message);
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
