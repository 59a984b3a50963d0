//! The detached session's controller: tells the first call "all frozen" over a pipe (which
//! then exits 0 with the session's id), lets go of the caller's stdout and stderr, and waits
//! for a `thaw` request from the second call on the control socket (from root only), for
//! SIGTERM/SIGINT/SIGHUP (thaw, interrupted), or for the deadline. Allocates nothing and
//! writes nothing to any filesystem while frozen: log lines go to the deferred log.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use quiesce::runtime::{Controller, Signal};
use quiesce_core::linux::sys::now_ns;
use rustix::event::{PollFd, PollFlags};
use rustix::io::Errno;
use rustix::net::SocketFlags;

use crate::controllers::drain;
use crate::deferred_log::DeferredLog;
use crate::signals::{poll_until, Signals};

/// How long one connection gets to send its request.
const REQUEST_NS: u64 = 1_000_000_000;
const REQUEST_MAX: usize = 64;

/// The line that acknowledges the snapshot.
pub const THAW_REQUEST: &[u8] = b"thaw\n";

pub struct DetachedController<'a> {
    /// The pipe to the first call, until everything is frozen.
    pub status: Option<OwnedFd>,
    id: &'a str,
    listener: BorrowedFd<'a>,
    devnull: BorrowedFd<'a>,
    signals: &'a Signals,
    log: &'a mut DeferredLog,
    /// The connection of the `quiesce thaw` that acknowledged: it gets the final report.
    pub conn: Option<OwnedFd>,
    /// Whether everything was frozen and the first call was told (or telling it failed).
    pub notified: bool,
}

impl<'a> DetachedController<'a> {
    pub fn new(
        status: OwnedFd,
        id: &'a str,
        listener: BorrowedFd<'a>,
        devnull: BorrowedFd<'a>,
        signals: &'a Signals,
        log: &'a mut DeferredLog,
    ) -> Self {
        DetachedController {
            status: Some(status),
            id,
            listener,
            devnull,
            signals,
            log,
            conn: None,
            notified: false,
        }
    }

    /// Reads one request from `conn` (until a newline, end of input, `until_ns` or 1 s),
    /// into a fixed buffer. True if it is `thaw`.
    fn read_request(&mut self, conn: &OwnedFd, until_ns: u64) -> bool {
        let mut buf = [0u8; REQUEST_MAX];
        let mut len = 0;
        let limit = until_ns.min(now_ns().saturating_add(REQUEST_NS));
        while len < buf.len() && !buf[..len].contains(&b'\n') {
            let mut fds = [PollFd::new(conn, PollFlags::IN)];
            if !poll_until(&mut fds, limit, None) {
                break;
            }
            match rustix::io::read(conn, &mut buf[len..]) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(Errno::INTR | Errno::AGAIN) => continue,
                Err(_) => break,
            }
        }
        if &buf[..len] == THAW_REQUEST {
            return true;
        }
        self.log.line(format_args!(
            "ignored a request on the control socket ({} bytes, not `thaw`)",
            len
        ));
        false
    }

    /// Accepts waiting connections; true once one from root asked to thaw.
    fn serve(&mut self, until_ns: u64) -> bool {
        loop {
            let conn = match rustix::net::accept_with(self.listener, SocketFlags::CLOEXEC) {
                Ok(c) => c,
                Err(Errno::INTR) => continue,
                Err(_) => return false,
            };
            match rustix::net::sockopt::socket_peercred(&conn) {
                Ok(cred) if cred.uid.is_root() => {}
                Ok(cred) => {
                    self.log.line(format_args!(
                        "refused a connection on the control socket from uid {} (pid {}): only root may thaw",
                        cred.uid.as_raw(),
                        cred.pid.as_raw_nonzero()
                    ));
                    continue;
                }
                Err(e) => {
                    self.log.line(format_args!(
                        "refused a connection on the control socket: cannot tell who it is ({e})"
                    ));
                    continue;
                }
            }
            if self.read_request(&conn, until_ns) {
                self.conn = Some(conn);
                return true;
            }
        }
    }
}

fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) -> Result<(), i32> {
    while !data.is_empty() {
        match rustix::io::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(Errno::INTR) => {}
            Err(e) => return Err(e.raw_os_error()),
        }
    }
    Ok(())
}

impl Controller for DetachedController<'_> {
    fn notify(&mut self) -> Result<(), i32> {
        self.notified = true;
        // A `thaw` that connected before everything was frozen acknowledges a snapshot that
        // may predate the freeze: refused (closed without an answer; it says so).
        let mut early = 0;
        while let Ok(conn) = rustix::net::accept_with(self.listener, SocketFlags::CLOEXEC) {
            drop(conn);
            early += 1;
        }
        if early > 0 {
            self.log.line(format_args!(
                "refused {early} `quiesce thaw` that came before everything was frozen"
            ));
        }
        let result = match self.status.take() {
            Some(pipe) => write_all(pipe.as_fd(), b"frozen ")
                .and_then(|()| write_all(pipe.as_fd(), self.id.as_bytes()))
                .and_then(|()| write_all(pipe.as_fd(), b"\n")),
            None => Err(Errno::BADF.raw_os_error()),
        };
        // The first call exits now: keep none of its descriptors (the caller's stdout and
        // stderr, e.g. a hook runner's pipes, must see end of file).
        for target in [1, 2] {
            // SAFETY: dup2 onto stdout/stderr of a descriptor we own; no memory involved.
            unsafe { libc::dup2(self.devnull.as_raw_fd(), target) };
        }
        result
    }

    fn wait(&mut self, until_ns: u64) -> Option<Signal> {
        let mut fds = [
            PollFd::from_borrowed_fd(self.signals.fd(), PollFlags::IN),
            PollFd::from_borrowed_fd(self.listener, PollFlags::IN),
        ];
        poll_until(&mut fds, until_ns, None);
        let incoming = !fds[1].revents().is_empty();
        if let Some(s) = drain(self.signals, self.log, |_, _| None) {
            return Some(s);
        }
        (incoming && self.serve(until_ns)).then_some(Signal::Acknowledged)
    }
}
