//! The application hooks as the lifecycle sees them: a small trait ([`SessionHooks`]), the
//! rules around it (when the hooks get `thaw` rather than `freeze-failed`, what the hooks make
//! of the consistency level), and [`NoHooks`] for a session without hooks (which then
//! allocates nothing). The runtime's [`Hooks`](crate::runtime::Hooks) is the one
//! implementation that runs programs; the CLI and the C ABI both use it.

use core::fmt;

use quiesce_core::session::{End, Outcome};
use quiesce_core::{Consistency, Status};

/// The `consistency_reason` of a file-system-consistent session without hooks.
pub const NO_HOOKS_REASON: &str = "no application hooks were configured";

/// What the `freeze` calls decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quiesced<'a> {
    /// Every call before the freeze succeeded (and at least one ran).
    Yes,
    /// The application is not quiesced, and why (which hook failed, or that none ran).
    No(Option<&'a str>),
}

/// Why nothing may be frozen because of the hooks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Halt {
    /// Cancelled while a hook ran before the freeze (the CLI: a signal).
    Cancelled,
    /// Cancelled by the caller (`quiesce_cancel()`) before the freeze: a running hook was
    /// killed, or none had started.
    CallerCancelled,
    /// A hook failed before the freeze, and application consistency is required.
    Required,
    /// This process lacks CAP_SYS_ADMIN (checked before any hook runs).
    NotPermitted,
}

impl Halt {
    /// The stable status.
    pub fn status(self) -> Status {
        match self {
            Halt::Cancelled => Status::Interrupted,
            Halt::CallerCancelled => Status::Cancelled,
            Halt::Required => Status::NotAppConsistent,
            Halt::NotPermitted => Status::Permission,
        }
    }

    /// The errno behind it (EPERM for [`Halt::NotPermitted`]), or 0.
    pub fn errno(self) -> i32 {
        match self {
            Halt::NotPermitted => 1,
            _ => 0,
        }
    }

    /// The message, with the hooks' reason.
    pub fn explain(self, hooks: &dyn SessionHooks) -> Stop<'_> {
        let reason = match hooks.quiesced() {
            Some(Quiesced::No(why)) => why,
            _ => None,
        };
        Stop { halt: self, reason }
    }
}

/// The message of a [`Halt`].
#[derive(Clone, Copy, Debug)]
pub struct Stop<'a> {
    /// What stopped it.
    pub halt: Halt,
    /// Why the application is not quiesced.
    pub reason: Option<&'a str>,
}

impl fmt::Display for Stop<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.halt {
            Halt::Cancelled => f.write_str("interrupted while a hook ran before the freeze: that hook was killed, nothing was frozen, and the hooks that got `freeze` got `freeze-failed`"),
            Halt::CallerCancelled => f.write_str("cancelled by the caller (quiesce_cancel) before the freeze: a running hook's process group was killed, nothing was frozen, and the hooks that got `freeze` got `freeze-failed`"),
            Halt::Required => write!(f, "application consistency is required, but {}: nothing was frozen, and the hooks that got `freeze` got `freeze-failed`", self.reason.unwrap_or("a hook failed")),
            Halt::NotPermitted => super::session::ArmError::Permission.fmt(f),
        }
    }
}

/// The hooks of one session, as the lifecycle drives them. Every hook that got `freeze` gets
/// exactly one of `thaw` and `freeze-failed`.
pub trait SessionHooks {
    /// Runs the `freeze` calls (once), asking `cancel` every few milliseconds while a hook
    /// runs. `Err` when nothing may be frozen.
    fn before_freeze(&mut self, cancel: &mut dyn FnMut() -> bool) -> Result<(), Halt>;
    /// Runs the calls after the thaw (once; none if no `freeze` call was made): `thaw` if
    /// `thawed_ok`, else `freeze-failed`.
    fn after_thaw(&mut self, thawed_ok: bool);
    /// What the `freeze` calls decided; `None` if no hook is configured or they have not run.
    fn quiesced(&self) -> Option<Quiesced<'_>>;
    /// The first failed call after the thaw, described.
    fn after_failure(&self) -> Option<&str>;
    /// Whether there is any hook to call (a pre or post script, or a hook in the directory):
    /// without one, the session's `hooks` phase stays 0.
    fn has_hooks(&self) -> bool;
}

