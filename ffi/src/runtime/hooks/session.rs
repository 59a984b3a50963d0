//! One freeze session with hooks around it, and what the hooks did in the report.

use std::time::Duration;

use quiesce_core::{Consistency, Status};

use super::{FreezeVerdict, HookRun, Hooks};
use crate::engine::hooks::{froze_and_thawed, level, Quiesced};
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
        let mut armed = self.start(options)?;
        if let Err(halt) = armed.before_freeze(hooks, cancel) {
            let headline = halt.explain(hooks).to_string();
            let mut r = Report::not_frozen(self, options.timeout, halt.status(), headline);
            r.apply_hooks(hooks, &hooks.verdict_so_far());
            return Ok(r);
        }
        if let Err(f) = armed.arm_helpers() {
            // The application was quiesced for nothing: resume it.
            armed.finish_with(hooks);
            return Err(f);
        }
        armed.presync();
        armed.run(controller);
        let mut report = armed.finish_with(hooks);
        report.apply_hooks(hooks, &hooks.verdict_so_far());
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
    /// call after the thaw visible in the status. The engine's rule ([`level`]).
    pub fn apply_hooks(&mut self, hooks: &Hooks, verdict: &FreezeVerdict) {
        let summary = HookSummary::of(hooks, verdict);
        self.notes.extend(summary.notes.iter().cloned());
        let quiesced = if verdict.quiesced {
            Quiesced::Yes
        } else {
            Quiesced::No(verdict.reason.as_deref())
        };
        if self.consistency == Consistency::FileSystem {
            let (level, reason) = level(self.consistency, Some(quiesced));
            self.consistency = level;
            self.consistency_reason = reason.map(|r| r.text().to_string());
        }
        if summary.after_failure.is_some() {
            self.status = self.status.worst(Status::ThawHookFailed);
        }
        self.hooks = Some(summary);
    }
}
