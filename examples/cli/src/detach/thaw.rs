//! The second call: `quiesce thaw MOUNT...` or `quiesce thaw --session ID`.
//!
//! The named mounts are identified by superblock and matched against the detached sessions'
//! records: all of one session's filesystems acknowledge and thaw it through its controller
//! (over the control socket, whose peer must be that controller, running as root), which sends
//! back the final report; a session that already ended (the deadline, a signal) has its report
//! printed from the record, with why; either way the record is collected. Only part of a
//! session, or a mix of sessions: refused, naming the others, nothing thawed. A filesystem no
//! detached session holds gets today's rescue thaw (`FITHAW`), and the output says so.

use std::ffi::OsString;
use std::io::{Read as _, Write as _};

use quiesce::runtime::{self, Failure, NamedMount, SessionState};
use quiesce::Status;
use rustix::fs::FileType;

use super::control_dir::{valid_id, ControlDir};
use super::controller::THAW_REQUEST;
use super::record::{DetachedRecord, Ended, SUFFIX};
use crate::json::{array, quoted, Object};

const ONE_SECOND: rustix::time::Timespec = rustix::time::Timespec {
    tv_sec: 1,
    tv_nsec: 0,
};

fn usage(message: String) -> Failure {
    Failure {
        status: Status::Usage,
        message,
        errno: 0,
    }
}

/// Where a detached session stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DetachedState {
    /// Its controller runs: frozen (or about to be), waiting for `quiesce thaw`.
    Live,
    /// It ended; its report waits to be collected.
    Ended,
    /// Its controller is gone without a report (killed): its guardian thawed.
    Gone,
}

impl DetachedState {
    pub fn name(self) -> &'static str {
        match self {
            DetachedState::Live => "live",
            DetachedState::Ended => "ended",
            DetachedState::Gone => "controller-gone",
        }
    }
}

/// A detached session as found in the control directory.
pub struct Found {
    pub record: DetachedRecord,
    pub state: DetachedState,
}

fn state_of(r: &DetachedRecord) -> DetachedState {
    if r.ended.is_some() {
        DetachedState::Ended
    } else if r.controller.alive() {
        DetachedState::Live
    } else {
        DetachedState::Gone
    }
}

/// Every detached session's record in `dir` (records that do not parse or fail the checks
/// are skipped with a note on stderr).
pub fn load_all(dir: &ControlDir) -> Result<Vec<Found>, Failure> {
    let names = dir.list(SUFFIX).map_err(|e| Failure {
        status: Status::Internal,
        message: format!("cannot list {}: {e}", dir.path.display()),
        errno: e.raw_os_error().unwrap_or(0),
    })?;
    let mut out = Vec::new();
    for name in names {
        let id = &name[..name.len() - SUFFIX.len()];
        if !valid_id(id) {
            continue;
        }
        match dir.read(&name) {
            Ok(Some(text)) => match DetachedRecord::parse(id, &text) {
                Some(record) => out.push(Found {
                    state: state_of(&record),
                    record,
                }),
                None => errln!(
                    "quiesce: note: {}/{name} is not a detached session's record; ignored",
                    dir.path.display()
                ),
            },
            Ok(None) => {}
            Err(why) => errln!("quiesce: note: ignored {why}"),
        }
    }
    Ok(out)
}

