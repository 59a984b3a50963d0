//! The table of per-target states that the controller shares with its helper processes (the
//! freezer and the guardian), as atomics in a `MAP_SHARED` anonymous mapping.
//!
//! Every change of hands is a compare-and-swap, so that exactly one process thaws each
//! filesystem, and none thaws what it did not freeze:
//!
//! ```text
//! PENDING --controller--> IN_FLIGHT --freezer--> FROZEN --controller--> THAWING --> THAWED
//!                             |                  |  \--guardian---> GUARDIAN_THAWING --> THAWED_BY_GUARDIAN
//!                             |                  \----------------> (thaw failed) THAW_FAILED
//!                             |                     (either thaw: EINVAL, someone else thawed) THAWED_BY_OTHER
//!                             \--controller at its deadline, or guardian--> ABANDONED
//! ABANDONED --freezer, when FIFREEZE returns--> THAWED_LATE (it froze: thawed at once)
//!                                               | FAILED_LATE (it failed: nothing to thaw)
//!                                               | CANCELLED (never issued)
//! IN_FLIGHT --freezer--> FREEZE_FAILED
//! ```
//!
//! A controller that finds a target in `GUARDIAN_THAWING` waits for it to settle before it
//! reports anything ([`freezer::Client`](super::freezer::Client)'s thaw): until the guardian's
//! `FITHAW` returns, the filesystem may still be frozen.
//!
//! The guardian also records why it acted ([`cause`]: its own deadline passed, or the
//! controller went away), before it claims any slot. A slot's state becomes a target's outcome
//! in one place, [`state::outcome`], which reads a guardian's thaw with that cause and the
//! session's grace ([`GuardianThaw`]): in a session without grace the guardian is the
//! deadline timer of a controller that has no thread of its own (the C ABI), and a thaw it
//! made because the deadline passed is the session's own deadline thaw (`thawed`); a thaw after
//! the controller died, or past a grace the controller should have kept, is a rescue
//! (`thawed-by-guardian`).
//!
//! The table is plain data with a fixed layout (`repr(C)`), so that it can be placed in memory
//! that a forked child shares; it allocates nothing and takes no locks.
//!
//! It also holds the session's [`Tie`]: the process group of what the controller started while
//! frozen (the snapshot command of `quiesce run`), which the guardian kills when it acts, so
//! that nothing the session started goes on reading a filesystem that the guardian thawed.

use core::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};

/// The most freezer processes one session runs (they freeze independent targets at once and
/// pre-sync them).
pub const MAX_FREEZERS: usize = 16;

/// Where one target's pre-sync (`syncfs` before the first `FIFREEZE`) stands.
pub mod sync {
    /// Not asked for.
    pub const NONE: u32 = 0;
    /// The controller asked a freezer for it; no freezer has taken it yet.
    pub const REQUESTED: u32 = 1;
    /// A freezer is in `syncfs`.
    pub const RUNNING: u32 = 2;
    /// `syncfs` returned 0.
    pub const DONE: u32 = 3;
    /// `syncfs` failed (`sync_errno` says why).
    pub const FAILED: u32 = 4;
    /// The controller stopped waiting before a freezer took it: never issued.
    pub const SKIPPED: u32 = 5;
}

/// Why the guardian acted, as stored in the table (one value per session: the guardian acts
/// once).
pub mod cause {
    /// It has not acted. A slot thawed by the guardian's rescue with no cause recorded was
    /// thawed by the controller running that rescue itself (a poisoned C ABI session).
    pub const NONE: u32 = 0;
    /// Its own deadline (the controller's plus the grace) passed while the controller was
    /// still there.
    pub const DEADLINE: u32 = 1;
    /// The controller went away: its pipe reached end of file, or its process exited.
    pub const CONTROLLER_GONE: u32 = 2;

    /// A stable name for people.
    pub const fn name(c: u32) -> &'static str {
        match c {
            NONE => "none",
            DEADLINE => "deadline",
            CONTROLLER_GONE => "controller-gone",
            _ => "unknown",
        }
    }
}

