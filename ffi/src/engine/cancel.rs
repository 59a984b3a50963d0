//! Cancelling a running session from another thread or a signal handler (`quiesce_cancel()`:
//! Go's context, Python's Ctrl-C).
//!
//! A [`Canceller`] is an atomic flag and an eventfd. [`Canceller::cancel`] sets the flag, then
//! writes to the eventfd: two async-signal-safe steps, no lock, no allocation. The session's
//! waits see it at once: the hooks' wait asks the flag every few milliseconds (and kills a
//! running hook's process group), the pre-sync and each wave of `FIFREEZE` poll the eventfd
//! with the freezers' answers (`quiesce_core::linux::freezer::Cancel`). What it ends, it ends
//! as a failure does: everything frozen is thawed (a `FIFREEZE` stuck in the kernel is
//! abandoned, and its freezer thaws it as soon as the call returns), and the status is
//! `Status::Cancelled`. A session is cancelled once and for all: the flag is never cleared.

use core::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::os::fd::{BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};

use quiesce_core::linux::freezer::Cancel;
use quiesce_core::linux::sys::Errno;
use rustix::event::{eventfd, EventfdFlags};

/// A session's cancellation: a flag and the eventfd that wakes its waits.
#[derive(Debug)]
pub struct Canceller {
    flag: AtomicBool,
    /// The eventfd (-1: none yet; then only the flag is seen, at the waits' next wake-up).
    wake: AtomicI32,
}

impl Default for Canceller {
    fn default() -> Self {
        Canceller::new()
    }
}

impl Canceller {
    /// Not cancelled, no eventfd yet.
    pub const fn new() -> Canceller {
        Canceller {
            flag: AtomicBool::new(false),
            wake: AtomicI32::new(-1),
        }
    }

    /// Makes the eventfd (once). Allocates nothing.
    pub fn enable(&self) -> Result<(), Errno> {
        if self.wake.load(Ordering::Acquire) >= 0 {
            return Ok(());
        }
        let fd = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)
            .map_err(|e| e.raw_os_error())?;
        self.wake.store(fd.into_raw_fd(), Ordering::Release);
        Ok(())
    }

    /// Cancels: sets the flag, then makes the eventfd readable. Async-signal-safe (an atomic
    /// store and one `write`), callable from any thread.
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::Release);
        let fd = self.wake.load(Ordering::Acquire);
        if fd >= 0 {
            // SAFETY: `fd` is the eventfd made by `enable`, open until this Canceller drops
            // (the caller may not cancel a session that is being cleaned up).
            let fd = unsafe { BorrowedFd::borrow_raw(fd) };
            let _ = rustix::io::write(fd, &1u64.to_ne_bytes());
        }
    }

    /// Whether it is cancelled.
    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }

    /// What the freezer client's waits poll, if the eventfd exists.
    pub fn token(&self) -> Option<Cancel<'_>> {
        let fd = self.wake.load(Ordering::Acquire);
        (fd >= 0).then(|| Cancel {
            flag: &self.flag,
            // SAFETY: the eventfd made by `enable`, open until this Canceller drops; the
            // borrow cannot outlive `self`.
            wake: unsafe { BorrowedFd::borrow_raw(fd) },
        })
    }
}

impl Drop for Canceller {
    fn drop(&mut self) {
        let fd = *self.wake.get_mut();
        if fd >= 0 {
            // SAFETY: the eventfd made by `enable`, owned by this Canceller and closed once.
            drop(unsafe { OwnedFd::from_raw_fd(fd) });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::event::{poll, PollFd, PollFlags};

    #[test]
    fn cancel_sets_the_flag_and_wakes_a_poll() {
        let c = Canceller::new();
        assert!(c.token().is_none());
        c.enable().unwrap();
        let t = c.token().unwrap();
        assert!(!t.is_set());
        let mut fds = [PollFd::new(&t.wake, PollFlags::IN)];
        let zero = rustix::time::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        assert_eq!(poll(&mut fds, Some(&zero)).unwrap(), 0);
        c.cancel();
        assert!(c.is_set() && t.is_set());
        assert_eq!(poll(&mut fds, Some(&zero)).unwrap(), 1);
        // It stays readable: every later wait ends at once too.
        assert_eq!(poll(&mut fds, Some(&zero)).unwrap(), 1);
    }
}
