//! The block-device graph: from a filesystem down to the disks that hold its blocks, and from a
//! `DISK` argument (`/dev/vdb`, `/dev/disk/by-id/...`, `serial:VALUE`) to one disk.
//!
//! Read from a [`SysTree`] (the live `/sys` and `/dev` under a root directory, or a recorded
//! tree in the unit tests) and the mount table:
//! - a partition (`/sys/class/block/X/partition` exists) lives on the disk whose directory holds
//!   its own;
//! - a device-mapper device (`dm/uuid`: `LVM-` a logical volume, `CRYPT-` dm-crypt, `mpath-`
//!   multipath, `partN-` a kpartx partition) and an md array (`md/`) live on their `slaves/`;
//!   a multipath device is itself a leaf (its slaves are paths to one disk, not disks);
//! - a loop device lives where its backing file does: on the filesystem holding the file (its
//!   `st_dev`), and so on that filesystem's disks — unless the caller declares it a disk;
//! - a btrfs filesystem (anonymous device `0:N`) lives on every device listed in
//!   `/sys/fs/btrfs/FSID/devices/`, the FSID being the one that lists its mount source;
//! - anything else with a device directory is a disk (virtio, NVMe, SCSI, ...). A filesystem
//!   on no block device at all (tmpfs) has no disks.
//!
//! No heap: names are `heapless` strings, the leaf set a `heapless::Vec` of the caller's size.

use core::fmt;

use crate::mountinfo::{Dev, MountEntry, MountInfo};
use crate::sysfs::{parse_dev, PathBuf, SysTree, TreeError};

/// A kernel device name (`vda`, `nvme0n1p2`, `dm-3`).
pub type Name = heapless::String<32>;
/// A disk's serial number or WWID, as sysfs shows it (trimmed).
pub type Serial = heapless::String<128>;

/// How deep stacks are followed (loop on dm on md on partition ...).
const MAX_DEPTH: usize = 16;

/// What a block device is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A whole disk: a leaf of the graph.
    Disk,
    /// A partition of a disk.
    Partition,
    /// An LVM logical volume (`dm/uuid` `LVM-...`).
    Lvm,
    /// dm-crypt (`CRYPT-...`: LUKS, plain, ...).
    Crypt,
    /// A multipath device (`mpath-...`): a leaf, the disk seen through several paths.
    Multipath,
    /// A kpartx partition of a device-mapper device (`partN-...`).
    DmPartition,
    /// Another device-mapper target (its uuid unknown or empty).
    DeviceMapper,
    /// An md (software RAID) array.
    Md,
    /// A loop device.
    Loop,
}

impl Kind {
    /// A lowercase word for messages and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Disk => "disk",
            Kind::Partition => "partition",
            Kind::Lvm => "LVM logical volume",
            Kind::Crypt => "dm-crypt device",
            Kind::Multipath => "multipath device",
            Kind::DmPartition => "device-mapper partition",
            Kind::DeviceMapper => "device-mapper device",
            Kind::Md => "md array",
            Kind::Loop => "loop device",
        }
    }
}

bitflags::bitflags! {
    /// The layers met on the way from a filesystem to its disks.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct Via: u16 {
        /// A partition.
        const PARTITION = 1;
        /// An LVM logical volume.
        const LVM = 1 << 1;
        /// dm-crypt.
        const CRYPT = 1 << 2;
        /// Multipath.
        const MULTIPATH = 1 << 3;
        /// Another device-mapper device (kpartx partitions included).
        const DEVICE_MAPPER = 1 << 4;
        /// An md array.
        const MD = 1 << 5;
        /// A loop device followed to its backing file.
        const LOOP = 1 << 6;
        /// A btrfs filesystem with its devices.
        const BTRFS = 1 << 7;
        /// Storage on no block device (a loop image on tmpfs, say): it has no disk.
        const NO_DISK = 1 << 8;
    }
}

/// One block device, described.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockDev {
    /// Its number.
    pub dev: Dev,
    /// Its kernel name.
    pub name: Name,
    /// What it is.
    pub kind: Kind,
}

/// A disk's identity, for matching and for the plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskInfo {
    /// Its number.
    pub dev: Dev,
    /// Its kernel name (`/dev/NAME`); changes between boots, never matched on alone.
    pub name: Name,
    /// `/sys/block/X/serial` (virtio), else `/sys/block/X/device/serial` (NVMe, SCSI); empty if
    /// it has none.
    pub serial: Serial,
    /// `/sys/block/X/wwid`, else `device/wwid`; empty if it has none.
    pub wwid: Serial,
    /// What it is ([`Kind::Disk`], or a loop or multipath device taken as a disk).
    pub kind: Kind,
}

