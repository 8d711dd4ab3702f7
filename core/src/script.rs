//! Migration script files: one SQL file per revision, `migrations/<rev>_<slug>.sql`.
//!
//! ```sql
//! -- revision: 002
//! -- down_revision: 001
//! -- message: server settings table
//! -- created: 2026-11-22T10:00:00Z
//!
//! -- migrate:up
//! CREATE TABLE server_settings (key text PRIMARY KEY, value jsonb NOT NULL);
//!
//! -- migrate:down
//! DROP TABLE server_settings;
//! ```
//!
//! The header is every line before `-- migrate:up`. In it, a comment of the form
//! `-- word: value` is a header key (unknown keys are errors, so typos cannot pass); other
//! comments and blank lines are ignored; anything else is an error. Keys:
//!
//! | key             | meaning                                                                 |
//! |-----------------|-------------------------------------------------------------------------|
//! | `revision`      | required; this revision's id (see [`validate_revision_id`])             |
//! | `down_revision` | parent ids, comma-separated (a merge has several); absent or `none`: a root |
//! | `message`       | one line of description                                                 |
//! | `created`       | creation time, free text (RFC 3339 when written by `migrate-revision`)  |
//! | `branch_labels` | comma-separated labels, usable as `label@head`                          |
//! | `depends_on`    | comma-separated revisions (or labels) that must be applied first        |
//! | `transactional` | `true` (default) or `false`: run statement by statement, no transaction |
//!
//! Then `-- migrate:up` (required, once) and optionally `-- migrate:down` (at most once, after
//! up). Marker lines are matched after trimming, case-sensitively; a line that looks like a
//! marker but is not exactly one (`-- migrate: down`, `-- migrate:down transaction:false`) is an
//! error rather than silently becoming part of the SQL. A script without `-- migrate:down`
//! cannot be downgraded. Markers are found by lines, so they must not appear anywhere else,
//! even inside a dollar-quoted function body.
//!
//! Files must be UTF-8 (a BOM is skipped); LF and CRLF line endings are both accepted.

use crate::error::{Error, Result};
use crate::graph::RevisionNode;
use crate::sqlsplit;
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::{Path, PathBuf};

/// One section of a script (the SQL under `-- migrate:up` or `-- migrate:down`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The text between the marker line and the next marker (or the end of the file), verbatim.
    pub sql: String,
    /// The 1-based file line of the first line of `sql` (the line after the marker).
    pub line: usize,
}

impl Section {
    /// The section split into statements (for non-transactional scripts).
    pub fn statements(&self) -> Vec<Statement> {
        split_statements(&self.sql, self.line)
    }

    /// The file line of the character at 1-based character `position` of `sql`, as reported
    /// by PostgreSQL in an error for the query `sql`.
    pub fn line_of_position(&self, position: usize) -> usize {
        sqlsplit::line_of_position(&self.sql, self.line, position)
    }
}

/// A parsed migration script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    pub path: PathBuf,
    pub revision: String,
    /// Parents; empty for a root, several for a merge.
    pub down_revisions: Vec<String>,
    pub depends_on: Vec<String>,
    pub branch_labels: Vec<String>,
    pub message: String,
    pub created: Option<String>,
    /// `false`: the sections are run one statement at a time, outside a transaction.
    pub transactional: bool,
    pub up: Section,
    pub down: Option<Section>,
    /// [`checksum`] of the file from the `-- migrate:up` line to the end, preceded by the
    /// header fields that change what applying the script does (`down_revision`, `depends_on`,
    /// `transactional: false`): editing the SQL or those fields changes it; editing the
    /// message, `created`, `branch_labels`, comments or cosmetic whitespace does not.
    pub checksum: String,
}

impl Script {
    /// The script's node in the revision graph (`source` is the path as displayed).
    pub fn to_node(&self) -> RevisionNode {
        RevisionNode {
            id: self.revision.clone(),
            down_revisions: self.down_revisions.clone(),
            depends_on: self.depends_on.clone(),
            branch_labels: self.branch_labels.clone(),
            message: self.message.clone(),
            source: self.path.display().to_string(),
        }
    }
}

/// One statement of a section, without its trailing `;`. `line` is the file line of its first
/// character that is neither whitespace nor in a comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sql: String,
    pub line: usize,
}

impl Statement {
    /// The file line of the character at 1-based character `position` of `sql`, as reported
    /// by PostgreSQL in an error for the query `sql`.
    pub fn line_of_position(&self, position: usize) -> usize {
        sqlsplit::line_of_position(&self.sql, self.line, position)
    }
}

/// What [`render_script`] writes for a new revision.
///
/// Note: `NewScript::default()` has `transactional: false`; set it to `true` for the normal
/// case.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewScript {
    pub revision: String,
    pub down_revisions: Vec<String>,
    pub depends_on: Vec<String>,
    pub branch_labels: Vec<String>,
    pub message: String,
    pub created: String,
    pub transactional: bool,
    pub up_sql: String,
    pub down_sql: String,
}

const UP_MARKER: &str = "-- migrate:up";
const DOWN_MARKER: &str = "-- migrate:down";

/// The header keys, in the order [`render_script`] writes them.
const KEYS: [&str; 7] = [
    "revision",
    "down_revision",
    "message",
    "created",
    "branch_labels",
    "depends_on",
    "transactional",
];

const KEY_REVISION: usize = 0;
const KEY_DOWN_REVISION: usize = 1;
const KEY_MESSAGE: usize = 2;
const KEY_CREATED: usize = 3;
const KEY_BRANCH_LABELS: usize = 4;
const KEY_DEPENDS_ON: usize = 5;
const KEY_TRANSACTIONAL: usize = 6;

/// An error at `path:line`.
fn err_at(path: &Path, line: usize, msg: impl fmt::Display) -> Error {
    Error::script(format!("{}:{}: {}", path.display(), line, msg))
}

/// Parses one script file. `path` is used in error messages and kept in the result; `bytes`
/// is the file's content.
pub fn parse_script(path: &Path, bytes: &[u8]) -> Result<Script> {
    parse(path, bytes).map(|(script, _)| script)
}

