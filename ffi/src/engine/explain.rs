//! The one message for a session's outcome: what happened, naming the filesystem concerned
//! (and the hook concerned), and what to do. The CLI's report and the C ABI's
//! `quiesce_error()` both show [`Explain`], so the same outcome reads the same from every
//! front end. A `Display`: the runtime makes a `String` of it, the C ABI formats it into the
//! session storage.

use core::fmt;
use core::time::Duration;

use quiesce_core::mountinfo::Dev;
use quiesce_core::session::Outcome;
use quiesce_core::{Consistency, Status};

use super::hooks::Reason;
use super::text::{Lossy, Millis, Seconds};
use super::ErrnoName;

/// One target, as the message needs it.
#[derive(Clone, Copy, Debug)]
pub struct Line<'a> {
    /// The mount point it is frozen through.
    pub mount_point: &'a [u8],
    /// Its filesystem type.
    pub fs_type: &'a [u8],
    /// Its superblock.
    pub dev: Dev,
    /// Where it stands.
    pub outcome: Outcome,
    /// The errno of its failed call, or 0.
    pub errno: i32,
    /// How long its `FIFREEZE` took (ns).
    pub freeze_ns: u64,
}

impl Line<'_> {
    /// `/mnt/a (ext4 7:0)`.
    fn name(&self) -> Name<'_> {
        Name(self)
    }
}

struct Name<'a>(&'a Line<'a>);

impl fmt::Display for Name<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.0;
        write!(
            f,
            "{} ({} {})",
            Lossy(t.mount_point),
            Lossy(t.fs_type),
            t.dev
        )
    }
}

/// The targets of a session, in freeze order.
pub trait Targets {
    /// How many.
    fn count(&self) -> usize;
    /// Target `i`.
    fn line(&self, i: usize) -> Option<Line<'_>>;
}

fn lines(t: &dyn Targets) -> impl Iterator<Item = (usize, Line<'_>)> + Clone + '_ {
    (0..t.count()).filter_map(move |i| t.line(i).map(|l| (i, l)))
}

fn first(t: &dyn Targets, o: Outcome) -> Option<usize> {
    lines(t).find(|(_, l)| l.outcome == o).map(|(i, _)| i)
}

/// The target whose `FIFREEZE` took longest (or was still in flight at the deadline).
pub fn slowest(t: &dyn Targets) -> Option<usize> {
    lines(t)
        .filter(|(_, l)| l.freeze_ns > 0 || l.outcome == Outcome::InFlight)
        .max_by_key(|(_, l)| (l.outcome == Outcome::InFlight, l.freeze_ns))
        .map(|(i, _)| i)
}

/// The target a status concerns (the one the message names), if one does.
pub fn concerned(status: Status, t: &dyn Targets) -> Option<usize> {
    match status {
        Status::FreezeFailed | Status::FrozenByOther => {
            first(t, Outcome::FreezeFailed).or_else(|| first(t, Outcome::NotCovered))
        }
        Status::ThawFailed => first(t, Outcome::ThawFailed),
        Status::Suspect => first(t, Outcome::ThawedByOther),
        Status::Timeout => slowest(t).or_else(|| first(t, Outcome::ThawedByGuardian)),
        Status::Cancelled => first(t, Outcome::InFlight),
        Status::Ok | Status::ThawHookFailed => None,
        _ => lines(t).find(|(_, l)| l.errno != 0).map(|(i, _)| i),
    }
}

/// The message for a session that ran (froze, or tried to).
pub struct Explain<'a> {
    /// The final status.
    pub status: Status,
    /// The final level, with the hooks.
    pub consistency: Consistency,
    /// Why it is file-system-consistent and not more (said when hooks are configured).
    pub reason: Option<Reason<'a>>,
    /// Whether hooks are configured.
    pub hooks: bool,
    /// The first failed hook call after the thaw, described.
    pub after_failure: Option<&'a str>,
    /// The deadline.
    pub timeout: Duration,
    /// The targets.
    pub targets: &'a dyn Targets,
}

impl fmt::Display for Explain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.session(f)?;
        if self.hooks && self.consistency == Consistency::FileSystem {
            if let Some(why) = self.reason {
                write!(f, "; not application-consistent: {}", why.text())?;
            }
        }
        match self.after_failure {
            Some(after) => write!(f, "; {after}"),
            None => Ok(()),
        }
    }
}