/// Why the graph could not be followed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GraphErrorKind {
    /// Reading the device's sysfs entries failed.
    Tree(TreeError),
    /// The device has no sysfs entry (`/sys/dev/block/MAJ:MIN`).
    UnknownDevice,
    /// Stacked deeper than the graph follows.
    TooDeep,
    /// More leaf disks than the caller's capacity.
    TooManyDisks,
    /// A btrfs filesystem's mount source is not one of the devices of a btrfs in
    /// `/sys/fs/btrfs`.
    BtrfsDevicesUnknown,
    /// A loop device's backing file cannot be found (deleted, or outside this root).
    BackingFileMissing,
    /// A loop device with no backing file.
    LoopUnbound,
}

/// Why the graph could not be followed, and at which device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GraphError {
    /// The device being looked at.
    pub dev: Dev,
    /// What went wrong.
    pub kind: GraphErrorKind,
}

impl fmt::Display for GraphError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.dev;
        match self.kind {
            GraphErrorKind::Tree(e) => {
                write!(f, "device {d}: cannot read its sysfs entries ({e:?})")
            }
            GraphErrorKind::UnknownDevice => write!(f, "device {d}: no /sys/dev/block/{d}"),
            GraphErrorKind::TooDeep => {
                write!(f, "device {d}: stacked more than {MAX_DEPTH} levels deep")
            }
            GraphErrorKind::TooManyDisks => write!(f, "device {d}: on more disks than supported"),
            GraphErrorKind::BtrfsDevicesUnknown => write!(
                f,
                "btrfs filesystem {d}: its mount source is not listed in /sys/fs/btrfs/*/devices"
            ),
            GraphErrorKind::BackingFileMissing => write!(
                f,
                "loop device {d}: its backing file cannot be found (deleted, or not visible here)"
            ),
            GraphErrorKind::LoopUnbound => write!(f, "loop device {d}: no backing file"),
        }
    }
}

/// The leaf disks of a filesystem or device, and the layers met on the way.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Leaves<const N: usize> {
    /// The disks, each once, in the order met.
    pub disks: heapless::Vec<Dev, N>,
    /// The layers met.
    pub via: Via,
}

impl<const N: usize> Leaves<N> {
    /// An empty set.
    pub fn new() -> Self {
        Leaves {
            disks: heapless::Vec::new(),
            via: Via::empty(),
        }
    }

    fn add(&mut self, disk: Dev, at: Dev) -> Result<(), GraphError> {
        if !self.disks.contains(&disk) {
            self.disks.push(disk).map_err(|_| GraphError {
                dev: at,
                kind: GraphErrorKind::TooManyDisks,
            })?;
        }
        Ok(())
    }
}

fn path(args: fmt::Arguments<'_>) -> Result<PathBuf, TreeError> {
    let mut p = PathBuf::new();
    fmt::write(&mut p, args).map_err(|_| TreeError::TooLong)?;
    Ok(p)
}

fn trimmed(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &b[start..end.max(start)]
}

/// The graph over a tree and a mount table.
pub struct Graph<'t, 'm, T: SysTree + ?Sized> {
    tree: &'t T,
    mounts: MountInfo<'m>,
    loop_disks: &'t [Dev],
}

impl<'t, 'm, T: SysTree + ?Sized> Graph<'t, 'm, T> {
    /// A graph over `tree`, with `mounts` (the mount table of the same system: it finds the
    /// filesystem holding a loop device's backing file, and btrfs's mount sources).
    pub fn new(tree: &'t T, mounts: MountInfo<'m>) -> Self {
        Graph {
            tree,
            mounts,
            loop_disks: &[],
        }
    }

    /// Loop devices to take as disks (leaves) instead of following them to their backing
    /// files: what a caller names as a disk is one.
    pub fn with_loop_disks(mut self, loops: &'t [Dev]) -> Self {
        self.loop_disks = loops;
        self
    }

