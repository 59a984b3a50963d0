//! The report of one freeze session, for people and machines.

use std::time::Duration;

use quiesce_core::session::{End, Outcome, Session};
use quiesce_core::{Consistency, Status};

use super::{BlockedTask, HookSummary, Prepared, SkipInfo, TargetInfo};
use crate::engine::explain::{slowest, Explain, Line, Targets};
use crate::engine::hooks::{Reason, NO_HOOKS_REASON};
pub use crate::engine::phases::Phases;

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
    /// The wave it was frozen in (0 first): targets of one wave are frozen at once.
    pub wave: usize,
    /// How long its pre-sync `syncfs` took, in ns (0: none, or it did not finish).
    pub presync_ns: u64,
}

/// Why a session timed out: gathered after the thaw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnosis {
    /// Tasks in uninterruptible sleep (state `D`) right after the thaw: whoever still holds a
    /// freeze up (e.g. a loop device's worker writing to a frozen filesystem, a stuck
    /// `FIFREEZE`).
    pub blocked: Vec<BlockedTask>,
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
    /// How long the pre-sync (`syncfs` of every target before the first `FIFREEZE`) took, if
    /// it ran.
    pub presync_ns: Option<u64>,
    /// The pre-sync was left out because nothing was dirty: `Some(bytes)` of `Dirty` +
    /// `Writeback` in `/proc/meminfo` at arming (at most
    /// [`CLEAN_LIMIT`](crate::engine::writeback::CLEAN_LIMIT)).
    pub presync_skipped_clean: Option<u64>,
    /// How long each phase of the session took.
    pub phases: Phases,
    /// How many freezer processes ran (0: the session never started).
    pub freezers: usize,
    /// Per target, in freeze order.
    pub targets: Vec<TargetReport>,
    /// Mounts left out, with reasons.
    pub skipped: Vec<SkipInfo>,
    /// Notes from planning and from the session.
    pub notes: Vec<String>,
    /// On a timeout: who held it up.
    pub diagnosis: Option<Diagnosis>,
    /// Why the level is file-system-consistent and not application-consistent (no hooks, or
    /// which hook failed); `None` at the other levels.
    pub consistency_reason: Option<String>,
    /// What the hooks did, if any were configured.
    pub hooks: Option<HookSummary>,
    /// The one sentence for people when nothing was frozen because of the hooks.
    pub headline: Option<String>,
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
                    wave: 0,
                    presync_ns: 0,
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
            presync_ns: None,
            presync_skipped_clean: None,
            phases: Phases::default(),
            freezers: 0,
            targets,
            skipped: prepared.skipped.clone(),
            notes: prepared.notes.clone(),
            diagnosis: None,
            consistency_reason: (session.consistency() == Consistency::FileSystem)
                .then(|| NO_HOOKS_REASON.to_string()),
            hooks: None,
            headline: None,
        }
    }

    /// A session that never froze anything (stopped before the first `FIFREEZE`, e.g. by a
    /// failed hook): every target `not-attempted`, not consistent.
    pub(crate) fn not_frozen(
        prepared: &Prepared,
        timeout: Duration,
        status: Status,
        headline: String,
    ) -> Report {
        Report {
            status,
            end: End::None,
            consistency: Consistency::None,
            timeout,
            window_ns: None,
            frozen_for_ns: None,
            presync_ns: None,
            presync_skipped_clean: None,
            phases: Phases::default(),
            freezers: 0,
            targets: prepared
                .targets
                .iter()
                .enumerate()
                .map(|(i, info)| TargetReport {
                    info: info.clone(),
                    order: i,
                    outcome: Outcome::NotAttempted,
                    errno: 0,
                    freeze_ns: 0,
                    thaw_ns: 0,
                    wave: 0,
                    presync_ns: 0,
                })
                .collect(),
            skipped: prepared.skipped.clone(),
            notes: prepared.notes.clone(),
            diagnosis: None,
            consistency_reason: None,
            hooks: None,
            headline: Some(headline),
        }
    }

    /// The targets the snapshot does not cover (frozen by another holder and skipped).
    pub fn not_covered(&self) -> impl Iterator<Item = &TargetReport> {
        self.targets
            .iter()
            .filter(|t| t.outcome == Outcome::NotCovered)
    }

    /// The target whose `FIFREEZE` took longest (or was still in flight at the deadline).
    pub fn slowest(&self) -> Option<&TargetReport> {
        slowest(&self.targets).and_then(|i| self.targets.get(i))
    }

    /// Whether the controller acknowledged the snapshot in time.
    pub fn acknowledged(&self) -> bool {
        self.end == End::Acknowledged
    }

    /// One sentence for people: what happened, naming the filesystem concerned (and the hook
    /// concerned), and what to do: the engine's [`Explain`], the same text as the C ABI's
    /// `quiesce_error()` for the same outcome.
    pub fn message(&self) -> String {
        if let Some(h) = &self.headline {
            return h.clone();
        }
        Explain {
            status: self.status,
            consistency: self.consistency,
            reason: self.consistency_reason.as_deref().map(Reason::Hooks),
            hooks: self.hooks.is_some(),
            after_failure: self.hooks.as_ref().and_then(|h| h.after_failure.as_deref()),
            timeout: self.timeout,
            targets: &self.targets,
        }
        .to_string()
    }
}

impl Targets for Vec<TargetReport> {
    fn count(&self) -> usize {
        self.len()
    }

    fn line(&self, i: usize) -> Option<Line<'_>> {
        let t = self.get(i)?;
        Some(Line {
            mount_point: t.info.mount_point.as_bytes(),
            fs_type: t.info.fs_type.as_bytes(),
            dev: t.info.device,
            outcome: t.outcome,
            errno: t.errno,
            freeze_ns: t.freeze_ns,
        })
    }
}
