//! Running one freeze session: arm (fork the helpers, write the session record), run (freeze,
//! notify, wait, thaw: no allocation), finish (release the helpers, remove the record, report).
//! The steps are the engine's [`Lifecycle`] (one-shot form); this shell adds the owned parts:
//! the session record, the notes as strings, the report.
//!
//! Who does what while frozen:
//! - this thread (the controller) runs the core's session machine and enforces the deadline;
//! - the freezer process issues every `FIFREEZE`, so a call stuck in the kernel cannot keep the
//!   controller past its deadline, nor keep this process from exiting;
//! - the guardian process thaws whatever is still ours if this process dies (SIGKILL included)
//!   or has not thawed by the deadline plus [`GUARDIAN_GRACE`].

use std::os::fd::BorrowedFd;
use std::time::Duration;

use quiesce_core::linux::sys::now_ns;
use quiesce_core::linux::Controller;
use quiesce_core::mountinfo::Dev;
use quiesce_core::session::IfFrozen;
use quiesce_core::Status;

use super::blocked::blocked_tasks;
use super::report::Diagnosis;
use super::{check_timeout, Failure, Prepared, Report};
pub use crate::engine::helpers::GUARDIAN_GRACE;
use crate::engine::hooks::{Halt, NoHooks, SessionHooks};
use crate::engine::phases::since;
use crate::engine::plan::NothingToFreeze;
use crate::engine::record::RecordTargets;
pub use crate::engine::session::{presync_limit, PRESYNC_LIMIT};
use crate::engine::session::{ArmError, Lifecycle, Options};
use crate::engine::text::Lossy;
use crate::engine::ErrnoName;

/// How a session runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FreezeOptions {
    /// The deadline, from the first `FIFREEZE` to the last `FITHAW`.
    pub timeout: Duration,
    /// What to do with a filesystem that another holder has frozen already.
    pub if_frozen: IfFrozen,
    /// Whether to keep a session record under `/run/quiesce` (for `status` and `recover`).
    pub record: bool,
    /// Whether [`Armed::presync`] runs `syncfs` on every target (in parallel, in the freezer
    /// processes) before the first `FIFREEZE`, so that the flush of dirty data happens while
    /// writers still run and the freeze itself is short. On by default. It waits at most
    /// [`presync_limit`] (a `syncfs` stuck on stalled storage blocks a helper, not us).
    pub presync: bool,
    /// Whether targets that do not depend on each other (storage) are frozen at once, by a
    /// pool of freezer processes. On by default.
    pub parallel: bool,
}

impl FreezeOptions {
    /// `timeout`, failing on foreign freezes, with a session record.
    pub fn new(timeout: Duration) -> FreezeOptions {
        FreezeOptions {
            timeout,
            if_frozen: IfFrozen::Fail,
            record: true,
            presync: true,
            parallel: true,
        }
    }
}

/// A session ready to freeze: helpers forked, record written, nothing frozen yet. A shell over
/// the engine's [`Lifecycle`] that keeps the owned parts: the descriptors' list, the session
/// record and the notes.
pub struct Armed<'p> {
    prepared: &'p Prepared,
    options: FreezeOptions,
    life: Lifecycle,
    fds: Vec<BorrowedFd<'p>>,
    notes: Vec<String>,
}

/// The plan's targets as the session record lists them.
struct Targets<'p>(&'p Prepared);

impl RecordTargets for Targets<'_> {
    fn count(&self) -> usize {
        self.0.targets.len()
    }

    fn target(&self, i: usize) -> Option<(Dev, &[u8])> {
        let t = self.0.targets.get(i)?;
        Some((t.device, t.mount_point.as_bytes()))
    }
}

impl From<ArmError> for Failure {
    fn from(e: ArmError) -> Failure {
        Failure::new(e.status(), e.to_string()).with_errno(e.errno())
    }
}

impl Prepared {
    /// A session over this plan, not started: checks the options and that there is something
    /// to freeze.
    pub(crate) fn start(&self, options: FreezeOptions) -> Result<Armed<'_>, Failure> {
        check_timeout(options.timeout)?;
        if self.targets.is_empty() {
            let skips = self.skipped.iter().map(|s| (&s.mount_point, &s.reason));
            return Err(Failure::new(
                Status::NotFreezable,
                NothingToFreeze(skips).to_string(),
            ));
        }
        Ok(Armed {
            prepared: self,
            options,
            life: Lifecycle::new(Options {
                timeout: options.timeout,
                if_frozen: options.if_frozen,
                presync: options.presync,
                parallel: options.parallel,
                grace: GUARDIAN_GRACE,
            }),
            fds: self.fds().collect(),
            notes: Vec::new(),
        })
    }

    /// Forks the helpers and writes the session record: everything that allocates or may fail
    /// before the first `FIFREEZE`. Nothing is frozen.
    pub fn arm(&self, options: FreezeOptions) -> Result<Armed<'_>, Failure> {
        let mut armed = self.start(options)?;
        armed.arm_helpers()?;
        Ok(armed)
    }

    /// Freezes every target in order, notifies `controller`, waits for it until the deadline
    /// (`timeout` after the first `FIFREEZE`), thaws in reverse, and reports. Between the first
    /// freeze and the last thaw nothing is allocated and nothing is written.
    pub fn freeze(
        &self,
        timeout: Duration,
        controller: &mut dyn Controller,
    ) -> Result<Report, Failure> {
        self.freeze_with(FreezeOptions::new(timeout), controller)
    }

    /// [`Prepared::freeze`] with options.
    pub fn freeze_with(
        &self,
        options: FreezeOptions,
        controller: &mut dyn Controller,
    ) -> Result<Report, Failure> {
        let mut armed = self.arm(options)?;
        armed.presync();
        armed.run(controller);
        Ok(armed.finish())
    }
}

