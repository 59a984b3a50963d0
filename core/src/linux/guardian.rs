//! The guardian: a helper process that thaws whatever is still ours when the controller dies
//! (SIGKILL included) or misses its own deadline by more than a grace period (a grace of 0
//! makes it the deadline timer of a controller with no thread of its own: the C ABI).
//!
//! It is forked before the first `FIFREEZE`, holds the same mount descriptors as the controller,
//! and shares the [`Table`] of per-target states with it. It watches a pipe whose write end only
//! the controller holds: end of file means the controller finished or died. A host that forks
//! without exec (a pre-forking server, Python `multiprocessing` with the fork start method)
//! gives its children a copy of that write end, so the guardian also watches the controller
//! process itself, through a pidfd: its exit is the controller's death, whoever still holds the
//! pipe. Then, or at its own deadline (the controller's plus the grace), it records why in the
//! table ([`cause`]: a thaw of ours is the session's own deadline thaw when the grace is 0 and
//! the deadline was the reason, a rescue otherwise; see
//! [`GuardianThaw`](super::table::GuardianThaw)), then kills the
//! process group tied to the session (the snapshot command the controller started while
//! frozen: [`Tie`](super::table::Tie)), then thaws what the table says is still ours:
//! confirmed-frozen targets first, in reverse order of freezing; then it abandons the in-flight
//! one to the freezer (whose call must return before anyone can thaw it), waits for the freezer
//! to settle it, removes the session record, and exits.
//!
//! [`watch`] is the guardian's whole life after `fork`: raw, async-signal-safe syscalls only
//! (poll, read, kill, ioctl, clock_gettime, pidfd_open, unlink), no allocation, no locks, no output.
//! That makes it safe to fork from any process, also a multi-threaded Go or Python one.

use core::ffi::CStr;

use rustix::event::{PollFd, PollFlags};
use rustix::fd::{BorrowedFd, OwnedFd};
use rustix::process::{pidfd_open, Pid, PidfdFlags};

use super::sys::{self, now_ns};
use super::table::{cause, state, Table, MAX_FREEZERS};
use crate::errno::{EBADF, EINVAL};

/// How often the guardian looks at the table while it waits (ns).
const TICK_NS: u64 = 50_000_000;
/// How long it waits for the freezer's pid to be published before it stops waiting (ns).
const NO_PID_WAIT_NS: u64 = 2_000_000_000;

/// Why the guardian acted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// The controller closed its end of the pipe: it finished, or it died.
    ControllerGone,
    /// The guardian's own deadline passed with the controller still there.
    Deadline,
}

impl Trigger {
    /// The table's record of it ([`cause`]).
    pub const fn cause(self) -> u32 {
        match self {
            Trigger::ControllerGone => cause::CONTROLLER_GONE,
            Trigger::Deadline => cause::DEADLINE,
        }
    }
}

/// Exit status of the guardian: nothing needed doing, or everything it thawed thawed.
pub const EXIT_OK: i32 = 0;
/// Exit status of the guardian: a thaw failed.
pub const EXIT_THAW_FAILED: i32 = 12;

