//! The session exports: init (plan), freeze, thaw (the acknowledgement), the one-shot run with
//! a callback, cleanup, and the last error. No allocation from init to cleanup, unless hooks
//! are configured ([`super::hooks`]).

use core::ffi::{c_char, c_int, c_void};
use core::fmt;
use core::time::Duration;
use std::os::fd::{AsFd, BorrowedFd};
use std::panic::{catch_unwind, AssertUnwindSafe};

use quiesce_core::linux::guardian;
use quiesce_core::linux::sys::now_ns;
use quiesce_core::linux::{conclude, run_until_frozen, Signal};
use quiesce_core::session::{IfFrozen, Outcome, Session, SessionError};
use quiesce_core::{Consistency, Status};

use super::buffers::Lossy;
use super::config::{
    self, quiesce_config, ConfigError, Flags, QUIESCE_MAX_HOOK_TIMEOUT_MS, QUIESCE_MAX_TIMEOUT_MS,
};
use super::hooks::HookState;
use super::storage::{
    quiesce_session, BadStorage, Failure, Inner, Phase, QUIESCE_SESSION_ALIGN, QUIESCE_SESSION_SIZE,
};
use super::testing::{self, Point};
use super::{guard, plan};
use crate::runtime::helpers::{pool_size, Helpers};
use crate::runtime::{froze_and_thawed, presync_limit, ErrnoName, MAX_TARGETS};

#[allow(non_camel_case_types)]
/// The callback of `quiesce_run()`: called once everything is frozen; take the snapshot and
/// return 0 if it was taken (the acknowledgement), anything else if it failed. It must not
/// write to the frozen filesystems (it would block until the deadline).
pub type quiesce_frozen_fn =
    Option<unsafe extern "C" fn(session: *mut quiesce_session, user_data: *mut c_void) -> c_int>;

/// The last failure of a session, beside its status.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct quiesce_error_info {
    /// `sizeof(quiesce_error_info)`: set it before the call.
    pub size: usize,
    /// The status of the last call that failed (`QUIESCE_OK` if none did).
    pub status: u32,
    /// The raw errno behind it, or 0.
    pub os_error: i32,
    /// The index into `quiesce_config.mounts` of the mount point concerned, or -1.
    pub mount_index: i32,
    /// The index (in freeze order, as for `quiesce_target()`) of the filesystem concerned, or
    /// -1.
    pub target_index: i32,
    /// What went wrong, naming the input and the fix: points into the session storage, valid
    /// until the next call on the session. Never NULL.
    pub message: *const c_char,
}

/// Writes `value` to `out` if the caller's struct (whose first field is its size) is large
/// enough; `QUIESCE_USAGE` otherwise.
///
/// # Safety
/// `out` must be NULL or point to a writable struct that starts with a `size_t` holding its
/// size.
pub(crate) unsafe fn write_out<T>(out: *mut T, value: T) -> u32 {
    if out.is_null() || !out.is_aligned() {
        return Status::Usage.code();
    }
    // SAFETY: non-null and aligned; the caller vouches that it starts with a size_t.
    let size = unsafe { out.cast::<usize>().read() };
    if size < core::mem::size_of::<T>() {
        return Status::Usage.code();
    }
    // SAFETY: at least size_of::<T>() writable bytes, by the size the caller set.
    unsafe { out.write(value) };
    Status::Ok.code()
}

/// [`write_out`] for a struct that has grown: a caller built against the first version
/// (`v1_size` bytes, a prefix of `T`) gets that prefix, with `size` set to `v1_size`;
/// `QUIESCE_USAGE` if it is smaller than that.
///
/// # Safety
/// As for [`write_out`]; `T` must start with a `usize` (its size) and `v1_size` must be at
/// most `size_of::<T>()`.
pub(crate) unsafe fn write_out_versioned<T>(out: *mut T, value: T, v1_size: usize) -> u32 {
    if out.is_null() || !out.is_aligned() {
        return Status::Usage.code();
    }
    // SAFETY: non-null and aligned; the caller vouches that it starts with a size_t.
    let size = unsafe { out.cast::<usize>().read() };
    if size >= core::mem::size_of::<T>() {
        // SAFETY: forwarded: the whole struct fits.
        return unsafe { write_out(out, value) };
    }
    if size < v1_size || v1_size > core::mem::size_of::<T>() {
        return Status::Usage.code();
    }
    let value = core::mem::ManuallyDrop::new(value);
    // SAFETY: the caller's struct has at least `v1_size` writable bytes (its size says so);
    // the first `v1_size` bytes of `value` (a plain-data struct) are copied, then its size
    // field is set to what was written.
    unsafe {
        core::ptr::copy_nonoverlapping(
            core::ptr::addr_of!(value).cast::<u8>(),
            out.cast::<u8>(),
            v1_size,
        );
        out.cast::<usize>().write(v1_size);
    }
    Status::Ok.code()
}

