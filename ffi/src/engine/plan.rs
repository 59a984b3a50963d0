//! Planning: from the mount points the caller named (or "every freezable filesystem" minus
//! excludes) to targets in freeze order, each with its opened descriptor, the mounts left out
//! with their reasons, the waves, and notes. Nothing is frozen, nothing is allocated.
//!
//! Steps, in order: open and identify every named path (each must be a mount root; mount ids
//! are 32-bit in the mount table, a larger one is refused); read the mount table into the
//! caller's buffer ([`TextBuffer`]); build the core's [`Plan`]; find storage dependencies
//! (loop backing files, also under stacked devices, via the superblock's device and via the
//! mount source: btrfs reports an anonymous device); order; then hand every skip and every
//! target (in freeze order, with its descriptor) and the waves to the caller's [`PlanSink`].
//! A failure is a [`Refusal`]: a status, the errno, the argument concerned, and a message
//! (its `Display`) that names the input and the fix.

// No heap: a refusal of a selection by disk carries the names of the disks its message
// reports (a few hundred bytes), returned once, before anything is frozen.
#![allow(clippy::result_large_err, clippy::large_enum_variant)]

use core::ffi::CStr;
use core::fmt;
use std::os::fd::{AsFd, OwnedFd};

use quiesce_core::errno::{EACCES, ENOENT, ENOSYS, ENOTDIR, EOVERFLOW};
use quiesce_core::fstype::{classify, Freezability};
use quiesce_core::linux::sys::{self, Errno};
use quiesce_core::linux::topology;
use quiesce_core::mountinfo::{parse_line, Dev, Escaped, MountInfo};
use quiesce_core::plan::{Plan, PlanError, PlanErrorKind, Selection, SkipReason, Target};
use quiesce_core::Status;

use super::disks::{self, DiskSelection, DiskView, DiskWhy};
use super::mounts::{read_mountinfo, TableError, TextBuffer};
use super::text::{Decoded, Lossy, PATH_MAX};
use super::{ErrnoName, MAX_TARGETS};

/// What to plan.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// `false`: these mount points (each must be one), in this order of preference.
    /// `true`: every freezable, writable filesystem except the ones mounted at these.
    pub all: bool,
    /// The caller's paths (arguments): named mount points, or excludes.
    pub paths: &'a [&'a CStr],
    /// Keep every line of the mount table (the runtime: `quiesce plan` lists the mounts that
    /// cannot be frozen too), or only the named mounts and the freezable ones (a fixed
    /// buffer).
    pub every_line: bool,
    /// Selection by disk ([`DiskSelection::NONE`]: by mount point); `paths` must then be
    /// empty.
    pub disks: DiskSelection<'a>,
}

/// Why a mount is left out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkipWhy {
    /// The plan's reason (not freezable, read-only, excluded).
    Plan(SkipReason),
    /// None of its mount points could be opened as that mount's root.
    CannotOpen,
}

impl fmt::Display for SkipWhy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipWhy::Plan(r) => r.fmt(f),
            SkipWhy::CannotOpen => {
                f.write_str("none of its mount points could be opened as a directory")
            }
        }
    }
}

/// A mount left out of the plan.
#[derive(Clone, Copy, Debug)]
pub struct Skipped<'a> {
    /// Where it is mounted.
    pub mount_point: Escaped<'a>,
    /// Its filesystem type.
    pub fs_type: Escaped<'a>,
    /// Its superblock.
    pub dev: Dev,
    /// The caller's argument that named (or excluded) it.
    pub arg: Option<usize>,
    /// Why.
    pub why: SkipWhy,
}

/// Something worth saying about a plan that does not stop it.
#[derive(Clone, Copy, Debug)]
pub enum Note<'a> {
    /// A loop device's backing file could not be located: the order against the filesystem
    /// that holds it is not checked.
    BackingFileNotFound {
        /// The backing file, as the kernel names it.
        file: &'a CStr,
        /// The target whose storage it is.
        mount_point: Escaped<'a>,
        /// The device whose backing file it is.
        dev: Dev,
        /// Why it could not be located.
        errno: Errno,
    },
    /// Selection by disk: the disks under a filesystem cannot be told; it is left out.
    DisksUnknown {
        /// Where it is mounted.
        mount_point: Escaped<'a>,
        /// Why.
        error: quiesce_core::blockdev::GraphError,
    },
}

