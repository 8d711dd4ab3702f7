//! What a run returns: the committed steps ([`RunReport`]) or, when it stopped, the error with
//! the state the database is left in ([`RunError`], [`FailureState`]).

use crate::error::Error;
use crate::plan::Direction;
use crate::words::heads_text;
use std::fmt;
use std::time::Duration;

/// One step that ran and was committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepResult {
    pub revision: String,
    pub direction: Direction,
    pub duration: Duration,
}

/// What a run did: the committed steps and where the database is now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunReport {
    /// The steps that ran and were committed, in order.
    pub steps: Vec<StepResult>,
    /// The version table's rows before the run.
    pub start_heads: Vec<String>,
    /// The version table's rows after the run (after a failure: as committed).
    pub end_heads: Vec<String>,
    pub duration: Duration,
    /// The program steps that ran (succeeded or not), in order: for the audit row.
    pub programs: Vec<ProgramRun>,
}

/// A program step that ran: its command and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramRun {
    pub revision: String,
    pub direction: Direction,
    pub command: String,
    /// The exit code (128 + the signal that ended it); None when it timed out.
    pub exit_code: Option<i32>,
    /// `exited with code 0`, `ran longer than its timeout (30s) and was stopped`.
    pub ended: String,
}

impl ProgramRun {
    /// `003 up: python backfill.py: exit 0` (the audit row's note).
    pub fn note(&self) -> String {
        let dir = match self.direction {
            Direction::Up => "up",
            Direction::Down => "down",
        };
        match self.exit_code {
            Some(c) => format!("{} {dir}: {}: exit {c}", self.revision, self.command),
            None => format!("{} {dir}: {}: {}", self.revision, self.command, self.ended),
        }
    }
}

/// Where a failed run left the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureState {
    /// The revision whose step failed (none when the failure came at a COMMIT of several).
    pub failed_step: Option<String>,
    /// `true`: the failed step's transaction was rolled back; `false`: it ran outside a
    /// transaction, and what it did before failing stays (see the error's notes).
    pub rolled_back: bool,
    /// Nothing of this run stayed: the database is as it was before it.
    pub nothing_applied: bool,
    /// With [`RunOptions::batch`](super::RunOptions::batch): the batch the failure came in; the batches before it are
    /// committed, and the database is at the last step of the one before.
    pub batch: Option<BatchAt>,
    /// retort's own tables that did not exist before the run and do now (on a fresh database:
    /// the record tables, created to keep the failed run in the audit log), named in the
    /// description so that "as it was before the run" is exactly true.
    pub created_tables: Vec<String>,
    /// The failed step is a program step (`-- run:`): its program ran (or was stopped) and
    /// the revision is not recorded.
    pub program_step: bool,
    /// The failed step is a backfill with committed ranges: they stay, the revision is not
    /// recorded, and the next run continues from its checkpoint.
    pub backfill_step: bool,
}

/// A batch of a `--batch N` run: the `number`th (from 1) of `of`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchAt {
    pub number: usize,
    pub of: usize,
}

impl FailureState {
    /// `nothing was applied: ...` / `the database is at ... (N steps of this run committed); ...`
    /// (with `--batch`: `the database is at ..., the end of batch 2 of 5 (...); batch 3 ...`).
    pub fn describe(&self, report: &RunReport) -> String {
        if self.nothing_applied {
            return format!(
                "nothing was applied: the database is as it was before the run, at {}{}{}",
                heads_text(&report.start_heads),
                match self.batch {
                    Some(b) => format!(" (batch 1 of {} was rolled back)", b.of),
                    None => String::new(),
                },
                match self.created_tables.as_slice() {
                    [] => String::new(),
                    t => format!(
                        ", but for retort's own table{} {}, created by this run to record it in the audit log (they hold that entry and nothing else)",
                        crate::words::plural(t.len()),
                        t.iter()
                            .map(|n| n.replace('"', ""))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                }
            );
        }
        let n = report.steps.len();
        let end_of = match self.batch {
            Some(b) if b.number > 1 => format!(", the end of batch {} of {}", b.number - 1, b.of),
            _ => String::new(),
        };
        format!(
            "the database is at {}{end_of} ({n} step{} of this run committed); {}",
            heads_text(&report.end_heads),
            crate::words::plural(n),
            match (self.rolled_back, self.batch) {
                (true, Some(b)) =>
                    format!("batch {}, with the failed step, was rolled back", b.number),
                (true, None) => "the failed step was rolled back".to_string(),
                (false, _) if self.failed_step.is_none() => "no step was in flight".to_string(),
                (false, _) if self.backfill_step => format!(
                    "{} (a backfill) is not recorded; its committed ranges stay, and the next migrate-up continues from its checkpoint (see the note above)",
                    self.failed_step.as_deref().unwrap_or("the failed step")
                ),
                (false, _) if self.program_step => format!(
                    "{} (a program step) is not recorded; what its program committed stays (see the note above)",
                    self.failed_step.as_deref().unwrap_or("the failed step")
                ),
                (false, _) => {
                    "the failed step ran outside a transaction (see the note above)".to_string()
                }
            }
        )
    }
}

/// A run that did not complete: the error, what was committed before it, and (when anything
/// had started) the state the database is in. A refusal before the first statement — a
/// missing down section, an edited applied script, a bad target — has no `state`: nothing ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunError {
    pub error: Error,
    pub report: RunReport,
    pub state: Option<FailureState>,
}

impl RunError {
    /// A refusal before anything ran.
    pub fn refused(error: Error, start_heads: &[String]) -> Box<RunError> {
        Box::new(RunError {
            error,
            report: RunReport {
                start_heads: start_heads.to_vec(),
                end_heads: start_heads.to_vec(),
                ..Default::default()
            },
            state: None,
        })
    }
}

/// What a run returns. The failure is boxed: it carries the whole report.
pub type RunResult = std::result::Result<RunReport, Box<RunError>>;

impl From<Box<RunError>> for Error {
    fn from(r: Box<RunError>) -> Error {
        Error::from(*r)
    }
}

impl From<RunError> for Error {
    /// The error as the binaries print it: its message, its notes, then a `state:` line (the
    /// notes join the message, so that the state comes last).
    fn from(r: RunError) -> Error {
        let mut e = r.error;
        if let Some(st) = &r.state {
            e.fold_notes();
            e.message
                .push_str(&format!("\nstate: {}", st.describe(&r.report)));
        }
        e
    }
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", Error::from(self.clone()))
    }
}

impl std::error::Error for RunError {
    /// The error that stopped the run.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}
