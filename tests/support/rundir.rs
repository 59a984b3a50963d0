//! A private control directory for the tests of detached sessions, so that they never touch
//! the real `/run/quiesce` (other sessions' records, other helpers' tests): quiesce takes it
//! from `$QUIESCE_RUN_DIR`. [`RunDir`] makes `/run/quiesce-test-run-XXXXXX` (root's, 0700, on
//! the tmpfs `/run`); the control directory is `run` inside it (quiesce creates it). On drop,
//! every detached controller recorded there that is still running is killed (its guardian
//! then thaws at once), and the directory is removed.

use std::ffi::{CString, OsStr};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::cli::Quiesce;
use crate::process::send_signal;

/// Prefix of every such directory.
pub const RUN_DIR_PREFIX: &str = "/run/quiesce-test-run-";

/// A private control directory, removed on drop.
pub struct RunDir {
    /// `/run/quiesce-test-run-XXXXXX`.
    pub root: PathBuf,
    /// `root/run`: the control directory quiesce uses (`$QUIESCE_RUN_DIR`).
    pub path: PathBuf,
}

/// The start time (field 22 of /proc/PID/stat) and command name of a process.
fn proc_start_comm(pid: i32) -> Option<(u64, String)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat[open + 1..close].to_string();
    let start = stat[close + 1..]
        .split_ascii_whitespace()
        .nth(19)?
        .parse()
        .ok()?;
    Some((start, comm))
}

impl RunDir {
    pub fn new() -> RunDir {
        let template = CString::new(format!("{RUN_DIR_PREFIX}XXXXXX")).expect("no NUL");
        let raw = template.into_raw();
        // SAFETY: `raw` is a writable NUL-terminated buffer that mkdtemp fills in place.
        let made = unsafe { libc::mkdtemp(raw) };
        // SAFETY: `raw` came from CString::into_raw and is reclaimed exactly once.
        let template = unsafe { CString::from_raw(raw) };
        assert!(
            !made.is_null(),
            "mkdtemp {RUN_DIR_PREFIX}XXXXXX: {}",
            std::io::Error::last_os_error()
        );
        let root = PathBuf::from(OsStr::from_bytes(template.as_bytes()));
        let path = root.join("run");
        RunDir { root, path }
    }

    /// `quiesce SUBCOMMAND` using this control directory.
    pub fn quiesce(&self, sub: &str) -> Quiesce {
        Quiesce::sub(sub).env("QUIESCE_RUN_DIR", &self.path)
    }

    /// The `QUIESCE_RUN_DIR=...` assignment, for shell command lines.
    pub fn assignment(&self) -> String {
        format!("QUIESCE_RUN_DIR={}", self.path.display())
    }

    /// The names of the files in the control directory, sorted.
    pub fn files(&self) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(&self.path)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// The files of session `id`.
    pub fn files_of(&self, id: &str) -> Vec<String> {
        self.files()
            .into_iter()
            .filter(|f| f.starts_with(&format!("{id}.")))
            .collect()
    }

    /// Kills the detached controllers recorded here that still run (pid, start time and name
    /// checked, so nothing else is hit).
    pub fn kill_controllers(&self) {
        for name in self.files() {
            let Some(id) = name.strip_suffix(".detached") else {
                continue;
            };
            let Some((pid, start)) = id.split_once('-') else {
                continue;
            };
            let (Ok(pid), Ok(start)) = (pid.parse::<i32>(), start.parse::<u64>()) else {
                continue;
            };
            if let Some((s, comm)) = proc_start_comm(pid) {
                if s == start && comm == "quiesce-detach" {
                    let _ = send_signal(pid as u32, libc::SIGKILL);
                }
            }
        }
    }

    /// The control directory (for planting hostile entries).
    pub fn dir(&self) -> &Path {
        &self.path
    }
}

impl Default for RunDir {
    fn default() -> Self {
        RunDir::new()
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        self.kill_controllers();
        let _ = fs::remove_dir_all(&self.root);
    }
}