/// Bytes of storage a session needs: `QUIESCE_SESSION_SIZE` of the library actually loaded
/// (bindings compare it with the size they were built with).
#[no_mangle]
pub extern "C" fn quiesce_session_size() -> usize {
    QUIESCE_SESSION_SIZE
}

/// The alignment session storage needs: `QUIESCE_SESSION_ALIGN` of the library loaded.
#[no_mangle]
pub extern "C" fn quiesce_session_align() -> usize {
    QUIESCE_SESSION_ALIGN
}

/// Fills `*cfg` with the defaults (its `size`, no flags, a 10 s deadline, no mounts, no
/// hooks).
/// Returns `QUIESCE_USAGE` if `cfg` is NULL.
///
/// # Safety
/// `cfg` must be NULL or point to a writable `quiesce_config`.
#[no_mangle]
pub unsafe extern "C" fn quiesce_config_init(cfg: *mut quiesce_config) -> u32 {
    guard(Status::Internal.code(), || {
        if cfg.is_null() {
            return Status::Usage.code();
        }
        // SAFETY: the caller vouches for a writable quiesce_config.
        unsafe { cfg.write(quiesce_config::new()) };
        Status::Ok.code()
    })
}

/// Runs one session call: finds the session, refuses a poisoned one unless `on_poisoned` is
/// given, catches panics (poisoning the session).
///
/// # Safety
/// `s` must be NULL or point to session storage that no other thread uses during the call.
unsafe fn session_call(
    s: *mut quiesce_session,
    what: &'static str,
    on_poisoned: Option<fn(&mut Inner) -> u32>,
    f: impl FnOnce(&mut Inner) -> u32,
) -> u32 {
    // Storage that is NULL, misaligned or holds no session is a usage error.
    // SAFETY: forwarded from the caller.
    let inner: *mut Inner = match unsafe { Inner::get(s) } {
        Ok(i) => i,
        Err(_) => return Status::Usage.code(),
    };
    let result = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `inner` is the initialised session, used by this thread only.
        let inner = unsafe { &mut *inner };
        if inner.poisoned {
            return match on_poisoned {
                Some(g) => g(inner),
                None => inner.fail(
                    Failure {
                        status: Status::Internal,
                        ..Failure::NONE
                    },
                    format_args!("{what}: the session is poisoned by an earlier panic; it accepts only quiesce_thaw() and quiesce_session_cleanup()"),
                ),
            };
        }
        f(inner)
    }));
    match result {
        Ok(code) => code,
        Err(_) => {
            // SAFETY: as above; the panic left the storage valid (every field is always in a
            // droppable state), if not meaningful.
            let inner = unsafe { &mut *inner };
            inner.poisoned = true;
            inner.fail(
                Failure {
                    status: Status::Internal,
                    ..Failure::NONE
                },
                format_args!("{what}: a panic was caught (a bug in quiesce: please report it); the session is poisoned: call quiesce_thaw(), which still thaws, then quiesce_session_cleanup()"),
            )
        }
    }
}

