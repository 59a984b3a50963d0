//! The session machine: freeze -> signal -> await -> thaw, with one deadline.
//!
//! Sans-IO, after quinn-proto: the machine never performs a syscall and never reads a clock.
//! The caller asks [`Session::next`] what to do, passing the current monotonic time in
//! nanoseconds; performs the [`Action`]; and reports what happened with [`Session::handle`].
//!
//! Rules the machine enforces (ARCHITECTURE.md, rules 1, 4 and 5):
//! - one deadline, `timeout` after the first `FIFREEZE` is issued, covering the whole window;
//!   a freeze that completes after the deadline does not count as success;
//! - every path that leaves the await phase, and every error, ends in thaw actions for exactly
//!   the targets frozen so far, in reverse order of freezing;
//! - only an explicit acknowledgement makes the outcome consistent.

use crate::status::{Consistency, Status};

pub use crate::errno::{EBUSY, EINVAL};

/// What the caller must do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Issue `FIFREEZE` on target `i` and report [`Event::Froze`] or [`Event::FreezeFailed`].
    Freeze(usize),
    /// Issue `FIFREEZE` on every target of `order()[first..first + count]` at once (they do
    /// not depend on each other: see [`Session::with_wave_starts`]) and report one event per
    /// target ([`Event::Froze`], [`Event::FreezeFailed`] or [`Event::FreezeInFlight`]), in
    /// any order. The machine decides only when it has all of them. `count` is at least 2.
    FreezeWave {
        /// The first position in [`Session::order`].
        first: usize,
        /// How many positions.
        count: usize,
    },
    /// Tell the controller that everything is frozen; report [`Event::Notified`] or
    /// [`Event::NotifyFailed`].
    Notify,
    /// Wait for the controller until this monotonic time (ns); report what it said, or just
    /// call [`Session::next`] again when the time has come.
    Wait {
        /// Monotonic nanoseconds.
        until: u64,
    },
    /// Issue `FITHAW` on target `i` and report [`Event::Thawed`] or [`Event::ThawFailed`].
    Thaw(usize),
    /// The session is over, with this status.
    Done(Status),
}

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// `FIFREEZE` on `target` succeeded; `start` and `end` bracket the call.
    Froze {
        /// Target index.
        target: usize,
        /// Monotonic ns before the call.
        start: u64,
        /// Monotonic ns after the call.
        end: u64,
    },
    /// The deadline came while `FIFREEZE` on `target` was still in flight (stuck in the
    /// kernel): it is abandoned, and whoever completes it thaws it at once (the freezer).
    FreezeInFlight {
        /// Target index.
        target: usize,
        /// Monotonic ns when the call was issued.
        start: u64,
        /// Monotonic ns when it was given up.
        at: u64,
    },
    /// `FIFREEZE` on `target` failed with `errno`.
    FreezeFailed {
        /// Target index.
        target: usize,
        /// The raw errno.
        errno: i32,
        /// Monotonic ns before the call.
        start: u64,
        /// Monotonic ns after the call.
        end: u64,
    },
    /// The controller was told.
    Notified {
        /// Monotonic ns.
        at: u64,
    },
    /// The controller could not be told (it is gone).
    NotifyFailed {
        /// The raw errno.
        errno: i32,
        /// Monotonic ns.
        at: u64,
    },
    /// The controller said, explicitly, that the snapshot has been taken.
    Acknowledged {
        /// Monotonic ns.
        at: u64,
    },
    /// The controller went away without acknowledging (EOF, exit, death).
    ControllerGone {
        /// Monotonic ns.
        at: u64,
    },
    /// The controller said the snapshot failed (e.g. the snapshot command exited non-zero).
    SnapshotFailed {
        /// Monotonic ns.
        at: u64,
    },
    /// A signal asked us to stop.
    Interrupted {
        /// Monotonic ns.
        at: u64,
    },
    /// `FITHAW` on `target` succeeded.
    Thawed {
        /// Target index.
        target: usize,
        /// Monotonic ns before the call.
        start: u64,
        /// Monotonic ns after the call.
        end: u64,
    },
    /// `target` was thawed by the guardian's rescue before we got to it (we missed the
    /// guardian's deadline, past its grace): thawed, but the window was longer than the
    /// deadline. A thaw by a guardian that is the session's deadline timer (no grace) is
    /// reported as [`Event::Thawed`], with its times.
    ThawedByGuardian {
        /// Target index.
        target: usize,
        /// Monotonic ns when the guardian issued `FITHAW`.
        start: u64,
        /// Monotonic ns when it returned.
        end: u64,
    },
    /// `FITHAW` on `target` failed with `errno`.
    ThawFailed {
        /// Target index.
        target: usize,
        /// The raw errno.
        errno: i32,
        /// Monotonic ns before the call.
        start: u64,
        /// Monotonic ns after the call.
        end: u64,
    },
}

