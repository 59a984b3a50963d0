//! The lifecycle of one freeze session, allocation-free, on storage the caller owns.
//!
//! ```text
//!  Planned --arm--> Armed --presync--> Armed --freeze--> Frozen --thaw(signal)--------> Ended
//!     |               |                       \                \--await_and_thaw(ctl)-/
//!     |               |                        \--(failed: thawed again)------------> Ended
//!     \--(hooks stop: nothing frozen)--------------------------------------------> Ended
//! ```
//! (then [`Lifecycle::conclude`] once: helpers released, the hooks' second calls, final status.)
//!
//! - [`Lifecycle::arm`]: checks CAP_SYS_ADMIN, builds the session machine, forks the guardian
//!   and the pool of freezers ([`super::helpers`]). Nothing is frozen.
//! - [`Lifecycle::presync`]: `syncfs` of every target in the freezers, bounded by
//!   [`presync_limit`], before the deadline starts.
//! - [`Lifecycle::freeze`]: the waves of `FIFREEZE` through the freezers, then the
//!   notification; returns once everything is frozen (or the session ended: everything it
//!   froze is thawed again).
//! - [`Lifecycle::thaw`] (two-phase: the C ABI) delivers what became of the snapshot;
//!   [`Lifecycle::await_and_thaw`] (one-shot: the CLI) waits on a [`Controller`] for it. Both
//!   then thaw in reverse order through the same loop.
//! - [`Lifecycle::rescue`]: the guardian's thaw run here (a poisoned C ABI session).

use core::ffi::CStr;
use core::fmt;
use core::time::Duration;
use std::os::fd::BorrowedFd;

use quiesce_core::linux::sys::{self, now_ns, Errno};
use quiesce_core::linux::table::{state, sync, Tie};
use quiesce_core::linux::{advance, conclude, guardian, Controller, Signal};
use quiesce_core::session::{End, Event, IfFrozen, Outcome, Session, SessionError};
use quiesce_core::Status;

use super::cancel::Canceller;
use super::helpers::{pool_size, Helpers};
use super::hooks::{self, Halt, SessionHooks};
use super::phases::{since, Phases};
use super::record::{self, Contents, Proc, RecordPath, RecordTargets};
use super::text::Lossy;
use super::writeback::{self, Pending};
use super::{ErrnoName, MAX_TARGETS};

/// The longest pre-sync wait: the timeout, but no more than this.
pub const PRESYNC_LIMIT: Duration = Duration::from_secs(10);

/// How long the pre-sync waits for `timeout`: `min(timeout, PRESYNC_LIMIT)`. Whatever it has
/// not flushed by then, `FIFREEZE` flushes.
pub fn presync_limit(timeout: Duration) -> Duration {
    timeout.min(PRESYNC_LIMIT)
}

/// How a session runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// The deadline, from the first `FIFREEZE` to the last `FITHAW`.
    pub timeout: Duration,
    /// What to do with a filesystem that another holder has frozen already.
    pub if_frozen: IfFrozen,
    /// Pre-sync every target before the first `FIFREEZE`.
    pub presync: bool,
    /// Freeze targets that do not depend on each other at once.
    pub parallel: bool,
    /// How long after the deadline the guardian thaws on its own: zero in the two-phase form
    /// (between freeze and thaw nobody in the caller's process watches the clock: the guardian
    /// is the deadline timer, and its thaw at the deadline is reported as the session's own),
    /// a grace in the one-shot form (the controller's thread enforces the deadline itself: a
    /// guardian thaw then is a rescue, `thawed-by-guardian`).
    pub grace: Duration,
}

/// Where a session stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Planned, nothing started.
    Planned,
    /// Helpers forked, nothing frozen.
    Armed,
    /// Everything frozen; waiting for what became of the snapshot.
    Frozen,
    /// Over (thawed, or never frozen); the status is final once concluded.
    Ended,
}

/// Why a session could not be armed: nothing was frozen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArmError {
    /// This process lacks CAP_SYS_ADMIN.
    Permission,
    /// More targets than a session takes.
    TooManyTargets,
    /// The session machine refused the plan (a bug).
    Session(SessionError),
    /// The helpers could not be forked.
    Spawn(Errno),
    /// Armed already, or over.
    WrongStage(Stage),
}

