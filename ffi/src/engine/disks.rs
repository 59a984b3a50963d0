//! Selection by disk: from the caller's `DISK` arguments (`--disk`, or `--exclude-disk`: every
//! disk but these) to the superblocks to plan, through the block-device graph
//! (`quiesce_core::blockdev`, read from the live `/sys` and `/dev`), with the group check: a
//! filesystem whose leaf disks are only partly in the group is refused
//! ([`Status::PartialGroup`]), or with `allow_partial_group` left out and reported as not
//! covered. After planning, [`report`] tells the sink, per disk of the group, its identity, the
//! filesystems on it with their verdicts, and its consistency level. Nothing is allocated.
//!
//! Loop devices named as disks are disks. When one is, every loop device whose backing file is
//! not itself on a loop device stands in for a disk too (so that a btrfs over two loop devices,
//! one of them named, is refused naming the other one, not the disk under the backing files);
//! a loop device whose image is on another loop device's filesystem is followed to it.

// No heap: a refusal of a selection by disk carries the names of the disks its message
// reports (a few hundred bytes), returned once, before anything is frozen.
#![allow(clippy::result_large_err, clippy::large_enum_variant)]

use core::ffi::CStr;
use core::fmt::{self, Write as _};

use quiesce_core::blockdev::{
    DiskError, DiskInfo, Graph, GraphError, Kind, Leaves, Unused, UnusedDev, Via,
};
use quiesce_core::fstype::{classify, Freezability};
use quiesce_core::linux::sysroot::RootDir;
use quiesce_core::mountinfo::{Dev, Escaped, MountInfo};
use quiesce_core::plan::{Plan, SkipReason};
use quiesce_core::sysfs::SysTree;
use quiesce_core::{Consistency, Status};

use super::plan::{Full, PlanSink, SkipWhy};
use super::text::Lossy;
use super::MAX_TARGETS;

/// Most disks one selection names, and most disks one filesystem spans.
pub const MAX_DISKS: usize = 16;

/// Most devices without a mounted filesystem listed per disk.
pub const MAX_UNUSED: usize = 32;

/// The caller's disks.
#[derive(Clone, Copy, Debug, Default)]
pub struct DiskSelection<'a> {
    /// `--disk`: the disks whose filesystems to freeze.
    pub disks: &'a [&'a CStr],
    /// `--exclude-disk`: freeze the filesystems on every disk but these.
    pub exclude: &'a [&'a CStr],
    /// `--allow-partial-group`: a filesystem only partly on the group's disks is left out
    /// (not covered) instead of refusing the plan.
    pub allow_partial_group: bool,
}

impl DiskSelection<'_> {
    /// No selection by disk.
    pub const NONE: DiskSelection<'static> = DiskSelection {
        disks: &[],
        exclude: &[],
        allow_partial_group: false,
    };

    /// Whether the caller selects by disk.
    pub fn active(&self) -> bool {
        !self.disks.is_empty() || !self.exclude.is_empty()
    }
}

/// A disk in a message: `vdb (serial DISK-B)`, or `loop3`.
pub type Label = heapless::String<96>;

fn label(d: &DiskInfo) -> Label {
    let mut l = Label::new();
    let _ = if d.serial.is_empty() {
        write!(l, "{}", d.name)
    } else {
        write!(l, "{} (serial {})", d.name, d.serial)
    };
    l
}

/// Why a selection by disk cannot be made.
#[derive(Clone, Debug)]
pub enum DiskWhy<'a> {
    /// Mount points and disks given together.
    WithMounts,
    /// `--disk` and `--exclude-disk` together.
    DiskAndExclude,
    /// More disks than a selection takes.
    TooMany(usize),
    /// A `DISK` that is not UTF-8 text.
    NotText(&'a CStr),
    /// The root directory (for `/sys` and `/dev`) cannot be opened.
    SysRoot,
    /// A `DISK` names no single disk.
    Disk(DiskError<'a>),
    /// Listing the loop devices failed.
    Loops(GraphError),
    /// More filesystems on the selected disks than a plan takes.
    TooManyFilesystems,
    /// A filesystem spans disks in the group and disks outside it.
    PartialGroup {
        /// Where it is mounted.
        mount_point: Escaped<'a>,
        /// Its type.
        fs_type: Escaped<'a>,
        /// Every disk it is on.
        spans: heapless::Vec<Label, MAX_DISKS>,
        /// The ones not in the group.
        missing: heapless::Vec<Label, MAX_DISKS>,
    },
}

/// A list of labels, comma-separated.
struct List<'l>(&'l [Label]);

impl fmt::Display for List<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (k, l) in self.0.iter().enumerate() {
            let sep = if k == 0 { "" } else { ", " };
            write!(f, "{sep}{l}")?;
        }
        Ok(())
    }
}

