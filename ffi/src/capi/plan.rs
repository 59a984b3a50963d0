//! Planning inside the caller's storage: the pointer checks on `cfg.mounts`, then the engine's
//! planning ([`crate::engine::plan`]) with the session's fixed buffers as its sink.

use core::ffi::{c_char, CStr};
use std::os::fd::OwnedFd;

use quiesce_core::plan::Target as PlanTarget;
use quiesce_core::Status;

use super::buffers::{Lossy, Message, Names};
use super::config::{quiesce_config, Flags};
use super::storage::{Failure, Inner, Skip, Target, QUIESCE_MAX_SKIPS};
use crate::engine::disks::{DiskSelection, DiskView, MAX_DISKS};
use crate::engine::plan::{
    plan as engine_plan, Full, Note, NothingToFreeze, PlanSink, Request, Skipped,
};
use crate::engine::MAX_TARGETS;

/// Most notes a session keeps (more are dropped).
pub(crate) const MAX_NOTES: usize = 4;

/// The session's storage as the engine's sink.
struct Sink<'s> {
    names: &'s mut Names,
    targets: &'s mut heapless::Vec<Target, MAX_TARGETS>,
    skips: &'s mut heapless::Vec<Skip, QUIESCE_MAX_SKIPS>,
    skips_dropped: &'s mut usize,
    wave_starts: &'s mut [bool; MAX_TARGETS],
    notes: &'s mut heapless::Vec<super::buffers::Name, MAX_NOTES>,
}

fn index(arg: Option<usize>) -> i32 {
    arg.map_or(-1, |a| a as i32)
}

impl PlanSink for Sink<'_> {
    fn skip(&mut self, s: &Skipped<'_>) -> Result<(), Full> {
        if self.skips.is_full() {
            return Err(Full);
        }
        let (Ok(path), Ok(fs_type), Ok(reason)) = (
            self.names.push_escaped(s.mount_point),
            self.names.push_escaped(s.fs_type),
            self.names.push_fmt(format_args!("{}", s.why)),
        ) else {
            return Err(Full);
        };
        let skip = Skip {
            path,
            fs_type,
            reason,
            dev: s.dev,
            mount_index: index(s.arg),
        };
        self.skips.push(skip).map_err(|_| Full)
    }

    fn skips_dropped(&mut self, n: usize) {
        *self.skips_dropped = n;
    }

    fn target(&mut self, t: &PlanTarget<'_>, fd: OwnedFd) -> Result<(), Full> {
        let (Ok(path), Ok(fs_type), Ok(source)) = (
            self.names.push_escaped(t.primary.mount_point),
            self.names.push_escaped(t.fs_type),
            self.names.push_escaped(t.source),
        ) else {
            return Err(Full);
        };
        let target = Target {
            path,
            fs_type,
            source,
            dev: t.dev,
            mount_index: index(t.primary.arg),
            fd,
        };
        self.targets.push(target).map_err(|_| Full)
    }

    fn note(&mut self, note: &Note<'_>) {
        if !self.notes.is_full() {
            if let Ok(n) = self.names.push_fmt(format_args!("{note}")) {
                let _ = self.notes.push(n);
            }
        }
    }

    fn disk(&mut self, _disk: &DiskView<'_>) -> Result<(), Full> {
        // The C ABI reports the targets and the skips; the per-disk view is the runtime's
        // (`quiesce plan --disk`).
        Ok(())
    }

    fn waves(&mut self, starts: &[bool]) {
        for (w, &s) in self.wave_starts.iter_mut().zip(starts) {
            *w = s;
        }
    }
}

