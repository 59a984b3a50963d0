//! Application hooks through the C ABI: the hooks, checks, order and consistency rules of the
//! CLI's `--hook-dir`, `--pre-script`, `--post-script`, `--hook-timeout` and
//! `--require-app-consistent` ([`Hooks`]), around one session in caller storage.
//!
//! The one part of the C ABI that allocates: the verified hooks live in a `Box` that the
//! session storage points to (freed exactly once, by `quiesce_session_cleanup()`), and
//! loading, running and reporting them uses the Rust heap. A session without hooks never gets
//! here and stays allocation-free.
//!
//! The calls: `quiesce_freeze()` runs every `freeze` call before its first `FIFREEZE`;
//! `quiesce_thaw()` runs `thaw` or `freeze-failed` after its last `FITHAW`. A failed freeze
//! makes them at once (after everything it froze was thawed); a session that is cleaned up
//! (or poisoned) without its thaw makes them in `quiesce_session_cleanup()`. Each hook that
//! got `freeze` gets exactly one of `thaw` and `freeze-failed`.

use core::ffi::c_char;
use std::ffi::{CStr, CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

use quiesce_core::{Consistency, Status};

use super::config::{quiesce_config, Flags};
use super::storage::Failure;
use crate::runtime::{FreezeVerdict, HookConfig, Hooks, DEFAULT_HOOK_TIMEOUT};

/// The reason given for file-system (not application) consistency when no hook is
/// configured: the CLI's `consistency_reason` in the same case.
pub(crate) const NO_HOOKS_REASON: &CStr = c"no application hooks were configured";

/// The hooks of one session and what they did.
#[derive(Debug)]
pub struct HookState {
    hooks: Hooks,
    /// What the `freeze` calls decided, once they ran.
    verdict: Option<FreezeVerdict>,
    /// `verdict.reason` as a C string, for `quiesce_report_info.consistency_reason`.
    reason: Option<CString>,
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
            verdict: None,
            reason: None,
        })))
    }

    /// Runs the `freeze` calls (once). `Err` with the message when application consistency
    /// is required and a hook failed: nothing may be frozen, and the hooks that got `freeze`
    /// have had their `freeze-failed` already.
    pub(crate) fn before_freeze(&mut self) -> Result<(), String> {
        if self.verdict.is_some() || !self.hooks.is_configured() {
            return Ok(());
        }
        let verdict = self.hooks.run_freeze();
        self.reason = verdict.reason.as_deref().map(c_string);
        let proceed = verdict.proceed;
        let reason = verdict.reason.clone();
        self.verdict = Some(verdict);
        if proceed {
            return Ok(());
        }
        self.hooks.run_after(false);
        Err(format!(
            "application consistency is required, but {}: nothing was frozen, and the hooks that got `freeze` got `freeze-failed`",
            reason.as_deref().unwrap_or("a hook failed")
        ))
    }

    /// Runs the calls after the thaw (once; nothing if no `freeze` call was made): `thaw` if
    /// `thawed_ok` (everything was frozen and thawed in time), `freeze-failed` otherwise.
    pub(crate) fn after_thaw(&mut self, thawed_ok: bool) {
        if self.verdict.is_some() {
            self.hooks.run_after(thawed_ok);
        }
    }

    /// The first failed call after the thaw, described.
    pub(crate) fn after_failure(&self) -> Option<String> {
        self.hooks.after_failure()
    }

    /// The session's level with the hooks, from the level of the freeze session alone, and
    /// the reason when it stays file-system-consistent (a pointer into this state, or NULL).
    pub(crate) fn level(&self, base: Consistency) -> (Consistency, *const c_char) {
        if base != Consistency::FileSystem {
            return (base, core::ptr::null());
        }
        match &self.verdict {
            Some(v) if v.quiesced => (Consistency::Application, core::ptr::null()),
            Some(_) => (
                Consistency::FileSystem,
                self.reason
                    .as_deref()
                    .map_or(core::ptr::null(), CStr::as_ptr),
            ),
            None => (Consistency::FileSystem, NO_HOOKS_REASON.as_ptr()),
        }
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
    fn the_no_hooks_reason_is_the_clis() {
        assert_eq!(
            NO_HOOKS_REASON.to_str().ok(),
            Some(crate::runtime::NO_HOOKS_REASON)
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