impl fmt::Display for Note<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Note::BackingFileNotFound {
                file,
                mount_point,
                dev,
                errno,
            } => write!(
                f,
                "cannot locate the backing file {} of {} ({dev}): {}; its order is not checked",
                Lossy(file.to_bytes()),
                Decoded(mount_point),
                ErrnoName(errno)
            ),
            Note::DisksUnknown { mount_point, error } => write!(
                f,
                "cannot tell which disks {} is on ({error}); it is left out of the selection by disk",
                Decoded(mount_point)
            ),
        }
    }
}

/// The sink is full (a fixed buffer of the caller's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Full;

/// Where a plan goes: the runtime collects owned values, the C ABI fills its storage.
pub trait PlanSink {
    /// A mount left out (plan skips first, then targets that could not be opened).
    fn skip(&mut self, skip: &Skipped<'_>) -> Result<(), Full>;
    /// Mounts left out beyond the plan's capacity, counted only.
    fn skips_dropped(&mut self, n: usize);
    /// The next target in freeze order, and the descriptor it is frozen through.
    fn target(&mut self, target: &Target<'_>, fd: OwnedFd) -> Result<(), Full>;
    /// Something worth saying (it does not stop the plan).
    fn note(&mut self, note: &Note<'_>);
    /// Selection by disk: one disk of the group, its filesystems and their verdicts (after
    /// every target and skip, before the waves).
    fn disk(&mut self, disk: &DiskView<'_>) -> Result<(), Full>;
    /// `starts[p]`: target `p` must wait for the ones before it (storage); runs of `false`
    /// may be frozen at once. Called last.
    fn waves(&mut self, starts: &[bool]);
}

/// What went wrong, with what the message needs.
#[derive(Clone, Debug)]
pub enum Why<'a> {
    /// More paths than a plan takes.
    TooManyPaths(usize),
    /// `open` of a path failed.
    Open(&'a CStr),
    /// `statx` of an opened path failed.
    Examine(&'a CStr),
    /// The kernel has no `STATX_MNT_ID`.
    NoMountIds(&'a CStr),
    /// A mount id does not fit 32 bits (the mount table's ids do).
    MountIdTooLarge(&'a CStr, u64),
    /// A path is not a mount root; the filesystem that holds it, if known.
    NotMountPoint(&'a CStr, Option<Escaped<'a>>),
    /// `/proc/self/mountinfo` could not be read.
    MountTable,
    /// The kept lines do not fit the caller's fixed buffer (of this many bytes).
    TableTooLarge(usize),
    /// The core's planner refused (the path of the argument it concerns, if any).
    Plan(PlanError, Option<&'a CStr>),
    /// Two targets each hold the other's storage.
    Cycle(Escaped<'a>, Escaped<'a>),
    /// The sink is full.
    SinkFull,
    /// Selection by disk.
    Disks(DiskWhy<'a>),
}

/// A plan that cannot be made: nothing was frozen.
#[derive(Clone, Debug)]
pub struct Refusal<'a> {
    /// The stable status.
    pub status: Status,
    /// The errno behind it, or 0.
    pub errno: Errno,
    /// The index of the caller's path concerned, if one is.
    pub arg: Option<usize>,
    /// What went wrong.
    pub why: Why<'a>,
}

impl<'a> Refusal<'a> {
    fn new(status: Status, errno: Errno, arg: Option<usize>, why: Why<'a>) -> Self {
        Refusal {
            status,
            errno,
            arg,
            why,
        }
    }
}

impl fmt::Display for Refusal<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let errno = ErrnoName(self.errno);
        match &self.why {
            Why::TooManyPaths(n) => write!(f, "{n} paths given: at most {MAX_TARGETS} are accepted"),
            Why::Open(c) => match self.errno {
                ENOENT => write!(f, "'{}' does not exist: name the mount point of a mounted filesystem", p(c)),
                ENOTDIR => write!(f, "'{}' is not a directory: name the directory where the filesystem is mounted (`quiesce plan` lists them)", p(c)),
                EACCES => write!(f, "'{}' cannot be opened: {errno}: run as root, and check its permissions and any SELinux/AppArmor policy", p(c)),
                _ => write!(f, "'{}' cannot be opened: {errno}", p(c)),
            },
            Why::Examine(c) => write!(f, "'{}' cannot be examined: {errno}", p(c)),
            Why::NoMountIds(c) => write!(f, "cannot tell whether '{}' is a mount point: quiesce needs Linux 5.8 or later (statx with STATX_MNT_ID)", p(c)),
            Why::MountIdTooLarge(c, id) => write!(f, "'{}' has mount id {id}, beyond the 32 bits of the mount table: this kernel is newer than quiesce; please report it", p(c)),
            Why::NotMountPoint(c, Some(holder)) => {
                let mp = Decoded(*holder);
                write!(f, "'{}' is not a mount point: it is a directory inside the filesystem mounted at {mp}; name {mp} to freeze that filesystem", p(c))
            }
            Why::NotMountPoint(c, None) => write!(f, "'{}' is not a mount point: name the directory where a filesystem is mounted", p(c)),
            Why::MountTable => write!(f, "cannot read /proc/self/mountinfo: {errno}; is /proc mounted?"),
            Why::TableTooLarge(n) => write!(f, "the freezable mounts take more than the session's {} KiB mount buffer: name the mount points instead of selecting every filesystem", n / 1024),
            Why::Plan(e, Some(c)) => write!(f, "'{}' {e}", p(c)),
            Why::Plan(e, None) => write!(f, "{e}"),
            Why::Cycle(a, b) => write!(f, "{} and {} each hold the other's storage (loop devices); no safe freeze order exists", Decoded(*a), Decoded(*b)),
            Why::SinkFull => f.write_str("the names of the planned filesystems exceed the session's buffer: name fewer mount points"),
            Why::Disks(why) => why.fmt(f),
        }
    }
}

/// A C path shown as text.
fn p(c: &CStr) -> Lossy<'_> {
    Lossy(c.to_bytes())
}

/// A named path, opened and identified.
pub struct Opened {
    /// The descriptor (taken when it becomes a target's).
    pub fd: Option<OwnedFd>,
    /// Its mount id.
    pub mount_id: u32,
    /// Whether it is the root of that mount.
    pub is_root: bool,
    /// Its superblock.
    pub dev: Dev,
}

/// Opens `path` as a directory and identifies the mount it is on (argument `arg`).
pub fn open_mount(path: &CStr, arg: usize) -> Result<Opened, Refusal<'_>> {
    let at = Some(arg);
    let fd = sys::open_dir(path)
        .map_err(|errno| Refusal::new(Status::BadTarget, errno, at, Why::Open(path)))?;
    let id = sys::identify(fd.as_fd()).map_err(|errno| match errno {
        ENOSYS => Refusal::new(Status::Internal, errno, at, Why::NoMountIds(path)),
        _ => Refusal::new(Status::BadTarget, errno, at, Why::Examine(path)),
    })?;
    let mount_id = u32::try_from(id.mount_id).map_err(|_| {
        Refusal::new(
            Status::Internal,
            EOVERFLOW,
            at,
            Why::MountIdTooLarge(path, id.mount_id),
        )
    })?;
    Ok(Opened {
        fd: Some(fd),
        mount_id,
        is_root: id.is_mount_root,
        dev: id.dev,
    })
}

/// The named paths opened and the mount table read: every path checked to be a mount root.
/// The runtime's rescue thaw uses this too.
pub struct Resolved<'t> {
    /// The mount table text.
    pub mountinfo: MountInfo<'t>,
    /// Every path, in argument order.
    pub opened: heapless::Vec<Opened, MAX_TARGETS>,
}

/// Opens every path of `paths` (each must be a mount root), then reads the mount table into
/// `table` (keeping every line, or the named and the freezable ones).
pub fn resolve<'a>(
    paths: &[&'a CStr],
    table: &'a mut dyn TextBuffer,
    every_line: bool,
) -> Result<Resolved<'a>, Refusal<'a>> {
    if paths.len() > MAX_TARGETS {
        return Err(Refusal::new(
            Status::Usage,
            0,
            None,
            Why::TooManyPaths(paths.len()),
        ));
    }
    let mut opened: heapless::Vec<Opened, MAX_TARGETS> = heapless::Vec::new();
    for (i, &p) in paths.iter().enumerate() {
        let o = open_mount(p, i)?;
        let _ = opened.push(o);
    }
    // Read after opening: every named mount is in the table (unless unmounted meanwhile).
    let ids: heapless::Vec<u32, MAX_TARGETS> = opened.iter().map(|o| o.mount_id).collect();
    let keep = |line: &[u8]| {
        if every_line {
            return true;
        }
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        match parse_line(line) {
            Ok(e) => {
                ids.contains(&e.mount_id)
                    || matches!(classify(e.fs_type.raw()), Freezability::Freezable)
            }
            // Kept, so that planning reports it.
            Err(_) => true,
        }
    };
    let len = read_mountinfo(table, &keep).map_err(|e| match e {
        TableError::Sys(errno) => Refusal::new(Status::Internal, errno, None, Why::MountTable),
        TableError::TooLarge(n) => {
            Refusal::new(Status::PlanRefused, 0, None, Why::TableTooLarge(n))
        }
    })?;
    let text: &'a [u8] = &table.room()[..len];
    let mountinfo = MountInfo::new(text);
    for (i, (o, &p)) in opened.iter().zip(paths).enumerate() {
        if !o.is_root {
            let holder = mountinfo
                .find(o.mount_id)
                .and_then(Result::ok)
                .map(|e| e.mount_point);
            return Err(Refusal::new(
                Status::BadTarget,
                0,
                Some(i),
                Why::NotMountPoint(p, holder),
            ));
        }
    }
    Ok(Resolved { mountinfo, opened })
}

/// Plans `req` with the mount table in `table`, handing the result to `sink`. Nothing is
/// frozen. The runtime's `prepare` and the C ABI's `quiesce_session_init` are shells over this.
pub fn plan<'a>(
    req: Request<'a>,
    table: &'a mut dyn TextBuffer,
    sink: &mut dyn PlanSink,
) -> Result<(), Refusal<'a>> {
    if req.disks.active() {
        return plan_disks(req, table, sink);
    }
    let Resolved {
        mountinfo,
        mut opened,
    } = resolve(req.paths, table, req.every_line)?;
    let ids: heapless::Vec<u32, MAX_TARGETS> = opened.iter().map(|o| o.mount_id).collect();
    // In all-mode the excludes are superblocks; remember which argument named each.
    let mut excluded: heapless::Vec<(Dev, usize), MAX_TARGETS> = heapless::Vec::new();
    for (arg, &id) in ids.iter().enumerate() {
        if let Some(Ok(e)) = mountinfo.find(id) {
            let _ = excluded.push((e.dev, arg));
        }
    }
    let devs: heapless::Vec<Dev, MAX_TARGETS> = excluded.iter().map(|x| x.0).collect();
    let selection = if req.all {
        Selection::All { exclude: &devs }
    } else {
        Selection::Named(&ids)
    };
    let mut plan = Plan::<MAX_TARGETS>::build(mountinfo, selection)
        .map_err(|e| build_refusal(e, req.paths))?;
    let excluded = if req.all { &excluded[..] } else { &[] };
    let kept = targets_and_skips(&mut plan, &mut opened, excluded, sink)?;
    waves(&plan, &kept, sink);
    Ok(())
}

/// Selection by disk: the disks resolved and the group checked ([`disks::choose`]), then the
/// plan of the superblocks on them, then the per-disk view.
fn plan_disks<'a>(
    req: Request<'a>,
    table: &'a mut dyn TextBuffer,
    sink: &mut dyn PlanSink,
) -> Result<(), Refusal<'a>> {
    let refuse = |why: DiskWhy<'a>| Refusal::new(why.status(), 0, None, Why::Disks(why));
    if !req.paths.is_empty() {
        return Err(refuse(DiskWhy::WithMounts));
    }
    if !req.disks.disks.is_empty() && !req.disks.exclude.is_empty() {
        return Err(refuse(DiskWhy::DiskAndExclude));
    }
    let Resolved {
        mountinfo,
        mut opened,
    } = resolve(&[], table, req.every_line)?;
    let tree = disks::root().map_err(&refuse)?;
    let chosen = disks::choose(&tree, mountinfo, &req.disks, &mut |u| {
        sink.note(&Note::DisksUnknown {
            mount_point: u.mount_point,
            error: u.error,
        })
    })
    .map_err(refuse)?;
    let mut plan = Plan::<MAX_TARGETS>::build(
        mountinfo,
        Selection::Disks {
            keep: &chosen.keep,
            partial: &chosen.partial,
        },
    )
    .map_err(|e| build_refusal(e, &[]))?;
    let kept = targets_and_skips(&mut plan, &mut opened, &[], sink)?;
    let frozen: heapless::Vec<Dev, MAX_TARGETS> = kept
        .iter()
        .filter_map(|&i| plan.targets().get(usize::from(i)).map(|t| t.dev))
        .collect();
    disks::report(&tree, &chosen, &plan, &frozen, sink)
        .map_err(|_| Refusal::new(Status::PlanRefused, 0, None, Why::SinkFull))?;
    waves(&plan, &kept, sink);
    Ok(())
}

