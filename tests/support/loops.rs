//! Loop devices as disks: a `losetup --partscan` image (partitions added with `addpart`), and a
//! mount of any device under the scratch directory; both undone on drop.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::{run_ok, Scratch};

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