impl ArmError {
    /// The stable status.
    pub fn status(&self) -> Status {
        match self {
            ArmError::Permission => Status::Permission,
            ArmError::TooManyTargets => Status::PlanRefused,
            ArmError::Session(SessionError::NoTargets) => Status::NotFreezable,
            ArmError::WrongStage(_) => Status::Usage,
            ArmError::Session(_) | ArmError::Spawn(_) => Status::Internal,
        }
    }

    /// The errno behind it, or 0.
    pub fn errno(&self) -> Errno {
        match self {
            ArmError::Permission => quiesce_core::errno::EPERM,
            ArmError::Spawn(e) => *e,
            _ => 0,
        }
    }
}

impl fmt::Display for ArmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArmError::Permission => f.write_str("freezing needs CAP_SYS_ADMIN, which this process does not have: run as root (e.g. with sudo)"),
            ArmError::TooManyTargets => write!(f, "more than {MAX_TARGETS} filesystems to freeze; name fewer"),
            ArmError::Session(SessionError::NoTargets) => f.write_str("nothing to freeze: the plan has no filesystem"),
            ArmError::Session(e) => write!(f, "cannot start a session: {e:?}"),
            ArmError::Spawn(e) => write!(f, "cannot start the guardian and the freezer processes: {}", ErrnoName(*e)),
            ArmError::WrongStage(Stage::Ended) => f.write_str("this session is over (it failed or was thawed); set up a new one"),
            ArmError::WrongStage(_) => f.write_str("this session is started already"),
        }
    }
}

/// One session's lifecycle. The descriptors (`fds`, in freeze order) stay the caller's and
/// are passed to every step.
pub struct Lifecycle {
    options: Options,
    stage: Stage,
    session: Option<Session<MAX_TARGETS>>,
    helpers: Option<Helpers>,
    presync_ns: Option<u64>,
    until: u64,
    status: Status,
    /// The session record, once written (removed after the end).
    record: Option<RecordPath>,
    /// Why the record could not be written (0: it was, or none was asked for).
    record_errno: Errno,
    /// The caller's cancellation (`quiesce_cancel()`), seen by every wait.
    cancel: Canceller,
    phases: Phases,
    /// Whether the pre-sync was left out: what `/proc/meminfo` said at arming
    /// ([`super::writeback`]); `None` if it was not asked for or not decided yet.
    presync_gate: Option<Pending>,
    /// When the notification started (0: not yet).
    notified_at: u64,
}

impl Lifecycle {
    /// A planned session, nothing started.
    pub const fn new(options: Options) -> Lifecycle {
        Lifecycle {
            options,
            stage: Stage::Planned,
            session: None,
            helpers: None,
            presync_ns: None,
            until: 0,
            status: Status::Ok,
            record: None,
            record_errno: 0,
            cancel: Canceller::new(),
            phases: Phases {
                plan_ns: 0,
                arm_ns: 0,
                hooks_ns: 0,
                presync_ns: 0,
                freeze_ns: 0,
                wait_ns: 0,
                thaw_ns: 0,
                finish_ns: 0,
            },
            presync_gate: None,
            notified_at: 0,
        }
    }

    /// The session's cancellation. Its eventfd is made by [`Canceller::enable`] (without it
    /// the flag alone is seen, by the hooks' wait and before each wave of `FIFREEZE`).
    pub fn canceller(&self) -> &Canceller {
        &self.cancel
    }

    /// The cancellation of the lifecycle at `this`, reached without making a reference to the
    /// lifecycle (another thread may hold one for the running call).
    ///
    /// # Safety
    /// `this` must point to a live `Lifecycle`.
    pub unsafe fn canceller_of(this: *const Lifecycle) -> *const Canceller {
        // SAFETY: a field projection of a live Lifecycle (the caller's contract); no reference
        // to the Lifecycle is made.
        unsafe { core::ptr::addr_of!((*this).cancel) }
    }

