//! Migration script files: one SQL file per revision, `migrations/<rev>_<slug>.sql`. This
//! module holds the types; reading a file is in `parse`, a directory in `load`, writing a new
//! script in `render`, ids and file names in `id`, checksums in `checksum`; `index` caches the
//! headers for the commands that need only the revision graph.
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
//! | `lock_timeout`  | PostgreSQL's `lock_timeout` for this script (`30s`; `0`: none), over `--ddl-lock-timeout` |
//! | `statement_timeout` | `statement_timeout` for this script, over `--statement-timeout`     |
//! | `set`           | `name=value, ...` session settings for this script only (`maintenance_work_mem=2GB`) |
//! | `backfill`      | `<table>.<key column> [batch=N]`: the up section is a data change run range by range of the key, or a program (`-- run:`) handed the ranges (see [`Backfill`]) |
//! | `check`         | `recall <table>.<column> [threshold=0.9] [k=10] [queries=100]`: the up step measures the index's recall and fails below the threshold (see [`RecallCheck`]) |
//! | `phase`         | `contract`: `migrate-up` stops before this revision unless `--contract` is given |
//! | `round_trip`    | `keeps extension vector (why)`: what `migrate-check --round-trip` lets the down section keep |
//! | `unconverted`   | why `migrate-import` could not write this revision's SQL; `migrate-check` reports it until the line is removed |
//!
//! Then `-- migrate:up` (required, once) and optionally `-- migrate:down` (at most once, after
//! up). Marker lines are matched after trimming, case-sensitively; a line that looks like a
//! marker but is not exactly one (`-- migrate: down`, `-- migrate:down transaction:false`) is an
//! error rather than silently becoming part of the SQL. A script without `-- migrate:down`
//! cannot be downgraded. Markers are found by lines, so they must not appear anywhere else,
//! even inside a dollar-quoted function body.
//!
//! A section whose only content (comments and blank lines aside) is one line
//! `-- run: <command>` is a program step ([`Program`]): the command runs instead of SQL. SQL
//! beside it, an empty command and a second `-- run:` line are errors at their lines; the
//! checksum covers the command and the files it names in the migrations directory (added when
//! the directory is loaded: parsing one file reads nothing else).
//!
//! Files must be UTF-8 (a BOM is skipped); LF and CRLF line endings are both accepted.

mod backfill;
mod check;
mod checksum;
mod id;
pub mod index;
mod load;
mod parse;
mod render;

pub use backfill::Backfill;
pub use check::{Phase, RecallCheck};
pub use checksum::checksum;
pub use id::{file_name_for, validate_revision_id};
pub use load::load_scripts;
pub use parse::parse_script;
pub use render::render_script;

use crate::error::{Error, Result};
use crate::graph::RevisionNode;
use crate::plan::Direction;
use crate::sql;
use std::path::{Path, PathBuf};

const UP_MARKER: &str = "-- migrate:up";
const DOWN_MARKER: &str = "-- migrate:down";

/// The comment key of a program step's one line: `-- run: <command>`.
const RUN_KEY: &str = "run";

/// One section of a script (the SQL under `-- migrate:up` or `-- migrate:down`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The text between the marker line and the next marker (or the end of the file), verbatim.
    pub sql: String,
    /// The 1-based file line of the first line of `sql` (the line after the marker).
    pub line: usize,
    /// A program step: the section's only content is one `-- run: <command>` line (comments
    /// and blank lines aside). Its `sql` then holds no statement.
    pub program: Option<Program>,
}

/// A program step's command: run by `sh -c` in the migrations directory, with the database's
/// URL in `DATABASE_URL` (see [`crate::exec::program`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// The text after `-- run:`, trimmed.
    pub command: String,
    /// The file line of the `-- run:` line.
    pub line: usize,
}

impl Program {
    /// The words of the command that name a file inside `dir` (relative to it, as the program
    /// runs there), in command order, without repeats: what the checksum covers besides the
    /// command. A word that leaves the directory (`../x`, an absolute path elsewhere, a link
    /// out of it) names no file of the migrations.
    pub fn files_in(&self, dir: &Path) -> Vec<PathBuf> {
        let words = shlex::split(&self.command).unwrap_or_else(|| {
            self.command
                .split_whitespace()
                .map(str::to_string)
                .collect()
        });
        let Ok(root) = dir.canonicalize() else {
            return Vec::new();
        };
        let mut out: Vec<PathBuf> = Vec::new();
        for w in words {
            let candidate = dir.join(&w);
            let Ok(real) = candidate.canonicalize() else {
                continue;
            };
            if real.starts_with(&root) && real.is_file() && !out.contains(&PathBuf::from(&w)) {
                out.push(PathBuf::from(w));
            }
        }
        out
    }
}

