//! `quiesce status` and `quiesce recover`: the sessions in progress, from their records under
//! `/run/quiesce`, and the rescue of those whose controller and guardian are both gone.
//!
//! Recovery never trusts a path alone: each recorded mount point is opened, must still be a
//! mount point, and must still hold the recorded superblock (device) before it is thawed.
//! `EINVAL` from `FITHAW` means it is not frozen (already thawed): that is fine.

use std::ffi::CString;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use quiesce_core::errno::EINVAL;
use quiesce_core::linux::sys;
use quiesce_core::mountinfo::MountInfo;
use quiesce_core::Status;

use super::record::{run_dir, ProcRef, RecordTarget, SessionRecord};
use super::{errno_name, Failure};

/// Where a recorded session stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionState {
    /// Its controller is running.
    Active,
    /// Its controller is gone and its guardian is running (thawing, or waiting for a stuck
    /// `FIFREEZE` to return so that the freezer can thaw it).
    Guarded,
    /// Controller and guardian are gone, but the freezer is still in a `FIFREEZE`.
    Settling,
    /// Controller, guardian and freezer are all gone: `quiesce recover` thaws its targets.
    Orphaned,
}

impl SessionState {
    /// A stable name.
    pub fn name(self) -> &'static str {
        match self {
            SessionState::Active => "active",
            SessionState::Guarded => "guarded",
            SessionState::Settling => "settling",
            SessionState::Orphaned => "orphaned",
        }
    }
}

/// One recorded session and whether its processes are alive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionStatus {
    /// The record.
    pub record: SessionRecord,
    /// Where it stands.
    pub state: SessionState,
    /// Whether the controller is alive.
    pub controller_alive: bool,
    /// Whether the guardian is alive.
    pub guardian_alive: bool,
    /// Whether the freezer is alive.
    pub freezer_alive: bool,
}

impl SessionStatus {
    fn of(record: SessionRecord) -> SessionStatus {
        let controller_alive = record.controller.alive();
        let guardian_alive = record.guardian.alive();
        let freezer_alive = record.freezer.alive() || record.pool.iter().any(ProcRef::alive);
        let state = if controller_alive {
            SessionState::Active
        } else if guardian_alive {
            SessionState::Guarded
        } else if freezer_alive {
            SessionState::Settling
        } else {
            SessionState::Orphaned
        };
        SessionStatus {
            record,
            state,
            controller_alive,
            guardian_alive,
            freezer_alive,
        }
    }
}

/// The recorded sessions in `dir`.
pub fn sessions_in(dir: &Path) -> Result<Vec<SessionStatus>, Failure> {
    SessionRecord::list_in(dir)
        .map(|v| v.into_iter().map(SessionStatus::of).collect())
        .map_err(|e| {
            let status = if e.kind() == std::io::ErrorKind::PermissionDenied {
                Status::Permission
            } else {
                Status::Internal
            };
            Failure::new(
                status,
                format!(
                    "cannot read the session records in {}: {e}{}",
                    dir.display(),
                    if status == Status::Permission {
                        " (run quiesce as root)"
                    } else {
                        ""
                    }
                ),
            )
            .with_errno(e.raw_os_error().unwrap_or(0))
        })
}

/// The recorded sessions under [`run_dir`] (`/run/quiesce`).
pub fn sessions() -> Result<Vec<SessionStatus>, Failure> {
    sessions_in(&run_dir())
}

/// What recovery did to one filesystem.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecoverOutcome {
    /// It was frozen; now it is not.
    Thawed,
    /// It was not frozen (already thawed).
    NotFrozen,
    /// The mount point no longer holds the recorded filesystem: left alone.
    Mismatch,
    /// The mount point cannot be opened (unmounted, removed): nothing to thaw there.
    Missing,
    /// `FITHAW` failed: it may still be frozen.
    Failed,
}

impl RecoverOutcome {
    /// A stable name.
    pub fn name(self) -> &'static str {
        match self {
            RecoverOutcome::Thawed => "thawed",
            RecoverOutcome::NotFrozen => "not-frozen",
            RecoverOutcome::Mismatch => "device-changed",
            RecoverOutcome::Missing => "missing",
            RecoverOutcome::Failed => "thaw-failed",
        }
    }
}