/// A session without hooks.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoHooks;

impl SessionHooks for NoHooks {
    fn before_freeze(&mut self, _: &mut dyn FnMut() -> bool) -> Result<(), Halt> {
        Ok(())
    }

    fn after_thaw(&mut self, _: bool) {}

    fn quiesced(&self) -> Option<Quiesced<'_>> {
        None
    }

    fn after_failure(&self) -> Option<&str> {
        None
    }

    fn has_hooks(&self) -> bool {
        false
    }
}

/// Why a snapshot is file-system-consistent and not application-consistent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason<'a> {
    /// No hooks were configured ([`NO_HOOKS_REASON`]).
    NoHooks,
    /// What the hooks said (which failed, or that none ran before the freeze).
    Hooks(&'a str),
}

impl<'a> Reason<'a> {
    /// The text.
    pub fn text(self) -> &'a str {
        match self {
            Reason::NoHooks => NO_HOOKS_REASON,
            Reason::Hooks(s) => s,
        }
    }
}

/// The one consistency rule with hooks: the level of the freeze session alone (`base`) is
/// raised to application-consistent when the hooks quiesced the application; a
/// file-system-consistent one says why it is not more.
/// `quiesced` is what the hooks say ([`SessionHooks::quiesced`]).
pub fn level(
    base: Consistency,
    quiesced: Option<Quiesced<'_>>,
) -> (Consistency, Option<Reason<'_>>) {
    if base != Consistency::FileSystem {
        return (base, None);
    }
    match quiesced {
        None => (base, Some(Reason::NoHooks)),
        Some(Quiesced::Yes) => (Consistency::Application, None),
        Some(Quiesced::No(why)) => (base, why.map(Reason::Hooks)),
    }
}

/// The rule for the hooks' second call: every target was frozen and thawed again in time (the
/// deadline did not fire, no freeze or thaw failed), at least one by us. The hooks then get
/// `thaw`, otherwise `freeze-failed`.
pub fn froze_and_thawed(
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

/// The hooks' calls after the thaw, and `status` with their outcome: a failed call makes it
/// at least [`Status::ThawHookFailed`].
pub fn after_thaw(hooks: &mut dyn SessionHooks, thawed_ok: bool, status: Status) -> Status {
    hooks.after_thaw(thawed_ok);
    if hooks.after_failure().is_some() {
        status.worst(Status::ThawHookFailed)
    } else {
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_level_rule_with_and_without_hooks() {
        let fs = Consistency::FileSystem;
        assert_eq!(level(fs, None), (fs, Some(Reason::NoHooks)));
        assert_eq!(
            level(fs, Some(Quiesced::Yes)),
            (Consistency::Application, None)
        );
        assert_eq!(
            level(fs, Some(Quiesced::No(Some("the hook a failed")))),
            (fs, Some(Reason::Hooks("the hook a failed")))
        );
        // A session that is not consistent stays so, whatever the hooks did.
        assert_eq!(
            level(Consistency::None, Some(Quiesced::Yes)),
            (Consistency::None, None)
        );
        assert_eq!(Reason::NoHooks.text(), NO_HOOKS_REASON);
    }

    #[test]
    fn thaw_only_when_everything_was_frozen_and_thawed_in_time() {
        let ok = [Outcome::Thawed, Outcome::NotCovered];
        assert!(froze_and_thawed(
            Status::Ok,
            End::Acknowledged,
            Some(5),
            ok.into_iter()
        ));
        assert!(!froze_and_thawed(
            Status::Timeout,
            End::Deadline,
            Some(5),
            ok.into_iter()
        ));
        let none_ours = [Outcome::NotCovered];
        assert!(!froze_and_thawed(
            Status::Ok,
            End::Acknowledged,
            Some(5),
            none_ours.into_iter()
        ));
        let mut hooks = NoHooks;
        assert_eq!(after_thaw(&mut hooks, true, Status::Ok), Status::Ok);
    }
}
