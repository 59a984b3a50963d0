//! Two calls, one deadline: `quiesce freeze --detach` freezes and returns, a detached
//! controller holds the session (with its guardian and freezers, as every session has), and a
//! later, unrelated `quiesce thaw MOUNT...` (or `--session ID`) acknowledges the snapshot,
//! thaws through that session and prints its final report. The deadline still counts from the
//! first `FIFREEZE`; if the second call never comes, it thaws everything, and the outcome
//! stays in the control directory until a `thaw` or `status --clear` collects it.
//!
//! The first call: checks, plans and opens everything (errors exactly as `freeze` gives them),
//! then forks twice: the controller runs in its own session and process group, with stdin on
//! /dev/null and no descriptor of the caller except stdout and stderr, which it keeps only
//! until everything is frozen (a failure before that is printed there, as by `freeze`). It
//! tells the first call over a pipe: `frozen ID` (the first call prints the id and exits 0;
//! the controller puts /dev/null on its stdout and stderr), or `exit CODE` after printing the
//! failure (the first call exits with that code; nothing is frozen). If the first call dies
//! before it hears "frozen", the controller's write fails and it thaws at once (not
//! acknowledged).
//!
//! - [`control_dir`]: the control directory, checked, used only relative to its descriptor;
//! - [`record`]: `ID.detached`, the session's targets and, once ended, its final report;
//! - [`controller`]: the controller's wait (control socket, signals, deadline);
//! - [`thaw`]: the second call, and `quiesce status` / `status --clear` for detached sessions.

pub mod control_dir;
pub mod controller;
pub mod record;
pub mod thaw;

use std::io::{Read as _, Write as _};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use quiesce::runtime::{
    self, Failure, FreezeOptions, HookConfig, Hooks, IfFrozen, Prepared, ProcRef, RecordTarget,
    Select,
};
use quiesce::Status;
use rustix::fs::{Mode, OFlags};
use rustix::pipe::{pipe_with, PipeFlags};

use crate::args::Tuning;
use crate::deferred_log::DeferredLog;
use crate::json::{array, Object};
use crate::signals::{Signals, INTERRUPTS};
use control_dir::ControlDir;
use controller::DetachedController;
use record::{DetachedRecord, Ended};

/// `quiesce freeze --detach`'s settings.
pub struct DetachOptions {
    pub timeout: std::time::Duration,
    pub tuning: Tuning,
    pub hooks: HookConfig,
}

fn internal(message: String, errno: i32) -> Failure {
    Failure {
        status: Status::Internal,
        message,
        errno,
    }
}

/// Closes every descriptor above stderr: what the caller passed us is not ours to keep, and
/// the controller must hold none of it.
fn close_inherited() {
    // SAFETY: close_range(2) takes two descriptor numbers and flags; it touches no memory.
    // Nothing of ours is open yet (the command line is parsed, nothing else happened).
    unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
}

/// The superblock behind descriptor `fd` of this process, from its mount id
/// (`/proc/self/fdinfo`) and the mount table; None for pipes, sockets, terminals.
fn fd_device(fd: i32) -> Option<quiesce_core::mountinfo::Dev> {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).ok()?;
    let mnt_id: u32 = info
        .lines()
        .find_map(|l| l.strip_prefix("mnt_id:"))?
        .trim()
        .parse()
        .ok()?;
    let table = std::fs::read("/proc/self/mountinfo").ok()?;
    let entry = quiesce_core::mountinfo::MountInfo::new(&table)
        .find(mnt_id)?
        .ok()?;
    Some(entry.dev)
}

/// Where the first call's own output goes, checked before anything is frozen: it writes the
/// session id (stdout) and a line (stderr) while everything is frozen, and a write to a frozen
/// filesystem would block it until the deadline. Stdout there is refused (the id could not be
/// delivered); stderr there only loses that line. Returns whether stderr may be written.
fn check_own_output(prepared: &Prepared) -> Result<bool, Failure> {
    let frozen = |fd| fd_device(fd).is_some_and(|d| prepared.targets.iter().any(|t| t.device == d));
    if frozen(1) {
        return Err(Failure {
            status: Status::Usage,
            message: "stdout is a file on a filesystem that `freeze --detach` would freeze: the session id could not be written until the thaw; redirect stdout elsewhere (nothing was frozen)".into(),
            errno: 0,
        });
    }
    Ok(!frozen(2))
}

