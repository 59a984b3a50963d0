//! Waiting for one hook: its output into bounded memory, its timeout, and a background child
//! that keeps the output pipe open.
//!
//! The loop polls the output pipe in short steps and checks the hook with `waitpid(WNOHANG)`.
//! - At the timeout (or when the caller cancels) the hook's whole process group gets SIGKILL.
//! - Once the hook itself has exited, its output is read until end of file, or until the pipe
//!   has given nothing for [`LINGER`] (at most [`LINGER_MAX`] in all): a background process that inherited the pipe (e.g. a
//!   held database session) does not keep quiesce waiting. Such a process is left running.
//! - Output beyond [`OUTPUT_LIMIT`] bytes is read and dropped (so the hook never blocks on a
//!   full pipe); the kept part ends with a marker saying how much was dropped.

use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags};
use rustix::io::Errno;
use rustix::process::{
    kill_process, kill_process_group, waitpid, Pid, Signal as RustixSignal, WaitOptions,
};

use super::spawn::Spawned;

/// Output kept per hook call.
pub const OUTPUT_LIMIT: usize = 64 * 1024;
/// How long to keep reading after the hook exited while the pipe stays open and silent.
pub const LINGER: Duration = Duration::from_millis(300);
/// The longest time to keep reading after the hook exited, however chatty what holds the pipe.
pub const LINGER_MAX: Duration = Duration::from_secs(2);
/// How long to wait for a killed hook to be reaped.
const REAP_GRACE: Duration = Duration::from_secs(5);
/// The longest single poll: how often the caller's cancel check runs.
const STEP: Duration = Duration::from_millis(50);

/// How a hook call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookEnd {
    /// It exited with this status.
    Exited(i32),
    /// A signal ended it (not ours).
    Signaled(i32),
    /// Its timeout passed: its process group was killed.
    TimedOut,
    /// The caller cancelled the run (e.g. quiesce got SIGTERM): its process group was killed.
    Cancelled,
    /// It could not be started: the errno.
    NotStarted(i32),
}

impl HookEnd {
    /// Exit status 0.
    pub fn succeeded(self) -> bool {
        self == HookEnd::Exited(0)
    }

    /// A stable name: `exited`, `signaled`, `timed-out`, `cancelled`, `not-started`.
    pub fn name(self) -> &'static str {
        match self {
            HookEnd::Exited(_) => "exited",
            HookEnd::Signaled(_) => "signaled",
            HookEnd::TimedOut => "timed-out",
            HookEnd::Cancelled => "cancelled",
            HookEnd::NotStarted(_) => "not-started",
        }
    }
}

/// What one hook call left behind.
pub(crate) struct Finished {
    pub end: HookEnd,
    pub output: Vec<u8>,
    pub truncated: usize,
    /// The hook exited but something else still held its output pipe open.
    pub held_open: bool,
    /// A killed hook that could not be reaped within a few seconds (left as it is).
    pub unreaped: bool,
}

/// Bounded output.
struct Capture {
    kept: Vec<u8>,
    dropped: usize,
}

impl Capture {
    fn take(&mut self, bytes: &[u8]) {
        let room = OUTPUT_LIMIT.saturating_sub(self.kept.len());
        let n = room.min(bytes.len());
        self.kept.extend_from_slice(&bytes[..n]);
        self.dropped += bytes.len() - n;
    }
}

/// Reads what is there now. Returns (got anything, end of file).
fn read_available(fd: &OwnedFd, cap: &mut Capture) -> (bool, bool) {
    let mut buf = [0u8; 8192];
    let mut any = false;
    loop {
        match rustix::io::read(fd, &mut buf) {
            Ok(0) => return (any, true),
            Ok(n) => {
                any = true;
                cap.take(&buf[..n]);
            }
            Err(Errno::INTR) => continue,
            Err(_) => return (any, false),
        }
    }
}

fn exited(pid: i32) -> Option<HookEnd> {
    let pid = Pid::from_raw(pid)?;
    match waitpid(Some(pid), WaitOptions::NOHANG) {
        Ok(Some((_, status))) => Some(match status.exit_status() {
            Some(code) => HookEnd::Exited(code),
            None => HookEnd::Signaled(status.terminating_signal().unwrap_or(0)),
        }),
        // Reaped by someone else (a host's SIGCHLD handler): the status is lost.
        Err(Errno::CHILD) => Some(HookEnd::Exited(-1)),
        _ => None,
    }
}