impl fmt::Display for DiskWhy<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiskWhy::WithMounts => f.write_str(
                "mount points and --disk/--exclude-disk do not mix: select by mount point or by disk",
            ),
            DiskWhy::DiskAndExclude => f.write_str(
                "--disk and --exclude-disk do not mix: name the disks to freeze, or the disks to leave out",
            ),
            DiskWhy::TooMany(n) => write!(f, "{n} disks given: at most {MAX_DISKS} are accepted"),
            DiskWhy::NotText(c) => write!(
                f,
                "disk '{}' is not UTF-8 text: name a block device path or serial:VALUE",
                Lossy(c.to_bytes())
            ),
            DiskWhy::SysRoot => f.write_str("cannot open / to read /sys and /dev"),
            DiskWhy::Disk(e) => e.fmt(f),
            DiskWhy::Loops(e) => write!(f, "cannot list the loop devices: {e}"),
            DiskWhy::TooManyFilesystems => write!(
                f,
                "more than {MAX_TARGETS} filesystems are on the selected disks: select fewer disks"
            ),
            DiskWhy::PartialGroup {
                mount_point,
                fs_type,
                spans,
                missing,
            } => write!(
                f,
                "{} ({}) spans disks {} but {} {} not in the group: its snapshot would not be \
                 consistent; add {} to the group, or pass --allow-partial-group to freeze the \
                 rest and leave it uncovered",
                super::text::Decoded(*mount_point),
                super::text::Decoded(*fs_type),
                List(spans),
                List(missing),
                if missing.len() == 1 { "is" } else { "are" },
                if missing.len() == 1 { "it" } else { "them" },
            ),
        }
    }
}

impl DiskWhy<'_> {
    /// The status of this refusal.
    pub fn status(&self) -> Status {
        match self {
            DiskWhy::WithMounts | DiskWhy::DiskAndExclude | DiskWhy::TooMany(_) => Status::Usage,
            DiskWhy::NotText(_) => Status::BadTarget,
            DiskWhy::SysRoot | DiskWhy::Loops(_) => Status::Internal,
            DiskWhy::Disk(e) => match e.kind {
                quiesce_core::blockdev::DiskErrorKind::UnknownForm
                | quiesce_core::blockdev::DiskErrorKind::EmptySerial => Status::Usage,
                quiesce_core::blockdev::DiskErrorKind::Tree(_)
                | quiesce_core::blockdev::DiskErrorKind::Graph(_) => Status::Internal,
                _ => Status::BadTarget,
            },
            DiskWhy::TooManyFilesystems => Status::PlanRefused,
            DiskWhy::PartialGroup { .. } => Status::PartialGroup,
        }
    }
}

/// One filesystem (superblock) on the group's disks.
#[derive(Clone, Debug)]
pub struct OnDisks<'t> {
    /// Its superblock.
    pub dev: Dev,
    /// Its first mount point in the table.
    pub mount_point: Escaped<'t>,
    /// Its type.
    pub fs_type: Escaped<'t>,
    /// Its leaf disks.
    pub leaves: Leaves<MAX_DISKS>,
}

/// What a selection by disk chose.
pub struct Chosen<'t> {
    /// The group's disks to report: the named ones, or (excluding) the ones met.
    pub group: heapless::Vec<Dev, MAX_TARGETS>,
    /// The excluded disks (`--exclude-disk`).
    pub excluded: heapless::Vec<Dev, MAX_DISKS>,
    /// Loop devices taken as disks.
    pub loop_disks: heapless::Vec<Dev, MAX_TARGETS>,
    /// Every filesystem with a disk in the group.
    pub filesystems: heapless::Vec<OnDisks<'t>, MAX_TARGETS>,
    /// Superblocks wholly in the group (the plan's `keep`).
    pub keep: heapless::Vec<Dev, MAX_TARGETS>,
    /// Superblocks partly in it, left out (`allow_partial_group`).
    pub partial: heapless::Vec<Dev, MAX_TARGETS>,
}

/// Something the selection notes without stopping: a filesystem whose disks cannot be told.
#[derive(Clone, Copy, Debug)]
pub struct Unknown<'t> {
    /// Where it is mounted.
    pub mount_point: Escaped<'t>,
    /// Why.
    pub error: GraphError,
}

/// The root of `/sys` and `/dev`.
pub fn root() -> Result<RootDir, DiskWhy<'static>> {
    RootDir::open(c"/").map_err(|_| DiskWhy::SysRoot)
}

fn text<'a>(c: &'a CStr) -> Result<&'a str, DiskWhy<'a>> {
    c.to_str().map_err(|_| DiskWhy::NotText(c))
}

