//! The line protocol: `frozen` on stdout when everything is frozen; `thaw` on stdin
//! acknowledges; end of input does not.

use std::os::fd::{AsFd, BorrowedFd};

use quiesce::runtime::{Controller, Signal};
use rustix::event::{PollFd, PollFlags};

use super::drain;
use crate::deferred_log::DeferredLog;
use crate::signals::{poll_until, Signals};

const LINE_MAX: usize = 512;

pub struct StdinLines<'a> {
    signals: &'a Signals,
    log: &'a mut DeferredLog,
    buf: [u8; LINE_MAX],
    len: usize,
}

impl<'a> StdinLines<'a> {
    pub fn new(signals: &'a Signals, log: &'a mut DeferredLog) -> Self {
        StdinLines {
            signals,
            log,
            buf: [0; LINE_MAX],
            len: 0,
        }
    }

    /// Judges the complete lines in the buffer.
    fn lines(&mut self) -> Option<Signal> {
        while let Some(nl) = self.buf[..self.len].iter().position(|&b| b == b'\n') {
            let line = self.buf[..nl].trim_ascii();
            let verdict = match line {
                b"thaw" => Some(Signal::Acknowledged),
                b"" => None,
                other => {
                    // Lossy display borrows valid UTF-8: no allocation while frozen.
                    self.log.line(format_args!(
                        "ignored input line '{}' (only `thaw` acknowledges)",
                        String::from_utf8_lossy(other)
                    ));
                    None
                }
            };
            self.buf.copy_within(nl + 1..self.len, 0);
            self.len -= nl + 1;
            if verdict.is_some() {
                return verdict;
            }
        }
        if self.len == LINE_MAX {
            self.log.line(format_args!(
                "ignored an input line longer than {LINE_MAX} bytes"
            ));
            self.len = 0;
        }
        None
    }
}

/// write(2) of all of `data` to `fd` (unbuffered: the line must be out before we wait).
fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) -> Result<(), i32> {
    while !data.is_empty() {
        match rustix::io::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.raw_os_error()),
        }
    }
    Ok(())
}

impl Controller for StdinLines<'_> {
    fn notify(&mut self) -> Result<(), i32> {
        let stdout = std::io::stdout();
        write_all(stdout.as_fd(), b"frozen\n")
    }

    fn wait(&mut self, until_ns: u64) -> Option<Signal> {
        let stdin_handle = std::io::stdin();
        let stdin = stdin_handle.as_fd();
        let mut fds = [
            PollFd::from_borrowed_fd(self.signals.fd(), PollFlags::IN),
            PollFd::from_borrowed_fd(stdin, PollFlags::IN),
        ];
        poll_until(&mut fds, until_ns, None);
        let input = !fds[1].revents().is_empty();
        if let Some(s) = drain(self.signals, self.log, |_, _| None) {
            return Some(s);
        }
        if !input {
            return None;
        }
        let free = &mut self.buf[self.len..];
        // An error (EINTR, EAGAIN) reads nothing this time.
        let n = rustix::io::read(stdin, free).unwrap_or(usize::MAX);
        if n == 0 {
            if let Some(s) = self.lines() {
                return Some(s);
            }
            // A last line without a newline still counts.
            if self.buf[..self.len].trim_ascii() == b"thaw" {
                return Some(Signal::Acknowledged);
            }
            self.log.line(format_args!(
                "end of input without `thaw`: not acknowledged"
            ));
            return Some(Signal::Gone);
        }
        if n != usize::MAX {
            self.len += n;
        }
        self.lines()
    }
}
