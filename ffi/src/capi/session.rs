//! The session exports: init (plan), freeze, thaw (the acknowledgement), the one-shot run with
//! a callback, cleanup, and the last error. No allocation from init to cleanup, unless hooks
//! are configured ([`super::hooks`]).

use core::ffi::{c_char, c_int, c_void};
use core::time::Duration;
use std::os::fd::{AsFd, BorrowedFd};
use std::panic::{catch_unwind, AssertUnwindSafe};

use quiesce_core::linux::sys::now_ns;
use quiesce_core::linux::Signal;
use quiesce_core::session::IfFrozen;
use quiesce_core::{Consistency, Status};

use super::buffers::Names;
use super::config::{
    self, quiesce_config, ConfigError, Flags, QUIESCE_MAX_HOOK_TIMEOUT_MS, QUIESCE_MAX_TIMEOUT_MS,
};
use super::hooks::HookState;
use super::report::record;
use super::storage::{
    quiesce_session, BadStorage, Failure, Inner, Target, QUIESCE_SESSION_ALIGN,
    QUIESCE_SESSION_SIZE,
};
use super::testing::{self, Point};
use super::{guard, plan};
use crate::engine::explain::{concerned, Explain, Line, Targets};
use crate::engine::hooks::{self as engine_hooks, level, NoHooks, SessionHooks};
use crate::engine::phases::since;
use crate::engine::record::RecordTargets;
use crate::engine::session::{Lifecycle, Options, Stage};
use crate::engine::MAX_TARGETS;
use quiesce_core::mountinfo::Dev;

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
    /// until the next call on the session. Never NULL. While `status` is `QUIESCE_OK`: once
    /// the session has ended (`quiesce_thaw()`, `quiesce_run()`), the message of its outcome,
    /// the CLI's for the same outcome ("froze 1 filesystem, snapshot acknowledged, thawed:
    /// ..."); before that, the plan's notes (`note: ...`, e.g. a loop device's backing file
    /// that could not be located, so that its freeze order is not checked), or empty.
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
            inner.life = Lifecycle::new(Options {
                timeout: Duration::from_millis(u64::from(cfg.timeout_ms)),
                if_frozen: if flags.contains(Flags::SKIP_FROZEN) {
                    IfFrozen::Skip
                } else {
                    IfFrozen::Fail
                },
                presync: !flags.contains(Flags::NO_PRESYNC),
                parallel: !flags.contains(Flags::SEQUENTIAL),
                // The guardian thaws at the deadline itself: between quiesce_freeze() and
                // quiesce_thaw() nobody else in this process watches the clock. Its thaw at
                // the deadline is then the session's own (`thawed`), not a rescue
                // (quiesce_core::linux::table::GuardianThaw).
                grace: Duration::ZERO,
            });
            // quiesce_cancel() wakes the waits through an eventfd.
            if let Err(errno) = inner.life.canceller().enable() {
                inner.life.end(Status::Internal);
                return inner.fail(
                    Failure {
                        status: Status::Internal,
                        errno,
                        ..Failure::NONE
                    },
                    format_args!("quiesce_session_init: cannot make the eventfd that quiesce_cancel() uses: {}", crate::engine::ErrnoName(errno)),
                );
            }
            // SAFETY: the caller vouches for `mounts`.
            let start = now_ns();
            let code = plan::plan(inner, &cfg, flags);
            if code != Status::Ok.code() {
                inner.life.end(inner.failure.status);
                return code;
            }
            // The `plan` phase (`quiesce_phases()`): the planning, as the CLI's.
            inner.life.phases_mut().plan_ns = since(start);
            // Every hook is verified before anything runs (none runs if one is refused).
            // SAFETY: the caller vouches for the hook paths.
            match HookState::load(&cfg, flags) {
                Ok(hooks) => inner.hooks = hooks,
                Err((failure, message)) => {
                    inner.life.end(failure.status);
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
        ConfigError::Disks(n) => inner.fail(f, format_args!("quiesce_config.disks or exclude_disks is NULL or its count {n} is more than {}: pass up to {} disks", crate::engine::disks::MAX_DISKS, crate::engine::disks::MAX_DISKS)),
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

/// Cancels the session's running `quiesce_freeze()` (or `quiesce_run()` before its callback):
/// a hook running before the freeze is killed (its process group), the pre-sync and a wave of
/// `FIFREEZE` stop waiting, and the call returns promptly with `QUIESCE_CANCELLED`: nothing
/// frozen, or everything it froze thawed again (a `FIFREEZE` stuck in the kernel, on stalled
/// storage, is abandoned: its freezer thaws that filesystem as soon as the call returns). The
/// hooks that got `freeze` get `freeze-failed`. Called before `quiesce_freeze()`, that call
/// returns `QUIESCE_CANCELLED` at once; while frozen (after `quiesce_freeze()` returned) or
/// later it changes nothing: call `quiesce_thaw()`. A session stays cancelled.
///
/// Safe to call from any thread while another thread is inside a call on the session, and
/// from a signal handler: it is async-signal-safe (an atomic store and one `write(2)` to an
/// eventfd; no lock, no allocation). Returns `QUIESCE_OK`, or `QUIESCE_USAGE` if `session`
/// holds no session.
///
/// # Safety
/// `session` must be NULL or point to session storage that no thread is passing to
/// `quiesce_session_init()` or `quiesce_session_cleanup()` during the call.
#[no_mangle]
pub unsafe extern "C" fn quiesce_cancel(session: *mut quiesce_session) -> u32 {
    // No panic boundary: nothing here can panic, and catch_unwind is not for signal handlers.
    // SAFETY: forwarded from the caller.
    match unsafe { Inner::canceller(session) } {
        Some(c) => {
            // SAFETY: points into the live session's storage (checked), which stays put until
            // cleanup (the caller's contract); the Canceller is only used through atomics.
            unsafe { (*c).cancel() };
            Status::Ok.code()
        }
        None => Status::Usage.code(),
    }
}

/// The session's hooks for the engine (none: `none`, a [`NoHooks`]).
fn hooks_of<'a>(
    hooks: &'a mut Option<Box<HookState>>,
    none: &'a mut NoHooks,
) -> &'a mut dyn SessionHooks {
    match hooks.as_deref_mut() {
        Some(h) => h.hooks(),
        None => none,
    }
}