/// Why the await phase ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// Not over yet.
    None,
    /// The controller acknowledged the snapshot.
    Acknowledged,
    /// The deadline passed.
    Deadline,
    /// The controller went away.
    ControllerGone,
    /// A freeze failed.
    FreezeFailed,
    /// The snapshot failed.
    SnapshotFailed,
    /// A signal interrupted the session.
    Interrupted,
}

impl End {
    /// A stable name.
    pub const fn name(self) -> &'static str {
        match self {
            End::None => "none",
            End::Acknowledged => "acknowledged",
            End::Deadline => "deadline",
            End::ControllerGone => "controller-gone",
            End::FreezeFailed => "freeze-failed",
            End::SnapshotFailed => "snapshot-failed",
            End::Interrupted => "interrupted",
        }
    }
}

/// Where one target stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Not reached (an earlier freeze failed, or the deadline came first).
    NotAttempted,
    /// Frozen and not yet thawed.
    Frozen,
    /// `FIFREEZE` failed; never frozen by us.
    FreezeFailed,
    /// Frozen and thawed again by us: by the controller, or at the deadline by the guardian
    /// standing in as the deadline timer of a session without grace (the C ABI's:
    /// `linux::table::GuardianThaw::Deadline`).
    Thawed,
    /// Frozen by us, but `FITHAW` found it already thawed: someone else thawed it.
    ThawedByOther,
    /// `FITHAW` failed: it may still be frozen.
    ThawFailed,
    /// Its `FIFREEZE` had not returned at the deadline: abandoned, and thawed by the freezer
    /// as soon as it returns.
    InFlight,
    /// Frozen by us and thawed by the guardian's rescue: the controller died, or missed the
    /// deadline by more than the guardian's grace (it was stuck).
    ThawedByGuardian,
    /// Already frozen by another holder (`EBUSY`) and skipped by the `IfFrozen::Skip`
    /// policy: the snapshot does not cover it.
    NotCovered,
}

impl Outcome {
    /// A stable name.
    pub const fn name(self) -> &'static str {
        match self {
            Outcome::NotAttempted => "not-attempted",
            Outcome::Frozen => "frozen",
            Outcome::FreezeFailed => "freeze-failed",
            Outcome::Thawed => "thawed",
            Outcome::ThawedByOther => "thawed-by-other",
            Outcome::ThawFailed => "thaw-failed",
            Outcome::InFlight => "in-flight-at-deadline",
            Outcome::ThawedByGuardian => "thawed-by-guardian",
            Outcome::NotCovered => "not-covered",
        }
    }

    /// [`Outcome::name`] with a trailing NUL, for C.
    pub const fn name_with_nul(self) -> &'static str {
        match self {
            Outcome::NotAttempted => "not-attempted\0",
            Outcome::Frozen => "frozen\0",
            Outcome::FreezeFailed => "freeze-failed\0",
            Outcome::Thawed => "thawed\0",
            Outcome::ThawedByOther => "thawed-by-other\0",
            Outcome::ThawFailed => "thaw-failed\0",
            Outcome::InFlight => "in-flight-at-deadline\0",
            Outcome::ThawedByGuardian => "thawed-by-guardian\0",
            Outcome::NotCovered => "not-covered\0",
        }
    }
}