/// SIGKILL to the process group the hook leads (it was made its own group at spawn), then to
/// the hook itself, in case setpgid had failed.
fn kill_group(pid: i32) {
    if let Some(pid) = Pid::from_raw(pid) {
        let _ = kill_process_group(pid, RustixSignal::KILL);
        let _ = kill_process(pid, RustixSignal::KILL);
    }
}

/// Waits for the hook, up to `timeout`; `cancel` is asked every few ms.
pub(crate) fn wait(sp: Spawned, timeout: Duration, cancel: &mut dyn FnMut() -> bool) -> Finished {
    let start = Instant::now();
    let deadline = start + timeout;
    let mut cap = Capture {
        kept: Vec::new(),
        dropped: 0,
    };
    let mut eof = false;
    let mut end: Option<HookEnd> = None;
    let mut killed: Option<(HookEnd, Instant)> = None;
    let mut quiet_since: Option<Instant> = None;
    let mut ended_at: Option<Instant> = None;
    let mut backoff = Duration::from_millis(1);
    let mut held_open = false;
    let mut unreaped = false;
    loop {
        let now = Instant::now();
        if end.is_none() && killed.is_none() {
            let why = if now >= deadline {
                Some(HookEnd::TimedOut)
            } else if cancel() {
                Some(HookEnd::Cancelled)
            } else {
                None
            };
            if let Some(why) = why {
                kill_group(sp.pid);
                killed = Some((why, now));
            }
        }
        if let Some((_, at)) = killed {
            if end.is_none() && now.duration_since(at) > REAP_GRACE {
                unreaped = true;
                break;
            }
        }
        let wait_for = match (end, killed) {
            (Some(_), _) => LINGER,
            (None, Some(_)) => STEP,
            (None, None) => deadline.saturating_duration_since(now).min(STEP),
        };
        if !eof {
            let mut fds = [PollFd::new(&sp.output, PollFlags::IN)];
            let ts = rustix::time::Timespec {
                tv_sec: wait_for.as_secs() as i64,
                tv_nsec: i64::from(wait_for.subsec_nanos()),
            };
            let _ = poll(&mut fds, Some(&ts));
            let (any, at_eof) = read_available(&sp.output, &mut cap);
            eof = at_eof;
            if any {
                quiet_since = None;
            }
        } else if end.is_none() {
            // The pipe closed a moment before the hook became reapable: back off from 1 ms.
            std::thread::sleep(backoff.min(wait_for));
            backoff = (backoff * 2).min(STEP);
        }
        if end.is_none() {
            end = exited(sp.pid);
            if end.is_some() {
                ended_at = Some(Instant::now());
            }
        }
        if end.is_some() {
            if eof {
                break;
            }
            let since = *quiet_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= LINGER || ended_at.is_some_and(|t| t.elapsed() >= LINGER_MAX) {
                held_open = true;
                break;
            }
        }
    }
    let end = match (killed, end) {
        (Some((why, _)), _) => why,
        (None, Some(e)) => e,
        (None, None) => HookEnd::TimedOut,
    };
    Finished {
        end,
        output: cap.kept,
        truncated: cap.dropped,
        held_open,
        unreaped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_is_bounded() {
        let mut c = Capture {
            kept: Vec::new(),
            dropped: 0,
        };
        c.take(&vec![b'a'; OUTPUT_LIMIT - 10]);
        c.take(&[b'b'; 30]);
        c.take(&[b'c'; 5]);
        assert_eq!(c.kept.len(), OUTPUT_LIMIT);
        assert_eq!(c.dropped, 25);
        assert!(c.kept.ends_with(b"bbbbbbbbbb"));
    }

    #[test]
    fn end_names() {
        assert!(HookEnd::Exited(0).succeeded());
        assert!(!HookEnd::Exited(1).succeeded());
        assert!(!HookEnd::TimedOut.succeeded());
        assert_eq!(HookEnd::TimedOut.name(), "timed-out");
    }
}
