//! Session records: one small text file per session under `/run/quiesce` (a tmpfs on most
//! systems, never a filesystem quiesce freezes), written before the first `FIFREEZE` and
//! removed after the last `FITHAW`. They let `quiesce status` list the sessions in progress
//! and `quiesce recover` thaw what a session left frozen when its controller and its guardian
//! are both gone.
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
//! `START` is the process's start time (field 22 of /proc/PID/stat), so that a reused pid is not
//! mistaken for the process that wrote the record.

use std::fmt::Write as _;
use std::fs;
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use quiesce_core::linux::topology::parse_dev;
use quiesce_core::mountinfo::{Dev, Escaped};

/// Where session records live.
pub const RUN_DIR: &str = "/run/quiesce";

/// The variable that relocates [`RUN_DIR`] (tests, unusual layouts); it must name a directory
/// on a filesystem that is never frozen (a tmpfs).
pub const RUN_DIR_VAR: &str = "QUIESCE_RUN_DIR";

/// Where session records live: `$QUIESCE_RUN_DIR` if set and not empty, else [`RUN_DIR`].
pub fn run_dir() -> PathBuf {
    std::env::var_os(RUN_DIR_VAR)
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from(RUN_DIR), PathBuf::from)
}

const HEADER: &str = "quiesce-session 1";
const SUFFIX: &str = ".session";

/// A process, identified by pid and start time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcRef {
    /// The pid.
    pub pid: i32,
    /// Its start time in clock ticks since boot (0: unknown).
    pub start: u64,
}

impl ProcRef {
    /// The process `pid` as it is now, if it exists.
    pub fn of(pid: i32) -> ProcRef {
        ProcRef {
            pid,
            start: proc_stat(pid).map_or(0, |(_, start)| start),
        }
    }

    /// Whether this very process is still running (not a zombie, and not a newer process that
    /// got the same pid).
    pub fn alive(&self) -> bool {
        if self.pid <= 0 {
            return false;
        }
        match proc_stat(self.pid) {
            Some((state, start)) => {
                !matches!(state, 'Z' | 'X' | 'x') && (self.start == 0 || start == self.start)
            }
            None => false,
        }
    }
}

/// State and start time of a process, from /proc/PID/stat.
pub(crate) fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// One filesystem of a recorded session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordTarget {
    /// The superblock's device.
    pub device: Dev,
    /// The mount point it was frozen through.
    pub mount_point: String,
}

