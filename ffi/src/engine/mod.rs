//! The engine: the one allocation-free implementation of a freeze session, from planning to
//! the message that explains its outcome. Every front end is a thin shell over it:
//!
//! ```text
//! CLI (examples/cli) ──> runtime (owned paths, Vec, String; the session record) ──┐
//! C ABI (capi: pointer and size checks, storage layout, panic boundary) ──────────┼──> engine ──> core
//! Go, Python ──> C ABI                                                             ┘
//! ```
//!
//! What happens, in order, and where:
//! 1. [`plan`]: resolve the named mount points (each a verified mount root), read the mount
//!    table into the caller's buffer ([`mounts`]), select, merge, skip (with reasons), find
//!    storage dependencies (loop backing files), order, and split into waves. Selecting by
//!    disk instead ([`disks`]): the `DISK` arguments resolved through the block-device graph
//!    (`quiesce_core::blockdev`), the superblocks on those disks chosen, a filesystem only
//!    partly on them refused (`Status::PartialGroup`) or left out, and a per-disk view handed
//!    to the sink after the targets. Results go to a
//!    [`plan::PlanSink`] (owned values in the runtime, fixed storage in the C ABI); a failure
//!    is a [`plan::Refusal`] whose `Display` names the input and the fix.
//! 2. [`session::Lifecycle`], the session's stages: `Planned` → hooks' `freeze` calls
//!    ([`hooks::SessionHooks`]) → `arm` (CAP_SYS_ADMIN check by `quiesce_core::linux::sys::has_cap_sys_admin`, the session machine,
//!    the helper processes; whether anything is dirty, [`writeback`]) → `Armed` → `presync`
//!    (only if something is dirty) → `freeze` (waves of `FIFREEZE`, notify) →
//!    `Frozen` → `thaw(signal)` (two-phase: the C ABI) or `await_and_thaw(controller)`
//!    (one-shot: the CLI) → `Ended` → `conclude` (helpers released, the hooks' `thaw` or
//!    `freeze-failed` calls, the final status). No step from `freeze` to `conclude` allocates.
//!    Each stage change is timestamped: [`phases::Phases`], where the session's time went.
//! 3. [`hooks::level`]: the one consistency rule with hooks; [`explain::Explain`]: the one
//!    message for each outcome, the same text from every front end.
//! 4. [`rescue`]: the operator's thaw of named filesystems, each superblock once.
//! 5. [`record`]: the session record under `/run/quiesce` (written by `arm` before the first
//!    `FIFREEZE`, allocation-free), so that `quiesce status` and `quiesce recover` see the
//!    sessions of every front end.
//! 6. [`cancel`]: `quiesce_cancel()`, from any thread or a signal handler: the hooks' wait, the
//!    pre-sync and the waves of `FIFREEZE` end at once, everything thawed, `Status::Cancelled`.
//!
//! Who does what while frozen: the caller's thread runs the core's session machine
//! (`quiesce_core::session`) and enforces the deadline; freezer processes issue every
//! `FIFREEZE` (a call stuck in the kernel never holds the caller past its deadline); the
//! guardian process thaws whatever the shared table (`quiesce_core::linux::table`) says is
//! still ours when the caller dies or misses its deadline. The helpers are forked by
//! [`helpers`]; a slot's state maps to a target's outcome in one place,
//! `quiesce_core::linux::table::state::outcome`.

pub mod cancel;
pub mod disks;
pub mod explain;
pub mod helpers;
pub mod hooks;
pub mod mounts;
pub mod phases;
pub mod plan;
pub mod record;
pub mod rescue;
pub mod session;
pub mod text;
pub mod writeback;

pub(crate) use crate::runtime::ErrnoName;

/// Most filesystems one session freezes.
pub const MAX_TARGETS: usize = 64;
