//! Where a session's time goes (issue 14): the duration of each phase, from monotonic
//! timestamps ([`quiesce_core::linux::sys::now_ns`], vDSO `clock_gettime`, no allocation) taken
//! at the stage changes of [`super::session::Lifecycle`]. A phase that did not run is 0.

use quiesce_core::linux::sys::now_ns;

/// The duration of each phase of one session, in ns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Phases {
    /// Planning: mount table, selection, descriptors, order (the front end's, before the
    /// lifecycle; set by it).
    pub plan_ns: u64,
    /// Arming: CAP_SYS_ADMIN check, session machine, forking the guardian and the freezers
    /// (and the front end's session record).
    pub arm_ns: u64,
    /// The hooks' calls: `freeze` before arming, `thaw` or `freeze-failed` after the end (0
    /// if there is no hook).
    pub hooks_ns: u64,
    /// The pre-sync (0 if it was off or left out because nothing was dirty).
    pub presync_ns: u64,
    /// First `FIFREEZE` issued to everything frozen (or the freeze given up).
    pub freeze_ns: u64,
    /// The notification and the wait for what became of the snapshot (the snapshot command
    /// of `quiesce run` runs here), up to the thaw.
    pub wait_ns: u64,
    /// The thaw of every target, in reverse order.
    pub thaw_ns: u64,
    /// Finishing: helpers released, (front end:) session record removed, report built.
    pub finish_ns: u64,
}

impl Phases {
    /// The phases in order, with their names (`plan`, `arm`, …).
    pub fn named(&self) -> [(&'static str, u64); 8] {
        [
            ("plan", self.plan_ns),
            ("arm", self.arm_ns),
            ("hooks", self.hooks_ns),
            ("presync", self.presync_ns),
            ("freeze", self.freeze_ns),
            ("wait", self.wait_ns),
            ("thaw", self.thaw_ns),
            ("finish", self.finish_ns),
        ]
    }
}

/// Nanoseconds since `start` (at least 1, so that a phase that ran is never 0).
pub fn since(start: u64) -> u64 {
    now_ns().saturating_sub(start).max(1)
}
