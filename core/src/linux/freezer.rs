//! The freezer: a helper process that issues `FIFREEZE` for the controller.
//!
//! `FIFREEZE` can block in the kernel for a long time, or until someone thaws another
//! filesystem (a loop device whose image lives on a frozen filesystem). A thread stuck there
//! cannot be killed, and a process with such a thread cannot even exit. So the controller never
//! issues `FIFREEZE` itself: it asks the freezer (one byte, the target's index, on a pipe),
//! marks the target in flight in the shared [`Table`], and waits for the answer no longer than
//! its deadline. At the deadline it marks the target abandoned and goes on (thawing what is
//! confirmed frozen); when the stuck call finally returns, the freezer sees the mark and thaws
//! that filesystem at once.
//!
//! [`serve`] is the freezer's whole life after `fork`: raw syscalls only, no allocation, no
//! locks. [`Client`] is the controller's side, an [`Ops`] for the executor.

use rustix::event::{PollFd, PollFlags};
use rustix::fd::BorrowedFd;

use super::execute::{FreezeReply, Ops, ThawReply};
use super::sys::{self, now_ns, Errno};
use super::table::{state, Slot, Table};

const EBADF: Errno = 9;
const EINVAL: Errno = 22;
const ECHILD: Errno = 10;

/// The request byte that tells the freezer to exit (a target index is always smaller).
pub const QUIT: u8 = 0xFF;

/// The freezer's main loop: reads target indexes from `requests`, freezes `fds[i]`, records the
/// result in `table`, writes the index back on `done`. Returns (its exit code) at end of input
/// (the controller finished or died) or on [`QUIT`]. Allocates nothing.
pub fn serve<const N: usize>(
    table: &Table<N>,
    fds: &[BorrowedFd<'_>],
    requests: BorrowedFd<'_>,
    done: BorrowedFd<'_>,
) -> i32 {
    loop {
        let mut b = [0u8; 1];
        match rustix::io::read(requests, &mut b) {
            Ok(0) => return 0,
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return 1,
        }
        if b[0] == QUIT {
            return 0;
        }
        let i = usize::from(b[0]);
        if let (Some(slot), Some(fd)) = (table.slot(i), fds.get(i)) {
            freeze_one(slot, *fd);
        }
        // EPIPE when the controller is gone (SIGPIPE is blocked in helpers): nothing to do.
        let _ = rustix::io::write(done, &b);
    }
}

/// Issues `FIFREEZE` for one slot, unless it was abandoned before; thaws at once if it was
/// abandoned while in the kernel.
fn freeze_one(slot: &Slot, fd: BorrowedFd<'_>) {
    if slot.state() != state::IN_FLIGHT {
        // Given up before we got to it: never issue it.
        let _ = slot.transition(state::ABANDONED, state::CANCELLED);
        return;
    }
    let result = sys::freeze(fd);
    let end = now_ns();
    if slot.complete_freeze(result, end) {
        return;
    }
    // Abandoned while in the kernel: nobody else will thaw it.
    match result {
        Ok(()) => {
            let start = now_ns();
            let thawed = sys::thaw(fd);
            let thaw_end = now_ns();
            let (to, errno) = match thawed {
                Ok(()) => (state::THAWED_LATE, 0),
                Err(EINVAL) => (state::THAWED_BY_OTHER, EINVAL),
                Err(e) => (state::THAW_FAILED, e),
            };
            slot.settle_late(to, errno, (start, thaw_end));
        }
        Err(e) => slot.settle_late(state::FAILED_LATE, e, (0, 0)),
    }
}

/// The controller's side of the freezer: an [`Ops`] that sends `FIFREEZE` to the freezer and
/// waits no longer than the deadline, and thaws on the calling thread (claiming each target in
/// the table first, so that it never thaws what the guardian thawed). Allocates nothing.
pub struct Client<'a, 'fd, const N: usize> {
    table: &'a Table<N>,
    fds: &'a [BorrowedFd<'fd>],
    requests: BorrowedFd<'a>,
    done: BorrowedFd<'a>,
    freezer_gone: bool,
}