/// The guardian's whole life: waits for the controller to go away (end of file on `alive`, or
/// `controller`, a pidfd of the controller process, becoming readable: it exited) or for its
/// own deadline, thaws what is still ours, waits for an abandoned `FIFREEZE` to be settled by
/// the freezer, and removes `record` (the session's state file) once nothing is left frozen or
/// in flight: also after its own deadline, when the controller may live on (a library session
/// whose `FIFREEZE` was stuck at the deadline: the controller's end left the record to us, and
/// it would otherwise stay behind as an orphaned session). Returns its exit status. Allocates
/// nothing.
pub fn watch<const N: usize>(
    table: &Table<N>,
    fds: &[BorrowedFd<'_>],
    alive: BorrowedFd<'_>,
    controller: Option<BorrowedFd<'_>>,
    record: Option<&CStr>,
) -> i32 {
    let trigger = wait_for_trigger(table, alive, controller);
    // Why, before any slot is claimed: the controller reads a thaw of ours with it.
    table.set_guardian_cause(trigger.cause());
    kill_tied_group(table);
    let failed = rescue(table, fds, trigger == Trigger::ControllerGone);
    wait_for_freezer(table);
    if failed == 0 && !table.anything_ours() && !table.freeze_unresolved() {
        if let Some(path) = record {
            let _ = rustix::fs::unlink(path);
        }
    }
    if failed == 0 {
        EXIT_OK
    } else {
        EXIT_THAW_FAILED
    }
}

/// Closes the session's tie and sends `SIGKILL` to the process group published in it, before
/// anything is thawed: what the controller started while frozen must not go on copying a
/// filesystem once it is thawed. The signal is delivered whatever the process is doing (a
/// process blocked on a frozen filesystem dies as soon as the thaw lets it go on).
fn kill_tied_group<const N: usize>(table: &Table<N>) {
    if let Some(pgid) = table.close_tie().and_then(Pid::from_raw) {
        let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
    }
}

fn timespec(ns: u64) -> rustix::time::Timespec {
    rustix::time::Timespec {
        tv_sec: (ns / 1_000_000_000) as i64,
        tv_nsec: (ns % 1_000_000_000) as i64,
    }
}

/// Polls `fd` for input for at most `ns`; returns whether it is ready.
fn ready(fd: Option<BorrowedFd<'_>>, ns: u64) -> bool {
    let ts = timespec(ns);
    match fd {
        Some(fd) => {
            let mut fds = [PollFd::from_borrowed_fd(fd, PollFlags::IN)];
            matches!(rustix::event::poll(&mut fds, Some(&ts)), Ok(n) if n > 0)
        }
        None => {
            let _ = rustix::event::poll(&mut [], Some(&ts));
            false
        }
    }
}

/// Waits until the controller's pipe reaches end of file, the controller process exits (its
/// pidfd becomes readable), or the guardian's deadline passes.
fn wait_for_trigger<const N: usize>(
    table: &Table<N>,
    alive: BorrowedFd<'_>,
    controller: Option<BorrowedFd<'_>>,
) -> Trigger {
    loop {
        let now = now_ns();
        let wait = match table.guardian_deadline() {
            Some(d) if now >= d => return Trigger::Deadline,
            Some(d) => (d - now).min(TICK_NS),
            None => TICK_NS,
        };
        let ts = timespec(wait);
        let mut fds = [
            PollFd::from_borrowed_fd(alive, PollFlags::IN),
            PollFd::from_borrowed_fd(controller.unwrap_or(alive), PollFlags::IN),
        ];
        let watched = if controller.is_some() { 2 } else { 1 };
        if !matches!(rustix::event::poll(&mut fds[..watched], Some(&ts)), Ok(n) if n > 0) {
            continue;
        }
        if watched == 2 && !fds[1].revents().is_empty() {
            // The controller process has exited (a pidfd is readable once it has).
            return Trigger::ControllerGone;
        }
        if fds[0].revents().is_empty() {
            continue;
        }
        let mut buf = [0u8; 16];
        match rustix::io::read(alive, &mut buf) {
            Ok(0) => return Trigger::ControllerGone,
            Ok(_) | Err(rustix::io::Errno::INTR) | Err(rustix::io::Errno::AGAIN) => {}
            Err(_) => return Trigger::ControllerGone,
        }
    }
}

/// Thaws the confirmed-frozen targets in reverse order, then abandons the in-flight ones to the
/// freezer; repeats if one completed meanwhile. A target the controller was thawing is taken
/// over only if the controller is dead. Returns the number of failed thaws.
pub fn rescue<const N: usize>(
    table: &Table<N>,
    fds: &[BorrowedFd<'_>],
    controller_dead: bool,
) -> usize {
    let mut failed = 0;
    loop {
        failed += thaw_confirmed(table, fds, controller_dead);
        let mut completed_meanwhile = false;
        for slot in table.slots().iter().rev() {
            if slot.transition(state::IN_FLIGHT, state::ABANDONED) == Err(state::FROZEN) {
                completed_meanwhile = true;
            }
        }
        if !completed_meanwhile {
            return failed;
        }
    }
}

fn thaw_confirmed<const N: usize>(
    table: &Table<N>,
    fds: &[BorrowedFd<'_>],
    controller_dead: bool,
) -> usize {
    let mut failed = 0;
    for (i, slot) in table.slots().iter().enumerate().rev() {
        let was_thawing = if slot
            .transition(state::FROZEN, state::GUARDIAN_THAWING)
            .is_ok()
        {
            false
        } else if controller_dead
            && slot
                .transition(state::THAWING, state::GUARDIAN_THAWING)
                .is_ok()
        {
            // The controller died in the middle of its thaw: finish it.
            true
        } else {
            continue;
        };
        let Some(fd) = fds.get(i) else {
            slot.finish_thaw(state::THAW_FAILED, EBADF, 0, 0);
            failed += 1;
            continue;
        };
        let start = now_ns();
        let result = sys::thaw(*fd);
        let end = now_ns();
        match result {
            Ok(()) => slot.finish_thaw(state::THAWED_BY_GUARDIAN, 0, start, end),
            // The controller's own thaw had gone through before it died.
            Err(EINVAL) if was_thawing => slot.finish_thaw(state::THAWED, 0, start, end),
            Err(EINVAL) => slot.finish_thaw(state::THAWED_BY_OTHER, EINVAL, start, end),
            Err(e) => {
                slot.finish_thaw(state::THAW_FAILED, e, start, end);
                failed += 1;
            }
        }
    }
    failed
}

/// Waits while a `FIFREEZE` is unresolved (in flight or abandoned) and any freezer is alive:
/// the one holding an abandoned call thaws it as soon as the call returns.
fn wait_for_freezer<const N: usize>(table: &Table<N>) {
    let started = now_ns();
    let mut pidfds: [Option<OwnedFd>; MAX_FREEZERS] = [const { None }; MAX_FREEZERS];
    let mut gone = [false; MAX_FREEZERS];
    while table.freeze_unresolved() {
        // The first freezer still alive (by the pids published so far).
        let mut watched = None;
        for k in 0..MAX_FREEZERS {
            if gone[k] {
                continue;
            }
            if pidfds[k].is_none() {
                match Pid::from_raw(table.freezer_pid(k)) {
                    Some(pid) => match pidfd_open(pid, PidfdFlags::empty()) {
                        Ok(fd) => pidfds[k] = Some(fd),
                        // Gone already.
                        Err(_) => {
                            gone[k] = true;
                            continue;
                        }
                    },
                    None => continue,
                }
            }
            watched = Some(k);
            break;
        }
        let Some(k) = watched else {
            // Every published freezer has exited (or none was published in time): nobody is
            // left to settle it.
            if gone.iter().any(|&g| g) || now_ns().saturating_sub(started) > NO_PID_WAIT_NS {
                return;
            }
            ready(None, TICK_NS);
            continue;
        };
        if ready(pidfds[k].as_ref().map(rustix::fd::AsFd::as_fd), TICK_NS) {
            gone[k] = true;
            pidfds[k] = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use rustix::fd::AsFd;

    use super::*;

    #[test]
    fn the_guardian_records_why_it_acted_before_it_thaws() {
        // Its deadline passed while the controller still holds the pipe.
        let t = Table::<1>::new(1, 0);
        t.set_deadline(now_ns().saturating_sub(1));
        let (r, w) = rustix::pipe::pipe().unwrap();
        assert_eq!(watch(&t, &[], r.as_fd(), None, None), EXIT_OK);
        assert_eq!(t.guardian_cause(), cause::DEADLINE);
        drop(w);

        // The controller went away (end of file) long before its deadline.
        let t = Table::<1>::new(1, 0);
        t.set_deadline(now_ns().saturating_add(3_600_000_000_000));
        let (r, w) = rustix::pipe::pipe().unwrap();
        drop(w);
        assert_eq!(watch(&t, &[], r.as_fd(), None, None), EXIT_OK);
        assert_eq!(t.guardian_cause(), cause::CONTROLLER_GONE);
    }
}
