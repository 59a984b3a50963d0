//! Reading the plan and the report: the whole session, each target, each skipped mount.
//! Strings point into the session storage and stay valid until `quiesce_session_cleanup()`.

use core::ffi::c_char;

use quiesce_core::session::{End, Outcome};
use quiesce_core::{Consistency, Status};

use super::codes::{consistency_code, outcome_code};
use super::guard;
use super::hooks::{quiesce_hook_call_info, HookState, NO_HOOKS_REASON};
use super::session::{write_out, write_out_versioned};
use super::storage::{quiesce_session, Inner};
use crate::engine::hooks::{level, SessionHooks};
use crate::engine::session::{Lifecycle, Stage};

/// The whole session.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct quiesce_report_info {
    /// `sizeof(quiesce_report_info)`: set it before the call.
    pub size: usize,
    /// The session's status so far (final once thawed): `QUIESCE_OK` or a failure.
    pub status: u32,
    /// `QUIESCE_CONSISTENCY_*`: how far the snapshot can be trusted.
    /// `QUIESCE_CONSISTENCY_APPLICATION` when hooks are configured, every `freeze` call
    /// succeeded (at least one ran) and the session is file-system-consistent.
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
    // The first version ended here (`size` 64): a caller built against it gets the fields
    // above only.
    /// Why the snapshot is file-system-consistent and not application-consistent: no hooks
    /// were configured, or which hook failed before the freeze (with its exit status). NULL
    /// unless `consistency` is `QUIESCE_CONSISTENCY_FILESYSTEM`. Static or in the session
    /// (valid until `quiesce_session_cleanup()`); never free it.
    pub consistency_reason: *const c_char,
    /// How many hook calls were made so far (`freeze`, `thaw` and `freeze-failed` ones).
    pub hook_calls: u32,
    /// How many of them failed (a non-zero exit status, a signal, the timeout, or the hook
    /// could not be started).
    pub hook_failures: u32,
}

/// The size of the first version of [`quiesce_report_info`] (up to `presync_ns`).
pub(crate) const REPORT_INFO_SIZE_V1: usize =
    core::mem::offset_of!(quiesce_report_info, consistency_reason);

const _: () = assert!(REPORT_INFO_SIZE_V1 == 64);

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

/// A target's record (outcome, errno, freeze and thaw ns): from the session machine, or
/// (after a panic poisoned the session) from the table shared with the helpers.
pub(crate) fn record(life: &Lifecycle, poisoned: bool, i: usize) -> (Outcome, i32, u64, u64) {
    life.record(i, poisoned)
}

/// The session's report so far (final once `quiesce_thaw()` returned or a step failed).
/// Returns `QUIESCE_USAGE` if `session` holds no session or `out->size` is too small. A
/// caller built against the first version of `quiesce_report_info` (`size` 64, up to
/// `presync_ns`) gets those fields, and `size` 64 back.
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
        let s = inner.life.session();
        let base = match s {
            Some(s) if !inner.poisoned => s.consistency(),
            _ => Consistency::None,
        };
        let (consistency, reason) = match inner.hooks.as_deref() {
            Some(h) => {
                let (level, reason) = level(base, h.view().quiesced());
                (level, h.reason_ptr(reason))
            }
            None => {
                let (level, reason) = level(base, None);
                (
                    level,
                    reason.map_or(core::ptr::null(), |_| NO_HOOKS_REASON.as_ptr()),
                )
            }
        };
        let (hook_calls, hook_failures) = inner.hooks.as_deref().map_or((0, 0), HookState::calls);
        let status = if inner.poisoned || inner.failure.status != Status::Ok {
            inner.failure.status
        } else {
            inner.life.status()
        };
        let not_covered = (0..inner.targets.len())
            .filter(|&i| record(&inner.life, inner.poisoned, i).0 == Outcome::NotCovered)
            .count();
        let info = quiesce_report_info {
            size: core::mem::size_of::<quiesce_report_info>(),
            status: status.code(),
            consistency: consistency_code(consistency),
            acknowledged: u32::from(s.is_some_and(|s| s.end() == End::Acknowledged)),
            ended: u32::from(inner.life.stage() == Stage::Ended),
            timeout_ms: u32::try_from(inner.life.options().timeout.as_millis()).unwrap_or(u32::MAX),
            target_count: inner.targets.len() as u32,
            skip_count: inner.skips.len() as u32,
            skips_dropped: inner.skips_dropped as u32,
            not_covered: not_covered as u32,
            window_ns: s.and_then(|s| s.window_ns()).unwrap_or(0),
            presync_ns: inner.life.presync_ns().unwrap_or(0),
            consistency_reason: reason,
            hook_calls,
            hook_failures,
        };
        // SAFETY: forwarded from the caller; the struct starts with its size, and the first
        // version is a prefix of it.
        unsafe { write_out_versioned(out, info, REPORT_INFO_SIZE_V1) }
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
        let (outcome, errno, freeze_ns, thaw_ns) = record(&inner.life, inner.poisoned, index);
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