    /// The status of a session that ended with `status`: [`Status::Cancelled`] if the caller
    /// cancelled and it ended as a failed or late freeze (what the cancel made of it).
    fn cancelled_or(&self, status: Status) -> Status {
        if self.cancel.is_set() && matches!(status, Status::FreezeFailed | Status::Timeout) {
            Status::Cancelled
        } else {
            status
        }
    }

    /// The session record's path, while it exists (see [`record`]).
    pub fn record_path(&self) -> Option<&CStr> {
        self.record.as_ref().map(RecordPath::as_cstr)
    }

    /// Why the session record could not be written, if it could not (`quiesce status` and
    /// `quiesce recover` then do not see the session).
    pub fn record_error(&self) -> Option<Errno> {
        (self.record_errno != 0).then_some(self.record_errno)
    }

    /// Removes the session record, unless something may still be frozen by us or a `FIFREEZE`
    /// is unresolved (the guardian removes it once that is settled).
    fn remove_record(&mut self) {
        if self.unresolved() {
            return;
        }
        if let Some(r) = self.record.take() {
            r.remove();
        }
    }

    /// How long each phase took so far (ns).
    pub fn phases(&self) -> Phases {
        self.phases
    }

    /// The phases, for the front end's own parts (planning, its session record, its report).
    pub fn phases_mut(&mut self) -> &mut Phases {
        &mut self.phases
    }

    /// Whether the pre-sync was left out because nothing was dirty (decided at arming, from
    /// `Dirty` + `Writeback` of `/proc/meminfo`: [`super::writeback`]); with the count seen.
    pub fn presync_skipped_clean(&self) -> Option<u64> {
        match self.presync_gate {
            Some(Pending::Bytes(b)) if Pending::Bytes(b).clean() => Some(b),
            _ => None,
        }
    }

    /// Where it stands.
    pub fn stage(&self) -> Stage {
        self.stage
    }

    /// The options.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The session machine, once armed.
    pub fn session(&self) -> Option<&Session<MAX_TARGETS>> {
        self.session.as_ref()
    }

    /// The helpers, once armed.
    pub fn helpers(&self) -> Option<&Helpers> {
        self.helpers.as_ref()
    }

    /// How long the pre-sync took (ns), if it ran.
    pub fn presync_ns(&self) -> Option<u64> {
        self.presync_ns
    }

    /// Target `i`'s record: outcome, errno, and how long its `FIFREEZE` and `FITHAW` took
    /// (ns). From the session machine, or with `from_table` from the table shared with the
    /// helpers (when the machine cannot be trusted: a panic poisoned the C ABI's session).
    pub fn record(&self, i: usize, from_table: bool) -> (Outcome, i32, u64, u64) {
        if from_table {
            if let Some(r) = self.helpers.as_ref().and_then(|h| h.table().record(i)) {
                return r;
            }
        }
        match self.session.as_ref().and_then(|s| s.target(i)) {
            Some(r) => (r.outcome, r.errno, r.freeze_ns, r.thaw_ns),
            None => (Outcome::NotAttempted, 0, 0, 0),
        }
    }

    /// How long target `i`'s pre-sync `syncfs` took (ns; 0: none, or it did not finish).
    pub fn presync_of(&self, i: usize) -> u64 {
        self.helpers
            .as_ref()
            .and_then(|h| h.table().slot(i))
            .map_or(0, |s| match s.sync_state() {
                sync::DONE => s.sync_ns(),
                _ => 0,
            })
    }

    /// Whether anything may still be frozen by us, or a `FIFREEZE` is still unresolved (the
    /// guardian then removes the session record once it is settled).
    pub fn unresolved(&self) -> bool {
        self.helpers.as_ref().is_some_and(|h| {
            let table = h.table();
            table.freeze_unresolved() || table.anything_ours()
        })
    }

    /// The status so far (final once ended and concluded).
    pub fn status(&self) -> Status {
        match (&self.session, self.stage) {
            (_, Stage::Ended) => self.status,
            (Some(s), _) => s.status(),
            (None, _) => Status::Ok,
        }
    }

