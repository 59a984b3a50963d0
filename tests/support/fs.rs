//! Loop-backed test filesystems, extra mounts of them, and tmpfs mounts.
//!
//! Teardown (on drop, also while unwinding from a panic): thaw (`fsfreeze -u`, "not frozen" is
//! fine), reap probes that were blocked on the freeze, unmount (retrying, then `umount -l`),
//! detach the loop device. Rust drops locals in reverse order of declaration, so declare the
//! scratch directory first, then a filesystem, then whatever lives on it (a filesystem whose
//! image is inside it, a nested mount, an [`ExtraMount`]).

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::Duration;

use crate::guard::{self, check_new_mount_point, guard};
use crate::probe::start_write_probe_nosync;
use crate::process::{reap_pending, run_ok, run_timeout};
use crate::scratch::Scratch;

const STEP: Duration = Duration::from_secs(60);
const QUICK: Duration = Duration::from_secs(15);

/// The kinds of filesystem the fixtures can make.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsKind {
    Ext4,
    Xfs,
    Btrfs,
}

impl FsKind {
    /// The name `mount -t` and /proc/self/mountinfo use.
    pub fn fs_type(self) -> &'static str {
        match self {
            FsKind::Ext4 => "ext4",
            FsKind::Xfs => "xfs",
            FsKind::Btrfs => "btrfs",
        }
    }

    /// Size of the (sparse) image: the smallest comfortable size for each type.
    pub fn image_size(self) -> u64 {
        const MIB: u64 = 1 << 20;
        match self {
            FsKind::Ext4 => 64 * MIB,
            FsKind::Xfs => 320 * MIB,
            FsKind::Btrfs => 128 * MIB,
        }
    }

    fn mkfs(self, image: &Path) -> Command {
        let mut c = match self {
            FsKind::Ext4 => {
                let mut c = Command::new("mkfs.ext4");
                c.args(["-q", "-F"]);
                c
            }
            FsKind::Xfs => {
                let mut c = Command::new("mkfs.xfs");
                c.args(["-q", "-f"]);
                c
            }
            FsKind::Btrfs => {
                let mut c = Command::new("mkfs.btrfs");
                c.args(["-q", "-f"]);
                c
            }
        };
        c.arg(image);
        c
    }
}

/// Unmounts `mount` (retrying while busy, then lazily). Errors are reported, never panicked.
pub fn unmount(mount: &Path) {
    for _ in 0..10 {
        match run_timeout(Command::new("umount").arg(mount), QUICK) {
            Ok(o) if o.status.success() => return,
            _ if !is_mount_point(mount) => return,
            _ => thread::sleep(Duration::from_millis(200)),
        }
    }
    eprintln!(
        "testkit: umount {} kept failing; lazy unmount",
        mount.display()
    );
    if let Err(e) = run_ok(Command::new("umount").arg("-l").arg(mount), QUICK) {
        eprintln!("testkit: {e}");
    }
}

/// True if `p` is listed as a mount point in /proc/self/mountinfo.
pub fn is_mount_point(p: &Path) -> bool {
    let p = guard::resolve(p);
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|m| Path::new(&crate::scratch::unescape_mountinfo(m)) == p)
}

/// Thaws `mount` if the guard allows it; "not frozen" (EINVAL) is fine.
fn thaw_quietly(mount: &Path) {
    if guard::check(mount).is_ok() {
        let _ = run_timeout(Command::new("fsfreeze").arg("-u").arg(mount), QUICK);
    }
}

/// Thaw, reap blocked probes, unmount, unregister, remove the directory.
fn teardown_mount(mount: &Path) {
    thaw_quietly(mount);
    reap_pending(Duration::from_secs(5));
    unmount(mount);
    guard::unregister(mount);
    // rmdir writes to the parent filesystem: skip it when that is a test filesystem (which could
    // still be frozen; its mount point goes away with it), so that teardown never blocks.
    let parent_is_fixture = mount.parent().is_some_and(|p| guard::check(p).is_ok());
    if !parent_is_fixture {
        let _ = fs::remove_dir(mount);
    }
}

/// What a [`TestFs`] has set up so far; undone on drop in reverse.
struct Teardown {
    loop_dev: Option<PathBuf>,
    mount: Option<PathBuf>,
}

impl Drop for Teardown {
    fn drop(&mut self) {
        if let Some(m) = self.mount.take() {
            teardown_mount(&m);
        }
        if let Some(dev) = self.loop_dev.take() {
            for attempt in 0..5 {
                match run_ok(Command::new("losetup").arg("-d").arg(&dev), QUICK) {
                    Ok(_) => break,
                    Err(e) if attempt == 4 => eprintln!("testkit: {e}"),
                    Err(_) => thread::sleep(Duration::from_millis(200)),
                }
            }
        }
    }
}

