//! One small wrapper per syscall, each documented with the man page it follows: rustix where it
//! has the call, libc (in this file only) where it has not.
//!
//! Errors are raw errno values (`i32`), so that they can be carried unchanged to the report,
//! the C ABI and the operator.

use core::ffi::{c_char, CStr};

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

/// Whether this process has CAP_SYS_ADMIN in its effective set, which `FIFREEZE` and
/// `FITHAW` need (capget(2), through rustix; no allocation, no `/proc`). A failed `capget`
/// counts as no.
pub fn has_cap_sys_admin() -> bool {
    use rustix::thread::{capabilities, CapabilitySet};
    capabilities(None).is_ok_and(|c| c.effective.contains(CapabilitySet::SYS_ADMIN))
}

/// Where [`fork`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forked {
    /// In the new process.
    Child,
    /// In the calling process; the child's pid.
    Parent(i32),
}

/// A `fork` by the raw system call: clone(2) with only `SIGCHLD` (the child's exit signal),
/// no stack, no flags, no thread-id pointers.
///
/// Unlike the C library's `fork()`, it runs nothing in either process: no `pthread_atfork`
/// handlers of the host (a Go runtime's, Python's `os.register_at_fork`, a library's), no
/// locking or resetting of the C library's own state (its malloc arenas, stdio). So the child
/// must not touch that state either.
///
/// # Safety
/// In the child, until it calls [`exit_now`] (or execs), only async-signal-safe code may run
/// that allocates nothing, takes no lock, never panics or unwinds, and does not use the C
/// library's idea of the current thread (`raise`, `abort`, `pthread_*`: it still names the
/// parent's thread). Any other thread of the parent does not exist in the child.
pub unsafe fn fork() -> Result<Forked, Errno> {
    let (no_stack, no_tid, no_tls) = (0usize, 0usize, 0usize);
    // SAFETY: clone(2) with flags = SIGCHLD and a null stack is fork(2): the child gets a copy
    // of the address space and continues on (a copy of) this stack, returning 0 from here.
    // The pointers are null, so the kernel writes no thread id anywhere. What the child may do
    // afterwards is this function's contract.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone,
            libc::SIGCHLD as libc::c_ulong,
            no_stack,
            no_tid,
            no_tid,
            no_tls,
        )
    };
    match r {
        0 => Ok(Forked::Child),
        pid if pid > 0 => Ok(Forked::Parent(pid as i32)),
        _ => Err(last_errno()),
    }
}

/// The errno left by the last failed libc call of this thread.
fn last_errno() -> Errno {
    // SAFETY: __errno_location() returns the valid address of this thread's errno.
    unsafe { *libc::__errno_location() }
}

/// _exit(2): ends the process now, running nothing of the C library's (no atexit handlers, no
/// stdio flush). Async-signal-safe: what a forked helper ends with.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit has no preconditions and does not return.
    unsafe { libc::_exit(code) }
}

/// close_range(2) of `first..=last` (Linux 5.9; rustix has no wrapper). Before 5.9 (or on
/// any error) it closes them one by one, up to the soft `RLIMIT_NOFILE` (at most 2^20).
/// Async-signal-safe, allocates nothing.
///
/// Only for a process that owns every descriptor in the range: a forked helper, or a hook's
/// child before `exec`.
pub fn close_range(first: u32, last: u32) {
    if first > last {
        return;
    }
    // SAFETY: close_range(2) takes two descriptor numbers and flags (0); it touches no memory.
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) };
    if r == 0 {
        return;
    }
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .map_or(4096, |c| c.min(1 << 20) as u32);
    for fd in first..=last.min(limit) {
        // SAFETY: close(2) on a number in a range this process owns (the contract above); one
        // that is not open gives EBADF, which is ignored.
        unsafe { libc::close(fd as i32) };
    }
}

/// Closes every descriptor except those in `keep` (sorted ascending). Async-signal-safe,
/// allocates nothing; as [`close_range`], only for a process that owns all its descriptors.
pub fn close_all_except(keep: &[i32]) {
    let mut next: u32 = 0;
    for &k in keep {
        let Ok(k) = u32::try_from(k) else { continue };
        if k > next {
            close_range(next, k - 1);
        }
        next = next.max(k.saturating_add(1));
    }
    close_range(next, u32::MAX);
}

