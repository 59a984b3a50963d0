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

use quiesce_core::linux::sys::{self, now_ns};
use quiesce_core::linux::table::state;
use quiesce_core::linux::{execute_with, Controller};
use quiesce_core::session::{IfFrozen, Session, SessionError};
use quiesce_core::Status;

use super::blocked::blocked_tasks;
use super::helpers::Helpers;
pub use super::helpers::GUARDIAN_GRACE;
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
    /// Whether [`Armed::presync`] runs `syncfs` on every target (in parallel) before the first
    /// `FIFREEZE`, so that the flush of dirty data happens while writers still run and the
    /// freeze itself is short. Off by default: the threads are this process's, and start
    /// before the deadline, so storage that has stalled blocks them (and this process's exit)
    /// without a bound; moving the `syncfs` into the helper processes is the next step.
    pub presync: bool,
}

impl FreezeOptions {
    /// `timeout`, failing on foreign freezes, with a session record.
    pub fn new(timeout: Duration) -> FreezeOptions {
        FreezeOptions {
            timeout,
            if_frozen: IfFrozen::Fail,
            record: true,
            presync: false,
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
            .with_if_frozen(options.if_frozen);
        let fds: Vec<BorrowedFd<'_>> = self.fds().collect();
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
        let helpers =
            Helpers::spawn(&fds, record_path.as_deref(), GUARDIAN_GRACE).map_err(|e| {
                Failure::new(
                    Status::Internal,
                    format!("cannot start the guardian and the freezer: {e}"),
                )
                .with_errno(e.raw_os_error().unwrap_or(0))
            })?;
        if let Some(r) = record.as_mut() {
            r.guardian = ProcRef::of(helpers.guardian);
            r.freezer = ProcRef::of(helpers.freezer);
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

    /// The freezer's pid.
    pub fn freezer_pid(&self) -> i32 {
        self.helpers.freezer
    }

    /// Pre-sync (if the options ask for it): `syncfs` on every target, one thread each, before
    /// the first `FIFREEZE`; returns how long it took. Writers keep running meanwhile, so the
    /// dirty data is flushed without stalling them, and `FIFREEZE` only flushes what was
    /// written since. A failed `syncfs` is noted; the freeze flushes anyway. Allocates (the
    /// threads): call it right before [`Armed::run`].
    pub fn presync(&mut self) -> Option<Duration> {
        if !self.options.presync {
            return None;
        }
        let start = now_ns();
        let failed: Vec<(usize, i32)> = std::thread::scope(|scope| {
            let handles: Vec<_> = self
                .fds
                .iter()
                .enumerate()
                .map(|(i, fd)| scope.spawn(move || (i, sys::syncfs(*fd))))
                .collect();
            handles
                .into_iter()
                .filter_map(|h| h.join().ok())
                .filter_map(|(i, r)| r.err().map(|e| (i, e)))
                .collect()
        });
        let took = now_ns().saturating_sub(start);
        for (i, errno) in failed {
            let name = self
                .prepared
                .targets
                .get(i)
                .map_or("?", |t| t.mount_point.as_str());
            self.notes.push(format!(
                "pre-sync (syncfs) of {name} failed: {}; its FIFREEZE flushes instead",
                errno_name(errno)
            ));
        }
        self.presync_ns = Some(took);
        Some(Duration::from_nanos(took))
    }

    /// Runs the session: freeze (through the freezer), notify and wait on `controller`, thaw in
    /// reverse. Returns when everything we froze is thawed, or at the deadline if a `FIFREEZE`
    /// is stuck (the freezer thaws that one when its call returns). Allocates nothing.
    pub fn run(&mut self, controller: &mut dyn Controller) -> Status {
        match self.helpers.client(&self.fds) {
            Some(mut ops) => execute_with(&mut self.session, &mut ops, controller),
            None => Status::Internal,
        }
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
