//! A fresh scratch directory `/tmp/quiesce-test-XXXXXX` for images, mount points and outputs.

use std::ffi::{CString, OsStr};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::guard::SCRATCH_PREFIX;
use crate::process::run_timeout;

/// A fresh directory `/tmp/quiesce-test-XXXXXX` (mode 0755, so that unprivileged test runs can
/// reach what is inside). Declare it BEFORE the fixtures that live in it: it is removed on drop,
/// and by then their mounts must be gone. If some are not, it thaws and lazily unmounts them and
/// never descends into another filesystem while deleting.
pub struct Scratch {
    pub dir: PathBuf,
}

impl Scratch {
    pub fn new() -> Scratch {
        let template = CString::new(format!("{SCRATCH_PREFIX}XXXXXX")).expect("no NUL");
        let raw = template.into_raw();
        // SAFETY: `raw` is a writable NUL-terminated buffer that mkdtemp fills in place.
        let made = unsafe { libc::mkdtemp(raw) };
        // SAFETY: `raw` came from CString::into_raw and is reclaimed exactly once.
        let template = unsafe { CString::from_raw(raw) };
        assert!(
            !made.is_null(),
            "mkdtemp {SCRATCH_PREFIX}XXXXXX: {}",
            std::io::Error::last_os_error()
        );
        let dir = PathBuf::from(OsStr::from_bytes(template.as_bytes()));
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod scratch");
        Scratch { dir }
    }

    /// `dir/name`.
    pub fn path(&self, name: impl AsRef<Path>) -> PathBuf {
        self.dir.join(name)
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch::new()
    }
}

/// Mount points listed in /proc/self/mountinfo that are strictly inside `dir`, deepest first.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut found: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(unescape_mountinfo(m)))
        .filter(|m| m.starts_with(dir) && m != dir)
        .collect();
    found.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
    found.dedup();
    found
}

/// Decodes the `\ooo` octal escapes of a mountinfo field.
pub fn unescape_mountinfo(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], octal) {
            (b'\\', Some(d)) => {
                out.push(
                    d.iter()
                        .fold(0u8, |acc, c| acc.wrapping_mul(8) + (c - b'0')),
                );
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Loop devices whose backing file is inside `dir` (from /sys/block/loop*/loop/backing_file).
pub fn loops_backed_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = fs::read_dir("/sys/block") else {
        return Vec::new();
    };
    rd.flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("loop"))
        .filter(|e| {
            fs::read_to_string(e.path().join("loop/backing_file"))
                .is_ok_and(|b| Path::new(b.trim_end()).starts_with(dir))
        })
        .map(|e| Path::new("/dev").join(e.file_name()))
        .collect()
}

/// Deletes `p` recursively without crossing into another filesystem than `dev`.
fn remove_same_fs(p: &Path, dev: u64) {
    let Ok(meta) = fs::symlink_metadata(p) else {
        return;
    };
    if meta.dev() != dev {
        eprintln!(
            "testkit: not deleting {} (another filesystem is mounted there)",
            p.display()
        );
        return;
    }
    if meta.is_dir() {
        if let Ok(rd) = fs::read_dir(p) {
            for e in rd.flatten() {
                remove_same_fs(&e.path(), dev);
            }
        }
        let _ = fs::remove_dir(p);
    } else {
        let _ = fs::remove_file(p);
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let t = Duration::from_secs(10);
        for m in mounts_under(&self.dir) {
            eprintln!(
                "testkit: {} still mounted when its scratch dir is dropped; thawing and lazily unmounting",
                m.display()
            );
            let _ = run_timeout(Command::new("fsfreeze").arg("-u").arg(&m), t);
            crate::process::reap_pending(Duration::from_secs(2));
            let _ = run_timeout(Command::new("umount").arg("-l").arg(&m), t);
        }
        for dev in loops_backed_under(&self.dir) {
            eprintln!(
                "testkit: {} still attached when its scratch dir is dropped; detaching",
                dev.display()
            );
            let _ = run_timeout(Command::new("losetup").arg("-d").arg(&dev), t);
        }
        if let Ok(meta) = fs::metadata(&self.dir) {
            remove_same_fs(&self.dir, meta.dev());
        }
    }
}
