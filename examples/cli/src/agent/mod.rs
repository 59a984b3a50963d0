//! `quiesce agent`: the QEMU guest agent's freeze commands, with a deadline.
//!
//! A long-running service on the guest agent's virtio-serial port (or a unix socket) that
//! speaks qemu-ga's protocol byte for byte, so that OpenStack Nova, libvirt (`virsh
//! domfsfreeze`, `snapshot --quiesce`) and Proxmox freeze through quiesce without a change on
//! the host; every freeze has a deadline (`--max-frozen`), a guardian that thaws if the agent
//! dies, quiesce's order and no foreign thaws. Commands that are not about freezing can be
//! relayed to a qemu-ga behind it (`--forward`).
//!
//! - [`framing`]: qemu's lexer and streamer (one request per JSON object, `0xFF` resync,
//!   limits); [`parser`]: tokens into a document, qemu's parse errors; [`wire`]: answers
//!   written as qemu writes them;
//! - [`protocol`]: the request envelope and argument checks, the answers;
//! - [`commands`]: what each command does, what is allowed while frozen;
//! - [`session`]: one freeze, serving the port while frozen;
//! - [`port`]: the virtio-serial port or the socket; [`forward`]: relaying to qemu-ga.

mod commands;
mod forward;
mod framing;
mod parser;
mod port;
mod protocol;
mod session;
mod wire;

use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use quiesce::runtime::{DEFAULT_HOOK_TIMEOUT, MAX_TIMEOUT};
use rustix::event::{PollFd, PollFlags};

use crate::signals::{Signals, INTERRUPTS};
use commands::{dispatch, info, Action, NO_SUCCESS_RESPONSE, QGA_7_2};
use forward::Forward;
use framing::{Framing, Message};
use parser::Value;
use port::{Port, Read};
use protocol::{failure, success, QmpError};

/// The default deadline: long enough for a snapshot that copies a whole disk.
pub const DEFAULT_MAX_FROZEN: Duration = Duration::from_secs(600);
/// qemu-ga's hook directory convention.
pub const DEFAULT_HOOK_DIR: &str = "/etc/qemu/fsfreeze-hook.d";
/// Log lines held while frozen; more are counted.
const HELD_MAX: usize = 10_000;

pub const HELP: &str = "\
quiesce agent: the QEMU guest agent's freeze commands, with a deadline.

Usage:
  quiesce agent [--path DEV | --unix-listen PATH] [--max-frozen SECS] [--forward unix:PATH]
                [--hook-dir DIR | --no-hooks] [--hook-timeout SECS] [--require-app-consistent]
                [--exclude MOUNT]...

Speaks qemu-ga's protocol (guest-sync, guest-sync-delimited, guest-ping, guest-info,
guest-fsfreeze-status, guest-fsfreeze-freeze, guest-fsfreeze-freeze-list,
guest-fsfreeze-thaw) on the virtio-serial port and freezes with quiesce: quiesce's order,
one deadline, a guardian that thaws if the agent dies.

