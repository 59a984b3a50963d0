//! The benchmark's own thaw (`FITHAW`), for cleanup and recovery: always after the guard.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::error::{bail, Context, Result};
use crate::guard;

/// `_IOWR('X', 120, int)`.
const FITHAW: libc::c_ulong = (3 << 30) | (4 << 16) | ((b'X' as libc::c_ulong) << 8) | 120;

/// Thaws `mount` if the guard allows it. Ok(true) if it was frozen, Ok(false) if it was not
/// (EINVAL).
pub fn thaw(mount: &Path) -> Result<bool> {
    guard::check(mount)?;
    let dir = File::options()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(mount)
        .ctx(|| format!("open {}", mount.display()))?;
    let mut arg: libc::c_int = 0;
    // SAFETY: FITHAW on a descriptor we own; the kernel ignores the int argument.
    let r = unsafe { libc::ioctl(dir.as_raw_fd(), FITHAW as _, &mut arg) };
    if r == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EINVAL) {
        return Ok(false);
    }
    bail!("FITHAW {}: {e}", mount.display())
}

#[cfg(test)]
mod tests {
    #[test]
    fn fithaw_number() {
        assert_eq!(super::FITHAW, 0xC004_5878);
    }
}
