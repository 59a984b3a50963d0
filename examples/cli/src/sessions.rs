//! `quiesce status` and `quiesce recover`: sessions in progress, for people and machines.

use quiesce::runtime::{
    errno_name, run_dir, ProcRef, RecoveredSession, SessionState, SessionStatus,
};
use quiesce::Status;

use crate::detach::thaw::{found_json, found_text, Found};
use crate::json::{array, Object};

fn proc_json(p: ProcRef, alive: bool) -> String {
    Object::new()
        .num("pid", p.pid)
        .bool("alive", alive)
        .finish()
}

fn session_json(s: &SessionStatus) -> Object {
    let r = &s.record;
    let targets = array(r.targets.iter().enumerate().map(|(i, t)| {
        Object::new()
            .str("mount_point", &t.mount_point)
            .str("device", &t.device.to_string())
            .num("order", i)
            .finish()
    }));
    Object::new()
        .str("record", &r.path.to_string_lossy())
        .str("state", s.state.name())
        .raw("controller", &proc_json(r.controller, s.controller_alive))
        .raw("guardian", &proc_json(r.guardian, s.guardian_alive))
        .raw("freezer", &proc_json(r.freezer, s.freezer_alive))
        .num("timeout_ms", r.timeout.as_millis())
        .num("deadline_unix_ms", r.deadline_unix_ms)
        .raw("targets", &targets)
}

fn alive(b: bool) -> &'static str {
    if b {
        "running"
    } else {
        "gone"
    }
}

fn session_text(s: &SessionStatus) {
    let r = &s.record;
    outln!(
        "session {} ({}): controller {} {}, guardian {} {}, freezer {} {}; timeout {:.1} s",
        r.path.display(),
        s.state.name(),
        r.controller.pid,
        alive(s.controller_alive),
        r.guardian.pid,
        alive(s.guardian_alive),
        r.freezer.pid,
        alive(s.freezer_alive),
        r.timeout.as_secs_f64()
    );
    for (i, t) in r.targets.iter().enumerate() {
        outln!("  {:>2}. {}  ({})", i + 1, t.mount_point, t.device);
    }
}

/// The id of a session record (`PID-START`, the file's stem), the id a detached session has.
fn record_id(s: &SessionStatus) -> String {
    s.record
        .path
        .file_stem()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `quiesce status` (and `status --clear`): the sessions in progress, and the detached
/// sessions, live or ended (whose reports wait for a `quiesce thaw` to collect them).
pub fn status(
    list: &[SessionStatus],
    detached: &[Found],
    cleared: &[String],
    clear: bool,
    json: bool,
) {
    let is_detached = |s: &SessionStatus| {
        let id = record_id(s);
        detached.iter().any(|f| f.record.id == id)
    };
    if json {
        let mut o = Object::new()
            .str("command", "status")
            .num("status", Status::Ok.code())
            .str("status_name", Status::Ok.name())
            .str("run_dir", &run_dir().to_string_lossy())
            .raw(
                "sessions",
                &array(
                    list.iter()
                        .map(|s| session_json(s).bool("detached", is_detached(s)).finish()),
                ),
            )
            .raw("detached", &array(detached.iter().map(found_json)));
        if clear {
            o = o.strings("cleared", cleared.iter().map(String::as_str));
        }
        outln!("{}", o.finish());
        return;
    }
    if list.is_empty() && detached.is_empty() {
        outln!(
            "no quiesce session in progress (no records in {})",
            run_dir().display()
        );
    }
    for s in list {
        session_text(s);
    }
    for f in detached {
        out!("{}", found_text(f));
    }
    if clear {
        match cleared.len() {
            0 => outln!("nothing to clear: no ended detached session"),
            n => outln!(
                "cleared {n} ended detached session{}: {}",
                if n == 1 { "" } else { "s" },
                cleared.join(", ")
            ),
        }
    }
}

/// One sentence about a recovery.
fn recover_message(status: Status, list: &[RecoveredSession]) -> String {
    let orphaned = list
        .iter()
        .filter(|r| r.session.state == SessionState::Orphaned)
        .count();
    let left = list.len() - orphaned;
    let mut m = match (status, orphaned) {
        (Status::Ok, 0) => "nothing to recover: no session was left by dead processes".to_string(),
        (Status::Ok, n) => format!(
            "recovered {n} session{} left by dead processes: their filesystems are thawed",
            if n == 1 { "" } else { "s" }
        ),
        (_, _) => format!(
            "a filesystem of a dead session could not be thawed; its record is kept: {}",
            status.message()
        ),
    };
    if left > 0 {
        m.push_str(&format!(
            "; {left} session{} with a live process left alone",
            if left == 1 { "" } else { "s" }
        ));
    }
    m
}

/// `quiesce recover`.
pub fn recover(status: Status, list: &[RecoveredSession], json: bool) {
    if json {
        let sessions = array(list.iter().map(|r| {
            let targets = array(r.targets.iter().map(|t| {
                Object::new()
                    .str("mount_point", &t.target.mount_point)
                    .str("device", &t.target.device.to_string())
                    .str("outcome", t.outcome.name())
                    .num("errno", t.errno)
                    .opt_str(
                        "error",
                        (t.errno != 0).then(|| errno_name(t.errno)).as_deref(),
                    )
                    .str("detail", &t.detail)
                    .finish()
            }));
            session_json(&r.session)
                .bool("recovered", r.session.state == SessionState::Orphaned)
                .bool("removed", r.removed)
                .raw("outcomes", &targets)
                .finish()
        }));
        let o = Object::new()
            .str("command", "recover")
            .num("status", status.code())
            .str("status_name", status.name())
            .str("message", &recover_message(status, list))
            .raw("sessions", &sessions);
        outln!("{}", o.finish());
        return;
    }
    if list.is_empty() {
        outln!("nothing to recover (no records in {})", run_dir().display());
    } else {
        outln!("{}", recover_message(status, list));
    }
    for r in list {
        let s = &r.session;
        if r.targets.is_empty() && s.state != SessionState::Orphaned {
            outln!(
                "session {} is {} (controller {} {}, guardian {} {}, freezer {} {}): left alone",
                s.record.path.display(),
                s.state.name(),
                s.record.controller.pid,
                alive(s.controller_alive),
                s.record.guardian.pid,
                alive(s.guardian_alive),
                s.record.freezer.pid,
                alive(s.freezer_alive),
            );
            continue;
        }
        outln!(
            "session {} (controller {} and guardian {} gone): {}",
            s.record.path.display(),
            s.record.controller.pid,
            s.record.guardian.pid,
            if r.removed {
                "recovered, record removed"
            } else {
                "record kept"
            }
        );
        for t in &r.targets {
            let detail = if t.detail.is_empty() {
                String::new()
            } else {
                format!(": {}", t.detail)
            };
            outln!(
                "  {}  ({}): {}{detail}",
                t.target.mount_point,
                t.target.device,
                t.outcome.name()
            );
        }
    }
}
