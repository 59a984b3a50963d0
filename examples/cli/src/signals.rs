//! Signals as file descriptors (signalfd(2)), so that the wait loop can poll them together with
//! the controller's channel, and never runs code in a signal handler.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use quiesce_core::linux::sys::{self, SignalSet};

/// The signals a session listens for while frozen.
pub const INTERRUPTS: [libc::c_int; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP];

/// Blocked signals, readable from a descriptor.
pub struct Signals {
    fd: OwnedFd,
    mask: SignalSet,
}

/// One signal received: its number and the pid that sent it.
pub type Received = sys::SignalInfo;

impl Signals {
    /// Blocks `signals` for this (single-threaded) process and opens a signalfd for them.
    /// They stay blocked afterwards, so a late SIGTERM cannot kill quiesce before it reports.
    pub fn block(signals: &[libc::c_int]) -> io::Result<Signals> {
        let mask = SignalSet::of(signals);
        mask.block().map_err(io::Error::from_raw_os_error)?;
        let fd = mask.signalfd().map_err(io::Error::from_raw_os_error)?;
        Ok(Signals { fd, mask })
    }

    /// The next pending signal, if any (never blocks).
    pub fn next(&self) -> Option<Received> {
        sys::read_signal(self.fd.as_fd())
    }

    /// The descriptor to poll.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The blocked set, for children to unblock after fork.
    pub fn mask(&self) -> SignalSet {
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