    /// The tree read.
    pub fn tree(&self) -> &'t T {
        self.tree
    }

    fn err(dev: Dev) -> impl Fn(TreeError) -> GraphError {
        move |e| GraphError {
            dev,
            kind: match e {
                TreeError::NotFound => GraphErrorKind::UnknownDevice,
                e => GraphErrorKind::Tree(e),
            },
        }
    }

    /// `/sys/dev/block/MAJ:MIN`'s link target: `.../block/vda/vda1`.
    fn link<'b>(&self, dev: Dev, buf: &'b mut [u8]) -> Result<&'b str, GraphError> {
        let p = path(format_args!("/sys/dev/block/{dev}")).map_err(Self::err(dev))?;
        self.tree.read_link(&p, buf).map_err(Self::err(dev))
    }

    fn has(&self, dev: Dev, rel: &str) -> bool {
        let Ok(p) = path(format_args!("/sys/dev/block/{dev}/{rel}")) else {
            return false;
        };
        let mut b = [0u8; 1];
        self.tree.read(&p, &mut b).is_ok() || self.tree.list(&p, &mut |_| {}).is_ok()
    }

    fn read<'b>(&self, dev: Dev, rel: &str, buf: &'b mut [u8]) -> Result<&'b [u8], TreeError> {
        let p = path(format_args!("/sys/dev/block/{dev}/{rel}"))?;
        self.tree.read(&p, buf).map(trimmed)
    }

    /// The device named `name` (`/sys/class/block/NAME/dev`).
    pub fn dev_of_name(&self, name: &str) -> Result<Dev, TreeError> {
        let p = path(format_args!("/sys/class/block/{name}/dev"))?;
        let mut b = [0u8; 32];
        parse_dev(self.tree.read(&p, &mut b)?).ok_or(TreeError::Malformed)
    }

    /// What `dev` is, and its kernel name.
    pub fn describe(&self, dev: Dev) -> Result<BlockDev, GraphError> {
        let mut lb = [0u8; 256];
        let link = self.link(dev, &mut lb)?;
        let name = link.rsplit('/').next().unwrap_or(link);
        let name = Name::try_from(name).map_err(|_| GraphError {
            dev,
            kind: GraphErrorKind::Tree(TreeError::TooLong),
        })?;
        let mut b = [0u8; 160];
        let kind = if self.has(dev, "partition") {
            Kind::Partition
        } else if let Ok(uuid) = self.read(dev, "dm/uuid", &mut b) {
            dm_kind(uuid)
        } else if self.has(dev, "dm") {
            Kind::DeviceMapper
        } else if self.has(dev, "md") {
            Kind::Md
        } else if self.has(dev, "loop") || name.starts_with("loop") {
            Kind::Loop
        } else {
            Kind::Disk
        };
        Ok(BlockDev { dev, name, kind })
    }

    /// The whole disk a partition belongs to (the parent of its sysfs directory).
    pub fn partition_parent(&self, part: Dev) -> Result<BlockDev, GraphError> {
        let mut lb = [0u8; 256];
        let link = self.link(part, &mut lb)?;
        let mut it = link.rsplit('/');
        let _self_name = it.next();
        let parent = it.next().ok_or(GraphError {
            dev: part,
            kind: GraphErrorKind::Tree(TreeError::Malformed),
        })?;
        let pdev = self.dev_of_name(parent).map_err(Self::err(part))?;
        self.describe(pdev)
    }

    /// The device a kpartx partition is on (its one lower device).
    pub fn dm_partition_parent(&self, part: Dev) -> Result<BlockDev, GraphError> {
        let mut lower = None;
        self.each_slave(part, &mut |d| {
            lower.get_or_insert(d);
            Ok(())
        })?;
        let lower = lower.ok_or(GraphError {
            dev: part,
            kind: GraphErrorKind::UnknownDevice,
        })?;
        self.describe(lower)
    }

    /// The multipath device that `disk` is a path of, if any (`holders/`).
    pub fn multipath_holder(&self, disk: Dev) -> Option<BlockDev> {
        let p = path(format_args!("/sys/dev/block/{disk}/holders")).ok()?;
        let mut found = None;
        let _ = self.tree.list(&p, &mut |name| {
            if found.is_some() {
                return;
            }
            let Ok(d) = self.dev_of_name(name) else {
                return;
            };
            if let Ok(b) = self.describe(d) {
                if b.kind == Kind::Multipath {
                    found = Some(b);
                }
            }
        });
        found
    }

    /// A path of a multipath device stands for that device (the disk it reaches): its identity
    /// with the path's serial and WWID (the device-mapper device has none of its own).
    fn through_multipath(&self, d: DiskInfo) -> DiskInfo {
        match self.multipath_holder(d.dev) {
            Some(m) => DiskInfo {
                dev: m.dev,
                name: m.name,
                kind: Kind::Multipath,
                ..d
            },
            None => d,
        }
    }

    /// Calls `f` with each device `dev` is stacked on (`slaves/`).
    fn each_slave(
        &self,
        dev: Dev,
        f: &mut dyn FnMut(Dev) -> Result<(), GraphError>,
    ) -> Result<(), GraphError> {
        let p = path(format_args!("/sys/dev/block/{dev}/slaves")).map_err(Self::err(dev))?;
        let mut result = Ok(());
        self.tree
            .list(&p, &mut |name| {
                if result.is_err() {
                    return;
                }
                result = self
                    .dev_of_name(name)
                    .map_err(Self::err(dev))
                    .and_then(&mut *f);
            })
            .map_err(Self::err(dev))?;
        result
    }

    /// The leaf disks of the filesystem mounted as `entry`.
    pub fn filesystem_leaves<const N: usize>(
        &self,
        entry: &MountEntry<'_>,
        out: &mut Leaves<N>,
    ) -> Result<(), GraphError> {
        self.fs_leaves(entry, out, 0)
    }

    /// The leaf disks of block device `dev` (or of the filesystem with device `dev` in the
    /// mount table, for btrfs's and tmpfs's anonymous devices).
    pub fn device_leaves<const N: usize>(
        &self,
        dev: Dev,
        out: &mut Leaves<N>,
    ) -> Result<(), GraphError> {
        self.dev_leaves(dev, out, 0)
    }

    fn fs_leaves<const N: usize>(
        &self,
        entry: &MountEntry<'_>,
        out: &mut Leaves<N>,
        depth: usize,
    ) -> Result<(), GraphError> {
        if entry.fs_type.eq_decoded(b"btrfs") {
            return self.btrfs_leaves(entry, out, depth);
        }
        if entry.dev.major == 0 {
            out.via |= Via::NO_DISK;
            return Ok(());
        }
        self.dev_leaves(entry.dev, out, depth)
    }

    fn dev_leaves<const N: usize>(
        &self,
        dev: Dev,
        out: &mut Leaves<N>,
        depth: usize,
    ) -> Result<(), GraphError> {
        if depth > MAX_DEPTH {
            return Err(GraphError {
                dev,
                kind: GraphErrorKind::TooDeep,
            });
        }
        if dev.major == 0 {
            // An anonymous device: a filesystem's own (btrfs) or none (tmpfs).
            let entry = self.mounts.entries().flatten().find(|e| e.dev == dev);
            return match entry {
                Some(e) if e.fs_type.eq_decoded(b"btrfs") => self.btrfs_leaves(&e, out, depth + 1),
                _ => {
                    out.via |= Via::NO_DISK;
                    Ok(())
                }
            };
        }
        let d = self.describe(dev)?;
        match d.kind {
            Kind::Disk | Kind::Multipath => {
                if d.kind == Kind::Multipath {
                    out.via |= Via::MULTIPATH;
                }
                out.add(dev, dev)
            }
            Kind::Partition => {
                out.via |= Via::PARTITION;
                let parent = self.partition_parent(dev)?;
                self.dev_leaves(parent.dev, out, depth + 1)
            }
            Kind::Lvm | Kind::Crypt | Kind::DmPartition | Kind::DeviceMapper | Kind::Md => {
                out.via |= match d.kind {
                    Kind::Lvm => Via::LVM,
                    Kind::Crypt => Via::CRYPT,
                    Kind::Md => Via::MD,
                    _ => Via::DEVICE_MAPPER,
                };
                let mut any = false;
                self.each_slave(dev, &mut |lower| {
                    any = true;
                    self.dev_leaves(lower, out, depth + 1)
                })?;
                if !any {
                    // A target with no lower device (dm-zero, dm-error): on no disk.
                    out.via |= Via::NO_DISK;
                }
                Ok(())
            }
            Kind::Loop => {
                if self.loop_disks.contains(&dev) {
                    return out.add(dev, dev);
                }
                out.via |= Via::LOOP;
                let fs = self.backing_fs(dev)?;
                self.dev_leaves(fs, out, depth + 1)
            }
        }
    }

    /// The device of the filesystem holding loop device `dev`'s backing file. Not inlined: its
    /// path buffer stays out of the recursion's stack frames.
    #[inline(never)]
    pub fn backing_fs(&self, dev: Dev) -> Result<Dev, GraphError> {
        let mut b = [0u8; 4096];
        let backing = match self.read(dev, "loop/backing_file", &mut b) {
            Ok(p) if !p.is_empty() => p,
            _ => {
                return Err(GraphError {
                    dev,
                    kind: GraphErrorKind::LoopUnbound,
                })
            }
        };
        let missing = GraphError {
            dev,
            kind: GraphErrorKind::BackingFileMissing,
        };
        let backing = core::str::from_utf8(backing).map_err(|_| missing)?;
        if backing.ends_with(" (deleted)") {
            return Err(missing);
        }
        self.tree.file_dev(backing).map_err(|_| missing)
    }

    fn btrfs_leaves<const N: usize>(
        &self,
        entry: &MountEntry<'_>,
        out: &mut Leaves<N>,
        depth: usize,
    ) -> Result<(), GraphError> {
        out.via |= Via::BTRFS;
        let unknown = GraphError {
            dev: entry.dev,
            kind: GraphErrorKind::BtrfsDevicesUnknown,
        };
        let mut sb = [0u8; 256];
        let source = entry.source.decode_into(&mut sb).ok_or(unknown)?;
        let source = core::str::from_utf8(source).map_err(|_| unknown)?;
        let sdev = self.tree.block_dev(source).map_err(|_| unknown)?;
        let sname = self.describe(sdev)?.name;
        // The FSID whose devices/ lists the source.
        let mut fsid: heapless::String<64> = heapless::String::new();
        self.tree
            .list("/sys/fs/btrfs", &mut |id| {
                if !fsid.is_empty() {
                    return;
                }
                let Ok(p) = path(format_args!("/sys/fs/btrfs/{id}/devices")) else {
                    return;
                };
                let mut found = false;
                let _ = self.tree.list(&p, &mut |n| found |= n == sname.as_str());
                if found {
                    let _ = fsid.push_str(id);
                }
            })
            .map_err(|_| unknown)?;
        if fsid.is_empty() {
            return Err(unknown);
        }
        let p = path(format_args!("/sys/fs/btrfs/{fsid}/devices")).map_err(|_| unknown)?;
        let mut result = Ok(());
        self.tree
            .list(&p, &mut |name| {
                if result.is_err() {
                    return;
                }
                result = self
                    .dev_of_name(name)
                    .map_err(|_| unknown)
                    .and_then(|d| self.dev_leaves(d, out, depth + 1));
            })
            .map_err(|_| unknown)?;
        result
    }

    /// The identity of disk `dev`: name, serial, WWID.
    pub fn disk_info(&self, dev: Dev) -> Result<DiskInfo, GraphError> {
        let d = self.describe(dev)?;
        Ok(DiskInfo {
            dev,
            name: d.name,
            serial: self.first_attr(dev, &["serial", "device/serial"]),
            wwid: self.first_attr(dev, &["wwid", "device/wwid"]),
            kind: d.kind,
        })
    }

    /// The first of these attributes of `dev` that exists and is not blank, trimmed; empty if
    /// none is (or it is not UTF-8, or too long).
    fn first_attr(&self, dev: Dev, names: &[&str]) -> Serial {
        let mut b = [0u8; 256];
        for name in names {
            let Ok(v) = self.read(dev, name, &mut b) else {
                continue;
            };
            if let Some(s) = core::str::from_utf8(v)
                .ok()
                .filter(|s| !s.is_empty())
                .and_then(|s| Serial::try_from(s).ok())
            {
                return s;
            }
        }
        Serial::new()
    }

    /// Calls `f` with every whole disk in `/sys/block` (not device-mapper, md or loop).
    pub fn each_disk(&self, f: &mut dyn FnMut(DiskInfo)) -> Result<(), TreeError> {
        let mut failed = Ok(());
        self.tree.list("/sys/block", &mut |name| {
            let dev = match self.dev_of_name(name) {
                Ok(d) => d,
                Err(e) => {
                    failed = failed.and(Err(e));
                    return;
                }
            };
            if let Ok(info) = self.disk_info(dev) {
                if matches!(info.kind, Kind::Disk | Kind::Multipath) {
                    f(info);
                }
            }
        })?;
        failed
    }

    /// The disk a `DISK` argument names: a block device path (`/dev/vdb`, a `/dev/disk/by-*`
    /// link) or `serial:VALUE` (see [`serial_matches`]). A path of a multipath device (its
    /// node, or its serial, which all its paths share) names the multipath device.
    pub fn resolve_disk<'a>(&self, arg: &'a str) -> Result<DiskInfo, DiskError<'a>> {
        let fail = |kind| DiskError { arg, kind };
        if let Some(value) = arg.strip_prefix("serial:") {
            let value = value.trim();
            if value.is_empty() {
                return Err(fail(DiskErrorKind::EmptySerial));
            }
            let mut found: Option<DiskInfo> = None;
            let mut second: Option<Name> = None;
            self.each_disk(&mut |d| {
                if serial_matches(value, &d.serial) {
                    let d = self.through_multipath(d);
                    if found.as_ref().is_some_and(|f| f.dev == d.dev) {
                        return;
                    }
                    if found.is_none() {
                        found = Some(d);
                    } else if second.is_none() {
                        second = Some(d.name);
                    }
                }
            })
            .map_err(|e| fail(DiskErrorKind::Tree(e)))?;
            return match (found, second) {
                (Some(d), None) => Ok(d),
                (Some(d), Some(other)) => Err(fail(DiskErrorKind::Ambiguous {
                    first: d.name,
                    second: other,
                })),
                (None, _) => Err(fail(DiskErrorKind::NoSuchSerial)),
            };
        }
        if !arg.starts_with('/') {
            return Err(fail(DiskErrorKind::UnknownForm));
        }
        let dev = self.tree.block_dev(arg).map_err(|e| {
            fail(match e {
                TreeError::NotFound => DiskErrorKind::NotFound,
                TreeError::NotBlockDevice => DiskErrorKind::NotBlockDevice,
                e => DiskErrorKind::Tree(e),
            })
        })?;
        let d = self
            .describe(dev)
            .map_err(|e| fail(DiskErrorKind::Graph(e)))?;
        match d.kind {
            Kind::Disk | Kind::Multipath | Kind::Loop => self
                .disk_info(dev)
                .map(|d| self.through_multipath(d))
                .map_err(|e| fail(DiskErrorKind::Graph(e))),
            Kind::Partition | Kind::DmPartition => {
                let parent = if d.kind == Kind::Partition {
                    self.partition_parent(dev)
                } else {
                    self.dm_partition_parent(dev)
                }
                .map_err(|e| fail(DiskErrorKind::Graph(e)))?;
                Err(fail(DiskErrorKind::Partition {
                    name: d.name,
                    disk: parent.name,
                }))
            }
            kind => Err(fail(DiskErrorKind::Stacked { name: d.name, kind })),
        }
    }
}

