//! One error type for the whole crate. Each error carries a kind (which decides the process
//! exit code, see `docs/exit-codes.md`), a message that says what is wrong and where, and an
//! optional hint that says what to do. Errors never carry passwords: everything that could
//! contain a connection string is redacted before it is put into an `Error`.

use std::fmt;

/// Exit codes shared by every binary. Documented in `docs/exit-codes.md`.
pub mod exit {
    /// `migrate-check` (or `--check-heads`) found problems: pending revisions, several heads,
    /// an unknown revision in the database, checksum or schema drift.
    pub const PROBLEMS: i32 = 1;
    /// Bad command line, bad configuration, unknown or ambiguous revision; a writing command
    /// through a pooler in transaction pooling mode (the migration lock cannot be held there).
    pub const USAGE: i32 = 2;
    /// Could not connect to the database (refused, timeout, authentication, missing database, TLS).
    pub const CONNECT: i32 = 3;
    /// A migration's SQL failed; the message says what state the database is in now.
    pub const MIGRATION_FAILED: i32 = 4;
    /// Another process held the migration lock for longer than `--lock-timeout`.
    pub const LOCK_TIMEOUT: i32 = 5;
    /// The migration scripts are invalid (parse error, duplicate id, cycle, missing parent).
    pub const SCRIPTS_INVALID: i32 = 6;
    /// The database's state forbids the command (a revision no script has, an edited applied
    /// script); nothing was changed.
    pub const STATE: i32 = 7;
    /// An I/O or internal error not covered above.
    pub const OTHER: i32 = 10;
    /// Interrupted by SIGINT (Ctrl-C); SIGTERM gives 143. 128 + the signal, as shells do.
    pub const INTERRUPTED: i32 = 130;
}

/// What went wrong, coarsely; decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Usage,
    Script,
    Connect,
    Migration,
    LockTimeout,
    State,
    Io,
    Database,
    /// SIGINT or SIGTERM stopped the work: exit 130 or 143 (128 + the signal).
    Interrupted,
}

impl ErrorKind {
    /// The kind as JSON documents spell it: `usage`, `lock_timeout`, ...
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Usage => "usage",
            ErrorKind::Script => "script",
            ErrorKind::Connect => "connect",
            ErrorKind::Migration => "migration",
            ErrorKind::LockTimeout => "lock_timeout",
            ErrorKind::State => "state",
            ErrorKind::Io => "io",
            ErrorKind::Database => "database",
            ErrorKind::Interrupted => "interrupted",
        }
    }

    pub fn exit_code(self) -> i32 {
        match self {
            ErrorKind::Usage => exit::USAGE,
            ErrorKind::Script => exit::SCRIPTS_INVALID,
            ErrorKind::Connect => exit::CONNECT,
            ErrorKind::Migration => exit::MIGRATION_FAILED,
            ErrorKind::LockTimeout => exit::LOCK_TIMEOUT,
            ErrorKind::State => exit::STATE,
            ErrorKind::Io | ErrorKind::Database => exit::OTHER,
            ErrorKind::Interrupted => exit::INTERRUPTED,
        }
    }
}

/// What a caller may want to act on, as data: which heads, which candidates, which scripts. A
/// program reacts to these (a deploy script that picks a head, a start-up hook that reports the
/// edited scripts) instead of matching on message text, which may change between releases.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Detail {
    #[default]
    None,
    /// `head` (or a relative target) named several heads.
    MultipleHeads { heads: Vec<String> },
    /// A prefix or label matched more than one revision.
    Ambiguous {
        given: String,
        candidates: Vec<String>,
    },
    /// The version table holds revisions no script has.
    UnknownRevisions { revisions: Vec<String> },
    /// Applied scripts whose text changed since they were applied: `(revision, path)` pairs.
    ChecksumMismatch { scripts: Vec<(String, String)> },
    /// The connection could not be made; `retryable` when waiting may help (refused, starting
    /// up, timed out) and not when it cannot (bad password, missing database, TLS refused).
    Connect { retryable: bool },
    /// PostgreSQL refused a statement.
    Sql { sqlstate: String },
    /// A signal stopped the run: 2 (SIGINT) or 15 (SIGTERM).
    Interrupted { signal: i32 },
}

/// The crate's error: a kind, a message (what and where), notes (what else is true now, e.g.
/// what a non-transactional step left behind), an optional hint (what to do) and a typed
/// [`Detail`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
    /// Shown after the message, each on its own line as `note: ...` ([`Error::notes`],
    /// [`Error::full_message`]). Boxed: most errors have none, and an error stays under
    /// clippy's 128 bytes for a `Result`'s error (one pointer here, not a `Vec`'s three words).
    #[allow(clippy::box_collection)]
    notes: Option<Box<Vec<String>>>,
    pub hint: Option<String>,
    pub detail: Detail,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            notes: None,
            hint: None,
            detail: Detail::None,
        }
    }
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Usage, message)
    }
    pub fn script(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Script, message)
    }
    pub fn state(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::State, message)
    }
    pub fn io(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Io, message)
    }
    /// Adds (or replaces) the "what to do" line.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
    /// Adds a note (shown after the message and the notes before it).
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.notes
            .get_or_insert_with(Default::default)
            .push(note.into());
        self
    }
    /// Adds `notes` after the ones it has.
    pub fn with_notes(self, notes: &[String]) -> Self {
        notes.iter().fold(self, |e, n| e.with_note(n.clone()))
    }
    /// The notes, in the order they were added.
    pub fn notes(&self) -> &[String] {
        self.notes.as_deref().map_or(&[], |v| v.as_slice())
    }
    /// Moves the notes into the message (`message` then `note: ...` lines), leaving none.
    pub fn fold_notes(&mut self) {
        self.message = self.full_message();
        self.notes = None;
    }
    /// The message and its notes, as stderr and JSON show them (without the hint).
    pub fn full_message(&self) -> String {
        let mut s = self.message.clone();
        for n in self.notes() {
            s.push_str("\nnote: ");
            s.push_str(n);
        }
        s
    }
    /// Attaches the typed detail.
    pub fn with_detail(mut self, detail: Detail) -> Self {
        self.detail = detail;
        self
    }
    pub fn exit_code(&self) -> i32 {
        match (self.kind, &self.detail) {
            (ErrorKind::Interrupted, Detail::Interrupted { signal }) => 128 + signal,
            (kind, _) => kind.exit_code(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.full_message())?;
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_follow_the_message_and_the_hint_comes_last() {
        let e = Error::new(ErrorKind::Migration, "migration failed: upgrade 002")
            .with_note("its first statement ran and stayed")
            .with_note("INVALID index now in the database: ix")
            .with_hint("run again");
        assert_eq!(e.message, "migration failed: upgrade 002");
        assert_eq!(
            e.full_message(),
            "migration failed: upgrade 002\nnote: its first statement ran and stayed\nnote: INVALID index now in the database: ix"
        );
        assert_eq!(
            e.to_string(),
            format!("{}\n  hint: run again", e.full_message())
        );
        assert_eq!(Error::usage("bad").full_message(), "bad");
    }
}
