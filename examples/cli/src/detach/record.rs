//! The record of a detached session: `ID.detached` in the control directory, written by the
//! controller before the first `FIFREEZE` and rewritten (atomically) with the final report
//! when the session ends; removed when a `quiesce thaw` (or `quiesce status --clear`) collects
//! it. Beside it, `ID.sock` is the control socket while the controller runs. (The session's
//! ordinary record, `ID.session`, is the runtime's: it comes and goes with the freeze.)
//!
//! Format, one item per line (mount points escaped as in /proc/self/mountinfo):
//! ```text
//! quiesce-detached 1
//! controller PID START
//! timeout_ms MS
//! started_unix_ms MS
//! target MAJ:MIN MOUNT_POINT          (in freeze order)
//! status CODE                         (from here on: only once the session ended)
//! message ONE SENTENCE
//! json {...}                          (the report as `--json` prints it)
//! text LINE                           (the report as text, one line each)
//! log LINE                            (what went to stderr, one line each)
//! ```
//! The part from `status` on is also what the controller sends to the `quiesce thaw` that
//! acknowledged, over the socket.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use quiesce::runtime::{ProcRef, RecordTarget};
use quiesce_core::linux::topology::parse_dev;
use quiesce_core::mountinfo::Escaped;

const HEADER: &str = "quiesce-detached 1";
/// The record's file name suffix.
pub const SUFFIX: &str = ".detached";
/// The control socket's file name suffix.
pub const SOCKET_SUFFIX: &str = ".sock";

/// How a detached session ended: its final report, rendered both ways.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ended {
    /// The exit code (the status).
    pub status: u32,
    /// One sentence.
    pub message: String,
    /// The report as one JSON line.
    pub json: String,
    /// The report as text lines.
    pub text: Vec<String>,
    /// The lines written to stderr after the thaw.
    pub log: Vec<String>,
}

/// A detached session's record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DetachedRecord {
    /// `PID-START` of the controller (also the stem of the runtime's session record).
    pub id: String,
    /// The controller process.
    pub controller: ProcRef,
    /// The deadline.
    pub timeout: Duration,
    /// When the controller started (wall clock, ms since the epoch).
    pub started_unix_ms: u64,
    /// The targets, in freeze order.
    pub targets: Vec<RecordTarget>,
    /// The final report, once the session ended.
    pub ended: Option<Ended>,
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

/// One line of free text: no line break inside.
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

impl Ended {
    /// The lines from `status` on.
    pub fn text(&self) -> String {
        let mut s = format!("status {}\n", self.status);
        let _ = writeln!(s, "message {}", one_line(&self.message));
        let _ = writeln!(s, "json {}", one_line(&self.json));
        for l in &self.text {
            let _ = writeln!(s, "text {}", one_line(l));
        }
        for l in &self.log {
            let _ = writeln!(s, "log {}", one_line(l));
        }
        s
    }

    /// Takes one line of the ended part; false if it is not one.
    fn take(&mut self, key: &str, rest: &str) -> bool {
        match key {
            "message" => self.message = rest.to_string(),
            "json" => self.json = rest.to_string(),
            "text" => self.text.push(rest.to_string()),
            "log" => self.log.push(rest.to_string()),
            _ => return false,
        }
        true
    }

    /// Parses the lines from `status` on (a controller's reply); None unless complete (a
    /// status and a JSON report).
    pub fn parse(text: &str) -> Option<Ended> {
        let mut e: Option<Ended> = None;
        for line in text.lines() {
            let (key, rest) = line.split_once(' ').unwrap_or((line, ""));
            match (key, e.as_mut()) {
                ("status", None) => {
                    e = Some(Ended {
                        status: rest.parse().ok()?,
                        ..Ended::default()
                    })
                }
                (k, Some(ended)) => {
                    ended.take(k, rest);
                }
                _ => {}
            }
        }
        e.filter(|e| e.json.starts_with('{'))
    }
}