/// The record of one target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TargetRecord {
    /// Where it stands.
    pub outcome: Outcome,
    /// The errno of the failed call, or 0.
    pub errno: i32,
    /// Monotonic ns when `FIFREEZE` was issued (0: never).
    pub freeze_start: u64,
    /// How long `FIFREEZE` took, in ns.
    pub freeze_ns: u64,
    /// Monotonic ns when `FITHAW` returned (0: never).
    pub thaw_end: u64,
    /// How long `FITHAW` took, in ns.
    pub thaw_ns: u64,
}

impl TargetRecord {
    const NEW: TargetRecord = TargetRecord {
        outcome: Outcome::NotAttempted,
        errno: 0,
        freeze_start: 0,
        freeze_ns: 0,
        thaw_end: 0,
        thaw_ns: 0,
    };
}

/// A wave of freezes issued at once: positions `pos..end`, `left` of them still unreported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Wave {
    pos: usize,
    end: usize,
    left: usize,
    /// The worst failure reported so far (`Status::Ok`: none) and when it came.
    failure: Status,
    failed_at: u64,
    /// The first report that came at or after the deadline.
    late_at: Option<u64>,
    /// When the last report came.
    last_at: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Freezing `order[pos]` next.
    Freezing {
        pos: usize,
        issued: bool,
    },
    /// Waiting for the reports of a wave.
    FreezingWave(Wave),
    Notifying {
        issued: bool,
    },
    Awaiting,
    /// Thawing the frozen ones among `order[..pos]`, from the back.
    Thawing {
        pos: usize,
        issued: bool,
    },
    Done,
}

/// What to do when a filesystem is already frozen by another holder (`EBUSY` on `FIFREEZE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum IfFrozen {
    /// Fail the session (status `FrozenByOther`), thawing what we froze; theirs is left alone.
    #[default]
    Fail,
    /// Leave it out, report it as not covered, and freeze the rest. If nothing at all could be
    /// frozen, the session fails as with `Fail`.
    Skip,
}

/// A misuse of the machine: an event it did not ask for. The state is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnexpectedEvent;

/// Parameters that cannot make a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionError {
    /// No target: a session that freezes nothing cannot claim any consistency (the planners
    /// refuse an empty plan first, naming what was skipped).
    NoTargets,
    /// More targets than the capacity `N`.
    TooManyTargets,
    /// The order names a target twice or one that does not exist.
    BadOrder,
    /// The timeout is zero.
    ZeroTimeout,
}

/// One freeze session over up to `N` targets. Plain data, no allocation: it can live in
/// caller-provided storage.
#[derive(Clone, Debug)]
pub struct Session<const N: usize> {
    n: usize,
    order: [u16; N],
    records: [TargetRecord; N],
    timeout_ns: u64,
    deadline: Option<u64>,
    phase: Phase,
    end: End,
    status: Status,
    ended_at: u64,
    window_start: Option<u64>,
    window_end: Option<u64>,
    if_frozen: IfFrozen,
    /// `wave_start[p]`: position `p` cannot be frozen together with `p - 1` (and so with any
    /// earlier position). All true: one `FIFREEZE` after another.
    wave_start: [bool; N],
}

impl<const N: usize> Session<N> {
    /// A session that freezes targets `0..order.len()` in `order`, with `timeout_ns` from
    /// the first `FIFREEZE` to the last `FITHAW`. At least one target.
    pub fn new(order: &[u16], timeout_ns: u64) -> Result<Self, SessionError> {
        if order.is_empty() {
            return Err(SessionError::NoTargets);
        }
        if order.len() > N {
            return Err(SessionError::TooManyTargets);
        }
        if timeout_ns == 0 {
            return Err(SessionError::ZeroTimeout);
        }
        let mut seen = [false; N];
        let mut ord = [0u16; N];
        for (slot, &i) in ord.iter_mut().zip(order) {
            let i_us = i as usize;
            match seen.get_mut(i_us) {
                Some(s) if i_us < order.len() && !*s => *s = true,
                _ => return Err(SessionError::BadOrder),
            }
            *slot = i;
        }
        Ok(Session {
            n: order.len(),
            order: ord,
            records: [TargetRecord::NEW; N],
            timeout_ns,
            deadline: None,
            phase: Phase::Freezing {
                pos: 0,
                issued: false,
            },
            end: End::None,
            status: Status::Ok,
            ended_at: 0,
            window_start: None,
            window_end: None,
            if_frozen: IfFrozen::Fail,
            wave_start: [true; N],
        })
    }

