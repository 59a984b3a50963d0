//! The benchmark's own filesystems: sparse image files in `/tmp/quiesce-bench-XXXXXX`, each
//! attached to a loop device and mounted there, registered with the guard.
//!
//! Teardown (explicit [`Fixtures::close`], or on drop, also while unwinding from a panic):
//! thaw (FITHAW; "not frozen" is fine), unmount (retrying, then lazily), detach the loop device
//! (`losetup -d` on that device only), remove the directory without crossing into another
//! filesystem. Every external command runs with a timeout.

use std::ffi::{CString, OsStr};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::Duration;

use crate::error::{bail, Context, Result};
use crate::guard::{self, SCRATCH_PREFIX};
use crate::process::run_ok;
use crate::thaw::thaw;

const STEP: Duration = Duration::from_secs(60);
const QUICK: Duration = Duration::from_secs(15);
pub const MIB: u64 = 1 << 20;

/// The filesystem type of the images.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsKind {
    Ext4,
    Xfs,
}

impl FsKind {
    pub fn parse(s: &str) -> Option<FsKind> {
        match s {
            "ext4" => Some(FsKind::Ext4),
            "xfs" => Some(FsKind::Xfs),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            FsKind::Ext4 => "ext4",
            FsKind::Xfs => "xfs",
        }
    }

    /// The smallest image of the extra filesystems (xfs needs 300 MiB).
    pub fn small_image(self) -> u64 {
        match self {
            FsKind::Ext4 => 128 * MIB,
            FsKind::Xfs => 320 * MIB,
        }
    }

    /// mkfs and its options: everything initialised now (no lazy inode-table or journal
    /// initialisation running in the background during the measurements).
    /// The other kind (the dirty-stall rows are measured on both).
    pub fn other(self) -> FsKind {
        match self {
            FsKind::Ext4 => FsKind::Xfs,
            FsKind::Xfs => FsKind::Ext4,
        }
    }

    pub fn mkfs(self) -> (&'static str, &'static [&'static str]) {
        match self {
            FsKind::Ext4 => (
                "mkfs.ext4",
                &["-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0"],
            ),
            FsKind::Xfs => ("mkfs.xfs", &["-q", "-f"]),
        }
    }
}

/// Where the image files live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backing {
    /// In the scratch directory, on the filesystem of /tmp: every flush of a loop device
    /// reaches the machine's disk (as on a real system), so it competes with whatever else
    /// writes to that disk.
    Disk,
    /// On a tmpfs mounted inside the scratch directory: a loop device's flush costs nothing
    /// beyond copying pages; the numbers show the freeze mechanics, not the host's disk.
    Tmpfs,
}

impl Backing {
    pub fn parse(s: &str) -> Option<Backing> {
        match s {
            "disk" => Some(Backing::Disk),
            "tmpfs" => Some(Backing::Tmpfs),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backing::Disk => "disk",
            Backing::Tmpfs => "tmpfs",
        }
    }
}

/// The directory of the image files: the scratch directory itself, or a tmpfs mounted at
/// `scratch/images` (unmounted by [`ImageDir::teardown`]).
struct ImageDir {
    path: PathBuf,
    tmpfs: bool,
}

impl ImageDir {
    fn teardown(&mut self) -> Vec<String> {
        if !self.tmpfs {
            return Vec::new();
        }
        self.tmpfs = false;
        guard::unregister_aux(&self.path);
        let mut problems = Vec::new();
        if let Err(e) = unmount(&self.path) {
            problems.push(e.to_string());
        }
        let _ = fs::remove_dir(&self.path);
        problems
    }
}

/// One mounted loop filesystem.
pub struct BenchFs {
    pub mount: PathBuf,
    pub image: PathBuf,
    pub loop_dev: Option<PathBuf>,
    mounted: bool,
}

impl BenchFs {
    /// Thaw, unmount, detach, remove the mount point; problems are returned, never panicked.
    fn teardown(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.mounted {
            if let Err(e) = thaw(&self.mount) {
                problems.push(format!("thaw {}: {e}", self.mount.display()));
            }
            guard::unregister(&self.mount);
            if let Err(e) = unmount(&self.mount) {
                problems.push(e.to_string());
            }
            self.mounted = false;
        }
        if let Some(dev) = self.loop_dev.take() {
            let mut last = None;
            for _ in 0..10 {
                match run_ok(Command::new("losetup").arg("-d").arg(&dev), QUICK) {
                    Ok(_) => {
                        last = None;
                        break;
                    }
                    Err(e) => last = Some(e),
                }
                thread::sleep(Duration::from_millis(200));
            }
            if let Some(e) = last {
                problems.push(e.to_string());
            }
        }
        let _ = fs::remove_dir(&self.mount);
        let _ = fs::remove_file(&self.image);
        problems
    }
}