/// Sets up a session in `storage` (`storage_size` bytes, at least `QUIESCE_SESSION_SIZE`,
/// aligned to `QUIESCE_SESSION_ALIGN`) and plans it: resolves `cfg->mounts` (each must be a
/// mount point), reads the mount table, orders the targets (a filesystem before the one its
/// storage lives on) and opens every descriptor. Nothing is frozen.
///
/// With hooks configured (`hook_dir`, `pre_script`, `post_script`), it then verifies every
/// hook, and runs none: `QUIESCE_HOOK_REFUSED` if one fails the checks (the message names the
/// file and the fix), `QUIESCE_NOT_APP_CONSISTENT` if `QUIESCE_FLAG_REQUIRE_APP_CONSISTENT`
/// is set but no hook would run before the freeze. This allocates (and nothing else does).
///
/// Returns `QUIESCE_OK`, or a failure (`QUIESCE_USAGE`, `QUIESCE_BAD_TARGET`,
/// `QUIESCE_NOT_FREEZABLE`, `QUIESCE_PLAN_REFUSED`, `QUIESCE_HOOK_REFUSED`, ...) explained
/// by `quiesce_error()`.
/// Unless it returned `QUIESCE_USAGE` because `storage` itself was NULL, misaligned or too
/// small, the storage now holds a session: read the plan or the error, then call
/// `quiesce_session_cleanup()`. `cfg` is read during this call only.
///
/// Storage that still holds a live session (initialised here and not yet cleaned up, whether
/// it failed, froze or thawed) is refused with `QUIESCE_USAGE` and left as it was, so that its
/// descriptors and helper processes are not leaked: `quiesce_error()` on it says so. Fresh
/// storage (zeroed, or uninitialised from malloc or the stack) and storage after
/// `quiesce_session_cleanup()` are accepted: a live session is recognised by a magic word
/// together with the storage's own address, both cleared by cleanup.
///
/// # Safety
/// `storage` must point to `storage_size` writable bytes; `cfg`
/// must point to a `quiesce_config` of at least `cfg->size` bytes whose `mounts` holds
/// `mount_count` NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn quiesce_session_init(
    storage: *mut quiesce_session,
    storage_size: usize,
    cfg: *const quiesce_config,
) -> u32 {
    // SAFETY: forwarded from the caller.
    let initialised = guard(Err(BadStorage::Null), || unsafe {
        Inner::init(storage, storage_size).map(|_| ())
    });
    match initialised {
        Ok(()) => {}
        Err(BadStorage::Live) => {
            // SAFETY: the storage holds a live session (checked by init); its last error is
            // replaced, nothing else of it is touched.
            return unsafe {
                session_call(storage, "quiesce_session_init", None, |inner| {
                    inner.fail(
                        Failure {
                            status: Status::Usage,
                            ..Failure::NONE
                        },
                        format_args!("quiesce_session_init: this storage holds a live session (set up before and not cleaned up); it is left as it was: call quiesce_session_cleanup() on it first, or pass other storage"),
                    )
                })
            };
        }
        // NULL, misaligned or too small: nothing was written to it.
        Err(_) => return Status::Usage.code(),
    }
    // SAFETY: initialised just above; the caller's contract covers `cfg`.
    unsafe {
        session_call(storage, "quiesce_session_init", None, |inner| {
            testing::point(Point::Init);
            // SAFETY: the caller vouches for `cfg`.
            let (cfg, flags) = match config::read(cfg) {
                Ok(c) => c,
                Err(e) => return config_failure(inner, e),
            };
            inner.flags = flags;
            inner.timeout_ms = cfg.timeout_ms;
            // SAFETY: the caller vouches for `mounts`.
            let code = plan::plan(inner, &cfg, flags);
            if code != Status::Ok.code() {
                inner.phase = Phase::Ended;
                return code;
            }
            // Every hook is verified before anything runs (none runs if one is refused).
            // SAFETY: the caller vouches for the hook paths.
            match HookState::load(&cfg, flags) {
                Ok(hooks) => inner.hooks = hooks,
                Err((failure, message)) => {
                    inner.phase = Phase::Ended;
                    return inner.fail(failure, format_args!("{message}"));
                }
            }
            code
        })
    }
}

fn config_failure(inner: &mut Inner, e: ConfigError) -> u32 {
    let f = Failure {
        status: Status::Usage,
        ..Failure::NONE
    };
    match e {
        ConfigError::TooSmall(n) => inner.fail(f, format_args!("quiesce_config is NULL or its size ({n}) is too small: call quiesce_config_init() first")),
        ConfigError::UnknownFields(n) => inner.fail(f, format_args!("quiesce_config of {n} bytes sets fields this library ({}) does not know: link the library your header came from", env!("CARGO_PKG_VERSION"))),
        ConfigError::UnknownFlags(b) => inner.fail(f, format_args!("quiesce_config.flags {b:#x} has bits this library does not know: use QUIESCE_FLAG_* only")),
        ConfigError::Timeout(t) => inner.fail(f, format_args!("quiesce_config.timeout_ms {t} is out of range: give 1 to {QUIESCE_MAX_TIMEOUT_MS} ms")),
        ConfigError::Mounts(n) => inner.fail(f, format_args!("quiesce_config.mounts is NULL or mount_count {n} is more than {MAX_TARGETS}: pass up to {MAX_TARGETS} mount points")),
        ConfigError::HookTimeout(t) => inner.fail(f, format_args!("quiesce_config.hook_timeout_ms {t} is out of range: give 1 to {QUIESCE_MAX_HOOK_TIMEOUT_MS} ms, or 0 for the default")),
        ConfigError::Reserved(r) => inner.fail(f, format_args!("quiesce_config.reserved is {r}, not 0: call quiesce_config_init() first")),
    }
}