/// Why a block device on a disk holds no mounted filesystem (the per-disk view's skipped
/// devices).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unused {
    /// Active swap (listed in `/proc/swaps`), on it or on a device stacked on it.
    Swap,
    /// Nothing on it is mounted, and nothing holds it (`holders/` is empty).
    Unmounted,
    /// Held by this device (`holders/`: an LVM volume, dm-crypt, md, ...) on which no
    /// filesystem is mounted: a raw device in use, not frozen.
    InUse(Name),
}

/// A block device on a disk that holds no mounted filesystem, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnusedDev {
    /// The device (the disk itself when it has no partitions, else a partition).
    pub dev: BlockDev,
    /// Why it is skipped.
    pub why: Unused,
}

/// What is on a device, followed up its holders.
enum Use {
    Mounted,
    Swap,
    Held(Name),
    Nothing,
}

impl<'t, 'm, T: SysTree + ?Sized> Graph<'t, 'm, T> {
    /// Calls `f` with each block device on `disk` that holds no mounted filesystem: the disk
    /// itself if it has no partitions, else each partition; with why (swap, unmounted, or in
    /// use by a holder that holds no mounted filesystem). A device is in use by a mounted
    /// filesystem when it is mounted, is a device of a mounted btrfs
    /// (`/sys/fs/btrfs/FSID/devices/`), or one of its holders (`holders/`, followed up) is.
    /// Swap is read from `/proc/swaps` in the same tree (none if it cannot be read).
    pub fn each_unused(&self, disk: Dev, f: &mut dyn FnMut(UnusedDev)) -> Result<(), GraphError> {
        let mut swaps = [0u8; 2048];
        let swaps = self.tree.read("/proc/swaps", &mut swaps).unwrap_or(&[]);
        let p = path(format_args!("/sys/dev/block/{disk}")).map_err(Self::err(disk))?;
        let mut parts: heapless::Vec<Dev, 64> = heapless::Vec::new();
        let mut result = Ok(());
        self.tree
            .list(&p, &mut |name| {
                let Ok(q) = path(format_args!("/sys/dev/block/{disk}/{name}/partition")) else {
                    return;
                };
                let mut b = [0u8; 16];
                if self.tree.read(&q, &mut b).is_err() {
                    return;
                }
                match self.dev_of_name(name) {
                    Ok(d) => {
                        if parts.push(d).is_err() {
                            result = Err(GraphError {
                                dev: disk,
                                kind: GraphErrorKind::TooManyDisks,
                            });
                        }
                    }
                    Err(e) => result = Err(Self::err(disk)(e)),
                }
            })
            .map_err(Self::err(disk))?;
        result?;
        if parts.is_empty() {
            let _ = parts.push(disk);
        }
        parts.sort_unstable_by_key(|d| (d.major, d.minor));
        for &d in &parts {
            let why = match self.device_use(d, swaps, 0)? {
                Use::Mounted => continue,
                Use::Swap => Unused::Swap,
                Use::Held(h) => Unused::InUse(h),
                Use::Nothing => Unused::Unmounted,
            };
            f(UnusedDev {
                dev: self.describe(d)?,
                why,
            });
        }
        Ok(())
    }

