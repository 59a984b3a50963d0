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
use crate::runtime::{HookConfig, Hooks, DEFAULT_HOOK_TIMEOUT};

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