/// Freezes every planned filesystem, in order, through helper processes (so that a
/// `FIFREEZE` stuck in the kernel cannot hold this call past the deadline), with a guardian
/// process that thaws everything if this process dies or the deadline passes. The deadline
/// (`timeout_ms`) starts at the first `FIFREEZE`.
///
/// With hooks, first runs every `freeze` call (the pre script, then the directory's hooks in
/// name order), each with its timeout, before the first `FIFREEZE`. A hook that fails makes
/// the snapshot file-system-consistent only (the report says why), or with
/// `QUIESCE_FLAG_REQUIRE_APP_CONSISTENT` stops here: nothing is frozen, the hooks that got
/// `freeze` get `freeze-failed`, and it returns `QUIESCE_NOT_APP_CONSISTENT`.
///
/// Then, unless `QUIESCE_FLAG_NO_PRESYNC`, every target is `syncfs`ed in parallel by the
/// helpers (the pre-sync: dirty data is flushed while writers still run); this waits at most
/// `timeout_ms`, and no more than `QUIESCE_PRESYNC_LIMIT_MS`, before the freezing starts.
/// Filesystems that do not depend on each other are then frozen at once, unless
/// `QUIESCE_FLAG_SEQUENTIAL`.
///
/// Returns `QUIESCE_OK` once everything is frozen: take the snapshot now, then call
/// `quiesce_thaw()`. On failure (`QUIESCE_FREEZE_FAILED`, `QUIESCE_FROZEN_BY_OTHER`,
/// `QUIESCE_TIMEOUT`, `QUIESCE_PERMISSION`, ...) everything frozen so far is thawed again
/// before it returns (and then the hooks that got `freeze` get `freeze-failed`), and
/// `quiesce_error()` names the filesystem.
///
/// # Safety
/// `session` must point to a session set up by `quiesce_session_init()`, used by no other
/// thread during the call.
#[no_mangle]
pub unsafe extern "C" fn quiesce_freeze(session: *mut quiesce_session) -> u32 {
    // SAFETY: forwarded from the caller.
    unsafe { session_call(session, "quiesce_freeze", None, freeze) }
}

