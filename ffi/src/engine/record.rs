//! Writing a session record, allocation-free: one small text file per session under
//! [`RUN_DIR`] (a tmpfs on most systems, never a filesystem quiesce freezes), written by
//! [`super::session::Lifecycle::arm`] once the helpers are forked and before the first
//! `FIFREEZE` (never while anything is frozen), and removed after the last `FITHAW` (or by the
//! guardian, which is given its path, once it has settled a session whose caller is gone).
//! Every front end's sessions get one: the CLI's, and the C ABI's (C, Go, Python). `quiesce
//! status` lists them and `quiesce recover` thaws what a session left frozen when its caller
//! and its guardian are both gone (the parser: `crate::runtime::SessionRecord::parse`).
//!
//! Format (one item per line; mount points escaped as in /proc/self/mountinfo):
//! ```text
//! quiesce-session 1
//! controller PID START
//! guardian PID START
//! freezer PID START        (one line per freezer process)
//! timeout_ms MS
//! deadline_unix_ms MS
//! target MAJ:MIN MOUNT_POINT
//! ```
//! `START` is the process's start time (field 22 of /proc/PID/stat), so that a reused pid is
//! not mistaken for the process that wrote the record. The file name is
//! `PID-START.session` for a process's first session and `PID-START-N.session` for its
//! later ones (a C ABI host may run several sessions at once).

use core::ffi::CStr;
use core::fmt::{self, Write as _};
use core::sync::atomic::{AtomicU32, Ordering};
use core::time::Duration;
use std::os::fd::{AsFd, BorrowedFd};

use quiesce_core::errno::EINVAL;
use quiesce_core::linux::sys::{self, Errno};
use quiesce_core::mountinfo::Dev;
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno as RErrno;

/// Where session records live.
pub const RUN_DIR: &str = "/run/quiesce";
const RUN_DIR_C: &CStr = c"/run/quiesce";

/// The variable that relocates [`RUN_DIR`] (tests, unusual layouts); it must name a directory
/// on a filesystem that is never frozen (a tmpfs).
pub const RUN_DIR_VAR: &str = "QUIESCE_RUN_DIR";
const RUN_DIR_VAR_C: &CStr = c"QUIESCE_RUN_DIR";

/// The directory records are written to: `$QUIESCE_RUN_DIR` if set and not empty, else
/// [`RUN_DIR`]. Allocates nothing.
fn run_dir_c() -> &'static CStr {
    match sys::getenv(RUN_DIR_VAR_C) {
        Some(v) if !v.is_empty() => v,
        _ => RUN_DIR_C,
    }
}

/// The record's first line.
pub const HEADER: &str = "quiesce-session 1";
/// A record file's name ends so.
pub const SUFFIX: &str = ".session";

/// Longest record path (`/run/quiesce/.PID-START-N.session.tmp` and its NUL fit easily).
const PATH_MAX: usize = 96;

/// This process's sessions so far: the next one's number in its record's name.
static SESSIONS: AtomicU32 = AtomicU32::new(0);

/// A process, identified by pid and start time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Proc {
    /// The pid.
    pub pid: i32,
    /// Its start time in clock ticks since boot (0: unknown).
    pub start: u64,
}

impl Proc {
    /// Process `pid` as it is now (start time 0 if /proc does not say).
    pub fn of(pid: i32) -> Proc {
        Proc {
            pid,
            start: proc_stat(pid).map_or(0, |(_, start)| start),
        }
    }
}

/// A formatter into a fixed buffer (fails once full).
struct Fixed<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Fixed<N> {
    const fn new() -> Self {
        Fixed {
            buf: [0; N],
            len: 0,
        }
    }
}

impl<const N: usize> fmt::Write for Fixed<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        self.buf
            .get_mut(self.len..end)
            .ok_or(fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// State and start time of process `pid`, from /proc/PID/stat; allocates nothing.
pub fn proc_stat(pid: i32) -> Option<(u8, u64)> {
    let mut path = Fixed::<32>::new();
    write!(path, "/proc/{pid}/stat\0").ok()?;
    let path = CStr::from_bytes_with_nul(&path.buf[..path.len]).ok()?;
    let fd = rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).ok()?;
    let mut buf = [0u8; 1024];
    let mut len = 0;
    while len < buf.len() {
        match rustix::io::read(&fd, &mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(RErrno::INTR) => continue,
            Err(_) => return None,
        }
    }
    parse_stat(&buf[..len])
}