impl Drop for BenchFs {
    fn drop(&mut self) {
        for p in self.teardown() {
            eprintln!("quiesce-bench: cleanup: {p}");
        }
    }
}

/// True if `p` is a mount point now.
fn is_mounted(p: &Path) -> bool {
    guard::mounts().is_ok_and(|all| all.iter().any(|m| m.mount_point == p))
}

fn unmount(mount: &Path) -> Result<()> {
    for _ in 0..10 {
        if !is_mounted(mount) {
            return Ok(());
        }
        if run_ok(Command::new("umount").arg(mount), QUICK).is_ok() {
            return Ok(());
        }
        thread::sleep(Duration::from_millis(300));
    }
    run_ok(Command::new("umount").arg("-l").arg(mount), QUICK)?;
    bail!(
        "umount {} kept failing (busy); unmounted lazily",
        mount.display()
    )
}

/// A fresh directory `/tmp/quiesce-bench-XXXXXX`.
fn make_scratch() -> Result<PathBuf> {
    let template = CString::new(format!("{SCRATCH_PREFIX}XXXXXX"))
        .map_err(|e| format!("scratch template: {e}"))?;
    let raw = template.into_raw();
    // SAFETY: `raw` is a writable NUL-terminated buffer that mkdtemp fills in place.
    let made = unsafe { libc::mkdtemp(raw) };
    let err = std::io::Error::last_os_error();
    // SAFETY: `raw` came from CString::into_raw and is reclaimed exactly once.
    let template = unsafe { CString::from_raw(raw) };
    if made.is_null() {
        bail!("mkdtemp {SCRATCH_PREFIX}XXXXXX: {err}");
    }
    Ok(PathBuf::from(OsStr::from_bytes(template.as_bytes())))
}

/// What is left under the scratch directory after the teardown (should be nothing).
#[derive(Debug, Default)]
pub struct Leftovers {
    pub mounts: Vec<PathBuf>,
    pub loops: Vec<PathBuf>,
    pub dir_exists: bool,
    pub problems: Vec<String>,
}

impl Leftovers {
    pub fn clean(&self) -> bool {
        self.mounts.is_empty()
            && self.loops.is_empty()
            && !self.dir_exists
            && self.problems.is_empty()
    }

    pub fn describe(&self) -> String {
        if self.clean() {
            return "nothing left (no mount, no loop device, directory removed)".into();
        }
        let mut s = Vec::new();
        for m in &self.mounts {
            s.push(format!("still mounted: {}", m.display()));
        }
        for l in &self.loops {
            s.push(format!("still attached: {}", l.display()));
        }
        if self.dir_exists {
            s.push("scratch directory still exists".into());
        }
        s.extend(self.problems.iter().cloned());
        s.join("; ")
    }
}

/// Mount points strictly inside `dir`.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    guard::mounts()
        .unwrap_or_default()
        .into_iter()
        .map(|m| m.mount_point)
        .filter(|m| m.starts_with(dir) && m != dir)
        .collect()
}

