//! The operator's rescue: thaw named filesystems, no session needed (`quiesce thaw`,
//! `quiesce_emergency_thaw()`). Each superblock is thawed once, however many of the paths name
//! it (a bind mount, the same device at two paths): a second `FITHAW` would only say "not
//! frozen" and miscount.

use std::os::fd::BorrowedFd;

use quiesce_core::errno::EINVAL;
use quiesce_core::linux::sys::{self, Errno};
use quiesce_core::mountinfo::Dev;
use quiesce_core::Status;

/// Superblocks one rescue remembers (beyond, a repeat is thawed again and reads "not frozen").
pub const MAX_RESCUED: usize = 256;

/// What `FITHAW` did to one filesystem.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Thawed {
    /// It was frozen; now it is not.
    Thawed,
    /// It was not frozen (nothing to do).
    NotFrozen,
    /// `FITHAW` failed with this errno.
    Failed(Errno),
}

/// One rescue over several paths.
#[derive(Debug)]
pub struct Rescue {
    seen: heapless::Vec<Dev, MAX_RESCUED>,
    /// How many were thawed.
    pub thawed: usize,
    status: Status,
}

impl Default for Rescue {
    fn default() -> Self {
        Rescue::new()
    }
}

impl Rescue {
    /// A rescue that has done nothing yet.
    pub fn new() -> Rescue {
        Rescue {
            seen: heapless::Vec::new(),
            thawed: 0,
            status: Status::Ok,
        }
    }

    /// Thaws the filesystem `dev` through `fd` (a mount root), unless an earlier path named
    /// the same superblock (`None`).
    pub fn thaw(&mut self, fd: BorrowedFd<'_>, dev: Dev) -> Option<Thawed> {
        if self.seen.contains(&dev) {
            return None;
        }
        let _ = self.seen.push(dev);
        let t = match sys::thaw(fd) {
            Ok(()) => Thawed::Thawed,
            Err(EINVAL) => Thawed::NotFrozen,
            Err(e) => Thawed::Failed(e),
        };
        match t {
            Thawed::Thawed => self.thawed += 1,
            Thawed::Failed(_) => self.note(Status::ThawFailed),
            Thawed::NotFrozen => {}
        }
        Some(t)
    }

    /// Notes a path that could not be thawed (`BadTarget`, `Usage`); the others still are.
    pub fn note(&mut self, status: Status) {
        let rank = |s: Status| match s {
            Status::ThawFailed => 3,
            Status::BadTarget => 2,
            Status::Usage => 1,
            _ => 0,
        };
        if rank(status) > rank(self.status) {
            self.status = status;
        }
    }

    /// The worst of it: a failed thaw beats a bad path beats bad usage.
    pub fn status(&self) -> Status {
        self.status
    }
}
