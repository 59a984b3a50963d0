//! Hook fixtures: a directory of hook scripts that passes quiesce's authenticity checks.
//!
//! Hooks must belong to root and sit in directories that only root can write, all the way up
//! to `/`. The scratch directories live under `/tmp`, which everyone can write (sticky), so
//! hooks cannot live there: [`HookDir`] makes `/run/quiesce-test-hooks-XXXXXX` (mode 0755;
//! `/run` is root's, 0755) with a `hooks.d` directory for the scripts and a `calls.log` that
//! the scripts append to (never on a filesystem under test, so a hook that runs while
//! frozen cannot block on it). Removed on drop.

use std::ffi::{CString, OsStr};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Prefix of every hook fixture directory.
pub const HOOKS_PREFIX: &str = "/run/quiesce-test-hooks-";

/// A fresh root-owned directory for hooks, removed on drop.
pub struct HookDir {
    /// `/run/quiesce-test-hooks-XXXXXX`.
    pub root: PathBuf,
    /// `root/hooks.d`: pass it as `--hook-dir`.
    pub dir: PathBuf,
    /// `root/calls.log`: every script made by [`HookDir::logging`] appends `NAME PHASE`.
    pub log: PathBuf,
}

impl HookDir {
    pub fn new() -> HookDir {
        for p in ["/", "/run"] {
            let m = fs::metadata(p).unwrap_or_else(|e| panic!("stat {p}: {e}"));
            assert!(
                m.uid() == 0 && m.mode() & 0o022 == 0,
                "{p} must belong to root and not be group/other-writable for the hook tests (uid {}, mode {:o})",
                m.uid(),
                m.mode() & 0o7777
            );
        }
        let template = CString::new(format!("{HOOKS_PREFIX}XXXXXX")).expect("no NUL");
        let raw = template.into_raw();
        // SAFETY: `raw` is a writable NUL-terminated buffer that mkdtemp fills in place.
        let made = unsafe { libc::mkdtemp(raw) };
        // SAFETY: `raw` came from CString::into_raw and is reclaimed exactly once.
        let template = unsafe { CString::from_raw(raw) };
        assert!(
            !made.is_null(),
            "mkdtemp {HOOKS_PREFIX}XXXXXX: {}",
            std::io::Error::last_os_error()
        );
        let root = PathBuf::from(OsStr::from_bytes(template.as_bytes()));
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).expect("chmod hook root");
        let dir = root.join("hooks.d");
        fs::create_dir(&dir).expect("create hooks.d");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod hooks.d");
        let log = root.join("calls.log");
        fs::write(&log, "").expect("create calls.log");
        HookDir { root, dir, log }
    }

    /// Writes an executable (0755) script `hooks.d/NAME` with this body (after `#!/bin/sh`).
    pub fn script(&self, name: &str, body: &str) -> PathBuf {
        write_script(&self.dir.join(name), body)
    }

    /// A script `hooks.d/NAME` that appends `NAME PHASE` to the log, then runs `body`.
    pub fn logging(&self, name: &str, body: &str) -> PathBuf {
        self.script(name, &self.log_line(name, body))
    }

    /// The body of a logging script: append `NAME $1` to the log, then `body`.
    pub fn log_line(&self, name: &str, body: &str) -> String {
        format!("echo \"{name} $1\" >> '{}'\n{body}\n", self.log.display())
    }

    /// A script outside `hooks.d` (e.g. a pre or post script): `root/NAME`.
    pub fn outside(&self, name: &str, body: &str) -> PathBuf {
        write_script(&self.root.join(name), body)
    }

    /// The lines of the call log.
    pub fn calls(&self) -> Vec<String> {
        fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Empties the call log.
    pub fn clear_calls(&self) {
        fs::write(&self.log, "").expect("truncate calls.log");
    }
}

impl Default for HookDir {
    fn default() -> Self {
        HookDir::new()
    }
}

fn write_script(path: &Path, body: &str) -> PathBuf {
    fs::write(path, format!("#!/bin/sh\n{body}\n"))
        .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
    path.to_path_buf()
}

impl Drop for HookDir {
    fn drop(&mut self) {
        // Only ever our own directory.
        if self.root.starts_with("/run") && self.root.to_string_lossy().starts_with(HOOKS_PREFIX) {
            let _ = fs::remove_dir_all(&self.root);
        }
    }
}