/// State and start time (fields 3 and 22) of a /proc/PID/stat line.
fn parse_stat(text: &[u8]) -> Option<(u8, u64)> {
    let close = text.iter().rposition(|&b| b == b')')?;
    let mut fields = text[close + 1..]
        .split(|b| b.is_ascii_whitespace())
        .filter(|f| !f.is_empty());
    let state = *fields.next()?.first()?;
    let start = core::str::from_utf8(fields.nth(18)?).ok()?.parse().ok()?;
    Some((state, start))
}

/// A mount point escaped as in /proc/self/mountinfo (space, tab, newline, backslash and other
/// control bytes as `\ooo`); other bytes as they are (lossy UTF-8 for people).
struct EscapedPath<'a>(&'a [u8]);

impl fmt::Display for EscapedPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.0.utf8_chunks() {
            for c in chunk.valid().chars() {
                if matches!(c, ' ' | '\t' | '\n' | '\\') || (c as u32) < 0x20 {
                    write!(f, "\\{:03o}", c as u32)?;
                } else {
                    f.write_char(c)?;
                }
            }
            for &b in chunk.invalid() {
                write!(f, "\\{b:03o}")?;
            }
        }
        Ok(())
    }
}

/// The targets of a recorded session, in freeze order.
pub trait RecordTargets {
    /// How many.
    fn count(&self) -> usize;
    /// Target `i`'s device and the mount point it is frozen through.
    fn target(&self, i: usize) -> Option<(Dev, &[u8])>;
}

/// What a record says.
pub struct Contents<'a> {
    /// The process that runs the session.
    pub controller: Proc,
    /// Its guardian.
    pub guardian: Proc,
    /// Its freezers.
    pub freezers: &'a [Proc],
    /// The deadline, from the first `FIFREEZE`.
    pub timeout: Duration,
    /// Roughly when the deadline passes (wall clock, ms since the epoch).
    pub deadline_unix_ms: u64,
    /// The targets.
    pub targets: &'a dyn RecordTargets,
}

impl fmt::Display for Contents<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{HEADER}")?;
        for (name, p) in [("controller", self.controller), ("guardian", self.guardian)] {
            writeln!(f, "{name} {} {}", p.pid, p.start)?;
        }
        for p in self.freezers {
            writeln!(f, "freezer {} {}", p.pid, p.start)?;
        }
        writeln!(f, "timeout_ms {}", self.timeout.as_millis())?;
        writeln!(f, "deadline_unix_ms {}", self.deadline_unix_ms)?;
        for i in 0..self.targets.count() {
            if let Some((dev, mount_point)) = self.targets.target(i) {
                writeln!(f, "target {dev} {}", EscapedPath(mount_point))?;
            }
        }
        Ok(())
    }
}

/// Wall clock now plus `timeout`, in ms since the epoch.
pub fn deadline_unix_ms(timeout: Duration) -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Realtime);
    let now_ms = (now.tv_sec.max(0) as u64)
        .saturating_mul(1000)
        .saturating_add(now.tv_nsec.max(0) as u64 / 1_000_000);
    now_ms.saturating_add(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX))
}

/// The path of one session's record (and of its temporary file), NUL-terminated, in a fixed
/// buffer.
#[derive(Clone, Copy)]
pub struct RecordPath {
    path: [u8; PATH_MAX],
    path_len: usize,
    tmp: [u8; PATH_MAX],
    tmp_len: usize,
}

impl fmt::Debug for RecordPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_cstr(), f)
    }
}

impl RecordPath {
    /// The path for the next session of process `me`: `PID-START.session`, then
    /// `PID-START-N.session`.
    pub fn next(me: Proc) -> Option<RecordPath> {
        let n = SESSIONS.fetch_add(1, Ordering::Relaxed);
        let mut name = Fixed::<64>::new();
        write!(name, "{}-{}", me.pid, me.start).ok()?;
        if n > 0 {
            write!(name, "-{n}").ok()?;
        }
        let name = core::str::from_utf8(&name.buf[..name.len]).ok()?;
        let dir = core::str::from_utf8(run_dir_c().to_bytes()).ok()?;
        let mut path = Fixed::<PATH_MAX>::new();
        write!(path, "{dir}/{name}{SUFFIX}\0").ok()?;
        let mut tmp = Fixed::<PATH_MAX>::new();
        write!(tmp, "{dir}/.{name}{SUFFIX}.tmp\0").ok()?;
        Some(RecordPath {
            path: path.buf,
            path_len: path.len,
            tmp: tmp.buf,
            tmp_len: tmp.len,
        })
    }

