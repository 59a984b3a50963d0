//! The operator's rescue: thaw named mount points (resolved first, all or none; then the
//! engine's [`Rescue`], each superblock once).

use std::ffi::{CStr, CString, OsString};
use std::os::fd::AsFd;

use quiesce_core::mountinfo::Dev;
use quiesce_core::Status;

use super::prepare::{c_paths, text};
use super::Failure;
use crate::engine::plan::resolve;
use crate::engine::rescue::{Rescue, Thawed};

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
    let owned = c_paths(args)?;
    let paths: Vec<&CStr> = owned.iter().map(CString::as_c_str).collect();
    let mut table = Vec::new();
    let resolved = resolve(&paths, &mut table, true)?;
    let mi = resolved.mountinfo;
    let mut rescue = Rescue::new();
    let mut results = Vec::new();
    for r in &resolved.opened {
        let (Some(Ok(e)), Some(fd)) = (mi.find(r.mount_id), r.fd.as_ref()) else {
            continue;
        };
        let (outcome, errno) = match rescue.thaw(fd.as_fd(), e.dev) {
            // Named before: thawed once.
            None => continue,
            Some(Thawed::Thawed) => (ThawOutcome::Thawed, 0),
            Some(Thawed::NotFrozen) => (ThawOutcome::NotFrozen, 0),
            Some(Thawed::Failed(errno)) => (ThawOutcome::Failed, errno),
        };
        results.push(ThawResult {
            mount_point: text(e.mount_point),
            fs_type: text(e.fs_type),
            device: e.dev,
            outcome,
            errno,
        });
    }
    Ok((rescue.status(), results))
}