/// What a thaw by the guardian (state `THAWED_BY_GUARDIAN`) stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuardianThaw {
    /// The session's own deadline thaw: the guardian acted because the deadline passed, in a
    /// session without grace, where it is the deadline timer of a controller that has no
    /// thread of its own (the C ABI, and Go and Python over it). Outcome `thawed`.
    Deadline,
    /// A rescue: the controller died, or missed the deadline by more than its grace (it was
    /// stuck), or it ran the guardian's rescue itself (a poisoned session). Outcome
    /// `thawed-by-guardian`: something went wrong.
    Rescue,
}

impl GuardianThaw {
    /// What a thaw by a guardian that acted for `cause` ([`cause`]) stands for, in a session
    /// whose guardian acts `grace_ns` after the controller's deadline.
    pub const fn of(cause: u32, grace_ns: u64) -> GuardianThaw {
        if cause == cause::DEADLINE && grace_ns == 0 {
            GuardianThaw::Deadline
        } else {
            GuardianThaw::Rescue
        }
    }
}

/// Where one target stands, as stored in the table.
pub mod state {
    use super::GuardianThaw;
    use crate::session::Outcome;

    /// Not attempted yet.
    pub const PENDING: u32 = 0;
    /// The controller asked the freezer for `FIFREEZE`; it has not returned.
    pub const IN_FLIGHT: u32 = 1;
    /// `FIFREEZE` succeeded; nobody has started to thaw it.
    pub const FROZEN: u32 = 2;
    /// `FIFREEZE` failed (`errno` says why); never frozen by us.
    pub const FREEZE_FAILED: u32 = 3;
    /// Given up while in flight (deadline, or the controller died): the freezer thaws it as
    /// soon as its `FIFREEZE` returns.
    pub const ABANDONED: u32 = 4;
    /// The controller is thawing it.
    pub const THAWING: u32 = 5;
    /// The guardian is thawing it.
    pub const GUARDIAN_THAWING: u32 = 6;
    /// Thawed by the controller.
    pub const THAWED: u32 = 7;
    /// Thawed by the guardian (the controller died or missed the guardian's deadline; why:
    /// the table's [`cause`](super::cause)).
    pub const THAWED_BY_GUARDIAN: u32 = 8;
    /// Its `FIFREEZE` returned after it was abandoned, and the freezer thawed it at once.
    pub const THAWED_LATE: u32 = 9;
    /// A thaw failed (`errno` says why): it may still be frozen.
    pub const THAW_FAILED: u32 = 10;
    /// Abandoned before the freezer issued `FIFREEZE`: never frozen.
    pub const CANCELLED: u32 = 11;
    /// Its `FIFREEZE` returned an error after it was abandoned: never frozen by us.
    pub const FAILED_LATE: u32 = 12;
    /// Our `FITHAW` found it thawed already (`EINVAL`): someone else thawed it.
    pub const THAWED_BY_OTHER: u32 = 13;

