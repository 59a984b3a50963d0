//! Stable status codes, shared by the Rust API, the C ABI and the CLI exit status.
//!
//! The numbers never change meaning once released. 11 and 12 keep the meaning that the
//! Alibaba Cloud snapshot plugin gives to `fsfreezer`'s exit codes.

/// The outcome of a call or of a whole session, as a stable number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Status {
    /// Frozen, acknowledged, thawed: the snapshot is file-system-consistent.
    Ok = 0,
    /// Bad command line or bad parameters (unknown option, bad timeout, nothing to freeze).
    Usage = 2,
    /// A named path does not exist, cannot be opened, is not a directory or not a mount point.
    BadTarget = 3,
    /// A named filesystem cannot be frozen (its type has no freeze support, or it is read-only).
    NotFreezable = 4,
    /// Not permitted: freezing needs CAP_SYS_ADMIN.
    Permission = 5,
    /// The plan cannot be carried out: a dependency cycle, or more targets than capacity.
    PlanRefused = 6,
    /// A hook was refused before anything ran: it fails the authenticity checks (owner, mode,
    /// symbolic link, not a regular file) or cannot be opened. Nothing ran, nothing was frozen.
    HookRefused = 7,
    /// Selection by disk: a filesystem (or the LVM volume group, md array or btrfs under it)
    /// spans disks in the group and disks outside it, so its snapshot would not be consistent
    /// whatever is frozen. Nothing was frozen (`--allow-partial-group` freezes the rest).
    PartialGroup = 8,
    /// A FIFREEZE failed; everything frozen before it was thawed.
    FreezeFailed = 11,
    /// A FITHAW failed: a filesystem may still be frozen.
    ThawFailed = 12,
    /// The deadline passed before the acknowledgement; everything was thawed.
    Timeout = 13,
    /// The controller went away without acknowledging; everything was thawed.
    NotAcknowledged = 14,
    /// A filesystem was already frozen by another holder (FIFREEZE returned EBUSY).
    FrozenByOther = 15,
    /// Someone else thawed one of our filesystems during the window (FITHAW returned EINVAL).
    Suspect = 16,
    /// The snapshot command failed or could not be started; everything was thawed.
    SnapshotFailed = 17,
    /// Interrupted by a signal while frozen; everything was thawed.
    Interrupted = 18,
    /// Application consistency was required but not reached (a hook failed before the freeze,
    /// or there is no hook to run); the hooks that were called got `freeze-failed`.
    NotAppConsistent = 19,
    /// The snapshot is as reported, but a hook failed after the thaw (its `thaw` or
    /// `freeze-failed` call): the application may not have resumed.
    ThawHookFailed = 20,
    /// A bug in quiesce.
    Internal = 70,
}

impl Status {
    /// Every status, in numeric order.
    pub const ALL: [Status; 19] = [
        Status::Ok,
        Status::Usage,
        Status::BadTarget,
        Status::NotFreezable,
        Status::Permission,
        Status::PlanRefused,
        Status::HookRefused,
        Status::PartialGroup,
        Status::FreezeFailed,
        Status::ThawFailed,
        Status::Timeout,
        Status::NotAcknowledged,
        Status::FrozenByOther,
        Status::Suspect,
        Status::SnapshotFailed,
        Status::Interrupted,
        Status::NotAppConsistent,
        Status::ThawHookFailed,
        Status::Internal,
    ];

    /// The stable number (also the CLI exit status).
    pub const fn code(self) -> u32 {
        self as u32
    }

    /// The status with this number, if there is one.
    pub fn from_code(code: u32) -> Option<Status> {
        Status::ALL.iter().copied().find(|s| s.code() == code)
    }

