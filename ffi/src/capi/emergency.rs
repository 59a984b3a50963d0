//! The operator's rescue through the ABI: thaw named mount points, no session needed.

use core::ffi::{c_char, CStr};
use std::os::fd::AsFd;

use quiesce_core::errno::EINVAL;
use quiesce_core::linux::sys;
use quiesce_core::Status;

use super::guard;

/// Thaws the filesystems mounted at `mounts[0..count]` (each must be a mount point: a
/// directory inside a filesystem is refused, so that its parent filesystem is never thawed by
/// accident). A filesystem that is not frozen is fine. Needs no session and allocates nothing;
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
        let mut worst = Status::Ok;
        let mut n = 0;
        for i in 0..count {
            // SAFETY: the caller vouches for `count` readable pointers.
            let p = unsafe { *mounts.add(i) };
            if p.is_null() {
                worst = worse(worst, Status::Usage);
                continue;
            }
            // SAFETY: a non-NULL entry is a NUL-terminated string.
            let path = unsafe { CStr::from_ptr(p) };
            let Ok(fd) = sys::open_dir(path) else {
                worst = worse(worst, Status::BadTarget);
                continue;
            };
            match sys::identify(fd.as_fd()) {
                Ok(id) if id.is_mount_root => {}
                _ => {
                    worst = worse(worst, Status::BadTarget);
                    continue;
                }
            }
            match sys::thaw(fd.as_fd()) {
                Ok(()) => n += 1,
                Err(EINVAL) => {}
                Err(_) => worst = worse(worst, Status::ThawFailed),
            }
        }
        if !thawed.is_null() {
            // SAFETY: the caller vouches that a non-NULL `thawed` is writable.
            unsafe { thawed.write(n) };
        }
        worst.code()
    })
}

/// The more serious of two statuses: a failed thaw beats a bad path beats bad usage.
fn worse(a: Status, b: Status) -> Status {
    let rank = |s: Status| match s {
        Status::ThawFailed => 3,
        Status::BadTarget => 2,
        Status::Usage => 1,
        _ => 0,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}
