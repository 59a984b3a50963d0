//! Planning inside the caller's storage: resolve the named mount points, read the mount table
//! (filtered into a fixed buffer), plan, order, and open every descriptor. The same steps as
//! the runtime's `prepare`, without a single allocation.

use core::ffi::{c_char, CStr};
use std::os::fd::{AsFd, OwnedFd};

use quiesce_core::errno::{EACCES, ENOENT, ENOSYS, ENOTDIR};
use quiesce_core::fstype::{classify, Freezability};
use quiesce_core::linux::{sys, topology};
use quiesce_core::mountinfo::{parse_line, Dev, Escaped};
use quiesce_core::plan::{Plan, PlanErrorKind, Selection};
use quiesce_core::Status;

use super::buffers::{Lossy, TableError, MOUNT_TABLE_BYTES};
use super::config::{quiesce_config, Flags};
use super::storage::{Failure, Inner, Skip, Target};
use crate::runtime::{ErrnoName as errno_name, MAX_TARGETS};

const PATH_MAX: usize = 4096;

/// A named path, opened.
struct Opened<'c> {
    path: &'c CStr,
    fd: Option<OwnedFd>,
    mount_id: u32,
    is_root: bool,
}

/// A failure concerning the caller's `mounts[mount]`.
fn at_mount(status: Status, errno: i32, mount: usize) -> Failure {
    Failure {
        status,
        errno,
        mount_index: mount as i32,
        target_index: -1,
    }
}

