//! The errno values quiesce meets, defined once, and their symbolic names.
//!
//! The numbers are Linux's (the generic ones of `asm-generic/errno-base.h` and `errno.h`, the
//! same on x86_64 and aarch64); with the `linux` feature a test checks each against rustix's
//! [`Errno`](rustix::io::Errno), which is what the syscall wrappers in
//! [`linux::sys`](crate::linux::sys) see. They are raw `i32`s here because that is how they
//! travel: through the sans-IO session machine's events, the shared table's atomics, the report
//! and the C ABI (`os_error`). Inside the wrappers errors stay typed (`rustix::io::Errno`).

/// A raw errno value.
pub type Errno = i32;

/// Operation not permitted (no CAP_SYS_ADMIN).
pub const EPERM: Errno = 1;
/// No such file or directory.
pub const ENOENT: Errno = 2;
/// Interrupted system call.
pub const EINTR: Errno = 4;
/// Input/output error.
pub const EIO: Errno = 5;
/// Argument list too long (here: more descriptors than a helper can keep).
pub const E2BIG: Errno = 7;
/// Bad file descriptor (here also: a target index that does not exist).
pub const EBADF: Errno = 9;
/// No child processes (here also: the freezers are gone).
pub const ECHILD: Errno = 10;
/// Resource temporarily unavailable (here: a helper could not be forked).
pub const EAGAIN: Errno = 11;
/// Permission denied.
pub const EACCES: Errno = 13;
/// Device or resource busy: `FIFREEZE` on a filesystem that another holder has frozen.
pub const EBUSY: Errno = 16;
/// No such device.
pub const ENODEV: Errno = 19;
/// Not a directory.
pub const ENOTDIR: Errno = 20;
/// Invalid argument: `FITHAW` on a filesystem that is not frozen (someone else thawed it).
pub const EINVAL: Errno = 22;
/// Read-only file system.
pub const EROFS: Errno = 30;
/// File name too long.
pub const ENAMETOOLONG: Errno = 36;
/// Function not implemented (e.g. `statx` without `STATX_MNT_ID`, before Linux 5.8).
pub const ENOSYS: Errno = 38;
/// Too many levels of symbolic links.
pub const ELOOP: Errno = 40;
/// Value too large for defined data type (e.g. a mount id beyond 32 bits).
pub const EOVERFLOW: Errno = 75;
/// Operation not supported: `FIFREEZE` on a filesystem type that cannot be frozen.
pub const EOPNOTSUPP: Errno = 95;
/// Connection timed out (here: a helper's call did not return within its bound).
pub const ETIMEDOUT: Errno = 110;
/// Stale file handle.
pub const ESTALE: Errno = 116;
/// Operation cancelled: a `FIFREEZE` not issued because the caller cancelled, or a snapshot
/// command that must not start because its session is over.
pub const ECANCELED: Errno = 125;

/// The symbolic name of an errno quiesce knows (`"EBUSY"`), or `None`.
pub const fn name(errno: Errno) -> Option<&'static str> {
    Some(match errno {
        EPERM => "EPERM",
        ENOENT => "ENOENT",
        EINTR => "EINTR",
        EIO => "EIO",
        E2BIG => "E2BIG",
        EBADF => "EBADF",
        ECHILD => "ECHILD",
        EAGAIN => "EAGAIN",
        EACCES => "EACCES",
        EBUSY => "EBUSY",
        ENODEV => "ENODEV",
        ENOTDIR => "ENOTDIR",
        EINVAL => "EINVAL",
        EROFS => "EROFS",
        ENAMETOOLONG => "ENAMETOOLONG",
        ENOSYS => "ENOSYS",
        ELOOP => "ELOOP",
        EOVERFLOW => "EOVERFLOW",
        EOPNOTSUPP => "EOPNOTSUPP",
        ETIMEDOUT => "ETIMEDOUT",
        ESTALE => "ESTALE",
        ECANCELED => "ECANCELED",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_found_and_unknown_numbers_are_not() {
        assert_eq!(name(EBUSY), Some("EBUSY"));
        assert_eq!(name(EINVAL), Some("EINVAL"));
        assert_eq!(name(0), None);
        assert_eq!(name(4242), None);
    }

    #[cfg(feature = "linux")]
    #[test]
    fn the_numbers_are_the_kernels() {
        use rustix::io::Errno as E;
        let pairs = [
            (EPERM, E::PERM),
            (ENOENT, E::NOENT),
            (EINTR, E::INTR),
            (EIO, E::IO),
            (E2BIG, E::TOOBIG),
            (EBADF, E::BADF),
            (ECHILD, E::CHILD),
            (EAGAIN, E::AGAIN),
            (EACCES, E::ACCESS),
            (EBUSY, E::BUSY),
            (ENODEV, E::NODEV),
            (ENOTDIR, E::NOTDIR),
            (EINVAL, E::INVAL),
            (EROFS, E::ROFS),
            (ENAMETOOLONG, E::NAMETOOLONG),
            (ENOSYS, E::NOSYS),
            (ELOOP, E::LOOP),
            (EOVERFLOW, E::OVERFLOW),
            (EOPNOTSUPP, E::OPNOTSUPP),
            (ETIMEDOUT, E::TIMEDOUT),
            (ESTALE, E::STALE),
            (ECANCELED, E::CANCELED),
        ];
        for (ours, theirs) in pairs {
            assert_eq!(ours, theirs.raw_os_error(), "{:?}", name(ours));
            assert!(name(ours).is_some());
        }
    }
}
