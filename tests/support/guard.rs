//! The safety guard: nothing but a filesystem that a fixture created may be frozen or thawed.
//!
//! Fixtures register every mount point they create. [`guard`] accepts a path only if it is, or is
//! inside, a registered mount point that is currently mounted on a device other than those of
//! `/`, `/tmp` and the workspace. Every helper that hands a path to `quiesce` or `fsfreeze`
//! calls it first, so even a buggy `quiesce` can only ever freeze a test filesystem.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

/// Canonical paths of the mount points the fixtures of this process created and still own.
static REGISTRY: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Every fixture mount point lives under a directory with this prefix.
pub const SCRATCH_PREFIX: &str = "/tmp/quiesce-test-";

fn registry() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn register(mount: &Path) {
    registry().push(resolve(mount));
}

pub(crate) fn unregister(mount: &Path) {
    let m = resolve(mount);
    let mut r = registry();
    if let Some(i) = r.iter().position(|p| *p == m) {
        r.remove(i);
    }
}

/// Makes `path` absolute (against the working directory) and resolves symbolic links in its
/// longest existing prefix; the rest is normalised lexically. Works for paths that do not exist.
pub fn resolve(path: &Path) -> PathBuf {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .expect("current directory")
            .join(path)
    };
    let comps: Vec<Component> = abs.components().collect();
    for n in (1..=comps.len()).rev() {
        let prefix: PathBuf = comps[..n].iter().collect();
        let Ok(mut out) = fs::canonicalize(&prefix) else {
            continue;
        };
        for c in &comps[n..] {
            match c {
                Component::ParentDir => {
                    out.pop();
                }
                Component::Normal(s) => out.push(s),
                _ => {}
            }
        }
        return out;
    }
    abs
}

/// True if `p` is strictly inside a directory named `/tmp/quiesce-test-*`.
fn under_scratch(p: &Path) -> bool {
    p.to_str().is_some_and(|s| {
        s.strip_prefix(SCRATCH_PREFIX)
            .is_some_and(|rest| rest.contains('/') && !rest.starts_with('/'))
    })
}

fn dev_of(p: &Path) -> Result<u64, String> {
    fs::metadata(p)
        .map(|m| m.dev())
        .map_err(|e| format!("cannot stat {}: {e}", p.display()))
}

/// The devices that must never be frozen: those of `/`, `/tmp` and the workspace.
fn forbidden_devs() -> Result<Vec<(u64, &'static str)>, String> {
    Ok(vec![
        (dev_of(Path::new("/"))?, "/"),
        (dev_of(Path::new("/tmp"))?, "/tmp"),
        (
            dev_of(Path::new(env!("CARGO_MANIFEST_DIR")))?,
            env!("CARGO_MANIFEST_DIR"),
        ),
    ])
}

/// The checks of [`guard`], as a Result: Ok is the registered mount point that holds `path`.
pub fn check(path: &Path) -> Result<PathBuf, String> {
    let p = resolve(path);
    let mount = {
        let r = registry();
        r.iter()
            .filter(|m| p.starts_with(m))
            .max_by_key(|m| m.as_os_str().len())
            .cloned()
    };
    let Some(mount) = mount else {
        return Err(format!(
            "{} (resolved {}) is not inside a mount point created by the test fixtures",
            path.display(),
            p.display()
        ));
    };
    if !under_scratch(&mount) {
        return Err(format!(
            "registered mount {} is not under {SCRATCH_PREFIX}*",
            mount.display()
        ));
    }
    let mount_dev = dev_of(&mount)?;
    // The path itself, if it exists, must not be on a forbidden device either (it could be a
    // mount of something else inside the test filesystem).
    let path_dev = if p.exists() { Some(dev_of(&p)?) } else { None };
    for (dev, name) in forbidden_devs()? {
        if mount_dev == dev {
            return Err(format!(
                "{} is on the same filesystem as {name} (not mounted, or not a test filesystem)",
                mount.display()
            ));
        }
        if path_dev == Some(dev) {
            return Err(format!(
                "{} is on the same filesystem as {name}",
                p.display()
            ));
        }
    }
    Ok(mount)
}

/// Panics unless `path` is, or is inside, a mounted fixture filesystem that is not the
/// filesystem of `/`, `/tmp` or the workspace. Call it before anything freezes or thaws `path`.
pub fn guard(path: &Path) {
    if let Err(e) = check(path) {
        panic!("SAFETY GUARD refused {}: {e}", path.display());
    }
}

/// Panics unless `at` is a fresh place for a fixture mount: under a scratch directory
/// ([`SCRATCH_PREFIX`]) or inside a registered fixture mount, and absent or an empty directory.
pub(crate) fn check_new_mount_point(at: &Path) {
    let p = resolve(at);
    let inside_fixture = check(&p).is_ok();
    assert!(
        under_scratch(&p) || inside_fixture,
        "SAFETY GUARD: refusing to mount at {}: not under {SCRATCH_PREFIX}* nor inside a test filesystem",
        p.display()
    );
    assert!(
        p.components().count() > 3,
        "SAFETY GUARD: refusing to mount at {}: too close to the root",
        p.display()
    );
    if let Ok(mut rd) = fs::read_dir(&p) {
        assert!(
            rd.next().is_none(),
            "SAFETY GUARD: refusing to mount over non-empty directory {}",
            p.display()
        );
    }
}