fn freeze(inner: &mut Inner) -> u32 {
    let usage = Failure {
        status: Status::Usage,
        ..Failure::NONE
    };
    match inner.life.stage() {
        Stage::Planned => {}
        Stage::Armed | Stage::Frozen => {
            return inner.fail(usage, format_args!("quiesce_freeze: already frozen; call quiesce_thaw()"))
        }
        Stage::Ended => {
            return inner.fail(usage, format_args!("quiesce_freeze: this session is over (it failed or was thawed); set up a new one with quiesce_session_init()"))
        }
    }
    // The hooks' `freeze` calls: before the pre-sync and the first FIFREEZE.
    let halted = inner
        .life
        .before_freeze(hooks_of(&mut inner.hooks, &mut NoHooks), &mut || false);
    if let Some(h) = inner.hooks.as_deref_mut() {
        h.keep_reason();
    }
    if let Err(halt) = halted {
        let f = Failure {
            status: halt.status(),
            errno: halt.errno(),
            ..Failure::NONE
        };
        let Inner {
            hooks,
            failure,
            message,
            ..
        } = &mut *inner;
        let view: &dyn SessionHooks = match hooks.as_deref() {
            Some(h) => h.view(),
            None => &NoHooks,
        };
        *failure = f;
        message.set(format_args!("{}", halt.explain(view)));
        return f.status.code();
    }
    let result = {
        let Inner {
            targets,
            wave_starts,
            life,
            names,
            ..
        } = &mut *inner;
        let fds: heapless::Vec<BorrowedFd<'_>, MAX_TARGETS> =
            targets.iter().map(|t| t.fd.as_fd()).collect();
        let record = RecordLines { targets, names };
        match life.arm(&fds, &wave_starts[..], Some(&record)) {
            Ok(()) => {
                life.presync(&fds);
                Ok(life.freeze(&fds, &mut |_| Ok(())))
            }
            Err(e) => Err(e),
        }
    };
    match result {
        Ok(Ok(())) => {
            testing::point(Point::Frozen);
            Status::Ok.code()
        }
        // Everything frozen was thawed (or is, by the freezer, as soon as a stuck FIFREEZE
        // returns): now the hooks get `freeze-failed`.
        Ok(Err(_)) => conclude(inner),
        Err(e) => {
            // The application was quiesced for nothing: resume it; the session is over.
            inner
                .life
                .conclude(hooks_of(&mut inner.hooks, &mut NoHooks));
            inner.fail(
                Failure {
                    status: e.status(),
                    errno: e.errno(),
                    ..Failure::NONE
                },
                format_args!("{e}"),
            )
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
    match inner.life.stage() {
        Stage::Frozen => {}
        Stage::Planned | Stage::Armed => {
            return inner.fail(
                Failure {
                    status: Status::Usage,
                    ..Failure::NONE
                },
                format_args!("quiesce_thaw: nothing is frozen; call quiesce_freeze() first"),
            )
        }
        Stage::Ended => return inner.failure.status.code(),
    }
    testing::point(Point::Thaw);
    let signal = if acknowledged {
        Signal::Acknowledged
    } else {
        Signal::SnapshotFailed
    };
    {
        let Inner { targets, life, .. } = &mut *inner;
        let fds: heapless::Vec<BorrowedFd<'_>, MAX_TARGETS> =
            targets.iter().map(|t| t.fd.as_fd()).collect();
        life.thaw(&fds, signal);
    }
    conclude(inner)
}

/// Ends the session in the engine (helpers released, the hooks' second calls) and records
/// its final status and message.
fn conclude(inner: &mut Inner) -> u32 {
    let status = inner
        .life
        .conclude(hooks_of(&mut inner.hooks, &mut NoHooks));
    explain(inner, status)
}

/// Thaws a poisoned session: everything the shared table says is still ours, confirmed
/// frozen ones first, in reverse order (the guardian's rescue, run here).
fn poisoned_thaw(inner: &mut Inner) -> u32 {
    let failed = {
        let Inner { targets, life, .. } = &mut *inner;
        let fds: heapless::Vec<BorrowedFd<'_>, MAX_TARGETS> =
            targets.iter().map(|t| t.fd.as_fd()).collect();
        // We are the controller and no longer thaw anything ourselves: take over.
        life.rescue(&fds)
    };
    // Not to be trusted: the hooks that got `freeze` get `freeze-failed`.
    engine_hooks::after_thaw(
        hooks_of(&mut inner.hooks, &mut NoHooks),
        false,
        Status::Internal,
    );
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

/// The session's targets as the session record lists them.
struct RecordLines<'a> {
    targets: &'a [Target],
    names: &'a Names,
}

impl RecordTargets for RecordLines<'_> {
    fn count(&self) -> usize {
        self.targets.len()
    }

    fn target(&self, i: usize) -> Option<(Dev, &[u8])> {
        let t = self.targets.get(i)?;
        Some((t.dev, self.names.get(t.path)))
    }
}

/// The session's targets as the engine's message reads them.
pub(crate) struct Lines<'a> {
    pub targets: &'a [Target],
    pub names: &'a Names,
    pub life: &'a Lifecycle,
    pub poisoned: bool,
}

