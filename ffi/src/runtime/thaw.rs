//! The operator's rescue: thaw named mount points.

use std::ffi::OsString;
use std::os::fd::AsFd;

use quiesce_core::errno::EINVAL;
use quiesce_core::linux::sys;
use quiesce_core::mountinfo::{Dev, MountInfo};
use quiesce_core::Status;

use super::prepare::{resolve_all, text};
use super::Failure;

/// What a rescue thaw did to one filesystem.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThawOutcome {
    /// It was frozen; now it is not.
    Thawed,
    /// It was not frozen (nothing to do).
    NotFrozen,
    /// `FITHAW` failed.
    Failed,
}

impl ThawOutcome {
    /// A stable name.
    pub fn name(self) -> &'static str {
        match self {
            ThawOutcome::Thawed => "thawed",
            ThawOutcome::NotFrozen => "not-frozen",
            ThawOutcome::Failed => "thaw-failed",
        }
    }
}

/// One filesystem of a rescue thaw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThawResult {
    /// The absolute mount point.
    pub mount_point: String,
    /// Filesystem type.
    pub fs_type: String,
    /// Its superblock.
    pub device: Dev,
    /// What happened.
    pub outcome: ThawOutcome,
    /// The errno of a failure, or 0.
    pub errno: i32,
}

/// Thaws each named mount point (each superblock once). A filesystem that is not frozen is
/// reported as such, not as an error. The status is [`Status::ThawFailed`] if any thaw failed.
pub fn thaw_paths(args: &[OsString]) -> Result<(Status, Vec<ThawResult>), Failure> {
    if args.is_empty() {
        return Err(Failure::new(
            Status::Usage,
            "no mount point named: name the frozen filesystems to thaw",
        ));
    }
    let (mountinfo, resolved) = resolve_all(args)?;
    let mi = MountInfo::new(&mountinfo);
    let mut done: Vec<Dev> = Vec::new();
    let mut results = Vec::new();
    let mut status = Status::Ok;
    for r in &resolved {
        let Some(Ok(e)) = mi.find(r.mount_id) else {
            continue;
        };
        if done.contains(&e.dev) {
            continue;
        }
        done.push(e.dev);
        let (outcome, errno) = match sys::thaw(r.fd.as_fd()) {
            Ok(()) => (ThawOutcome::Thawed, 0),
            Err(EINVAL) => (ThawOutcome::NotFrozen, 0),
            Err(errno) => {
                status = Status::ThawFailed;
                (ThawOutcome::Failed, errno)
            }
        };
        results.push(ThawResult {
            mount_point: text(e.mount_point),
            fs_type: text(e.fs_type),
            device: e.dev,
            outcome,
            errno,
        });
    }
    Ok((status, results))
}