impl Section {
    /// The section split into statements (for non-transactional scripts).
    pub fn statements(&self) -> Vec<Statement> {
        split_statements(&self.sql, self.line)
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
    /// `lock_timeout`, `statement_timeout` and `set` from the header: session settings for
    /// this script only (not part of the checksum: they change how it runs, not what it does).
    pub session: SessionSettings,
    /// `-- round_trip: keeps extension vector (why)`: what `migrate-check --round-trip` accepts
    /// this revision's down section to leave as it is (not part of the checksum).
    pub round_trip: Option<RoundTripExemption>,
    /// `-- unconverted: <reason>`: `migrate-import` wrote this revision without its SQL (the
    /// Alembic body needs a live database); the reason, until someone writes the SQL and
    /// removes the line.
    pub unconverted: Option<String>,
    /// `-- backfill: <table>.<key> [batch=N]`: the up section runs range by range (see
    /// [`Backfill`]; part of the checksum).
    pub backfill: Option<Backfill>,
    /// `-- check: recall <table>.<column> ...`: the up step measures the index's recall and
    /// fails below the threshold (see [`RecallCheck`]; part of the checksum).
    pub check: Option<RecallCheck>,
    /// `-- phase: contract`: `migrate-up` runs it only when asked (see [`Phase`]).
    pub phase: Phase,
    pub up: Section,
    pub down: Option<Section>,
    /// [`checksum`] of what upgrading runs: the header fields that change what applying the
    /// script does (`down_revision`, `depends_on`, `transactional: false`), then the file from
    /// the `-- migrate:up` line to the `-- migrate:down` line (or the end). Editing the up SQL
    /// or those fields changes it; editing the down section, the message, `created`,
    /// `branch_labels`, session settings, comments in the header or cosmetic whitespace does
    /// not.
    pub checksum: String,
    /// The checksum as records written before the down section was left out hold it: the
    /// same header fields, then the file from `-- migrate:up` to the end. None when it equals
    /// `checksum` (a script without a down section).
    pub legacy_checksum: Option<String>,
}

impl Script {
    /// A recorded checksum is this script's, in either form ([`Script::checksum`], or
    /// [`Script::legacy_checksum`] for records written before the down section was left out).
    pub fn matches_checksum(&self, recorded: &str) -> bool {
        let recorded = recorded.trim();
        recorded == self.checksum || self.legacy_checksum.as_deref() == Some(recorded)
    }

    /// The section a step in `direction` runs; a missing down section is an error naming the
    /// file.
    pub fn section(&self, direction: Direction) -> Result<&Section> {
        match direction {
            Direction::Up => Ok(&self.up),
            Direction::Down => self.down.as_ref().ok_or_else(|| {
                Error::usage(format!(
                    "{}: revision {} has no '-- migrate:down' section, so it cannot be downgraded",
                    self.path.display(),
                    self.revision
                ))
                .with_hint(
                    "add a '-- migrate:down' section to the script, or stamp past it with migrate-stamp",
                )
            }),
        }
    }

    /// The program a step in `direction` runs instead of SQL, if that section is a program
    /// step.
    pub fn program(&self, direction: Direction) -> Option<&Program> {
        match direction {
            Direction::Up => self.up.program.as_ref(),
            Direction::Down => self.down.as_ref().and_then(|d| d.program.as_ref()),
        }
    }

    /// Whether a step in `direction` runs in a transaction: not for `transactional: false`
    /// scripts, nor for program steps.
    pub fn runs_in_transaction(&self, direction: Direction) -> bool {
        self.transactional
            && self.program(direction).is_none()
            && !(self.check.is_some() && direction == Direction::Up)
    }

