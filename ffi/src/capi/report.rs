//! Reading the plan and the report: the whole session, each target, each skipped mount.
//! Strings point into the session storage and stay valid until `quiesce_session_cleanup()`.

use core::ffi::c_char;

use quiesce_core::linux::table::state;
use quiesce_core::session::{End, Outcome};
use quiesce_core::{Consistency, Status};

use super::codes::{consistency_code, outcome_code};
use super::guard;
use super::session::write_out;
use super::storage::{quiesce_session, Inner, Phase};

/// The whole session.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct quiesce_report_info {
    /// `sizeof(quiesce_report_info)`: set it before the call.
    pub size: usize,
    /// The session's status so far (final once thawed): `QUIESCE_OK` or a failure.
    pub status: u32,
    /// `QUIESCE_CONSISTENCY_*`: how far the snapshot can be trusted.
    pub consistency: u32,
    /// 1 if the snapshot was acknowledged while everything was frozen, else 0.
    pub acknowledged: u32,
    /// 1 once the session is over (thawed, or failed), else 0.
    pub ended: u32,
    /// The deadline in milliseconds.
    pub timeout_ms: u32,
    /// How many filesystems are planned (`quiesce_target()`).
    pub target_count: u32,
    /// How many skipped mounts are listed (`quiesce_skip()`).
    pub skip_count: u32,
    /// Skipped mounts beyond `QUIESCE_MAX_SKIPS`, counted only.
    pub skips_dropped: u32,
    /// How many targets the snapshot does not cover (frozen by another holder, skipped).
    pub not_covered: u32,
    /// Nanoseconds from the first `FIFREEZE` to the last `FITHAW` returned (0 if none).
    pub window_ns: u64,
    /// Nanoseconds the pre-sync took (0 if it did not run: `QUIESCE_FLAG_NO_PRESYNC`, or the session never froze).
    pub presync_ns: u64,
}

/// One filesystem of the plan, in freeze order (thaw order is the reverse).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct quiesce_target_info {
    /// `sizeof(quiesce_target_info)`: set it before the call.
    pub size: usize,
    /// The mount point it is frozen through.
    pub path: *const c_char,
    /// Its filesystem type (`"ext4"`, `"xfs"`, ...).
    pub fs_type: *const c_char,
    /// Its mount source (e.g. `"/dev/loop0"`).
    pub source: *const c_char,
    /// The superblock's device number: the identity of the filesystem.
    pub dev_major: u32,
    /// The minor number.
    pub dev_minor: u32,
    /// The index into `quiesce_config.mounts` that named it, or -1.
    pub mount_index: i32,
    /// `QUIESCE_OUTCOME_*`.
    pub outcome: u32,
    /// The errno of its failed call, or 0.
    pub os_error: i32,
    /// How long its `FIFREEZE` took, in ns.
    pub freeze_ns: u64,
    /// How long its `FITHAW` took, in ns.
    pub thaw_ns: u64,
}

/// A mount left out of the plan, and why.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct quiesce_skip_info {
    /// `sizeof(quiesce_skip_info)`: set it before the call.
    pub size: usize,
    /// Where it is mounted.
    pub path: *const c_char,
    /// Its filesystem type.
    pub fs_type: *const c_char,
    /// Why it is not frozen.
    pub reason: *const c_char,
    /// Its superblock's device number.
    pub dev_major: u32,
    /// The minor number.
    pub dev_minor: u32,
    /// The index into `quiesce_config.mounts` that named it, or -1.
    pub mount_index: i32,
}

/// A target's record: from the session machine, or (after a panic poisoned the session)
/// from the table shared with the helpers.
fn record(inner: &Inner, i: usize) -> (Outcome, i32, u64, u64) {
    let slot = inner.helpers.as_ref().and_then(|h| h.table().slot(i));
    if inner.poisoned {
        if let Some(slot) = slot {
            let outcome = match slot.state() {
                state::FROZEN | state::THAWING => Outcome::Frozen,
                state::FREEZE_FAILED | state::FAILED_LATE => Outcome::FreezeFailed,
                state::IN_FLIGHT | state::ABANDONED => Outcome::InFlight,
                state::THAWED => Outcome::Thawed,
                state::GUARDIAN_THAWING | state::THAWED_BY_GUARDIAN | state::THAWED_LATE => {
                    Outcome::ThawedByGuardian
                }
                state::THAW_FAILED => Outcome::ThawFailed,
                state::THAWED_BY_OTHER => Outcome::ThawedByOther,
                _ => Outcome::NotAttempted,
            };
            let (fs, fe) = slot.freeze_times();
            let (ts, te) = slot.thaw_times();
            return (
                outcome,
                slot.errno(),
                fe.saturating_sub(fs),
                te.saturating_sub(ts),
            );
        }
    }
    match inner.session.as_ref().and_then(|s| s.target(i)) {
        Some(r) => (r.outcome, r.errno, r.freeze_ns, r.thaw_ns),
        None => (Outcome::NotAttempted, 0, 0, 0),
    }
}

