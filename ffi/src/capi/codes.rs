//! Status codes, outcome and consistency codes, and the version: the exports that need no
//! session. Strings returned are static and NUL-terminated, never to be freed. All functions
//! here are thread-safe.

use core::ffi::c_char;

use quiesce_core::session::Outcome;
use quiesce_core::{Consistency, Status};

use super::{c_str, guard};

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
/// Status: selection by disk, and a filesystem spans disks inside and outside the selected
/// disks; nothing was frozen (`QUIESCE_FLAG_ALLOW_PARTIAL_GROUP` freezes the rest).
pub const QUIESCE_PARTIAL_GROUP: u32 = 8;
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
/// Status: cancelled by `quiesce_cancel()` while freezing, pre-syncing or running a hook
/// before the freeze; everything was thawed, not consistent.
pub const QUIESCE_CANCELLED: u32 = 21;
/// Status: internal error (a bug in quiesce, or a panic caught at the ABI).
pub const QUIESCE_INTERNAL: u32 = 70;

/// Consistency: not consistent; treat the copy as crash-consistent at best.
pub const QUIESCE_CONSISTENCY_NONE: u32 = 0;
/// Consistency: every target was frozen for the whole window and the snapshot acknowledged.
pub const QUIESCE_CONSISTENCY_FILESYSTEM: u32 = 1;
/// Consistency: file-system-consistent, and the application hooks succeeded too.
pub const QUIESCE_CONSISTENCY_APPLICATION: u32 = 2;

/// Target outcome: not reached (an earlier failure, or the deadline came first).
pub const QUIESCE_OUTCOME_NOT_ATTEMPTED: u32 = 0;
/// Target outcome: frozen, not yet thawed.
pub const QUIESCE_OUTCOME_FROZEN: u32 = 1;
/// Target outcome: its FIFREEZE failed (errno says why); never frozen by us.
pub const QUIESCE_OUTCOME_FREEZE_FAILED: u32 = 2;
/// Target outcome: frozen and thawed again: by the session, at its end or at its deadline
/// (in the library, the guardian process is the deadline timer).
pub const QUIESCE_OUTCOME_THAWED: u32 = 3;
/// Target outcome: someone else thawed it during the window (snapshot suspect).
pub const QUIESCE_OUTCOME_THAWED_BY_OTHER: u32 = 4;
/// Target outcome: its FITHAW failed: it may still be frozen.
pub const QUIESCE_OUTCOME_THAW_FAILED: u32 = 5;
/// Target outcome: its FIFREEZE had not returned at the deadline; thawed as soon as it does.
pub const QUIESCE_OUTCOME_IN_FLIGHT: u32 = 6;
/// Target outcome: thawed by the guardian's rescue: its controller died or missed the deadline
/// by more than the guardian's grace (the CLI's), or quiesce_thaw() of a poisoned session ran
/// it. A late quiesce_thaw() finds QUIESCE_OUTCOME_THAWED instead: the guardian is the
/// library's deadline timer, and its thaw at the deadline is the session's own.
pub const QUIESCE_OUTCOME_THAWED_BY_GUARDIAN: u32 = 7;
/// Target outcome: frozen by another holder and skipped (QUIESCE_FLAG_SKIP_FROZEN): the
/// snapshot does not cover it.
pub const QUIESCE_OUTCOME_NOT_COVERED: u32 = 8;

const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");

/// The C code of an outcome.
pub(crate) const fn outcome_code(o: Outcome) -> u32 {
    match o {
        Outcome::NotAttempted => QUIESCE_OUTCOME_NOT_ATTEMPTED,
        Outcome::Frozen => QUIESCE_OUTCOME_FROZEN,
        Outcome::FreezeFailed => QUIESCE_OUTCOME_FREEZE_FAILED,
        Outcome::Thawed => QUIESCE_OUTCOME_THAWED,
        Outcome::ThawedByOther => QUIESCE_OUTCOME_THAWED_BY_OTHER,
        Outcome::ThawFailed => QUIESCE_OUTCOME_THAW_FAILED,
        Outcome::InFlight => QUIESCE_OUTCOME_IN_FLIGHT,
        Outcome::ThawedByGuardian => QUIESCE_OUTCOME_THAWED_BY_GUARDIAN,
        Outcome::NotCovered => QUIESCE_OUTCOME_NOT_COVERED,
    }
}

const OUTCOMES: [Outcome; 9] = [
    Outcome::NotAttempted,
    Outcome::Frozen,
    Outcome::FreezeFailed,
    Outcome::Thawed,
    Outcome::ThawedByOther,
    Outcome::ThawFailed,
    Outcome::InFlight,
    Outcome::ThawedByGuardian,
    Outcome::NotCovered,
];

/// The C code of a consistency level.
pub(crate) const fn consistency_code(c: Consistency) -> u32 {
    match c {
        Consistency::None => QUIESCE_CONSISTENCY_NONE,
        Consistency::FileSystem => QUIESCE_CONSISTENCY_FILESYSTEM,
        Consistency::Application => QUIESCE_CONSISTENCY_APPLICATION,
    }
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

/// A static, stable name of a target outcome (`"thawed"`, `"freeze-failed"`, ...);
/// `"unknown"` for other numbers. Never NULL, never freed.
#[no_mangle]
pub extern "C" fn quiesce_outcome_name(outcome: u32) -> *const c_char {
    guard(c_str("unknown\0"), || {
        let name = OUTCOMES
            .iter()
            .find(|o| outcome_code(**o) == outcome)
            .map_or("unknown\0", |o| o.name_with_nul());
        c_str(name)
    })
}

/// A static, stable name of a consistency level (`"filesystem-consistent"`, ...);
/// `"unknown"` for other numbers. Never NULL, never freed.
#[no_mangle]
pub extern "C" fn quiesce_consistency_name(consistency: u32) -> *const c_char {
    guard(c_str("unknown\0"), || {
        c_str(match consistency {
            QUIESCE_CONSISTENCY_NONE => "not-consistent\0",
            QUIESCE_CONSISTENCY_FILESYSTEM => "filesystem-consistent\0",
            QUIESCE_CONSISTENCY_APPLICATION => "application-consistent\0",
            _ => "unknown\0",
        })
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
            (QUIESCE_PARTIAL_GROUP, Status::PartialGroup),
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
            (QUIESCE_CANCELLED, Status::Cancelled),
            (QUIESCE_INTERNAL, Status::Internal),
        ];
        assert_eq!(pairs.len(), Status::ALL.len());
        for (c, s) in pairs {
            assert_eq!(c, s.code());
        }
    }

    #[test]
    fn outcome_and_consistency_names() {
        for o in OUTCOMES {
            // SAFETY: the export returns a static NUL-terminated string.
            let n = unsafe { CStr::from_ptr(quiesce_outcome_name(outcome_code(o))) };
            assert_eq!(n.to_str().unwrap(), o.name());
        }
        // SAFETY: as above.
        let u = unsafe { CStr::from_ptr(quiesce_outcome_name(99)) };
        assert_eq!(u.to_str().unwrap(), "unknown");
        for c in [
            Consistency::None,
            Consistency::FileSystem,
            Consistency::Application,
        ] {
            // SAFETY: as above.
            let n = unsafe { CStr::from_ptr(quiesce_consistency_name(consistency_code(c))) };
            assert_eq!(n.to_str().unwrap(), c.name());
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
