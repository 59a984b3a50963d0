//! One small wrapper per syscall, each documented with the man page it follows.
//!
//! Errors are raw errno values (`i32`), so that they can be carried unchanged to the report,
//! the C ABI and the operator.

use core::ffi::CStr;

use rustix::fd::{BorrowedFd, OwnedFd};
use rustix::fs::{AtFlags, Mode, OFlags, StatxAttributes, StatxFlags};
use rustix::ioctl::{opcode, Opcode, Updater};
use rustix::time::{clock_gettime, ClockId};

use crate::mountinfo::Dev;

pub use crate::errno::Errno;

/// `FIFREEZE = _IOWR('X', 119, int)` from `<linux/fs.h>`.
pub const FIFREEZE: Opcode = opcode::read_write::<core::ffi::c_int>(b'X', 119);
/// `FITHAW = _IOWR('X', 120, int)` from `<linux/fs.h>`.
pub const FITHAW: Opcode = opcode::read_write::<core::ffi::c_int>(b'X', 120);

fn errno(e: rustix::io::Errno) -> Errno {
    e.raw_os_error()
}

/// `ioctl(fd, FIFREEZE, 0)`: freezes the filesystem (superblock) that `fd` is on.
///
/// Needs CAP_SYS_ADMIN. Fails with `EBUSY` when the filesystem is already frozen, with
/// `EOPNOTSUPP` when its type cannot be frozen. May block for as long as flushing the dirty
/// data takes. See `Documentation/filesystems/vfs.rst` (`freeze_fs`) and ioctl_fs(2) family.
pub fn freeze(fd: BorrowedFd<'_>) -> Result<(), Errno> {
    // The kernel reads no argument (util-linux passes 0), but the opcode says "int, read and
    // written": pass a valid int, so that tools that check ioctl arguments (valgrind) agree.
    let mut unused: core::ffi::c_int = 0;
    // SAFETY: the opcode is the one from <linux/fs.h>; the argument is a valid, writable int
    // that outlives the call.
    unsafe { rustix::ioctl::ioctl(fd, Updater::<FIFREEZE, _>::new(&mut unused)) }.map_err(errno)
}

/// `ioctl(fd, FITHAW, 0)`: thaws the filesystem that `fd` is on.
///
/// Fails with `EINVAL` when the filesystem is not frozen.
pub fn thaw(fd: BorrowedFd<'_>) -> Result<(), Errno> {
    let mut unused: core::ffi::c_int = 0;
    // SAFETY: as for `freeze`; FITHAW reads no argument either.
    unsafe { rustix::ioctl::ioctl(fd, Updater::<FITHAW, _>::new(&mut unused)) }.map_err(errno)
}

/// syncfs(2): writes back the dirty data of the filesystem that `fd` is on.
pub fn syncfs(fd: BorrowedFd<'_>) -> Result<(), Errno> {
    rustix::fs::syncfs(fd).map_err(errno)
}

/// clock_gettime(2) with `CLOCK_MONOTONIC`, in nanoseconds.
pub fn now_ns() -> u64 {
    let t = clock_gettime(ClockId::Monotonic);
    (t.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(t.tv_nsec as u64)
}

/// Sleeps until the monotonic clock reaches `until_ns` (poll(2) with no descriptors; an
/// interruption just returns early, and callers loop).
pub fn sleep_until(until_ns: u64) {
    let left = until_ns.saturating_sub(now_ns());
    if left == 0 {
        return;
    }
    let ts = rustix::time::Timespec {
        tv_sec: (left / 1_000_000_000) as i64,
        tv_nsec: (left % 1_000_000_000) as i64,
    };
    let _ = rustix::event::poll(&mut [], Some(&ts));
}

/// open(2) of a directory, read-only, close-on-exec: the descriptor a freeze is issued on.
///
/// `ENOTDIR` when `path` is not a directory.
pub fn open_dir(path: &CStr) -> Result<OwnedFd, Errno> {
    rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
    )
    .map_err(errno)
}

/// open(2) with `O_PATH`: a handle to any file, with no side effects, for statx.
pub fn open_path(path: &CStr) -> Result<OwnedFd, Errno> {
    rustix::fs::open(path, OFlags::PATH | OFlags::CLOEXEC, Mode::empty()).map_err(errno)
}

/// Which mount an opened descriptor is on, and whether it is that mount's root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MountIdentity {
    /// The mount id, as in the first field of mountinfo.
    pub mount_id: u64,
    /// Whether the descriptor is the root of its mount (a mount point).
    pub is_mount_root: bool,
    /// `st_dev` of the file (differs from the superblock's for btrfs subvolumes).
    pub dev: Dev,
    /// Whether the file is a directory.
    pub is_dir: bool,
}

/// statx(2) on a descriptor (`AT_EMPTY_PATH`) with `STATX_MNT_ID` and
/// `STATX_ATTR_MOUNT_ROOT`. Needs Linux 5.8; on older kernels it fails with `ENOSYS`.
pub fn identify(fd: BorrowedFd<'_>) -> Result<MountIdentity, Errno> {
    let st = rustix::fs::statx(
        fd,
        c"",
        AtFlags::EMPTY_PATH,
        StatxFlags::BASIC_STATS | StatxFlags::MNT_ID,
    )
    .map_err(errno)?;
    let has_mnt_id = st.stx_mask & StatxFlags::MNT_ID.bits() != 0;
    let has_root_attr = st.stx_attributes_mask.contains(StatxAttributes::MOUNT_ROOT);
    if !has_mnt_id || !has_root_attr {
        return Err(rustix::io::Errno::NOSYS.raw_os_error());
    }
    Ok(MountIdentity {
        mount_id: st.stx_mnt_id,
        is_mount_root: st.stx_attributes.contains(StatxAttributes::MOUNT_ROOT),
        dev: Dev {
            major: st.stx_dev_major,
            minor: st.stx_dev_minor,
        },
        is_dir: u32::from(st.stx_mode) & 0o170000 == 0o040000,
    })
}

/// read(2) a small file whole into `buf` (sysfs attributes). Returns the bytes read.
pub fn read_file<'b>(path: &CStr, buf: &'b mut [u8]) -> Result<&'b [u8], Errno> {
    let fd =
        rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).map_err(errno)?;
    let mut len = 0;
    while len < buf.len() {
        match rustix::io::read(&fd, &mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(errno(e)),
        }
    }
    Ok(&buf[..len])
}