/// The first call.
pub fn freeze(
    name: &'static str,
    named: &[std::ffi::OsString],
    select: Select<'_>,
    opts: DetachOptions,
    json: bool,
) -> Result<Status, Failure> {
    runtime::check_timeout(opts.timeout)?;
    runtime::require_cap_sys_admin("freezing", named)?;
    close_inherited();
    let dir = ControlDir::open(true)?
        .ok_or_else(|| internal("the control directory could not be created".into(), 0))?;
    let prepared = runtime::prepare(select)?;
    let hooks = Hooks::load(&opts.hooks)?;
    let stderr_ok = check_own_output(&prepared)?;
    for n in &prepared.notes {
        errln!("quiesce: note: {n}");
    }
    for s in &prepared.skipped {
        errln!(
            "quiesce: skipping {} ({}): {}",
            s.mount_point,
            s.fs_type,
            s.reason
        );
    }
    let devnull = rustix::fs::open("/dev/null", OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| internal(format!("cannot open /dev/null: {e}"), e.raw_os_error()))?;
    let (from_controller, to_first) = pipe_with(PipeFlags::CLOEXEC)
        .map_err(|e| internal(format!("cannot make a pipe: {e}"), e.raw_os_error()))?;
    let _ = std::io::stdout().flush();
    // SAFETY: this process is single-threaded (the CLI starts no thread before this point), so
    // the child may go on running ordinary code.
    let first = unsafe { libc::fork() };
    if first < 0 {
        let e = std::io::Error::last_os_error();
        return Err(internal(
            format!("cannot start the controller: {e}"),
            e.raw_os_error().unwrap_or(0),
        ));
    }
    if first == 0 {
        // The intermediate process: a new session (no controlling terminal, out of the
        // caller's process group), then the controller, then exit at once.
        drop(from_controller);
        // SAFETY: setsid and fork in a single-threaded child.
        let second = unsafe {
            libc::setsid();
            libc::fork()
        };
        if second == 0 {
            let code =
                controller_main(name, &dir, &prepared, hooks, &opts, to_first, devnull, json);
            let _ = std::io::stdout().flush();
            std::process::exit(code);
        }
        if second < 0 {
            let _ = rustix::io::write(&to_first, b"exit 70 cannot fork the controller\n");
        }
        // SAFETY: _exit ends the intermediate process without running anything else.
        unsafe { libc::_exit(0) };
    }
    drop(to_first);
    drop(devnull);
    let mut status = 0;
    // SAFETY: waits for our own child; `status` is a valid out-parameter.
    while unsafe { libc::waitpid(first, &mut status, 0) } < 0
        && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
    {}
    let mut said = String::new();
    let _ = std::fs::File::from(from_controller).read_to_string(&mut said);
    let said = said.trim_end();
    if let Some(id) = said.strip_prefix("frozen ") {
        frozen(name, id, &prepared, &dir, &opts, json, stderr_ok);
        return Ok(Status::Ok);
    }
    if let Some(rest) = said.strip_prefix("exit ") {
        let code = rest.split(' ').next().and_then(|c| c.parse().ok());
        if let Some(status) = code.and_then(Status::from_code) {
            // The controller printed the failure itself (on our stdout and stderr).
            return Ok(status);
        }
    }
    Err(internal(
        format!(
            "the detached controller ended without saying whether everything was frozen ({said:?}); if it froze anything, its guardian has thawed it: `quiesce status` shows what is left"
        ),
        0,
    ))
}

/// The first call's report once everything is frozen: the id on stdout (text), or the report
/// so far (JSON).
fn frozen(
    name: &str,
    id: &str,
    prepared: &Prepared,
    dir: &ControlDir,
    opts: &DetachOptions,
    json: bool,
    stderr_ok: bool,
) {
    let mounts: Vec<&str> = prepared
        .targets
        .iter()
        .map(|t| t.mount_point.as_str())
        .collect();
    let thaw = format!("quiesce thaw {}", mounts.join(" "));
    let message = format!(
        "froze {} filesystem{}; detached session {id} holds {} until `{thaw}` (or `quiesce thaw --session {id}`) acknowledges the snapshot, and thaws at the deadline, {:.1} s after the first freeze, if that never comes",
        mounts.len(),
        if mounts.len() == 1 { "" } else { "s" },
        if mounts.len() == 1 { "it" } else { "them" },
        opts.timeout.as_secs_f64()
    );
    if json {
        let targets = array(prepared.targets.iter().enumerate().map(|(i, t)| {
            crate::output::target_json(t, i)
                .str("outcome", "frozen")
                .finish()
        }));
        let controller = id.split('-').next().and_then(|p| p.parse::<i64>().ok());
        let o = Object::new()
            .str("command", name)
            .num("status", Status::Ok.code())
            .str("status_name", Status::Ok.name())
            .str("message", &message)
            .bool("detached", true)
            .str("session", id)
            .opt_num("controller_pid", controller.map(|p| p as u64))
            .str("control_dir", &dir.path.to_string_lossy())
            .str("thaw_command", &thaw)
            .str("consistency", "pending")
            .num("timeout_ms", opts.timeout.as_millis())
            .raw("targets", &targets)
            .raw(
                "skipped",
                &array(prepared.skipped.iter().map(crate::output::skip_json)),
            );
        outln!("{}", o.finish());
    } else {
        outln!("{id}");
        if stderr_ok {
            errln!("quiesce {name}: {message}");
        }
    }
}

/// Tells the first call to exit with `code` (after the failure was printed).
fn tell_first(pipe: Option<&OwnedFd>, code: Status) {
    let _ = std::io::stdout().flush();
    if let Some(p) = pipe {
        let _ = rustix::io::write(p, format!("exit {}\n", code.code()).as_bytes());
    }
}

