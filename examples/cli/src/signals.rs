//! Signals as file descriptors (signalfd(2)), so that the wait loop can poll them together with
//! the controller's channel, and never runs code in a signal handler.

use std::io;
use std::mem::{size_of, MaybeUninit};
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};

/// The signals a session listens for while frozen.
pub const INTERRUPTS: [libc::c_int; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP];

/// Blocked signals, readable from a descriptor.
pub struct Signals {
    fd: OwnedFd,
    mask: libc::sigset_t,
}

/// One signal received: its number and the pid that sent it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received {
    pub signo: i32,
    pub pid: u32,
}

impl Signals {
    /// Blocks `signals` for this (single-threaded) process and opens a signalfd for them.
    /// They stay blocked afterwards, so a late SIGTERM cannot kill quiesce before it reports.
    pub fn block(signals: &[libc::c_int]) -> io::Result<Signals> {
        let mut mask = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigemptyset initialises the set it is given; the pointer is valid.
        unsafe { libc::sigemptyset(mask.as_mut_ptr()) };
        // SAFETY: initialised by sigemptyset just above.
        let mut mask = unsafe { mask.assume_init() };
        for &s in signals {
            // SAFETY: `mask` is an initialised sigset_t and `s` a signal number.
            unsafe { libc::sigaddset(&mut mask, s) };
        }
        // SAFETY: `mask` is initialised; the old mask is not needed (null).
        if unsafe { libc::sigprocmask(libc::SIG_BLOCK, &mask, std::ptr::null_mut()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: -1 asks for a new descriptor; `mask` is initialised.
        let fd = unsafe { libc::signalfd(-1, &mask, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: signalfd returned a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Signals { fd, mask })
    }

    /// The next pending signal, if any (never blocks).
    pub fn next(&self) -> Option<Received> {
        let mut info = MaybeUninit::<libc::signalfd_siginfo>::zeroed();
        let want = size_of::<libc::signalfd_siginfo>();
        // SAFETY: reads at most `want` bytes into `info`, which is that large.
        let n = unsafe {
            libc::read(
                std::os::fd::AsRawFd::as_raw_fd(&self.fd),
                info.as_mut_ptr().cast(),
                want,
            )
        };
        if n != want as isize {
            return None;
        }
        // SAFETY: the kernel filled the whole structure.
        let info = unsafe { info.assume_init() };
        Some(Received {
            signo: info.ssi_signo as i32,
            pid: info.ssi_pid,
        })
    }

    /// The descriptor to poll.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The blocked set, for children to unblock after fork.
    pub fn mask(&self) -> libc::sigset_t {
        self.mask
    }
}

/// Polls `fds` for input until the monotonic clock reaches `until_ns` (ns precision, ppoll).
/// Returns whether any descriptor is ready.
pub fn poll_until(
    fds: &mut [rustix::event::PollFd<'_>],
    until_ns: u64,
    cap_ns: Option<u64>,
) -> bool {
    let now = quiesce_core::linux::sys::now_ns();
    let mut left = until_ns.saturating_sub(now);
    if let Some(cap) = cap_ns {
        left = left.min(cap);
    }
    let ts = rustix::time::Timespec {
        tv_sec: (left / 1_000_000_000) as i64,
        tv_nsec: (left % 1_000_000_000) as i64,
    };
    matches!(rustix::event::poll(fds, Some(&ts)), Ok(n) if n > 0)
}