    /// A stable name for people (`quiesce status`).
    pub const fn name(s: u32) -> &'static str {
        match s {
            PENDING => "pending",
            IN_FLIGHT => "freezing",
            FROZEN => "frozen",
            FREEZE_FAILED => "freeze-failed",
            ABANDONED => "abandoned-in-flight",
            THAWING => "thawing",
            GUARDIAN_THAWING => "guardian-thawing",
            THAWED => "thawed",
            THAWED_BY_GUARDIAN => "thawed-by-guardian",
            THAWED_LATE => "thawed-late",
            THAW_FAILED => "thaw-failed",
            CANCELLED => "cancelled",
            FAILED_LATE => "freeze-failed-late",
            THAWED_BY_OTHER => "thawed-by-other",
            _ => "unknown",
        }
    }

    /// The target's outcome when its slot is in state `s` and a thaw by the guardian stands
    /// for `guardian` (the table's [`guardian_thaw`](super::Table::guardian_thaw)): the one
    /// mapping from the table's states to the session's outcomes. The controller's
    /// thaw of a target that the guardian thawed reports what this says
    /// (`freezer::thawed_by_another`), and it is read directly where the session machine
    /// cannot say (a panic poisoned a C ABI session). `GUARDIAN_THAWING` is frozen: the
    /// guardian's `FITHAW` has not returned, so the filesystem may still be frozen (a
    /// controller that can wait for it to settle does).
    pub const fn outcome(s: u32, guardian: GuardianThaw) -> Outcome {
        match s {
            FROZEN | THAWING | GUARDIAN_THAWING => Outcome::Frozen,
            FREEZE_FAILED | FAILED_LATE => Outcome::FreezeFailed,
            IN_FLIGHT | ABANDONED => Outcome::InFlight,
            THAWED => Outcome::Thawed,
            THAWED_BY_GUARDIAN => match guardian {
                GuardianThaw::Deadline => Outcome::Thawed,
                GuardianThaw::Rescue => Outcome::ThawedByGuardian,
            },
            THAWED_LATE => Outcome::ThawedByGuardian,
            THAW_FAILED => Outcome::ThawFailed,
            THAWED_BY_OTHER => Outcome::ThawedByOther,
            _ => Outcome::NotAttempted,
        }
    }

    /// Whether a filesystem in this state may be frozen by us right now (or soon: in flight).
    pub const fn may_be_ours(s: u32) -> bool {
        matches!(
            s,
            IN_FLIGHT | FROZEN | ABANDONED | THAWING | GUARDIAN_THAWING | THAW_FAILED
        )
    }
}

/// One target's slot.
#[repr(C)]
#[derive(Debug)]
pub struct Slot {
    state: AtomicU32,
    errno: AtomicI32,
    freeze_start: AtomicU64,
    freeze_end: AtomicU64,
    thaw_start: AtomicU64,
    thaw_end: AtomicU64,
    sync: AtomicU32,
    sync_errno: AtomicI32,
    sync_ns: AtomicU64,
}

impl Slot {
    const fn new() -> Slot {
        Slot {
            state: AtomicU32::new(state::PENDING),
            errno: AtomicI32::new(0),
            freeze_start: AtomicU64::new(0),
            freeze_end: AtomicU64::new(0),
            thaw_start: AtomicU64::new(0),
            thaw_end: AtomicU64::new(0),
            sync: AtomicU32::new(sync::NONE),
            sync_errno: AtomicI32::new(0),
            sync_ns: AtomicU64::new(0),
        }
    }

    /// Where its pre-sync stands (see [`sync`]).
    pub fn sync_state(&self) -> u32 {
        self.sync.load(Ordering::Acquire)
    }

    /// The errno of a failed pre-sync, or 0.
    pub fn sync_errno(&self) -> i32 {
        self.sync_errno.load(Ordering::Acquire)
    }

    /// How long its `syncfs` took (0 while running or never run).
    pub fn sync_ns(&self) -> u64 {
        self.sync_ns.load(Ordering::Acquire)
    }

    /// The controller: asks for a pre-sync (NONE -> REQUESTED).
    pub fn request_sync(&self) -> bool {
        self.sync_move(sync::NONE, sync::REQUESTED)
    }