Options:
  --path DEV          the virtio-serial port (default /dev/virtio-ports/org.qemu.guest_agent.0;
                      without udev's link the port is found by its name in
                      /sys/class/virtio-ports/*/name)
  --unix-listen PATH  listen on a unix socket instead (one connection at a time)
  --max-frozen SECS   thaw everything this long after the first freeze if no
                      guest-fsfreeze-thaw came (default 600, at most 3600); status then says
                      thawed and the next guest-fsfreeze-thaw answers 0
  --forward unix:PATH relay every command that is not about freezing to a qemu-ga listening
                      on that unix socket (qemu-ga's unix-listen method)
  --hook-dir DIR      qemu-ga's hook directory convention: DIR's executables get `freeze`
                      before the freeze (name order) and `thaw` after the thaw (reverse
                      order); default /etc/qemu/fsfreeze-hook.d if it exists; checked as
                      quiesce's hooks (root-owned, not writable by others, no symlinks)
  --no-hooks          run no hooks
  --hook-timeout SECS each hook call's limit (default 1800)
  --require-app-consistent
                      a hook that fails on `freeze` fails the freeze ('fsfreeze hook has
                      failed with status N'; nothing frozen, the hooks get `thaw`); without
                      it the failure is logged and the freeze goes on
  --exclude MOUNT     leave this filesystem out of guest-fsfreeze-freeze (all filesystems)

Logs go to stderr; while frozen they are held in memory and written after the thaw.
SIGTERM, SIGINT or SIGHUP: thaw (if frozen), answer, exit 0.
";

#[derive(Clone, Debug)]
pub struct Options {
    pub endpoint: Endpoint,
    pub max_frozen: Duration,
    pub forward: Option<PathBuf>,
    pub hook_dir: Option<PathBuf>,
    pub hook_timeout: Duration,
    pub require_app_consistent: bool,
    pub exclude: Vec<OsString>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Device(PathBuf),
    Listen(PathBuf),
}

fn seconds(flag: &str, v: Option<OsString>, max: Duration) -> Result<Duration, String> {
    let v = v.ok_or_else(|| format!("{flag} needs a number of seconds"))?;
    let s = v.to_string_lossy();
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("{flag} '{s}' is not a number of seconds"))?;
    if secs.is_nan() || secs <= 0.0 || secs > max.as_secs_f64() {
        return Err(format!(
            "{flag} '{s}' must be more than 0 and at most {} seconds",
            max.as_secs()
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses `quiesce agent`'s arguments.
pub fn parse(args: Vec<OsString>) -> Result<Option<Options>, String> {
    let mut o = Options {
        endpoint: Endpoint::Device(PathBuf::from(port::DEFAULT_PATH)),
        max_frozen: DEFAULT_MAX_FROZEN,
        forward: None,
        hook_dir: Some(PathBuf::from(DEFAULT_HOOK_DIR)),
        hook_timeout: DEFAULT_HOOK_TIMEOUT,
        require_app_consistent: false,
        exclude: Vec::new(),
    };
    let mut explicit_dir = false;
    let mut it = args.into_iter();
    let path = |flag: &str, v: Option<OsString>| {
        v.filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .ok_or_else(|| format!("{flag} needs a path"))
    };
    while let Some(a) = it.next() {
        match a.to_str().unwrap_or("") {
            "-h" | "--help" => return Ok(None),
            "--path" => o.endpoint = Endpoint::Device(path("--path", it.next())?),
            "--unix-listen" => o.endpoint = Endpoint::Listen(path("--unix-listen", it.next())?),
            "--max-frozen" => o.max_frozen = seconds("--max-frozen", it.next(), MAX_TIMEOUT)?,
            "--hook-timeout" => {
                o.hook_timeout = seconds(
                    "--hook-timeout",
                    it.next(),
                    quiesce::runtime::MAX_HOOK_TIMEOUT,
                )?
            }
            "--hook-dir" => {
                o.hook_dir = Some(path("--hook-dir", it.next())?);
                explicit_dir = true;
            }
            "--no-hooks" => o.hook_dir = None,
            "--require-app-consistent" => o.require_app_consistent = true,
            "--exclude" => o.exclude.push(path("--exclude", it.next())?.into()),
            "--forward" => {
                let v = it.next().ok_or("--forward needs unix:PATH")?;
                let v = v.to_string_lossy();
                let p = v.strip_prefix("unix:").filter(|p| !p.is_empty()).ok_or_else(|| {
                    format!("--forward '{v}': give the socket of a qemu-ga as unix:PATH (qemu-ga -m unix-listen -p PATH)")
                })?;
                o.forward = Some(PathBuf::from(p));
            }
            other => {
                return Err(format!(
                    "unknown argument '{}' for `quiesce agent` (see `quiesce agent --help`)",
                    if other.is_empty() {
                        a.to_string_lossy().into_owned()
                    } else {
                        other.into()
                    }
                ))
            }
        }
    }
    if explicit_dir {
        if let Some(d) = &o.hook_dir {
            if !d.is_dir() {
                return Err(format!("--hook-dir '{}' is not a directory", d.display()));
            }
        }
    }
    Ok(Some(o))
}

/// Log lines: to stderr, or held in memory while frozen.
#[derive(Default)]
pub struct Log {
    held: Option<Vec<String>>,
    dropped: usize,
}

impl Log {
    pub fn line(&mut self, l: String) {
        match &mut self.held {
            Some(h) if h.len() < HELD_MAX => h.push(l),
            Some(_) => self.dropped += 1,
            None => errln!("quiesce agent: {l}"),
        }
    }

    fn hold(&mut self) {
        self.held.get_or_insert_with(|| Vec::with_capacity(256));
    }

    fn release(&mut self) {
        for l in self.held.take().unwrap_or_default() {
            errln!("quiesce agent: {l}");
        }
        if self.dropped > 0 {
            errln!(
                "quiesce agent: ({} more log lines did not fit in memory)",
                self.dropped
            );
            self.dropped = 0;
        }
    }
}

pub struct Agent {
    port: Port,
    framing: Framing,
    queue: VecDeque<Message>,
    signals: Signals,
    log: Log,
    forward: Option<Forward>,
    /// qemu-ga's `guest-info` entries (the last ones it gave).
    qga_info: Vec<Value>,
    options: Options,
    frozen: bool,
    /// While frozen: the deadline (monotonic ns), which no answer may hold the agent past.
    frozen_until: Option<u64>,
    stop: bool,
    /// Answers dropped since the host went away (logged once, counted).
    dropped_answers: usize,
    /// The read buffer, allocated once.
    buf: Vec<u8>,
}

/// What [`Agent::pump`] saw.
enum Next {
    Go,
    Stop,
}

/// `quiesce agent ARGS...`: runs until SIGTERM; the exit status.
pub fn main(args: Vec<OsString>) -> u8 {
    let options = match parse(args) {
        Ok(Some(o)) => o,
        Ok(None) => {
            out!("{HELP}");
            return 0;
        }
        Err(e) => {
            errln!("quiesce agent: {e}");
            return 2;
        }
    };
    let port = match &options.endpoint {
        Endpoint::Device(p) => port::find_device(p, Path::new("/sys")).and_then(|d| {
            Port::device(&d).map_err(|e| format!("cannot open '{}': {e}", d.display()))
        }),
        Endpoint::Listen(p) => {
            Port::listen(p).map_err(|e| format!("cannot listen on '{}': {e}", p.display()))
        }
    };
    let port = match port {
        Ok(p) => p,
        Err(e) => {
            errln!("quiesce agent: {e}");
            return 3;
        }
    };
    // SAFETY: ignoring SIGPIPE (a host that hangs up mid-answer) has no preconditions.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let signals = match Signals::block(&INTERRUPTS) {
        Ok(s) => s,
        Err(e) => {
            errln!("quiesce agent: cannot set up signal handling: {e}");
            return 70;
        }
    };
    let mut agent = Agent {
        forward: options.forward.as_deref().map(Forward::new),
        port,
        framing: Framing::default(),
        queue: VecDeque::new(),
        signals,
        log: Log::default(),
        qga_info: Vec::new(),
        options,
        frozen: false,
        frozen_until: None,
        stop: false,
        dropped_answers: 0,
        buf: vec![0; 64 * 1024],
    };
    agent.log.line(format!(
        "serving the {} (--max-frozen {} s{}{})",
        agent.port.describe(),
        agent.options.max_frozen.as_secs(),
        agent
            .forward
            .as_ref()
            .map(|f| format!(", other commands to qemu-ga at {}", f.path().display()))
            .unwrap_or_default(),
        agent
            .options
            .hook_dir
            .as_ref()
            .filter(|d| d.exists())
            .map(|d| format!(", hooks in {}", d.display()))
            .unwrap_or_default()
    ));
    agent.run();
    agent.log.line("stopped".into());
    0
}

impl Agent {
    fn run(&mut self) {
        while !self.stop {
            while let Some(m) = self.queue.pop_front() {
                self.handle(m);
                if self.stop {
                    return;
                }
            }
            if let Next::Stop = self.pump(None) {
                self.stop = true;
            }
        }
    }

    /// Waits for input (at most until `until_ns`), reads it into the queue, watches signals.
    fn pump(&mut self, until_ns: Option<u64>) -> Next {
        let now = quiesce_core::linux::sys::now_ns();
        let mut left = until_ns.map_or(1_000_000_000, |u| u.saturating_sub(now).min(1_000_000_000));
        let port_fd = self.port.poll_fd();
        if port_fd.is_none() {
            left = left.min(port::HANGUP_PAUSE_NS);
        }
        let mut fds = vec![PollFd::from_borrowed_fd(self.signals.fd(), PollFlags::IN)];
        if let Some(fd) = port_fd {
            fds.push(PollFd::from_borrowed_fd(fd, PollFlags::IN));
        }
        let ts = rustix::time::Timespec {
            tv_sec: (left / 1_000_000_000) as i64,
            tv_nsec: (left % 1_000_000_000) as i64,
        };
        let _ = rustix::event::poll(&mut fds, Some(&ts));
        let port_events = fds.get(1).map(|f| f.revents());
        drop(fds);
        while let Some(r) = self.signals.next() {
            if INTERRUPTS.contains(&r.signo) {
                self.log.line(format!(
                    "{} from pid {}: {}",
                    crate::controllers::signal_name(r.signo),
                    r.pid,
                    if self.frozen {
                        "thawing and stopping"
                    } else {
                        "stopping"
                    }
                ));
                return Next::Stop;
            }
        }
        let Some(ev) = port_events else {
            return Next::Go;
        };
        if ev.is_empty() {
            return Next::Go;
        }
        if let Some(m) = self.port.accept() {
            self.framing = Framing::default();
            self.log.line(m);
            return Next::Go;
        }
        let mut buf = std::mem::take(&mut self.buf);
        let mut messages = Vec::new();
        for _ in 0..64 {
            match self.port.read(&mut buf) {
                Read::Data(n) => {
                    self.report_dropped();
                    self.framing.feed(&buf[..n], &mut messages)
                }
                Read::Nothing => {
                    if !ev.contains(PollFlags::IN)
                        && ev.intersects(PollFlags::HUP | PollFlags::ERR)
                        && self.port.hung_up()
                    {
                        self.log
                            .line("the host hung up; waiting for it to come back".into());
                    }
                    break;
                }
                Read::HungUp => {
                    self.log
                        .line("the host hung up; waiting for it to come back".into());
                    break;
                }
            }
        }
        self.buf = buf;
        self.queue.extend(messages);
        Next::Go
    }

    fn send(&mut self, bytes: &[u8]) {
        // While frozen an answer never holds the agent past the deadline.
        let limit = match self.frozen_until {
            Some(until) => {
                Duration::from_nanos(until.saturating_sub(quiesce_core::linux::sys::now_ns()))
                    .min(port::WRITE_LIMIT)
            }
            None => port::WRITE_LIMIT,
        };
        match self.port.write_all(bytes, limit) {
            Ok(()) => self.report_dropped(),
            // Once per absence of the host; the rest are counted.
            Err(e) => {
                if self.dropped_answers == 0 {
                    self.log.line(format!("answer not delivered: {e}"));
                }
                self.dropped_answers += 1;
            }
        }
    }

    /// Logs how many answers were dropped while the host was away (when it is back).
    fn report_dropped(&mut self) {
        if self.dropped_answers > 1 {
            self.log.line(format!(
                "{} answers were not delivered while the host was away",
                self.dropped_answers
            ));
        }
        self.dropped_answers = 0;
    }

    fn is_known(&self, name: &str) -> bool {
        QGA_7_2.contains(&name)
            || self
                .qga_info
                .iter()
                .any(|e| e.get("name").and_then(Value::as_str) == Some(name))
    }

    /// Answers what needs nothing but the answer.
    fn answer_simple(&mut self, action: Action, id: Option<&Value>) {
        match action {
            Action::Return(v) => self.send(&success(&v, id)),
            Action::Delimited(v) => {
                let mut a = vec![0xFF];
                a.extend_from_slice(&success(&v, id));
                self.send(&a);
            }
            Action::Fail(e) => self.send(&failure(&e, id)),
            other => {
                let e = QmpError::generic(format!("internal error: unexpected {other:?}"));
                self.send(&failure(&e, id));
            }
        }
    }

    fn handle(&mut self, m: Message) {
        let Some(req) = self.request(m) else { return };
        let id = req.id.clone();
        let known = |n: &str| self.is_known(n);
        let action = dispatch(&req, false, self.forward.is_some(), &known);
        match action {
            Action::Freeze(what) => {
                self.log.line(format!("{} requested", req.command));
                self.freeze(what, id);
            }
            Action::Thaw => self.send(&success(&serde_json::json!(0), id.as_ref())),
            Action::Info => {
                self.refresh_qga_info();
                let v = info(false, &self.qga_info);
                self.send(&success(&v, id.as_ref()));
            }
            Action::Forward => self.relay(&req),
            other => self.answer_simple(other, id.as_ref()),
        }
    }

    fn stop_check(signals: &Signals, stop: &mut bool) -> bool {
        while let Some(r) = signals.next() {
            if INTERRUPTS.contains(&r.signo) {
                *stop = true;
            }
        }
        *stop
    }

    fn relay(&mut self, req: &protocol::Request) {
        let Some(fwd) = self.forward.as_mut() else {
            return;
        };
        let mut bytes = wire::to_bytes(&req.document);
        bytes.push(b'\n');
        let expects = !NO_SUCCESS_RESPONSE.contains(&req.command.as_str());
        let (signals, stop) = (&self.signals, &mut self.stop);
        let r = fwd.relay(&bytes, expects, &mut || Self::stop_check(signals, stop));
        match r {
            Ok(Some(answer)) => self.send(&answer),
            Ok(None) => {}
            Err(e) => {
                self.log.line(format!("{}: {e}", req.command));
                self.send(&failure(&QmpError::generic(e), req.id.as_ref()));
            }
        }
    }

    /// Asks the qemu-ga behind us for its command list (thawed only).
    fn refresh_qga_info(&mut self) {
        let Some(fwd) = self.forward.as_mut() else {
            return;
        };
        let (signals, stop) = (&self.signals, &mut self.stop);
        let r = fwd.relay(b"{\"execute\": \"guest-info\"}\n", true, &mut || {
            Self::stop_check(signals, stop)
        });
        let answer = match r {
            Ok(Some(a)) => a,
            Ok(None) => return,
            Err(e) => {
                self.log.line(format!("guest-info from qemu-ga: {e}"));
                return;
            }
        };
        let mut f = Framing::default();
        let mut out = Vec::new();
        f.feed(&answer, &mut out);
        if let Some(Message::Request(v)) = out.pop() {
            if let Some(list) = v["return"]["supported_commands"].as_array() {
                self.qga_info = list.clone();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Option<Options>, String> {
        parse(args.iter().map(OsString::from).collect())
    }

    #[test]
    fn options() {
        let o = p(&[]).unwrap().unwrap();
        assert_eq!(
            o.endpoint,
            Endpoint::Device(PathBuf::from(port::DEFAULT_PATH))
        );
        assert_eq!(o.max_frozen, DEFAULT_MAX_FROZEN);
        assert_eq!(o.hook_dir.as_deref(), Some(Path::new(DEFAULT_HOOK_DIR)));
        let o = p(&[
            "--unix-listen",
            "/run/a.sock",
            "--max-frozen",
            "2.5",
            "--forward",
            "unix:/run/q",
            "--no-hooks",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(o.endpoint, Endpoint::Listen("/run/a.sock".into()));
        assert_eq!(o.max_frozen, Duration::from_millis(2500));
        assert_eq!(o.forward.as_deref(), Some(Path::new("/run/q")));
        assert_eq!(o.hook_dir, None);
        assert!(p(&["--help"]).unwrap().is_none());
        for (bad, says) in [
            (&["--max-frozen", "0"][..], "more than 0"),
            (&["--max-frozen", "3601"], "at most 3600"),
            (&["--max-frozen", "x"], "not a number"),
            (&["--forward", "/run/q"], "unix:PATH"),
            (&["--hook-dir", "/nonexistent-hook-dir"], "not a directory"),
            (&["--frobnicate"], "unknown argument '--frobnicate'"),
        ] {
            let e = p(bad).unwrap_err();
            assert!(e.contains(says), "{bad:?}: {e}");
        }
    }

    #[test]
    fn the_example_units_run_valid_command_lines() {
        for unit in [
            include_str!("../../../agent/quiesce-agent.service"),
            include_str!("../../../agent/quiesce-agent.service.d/forward.conf"),
        ] {
            let exec = unit
                .lines()
                .filter_map(|l| l.strip_prefix("ExecStart="))
                .rfind(|l| !l.is_empty())
                .expect("an ExecStart line");
            let words: Vec<&str> = exec.split_whitespace().collect();
            assert_eq!(&words[..2], ["/usr/local/sbin/quiesce", "agent"]);
            assert!(p(&words[2..]).unwrap().is_some(), "{exec}");
        }
        let qga = include_str!("../../../agent/qemu-ga-behind-quiesce.service");
        assert!(qga.contains("-p /run/qemu-ga-behind-quiesce.sock"));
        assert!(
            qga.contains("-b guest-fsfreeze-freeze,guest-fsfreeze-freeze-list,guest-fsfreeze-thaw")
        );
    }
}
