//! One freeze session with hooks around it, and what the hooks did in the report.

use std::time::Duration;

use quiesce_core::session::{End, Outcome};
use quiesce_core::{Consistency, Status};

use super::{FreezeVerdict, HookRun, Hooks};
use crate::runtime::{Controller, Failure, FreezeOptions, Prepared, Report};

/// What the hooks did, for the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookSummary {
    /// Every call, in order.
    pub runs: Vec<HookRun>,
    /// The per-call timeout.
    pub timeout: Duration,
    /// Whether application consistency was required.
    pub required: bool,
    /// Every hook that ran before the freeze succeeded (and at least one ran).
    pub quiesced: bool,
    /// The first failed call after the thaw, described (the application may not have resumed).
    pub after_failure: Option<String>,
    /// Entries of the hook directory that were not run, and why.
    pub notes: Vec<String>,
}

impl HookSummary {
    fn of(hooks: &Hooks, verdict: &FreezeVerdict) -> HookSummary {
        HookSummary {
            runs: hooks.runs().to_vec(),
            timeout: hooks.timeout(),
            required: hooks.required(),
            quiesced: verdict.quiesced,
            after_failure: hooks.after_failure(),
            notes: hooks.notes().to_vec(),
        }
    }
}

impl Prepared {
    /// The whole sequence: the hooks' `freeze` calls, then (unless a hook failed and
    /// application consistency is required, or `cancel` said stop) the freeze session as
    /// [`Prepared::freeze_with`], then the hooks' `thaw` or `freeze-failed` calls. The report
    /// says `application-consistent` only if every hook before the freeze succeeded and the
    /// session is file-system-consistent; a failed call after the thaw makes the status
    /// [`Status::ThawHookFailed`] (unless something worse happened).
    ///
    /// `cancel` is asked every few milliseconds while a hook runs before the freeze (e.g.
    /// "was SIGTERM received?"); when it says true, that hook is killed, nothing is frozen,
    /// and the status is [`Status::Interrupted`].
    ///
    /// On `Err` (the session could not start), the hooks have had their `freeze-failed` calls
    /// already; [`Hooks::runs`] lists them.
    pub fn freeze_with_hooks(
        &self,
        options: FreezeOptions,
        hooks: &mut Hooks,
        controller: &mut dyn Controller,
        cancel: &mut dyn FnMut() -> bool,
    ) -> Result<Report, Failure> {
        if !hooks.is_configured() {
            // No hook configured: exactly a session without hooks.
            return self.freeze_with(options, controller);
        }
        let verdict = hooks.run_freeze_with(cancel);
        if !verdict.proceed {
            hooks.run_after(false);
            let headline = if verdict.cancelled {
                (
                    Status::Interrupted,
                    "interrupted while a hook ran before the freeze: that hook was killed, nothing was frozen, and the hooks that got `freeze` got `freeze-failed`".to_string(),
                )
            } else {
                (
                    Status::NotAppConsistent,
                    format!(
                        "application consistency is required, but {}: nothing was frozen, and the hooks that got `freeze` got `freeze-failed`",
                        verdict.reason.as_deref().unwrap_or("a hook failed")
                    ),
                )
            };
            let mut r = Report::not_frozen(self, options.timeout, headline.0, headline.1);
            r.apply_hooks(hooks, &verdict);
            return Ok(r);
        }
        let result = self.freeze_with(options, controller);
        let thawed_ok = result.as_ref().is_ok_and(Report::froze_and_thawed);
        hooks.run_after(thawed_ok);
        let mut report = result?;
        report.apply_hooks(hooks, &verdict);
        Ok(report)
    }
}

impl Report {
    /// True if every target was frozen and thawed again in time (the deadline did not fire,
    /// no freeze or thaw failed): the hooks then get `thaw`, otherwise `freeze-failed`.
    pub fn froze_and_thawed(&self) -> bool {
        froze_and_thawed(
            self.status,
            self.end,
            self.window_ns,
            self.targets.iter().map(|t| t.outcome),
        )
    }

    /// Raises the level to application-consistent when the hooks quiesced the application
    /// and the snapshot is file-system-consistent; records why not otherwise; makes a failed
    /// call after the thaw visible in the status.
    pub fn apply_hooks(&mut self, hooks: &Hooks, verdict: &FreezeVerdict) {
        let summary = HookSummary::of(hooks, verdict);
        self.notes.extend(summary.notes.iter().cloned());
        if self.consistency == Consistency::FileSystem {
            if verdict.quiesced {
                self.consistency = Consistency::Application;
                self.consistency_reason = None;
            } else {
                self.consistency_reason = verdict.reason.clone();
            }
        }
        if summary.after_failure.is_some() {
            self.status = self.status.worst(Status::ThawHookFailed);
        }
        self.hooks = Some(summary);
    }
}

/// The rule behind [`Report::froze_and_thawed`], on a session's parts (also used by the C
/// ABI): every target was frozen and thawed again in time (the deadline did not fire, no
/// freeze or thaw failed), at least one by us. The hooks then get `thaw`, otherwise
/// `freeze-failed`.
pub(crate) fn froze_and_thawed(
    status: Status,
    end: End,
    window_ns: Option<u64>,
    outcomes: impl Iterator<Item = Outcome> + Clone,
) -> bool {
    let ok = |o: &Outcome| {
        matches!(
            o,
            Outcome::Thawed | Outcome::ThawedByOther | Outcome::NotCovered
        )
    };
    window_ns.is_some()
        && end != End::Deadline
        && !matches!(
            status,
            Status::Timeout | Status::FreezeFailed | Status::ThawFailed | Status::Internal
        )
        && outcomes.clone().all(|o| ok(&o))
        && outcomes
            .into_iter()
            .any(|o| matches!(o, Outcome::Thawed | Outcome::ThawedByOther))
}
