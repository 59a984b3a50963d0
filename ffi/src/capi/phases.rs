//! Where a session's time went: the duration of each phase ([`crate::engine::phases`]), the
//! CLI's JSON `phases` (there in µs, here in ns). Its own struct and call, so that
//! `quiesce_report_info` does not grow again.

use quiesce_core::Status;

use super::guard;
use super::session::write_out;
use super::storage::{quiesce_session, Inner};
use crate::engine::phases::Phases;

/// How long each phase of the session took so far, in nanoseconds. A phase that did not run
/// (yet) is 0; one that ran is at least 1. The phases do not overlap; their sum is at most the
/// time from `quiesce_session_init()` to the return of `quiesce_thaw()`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct quiesce_phases_info {
    /// `sizeof(quiesce_phases_info)`: set it before the call.
    pub size: usize,
    /// Planning inside `quiesce_session_init()` (or `quiesce_run()`): the mount table, the
    /// selection, the descriptors, the order. 0 if the planning failed.
    pub plan_ns: u64,
    /// Arming in `quiesce_freeze()`: the CAP_SYS_ADMIN check, the session machine, forking
    /// the guardian and the freezers, the session record.
    pub arm_ns: u64,
    /// The hooks' calls: `freeze` in `quiesce_freeze()` before arming, `thaw` or
    /// `freeze-failed` after the last `FITHAW` (0 if no hook is configured).
    pub hooks_ns: u64,
    /// The pre-sync (0 if it did not run: `QUIESCE_FLAG_NO_PRESYNC`, or left out because
    /// nothing was dirty).
    pub presync_ns: u64,
    /// From the first `FIFREEZE` until everything was frozen (or the freeze was given up).
    pub freeze_ns: u64,
    /// From everything frozen (the return of `quiesce_freeze()`) to the thaw: the caller's
    /// snapshot (the callback of `quiesce_run()`).
    pub wait_ns: u64,
    /// The thaw of every target, in reverse order.
    pub thaw_ns: u64,
    /// Finishing: the helper processes released, the session record removed.
    pub finish_ns: u64,
}

impl quiesce_phases_info {
    fn of(p: Phases) -> Self {
        quiesce_phases_info {
            size: core::mem::size_of::<Self>(),
            plan_ns: p.plan_ns,
            arm_ns: p.arm_ns,
            hooks_ns: p.hooks_ns,
            presync_ns: p.presync_ns,
            freeze_ns: p.freeze_ns,
            wait_ns: p.wait_ns,
            thaw_ns: p.thaw_ns,
            finish_ns: p.finish_ns,
        }
    }
}

/// How long each phase of the session took so far (final once `quiesce_thaw()` returned or
/// a step failed): the CLI's JSON `phases`. Allocates nothing. Returns `QUIESCE_USAGE` if
/// `session` holds no session or `out->size` is smaller than this version of
/// `quiesce_phases_info`; on success `out->size` is set to the size written.
///
/// # Safety
/// `session` must point to session storage used by no other thread during the call; `out`
/// to a writable `quiesce_phases_info` whose `size` is set.
#[no_mangle]
pub unsafe extern "C" fn quiesce_phases(
    session: *const quiesce_session,
    out: *mut quiesce_phases_info,
) -> u32 {
    guard(Status::Internal.code(), || {
        // SAFETY: forwarded from the caller; only read.
        let Ok(inner) = (unsafe { Inner::get(session.cast_mut()) }) else {
            return Status::Usage.code();
        };
        let info = quiesce_phases_info::of(inner.life.phases());
        // SAFETY: forwarded from the caller; the struct starts with its size.
        unsafe { write_out(out, info) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capi::storage::QUIESCE_SESSION_SIZE;

    #[test]
    fn size_first_out_struct() {
        let mut storage: Box<quiesce_session> = Box::new(
            // SAFETY: quiesce_session is an array of u64: all zero bytes are a valid value.
            unsafe { core::mem::zeroed() },
        );
        let s: *mut quiesce_session = &mut *storage;
        let size = core::mem::size_of::<quiesce_phases_info>();
        assert_eq!(size, 72, "size_t and 8 u64");
        let mut out = quiesce_phases_info {
            size,
            arm_ns: 99,
            ..Default::default()
        };
        // No session in the storage yet.
        // SAFETY: writable out struct; the storage is read only.
        assert_eq!(unsafe { quiesce_phases(s, &mut out) }, Status::Usage.code());
        // SAFETY: QUIESCE_SESSION_SIZE bytes of aligned storage that hold no session.
        unsafe { Inner::init(s, QUIESCE_SESSION_SIZE) }.expect("init");
        // Too small: refused, nothing written.
        out.size = size - 1;
        // SAFETY: as above.
        assert_eq!(unsafe { quiesce_phases(s, &mut out) }, Status::Usage.code());
        assert_eq!((out.size, out.arm_ns), (size - 1, 99));
        // NULL: refused.
        // SAFETY: a NULL out pointer is checked.
        let null = unsafe { quiesce_phases(s, core::ptr::null_mut()) };
        assert_eq!(null, Status::Usage.code());
        // Larger (a newer caller): this version is written, its size set back.
        out.size = size + 8;
        // SAFETY: as above.
        assert_eq!(unsafe { quiesce_phases(s, &mut out) }, 0);
        assert_eq!(
            out,
            quiesce_phases_info {
                size,
                ..Default::default()
            },
            "nothing ran yet"
        );
        // SAFETY: the storage holds the session set up above.
        unsafe { Inner::destroy(s) };
    }
}
