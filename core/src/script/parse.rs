//! Reading one script file: the header keys, the `-- migrate:up` / `-- migrate:down`
//! sections, and every mistake a hand-edited file can have, reported as `path:line: what`
//! with a hint, because a migration that silently means something else is worse than one
//! that does not load.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use super::checksum::{checksum_header, checksums};
use super::id::validate_revision_id;
use super::{
    split_statements, Program, RoundTripExemption, Script, Section, SessionSettings, DOWN_MARKER,
    RUN_KEY, UP_MARKER,
};
use crate::error::{Error, Result};

/// The header keys, in the order [`render_script`] writes them.
const KEYS: [&str; 15] = [
    "revision",
    "down_revision",
    "message",
    "created",
    "branch_labels",
    "depends_on",
    "transactional",
    "unconverted",
    "lock_timeout",
    "statement_timeout",
    "set",
    "round_trip",
    "backfill",
    "check",
    "phase",
];

const KEY_REVISION: usize = 0;
const KEY_DOWN_REVISION: usize = 1;
const KEY_MESSAGE: usize = 2;
const KEY_CREATED: usize = 3;
const KEY_BRANCH_LABELS: usize = 4;
const KEY_DEPENDS_ON: usize = 5;
const KEY_TRANSACTIONAL: usize = 6;
const KEY_UNCONVERTED: usize = 7;
const KEY_LOCK_TIMEOUT: usize = 8;
const KEY_STATEMENT_TIMEOUT: usize = 9;
const KEY_SET: usize = 10;
const KEY_ROUND_TRIP: usize = 11;
const KEY_BACKFILL: usize = 12;
const KEY_CHECK: usize = 13;
const KEY_PHASE: usize = 14;

/// An error at `path:line`.
pub(super) fn err_at(path: &Path, line: usize, msg: impl fmt::Display) -> Error {
    Error::script(format!("{}:{}: {}", path.display(), line, msg))
}

/// Parses one script file. `path` is used in error messages and kept in the result; `bytes`
/// is the file's content. A file with several problems gives the first
/// ([`crate::script::load_scripts`] reports them all).
pub fn parse_script(path: &Path, bytes: &[u8]) -> Result<Script> {
    parse(path, bytes)
        .map(|parsed| parsed.script)
        .map_err(|mut f| f.errors.remove(0))
}

/// A parsed script and the lines of its `revision` key (where a duplicate id is reported) and
/// of its `down_revision` and `depends_on` keys (where an unknown parent is).
pub(super) struct Parsed {
    pub script: Script,
    pub revision_line: usize,
    pub down_revision_line: usize,
    pub depends_on_line: usize,
}

/// A file that does not parse: every problem found in it (at least one), in file order, and
/// its revision id when that much could be read (so that the scripts naming it as their parent
/// are not reported too).
pub(super) struct Failed {
    pub errors: Vec<Error>,
    pub revision: Option<String>,
}

impl From<Error> for Failed {
    fn from(e: Error) -> Failed {
        Failed {
            errors: vec![e],
            revision: None,
        }
    }
}

/// A header key's value (trimmed) and its line.
#[derive(Debug, Clone, Copy)]
struct HeaderValue<'a> {
    value: &'a str,
    line: usize,
}

/// Where a section's SQL starts: the byte after its marker line, and that line's number.
#[derive(Debug, Clone, Copy)]
struct SectionStart {
    offset: usize,
    line: usize,
}

/// The file cut into its parts, before the header values are checked.
struct Layout<'a> {
    /// By index in [`KEYS`].
    header: [Option<HeaderValue<'a>>; KEYS.len()],
    /// Where the `-- migrate:up` line starts (the checksum covers the file from there).
    up_marker: usize,
    up: SectionStart,
    /// Where the up section ends: the `-- migrate:down` line, or the end of the file.
    up_end: usize,
    down: Option<SectionStart>,
}

/// The header's values, checked.
struct Fields<'a> {
    revision: &'a str,
    revision_line: usize,
    down_revisions: Vec<String>,
    branch_labels: Vec<String>,
    depends_on: Vec<String>,
    transactional: bool,
    session: SessionSettings,
    round_trip: Option<RoundTripExemption>,
}