/// Parses a script; also returns the line of its `revision` key.
fn parse(path: &Path, bytes: &[u8]) -> Result<(Script, usize)> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let good = &bytes[..e.valid_up_to()];
            let line = good.iter().filter(|&&c| c == b'\n').count() + 1;
            let column =
                good.len() - good.iter().rposition(|&c| c == b'\n').map_or(0, |p| p + 1) + 1;
            return Err(err_at(
                path,
                line,
                format_args!(
                    "the file is not valid UTF-8 (bad byte 0x{:02x} at column {column})",
                    bytes[e.valid_up_to()]
                ),
            )
            .with_hint("save the file as UTF-8 (migration scripts are read as UTF-8 text)"));
        }
    };

    // Header values: (value, line) for each key, by index in KEYS.
    let mut header: [Option<(&str, usize)>; KEYS.len()] = Default::default();
    // Where the up section's marker line starts, and where each section's SQL starts.
    let mut up_marker_start: Option<usize> = None;
    let mut up: Option<(usize, usize)> = None; // (byte offset, line)
    let mut up_end = text.len();
    let mut down: Option<(usize, usize)> = None;

    let mut offset = 0;
    let mut line_no = 0;
    while offset < text.len() {
        line_no += 1;
        let line_start = offset;
        let (raw, next) = match text[offset..].find('\n') {
            Some(p) => (&text[offset..offset + p], offset + p + 1),
            None => (&text[offset..], text.len()),
        };
        offset = next;
        let trimmed = raw.trim();

        if trimmed == UP_MARKER {
            if down.is_some() {
                return Err(err_at(path, line_no, "'-- migrate:up' after '-- migrate:down'")
                    .with_hint("a script has one '-- migrate:up' section, then optionally one '-- migrate:down' section"));
            }
            if up.is_some() {
                return Err(err_at(path, line_no, "a second '-- migrate:up' line")
                    .with_hint("a script has exactly one '-- migrate:up' section; remove the extra marker or move the SQL to a new revision"));
            }
            up_marker_start = Some(line_start);
            up = Some((offset, line_no + 1));
            continue;
        }
        if trimmed == DOWN_MARKER {
            if up.is_none() {
                return Err(err_at(path, line_no, "'-- migrate:down' before '-- migrate:up'")
                    .with_hint("put the '-- migrate:up' section (the upgrade SQL) first, then '-- migrate:down'"));
            }
            if down.is_some() {
                return Err(err_at(path, line_no, "a second '-- migrate:down' line")
                    .with_hint("a script has at most one '-- migrate:down' section; remove the extra marker"));
            }
            up_end = line_start;
            down = Some((offset, line_no + 1));
            continue;
        }
        if looks_like_marker(trimmed) {
            return Err(err_at(
                path,
                line_no,
                format_args!("'{trimmed}' is not a section marker"),
            )
            .with_hint(
                "section markers are exactly '-- migrate:up' and '-- migrate:down' on a line of their own \
                 (to run without a transaction, put '-- transactional: false' in the header)",
            ));
        }
        if up.is_some() {
            continue;
        }

        // The header.
        if trimmed.is_empty() {
            continue;
        }
        let Some(comment) = trimmed.strip_prefix("--") else {
            return Err(
                err_at(path, line_no, "SQL before the '-- migrate:up' line").with_hint(
                    "the header may contain only '-- key: value' lines and comments; \
                 put the SQL after a '-- migrate:up' line",
                ),
            );
        };
        let Some((key, value)) = header_key(comment) else {
            continue; // an ordinary comment
        };
        let Some(k) = KEYS.iter().position(|&known| known == key) else {
            let suggestion = match suggest_key(key) {
                Some(s) => format!(" (did you mean '{s}'?)"),
                None => String::new(),
            };
            return Err(err_at(
                path,
                line_no,
                format_args!("unknown header key '{key}'{suggestion}"),
            )
            .with_hint(format!(
                "valid keys are: {}; a header comment must not start with 'word:' \
                 (reword it, or move it below '-- migrate:up')",
                KEYS.join(", ")
            )));
        };
        if let Some((_, first)) = header[k] {
            return Err(err_at(
                path,
                line_no,
                format_args!("header key '{key}' given twice (first on line {first})"),
            )
            .with_hint("keep only one of the two lines"));
        }
        header[k] = Some((value, line_no));
    }

    let Some((up_start, up_line)) = up else {
        return Err(err_at(
            path,
            line_no.max(1),
            "reached the end of the file without a '-- migrate:up' line",
        )
        .with_hint("put a line '-- migrate:up' between the header and the upgrade SQL"));
    };
    let up = Section {
        sql: text[up_start..up_end.max(up_start)].to_string(),
        line: up_line,
    };
    let down = down.map(|(start, line)| Section {
        sql: text[start..].to_string(),
        line,
    });

    let Some((revision, revision_line)) = header[KEY_REVISION] else {
        return Err(err_at(path, 1, "no '-- revision: <id>' header line")
            .with_hint("every script needs a '-- revision: <id>' line before '-- migrate:up'"));
    };
    validate_revision_id(revision)
        .map_err(|e| err_at(path, revision_line, &e.message).with_hint(hint_of(&e)))?;

    let down_revisions = match header[KEY_DOWN_REVISION] {
        None => Vec::new(),
        Some((v, _)) if v.is_empty() || v.eq_ignore_ascii_case("none") => Vec::new(),
        Some((v, line)) => {
            let ids = id_list(path, line, "down_revision", v)?;
            if ids.iter().any(|id| id == revision) {
                return Err(err_at(
                    path,
                    line,
                    format_args!("revision '{revision}' lists itself as its down_revision"),
                )
                .with_hint(
                    "down_revision names the parent revision(s); use 'none' for the first revision",
                ));
            }
            ids
        }
    };
    let branch_labels = match header[KEY_BRANCH_LABELS] {
        None => Vec::new(),
        Some((v, line)) => id_list(path, line, "branch_labels", v)?,
    };
    let depends_on = match header[KEY_DEPENDS_ON] {
        None => Vec::new(),
        Some((v, line)) => id_list(path, line, "depends_on", v)?,
    };
    let transactional = match header[KEY_TRANSACTIONAL] {
        None => true,
        Some((v, _)) if v.eq_ignore_ascii_case("true") => true,
        Some((v, _)) if v.eq_ignore_ascii_case("false") => false,
        Some((v, line)) => {
            return Err(err_at(path, line, format_args!("transactional must be 'true' or 'false', not '{v}'"))
                .with_hint("write '-- transactional: false' to run the script statement by statement without a transaction, or remove the line"));
        }
    };
    let checksum = checksum(&format!(
        "{}{}",
        checksum_header(&down_revisions, &depends_on, transactional),
        &text[up_marker_start.unwrap_or(0)..]
    ));
    let message = header[KEY_MESSAGE].map_or("", |(v, _)| v).to_string();
    let created = header[KEY_CREATED]
        .map(|(v, _)| v)
        .filter(|v| !v.is_empty())
        .map(str::to_string);

    let script = Script {
        path: path.to_path_buf(),
        revision: revision.to_string(),
        down_revisions,
        depends_on,
        branch_labels,
        message,
        created,
        transactional,
        up,
        down,
        checksum,
    };
    Ok((script, revision_line))
}