    /// The record's path.
    pub fn as_cstr(&self) -> &CStr {
        CStr::from_bytes_with_nul(&self.path[..self.path_len]).unwrap_or(c"")
    }

    fn tmp(&self) -> &CStr {
        CStr::from_bytes_with_nul(&self.tmp[..self.tmp_len]).unwrap_or(c"")
    }

    /// Writes `contents` (atomically: a temporary file, then renamed), creating
    /// the record directory ([`RUN_DIR`], or `$QUIESCE_RUN_DIR`) with mode 0700 if needed. Allocates nothing.
    pub fn write(&self, contents: &Contents<'_>) -> Result<(), Errno> {
        match rustix::fs::mkdir(run_dir_c(), Mode::from_raw_mode(0o700)) {
            Ok(()) | Err(RErrno::EXIST) => {}
            Err(e) => return Err(e.raw_os_error()),
        }
        let result = self.write_tmp(contents).and_then(|()| {
            rustix::fs::rename(self.tmp(), self.as_cstr()).map_err(|e| e.raw_os_error())
        });
        if result.is_err() {
            let _ = rustix::fs::unlink(self.tmp());
        }
        result
    }

    fn write_tmp(&self, contents: &Contents<'_>) -> Result<(), Errno> {
        let fd = rustix::fs::open(
            self.tmp(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| e.raw_os_error())?;
        let mut out = FdWriter {
            fd: fd.as_fd(),
            buf: [0; 1024],
            len: 0,
            errno: 0,
        };
        let formatted = write!(out, "{contents}");
        let flushed = out.flush();
        // No fsync: a record describes freezes, which a reboot ends anyway, and the rename
        // alone keeps readers from seeing half a record (the fsync cost 0.3-1.8 ms of the
        // session's fixed cost where /run is on a disk: issue 14).
        match (formatted, flushed) {
            (_, Err(e)) => Err(e),
            (Err(_), Ok(())) => Err(if out.errno != 0 { out.errno } else { EINVAL }),
            (Ok(()), Ok(())) => Ok(()),
        }
    }

    /// Removes the record; one that is gone already is fine.
    pub fn remove(&self) {
        let _ = rustix::fs::unlink(self.as_cstr());
    }
}

/// A buffered writer to a descriptor, allocation-free.
struct FdWriter<'a> {
    fd: BorrowedFd<'a>,
    buf: [u8; 1024],
    len: usize,
    errno: Errno,
}

impl FdWriter<'_> {
    fn flush(&mut self) -> Result<(), Errno> {
        let mut done = 0;
        while done < self.len {
            match rustix::io::write(self.fd, &self.buf[done..self.len]) {
                Ok(0) => return Err(quiesce_core::errno::EIO),
                Ok(n) => done += n,
                Err(RErrno::INTR) => continue,
                Err(e) => {
                    self.errno = e.raw_os_error();
                    return Err(self.errno);
                }
            }
        }
        self.len = 0;
        Ok(())
    }
}

impl fmt::Write for FdWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for chunk in s.as_bytes().chunks(self.buf.len()) {
            if self.len + chunk.len() > self.buf.len() {
                self.flush().map_err(|_| fmt::Error)?;
            }
            self.buf[self.len..self.len + chunk.len()].copy_from_slice(chunk);
            self.len += chunk.len();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_a_name_with_parentheses_and_spaces() {
        let line =
            b"1234 (a (b) c) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 10\n";
        assert_eq!(parse_stat(line), Some((b'S', 98765)));
        assert_eq!(parse_stat(b"garbage"), None);
    }

    #[test]
    fn this_process_has_a_start_time_and_numbered_record_names() {
        let me = Proc::of(std::process::id() as i32);
        assert!(me.start > 0);
        let a = RecordPath::next(me).unwrap();
        let b = RecordPath::next(me).unwrap();
        let prefix = format!("{RUN_DIR}/{}-{}", me.pid, me.start);
        let (a, b) = (a.as_cstr().to_str().unwrap(), b.as_cstr().to_str().unwrap());
        assert!(a.starts_with(&prefix) && a.ends_with(SUFFIX), "{a}");
        assert!(b.starts_with(&prefix) && b.ends_with(SUFFIX), "{b}");
        assert_ne!(a, b);
    }

    #[test]
    fn mount_points_are_escaped_as_in_mountinfo() {
        let s = format!("{}", EscapedPath(b"/mnt/a b\\c\td\n\xffe"));
        assert_eq!(s, "/mnt/a\\040b\\134c\\011d\\012\\377e");
    }
}