    /// Ends the session with `status` (nothing is frozen, or everything was thawed).
    pub fn end(&mut self, status: Status) {
        self.stage = Stage::Ended;
        self.status = status;
        // Our window is over: nothing may be tied to it any more (a process group published
        // in the tie is the controller's again, see `freeze`).
        if let Some(h) = self.helpers.as_ref() {
            let _ = h.table().close_tie();
        }
    }

    /// The hooks' `freeze` calls, before anything is armed or frozen (first: may this process
    /// freeze at all). On `Err` the session is over: nothing was frozen, and the hooks that
    /// got `freeze` got `freeze-failed`.
    pub fn before_freeze(
        &mut self,
        hooks: &mut dyn SessionHooks,
        cancel: &mut dyn FnMut() -> bool,
    ) -> Result<(), Halt> {
        if self.stage != Stage::Planned {
            return Ok(());
        }
        if !sys::has_cap_sys_admin() {
            self.end(Status::Permission);
            return Err(Halt::NotPermitted);
        }
        let start = now_ns();
        if self.cancel.is_set() {
            self.end(Status::Cancelled);
            return Err(Halt::CallerCancelled);
        }
        let caller = &self.cancel;
        let result = hooks
            .before_freeze(&mut || cancel() || caller.is_set())
            .map_err(|halt| match halt {
                Halt::Cancelled if caller.is_set() => Halt::CallerCancelled,
                halt => halt,
            });
        if let Err(halt) = result {
            hooks.after_thaw(false);
            self.end(halt.status());
        }
        if hooks.has_hooks() {
            self.phases.hooks_ns = self.phases.hooks_ns.saturating_add(since(start));
        }
        result
    }

