//! Child processes with timeouts, and a drop guard that never leaves one behind.
//!
//! A process blocked writing to a frozen filesystem sits in uninterruptible sleep: SIGKILL only
//! takes effect after the thaw. Such children are parked in a global "pending" list when their
//! guard is dropped, and reaped by [`reap_pending`], which the filesystem fixtures call right
//! after they thaw and before they unmount.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

/// Children that were killed but had not exited yet (blocked on a frozen filesystem).
static PENDING: Mutex<Vec<Child>> = Mutex::new(Vec::new());

const POLL: Duration = Duration::from_millis(10);

fn lock_pending() -> std::sync::MutexGuard<'static, Vec<Child>> {
    PENDING.lock().unwrap_or_else(|e| e.into_inner())
}

/// Kills `child` (SIGKILL) and parks it to be reaped later if it does not exit at once.
pub fn park(mut child: Child) {
    let _ = child.kill();
    if wait_timeout(&mut child, Duration::from_millis(200)).is_none() {
        lock_pending().push(child);
    }
}

/// Reaps parked children, waiting up to `timeout` for them; returns how many are still parked.
pub fn reap_pending(timeout: Duration) -> usize {
    let deadline = Instant::now() + timeout;
    loop {
        let left = {
            let mut pending = lock_pending();
            pending.retain_mut(|c| {
                let _ = c.kill();
                !matches!(c.try_wait(), Ok(Some(_)) | Err(_))
            });
            pending.len()
        };
        if left == 0 || Instant::now() >= deadline {
            return left;
        }
        thread::sleep(POLL);
    }
}

/// Waits up to `timeout` for `child` to exit.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return Some(st),
            Ok(None) if Instant::now() < deadline => thread::sleep(POLL),
            _ => return None,
        }
    }
}

/// Sends `sig` to process `pid` (no-op for pid 0).
pub fn send_signal(pid: u32, sig: i32) -> std::io::Result<()> {
    if pid == 0 {
        return Ok(());
    }
    // SAFETY: kill(2) has no memory-safety preconditions.
    if unsafe { libc::kill(pid as libc::pid_t, sig) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// A reader thread that drains a pipe into a byte buffer, delivered through a channel.
pub(crate) fn drain<R: Read + Send + 'static>(mut r: R) -> Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        let _ = tx.send(buf);
    });
    rx
}

/// Runs `cmd` with stdin from /dev/null and stdout/stderr captured; kills it if it has not
/// exited within `timeout`. Err describes the command, the timeout and what it printed so far
/// is lost (the pipes may be held by a blocked child).
pub fn run_timeout(cmd: &mut Command, timeout: Duration) -> Result<Output, String> {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {what}: {e}"))?;
    let out_rx = drain(child.stdout.take().expect("piped stdout"));
    let err_rx = drain(child.stderr.take().expect("piped stderr"));
    let Some(status) = wait_timeout(&mut child, timeout) else {
        park(child);
        return Err(format!("{what} did not finish within {timeout:?}; killed"));
    };
    // The pipes close when the child exits, unless a grandchild inherited them.
    let grace = Duration::from_secs(5);
    let stdout = out_rx.recv_timeout(grace).unwrap_or_default();
    let stderr = err_rx.recv_timeout(grace).unwrap_or_default();
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}

/// Like [`run_timeout`], but Err also when the command exits non-zero; Ok is its stdout.
pub fn run_ok(cmd: &mut Command, timeout: Duration) -> Result<String, String> {
    let what = format!("{cmd:?}");
    let out = run_timeout(cmd, timeout)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{what} failed ({}): stdout: {} stderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Owns a spawned child: on drop it sends SIGTERM, waits up to 3 s, then SIGKILL; a child that
/// still has not exited (blocked on a frozen filesystem) is parked for [`reap_pending`].
pub struct ChildGuard {
    child: Option<Child>,
}

impl ChildGuard {
    pub fn new(child: Child) -> ChildGuard {
        ChildGuard { child: Some(child) }
    }

    pub fn id(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    pub fn child(&mut self) -> &mut Child {
        self.child.as_mut().expect("child already taken")
    }

    /// Waits up to `timeout` for the child to exit.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_timeout(self.child(), timeout)
    }

    /// Takes the child out of the guard (the caller is then responsible for it).
    pub fn into_inner(mut self) -> Child {
        self.child.take().expect("child already taken")
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        let _ = send_signal(child.id(), libc::SIGTERM);
        if wait_timeout(&mut child, Duration::from_secs(3)).is_none() {
            park(child);
        }
    }
}