/// Resolves the caller's disks and chooses the superblocks; `unknown` hears of each filesystem
/// whose disks cannot be told (left out).
pub fn choose<'a, 't>(
    tree: &RootDir,
    mounts: MountInfo<'t>,
    sel: &DiskSelection<'a>,
    unknown: &mut dyn FnMut(Unknown<'t>),
) -> Result<Chosen<'t>, DiskWhy<'a>>
where
    't: 'a,
{
    if !sel.disks.is_empty() && !sel.exclude.is_empty() {
        return Err(DiskWhy::DiskAndExclude);
    }
    let by_name = !sel.disks.is_empty();
    let args = if by_name { sel.disks } else { sel.exclude };
    if args.len() > MAX_DISKS {
        return Err(DiskWhy::TooMany(args.len()));
    }
    let mut chosen = Chosen {
        group: heapless::Vec::new(),
        excluded: heapless::Vec::new(),
        loop_disks: heapless::Vec::new(),
        filesystems: heapless::Vec::new(),
        keep: heapless::Vec::new(),
        partial: heapless::Vec::new(),
    };
    let plain = Graph::new(tree, mounts);
    let mut any_loop = false;
    for &c in args {
        let d = plain.resolve_disk(text(c)?).map_err(DiskWhy::Disk)?;
        any_loop |= d.kind == Kind::Loop;
        if by_name {
            if !chosen.group.contains(&d.dev) {
                let _ = chosen.group.push(d.dev);
            }
        } else if !chosen.excluded.contains(&d.dev) {
            let _ = chosen.excluded.push(d.dev);
        }
        if d.kind == Kind::Loop && !chosen.loop_disks.contains(&d.dev) {
            let _ = chosen.loop_disks.push(d.dev);
        }
    }
    if any_loop {
        loops_as_disks(&plain, &mut chosen.loop_disks)?;
    }
    let Chosen {
        group,
        excluded,
        loop_disks,
        filesystems,
        keep,
        partial,
    } = &mut chosen;
    let graph = Graph::new(tree, mounts).with_loop_disks(loop_disks);
    let named = group.clone();
    let member = |disk: Dev| {
        if by_name {
            named.contains(&disk)
        } else {
            !excluded.contains(&disk)
        }
    };
    for entry in mounts.entries().flatten() {
        if keep.contains(&entry.dev) || partial.contains(&entry.dev) {
            continue;
        }
        let mut leaves = Leaves::<MAX_DISKS>::new();
        if let Err(error) = graph.filesystem_leaves(&entry, &mut leaves) {
            if !leaves.via.contains(Via::NO_DISK) && entry.dev.major != 0 {
                unknown(Unknown {
                    mount_point: entry.mount_point,
                    error,
                });
            }
            continue;
        }
        let inside = leaves.disks.iter().filter(|&&d| member(d)).count();
        if inside == 0 {
            continue;
        }
        let writable_freezable = matches!(classify(entry.fs_type.raw()), Freezability::Freezable)
            && !entry.super_read_only();
        if inside < leaves.disks.len() && writable_freezable {
            if !sel.allow_partial_group {
                let mut spans = heapless::Vec::new();
                let mut missing = heapless::Vec::new();
                for &d in &leaves.disks {
                    let l = graph
                        .disk_info(d)
                        .map(|i| label(&i))
                        .unwrap_or_else(|_| dev_label(d));
                    if !member(d) {
                        let _ = missing.push(l.clone());
                    }
                    let _ = spans.push(l);
                }
                return Err(DiskWhy::PartialGroup {
                    mount_point: entry.mount_point,
                    fs_type: entry.fs_type,
                    spans,
                    missing,
                });
            }
            partial
                .push(entry.dev)
                .map_err(|_| DiskWhy::TooManyFilesystems)?;
        } else {
            keep.push(entry.dev)
                .map_err(|_| DiskWhy::TooManyFilesystems)?;
        }
        if !by_name {
            for &d in &leaves.disks {
                if member(d) && !group.contains(&d) {
                    group.push(d).map_err(|_| DiskWhy::TooManyFilesystems)?;
                }
            }
        }
        filesystems
            .push(OnDisks {
                dev: entry.dev,
                mount_point: entry.mount_point,
                fs_type: entry.fs_type,
                leaves,
            })
            .map_err(|_| DiskWhy::TooManyFilesystems)?;
    }
    Ok(chosen)
}

fn dev_label(d: Dev) -> Label {
    let mut l = Label::new();
    let _ = write!(l, "{d}");
    l
}

/// Adds every loop device whose backing file is not on a loop device (it stands in for a
/// disk) to `out`.
fn loops_as_disks<T: SysTree + ?Sized>(
    graph: &Graph<'_, '_, T>,
    out: &mut heapless::Vec<Dev, MAX_TARGETS>,
) -> Result<(), DiskWhy<'static>> {
    let mut failed = None;
    let _ = graph.tree().list("/sys/block", &mut |name| {
        if !name.starts_with("loop") {
            return;
        }
        let Ok(dev) = graph.dev_of_name(name) else {
            return;
        };
        let Ok(fs) = graph.backing_fs(dev) else {
            // Unbound, or its file is gone: not a disk of anyone's.
            return;
        };
        let mut leaves = Leaves::<MAX_DISKS>::new();
        let stacked = match graph.device_leaves(fs, &mut leaves) {
            Ok(()) => leaves.via.contains(Via::LOOP),
            Err(_) => true,
        };
        if !stacked && !out.contains(&dev) && out.push(dev).is_err() {
            failed = Some(GraphError {
                dev,
                kind: quiesce_core::blockdev::GraphErrorKind::TooManyDisks,
            });
        }
    });
    match failed {
        Some(e) => Err(DiskWhy::Loops(e)),
        None => Ok(()),
    }
}

