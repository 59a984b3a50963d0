//! The Rust runtime API: plan, freeze with a deadline, thaw, report. A shell over the engine
//! ([`crate::engine`]: planning, the lifecycle, the messages) that adds what allocates for
//! convenience: owned paths and strings, the session record, the report.
//!
//! Everything that allocates (reading the mount table, owned strings for the report, error
//! messages, forking the helpers, the session record) happens in [`prepare`] and
//! [`Prepared::arm`] before the first freeze, or after the last thaw when the report is built.
//! [`Armed::run`] runs the core's executor, which allocates nothing; `FIFREEZE` is issued by a
//! helper process (the freezer) and a second one (the guardian) thaws if this process dies.
//!
//! - [`prepare`]: resolve and plan; [`Prepared::freeze`] or [`Prepared::arm`]: one session;
//! - [`SessionRecord`]: session records under `/run/quiesce`; [`sessions`] and [`recover`]:
//!   `quiesce status` and `quiesce recover`;
//! - [`blocked_tasks`]: tasks in uninterruptible sleep, for the timeout report;
//! - [`thaw_paths`]: the operator's rescue thaw of named mount points;
//! - [`Hooks`]: application hooks before the freeze and after the thaw, checked for
//!   authenticity first; [`Prepared::freeze_with_hooks`] runs a session with them.

mod blocked;
mod errno;
mod freeze;
mod hooks;
mod identify;
mod prepare;
mod record;
mod recover;
mod report;
mod thaw;

pub use blocked::{blocked_tasks, BlockedTask};
pub use errno::{errno_name, ErrnoName};
pub use freeze::{presync_limit, Armed, FreezeOptions, GUARDIAN_GRACE, PRESYNC_LIMIT};
pub use hooks::{
    FreezeVerdict, HookConfig, HookEnd, HookPhase, HookRun, HookSource, HookSummary, Hooks,
    DEFAULT_HOOK_TIMEOUT, LINGER, LINGER_MAX, MAX_DIR_HOOKS, MAX_HOOK_TIMEOUT, OUTPUT_LIMIT,
};
pub use identify::{identify_mounts, NamedMount};
pub use prepare::{
    prepare, DiskDevInfo, DiskFsInfo, DiskPlan, Prepared, Select, SkipInfo, TargetInfo,
};
pub use record::{run_dir, ProcRef, RecordTarget, SessionRecord, RUN_DIR, RUN_DIR_VAR};
pub use recover::{
    recover, sessions, RecoverOutcome, RecoveredSession, RecoveredTarget, SessionState,
    SessionStatus,
};
pub use report::{Diagnosis, Phases, Report, TargetReport};
pub use thaw::{thaw_paths, ThawOutcome, ThawResult};

pub use quiesce_core::linux::table::Tie;
pub use quiesce_core::linux::{Controller, Signal};
pub use quiesce_core::session::{End, IfFrozen, Outcome};

use std::fmt;
use std::time::Duration;

use quiesce_core::Status;

/// Most filesystems one session freezes.
pub use crate::engine::MAX_TARGETS;

/// The longest deadline accepted: a freeze longer than an hour is a mistake, not a plan.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// A failure before anything was frozen: a stable status, a message for people that names
/// the input and the fix, and the raw errno where a syscall failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The stable status.
    pub status: Status,
    /// What went wrong, naming the input, and what to do about it.
    pub message: String,
    /// The errno behind it, or 0.
    pub errno: i32,
}

impl Failure {
    pub(crate) fn new(status: Status, message: impl Into<String>) -> Self {
        Failure {
            status,
            message: message.into(),
            errno: 0,
        }
    }

    pub(crate) fn with_errno(mut self, errno: i32) -> Self {
        self.errno = errno;
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// Checks a deadline: more than zero, at most [`MAX_TIMEOUT`].
pub fn check_timeout(timeout: Duration) -> Result<u64, Failure> {
    if timeout.is_zero() {
        return Err(Failure::new(
            Status::Usage,
            "the timeout must be more than 0 seconds",
        ));
    }
    if timeout > MAX_TIMEOUT {
        return Err(Failure::new(
            Status::Usage,
            format!(
                "the timeout must be at most {} seconds: filesystems frozen longer stall every writer",
                MAX_TIMEOUT.as_secs()
            ),
        ));
    }
    u64::try_from(timeout.as_nanos())
        .map_err(|_| Failure::new(Status::Usage, "the timeout is too large"))
}

/// Whether this process may freeze filesystems (CAP_SYS_ADMIN in its effective set): the one
/// check, [`quiesce_core::linux::sys::has_cap_sys_admin`], which the C ABI calls too.
pub fn has_cap_sys_admin() -> bool {
    quiesce_core::linux::sys::has_cap_sys_admin()
}

/// Fails with [`Status::Permission`] unless this process has CAP_SYS_ADMIN; the message
/// names what was to be done (`"freezing"`) and to which paths.
pub fn require_cap_sys_admin(action: &str, paths: &[std::ffi::OsString]) -> Result<(), Failure> {
    if has_cap_sys_admin() {
        return Ok(());
    }
    let names: Vec<String> = paths
        .iter()
        .map(|p| format!("'{}'", p.to_string_lossy()))
        .collect();
    Err(Failure::new(
        Status::Permission,
        format!(
            "{action} {} needs CAP_SYS_ADMIN, which this process does not have: run quiesce as root (e.g. with sudo)",
            names.join(", ")
        ),
    )
    .with_errno(quiesce_core::errno::EPERM))
}
