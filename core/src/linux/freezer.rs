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
//! A session runs a pool of freezers (up to [`MAX_FREEZERS`](super::table::MAX_FREEZERS)) that
//! read requests from the same pipe: whichever is free takes the next one. Targets that do not
//! depend on each other (a wave, see [`Session::with_wave_starts`]) are so frozen at once, and a
//! freezer stuck in the kernel does not hold up the others. The same pool runs the pre-sync
//! (`syncfs` of every target before the first `FIFREEZE`, request byte [`SYNC`]` | i`), so that a
//! `syncfs` stuck on stalled storage blocks a helper, never the controller.
//!
//! [`serve`] is a freezer's whole life after `fork`: raw syscalls only, no allocation, no
//! locks. [`Client`] is the controller's side, an [`Ops`] for the executor.
//!
//! The controller's waits (the pre-sync, each wave of `FIFREEZE`) also end at once when the
//! caller cancels ([`Cancel`]): a flag, and a descriptor (an eventfd) that becomes readable,
//! polled together with the freezers' answers. A `FIFREEZE` still in flight is then abandoned
//! as at the deadline (its freezer thaws it when the call returns).
//!
//! [`Session::with_wave_starts`]: crate::session::Session::with_wave_starts

use core::sync::atomic::{AtomicBool, Ordering};

use rustix::event::{PollFd, PollFlags};
use rustix::fd::BorrowedFd;

use super::execute::{FreezeReply, Ops, ThawReply};
use super::sys::{self, now_ns};
use super::table::{state, sync, Slot, Table};
use crate::errno::{EBADF, ECANCELED, ECHILD, EINVAL, ETIMEDOUT};
use crate::session::Outcome;

/// The request byte that tells a freezer to exit (a target index is always smaller).
pub const QUIT: u8 = 0xFF;

/// The bit that makes a request byte a pre-sync request for target `byte & !SYNC`.
pub const SYNC: u8 = 0x80;

/// Target indexes a request byte can carry (below [`SYNC`]).
pub const MAX_REQUEST_TARGETS: usize = SYNC as usize - 1;

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
        let i = usize::from(b[0] & !SYNC);
        if let (Some(slot), Some(fd)) = (table.slot(i), fds.get(i)) {
            if b[0] & SYNC != 0 {
                sync_one(slot, *fd);
            } else {
                freeze_one(slot, *fd);
            }
        }
        // EPIPE when the controller is gone (SIGPIPE is blocked in helpers): nothing to do.
        let _ = rustix::io::write(done, &b);
    }
}

/// Issues `syncfs` for one slot, unless the controller stopped waiting before.
fn sync_one(slot: &Slot, fd: BorrowedFd<'_>) {
    if !slot.sync_move(sync::REQUESTED, sync::RUNNING) {
        return;
    }
    let start = now_ns();
    let result = sys::syncfs(fd);
    slot.finish_sync(result, now_ns().saturating_sub(start));
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

/// A caller's cancellation, as the controller's waits see it: `flag` is set, then `wake` (an
/// eventfd or a pipe's read end) made readable, by whoever cancels (any thread, or a signal
/// handler: both are async-signal-safe).
#[derive(Clone, Copy, Debug)]
pub struct Cancel<'a> {
    /// Set once cancelled.
    pub flag: &'a AtomicBool,
    /// Readable once cancelled (never drained: it stays readable).
    pub wake: BorrowedFd<'a>,
}

