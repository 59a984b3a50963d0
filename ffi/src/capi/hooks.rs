//! Application hooks through the C ABI: the hooks, checks, order and consistency rules of the
//! CLI's `--hook-dir`, `--pre-script`, `--post-script`, `--hook-timeout` and
//! `--require-app-consistent` ([`Hooks`]), around one session in caller storage.
//!
//! The one part of the C ABI that allocates: the verified hooks live in a `Box` that the
//! session storage points to (freed exactly once, by `quiesce_session_cleanup()`), and
//! loading, running and reporting them uses the Rust heap. A session without hooks never gets
//! here and stays allocation-free.
//!
//! The engine's lifecycle makes the calls ([`crate::engine::session::Lifecycle`]):
//! `quiesce_freeze()` runs every `freeze` call before its first `FIFREEZE`; `quiesce_thaw()`
//! runs `thaw` or `freeze-failed` after its last `FITHAW`. A failed freeze makes them at once
//! (after everything it froze was thawed); a session that is cleaned up (or poisoned) without
//! its thaw makes them in `quiesce_session_cleanup()`. Each hook that got `freeze` gets
//! exactly one of `thaw` and `freeze-failed`. What stays here is C: the paths from the
//! config's pointers, and the reason as a C string.

use core::ffi::c_char;
use std::ffi::{CStr, CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

use quiesce_core::Status;

use super::config::{quiesce_config, Flags};
use super::storage::Failure;
use crate::engine::hooks::{Quiesced, Reason, SessionHooks};
use crate::runtime::{
    HookConfig, HookEnd, HookPhase, HookRun, HookSource, Hooks, DEFAULT_HOOK_TIMEOUT,
};

/// One hook call's result (`quiesce_hook_call()`): the CLI's JSON `hooks[]`, field by field
/// (`os_error` is its `errno`, a macro in C). The strings point into the session storage's
/// hooks and stay valid until `quiesce_session_cleanup()`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct quiesce_hook_call_info {
    /// `sizeof(quiesce_hook_call_info)`: set it before the call.
    pub size: usize,
    /// The file name (a directory's hook) or the path (the pre and post scripts).
    pub name: *const c_char,
    /// The verified path that was run.
    pub path: *const c_char,
    /// Where it came from: `"pre-script"`, `"post-script"`, `"hook-dir"`.
    pub source: *const c_char,
    /// The argument it got: `"freeze"`, `"thaw"`, `"freeze-failed"`.
    pub phase: *const c_char,
    /// How it ended: `"exited"`, `"signaled"`, `"timed-out"`, `"cancelled"`, `"not-started"`.
    pub end: *const c_char,
    /// How it ended, for people: `"exit status 0"`, `"killed by signal 9"`, `"timed out after
    /// 5 s; ..."`.
    pub result: *const c_char,
    /// 1 if it exited with status 0, else 0.
    pub succeeded: u32,
    /// 1 if its timeout passed (its process group was killed), else 0.
    pub timed_out: u32,
    /// Its exit status, or -1 if it did not exit (a signal, the timeout, a cancel, not
    /// started).
    pub exit_status: i32,
    /// The signal that ended it, or 0.
    pub signal: i32,
    /// Why it could not be started (an errno), or 0.
    pub os_error: i32,
    /// 1 if it exited but a process it left behind still held its output open (quiesce
    /// stopped reading and left that process alone), else 0.
    pub output_held_open: u32,
    /// How long it ran, in microseconds.
    pub duration_us: u64,
    /// The first bytes of its output (stdout and stderr interleaved, lossy UTF-8, at most
    /// 64 KiB), NUL-terminated; `output_len` bytes long (it may hold a NUL byte itself).
    pub output: *const c_char,
    /// Bytes at `output`, without the terminating NUL.
    pub output_len: usize,
    /// Bytes of output beyond the first 64 KiB, read and dropped.
    pub output_dropped: usize,
}

/// The strings of one hook call, as C strings (made once per call, on first reading).
#[derive(Debug)]
struct CallText {
    name: CString,
    path: CString,
    result: CString,
    /// The output and a NUL.
    output: Vec<u8>,
}

fn source_c(s: HookSource) -> &'static CStr {
    match s {
        HookSource::PreScript => c"pre-script",
        HookSource::PostScript => c"post-script",
        HookSource::Directory => c"hook-dir",
    }
}

fn phase_c(p: HookPhase) -> &'static CStr {
    match p {
        HookPhase::Freeze => c"freeze",
        HookPhase::Thaw => c"thaw",
        HookPhase::FreezeFailed => c"freeze-failed",
    }
}