/// The session's report so far (final once `quiesce_thaw()` returned or a step failed).
/// Returns `QUIESCE_USAGE` if `session` holds no session or `out->size` is too small.
///
/// # Safety
/// `session` must point to session storage used by no other thread during the call; `out`
/// to a writable `quiesce_report_info` whose `size` is set.
#[no_mangle]
pub unsafe extern "C" fn quiesce_report(
    session: *const quiesce_session,
    out: *mut quiesce_report_info,
) -> u32 {
    guard(Status::Internal.code(), || {
        // SAFETY: forwarded from the caller; only read.
        let Ok(inner) = (unsafe { Inner::get(session.cast_mut()) }) else {
            return Status::Usage.code();
        };
        let s = inner.session.as_ref();
        let consistency = match s {
            Some(s) if !inner.poisoned => s.consistency(),
            _ => Consistency::None,
        };
        let status = if inner.poisoned || inner.failure.status != Status::Ok {
            inner.failure.status
        } else {
            s.map_or(Status::Ok, |s| s.status())
        };
        let not_covered = (0..inner.targets.len())
            .filter(|&i| record(inner, i).0 == Outcome::NotCovered)
            .count();
        let info = quiesce_report_info {
            size: core::mem::size_of::<quiesce_report_info>(),
            status: status.code(),
            consistency: consistency_code(consistency),
            acknowledged: u32::from(s.is_some_and(|s| s.end() == End::Acknowledged)),
            ended: u32::from(inner.phase == Phase::Ended),
            timeout_ms: inner.timeout_ms,
            target_count: inner.targets.len() as u32,
            skip_count: inner.skips.len() as u32,
            skips_dropped: inner.skips_dropped as u32,
            not_covered: not_covered as u32,
            window_ns: s.and_then(|s| s.window_ns()).unwrap_or(0),
            presync_ns: inner.presync_ns,
        };
        // SAFETY: forwarded from the caller.
        unsafe { write_out(out, info) }
    })
}

/// Target `index` (0 = frozen first). Returns `QUIESCE_USAGE` if there is no such target,
/// `session` holds no session, or `out->size` is too small.
///
/// # Safety
/// As for `quiesce_report()`, with a writable `quiesce_target_info`.
#[no_mangle]
pub unsafe extern "C" fn quiesce_target(
    session: *const quiesce_session,
    index: usize,
    out: *mut quiesce_target_info,
) -> u32 {
    guard(Status::Internal.code(), || {
        // SAFETY: forwarded from the caller; only read.
        let Ok(inner) = (unsafe { Inner::get(session.cast_mut()) }) else {
            return Status::Usage.code();
        };
        let Some(t) = inner.targets.get(index) else {
            return Status::Usage.code();
        };
        let (outcome, errno, freeze_ns, thaw_ns) = record(inner, index);
        let info = quiesce_target_info {
            size: core::mem::size_of::<quiesce_target_info>(),
            path: inner.names.c_ptr(t.path),
            fs_type: inner.names.c_ptr(t.fs_type),
            source: inner.names.c_ptr(t.source),
            dev_major: t.dev.major,
            dev_minor: t.dev.minor,
            mount_index: t.mount_index,
            outcome: outcome_code(outcome),
            os_error: errno,
            freeze_ns,
            thaw_ns,
        };
        // SAFETY: forwarded from the caller.
        unsafe { write_out(out, info) }
    })
}

/// Skipped mount `index`. Returns `QUIESCE_USAGE` if there is no such skip, `session` holds
/// no session, or `out->size` is too small.
///
/// # Safety
/// As for `quiesce_report()`, with a writable `quiesce_skip_info`.
#[no_mangle]
pub unsafe extern "C" fn quiesce_skip(
    session: *const quiesce_session,
    index: usize,
    out: *mut quiesce_skip_info,
) -> u32 {
    guard(Status::Internal.code(), || {
        // SAFETY: forwarded from the caller; only read.
        let Ok(inner) = (unsafe { Inner::get(session.cast_mut()) }) else {
            return Status::Usage.code();
        };
        let Some(s) = inner.skips.get(index) else {
            return Status::Usage.code();
        };
        let info = quiesce_skip_info {
            size: core::mem::size_of::<quiesce_skip_info>(),
            path: inner.names.c_ptr(s.path),
            fs_type: inner.names.c_ptr(s.fs_type),
            reason: inner.names.c_ptr(s.reason),
            dev_major: s.dev.major,
            dev_minor: s.dev.minor,
            mount_index: s.mount_index,
        };
        // SAFETY: forwarded from the caller.
        unsafe { write_out(out, info) }
    })
}