/// The refusal of the core's planner, naming the argument it concerns.
fn build_refusal<'a>(e: PlanError, paths: &[&'a CStr]) -> Refusal<'a> {
    let subject = match e.kind {
        PlanErrorKind::NotFreezable { .. } | PlanErrorKind::MountGone { .. } => {
            e.arg.and_then(|a| paths.get(a).copied())
        }
        _ => None,
    };
    Refusal::new(e.status(), 0, e.arg, Why::Plan(e, subject))
}

/// Storage dependencies, order, then every skip and every target (in freeze order, with its
/// descriptor) to `sink`; returns the targets kept (opened), as plan indices in freeze order.
/// `excluded`: in all-mode, the superblocks the caller's arguments left out.
fn targets_and_skips<'a>(
    plan: &mut Plan<'a, MAX_TARGETS>,
    opened: &mut heapless::Vec<Opened, MAX_TARGETS>,
    excluded: &[(Dev, usize)],
    sink: &mut dyn PlanSink,
) -> Result<heapless::Vec<u16, MAX_TARGETS>, Refusal<'a>> {
    storage_dependencies(plan, sink);
    let order = plan.order().map_err(|e| match e.kind {
        PlanErrorKind::Cycle { a, b } => {
            let mp = |i: usize| plan.targets().get(i).map(|t| t.primary.mount_point);
            match (mp(a), mp(b)) {
                (Some(a), Some(b)) => Refusal::new(e.status(), 0, None, Why::Cycle(a, b)),
                _ => Refusal::new(e.status(), 0, None, Why::Plan(e, None)),
            }
        }
        _ => Refusal::new(e.status(), 0, e.arg, Why::Plan(e, None)),
    })?;
    let full = || Refusal::new(Status::PlanRefused, 0, None, Why::SinkFull);
    let mut dropped = plan.skips_dropped();
    for s in plan.skips() {
        let arg = s
            .arg
            .or_else(|| excluded.iter().find(|x| x.0 == s.dev).map(|x| x.1));
        let skip = Skipped {
            mount_point: s.mount_point,
            fs_type: s.fs_type,
            dev: s.dev,
            arg,
            why: SkipWhy::Plan(s.reason),
        };
        if sink.skip(&skip).is_err() {
            dropped += 1;
        }
    }
    let mut kept: heapless::Vec<u16, MAX_TARGETS> = heapless::Vec::new();
    for &i in order.iter() {
        let Some(t) = plan.targets().get(usize::from(i)) else {
            continue;
        };
        // The descriptor: the caller's own for a named target, else a verified open.
        let fd = match t.primary.arg {
            Some(a) => opened.get_mut(a).and_then(|o| o.fd.take()),
            None => t
                .mounts()
                .find_map(|m| open_verified(m.mount_point, m.mount_id)),
        };
        match fd {
            Some(fd) => {
                sink.target(t, fd).map_err(|_| full())?;
                let _ = kept.push(i);
            }
            None => {
                let skip = Skipped {
                    mount_point: t.primary.mount_point,
                    fs_type: t.fs_type,
                    dev: t.dev,
                    arg: None,
                    why: SkipWhy::CannotOpen,
                };
                if sink.skip(&skip).is_err() {
                    dropped += 1;
                }
            }
        }
    }
    sink.skips_dropped(dropped);
    Ok(kept)
}

