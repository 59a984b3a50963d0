//! The C ABI (first exports; the full session API follows).
//!
//! Conventions (after rustls-ffi): status codes are `uint32_t`; strings returned are static
//! and NUL-terminated, never to be freed; every export catches panics. The library installs
//! no signal handlers and changes no signal mask. All functions here are thread-safe.

use core::ffi::c_char;
use std::panic::{catch_unwind, AssertUnwindSafe};

use quiesce_core::Status;

/// The ABI version: bumped on every incompatible change of the C interface.
pub const QUIESCE_ABI_VERSION: u32 = 1;

/// Status: frozen, acknowledged, thawed; file-system-consistent.
pub const QUIESCE_OK: u32 = 0;
/// Status: bad usage or parameters.
pub const QUIESCE_USAGE: u32 = 2;
/// Status: a named path is not a mount point that can be opened.
pub const QUIESCE_BAD_TARGET: u32 = 3;
/// Status: a named filesystem cannot be frozen.
pub const QUIESCE_NOT_FREEZABLE: u32 = 4;
/// Status: not permitted (needs CAP_SYS_ADMIN).
pub const QUIESCE_PERMISSION: u32 = 5;
/// Status: the plan was refused (dependency cycle, too many targets).
pub const QUIESCE_PLAN_REFUSED: u32 = 6;
/// Status: a hook was refused by the authenticity checks; nothing ran, nothing was frozen.
pub const QUIESCE_HOOK_REFUSED: u32 = 7;
/// Status: a freeze failed; everything frozen before it was thawed.
pub const QUIESCE_FREEZE_FAILED: u32 = 11;
/// Status: a thaw failed; a filesystem may still be frozen.
pub const QUIESCE_THAW_FAILED: u32 = 12;
/// Status: the deadline passed before the acknowledgement; thawed, not consistent.
pub const QUIESCE_TIMEOUT: u32 = 13;
/// Status: the controller went away without acknowledging; thawed, not consistent.
pub const QUIESCE_NOT_ACKNOWLEDGED: u32 = 14;
/// Status: a filesystem was already frozen by another holder.
pub const QUIESCE_FROZEN_BY_OTHER: u32 = 15;
/// Status: someone else thawed a filesystem during the window; not consistent.
pub const QUIESCE_SUSPECT: u32 = 16;
/// Status: the snapshot failed; thawed, not consistent.
pub const QUIESCE_SNAPSHOT_FAILED: u32 = 17;
/// Status: interrupted by a signal; thawed, not consistent.
pub const QUIESCE_INTERRUPTED: u32 = 18;
/// Status: application consistency was required but not reached; nothing was frozen.
pub const QUIESCE_NOT_APP_CONSISTENT: u32 = 19;
/// Status: a hook failed after the thaw; the application may not have resumed.
pub const QUIESCE_THAW_HOOK_FAILED: u32 = 20;
/// Status: internal error (a bug in quiesce, or a panic caught at the ABI).
pub const QUIESCE_INTERNAL: u32 = 70;

const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");

fn guard<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(fallback)
}

fn c_str(s: &'static str) -> *const c_char {
    s.as_ptr().cast()
}

/// The library version, e.g. `"0.1.0"`: a static string, never freed.
#[no_mangle]
pub extern "C" fn quiesce_version() -> *const c_char {
    guard(c_str(VERSION), || c_str(VERSION))
}

/// The ABI version (`QUIESCE_ABI_VERSION` of the library actually loaded).
#[no_mangle]
pub extern "C" fn quiesce_abi_version() -> u32 {
    guard(QUIESCE_ABI_VERSION, || QUIESCE_ABI_VERSION)
}

/// A static, one-line description of `status`; `"unknown status"` for numbers that are not
/// statuses. Never NULL, never freed.
#[no_mangle]
pub extern "C" fn quiesce_status_message(status: u32) -> *const c_char {
    guard(c_str("unknown status\0"), || {
        c_str(Status::from_code(status).map_or("unknown status\0", Status::message_with_nul))
    })
}

/// A static, stable short name of `status` (`"ok"`, `"freeze-failed"`, ...); `"unknown"` for
/// numbers that are not statuses. Never NULL, never freed.
#[no_mangle]
pub extern "C" fn quiesce_status_name(status: u32) -> *const c_char {
    guard(c_str("unknown\0"), || {
        c_str(Status::from_code(status).map_or("unknown\0", Status::name_with_nul))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    #[test]
    fn constants_match_the_core() {
        let pairs = [
            (QUIESCE_OK, Status::Ok),
            (QUIESCE_USAGE, Status::Usage),
            (QUIESCE_BAD_TARGET, Status::BadTarget),
            (QUIESCE_NOT_FREEZABLE, Status::NotFreezable),
            (QUIESCE_PERMISSION, Status::Permission),
            (QUIESCE_PLAN_REFUSED, Status::PlanRefused),
            (QUIESCE_HOOK_REFUSED, Status::HookRefused),
            (QUIESCE_FREEZE_FAILED, Status::FreezeFailed),
            (QUIESCE_THAW_FAILED, Status::ThawFailed),
            (QUIESCE_TIMEOUT, Status::Timeout),
            (QUIESCE_NOT_ACKNOWLEDGED, Status::NotAcknowledged),
            (QUIESCE_FROZEN_BY_OTHER, Status::FrozenByOther),
            (QUIESCE_SUSPECT, Status::Suspect),
            (QUIESCE_SNAPSHOT_FAILED, Status::SnapshotFailed),
            (QUIESCE_INTERRUPTED, Status::Interrupted),
            (QUIESCE_NOT_APP_CONSISTENT, Status::NotAppConsistent),
            (QUIESCE_THAW_HOOK_FAILED, Status::ThawHookFailed),
            (QUIESCE_INTERNAL, Status::Internal),
        ];
        assert_eq!(pairs.len(), Status::ALL.len());
        for (c, s) in pairs {
            assert_eq!(c, s.code());
        }
    }

    #[test]
    fn messages_are_static_c_strings() {
        for s in Status::ALL {
            // SAFETY: the exports return pointers to static NUL-terminated strings.
            let m = unsafe { CStr::from_ptr(quiesce_status_message(s.code())) };
            assert_eq!(m.to_str().unwrap(), s.message());
            // SAFETY: as above.
            let n = unsafe { CStr::from_ptr(quiesce_status_name(s.code())) };
            assert_eq!(n.to_str().unwrap(), s.name());
        }
        // SAFETY: as above.
        let u = unsafe { CStr::from_ptr(quiesce_status_message(9999)) };
        assert_eq!(u.to_str().unwrap(), "unknown status");
        // SAFETY: as above.
        let v = unsafe { CStr::from_ptr(quiesce_version()) };
        assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    }
}