impl<'a, 'fd, const N: usize> Client<'a, 'fd, N> {
    /// `requests` is the write end of the freezer's request pipe, `done` the (non-blocking)
    /// read end of its answers; `fds[i]` is target `i`'s descriptor (the same open files the
    /// helpers hold).
    pub fn new(
        table: &'a Table<N>,
        fds: &'a [BorrowedFd<'fd>],
        requests: BorrowedFd<'a>,
        done: BorrowedFd<'a>,
    ) -> Self {
        Client {
            table,
            fds,
            requests,
            done,
            freezer_gone: false,
        }
    }

    /// Waits until the freezer answers or the clock reaches `until`; notes its death (EOF).
    fn wait_answer(&mut self, until: u64) {
        let left = until.saturating_sub(now_ns());
        let ts = rustix::time::Timespec {
            tv_sec: (left / 1_000_000_000) as i64,
            tv_nsec: (left % 1_000_000_000) as i64,
        };
        let mut fds = [PollFd::from_borrowed_fd(self.done, PollFlags::IN)];
        let _ = rustix::event::poll(&mut fds, Some(&ts));
        let mut buf = [0u8; 64];
        loop {
            match rustix::io::read(self.done, &mut buf) {
                Ok(0) => {
                    self.freezer_gone = true;
                    break;
                }
                Ok(_) => continue,
                Err(rustix::io::Errno::INTR) => continue,
                Err(_) => break,
            }
        }
    }
}

impl<const N: usize> Ops for Client<'_, '_, N> {
    fn freeze(&mut self, i: usize, deadline: u64) -> FreezeReply {
        self.table.set_deadline(deadline);
        let start = now_ns();
        let refused = |errno| FreezeReply::Returned {
            result: Err(errno),
            start,
            end: now_ns(),
        };
        let Some(slot) = self.table.slot(i).filter(|_| i < usize::from(QUIT)) else {
            return refused(EBADF);
        };
        if !slot.request_freeze(start) {
            return refused(EBADF);
        }
        let sent =
            !self.freezer_gone && matches!(rustix::io::write(self.requests, &[i as u8]), Ok(1));
        if !sent {
            // The freezer is gone before the call was issued: nothing was frozen.
            let _ = slot.transition(state::IN_FLIGHT, state::CANCELLED);
            return refused(ECHILD);
        }
        loop {
            match slot.state() {
                state::FROZEN => {
                    return FreezeReply::Returned {
                        result: Ok(()),
                        start,
                        end: slot.freeze_times().1,
                    }
                }
                state::FREEZE_FAILED => {
                    return FreezeReply::Returned {
                        result: Err(slot.errno()),
                        start,
                        end: slot.freeze_times().1,
                    }
                }
                state::IN_FLIGHT => {}
                // The guardian gave up on it (we are past its deadline).
                _ => {
                    return FreezeReply::InFlight {
                        start,
                        at: now_ns(),
                    }
                }
            }
            let now = now_ns();
            if now >= deadline || self.freezer_gone {
                // Give it up, unless it completed this very moment (then report that).
                if slot.transition(state::IN_FLIGHT, state::ABANDONED).is_ok() {
                    return FreezeReply::InFlight { start, at: now };
                }
                continue;
            }
            self.wait_answer(deadline);
        }
    }

    fn thaw(&mut self, i: usize) -> ThawReply {
        let start = now_ns();
        let (Some(slot), Some(fd)) = (self.table.slot(i), self.fds.get(i)) else {
            return ThawReply::Returned {
                result: Err(EBADF),
                start,
                end: start,
            };
        };
        match slot.transition(state::FROZEN, state::THAWING) {
            Ok(()) => {
                let start = now_ns();
                let result = sys::thaw(*fd);
                let end = now_ns();
                let (to, errno) = match result {
                    Ok(()) => (state::THAWED, 0),
                    Err(EINVAL) => (state::THAWED_BY_OTHER, EINVAL),
                    Err(e) => (state::THAW_FAILED, e),
                };
                slot.finish_thaw(to, errno, start, end);
                ThawReply::Returned { result, start, end }
            }
            Err(state::GUARDIAN_THAWING) => ThawReply::ByGuardian { start, end: start },
            Err(state::THAWED_BY_GUARDIAN) => {
                let (s, e) = slot.thaw_times();
                ThawReply::ByGuardian { start: s, end: e }
            }
            Err(_) => {
                let (s, e) = slot.thaw_times();
                ThawReply::Returned {
                    result: Err(match slot.errno() {
                        0 => EINVAL,
                        e => e,
                    }),
                    start: s,
                    end: e,
                }
            }
        }
    }
}
