//! Child processes: spawned, waited for through a pidfd (exact exit time, a timeout on every
//! wait, signals that cannot hit a recycled pid) and reaped with `waitpid`.
//!
//! Dropping a [`Proc`] that has not exited sends SIGTERM, then SIGKILL, and reaps it.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{bail, Context, Error, Result};

/// How a process ended.
#[derive(Clone, Copy, Debug)]
pub struct Exit {
    /// Exit code, if it exited.
    pub code: Option<i32>,
    /// Signal number, if a signal killed it.
    pub signal: Option<i32>,
}

impl Exit {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    pub fn describe(&self) -> String {
        match (self.code, self.signal) {
            (Some(c), _) => format!("exit code {c}"),
            (None, Some(s)) => format!("killed by signal {s}"),
            (None, None) => "unknown exit".into(),
        }
    }
}

/// A finished command: how it ended, how long it took, what it printed.
#[derive(Debug)]
pub struct Output {
    pub exit: Exit,
    /// From just before the spawn to the moment its exit was seen.
    pub wall: Duration,
    pub stdout: String,
    pub stderr: String,
}

/// A running child process.
pub struct Proc {
    what: String,
    pid: libc::pid_t,
    pidfd: OwnedFd,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    seen: Vec<String>,
    stderr: Receiver<Vec<u8>>,
    started: Instant,
    exited_at: Option<Instant>,
    exit: Option<Exit>,
}

/// A printable command line.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

fn pidfd_open(pid: libc::pid_t) -> std::io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let fd = i32::try_from(fd).map_err(|_| std::io::Error::other("pidfd out of range"))?;
    // SAFETY: `fd` is a descriptor the kernel just gave us and nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Waits until `fd` is readable or `timeout` passes; true if readable.
fn poll_readable(fd: i32, timeout: Duration) -> std::io::Result<bool> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = i32::try_from(left.as_millis().min(60_000)).unwrap_or(60_000);
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, nfds 1.
        let n = unsafe { libc::poll(&mut p, 1, ms) };
        if n > 0 {
            return Ok(true);
        }
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
    }
}

impl Proc {
    /// Starts `cmd` with stdout and stderr piped, and stdin piped if `stdin` (else /dev/null).
    pub fn spawn(cmd: &mut Command, stdin: bool) -> Result<Proc> {
        let what = describe(cmd);
        cmd.stdin(if stdin { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = cmd.spawn().ctx(|| format!("cannot start `{what}`"))?;
        let pid = libc::pid_t::try_from(child.id()).map_err(|_| Error::new("pid out of range"))?;
        let pidfd = match pidfd_open(pid) {
            Ok(fd) => fd,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("pidfd_open for `{what}`: {e}");
            }
        };
        let stdin_pipe = child.stdin.take();
        let (tx, lines) = mpsc::channel();
        if let Some(out) = child.stdout.take() {
            thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(|l| l.ok()) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        let (etx, stderr) = mpsc::channel();
        if let Some(mut err) = child.stderr.take() {
            thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = err.read_to_end(&mut buf);
                let _ = etx.send(buf);
            });
        }
        // `child` is dropped without waiting: we reap it ourselves with wait4 on `pid`.
        Ok(Proc {
            what,
            pid,
            pidfd,
            stdin: stdin_pipe,
            lines,
            seen: Vec::new(),
            stderr,
            started,
            exited_at: None,
            exit: None,
        })
    }

    pub fn what(&self) -> &str {
        &self.what
    }

