//! `quiesce`: freeze filesystems around a disk snapshot, thaw them again, never leave them
//! frozen. A thin shell over the `quiesce-ffi` runtime; see README.md for usage and exit codes.

#[macro_use]
mod stdio;

mod agent;
mod args;
mod controllers;
mod deferred_log;
mod detach;
mod json;
mod output;
mod sessions;
mod signals;
mod skips;

use std::process::ExitCode;

use quiesce::runtime::{self, Failure, FreezeOptions, HookConfig, Hooks, IfFrozen, Report, Select};
use quiesce::Status;

use args::{Command, Invocation};
use controllers::command::{resolve_program, SnapshotCommand};
use controllers::parent::ParentHandshake;
use controllers::stdin::StdinLines;
use deferred_log::DeferredLog;
use signals::{Signals, INTERRUPTS};

const HELP: &str = "\
quiesce: freeze filesystems for a consistent disk snapshot, and always thaw them again.

Usage:
  quiesce plan   [--json] [--verbose] [--exclude MOUNT]... [MOUNT...]
  quiesce plan   [--json] [DISKS]       (and run, freeze: DISKS instead of MOUNT...)
  quiesce run    --timeout SECS [--json] [--if-frozen=fail|skip] [SPEED] [HOOKS] MOUNT... -- CMD [ARG...]
  quiesce freeze --timeout SECS [--json] [--if-frozen=fail|skip] [SPEED] [HOOKS] [--stdin] MOUNT...
  quiesce freeze --detach --timeout SECS [--json] [SPEED] [HOOKS] MOUNT...
  quiesce TIMEOUT MOUNT...        (the fsfreezer / safefreeze form of `freeze`)
  quiesce thaw   [--json] MOUNT...   |   quiesce thaw [--json] --session ID
  quiesce status [--json] [--clear]
  quiesce recover [--json]
  quiesce agent  [--path DEV | --unix-listen PATH] [--max-frozen SECS] [--forward unix:PATH] ...
                 (the QEMU guest agent's freeze commands: `quiesce agent --help`)

Commands:
  plan     show what would be frozen, in which order, and what is skipped and why;
           freezes nothing. Without MOUNT: every freezable filesystem; the kernel,
           in-memory, network, overlay and FUSE filesystems it skips are counted in one
           line (--verbose lists them), the surprising skips (a read-only or unopenable
           disk filesystem, an unknown type) are listed with the reason.
  run      freeze, run CMD (the snapshot), thaw when it exits. Exit status 0 of CMD
           acknowledges the snapshot. At the deadline everything is thawed and CMD is
           stopped (SIGTERM, then SIGKILL after 5 s).
  freeze   freeze, send SIGUSR1 to the parent process, thaw on SIGUSR1 from the parent
           (from no one else), on the parent's exit (not acknowledged) or at the deadline.
           --stdin: print `frozen` on stdout instead; a line `thaw` on stdin acknowledges,
           end of input does not.
           --detach: return (exit 0, printing the session id) once everything is frozen;
           a detached controller holds the session, with its guardian, until a later
           `quiesce thaw` acknowledges, or the deadline (counted from the first freeze).
  thaw     on the filesystems of a detached session (all of them) or --session ID:
           acknowledge, thaw through the session, print its final report, exit with its
           status (13 if the deadline had thawed it already: not to be trusted).
           On other filesystems, the rescue: thaw them (one that is not frozen is reported,
           and is not an error).
  status   list the sessions in progress (records in /run/quiesce): their processes, targets
           and deadline; and detached sessions, live or ended (until collected by `thaw` or
           --clear).
  recover  thaw what sessions left frozen whose controller and guardian are both gone (each
           mount point must still hold the recorded device), and remove their records.

Options:
  --timeout SECS   the deadline from the first freeze to the last thaw; more than 0, at most
                   3600; decimals allowed
  --json           print the report as one JSON object on stdout
  --if-frozen=fail|skip
                   a filesystem already frozen by another holder: fail (the default: exit 15,
                   their freeze left alone) or skip it (the snapshot does not cover it)
  --exclude MOUNT  (plan) leave this filesystem out
  --verbose        (plan) list every skipped filesystem with its reason
  --session ID     (thaw) the detached session, as `freeze --detach` printed it
  --clear          (status) remove the records of ended detached sessions

Selection by disk (plan, run, freeze), instead of MOUNT...:
  --disk DISK      freeze the filesystems on DISK (repeatable), through partitions, LVM,
                   dm-crypt, md, multipath, btrfs and loop images. DISK: /dev/vdb, a
                   /dev/disk/by-* link, or serial:VALUE (an AWS vol-... id with or without
                   the dash, an OpenStack volume UUID, an Alibaba d-... id with or without d-)
  --exclude-disk DISK
                   freeze the filesystems on every disk but DISK (repeatable)
  --allow-partial-group
                   a filesystem on disks both inside and outside the group is left out (not
                   frozen, reported as not covered) instead of refusing everything (exit 8)
  `plan` then shows each disk with its serial, its filesystems and its consistency level.

Speed (run, freeze); both are on by default:
  --no-presync     do not syncfs every target right before the first freeze. Pre-sync
                   flushes dirty data while writers still run, so the frozen window is short;
                   it runs in the freezer processes, in parallel, waits at most the timeout
                   (no more than 10 s) and does not count against the deadline
  --sequential     freeze one filesystem after another. By default filesystems that do not
                   depend on each other (no loop image of one stored on another) are frozen
                   at once, by up to 16 freezer processes

Hooks (run, freeze), for application-consistent snapshots:
  --hook-dir DIR   run DIR's executables, in byte-wise name order, with `freeze` before the
                   freeze; after the thaw, in reverse order, with `thaw`, or with
                   `freeze-failed` if the freeze failed, timed out or did not happen
  --pre-script PATH   run PATH with `freeze` before the freeze (before the directory's hooks)
  --post-script PATH  run PATH with `thaw` or `freeze-failed` after the thaw (after them)
  --hook-timeout SECS each call's limit (default 1800); then its process group is killed
  --require-app-consistent
                   a hook that fails before the freeze stops everything: nothing is frozen
                   and the hooks that got `freeze` get `freeze-failed` (exit 19); without
                   it the snapshot falls back to file-system-consistent, with the reason
  Every hook, and every directory above it, must belong to root and not be writable by
  group or others, and no path component may be a symbolic link; otherwise nothing runs
  (exit 7). Hooks get a fixed PATH, no other environment, stdin /dev/null, no other open
  descriptors; their output (64 KiB each) goes into the report.
  -h, --help       this text;  -V, --version  the version

MOUNT must be a mount point; each filesystem is frozen once, however many of its paths are
named. Needs CAP_SYS_ADMIN (root) to freeze or thaw. SIGTERM, SIGINT or SIGHUP while frozen
thaws and exits 18. Log lines produced while frozen are written to stderr after the thaw.
A guardian process thaws everything if quiesce is killed (SIGKILL included), after killing
the snapshot command of `run` and its process group, and a FIFREEZE stuck in the kernel
cannot hold up the deadline: it is thawed as soon as it returns.

The control directory of detached sessions (/run/quiesce, or $QUIESCE_RUN_DIR) must be
root's and not writable by others, with no symbolic link on the way (else exit 5).

Exit codes: 0 ok (file- or application-consistent: see the report), 2 usage, 3 bad target,
4 not freezable, 5 permission, 6 plan refused, 7 hook refused, 8 partial disk group
(a filesystem spans disks inside and outside the selected ones), 11 freeze failed,
12 thaw failed, 13 timeout, 14 not acknowledged, 15 frozen by another holder,
16 suspect (thawed by someone else), 17 snapshot command failed, 18 interrupted,
19 application consistency required but not reached, 20 a hook failed after the thaw,
70 internal error.
";

fn exit(status: Status) -> ExitCode {
    ExitCode::from(u8::try_from(status.code()).unwrap_or(70))
}

fn main() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if argv.first().is_some_and(|a| a == "agent") {
        return ExitCode::from(agent::main(argv[1..].to_vec()));
    }
    let inv = match args::parse(argv) {
        Ok(inv) => inv,
        Err(e) => {
            let f = Failure {
                status: Status::Usage,
                message: e.message,
                errno: 0,
            };
            output::failure(e.command, &f, e.json);
            return exit(Status::Usage);
        }
    };
    let Invocation {
        command,
        json,
        name,
    } = inv;
    let result = match command {
        Command::Help => {
            out!("{HELP}");
            Ok(Status::Ok)
        }
        Command::Version => {
            outln!("quiesce {}", env!("CARGO_PKG_VERSION"));
            Ok(Status::Ok)
        }
        Command::Plan {
            mounts,
            exclude,
            verbose,
            disks,
        } => {
            let all_skips = verbose || !mounts.is_empty() || disks.active();
            let select = if let Some(select) = disks.select() {
                select
            } else if mounts.is_empty() {
                Select::All { exclude: &exclude }
            } else {
                Select::Named(&mounts)
            };
            runtime::prepare(select).map(|p| {
                output::plan(&p, json, all_skips);
                Status::Ok
            })
        }
        Command::Thaw { mounts, session } => detach::thaw::thaw(&mounts, session.as_deref(), json),
        Command::Freeze {
            timeout,
            mounts,
            detach: true,
            tuning,
            hooks,
            disks,
            ..
        } => detach::freeze(
            name,
            if disks.active() {
                &disks.named
            } else {
                &mounts
            },
            disks.select().unwrap_or(Select::Named(&mounts)),
            detach::DetachOptions {
                timeout,
                tuning,
                hooks,
            },
            json,
        ),
        Command::Freeze {
            timeout,
            mounts,
            stdin,
            if_frozen,
            tuning,
            hooks,
            disks,
            ..
        } => freeze(
            name,
            &mounts,
            &disks,
            Session {
                timeout,
                if_frozen,
                tuning,
                hooks,
                mode: Mode::from(stdin),
            },
            json,
        ),
        Command::Run {
            timeout,
            mounts,
            argv,
            if_frozen,
            tuning,
            hooks,
            disks,
        } => freeze(
            name,
            &mounts,
            &disks,
            Session {
                timeout,
                if_frozen,
                tuning,
                hooks,
                mode: Mode::Run(argv),
            },
            json,
        ),
        Command::Status { clear } => {
            let cap = if clear {
                runtime::require_cap_sys_admin(
                    "clearing ended sessions in",
                    &[runtime::run_dir().into()],
                )
            } else {
                Ok(())
            };
            cap.and_then(|()| runtime::sessions()).and_then(|list| {
                detach::thaw::for_status(clear).map(|(found, cleared)| {
                    sessions::status(&list, &found, &cleared, clear, json);
                    Status::Ok
                })
            })
        }
        Command::Recover => {
            runtime::require_cap_sys_admin("recovering", &[runtime::run_dir().into()])
                .and_then(|()| runtime::recover())
                .map(|(status, list)| {
                    sessions::recover(status, &list, json);
                    status
                })
        }
    };
    match result {
        Ok(status) => exit(status),
        Err(f) => {
            output::failure(name, &f, json);
            exit(f.status)
        }
    }
}

/// Who acknowledges the snapshot.
enum Mode {
    Parent,
    Stdin,
    Run(Vec<std::ffi::OsString>),
}

impl From<bool> for Mode {
    fn from(stdin: bool) -> Mode {
        if stdin {
            Mode::Stdin
        } else {
            Mode::Parent
        }
    }
}

/// How one `run` or `freeze` session goes.
struct Session {
    timeout: std::time::Duration,
    if_frozen: IfFrozen,
    tuning: args::Tuning,
    hooks: HookConfig,
    mode: Mode,
}

fn freeze(
    name: &str,
    mounts: &[std::ffi::OsString],
    disks: &args::Disks,
    session: Session,
    json: bool,
) -> Result<Status, Failure> {
    let Session {
        timeout,
        if_frozen,
        tuning,
        hooks,
        mode,
    } = session;
    runtime::check_timeout(timeout)?;
    let named = if disks.active() {
        &disks.named[..]
    } else {
        mounts
    };
    runtime::require_cap_sys_admin("freezing", named)?;
    let program = match &mode {
        Mode::Run(argv) => {
            let first = argv.first().ok_or_else(|| Failure {
                status: Status::Usage,
                message: "no snapshot command after `--`".into(),
                errno: 0,
            })?;
            Some(resolve_program(first).map_err(|m| Failure {
                status: Status::Usage,
                message: m,
                errno: 0,
            })?)
        }
        _ => None,
    };
    let prepared = runtime::prepare(disks.select().unwrap_or(Select::Named(mounts)))?;
    // Every hook is verified before anything runs (none runs if one is refused).
    let mut hooks = Hooks::load(&hooks)?;
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
    // Everything that could fail or allocate much happens before this point.
    let mut wanted = INTERRUPTS.to_vec();
    wanted.push(match mode {
        Mode::Run(_) => libc::SIGCHLD,
        _ => libc::SIGUSR1,
    });
    let signals = Signals::block(&wanted).map_err(|e| Failure {
        status: Status::Internal,
        message: format!("cannot set up signal handling: {e}"),
        errno: e.raw_os_error().unwrap_or(0),
    })?;
    let options = FreezeOptions {
        timeout,
        if_frozen,
        record: true,
        presync: tuning.presync,
        parallel: tuning.parallel,
    };
    let mut log = Box::new(DeferredLog::new());
    // While a hook runs before the freeze, SIGTERM, SIGINT or SIGHUP kill it and stop.
    let mut cancel = || {
        while let Some(r) = signals.next() {
            if INTERRUPTS.contains(&r.signo) {
                errln!(
                    "quiesce: {} from pid {} while a hook ran before the freeze: stopping",
                    controllers::signal_name(r.signo),
                    r.pid
                );
                return true;
            }
        }
        false
    };
    let result = match mode {
        Mode::Parent => match ParentHandshake::new(&signals, &mut log) {
            Ok(mut c) => prepared.freeze_with_hooks(options, &mut hooks, &mut c, &mut cancel),
            Err(m) => Err(Failure {
                status: Status::Usage,
                message: m,
                errno: 0,
            }),
        },
        Mode::Stdin => {
            let mut c = StdinLines::new(&signals, &mut log);
            prepared.freeze_with_hooks(options, &mut hooks, &mut c, &mut cancel)
        }
        Mode::Run(argv) => {
            let Some(program) = program else {
                return Err(Failure {
                    status: Status::Internal,
                    message: "no snapshot command".into(),
                    errno: 0,
                });
            };
            let mut c = SnapshotCommand::new(program, argv[1..].to_vec(), &signals, &mut log, json);
            let r = prepared.freeze_with_hooks(options, &mut hooks, &mut c, &mut cancel);
            c.finish();
            r
        }
    };
    let report: Report = match result {
        Ok(r) => r,
        Err(f) => {
            // Failed before the first freeze; the hooks that got `freeze` got `freeze-failed`.
            log.flush_to_stderr();
            output::failure_with_hooks(name, &f, json, hooks.runs(), hooks.timeout());
            return Ok(f.status);
        }
    };
    // Thawed: now the log may be written.
    let (out, err) = conclude(name, &prepared, &report, &log, json);
    for l in &err {
        errln!("{l}");
    }
    out!("{out}");
    Ok(report.status)
}

/// After the thaw: the report as printed on stdout, and the lines for stderr (the deferred
/// log, the session's own notes, the headline of a failure).
pub(crate) fn conclude(
    name: &str,
    prepared: &runtime::Prepared,
    report: &Report,
    log: &DeferredLog,
    json: bool,
) -> (String, Vec<String>) {
    let mut err: Vec<String> = log.lines().map(|l| format!("quiesce: {l}")).collect();
    let dropped = format!("({} more log lines did not fit in memory)", log.dropped());
    let mut lines: Vec<&str> = log.lines().collect();
    if log.dropped() > 0 {
        err.push(format!("quiesce: {dropped}"));
        lines.push(&dropped);
    }
    // Notes from the session itself (e.g. a FIFREEZE still stuck in the kernel).
    let session_notes = &report.notes[prepared.notes.len().min(report.notes.len())..];
    for n in session_notes {
        err.push(format!("quiesce: note: {n}"));
        lines.push(n);
    }
    if report.status != Status::Ok {
        err.push(format!("quiesce: {}", report.message()));
    }
    (output::render_session(name, report, &lines, json), err)
}