/// The header fields that change what applying the script does, as lines that [`checksum`]
/// covers before the `-- migrate:up` line: `down_revision: a, b` and `depends_on: c` (items in
/// file order) when not empty, `transactional: false` when false. Nothing for a transactional
/// root without dependencies, so its checksum is that of the sections alone. `message`,
/// `created` and `branch_labels` are left out: editing them changes nothing in the database.
fn checksum_header(
    down_revisions: &[String],
    depends_on: &[String],
    transactional: bool,
) -> String {
    let mut s = String::new();
    if !down_revisions.is_empty() {
        s.push_str(&format!("down_revision: {}\n", down_revisions.join(", ")));
    }
    if !depends_on.is_empty() {
        s.push_str(&format!("depends_on: {}\n", depends_on.join(", ")));
    }
    if !transactional {
        s.push_str("transactional: false\n");
    }
    s
}

fn hint_of(e: &Error) -> String {
    e.hint.clone().unwrap_or_default()
}

/// `comment` is a header comment after its `--`. If it has the form ` word: value`, returns
/// (word, trimmed value). A word is ASCII letters, digits, `_` and `-`, starting with a letter;
/// spaces may come before the colon.
fn header_key(comment: &str) -> Option<(&str, &str)> {
    let c = comment.trim_start();
    let end = c.find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_' || ch == '-'))?;
    let (word, rest) = c.split_at(end);
    if !word.starts_with(|ch: char| ch.is_ascii_alphabetic()) {
        return None;
    }
    // `word : value` counts too, so that a stray space cannot turn a key into a comment.
    let value = rest.trim_start().strip_prefix(':')?;
    Some((word, value.trim()))
}

/// A line that is not a marker but was probably meant as one: `--migrate:up`, `-- migrate: down`,
/// `-- Migrate:Up`, `-- migrate:down transaction:false`.
fn looks_like_marker(trimmed: &str) -> bool {
    if !trimmed.starts_with("--") {
        return false;
    }
    let squeezed: String = trimmed
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect();
    squeezed.starts_with("--migrate:") || squeezed == "--migrateup" || squeezed == "--migratedown"
}

/// The known key closest to an unknown one, if any is close enough.
fn suggest_key(key: &str) -> Option<&'static str> {
    let norm = key.to_ascii_lowercase().replace('-', "_");
    if let Some(&k) = KEYS.iter().find(|&&k| k == norm) {
        return Some(k);
    }
    let aliases = [
        ("down_revisions", "down_revision"),
        ("revises", "down_revision"),
        ("parent", "down_revision"),
        ("parents", "down_revision"),
        ("rev", "revision"),
        ("id", "revision"),
        ("revision_id", "revision"),
        ("depends", "depends_on"),
        ("dependencies", "depends_on"),
        ("branch_label", "branch_labels"),
        ("branch", "branch_labels"),
        ("branches", "branch_labels"),
        ("labels", "branch_labels"),
        ("transaction", "transactional"),
        ("date", "created"),
        ("create_date", "created"),
        ("msg", "message"),
        ("description", "message"),
    ];
    if let Some(&(_, k)) = aliases.iter().find(|(a, _)| *a == norm) {
        return Some(k);
    }
    KEYS.iter()
        .map(|&k| (edit_distance(&norm, k), k))
        .filter(|&(d, k)| d <= 3 && d * 3 <= k.len())
        .min_by_key(|&(d, _)| d)
        .map(|(_, k)| k)
}

/// Levenshtein distance (over bytes; keys are ASCII).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, &ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// Parses a comma-separated list of ids (for `key` on `line`): every item must be a valid id,
/// items must not repeat and there must be at least one.
fn id_list(path: &Path, line: usize, key: &str, value: &str) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for item in value.split(',').map(str::trim) {
        if item.is_empty() {
            return Err(err_at(
                path,
                line,
                format_args!("empty item in the {key} list '{value}'"),
            )
            .with_hint(format!(
                "write the {key} values separated by commas, like '{key}: a, b'"
            )));
        }
        validate_revision_id(item).map_err(|e| {
            err_at(path, line, format_args!("in {key}: {}", e.message)).with_hint(hint_of(&e))
        })?;
        if out.iter().any(|x| x == item) {
            return Err(err_at(
                path,
                line,
                format_args!("'{item}' is listed twice in {key}"),
            )
            .with_hint("list each value once"));
        }
        out.push(item.to_string());
    }
    Ok(out)
}

