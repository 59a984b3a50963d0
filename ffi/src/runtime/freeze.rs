//! Running one freeze session: arm (fork the helpers, write the session record), run (freeze,
//! notify, wait, thaw: no allocation), finish (release the helpers, remove the record, report).
//!
//! Who does what while frozen:
//! - this thread (the controller) runs the core's session machine and enforces the deadline;
//! - the freezer process issues every `FIFREEZE`, so a call stuck in the kernel cannot keep the
//!   controller past its deadline, nor keep this process from exiting;
//! - the guardian process thaws whatever is still ours if this process dies (SIGKILL included)
//!   or has not thawed by the deadline plus [`GUARDIAN_GRACE`].

use std::ffi::CString;
use std::os::fd::BorrowedFd;
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use quiesce_core::linux::sys::now_ns;
use quiesce_core::linux::table::{state, sync, Tie};
use quiesce_core::linux::{execute_with, Controller};
use quiesce_core::session::{IfFrozen, Session, SessionError};
use quiesce_core::Status;

use super::blocked::blocked_tasks;
pub use super::helpers::GUARDIAN_GRACE;
use super::helpers::{pool_size, Helpers};
use super::record::{ProcRef, RecordTarget, SessionRecord};
use super::report::Diagnosis;
use super::{check_timeout, errno_name, Failure, Prepared, Report, MAX_TARGETS};

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

/// The longest pre-sync wait: the timeout, but no more than this.
pub const PRESYNC_LIMIT: Duration = Duration::from_secs(10);

/// How long the pre-sync waits for `timeout`: `min(timeout, PRESYNC_LIMIT)`. Whatever it has
/// not flushed by then, `FIFREEZE` flushes.
pub fn presync_limit(timeout: Duration) -> Duration {
    timeout.min(PRESYNC_LIMIT)
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

/// A session ready to freeze: helpers forked, record written, nothing frozen yet.
pub struct Armed<'p> {
    prepared: &'p Prepared,
    options: FreezeOptions,
    session: Session<MAX_TARGETS>,
    fds: Vec<BorrowedFd<'p>>,
    helpers: Helpers,
    record: Option<SessionRecord>,
    notes: Vec<String>,
    presync_ns: Option<u64>,
}

impl Prepared {
    /// Forks the helpers and writes the session record: everything that allocates or may fail
    /// before the first `FIFREEZE`. Nothing is frozen.
    pub fn arm(&self, options: FreezeOptions) -> Result<Armed<'_>, Failure> {
        let timeout_ns = check_timeout(options.timeout)?;
        if self.targets.is_empty() {
            let why: Vec<String> = self
                .skipped
                .iter()
                .map(|s| format!("{}: {}", s.mount_point, s.reason))
                .collect();
            return Err(Failure::new(
                Status::NotFreezable,
                format!("nothing to freeze: {}", why.join("; ")),
            ));
        }
        let order: Vec<u16> = (0..self.targets.len() as u16).collect();
        let waves: &[bool] = if options.parallel {
            &self.wave_starts
        } else {
            &[]
        };
        let session = Session::<MAX_TARGETS>::new(&order, timeout_ns)
            .map_err(|e| match e {
                SessionError::TooManyTargets => Failure::new(
                    Status::PlanRefused,
                    format!("more than {MAX_TARGETS} filesystems to freeze; name fewer"),
                ),
                SessionError::BadOrder | SessionError::ZeroTimeout => {
                    Failure::new(Status::Internal, format!("cannot start a session: {e:?}"))
                }
            })?
            .with_if_frozen(options.if_frozen)
            .with_wave_starts(waves);
        let fds: Vec<BorrowedFd<'_>> = self.fds().collect();
        let freezers = pool_size(waves, options.presync, fds.len());
        let mut notes = Vec::new();
        let mut record = options.record.then(|| {
            SessionRecord::new(
                options.timeout,
                self.targets
                    .iter()
                    .map(|t| RecordTarget {
                        device: t.device,
                        mount_point: t.mount_point.clone(),
                    })
                    .collect(),
            )
        });
        let record_path = record
            .as_ref()
            .and_then(|r| CString::new(r.path.as_os_str().as_bytes()).ok());
        let helpers = Helpers::spawn(&fds, record_path.as_deref(), GUARDIAN_GRACE, freezers)
            .map_err(|e| {
                Failure::new(
                    Status::Internal,
                    format!("cannot start the guardian and the freezers: {e}"),
                )
                .with_errno(e.raw_os_error().unwrap_or(0))
            })?;
        if let Some(r) = record.as_mut() {
            r.guardian = ProcRef::of(helpers.guardian);
            r.freezer = ProcRef::of(helpers.freezer());
            r.pool = helpers.freezer_pids()[1..]
                .iter()
                .map(|&p| ProcRef::of(p))
                .collect();
            if let Err(e) = r.write() {
                notes.push(format!(
                    "cannot write the session record {}: {e}; `quiesce status` and `quiesce recover` will not see this session",
                    r.path.display()
                ));
                record = None;
            }
        }
        Ok(Armed {
            prepared: self,
            options,
            session,
            fds,
            helpers,
            record,
            notes,
            presync_ns: None,
        })
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

impl Armed<'_> {
    /// The guardian's pid.
    pub fn guardian_pid(&self) -> i32 {
        self.helpers.guardian
    }

