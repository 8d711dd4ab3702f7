//! The header index: each script's parsed header (revision, parents, dependencies, labels,
//! message), kept in a cache file so that the commands that need only the revision graph —
//! `migrate-history`, `migrate-current` — do not open, read and parse every file of a long
//! history each time. With 10,000 scripts, opening and reading the files is most of such a
//! command's time (the kernel's work, not retort's); checking that each file is unchanged is
//! one `stat` per file.
//!
//! A file's entry is used only while the file's size, inode, modification and change times
//! are what they were when it was parsed (the change time cannot be set back by `touch`);
//! any other file is read and parsed as [`super::load_scripts`] would, with the same errors,
//! and the index is rewritten. Files modified in the last seconds before the index is written
//! are not kept in it (a file edited again within the same clock tick would look unchanged).
//! The index is a cache: a missing, unreadable or stale one (another retort version) only
//! costs the full read; it lives outside the project (`MIGRATE_CACHE_DIR`, default
//! `$XDG_CACHE_HOME/retort` or `~/.cache/retort`), one file per migrations directory.
//!
//! The commands that run scripts (`migrate-up`, `migrate-down`, `migrate-check`, ...) never
//! use it: they read every file in full, SQL and checksums included.

use super::load::{
    aggregate, alembic_directory, defined_twice, open_dir, read_one, script_files,
    unknown_references, Refs, ScriptEntry,
};
use crate::error::{Error, Result};
use crate::graph::RevisionNode;
use rustc_hash::FxHashMap as HashMap;
use serde::{Deserialize, Serialize};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The index's layout; an index of another layout (or another retort version) is ignored.
const FORMAT: u32 = 4;

/// Files modified this recently when the index is written are left out of it.
const RACY: Duration = Duration::from_secs(2);

#[derive(Serialize, Deserialize)]
struct IndexFile {
    format: u32,
    retort: String,
    dir: String,
    entries: Vec<Entry>,
}

/// One file. Written as a JSON array, not an object: no keys to read back, which is a third of
/// the time of reading a 10,000-entry index.
#[derive(Clone, Serialize, Deserialize)]
#[serde(from = "Row", into = "Row")]
struct Entry {
    /// The file's name in the directory.
    name: String,
    /// Size, inode, modification and change times (seconds, nanoseconds): the file as it was
    /// parsed.
    stamp: Stamp,
    revision: String,
    /// The line of the `revision` key (where a duplicate id is reported).
    line: usize,
    down_revisions: Vec<String>,
    depends_on: Vec<String>,
    branch_labels: Vec<String>,
    message: String,
    programs: Vec<String>,
    /// `-- phase: contract`.
    contract: bool,
}

/// [`Entry`] as it is written: `[name, stamp, revision, line, down_revisions, depends_on,
/// branch_labels, message, programs, contract]`.
#[derive(Serialize, Deserialize)]
#[allow(clippy::type_complexity)]
struct Row(
    String,
    Stamp,
    String,
    usize,
    Vec<String>,
    Vec<String>,
    Vec<String>,
    String,
    Vec<String>,
    bool,
);

impl From<Row> for Entry {
    fn from(r: Row) -> Entry {
        let Row(
            name,
            stamp,
            revision,
            line,
            down_revisions,
            depends_on,
            branch_labels,
            message,
            programs,
            contract,
        ) = r;
        Entry {
            name,
            stamp,
            revision,
            line,
            down_revisions,
            depends_on,
            branch_labels,
            message,
            programs,
            contract,
        }
    }
}

impl From<Entry> for Row {
    fn from(e: Entry) -> Row {
        Row(
            e.name,
            e.stamp,
            e.revision,
            e.line,
            e.down_revisions,
            e.depends_on,
            e.branch_labels,
            e.message,
            e.programs,
            e.contract,
        )
    }
}

type Stamp = [i64; 6];

impl Entry {
    fn into_node(self, path: PathBuf) -> RevisionNode {
        RevisionNode {
            id: self.revision,
            down_revisions: self.down_revisions,
            depends_on: self.depends_on,
            branch_labels: self.branch_labels,
            message: self.message,
            programs: self.programs,
            contract: self.contract,
            source: path
                .into_os_string()
                .into_string()
                .unwrap_or_else(|p| p.to_string_lossy().into_owned()),
        }
    }

    fn of(node: &RevisionNode, kept: Kept) -> Entry {
        Entry {
            name: Path::new(&node.source)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            stamp: kept.stamp,
            revision: node.id.clone(),
            line: kept.line,
            down_revisions: node.down_revisions.clone(),
            depends_on: node.depends_on.clone(),
            branch_labels: node.branch_labels.clone(),
            message: node.message.clone(),
            programs: node.programs.clone(),
            contract: node.contract,
        }
    }
}

