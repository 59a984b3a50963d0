//! Which filesystem each named mount point holds, without freezing or thawing anything: the
//! superblock (device) of each, so that a second call (`quiesce thaw MOUNT`) can find the
//! session that holds it by identity, not by string.

use std::ffi::{CStr, CString, OsString};

use quiesce_core::mountinfo::Dev;
use quiesce_core::Status;

use super::prepare::{c_paths, text};
use super::Failure;
use crate::engine::plan::resolve;

/// A named mount point and the filesystem it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedMount {
    /// The argument as given.
    pub arg: String,
    /// The absolute mount point, from the mount table.
    pub mount_point: String,
    /// Its superblock.
    pub device: Dev,
    /// Filesystem type.
    pub fs_type: String,
}

/// Opens each argument, checks that it is a mount point (as `prepare` does: a path inside a
/// filesystem is refused with the mount point to name instead), and says which superblock it
/// holds. Nothing is frozen or thawed. Fails with [`Status::Usage`] on an empty list.
pub fn identify_mounts(args: &[OsString]) -> Result<Vec<NamedMount>, Failure> {
    if args.is_empty() {
        return Err(Failure::new(Status::Usage, "no mount point named"));
    }
    let owned = c_paths(args)?;
    let paths: Vec<&CStr> = owned.iter().map(CString::as_c_str).collect();
    let mut table = Vec::new();
    let resolved = resolve(&paths, &mut table, true)?;
    let mi = resolved.mountinfo;
    let mut out = Vec::with_capacity(resolved.opened.len());
    for (arg, r) in args.iter().zip(&resolved.opened) {
        let Some(Ok(e)) = mi.find(r.mount_id) else {
            return Err(Failure::new(
                Status::BadTarget,
                format!(
                    "'{}' is not in the mount table (unmounted while quiesce looked?)",
                    arg.to_string_lossy()
                ),
            ));
        };
        out.push(NamedMount {
            arg: arg.to_string_lossy().into_owned(),
            mount_point: text(e.mount_point),
            device: e.dev,
            fs_type: text(e.fs_type),
        });
    }
    Ok(out)
}