/// Parses a script: text, layout, header fields. Every problem of the layout and of the
/// header is collected (a file with a bad key and a bad value is fixed in one pass); a text that
/// is not UTF-8 stops at that.
pub(super) fn parse(path: &Path, bytes: &[u8]) -> std::result::Result<Parsed, Failed> {
    let text = decode(path, bytes)?;
    let mut errors = Vec::new();
    let layout = scan(path, text, &mut errors);
    let fields = layout
        .as_ref()
        .and_then(|l| read_fields(path, &l.header, &mut errors));
    let programs = layout.as_ref().map(|l| {
        let up_end = l.up_end.max(l.up.offset);
        (
            program_of(path, &text[l.up.offset..up_end], l.up.line, &mut errors),
            l.down
                .and_then(|d| program_of(path, &text[d.offset..], d.line, &mut errors)),
        )
    });
    let (Some(layout), Some(fields), true) = (layout, fields, errors.is_empty()) else {
        errors.sort_by_key(line_of_error);
        return Err(Failed {
            revision: revision_of(text),
            errors,
        });
    };
    let (up_program, down_program) = programs.unwrap_or_default();
    let up = Section {
        sql: text[layout.up.offset..layout.up_end.max(layout.up.offset)].to_string(),
        line: layout.up.line,
        program: up_program,
    };
    let down = layout.down.map(|start| Section {
        sql: text[start.offset..].to_string(),
        line: start.line,
        program: down_program,
    });
    let backfill = match layout.header[KEY_BACKFILL] {
        None => None,
        Some(h) if !fields.transactional => {
            return Err(Failed {
                revision: Some(fields.revision.to_string()),
                errors: vec![err_at(
                    path,
                    h.line,
                    "a backfill cannot be 'transactional: false': it runs each range in a transaction of its own",
                )
                .with_hint("remove the '-- transactional: false' line")],
            })
        }
        Some(h) => match super::backfill::read(path, h.line, h.value, &up) {
            Ok(b) => Some(b),
            Err(e) => {
                return Err(Failed {
                    revision: Some(fields.revision.to_string()),
                    errors: vec![e],
                })
            }
        },
    };
    let fail = |e: Error| Failed {
        revision: Some(fields.revision.to_string()),
        errors: vec![e],
    };
    let check = match layout.header[KEY_CHECK] {
        None => None,
        Some(h) if backfill.is_some() => {
            return Err(fail(
                err_at(
                    path,
                    h.line,
                    "a revision cannot be both a backfill and a check",
                )
                .with_hint("put the check in a revision of its own, after the backfill"),
            ))
        }
        Some(h) => Some(super::check::read_check(path, h.line, h.value, &up).map_err(fail)?),
    };
    let phase = match layout.header[KEY_PHASE] {
        None => super::Phase::Ordinary,
        Some(h) => super::check::read_phase(path, h.line, h.value).map_err(fail)?,
    };
    let mut header = checksum_header(
        &fields.down_revisions,
        &fields.depends_on,
        fields.transactional,
        backfill.as_ref().map(|b| b.header_text()).as_deref(),
    );
    if let Some(c) = &check {
        header.push_str(&format!("check: {}\n", c.header_text()));
    }
    let up_end = header.len() + layout.up_end.max(layout.up_marker) - layout.up_marker;
    let (checksum, with_down) =
        checksums(&format!("{header}{}", &text[layout.up_marker..]), up_end);
    let value = |k: usize| layout.header[k].map(|h| h.value);
    let script = Script {
        path: path.to_path_buf(),
        revision: fields.revision.to_string(),
        down_revisions: fields.down_revisions,
        depends_on: fields.depends_on,
        branch_labels: fields.branch_labels,
        message: value(KEY_MESSAGE).unwrap_or("").to_string(),
        created: value(KEY_CREATED)
            .filter(|v| !v.is_empty())
            .map(str::to_string),
        transactional: fields.transactional,
        session: fields.session,
        round_trip: fields.round_trip,
        unconverted: value(KEY_UNCONVERTED).map(|v| {
            if v.is_empty() {
                "no reason given".to_string()
            } else {
                v.to_string()
            }
        }),
        legacy_checksum: (with_down != checksum).then_some(with_down),
        backfill,
        check,
        phase,
        up,
        down,
        checksum,
    };
    let line_of = |k: usize| layout.header[k].map_or(1, |h| h.line);
    Ok(Parsed {
        script,
        revision_line: fields.revision_line,
        down_revision_line: line_of(KEY_DOWN_REVISION),
        depends_on_line: line_of(KEY_DEPENDS_ON),
    })
}