impl Explain<'_> {
    fn session(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.targets;
        let line = |i: Option<usize>| i.and_then(|i| t.line(i));
        let not_covered = || lines(t).filter(|(_, l)| l.outcome == Outcome::NotCovered);
        match self.status {
            Status::Ok | Status::ThawHookFailed => {
                let frozen = t.count() - not_covered().count();
                write!(
                    f,
                    "froze {frozen} filesystem{}, snapshot acknowledged, thawed: {}",
                    if frozen == 1 { "" } else { "s" },
                    if self.consistency == Consistency::Application {
                        "application-consistent (the hooks succeeded)"
                    } else {
                        "file-system-consistent"
                    }
                )?;
                for (k, (_, l)) in not_covered().enumerate() {
                    let sep = if k == 0 { "; the snapshot does not cover " } else { ", " };
                    write!(f, "{sep}{}", l.name())?;
                }
                if not_covered().next().is_some() {
                    f.write_str(" (already frozen by another holder, skipped)")?;
                }
                Ok(())
            }
            Status::FrozenByOther if t.count() > 0 && not_covered().count() == t.count() => {
                match line(Some(0)) {
                    Some(l) => write!(f, "every target is already frozen by another holder (EBUSY), {} among them: nothing was frozen by us, so the snapshot would cover nothing; their freezes were left alone", l.name()),
                    None => f.write_str(self.status.message()),
                }
            }
            Status::FrozenByOther => match line(concerned(self.status, t)) {
                Some(l) => write!(f, "{} is already frozen by another holder ({}); quiesce left that freeze alone and thawed everything it had frozen: find that holder (if it is gone, `quiesce thaw {}` thaws it), or skip such filesystems (the CLI's --if-frozen=skip, QUIESCE_FLAG_SKIP_FROZEN, Go's SkipFrozen, Python's skip_frozen=True)", l.name(), ErrnoName(l.errno), Lossy(l.mount_point)),
                None => f.write_str(self.status.message()),
            },
            Status::FreezeFailed => match line(concerned(self.status, t)) {
                Some(l) => write!(f, "freezing {} failed: {}; everything frozen before it was thawed", l.name(), ErrnoName(l.errno)),
                None => f.write_str(self.status.message()),
            },
            Status::ThawFailed => match line(concerned(self.status, t)) {
                Some(l) => write!(f, "thawing {} failed: {}; it may still be frozen: run `quiesce thaw {}`", l.name(), ErrnoName(l.errno), Lossy(l.mount_point)),
                None => f.write_str(self.status.message()),
            },
            Status::Suspect => match line(concerned(self.status, t)) {
                Some(l) => write!(f, "{} was thawed by someone else during the window; the snapshot is not consistent", l.name()),
                None => f.write_str(self.status.message()),
            },
            Status::Timeout => {
                write!(f, "the deadline of {} passed before the snapshot was acknowledged; everything we froze was thawed and the snapshot is not consistent", Seconds(self.timeout))?;
                if let Some(l) = line(slowest(t)) {
                    if l.outcome == Outcome::InFlight {
                        write!(f, "; the freeze of {} was still in flight after {} (stuck in the kernel): it is thawed as soon as it returns", Lossy(l.mount_point), Millis(l.freeze_ns))?;
                    } else {
                        write!(f, "; the slowest freeze was {} ({})", Lossy(l.mount_point), Millis(l.freeze_ns))?;
                    }
                }
                if let Some(l) = line(first(t, Outcome::ThawedByGuardian)) {
                    write!(f, "; the guardian had to thaw {}", l.name())?;
                }
                Ok(())
            }
            Status::Cancelled => {
                f.write_str("cancelled by the caller (quiesce_cancel) while freezing: everything we froze was thawed and the snapshot is not consistent")?;
                if let Some(l) = line(first(t, Outcome::InFlight)) {
                    write!(f, "; the freeze of {} was still in flight after {} (stuck in the kernel): it is thawed as soon as it returns", Lossy(l.mount_point), Millis(l.freeze_ns))?;
                }
                Ok(())
            }
            Status::SnapshotFailed => f.write_str("the snapshot was reported as failed (not acknowledged); everything we froze was thawed"),
            other => f.write_str(other.message()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Two([Line<'static>; 2]);

    impl Targets for Two {
        fn count(&self) -> usize {
            2
        }
        fn line(&self, i: usize) -> Option<Line<'_>> {
            self.0.get(i).copied()
        }
    }

    fn line(mp: &'static [u8], outcome: Outcome, errno: i32, freeze_ns: u64) -> Line<'static> {
        Line {
            mount_point: mp,
            fs_type: b"ext4",
            dev: Dev { major: 7, minor: 1 },
            outcome,
            errno,
            freeze_ns,
        }
    }

    fn explain(status: Status, t: &Two) -> String {
        Explain {
            status,
            consistency: Consistency::None,
            reason: None,
            hooks: false,
            after_failure: None,
            timeout: Duration::from_millis(300),
            targets: t,
        }
        .to_string()
    }

    #[test]
    fn each_status_names_the_filesystem_concerned() {
        let t = Two([
            line(b"/a", Outcome::Thawed, 0, 1_000_000),
            line(b"/b", Outcome::FreezeFailed, 16, 0),
        ]);
        assert_eq!(concerned(Status::FrozenByOther, &t), Some(1));
        let m = explain(Status::FrozenByOther, &t);
        assert!(
            m.starts_with("/b (ext4 7:1) is already frozen by another holder (EBUSY"),
            "{m}"
        );
        let t = Two([
            line(b"/a", Outcome::ThawedByGuardian, 0, 2_000_000),
            line(b"/b", Outcome::InFlight, 0, 300_000_000),
        ]);
        assert_eq!(concerned(Status::Timeout, &t), Some(1));
        let m = explain(Status::Timeout, &t);
        assert!(m.starts_with("the deadline of 300 ms passed"), "{m}");
        assert!(
            m.contains("the freeze of /b was still in flight after 300.0 ms"),
            "{m}"
        );
        assert!(m.contains("the guardian had to thaw /a (ext4 7:1)"), "{m}");
        let t = Two([
            line(b"/a", Outcome::NotCovered, 16, 0),
            line(b"/b", Outcome::NotCovered, 16, 0),
        ]);
        assert!(explain(Status::FrozenByOther, &t).starts_with("every target is already frozen"));
    }
}
