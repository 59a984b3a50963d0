//! The controllers: the three ways a snapshot-taker tells quiesce "snapshot taken".
//!
//! - [`parent`]: the SIGUSR1 handshake of `fsfreezer` / `safefreeze`;
//! - [`stdin`]: a `frozen` line out, a `thaw` line in;
//! - [`command`]: a snapshot command run while frozen; exit status 0 acknowledges.
//!
//! All of them watch SIGTERM, SIGINT and SIGHUP too: a signal ends the window early (thaw,
//! status `interrupted`). None writes to a filesystem while waiting: log lines go to the
//! [`DeferredLog`](crate::deferred_log::DeferredLog).

pub mod command;
pub mod parent;
pub mod stdin;

use quiesce::runtime::Signal;

use crate::deferred_log::DeferredLog;
use crate::signals::{Signals, INTERRUPTS};

/// Drains pending signals: an interrupt ends the wait; `on_other` judges every other signal.
pub(crate) fn drain(
    signals: &Signals,
    log: &mut DeferredLog,
    mut on_other: impl FnMut(crate::signals::Received, &mut DeferredLog) -> Option<Signal>,
) -> Option<Signal> {
    while let Some(r) = signals.next() {
        if INTERRUPTS.contains(&r.signo) {
            log.line(format_args!(
                "signal {} from pid {} while frozen: thawing",
                signal_name(r.signo),
                r.pid
            ));
            return Some(Signal::Interrupted);
        }
        if let Some(s) = on_other(r, log) {
            return Some(s);
        }
    }
    None
}

pub(crate) fn signal_name(signo: i32) -> &'static str {
    match signo {
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGHUP => "SIGHUP",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGCHLD => "SIGCHLD",
        _ => "signal",
    }
}
