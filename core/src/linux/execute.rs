//! The executor loop: asks the session machine what to do and does it.

use rustix::fd::BorrowedFd;

use super::sys::{self, now_ns, Errno};
use crate::session::{Action, Event, Session};
use crate::status::Status;

/// `EBADF`, reported when the session names a target with no descriptor.
const EBADF: Errno = 9;

/// What the controller said while we waited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// The snapshot has been taken: thaw, consistent.
    Acknowledged,
    /// The controller went away without a word: thaw, not consistent.
    Gone,
    /// The snapshot failed: thaw, not consistent.
    SnapshotFailed,
    /// We were asked to stop (SIGTERM and friends): thaw, not consistent.
    Interrupted,
}

/// The other side of the handshake: whoever takes the snapshot.
///
/// Implementations must not write to any filesystem while called: everything is frozen then.
pub trait Controller {
    /// Everything is frozen: tell the controller to take the snapshot.
    fn notify(&mut self) -> Result<(), Errno>;
    /// Wait until the controller says something or the monotonic clock reaches `until_ns`.
    /// `None` means nothing was said (time is up, or a spurious wake-up: the loop asks again).
    fn wait(&mut self, until_ns: u64) -> Option<Signal>;
}

/// Calls `op` on target `i`'s descriptor; returns its result bracketed by monotonic times.
fn timed(
    fds: &[BorrowedFd<'_>],
    i: usize,
    op: fn(BorrowedFd<'_>) -> Result<(), Errno>,
) -> (Result<(), Errno>, u64, u64) {
    let start = now_ns();
    let r = fds.get(i).map_or(Err(EBADF), |fd| op(*fd));
    (r, start, now_ns())
}

/// Runs `session` to the end: freezes `fds[i]` for target `i`, notifies and waits on
/// `controller`, thaws, and returns the final status. Allocates nothing.
pub fn execute<const N: usize, C: Controller + ?Sized>(
    session: &mut Session<N>,
    fds: &[BorrowedFd<'_>],
    controller: &mut C,
) -> Status {
    loop {
        let now = now_ns();
        let event = match session.next(now) {
            Action::Freeze(i) => match timed(fds, i, sys::freeze) {
                (Ok(()), start, end) => Event::Froze {
                    target: i,
                    start,
                    end,
                },
                (Err(errno), start, end) => Event::FreezeFailed {
                    target: i,
                    errno,
                    start,
                    end,
                },
            },
            Action::Notify => match controller.notify() {
                Ok(()) => Event::Notified { at: now_ns() },
                Err(errno) => Event::NotifyFailed {
                    errno,
                    at: now_ns(),
                },
            },
            Action::Wait { until } => match controller.wait(until) {
                None => continue,
                Some(signal) => {
                    let at = now_ns();
                    match signal {
                        Signal::Acknowledged => Event::Acknowledged { at },
                        Signal::Gone => Event::ControllerGone { at },
                        Signal::SnapshotFailed => Event::SnapshotFailed { at },
                        Signal::Interrupted => Event::Interrupted { at },
                    }
                }
            },
            Action::Thaw(i) => match timed(fds, i, sys::thaw) {
                (Ok(()), start, end) => Event::Thawed {
                    target: i,
                    start,
                    end,
                },
                (Err(errno), start, end) => Event::ThawFailed {
                    target: i,
                    errno,
                    start,
                    end,
                },
            },
            Action::Done(status) => return status,
        };
        if session.handle(event).is_err() {
            // The machine only rejects events it did not ask for; every event above answers
            // the action just taken, so this is a bug. The machine keeps its state and will
            // still lead to thaw.
            debug_assert!(false, "session rejected {event:?}");
        }
    }
}
