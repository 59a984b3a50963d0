//! The executor loop: asks the session machine what to do and does it.

use rustix::fd::BorrowedFd;

use super::sys::{self, now_ns, Errno};
use super::table::Tie;
use crate::errno::EBADF;
use crate::session::{Action, Event, Session};
use crate::status::Status;

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
    /// [`Controller::notify`] in a session whose helpers can hold a [`Tie`]: a controller
    /// that starts a process (a snapshot command) publishes its process group there, so that
    /// the guardian kills it if the controller dies while frozen. The default ignores the tie.
    fn notify_tied(&mut self, tie: Tie<'_>) -> Result<(), Errno> {
        let _ = tie;
        self.notify()
    }
    /// Wait until the controller says something or the monotonic clock reaches `until_ns`.
    /// `None` means nothing was said (time is up, or a spurious wake-up: the loop asks again).
    fn wait(&mut self, until_ns: u64) -> Option<Signal>;
}

impl Signal {
    /// The session event that reports this signal, received at monotonic `at`.
    pub fn event(self, at: u64) -> Event {
        match self {
            Signal::Acknowledged => Event::Acknowledged { at },
            Signal::Gone => Event::ControllerGone { at },
            Signal::SnapshotFailed => Event::SnapshotFailed { at },
            Signal::Interrupted => Event::Interrupted { at },
        }
    }
}

/// What became of a `FIFREEZE` the executor asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreezeReply {
    /// The call returned.
    Returned {
        /// Its result.
        result: Result<(), Errno>,
        /// Monotonic ns before the call.
        start: u64,
        /// Monotonic ns after it.
        end: u64,
    },
    /// The deadline came first: the call is abandoned, and whoever completes it thaws at once.
    InFlight {
        /// Monotonic ns when it was issued.
        start: u64,
        /// Monotonic ns when it was given up.
        at: u64,
    },
}

/// What became of a `FITHAW` the executor asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThawReply {
    /// The call returned.
    Returned {
        /// Its result.
        result: Result<(), Errno>,
        /// Monotonic ns before the call.
        start: u64,
        /// Monotonic ns after it.
        end: u64,
    },
    /// The guardian had thawed it already, as a rescue (we were past its deadline and our
    /// grace, or it took over from a dead controller). A thaw by a guardian that is the
    /// session's deadline timer (no grace) is [`ThawReply::Returned`] with its times: the
    /// session's own deadline thaw (`table::GuardianThaw`).
    ByGuardian {
        /// Monotonic ns when the guardian issued `FITHAW`.
        start: u64,
        /// Monotonic ns when it returned.
        end: u64,
    },
}

impl FreezeReply {
    /// The session event that reports this reply for `target`.
    pub fn event(self, target: usize) -> Event {
        match self {
            FreezeReply::Returned {
                result: Ok(()),
                start,
                end,
            } => Event::Froze { target, start, end },
            FreezeReply::Returned {
                result: Err(errno),
                start,
                end,
            } => Event::FreezeFailed {
                target,
                errno,
                start,
                end,
            },
            FreezeReply::InFlight { start, at } => Event::FreezeInFlight { target, start, at },
        }
    }
}

impl ThawReply {
    /// The session event that reports this reply for `target`.
    pub fn event(self, target: usize) -> Event {
        match self {
            ThawReply::Returned {
                result: Ok(()),
                start,
                end,
            } => Event::Thawed { target, start, end },
            ThawReply::Returned {
                result: Err(errno),
                start,
                end,
            } => Event::ThawFailed {
                target,
                errno,
                start,
                end,
            },
            ThawReply::ByGuardian { start, end } => Event::ThawedByGuardian { target, start, end },
        }
    }
}

/// How the executor freezes and thaws targets: directly ([`Direct`]), or through helper
/// processes that keep the deadline even when `FIFREEZE` hangs
/// ([`Client`](super::freezer::Client)). Implementations must not allocate.
pub trait Ops {
    /// Freezes target `i`; gives up at `deadline` (monotonic ns) if it can.
    fn freeze(&mut self, i: usize, deadline: u64) -> FreezeReply;
    /// Freezes every target of `targets` (independent of each other), at once if the
    /// implementation can; `replies[k]` answers `targets[k]`. Gives up at `deadline`. The
    /// default freezes one after the other.
    fn freeze_wave(&mut self, targets: &[u16], deadline: u64, replies: &mut [FreezeReply]) {
        for (&i, reply) in targets.iter().zip(replies.iter_mut()) {
            *reply = self.freeze(usize::from(i), deadline);
        }
    }
    /// Thaws target `i`.
    fn thaw(&mut self, i: usize) -> ThawReply;
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

/// `FIFREEZE` and `FITHAW` on the calling thread, one descriptor per target. A `FIFREEZE` that
/// hangs in the kernel hangs the caller with it: use the helpers
/// ([`Client`](super::freezer::Client)) where the deadline must hold regardless.
pub struct Direct<'a, 'fd> {
    fds: &'a [BorrowedFd<'fd>],
}

impl<'a, 'fd> Direct<'a, 'fd> {
    /// Freezes `fds[i]` for target `i`.
    pub fn new(fds: &'a [BorrowedFd<'fd>]) -> Self {
        Direct { fds }
    }
}