    /// A short, stable, machine-friendly name (`ok`, `freeze-failed`, ...).
    pub fn name(self) -> &'static str {
        let s = self.name_with_nul();
        s.strip_suffix('\0').unwrap_or(s)
    }

    /// The same, NUL-terminated, for the C ABI.
    pub const fn name_with_nul(self) -> &'static str {
        match self {
            Status::Ok => "ok\0",
            Status::Usage => "usage\0",
            Status::BadTarget => "bad-target\0",
            Status::NotFreezable => "not-freezable\0",
            Status::Permission => "permission\0",
            Status::PlanRefused => "plan-refused\0",
            Status::HookRefused => "hook-refused\0",
            Status::PartialGroup => "partial-group\0",
            Status::FreezeFailed => "freeze-failed\0",
            Status::ThawFailed => "thaw-failed\0",
            Status::Timeout => "timeout\0",
            Status::NotAcknowledged => "not-acknowledged\0",
            Status::FrozenByOther => "frozen-by-other\0",
            Status::Suspect => "suspect\0",
            Status::SnapshotFailed => "snapshot-failed\0",
            Status::Interrupted => "interrupted\0",
            Status::NotAppConsistent => "not-app-consistent\0",
            Status::ThawHookFailed => "thaw-hook-failed\0",
            Status::Internal => "internal\0",
        }
    }

    /// A one-line, static description for people.
    pub fn message(self) -> &'static str {
        let s = self.message_with_nul();
        s.strip_suffix('\0').unwrap_or(s)
    }

    /// The same, NUL-terminated, for the C ABI.
    pub const fn message_with_nul(self) -> &'static str {
        match self {
            Status::Ok => {
                "frozen, acknowledged and thawed: the snapshot is file-system-consistent\0"
            }
            Status::Usage => "bad usage or parameters\0",
            Status::BadTarget => "a named path is not a mount point that can be opened\0",
            Status::NotFreezable => "a named filesystem cannot be frozen\0",
            Status::Permission => "not permitted: freezing filesystems needs CAP_SYS_ADMIN\0",
            Status::PlanRefused => "the plan was refused (dependency cycle or too many targets)\0",
            Status::HookRefused => {
                "a hook was refused (not root-owned, writable by others, a symbolic link, or not a regular file); nothing ran, nothing was frozen\0"
            }
            Status::PartialGroup => {
                "a filesystem spans disks inside and outside the selected disks; nothing was frozen\0"
            }
            Status::FreezeFailed => "a freeze failed; everything frozen before it was thawed\0",
            Status::ThawFailed => "a thaw failed: a filesystem may still be frozen\0",
            Status::Timeout => {
                "the deadline passed before the snapshot was acknowledged; thawed, not consistent\0"
            }
            Status::NotAcknowledged => {
                "the controller went away without acknowledging; thawed, not consistent\0"
            }
            Status::FrozenByOther => "a filesystem was already frozen by another holder\0",
            Status::Suspect => {
                "a filesystem was thawed by someone else during the window; not consistent\0"
            }
            Status::SnapshotFailed => "the snapshot command failed; thawed, not consistent\0",
            Status::Interrupted => "interrupted by a signal; thawed, not consistent\0",
            Status::NotAppConsistent => {
                "application consistency was required but not reached; nothing was frozen\0"
            }
            Status::ThawHookFailed => {
                "a hook failed after the thaw: the application may not have resumed\0"
            }
            Status::Internal => "internal error in quiesce\0",
        }
    }

    /// How bad an outcome is, to pick the one status a session reports when several things
    /// went wrong: a possibly still frozen filesystem outranks everything.
    pub const fn severity(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::ThawHookFailed => 1,
            Status::NotAppConsistent => 2,
            Status::Suspect => 3,
            Status::NotAcknowledged => 4,
            Status::SnapshotFailed => 5,
            Status::Interrupted => 6,
            Status::Timeout => 7,
            Status::Usage
            | Status::BadTarget
            | Status::NotFreezable
            | Status::Permission
            | Status::PlanRefused
            | Status::HookRefused
            | Status::PartialGroup => 8,
            Status::FrozenByOther => 9,
            Status::FreezeFailed => 10,
            Status::Internal => 11,
            Status::ThawFailed => 12,
        }
    }

    /// The worse of two statuses.
    pub const fn worst(self, other: Status) -> Status {
        if other.severity() > self.severity() {
            other
        } else {
            self
        }
    }
}

/// How far a snapshot taken in the window can be trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Consistency {
    /// Not consistent: treat the copy as crash-consistent at best.
    None = 0,
    /// Every target was frozen for the whole window and the snapshot was acknowledged.
    FileSystem = 1,
    /// File-system-consistent, and the application hooks succeeded too.
    Application = 2,
}

impl Consistency {
    /// A stable name.
    pub const fn name(self) -> &'static str {
        match self {
            Consistency::None => "not-consistent",
            Consistency::FileSystem => "filesystem-consistent",
            Consistency::Application => "application-consistent",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_round_trip() {
        for (i, a) in Status::ALL.iter().enumerate() {
            assert_eq!(Status::from_code(a.code()), Some(*a));
            for b in &Status::ALL[i + 1..] {
                assert_ne!(a.code(), b.code());
                assert_ne!(a.name(), b.name());
            }
        }
        assert_eq!(Status::FreezeFailed.code(), 11);
        assert_eq!(Status::ThawFailed.code(), 12);
        assert_eq!(Status::from_code(1), None);
        assert_eq!(Status::HookRefused.code(), 7);
        assert_eq!(Status::PartialGroup.code(), 8);
        assert_eq!(Status::NotAppConsistent.code(), 19);
        assert_eq!(Status::ThawHookFailed.code(), 20);
    }

    #[test]
    fn all_is_in_numeric_order() {
        for w in Status::ALL.windows(2) {
            assert!(w[0].code() < w[1].code(), "{:?} {:?}", w[0], w[1]);
        }
    }

    #[test]
    fn a_failed_thaw_hook_never_hides_a_bad_snapshot() {
        for s in Status::ALL {
            if s != Status::Ok {
                assert_eq!(Status::ThawHookFailed.worst(s), s);
            }
        }
        assert_eq!(
            Status::NotAppConsistent.worst(Status::ThawHookFailed),
            Status::NotAppConsistent
        );
    }

    #[test]
    fn thaw_failure_outranks_everything() {
        for s in Status::ALL {
            assert_eq!(s.worst(Status::ThawFailed), Status::ThawFailed);
            assert_eq!(Status::Ok.worst(s), s);
        }
    }
}
