//! Resolving what the caller named into a plan with opened descriptors, before any freeze.

use std::ffi::{CString, OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use quiesce_core::errno::{EACCES, ENOENT, ENOSYS, ENOTDIR};
use quiesce_core::linux::sys::{self, MountIdentity};
use quiesce_core::linux::topology;
use quiesce_core::mountinfo::{Dev, Escaped, MountInfo};
use quiesce_core::plan::{Plan, PlanError, PlanErrorKind, Selection};
use quiesce_core::Status;

use super::{errno_name, Failure, MAX_TARGETS};

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
    fds: Vec<OwnedFd>,
}

pub(crate) fn text(e: Escaped<'_>) -> String {
    String::from_utf8_lossy(&e.bytes().collect::<Vec<u8>>()).into_owned()
}

fn shown(arg: &OsStr) -> String {
    arg.to_string_lossy().into_owned()
}

fn read_mountinfo() -> Result<Vec<u8>, Failure> {
    std::fs::read("/proc/self/mountinfo").map_err(|e| {
        Failure::new(
            Status::Internal,
            format!("cannot read /proc/self/mountinfo: {e}; is /proc mounted?"),
        )
        .with_errno(e.raw_os_error().unwrap_or(0))
    })
}

fn cstring(arg: &OsStr) -> Result<CString, Failure> {
    CString::new(arg.as_bytes()).map_err(|_| {
        Failure::new(
            Status::BadTarget,
            format!("'{}' contains a NUL byte; name a real path", shown(arg)),
        )
    })
}

/// A named path, opened and identified.
pub(crate) struct Resolved {
    pub fd: OwnedFd,
    pub mount_id: u32,
}

/// Opens `arg` as a directory and checks it is the root of a mount.
pub(crate) fn resolve(arg: &OsStr, mountinfo: &[u8]) -> Result<Resolved, Failure> {
    let name = shown(arg);
    let c = cstring(arg)?;
    let fd = sys::open_dir(&c).map_err(|errno| {
        let msg = match errno {
            ENOENT => format!("'{name}' does not exist: name the mount point of a mounted filesystem"),
            ENOTDIR => format!(
                "'{name}' is not a directory: name the directory where the filesystem is mounted (`quiesce plan` lists them)"
            ),
            EACCES => format!(
                "'{name}' cannot be opened: {}: run as root, and check its permissions and any SELinux/AppArmor policy",
                errno_name(errno)
            ),
            _ => format!("'{name}' cannot be opened: {}", errno_name(errno)),
        };
        Failure::new(Status::BadTarget, msg).with_errno(errno)
    })?;
    let id: MountIdentity = sys::identify(fd.as_fd()).map_err(|errno| {
        if errno == ENOSYS {
            Failure::new(
                Status::Internal,
                format!("cannot tell whether '{name}' is a mount point: quiesce needs Linux 5.8 or later (statx with STATX_MNT_ID)"),
            )
        } else {
            Failure::new(
                Status::BadTarget,
                format!("'{name}' cannot be examined: {}", errno_name(errno)),
            )
        }
        .with_errno(errno)
    })?;
    let mount_id = u32::try_from(id.mount_id).map_err(|_| {
        Failure::new(
            Status::Internal,
            format!("'{name}' has mount id {} beyond 32 bits", id.mount_id),
        )
    })?;
    if !id.is_mount_root {
        let holder = MountInfo::new(mountinfo)
            .find(mount_id)
            .and_then(Result::ok)
            .map(|e| text(e.mount_point));
        let msg = match holder {
            Some(mp) => format!(
                "'{name}' is not a mount point: it is a directory inside the filesystem mounted at {mp}; name {mp} to freeze that filesystem"
            ),
            None => format!("'{name}' is not a mount point: name the directory where a filesystem is mounted"),
        };
        return Err(Failure::new(Status::BadTarget, msg));
    }
    Ok(Resolved { fd, mount_id })
}

/// Resolves every argument; re-reads the mount table once if a mount is newer than it.
pub(crate) fn resolve_all(args: &[OsString]) -> Result<(Vec<u8>, Vec<Resolved>), Failure> {
    let mut mountinfo = read_mountinfo()?;
    let mut resolved = Vec::with_capacity(args.len());
    for arg in args {
        resolved.push(resolve(arg, &mountinfo)?);
    }
    let missing = |mi: &[u8]| {
        resolved
            .iter()
            .any(|r| MountInfo::new(mi).find(r.mount_id).is_none())
    };
    if missing(&mountinfo) {
        mountinfo = read_mountinfo()?;
    }
    Ok((mountinfo, resolved))
}

fn plan_failure(e: PlanError, args: &[OsString], plan_targets: &[String]) -> Failure {
    let subject = e
        .arg
        .and_then(|i| args.get(i))
        .map(|a| format!("'{}' ", shown(a)))
        .unwrap_or_default();
    let msg = match e.kind {
        PlanErrorKind::Cycle { a, b } => format!(
            "{} and {} each hold the other's storage (loop devices); no safe freeze order exists",
            plan_targets.get(a).map_or("?", String::as_str),
            plan_targets.get(b).map_or("?", String::as_str)
        ),
        _ => format!("{subject}{e}"),
    };
    Failure::new(e.status(), msg)
}

