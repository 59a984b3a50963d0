//! The safety guard: the benchmark freezes and thaws only filesystems it made itself.
//!
//! [`check`] accepts a path only if it is a mount point directly inside the benchmark's own
//! scratch directory (`/tmp/quiesce-bench-XXXXXX`), registered by the fixtures together with
//! the loop device they attached, mounted right now from that very loop device (per
//! /proc/self/mountinfo and by device number), and not on the filesystem of `/`, `/tmp`, the
//! working directory or the benchmark's own executable. Every command that freezes or thaws
//! (quiesce, fsfreeze, FITHAW) is preceded by it.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use crate::error::{bail, Context, Result};

/// The scratch directory of every run starts with this.
pub const SCRATCH_PREFIX: &str = "/tmp/quiesce-bench-";

/// A mount the fixtures made: where, and from which loop device.
#[derive(Clone, Debug)]
pub struct Owned {
    pub mount: PathBuf,
    pub loop_dev: PathBuf,
}

struct Registry {
    scratch: Option<PathBuf>,
    mounts: Vec<Owned>,
    /// Other mounts the fixtures made (never frozen): the tmpfs holding the images.
    aux: Vec<PathBuf>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    scratch: None,
    mounts: Vec::new(),
    aux: Vec::new(),
});

fn registry() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Records the scratch directory of this run (once).
pub fn set_scratch(dir: &Path) -> Result<()> {
    let s = dir.to_string_lossy();
    match s.strip_prefix(SCRATCH_PREFIX) {
        Some(rest) if !rest.is_empty() && !rest.contains('/') => {}
        _ => bail!("SAFETY GUARD: scratch directory {s} is not {SCRATCH_PREFIX}XXXXXX"),
    }
    let mut r = registry();
    if r.scratch.is_some() {
        bail!("SAFETY GUARD: the scratch directory is set already");
    }
    r.scratch = Some(dir.to_path_buf());
    Ok(())
}

pub fn register(mount: &Path, loop_dev: &Path) {
    registry().mounts.push(Owned {
        mount: mount.to_path_buf(),
        loop_dev: loop_dev.to_path_buf(),
    });
}

pub fn unregister(mount: &Path) {
    registry().mounts.retain(|o| o.mount != mount);
}

/// The scratch directory and the loop device registered for `mount` (for a child process of
/// the benchmark, which registers them again in its own registry and checks them itself).
pub fn lookup(mount: &Path) -> Result<(PathBuf, PathBuf)> {
    let r = registry();
    let Some(scratch) = r.scratch.clone() else {
        bail!(
            "SAFETY GUARD refused {}: no scratch directory is set",
            mount.display()
        );
    };
    match r.mounts.iter().find(|o| o.mount == mount) {
        Some(o) => Ok((scratch, o.loop_dev.clone())),
        None => bail!(
            "SAFETY GUARD refused {}: not a mount point the fixtures created",
            mount.display()
        ),
    }
}

pub fn register_aux(mount: &Path) {
    registry().aux.push(mount.to_path_buf());
}

pub fn unregister_aux(mount: &Path) {
    registry().aux.retain(|m| m != mount);
}

/// A copy of the registry.
pub struct Registered {
    pub scratch: Option<PathBuf>,
    pub owned: Vec<Owned>,
    pub aux: Vec<PathBuf>,
}