/// The waves of the kept targets, to `sink` (last).
fn waves(plan: &Plan<'_, MAX_TARGETS>, kept: &[u16], sink: &mut dyn PlanSink) {
    let mut starts = [true; MAX_TARGETS];
    plan.wave_starts(kept, &mut starts[..kept.len()]);
    sink.waves(&starts[..kept.len()]);
}

/// Adds every loop device's backing file as a storage dependency; a backing file that cannot
/// be located is a note.
fn storage_dependencies(plan: &mut Plan<'_, MAX_TARGETS>, sink: &mut dyn PlanSink) {
    let mut edges: heapless::Vec<(usize, u32), { 2 * MAX_TARGETS }> = heapless::Vec::new();
    for (t, target) in plan.targets().iter().enumerate() {
        let mut devs: heapless::Vec<Dev, 2> = heapless::Vec::new();
        let _ = devs.push(target.dev);
        let mut buf = [0u8; PATH_MAX];
        if let Some(src) = c_path(target.source, &mut buf) {
            if src.to_bytes().starts_with(b"/dev/") {
                if let Ok(st) = rustix::fs::stat(src) {
                    let d = Dev {
                        major: rustix::fs::major(st.st_rdev),
                        minor: rustix::fs::minor(st.st_rdev),
                    };
                    if d != target.dev {
                        let _ = devs.push(d);
                    }
                }
            }
        }
        for dev in devs {
            let _ = topology::for_each_backing_file(dev, &mut |file| {
                let located = sys::open_path(file)
                    .and_then(|fd| sys::identify(fd.as_fd()))
                    .and_then(|id| u32::try_from(id.mount_id).map_err(|_| EOVERFLOW));
                match located {
                    Ok(mount_id) => {
                        let _ = edges.push((t, mount_id));
                    }
                    Err(errno) => sink.note(&Note::BackingFileNotFound {
                        file,
                        mount_point: target.primary.mount_point,
                        dev,
                        errno,
                    }),
                }
            });
        }
    }
    for (t, mount_id) in edges {
        plan.storage_dependency(t, mount_id);
    }
}

