//! The `fsfreezer` / `safefreeze` handshake: SIGUSR1 to the parent once frozen; SIGUSR1 from
//! the parent (and only from the parent) acknowledges; the parent's exit does not.

use std::os::fd::{AsFd, OwnedFd};

use quiesce::runtime::{Controller, Signal};
use rustix::event::{PollFd, PollFlags};
use rustix::process::{getppid, kill_process, pidfd_open, Pid, PidfdFlags, Signal as RustixSignal};

use super::drain;
use crate::deferred_log::DeferredLog;
use crate::signals::{poll_until, Signals};

/// Without a pidfd, how often the parent's liveness is checked.
const PARENT_CHECK_NS: u64 = 50_000_000;

pub struct ParentHandshake<'a> {
    parent: libc::pid_t,
    pidfd: Option<OwnedFd>,
    signals: &'a Signals,
    log: &'a mut DeferredLog,
}

impl<'a> ParentHandshake<'a> {
    /// Prepares the handshake with our parent. Fails when there is no real parent (we were
    /// re-parented to init: nobody is there to acknowledge).
    pub fn new(signals: &'a Signals, log: &'a mut DeferredLog) -> Result<Self, String> {
        let parent = Pid::as_raw(getppid());
        if parent <= 1 {
            return Err(
                "`quiesce freeze` acknowledges by SIGUSR1 from its parent, but it has no parent process; use --stdin or `quiesce run`"
                    .into(),
            );
        }
        let pidfd = Pid::from_raw(parent).and_then(|pid| pidfd_open(pid, PidfdFlags::empty()).ok());
        Ok(ParentHandshake {
            parent,
            pidfd,
            signals,
            log,
        })
    }

    fn parent_gone(&self) -> bool {
        Pid::as_raw(getppid()) != self.parent
    }
}

impl Controller for ParentHandshake<'_> {
    fn notify(&mut self) -> Result<(), i32> {
        let parent = Pid::from_raw(self.parent).ok_or(quiesce_core::errno::ECHILD)?;
        kill_process(parent, RustixSignal::USR1).map_err(|e| e.raw_os_error())
    }

    fn wait(&mut self, until_ns: u64) -> Option<Signal> {
        let sig = PollFd::from_borrowed_fd(self.signals.fd(), PollFlags::IN);
        match &self.pidfd {
            Some(p) => {
                let mut fds = [sig, PollFd::from_borrowed_fd(p.as_fd(), PollFlags::IN)];
                poll_until(&mut fds, until_ns, None);
            }
            None => {
                poll_until(&mut [sig], until_ns, Some(PARENT_CHECK_NS));
            }
        }
        let parent = self.parent as u32;
        // Signals first: a parent that acknowledges and then exits has acknowledged.
        if let Some(s) = drain(self.signals, self.log, |r, log| {
            if r.signo == libc::SIGUSR1 && r.pid == parent {
                Some(Signal::Acknowledged)
            } else {
                log.line(format_args!(
                    "ignored {} from pid {} (only the parent, pid {}, can acknowledge)",
                    super::signal_name(r.signo),
                    r.pid,
                    parent
                ));
                None
            }
        }) {
            return Some(s);
        }
        if self.parent_gone() {
            self.log.line(format_args!(
                "the parent (pid {}) exited without acknowledging",
                self.parent
            ));
            return Some(Signal::Gone);
        }
        None
    }
}