/// Reads and parses every `*.sql` file directly in `dir` (not in subdirectories), in file-name
/// order. Other files, and files whose name starts with `.` (editor and macOS metadata files),
/// are ignored. Every problem (unreadable file, parse error, a revision id defined by two
/// files) is reported, one per line, in a single error.
pub fn load_scripts(dir: &Path) -> Result<Vec<Script>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::usage(format!(
                "the migrations directory {} does not exist",
                dir.display()
            ))
            .with_hint(
                "pass the right directory with --dir or the MIGRATIONS_DIR setting \
                 (environment or .env), or create it (mkdir -p DIR) and add revisions \
                 with migrate-revision",
            ));
        }
        Err(e) => {
            let kind: fn(String) -> Error = if dir.is_file() {
                Error::usage
            } else {
                Error::io
            };
            return Err(kind(format!(
                "cannot read the migrations directory {}: {e}",
                dir.display()
            ))
            .with_hint("check the path given with --dir or MIGRATIONS_DIR, and its permissions"));
        }
    };

    let mut problems: Vec<Error> = Vec::new();
    let mut files: Vec<(std::ffi::OsString, PathBuf)> = Vec::new();
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
        let is_sql = {
            let n = name.to_string_lossy();
            !n.starts_with('.')
                && n.len() > 4
                && n.is_char_boundary(n.len() - 4)
                && n[n.len() - 4..].eq_ignore_ascii_case(".sql")
        };
        if !is_sql {
            continue;
        }
        let path = entry.path();
        let is_file = match entry.file_type() {
            Ok(t) if t.is_file() => true,
            Ok(t) if t.is_symlink() => path.is_file(),
            _ => false,
        };
        if is_file {
            files.push((name, path));
        }
    }
    files.sort();

    let mut scripts: Vec<Script> = Vec::with_capacity(files.len());
    let mut by_id: std::collections::HashMap<String, usize> =
        std::collections::HashMap::with_capacity(files.len());
    for (_, path) in files {
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                problems.push(
                    Error::io(format!("{}: cannot read the file: {e}", path.display()))
                        .with_hint("check the file's permissions"),
                );
                continue;
            }
        };
        match parse(&path, &bytes) {
            Ok((script, line)) => {
                if let Some(&first) = by_id.get(&script.revision) {
                    let other: &Script = &scripts[first];
                    problems.push(
                        err_at(
                            &path,
                            line,
                            format_args!(
                                "revision '{}' is also defined in {}",
                                script.revision,
                                other.path.display()
                            ),
                        )
                        .with_hint(format!(
                            "revision ids must be unique: give one of the files {} and {} a new id \
                             (and update the down_revision lines that point to it)",
                            other.path.display(),
                            path.display()
                        )),
                    );
                } else {
                    by_id.insert(script.revision.clone(), scripts.len());
                    scripts.push(script);
                }
            }
            Err(e) => problems.push(e),
        }
    }

    match problems.len() {
        0 => Ok(scripts),
        1 => Err(problems.remove(0)),
        n => {
            let all_io = problems
                .iter()
                .all(|p| p.kind == crate::error::ErrorKind::Io);
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
            Err(kind(msg).with_hint("fix each file listed above, then run the command again"))
        }
    }
}