    /// The script's node in the revision graph (`source` is the path as displayed).
    pub fn to_node(&self) -> RevisionNode {
        RevisionNode {
            id: self.revision.clone(),
            down_revisions: self.down_revisions.clone(),
            depends_on: self.depends_on.clone(),
            branch_labels: self.branch_labels.clone(),
            message: self.message.clone(),
            source: self.path.display().to_string(),
            programs: [("up", Some(&self.up)), ("down", self.down.as_ref())]
                .into_iter()
                .filter_map(|(d, s)| {
                    s.and_then(|s| s.program.as_ref())
                        .map(|p| format!("{d}: {}", p.command))
                })
                .collect(),
            contract: self.phase == Phase::Contract,
        }
    }
}

/// The kinds of object a `-- round_trip: keeps <kind> <name>` line can name.
pub const ROUND_TRIP_KINDS: [&str; 6] =
    ["extension", "schema", "type", "table", "sequence", "view"];

/// A reasoned exemption from `migrate-check --round-trip` (`-- round_trip: keeps extension
/// vector, schema audit (the baseline's down leaves what other databases use)`): these objects
/// may differ after the down section from what they were before the up section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoundTripExemption {
    /// (kind, name), kinds from [`ROUND_TRIP_KINDS`]; names as written (`public.t` or `t`).
    pub keeps: Vec<(String, String)>,
    pub reason: String,
}

/// A script's own session settings (`-- lock_timeout:`, `-- statement_timeout:`, `-- set:`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionSettings {
    /// Overrides the run's `--ddl-lock-timeout` (zero: no timeout).
    pub lock_timeout: Option<std::time::Duration>,
    /// Overrides the run's `--statement-timeout` (zero: no timeout).
    pub statement_timeout: Option<std::time::Duration>,
    /// `name=value` pairs, in order: `SET LOCAL` in a transaction, `SET` + `RESET` around a
    /// non-transactional script.
    pub set: Vec<(String, String)>,
}

/// One statement of a section, without its trailing `;`. `line` is the file line of its first
/// character that is neither whitespace nor in a comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sql: String,
    pub line: usize,
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
    /// Further header keys, written in this order after `transactional` (`backfill`,
    /// `check`, `phase`, `set`, ...): what a generated chain of revisions needs.
    pub headers: Vec<(String, String)>,
    pub up_sql: String,
    pub down_sql: String,
}

/// Splits `sql` into statements on top-level `;` (see [`crate::sql::split()`]). `first_line` is
/// the file line of the first line of `sql`; each statement's `line` is a file line.
pub fn split_statements(sql: &str, first_line: usize) -> Vec<Statement> {
    sql::split(sql, first_line)
        .into_iter()
        .map(|s| Statement {
            sql: s.text(sql).to_string(),
            line: s.line,
        })
        .collect()
}

/// Helpers shared by the tests of the submodules.
#[cfg(test)]
mod test_support {
    pub(super) use super::*;
    pub(super) use crate::error::{Error, ErrorKind, Result};
    pub(super) use std::path::Path;

    pub(super) const EXAMPLE: &str = "-- revision: 002
-- down_revision: 001
-- message: server settings table
-- created: 2026-11-22T10:00:00Z

-- migrate:up
CREATE TABLE server_settings (key text PRIMARY KEY, value jsonb NOT NULL);

-- migrate:down
DROP TABLE server_settings;
";

    pub(super) fn p(text: &str) -> Result<Script> {
        parse_script(Path::new("migrations/002_x.sql"), text.as_bytes())
    }

    pub(super) fn perr(text: &str) -> Error {
        let e = p(text).expect_err("should fail");
        assert_eq!(e.kind, ErrorKind::Script, "{e}");
        assert!(e.message.starts_with("migrations/002_x.sql:"), "{e}");
        assert!(e.hint.is_some(), "no hint: {e}");
        e
    }

    pub(super) fn script_text(rev: &str, down: &str) -> String {
        format!("-- revision: {rev}\n-- down_revision: {down}\n\n-- migrate:up\nSELECT {rev:?};\n")
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;

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
        assert_eq!(crate::sql::line_of_position(&st[1].sql, st[1].line, 30), 8);
    }
}

#[cfg(test)]
mod program_tests {
    use super::test_support::*;

    const HEAD: &str = "-- revision: 002\n-- down_revision: 001\n";

    #[test]
    fn a_section_with_one_run_line_is_a_program_step() {
        let s = p(&format!(
            "{HEAD}\n-- migrate:up\n-- backfills the titles\n\n-- run: python data/002.py --batch 500\n\n-- migrate:down\nDELETE FROM t;\n"
        ))
        .unwrap();
        let prog = s
            .program(crate::plan::Direction::Up)
            .expect("a program step");
        assert_eq!(prog.command, "python data/002.py --batch 500");
        assert_eq!(prog.line, 7);
        assert!(s.up.statements().is_empty());
        assert!(!s.runs_in_transaction(crate::plan::Direction::Up));
        assert!(s.program(crate::plan::Direction::Down).is_none());
        assert!(s.runs_in_transaction(crate::plan::Direction::Down));
    }