/// What became of a filesystem on a disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It is frozen.
    Frozen,
    /// It is not, and why (a partial group's is [`SkipReason::PartialGroup`]: not covered).
    Skipped(SkipWhy),
}

/// A filesystem on a disk, for the per-disk view.
#[derive(Clone, Copy, Debug)]
pub struct DiskFs<'t> {
    /// Its superblock.
    pub dev: Dev,
    /// Where it is mounted.
    pub mount_point: Escaped<'t>,
    /// Its type.
    pub fs_type: Escaped<'t>,
    /// Frozen, or skipped and why.
    pub verdict: Verdict,
}

/// One disk of the group, with the filesystems on it.
#[derive(Clone, Copy, Debug)]
pub struct DiskView<'v> {
    /// Its identity.
    pub info: &'v DiskInfo,
    /// Its filesystems, in mount-table order.
    pub filesystems: &'v [DiskFs<'v>],
    /// Its block devices that hold no mounted filesystem (the disk itself when it has no
    /// partitions, else its partitions), each skipped with why: swap, unmounted, or a raw
    /// device in use by a holder (an LVM volume, dm-crypt, md, ...) that holds none.
    pub unused: &'v [UnusedDev],
    /// What its snapshot can be, if the session succeeds: file-system-consistent when every
    /// filesystem on it is frozen (or read-only) and no raw device on it is in use, else not
    /// consistent (crash-consistent).
    pub level: Consistency,
}

/// Tells `sink`, for each disk of the group, its filesystems and level. `frozen`: the
/// superblocks that became targets (the rest were skipped, with their reasons in the plan or
/// because they could not be opened).
pub fn report<const N: usize>(
    tree: &RootDir,
    chosen: &Chosen<'_>,
    plan: &Plan<'_, N>,
    frozen: &[Dev],
    sink: &mut dyn PlanSink,
) -> Result<(), Full> {
    let graph = Graph::new(tree, plan.mountinfo()).with_loop_disks(&chosen.loop_disks);
    for &disk in &chosen.group {
        let Ok(info) = graph.disk_info(disk) else {
            continue;
        };
        let mut list: heapless::Vec<DiskFs<'_>, MAX_TARGETS> = heapless::Vec::new();
        let mut consistent = true;
        for fs in chosen
            .filesystems
            .iter()
            .filter(|f| f.leaves.disks.contains(&disk))
        {
            let verdict = if frozen.contains(&fs.dev) {
                Verdict::Frozen
            } else {
                let why = plan
                    .skips()
                    .iter()
                    .find(|s| s.dev == fs.dev)
                    .map_or(SkipWhy::CannotOpen, |s| SkipWhy::Plan(s.reason));
                Verdict::Skipped(why)
            };
            consistent &= matches!(
                verdict,
                Verdict::Frozen | Verdict::Skipped(SkipWhy::Plan(SkipReason::ReadOnly))
            );
            let _ = list.push(DiskFs {
                dev: fs.dev,
                mount_point: fs.mount_point,
                fs_type: fs.fs_type,
                verdict,
            });
        }
        let mut unused: heapless::Vec<UnusedDev, MAX_UNUSED> = heapless::Vec::new();
        // A disk whose partitions cannot be read is reported with its filesystems only.
        let _ = graph.each_unused(disk, &mut |u| {
            consistent &= !matches!(u.why, Unused::InUse(_));
            let _ = unused.push(u);
        });
        let level = if consistent && !list.is_empty() {
            Consistency::FileSystem
        } else {
            Consistency::None
        };
        sink.disk(&DiskView {
            info: &info,
            filesystems: &list,
            unused: &unused,
            level,
        })?;
    }
    Ok(())
}