/// `quiesce thaw`.
pub fn thaw(mounts: &[OsString], session: Option<&str>, json: bool) -> Result<Status, Failure> {
    let what: Vec<OsString> = match session {
        Some(id) => vec![OsString::from(format!("session {id}"))],
        None => mounts.to_vec(),
    };
    runtime::require_cap_sys_admin("thawing", &what)?;
    // A control directory that is not safe refuses the whole call: nothing is thawed.
    let dir = ControlDir::open(false)?;
    let found = match &dir {
        Some(d) => load_all(d)?,
        None => Vec::new(),
    };
    if let Some(id) = session {
        if !valid_id(id) {
            return Err(usage(format!(
                "--session '{id}' is not a session id (PID-START, as `quiesce freeze --detach` prints it and `quiesce status` lists it)"
            )));
        }
        let (Some(dir), Some(f)) = (&dir, found.into_iter().find(|f| f.record.id == id)) else {
            return Err(Failure {
                status: Status::BadTarget,
                message: format!(
                    "no detached session {id} in {}: it was collected already, or never existed; `quiesce status` lists the sessions",
                    runtime::run_dir().display()
                ),
                errno: 0,
            });
        };
        return act(dir, f, json);
    }
    let named = runtime::identify_mounts(mounts)?;
    let holder_of = |m: &NamedMount| {
        found
            .iter()
            .position(|f| f.record.targets.iter().any(|t| t.device == m.device))
    };
    let holders: Vec<Option<usize>> = named.iter().map(holder_of).collect();
    if holders.iter().all(Option::is_none) {
        return rescue(mounts, &named, json);
    }
    let first = holders.iter().flatten().next().copied().unwrap_or(0);
    if holders.iter().any(|h| *h != Some(first)) {
        let parts: Vec<String> = named
            .iter()
            .zip(&holders)
            .map(|(m, h)| match h {
                Some(i) => format!(
                    "{} belongs to detached session {}",
                    m.mount_point, found[*i].record.id
                ),
                None => format!("{} to no detached session", m.mount_point),
            })
            .collect();
        return Err(usage(format!(
            "the named filesystems are not one detached session ({}): thaw each session with its own `quiesce thaw --session ID`; nothing was thawed",
            parts.join(", ")
        )));
    }
    let f = found
        .into_iter()
        .nth(first)
        .ok_or_else(|| usage("no session".into()))?;
    let others: Vec<&str> = f
        .record
        .targets
        .iter()
        .filter(|t| !named.iter().any(|m| m.device == t.device))
        .map(|t| t.mount_point.as_str())
        .collect();
    if !others.is_empty() {
        return Err(usage(format!(
            "{} {} only part of detached session {}, which also holds {}: a snapshot is acknowledged for the whole session; name all of them (`quiesce thaw {}`) or use `quiesce thaw --session {}`; nothing was thawed",
            named.iter().map(|m| m.mount_point.as_str()).collect::<Vec<_>>().join(", "),
            if named.len() == 1 { "is" } else { "are" },
            f.record.id,
            others.join(", "),
            f.record.mount_points().join(" "),
            f.record.id
        )));
    }
    let Some(dir) = &dir else {
        return Err(usage("no control directory".into()));
    };
    act(dir, f, json)
}

/// Removes a session's files: it has been reported.
fn collect(dir: &ControlDir, r: &DetachedRecord) {
    let _ = dir.remove(&r.socket_name());
    if let Err(e) = dir.remove(&r.file_name()) {
        errln!(
            "quiesce: note: cannot remove {}/{}: {e}",
            dir.path.display(),
            r.file_name()
        );
    }
}

/// Acknowledges (live) or reports (ended, gone) one session.
fn act(dir: &ControlDir, f: Found, json: bool) -> Result<Status, Failure> {
    let r = &f.record;
    if let Some(e) = &r.ended {
        let status = print_ended(r, e, true, json);
        collect(dir, r);
        return Ok(status);
    }
    if f.state == DetachedState::Live {
        if let Some(e) = acknowledge(dir, r)? {
            let status = print_ended(r, &e, false, json);
            collect(dir, r);
            return Ok(status);
        }
        // No answer: it may have ended just now (the deadline), or another `thaw` got there
        // first; its record says.
        match dir.read(&r.file_name()) {
            Ok(Some(text)) => {
                if let Some(e) = DetachedRecord::parse(&r.id, &text).and_then(|n| n.ended) {
                    let status = print_ended(r, &e, true, json);
                    collect(dir, r);
                    return Ok(status);
                }
                if r.controller.alive() {
                    return Err(Failure {
                        status: Status::Usage,
                        message: format!(
                            "detached session {} refused this `quiesce thaw`: it came before everything was frozen, so the snapshot it acknowledges could predate the freeze; run `quiesce thaw` after `quiesce freeze --detach` has returned (the session is still frozen, or freezing)",
                            r.id
                        ),
                        errno: 0,
                    });
                }
            }
            Ok(None) => {
                return Err(Failure {
                    status: Status::BadTarget,
                    message: format!(
                        "detached session {} was acknowledged, reported and collected by another `quiesce thaw` meanwhile; this call did nothing",
                        r.id
                    ),
                    errno: 0,
                })
            }
            Err(_) => {}
        }
    }
    Ok(gone(dir, r, json))
}