/// A session record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    /// The file it was read from (or will be written to).
    pub path: PathBuf,
    /// The process that ran the session.
    pub controller: ProcRef,
    /// Its guardian.
    pub guardian: ProcRef,
    /// Its (first) freezer.
    pub freezer: ProcRef,
    /// Its other freezers (a session freezes independent filesystems at once).
    pub pool: Vec<ProcRef>,
    /// The deadline, from the first `FIFREEZE`.
    pub timeout: Duration,
    /// Roughly when the deadline passes (wall clock, ms since the epoch).
    pub deadline_unix_ms: u64,
    /// The targets, in freeze order.
    pub targets: Vec<RecordTarget>,
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, ' ' | '\t' | '\n' | '\\') || (c as u32) < 0x20 {
            let _ = write!(out, "\\{:03o}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

fn unescape(s: &str) -> String {
    let bytes: Vec<u8> = Escaped(s.as_bytes()).bytes().collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

impl SessionRecord {
    /// The record of a session this process is about to run; the file name carries our pid and
    /// start time.
    pub fn new(timeout: Duration, targets: Vec<RecordTarget>) -> SessionRecord {
        let me = ProcRef::of(std::process::id() as i32);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        SessionRecord {
            path: run_dir().join(format!("{}-{}{SUFFIX}", me.pid, me.start)),
            controller: me,
            guardian: ProcRef { pid: 0, start: 0 },
            freezer: ProcRef { pid: 0, start: 0 },
            pool: Vec::new(),
            timeout,
            deadline_unix_ms: u64::try_from((now + timeout).as_millis()).unwrap_or(u64::MAX),
            targets,
        }
    }

    fn text(&self) -> String {
        let mut s = format!("{HEADER}\n");
        for (name, p) in [
            ("controller", self.controller),
            ("guardian", self.guardian),
            ("freezer", self.freezer),
        ] {
            let _ = writeln!(s, "{name} {} {}", p.pid, p.start);
        }
        for p in &self.pool {
            let _ = writeln!(s, "freezer {} {}", p.pid, p.start);
        }
        let _ = writeln!(s, "timeout_ms {}", self.timeout.as_millis());
        let _ = writeln!(s, "deadline_unix_ms {}", self.deadline_unix_ms);
        for t in &self.targets {
            let _ = writeln!(s, "target {} {}", t.device, escape(&t.mount_point));
        }
        s
    }

    /// Writes the record (atomically: a temporary file, then rename), creating the directory
    /// with mode 0700 if needed.
    pub fn write(&self) -> io::Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new(RUN_DIR));
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(format!(".{name}.tmp"));
        {
            let mut f = fs::File::create(&tmp)?;
            f.set_permissions(fs::Permissions::from_mode(0o600))?;
            f.write_all(self.text().as_bytes())?;
            // No fsync: the record describes processes and freezes that a reboot ends anyway
            // (/run is cleared at boot), so it never needs to outlive a power loss; the rename
            // alone keeps readers from seeing half a record. The fsync was most of a session's
            // arming time on a busy disk (issue 14).
        }
        fs::rename(&tmp, &self.path)
    }

    /// Removes the record; a record that is gone already is fine.
    pub fn remove(&self) -> io::Result<()> {
        match fs::remove_file(&self.path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Parses a record; None if it is not one.
    pub fn parse(path: &Path, text: &str) -> Option<SessionRecord> {
        let mut lines = text.lines();
        if lines.next()? != HEADER {
            return None;
        }
        let mut r = SessionRecord {
            path: path.to_path_buf(),
            controller: ProcRef { pid: 0, start: 0 },
            guardian: ProcRef { pid: 0, start: 0 },
            freezer: ProcRef { pid: 0, start: 0 },
            pool: Vec::new(),
            timeout: Duration::ZERO,
            deadline_unix_ms: 0,
            targets: Vec::new(),
        };
        for line in lines {
            let (key, rest) = line.split_once(' ')?;
            let proc_ref = |rest: &str| -> Option<ProcRef> {
                let (pid, start) = rest.split_once(' ')?;
                Some(ProcRef {
                    pid: pid.parse().ok()?,
                    start: start.parse().ok()?,
                })
            };
            match key {
                "controller" => r.controller = proc_ref(rest)?,
                "guardian" => r.guardian = proc_ref(rest)?,
                "freezer" if r.freezer.pid == 0 => r.freezer = proc_ref(rest)?,
                "freezer" => r.pool.push(proc_ref(rest)?),
                "timeout_ms" => r.timeout = Duration::from_millis(rest.parse().ok()?),
                "deadline_unix_ms" => r.deadline_unix_ms = rest.parse().ok()?,
                "target" => {
                    let (dev, mp) = rest.split_once(' ')?;
                    r.targets.push(RecordTarget {
                        device: parse_dev(dev.as_bytes())?,
                        mount_point: unescape(mp),
                    });
                }
                _ => {}
            }
        }
        Some(r)
    }

    /// Every record in `dir` (none if the directory does not exist), oldest name first.
    pub fn list_in(dir: &Path) -> io::Result<Vec<SessionRecord>> {
        let rd = match fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for e in rd.flatten() {
            let p = e.path();
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || !name.ends_with(SUFFIX) {
                continue;
            }
            if let Some(r) = fs::read_to_string(&p)
                .ok()
                .and_then(|t| SessionRecord::parse(&p, &t))
            {
                out.push(r);
            }
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_awkward_mount_points() {
        let mut r = SessionRecord::new(
            Duration::from_millis(2500),
            vec![
                RecordTarget {
                    device: Dev { major: 7, minor: 3 },
                    mount_point: "/mnt/with space\\and\ttab".into(),
                },
                RecordTarget {
                    device: Dev {
                        major: 259,
                        minor: 1,
                    },
                    mount_point: "/mnt/ünï".into(),
                },
            ],
        );
        r.guardian = ProcRef { pid: 42, start: 7 };
        let back = SessionRecord::parse(&r.path, &r.text()).unwrap();
        assert_eq!(back, r);
        assert!(SessionRecord::parse(&r.path, "something else\n").is_none());
    }

    #[test]
    fn this_process_is_alive_and_a_made_up_one_is_not() {
        let me = ProcRef::of(std::process::id() as i32);
        assert!(me.alive());
        assert!(!ProcRef {
            pid: me.pid,
            start: me.start + 1
        }
        .alive());
        assert!(!ProcRef { pid: 0, start: 0 }.alive());
    }
}
