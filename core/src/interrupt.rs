//! SIGINT and SIGTERM during a run.
//!
//! A signal must not just end the process: the server would keep running the statement (a
//! `CREATE INDEX CONCURRENTLY` finishes minutes later, behind the version table's back), the
//! migration lock would stay with a half-closed session, and no one would know where the
//! database was left. So the first signal only *asks*: it is recorded here, the statement
//! that is running is cancelled on the server (the executor arms [`arm`] a canceller around
//! each statement), and the run loop, seeing the flag after the cancelled statement returns,
//! rolls back what its promise says is rolled back and reports the state; the migrator writes
//! the audit row and releases the lock; the binary exits 130 (SIGINT) or 143 (SIGTERM).
//!
//! A second signal means "now": the process exits at once, printing what it could not clean
//! up (the [`set_status`] line the run loop keeps current).
//!
//! Signals are only taken over with the `interrupt` feature (the binaries turn it on) by
//! [`install`]; an application embedding the library can call [`request`] from its own
//! shutdown path instead.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Mutex;

/// 0: no interrupt; else the signal number.
static SIGNAL: AtomicI32 = AtomicI32::new(0);

type Canceller = Box<dyn Fn() + Send>;

/// Cancels the statement that is running now, if one is.
static CANCEL: Mutex<Option<Canceller>> = Mutex::new(None);

/// What a second signal leaves behind, kept current by the run loop.
static STATUS: Mutex<String> = Mutex::new(String::new());

pub const SIGINT: i32 = 2;
pub const SIGTERM: i32 = 15;

#[cfg(test)]
thread_local! {
    /// The run-loop tests interrupt their own thread only (they run in parallel).
    static THIS_THREAD: std::cell::Cell<i32> = const { std::cell::Cell::new(0) };
}

/// As if `sig` had come, for the calling thread only (0: clear).
#[cfg(test)]
pub(crate) fn request_on_this_thread(sig: i32) {
    THIS_THREAD.with(|c| c.set(sig));
}

/// The signal that interrupted the run, if any.
pub fn signal() -> Option<i32> {
    #[cfg(test)]
    if let s @ 1.. = THIS_THREAD.with(|c| c.get()) {
        return Some(s);
    }
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// `SIGINT` / `SIGTERM`.
pub fn signal_name(sig: i32) -> &'static str {
    match sig {
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}

/// Asks the run to stop, as the first signal does: records `sig` and cancels the running
/// statement. Returns `false` when an interrupt was already requested.
pub fn request(sig: i32) -> bool {
    if SIGNAL
        .compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst)
        .is_err()
    {
        return false;
    }
    let cancel = CANCEL.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(c) = cancel.as_ref() {
        c();
    }
    true
}

/// Installs `cancel` for the statement about to be sent; dropping the guard removes it. If an
/// interrupt came already, `cancel` is not installed and `None` is returned: do not send.
pub fn arm(cancel: Canceller) -> Option<Armed> {
    let mut slot = CANCEL.lock().unwrap_or_else(|p| p.into_inner());
    if signal().is_some() {
        return None;
    }
    *slot = Some(cancel);
    Some(Armed)
}

/// The canceller of the running statement; removed when dropped (after the statement
/// returned). A cancel that is being sent finishes first (the lock is held while it is sent),
/// so it cannot land on the next statement.
pub struct Armed;

impl Drop for Armed {
    fn drop(&mut self) {
        *CANCEL.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// What a second signal would leave behind, said in one line (empty: nothing).
pub fn set_status(text: impl Into<String>) {
    *STATUS.lock().unwrap_or_else(|p| p.into_inner()) = text.into();
}

#[cfg_attr(not(feature = "interrupt"), allow(dead_code))]
fn status() -> String {
    STATUS.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// Sleeps `d`, waking early on an interrupt. Returns `false` when interrupted.
pub fn sleep(d: std::time::Duration) -> bool {
    let end = std::time::Instant::now() + d;
    while std::time::Instant::now() < end {
        if signal().is_some() {
            return false;
        }
        std::thread::sleep(
            end.saturating_duration_since(std::time::Instant::now())
                .min(std::time::Duration::from_millis(20)),
        );
    }
    signal().is_none()
}

/// Takes over SIGINT and SIGTERM for the process (once): the first asks the run to stop (see
/// the module doc), the second exits at once with 128 + the signal.
#[cfg(feature = "interrupt")]
pub fn install() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        use signal_hook::consts::{SIGINT as INT, SIGTERM as TERM};
        let mut signals = match signal_hook::iterator::Signals::new([INT, TERM]) {
            Ok(s) => s,
            Err(e) => {
                log::debug!("no signal handler: {e}");
                return;
            }
        };
        let spawned = std::thread::Builder::new()
            .name("retort-signals".into())
            .spawn(move || {
                for sig in signals.forever() {
                    if request(sig) {
                        eprintln!(
                            "{} received: cancelling the running statement and stopping (send it again to exit at once)",
                            signal_name(sig)
                        );
                    } else {
                        let left = status();
                        eprintln!(
                            "{} again: exiting at once{}",
                            signal_name(sig),
                            if left.is_empty() {
                                String::new()
                            } else {
                                format!("; not cleaned up: {left}")
                            }
                        );
                        std::process::exit(128 + signal().unwrap_or(sig));
                    }
                }
            });
        if let Err(e) = spawned {
            log::debug!("no signal thread: {e}");
        }
    });
}

/// Without the `interrupt` feature the process's signals are left to the application.
#[cfg(not(feature = "interrupt"))]
pub fn install() {}