/// The program of a section that is a program step: its one `-- run: <command>` line, when it
/// has one. SQL beside it, an empty command and a second `-- run:` line are problems at their
/// lines (pushed to `errors`; None then).
fn program_of(
    path: &Path,
    sql: &str,
    first_line: usize,
    errors: &mut Vec<Error>,
) -> Option<Program> {
    let mut found: Option<Program> = None;
    let mut bad = false;
    for (i, raw) in sql.lines().enumerate() {
        let line = first_line + i;
        let Some((key, command)) = raw.trim().strip_prefix("--").and_then(header_key) else {
            continue;
        };
        if key != RUN_KEY {
            continue;
        }
        if command.is_empty() {
            bad = true;
            errors.push(
                err_at(path, line, "'-- run:' without a command").with_hint(
                    "write the command to run after '-- run:' (e.g. '-- run: python data/backfill.py'), \
                     or remove the line",
                ),
            );
        } else if let Some(first) = &found {
            bad = true;
            errors.push(
                err_at(
                    path,
                    line,
                    format_args!(
                        "a second '-- run:' line in one section (the first is on line {})",
                        first.line
                    ),
                )
                .with_hint(
                    "a program step runs one command: join them in one (a script file that runs \
                     both, or 'a && b'), or put the second in a revision of its own",
                ),
            );
        } else {
            found = Some(Program {
                command: command.to_string(),
                line,
            });
        }
    }
    let first = found.as_ref()?;
    if let Some(stmt) = split_statements(sql, first_line).first() {
        errors.push(
            err_at(
                path,
                stmt.line,
                format_args!(
                    "SQL beside '-- run:' (line {}): a section is either SQL or one program",
                    first.line
                ),
            )
            .with_hint(
                "move the SQL to a revision of its own (before or after this one), or run it \
                 from the program",
            ),
        );
        bad = true;
    }
    if bad {
        None
    } else {
        found
    }
}

/// The line number in an error's `path:line: ...` message (for sorting a file's problems).
fn line_of_error(e: &Error) -> usize {
    e.message
        .split(": ")
        .next()
        .and_then(|p| p.rsplit(':').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The id of a `-- revision: <id>` header line that is a valid id, if the file has one.
fn revision_of(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .take_while(|l| *l != UP_MARKER)
        .filter_map(|l| l.strip_prefix("--").and_then(header_key))
        .find(|(k, _)| *k == "revision")
        .map(|(_, v)| v.to_string())
        .filter(|v| validate_revision_id(v).is_ok())
}

/// The file as text: a BOM is skipped; anything but UTF-8 is an error at its line and column,
/// and so is a NUL character (PostgreSQL can neither store nor run text containing one).
fn decode<'a>(path: &Path, bytes: &'a [u8]) -> Result<&'a str> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(t) => match t.find('\0') {
            None => Ok(t),
            Some(at) => {
                let (line, column) = line_and_column(&bytes[..at]);
                Err(err_at(
                    path,
                    line,
                    format_args!("the file contains a NUL character (at column {column})"),
                )
                .with_hint(
                    "PostgreSQL cannot store or run text with a NUL (0x00) character: remove it \
                     (is this a binary file or a UTF-16 file saved with a .sql name?)",
                ))
            }
        },
        Err(e) => {
            let (line, column) = line_and_column(&bytes[..e.valid_up_to()]);
            Err(err_at(
                path,
                line,
                format_args!(
                    "the file is not valid UTF-8 (bad byte 0x{:02x} at column {column})",
                    bytes[e.valid_up_to()]
                ),
            )
            .with_hint("save the file as UTF-8 (migration scripts are read as UTF-8 text)"))
        }
    }
}

/// The 1-based line and column (in bytes) of the byte that follows `before`.
fn line_and_column(before: &[u8]) -> (usize, usize) {
    let line = before.iter().filter(|&&c| c == b'\n').count() + 1;
    let column = before.len()
        - before
            .iter()
            .rposition(|&c| c == b'\n')
            .map_or(0, |p| p + 1)
        + 1;
    (line, column)
}

