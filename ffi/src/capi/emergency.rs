//! The operator's rescue through the ABI: thaw named mount points, no session needed.

use core::ffi::{c_char, CStr};
use std::os::fd::AsFd;

use quiesce_core::Status;

use super::guard;
use crate::engine::plan::{open_mount, Opened};
use crate::engine::rescue::Rescue;

/// Thaws the filesystems mounted at `mounts[0..count]` (each must be a mount point: a
/// directory inside a filesystem is refused, so that its parent filesystem is never thawed by
/// accident). A filesystem that is not frozen is fine; one named twice (the same superblock at
/// two paths) is thawed once. Needs no session and allocates nothing;
/// safe to call from any thread at any time, e.g. from an agent's crash handler or at start-up
/// after a crash.
///
/// Returns `QUIESCE_OK` when every one is thawed (or was not frozen), `QUIESCE_BAD_TARGET`
/// when a path is not a mount point that can be opened (the others are still thawed),
/// `QUIESCE_THAW_FAILED` when a `FITHAW` failed, `QUIESCE_USAGE` for a NULL array. If
/// `thawed` is not NULL it receives how many were actually thawed.
///
/// # Safety
/// `mounts` must point to `count` pointers, each NULL or a NUL-terminated string; `thawed`
/// must be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn quiesce_emergency_thaw(
    mounts: *const *const c_char,
    count: usize,
    thawed: *mut usize,
) -> u32 {
    guard(Status::Internal.code(), || {
        if mounts.is_null() && count != 0 {
            return Status::Usage.code();
        }
        let mut rescue = Rescue::new();
        for i in 0..count {
            // SAFETY: the caller vouches for `count` readable pointers.
            let p = unsafe { *mounts.add(i) };
            if p.is_null() {
                rescue.note(Status::Usage);
                continue;
            }
            // SAFETY: a non-NULL entry is a NUL-terminated string.
            let path = unsafe { CStr::from_ptr(p) };
            match open_mount(path, i) {
                Ok(Opened {
                    fd: Some(fd),
                    is_root: true,
                    dev,
                    ..
                }) => {
                    rescue.thaw(fd.as_fd(), dev);
                }
                _ => rescue.note(Status::BadTarget),
            }
        }
        if !thawed.is_null() {
            // SAFETY: the caller vouches that a non-NULL `thawed` is writable.
            unsafe { thawed.write(rescue.thawed) };
        }
        rescue.status().code()
    })
}