fn freeze(inner: &mut Inner) -> u32 {
    let usage = Failure {
        status: Status::Usage,
        ..Failure::NONE
    };
    match inner.phase {
        Phase::Planned => {}
        Phase::Frozen => {
            return inner.fail(usage, format_args!("quiesce_freeze: already frozen; call quiesce_thaw()"))
        }
        Phase::Ended => {
            return inner.fail(usage, format_args!("quiesce_freeze: this session is over (it failed or was thawed); set up a new one with quiesce_session_init()"))
        }
    }
    if !quiesce_core::linux::sys::has_cap_sys_admin() {
        return inner.fail(
            Failure {
                status: Status::Permission,
                errno: quiesce_core::errno::EPERM,
                ..Failure::NONE
            },
            format_args!(
                "freezing needs CAP_SYS_ADMIN, which this process does not have: run as root"
            ),
        );
    }
    let n = inner.targets.len();
    let mut order = [0u16; MAX_TARGETS];
    for (i, o) in order.iter_mut().enumerate().take(n) {
        *o = i as u16;
    }
    let timeout_ns = u64::from(inner.timeout_ms) * 1_000_000;
    let if_frozen = if inner.flags.contains(Flags::SKIP_FROZEN) {
        IfFrozen::Skip
    } else {
        IfFrozen::Fail
    };
    let parallel = !inner.flags.contains(Flags::SEQUENTIAL);
    let presync = !inner.flags.contains(Flags::NO_PRESYNC);
    let waves: &[bool] = if parallel {
        &inner.wave_starts[..n]
    } else {
        &[]
    };
    let freezers = pool_size(waves, presync, n);
    let session = match Session::<MAX_TARGETS>::new(&order[..n], timeout_ns) {
        Ok(s) => s.with_if_frozen(if_frozen).with_wave_starts(waves),
        Err(SessionError::NoTargets) => {
            return inner.fail(
                Failure {
                    status: Status::NotFreezable,
                    ..Failure::NONE
                },
                format_args!("quiesce_freeze: nothing to freeze: the plan has no filesystem"),
            )
        }
        Err(e) => {
            return inner.fail(
                Failure {
                    status: Status::Internal,
                    ..Failure::NONE
                },
                format_args!("cannot start a session: {e:?}"),
            )
        }
    };
    // The hooks' `freeze` calls: before the pre-sync and the first FIFREEZE.
    if let Some(hooks) = inner.hooks.as_mut() {
        if let Err(message) = hooks.before_freeze() {
            inner.phase = Phase::Ended;
            return inner.fail(
                Failure {
                    status: Status::NotAppConsistent,
                    ..Failure::NONE
                },
                format_args!("{message}"),
            );
        }
    }
    let presync_limit_ns =
        u64::try_from(presync_limit(Duration::from_millis(u64::from(inner.timeout_ms))).as_nanos())
            .unwrap_or(u64::MAX);
    let result = {
        let Inner {
            targets,
            session: slot,
            helpers: helpers_slot,
            presync_ns,
            ..
        } = &mut *inner;
        let fds: heapless::Vec<BorrowedFd<'_>, MAX_TARGETS> =
            targets.iter().map(|t| t.fd.as_fd()).collect();
        // The guardian thaws at the deadline itself: between quiesce_freeze() and
        // quiesce_thaw() nobody else in this process watches the clock.
        match Helpers::spawn(&fds, None, Duration::ZERO, freezers) {
            Ok(h) => {
                let helpers = helpers_slot.insert(h);
                let session = slot.insert(session);
                match helpers.client(&fds) {
                    Some(mut ops) => {
                        if presync {
                            // In the freezers, in parallel, bounded: a failed or unfinished
                            // syncfs is harmless (FIFREEZE flushes too).
                            let start = now_ns();
                            ops.presync(start.saturating_add(presync_limit_ns));
                            *presync_ns = now_ns().saturating_sub(start).max(1);
                        }
                        run_until_frozen(session, &mut ops).map_err(Ok)
                    }
                    None => Err(Ok(Status::Internal)),
                }
            }
            Err(e) => Err(Err(e.raw_os_error().unwrap_or(0))),
        }
    };
    let result = match result {
        Err(Err(errno)) => {
            if inner.hooks.is_some() {
                // The application was quiesced for nothing: resume it; the session is over.
                inner.phase = Phase::Ended;
                after_hooks(inner, false, Status::Internal);
            }
            return inner.fail(
                Failure {
                    status: Status::Internal,
                    errno,
                    ..Failure::NONE
                },
                format_args!(
                    "cannot start the guardian and the freezer processes: {}",
                    ErrnoName(errno)
                ),
            );
        }
        Err(Ok(status)) => Err(status),
        Ok(()) => Ok(()),
    };
    match result {
        Ok(()) => {
            inner.phase = Phase::Frozen;
            testing::point(Point::Frozen);
            Status::Ok.code()
        }
        Err(status) => {
            if let Some(h) = inner.helpers.as_mut() {
                h.release();
            }
            inner.phase = Phase::Ended;
            // Everything frozen was thawed (or is, by the freezer, as soon as a stuck
            // FIFREEZE returns): now the hooks get `freeze-failed`.
            let status = after_hooks(inner, false, status);
            explain(inner, status)
        }
    }
}

