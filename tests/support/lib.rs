//! `quiesce_testkit`: fixtures for the end-to-end tests of `quiesce` on real filesystems.
//!
//! # Safety first
//! The tests run as root and freeze real filesystems. Everything here is built so that only
//! filesystems the fixtures made themselves can ever be frozen:
//! - [`TestFs`] makes a sparse image in a fresh [`Scratch`] directory (`/tmp/quiesce-test-*`),
//!   attaches it to a loop device and mounts it there; [`ExtraMount`] and [`TmpfsMount`] add
//!   mounts in the same places. Each registers its mount point with the [`guard`].
//! - [`guard`] refuses (panics) unless a path is, or is inside, a registered, currently mounted
//!   fixture whose device differs from those of `/`, `/tmp` and the workspace. [`Quiesce`]
//!   guards every path it passes, and so do [`TestFs::fsfreeze`] / [`TestFs::fsthaw`].
//! - Teardown on drop (also on panic): thaw, reap blocked probes, unmount (then lazily), detach
//!   the loop device. Declare the [`Scratch`] first, then filesystems, then what lives on them.
//! - Every external command runs with a timeout ([`run_timeout`]).
//! - [`vm`]: the real-VM rig, for what this machine's kernel cannot show (device-mapper, md,
//!   NVMe, disk serials): a qemu guest on sparse images in a [`Scratch`], never the host's
//!   filesystems.
//!
//! # JSON
//! [`Json`] is `serde_json::Value` (it was a hand-written type in `json.rs`, now gone), and
//! [`JsonExt`] adds what the old type had and serde_json lacks: `Json::parse`, `has`, `items`
//! (the old `as_array`, a slice), `str_array`. Code written for the old type keeps compiling
//! with `as_array()` renamed to `items()`; see `json_ext.rs` for the rest of the migration.
//!
//! # Typical use
//! ```no_run
//! use quiesce_testkit::*;
//! use std::time::Duration;
//! require_root();
//! let scratch = Scratch::new();
//! let fs = TestFs::new(&scratch, "a", FsKind::Ext4);
//! let mut q = Quiesce::sub("freeze").args(["--stdin", "--timeout", "30", "--json"])
//!     .mount(&fs.mount).spawn();
//! assert!(q.wait_for_line("frozen", Duration::from_secs(10)));
//! let mut probe = start_write_probe(&fs.mount);
//! assert!(!probe.completed_within(Duration::from_secs(1)));
//! q.send_line("thaw");
//! q.wait(Duration::from_secs(10)).assert_code(0, "acknowledged");
//! assert!(probe.wait(Duration::from_secs(10)));
//! ```

mod cli;
mod controller;
mod frontends;
mod fs;
mod guard;
mod hooks;
mod json_ext;
mod loops;
mod native;
mod probe;
mod process;
mod report;
mod rundir;
mod scratch;
mod signals;
pub mod vm;

use std::path::Path;
use std::time::Duration;

pub use cli::{quiesce_bin, Quiesce, QuiesceChild, QuiesceOutput};
pub use controller::ParentGone;
pub use frontends::{without_times, FrontEnd, HookArgs, Result as FrontEndResult, TargetResult};
pub use fs::{
    is_mount_point, overlay, tmpfs, unmount, ExtraMount, FsKind, OverlayMount, TestFs, TmpfsMount,
};
pub use guard::{check as guard_check, guard, resolve, SCRATCH_PREFIX};
pub use hooks::{HookDir, HOOKS_PREFIX};
pub use json_ext::{Json, JsonExt};
pub use loops::{mkfs, DiskSet, LoopDisk, Mount};
pub use native::{compile_c, compile_c_static, ffi_lib, repo_root, FfiLib, STATIC_LIBS};
pub use probe::{start_write_probe, start_write_probe_nosync, WriteProbe};
pub use process::{reap_pending, run_ok, run_timeout, send_signal, wait_timeout, ChildGuard};
pub use report::{
    abs, check_nothing_frozen_in_report, check_report, check_str, ensure, status_name, target,
    target_index,
};
pub use rundir::{RunDir, RUN_DIR_PREFIX};
pub use scratch::{loops_backed_under, mounts_under, Scratch};
pub use signals::{
    install_usr1_recorder, usr1_count_from, usr1_from_other_process, wait_usr1_from,
};

/// Panics with a clear message unless the effective uid is 0: these tests must fail, not
/// silently pass, when they cannot run.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "the end-to-end tests of quiesce need root (they create loop devices, mount and freeze \
         test filesystems); run them as root, e.g. `sudo -E cargo test`"
    );
}

/// Panics unless a write probe (with fsync) in `dir` completes within 10 s. `context` is
/// printed on failure (e.g. the output of the quiesce run that should have thawed it).
pub fn assert_writable(dir: &Path, context: &dyn std::fmt::Display) {
    let mut p = start_write_probe(dir);
    assert!(
        p.wait(Duration::from_secs(10)),
        "{} is not writable (a write+fsync did not complete within 10 s): still frozen?\n{context}",
        dir.display()
    );
}

/// Panics unless `fs` is frozen (a write probe does not complete within 1 s).
pub fn assert_frozen(fs: &TestFs, context: &dyn std::fmt::Display) {
    assert!(
        fs.is_frozen(),
        "{} ({}) should be frozen now, but a write completed\n{context}",
        fs.mount.display(),
        fs.kind.fs_type()
    );
}

/// The filesystem kinds most tests run on.
pub const KINDS: [FsKind; 2] = [FsKind::Ext4, FsKind::Xfs];

/// Defines one `#[test]` per filesystem kind for each listed function `fn NAME(kind: FsKind)`:
/// `NAME::ext4` and `NAME::xfs`.
#[macro_export]
macro_rules! per_kind {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn ext4() {
                    super::$name($crate::FsKind::Ext4)
                }
                #[test]
                fn xfs() {
                    super::$name($crate::FsKind::Xfs)
                }
            }
        )*
    };
}