impl DetachedRecord {
    /// The record of a session this process (the controller) is about to run.
    pub fn new(id: String, timeout: Duration, targets: Vec<RecordTarget>) -> DetachedRecord {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        DetachedRecord {
            id,
            controller: ProcRef::of(std::process::id() as i32),
            timeout,
            started_unix_ms: u64::try_from(now.as_millis()).unwrap_or(u64::MAX),
            targets,
            ended: None,
        }
    }

    /// The record's file name.
    pub fn file_name(&self) -> String {
        format!("{}{SUFFIX}", self.id)
    }

    /// The control socket's file name.
    pub fn socket_name(&self) -> String {
        format!("{}{SOCKET_SUFFIX}", self.id)
    }

    /// The file's text.
    pub fn text(&self) -> String {
        let mut s = format!("{HEADER}\n");
        let _ = writeln!(
            s,
            "controller {} {}",
            self.controller.pid, self.controller.start
        );
        let _ = writeln!(s, "timeout_ms {}", self.timeout.as_millis());
        let _ = writeln!(s, "started_unix_ms {}", self.started_unix_ms);
        for t in &self.targets {
            let _ = writeln!(s, "target {} {}", t.device, escape(&t.mount_point));
        }
        if let Some(e) = &self.ended {
            s.push_str(&e.text());
        }
        s
    }

    /// Parses the record of session `id`; None if it is not one.
    pub fn parse(id: &str, text: &str) -> Option<DetachedRecord> {
        let mut lines = text.lines();
        if lines.next()? != HEADER {
            return None;
        }
        let mut r = DetachedRecord {
            id: id.to_string(),
            controller: ProcRef { pid: 0, start: 0 },
            timeout: Duration::ZERO,
            started_unix_ms: 0,
            targets: Vec::new(),
            ended: None,
        };
        for line in lines {
            let (key, rest) = line.split_once(' ').unwrap_or((line, ""));
            match key {
                "controller" => {
                    let (pid, start) = rest.split_once(' ')?;
                    r.controller = ProcRef {
                        pid: pid.parse().ok()?,
                        start: start.parse().ok()?,
                    };
                }
                "timeout_ms" => r.timeout = Duration::from_millis(rest.parse().ok()?),
                "started_unix_ms" => r.started_unix_ms = rest.parse().ok()?,
                "target" => {
                    let (dev, mp) = rest.split_once(' ')?;
                    r.targets.push(RecordTarget {
                        device: parse_dev(dev.as_bytes())?,
                        mount_point: unescape(mp),
                    });
                }
                "status" => {
                    r.ended = Some(Ended {
                        status: rest.parse().ok()?,
                        ..Ended::default()
                    })
                }
                k => {
                    if let Some(e) = r.ended.as_mut() {
                        e.take(k, rest);
                    }
                }
            }
        }
        (r.controller.pid > 0).then_some(r)
    }

    /// The mount points, for messages.
    pub fn mount_points(&self) -> Vec<&str> {
        self.targets
            .iter()
            .map(|t| t.mount_point.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quiesce_core::mountinfo::Dev;

    #[test]
    fn round_trips_live_and_ended() {
        let mut r = DetachedRecord::new(
            "12-34".into(),
            Duration::from_millis(600_000),
            vec![RecordTarget {
                device: Dev { major: 7, minor: 1 },
                mount_point: "/mnt/with space".into(),
            }],
        );
        assert_eq!(DetachedRecord::parse("12-34", &r.text()), Some(r.clone()));
        r.ended = Some(Ended {
            status: 13,
            message: "deadline".into(),
            json: "{\"status\":13}".into(),
            text: vec!["quiesce thaw: timeout (13): ...".into(), "  1. /mnt".into()],
            log: vec!["quiesce: x".into()],
        });
        let back = DetachedRecord::parse("12-34", &r.text()).unwrap();
        assert_eq!(back, r);
        let ended = r.ended.as_ref().unwrap();
        assert_eq!(Ended::parse(&ended.text()).as_ref(), Some(ended));
        assert_eq!(Ended::parse("status 0\n"), None, "no report: incomplete");
        assert!(DetachedRecord::parse("1-2", "quiesce-session 1\n").is_none());
    }
}