    fn device_use(&self, dev: Dev, swaps: &[u8], depth: usize) -> Result<Use, GraphError> {
        if depth > MAX_DEPTH {
            return Err(GraphError {
                dev,
                kind: GraphErrorKind::TooDeep,
            });
        }
        if self.mounts.entries().flatten().any(|e| e.dev == dev) {
            return Ok(Use::Mounted);
        }
        let name = self.describe(dev)?.name;
        if self.in_mounted_btrfs(&name) {
            return Ok(Use::Mounted);
        }
        if self.is_swap(dev, swaps) {
            return Ok(Use::Swap);
        }
        let p = path(format_args!("/sys/dev/block/{dev}/holders")).map_err(Self::err(dev))?;
        let mut holders: heapless::Vec<Dev, 16> = heapless::Vec::new();
        // A device without holders/ (a recording that lacks it) has none.
        let _ = self.tree.list(&p, &mut |h| {
            if let Ok(d) = self.dev_of_name(h) {
                let _ = holders.push(d);
            }
        });
        let mut first: Option<Name> = None;
        let mut swap = false;
        for &h in &holders {
            match self.device_use(h, swaps, depth + 1)? {
                Use::Mounted => return Ok(Use::Mounted),
                Use::Swap => swap = true,
                Use::Held(_) | Use::Nothing => {}
            }
            if first.is_none() {
                first = Some(self.describe(h)?.name);
            }
        }
        Ok(match (swap, first) {
            (true, _) => Use::Swap,
            (false, Some(h)) => Use::Held(h),
            (false, None) => Use::Nothing,
        })
    }