fn end_c(e: HookEnd) -> &'static CStr {
    match e {
        HookEnd::Exited(_) => c"exited",
        HookEnd::Signaled(_) => c"signaled",
        HookEnd::TimedOut => c"timed-out",
        HookEnd::Cancelled => c"cancelled",
        HookEnd::NotStarted(_) => c"not-started",
    }
}

/// Call `run`'s record, its strings in `text`.
fn call_info(run: &HookRun, text: &CallText) -> quiesce_hook_call_info {
    let (exit_status, signal, os_error) = match run.end {
        HookEnd::Exited(c) => (c, 0, 0),
        HookEnd::Signaled(s) => (-1, s, 0),
        HookEnd::NotStarted(e) => (-1, 0, e),
        HookEnd::TimedOut | HookEnd::Cancelled => (-1, 0, 0),
    };
    quiesce_hook_call_info {
        size: core::mem::size_of::<quiesce_hook_call_info>(),
        name: text.name.as_ptr(),
        path: text.path.as_ptr(),
        source: source_c(run.source).as_ptr(),
        phase: phase_c(run.phase).as_ptr(),
        end: end_c(run.end).as_ptr(),
        result: text.result.as_ptr(),
        succeeded: u32::from(run.succeeded()),
        timed_out: u32::from(run.end == HookEnd::TimedOut),
        exit_status,
        signal,
        os_error,
        output_held_open: u32::from(run.output_held_open),
        duration_us: u64::try_from(run.duration.as_micros()).unwrap_or(u64::MAX),
        output: text.output.as_ptr().cast(),
        output_len: text.output.len().saturating_sub(1),
        output_dropped: run.output_dropped,
    }
}

/// The reason given for file-system (not application) consistency when no hook is
/// configured: the engine's [`NO_HOOKS_REASON`](crate::engine::hooks::NO_HOOKS_REASON) as a
/// C string.
pub(crate) const NO_HOOKS_REASON: &CStr = c"no application hooks were configured";

/// The hooks of one session (the engine drives them) and the C string of their reason.
#[derive(Debug)]
pub struct HookState {
    hooks: Hooks,
    /// Why the application is not quiesced, for `quiesce_report_info.consistency_reason`.
    reason: Option<CString>,
    /// The calls' strings so far, for `quiesce_hook_call()` (a call's never change).
    texts: Vec<CallText>,
}

/// Why the hooks of a configuration could not be loaded: the failure and its message.
pub(crate) type LoadError = (Failure, String);

fn usage(message: String) -> LoadError {
    (
        Failure {
            status: Status::Usage,
            ..Failure::NONE
        },
        message,
    )
}

/// The path in a `const char *` field: `None` for NULL.
///
/// # Safety
/// `p` must be NULL or a NUL-terminated string.
unsafe fn path(p: *const c_char, field: &str) -> Result<Option<PathBuf>, LoadError> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: non-NULL, so a NUL-terminated string by the caller's contract.
    let bytes = unsafe { CStr::from_ptr(p) }.to_bytes();
    if bytes.is_empty() {
        return Err(usage(format!(
            "quiesce_config.{field} is an empty string: give a path, or NULL for none"
        )));
    }
    Ok(Some(PathBuf::from(OsStr::from_bytes(bytes))))
}

/// C string of `s` (a NUL inside, impossible for the messages made here, is replaced).
fn c_string(s: &str) -> CString {
    CString::new(s.replace('\0', "?")).unwrap_or_default()
}

impl HookState {
    /// Loads and verifies the hooks of `cfg` (nothing runs): `Ok(None)` when none is
    /// configured and application consistency is not required. The failures are the CLI's:
    /// `QUIESCE_HOOK_REFUSED` naming the file and the fix, `QUIESCE_NOT_APP_CONSISTENT` when
    /// consistency is required but no hook runs before the freeze, `QUIESCE_USAGE`.
    ///
    /// # Safety
    /// The hook fields of `cfg` must each be NULL or a NUL-terminated string.
    pub(crate) unsafe fn load(
        cfg: &quiesce_config,
        flags: Flags,
    ) -> Result<Option<Box<HookState>>, LoadError> {
        if !cfg.wants_hooks(flags) {
            return Ok(None);
        }
        // SAFETY: forwarded from the caller.
        let (dir, pre, post) = unsafe {
            (
                path(cfg.hook_dir, "hook_dir")?,
                path(cfg.pre_script, "pre_script")?,
                path(cfg.post_script, "post_script")?,
            )
        };
        let config = HookConfig {
            dir,
            pre,
            post,
            timeout: match cfg.hook_timeout_ms {
                0 => DEFAULT_HOOK_TIMEOUT,
                ms => Duration::from_millis(u64::from(ms)),
            },
            require_app_consistent: flags.contains(Flags::REQUIRE_APP_CONSISTENT),
        };
        let hooks = Hooks::load(&config).map_err(|f| {
            (
                Failure {
                    status: f.status,
                    errno: f.errno,
                    ..Failure::NONE
                },
                f.message,
            )
        })?;
        Ok(Some(Box::new(HookState {
            hooks,
            reason: None,
            texts: Vec::new(),
        })))
    }