/// Hook call `index` (0 to `quiesce_report_info.hook_calls - 1`, in the order they were
/// made): which hook, which phase, how it ended (exit status or signal, the timeout, a cancel),
/// how long it ran and the first bytes of its output, the CLI's JSON `hooks[]`. Returns
/// `QUIESCE_USAGE` if there is no such call (no hooks configured, or not that many calls so
/// far), `session` holds no session, or `out->size` is too small.
///
/// # Safety
/// As for `quiesce_report()`, with a writable `quiesce_hook_call_info`.
#[no_mangle]
pub unsafe extern "C" fn quiesce_hook_call(
    session: *const quiesce_session,
    index: usize,
    out: *mut quiesce_hook_call_info,
) -> u32 {
    guard(Status::Internal.code(), || {
        // SAFETY: forwarded from the caller (its strings are made in the session's hooks).
        let Ok(inner) = (unsafe { Inner::get(session.cast_mut()) }) else {
            return Status::Usage.code();
        };
        let Some(info) = inner.hooks.as_deref_mut().and_then(|h| h.call(index)) else {
            return Status::Usage.code();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capi::storage::QUIESCE_SESSION_SIZE;
    use crate::capi::QUIESCE_CONSISTENCY_NONE;

    /// The first version of `quiesce_report_info`, as a caller built against it declares it.
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct ReportInfoV1 {
        size: usize,
        fields: [u32; 9],
        window_ns: u64,
        presync_ns: u64,
    }

    #[repr(C)]
    struct Guarded {
        v1: ReportInfoV1,
        after: [u64; 4],
    }

    #[test]
    fn report_info_sizes_old_and_new_callers() {
        assert_eq!(core::mem::size_of::<ReportInfoV1>(), REPORT_INFO_SIZE_V1);
        let mut storage: Box<quiesce_session> = Box::new(
            // SAFETY: quiesce_session is an array of u64: all zero bytes are a valid value.
            unsafe { core::mem::zeroed() },
        );
        let s: *mut quiesce_session = &mut *storage;
        // SAFETY: QUIESCE_SESSION_SIZE bytes of aligned storage that hold no session.
        unsafe { Inner::init(s, QUIESCE_SESSION_SIZE) }.expect("init");

        // A caller of the first version gets 64 bytes, and nothing after them is written.
        let mut old = Guarded {
            v1: ReportInfoV1 {
                size: REPORT_INFO_SIZE_V1,
                fields: [99; 9],
                window_ns: 99,
                presync_ns: 99,
            },
            after: [0xDEAD; 4],
        };
        // SAFETY: a writable struct that starts with its size; the report reads the storage.
        let code = unsafe {
            quiesce_report(
                s,
                core::ptr::addr_of_mut!(old.v1).cast::<quiesce_report_info>(),
            )
        };
        assert_eq!(code, 0);
        assert_eq!(old.v1.size, REPORT_INFO_SIZE_V1);
        assert_eq!(old.v1.fields[1], QUIESCE_CONSISTENCY_NONE);
        assert_eq!(old.v1.window_ns, 0);
        assert_eq!(old.after, [0xDEAD; 4], "wrote past the caller's struct");

        // Smaller than the first version: refused.
        let mut tiny = old.v1;
        tiny.size = REPORT_INFO_SIZE_V1 - 1;
        // SAFETY: as above.
        let code = unsafe {
            quiesce_report(
                s,
                core::ptr::addr_of_mut!(tiny).cast::<quiesce_report_info>(),
            )
        };
        assert_eq!(code, Status::Usage.code());

        // This version: everything, with no hooks.
        let mut new = quiesce_report_info {
            size: core::mem::size_of::<quiesce_report_info>(),
            status: 99,
            consistency: 99,
            acknowledged: 99,
            ended: 99,
            timeout_ms: 99,
            target_count: 99,
            skip_count: 99,
            skips_dropped: 99,
            not_covered: 99,
            window_ns: 99,
            presync_ns: 99,
            consistency_reason: c"x".as_ptr(),
            hook_calls: 99,
            hook_failures: 99,
        };
        // SAFETY: as above.
        assert_eq!(unsafe { quiesce_report(s, &mut new) }, 0);
        assert_eq!(new.size, core::mem::size_of::<quiesce_report_info>());
        assert!(
            new.consistency_reason.is_null(),
            "not consistent: no reason"
        );
        assert_eq!((new.hook_calls, new.hook_failures), (0, 0));
        // SAFETY: the storage holds the session set up above.
        unsafe { Inner::destroy(s) };
    }
}
