//! The baseline: util-linux `fsfreeze`, one `fsfreeze -f` process per mount, the snapshot, then
//! one `fsfreeze -u` per mount (in reverse), each process spawned and waited for in turn.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::cycle::Cycle;
use crate::error::{bail, Result};
use crate::footprint::peak_rss_kib;
use crate::guard;
use crate::process::{run, run_ok, Exit};
use crate::thaw::thaw;

const STEP: Duration = Duration::from_secs(30);

pub struct Fsfreeze {
    pub bin: PathBuf,
}

/// Mounts `fsfreeze -f` froze; thawed (FITHAW) on drop, e.g. when a step fails.
struct Frozen(Vec<PathBuf>);

impl Drop for Frozen {
    fn drop(&mut self) {
        while let Some(m) = self.0.pop() {
            if let Err(e) = thaw(&m) {
                eprintln!("quiesce-bench: cleanup: {e}");
            }
        }
    }
}

impl Fsfreeze {
    /// `fsfreeze --version`.
    pub fn version(&self) -> String {
        run(Command::new(&self.bin).arg("--version"), STEP)
            .map(|o| o.stdout.trim().to_owned())
            .unwrap_or_else(|e| format!("unknown ({e})"))
    }

    /// `fsfreeze -f MOUNT` (guarded).
    pub fn freeze(&self, mount: &Path) -> Result<Exit> {
        guard::check(mount)?;
        Ok(run_ok(Command::new(&self.bin).arg("-f").arg(mount), STEP)?.exit)
    }

    /// `fsfreeze -u MOUNT` (guarded).
    pub fn thaw(&self, mount: &Path) -> Result<Exit> {
        guard::check(mount)?;
        Ok(run_ok(Command::new(&self.bin).arg("-u").arg(mount), STEP)?.exit)
    }

    /// Peak RSS (KiB) of `fsfreeze -f MOUNT` and `fsfreeze -u MOUNT` (the larger), under
    /// GNU time.
    pub fn peak_rss_kib(&self, time: &Path, mount: &Path) -> Result<u64> {
        guard::check(mount)?;
        let frozen = Frozen(vec![mount.to_path_buf()]);
        let mut peak = 0;
        for op in ["-f", "-u"] {
            let argv = [self.bin.clone().into_os_string(), op.into(), mount.into()];
            peak = peak.max(peak_rss_kib(time, &argv)?);
        }
        drop(frozen);
        Ok(peak)
    }

    /// One cycle: freeze each mount, run `snapshot`, thaw each in reverse. The wall time covers
    /// every process spawn.
    pub fn cycle(&self, mounts: &[PathBuf], snapshot: &[OsString]) -> Result<Cycle> {
        for m in mounts {
            guard::check(m)?;
        }
        let Some((prog, args)) = snapshot.split_first() else {
            bail!("no snapshot command");
        };
        let mut frozen = Frozen(Vec::new());
        let t = Instant::now();
        for m in mounts {
            // Recorded before the call: a failed or timed-out freeze is thawed too.
            frozen.0.push(m.clone());
            self.freeze(m)?;
        }
        let snap = run(Command::new(prog).args(args), STEP)?;
        if !snap.exit.success() {
            bail!("the snapshot command failed: {}", snap.exit.describe());
        }
        while let Some(m) = frozen.0.last().cloned() {
            self.thaw(&m)?;
            frozen.0.pop();
        }
        Ok(Cycle {
            wall: t.elapsed(),
            phases: None,
        })
    }
}