    /// Whether the device named `name` is a device of a mounted btrfs (`/sys/fs/btrfs/FSID`
    /// exists while it is mounted).
    fn in_mounted_btrfs(&self, name: &str) -> bool {
        let mut found = false;
        let _ = self.tree.list("/sys/fs/btrfs", &mut |id| {
            if found {
                return;
            }
            if let Ok(p) = path(format_args!("/sys/fs/btrfs/{id}/devices")) {
                let _ = self.tree.list(&p, &mut |n| found |= n == name);
            }
        });
        found
    }

    /// Whether `dev` is active swap: a `partition` line of `/proc/swaps` naming it.
    fn is_swap(&self, dev: Dev, swaps: &[u8]) -> bool {
        swaps.split(|&b| b == b'\n').skip(1).any(|line| {
            let mut fields = line
                .split(|&b| b == b' ' || b == b'\t')
                .filter(|f| !f.is_empty());
            let (Some(file), Some(kind)) = (fields.next(), fields.next()) else {
                return false;
            };
            kind == b"partition"
                && core::str::from_utf8(file)
                    .ok()
                    .and_then(|f| self.tree.block_dev(f).ok())
                    == Some(dev)
        })
    }
}

fn dm_kind(uuid: &[u8]) -> Kind {
    if uuid.starts_with(b"LVM-") {
        Kind::Lvm
    } else if uuid.starts_with(b"CRYPT-") {
        Kind::Crypt
    } else if uuid.starts_with(b"mpath-") {
        Kind::Multipath
    } else if uuid.starts_with(b"part")
        && uuid[4..].iter().take_while(|b| b.is_ascii_digit()).count() > 0
    {
        Kind::DmPartition
    } else {
        Kind::DeviceMapper
    }
}