/// Decodes an escaped mountinfo path into `buf` as a C string.
pub fn c_path<'b>(e: Escaped<'_>, buf: &'b mut [u8; PATH_MAX]) -> Option<&'b CStr> {
    let n = e.decode_into(&mut buf[..PATH_MAX - 1])?.len();
    buf[n] = 0;
    CStr::from_bytes_with_nul(&buf[..=n]).ok()
}

/// Opens a mount point from the mount table and checks that the descriptor really is that
/// mount's root (the path may have been mounted over since).
fn open_verified(mount_point: Escaped<'_>, mount_id: u32) -> Option<OwnedFd> {
    let mut buf = [0u8; PATH_MAX];
    let c = c_path(mount_point, &mut buf)?;
    let fd = sys::open_dir(c).ok()?;
    let id = sys::identify(fd.as_fd()).ok()?;
    (id.is_mount_root && id.mount_id == u64::from(mount_id)).then_some(fd)
}

/// The refusal of a plan with no target, naming each mount left out and why (`skips`: mount
/// point and reason).
pub struct NothingToFreeze<I>(pub I);

impl<I, A, B> fmt::Display for NothingToFreeze<I>
where
    I: Iterator<Item = (A, B)> + Clone,
    A: fmt::Display,
    B: fmt::Display,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("nothing to freeze: ")?;
        let mut any = false;
        for (k, (mount_point, reason)) in self.0.clone().enumerate() {
            let sep = if k == 0 { "" } else { "; " };
            write!(f, "{sep}{mount_point}: {reason}")?;
            any = true;
        }
        if !any {
            f.write_str("no freezable, writable filesystem is mounted")?;
        }
        Ok(())
    }
}