impl<'p> Armed<'p> {
    /// The hooks' `freeze` calls (before [`Armed::arm_helpers`]); on `Err` nothing may be
    /// frozen and the hooks that got `freeze` got `freeze-failed`.
    pub(crate) fn before_freeze(
        &mut self,
        hooks: &mut dyn SessionHooks,
        cancel: &mut dyn FnMut() -> bool,
    ) -> Result<(), Halt> {
        self.life.before_freeze(hooks, cancel)
    }

    /// Forks the helpers and writes the session record (both the engine's arm).
    pub(crate) fn arm_helpers(&mut self) -> Result<(), Failure> {
        let start = now_ns();
        let result = self.arm_and_record();
        // The engine timed its own arming (the helpers and the record); the front end's part
        // (the record's targets) is the rest of this phase.
        let engine = self.life.phases().arm_ns;
        let phases = self.life.phases_mut();
        phases.arm_ns = since(start).max(engine);
        result
    }

    fn arm_and_record(&mut self) -> Result<(), Failure> {
        let targets = Targets(self.prepared);
        let record: Option<&dyn RecordTargets> = self.options.record.then_some(&targets);
        self.life
            .arm(&self.fds, &self.prepared.wave_starts, record)?;
        if let Some(e) = self.life.record_error() {
            self.notes.push(format!(
                "cannot write the session record in {}: {}; `quiesce status` and `quiesce recover` will not see this session",
                super::record::run_dir().display(),
                ErrnoName(e)
            ));
        }
        Ok(())
    }

    /// The guardian's pid.
    pub fn guardian_pid(&self) -> i32 {
        self.life.helpers().map_or(0, |h| h.guardian)
    }

    /// The first freezer's pid.
    pub fn freezer_pid(&self) -> i32 {
        self.life.helpers().map_or(0, |h| h.freezer())
    }

    /// Every freezer's pid.
    pub fn freezer_pids(&self) -> &[i32] {
        self.life.helpers().map_or(&[], |h| h.freezer_pids())
    }

    /// Pre-sync (if the options ask for it): `syncfs` on every target, in parallel in the
    /// freezer processes, before the first `FIFREEZE`; waits at most [`presync_limit`] and
    /// returns how long it waited. Writers keep running meanwhile, so the dirty data is flushed
    /// without stalling them, and `FIFREEZE` only flushes what was written since. A failed or
    /// unfinished `syncfs` is noted in the report; the freeze flushes anyway. The deadline has
    /// not started. Allocates nothing.
    pub fn presync(&mut self) -> Option<Duration> {
        self.life.presync(&self.fds).map(Duration::from_nanos)
    }

    /// Runs the session: freeze (through the freezer), notify and wait on `controller`, thaw in
    /// reverse. Returns when everything we froze is thawed, or at the deadline if a `FIFREEZE`
    /// is stuck (the freezer thaws that one when its call returns). Allocates nothing.
    ///
    /// The controller is notified with the session's [`Tie`]: a process group it publishes
    /// there (its snapshot command) is killed by the guardian if this process dies while
    /// frozen. When the thaw is done the tie is closed, and the controller answers for it.
    pub fn run(&mut self, controller: &mut dyn Controller) -> Status {
        match self
            .life
            .freeze(&self.fds, &mut |tie| controller.notify_tied(tie))
        {
            Ok(()) => self.life.await_and_thaw(&self.fds, controller),
            Err(status) => status,
        }
    }

    /// Releases the helpers, removes the session record (unless a `FIFREEZE` is still stuck:
    /// then the guardian removes it once the freezer has thawed that filesystem), and builds
    /// the report. On a timeout the report names the slowest filesystem and the tasks in
    /// uninterruptible sleep.
    pub fn finish(self) -> Report {
        self.finish_with(&mut NoHooks)
    }

    /// [`Armed::finish`], with the hooks' second calls ([`Lifecycle::conclude`]).
    pub(crate) fn finish_with(mut self, hooks: &mut dyn SessionHooks) -> Report {
        let start = now_ns();
        let hooks_before = self.life.phases().hooks_ns;
        let status = self.life.conclude(hooks);
        let mut notes = std::mem::take(&mut self.notes);
        let targets = &self.prepared.targets;
        let names = |i: usize| Lossy(targets.get(i).map_or(b"?", |t| t.mount_point.as_bytes()));
        self.life
            .notes(&mut |n| notes.push(n.show(&names).to_string()));
        let diagnosis = (status == Status::Timeout).then(|| Diagnosis {
            blocked: blocked_tasks(),
        });
        let mut report = match self.life.session() {
            Some(session) => Report::new(self.prepared, session, self.options.timeout),
            None => Report::not_frozen(
                self.prepared,
                self.options.timeout,
                status,
                status.message().to_string(),
            ),
        };
        report.status = status;
        if let Some(session) = self.life.session() {
            for (p, t) in report.targets.iter_mut().enumerate() {
                t.wave = session.wave_of(p);
                t.presync_ns = self.life.presync_of(p);
            }
        }
        report.freezers = self.life.helpers().map_or(0, |h| h.freezer_count);
        report.notes.extend(notes);
        report.diagnosis = diagnosis;
        report.presync_ns = self.life.presync_ns();
        report.presync_skipped_clean = self.life.presync_skipped_clean();
        let mut phases = self.life.phases();
        phases.plan_ns = self.prepared.plan_ns;
        // Finishing is all of this but the hooks' second calls.
        let after_hooks = phases.hooks_ns.saturating_sub(hooks_before);
        phases.finish_ns = since(start).saturating_sub(after_hooks).max(1);
        report.phases = phases;
        report
    }
}
