//! `quiesce run`: the snapshot command runs while frozen; its exit status 0 acknowledges. Its
//! process group is tied to the session (`Tie`): if quiesce dies while frozen, the guardian
//! kills the command and its children before it thaws.

use std::ffi::OsString;
use std::os::fd::AsFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use quiesce::runtime::{Controller, Signal, Tie};
use quiesce_core::errno::ECANCELED;
use rustix::event::{PollFd, PollFlags};

use super::drain;
use crate::deferred_log::DeferredLog;
use crate::signals::{poll_until, Signals};

/// How long a command that outlived the window gets between SIGTERM and SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(5);
/// Re-check the child at least this often (a SIGCHLD may be merged with another).
const CHILD_CHECK_NS: u64 = 100_000_000;

/// Finds the program before anything is frozen, so that a typo fails early.
pub fn resolve_program(program: &OsString) -> Result<PathBuf, String> {
    let p = Path::new(program);
    let executable = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if p.components().count() > 1 || program.to_string_lossy().contains('/') {
        return if executable(p) {
            Ok(p.to_path_buf())
        } else {
            Err(format!(
                "the snapshot command '{}' does not exist or is not executable",
                p.display()
            ))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(p))
        .find(|c| executable(c))
        .ok_or_else(|| {
            format!(
                "the snapshot command '{}' was not found in PATH; give its full path",
                p.display()
            )
        })
}

pub struct SnapshotCommand<'a> {
    program: PathBuf,
    args: Vec<OsString>,
    child: Option<Child>,
    spawn_error: Option<std::io::Error>,
    exit: Option<std::process::ExitStatus>,
    signals: &'a Signals,
    log: &'a mut DeferredLog,
    /// Whether stdout is reserved for the JSON report (the command's stdout goes to stderr).
    stdout_to_stderr: bool,
}

impl<'a> SnapshotCommand<'a> {
    pub fn new(
        program: PathBuf,
        args: Vec<OsString>,
        signals: &'a Signals,
        log: &'a mut DeferredLog,
        stdout_to_stderr: bool,
    ) -> Self {
        SnapshotCommand {
            stdout_to_stderr,
            program,
            args,
            child: None,
            spawn_error: None,
            exit: None,
            signals,
            log,
        }
    }

    fn check_child(&mut self) -> Option<Signal> {
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => {
                self.exit = Some(status);
                if status.success() {
                    Some(Signal::Acknowledged)
                } else {
                    self.log.line(format_args!(
                        "the snapshot command failed ({}): not acknowledged",
                        describe(status)
                    ));
                    Some(Signal::SnapshotFailed)
                }
            }
            Ok(None) => None,
            Err(e) => {
                self.log
                    .line(format_args!("cannot wait for the snapshot command: {e}"));
                Some(Signal::SnapshotFailed)
            }
        }
    }

    /// After the thaw: if the command outlived the window (deadline, interrupt), stop its
    /// process group (SIGTERM, then SIGKILL after a grace period) and reap it. Returns how it
    /// ended, if it ran.
    pub fn finish(mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        if let Some(status) = self.exit {
            return Some(status);
        }
        let pgid = child.id() as i32;
        let started = Instant::now();
        // The group the child leads (it was made its own group).
        let group = rustix::process::Pid::from_raw(pgid);
        let signal_group = |sig| {
            if let Some(g) = group {
                let _ = rustix::process::kill_process_group(g, sig);
            }
        };
        signal_group(rustix::process::Signal::TERM);
        self.log.line(format_args!(
            "the snapshot command (pid {pgid}) was still running after the window: sent SIGTERM"
        ));
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if started.elapsed() > KILL_GRACE {
                signal_group(rustix::process::Signal::KILL);
                self.log.line(format_args!(
                    "sent SIGKILL to the snapshot command (pid {pgid})"
                ));
                return child.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

pub fn describe(status: std::process::ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => "unknown status".into(),
    }
}

impl SnapshotCommand<'_> {
    /// Starts the command in its own process group. With a `tie`, the child publishes its
    /// group there before it execs (so that there is no moment in which it runs untied), and
    /// does not exec if the tie is closed (the guardian has acted: the session is over).
    fn spawn(&mut self, tie: Option<Tie<'_>>) {
        let mask = self.signals.mask();
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args).process_group(0);
        if self.stdout_to_stderr {
            match std::io::stderr().as_fd().try_clone_to_owned() {
                Ok(fd) => {
                    cmd.stdout(fd);
                }
                Err(e) => {
                    self.spawn_error = Some(e);
                    return;
                }
            }
        }
        // SAFETY: only the lifetime is changed. The closure that holds the tie belongs to
        // `cmd`, a local of this function, and runs only inside `cmd.spawn()` below (in the
        // child); `cmd` is dropped before we return, while the tie's table is mapped for the
        // whole call (the runtime's session owns it).
        let tie: Option<Tie<'static>> = unsafe { std::mem::transmute(tie) };
        // SAFETY: the closure runs in the child between fork and exec and calls only
        // pthread_sigmask (SignalSet::unblock), getpid and one atomic compare-and-swap on the
        // shared table, all async-signal-safe and allocation-free; it restores the signals we
        // blocked. std has made the child its own process group (`process_group(0)`) before it
        // runs, so the group is its pid.
        unsafe {
            cmd.pre_exec(move || {
                mask.unblock().map_err(std::io::Error::from_raw_os_error)?;
                if let Some(tie) = tie {
                    if !tie.publish(rustix::process::getpid().as_raw_nonzero().get()) {
                        return Err(std::io::Error::from_raw_os_error(ECANCELED));
                    }
                }
                Ok(())
            });
        }
        match cmd.spawn() {
            Ok(child) => self.child = Some(child),
            // Reported by the next wait as a failed snapshot.
            Err(e) => self.spawn_error = Some(e),
        }
    }
}

impl Controller for SnapshotCommand<'_> {
    fn notify(&mut self) -> Result<(), i32> {
        self.spawn(None);
        Ok(())
    }

    /// The session's tie holds the command's process group: if quiesce dies while frozen
    /// (SIGKILL included), the guardian kills the command and its children before it thaws.
    fn notify_tied(&mut self, tie: Tie<'_>) -> Result<(), i32> {
        self.spawn(Some(tie));
        Ok(())
    }

    fn wait(&mut self, until_ns: u64) -> Option<Signal> {
        if let Some(e) = self.spawn_error.take() {
            self.log.line(format_args!(
                "the snapshot command '{}' could not be started: {e}",
                self.program.display()
            ));
            return Some(Signal::SnapshotFailed);
        }
        let mut fds = [PollFd::from_borrowed_fd(self.signals.fd(), PollFlags::IN)];
        poll_until(&mut fds, until_ns, Some(CHILD_CHECK_NS));
        if let Some(s) = drain(self.signals, self.log, |_, _| None) {
            return Some(s);
        }
        self.check_child()
    }
}