/// A saved signal mask of the calling thread (see [`block_all_signals`]).
pub struct SignalMask(libc::sigset_t);

/// pthread_sigmask(2): blocks every signal in the calling thread and returns the mask it had,
/// for [`restore_signals`]. Around a [`fork`], so that the child starts with every signal
/// blocked and no handler of the host ever runs in it.
pub fn block_all_signals() -> Result<SignalMask, Errno> {
    let mut all = core::mem::MaybeUninit::<libc::sigset_t>::uninit();
    let mut old = core::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigfillset initialises `all`; pthread_sigmask reads it and writes the old mask
    // into `old`, which is initialised when it returns 0.
    unsafe {
        libc::sigfillset(all.as_mut_ptr());
        match libc::pthread_sigmask(libc::SIG_BLOCK, all.as_ptr(), old.as_mut_ptr()) {
            0 => Ok(SignalMask(old.assume_init())),
            e => Err(e),
        }
    }
}

/// pthread_sigmask(2): restores a mask saved by [`block_all_signals`].
pub fn restore_signals(mask: &SignalMask) {
    // SAFETY: sets the mask from an initialised sigset_t; the old one is not asked for.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &mask.0, core::ptr::null_mut()) };
}

/// Leaves the caller's session and process group (setsid(2)), moves to `/` (chdir(2): off
/// every mount point) and names the process (prctl(2) `PR_SET_NAME`), through rustix.
/// Async-signal-safe; failures are ignored (a helper works without them).
pub fn detach(name: &CStr) {
    let _ = rustix::process::setsid();
    let _ = rustix::process::chdir(c"/");
    let _ = rustix::thread::set_name(name);
}

/// Between a [`fork`] and an exec: sets the calling thread's signal mask to empty and every
/// signal's disposition (but `SIGKILL`'s and `SIGSTOP`'s) to the default (sigprocmask(2),
/// sigaction(2); a disposition set to "ignore" would survive the exec). Async-signal-safe;
/// numbers the C library reserves for itself are refused by it and left alone.
pub fn reset_signals() {
    let mut empty = core::mem::MaybeUninit::<libc::sigset_t>::uninit();
    let mut dfl = core::mem::MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: sigemptyset initialises `empty` before pthread_sigmask reads it; `dfl` is a
    // zeroed sigaction (empty mask, no flags) whose handler is set to SIG_DFL before sigaction
    // reads it. No old values are asked for.
    unsafe {
        libc::sigemptyset(empty.as_mut_ptr());
        libc::pthread_sigmask(libc::SIG_SETMASK, empty.as_ptr(), core::ptr::null_mut());
        (*dfl.as_mut_ptr()).sa_sigaction = libc::SIG_DFL;
        for sig in 1..=64 {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::sigaction(sig, dfl.as_ptr(), core::ptr::null_mut());
            }
        }
    }
}

/// dup2(2) of descriptor number `old` onto `new` (the copy is not close-on-exec). For a
/// forked child arranging its standard descriptors before an exec, where descriptors are
/// plain numbers it owns.
pub fn dup_onto(old: i32, new: i32) -> Result<(), Errno> {
    // SAFETY: dup2 takes two numbers and touches no memory; `new` is replaced, which is the
    // caller's intent (a child that owns all its descriptors).
    match unsafe { libc::dup2(old, new) } {
        r if r >= 0 => Ok(()),
        _ => Err(last_errno()),
    }
}

/// execveat(2) of the file open at descriptor number `fd` (`""`, `AT_EMPTY_PATH`): the file
/// that runs is the file that was checked. Returns only on failure, with its errno.
///
/// # Safety
/// `argv` and `envp` must point to NULL-terminated arrays of NUL-terminated strings that stay
/// valid for the call.
pub unsafe fn exec_fd(fd: i32, argv: *const *const c_char, envp: *const *const c_char) -> Errno {
    // SAFETY: the empty path is a valid C string; argv and envp are the caller's contract.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd,
            c"".as_ptr(),
            argv,
            envp,
            libc::AT_EMPTY_PATH,
        )
    };
    last_errno()
}

/// A set of signal numbers (`sigset_t`), built with sigemptyset(3)/sigaddset(3).
#[derive(Clone, Copy)]
pub struct SignalSet(libc::sigset_t);

