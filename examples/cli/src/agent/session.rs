//! One freeze, from `guest-fsfreeze-freeze` to `guest-fsfreeze-thaw` or the deadline.
//!
//! The runtime runs the session (plan, helpers, pre-sync, freeze waves, the guardian); this
//! module is its [`Controller`]: once everything is frozen it answers the freeze with the
//! count, then keeps serving the port while frozen, answering only qemu-ga's allowed set
//! (ping, info, sync, sync-delimited, status, thaw; everything else gets qemu-ga's "disabled"
//! error), until `guest-fsfreeze-thaw` (the acknowledgement), the deadline (`--max-frozen`),
//! or SIGTERM/SIGINT/SIGHUP. The thaw is answered after the last `FITHAW` and the hooks'
//! `thaw` calls, with the number of filesystems this thaw thawed.
//!
//! While frozen nothing is written to any file: log lines are held in memory (the [`Log`]),
//! answers go to the port (a character device or a socket).

use std::ffi::OsString;

use quiesce::runtime::{
    self, Controller, FreezeOptions, HookConfig, HookEnd, Hooks, IfFrozen, Outcome, Select, Signal,
};
use serde_json::json;

use super::commands::{dispatch, info, Action, Freeze};
use super::protocol::{check, failure, success, QmpError};
use super::{Agent, Next};

/// The answer to the freeze request, and what became of the session.
pub struct Ended {
    /// The thaw request's id, if a thaw ended the window (it gets the count).
    pub thaw: Option<Option<super::parser::Value>>,
    pub interrupted: bool,
}

struct WhileFrozen<'a> {
    agent: &'a mut Agent,
    freeze_id: Option<super::parser::Value>,
    count: usize,
    notified: bool,
    ended: Ended,
}

impl Controller for WhileFrozen<'_> {
    fn notify(&mut self) -> Result<(), i32> {
        self.notified = true;
        self.agent.frozen = true;
        let answer = success(&json!(self.count), self.freeze_id.as_ref());
        self.agent.send(&answer);
        self.agent.log.line(format!(
            "froze {} filesystem(s); thawing on guest-fsfreeze-thaw or in {} s",
            self.count,
            self.agent.options.max_frozen.as_secs()
        ));
        Ok(())
    }

    fn wait(&mut self, until_ns: u64) -> Option<Signal> {
        self.agent.frozen_until = Some(until_ns);
        loop {
            while let Some(m) = self.agent.queue.pop_front() {
                if quiesce_core::linux::sys::now_ns() >= until_ns {
                    // The deadline first: the rest is answered after the thaw.
                    self.agent.queue.push_front(m);
                    return None;
                }
                let Some(req) = self.agent.request(m) else {
                    continue;
                };
                let id = req.id.clone();
                let known = |n: &str| self.agent.is_known(n);
                let action = dispatch(&req, true, self.agent.forward.is_some(), &known);
                match action {
                    Action::Thaw => {
                        self.ended.thaw = Some(id);
                        return Some(Signal::Acknowledged);
                    }
                    Action::Info => {
                        let v = info(true, &self.agent.qga_info);
                        self.agent.send(&success(&v, id.as_ref()));
                    }
                    other => self.agent.answer_simple(other, id.as_ref()),
                }
            }
            if self.agent.stop {
                self.ended.interrupted = true;
                return Some(Signal::Interrupted);
            }
            if quiesce_core::linux::sys::now_ns() >= until_ns {
                return None;
            }
            if let Next::Stop = self.agent.pump(Some(until_ns)) {
                self.ended.interrupted = true;
                return Some(Signal::Interrupted);
            }
        }
    }
}