/// Whether `query` (the VALUE of `serial:VALUE`) names a disk whose serial is `serial`, with the
/// clouds' forms (ASCII case ignored, spaces around both trimmed):
/// - the same text;
/// - AWS: a volume id with or without the dash after `vol` (`vol-0abc...` is the NVMe serial
///   `vol0abc...`);
/// - OpenStack: a volume UUID (`8-4-4-4-12` hex) whose first 20 characters are the serial (what
///   virtio-blk keeps of it; virtio-scsi shows it whole, which the first rule matches);
/// - Alibaba: a disk id with or without its `d-` (`d-bp1...` is the virtio serial `bp1...`).
pub fn serial_matches(query: &str, serial: &str) -> bool {
    let q = query.trim();
    let s = serial.trim();
    if q.is_empty() || s.is_empty() {
        return false;
    }
    if q.eq_ignore_ascii_case(s) {
        return true;
    }
    if let (Some(a), Some(b)) = (aws_id(q), aws_id(s)) {
        if !a.is_empty() && a.eq_ignore_ascii_case(b) {
            return true;
        }
    }
    if is_uuid(q) && s.len() == 20 && q[..20].eq_ignore_ascii_case(s) {
        return true;
    }
    let ali = |x: &'_ str| -> (bool, usize) {
        let has = x.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("d-"));
        (has, if has { 2 } else { 0 })
    };
    let ((qa, qi), (sa, si)) = (ali(q), ali(s));
    if qa != sa && q.len() > qi && q[qi..].eq_ignore_ascii_case(&s[si..]) {
        return true;
    }
    false
}