impl SignalSet {
    /// The set of `signals` (numbers the C library refuses are left out).
    pub fn of(signals: &[i32]) -> SignalSet {
        let mut set = core::mem::MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigemptyset initialises the set before sigaddset changes it and before it is
        // read; the pointer is to a local of the right type.
        unsafe {
            libc::sigemptyset(set.as_mut_ptr());
            for &s in signals {
                libc::sigaddset(set.as_mut_ptr(), s);
            }
            SignalSet(set.assume_init())
        }
    }

    /// pthread_sigmask(2) `SIG_BLOCK` of this set in the calling thread (in a single-threaded
    /// process: the process's mask).
    pub fn block(&self) -> Result<(), Errno> {
        // SAFETY: reads an initialised set; the old mask is not asked for.
        match unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &self.0, core::ptr::null_mut()) } {
            0 => Ok(()),
            e => Err(e),
        }
    }

    /// pthread_sigmask(2) `SIG_UNBLOCK` of this set (e.g. in a child between fork and exec).
    /// Async-signal-safe.
    pub fn unblock(&self) -> Result<(), Errno> {
        // SAFETY: as for `block`.
        match unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, &self.0, core::ptr::null_mut()) } {
            0 => Ok(()),
            e => Err(e),
        }
    }

    /// signalfd(2): a new non-blocking, close-on-exec descriptor that reads the signals of
    /// this set (which must be blocked, or they are delivered as usual).
    pub fn signalfd(&self) -> Result<OwnedFd, Errno> {
        // SAFETY: -1 asks for a new descriptor; the set is initialised.
        let fd = unsafe { libc::signalfd(-1, &self.0, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) };
        if fd < 0 {
            return Err(last_errno());
        }
        // SAFETY: signalfd returned a new descriptor that nothing else owns.
        Ok(unsafe { <OwnedFd as rustix::fd::FromRawFd>::from_raw_fd(fd) })
    }
}

/// One signal read from a signalfd: its number and the pid that sent it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignalInfo {
    /// The signal number.
    pub signo: i32,
    /// The sender's pid (0 from the kernel).
    pub pid: u32,
}

/// read(2) of one `signalfd_siginfo` from a signalfd (see [`SignalSet::signalfd`]); `None`
/// when none is pending (or on any error).
pub fn read_signal(fd: BorrowedFd<'_>) -> Option<SignalInfo> {
    let mut buf = [0u8; core::mem::size_of::<libc::signalfd_siginfo>()];
    match rustix::io::read(fd, &mut buf) {
        Ok(n) if n == buf.len() => {}
        _ => return None,
    }
    // SAFETY: the kernel wrote a whole signalfd_siginfo into `buf` (checked length); it is
    // plain integers, read unaligned from the byte buffer.
    let info: libc::signalfd_siginfo = unsafe { core::ptr::read_unaligned(buf.as_ptr().cast()) };
    Some(SignalInfo {
        signo: info.ssi_signo as i32,
        pid: info.ssi_pid,
    })
}

/// strerror_r(3) (XSI): the C library's description of `errno` ("Device or resource busy"),
/// written into `buf`; empty if it has none or `buf` is too small. Allocates nothing.
pub fn describe_errno(errno: Errno, buf: &mut [u8]) -> &str {
    buf.fill(0);
    // SAFETY: the XSI strerror_r writes at most buf.len() bytes, NUL included, into the valid
    // buffer; on failure the buffer stays zeroed (an empty description).
    unsafe { libc::strerror_r(errno, buf.as_mut_ptr().cast(), buf.len()) };
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    core::str::from_utf8(&buf[..len]).unwrap_or("")
}

/// getenv(3): the value of environment variable `name`, without allocating. `None` when it is
/// unset. The value stays valid while nobody changes the environment (setenv/putenv): quiesce
/// never does, and a host that changes its environment from another thread while a session is
/// set up is already racing with every libc call that reads it.
pub fn getenv(name: &CStr) -> Option<&'static CStr> {
    // SAFETY: `name` is NUL-terminated; getenv returns NULL or a pointer into the environment,
    // a NUL-terminated string that lives until the environment is changed (see above).
    let p = unsafe { libc::getenv(name.as_ptr()) };
    if p.is_null() {
        return None;
    }
    // SAFETY: non-NULL, NUL-terminated, in the environment block (see above).
    Some(unsafe { CStr::from_ptr(p) })
}