/// Makes the plan for `select`, opens every descriptor it will freeze through, and orders the
/// targets. Nothing is frozen. Errors name the input and the fix.
pub fn prepare(select: Select<'_>) -> Result<Prepared, Failure> {
    let (mountinfo, named, exclude_devs) = match select {
        Select::Named(args) => {
            if args.is_empty() {
                return Err(Failure::new(
                    Status::Usage,
                    "no mount point named: name at least one (`quiesce plan` lists them)",
                ));
            }
            let (mi, resolved) = resolve_all(args)?;
            (mi, Some(resolved), Vec::new())
        }
        Select::All { exclude } => {
            let (mi, resolved) = resolve_all(exclude)?;
            let devs = resolved
                .iter()
                .filter_map(|r| MountInfo::new(&mi).find(r.mount_id)?.ok().map(|e| e.dev))
                .collect::<Vec<Dev>>();
            (mi, None, devs)
        }
    };
    let ids: Vec<u32> = named
        .as_ref()
        .map(|r| r.iter().map(|x| x.mount_id).collect())
        .unwrap_or_default();
    let selection = match named {
        Some(_) => Selection::Named(&ids),
        None => Selection::All {
            exclude: &exclude_devs,
        },
    };
    let args: &[OsString] = match select {
        Select::Named(a) => a,
        Select::All { exclude } => exclude,
    };
    let mut plan = Plan::<MAX_TARGETS>::build(MountInfo::new(&mountinfo), selection)
        .map_err(|e| plan_failure(e, args, &[]))?;

    let mut notes = Vec::new();
    // Storage dependencies: loop devices (also under stacked devices), found via the
    // superblock's device and via the mount source (btrfs reports an anonymous device).
    let mut edges = Vec::new();
    for (t, target) in plan.targets().iter().enumerate() {
        let mut devs = vec![target.dev];
        let source = target.source.bytes().collect::<Vec<u8>>();
        if source.starts_with(b"/dev/") {
            if let Ok(st) = std::fs::metadata(OsStr::from_bytes(&source)) {
                use std::os::unix::fs::MetadataExt;
                let rdev = st.rdev();
                let d = Dev {
                    major: rustix::fs::major(rdev),
                    minor: rustix::fs::minor(rdev),
                };
                if d != target.dev {
                    devs.push(d);
                }
            }
        }
        for dev in devs {
            let mut files = Vec::new();
            let _ = topology::for_each_backing_file(dev, &mut |p| files.push(p.to_owned()));
            for file in files {
                match sys::open_path(&file).and_then(|fd| sys::identify(fd.as_fd())) {
                    Ok(id) => edges.push((t, id.mount_id as u32)),
                    Err(errno) => notes.push(format!(
                        "cannot locate the backing file {} of {} ({}): {}; its order is not checked",
                        file.to_string_lossy(),
                        text(target.primary.mount_point),
                        dev,
                        errno_name(errno)
                    )),
                }
            }
        }
    }
    for (t, mount_id) in edges {
        plan.storage_dependency(t, mount_id);
    }
    let names: Vec<String> = plan
        .targets()
        .iter()
        .map(|t| text(t.primary.mount_point))
        .collect();
    let order = plan.order().map_err(|e| plan_failure(e, args, &names))?;

    let skipped: Vec<SkipInfo> = plan
        .skips()
        .iter()
        .map(|s| SkipInfo {
            mount_point: text(s.mount_point),
            fs_type: text(s.fs_type),
            device: s.dev,
            reason: s.reason.to_string(),
            arg: s.arg,
        })
        .collect();

    let mut named_fds: Vec<Option<OwnedFd>> = named
        .map(|r| r.into_iter().map(|x| Some(x.fd)).collect())
        .unwrap_or_default();

    let mut targets = Vec::with_capacity(order.len());
    let mut fds = Vec::with_capacity(order.len());
    let mut kept: Vec<u16> = Vec::with_capacity(order.len());
    let mut skipped = skipped;
    for &i in order.iter() {
        let Some(t) = plan.targets().get(i as usize) else {
            continue;
        };
        let info = TargetInfo {
            mount_point: text(t.primary.mount_point),
            paths: t.mounts().map(|m| text(m.mount_point)).collect(),
            fs_type: text(t.fs_type),
            device: t.dev,
            source: text(t.source),
            args: t.mounts().filter_map(|m| m.arg).collect(),
        };
        // The descriptor: the caller's own for a named target, else a verified open.
        let fd = match t.primary.arg {
            Some(a) => named_fds.get_mut(a).and_then(Option::take),
            None => t
                .mounts()
                .find_map(|m| open_verified(m.mount_point, m.mount_id)),
        };
        match fd {
            Some(fd) => {
                targets.push(info);
                fds.push(fd);
                kept.push(i);
            }
            None => skipped.push(SkipInfo {
                mount_point: info.mount_point,
                fs_type: info.fs_type,
                device: info.device,
                reason: "none of its mount points could be opened as a directory".into(),
                arg: None,
            }),
        }
    }
    let mut wave_starts = vec![true; kept.len()];
    plan.wave_starts(&kept, &mut wave_starts);
    Ok(Prepared {
        targets,
        skipped,
        skipped_dropped: plan.skips_dropped(),
        notes,
        wave_starts,
        fds,
    })
}

/// Opens a mount point from the mount table and checks that the descriptor really is that
/// mount's root (the path may have been mounted over since).
fn open_verified(mount_point: Escaped<'_>, mount_id: u32) -> Option<OwnedFd> {
    let c = CString::new(mount_point.bytes().collect::<Vec<u8>>()).ok()?;
    let fd = sys::open_dir(&c).ok()?;
    let id = sys::identify(fd.as_fd()).ok()?;
    (id.is_mount_root && id.mount_id == u64::from(mount_id)).then_some(fd)
}

impl Prepared {
    /// The descriptors, in freeze order.
    pub fn fds(&self) -> impl Iterator<Item = BorrowedFd<'_>> {
        self.fds.iter().map(AsFd::as_fd)
    }
}