    /// The first freezer's pid.
    pub fn freezer_pid(&self) -> i32 {
        self.helpers.freezer()
    }

    /// Every freezer's pid.
    pub fn freezer_pids(&self) -> &[i32] {
        self.helpers.freezer_pids()
    }

    /// Pre-sync (if the options ask for it): `syncfs` on every target, in parallel in the
    /// freezer processes, before the first `FIFREEZE`; waits at most [`presync_limit`] and
    /// returns how long it waited. Writers keep running meanwhile, so the dirty data is flushed
    /// without stalling them, and `FIFREEZE` only flushes what was written since. A failed or
    /// unfinished `syncfs` is noted in the report; the freeze flushes anyway. The deadline has
    /// not started. Allocates nothing.
    pub fn presync(&mut self) -> Option<Duration> {
        if !self.options.presync {
            return None;
        }
        let start = now_ns();
        let limit =
            u64::try_from(presync_limit(self.options.timeout).as_nanos()).unwrap_or(u64::MAX);
        let mut ops = self.helpers.client(&self.fds)?;
        ops.presync(start.saturating_add(limit));
        let took = now_ns().saturating_sub(start).max(1);
        self.presync_ns = Some(took);
        Some(Duration::from_nanos(took))
    }

    /// Runs the session: freeze (through the freezer), notify and wait on `controller`, thaw in
    /// reverse. Returns when everything we froze is thawed, or at the deadline if a `FIFREEZE`
    /// is stuck (the freezer thaws that one when its call returns). Allocates nothing.
    ///
    /// The controller is notified with the session's [`Tie`]: a process group it publishes
    /// there (its snapshot command) is killed by the guardian if this process dies while
    /// frozen. When the thaw is done the tie is closed, and the controller answers for it.
    pub fn run(&mut self, controller: &mut dyn Controller) -> Status {
        let table = self.helpers.table();
        let status = match self.helpers.client(&self.fds) {
            Some(mut ops) => {
                let mut tied = Tied {
                    controller,
                    tie: table.tie(),
                };
                execute_with(&mut self.session, &mut ops, &mut tied)
            }
            None => Status::Internal,
        };
        let _ = table.close_tie();
        status
    }

    /// Releases the helpers, removes the session record (unless a `FIFREEZE` is still stuck:
    /// then the guardian removes it once the freezer has thawed that filesystem), and builds
    /// the report. On a timeout the report names the slowest filesystem and the tasks in
    /// uninterruptible sleep.
    pub fn finish(mut self) -> Report {
        self.helpers.release();
        let table = self.helpers.table();
        let unresolved = table.freeze_unresolved() || table.anything_ours();
        let mut notes = std::mem::take(&mut self.notes);
        for (i, slot) in table.slots().iter().enumerate() {
            let name = self
                .prepared
                .targets
                .get(i)
                .map_or("?", |t| t.mount_point.as_str());
            match slot.state() {
                state::ABANDONED => notes.push(format!(
                    "the FIFREEZE of {name} is still stuck in the kernel; it is thawed as soon as that call returns"
                )),
                state::THAWED_LATE => notes.push(format!(
                    "the FIFREEZE of {name} returned after the deadline; it was thawed at once"
                )),
                _ => {}
            }
            match slot.sync_state() {
                sync::FAILED => notes.push(format!(
                    "pre-sync (syncfs) of {name} failed: {}; its FIFREEZE flushed instead",
                    errno_name(slot.sync_errno())
                )),
                sync::RUNNING | sync::SKIPPED => notes.push(format!(
                    "pre-sync (syncfs) of {name} did not finish within {} ms; its FIFREEZE flushed the rest",
                    presync_limit(self.options.timeout).as_millis()
                )),
                _ => {}
            }
        }
        if let Some(r) = self.record.take() {
            if !unresolved {
                let _ = r.remove();
            }
        }
        let diagnosis = (self.session.status() == Status::Timeout).then(|| Diagnosis {
            blocked: blocked_tasks(),
        });
        let mut report = Report::new(self.prepared, &self.session, self.options.timeout);
        for (p, t) in report.targets.iter_mut().enumerate() {
            t.wave = self.session.wave_of(p);
            t.presync_ns = table.slot(p).map_or(0, |s| match s.sync_state() {
                sync::DONE => s.sync_ns(),
                _ => 0,
            });
        }
        report.freezers = self.helpers.freezer_count;
        report.notes.extend(notes);
        report.diagnosis = diagnosis;
        report.presync_ns = self.presync_ns;
        report
    }
}

impl Drop for Armed<'_> {
    fn drop(&mut self) {
        // Armed but never finished: the guardian thaws anything still ours when the helpers are
        // released (our pipe closes); the record goes if nothing is left.
        self.helpers.release();
        if let Some(r) = self.record.take() {
            if !self.session.anything_frozen() {
                let _ = r.remove();
            }
        }
    }
}

/// The controller, notified with the session's tie ([`Controller::notify_tied`]).
struct Tied<'c, 't> {
    controller: &'c mut dyn Controller,
    tie: Tie<'t>,
}

impl Controller for Tied<'_, '_> {
    fn notify(&mut self) -> Result<(), i32> {
        self.controller.notify_tied(self.tie)
    }

    fn wait(&mut self, until_ns: u64) -> Option<quiesce_core::linux::Signal> {
        self.controller.wait(until_ns)
    }
}