impl Cancel<'_> {
    /// Whether it is cancelled.
    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::Acquire)
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
    cancel: Option<Cancel<'a>>,
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
            cancel: None,
        }
    }

    /// The same client, whose waits also end when `cancel` is set.
    pub fn with_cancel(mut self, cancel: Option<Cancel<'a>>) -> Self {
        self.cancel = cancel;
        self
    }

    /// Whether the caller cancelled.
    pub fn cancelled(&self) -> bool {
        self.cancel.is_some_and(|c| c.is_set())
    }

    /// Waits until the freezer answers or the clock reaches `until`; notes its death (EOF).
    fn wait_answer(&mut self, until: u64) {
        let left = until.saturating_sub(now_ns());
        let ts = rustix::time::Timespec {
            tv_sec: (left / 1_000_000_000) as i64,
            tv_nsec: (left % 1_000_000_000) as i64,
        };
        if self.cancelled() {
            return;
        }
        let mut fds = [
            PollFd::from_borrowed_fd(self.done, PollFlags::IN),
            PollFd::from_borrowed_fd(self.cancel.map_or(self.done, |c| c.wake), PollFlags::IN),
        ];
        let n = if self.cancel.is_some() { 2 } else { 1 };
        let _ = rustix::event::poll(&mut fds[..n], Some(&ts));
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

/// What the pre-sync achieved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Presync {
    /// Targets whose `syncfs` returned 0.
    pub done: usize,
    /// Targets whose `syncfs` failed (their `FIFREEZE` flushes instead).
    pub failed: usize,
    /// Targets whose `syncfs` had not returned (or not started) when the controller stopped
    /// waiting.
    pub unfinished: usize,
}

impl<const N: usize> Client<'_, '_, N> {
    /// Sends one request byte; false if the freezers are gone.
    fn send(&mut self, byte: u8) -> bool {
        !self.freezer_gone && matches!(rustix::io::write(self.requests, &[byte]), Ok(1))
    }

    /// Issues target `i`'s `FIFREEZE` (marks it in flight and sends the request); `Err` is the
    /// reply when it could not be issued.
    fn issue(&mut self, i: usize, start: u64) -> Result<(), FreezeReply> {
        let refused = |errno| FreezeReply::Returned {
            result: Err(errno),
            start,
            end: now_ns(),
        };
        let Some(slot) = self.table.slot(i).filter(|_| i < MAX_REQUEST_TARGETS) else {
            return Err(refused(EBADF));
        };
        if !slot.request_freeze(start) {
            return Err(refused(EBADF));
        }
        if !self.send(i as u8) {
            // The freezers are gone before the call was issued: nothing was frozen.
            let _ = slot.transition(state::IN_FLIGHT, state::CANCELLED);
            return Err(refused(ECHILD));
        }
        Ok(())
    }

    /// Target `i`'s reply if its `FIFREEZE` has settled, or `None` while it is in flight.
    fn settled(&self, i: usize, start: u64) -> Option<FreezeReply> {
        let slot = self.table.slot(i)?;
        match slot.state() {
            state::FROZEN => Some(FreezeReply::Returned {
                result: Ok(()),
                start,
                end: slot.freeze_times().1,
            }),
            state::FREEZE_FAILED => Some(FreezeReply::Returned {
                result: Err(slot.errno()),
                start,
                end: slot.freeze_times().1,
            }),
            state::IN_FLIGHT => None,
            // The guardian gave up on it (we are past its deadline).
            _ => Some(FreezeReply::InFlight {
                start,
                at: now_ns(),
            }),
        }
    }

    /// Gives target `i` up at `now`: `None` if it settled this very moment (ask again).
    fn abandon(&self, i: usize, start: u64, now: u64) -> Option<FreezeReply> {
        let slot = self.table.slot(i)?;
        slot.transition(state::IN_FLIGHT, state::ABANDONED)
            .ok()
            .map(|()| FreezeReply::InFlight { start, at: now })
    }

    /// Pre-sync: asks the freezers for `syncfs` on every target (all at once, as many in
    /// parallel as there are freezers) and waits until they have all returned or the clock
    /// reaches `until`. Requests not taken by then are withdrawn; a `syncfs` still running
    /// keeps its freezer busy (the others take the freezes), and the `FIFREEZE` of that
    /// target flushes whatever is left. Allocates nothing.
    pub fn presync(&mut self, until: u64) -> Presync {
        let n = self.table.len().min(MAX_REQUEST_TARGETS);
        for (i, slot) in self.table.slots().iter().enumerate().take(n) {
            if slot.request_sync() && !self.send(SYNC | i as u8) {
                slot.sync_move(sync::REQUESTED, sync::SKIPPED);
            }
        }
        loop {
            let busy = self.table.slots()[..n]
                .iter()
                .any(|s| matches!(s.sync_state(), sync::REQUESTED | sync::RUNNING));
            if !busy || self.freezer_gone || self.cancelled() || now_ns() >= until {
                break;
            }
            self.wait_answer(until);
        }
        let mut p = Presync::default();
        for slot in &self.table.slots()[..n] {
            slot.sync_move(sync::REQUESTED, sync::SKIPPED);
            match slot.sync_state() {
                sync::DONE => p.done += 1,
                sync::FAILED => p.failed += 1,
                _ => p.unfinished += 1,
            }
        }
        p
    }
}