/// The mounts registered now (for the emergency cleanup), without blocking on the lock for
/// long: None if it could not be taken within `tries` attempts of 10 ms.
pub fn registered(tries: u32) -> Option<Registered> {
    let copy = |r: &Registry| Registered {
        scratch: r.scratch.clone(),
        owned: r.mounts.clone(),
        aux: r.aux.clone(),
    };
    for _ in 0..tries {
        match REGISTRY.try_lock() {
            Ok(r) => return Some(copy(&r)),
            Err(std::sync::TryLockError::Poisoned(p)) => return Some(copy(&p.into_inner())),
            Err(std::sync::TryLockError::WouldBlock) => {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
        }
    }
    None
}

/// One line of /proc/self/mountinfo: the fields the guard needs.
#[derive(Debug, PartialEq, Eq)]
pub struct MountLine {
    pub dev: (u32, u32),
    pub mount_point: PathBuf,
    pub fs_type: String,
    pub source: String,
}

/// Decodes the `\ooo` octal escapes of a mountinfo field.
pub fn unescape(field: &str) -> String {
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
                        .fold(0u8, |acc, c| acc.wrapping_mul(8).wrapping_add(c - b'0')),
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

/// Parses one mountinfo line; None if it is malformed.
pub fn parse_line(line: &str) -> Option<MountLine> {
    let (left, right) = line.split_once(" - ")?;
    let l: Vec<&str> = left.split(' ').collect();
    let r: Vec<&str> = right.split(' ').collect();
    let (maj, min) = l.get(2)?.split_once(':')?;
    Some(MountLine {
        dev: (maj.parse().ok()?, min.parse().ok()?),
        mount_point: PathBuf::from(unescape(l.get(4)?)),
        fs_type: unescape(r.first()?),
        source: unescape(r.get(1)?),
    })
}

/// Every mount of this process's mount namespace.
pub fn mounts() -> Result<Vec<MountLine>> {
    let info =
        fs::read_to_string("/proc/self/mountinfo").ctx(|| "read /proc/self/mountinfo".into())?;
    Ok(info.lines().filter_map(parse_line).collect())
}

fn dev_of(p: &Path) -> Result<u64> {
    fs::metadata(p)
        .map(|m| m.dev())
        .ctx(|| format!("stat {}", p.display()))
}

/// Ok if `mount` may be frozen and thawed by the benchmark (see the module documentation).
pub fn check(mount: &Path) -> Result<()> {
    check_in(mount, &mounts()?)
}

/// [`check`] on every mount, against one reading of /proc/self/mountinfo (the fresh-process
/// limit's child checks all its mounts at its start: one read instead of one per mount).
pub fn check_all(all_mounts: &[PathBuf]) -> Result<()> {
    let info = mounts()?;
    for m in all_mounts {
        check_in(m, &info)?;
    }
    Ok(())
}

/// [`check`] against `all`, the mounts of this namespace read just before.
fn check_in(mount: &Path, all: &[MountLine]) -> Result<()> {
    let refuse =
        |why: String| -> Result<()> { bail!("SAFETY GUARD refused {}: {why}", mount.display()) };
    let (scratch, owned) = {
        let r = registry();
        let owned = r.mounts.iter().find(|o| o.mount == mount).cloned();
        (r.scratch.clone(), owned)
    };
    let Some(scratch) = scratch else {
        return refuse("no scratch directory is set".into());
    };
    let Some(owned) = owned else {
        return refuse("not a mount point the fixtures created".into());
    };
    if mount.parent() != Some(scratch.as_path()) || !scratch.starts_with("/tmp") {
        return refuse(format!("not directly inside {}", scratch.display()));
    }
    let canonical = fs::canonicalize(mount).ctx(|| format!("canonicalize {}", mount.display()))?;
    if canonical != mount {
        return refuse(format!("resolves to {}", canonical.display()));
    }
    let rdev = fs::metadata(&owned.loop_dev)
        .ctx(|| format!("stat {}", owned.loop_dev.display()))?
        .rdev();
    let loop_dev = (libc::major(rdev), libc::minor(rdev));
    if libc::major(rdev) != 7 {
        return refuse(format!("{} is not a loop device", owned.loop_dev.display()));
    }
    // The topmost mount at that path must be our loop device.
    let Some(top) = all.iter().rev().find(|m| m.mount_point == mount) else {
        return refuse("not mounted".into());
    };
    if top.dev != loop_dev || Path::new(&top.source) != owned.loop_dev {
        return refuse(format!(
            "mounted from {} ({}:{}), not from our {}",
            top.source,
            top.dev.0,
            top.dev.1,
            owned.loop_dev.display()
        ));
    }
    let dev = dev_of(mount)?;
    if dev != rdev {
        return refuse("its device differs from the loop device".into());
    }
    let mut forbidden = vec![PathBuf::from("/"), PathBuf::from("/tmp"), scratch.clone()];
    if let Ok(cwd) = std::env::current_dir() {
        forbidden.push(cwd);
    }
    if let Ok(exe) = std::env::current_exe() {
        forbidden.push(exe);
    }
    for f in forbidden {
        if dev_of(&f)? == dev {
            return refuse(format!("it is the filesystem of {}", f.display()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mountinfo_lines() {
        let l =
            "36 35 7:3 / /tmp/quiesce-bench-ab/m\\0400 rw,relatime shared:1 - ext4 /dev/loop3 rw";
        let m = parse_line(l);
        assert_eq!(
            m,
            Some(MountLine {
                dev: (7, 3),
                mount_point: PathBuf::from("/tmp/quiesce-bench-ab/m 0"),
                fs_type: "ext4".into(),
                source: "/dev/loop3".into(),
            })
        );
        assert_eq!(parse_line("garbage"), None);
    }

    #[test]
    fn refuses_unregistered_paths() {
        assert!(check(Path::new("/")).is_err());
        assert!(check(Path::new("/tmp")).is_err());
    }
}