    /// Checks CAP_SYS_ADMIN, builds the session machine over the targets `fds` (freeze order;
    /// `wave_starts` from the plan), forks the helpers and, given `record` (each target's
    /// device and mount point), writes the session record under [`record::RUN_DIR`] (the
    /// guardian removes it if it cleans up after a dead caller; a record that cannot be
    /// written is [`Lifecycle::record_error`], not a failure). Nothing is frozen. Allocates
    /// nothing.
    pub fn arm(
        &mut self,
        fds: &[BorrowedFd<'_>],
        wave_starts: &[bool],
        record: Option<&dyn RecordTargets>,
    ) -> Result<(), ArmError> {
        if self.stage != Stage::Planned {
            return Err(ArmError::WrongStage(self.stage));
        }
        let start = now_ns();
        let result = self.try_arm(fds, wave_starts, record);
        self.phases.arm_ns = self.phases.arm_ns.saturating_add(since(start));
        if result.is_err() {
            self.end(result.map_or_else(|e| e.status(), |()| Status::Ok));
        }
        result
    }

    fn try_arm(
        &mut self,
        fds: &[BorrowedFd<'_>],
        wave_starts: &[bool],
        record: Option<&dyn RecordTargets>,
    ) -> Result<(), ArmError> {
        if !sys::has_cap_sys_admin() {
            return Err(ArmError::Permission);
        }
        let n = fds.len();
        if n > MAX_TARGETS {
            return Err(ArmError::TooManyTargets);
        }
        let mut order = [0u16; MAX_TARGETS];
        for (i, o) in order.iter_mut().enumerate().take(n) {
            *o = i as u16;
        }
        let timeout_ns = u64::try_from(self.options.timeout.as_nanos()).unwrap_or(u64::MAX);
        let waves: &[bool] = if self.options.parallel {
            &wave_starts[..n.min(wave_starts.len())]
        } else {
            &[]
        };
        let session = Session::<MAX_TARGETS>::new(&order[..n], timeout_ns)
            .map_err(|e| match e {
                SessionError::TooManyTargets => ArmError::TooManyTargets,
                e => ArmError::Session(e),
            })?
            .with_if_frozen(self.options.if_frozen)
            .with_wave_starts(waves);
        // Pre-sync only if something is dirty: then no freezer is forked for it either.
        let gate = self.options.presync.then(writeback::pending);
        let presync = gate.is_some_and(|g| !g.clean());
        let freezers = pool_size(waves, presync, n);
        let me = Proc::of(rustix::process::getpid().as_raw_nonzero().get());
        let path = record.and_then(|_| RecordPath::next(me));
        let helpers = Helpers::spawn(
            fds,
            path.as_ref().map(RecordPath::as_cstr),
            self.options.grace,
            freezers,
        )
        .map_err(|e| ArmError::Spawn(e.raw_os_error().unwrap_or(0)))?;
        if let (Some(path), Some(targets)) = (path, record) {
            // Before anything is frozen: never write while frozen.
            let mut procs = [Proc::default(); quiesce_core::linux::table::MAX_FREEZERS];
            let pids = helpers.freezer_pids();
            for (p, &pid) in procs.iter_mut().zip(pids) {
                *p = Proc::of(pid);
            }
            let contents = Contents {
                controller: me,
                guardian: Proc::of(helpers.guardian),
                freezers: &procs[..pids.len().min(procs.len())],
                timeout: self.options.timeout,
                deadline_unix_ms: record::deadline_unix_ms(self.options.timeout),
                targets,
            };
            match path.write(&contents) {
                Ok(()) => self.record = Some(path),
                Err(e) => self.record_errno = e,
            }
        }
        self.session = Some(session);
        self.helpers = Some(helpers);
        self.presync_gate = gate;
        self.stage = Stage::Armed;
        Ok(())
    }

    /// Pre-sync (if the options ask for it): `syncfs` on every target, in parallel in the
    /// freezers, before the first `FIFREEZE`; waits at most [`presync_limit`] and returns how
    /// long it waited (ns). Writers keep running meanwhile. The deadline has not started.
    pub fn presync(&mut self, fds: &[BorrowedFd<'_>]) -> Option<u64> {
        if !self.options.presync || self.stage != Stage::Armed || self.presync_ns.is_some() {
            return None;
        }
        if self.presync_skipped_clean().is_some() {
            return None;
        }
        let start = now_ns();
        let limit =
            u64::try_from(presync_limit(self.options.timeout).as_nanos()).unwrap_or(u64::MAX);
        let mut ops = self
            .helpers
            .as_ref()?
            .client(fds)?
            .with_cancel(self.cancel.token());
        ops.presync(start.saturating_add(limit));
        let took = since(start);
        self.presync_ns = Some(took);
        self.phases.presync_ns = took;
        Some(took)
    }

    /// Freezes every target, wave by wave, through the freezers, then tells the controller
    /// (`notify`; the two-phase form passes one that does nothing: its return is the
    /// notification). `notify` gets the session's [`Tie`]: a process group the controller
    /// starts while frozen and publishes there (the CLI's snapshot command) is killed by the
    /// guardian, before it thaws, if this process dies; the tie is closed when the session
    /// ends. `Ok` once everything is frozen; `Err(status)` if the session ended
    /// without that (everything it froze is thawed again, or is as soon as a stuck
    /// `FIFREEZE` returns). The deadline starts at the first `FIFREEZE`.
    pub fn freeze(
        &mut self,
        fds: &[BorrowedFd<'_>],
        notify: &mut dyn FnMut(Tie<'_>) -> Result<(), Errno>,
    ) -> Result<(), Status> {
        if self.stage != Stage::Armed {
            return Err(Status::Usage);
        }
        let start = now_ns();
        let mut notified_at = 0;
        let result = match (self.session.as_mut(), self.helpers.as_ref()) {
            (Some(session), Some(helpers)) => match helpers.client(fds) {
                Some(ops) => advance(
                    session,
                    &mut ops.with_cancel(self.cancel.token()),
                    &mut || {
                        notified_at = now_ns();
                        match notify(helpers.table().tie()) {
                            Ok(()) => Event::Notified { at: now_ns() },
                            Err(errno) => Event::NotifyFailed {
                                errno,
                                at: now_ns(),
                            },
                        }
                    },
                ),
                None => Err(Status::Internal),
            },
            _ => Err(Status::Internal),
        };
        self.notified_at = notified_at;
        self.phases.freeze_ns = match notified_at {
            0 => since(start),
            at => at.saturating_sub(start).max(1),
        };
        match result {
            Ok(until) => {
                self.until = until;
                self.stage = Stage::Frozen;
                Ok(())
            }
            Err(status) => {
                if notified_at != 0 && self.session.as_ref().map(|s| s.end()) == Some(End::Deadline)
                {
                    // Notified, then the deadline passed before this call returned (this
                    // thread was stopped or descheduled right after the notification): the
                    // wait and the thaw at the deadline ran, as in `await_and_thaw`.
                    self.machine_thawed_after_the_wait();
                }
                let status = self.cancelled_or(status);
                self.end(status);
                Err(status)
            }
        }
    }

    /// Two-phase end: `signal` says what became of the snapshot; thaws everything in reverse
    /// order and returns the status. Past the deadline the session ends on the deadline
    /// instead (the guardian may have thawed already).
    pub fn thaw(&mut self, fds: &[BorrowedFd<'_>], signal: Signal) -> Status {
        if self.stage != Stage::Frozen {
            return self.status();
        }
        let start = now_ns();
        if self.notified_at != 0 {
            self.phases.wait_ns = start.saturating_sub(self.notified_at).max(1);
        }
        let status = match (self.session.as_mut(), self.helpers.as_ref()) {
            (Some(session), Some(helpers)) => match helpers.client(fds) {
                Some(mut ops) => conclude(session, &mut ops, signal),
                None => Status::Internal,
            },
            _ => Status::Internal,
        };
        self.phases.thaw_ns = since(start);
        self.end(status);
        status
    }

    /// One-shot end: waits on `controller` until it says what became of the snapshot or the
    /// deadline passes, then thaws as [`Lifecycle::thaw`].
    pub fn await_and_thaw(
        &mut self,
        fds: &[BorrowedFd<'_>],
        controller: &mut dyn Controller,
    ) -> Status {
        if self.stage != Stage::Frozen {
            return self.status();
        }
        loop {
            if let Some(signal) = controller.wait(self.until) {
                return self.thaw(fds, signal);
            }
            // Time is up (or a spurious wake-up): the machine says what is next.
            let next = match (self.session.as_mut(), self.helpers.as_ref()) {
                (Some(session), Some(helpers)) => match helpers.client(fds) {
                    Some(mut ops) => {
                        advance(session, &mut ops, &mut || Event::Notified { at: now_ns() })
                    }
                    None => Err(Status::Internal),
                },
                _ => Err(Status::Internal),
            };
            match next {
                Ok(until) => self.until = until,
                Err(status) => {
                    self.machine_thawed_after_the_wait();
                    self.end(status);
                    return status;
                }
            }
        }
    }

    /// The wait and thaw phases of a session that the machine thawed at the deadline, after
    /// the notification: the thaw is its `FITHAW` calls (their own times, also the guardian's),
    /// the wait the rest since the notification.
    fn machine_thawed_after_the_wait(&mut self) {
        let thaw = self.session.as_ref().map_or(0, |s| {
            (0..s.len())
                .filter_map(|i| s.target(i))
                .fold(0u64, |sum, r| sum.saturating_add(r.thaw_ns))
        });
        if self.notified_at != 0 {
            let waited = since(self.notified_at);
            self.phases.wait_ns = waited.saturating_sub(thaw).max(1);
        }
        self.phases.thaw_ns = thaw;
    }

    /// Releases the helpers (the freezers quit, the guardian checks the table once more and
    /// exits), makes the hooks' second calls (`thaw` if everything was frozen and thawed in
    /// time, else `freeze-failed`), and returns the final status. Once; call it whenever the
    /// session ended, also when it never froze.
    pub fn conclude(&mut self, hooks: &mut dyn SessionHooks) -> Status {
        let start = now_ns();
        if let Some(h) = self.helpers.as_mut() {
            h.release();
        }
        self.remove_record();
        self.phases.finish_ns = self.phases.finish_ns.saturating_add(since(start));
        if self.stage != Stage::Ended {
            // Abandoned before its end: the guardian thaws what is still ours.
            self.end(Status::Internal);
        }
        let thawed_ok = self.session.as_ref().is_some_and(|s| {
            hooks::froze_and_thawed(
                self.status,
                s.end(),
                s.window_ns(),
                (0..s.len()).filter_map(|i| s.target(i).map(|r| r.outcome)),
            )
        });
        let start = now_ns();
        self.status = hooks::after_thaw(hooks, thawed_ok, self.status);
        if hooks.has_hooks() {
            self.phases.hooks_ns = self.phases.hooks_ns.saturating_add(since(start));
        }
        self.status
    }

    /// Thaws everything the shared table says is still ours, confirmed-frozen targets first,
    /// in reverse order (the guardian's rescue, run by the caller, who then never thaws
    /// anything itself), and releases the helpers. Returns how many thaws failed.
    pub fn rescue(&mut self, fds: &[BorrowedFd<'_>]) -> usize {
        let failed = match self.helpers.as_mut() {
            Some(h) => {
                let failed = guardian::rescue(h.table(), fds, true);
                h.release();
                failed
            }
            None => 0,
        };
        if failed == 0 {
            self.remove_record();
        }
        self.stage = Stage::Ended;
        failed
    }
}

/// Something worth saying about a session after its end (for target `i`, in freeze order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionNote {
    /// Its `FIFREEZE` is still stuck in the kernel.
    StillStuck(usize),
    /// Its `FIFREEZE` returned after the deadline, and the freezer thawed it at once.
    ThawedLate(usize),
    /// Its pre-sync failed.
    PresyncFailed(usize, Errno),
    /// Its pre-sync did not finish within the limit.
    PresyncUnfinished(usize, Duration),
}

impl SessionNote {
    /// The note, naming target `i` as `name(i)` says.
    pub fn show<'n>(self, name: &'n dyn Fn(usize) -> Lossy<'n>) -> impl fmt::Display + 'n {
        struct Shown<'n>(SessionNote, &'n dyn Fn(usize) -> Lossy<'n>);
        impl fmt::Display for Shown<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let name = self.1;
                match self.0 {
                    SessionNote::StillStuck(i) => write!(f, "the FIFREEZE of {} is still stuck in the kernel; it is thawed as soon as that call returns", name(i)),
                    SessionNote::ThawedLate(i) => write!(f, "the FIFREEZE of {} returned after the deadline; it was thawed at once", name(i)),
                    SessionNote::PresyncFailed(i, e) => write!(f, "pre-sync (syncfs) of {} failed: {}; its FIFREEZE flushed instead", name(i), ErrnoName(e)),
                    SessionNote::PresyncUnfinished(i, limit) => write!(f, "pre-sync (syncfs) of {} did not finish within {} ms; its FIFREEZE flushed the rest", name(i), limit.as_millis()),
                }
            }
        }
        Shown(self, name)
    }
}

impl Lifecycle {
    /// The notes the shared table holds after the end: stuck or late `FIFREEZE`s, failed or
    /// unfinished pre-syncs.
    pub fn notes(&self, f: &mut dyn FnMut(SessionNote)) {
        let Some(h) = self.helpers.as_ref() else {
            return;
        };
        for (i, slot) in h.table().slots().iter().enumerate() {
            match slot.state() {
                state::ABANDONED => f(SessionNote::StillStuck(i)),
                state::THAWED_LATE => f(SessionNote::ThawedLate(i)),
                _ => {}
            }
            match slot.sync_state() {
                sync::FAILED => f(SessionNote::PresyncFailed(i, slot.sync_errno())),
                sync::RUNNING | sync::SKIPPED => f(SessionNote::PresyncUnfinished(
                    i,
                    presync_limit(self.options.timeout),
                )),
                _ => {}
            }
        }
    }
}

impl Drop for Lifecycle {
    fn drop(&mut self) {
        // Never concluded: the guardian thaws anything still ours once the helpers are
        // released (the liveness pipe closes).
        if let Some(h) = self.helpers.as_mut() {
            h.release();
        }
        self.remove_record();
    }
}