/// A loop-backed filesystem made and mounted for a test, registered with the guard.
pub struct TestFs {
    pub kind: FsKind,
    /// The (sparse) image file.
    pub image: PathBuf,
    /// Where it is mounted.
    pub mount: PathBuf,
    /// `/dev/loopN`.
    pub loop_dev: PathBuf,
    /// (major, minor) of the loop device.
    pub dev: (u32, u32),
    _teardown: Teardown,
}

impl TestFs {
    /// Image `scratch/NAME.img`, mounted at `scratch/NAME`.
    pub fn new(scratch: &Scratch, name: &str, kind: FsKind) -> TestFs {
        TestFs::new_in(&scratch.dir, &scratch.dir, name, kind)
    }

    /// Image `dir/NAME.img` (e.g. inside another TestFs: a loop filesystem whose storage lives
    /// on another), mounted at `mount_parent/NAME` (e.g. inside another TestFs: a nested mount).
    /// Declare it after the filesystem it lives on, so that it is torn down first.
    pub fn new_in(dir: &Path, mount_parent: &Path, name: &str, kind: FsKind) -> TestFs {
        TestFs::new_sized_in(dir, mount_parent, name, kind, kind.image_size())
    }

    /// Like [`TestFs::new_in`] with an image of `size` bytes (e.g. an ext4 big enough to hold
    /// the image of an xfs).
    pub fn new_sized_in(
        dir: &Path,
        mount_parent: &Path,
        name: &str,
        kind: FsKind,
        size: u64,
    ) -> TestFs {
        let image = dir.join(format!("{name}.img"));
        let mount = mount_parent.join(name);
        check_new_mount_point(&mount);
        let mut t = Teardown {
            loop_dev: None,
            mount: None,
        };
        let f = fs::File::create(&image)
            .unwrap_or_else(|e| panic!("create image {}: {e}", image.display()));
        f.set_len(size).expect("size the image");
        drop(f);
        run_ok(&mut kind.mkfs(&image), STEP).unwrap_or_else(|e| panic!("mkfs: {e}"));
        let out = run_ok(
            Command::new("losetup")
                .args(["--find", "--show"])
                .arg(&image),
            STEP,
        )
        .unwrap_or_else(|e| panic!("losetup: {e}"));
        let loop_dev = PathBuf::from(out.trim());
        t.loop_dev = Some(loop_dev.clone());
        let rdev = fs::metadata(&loop_dev)
            .unwrap_or_else(|e| panic!("stat {}: {e}", loop_dev.display()))
            .rdev();
        let dev = (libc::major(rdev), libc::minor(rdev));
        fs::create_dir_all(&mount).expect("create the mount point");
        run_ok(
            Command::new("mount")
                .args(["-t", kind.fs_type()])
                .arg(&loop_dev)
                .arg(&mount),
            STEP,
        )
        .unwrap_or_else(|e| panic!("mount: {e}"));
        t.mount = Some(mount.clone());
        guard::register(&mount);
        guard(&mount);
        TestFs {
            kind,
            image,
            mount,
            loop_dev,
            dev,
            _teardown: t,
        }
    }

    /// Attaches an existing image (e.g. a snapshot copy of another TestFs) to a loop device
    /// and mounts it read-write at `mount_parent/name`; torn down like any other. An xfs copy
    /// is mounted with `nouuid` (it has its original's UUID).
    pub fn attach(image: &Path, mount_parent: &Path, name: &str, kind: FsKind) -> TestFs {
        let mount = mount_parent.join(name);
        check_new_mount_point(&mount);
        let mut t = Teardown {
            loop_dev: None,
            mount: None,
        };
        let out = run_ok(
            Command::new("losetup")
                .args(["--find", "--show"])
                .arg(image),
            STEP,
        )
        .unwrap_or_else(|e| panic!("losetup: {e}"));
        let loop_dev = PathBuf::from(out.trim());
        t.loop_dev = Some(loop_dev.clone());
        let rdev = fs::metadata(&loop_dev)
            .unwrap_or_else(|e| panic!("stat {}: {e}", loop_dev.display()))
            .rdev();
        let dev = (libc::major(rdev), libc::minor(rdev));
        fs::create_dir_all(&mount).expect("create the mount point");
        let mut cmd = Command::new("mount");
        cmd.args(["-t", kind.fs_type()]);
        if kind == FsKind::Xfs {
            cmd.args(["-o", "nouuid"]);
        }
        run_ok(cmd.arg(&loop_dev).arg(&mount), STEP)
            .unwrap_or_else(|e| panic!("mount the image {}: {e}", image.display()));
        t.mount = Some(mount.clone());
        guard::register(&mount);
        guard(&mount);
        TestFs {
            kind,
            image: image.to_path_buf(),
            mount,
            loop_dev,
            dev,
            _teardown: t,
        }
    }