/// Loop devices whose backing file is inside `dir`.
pub fn loops_under(dir: &Path) -> Vec<PathBuf> {
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
            "quiesce-bench: not deleting {} (another filesystem is mounted there)",
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

/// The scratch directory and the filesystems in it. Fields drop in declaration order: the
/// filesystems first, then the directory.
pub struct Fixtures {
    pub fs: Vec<BenchFs>,
    images: ImageDir,
    pub kind: FsKind,
    pub dir: PathBuf,
    /// One filesystem of the other kind ([`Fixtures::other`]).
    other: Option<BenchFs>,
    closed: bool,
}

impl Fixtures {
    /// Makes `count` filesystems: the first with an image of `first_size` bytes, the others
    /// [`FsKind::small_image`].
    pub fn create(
        kind: FsKind,
        backing: Backing,
        count: usize,
        first_size: u64,
    ) -> Result<Fixtures> {
        let dir = make_scratch()?;
        guard::set_scratch(&dir)?;
        let mut f = Fixtures {
            fs: Vec::new(),
            images: ImageDir {
                path: dir.clone(),
                tmpfs: false,
            },
            kind,
            dir,
            other: None,
            closed: false,
        };
        if backing == Backing::Tmpfs {
            let at = f.dir.join("images");
            fs::create_dir(&at).ctx(|| format!("mkdir {}", at.display()))?;
            let size = 2 * first_size + kind.small_image() * count as u64 + 64 * MIB;
            run_ok(
                Command::new("mount")
                    .args(["-t", "tmpfs", "-o"])
                    .arg(format!("size={}m,mode=0700", size / MIB))
                    .arg("quiesce-bench-images")
                    .arg(&at),
                STEP,
            )?;
            guard::register_aux(&at);
            f.images = ImageDir {
                path: at,
                tmpfs: true,
            };
        }
        for i in 0..count {
            let size = if i == 0 {
                first_size
            } else {
                kind.small_image()
            };
            let b = f.make_fs(&format!("fs{i}"), size, kind)?;
            f.fs.push(b);
        }
        // One of the other kind, as large as the first: the dirty-stall rows on both.
        let b = f.make_fs(
            &format!("fs{count}-{}", kind.other().name()),
            first_size,
            kind.other(),
        )?;
        f.other = Some(b);
        Ok(f)
    }

    /// The filesystem of the other kind ([`FsKind::other`]) and its mount point.
    pub fn other(&self) -> Option<(FsKind, PathBuf)> {
        self.other
            .as_ref()
            .map(|b| (self.kind.other(), b.mount.clone()))
    }

    fn make_fs(&self, name: &str, size: u64, kind: FsKind) -> Result<BenchFs> {
        let image = self.images.path.join(format!("{name}.img"));
        let mount = self.dir.join(name);
        let mut b = BenchFs {
            mount: mount.clone(),
            image: image.clone(),
            loop_dev: None,
            mounted: false,
        };
        let f = fs::File::create(&image).ctx(|| format!("create {}", image.display()))?;
        f.set_len(size)
            .ctx(|| format!("size {}", image.display()))?;
        drop(f);
        let (mkfs, opts) = kind.mkfs();
        run_ok(Command::new(mkfs).args(opts).arg(&image), STEP)?;
        let out = run_ok(
            Command::new("losetup")
                .args(["--find", "--show"])
                .arg(&image),
            STEP,
        )?;
        let dev = PathBuf::from(out.stdout.trim());
        if !out.stdout.trim().starts_with("/dev/loop") {
            // Detach whatever it attached for this image, then give up.
            for d in loops_under(&image) {
                let _ = run_ok(Command::new("losetup").arg("-d").arg(&d), QUICK);
            }
            bail!("losetup printed {:?}, not a loop device", out.stdout);
        }
        b.loop_dev = Some(dev.clone());
        fs::create_dir(&mount).ctx(|| format!("mkdir {}", mount.display()))?;
        run_ok(
            Command::new("mount")
                .args(["-t", kind.name()])
                .arg(&dev)
                .arg(&mount),
            STEP,
        )?;
        b.mounted = true;
        guard::register(&mount, &dev);
        guard::check(&mount)?;
        Ok(b)
    }

    /// Where the image files are.
    pub fn images_dir(&self) -> &Path {
        &self.images.path
    }

    /// Mount points of the first `n` filesystems.
    pub fn mounts(&self, n: usize) -> Vec<PathBuf> {
        self.fs.iter().take(n).map(|f| f.mount.clone()).collect()
    }

    /// Tears everything down and reports what is left (should be nothing).
    pub fn close(mut self) -> Leftovers {
        self.closed = true;
        let mut problems = Vec::new();
        if let Some(mut f) = self.other.take() {
            problems.extend(f.teardown());
        }
        while let Some(mut f) = self.fs.pop() {
            problems.extend(f.teardown());
        }
        problems.extend(self.images.teardown());
        if let Ok(meta) = fs::metadata(&self.dir) {
            remove_same_fs(&self.dir, meta.dev());
        }
        Leftovers {
            mounts: mounts_under(&self.dir),
            loops: loops_under(&self.dir),
            dir_exists: self.dir.exists(),
            problems,
        }
    }
}

impl Drop for Fixtures {
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        drop(self.other.take());
        while let Some(f) = self.fs.pop() {
            drop(f);
        }
        for p in self.images.teardown() {
            eprintln!("quiesce-bench: cleanup: {p}");
        }
        if let Ok(meta) = fs::metadata(&self.dir) {
            remove_same_fs(&self.dir, meta.dev());
        }
    }
}

/// The last resort (from the signal thread): thaw, lazily unmount and detach everything
/// registered, remove the scratch directory. Never blocks for long on a lock.
pub fn emergency_cleanup() {
    let Some(guard::Registered {
        scratch,
        owned,
        aux,
    }) = guard::registered(100)
    else {
        eprintln!("quiesce-bench: emergency cleanup: registry busy; run `fsfreeze -u`, `umount -l` and `losetup -d` on what is under /tmp/quiesce-bench-*");
        return;
    };
    for o in owned.iter().rev() {
        let _ = thaw(&o.mount);
        let _ = run_ok(Command::new("umount").arg("-l").arg(&o.mount), QUICK);
        let _ = run_ok(Command::new("losetup").arg("-d").arg(&o.loop_dev), QUICK);
        guard::unregister(&o.mount);
    }
    for a in aux {
        let _ = run_ok(Command::new("umount").arg("-l").arg(&a), QUICK);
        guard::unregister_aux(&a);
    }
    if let Some(dir) = scratch {
        if let Ok(meta) = fs::metadata(&dir) {
            remove_same_fs(&dir, meta.dev());
        }
    }
}