impl<const N: usize> Ops for Client<'_, '_, N> {
    fn freeze(&mut self, i: usize, deadline: u64) -> FreezeReply {
        let mut reply = [FreezeReply::InFlight { start: 0, at: 0 }];
        self.freeze_wave(&[i as u16], deadline, &mut reply);
        reply[0]
    }

    /// Every target of the wave is sent to the pool at once; waits until each has settled, or
    /// until the deadline (then the unsettled ones are abandoned: whichever freezer completes
    /// such a call thaws at once).
    fn freeze_wave(&mut self, targets: &[u16], deadline: u64, replies: &mut [FreezeReply]) {
        if self.cancelled() {
            // Cancelled before this wave: none of it is issued.
            let now = now_ns();
            for reply in replies.iter_mut().take(targets.len()) {
                *reply = FreezeReply::Returned {
                    result: Err(ECANCELED),
                    start: now,
                    end: now,
                };
            }
            return;
        }
        self.table.set_deadline(deadline);
        let mut starts = [0u64; N];
        let mut open = [false; N];
        for (k, (&i, reply)) in targets.iter().zip(replies.iter_mut()).enumerate().take(N) {
            let start = now_ns();
            starts[k] = start;
            match self.issue(usize::from(i), start) {
                Ok(()) => open[k] = true,
                Err(r) => *reply = r,
            }
        }
        let count = targets.len().min(replies.len()).min(N);
        loop {
            let now = now_ns();
            let give_up = now >= deadline || self.freezer_gone || self.cancelled();
            let mut pending = false;
            for k in 0..count {
                if !open[k] {
                    continue;
                }
                let i = usize::from(targets[k]);
                let settled = self.settled(i, starts[k]).or_else(|| {
                    if give_up {
                        self.abandon(i, starts[k], now)
                    } else {
                        None
                    }
                });
                match settled {
                    Some(r) => {
                        replies[k] = r;
                        open[k] = false;
                    }
                    None => pending = true,
                }
            }
            if !pending {
                return;
            }
            if !give_up {
                self.wait_answer(deadline);
            }
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
            Err(found) => thawed_by_another(self.table, i, found, start),
        }
    }
}

/// How long the controller waits for the guardian's own `FITHAW` of a target to return, when
/// the guardian claimed it first (ns). A `FITHAW` takes well under a millisecond; the bound
/// only keeps a guardian stuck in the kernel from holding the controller forever.
pub const GUARDIAN_THAW_WAIT_NS: u64 = 1_000_000_000;

/// How often the controller looks at a slot while the guardian thaws it (ns).
const SETTLE_POLL_NS: u64 = 1_000_000;