impl Targets for Lines<'_> {
    fn count(&self) -> usize {
        self.targets.len()
    }

    fn line(&self, i: usize) -> Option<Line<'_>> {
        let t = self.targets.get(i)?;
        let (outcome, errno, freeze_ns, _) = record(self.life, self.poisoned, i);
        Some(Line {
            mount_point: self.names.get(t.path),
            fs_type: self.names.get(t.fs_type),
            dev: t.dev,
            outcome,
            errno,
            freeze_ns,
        })
    }
}

/// Records the final status of a session and the engine's message for it, naming the
/// filesystem concerned: the CLI's text for the same outcome, `QUIESCE_OK` included.
fn explain(inner: &mut Inner, status: Status) -> u32 {
    let Inner {
        failure,
        message,
        hooks,
        life,
        targets,
        names,
        poisoned,
        ..
    } = &mut *inner;
    let lines = Lines {
        targets,
        names,
        life,
        poisoned: *poisoned,
    };
    let view: &dyn SessionHooks = match hooks.as_deref() {
        Some(h) => h.view(),
        None => &NoHooks,
    };
    let base = match life.session() {
        Some(s) if !*poisoned => s.consistency(),
        _ => Consistency::None,
    };
    let (consistency, reason) = level(base, view.quiesced());
    let index = concerned(status, &lines);
    *failure = if status == Status::Ok {
        Failure::NONE
    } else {
        Failure {
            status,
            errno: index.and_then(|i| lines.line(i)).map_or(0, |l| l.errno),
            mount_index: index
                .and_then(|i| targets.get(i))
                .map_or(-1, |t| t.mount_index),
            target_index: index.map_or(-1, |i| i as i32),
        }
    };
    let text = Explain {
        status,
        consistency,
        reason,
        hooks: hooks.as_deref().is_some_and(|h| h.view().is_configured()),
        after_failure: view.after_failure(),
        timeout: life.options().timeout,
        targets: &lines,
    };
    message.set(format_args!("{text}"));
    status.code()
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
            |inner| match inner.life.stage() {
                Stage::Frozen => thaw(inner, false),
                _ => {
                    inner
                        .life
                        .conclude(hooks_of(&mut inner.hooks, &mut NoHooks));
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