/// Finds the section markers and reads the header lines before `-- migrate:up`; every problem
/// goes to `errors` (the line in question is skipped). None without an up marker.
fn scan<'a>(path: &Path, text: &'a str, errors: &mut Vec<Error>) -> Option<Layout<'a>> {
    let mut header: [Option<HeaderValue>; KEYS.len()] = Default::default();
    let mut up_marker: Option<usize> = None;
    let mut up: Option<SectionStart> = None;
    let mut up_end = text.len();
    let mut down: Option<SectionStart> = None;
    let mut skip_to_up = false;

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
        let after_marker = SectionStart {
            offset,
            line: line_no + 1,
        };

        if trimmed == UP_MARKER {
            match check_up_marker(path, line_no, up.is_some(), down.is_some()) {
                Ok(()) => {
                    up_marker = Some(line_start);
                    up = Some(after_marker);
                }
                Err(e) => errors.push(e),
            }
        } else if trimmed == DOWN_MARKER {
            match check_down_marker(path, line_no, up.is_some(), down.is_some()) {
                Ok(()) => {
                    up_end = line_start;
                    down = Some(after_marker);
                }
                Err(e) => {
                    // a down section before the up section: its SQL is no header
                    skip_to_up = up.is_none();
                    errors.push(e)
                }
            }
        } else if looks_like_marker(trimmed) {
            errors.push(err_at(
                path,
                line_no,
                format_args!("'{trimmed}' is not a section marker"),
            )
            .with_hint(
                "section markers are exactly '-- migrate:up' and '-- migrate:down' on a line of their own \
                 (to run without a transaction, put '-- transactional: false' in the header)",
            ));
        } else if up.is_none() && !skip_to_up {
            if let Err(e) = header_line(path, line_no, trimmed, &mut header) {
                // one "SQL before '-- migrate:up'" per file, not one per line of SQL
                skip_to_up = e.message.contains("SQL before the");
                errors.push(e);
            }
        }
    }

    let Some(up) = up else {
        errors.push(
            err_at(
                path,
                line_no.max(1),
                "reached the end of the file without a '-- migrate:up' line",
            )
            .with_hint("put a line '-- migrate:up' between the header and the upgrade SQL"),
        );
        return None;
    };
    Some(Layout {
        header,
        up_marker: up_marker.unwrap_or(0),
        up,
        up_end,
        down,
    })
}

fn check_up_marker(path: &Path, line_no: usize, seen_up: bool, seen_down: bool) -> Result<()> {
    if seen_down {
        return Err(err_at(path, line_no, "'-- migrate:up' after '-- migrate:down'")
            .with_hint("a script has one '-- migrate:up' section, then optionally one '-- migrate:down' section"));
    }
    if seen_up {
        return Err(err_at(path, line_no, "a second '-- migrate:up' line")
            .with_hint("a script has exactly one '-- migrate:up' section; remove the extra marker or move the SQL to a new revision"));
    }
    Ok(())
}

fn check_down_marker(path: &Path, line_no: usize, seen_up: bool, seen_down: bool) -> Result<()> {
    if !seen_up {
        return Err(
            err_at(path, line_no, "'-- migrate:down' before '-- migrate:up'").with_hint(
                "put the '-- migrate:up' section (the upgrade SQL) first, then '-- migrate:down'",
            ),
        );
    }
    if seen_down {
        return Err(
            err_at(path, line_no, "a second '-- migrate:down' line").with_hint(
                "a script has at most one '-- migrate:down' section; remove the extra marker",
            ),
        );
    }
    Ok(())
}