/// The part of an AWS volume id after `vol` or `vol-`.
fn aws_id(x: &str) -> Option<&str> {
    let vol = x.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("vol"));
    vol.then(|| x[3..].strip_prefix('-').unwrap_or(&x[3..]))
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` in hex digits.
fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Why a `DISK` argument names no disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiskErrorKind {
    /// Neither `/dev/...` nor `serial:VALUE`.
    UnknownForm,
    /// `serial:` with nothing after it.
    EmptySerial,
    /// No such path.
    NotFound,
    /// The path is not a block device.
    NotBlockDevice,
    /// A partition (or a kpartx partition), not a disk: `disk` is the disk it belongs to.
    Partition {
        /// The partition's kernel name.
        name: Name,
        /// The disk it is on.
        disk: Name,
    },
    /// A stacked device (LVM, dm-crypt, md, ...), not a disk.
    Stacked {
        /// Its kernel name.
        name: Name,
        /// What it is.
        kind: Kind,
    },
    /// No disk has this serial.
    NoSuchSerial,
    /// Several disks have it (two named).
    Ambiguous {
        /// One.
        first: Name,
        /// Another.
        second: Name,
    },
    /// Reading the tree failed.
    Tree(TreeError),
    /// Following the graph failed.
    Graph(GraphError),
}

/// A `DISK` argument that names no single disk, with the argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskError<'a> {
    /// The argument as given.
    pub arg: &'a str,
    /// What is wrong with it.
    pub kind: DiskErrorKind,
}

impl fmt::Display for DiskError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = self.arg;
        match &self.kind {
            DiskErrorKind::UnknownForm => write!(
                f,
                "disk {a:?}: expected a block device path (/dev/vdb, /dev/disk/by-id/...) or \
                 serial:VALUE"
            ),
            DiskErrorKind::EmptySerial => write!(f, "disk {a:?}: serial: needs a value"),
            DiskErrorKind::NotFound => write!(f, "disk {a}: no such file"),
            DiskErrorKind::NotBlockDevice => write!(f, "disk {a}: not a block device"),
            DiskErrorKind::Partition { name, disk } => write!(
                f,
                "disk {a}: {name} is a partition of disk {disk}; name the disk (/dev/{disk})"
            ),
            DiskErrorKind::Stacked { name, kind } => write!(
                f,
                "disk {a}: {name} is a {}, not a disk; name the disks it is on",
                kind.as_str()
            ),
            DiskErrorKind::NoSuchSerial => write!(f, "disk {a}: no disk has this serial"),
            DiskErrorKind::Ambiguous { first, second } => write!(
                f,
                "disk {a}: matches more than one disk ({first}, {second}); give the whole serial"
            ),
            DiskErrorKind::Tree(e) => write!(f, "disk {a}: cannot read /sys ({e:?})"),
            DiskErrorKind::Graph(e) => write!(f, "disk {a}: {e}"),
        }
    }
}

#[cfg(test)]
#[path = "blockdev_tests.rs"]
mod tests;