/// Acknowledges the snapshot (`acknowledged` non-zero: it was taken) or reports it failed
/// (0), and thaws everything in reverse order. Returns the final status: `QUIESCE_OK` when
/// everything stayed frozen until the acknowledgement and thawed cleanly (the snapshot is
/// file-system-consistent); `QUIESCE_TIMEOUT` if the deadline passed first (everything was
/// thawed at the deadline already); `QUIESCE_SNAPSHOT_FAILED` for `acknowledged == 0`;
/// `QUIESCE_SUSPECT`, `QUIESCE_THAW_FAILED`, ... as explained by `quiesce_error()`.
///
/// With hooks, after the last `FITHAW` the hooks that got `freeze` get `thaw` (everything
/// was frozen and thawed in time, also when `acknowledged` is 0) or `freeze-failed` (the
/// deadline passed, a thaw failed), in reverse order, then the post script. The status is
/// then `QUIESCE_OK` with the report's consistency `QUIESCE_CONSISTENCY_APPLICATION` when
/// every `freeze` call succeeded; a failed call after the thaw makes it
/// `QUIESCE_THAW_HOOK_FAILED` (unless the session failed anyway): the application may not
/// have resumed. If the deadline passes before this call, the guardian thaws at the deadline
/// but the hooks only get their `freeze-failed` here (or in `quiesce_session_cleanup()`).
///
/// On a poisoned session it still thaws everything still frozen (then the hooks get
/// `freeze-failed`), and returns `QUIESCE_INTERNAL` (or `QUIESCE_THAW_FAILED`). Calling it
/// again returns the same status.
///
/// # Safety
/// As for `quiesce_freeze()`.
#[no_mangle]
pub unsafe extern "C" fn quiesce_thaw(session: *mut quiesce_session, acknowledged: c_int) -> u32 {
    // SAFETY: forwarded from the caller.
    unsafe {
        session_call(session, "quiesce_thaw", Some(poisoned_thaw), |inner| {
            thaw(inner, acknowledged != 0)
        })
    }
}

fn thaw(inner: &mut Inner, acknowledged: bool) -> u32 {
    match inner.phase {
        Phase::Frozen => {}
        Phase::Planned => {
            return inner.fail(
                Failure {
                    status: Status::Usage,
                    ..Failure::NONE
                },
                format_args!("quiesce_thaw: nothing is frozen; call quiesce_freeze() first"),
            )
        }
        Phase::Ended => return inner.failure.status.code(),
    }
    testing::point(Point::Thaw);
    let signal = if acknowledged {
        Signal::Acknowledged
    } else {
        Signal::SnapshotFailed
    };
    let status = {
        let Inner {
            targets,
            session,
            helpers,
            ..
        } = &mut *inner;
        let fds: heapless::Vec<BorrowedFd<'_>, MAX_TARGETS> =
            targets.iter().map(|t| t.fd.as_fd()).collect();
        match (session.as_mut(), helpers.as_mut()) {
            (Some(session), Some(helpers)) => {
                let status = match helpers.client(&fds) {
                    Some(mut ops) => conclude(session, &mut ops, signal),
                    None => Status::Internal,
                };
                helpers.release();
                status
            }
            _ => Status::Internal,
        }
    };
    inner.phase = Phase::Ended;
    let thawed_ok = thawed_in_time(inner, status);
    let status = after_hooks(inner, thawed_ok, status);
    explain(inner, status)
}

/// Whether every target was frozen and thawed again in time: the CLI's rule for giving the
/// hooks `thaw` rather than `freeze-failed`.
fn thawed_in_time(inner: &Inner, status: Status) -> bool {
    inner.session.as_ref().is_some_and(|s| {
        froze_and_thawed(
            status,
            s.end(),
            s.window_ns(),
            (0..s.len()).filter_map(|i| s.target(i).map(|r| r.outcome)),
        )
    })
}

/// The hooks' calls after the thaw (once; none without hooks, or if no `freeze` call was
/// made), and `status` with their outcome: a failed call makes it at least
/// `QUIESCE_THAW_HOOK_FAILED`.
fn after_hooks(inner: &mut Inner, thawed_ok: bool, status: Status) -> Status {
    match inner.hooks.as_mut() {
        Some(hooks) => {
            hooks.after_thaw(thawed_ok);
            if hooks.after_failure().is_some() {
                status.worst(Status::ThawHookFailed)
            } else {
                status
            }
        }
        None => status,
    }
}

/// Thaws a poisoned session: everything the shared table says is still ours, confirmed
/// frozen ones first, in reverse order (the guardian's rescue, run here).
fn poisoned_thaw(inner: &mut Inner) -> u32 {
    let failed = {
        let Inner {
            targets, helpers, ..
        } = &mut *inner;
        let fds: heapless::Vec<BorrowedFd<'_>, MAX_TARGETS> =
            targets.iter().map(|t| t.fd.as_fd()).collect();
        match helpers.as_mut() {
            Some(h) => {
                // We are the controller and no longer thaw anything ourselves: take over.
                let failed = guardian::rescue(h.table(), &fds, true);
                h.release();
                failed
            }
            None => 0,
        }
    };
    inner.phase = Phase::Ended;
    // Not to be trusted: the hooks that got `freeze` get `freeze-failed`.
    after_hooks(inner, false, Status::Internal);
    let status = if failed > 0 {
        Status::ThawFailed
    } else {
        Status::Internal
    };
    inner.fail(
        Failure {
            status,
            ..Failure::NONE
        },
        format_args!(
            "the session was poisoned by a panic; everything still frozen was thawed{}; the snapshot is not to be trusted",
            if failed > 0 { ", but some thaws failed (see quiesce_target())" } else { "" }
        ),
    )
}