/// Plans the session described by `cfg` into `inner`. Returns a status code; on failure the
/// session's failure and message say why, naming the input and the fix.
///
/// # Safety
/// `cfg.mounts` must point to `cfg.mount_count` pointers, each NULL or a NUL-terminated string.
pub unsafe fn plan(inner: &mut Inner, cfg: &quiesce_config, flags: Flags) -> u32 {
    let all = flags.contains(Flags::ALL);
    let by_disk = cfg.disk_count != 0 || cfg.exclude_disk_count != 0;
    if by_disk && all {
        return inner.fail(
            Failure {
                status: Status::Usage,
                ..Failure::NONE
            },
            format_args!(
                "QUIESCE_FLAG_ALL and disks/exclude_disks do not mix: select by mount point or by disk"
            ),
        );
    }
    if !all && !by_disk && cfg.mount_count == 0 {
        return inner.fail(
            Failure {
                status: Status::Usage,
                ..Failure::NONE
            },
            format_args!(
                "no mount point named: set mounts/mount_count, disks/disk_count, or QUIESCE_FLAG_ALL to freeze every freezable filesystem"
            ),
        );
    }
    let mut paths: heapless::Vec<&CStr, MAX_TARGETS> = heapless::Vec::new();
    let mut disks: heapless::Vec<&CStr, MAX_DISKS> = heapless::Vec::new();
    let mut exclude: heapless::Vec<&CStr, MAX_DISKS> = heapless::Vec::new();
    // SAFETY: the caller vouches for each list's count of readable pointers (config::read
    // checked that a list is not NULL when its count is not 0, and the bounds), each NULL or
    // a NUL-terminated string read only during this call.
    let read = unsafe {
        strings(cfg.mounts, cfg.mount_count, &mut paths)
            .map_err(|i| ("mounts", i, cfg.mount_count))
            .and_then(|()| {
                strings(cfg.disks, cfg.disk_count, &mut disks)
                    .map_err(|i| ("disks", i, cfg.disk_count))
            })
            .and_then(|()| {
                strings(cfg.exclude_disks, cfg.exclude_disk_count, &mut exclude)
                    .map_err(|i| ("exclude_disks", i, cfg.exclude_disk_count))
            })
    };
    if let Err((field, i, count)) = read {
        return inner.fail(
            Failure {
                status: Status::Usage,
                mount_index: if field == "mounts" { i as i32 } else { -1 },
                ..Failure::NONE
            },
            format_args!("{field}[{i}] is NULL: pass {count} strings"),
        );
    }
    let Inner {
        table,
        names,
        targets,
        wave_starts,
        skips,
        skips_dropped,
        notes,
        failure,
        message,
        ..
    } = inner;
    let mut sink = Sink {
        names,
        targets,
        skips,
        skips_dropped,
        wave_starts,
        notes,
    };
    let req = Request {
        all,
        paths: &paths,
        every_line: false,
        disks: DiskSelection {
            disks: &disks,
            exclude: &exclude,
            allow_partial_group: flags.contains(Flags::ALLOW_PARTIAL_GROUP),
        },
    };
    match engine_plan(req, table, &mut sink) {
        Ok(()) if sink.targets.is_empty() => {
            let names = &*sink.names;
            let skips = sink
                .skips
                .iter()
                .map(|s| (Lossy(names.get(s.path)), Lossy(names.get(s.reason))));
            *failure = Failure {
                status: Status::NotFreezable,
                mount_index: sink.skips.first().map_or(-1, |s| s.mount_index),
                ..Failure::NONE
            };
            message.set(format_args!("{}", NothingToFreeze(skips)));
            Status::NotFreezable.code()
        }
        Ok(()) => {
            show_notes(message, sink.names, sink.notes);
            Status::Ok.code()
        }
        Err(r) => {
            *failure = Failure {
                status: r.status,
                errno: r.errno,
                mount_index: index(r.arg),
                target_index: -1,
            };
            message.set(format_args!("{r}"));
            r.status.code()
        }
    }
}

/// Reads `count` C strings from `list` into `out` (at most its capacity); `Err(i)`: entry `i`
/// is NULL.
///
/// # Safety
/// `list` must point to `count` readable pointers, each NULL or a NUL-terminated string that
/// stays valid while `out` holds it.
unsafe fn strings<const N: usize>(
    list: *const *const c_char,
    count: usize,
    out: &mut heapless::Vec<&CStr, N>,
) -> Result<(), usize> {
    for i in 0..count {
        // SAFETY: `i < count` readable pointers (the caller's contract).
        let p: *const c_char = unsafe { *list.add(i) };
        if p.is_null() {
            return Err(i);
        }
        // SAFETY: a non-NULL entry is a NUL-terminated string valid while `out` holds it (the
        // caller's contract).
        let _ = out.push(unsafe { CStr::from_ptr(p) });
    }
    Ok(())
}

/// The message of a call that succeeded: the plan's notes, if any (`note: ...; ...`).
pub(crate) fn show_notes(message: &mut Message, names: &Names, notes: &[super::buffers::Name]) {
    struct Joined<'a>(&'a Names, &'a [super::buffers::Name]);
    impl core::fmt::Display for Joined<'_> {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            for (k, &n) in self.1.iter().enumerate() {
                let sep = if k == 0 { "note: " } else { "; " };
                write!(f, "{sep}{}", Lossy(self.0.get(n)))?;
            }
            Ok(())
        }
    }
    message.set(format_args!("{}", Joined(names, notes)));
}