    /// Lets independent targets be frozen at once. `starts[p]` says whether position `p` of
    /// the order begins a new wave; a wave is a run of consecutive positions that the caller
    /// may freeze in parallel (no target in it must be frozen before another in it: storage
    /// dependencies always start a new wave). Positions beyond `starts` begin their own wave;
    /// position 0 always does. Without this call every freeze is its own wave.
    pub fn with_wave_starts(mut self, starts: &[bool]) -> Self {
        for (p, w) in self.wave_start.iter_mut().enumerate() {
            *w = p == 0 || starts.get(p).copied().unwrap_or(true);
        }
        self
    }

    /// The wave that begins at position `pos`: its end (exclusive).
    fn wave_end(&self, pos: usize) -> usize {
        let mut end = pos + 1;
        while end < self.n && !self.wave_start[end] {
            end += 1;
        }
        end
    }

    /// The wave that position `pos` of the order is frozen in (0 first).
    pub fn wave_of(&self, pos: usize) -> usize {
        self.wave_start[..self.n.min(pos + 1)]
            .iter()
            .filter(|&&w| w)
            .count()
            .saturating_sub(1)
    }

    /// How many waves the order makes.
    pub fn wave_count(&self) -> usize {
        self.wave_start[..self.n].iter().filter(|&&w| w).count()
    }

    /// Sets the policy for filesystems that another holder has frozen already.
    pub fn with_if_frozen(mut self, policy: IfFrozen) -> Self {
        self.if_frozen = policy;
        self
    }

    /// What to do now. `now` is the monotonic clock in ns; it also serves as the tick that
    /// lets the deadline fire.
    pub fn next(&mut self, now: u64) -> Action {
        // The clock starts with the first action: the first FIFREEZE.
        if self.deadline.is_none() {
            self.deadline = Some(now.saturating_add(self.timeout_ns));
        }
        if let Some(d) = self.deadline {
            if now >= d
                && matches!(
                    self.phase,
                    Phase::Freezing { issued: false, .. }
                        | Phase::Notifying { issued: false }
                        | Phase::Awaiting
                )
            {
                self.finish_window(End::Deadline, Status::Timeout, now);
            }
        }
        match self.phase {
            Phase::Freezing { pos, .. } => match self.order.get(pos).filter(|_| pos < self.n) {
                Some(&i) => {
                    let end = self.wave_end(pos);
                    if end - pos > 1 {
                        self.phase = Phase::FreezingWave(Wave {
                            pos,
                            end,
                            left: end - pos,
                            failure: Status::Ok,
                            failed_at: 0,
                            late_at: None,
                            last_at: now,
                        });
                        return Action::FreezeWave {
                            first: pos,
                            count: end - pos,
                        };
                    }
                    self.phase = Phase::Freezing { pos, issued: true };
                    Action::Freeze(i as usize)
                }
                None => {
                    self.phase = Phase::Notifying { issued: true };
                    Action::Notify
                }
            },
            // Asked again before every report came: the same action (report each target once).
            Phase::FreezingWave(w) => Action::FreezeWave {
                first: w.pos,
                count: w.end - w.pos,
            },
            Phase::Notifying { .. } => {
                self.phase = Phase::Notifying { issued: true };
                Action::Notify
            }
            Phase::Awaiting => Action::Wait {
                until: self.deadline.unwrap_or(now),
            },
            Phase::Thawing { pos, .. } => {
                let last = self.order[..pos.min(self.n)]
                    .iter()
                    .enumerate()
                    .rev()
                    .find(|(_, &i)| self.record(i as usize).outcome == Outcome::Frozen);
                match last {
                    Some((p, &i)) => {
                        self.phase = Phase::Thawing {
                            pos: p + 1,
                            issued: true,
                        };
                        Action::Thaw(i as usize)
                    }
                    None => {
                        self.phase = Phase::Done;
                        Action::Done(self.status)
                    }
                }
            }
            Phase::Done => Action::Done(self.status),
        }
    }