/// Sends `thaw` to the controller and reads its final report; `Ok(None)` if it could not be
/// reached or ended without answering.
fn acknowledge(dir: &ControlDir, r: &DetachedRecord) -> Result<Option<Ended>, Failure> {
    let sock_name = r.socket_name();
    let refused = |why: String| Failure {
        status: Status::Permission,
        message: format!(
            "the control socket of detached session {} is not safe: {why}; nothing was thawed",
            r.id
        ),
        errno: 0,
    };
    match rustix::fs::statat(
        dir.fd(),
        sock_name.as_str(),
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    ) {
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(e) => return Err(refused(e.to_string())),
        Ok(_) => dir
            .check_entry(&sock_name, FileType::Socket, true)
            .map_err(refused)?,
    }
    let sock = match dir.connect(&sock_name) {
        Ok(s) => s,
        Err(why) => {
            errln!("quiesce: note: {why}");
            return Ok(None);
        }
    };
    match rustix::net::sockopt::socket_peercred(&sock) {
        Ok(c) if c.uid.is_root() && c.pid.as_raw_nonzero().get() == r.controller.pid => {}
        Ok(c) => {
            return Err(refused(format!(
                "it is served by pid {} (uid {}), not by the session's controller, pid {} of root",
                c.pid.as_raw_nonzero(),
                c.uid.as_raw(),
                r.controller.pid
            )))
        }
        Err(e) => return Err(refused(format!("cannot tell who serves it: {e}"))),
    }
    let mut file = std::fs::File::from(sock);
    if file.write_all(THAW_REQUEST).is_err() {
        return Ok(None);
    }
    // The reply comes after the thaw and the hooks' calls after it; wait as long as the
    // controller lives (checked every second: a controller killed meanwhile ends the wait).
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let mut fds = [rustix::event::PollFd::new(
            &file,
            rustix::event::PollFlags::IN,
        )];
        let ready = rustix::event::poll(&mut fds, Some(&ONE_SECOND)).unwrap_or(0);
        if ready == 0 {
            if !r.controller.alive() {
                break;
            }
            continue;
        }
        match file.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => reply.extend_from_slice(&buf[..n]),
        }
    }
    Ok(Ended::parse(&String::from_utf8_lossy(&reply)))
}

/// Prints a session's final report; returns its status.
fn print_ended(r: &DetachedRecord, e: &Ended, before_thaw: bool, json: bool) -> Status {
    let status = Status::from_code(e.status).unwrap_or(Status::Internal);
    for l in &e.log {
        errln!("{l}");
    }
    let why = if status == Status::Ok {
        format!("detached session {} was acknowledged and thawed by an earlier `quiesce thaw` whose report was never collected", r.id)
    } else {
        format!(
            "detached session {} had ended before this `quiesce thaw` came: {}; the snapshot is not to be trusted",
            r.id, e.message
        )
    };
    if json {
        let line = match (before_thaw, e.json.strip_prefix('{')) {
            (true, Some(rest)) => format!(
                "{{\"ended_before_thaw\":true,\"why\":{},{rest}",
                quoted(&why)
            ),
            _ => e.json.clone(),
        };
        outln!("{line}");
    } else {
        for l in &e.text {
            outln!("{l}");
        }
    }
    if before_thaw {
        errln!("quiesce: {why}");
    }
    status
}

/// What became of a dead controller's filesystems: from its runtime session record, which the
/// guardian removes once it has thawed. (outcome name, sentence)
fn after_death(r: &DetachedRecord) -> (&'static str, String) {
    let record = runtime::sessions().ok().and_then(|list| {
        list.into_iter().find(|s| {
            s.record
                .path
                .file_stem()
                .is_some_and(|n| n.to_string_lossy() == r.id)
        })
    });
    let mounts = r.mount_points().join(", ");
    match record.map(|s| s.state) {
        None => (
            "thawed-by-guardian",
            format!(
                "its guardian thawed {mounts} at once (or, if it was killed too, `quiesce recover` did)"
            ),
        ),
        Some(SessionState::Orphaned) => (
            "may-be-frozen",
            format!(
                "its guardian is gone too, so {mounts} may still be frozen: `quiesce recover` thaws what the session left"
            ),
        ),
        Some(state) => (
            "thawing",
            format!(
                "its guardian or freezer is still at work ({}): {mounts} are thawed as soon as a stuck FIFREEZE returns; `quiesce status` shows it",
                state.name()
            ),
        ),
    }
}