    /// The hooks, as the engine's lifecycle drives them.
    pub(crate) fn hooks(&mut self) -> &mut Hooks {
        &mut self.hooks
    }

    /// The hooks, read-only.
    pub(crate) fn view(&self) -> &Hooks {
        &self.hooks
    }

    /// Keeps the hooks' reason (why the application is not quiesced) as a C string, for
    /// `quiesce_report_info.consistency_reason`: after the `freeze` calls.
    pub(crate) fn keep_reason(&mut self) {
        if let Some(Quiesced::No(Some(why))) = self.hooks.quiesced() {
            self.reason = Some(c_string(why));
        }
    }

    /// The reason of `level`, as a pointer into this state or a static string (NULL if none).
    pub(crate) fn reason_ptr(&self, reason: Option<Reason<'_>>) -> *const c_char {
        match reason {
            None => core::ptr::null(),
            Some(Reason::NoHooks) => NO_HOOKS_REASON.as_ptr(),
            Some(Reason::Hooks(_)) => self
                .reason
                .as_deref()
                .map_or(core::ptr::null(), CStr::as_ptr),
        }
    }

    /// Call `i`'s result (in the order they were made), if there is one. Its strings are made
    /// on first reading and kept until the hooks are freed.
    pub(crate) fn call(&mut self, i: usize) -> Option<quiesce_hook_call_info> {
        let runs = self.hooks.runs();
        let timeout = self.hooks.timeout();
        while self.texts.len() <= i && self.texts.len() < runs.len() {
            let run = &runs[self.texts.len()];
            let mut output = run.output.as_bytes().to_vec();
            output.push(0);
            self.texts.push(CallText {
                name: c_string(&run.name),
                path: CString::new(run.path.as_os_str().as_bytes().to_vec()).unwrap_or_default(),
                result: c_string(&run.describe(timeout)),
                output,
            });
        }
        Some(call_info(runs.get(i)?, self.texts.get(i)?))
    }

    /// How many calls were made so far, and how many of them failed.
    pub(crate) fn calls(&self) -> (u32, u32) {
        let runs = self.hooks.runs();
        let failed = runs.iter().filter(|r| !r.succeeded()).count();
        (
            u32::try_from(runs.len()).unwrap_or(u32::MAX),
            u32::try_from(failed).unwrap_or(u32::MAX),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_no_hooks_reason_is_the_engines() {
        assert_eq!(
            NO_HOOKS_REASON.to_str().ok(),
            Some(crate::engine::hooks::NO_HOOKS_REASON)
        );
    }

    #[test]
    fn nothing_configured_loads_nothing() {
        let cfg = quiesce_config::new();
        // SAFETY: every hook field is NULL.
        let loaded = unsafe { HookState::load(&cfg, Flags::empty()) };
        assert!(matches!(loaded, Ok(None)));
    }

    #[test]
    fn required_without_a_hook_is_not_app_consistent() {
        let cfg = quiesce_config::new();
        // SAFETY: every hook field is NULL.
        let loaded = unsafe { HookState::load(&cfg, Flags::REQUIRE_APP_CONSISTENT) };
        let Err((f, m)) = loaded else {
            panic!("loaded: {loaded:?}")
        };
        assert_eq!(f.status, Status::NotAppConsistent);
        assert!(m.contains("no hook runs before the freeze"), "{m}");
    }

    #[test]
    fn an_empty_path_is_usage() {
        let mut cfg = quiesce_config::new();
        cfg.pre_script = c"".as_ptr();
        // SAFETY: a NUL-terminated string.
        let loaded = unsafe { HookState::load(&cfg, Flags::empty()) };
        let Err((f, m)) = loaded else {
            panic!("loaded: {loaded:?}")
        };
        assert_eq!(f.status, Status::Usage);
        assert!(
            m.contains("quiesce_config.pre_script is an empty string"),
            "{m}"
        );
    }

    #[test]
    fn a_world_writable_hook_is_refused() {
        // /tmp is writable by everyone: a hook there is refused before anything runs.
        let mut cfg = quiesce_config::new();
        cfg.hook_dir = c"/tmp".as_ptr();
        // SAFETY: a NUL-terminated string.
        let loaded = unsafe { HookState::load(&cfg, Flags::empty()) };
        let Err((f, m)) = loaded else {
            panic!("loaded: {loaded:?}")
        };
        assert_eq!(f.status, Status::HookRefused);
        assert!(m.starts_with("hook refused: "), "{m}");
        assert!(m.contains("/tmp"), "{m}");
    }
}