/// One filesystem of a recovered session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveredTarget {
    /// As recorded.
    pub target: RecordTarget,
    /// What happened.
    pub outcome: RecoverOutcome,
    /// The errno of a failure, or 0.
    pub errno: i32,
    /// Why, for people (empty when it was thawed or not frozen).
    pub detail: String,
}

/// One session as `recover` found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveredSession {
    /// The session.
    pub session: SessionStatus,
    /// What was done to its targets (empty unless it was orphaned).
    pub targets: Vec<RecoveredTarget>,
    /// Whether its record was removed.
    pub removed: bool,
}

fn recover_target(t: &RecordTarget) -> RecoveredTarget {
    let done = |outcome, errno, detail: String| RecoveredTarget {
        target: t.clone(),
        outcome,
        errno,
        detail,
    };
    let Ok(c) = CString::new(Path::new(&t.mount_point).as_os_str().as_bytes()) else {
        return done(RecoverOutcome::Missing, 0, "not a valid path".into());
    };
    let fd = match sys::open_dir(&c) {
        Ok(fd) => fd,
        Err(e) => {
            return done(
                RecoverOutcome::Missing,
                e,
                format!("cannot open it: {}", errno_name(e)),
            )
        }
    };
    let id = match sys::identify(fd.as_fd()) {
        Ok(id) => id,
        Err(e) => {
            return done(
                RecoverOutcome::Missing,
                e,
                format!("cannot examine it: {}", errno_name(e)),
            )
        }
    };
    if !id.is_mount_root {
        return done(
            RecoverOutcome::Mismatch,
            0,
            "it is no longer a mount point".into(),
        );
    }
    let mountinfo = std::fs::read("/proc/self/mountinfo").unwrap_or_default();
    let dev = u32::try_from(id.mount_id)
        .ok()
        .and_then(|m| MountInfo::new(&mountinfo).find(m))
        .and_then(Result::ok)
        .map(|e| e.dev);
    match dev {
        Some(d) if d == t.device => {}
        Some(d) => {
            return done(
                RecoverOutcome::Mismatch,
                0,
                format!(
                    "it now holds device {d}, not the recorded {}; left alone",
                    t.device
                ),
            )
        }
        None => {
            return done(
                RecoverOutcome::Mismatch,
                0,
                "its mount is not in the mount table".into(),
            )
        }
    }
    match sys::thaw(fd.as_fd()) {
        Ok(()) => done(RecoverOutcome::Thawed, 0, String::new()),
        Err(EINVAL) => done(RecoverOutcome::NotFrozen, 0, String::new()),
        Err(e) => done(
            RecoverOutcome::Failed,
            e,
            format!("FITHAW failed: {}", errno_name(e)),
        ),
    }
}

/// Thaws the targets of every orphaned session in `dir` (in reverse order of freezing) and
/// removes its record, unless a thaw failed. Sessions with a live process are listed and left
/// alone. The status is [`Status::ThawFailed`] if any thaw failed.
pub fn recover_in(dir: &Path) -> Result<(Status, Vec<RecoveredSession>), Failure> {
    let mut status = Status::Ok;
    let mut out = Vec::new();
    for session in sessions_in(dir)? {
        if session.state != SessionState::Orphaned {
            out.push(RecoveredSession {
                session,
                targets: Vec::new(),
                removed: false,
            });
            continue;
        }
        let mut targets: Vec<RecoveredTarget> = session
            .record
            .targets
            .iter()
            .rev()
            .map(recover_target)
            .collect();
        targets.reverse();
        let failed = targets.iter().any(|t| t.outcome == RecoverOutcome::Failed);
        if failed {
            status = Status::ThawFailed;
        }
        let removed = !failed && session.record.remove().is_ok();
        out.push(RecoveredSession {
            session,
            targets,
            removed,
        });
    }
    Ok((status, out))
}

/// Thaws the targets of every orphaned session under [`run_dir`] (see `recover_in`).
pub fn recover() -> Result<(Status, Vec<RecoveredSession>), Failure> {
    recover_in(&run_dir())
}
