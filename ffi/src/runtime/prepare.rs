//! Resolving what the caller named into a plan with opened descriptors, before any freeze: the
//! engine's planning ([`crate::engine::plan`]), collected into owned values.

use std::ffi::{CStr, CString, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use quiesce_core::blockdev::Unused;
use quiesce_core::mountinfo::{Dev, Escaped};
use quiesce_core::plan::{SkipReason, Target};
use quiesce_core::Status;

use super::Failure;
use crate::engine::disks::{DiskSelection, DiskView, Verdict};
use crate::engine::plan::{plan, Full, Note, PlanSink, Refusal, Request, SkipWhy, Skipped};

/// What to freeze.
#[derive(Clone, Copy, Debug)]
pub enum Select<'a> {
    /// These mount points (each must be one), in this order of preference.
    Named(&'a [OsString]),
    /// Every freezable, writable filesystem, except the ones mounted at these paths.
    All {
        /// Mount points to leave out.
        exclude: &'a [OsString],
    },
    /// The filesystems on these disks (`DISK`: `/dev/vdb`, a `/dev/disk/by-*` link,
    /// `serial:VALUE`), or with `exclude` on every disk but these.
    Disks {
        /// The `DISK` arguments.
        disks: &'a [OsString],
        /// `true`: every disk but `disks`.
        exclude: bool,
        /// A filesystem partly on the group's disks is left out, not covered, instead of
        /// refusing the plan.
        allow_partial_group: bool,
    },
}

/// A filesystem on a disk of the group, and what becomes of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskFsInfo {
    /// Where it is mounted.
    pub mount_point: String,
    /// Filesystem type.
    pub fs_type: String,
    /// Its superblock.
    pub device: Dev,
    /// Frozen (`None`), or skipped and why.
    pub skipped: Option<String>,
    /// Skipped because it spans disks outside the group (`--allow-partial-group`).
    pub not_covered: bool,
}

/// A block device on a disk of the group that holds no mounted filesystem, skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskDevInfo {
    /// `/dev/NAME`.
    pub path: String,
    /// Its number.
    pub device: Dev,
    /// `disk` or `partition`.
    pub kind: String,
    /// `swap`, `unmounted` or `in-use`.
    pub why: &'static str,
    /// Why, in words.
    pub reason: String,
}

/// One disk of a selection by disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskPlan {
    /// `/dev/NAME`.
    pub path: String,
    /// Its serial (empty if none).
    pub serial: String,
    /// Its device number.
    pub device: Dev,
    /// Its filesystems, in mount-table order.
    pub filesystems: Vec<DiskFsInfo>,
    /// Its block devices that hold no mounted filesystem (swap, unmounted, a raw device in use).
    pub devices: Vec<DiskDevInfo>,
    /// Its consistency level if the session succeeds (`filesystem-consistent` or
    /// `not-consistent`).
    pub level: quiesce_core::Consistency,
}

/// One filesystem to freeze, as planned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetInfo {
    /// The absolute mount point it is frozen through.
    pub mount_point: String,
    /// Every mount point through which it was selected (named ones, or in "all" mode every
    /// one), the frozen-through one first.
    pub paths: Vec<String>,
    /// Filesystem type.
    pub fs_type: String,
    /// The superblock's device number: the identity of the target.
    pub device: Dev,
    /// The mount source (e.g. `/dev/loop0`).
    pub source: String,
    /// The caller's arguments that named it.
    pub args: Vec<usize>,
}

/// A mount left out of the plan, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkipInfo {
    /// Where it is mounted.
    pub mount_point: String,
    /// Filesystem type.
    pub fs_type: String,
    /// Its superblock.
    pub device: Dev,
    /// Why it is skipped.
    pub reason: String,
    /// The caller's argument that named it, if one did.
    pub arg: Option<usize>,
}

/// A plan with every descriptor opened: ready to freeze.
#[derive(Debug)]
pub struct Prepared {
    /// Targets in freeze order (thaw is the exact reverse).
    pub targets: Vec<TargetInfo>,
    /// Mounts left out, with reasons.
    pub skipped: Vec<SkipInfo>,
    /// Skipped mounts beyond capacity, counted only.
    pub skipped_dropped: usize,
    /// Things worth saying about the plan (e.g. a backing file that could not be checked).
    pub notes: Vec<String>,
    /// `wave_starts[p]`: target `p` must wait for the targets before it (storage); runs of
    /// `false` may be frozen at once.
    pub wave_starts: Vec<bool>,
    /// How long planning took (ns): the report's `plan` phase.
    pub plan_ns: u64,
    /// Selection by disk: each disk of the group, with its filesystems (else empty).
    pub disks: Vec<DiskPlan>,
    fds: Vec<OwnedFd>,
}

pub(crate) fn text(e: Escaped<'_>) -> String {
    String::from_utf8_lossy(&e.bytes().collect::<Vec<u8>>()).into_owned()
}

/// The caller's paths as C strings (a NUL byte inside is refused, naming the argument).
pub(crate) fn c_paths(args: &[OsString]) -> Result<Vec<CString>, Failure> {
    args.iter()
        .map(|arg| {
            CString::new(arg.as_bytes()).map_err(|_| {
                Failure::new(
                    Status::BadTarget,
                    format!(
                        "'{}' contains a NUL byte; name a real path",
                        arg.to_string_lossy()
                    ),
                )
            })
        })
        .collect()
}

impl From<Refusal<'_>> for Failure {
    fn from(r: Refusal<'_>) -> Failure {
        Failure::new(r.status, r.to_string()).with_errno(r.errno)
    }
}