    /// `mount/name`.
    pub fn path(&self, name: impl AsRef<Path>) -> PathBuf {
        self.mount.join(name)
    }

    /// "MAJ:MIN" of the loop device.
    pub fn dev_string(&self) -> String {
        format!("{}:{}", self.dev.0, self.dev.1)
    }

    /// A second mount of the same device at `at` (same superblock).
    pub fn mount_again(&self, at: &Path) -> ExtraMount {
        ExtraMount::new(
            Command::new("mount")
                .args(["-t", self.kind.fs_type()])
                .arg(&self.loop_dev),
            at,
        )
    }

    /// A bind mount of this filesystem's root at `at`.
    pub fn bind(&self, at: &Path) -> ExtraMount {
        ExtraMount::new(Command::new("mount").arg("--bind").arg(&self.mount), at)
    }

    /// Freezes it with util-linux `fsfreeze -f` (a "foreign" freeze). Guarded.
    pub fn fsfreeze(&self) {
        guard(&self.mount);
        run_ok(Command::new("fsfreeze").arg("-f").arg(&self.mount), STEP)
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Thaws it with `fsfreeze -u`; a filesystem that is not frozen is fine. Guarded.
    pub fn fsthaw(&self) {
        guard(&self.mount);
        let out = run_timeout(Command::new("fsfreeze").arg("-u").arg(&self.mount), STEP)
            .unwrap_or_else(|e| panic!("{e}"));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() || err.contains("Invalid argument"),
            "fsfreeze -u {} failed: {err}",
            self.mount.display()
        );
        reap_pending(Duration::from_secs(2));
    }

    /// True if a write probe (create + write, no fsync) does not complete within 1 s.
    pub fn is_frozen(&self) -> bool {
        self.is_frozen_within(Duration::from_secs(1))
    }

    /// True if a write probe does not complete within `probe`. A blocked probe is left to
    /// finish after the thaw (it is reaped by the teardown).
    pub fn is_frozen_within(&self, probe: Duration) -> bool {
        !start_write_probe_nosync(&self.mount).completed_within(probe)
    }
}

/// An extra mount (second mount of a device, or a bind mount), registered with the guard and
/// unmounted on drop. Declare it after the [`TestFs`] it shows.
pub struct ExtraMount {
    pub path: PathBuf,
}

impl ExtraMount {
    fn new(cmd: &mut Command, at: &Path) -> ExtraMount {
        check_new_mount_point(at);
        fs::create_dir_all(at).expect("create the mount point");
        run_ok(cmd.arg(at), STEP).unwrap_or_else(|e| panic!("mount: {e}"));
        guard::register(at);
        ExtraMount {
            path: at.to_path_buf(),
        }
    }
}

impl Drop for ExtraMount {
    fn drop(&mut self) {
        teardown_mount(&self.path);
    }
}

/// A tmpfs mounted by the test, registered with the guard, unmounted on drop.
pub struct TmpfsMount {
    pub path: PathBuf,
}

/// Mounts a 16 MiB tmpfs at `scratch/name`.
pub fn tmpfs(scratch: &Scratch, name: &str) -> TmpfsMount {
    let at = scratch.path(name);
    check_new_mount_point(&at);
    fs::create_dir_all(&at).expect("create the mount point");
    run_ok(
        Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=16m", "quiesce-test-tmpfs"])
            .arg(&at),
        STEP,
    )
    .unwrap_or_else(|e| panic!("mount tmpfs: {e}"));
    guard::register(&at);
    TmpfsMount { path: at }
}

impl Drop for TmpfsMount {
    fn drop(&mut self) {
        teardown_mount(&self.path);
    }
}

/// An overlay filesystem mounted by the test (lower, upper and work directories in the
/// scratch directory), registered with the guard, unmounted on drop.
pub struct OverlayMount {
    pub path: PathBuf,
}

/// Mounts an overlay at `scratch/name` (its directories beside it, `name.lower` etc.).
pub fn overlay(scratch: &Scratch, name: &str) -> OverlayMount {
    let at = scratch.path(name);
    check_new_mount_point(&at);
    let dirs: Vec<PathBuf> = ["lower", "upper", "work"]
        .iter()
        .map(|d| scratch.path(format!("{name}.{d}")))
        .collect();
    for d in dirs.iter().chain([&at]) {
        fs::create_dir_all(d).expect("create the overlay's directories");
    }
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        dirs[0].display(),
        dirs[1].display(),
        dirs[2].display()
    );
    run_ok(
        Command::new("mount")
            .args(["-t", "overlay", "quiesce-test-overlay", "-o", &opts])
            .arg(&at),
        STEP,
    )
    .unwrap_or_else(|e| panic!("mount overlay: {e}"));
    guard::register(&at);
    OverlayMount { path: at }
}

impl Drop for OverlayMount {
    fn drop(&mut self) {
        teardown_mount(&self.path);
    }
}
