//! Storage dependencies from sysfs: where the blocks of a filesystem really live.
//!
//! - A loop device `7:N` has `/sys/dev/block/7:N/loop/backing_file`: a file on another
//!   filesystem, which must be frozen *after* the loop filesystem (ARCHITECTURE.md,
//!   "Order of freezing").
//! - A stacked device (device-mapper, md) lists its lower devices in
//!   `/sys/dev/block/MAJ:MIN/slaves/`; their backing files count too.

use core::ffi::CStr;
use core::fmt::Write as _;

use rustix::fs::{Mode, OFlags, RawDir};

use super::sys::{read_file, Errno};
use crate::mountinfo::Dev;

/// How deep stacked devices are followed.
const MAX_DEPTH: usize = 8;
/// Longest backing-file path (PATH_MAX).
const PATH_MAX: usize = 4096;

type SysPath = heapless::String<128>;

fn sys_path(args: core::fmt::Arguments<'_>) -> Option<SysPath> {
    let mut s = SysPath::new();
    s.write_fmt(args).ok()?;
    s.push('\0').ok()?;
    Some(s)
}

fn as_cstr(s: &SysPath) -> Option<&CStr> {
    CStr::from_bytes_with_nul(s.as_bytes()).ok()
}

/// Parses the `MAJ:MIN` text of a sysfs `dev` attribute (one definition, in [`crate::sysfs`]).
pub use crate::sysfs::parse_dev;

/// Calls `f` with every backing file under block device `dev` (its own, if it is a loop
/// device, and those of the devices it is stacked on). Devices without sysfs entries (e.g.
/// btrfs's anonymous devices, `0:N`) have none. Returns the first error that stopped a
/// lookup, if any, after visiting everything it could.
pub fn for_each_backing_file(dev: Dev, f: &mut dyn FnMut(&CStr)) -> Result<(), Errno> {
    visit(dev, f, 0)
}

fn visit(dev: Dev, f: &mut dyn FnMut(&CStr), depth: usize) -> Result<(), Errno> {
    if depth > MAX_DEPTH || dev.major == 0 {
        return Ok(());
    }
    let mut result = Ok(());
    if let Some(p) = sys_path(format_args!(
        "/sys/dev/block/{}:{}/loop/backing_file",
        dev.major, dev.minor
    )) {
        let mut buf = [0u8; PATH_MAX + 1];
        if let Some(c) = as_cstr(&p) {
            if let Ok(text) = read_file(c, &mut buf[..PATH_MAX]) {
                let len = text.strip_suffix(b"\n").unwrap_or(text).len();
                // buf[len] is within PATH_MAX + 1 and becomes the terminator.
                buf[len] = 0;
                if let Ok(path) = CStr::from_bytes_with_nul(&buf[..=len]) {
                    if !path.is_empty() {
                        f(path);
                    }
                }
            }
        }
    }
    let Some(slaves) = sys_path(format_args!(
        "/sys/dev/block/{}:{}/slaves",
        dev.major, dev.minor
    )) else {
        return result;
    };
    let Some(c) = as_cstr(&slaves) else {
        return result;
    };
    let Ok(dir) = rustix::fs::open(
        c,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return result;
    };
    let mut dbuf = [core::mem::MaybeUninit::<u8>::uninit(); 2048];
    let mut entries = RawDir::new(&dir, &mut dbuf);
    while let Some(entry) = entries.next() {
        let Ok(entry) = entry else { break };
        let name = entry.file_name().to_bytes();
        if name.starts_with(b".") {
            continue;
        }
        let Ok(name) = core::str::from_utf8(name) else {
            continue;
        };
        let Some(p) = sys_path(format_args!("/sys/class/block/{name}/dev")) else {
            continue;
        };
        let Some(c) = as_cstr(&p) else { continue };
        let mut b = [0u8; 32];
        match read_file(c, &mut b).map(parse_dev) {
            Ok(Some(lower)) => {
                if let Err(e) = visit(lower, f, depth + 1) {
                    result = result.and(Err(e));
                }
            }
            Ok(None) => {}
            Err(e) => result = result.and(Err(e)),
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sysfs_dev_text() {
        assert_eq!(parse_dev(b"7:3\n"), Some(Dev { major: 7, minor: 3 }));
        assert_eq!(
            parse_dev(b"259:0"),
            Some(Dev {
                major: 259,
                minor: 0
            })
        );
        for bad in [
            &b""[..],
            b":",
            b"7:",
            b":3",
            b"a:b",
            b"7:3:1",
            b"99999999999:1",
        ] {
            assert_eq!(parse_dev(bad), None, "{bad:?}");
        }
    }
}