    /// Waits up to `timeout` for it to exit; None if it is still running.
    pub fn wait(&mut self, timeout: Duration) -> Result<Option<Exit>> {
        if let Some(e) = self.exit {
            return Ok(Some(e));
        }
        let ready = poll_readable(self.pidfd.as_raw_fd(), timeout)
            .ctx(|| format!("waiting for `{}`", self.what))?;
        if !ready {
            return Ok(None);
        }
        let at = Instant::now();
        let mut status = 0;
        loop {
            // SAFETY: valid out-pointer; `pid` is our own unreaped child (it is reaped only here).
            let r = unsafe { libc::waitpid(self.pid, &mut status, 0) };
            if r == self.pid {
                break;
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                bail!("waitpid for `{}`: {e}", self.what);
            }
        }
        let exit = Exit {
            code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
            signal: libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status)),
        };
        self.exited_at = Some(at);
        self.exit = Some(exit);
        Ok(Some(exit))
    }

    /// Like [`Proc::wait`], but an error if it has not exited within `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<Exit> {
        match self.wait(timeout)? {
            Some(e) => Ok(e),
            None => bail!("`{}` did not exit within {timeout:?}", self.what),
        }
    }

    /// Start to exit, once it has exited.
    pub fn wall(&self) -> Option<Duration> {
        self.exited_at.map(|t| t.duration_since(self.started))
    }

    /// Sends `sig` through the pidfd (never to a recycled pid).
    pub fn signal(&self, sig: i32) -> Result<()> {
        if self.exit.is_some() {
            return Ok(());
        }
        let null: *const libc::siginfo_t = std::ptr::null();
        // SAFETY: a valid pidfd, a signal number, a null siginfo and flags 0.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.pidfd.as_raw_fd(),
                sig,
                null,
                0,
            )
        };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            // ESRCH: it has exited already (not yet reaped): fine.
            if e.raw_os_error() != Some(libc::ESRCH) {
                bail!("signal {sig} to `{}`: {e}", self.what);
            }
        }
        Ok(())
    }

    /// The next line of its stdout, waiting up to `timeout`.
    pub fn next_line(&mut self, timeout: Duration) -> Option<String> {
        let l = self.lines.recv_timeout(timeout).ok()?;
        self.seen.push(l.clone());
        Some(l)
    }

    /// Waits up to `timeout` for a stdout line equal to `want`.
    pub fn wait_for_line(&mut self, want: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_line(left) {
                Some(l) if l.trim_end() == want => return true,
                Some(_) => continue,
                None => return false,
            }
        }
    }

    /// Everything it printed (call after it exited; waits up to 2 s for the pipes to close).
    pub fn collect(&mut self) -> (String, String) {
        let grace = Instant::now() + Duration::from_secs(2);
        loop {
            let left = grace.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => self.seen.push(l),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        }
        let mut out = self.seen.join("\n");
        out.push('\n');
        let left = grace.saturating_duration_since(Instant::now());
        let err = self.stderr.recv_timeout(left).unwrap_or_default();
        (out, String::from_utf8_lossy(&err).into_owned())
    }

    /// Waits for it to exit (error after `timeout`) and returns its output.
    pub fn finish(mut self, timeout: Duration) -> Result<Output> {
        let exit = self.wait_exit(timeout)?;
        let wall = self.wall().unwrap_or_default();
        let (stdout, stderr) = self.collect();
        Ok(Output {
            exit,
            wall,
            stdout,
            stderr,
        })
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.exit.is_some() {
            return;
        }
        self.stdin = None;
        for (sig, grace) in [
            (libc::SIGTERM, Duration::from_secs(3)),
            (libc::SIGKILL, Duration::from_secs(5)),
        ] {
            let _ = self.signal(sig);
            if matches!(self.wait(grace), Ok(Some(_))) {
                return;
            }
        }
        eprintln!(
            "quiesce-bench: `{}` (pid {}) did not exit after SIGKILL (blocked in the kernel?)",
            self.what, self.pid
        );
    }
}

/// Runs `cmd` to completion with stdin from /dev/null; an error if it takes longer than
/// `timeout` (it is then killed).
pub fn run(cmd: &mut Command, timeout: Duration) -> Result<Output> {
    Proc::spawn(cmd, false)?.finish(timeout)
}

/// Like [`run`], but also an error when it exits non-zero; Ok is its output.
pub fn run_ok(cmd: &mut Command, timeout: Duration) -> Result<Output> {
    let what = describe(cmd);
    let out = run(cmd, timeout)?;
    if !out.exit.success() {
        bail!(
            "`{what}` failed ({}): {}{}",
            out.exit.describe(),
            out.stderr.trim(),
            if out.stdout.trim().is_empty() {
                String::new()
            } else {
                format!(" (stdout: {})", out.stdout.trim())
            }
        );
    }
    Ok(out)
}

/// A program's absolute path, looked up in `$PATH` (and the sbin directories, where root's
/// tools live even when `$PATH` lacks them).
pub fn find_program(name: &str) -> Result<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let extra = OsStr::new("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in std::env::split_paths(&path).chain(std::env::split_paths(extra)) {
        let p = dir.join(name);
        if p.is_file() {
            return Ok(p);
        }
    }
    bail!("`{name}` not found in $PATH (install it, e.g. util-linux / e2fsprogs / xfsprogs / file)")
}