    /// Moves the pre-sync state `from` -> `to` if it is in `from`.
    pub fn sync_move(&self, from: u32, to: u32) -> bool {
        self.sync
            .compare_exchange(from, to, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// The freezer: records a finished `syncfs`.
    pub fn finish_sync(&self, result: Result<(), i32>, took_ns: u64) {
        self.sync_ns.store(took_ns.max(1), Ordering::Release);
        let to = match result {
            Ok(()) => sync::DONE,
            Err(e) => {
                self.sync_errno.store(e, Ordering::Release);
                sync::FAILED
            }
        };
        self.sync.store(to, Ordering::Release);
    }

    /// The current state (see [`state`]).
    pub fn state(&self) -> u32 {
        self.state.load(Ordering::Acquire)
    }

    /// The errno of the failed call, or 0.
    pub fn errno(&self) -> i32 {
        self.errno.load(Ordering::Acquire)
    }

    /// Monotonic ns: `FIFREEZE` issued, returned (0: not yet).
    pub fn freeze_times(&self) -> (u64, u64) {
        (
            self.freeze_start.load(Ordering::Acquire),
            self.freeze_end.load(Ordering::Acquire),
        )
    }

    /// Monotonic ns: `FITHAW` issued, returned (0: not yet).
    pub fn thaw_times(&self) -> (u64, u64) {
        (
            self.thaw_start.load(Ordering::Acquire),
            self.thaw_end.load(Ordering::Acquire),
        )
    }

    /// Moves `from` -> `to` if the slot is in `from`; returns the state found otherwise.
    pub fn transition(&self, from: u32, to: u32) -> Result<(), u32> {
        self.state
            .compare_exchange(from, to, Ordering::AcqRel, Ordering::Acquire)
            .map(|_| ())
    }

    /// The controller, before it asks the freezer: PENDING -> IN_FLIGHT, start time.
    pub fn request_freeze(&self, start: u64) -> bool {
        self.freeze_start.store(start, Ordering::Release);
        self.transition(state::PENDING, state::IN_FLIGHT).is_ok()
    }

    /// The freezer, after `FIFREEZE` returned: records the result and moves IN_FLIGHT to
    /// FROZEN / FREEZE_FAILED. Returns false if the slot was abandoned meanwhile (then the
    /// caller must thaw at once if the freeze succeeded, and call [`Slot::settle_late`]).
    pub fn complete_freeze(&self, result: Result<(), i32>, end: u64) -> bool {
        self.freeze_end.store(end, Ordering::Release);
        let to = match result {
            Ok(()) => state::FROZEN,
            Err(e) => {
                self.errno.store(e, Ordering::Release);
                state::FREEZE_FAILED
            }
        };
        self.transition(state::IN_FLIGHT, to).is_ok()
    }

    /// The freezer, for an abandoned slot whose freeze returned: records what became of it.
    pub fn settle_late(&self, to: u32, errno: i32, thaw: (u64, u64)) {
        self.errno.store(errno, Ordering::Release);
        self.thaw_start.store(thaw.0, Ordering::Release);
        self.thaw_end.store(thaw.1, Ordering::Release);
        self.state.store(to, Ordering::Release);
    }

    /// Records a finished thaw by whoever holds the claim.
    pub fn finish_thaw(&self, to: u32, errno: i32, start: u64, end: u64) {
        self.errno.store(errno, Ordering::Release);
        self.thaw_start.store(start, Ordering::Release);
        self.thaw_end.store(end, Ordering::Release);
        self.state.store(to, Ordering::Release);
    }
}

/// Magic number at the head of a table ("QSCE").
pub const MAGIC: u32 = 0x5153_4345;

/// The shared table of a session over up to `N` targets, indexed by freeze position.
#[repr(C)]
#[derive(Debug)]
pub struct Table<const N: usize> {
    magic: AtomicU32,
    len: AtomicU32,
    /// The controller's deadline (monotonic ns); 0 until the first `FIFREEZE` is issued.
    deadline: AtomicU64,
    /// How long after the controller's deadline the guardian acts on its own (ns).
    grace: AtomicU64,
    freezer_pids: [AtomicI32; MAX_FREEZERS],
    guardian_pid: AtomicI32,
    /// Why the guardian acted ([`cause`]); set once, before it claims any slot.
    guardian_cause: AtomicU32,
    /// The tied process group ([`Tie`]): 0 none, [`TIE_CLOSED`] closed, else its pgid.
    tied_group: AtomicI32,
    slots: [Slot; N],
}

/// The value of a closed tie: the controller's window is over, or the guardian has acted.
pub const TIE_CLOSED: i32 = -1;

/// Where the controller publishes the process group of a process it starts while frozen (the
/// snapshot command), so that it does not outlive the controller: when the guardian acts (the
/// controller died, or missed the guardian's deadline) it closes the tie and sends the group
/// `SIGKILL` before it thaws. The controller closes the tie itself once its own thaw is done
/// (from then on it answers for the group). A process that leaves the group (`setsid`,
/// `setpgid`) is not reached.
///
/// [`Tie::publish`] is one compare-and-swap on the shared page, async-signal-safe: it is meant
/// for the child between `fork` and `exec`, so that there is no moment in which the command
/// runs untied; a child that finds the tie closed must not exec (the session is over).
#[derive(Clone, Copy, Debug)]
pub struct Tie<'t> {
    cell: &'t AtomicI32,
}

impl Tie<'_> {
    /// Publishes process group `pgid` (> 0). False if the tie is closed, or holds another
    /// group already: the caller must not start the process then.
    pub fn publish(&self, pgid: i32) -> bool {
        pgid > 0
            && self
                .cell
                .compare_exchange(0, pgid, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }
}

impl<const N: usize> Table<N> {
    /// A fresh table for `len` targets (at most `N`).
    pub const fn new(len: u32, grace_ns: u64) -> Self {
        Table {
            magic: AtomicU32::new(MAGIC),
            len: AtomicU32::new(if (len as usize) < N { len } else { N as u32 }),
            deadline: AtomicU64::new(0),
            grace: AtomicU64::new(grace_ns),
            freezer_pids: [const { AtomicI32::new(0) }; MAX_FREEZERS],
            guardian_pid: AtomicI32::new(0),
            guardian_cause: AtomicU32::new(cause::NONE),
            tied_group: AtomicI32::new(0),
            slots: [const { Slot::new() }; N],
        }
    }