/// What identifies a file's content without reading it, and its modification time.
fn stamp(file: &ScriptEntry) -> Option<(Stamp, SystemTime)> {
    let m = file.metadata().ok()?;
    let s = [
        m.len() as i64,
        m.ino() as i64,
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec(),
    ];
    Some((s, m.modified().ok()?))
}

/// Every file's [`stamp`] (None for an entry with a problem), on two threads: the `stat`
/// calls are much of the time of a read through the index, and the kernel's work.
fn stamps(files: &[ScriptEntry]) -> Vec<Option<(Stamp, SystemTime)>> {
    let one = |f: &ScriptEntry| f.problem.is_none().then(|| stamp(f)).flatten();
    if files.len() < 256 {
        return files.iter().map(one).collect();
    }
    let (a, b) = files.split_at(files.len() / 2);
    std::thread::scope(|scope| {
        let second = scope.spawn(|| b.iter().map(one).collect::<Vec<_>>());
        let mut out: Vec<_> = a.iter().map(one).collect();
        out.extend(
            second
                .join()
                .unwrap_or_else(|_| b.iter().map(one).collect()),
        );
        out
    })
}

/// The index file of `dir` in `cache_dir`: one per (canonical) migrations directory.
pub fn index_path(dir: &Path, cache_dir: &Path) -> PathBuf {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(canonical(dir).as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    cache_dir.join(format!("headers-{hex}.json"))
}

/// The directory's absolute path, as the index names it (`m` and `/work/app/m` are one).
fn canonical(dir: &Path) -> String {
    std::fs::canonicalize(dir)
        .unwrap_or_else(|_| dir.to_path_buf())
        .to_string_lossy()
        .into_owned()
}

/// The entries of the index, in file-name order (as written); none when it is missing,
/// damaged or not this retort's.
fn read_index(path: &Path, dir: &Path) -> Vec<Entry> {
    let Ok(bytes) = std::fs::read(path) else {
        return Vec::new();
    };
    match serde_json::from_slice::<IndexFile>(&bytes) {
        Ok(f)
            if f.format == FORMAT
                && f.retort == env!("CARGO_PKG_VERSION")
                && f.dir == canonical(dir) =>
        {
            f.entries
        }
        Ok(_) => Vec::new(),
        Err(e) => {
            log::debug!("ignoring the header index {}: {e}", path.display());
            Vec::new()
        }
    }
}

fn write_index(path: &Path, dir: &Path, entries: Vec<Entry>) {
    let file = IndexFile {
        format: FORMAT,
        retort: env!("CARGO_PKG_VERSION").into(),
        dir: canonical(dir),
        entries,
    };
    let tmp = path.with_extension(format!("json.{}.tmp", std::process::id()));
    let written = (|| -> std::io::Result<()> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&tmp, serde_json::to_vec(&file)?)?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        log::debug!("cannot write the header index {}: {e}", path.display());
    }
}

/// The index's entries looked up by name: in order while the directory lists the same files
/// (the usual case, no hashing), by name once it does not.
struct Cached {
    entries: Vec<Option<Entry>>,
    next: usize,
    by_name: Option<HashMap<String, usize>>,
}

impl Cached {
    fn new(entries: Vec<Entry>) -> Cached {
        Cached {
            entries: entries.into_iter().map(Some).collect(),
            next: 0,
            by_name: None,
        }
    }

    fn take(&mut self, name: &str) -> Option<Entry> {
        if self.by_name.is_none() {
            let here = self.entries.get(self.next).and_then(|e| e.as_ref());
            if here.is_some_and(|e| e.name == name) {
                self.next += 1;
                return self.entries[self.next - 1].take();
            }
            let map = self
                .entries
                .iter()
                .enumerate()
                .filter_map(|(i, e)| e.as_ref().map(|e| (e.name.clone(), i)))
                .collect();
            self.by_name = Some(map);
        }
        let i = *self.by_name.as_ref()?.get(name)?;
        self.entries[i].take()
    }
}

/// The revision graph's nodes of every script in `dir`, in file-name order: the same nodes,
/// and the same errors, as [`super::load_scripts`] followed by [`super::Script::to_node`],
/// read through the index in `cache_dir` (None: no index, every file read).
pub fn load_nodes(dir: &Path, cache_dir: Option<&Path>) -> Result<Vec<RevisionNode>> {
    match cache_dir {
        Some(cache_dir) => load_counting(dir, cache_dir).map(|(nodes, _)| nodes),
        None => Ok(super::load_scripts(dir)?
            .iter()
            .map(super::Script::to_node)
            .collect()),
    }
}

/// What the index keeps of a file besides its node (and its name, the node's source's).
struct Kept {
    stamp: Stamp,
    line: usize,
}