    /// Reports what happened.
    pub fn handle(&mut self, event: Event) -> Result<(), UnexpectedEvent> {
        if let Phase::FreezingWave(w) = self.phase {
            return self.handle_wave(w, event);
        }
        match (self.phase, event) {
            (Phase::Freezing { pos, issued: true }, Event::Froze { target, start, end })
                if self.at(pos) == Some(target) =>
            {
                let r = &mut self.records[target];
                r.outcome = Outcome::Frozen;
                r.freeze_start = start;
                r.freeze_ns = end.saturating_sub(start);
                self.window_start = Some(self.window_start.map_or(start, |s| s.min(start)));
                self.phase = Phase::Freezing {
                    pos: pos + 1,
                    issued: false,
                };
                // A freeze that returned after the deadline is not a success (failure 4).
                if self.deadline.is_some_and(|d| end >= d) {
                    self.finish_window(End::Deadline, Status::Timeout, end);
                }
            }
            (
                Phase::Freezing { pos, issued: true },
                Event::FreezeFailed {
                    target,
                    errno,
                    start,
                    end,
                },
            ) if self.at(pos) == Some(target) => {
                let r = &mut self.records[target];
                r.outcome = Outcome::FreezeFailed;
                r.errno = errno;
                r.freeze_start = start;
                r.freeze_ns = end.saturating_sub(start);
                self.phase = Phase::Freezing { pos, issued: false };
                if errno == EBUSY && self.if_frozen == IfFrozen::Skip {
                    // Another holder's freeze: leave it alone and go on with the rest.
                    r.outcome = Outcome::NotCovered;
                    self.phase = Phase::Freezing {
                        pos: pos + 1,
                        issued: false,
                    };
                    if self.deadline.is_some_and(|d| end >= d) {
                        self.finish_window(End::Deadline, Status::Timeout, end);
                    } else if pos + 1 >= self.n && !self.anything_frozen() {
                        // Nothing at all is ours: there is no snapshot to take.
                        self.finish_window(End::FreezeFailed, Status::FrozenByOther, end);
                    }
                    return Ok(());
                }
                let status = if errno == EBUSY {
                    Status::FrozenByOther
                } else {
                    Status::FreezeFailed
                };
                self.finish_window(End::FreezeFailed, status, end);
            }
            (
                Phase::Freezing { pos, issued: true },
                Event::FreezeInFlight { target, start, at },
            ) if self.at(pos) == Some(target) => {
                let r = &mut self.records[target];
                r.outcome = Outcome::InFlight;
                r.freeze_start = start;
                r.freeze_ns = at.saturating_sub(start);
                if self.window_start.is_none() {
                    self.window_start = Some(start);
                }
                // Not frozen by us as far as this machine knows: never thawed here (its
                // freezer thaws it when the call returns). Nothing after it is frozen.
                self.phase = Phase::Freezing { pos, issued: false };
                if self.deadline.is_some_and(|d| at >= d) {
                    self.finish_window(End::Deadline, Status::Timeout, at);
                } else {
                    self.finish_window(End::FreezeFailed, Status::FreezeFailed, at);
                }
            }
            (Phase::Notifying { issued: true }, Event::Notified { .. }) => {
                self.phase = Phase::Awaiting;
            }
            (Phase::Notifying { issued: true }, Event::NotifyFailed { at, .. }) => {
                self.finish_window(End::ControllerGone, Status::NotAcknowledged, at);
            }
            (Phase::Awaiting, Event::Acknowledged { at }) => {
                self.finish_window(End::Acknowledged, Status::Ok, at);
            }
            (Phase::Awaiting | Phase::Notifying { .. }, Event::ControllerGone { at }) => {
                self.finish_window(End::ControllerGone, Status::NotAcknowledged, at);
            }
            (Phase::Awaiting | Phase::Notifying { .. }, Event::SnapshotFailed { at }) => {
                self.finish_window(End::SnapshotFailed, Status::SnapshotFailed, at);
            }
            (
                Phase::Freezing { issued: false, .. }
                | Phase::Notifying { issued: false }
                | Phase::Awaiting,
                Event::Interrupted { at },
            ) => {
                self.finish_window(End::Interrupted, Status::Interrupted, at);
            }
            (Phase::Thawing { issued: true, pos }, Event::Thawed { target, start, end })
                if pos.checked_sub(1).and_then(|p| self.at(p)) == Some(target) =>
            {
                let r = &mut self.records[target];
                r.outcome = Outcome::Thawed;
                r.thaw_end = end;
                r.thaw_ns = end.saturating_sub(start);
                self.window_end = Some(end);
                self.phase = Phase::Thawing {
                    pos: pos - 1,
                    issued: false,
                };
            }
            (
                Phase::Thawing { issued: true, pos },
                Event::ThawedByGuardian { target, start, end },
            ) if pos.checked_sub(1).and_then(|p| self.at(p)) == Some(target) => {
                let r = &mut self.records[target];
                r.outcome = Outcome::ThawedByGuardian;
                r.thaw_end = end;
                r.thaw_ns = end.saturating_sub(start);
                // The guardian acts only after the deadline (plus its grace): the window was
                // longer than the deadline.
                self.status = self.status.worst(Status::Timeout);
                self.window_end = Some(self.window_end.map_or(end, |w| w.max(end)));
                self.phase = Phase::Thawing {
                    pos: pos - 1,
                    issued: false,
                };
            }
            (
                Phase::Thawing { issued: true, pos },
                Event::ThawFailed {
                    target,
                    errno,
                    start,
                    end,
                },
            ) if pos.checked_sub(1).and_then(|p| self.at(p)) == Some(target) => {
                let r = &mut self.records[target];
                r.errno = errno;
                r.thaw_end = end;
                r.thaw_ns = end.saturating_sub(start);
                let status = if errno == EINVAL {
                    // Not frozen any more: someone else thawed it inside our window.
                    r.outcome = Outcome::ThawedByOther;
                    Status::Suspect
                } else {
                    r.outcome = Outcome::ThawFailed;
                    Status::ThawFailed
                };
                self.status = self.status.worst(status);
                self.window_end = Some(end);
                self.phase = Phase::Thawing {
                    pos: pos - 1,
                    issued: false,
                };
            }
            _ => return Err(UnexpectedEvent),
        }
        Ok(())
    }