/// The controller is gone and left no report: it was killed.
fn gone(dir: &ControlDir, r: &DetachedRecord, json: bool) -> Status {
    let status = Status::NotAcknowledged;
    let (outcome, after) = after_death(r);
    let message = format!(
        "the controller of detached session {} (pid {}) is gone and left no report: it was killed before this `quiesce thaw`; {after}; the snapshot is not to be trusted",
        r.id, r.controller.pid,
    );
    errln!("quiesce: {message}");
    if json {
        let targets = array(r.targets.iter().enumerate().map(|(i, t)| {
            Object::new()
                .str("mount_point", &t.mount_point)
                .str("device", &t.device.to_string())
                .num("order", i)
                .str("outcome", outcome)
                .finish()
        }));
        let o = Object::new()
            .str("command", "thaw")
            .num("status", status.code())
            .str("status_name", status.name())
            .str("message", &message)
            .str("session", &r.id)
            .bool("detached", true)
            .bool("ended_before_thaw", true)
            .str("consistency", "not-consistent")
            .bool("acknowledged", false)
            .str("end", "controller-gone")
            .num("timeout_ms", r.timeout.as_millis())
            .raw("targets", &targets);
        outln!("{}", o.finish());
    } else {
        outln!(
            "quiesce thaw: {} ({}): {message}",
            status.name(),
            status.code()
        );
    }
    collect(dir, r);
    status
}

/// No detached session holds the named filesystems: the rescue thaw.
fn rescue(mounts: &[OsString], named: &[NamedMount], json: bool) -> Result<Status, Failure> {
    let names: Vec<&str> = named.iter().map(|m| m.mount_point.as_str()).collect();
    errln!(
        "quiesce: no detached session holds {}: the rescue thaw (FITHAW on each; a filesystem that is not frozen is reported, not an error)",
        names.join(", ")
    );
    let (status, results) = runtime::thaw_paths(mounts)?;
    crate::output::thaw(status, &results, true, json);
    Ok(status)
}

/// `quiesce status`'s view of the detached sessions, and `--clear` (which removes the records
/// of ended ones and of those whose controller is gone). Live sessions are never cleared.
pub fn for_status(clear: bool) -> Result<(Vec<Found>, Vec<String>), Failure> {
    let Some(dir) = ControlDir::open(false)? else {
        return Ok((Vec::new(), Vec::new()));
    };
    let found = load_all(&dir)?;
    if !clear {
        return Ok((found, Vec::new()));
    }
    let mut cleared = Vec::new();
    let mut kept = Vec::new();
    for f in found {
        if f.state == DetachedState::Live {
            kept.push(f);
        } else {
            collect(&dir, &f.record);
            cleared.push(f.record.id.clone());
        }
    }
    Ok((kept, cleared))
}

/// One detached session for `quiesce status --json`.
pub fn found_json(f: &Found) -> String {
    let r = &f.record;
    let targets = array(r.targets.iter().enumerate().map(|(i, t)| {
        Object::new()
            .str("mount_point", &t.mount_point)
            .str("device", &t.device.to_string())
            .num("order", i)
            .finish()
    }));
    let e = r.ended.as_ref();
    let status = e.and_then(|e| Status::from_code(e.status));
    Object::new()
        .str("session", &r.id)
        .str("state", f.state.name())
        .raw(
            "controller",
            &Object::new()
                .num("pid", r.controller.pid)
                .bool("alive", r.controller.alive())
                .finish(),
        )
        .num("timeout_ms", r.timeout.as_millis())
        .num("started_unix_ms", r.started_unix_ms)
        .opt_num("status", status.map(|s| u64::from(s.code())))
        .opt_str("status_name", status.map(Status::name))
        .opt_str("message", e.map(|e| e.message.as_str()))
        .raw("targets", &targets)
        .finish()
}

/// One detached session for `quiesce status`, as text.
pub fn found_text(f: &Found) -> String {
    let r = &f.record;
    let head = match (&r.ended, f.state) {
        (Some(e), _) => {
            let s = Status::from_code(e.status).unwrap_or(Status::Internal);
            format!(
                "ended: {} ({}): {}; `quiesce thaw --session {}` reports and collects it",
                s.name(),
                s.code(),
                e.message,
                r.id
            )
        }
        (None, DetachedState::Live) => format!(
            "live (controller {} running), timeout {:.1} s; `quiesce thaw {}` acknowledges and thaws",
            r.controller.pid,
            r.timeout.as_secs_f64(),
            r.mount_points().join(" ")
        ),
        (None, _) => format!(
            "its controller {} is gone without a report (killed): not consistent",
            r.controller.pid
        ),
    };
    let mut s = format!("detached session {}: {head}\n", r.id);
    for (i, t) in r.targets.iter().enumerate() {
        s.push_str(&format!(
            "  {:>2}. {}  ({})\n",
            i + 1,
            t.mount_point,
            t.device
        ));
    }
    s
}