/// [`load_nodes`] through the index, and how many files it had to read and parse.
fn load_counting(dir: &Path, cache_dir: &Path) -> Result<(Vec<RevisionNode>, usize)> {
    let entries = open_dir(dir)?;
    let mut problems: Vec<Error> = Vec::new();
    let index = index_path(dir, cache_dir);
    // the index is read and parsed on a thread of its own while the directory is listed and
    // its files looked at: neither waits for the other
    let (files, stamps, old) = std::thread::scope(|scope| {
        let reading = scope.spawn(|| read_index(&index, dir));
        let files = script_files(dir, entries, &mut problems);
        let stamps = stamps(&files);
        (files, stamps, reading.join().unwrap_or_default())
    });
    let known = old.len();
    let mut cached = Cached::new(old);
    // the nodes, and beside them (same positions) what the index keeps of their files
    let mut nodes: Vec<RevisionNode> = Vec::with_capacity(files.len());
    let mut kept: Vec<Option<Kept>> = Vec::with_capacity(files.len());
    let mut by_id: HashMap<String, usize> =
        HashMap::with_capacity_and_hasher(files.len(), Default::default());
    let mut failed_ids: Vec<String> = Vec::new();
    let mut parsed_files = 0;
    let racy_after = SystemTime::now() - RACY;
    for (file, stamped) in files.into_iter().zip(stamps) {
        let name = file.name.to_string_lossy();
        let hit = match (&stamped, cached.take(&name)) {
            (Some((s, _)), Some(e)) if e.stamp == *s => Some(e),
            _ => None,
        };
        drop(name);
        let (node, line, stamp) = match hit {
            Some(e) => {
                let (line, stamp) = (e.line, e.stamp);
                (e.into_node(file.path), line, Some(stamp))
            }
            None => {
                parsed_files += 1;
                let p = match read_one(file).1 {
                    Ok(p) => p,
                    Err(f) => {
                        problems.extend(f.errors);
                        failed_ids.extend(f.revision);
                        continue;
                    }
                };
                // the stamp taken before the read (an edit during the read makes it stale);
                // a file modified just now is not kept
                let stamp = stamped
                    .filter(|(_, modified)| *modified < racy_after)
                    .map(|(s, _)| s);
                (p.script.to_node(), p.revision_line, stamp)
            }
        };
        if let Some(&first) = by_id.get(&node.id) {
            problems.push(defined_twice(
                Path::new(&node.source),
                line,
                &node.id,
                Path::new(&nodes[first].source),
            ));
            continue;
        }
        by_id.insert(node.id.clone(), nodes.len());
        kept.push(stamp.map(|stamp| Kept { stamp, line }));
        nodes.push(node);
    }
    let refs: Vec<Refs> = nodes
        .iter()
        .map(|n| Refs {
            path: Path::new(&n.source),
            id: &n.id,
            down: &n.down_revisions,
            deps: &n.depends_on,
            labels: &n.branch_labels,
            lines: None,
        })
        .collect();
    unknown_references(&refs, &failed_ids, &mut problems);
    drop(refs);
    if let Some(e) = aggregate(dir, problems) {
        return Err(e);
    }
    if nodes.is_empty() {
        if let Some(e) = alembic_directory(dir) {
            return Err(e);
        }
    }
    let keeping = kept.iter().flatten().count();
    if parsed_files > 0 || keeping != known {
        let entries = nodes
            .iter()
            .zip(kept)
            .filter_map(|(n, k)| k.map(|k| Entry::of(n, k)))
            .collect();
        write_index(&index, dir, entries);
    }
    Ok((nodes, parsed_files))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    /// A migrations directory and a cache directory, both temporary.
    struct Dirs {
        scripts: tempfile::TempDir,
        cache: tempfile::TempDir,
    }

    impl Dirs {
        fn new() -> Dirs {
            Dirs {
                scripts: tempfile::tempdir().unwrap(),
                cache: tempfile::tempdir().unwrap(),
            }
        }

        fn dir(&self) -> &Path {
            self.scripts.path()
        }

        /// Writes a script last modified an hour ago (old enough to be kept in the index).
        fn write(&self, name: &str, text: &str) {
            let path = self.dir().join(name);
            std::fs::write(&path, text).unwrap();
            let f = std::fs::File::options().write(true).open(&path).unwrap();
            f.set_modified(SystemTime::now() - Duration::from_secs(3600))
                .unwrap();
        }

        fn script(&self, name: &str, rev: &str, down: &str, message: &str) {
            self.write(
                name,
                &format!(
                    "-- revision: {rev}\n-- down_revision: {down}\n-- message: {message}\n\n-- migrate:up\nSELECT 1;\n"
                ),
            );
        }

        /// The nodes through the index, and how many files were parsed.
        fn load(&self) -> Result<(Vec<RevisionNode>, usize)> {
            load_counting(self.dir(), self.cache.path())
        }

        /// The nodes of a full read, for comparison.
        fn full(&self) -> Result<Vec<RevisionNode>> {
            load_nodes(self.dir(), None)
        }
    }

    fn ids(nodes: &[RevisionNode]) -> Vec<String> {
        nodes
            .iter()
            .map(|n| format!("{}<{}:{}", n.id, n.down_revisions.join("+"), n.message))
            .collect()
    }

    fn three() -> Dirs {
        let d = Dirs::new();
        d.script("001_a.sql", "001", "none", "first");
        d.script("002_b.sql", "002", "001", "second");
        d.write(
            "003_c.sql",
            "-- revision: 003\n-- down_revision: 002\n-- branch_labels: search\n-- depends_on: 001\n\n-- migrate:up\nSELECT 3;\n",
        );
        d
    }

    #[test]
    fn a_second_read_parses_nothing_and_gives_the_same_nodes_as_a_full_read() {
        let d = three();
        let (first, parsed) = d.load().unwrap();
        assert_eq!(parsed, 3);
        let (second, parsed) = d.load().unwrap();
        assert_eq!(parsed, 0, "every file is answered by the index");
        let full = d.full().unwrap();
        assert_eq!(second, full);
        assert_eq!(first, full);
        assert_eq!(second[2].branch_labels, ["search"]);
        assert_eq!(second[2].depends_on, ["001"]);
    }

    #[test]
    fn an_edited_added_or_removed_file_is_seen() {
        let d = three();
        d.load().unwrap();
        // same length, other message: only the file's stamp tells
        d.script("002_b.sql", "002", "001", "SECOND");
        d.script("004_d.sql", "004", "003", "fourth");
        std::fs::remove_file(d.dir().join("001_a.sql")).unwrap();
        d.script("000_a.sql", "001", "none", "first, renamed");
        let (nodes, parsed) = d.load().unwrap();
        assert_eq!(parsed, 3, "the edited, the added and the renamed file");
        assert_eq!(
            ids(&nodes),
            [
                "001<:first, renamed",
                "002<001:SECOND",
                "003<002:",
                "004<003:fourth"
            ]
        );
        assert_eq!(nodes, d.full().unwrap());
        assert_eq!(d.load().unwrap().1, 0);
    }

    #[test]
    fn a_file_broken_after_it_was_indexed_fails_as_a_full_read_does() {
        let d = three();
        d.load().unwrap();
        d.write(
            "002_b.sql",
            "-- revision: 002\n-- down_revison: 001\n\n-- migrate:up\n",
        );
        let e = d.load().unwrap_err();
        assert_eq!(e.to_string(), d.full().unwrap_err().to_string());
        assert!(e.message.contains("002_b.sql:2"), "{e}");
        // a second file defining 003: the same duplicate error, naming both files
        d.script("002_b.sql", "002", "001", "second");
        d.script("009_dup.sql", "003", "002", "again");
        let e = d.load().unwrap_err();
        assert_eq!(e.to_string(), d.full().unwrap_err().to_string());
        assert!(e.message.contains("also defined in"), "{e}");
    }

    #[test]
    fn a_damaged_or_foreign_index_is_ignored() {
        let d = three();
        d.load().unwrap();
        let index = index_path(d.dir(), d.cache.path());
        std::fs::write(&index, b"{\"format\": 1, \"entr").unwrap();
        let (nodes, parsed) = d.load().unwrap();
        assert_eq!((nodes, parsed), (d.full().unwrap(), 3));
        // an index written by another retort version is not trusted either
        let text = std::fs::read_to_string(&index).unwrap();
        std::fs::write(
            &index,
            text.replace(env!("CARGO_PKG_VERSION"), "0.0.0-other"),
        )
        .unwrap();
        assert_eq!(d.load().unwrap().1, 3);
    }

    #[test]
    fn files_modified_just_now_are_read_every_time_until_they_settle() {
        let d = three();
        std::fs::write(
            d.dir().join("004_d.sql"),
            "-- revision: 004\n-- down_revision: 003\n\n-- migrate:up\nSELECT 4;\n",
        )
        .unwrap();
        assert_eq!(d.load().unwrap().1, 4);
        assert_eq!(
            d.load().unwrap().1,
            1,
            "the fresh file is not trusted to the index"
        );
    }

    #[test]
    fn an_empty_directory_of_alembic_revisions_says_to_import_them() {
        let d = Dirs::new();
        d.write("1a2b_init.py", "revision = '1a2b'\ndown_revision = None\n");
        let e = d.load().unwrap_err();
        assert!(e.message.contains("migrate-import"), "{e}");
    }
}