/// Lowercase hex SHA-256 of `text` after normalizing away cosmetic differences: a BOM is
/// removed, CRLF and CR become LF, trailing whitespace is removed from every line, and
/// trailing blank lines are removed.
pub fn checksum(text: &str) -> String {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut hasher = Sha256::new();
    let mut first = true;
    let mut pending_blank = 0usize;
    for line in text
        .split('\n')
        .flat_map(|l| l.strip_suffix('\r').unwrap_or(l).split('\r'))
    {
        let line = line.trim_end();
        if line.is_empty() {
            pending_blank += 1;
            continue;
        }
        if !first {
            hasher.update(b"\n");
        }
        for _ in 0..pending_blank {
            hasher.update(b"\n");
        }
        hasher.update(line.as_bytes());
        first = false;
        pending_blank = 0;
    }
    let digest = hasher.finalize();
    let mut hex = String::with_capacity(64);
    for byte in digest {
        use fmt::Write;
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// Splits `sql` into statements on top-level `;` (see [`crate::sqlsplit`]). `first_line` is
/// the file line of the first line of `sql`; each statement's `line` is a file line.
pub fn split_statements(sql: &str, first_line: usize) -> Vec<Statement> {
    sqlsplit::split(sql, first_line)
        .into_iter()
        .map(|s| Statement {
            sql: s.text(sql).to_string(),
            line: s.line,
        })
        .collect()
}

/// The text of a new script file, in the documented format. Header lines: `revision`,
/// `down_revision` (only if there are parents), `message`, `created` (only if set), then
/// `branch_labels`, `depends_on` and `transactional: false` only when set. A message
/// containing line breaks is written on one line.
pub fn render_script(n: &NewScript) -> String {
    let one_line = |s: &str| {
        s.split(['\r', '\n'])
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut out = String::with_capacity(n.up_sql.len() + n.down_sql.len() + 256);
    let mut key = |k: &str, v: &str| {
        out.push_str("-- ");
        out.push_str(k);
        out.push(':');
        if !v.is_empty() {
            out.push(' ');
            out.push_str(v);
        }
        out.push('\n');
    };
    key("revision", &n.revision);
    if !n.down_revisions.is_empty() {
        key("down_revision", &n.down_revisions.join(", "));
    }
    key("message", &one_line(&n.message));
    if !n.created.trim().is_empty() {
        key("created", n.created.trim());
    }
    if !n.branch_labels.is_empty() {
        key("branch_labels", &n.branch_labels.join(", "));
    }
    if !n.depends_on.is_empty() {
        key("depends_on", &n.depends_on.join(", "));
    }
    if !n.transactional {
        key("transactional", "false");
    }
    let mut section = |marker: &str, sql: &str| {
        out.push('\n');
        out.push_str(marker);
        out.push('\n');
        let sql = sql.trim_end();
        let sql = sql.trim_start_matches(['\r', '\n']);
        if !sql.is_empty() {
            out.push_str(sql);
            out.push('\n');
        }
    };
    section(UP_MARKER, &n.up_sql);
    section(DOWN_MARKER, &n.down_sql);
    out
}

/// The file name for a new script: `<rev>_<slug>.sql`, where the slug is the message in
/// lowercase with every run of characters other than ASCII letters and digits turned into one
/// `_`, without leading or trailing `_`, at most 40 characters. An empty slug gives
/// `<rev>.sql`.
pub fn file_name_for(revision: &str, message: &str) -> String {
    let mut slug = String::with_capacity(message.len().min(48));
    for c in message.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('_') {
            slug.push('_');
        }
        if slug.len() >= 40 {
            break;
        }
    }
    slug.truncate(40);
    let slug = slug.trim_end_matches('_');
    if slug.is_empty() {
        format!("{revision}.sql")
    } else {
        format!("{revision}_{slug}.sql")
    }
}

/// Checks a revision id (also used for branch labels and `depends_on` items): 1 to 32
/// characters; no whitespace or control characters; none of `@` (`label@head`), `-` and `+`
/// (relative revisions like `head-1`), `:` (ranges), `,` (lists), `/` or `\` (file names); not
/// one of the reserved words `base`, `head`, `heads`, `none`, `current` (any case). Returns a
/// usage error saying why.
pub fn validate_revision_id(id: &str) -> Result<()> {
    let hint = "revision ids are 1 to 32 characters (like '002' or 'a1b2c3d4e5f6') with no \
                whitespace, no control characters and none of '@' '-' '+' ':' ',' '/' '\\', \
                and are not a reserved word (base, head, heads, none, current)";
    let bad = |why: String| {
        Err(Error::usage(format!("invalid revision id '{id}': {why}")).with_hint(hint))
    };
    let len = id.chars().count();
    if len == 0 {
        return Err(Error::usage("invalid revision id '': it is empty").with_hint(hint));
    }
    if len > 32 {
        return bad(format!("it is {len} characters long; the limit is 32"));
    }
    if let Some(c) = id.chars().find(|c| c.is_whitespace() || c.is_control()) {
        let what = if c.is_whitespace() {
            "whitespace"
        } else {
            "a control character"
        };
        return bad(format!("it contains {what} ({c:?})"));
    }
    if let Some(c) = id.chars().find(|c| "@-+:,/\\".contains(*c)) {
        let why = match c {
            '@' => "'@' separates a branch label from a revision, as in 'label@head'",
            '-' | '+' => "'-' and '+' are used for relative revisions, as in 'head-1'",
            ':' => "':' separates the ends of a range, as in 'base:head'",
            ',' => "',' separates the items of a list",
            _ => "'/' and '\\' cannot be used in file names",
        };
        return bad(format!("it contains '{c}' ({why})"));
    }
    if ["base", "head", "heads", "none", "current"]
        .iter()
        .any(|w| w.eq_ignore_ascii_case(id))
    {
        return bad("it is a reserved word".to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    const EXAMPLE: &str = "-- revision: 002
-- down_revision: 001
-- message: server settings table
-- created: 2026-11-22T10:00:00Z

-- migrate:up
CREATE TABLE server_settings (key text PRIMARY KEY, value jsonb NOT NULL);

-- migrate:down
DROP TABLE server_settings;
";

    fn p(text: &str) -> Result<Script> {
        parse_script(Path::new("migrations/002_x.sql"), text.as_bytes())
    }

    fn perr(text: &str) -> Error {
        let e = p(text).expect_err("should fail");
        assert_eq!(e.kind, ErrorKind::Script, "{e}");
        assert!(e.message.starts_with("migrations/002_x.sql:"), "{e}");
        assert!(e.hint.is_some(), "no hint: {e}");
        e
    }

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

    fn script_text(rev: &str, down: &str) -> String {
        format!("-- revision: {rev}\n-- down_revision: {down}\n\n-- migrate:up\nSELECT {rev:?};\n")
    }

    #[test]
    fn parses_the_example() {
        let s = p(EXAMPLE).unwrap();
        assert_eq!(s.path, Path::new("migrations/002_x.sql"));
        assert_eq!(s.revision, "002");
        assert_eq!(s.down_revisions, ["001"]);
        assert!(s.depends_on.is_empty() && s.branch_labels.is_empty());
        assert_eq!(s.message, "server settings table");
        assert_eq!(s.created.as_deref(), Some("2026-11-22T10:00:00Z"));
        assert!(s.transactional);
        assert_eq!(
            s.up,
            Section {
                sql:
                    "CREATE TABLE server_settings (key text PRIMARY KEY, value jsonb NOT NULL);\n\n"
                        .into(),
                line: 7
            }
        );
        assert_eq!(
            s.down,
            Some(Section {
                sql: "DROP TABLE server_settings;\n".into(),
                line: 10
            })
        );
        assert_eq!(
            s.checksum,
            checksum(&format!(
                "down_revision: 001\n{}",
                &EXAMPLE[EXAMPLE.find("-- migrate:up").unwrap()..]
            ))
        );
        assert_eq!(s.checksum.len(), 64);

        let node = s.to_node();
        assert_eq!(
            node,
            RevisionNode {
                id: "002".into(),
                down_revisions: vec!["001".into()],
                depends_on: vec![],
                branch_labels: vec![],
                message: "server settings table".into(),
                source: "migrations/002_x.sql".into(),
            }
        );
    }

    #[test]
    fn all_keys_and_lists() {
        let s = p(
            "-- A comment before the keys.\n--\n-- revision: m1\n-- down_revision: a1, b2 ,c3\n\
                   -- branch_labels: feature\n-- depends_on: x9,y8\n-- transactional: false\n\
                   ---- another comment ----\n-- migrate:up\n",
        )
        .unwrap();
        assert_eq!(s.down_revisions, ["a1", "b2", "c3"]);
        assert_eq!(s.branch_labels, ["feature"]);
        assert_eq!(s.depends_on, ["x9", "y8"]);
        assert!(!s.transactional);
        assert_eq!(s.message, "");
        assert_eq!(s.created, None);
        assert_eq!(
            s.up,
            Section {
                sql: String::new(),
                line: 10
            }
        );
        assert_eq!(s.down, None);
    }

    #[test]
    fn root_revisions() {
        for header in [
            "",
            "-- down_revision: none\n",
            "-- down_revision: None\n",
            "-- down_revision:\n",
        ] {
            let s = p(&format!(
                "-- revision: 001\n{header}-- migrate:up\nSELECT 1;\n"
            ))
            .unwrap();
            assert!(s.down_revisions.is_empty(), "{header}");
        }
    }

    #[test]
    fn transactional_values() {
        let t = |v: &str| {
            p(&format!(
                "-- revision: 1\n-- transactional: {v}\n-- migrate:up\n"
            ))
            .map(|s| s.transactional)
        };
        assert!(t("true").unwrap());
        assert!(!t("false").unwrap());
        assert!(!t("False").unwrap());
        let e = perr("-- revision: 1\n-- transactional: no\n-- migrate:up\n");
        assert!(
            e.message
                .starts_with("migrations/002_x.sql:2: transactional must be"),
            "{e}"
        );
    }

    #[test]
    fn unknown_keys_are_errors_with_suggestions() {
        let e = perr("-- revision: 002\n-- down_revison: 001\n-- migrate:up\n");
        assert_eq!(
            e.message,
            "migrations/002_x.sql:2: unknown header key 'down_revison' (did you mean 'down_revision'?)"
        );
        assert!(
            e.hint
                .as_deref()
                .unwrap()
                .contains("revision, down_revision, message"),
            "{e}"
        );
        let suggest =
            |k: &str| perr(&format!("-- revision: 002\n-- {k}: x\n-- migrate:up\n")).message;
        assert!(suggest("Revision").contains("did you mean 'revision'?"));
        assert!(suggest("down-revision").contains("did you mean 'down_revision'?"));
        assert!(suggest("transaction").contains("did you mean 'transactional'?"));
        assert!(suggest("depends").contains("did you mean 'depends_on'?"));
        assert!(suggest("branch_label").contains("did you mean 'branch_labels'?"));
        assert!(suggest("mesage").contains("did you mean 'message'?"));
        let e = suggest("note");
        assert!(
            e.contains("unknown header key 'note'") && !e.contains("did you mean"),
            "{e}"
        );
    }

    #[test]
    fn plain_comments_in_the_header_are_ignored() {
        let s = p("-- Adds the settings table. See issue #12\n-- revision: 002\n-- 10:30 is not a key\n\n-- migrate:up\n").unwrap();
        assert_eq!(s.revision, "002");
        // A space before the colon still makes a key.
        let s = p("-- revision : 002\n--down_revision:001\n-- migrate:up\n").unwrap();
        assert_eq!(
            (s.revision.as_str(), s.down_revisions.as_slice()),
            ("002", ["001".to_string()].as_slice())
        );
        let e = perr("-- revision: 002\n-- down_revison : 001\n-- migrate:up\n");
        assert!(
            e.message.contains("unknown header key 'down_revison'"),
            "{e}"
        );
    }

    #[test]
    fn duplicate_keys() {
        let e = perr("-- revision: 002\n-- message: a\n\n-- message: b\n-- migrate:up\n");
        assert_eq!(
            e.message,
            "migrations/002_x.sql:4: header key 'message' given twice (first on line 2)"
        );
    }

    #[test]
    fn revision_is_required_and_validated() {
        let e = perr("-- message: a\n-- migrate:up\n");
        assert!(e.message.contains("no '-- revision: <id>'"), "{e}");
        let e = perr("\n-- revision: a-b\n-- migrate:up\n");
        assert!(
            e.message
                .starts_with("migrations/002_x.sql:2: invalid revision id 'a-b': it contains '-'"),
            "{e}"
        );
        let e = perr("-- revision:\n-- migrate:up\n");
        assert!(e.message.contains("empty"), "{e}");
        let e = perr("-- revision: 1\n-- down_revision: 0, 1\n-- migrate:up\n");
        assert!(
            e.message.starts_with("migrations/002_x.sql:2:") && e.message.contains("itself"),
            "{e}"
        );
        let e = perr("-- revision: 1\n-- down_revision: 0,,2\n-- migrate:up\n");
        assert!(e.message.contains("empty item"), "{e}");
        let e = perr("-- revision: 1\n-- depends_on: 0, 0\n-- migrate:up\n");
        assert!(e.message.contains("listed twice"), "{e}");
        let e = perr("-- revision: 1\n-- branch_labels: my label\n-- migrate:up\n");
        assert!(
            e.message.contains(
                "in branch_labels: invalid revision id 'my label': it contains whitespace"
            ),
            "{e}"
        );
    }

    #[test]
    fn validate_ids() {
        for ok in ["001", "a1b2c3d4e5f6", "x_y.z", "Ä1", &"a".repeat(32)] {
            assert!(validate_revision_id(ok).is_ok(), "{ok}");
        }
        for (bad, why) in [
            ("", "empty"),
            (&"a".repeat(33), "33 characters"),
            ("a b", "whitespace"),
            ("a\tb", "whitespace"),
            ("a@b", "'@'"),
            ("a-b", "'-'"),
            ("a+b", "'+'"),
            ("a:b", "':'"),
            ("a,b", "','"),
            ("a/b", "'/'"),
            ("head", "reserved"),
            ("BASE", "reserved"),
            ("current", "reserved"),
            ("Current", "reserved"),
        ] {
            let e = validate_revision_id(bad).expect_err(bad);
            assert!(e.message.contains(why), "{bad}: {e}");
            let hint = e.hint.unwrap();
            // the hint states the rule that is checked, not a narrower one
            assert!(
                hint.contains("32")
                    && hint.contains("whitespace")
                    && hint.contains("'@' '-' '+' ':' ',' '/' '\\'")
                    && hint.contains("current"),
                "{hint}"
            );
        }
    }

    #[test]
    fn section_errors() {
        let e = perr("-- revision: 1\nCREATE TABLE t ();\n-- migrate:up\n");
        assert!(
            e.message
                .starts_with("migrations/002_x.sql:2: SQL before the '-- migrate:up' line"),
            "{e}"
        );
        let e = perr("-- revision: 1\n\nSELECT 1;\n");
        assert!(
            e.message.starts_with("migrations/002_x.sql:3: SQL before"),
            "{e}"
        );
        let e = perr("-- revision: 1\n-- message: no sections\n");
        assert!(e.message.contains("without a '-- migrate:up' line"), "{e}");
        let e = perr("");
        assert!(
            e.message
                .starts_with("migrations/002_x.sql:1: reached the end"),
            "{e}"
        );
        let e = perr("-- revision: 1\n-- migrate:down\n-- migrate:up\n");
        assert!(
            e.message
                .starts_with("migrations/002_x.sql:2: '-- migrate:down' before"),
            "{e}"
        );
        let e = perr("-- revision: 1\n-- migrate:up\n-- migrate:down\n-- migrate:up\n");
        assert!(
            e.message
                .starts_with("migrations/002_x.sql:4: '-- migrate:up' after"),
            "{e}"
        );
        let e = perr("-- revision: 1\n-- migrate:up\n-- migrate:up\n");
        assert!(
            e.message
                .starts_with("migrations/002_x.sql:3: a second '-- migrate:up'"),
            "{e}"
        );
        let e = perr("-- revision: 1\n-- migrate:up\n-- migrate:down\nx\n  -- migrate:down  \n");
        assert!(
            e.message
                .starts_with("migrations/002_x.sql:5: a second '-- migrate:down'"),
            "{e}"
        );
        for near in [
            "-- migrate: down",
            "--migrate:down",
            "-- Migrate:Down",
            "-- migrate:down transaction:false",
        ] {
            let e = perr(&format!(
                "-- revision: 1\n-- migrate:up\nSELECT 1;\n{near}\nSELECT 2;\n"
            ));
            assert!(
                e.message.starts_with("migrations/002_x.sql:4: ")
                    && e.message.contains("not a section marker"),
                "{e}"
            );
        }
    }

    #[test]
    fn markers_are_trimmed() {
        let s = p("-- revision: 1\n   -- migrate:up   \nA;\n\t-- migrate:down\nB;").unwrap();
        assert_eq!(
            s.up,
            Section {
                sql: "A;\n".into(),
                line: 3
            }
        );
        assert_eq!(
            s.down,
            Some(Section {
                sql: "B;".into(),
                line: 5
            })
        );
    }

    #[test]
    fn empty_down_section() {
        let s = p("-- revision: 1\n-- migrate:up\nA;\n-- migrate:down").unwrap();
        assert_eq!(
            s.down,
            Some(Section {
                sql: String::new(),
                line: 5
            })
        );
    }

    #[test]
    fn bom_and_crlf() {
        let crlf = EXAMPLE.replace('\n', "\r\n");
        let mut bytes = b"\xEF\xBB\xBF".to_vec();
        bytes.extend_from_slice(crlf.as_bytes());
        let s = parse_script(Path::new("m.sql"), &bytes).unwrap();
        let lf = p(EXAMPLE).unwrap();
        assert_eq!(s.revision, "002");
        assert_eq!(s.message, lf.message);
        assert_eq!(s.down_revisions, lf.down_revisions);
        assert_eq!(s.up.line, 7);
        assert_eq!(s.up.sql, lf.up.sql.replace('\n', "\r\n"));
        assert_eq!(s.checksum, lf.checksum);
    }

    #[test]
    fn non_utf8_is_an_error_with_its_line() {
        let mut bytes = b"-- revision: 1\n-- migrate:up\nSELECT 'caf".to_vec();
        bytes.push(0xe9);
        bytes.extend_from_slice(b"';\n");
        let e = parse_script(Path::new("migrations/002_x.sql"), &bytes).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Script);
        assert!(
            e.message.starts_with(
                "migrations/002_x.sql:3: the file is not valid UTF-8 (bad byte 0xe9 at column 12)"
            ),
            "{e}"
        );
        assert!(e.hint.unwrap().contains("UTF-8"));
    }

    #[test]
    fn checksum_ignores_cosmetics() {
        let base = "-- migrate:up\nCREATE TABLE t (x int);\n\n-- migrate:down\nDROP TABLE t;\n";
        let c = checksum(base);
        assert_eq!(c.len(), 64);
        assert!(c
            .chars()
            .all(|ch| ch.is_ascii_hexdigit() && !ch.is_ascii_uppercase()));
        assert_eq!(checksum(&base.replace('\n', "\r\n")), c, "CRLF");
        assert_eq!(checksum(&base.replace('\n', "\r")), c, "CR");
        assert_eq!(checksum(&format!("\u{feff}{base}")), c, "BOM");
        assert_eq!(
            checksum(&base.replace('\n', "  \t\n")),
            c,
            "trailing spaces"
        );
        assert_eq!(
            checksum(&format!("{base}\n\n  \n")),
            c,
            "trailing blank lines"
        );
        assert_eq!(checksum(base.trim_end()), c, "no final newline");
        assert_ne!(
            checksum(&base.replace("x int", "x bigint")),
            c,
            "SQL change"
        );
        assert_ne!(
            checksum(&base.replace("\n\n", "\n")),
            c,
            "inner blank line removed"
        );
        assert_ne!(
            checksum(&base.replace("CREATE", "  CREATE")),
            c,
            "leading indentation"
        );
        // Known value: SHA-256 of "abc".
        assert_eq!(
            checksum("abc\n"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn script_checksum_covers_the_semantic_header_fields_only() {
        let a = p(EXAMPLE).unwrap();
        let same =
            |text: &str, why: &str| assert_eq!(p(text).unwrap().checksum, a.checksum, "{why}");
        let differs =
            |text: &str, why: &str| assert_ne!(p(text).unwrap().checksum, a.checksum, "{why}");
        same(
            &EXAMPLE.replace("server settings table", "server settings tables"),
            "message",
        );
        same(&EXAMPLE.replace("2026-11-22", "2027-01-01"), "created");
        same(
            &EXAMPLE.replace("-- migrate:up", "-- branch_labels: settings\n-- migrate:up"),
            "branch_labels",
        );
        same(
            &EXAMPLE.replace("-- down_revision: 001", "--down_revision :  001  "),
            "header spacing",
        );
        same(
            &EXAMPLE.replace(
                "-- revision: 002\n-- down_revision: 001",
                "-- down_revision: 001\n-- a comment\n-- revision: 002",
            ),
            "header line order and comments",
        );
        same(
            &EXAMPLE.replace("-- migrate:up", "-- transactional: true\n-- migrate:up"),
            "transactional: true is the default",
        );
        differs(
            &EXAMPLE.replace("DROP TABLE", "DROP TABLE IF EXISTS"),
            "SQL",
        );
        differs(
            &EXAMPLE.replace("-- migrate:up", "-- transactional: false\n-- migrate:up"),
            "transactional",
        );
        differs(&EXAMPLE.replace("001", "000"), "down_revision");
        differs(
            &EXAMPLE.replace("-- down_revision: 001", "-- down_revision: 001, 000"),
            "down_revision list",
        );
        differs(&EXAMPLE.replace("-- down_revision: 001\n", ""), "no parent");
        differs(
            &EXAMPLE.replace("-- migrate:up", "-- depends_on: 000\n-- migrate:up"),
            "depends_on",
        );
        // a transactional root without dependencies: the sections alone
        let root = "-- revision: 1\n-- message: m\n-- migrate:up\nSELECT 1;\n";
        assert_eq!(
            p(root).unwrap().checksum,
            checksum("-- migrate:up\nSELECT 1;\n")
        );
    }

    #[test]
    fn split_statements_uses_file_lines() {
        let s = p("-- revision: 1\n-- transactional: false\n-- migrate:up\nCREATE INDEX CONCURRENTLY a ON t (x);\n\n-- b\nCREATE INDEX CONCURRENTLY b\n  ON t (y);\n").unwrap();
        let st = s.up.statements();
        assert_eq!(
            st,
            [
                Statement {
                    sql: "CREATE INDEX CONCURRENTLY a ON t (x)".into(),
                    line: 4
                },
                Statement {
                    sql: "CREATE INDEX CONCURRENTLY b\n  ON t (y)".into(),
                    line: 7
                },
            ]
        );
        assert_eq!(split_statements(&s.up.sql, s.up.line), st);
        assert_eq!(st[1].line_of_position(30), 8);
        assert_eq!(s.up.line_of_position(1), 4);
    }

    fn sample_new() -> NewScript {
        NewScript {
            revision: "ab12".into(),
            down_revisions: vec!["x1".into(), "y2".into()],
            depends_on: vec!["d1".into()],
            branch_labels: vec!["feature".into(), "other".into()],
            message: "add users".into(),
            created: "2026-11-22T10:00:00Z".into(),
            transactional: false,
            up_sql: "CREATE TABLE users (id int);\nCREATE INDEX ON users (id);".into(),
            down_sql: "DROP TABLE users;\n".into(),
        }
    }

    #[test]
    fn render_format() {
        let n = NewScript {
            revision: "002".into(),
            down_revisions: vec!["001".into()],
            message: "server settings table".into(),
            created: "2026-11-22T10:00:00Z".into(),
            transactional: true,
            up_sql: "CREATE TABLE server_settings (key text PRIMARY KEY, value jsonb NOT NULL);"
                .into(),
            down_sql: "DROP TABLE server_settings;".into(),
            ..Default::default()
        };
        assert_eq!(render_script(&n), EXAMPLE);
        let full = render_script(&sample_new());
        assert_eq!(
            full,
            "-- revision: ab12\n-- down_revision: x1, y2\n-- message: add users\n-- created: 2026-11-22T10:00:00Z\n\
             -- branch_labels: feature, other\n-- depends_on: d1\n-- transactional: false\n\n\
             -- migrate:up\nCREATE TABLE users (id int);\nCREATE INDEX ON users (id);\n\n\
             -- migrate:down\nDROP TABLE users;\n"
        );
        let root = render_script(&NewScript {
            revision: "001".into(),
            transactional: true,
            ..Default::default()
        });
        assert_eq!(
            root,
            "-- revision: 001\n-- message:\n\n-- migrate:up\n\n-- migrate:down\n"
        );
    }

    #[test]
    fn render_parse_round_trip() {
        for n in [
            sample_new(),
            NewScript {
                revision: "001".into(),
                transactional: true,
                ..Default::default()
            },
            NewScript {
                revision: "003".into(),
                down_revisions: vec!["002".into()],
                message: "multi\nline: message ".into(),
                transactional: true,
                up_sql: "\nSELECT 1;\n\n".into(),
                ..Default::default()
            },
        ] {
            let text = render_script(&n);
            let s = parse_script(Path::new("x.sql"), text.as_bytes())
                .unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert_eq!(s.revision, n.revision);
            assert_eq!(s.down_revisions, n.down_revisions);
            assert_eq!(s.depends_on, n.depends_on);
            assert_eq!(s.branch_labels, n.branch_labels);
            assert_eq!(
                s.message,
                n.message.split_whitespace().collect::<Vec<_>>().join(" ")
            );
            assert_eq!(s.created.unwrap_or_default(), n.created);
            assert_eq!(s.transactional, n.transactional);
            assert_eq!(s.up.sql.trim(), n.up_sql.trim());
            assert_eq!(s.down.expect("down section").sql.trim(), n.down_sql.trim());
        }
    }

    #[test]
    fn file_names() {
        assert_eq!(
            file_name_for("002", "server settings table"),
            "002_server_settings_table.sql"
        );
        assert_eq!(
            file_name_for("a1", "  Add Users (v2)! "),
            "a1_add_users_v2.sql"
        );
        assert_eq!(file_name_for("a1", "café--au lait"), "a1_caf_au_lait.sql");
        assert_eq!(file_name_for("a1", ""), "a1.sql");
        assert_eq!(file_name_for("a1", "!!! ???"), "a1.sql");
        let long = file_name_for("a1", &"word ".repeat(20));
        let slug = long
            .strip_prefix("a1_")
            .unwrap()
            .strip_suffix(".sql")
            .unwrap();
        assert!(slug.len() <= 40 && !slug.ends_with('_'), "{slug}");
        assert_eq!(
            file_name_for("a1", &"x".repeat(50)),
            format!("a1_{}.sql", "x".repeat(40))
        );
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
        std::fs::create_dir(d.0.join("dir.sql")).unwrap();
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