/// One line of the header (trimmed): blank, a comment, or a `-- key: value` line stored in
/// `header`. SQL, unknown keys and repeated keys are errors.
fn header_line<'a>(
    path: &Path,
    line_no: usize,
    trimmed: &'a str,
    header: &mut [Option<HeaderValue<'a>>; KEYS.len()],
) -> Result<()> {
    if trimmed.is_empty() {
        return Ok(());
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
        return Ok(()); // an ordinary comment
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
    if let Some(first) = header[k] {
        return Err(err_at(
            path,
            line_no,
            format_args!(
                "header key '{key}' given twice (first on line {})",
                first.line
            ),
        )
        .with_hint("keep only one of the two lines"));
    }
    header[k] = Some(HeaderValue {
        value,
        line: line_no,
    });
    Ok(())
}

/// Checks the header values, in key order: `revision` (required), `down_revision`,
/// `branch_labels`, `depends_on`, `transactional`, the session settings, `round_trip`. Every
/// problem goes to `errors`; None when there was one.
fn read_fields<'a>(
    path: &Path,
    header: &[Option<HeaderValue<'a>>; KEYS.len()],
    errors: &mut Vec<Error>,
) -> Option<Fields<'a>> {
    let before = errors.len();
    let mut ok = |r: Result<()>| {
        if let Err(e) = r {
            errors.push(e);
        }
    };
    let (revision, revision_line) = match header[KEY_REVISION] {
        None => {
            ok(Err(err_at(path, 1, "no '-- revision: <id>' header line")
                .with_hint(
                    "every script needs a '-- revision: <id>' line before '-- migrate:up'",
                )));
            ("", 1)
        }
        Some(h) => {
            ok(validate_revision_id(h.value)
                .map_err(|e| err_at(path, h.line, &e.message).with_hint(hint_of(&e))));
            (h.value, h.line)
        }
    };
    let mut value_of = |r: Result<Vec<String>>| match r {
        Ok(v) => v,
        Err(e) => {
            ok(Err(e));
            Vec::new()
        }
    };
    let list = |k: usize, key: &str| match header[k] {
        None => Ok(Vec::new()),
        Some(h) => id_list(path, h.line, key, h.value),
    };
    let down_revisions = value_of(match header[KEY_DOWN_REVISION] {
        Some(h) if h.value.is_empty() || h.value.eq_ignore_ascii_case("none") => Ok(Vec::new()),
        Some(h) => list(KEY_DOWN_REVISION, "down_revision").and_then(|ids| {
            if ids.iter().any(|id| id == revision) {
                Err(err_at(
                    path,
                    h.line,
                    format_args!("revision '{revision}' lists itself as its down_revision"),
                )
                .with_hint(
                    "down_revision names the parent revision(s); use 'none' for the first revision",
                ))
            } else {
                Ok(ids)
            }
        }),
        None => Ok(Vec::new()),
    });
    let branch_labels = value_of(list(KEY_BRANCH_LABELS, "branch_labels"));
    let depends_on = value_of(list(KEY_DEPENDS_ON, "depends_on"));
    let transactional = match header[KEY_TRANSACTIONAL] {
        None => true,
        Some(h) if h.value.eq_ignore_ascii_case("true") => true,
        Some(h) if h.value.eq_ignore_ascii_case("false") => false,
        Some(h) => {
            ok(Err(err_at(path, h.line, format_args!("transactional must be 'true' or 'false', not '{}'", h.value))
                .with_hint("write '-- transactional: false' to run the script statement by statement without a transaction, or remove the line")));
            true
        }
    };
    let mut session = SessionSettings::default();
    match timeout(path, header[KEY_LOCK_TIMEOUT], "lock_timeout") {
        Ok(t) => session.lock_timeout = t,
        Err(e) => ok(Err(e)),
    }
    match timeout(path, header[KEY_STATEMENT_TIMEOUT], "statement_timeout") {
        Ok(t) => session.statement_timeout = t,
        Err(e) => ok(Err(e)),
    }
    if let Some(h) = header[KEY_SET] {
        match settings_list(path, h) {
            Ok(set) => session.set = set,
            Err(e) => ok(Err(e)),
        }
    }
    let round_trip = match header[KEY_ROUND_TRIP].map(|h| round_trip_exemption(path, h)) {
        Some(Ok(r)) => Some(r),
        Some(Err(e)) => {
            ok(Err(e));
            None
        }
        None => None,
    };
    if errors.len() > before {
        return None;
    }
    Some(Fields {
        revision,
        revision_line,
        down_revisions,
        branch_labels,
        depends_on,
        transactional,
        session,
        round_trip,
    })
}