    /// One report of a wave; the decision waits for the last one.
    fn handle_wave(&mut self, mut w: Wave, event: Event) -> Result<(), UnexpectedEvent> {
        let (Event::Froze { target, .. }
        | Event::FreezeFailed { target, .. }
        | Event::FreezeInFlight { target, .. }) = event
        else {
            return Err(UnexpectedEvent);
        };
        let in_wave = self.order[w.pos..w.end]
            .iter()
            .any(|&i| usize::from(i) == target);
        if !in_wave || self.record(target).outcome != Outcome::NotAttempted {
            return Err(UnexpectedEvent);
        }
        let deadline = self.deadline.unwrap_or(u64::MAX);
        let r = &mut self.records[target];
        let (start, at) = match event {
            Event::Froze { start, end, .. } => {
                r.outcome = Outcome::Frozen;
                (start, end)
            }
            Event::FreezeFailed {
                errno, start, end, ..
            } => {
                r.errno = errno;
                r.outcome = Outcome::FreezeFailed;
                if errno == EBUSY && self.if_frozen == IfFrozen::Skip {
                    r.outcome = Outcome::NotCovered;
                } else {
                    let status = if errno == EBUSY {
                        Status::FrozenByOther
                    } else {
                        Status::FreezeFailed
                    };
                    if w.failure == Status::Ok {
                        w.failed_at = end;
                    }
                    w.failure = w.failure.worst(status);
                }
                (start, end)
            }
            Event::FreezeInFlight { start, at, .. } => {
                r.outcome = Outcome::InFlight;
                if at < deadline {
                    if w.failure == Status::Ok {
                        w.failed_at = at;
                    }
                    w.failure = w.failure.worst(Status::FreezeFailed);
                }
                (start, at)
            }
            _ => return Err(UnexpectedEvent),
        };
        r.freeze_start = start;
        r.freeze_ns = at.saturating_sub(start);
        if matches!(r.outcome, Outcome::Frozen | Outcome::InFlight) {
            self.window_start = Some(self.window_start.map_or(start, |s| s.min(start)));
        }
        if at >= deadline && matches!(r.outcome, Outcome::Frozen | Outcome::InFlight) {
            w.late_at = Some(w.late_at.map_or(at, |l| l.min(at)));
        }
        w.last_at = w.last_at.max(at);
        w.left -= 1;
        if w.left > 0 {
            self.phase = Phase::FreezingWave(w);
            return Ok(());
        }
        // Every report is in: decide as for one freeze after another, worst first.
        self.phase = Phase::Freezing {
            pos: w.end,
            issued: false,
        };
        if w.failure != Status::Ok {
            self.finish_window(End::FreezeFailed, w.failure, w.failed_at);
            if w.late_at.is_some() {
                self.status = self.status.worst(Status::Timeout);
            }
        } else if let Some(late) = w.late_at {
            self.finish_window(End::Deadline, Status::Timeout, late);
        } else if w.end >= self.n && !self.anything_frozen() {
            // Everything was skipped as another holder's: there is no snapshot to take.
            self.finish_window(End::FreezeFailed, Status::FrozenByOther, w.last_at);
        }
        Ok(())
    }