/// The reply for target `i`, which the controller could not claim for its thaw because its
/// slot was in state `found`: someone else (the guardian) has thawed it, or is thawing it.
/// While the guardian's `FITHAW` runs (`GUARDIAN_THAWING`) the outcome is not known yet: it
/// waits for the slot to settle (at most [`GUARDIAN_THAW_WAIT_NS`] from `start`), then reports
/// what the table's one mapping ([`Table::outcome`]) says happened, with the times of the
/// `FITHAW` that did it: thawed (the session's own deadline thaw by a guardian standing in for
/// a controller with no thread: a plain thaw), thawed by the guardian (a rescue), a failed
/// thaw with its errno (the filesystem may still be frozen), or, if it never settled, a failed
/// thaw with `ETIMEDOUT`. Allocates nothing.
fn thawed_by_another<const N: usize>(
    table: &Table<N>,
    i: usize,
    found: u32,
    start: u64,
) -> ThawReply {
    let Some(slot) = table.slot(i) else {
        return ThawReply::Returned {
            result: Err(EBADF),
            start,
            end: start,
        };
    };
    let mut found = found;
    let until = start.saturating_add(GUARDIAN_THAW_WAIT_NS);
    while found == state::GUARDIAN_THAWING {
        let now = now_ns();
        if now >= until {
            return ThawReply::Returned {
                result: Err(ETIMEDOUT),
                start,
                end: now,
            };
        }
        sys::sleep_until(now.saturating_add(SETTLE_POLL_NS).min(until));
        found = slot.state();
    }
    let (s, e) = slot.thaw_times();
    match table.outcome(i) {
        Some(Outcome::ThawedByGuardian) => ThawReply::ByGuardian { start: s, end: e },
        Some(Outcome::Thawed) => ThawReply::Returned {
            result: Ok(()),
            start: s,
            end: e,
        },
        _ => ThawReply::Returned {
            result: Err(match slot.errno() {
                0 => EINVAL,
                e => e,
            }),
            start: s,
            end: e,
        },
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use std::thread;
    use std::time::Duration;

    use rustix::fd::AsFd;

    use super::*;
    use crate::errno::EIO;
    use crate::linux::execute::Ops;
    use crate::linux::table::cause;
    use crate::session::Session;
    use crate::status::Status;

    /// A table whose target 0 is frozen and claimed by the guardian (`GUARDIAN_THAWING`), and
    /// what the controller's thaw of it replies while "the guardian" (a thread) ends its own
    /// `FITHAW` after 50 ms with `settle`, or never.
    fn controller_thaw_while_the_guardian_thaws(settle: Option<(u32, i32)>) -> ThawReply {
        guardian_thaw_for(2_000_000_000, cause::DEADLINE, settle)
    }

    /// The same in a session of grace `grace_ns`, whose guardian acted for `why`.
    fn guardian_thaw_for(grace_ns: u64, why: u32, settle: Option<(u32, i32)>) -> ThawReply {
        let table = Table::<2>::new(1, grace_ns);
        table.set_guardian_cause(why);
        let slot = table.slot(0).unwrap();
        assert!(slot.request_freeze(now_ns()));
        assert!(slot.complete_freeze(Ok(()), now_ns()));
        assert!(slot
            .transition(state::FROZEN, state::GUARDIAN_THAWING)
            .is_ok());
        // Never used: the claim fails, so the controller issues no FITHAW of its own.
        let (r, w) = rustix::pipe::pipe().unwrap();
        let fds = [r.as_fd()];
        thread::scope(|s| {
            if let Some((to, errno)) = settle {
                s.spawn(move || {
                    let start = now_ns();
                    thread::sleep(Duration::from_millis(50));
                    slot.finish_thaw(to, errno, start, now_ns());
                });
            }
            let mut client = Client::new(&table, &fds, w.as_fd(), r.as_fd());
            client.thaw(0)
        })
    }

    #[test]
    fn a_failed_guardian_thaw_is_reported_as_failed_not_as_thawed() {
        match controller_thaw_while_the_guardian_thaws(Some((state::THAW_FAILED, EIO))) {
            ThawReply::Returned { result, .. } => assert_eq!(result, Err(EIO)),
            other => panic!("the guardian's FITHAW failed, yet the reply is {other:?}"),
        }
    }

    #[test]
    fn a_guardian_thaw_is_reported_once_it_has_returned() {
        match controller_thaw_while_the_guardian_thaws(Some((state::THAWED_BY_GUARDIAN, 0))) {
            ThawReply::ByGuardian { start, end } => {
                assert!(
                    start > 0 && end >= start + 40_000_000,
                    "its own times: {start} {end}"
                );
            }
            other => panic!("expected ByGuardian, got {other:?}"),
        }
    }

    #[test]
    fn a_guardian_thaw_at_the_deadline_without_grace_is_a_plain_thaw_with_its_times() {
        // The C ABI's guardian keeps the session's deadline: its thaw is the session's own.
        match guardian_thaw_for(0, cause::DEADLINE, Some((state::THAWED_BY_GUARDIAN, 0))) {
            ThawReply::Returned {
                result: Ok(()),
                start,
                end,
            } => assert!(
                start > 0 && end >= start + 40_000_000,
                "the guardian's FITHAW times: {start} {end}"
            ),
            other => panic!("expected the session's own thaw, got {other:?}"),
        }
        // The same guardian after the controller died: a rescue.
        match guardian_thaw_for(
            0,
            cause::CONTROLLER_GONE,
            Some((state::THAWED_BY_GUARDIAN, 0)),
        ) {
            ThawReply::ByGuardian { .. } => {}
            other => panic!("expected ByGuardian, got {other:?}"),
        }
    }

    /// The controller's conclusion, after the deadline, of a one-target session whose guardian
    /// (grace `grace_ns`) thawed the target at the deadline, its `FITHAW` from `s` to `e`:
    /// the session machine and the client together, as the C ABI's late `quiesce_thaw()` runs
    /// them (no `FITHAW` is issued here: the claim fails).
    fn late_conclusion(grace_ns: u64) -> (Session<1>, Status, u64, u64) {
        use crate::linux::execute::{conclude, Signal};
        use crate::session::{Action, Event};
        let table = Table::<1>::new(1, grace_ns);
        let mut session = Session::<1>::new(&[0], 1_000_000).unwrap();
        let t0 = now_ns();
        assert_eq!(session.next(t0), Action::Freeze(0));
        let slot = table.slot(0).unwrap();
        assert!(slot.request_freeze(t0));
        assert!(slot.complete_freeze(Ok(()), t0 + 10));
        session
            .handle(Event::Froze {
                target: 0,
                start: t0,
                end: t0 + 10,
            })
            .unwrap();
        assert_eq!(session.next(t0 + 10), Action::Notify);
        session.handle(Event::Notified { at: t0 + 10 }).unwrap();
        // The guardian's deadline (the controller's plus the grace) passed: it acts.
        table.set_guardian_cause(cause::DEADLINE);
        assert!(slot
            .transition(state::FROZEN, state::GUARDIAN_THAWING)
            .is_ok());
        let (s, e) = (t0 + 1_000_000, t0 + 1_200_000);
        slot.finish_thaw(state::THAWED_BY_GUARDIAN, 0, s, e);
        thread::sleep(Duration::from_millis(2));
        let (r, w) = rustix::pipe::pipe().unwrap();
        let fds = [r.as_fd()];
        let mut client = Client::new(&table, &fds, w.as_fd(), r.as_fd());
        let status = conclude(&mut session, &mut client, Signal::Acknowledged);
        (session, status, s, e)
    }

    #[test]
    fn a_late_conclusion_reports_the_guardians_deadline_thaw_as_the_sessions_own() {
        // Grace 0 (the C ABI): the session's own deadline thaw, with the guardian's times.
        let (session, status, s, e) = late_conclusion(0);
        assert_eq!(status, Status::Timeout);
        let r = session.target(0).unwrap();
        assert_eq!(r.outcome, Outcome::Thawed);
        assert_eq!((r.thaw_end, r.thaw_ns), (e, e - s), "the guardian's FITHAW");
        assert_eq!(
            session.window_ns(),
            Some(e - r.freeze_start),
            "the window ends with the guardian's FITHAW"
        );
        // A grace the controller should have kept (the CLI's): a rescue.
        let (session, status, _, e) = late_conclusion(2_000_000_000);
        assert_eq!(status, Status::Timeout);
        let r = session.target(0).unwrap();
        assert_eq!(r.outcome, Outcome::ThawedByGuardian);
        assert_eq!(r.thaw_end, e);
    }

    #[test]
    fn someone_else_thawed_under_the_guardian() {
        match controller_thaw_while_the_guardian_thaws(Some((state::THAWED_BY_OTHER, EINVAL))) {
            ThawReply::Returned { result, .. } => assert_eq!(result, Err(EINVAL)),
            other => panic!("expected EINVAL (suspect), got {other:?}"),
        }
    }

    #[test]
    fn a_guardian_thaw_that_never_returns_is_a_failed_thaw_after_the_bound() {
        let started = now_ns();
        match controller_thaw_while_the_guardian_thaws(None) {
            ThawReply::Returned { result, .. } => assert_eq!(result, Err(ETIMEDOUT)),
            other => panic!("expected ETIMEDOUT, got {other:?}"),
        }
        assert!(
            now_ns() - started >= GUARDIAN_THAW_WAIT_NS,
            "it waited the bound"
        );
    }
}