/// `-- round_trip: keeps extension vector, schema audit (why)`: objects the down section
/// leaves as they are, and the reason, which is required.
fn round_trip_exemption(path: &Path, h: HeaderValue) -> Result<RoundTripExemption> {
    let bad = |what: String| {
        err_at(path, h.line, format_args!("round_trip: {what}")).with_hint(format!(
            "write '-- round_trip: keeps extension vector (the reason the down section keeps it)'; \
             the kinds are {}",
            super::ROUND_TRIP_KINDS.join(", ")
        ))
    };
    let (list, reason) = match (h.value.find('('), h.value.ends_with(')')) {
        (Some(open), true) => (
            &h.value[..open],
            h.value[open + 1..h.value.len() - 1].trim(),
        ),
        _ => {
            return Err(bad(
                "the reason is missing: end the line with it in parentheses".into(),
            ))
        }
    };
    if reason.is_empty() {
        return Err(bad("the reason in parentheses is empty".into()));
    }
    let list = list.trim();
    let Some(items) = list.strip_prefix("keeps ") else {
        return Err(bad(format!("'{list}' does not start with 'keeps'")));
    };
    let mut keeps = Vec::new();
    for item in items.split(',').map(str::trim) {
        let mut words = item.split_whitespace();
        let (Some(kind), Some(name), None) = (words.next(), words.next(), words.next()) else {
            return Err(bad(format!("'{item}' is not '<kind> <name>'")));
        };
        let kind = kind.to_ascii_lowercase();
        if !super::ROUND_TRIP_KINDS.contains(&kind.as_str()) {
            return Err(bad(format!("unknown kind '{kind}' in '{item}'")));
        }
        keeps.push((kind, name.to_string()));
    }
    Ok(RoundTripExemption {
        keeps,
        reason: reason.to_string(),
    })
}

/// `-- lock_timeout: 30s`: a duration; `0` turns the run's timeout off for this script.
fn timeout(path: &Path, h: Option<HeaderValue>, key: &str) -> Result<Option<Duration>> {
    let Some(h) = h else { return Ok(None) };
    crate::config::parse_duration(h.value)
        .map(Some)
        .map_err(|_| {
            err_at(
                path,
                h.line,
                format_args!("{key} must be a duration, not '{}'", h.value),
            )
            .with_hint(format!(
                "write it like '-- {key}: 30s' (500ms, 5m; 0 turns it off for this script)"
            ))
        })
}

/// `-- set: maintenance_work_mem=2GB, max_parallel_maintenance_workers=3`: names are
/// PostgreSQL setting names (letters, digits, `_` and `.`), values are sent as quoted literals.
fn settings_list(path: &Path, h: HeaderValue) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for item in h.value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let bad = || {
            err_at(
                path,
                h.line,
                format_args!("set: '{item}' is not name=value"),
            )
            .with_hint(
                "write '-- set: maintenance_work_mem=2GB, max_parallel_maintenance_workers=3'",
            )
        };
        let (name, value) = item.split_once('=').ok_or_else(bad)?;
        let (name, value) = (name.trim(), value.trim().trim_matches('\''));
        let valid_name = !name.is_empty()
            && name.starts_with(|c: char| c.is_ascii_alphabetic())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
        if !valid_name || value.is_empty() {
            return Err(bad());
        }
        out.push((name.to_ascii_lowercase(), value.to_string()));
    }
    Ok(out)
}

fn hint_of(e: &Error) -> String {
    e.hint.clone().unwrap_or_default()
}