    fn at(&self, pos: usize) -> Option<usize> {
        self.order
            .get(pos)
            .filter(|_| pos < self.n)
            .map(|&i| i as usize)
    }

    fn finish_window(&mut self, end: End, status: Status, at: u64) {
        if self.end == End::None {
            self.end = end;
            self.ended_at = at;
        }
        self.status = self.status.worst(status);
        let pos = match self.phase {
            Phase::Freezing { pos, .. } => pos,
            _ => self.n,
        };
        self.phase = Phase::Thawing { pos, issued: false };
    }

    fn record(&self, i: usize) -> TargetRecord {
        self.records.get(i).copied().unwrap_or(TargetRecord::NEW)
    }

    /// The policy for filesystems frozen by another holder.
    pub fn if_frozen(&self) -> IfFrozen {
        self.if_frozen
    }

    /// The number of targets.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether the session has no targets.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The freeze order.
    pub fn order(&self) -> &[u16] {
        &self.order[..self.n]
    }

    /// The record of target `i`.
    pub fn target(&self, i: usize) -> Option<&TargetRecord> {
        self.records[..self.n].get(i)
    }

    /// Whether the session is over.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Whether anything is frozen by us right now.
    pub fn anything_frozen(&self) -> bool {
        self.records[..self.n]
            .iter()
            .any(|r| r.outcome == Outcome::Frozen)
    }

    /// The status so far (final once [`Session::is_done`]).
    pub fn status(&self) -> Status {
        self.status
    }

    /// Why the await phase ended.
    pub fn end(&self) -> End {
        self.end
    }

    /// Monotonic ns when the window ended (acknowledgement, deadline, error); 0 if open.
    pub fn ended_at(&self) -> u64 {
        self.ended_at
    }

    /// The deadline, once the first freeze was issued.
    pub fn deadline(&self) -> Option<u64> {
        self.deadline
    }

    /// The frozen window in ns: first `FIFREEZE` issued to last `FITHAW` returned.
    pub fn window_ns(&self) -> Option<u64> {
        match (self.window_start, self.window_end) {
            (Some(s), Some(e)) => Some(e.saturating_sub(s)),
            _ => None,
        }
    }

    /// How far the snapshot can be trusted.
    pub fn consistency(&self) -> Consistency {
        if self.is_done() && self.status == Status::Ok && self.end == End::Acknowledged {
            Consistency::FileSystem
        } else {
            Consistency::None
        }
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
