//! The report of one freeze session, for people and machines.

use std::time::Duration;

use quiesce_core::session::{End, Outcome, Session};
use quiesce_core::{Consistency, Status};

use super::{errno_name, Prepared, SkipInfo, TargetInfo};

/// What happened to one target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetReport {
    /// The target as planned.
    pub info: TargetInfo,
    /// Its position in the freeze order (0 first).
    pub order: usize,
    /// Where it stands.
    pub outcome: Outcome,
    /// The errno of the failed call, or 0.
    pub errno: i32,
    /// How long `FIFREEZE` took, in ns.
    pub freeze_ns: u64,
    /// How long `FITHAW` took, in ns.
    pub thaw_ns: u64,
}

/// The whole session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The stable status.
    pub status: Status,
    /// Why the window ended.
    pub end: End,
    /// How far the snapshot can be trusted.
    pub consistency: Consistency,
    /// The deadline, from the first `FIFREEZE`.
    pub timeout: Duration,
    /// First `FIFREEZE` issued to last `FITHAW` returned, in ns.
    pub window_ns: Option<u64>,
    /// First `FIFREEZE` issued to the end of the window (acknowledgement, deadline, error).
    pub frozen_for_ns: Option<u64>,
    /// Per target, in freeze order.
    pub targets: Vec<TargetReport>,
    /// Mounts left out, with reasons.
    pub skipped: Vec<SkipInfo>,
    /// Notes from planning.
    pub notes: Vec<String>,
}

impl Report {
    pub(crate) fn new<const N: usize>(
        prepared: &Prepared,
        session: &Session<N>,
        timeout: Duration,
    ) -> Report {
        let targets: Vec<TargetReport> = prepared
            .targets
            .iter()
            .enumerate()
            .map(|(i, info)| {
                let r = session.target(i).copied();
                TargetReport {
                    info: info.clone(),
                    order: i,
                    outcome: r.map_or(Outcome::NotAttempted, |r| r.outcome),
                    errno: r.map_or(0, |r| r.errno),
                    freeze_ns: r.map_or(0, |r| r.freeze_ns),
                    thaw_ns: r.map_or(0, |r| r.thaw_ns),
                }
            })
            .collect();
        let first = targets
            .iter()
            .filter_map(|t| {
                session
                    .target(t.order)
                    .map(|r| r.freeze_start)
                    .filter(|&s| s != 0)
            })
            .min();
        Report {
            status: session.status(),
            end: session.end(),
            consistency: session.consistency(),
            timeout,
            window_ns: session.window_ns(),
            frozen_for_ns: first.map(|f| session.ended_at().saturating_sub(f)),
            targets,
            skipped: prepared.skipped.clone(),
            notes: prepared.notes.clone(),
        }
    }

    /// Whether the controller acknowledged the snapshot in time.
    pub fn acknowledged(&self) -> bool {
        self.end == End::Acknowledged
    }

    /// One sentence for people: what happened, naming the filesystem concerned, and what to do.
    pub fn message(&self) -> String {
        let find = |o: Outcome| self.targets.iter().find(|t| t.outcome == o);
        let name = |t: &TargetReport| {
            format!(
                "{} ({} {})",
                t.info.mount_point, t.info.fs_type, t.info.device
            )
        };
        match self.status {
            Status::Ok => format!(
                "froze {} filesystem{}, snapshot acknowledged, thawed: file-system-consistent",
                self.targets.len(),
                if self.targets.len() == 1 { "" } else { "s" }
            ),
            Status::FreezeFailed | Status::FrozenByOther => match find(Outcome::FreezeFailed) {
                Some(t) if self.status == Status::FrozenByOther => format!(
                    "{} is already frozen by another holder ({}); quiesce left that freeze alone and thawed everything it had frozen",
                    name(t),
                    errno_name(t.errno)
                ),
                Some(t) => format!(
                    "freezing {} failed: {}; everything frozen before it was thawed",
                    name(t),
                    errno_name(t.errno)
                ),
                None => self.status.message().to_string(),
            },
            Status::ThawFailed => match find(Outcome::ThawFailed) {
                Some(t) => format!(
                    "thawing {} failed: {}; it may still be frozen: run `quiesce thaw {}`",
                    name(t),
                    errno_name(t.errno),
                    t.info.mount_point
                ),
                None => self.status.message().to_string(),
            },
            Status::Suspect => match find(Outcome::ThawedByOther) {
                Some(t) => format!(
                    "{} was thawed by someone else during the window; the snapshot is not consistent",
                    name(t)
                ),
                None => self.status.message().to_string(),
            },
            Status::Timeout => {
                let slow = self
                    .targets
                    .iter()
                    .max_by_key(|t| t.freeze_ns)
                    .filter(|t| t.freeze_ns > 0)
                    .map(|t| {
                        format!(
                            "; the slowest freeze was {} ({:.1} ms)",
                            t.info.mount_point,
                            t.freeze_ns as f64 / 1e6
                        )
                    })
                    .unwrap_or_default();
                format!(
                    "the deadline of {} passed before the snapshot was acknowledged; everything was thawed and the snapshot is not consistent{slow}",
                    seconds(self.timeout)
                )
            }
            other => other.message().to_string(),
        }
    }
}

/// `30 s`, `2.5 s`.
pub(crate) fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s} s")
    }
}