/// Records the final status of a session and a message naming the filesystem concerned.
fn explain(inner: &mut Inner, status: Status) -> u32 {
    if status == Status::Ok {
        inner.failure = Failure::NONE;
        inner.message.clear();
        return status.code();
    }
    let concerned = inner.session.as_ref().and_then(|s| {
        (0..s.len()).find_map(|i| {
            let r = s.target(i)?;
            let hit = match status {
                Status::Timeout => {
                    matches!(r.outcome, Outcome::InFlight | Outcome::ThawedByGuardian)
                }
                Status::Suspect => r.outcome == Outcome::ThawedByOther,
                Status::ThawFailed => r.outcome == Outcome::ThawFailed,
                // A hook, not a filesystem (a skipped one keeps its EBUSY).
                Status::ThawHookFailed => false,
                _ => r.errno != 0,
            };
            hit.then_some((i, r.errno))
        })
    });
    let (index, errno) = concerned.map_or((-1, 0), |(i, e)| (i as i32, e));
    let f = Failure {
        status,
        errno,
        mount_index: usize::try_from(index)
            .ok()
            .and_then(|i| inner.targets.get(i))
            .map_or(-1, |t| t.mount_index),
        target_index: index,
    };
    let path = usize::try_from(index)
        .ok()
        .and_then(|i| inner.targets.get(i))
        .map(|t| Lossy(inner.names.get(t.path)));
    // Only with hooks, where allocating is allowed.
    let after = inner.hooks.as_ref().and_then(|h| h.after_failure());
    let level = match (&inner.hooks, inner.session.as_ref()) {
        (Some(h), Some(s)) => h.level(s.consistency()).0,
        (None, Some(s)) => s.consistency(),
        _ => Consistency::None,
    };
    let msg = Explain {
        status,
        path,
        errno,
        timeout_ms: inner.timeout_ms,
        skip_frozen: inner.flags.contains(Flags::SKIP_FROZEN),
        after: after.as_deref(),
        level,
    };
    inner.failure = f;
    inner.message.set(format_args!("{msg}"));
    status.code()
}

/// The message for a session's final status.
struct Explain<'a> {
    status: Status,
    path: Option<Lossy<'a>>,
    errno: i32,
    timeout_ms: u32,
    skip_frozen: bool,
    /// The first failed hook call after the thaw, described.
    after: Option<&'a str>,
    /// The snapshot's level, with the hooks.
    level: Consistency,
}

impl fmt::Display for Explain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = self;
        if e.status == Status::ThawHookFailed {
            let level = match e.level {
                Consistency::Application => "application-consistent",
                Consistency::FileSystem => "file-system-consistent",
                Consistency::None => "not consistent",
            };
            return write!(
                f,
                "the snapshot is {level}, but {}",
                e.after.unwrap_or("a hook failed after the thaw")
            );
        }
        match (e.status, &e.path) {
            (Status::FrozenByOther, Some(p)) if e.skip_frozen => write!(f, "'{p}' and every other target are already frozen by other holders (EBUSY): nothing was frozen by us, so the snapshot would cover nothing; their freezes were left alone"),
            (Status::FrozenByOther, Some(p)) => write!(f, "'{p}' is already frozen by another holder (EBUSY); its freeze was left alone and everything else thawed: find that holder, or thaw it with `fsfreeze -u {p}` if it is gone, or set QUIESCE_FLAG_SKIP_FROZEN"),
            (Status::FreezeFailed, Some(p)) => write!(f, "FIFREEZE of '{p}' failed: {}; everything frozen before it was thawed", ErrnoName(e.errno)),
            (Status::Timeout, Some(p)) => write!(f, "the deadline of {} ms passed ('{p}' was frozen past it or its FIFREEZE had not returned); everything was thawed; the snapshot is not consistent", e.timeout_ms),
            (Status::Timeout, None) => write!(f, "the deadline of {} ms passed before the acknowledgement; everything was thawed; the snapshot is not consistent", e.timeout_ms),
            (Status::Suspect, Some(p)) => write!(f, "'{p}' was thawed by someone else during the window: the snapshot is suspect"),
            (Status::ThawFailed, Some(p)) => write!(f, "FITHAW of '{p}' failed: {}; it may still be frozen: run `quiesce thaw {p}`", ErrnoName(e.errno)),
            (Status::SnapshotFailed, _) => f.write_str("the snapshot was reported as failed (not acknowledged); everything was thawed"),
            (s, Some(p)) => write!(f, "{} ('{p}')", s.message()),
            (s, None) => f.write_str(s.message()),
        }?;
        match e.after {
            Some(after) => write!(f, "; {after}"),
            None => Ok(()),
        }
    }
}