impl Ops for Direct<'_, '_> {
    fn freeze(&mut self, i: usize, _deadline: u64) -> FreezeReply {
        let (result, start, end) = timed(self.fds, i, sys::freeze);
        FreezeReply::Returned { result, start, end }
    }

    fn thaw(&mut self, i: usize) -> ThawReply {
        let (result, start, end) = timed(self.fds, i, sys::thaw);
        ThawReply::Returned { result, start, end }
    }
}

/// Runs `session` to the end: freezes `fds[i]` for target `i` on this thread, notifies and
/// waits on `controller`, thaws, and returns the final status. Allocates nothing.
pub fn execute<const N: usize, C: Controller + ?Sized>(
    session: &mut Session<N>,
    fds: &[BorrowedFd<'_>],
    controller: &mut C,
) -> Status {
    execute_with(session, &mut Direct::new(fds), controller)
}

/// Runs `session` to the end with `ops` doing the freezes and thaws. Allocates nothing.
pub fn execute_with<const N: usize, O: Ops + ?Sized, C: Controller + ?Sized>(
    session: &mut Session<N>,
    ops: &mut O,
    controller: &mut C,
) -> Status {
    loop {
        let notify = &mut || match controller.notify() {
            Ok(()) => Event::Notified { at: now_ns() },
            Err(errno) => Event::NotifyFailed {
                errno,
                at: now_ns(),
            },
        };
        let until = match advance(session, ops, notify) {
            Ok(until) => until,
            Err(status) => return status,
        };
        if let Some(signal) = controller.wait(until) {
            deliver(session, signal.event(now_ns()));
        }
    }
}

/// Runs `session` until it waits for the controller (`Ok(until)`, the deadline of the wait) or
/// ends (`Err(status)`): every `FIFREEZE` and `FITHAW` through `ops`; `notify` tells the
/// controller that everything is frozen and returns the event that reports it. The one loop
/// of the executor (the engine of `quiesce-ffi` builds its lifecycle on it); allocates
/// nothing.
pub fn advance<const N: usize, O: Ops + ?Sized>(
    session: &mut Session<N>,
    ops: &mut O,
    notify: &mut dyn FnMut() -> Event,
) -> Result<u64, Status> {
    loop {
        let event = match session.next(now_ns()) {
            Action::Freeze(i) => ops
                .freeze(i, session.deadline().unwrap_or(u64::MAX))
                .event(i),
            Action::FreezeWave { first, count } => {
                freeze_wave(session, ops, first, count);
                continue;
            }
            Action::Notify => notify(),
            Action::Wait { until } => return Ok(until),
            Action::Thaw(i) => ops.thaw(i).event(i),
            Action::Done(status) => return Err(status),
        };
        deliver(session, event);
    }
}

/// Issues the wave `order[first..first + count]` through `ops` and reports every reply.
fn freeze_wave<const N: usize, O: Ops + ?Sized>(
    session: &mut Session<N>,
    ops: &mut O,
    first: usize,
    count: usize,
) {
    let mut targets = [0u16; N];
    let n = count.min(N);
    if let Some(wave) = session.order().get(first..first + n) {
        targets[..n].copy_from_slice(wave);
    }
    let mut replies = [FreezeReply::InFlight { start: 0, at: 0 }; N];
    let deadline = session.deadline().unwrap_or(u64::MAX);
    ops.freeze_wave(&targets[..n], deadline, &mut replies[..n]);
    for (&i, reply) in targets[..n].iter().zip(&replies[..n]) {
        deliver(session, reply.event(usize::from(i)));
    }
}

/// Hands `event` to the machine. It only rejects events it did not ask for; every event the
/// executor makes answers the action just taken, so a rejection is a bug. The machine keeps
/// its state and will still lead to thaw.
pub fn deliver<const N: usize>(session: &mut Session<N>, event: Event) {
    if session.handle(event).is_err() {
        debug_assert!(false, "session rejected {event:?}");
    }
}

/// Two-phase use, first phase: runs `session` until every target is frozen (`Ok`: the caller
/// now takes the snapshot, and ends the session with [`conclude`]) or until it ended without
/// that (`Err(status)`: everything we froze is thawed again). The return itself is the
/// notification. Allocates nothing.
pub fn run_until_frozen<const N: usize, O: Ops + ?Sized>(
    session: &mut Session<N>,
    ops: &mut O,
) -> Result<(), Status> {
    advance(session, ops, &mut || Event::Notified { at: now_ns() }).map(|_| ())
}

/// Two-phase use, second phase: delivers `signal` (what became of the snapshot) and runs
/// `session` to the end: thaws in reverse and returns the final status. Past the deadline the
/// machine ends on the deadline instead (and the guardian may have thawed already). Allocates
/// nothing.
pub fn conclude<const N: usize, O: Ops + ?Sized>(
    session: &mut Session<N>,
    ops: &mut O,
    signal: Signal,
) -> Status {
    let notify = &mut || Event::Notified { at: now_ns() };
    let mut signal = Some(signal);
    loop {
        match advance(session, ops, notify) {
            Err(status) => return status,
            Ok(until) => match signal.take() {
                Some(s) => deliver(session, s.event(now_ns())),
                // The machine declined the signal and still waits: sleep to its deadline.
                None => sys::sleep_until(until),
            },
        }
    }
}