/// Plans the session described by `cfg` into `inner`. Returns a status code; on failure the
/// session's failure and message say why, naming the input and the fix.
///
/// # Safety
/// `cfg.mounts` must point to `cfg.mount_count` pointers, each NULL or a NUL-terminated string.
pub unsafe fn plan(inner: &mut Inner, cfg: &quiesce_config, flags: Flags) -> u32 {
    let all = flags.contains(Flags::ALL);
    if !all && cfg.mount_count == 0 {
        return inner.fail(
            Failure {
                status: Status::Usage,
                ..Failure::NONE
            },
            format_args!(
                "no mount point named: set mounts/mount_count, or QUIESCE_FLAG_ALL to freeze every freezable filesystem"
            ),
        );
    }
    // 1. Open and identify every named path.
    let mut opened: heapless::Vec<Opened<'_>, MAX_TARGETS> = heapless::Vec::new();
    for i in 0..cfg.mount_count {
        // SAFETY: the caller vouches for `mount_count` readable pointers (config::read
        // checked that `mounts` is not NULL when the count is not 0).
        let p: *const c_char = unsafe { *cfg.mounts.add(i) };
        if p.is_null() {
            return inner.fail(
                Failure {
                    status: Status::Usage,
                    mount_index: i as i32,
                    ..Failure::NONE
                },
                format_args!(
                    "mounts[{i}] is NULL: pass {} mount point strings",
                    cfg.mount_count
                ),
            );
        }
        // SAFETY: a non-NULL entry is a NUL-terminated string (the caller's contract), read
        // only during this call.
        let path = unsafe { CStr::from_ptr(p) };
        let name = Lossy(path.to_bytes());
        let fd = match sys::open_dir(path) {
            Ok(fd) => fd,
            Err(errno) => {
                let f = at_mount(Status::BadTarget, errno, i);
                return match errno {
                    ENOENT => inner.fail(f, format_args!("'{name}' does not exist: name the mount point of a mounted filesystem")),
                    ENOTDIR => inner.fail(f, format_args!("'{name}' is not a directory: name the directory where the filesystem is mounted (`quiesce plan` lists them)")),
                    EACCES => inner.fail(f, format_args!("'{name}' cannot be opened: {}: run as root, and check its permissions and any SELinux/AppArmor policy", errno_name(errno))),
                    _ => inner.fail(f, format_args!("'{name}' cannot be opened: {}", errno_name(errno))),
                };
            }
        };
        let id = match sys::identify(fd.as_fd()) {
            Ok(id) => id,
            Err(errno) if errno == ENOSYS => {
                let f = at_mount(Status::Internal, errno, i);
                return inner.fail(f, format_args!("cannot tell whether '{name}' is a mount point: quiesce needs Linux 5.8 or later (statx with STATX_MNT_ID)"));
            }
            Err(errno) => {
                let f = at_mount(Status::BadTarget, errno, i);
                return inner.fail(
                    f,
                    format_args!("'{name}' cannot be examined: {}", errno_name(errno)),
                );
            }
        };
        let _ = opened.push(Opened {
            path,
            fd: Some(fd),
            mount_id: id.mount_id as u32,
            is_root: id.is_mount_root,
        });
    }
    // 2. The mount table: the named mounts' lines and every freezable one.
    let ids: heapless::Vec<u32, MAX_TARGETS> = opened.iter().map(|o| o.mount_id).collect();
    let keep = |line: &[u8]| {
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
    if let Err(e) = inner.table.load(&keep) {
        return match e {
            TableError::Sys(errno) => inner.fail(
                Failure { status: Status::Internal, errno, ..Failure::NONE },
                format_args!("cannot read /proc/self/mountinfo: {}; is /proc mounted?", errno_name(errno)),
            ),
            TableError::TooLarge => inner.fail(
                Failure { status: Status::PlanRefused, ..Failure::NONE },
                format_args!(
                    "the freezable mounts take more than the session's {} KiB mount buffer: name the mount points instead of QUIESCE_FLAG_ALL, or use the quiesce command",
                    MOUNT_TABLE_BYTES / 1024
                ),
            ),
        };
    }
    // 3. Every named path must be a mount point.
    for (i, o) in opened.iter().enumerate() {
        if !o.is_root {
            let name = Lossy(o.path.to_bytes());
            let f = at_mount(Status::BadTarget, 0, i);
            let table = inner.table.parsed();
            let holder = table
                .find(o.mount_id)
                .and_then(Result::ok)
                .map(|e| e.mount_point);
            let mut buf = [0u8; PATH_MAX];
            let holder = holder.and_then(|mp| mp.decode_into(&mut buf));
            return match holder {
                Some(mp) => {
                    let mp = Lossy(mp);
                    inner.fail(f, format_args!("'{name}' is not a mount point: it is a directory inside the filesystem mounted at {mp}; name {mp} to freeze that filesystem"))
                }
                None => inner.fail(f, format_args!("'{name}' is not a mount point: name the directory where a filesystem is mounted")),
            };
        }
    }
    build(inner, &mut opened, all)
}

/// Steps 4 and on: plan, order, fill the session's targets and skips.
fn build(inner: &mut Inner, opened: &mut [Opened<'_>], all: bool) -> u32 {
    let Inner {
        table,
        names,
        targets,
        wave_starts,
        skips,
        skips_dropped,
        failure,
        message,
        ..
    } = inner;
    let mut fail = |f: Failure, args: core::fmt::Arguments<'_>| {
        *failure = f;
        message.set(args);
        f.status.code()
    };
    let mountinfo = table.parsed();
    let ids: heapless::Vec<u32, MAX_TARGETS> = opened.iter().map(|o| o.mount_id).collect();
    let mut excluded: heapless::Vec<Dev, MAX_TARGETS> = heapless::Vec::new();
    let mut excluded_args: heapless::Vec<usize, MAX_TARGETS> = heapless::Vec::new();
    for (arg, &id) in ids.iter().enumerate() {
        if let Some(Ok(e)) = mountinfo.find(id) {
            let _ = excluded.push(e.dev);
            let _ = excluded_args.push(arg);
        }
    }
    let selection = if all {
        Selection::All { exclude: &excluded }
    } else {
        Selection::Named(&ids)
    };
    let mut plan = match Plan::<MAX_TARGETS>::build(mountinfo, selection) {
        Ok(p) => p,
        Err(e) => {
            let f = Failure {
                status: e.status(),
                mount_index: e.arg.map_or(-1, |a| a as i32),
                ..Failure::NONE
            };
            let subject = e
                .arg
                .and_then(|a| opened.get(a))
                .map(|o| Lossy(o.path.to_bytes()));
            return match (subject, e.kind) {
                (Some(s), PlanErrorKind::NotFreezable { .. } | PlanErrorKind::MountGone { .. }) => {
                    fail(f, format_args!("'{s}' {e}"))
                }
                _ => fail(f, format_args!("{e}")),
            };
        }
    };
    // Storage dependencies (loop devices, also under stacked devices), found via the
    // superblock's device and via the mount source (btrfs reports an anonymous device).
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
                if let Ok(id) = sys::open_path(file).and_then(|fd| sys::identify(fd.as_fd())) {
                    let _ = edges.push((t, id.mount_id as u32));
                }
            });
        }
    }
    for (t, mount_id) in edges {
        plan.storage_dependency(t, mount_id);
    }
    let order = match plan.order() {
        Ok(o) => o,
        Err(e) => {
            let f = Failure {
                status: e.status(),
                ..Failure::NONE
            };
            return match e.kind {
                PlanErrorKind::Cycle { a, b } => {
                    let mut ba = [0u8; PATH_MAX];
                    let mut bb = [0u8; PATH_MAX];
                    let pa = plan
                        .targets()
                        .get(a)
                        .and_then(|t| t.primary.mount_point.decode_into(&mut ba))
                        .unwrap_or(b"?");
                    let pb = plan
                        .targets()
                        .get(b)
                        .and_then(|t| t.primary.mount_point.decode_into(&mut bb))
                        .unwrap_or(b"?");
                    fail(f, format_args!("{} and {} each hold the other's storage (loop devices); no safe freeze order exists", Lossy(pa), Lossy(pb)))
                }
                _ => fail(f, format_args!("{e}")),
            };
        }
    };
    let names_full = |fail: &mut dyn FnMut(Failure, core::fmt::Arguments<'_>) -> u32| {
        fail(
            Failure {
                status: Status::PlanRefused,
                ..Failure::NONE
            },
            format_args!("the names of the planned filesystems exceed the session's buffer: name fewer mount points"),
        )
    };
    let mut kept: heapless::Vec<u16, MAX_TARGETS> = heapless::Vec::new();
    for &i in order.iter() {
        let Some(t) = plan.targets().get(i as usize) else {
            continue;
        };
        // The descriptor: the caller's own for a named target, else a verified open.
        let fd = match t.primary.arg {
            Some(a) => opened.get_mut(a).and_then(|o| o.fd.take()),
            None => t
                .mounts()
                .find_map(|m| open_verified(m.mount_point, m.mount_id)),
        };
        let (Ok(path), Ok(fs_type), Ok(source)) = (
            names.push_escaped(t.primary.mount_point),
            names.push_escaped(t.fs_type),
            names.push_escaped(t.source),
        ) else {
            return names_full(&mut fail);
        };
        match fd {
            Some(fd) => {
                let _ = kept.push(i);
                let _ = targets.push(Target {
                    path,
                    fs_type,
                    source,
                    dev: t.dev,
                    mount_index: t.primary.arg.map_or(-1, |a| a as i32),
                    fd,
                });
            }
            None => {
                let Ok(reason) = names.push_fmt(format_args!(
                    "none of its mount points could be opened as a directory"
                )) else {
                    return names_full(&mut fail);
                };
                let s = Skip {
                    path,
                    fs_type,
                    reason,
                    dev: t.dev,
                    mount_index: -1,
                };
                if skips.push(s).is_err() {
                    *skips_dropped += 1;
                }
            }
        }
    }
    plan.wave_starts(&kept, &mut wave_starts[..]);
    *skips_dropped += plan.skips_dropped();
    for s in plan.skips() {
        let (Ok(path), Ok(fs_type), Ok(reason)) = (
            names.push_escaped(s.mount_point),
            names.push_escaped(s.fs_type),
            names.push_fmt(format_args!("{}", s.reason)),
        ) else {
            return names_full(&mut fail);
        };
        // In all-mode the excludes are matched by superblock: name the argument that did.
        let mount_index = s.arg.or_else(|| {
            all.then(|| excluded.iter().position(|d| *d == s.dev))
                .flatten()
                .and_then(|k| excluded_args.get(k).copied())
        });
        let skip = Skip {
            path,
            fs_type,
            reason,
            dev: s.dev,
            mount_index: mount_index.map_or(-1, |a| a as i32),
        };
        if skips.push(skip).is_err() {
            *skips_dropped += 1;
        }
    }
    if targets.is_empty() {
        let first = skips
            .first()
            .map(|s| (names.get(s.path), names.get(s.reason)));
        let f = Failure {
            status: Status::NotFreezable,
            mount_index: skips.first().map_or(-1, |s| s.mount_index),
            ..Failure::NONE
        };
        return match first {
            Some((p, r)) => fail(
                f,
                format_args!(
                    "nothing to freeze: {}: {}{}",
                    Lossy(p),
                    Lossy(r),
                    if skips.len() > 1 {
                        " (and more skipped: see quiesce_skip())"
                    } else {
                        ""
                    }
                ),
            ),
            None => fail(
                f,
                format_args!("nothing to freeze: no freezable, writable filesystem is mounted"),
            ),
        };
    }
    Status::Ok.code()
}

/// Decodes an escaped mountinfo path into `buf` as a C string.
fn c_path<'b>(e: Escaped<'_>, buf: &'b mut [u8; PATH_MAX]) -> Option<&'b CStr> {
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