/// Ends the session and releases everything it holds (descriptors, helper processes, the
/// hooks). If it is still frozen, it is thawed first, as not acknowledged (then the hooks
/// that got `freeze` get `thaw`, or `freeze-failed` if the deadline passed); a hook that got
/// `freeze` and has not had its second call yet gets `freeze-failed`. Safe to call twice,
/// and on storage whose `quiesce_session_init()` failed; afterwards the storage may be
/// reused or freed.
///
/// # Safety
/// `session` must be NULL or point to session storage used by no other thread during the
/// call.
#[no_mangle]
pub unsafe extern "C" fn quiesce_session_cleanup(session: *mut quiesce_session) {
    // SAFETY: forwarded from the caller.
    unsafe {
        let _ = session_call(
            session,
            "quiesce_session_cleanup",
            Some(poisoned_thaw),
            |inner| match inner.phase {
                Phase::Frozen => thaw(inner, false),
                _ => {
                    after_hooks(inner, false, Status::Ok);
                    Status::Ok.code()
                }
            },
        );
        // A panic while dropping is caught too; the storage is forgotten either way.
        guard((), || Inner::destroy(session));
    }
}

/// The one-shot form: sets up a session in `storage` from `cfg`, freezes, calls
/// `frozen(session, user_data)` while everything is frozen (its return value 0 acknowledges
/// the snapshot), thaws, and returns the final status (or the failure of the step that
/// failed). The deadline holds even if the callback overruns it: the guardian thaws at the
/// deadline and the status is then `QUIESCE_TIMEOUT`. With hooks configured, they run as
/// for `quiesce_freeze()` and `quiesce_thaw()`. Read the report afterwards, then call
/// `quiesce_session_cleanup()`.
///
/// # Safety
/// As for `quiesce_session_init()`; `frozen` must be a valid function pointer.
#[no_mangle]
pub unsafe extern "C" fn quiesce_run(
    storage: *mut quiesce_session,
    storage_size: usize,
    cfg: *const quiesce_config,
    frozen: quiesce_frozen_fn,
    user_data: *mut c_void,
) -> u32 {
    let Some(callback) = frozen else {
        return Status::Usage.code();
    };
    // SAFETY: forwarded from the caller.
    unsafe {
        let code = quiesce_session_init(storage, storage_size, cfg);
        if code != Status::Ok.code() {
            return code;
        }
        let code = quiesce_freeze(storage);
        if code != Status::Ok.code() {
            return code;
        }
        let taken = callback(storage, user_data);
        quiesce_thaw(storage, c_int::from(taken == 0))
    }
}

/// The last failure of `session`: status, raw errno, the mount argument or target concerned,
/// and a message naming the input and the fix. Returns `QUIESCE_USAGE` if `session` holds no
/// session or `out->size` is too small.
///
/// # Safety
/// `session` as for `quiesce_freeze()`; `out` must point to a writable `quiesce_error_info`
/// whose `size` is set.
#[no_mangle]
pub unsafe extern "C" fn quiesce_error(
    session: *const quiesce_session,
    out: *mut quiesce_error_info,
) -> u32 {
    guard(Status::Internal.code(), || {
        // SAFETY: forwarded from the caller; only read.
        let Ok(inner) = (unsafe { Inner::get(session.cast_mut()) }) else {
            return Status::Usage.code();
        };
        let f = inner.failure;
        let info = quiesce_error_info {
            size: core::mem::size_of::<quiesce_error_info>(),
            status: f.status.code(),
            os_error: f.errno,
            mount_index: f.mount_index,
            target_index: f.target_index,
            message: inner.message.c_ptr(),
        };
        // SAFETY: forwarded from the caller.
        unsafe { write_out(out, info) }
    })
}