    #[test]
    fn sql_up_and_a_program_down() {
        let s = p(&format!(
            "{HEAD}-- migrate:up\nCREATE TABLE t (x int);\n-- migrate:down\n-- run: ./undo.sh\n"
        ))
        .unwrap();
        assert!(s.program(crate::plan::Direction::Up).is_none());
        assert_eq!(
            s.program(crate::plan::Direction::Down).unwrap().command,
            "./undo.sh"
        );
    }

    #[test]
    fn sql_beside_run_is_an_error_at_the_sql_line() {
        let e = perr(&format!(
            "{HEAD}-- migrate:up\n-- run: ./x.sh\nUPDATE t SET x = 1;\n"
        ));
        assert!(e.message.starts_with("migrations/002_x.sql:5:"), "{e}");
        assert!(e.message.contains("SQL beside '-- run:' (line 4)"), "{e}");
    }

    #[test]
    fn sql_before_run_is_an_error_too() {
        let e = perr(&format!(
            "{HEAD}-- migrate:up\n/* a block\n comment */ SELECT 1;\n-- run: ./x.sh\n"
        ));
        assert!(
            e.message.contains(":5: SQL beside '-- run:' (line 6)"),
            "{e}"
        );
    }

    #[test]
    fn an_empty_command_and_a_second_run_line_are_errors() {
        let e = perr(&format!("{HEAD}-- migrate:up\n-- run:   \n"));
        assert!(e.message.starts_with("migrations/002_x.sql:4:"), "{e}");
        assert!(e.message.contains("without a command"), "{e}");
        let e = perr(&format!(
            "{HEAD}-- migrate:up\n-- run: ./a.sh\n\n-- run: ./b.sh\n"
        ));
        assert!(e.message.starts_with("migrations/002_x.sql:6:"), "{e}");
        assert!(e.message.contains("second '-- run:'"), "{e}");
        assert!(e.message.contains("first is on line 4"), "{e}");
    }

    #[test]
    fn sql_only_checksums_are_unchanged_and_the_command_is_covered() {
        // what this script's checksum has always been (recorded in databases)
        let s = p(EXAMPLE).unwrap();
        assert_eq!(
            s.checksum,
            checksum(
                "down_revision: 001\n-- migrate:up\nCREATE TABLE server_settings (key text PRIMARY KEY, value jsonb NOT NULL);"
            )
        );
        let a = p(&format!("{HEAD}-- migrate:up\n-- run: ./a.sh\n")).unwrap();
        let b = p(&format!("{HEAD}-- migrate:up\n-- run: ./b.sh\n")).unwrap();
        assert_ne!(a.checksum, b.checksum);
    }

    #[test]
    fn files_named_by_the_command_inside_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        std::fs::write(dir.path().join("data/fill.py"), "print(1)\n").unwrap();
        std::fs::write(dir.path().join("a b.sh"), "true\n").unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("x.py"), "").unwrap();
        let prog = Program {
            command: format!(
                "python data/fill.py --x 'a b.sh' ../nope {}/x.py data/fill.py missing.py",
                outside.path().display()
            ),
            line: 1,
        };
        assert_eq!(
            prog.files_in(dir.path()),
            [PathBuf::from("data/fill.py"), PathBuf::from("a b.sh")]
        );
    }

    #[test]
    fn editing_the_program_file_changes_the_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let write = |body: &str| {
            std::fs::write(dir.path().join("002_fill.py"), body).unwrap();
            load_scripts(dir.path()).unwrap()[0].checksum.clone()
        };
        std::fs::write(
            dir.path().join("002_fill.sql"),
            "-- revision: 002\n-- migrate:up\n-- run: python 002_fill.py\n-- migrate:down\n-- run: python 002_fill.py\n",
        )
        .unwrap();
        let first = write("print('a')\n");
        assert_eq!(write("print('a')\n"), first, "same bytes, same checksum");
        let second = write("print('b')\n");
        assert_ne!(second, first);
        let parsed = p("-- revision: 002\n-- migrate:up\n-- run: python 002_fill.py\n-- migrate:down\n-- run: python 002_fill.py\n").unwrap();
        assert_ne!(
            parsed.checksum, first,
            "the file is covered, not only the command"
        );
    }
}