    /// Whether the table was initialised (its magic number is there).
    pub fn is_valid(&self) -> bool {
        self.magic.load(Ordering::Acquire) == MAGIC
    }

    /// The number of targets.
    pub fn len(&self) -> usize {
        (self.len.load(Ordering::Acquire) as usize).min(N)
    }

    /// Whether there are no targets.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The slots in use, in freeze order.
    pub fn slots(&self) -> &[Slot] {
        &self.slots[..self.len()]
    }

    /// Slot `i`.
    pub fn slot(&self, i: usize) -> Option<&Slot> {
        self.slots().get(i)
    }

    /// Publishes the controller's deadline (first call wins).
    pub fn set_deadline(&self, deadline: u64) {
        let _ =
            self.deadline
                .compare_exchange(0, deadline.max(1), Ordering::AcqRel, Ordering::Acquire);
    }

    /// The controller's deadline, once set.
    pub fn deadline(&self) -> Option<u64> {
        match self.deadline.load(Ordering::Acquire) {
            0 => None,
            d => Some(d),
        }
    }

    /// The guardian's own deadline: the controller's plus the grace.
    pub fn guardian_deadline(&self) -> Option<u64> {
        self.deadline()
            .map(|d| d.saturating_add(self.grace.load(Ordering::Acquire)))
    }