/// `comment` is a header comment after its `--`. If it has the form ` word: value`, returns
/// (word, trimmed value). A word is ASCII letters, digits, `_` and `-`, starting with a letter;
/// spaces may come before the colon.
pub(super) fn header_key(comment: &str) -> Option<(&str, &str)> {
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
pub(super) fn edit_distance(a: &str, b: &str) -> usize {
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

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

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
                line: 7,
                program: None,
            }
        );
        assert_eq!(
            s.down,
            Some(Section {
                sql: "DROP TABLE server_settings;\n".into(),
                line: 10,
                program: None,
            })
        );
        let up = EXAMPLE.find("-- migrate:up").unwrap();
        let down = EXAMPLE.find("-- migrate:down").unwrap();
        assert_eq!(
            s.checksum,
            checksum(&format!("down_revision: 001\n{}", &EXAMPLE[up..down]))
        );
        assert_eq!(
            s.legacy_checksum.as_deref(),
            Some(checksum(&format!("down_revision: 001\n{}", &EXAMPLE[up..])).as_str())
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
                programs: Vec::new(),
                contract: false,
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
                line: 10,
                program: None,
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
    fn session_settings_for_one_script() {
        let s = p("-- revision: 1\n-- lock_timeout: 30s\n-- statement_timeout: 0\n\
                   -- set: maintenance_work_mem=2GB, max_parallel_maintenance_workers = 3\n-- migrate:up\n")
        .unwrap();
        assert_eq!(
            s.session.lock_timeout,
            Some(std::time::Duration::from_secs(30))
        );
        assert_eq!(s.session.statement_timeout, Some(std::time::Duration::ZERO));
        assert_eq!(
            s.session.set,
            [
                ("maintenance_work_mem".to_string(), "2GB".to_string()),
                (
                    "max_parallel_maintenance_workers".to_string(),
                    "3".to_string()
                )
            ]
        );
        let plain = p("-- revision: 1\n-- migrate:up\n").unwrap();
        assert_eq!(plain.session, SessionSettings::default());
        // editing them does not change what the script does to the schema
        let a = p("-- revision: 1\n-- set: work_mem=1MB\n-- migrate:up\nSELECT 1;\n").unwrap();
        let b = p("-- revision: 1\n-- migrate:up\nSELECT 1;\n").unwrap();
        assert_eq!(a.checksum, b.checksum);

        let e = perr("-- revision: 1\n-- lock_timeout: soon\n-- migrate:up\n");
        assert!(
            e.message
                .contains(":2: lock_timeout must be a duration, not 'soon'"),
            "{e}"
        );
        let e = perr("-- revision: 1\n-- set: work_mem\n-- migrate:up\n");
        assert!(
            e.message.contains(":2: set: 'work_mem' is not name=value"),
            "{e}"
        );
        let e = perr("-- revision: 1\n-- set: x;drop=1\n-- migrate:up\n");
        assert!(e.message.contains("is not name=value"), "{e}");
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
                line: 3,
                program: None,
            }
        );
        assert_eq!(
            s.down,
            Some(Section {
                sql: "B;".into(),
                line: 5,
                program: None,
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
                line: 5,
                program: None,
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
    fn nul_bytes_are_refused_with_their_line() {
        // PostgreSQL can neither store nor run text with a NUL character.
        let e = perr("-- revision: 002\n\n-- migrate:up\nSELECT 1;\nSELECT 'a\0b';\n");
        assert!(
            e.message
                .starts_with("migrations/002_x.sql:5: the file contains a NUL character"),
            "{e}"
        );
        assert!(e.message.contains("column 10"), "{e}");
        let e = perr("-- revision: 002\0\n-- migrate:up\n");
        assert!(e.message.starts_with("migrations/002_x.sql:1: "), "{e}");
        let e = perr("-- revision: 002\n-- migrate:up\n-- migrate:down\n\0");
        assert!(e.message.starts_with("migrations/002_x.sql:4: "), "{e}");
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
    fn round_trip_exemptions_name_kinds_and_a_reason() {
        let s = p("-- revision: 1\n-- round_trip: keeps extension vector, schema reporting (shared (by jobs))\n-- migrate:up\n").unwrap();
        let ex = s.round_trip.unwrap();
        assert_eq!(
            ex.keeps,
            [
                ("extension".to_string(), "vector".to_string()),
                ("schema".to_string(), "reporting".to_string())
            ]
        );
        assert_eq!(ex.reason, "shared (by jobs)");
        for (line, why) in [
            ("keeps extension vector", "the reason is missing"),
            (
                "keeps extension vector ()",
                "the reason in parentheses is empty",
            ),
            ("leaves extension vector (x)", "does not start with 'keeps'"),
            ("keeps index i (x)", "unknown kind 'index'"),
            ("keeps vector (x)", "'vector' is not '<kind> <name>'"),
        ] {
            let e = perr(&format!(
                "-- revision: 1\n-- round_trip: {line}\n-- migrate:up\n"
            ));
            assert!(
                e.message.contains(":2: round_trip: ") && e.message.contains(why),
                "{line}: {e}"
            );
        }
    }
}