/// Collects the engine's plan into owned values.
#[derive(Default)]
struct Collect {
    targets: Vec<TargetInfo>,
    fds: Vec<OwnedFd>,
    skipped: Vec<SkipInfo>,
    skipped_dropped: usize,
    notes: Vec<String>,
    wave_starts: Vec<bool>,
    disks: Vec<DiskPlan>,
}

impl PlanSink for Collect {
    fn skip(&mut self, s: &Skipped<'_>) -> Result<(), Full> {
        self.skipped.push(SkipInfo {
            mount_point: text(s.mount_point),
            fs_type: text(s.fs_type),
            device: s.dev,
            reason: s.why.to_string(),
            arg: s.arg,
        });
        Ok(())
    }

    fn skips_dropped(&mut self, n: usize) {
        self.skipped_dropped = n;
    }

    fn target(&mut self, t: &Target<'_>, fd: OwnedFd) -> Result<(), Full> {
        self.targets.push(TargetInfo {
            mount_point: text(t.primary.mount_point),
            paths: t.mounts().map(|m| text(m.mount_point)).collect(),
            fs_type: text(t.fs_type),
            device: t.dev,
            source: text(t.source),
            args: t.mounts().filter_map(|m| m.arg).collect(),
        });
        self.fds.push(fd);
        Ok(())
    }

    fn note(&mut self, note: &Note<'_>) {
        self.notes.push(note.to_string());
    }

    fn disk(&mut self, d: &DiskView<'_>) -> Result<(), Full> {
        self.disks.push(DiskPlan {
            path: format!("/dev/{}", d.info.name),
            serial: d.info.serial.as_str().to_owned(),
            device: d.info.dev,
            filesystems: d
                .filesystems
                .iter()
                .map(|f| DiskFsInfo {
                    mount_point: text(f.mount_point),
                    fs_type: text(f.fs_type),
                    device: f.dev,
                    skipped: match f.verdict {
                        Verdict::Frozen => None,
                        Verdict::Skipped(why) => Some(why.to_string()),
                    },
                    not_covered: f.verdict
                        == Verdict::Skipped(SkipWhy::Plan(SkipReason::PartialGroup)),
                })
                .collect(),
            devices: d
                .unused
                .iter()
                .map(|u| {
                    let (why, reason) = match &u.why {
                        Unused::Swap => ("swap", "swap (active in /proc/swaps)".to_owned()),
                        Unused::Unmounted => (
                            "unmounted",
                            "no filesystem on it is mounted, and nothing holds it".to_owned(),
                        ),
                        Unused::InUse(h) => (
                            "in-use",
                            format!(
                                "raw device in use by {h}, which holds no mounted filesystem: \
                                 not frozen"
                            ),
                        ),
                    };
                    DiskDevInfo {
                        path: format!("/dev/{}", u.dev.name),
                        device: u.dev.dev,
                        kind: u.dev.kind.as_str().to_owned(),
                        why,
                        reason,
                    }
                })
                .collect(),
            level: d.level,
        });
        Ok(())
    }

    fn waves(&mut self, starts: &[bool]) {
        self.wave_starts = starts.to_vec();
    }
}

/// Makes the plan for `select`, opens every descriptor it will freeze through, and orders the
/// targets. Nothing is frozen. Errors name the input and the fix. A shell over
/// [`engine::plan::plan`](crate::engine::plan::plan).
pub fn prepare(select: Select<'_>) -> Result<Prepared, Failure> {
    let mut disk_args: &[OsString] = &[];
    let mut exclude_disks = false;
    let mut allow_partial_group = false;
    let (all, args) = match select {
        Select::Disks {
            disks,
            exclude,
            allow_partial_group: allow,
        } => {
            if disks.is_empty() {
                return Err(Failure::new(
                    Status::Usage,
                    "no disk named: name at least one (/dev/vdb, /dev/disk/by-id/..., serial:VALUE)",
                ));
            }
            disk_args = disks;
            exclude_disks = exclude;
            allow_partial_group = allow;
            (false, &[][..])
        }
        Select::Named(args) => {
            if args.is_empty() {
                return Err(Failure::new(
                    Status::Usage,
                    "no mount point named: name at least one (`quiesce plan` lists them)",
                ));
            }
            (false, args)
        }
        Select::All { exclude } => (true, exclude),
    };
    let start = quiesce_core::linux::sys::now_ns();
    let owned = c_paths(args)?;
    let paths: Vec<&CStr> = owned.iter().map(CString::as_c_str).collect();
    let owned_disks = c_paths(disk_args)?;
    let disk_list: Vec<&CStr> = owned_disks.iter().map(CString::as_c_str).collect();
    let (named, excluded): (&[&CStr], &[&CStr]) = if exclude_disks {
        (&[], &disk_list)
    } else {
        (&disk_list, &[])
    };
    let mut table = Vec::new();
    let mut sink = Collect::default();
    plan(
        Request {
            all,
            paths: &paths,
            every_line: true,
            disks: DiskSelection {
                disks: named,
                exclude: excluded,
                allow_partial_group,
            },
        },
        &mut table,
        &mut sink,
    )?;
    Ok(Prepared {
        targets: sink.targets,
        skipped: sink.skipped,
        skipped_dropped: sink.skipped_dropped,
        notes: sink.notes,
        wave_starts: sink.wave_starts,
        plan_ns: crate::engine::phases::since(start),
        disks: sink.disks,
        fds: sink.fds,
    })
}

impl Prepared {
    /// The descriptors, in freeze order.
    pub fn fds(&self) -> impl Iterator<Item = BorrowedFd<'_>> {
        self.fds.iter().map(AsFd::as_fd)
    }
}