    /// The guardian: records why it acts ([`cause`]), before it claims any slot (first call
    /// wins). One atomic compare-and-swap: async-signal-safe.
    pub fn set_guardian_cause(&self, c: u32) {
        let _ = self.guardian_cause.compare_exchange(
            cause::NONE,
            c,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }

    /// Why the guardian acted ([`cause::NONE`]: it has not).
    pub fn guardian_cause(&self) -> u32 {
        self.guardian_cause.load(Ordering::Acquire)
    }

    /// How long after the controller's deadline the guardian acts on its own (ns).
    pub fn grace_ns(&self) -> u64 {
        self.grace.load(Ordering::Acquire)
    }

    /// What a thaw by this session's guardian stands for ([`GuardianThaw::of`] its cause and
    /// the grace). Read it after the slot's state: the guardian records its cause before it
    /// claims a slot.
    pub fn guardian_thaw(&self) -> GuardianThaw {
        GuardianThaw::of(self.guardian_cause(), self.grace_ns())
    }

    /// Target `i`'s outcome ([`state::outcome`], a thaw by the guardian read with
    /// [`Table::guardian_thaw`]).
    pub fn outcome(&self, i: usize) -> Option<crate::session::Outcome> {
        let slot = self.slot(i)?;
        // The state first: the guardian records its cause before it claims a slot, so a
        // state it published is read with that cause.
        let s = slot.state();
        Some(state::outcome(s, self.guardian_thaw()))
    }

    /// What the table says of target `i`: its outcome ([`Table::outcome`]), errno, and how
    /// long its `FIFREEZE` and `FITHAW` took (ns).
    pub fn record(&self, i: usize) -> Option<(crate::session::Outcome, i32, u64, u64)> {
        let outcome = self.outcome(i)?;
        let slot = self.slot(i)?;
        let (fs, fe) = slot.freeze_times();
        let (ts, te) = slot.thaw_times();
        Some((
            outcome,
            slot.errno(),
            fe.saturating_sub(fs),
            te.saturating_sub(ts),
        ))
    }

    /// Records the guardian's process id.
    pub fn set_guardian_pid(&self, pid: i32) {
        self.guardian_pid.store(pid, Ordering::Release);
    }

    /// Records the process id of freezer `k` (below [`MAX_FREEZERS`]; others are ignored).
    pub fn set_freezer_pid(&self, k: usize, pid: i32) {
        if let Some(p) = self.freezer_pids.get(k) {
            p.store(pid, Ordering::Release);
        }
    }

    /// Freezer `k`'s pid (0: none, or not known yet).
    pub fn freezer_pid(&self, k: usize) -> i32 {
        self.freezer_pids
            .get(k)
            .map_or(0, |p| p.load(Ordering::Acquire))
    }

    /// The guardian's pid (0 before it is known).
    pub fn guardian_pid(&self) -> i32 {
        self.guardian_pid.load(Ordering::Acquire)
    }

    /// The session's tie, for the controller to publish a process group in.
    pub fn tie(&self) -> Tie<'_> {
        Tie {
            cell: &self.tied_group,
        }
    }

    /// Closes the tie (no group can be published any more) and returns the group published
    /// in it, if any: the guardian kills that group; the controller, at the end of its window,
    /// takes it back.
    pub fn close_tie(&self) -> Option<i32> {
        let g = self.tied_group.swap(TIE_CLOSED, Ordering::AcqRel);
        (g > 0).then_some(g)
    }

    /// Whether any slot is still waiting for the freezer (in flight or abandoned in flight).
    pub fn freeze_unresolved(&self) -> bool {
        self.slots()
            .iter()
            .any(|s| matches!(s.state(), state::IN_FLIGHT | state::ABANDONED))
    }

