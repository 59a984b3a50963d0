//! The live [`SysTree`]: `/sys` and `/dev` read under a root directory descriptor, every path
//! resolved inside that root (`openat2` with `RESOLVE_IN_ROOT`), so that a caller can point the
//! block-device graph at `/` or at another system's root (a container's, a chroot).

use core::ffi::CStr;
use core::mem::MaybeUninit;

use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{FileType, Mode, OFlags, RawDir, ResolveFlags};

use crate::mountinfo::Dev;
use crate::sysfs::{SysTree, TreeError};

/// A root directory to read `/sys` and `/dev` under.
#[derive(Debug)]
pub struct RootDir {
    fd: OwnedFd,
}

fn os(e: rustix::io::Errno) -> TreeError {
    match e {
        rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR => TreeError::NotFound,
        rustix::io::Errno::NAMETOOLONG => TreeError::TooLong,
        rustix::io::Errno::LOOP => TreeError::TooManyLinks,
        e => TreeError::Os(e.raw_os_error()),
    }
}

fn relative(path: &str) -> &str {
    let p = path.trim_start_matches('/');
    if p.is_empty() {
        "."
    } else {
        p
    }
}

impl RootDir {
    /// Opens `path` (usually `/`) as the root.
    pub fn open(path: &CStr) -> Result<RootDir, TreeError> {
        let fd = rustix::fs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(os)?;
        Ok(RootDir { fd })
    }

    /// Takes an open directory descriptor as the root.
    pub fn from_fd(fd: OwnedFd) -> RootDir {
        RootDir { fd }
    }

    fn open_at(&self, path: &str, flags: OFlags) -> Result<OwnedFd, TreeError> {
        rustix::fs::openat2(
            self.fd.as_fd(),
            relative(path),
            flags | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        )
        .map_err(os)
    }
}

impl SysTree for RootDir {
    fn read<'b>(&self, path: &str, buf: &'b mut [u8]) -> Result<&'b [u8], TreeError> {
        let fd = self.open_at(path, OFlags::RDONLY)?;
        let mut len = 0;
        while len < buf.len() {
            match rustix::io::read(&fd, &mut buf[len..]) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(os(e)),
            }
        }
        Ok(&buf[..len])
    }

    fn list(&self, path: &str, f: &mut dyn FnMut(&str)) -> Result<(), TreeError> {
        let fd = self.open_at(path, OFlags::RDONLY | OFlags::DIRECTORY)?;
        let mut dbuf = [MaybeUninit::<u8>::uninit(); 2048];
        let mut entries = RawDir::new(&fd, &mut dbuf);
        while let Some(entry) = entries.next() {
            let entry = entry.map_err(os)?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            if let Ok(name) = core::str::from_utf8(name) {
                f(name);
            }
        }
        Ok(())
    }

    fn read_link<'b>(&self, path: &str, buf: &'b mut [u8]) -> Result<&'b str, TreeError> {
        let fd = self.open_at(path, OFlags::PATH | OFlags::NOFOLLOW)?;
        let empty: &CStr = c"";
        let len = rustix::fs::readlinkat_raw(&fd, empty, &mut buf[..]).map_err(os)?;
        if len == buf.len() {
            return Err(TreeError::TooLong);
        }
        core::str::from_utf8(&buf[..len]).map_err(|_| TreeError::Malformed)
    }

    fn block_dev(&self, path: &str) -> Result<Dev, TreeError> {
        let fd = self.open_at(path, OFlags::PATH)?;
        let st = rustix::fs::fstat(&fd).map_err(os)?;
        if FileType::from_raw_mode(st.st_mode) != FileType::BlockDevice {
            return Err(TreeError::NotBlockDevice);
        }
        Ok(Dev {
            major: rustix::fs::major(st.st_rdev),
            minor: rustix::fs::minor(st.st_rdev),
        })
    }

    fn file_dev(&self, path: &str) -> Result<Dev, TreeError> {
        let fd = self.open_at(path, OFlags::PATH)?;
        let st = rustix::fs::fstat(&fd).map_err(os)?;
        Ok(Dev {
            major: rustix::fs::major(st.st_dev),
            minor: rustix::fs::minor(st.st_dev),
        })
    }
}