impl Agent {
    /// Runs one freeze: hooks, the session, hooks; answers the freeze (from `notify`, or
    /// with the error) and the thaw.
    pub(super) fn freeze(&mut self, what: Freeze, id: Option<super::parser::Value>) {
        let mounts: Vec<OsString> = match &what {
            Freeze::List(l) if l.is_empty() => {
                // qemu-ga: an empty list freezes nothing and answers 0.
                self.send(&success(&json!(0), id.as_ref()));
                return;
            }
            Freeze::List(l) => l.iter().map(OsString::from).collect(),
            Freeze::All => Vec::new(),
        };
        let fail = |agent: &mut Agent, msg: String| {
            agent.log.line(format!("freeze refused: {msg}"));
            agent.send(&failure(&QmpError::generic(msg), id.as_ref()));
        };
        let exclude = self.options.exclude.clone();
        let select = match what {
            Freeze::All => Select::All { exclude: &exclude },
            Freeze::List(_) => Select::Named(&mounts),
        };
        if let Err(f) = runtime::require_cap_sys_admin("freezing", &mounts) {
            return fail(self, f.message);
        }
        let prepared = match runtime::prepare(select) {
            Ok(p) => p,
            Err(f) => return fail(self, f.message),
        };
        if prepared.targets.is_empty() {
            return fail(self, "no freezable filesystem found".into());
        }
        let mut hooks = match self.options.hook_dir.as_ref().filter(|d| d.exists()) {
            Some(dir) => match Hooks::load(&HookConfig {
                dir: Some(dir.clone()),
                timeout: self.options.hook_timeout,
                ..HookConfig::default()
            }) {
                Ok(h) => Some(h),
                Err(f) => return fail(self, f.message),
            },
            None => None,
        };
        if let Some(h) = hooks.as_mut() {
            let signals = &self.signals;
            let mut cancel = || {
                std::iter::from_fn(|| signals.next())
                    .any(|r| crate::signals::INTERRUPTS.contains(&r.signo))
            };
            let verdict = h.run_freeze_with(&mut cancel);
            for r in h.runs() {
                self.log.line(format!(
                    "hook {} {}: {}",
                    r.name,
                    r.phase.name(),
                    r.describe(h.timeout())
                ));
            }
            if verdict.cancelled {
                self.stop = true;
            }
            if !h.is_empty() && !verdict.quiesced {
                let why = h
                    .runs()
                    .iter()
                    .find(|r| !r.succeeded())
                    .map(|r| match r.end {
                        HookEnd::Exited(c) => format!("fsfreeze hook has failed with status {c}"),
                        _ => "fsfreeze hook has terminated abnormally".to_string(),
                    })
                    .unwrap_or_else(|| "fsfreeze hook has failed".into());
                if self.options.require_app_consistent || verdict.cancelled {
                    // Nothing is frozen, and (as qemu-ga's fsfreeze-hook) the hooks that got
                    // `freeze` get `thaw`.
                    h.run_after(true);
                    return fail(self, why);
                }
                // As qemu-ga with its fsfreeze-hook (which ignores a failing script) and as
                // quiesce's default: freeze anyway, file-system-consistent.
                self.log.line(format!(
                    "{why}: freezing anyway (file-system-consistent, not application-consistent; --require-app-consistent refuses instead)"
                ));
            }
        }
        let options = FreezeOptions {
            if_frozen: IfFrozen::Fail,
            ..FreezeOptions::new(self.options.max_frozen)
        };
        let count = prepared.targets.len();
        self.log.hold();
        let mut ctl = WhileFrozen {
            agent: self,
            freeze_id: id.clone(),
            count,
            notified: false,
            ended: Ended {
                thaw: None,
                interrupted: false,
            },
        };
        let result = prepared.freeze_with(options, &mut ctl);
        let (notified, ended) = (ctl.notified, ctl.ended);
        self.frozen = false;
        self.frozen_until = None;
        self.log.release();
        if let Some(h) = hooks.as_mut() {
            h.run_after(true);
            for r in h
                .runs()
                .iter()
                .filter(|r| r.phase != runtime::HookPhase::Freeze)
            {
                self.log.line(format!(
                    "hook {} {}: {}",
                    r.name,
                    r.phase.name(),
                    r.describe(h.timeout())
                ));
            }
        }
        let report = match result {
            Ok(r) => r,
            Err(f) => return fail(self, f.message),
        };
        self.log.line(format!(
            "session: {} ({})",
            report.message(),
            report.status.name()
        ));
        for n in &report.notes {
            self.log.line(format!("note: {n}"));
        }
        if !notified {
            let failed = report
                .targets
                .iter()
                .find(|t| t.outcome == Outcome::FreezeFailed && t.errno != 0);
            let msg = match failed {
                Some(t) => format!(
                    "failed to freeze {}: {}{}",
                    t.info.mount_point,
                    strerror(t.errno),
                    if t.errno == libc::EBUSY {
                        " (frozen by another holder; its freeze is left alone, and nothing else stays frozen)"
                    } else {
                        ""
                    }
                ),
                None => report.message(),
            };
            self.send(&failure(&QmpError::generic(msg), id.as_ref()));
        }
        if let Some(thaw_id) = ended.thaw {
            let thawed = report
                .targets
                .iter()
                .filter(|t| t.outcome == Outcome::Thawed)
                .count();
            self.send(&success(&json!(thawed), thaw_id.as_ref()));
        } else if notified && !ended.interrupted {
            self.log.line(format!(
                "no guest-fsfreeze-thaw within --max-frozen ({} s): everything is thawed; the next guest-fsfreeze-thaw answers 0",
                self.options.max_frozen.as_secs()
            ));
        }
        if ended.interrupted {
            self.stop = true;
        }
    }

    /// The envelope check of one message; errors are answered here.
    pub(super) fn request(
        &mut self,
        m: super::framing::Message,
    ) -> Option<super::protocol::Request> {
        match m {
            super::framing::Message::Error(desc) => {
                self.send(&failure(&QmpError::generic(desc), None));
                None
            }
            super::framing::Message::Request(v) => match check(v) {
                Ok(r) => Some(r),
                Err((e, id)) => {
                    self.send(&failure(&e, id.as_ref()));
                    None
                }
            },
        }
    }
}

/// The C library's text for an errno, as qemu-ga's `error_setg_errno` shows it.
fn strerror(errno: i32) -> String {
    let text = std::io::Error::from_raw_os_error(errno).to_string();
    match text.rfind(" (os error ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}