/// The controller (the detached grandchild). Returns its exit code (nobody waits for it).
#[allow(clippy::too_many_arguments)]
fn controller_main(
    name: &'static str,
    dir: &ControlDir,
    prepared: &Prepared,
    mut hooks: Hooks,
    opts: &DetachOptions,
    to_first: OwnedFd,
    devnull: OwnedFd,
    json: bool,
) -> i32 {
    // SAFETY: plain syscalls on our own process; the name is a valid C string.
    unsafe {
        libc::umask(0o077);
        libc::dup2(devnull.as_raw_fd(), 0);
        libc::prctl(libc::PR_SET_NAME, c"quiesce-detach".as_ptr(), 0, 0, 0);
    }
    let _ = rustix::process::chdir("/");
    let fail = |f: Failure| {
        crate::output::failure(name, &f, json);
        tell_first(Some(&to_first), f.status);
        f.status.code() as i32
    };
    let signals = match Signals::block(&INTERRUPTS) {
        Ok(s) => s,
        Err(e) => {
            return fail(internal(
                format!("cannot set up signal handling: {e}"),
                e.raw_os_error().unwrap_or(0),
            ))
        }
    };
    let me = ProcRef::of(std::process::id() as i32);
    let id = format!("{}-{}", me.pid, me.start);
    let mut record = DetachedRecord::new(
        id.clone(),
        opts.timeout,
        prepared
            .targets
            .iter()
            .map(|t| RecordTarget {
                device: t.device,
                mount_point: t.mount_point.clone(),
            })
            .collect(),
    );
    if let Err(e) = dir.write(&record.file_name(), &record.text()) {
        return fail(internal(
            format!(
                "cannot write the detached session's record in {}: {e}",
                dir.path.display()
            ),
            e.raw_os_error().unwrap_or(0),
        ));
    }
    let cleanup = || {
        let _ = dir.remove(&record.socket_name());
        let _ = dir.remove(&record.file_name());
    };
    let listener = match dir.listen(&record.socket_name()) {
        Ok(l) => l,
        Err(e) => {
            cleanup();
            return fail(Failure {
                status: Status::Permission,
                message: format!(
                    "cannot create the control socket {}/{}: {e}; nothing was frozen",
                    dir.path.display(),
                    record.socket_name()
                ),
                errno: e.raw_os_error().unwrap_or(0),
            });
        }
    };
    let mut log = Box::new(DeferredLog::new());
    let options = FreezeOptions {
        timeout: opts.timeout,
        if_frozen: IfFrozen::Fail,
        record: true,
        presync: opts.tuning.presync,
        parallel: opts.tuning.parallel,
    };
    let mut cancel = || {
        while let Some(r) = signals.next() {
            if INTERRUPTS.contains(&r.signo) {
                return true;
            }
        }
        false
    };
    let mut ctl = DetachedController::new(
        to_first,
        &id,
        listener.as_fd(),
        devnull.as_fd(),
        &signals,
        &mut log,
    );
    let result = prepared.freeze_with_hooks(options, &mut hooks, &mut ctl, &mut cancel);
    let notified = ctl.notified;
    let conn = ctl.conn.take();
    let to_first = ctl.status.take();
    drop(ctl);
    let report = match result {
        Err(f) => {
            cleanup();
            log.flush_to_stderr();
            crate::output::failure_with_hooks(name, &f, json, hooks.runs(), hooks.timeout());
            tell_first(to_first.as_ref(), f.status);
            return f.status.code() as i32;
        }
        Ok(r) => r,
    };
    if !notified {
        // It ended before everything was frozen: reported here, as by `freeze`.
        cleanup();
        let (out, err) = crate::conclude(name, prepared, &report, &log, json);
        for l in &err {
            errln!("{l}");
        }
        out!("{out}");
        tell_first(to_first.as_ref(), report.status);
        return report.status.code() as i32;
    }
    let (json_out, log_lines) = crate::conclude("thaw", prepared, &report, &log, true);
    let (text_out, _) = crate::conclude("thaw", prepared, &report, &log, false);
    let json_line = json_out.trim_end();
    let json_line = match json_line.strip_prefix('{') {
        Some(rest) => format!(
            "{{\"session\":{},\"detached\":true,{rest}",
            crate::json::quoted(&id)
        ),
        None => json_line.to_string(),
    };
    let ended = Ended {
        status: report.status.code(),
        message: report.message(),
        json: json_line,
        text: text_out.lines().map(str::to_string).collect(),
        log: log_lines,
    };
    let reply = ended.text();
    record.ended = Some(ended);
    // Written before the socket goes: a `thaw` that finds the socket gone finds the report.
    let _ = dir.write(&record.file_name(), &record.text());
    let _ = dir.remove(&record.socket_name());
    if let Some(conn) = conn {
        let _ = rustix::io::ioctl_fionbio(&conn, false);
        let _ = std::fs::File::from(conn).write_all(reply.as_bytes());
    }
    drop(listener);
    0
}