    /// Whether anything may still be frozen by us.
    pub fn anything_ours(&self) -> bool {
        self.slots().iter().any(|s| state::may_be_ours(s.state()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_party_wins_each_hand_over() {
        let t = Table::<4>::new(2, 5);
        let s = t.slot(0).unwrap();
        assert!(s.request_freeze(10));
        assert!(!s.request_freeze(11), "only from PENDING");
        // The controller gives up at its deadline before the freezer returns.
        assert!(s.transition(state::IN_FLIGHT, state::ABANDONED).is_ok());
        assert!(
            !s.complete_freeze(Ok(()), 20),
            "the freezer must thaw it itself"
        );
        assert_eq!(s.state(), state::ABANDONED);
        s.settle_late(state::THAWED_LATE, 0, (21, 22));
        assert_eq!(s.state(), state::THAWED_LATE);
        assert!(!t.freeze_unresolved() && !t.anything_ours());

        let s = t.slot(1).unwrap();
        assert!(s.request_freeze(10));
        assert!(s.complete_freeze(Ok(()), 12));
        assert!(t.anything_ours());
        // The guardian claims it first; the controller's claim then fails.
        assert!(s.transition(state::FROZEN, state::GUARDIAN_THAWING).is_ok());
        assert_eq!(
            s.transition(state::FROZEN, state::THAWING),
            Err(state::GUARDIAN_THAWING)
        );
        s.finish_thaw(state::THAWED_BY_GUARDIAN, 0, 13, 14);
        assert_eq!(s.thaw_times(), (13, 14));
        assert!(!t.anything_ours());
    }

    /// A table of one target that the guardian froze-and-thawed (`THAWED_BY_GUARDIAN`, its
    /// `FITHAW` from 30 to 31) after acting for `why`, in a session of grace `grace_ns`.
    fn thawed_by_the_guardian(grace_ns: u64, why: u32) -> Table<1> {
        let t = Table::<1>::new(1, grace_ns);
        let s = t.slot(0).unwrap();
        assert!(s.request_freeze(10));
        assert!(s.complete_freeze(Ok(()), 12));
        t.set_guardian_cause(why);
        assert!(s.transition(state::FROZEN, state::GUARDIAN_THAWING).is_ok());
        s.finish_thaw(state::THAWED_BY_GUARDIAN, 0, 30, 31);
        t
    }

    #[test]
    fn a_guardian_thaw_at_the_deadline_without_grace_is_the_sessions_own_thaw() {
        use crate::session::Outcome;
        // The C ABI's guardian: grace 0, it acted because the deadline passed.
        let t = thawed_by_the_guardian(0, cause::DEADLINE);
        assert_eq!(t.guardian_cause(), cause::DEADLINE);
        assert_eq!(t.guardian_thaw(), GuardianThaw::Deadline);
        assert_eq!(t.record(0), Some((Outcome::Thawed, 0, 2, 1)));
        // A rescue stays a rescue: a dead controller (any grace), a stuck one (past a grace).
        for (grace, why) in [
            (0, cause::CONTROLLER_GONE),
            (2_000_000_000, cause::CONTROLLER_GONE),
            (2_000_000_000, cause::DEADLINE),
            // The controller's own rescue (a poisoned session): the guardian never acted.
            (0, cause::NONE),
        ] {
            let t = thawed_by_the_guardian(grace, why);
            assert_eq!(t.guardian_thaw(), GuardianThaw::Rescue, "{grace} {why}");
            assert_eq!(
                t.outcome(0),
                Some(Outcome::ThawedByGuardian),
                "grace {grace}, cause {}",
                cause::name(why)
            );
        }
        // The cause is set once: what the guardian acted for first.
        let t = Table::<1>::new(1, 0);
        t.set_guardian_cause(cause::DEADLINE);
        t.set_guardian_cause(cause::CONTROLLER_GONE);
        assert_eq!(t.guardian_cause(), cause::DEADLINE);
        // Only a thaw by the guardian reads the cause; a freezer's late thaw is always its own.
        for s in [
            state::THAWED,
            state::THAWED_LATE,
            state::THAWED_BY_OTHER,
            state::THAW_FAILED,
            state::GUARDIAN_THAWING,
        ] {
            assert_eq!(
                state::outcome(s, GuardianThaw::Deadline),
                state::outcome(s, GuardianThaw::Rescue),
                "{}",
                state::name(s)
            );
        }
        assert_eq!(
            state::outcome(state::THAWED_LATE, GuardianThaw::Deadline),
            Outcome::ThawedByGuardian
        );
    }

    #[test]
    fn a_tie_holds_one_group_until_it_is_closed() {
        let t = Table::<1>::new(1, 0);
        assert!(!t.tie().publish(0) && !t.tie().publish(-5), "not a group");
        assert!(t.tie().publish(42));
        assert!(!t.tie().publish(43), "one group per session");
        assert_eq!(t.close_tie(), Some(42));
        assert_eq!(t.close_tie(), None, "closed once");
        assert!(!t.tie().publish(44), "closed: the child must not run");
        let u = Table::<1>::new(1, 0);
        assert_eq!(u.close_tie(), None, "nothing published");
        assert!(!u.tie().publish(7), "closed before the child published");
    }

    #[test]
    fn deadline_is_set_once_and_capacity_is_respected() {
        let t = Table::<2>::new(5, 7);
        assert_eq!(t.len(), 2);
        assert_eq!(t.deadline(), None);
        t.set_deadline(100);
        t.set_deadline(200);
        assert_eq!(t.deadline(), Some(100));
        assert_eq!(t.guardian_deadline(), Some(107));
        assert!(t.is_valid());
        assert!(t.slot(2).is_none());
    }
}
