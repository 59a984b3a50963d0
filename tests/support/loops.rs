//! Loop devices as disks: a `losetup --partscan` image (partitions added with `addpart`), and a
//! mount of any device under the scratch directory; both undone on drop. [`DiskSet`]: the disk
//! tests' layout of them.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::{run_ok, FsKind, Scratch, TestFs};

const STEP: Duration = Duration::from_secs(60);

/// A sparse image on a loop device with partition scanning; detached on drop.
pub struct LoopDisk {
    /// `/dev/loopN`.
    pub dev: PathBuf,
}

impl LoopDisk {
    /// A `mib` MiB image `NAME.img` in `scratch`, on a new loop device.
    pub fn new(scratch: &Scratch, name: &str, mib: u64) -> LoopDisk {
        let img = scratch.path(format!("{name}.img"));
        fs::File::create(&img)
            .and_then(|f| f.set_len(mib << 20))
            .expect("make an image");
        let out = run_ok(
            Command::new("losetup")
                .args(["--find", "--show", "--partscan"])
                .arg(&img),
            STEP,
        )
        .unwrap_or_else(|e| panic!("losetup: {e}"));
        LoopDisk {
            dev: PathBuf::from(out.trim()),
        }
    }

    /// Adds partition `n` (BLKPG, as `addpart`) and waits for its node.
    pub fn add_partition(&self, n: u32, start_sector: u64, sectors: u64) -> PathBuf {
        run_ok(
            Command::new("addpart").arg(&self.dev).args([
                n.to_string(),
                start_sector.to_string(),
                sectors.to_string(),
            ]),
            STEP,
        )
        .unwrap_or_else(|e| panic!("addpart: {e}"));
        let node = PathBuf::from(format!("{}p{n}", self.dev.display()));
        let end = Instant::now() + Duration::from_secs(10);
        while !node.exists() {
            assert!(Instant::now() < end, "{} did not appear", node.display());
            std::thread::sleep(Duration::from_millis(50));
        }
        node
    }
}

impl Drop for LoopDisk {
    fn drop(&mut self) {
        if let Err(e) = run_ok(Command::new("losetup").arg("-d").arg(&self.dev), STEP) {
            eprintln!("loops: {e}");
        }
    }
}

/// A mount made here; unmounted on drop.
pub struct Mount {
    /// Where.
    pub at: PathBuf,
}

impl Mount {
    /// Mounts `dev` at `at` (made if missing).
    pub fn new(dev: &Path, at: PathBuf) -> Mount {
        fs::create_dir_all(&at).expect("mkdir");
        run_ok(Command::new("mount").arg(dev).arg(&at), STEP)
            .unwrap_or_else(|e| panic!("mount {}: {e}", dev.display()));
        crate::guard::register(&at);
        Mount { at }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        crate::guard::unregister(&self.at);
        if run_ok(Command::new("umount").arg(&self.at), STEP).is_err() {
            let _ = run_ok(Command::new("umount").arg("-l").arg(&self.at), STEP);
        }
    }
}

/// Runs `cmd ARGS DEVS` (mkfs.*), panicking on failure.
pub fn mkfs(cmd: &str, args: &[&str], devs: &[&Path]) {
    run_ok(Command::new(cmd).args(args).args(devs), STEP).unwrap_or_else(|e| panic!("{cmd}: {e}"));
}

/// Loop devices as disks, the layout of the disk tests: a disk with two partitions (ext4 `p1`,
/// xfs `p2`), btrfs RAID1 over two disks (`pool` on `b1` and `b2`), and a disk (`host`'s loop
/// device) whose ext4 holds the image of another loop filesystem (`inner`).
pub struct DiskSet {
    // Field order is teardown order: the inner filesystem before the one holding its image.
    pub inner: TestFs,
    /// The first partition's node (`/dev/loopNp1`), mounted at `p1`.
    pub p1_dev: PathBuf,
    pub host: TestFs,
    pub pool: Mount,
    pub p2: Mount,
    pub p1: Mount,
    pub b2: LoopDisk,
    pub b1: LoopDisk,
    pub parts: LoopDisk,
    pub scratch: Scratch,
}

impl DiskSet {
    /// Builds the layout under a new scratch directory.
    pub fn new() -> DiskSet {
        let scratch = Scratch::new();
        let parts = LoopDisk::new(&scratch, "parts", 400);
        let d1 = parts.add_partition(1, 2048, 64 << 11);
        let d2 = parts.add_partition(2, 2048 + (64 << 11), 320 << 11);
        mkfs("mkfs.ext4", &["-q", "-F"], &[&d1]);
        mkfs("mkfs.xfs", &["-q", "-f"], &[&d2]);
        let p1 = Mount::new(&d1, scratch.path("p1"));
        let p2 = Mount::new(&d2, scratch.path("p2"));
        let b1 = LoopDisk::new(&scratch, "b1", 160);
        let b2 = LoopDisk::new(&scratch, "b2", 160);
        mkfs(
            "mkfs.btrfs",
            &["-q", "-f", "-d", "raid1", "-m", "raid1"],
            &[&b1.dev, &b2.dev],
        );
        let pool = Mount::new(&b1.dev, scratch.path("pool"));
        let host = TestFs::new(&scratch, "host", FsKind::Ext4);
        let inner = TestFs::new_in(&host.mount, &scratch.dir, "inner", FsKind::Ext4);
        DiskSet {
            p1_dev: d1,
            inner,
            host,
            pool,
            p2,
            p1,
            b2,
            b1,
            parts,
            scratch,
        }
    }
}

impl Default for DiskSet {
    fn default() -> Self {
        Self::new()
    }
}
