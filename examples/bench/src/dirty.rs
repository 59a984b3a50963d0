//! Dirty data: written without fsync right before a cycle, and checked in /proc/meminfo to be
//! really dirty (not yet written back) when the cycle starts.

use std::fs::{self, File};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::error::{bail, Context, Result};
use crate::fixtures::MIB;

/// `Dirty:` plus `Writeback:` of /proc/meminfo, in KiB.
pub fn meminfo_dirty_kib() -> Result<u64> {
    let info = fs::read_to_string("/proc/meminfo").ctx(|| "read /proc/meminfo".into())?;
    let field = |name: &str| -> Option<u64> {
        info.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
    };
    match (field("Dirty:"), field("Writeback:")) {
        (Some(d), Some(w)) => Ok(d + w),
        _ => bail!("/proc/meminfo has no Dirty/Writeback lines"),
    }
}

/// `syncfs` on the filesystem holding `dir`.
pub fn syncfs(dir: &Path) -> Result<()> {
    let d = File::options()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(dir)
        .ctx(|| format!("open {}", dir.display()))?;
    // SAFETY: syncfs on a descriptor we own.
    if unsafe { libc::syncfs(d.as_raw_fd()) } != 0 {
        bail!(
            "syncfs {}: {}",
            dir.display(),
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

/// Writes `mib` MiB to `path` (replacing it) without fsync. Returns how much the system's
/// dirty + writeback memory grew meanwhile, in MiB (other processes move it too: a check, not
/// a measurement).
pub fn write_dirty(path: &Path, mib: u64) -> Result<f64> {
    let before = meminfo_dirty_kib()?;
    let mut f = File::create(path).ctx(|| format!("create {}", path.display()))?;
    let chunk = vec![0x6b_u8; MIB as usize];
    for _ in 0..mib {
        f.write_all(&chunk)
            .ctx(|| format!("write {}", path.display()))?;
    }
    drop(f);
    let after = meminfo_dirty_kib()?;
    Ok((after as f64 - before as f64) / 1024.0)
}
