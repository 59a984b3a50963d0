//! Forking the helper processes of a session: the guardian and the freezer
//! (`quiesce_core::linux::{guardian, freezer}`), before the first `FIFREEZE`.
//!
//! Layout: the controller (this process) maps a shared table of per-target states
//! (`MAP_SHARED | MAP_ANONYMOUS`), makes three close-on-exec pipes (liveness, requests,
//! answers), blocks every signal, and forks an intermediate process that forks the guardian
//! and a pool of freezers (they share the request pipe: each request goes to whichever is
//! free), publishes their pids in the table, says so on a "ready" pipe, closes every other
//! descriptor and waits. The controller ends it (SIGKILL, then reaps it) when it releases the
//! helpers, after the thaw; if the controller dies first, its end of the "linger" pipe closes
//! and the intermediate exits. The helpers are so re-parented: the controller never has to
//! reap them (a host process such as a Go or Python agent gets no zombies), and their
//! lifetime does not depend on it.
//!
//! Why the intermediate waits instead of exiting at once (issue 14): a process that exits
//! queues RCU callbacks, and a `FIFREEZE` issued while that grace period is still in flight
//! waits for it and then for its own (`freeze_super` takes the superblock's percpu freeze
//! locks, each an `rcu_sync_enter`). On the benchmark's VM (HZ=250) an exit within ~10 ms
//! before the first `FIFREEZE` made it about 9 ms slower (median 42 ms against 31 ms; a fork
//! without an exit cost nothing measurable). So no process of ours exits between arming and
//! the last `FIFREEZE`.
//!
//! After `fork` the children run only async-signal-safe code: raw syscalls (`setsid`, `chdir`,
//! `prctl`, `close_range`, then the core's allocation-free loops) and `_exit`, each through its
//! one wrapper in `quiesce_core::linux::sys` (or rustix). They keep only the
//! mount descriptors and their own pipe ends; every other descriptor (stdout, the test harness's
//! pipes, the liveness pipe's write end) is closed. The liveness pipe's write end exists only
//! in the controller, close-on-exec, so a snapshot command it starts does not inherit it; a
//! child the host forks without exec does, so the guardian also holds a pidfd of the controller
//! process and acts when it exits.

use std::ffi::CStr;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::time::Duration;

use quiesce_core::errno::{E2BIG, EAGAIN};
use quiesce_core::linux::freezer::{self, Client, QUIT};
use quiesce_core::linux::guardian;
use quiesce_core::linux::sys::{self, Forked};
use quiesce_core::linux::table::{Table, MAX_FREEZERS};
use rustix::mm::{mmap_anonymous, munmap, MapFlags, ProtFlags};
use rustix::pipe::{pipe_with, PipeFlags};
use rustix::process::{getpid, pidfd_open, PidfdFlags, WaitOptions};

use super::MAX_TARGETS;

/// The table shared with the helpers.
pub type SharedTable = Table<MAX_TARGETS>;

/// How long after the controller's deadline the guardian thaws on its own, if the controller is
/// still there but has not thawed (stopped, or hung).
pub const GUARDIAN_GRACE: Duration = Duration::from_secs(2);

/// How many freezers a session needs: one per target of the widest wave (`wave_starts` as
/// given to the session; empty: one at a time), plus one per target when pre-syncing, so that
/// a `syncfs` still running at the pre-sync limit never holds up the freeze of another target;
/// at least 1, at most [`MAX_FREEZERS`].
pub fn pool_size(wave_starts: &[bool], presync: bool, targets: usize) -> usize {
    let mut widest = 1;
    let mut run = 0;
    for (p, &start) in wave_starts.iter().enumerate().take(targets) {
        run = if start || p == 0 { 1 } else { run + 1 };
        widest = widest.max(run);
    }
    let syncing = if presync { targets } else { 0 };
    (widest + syncing).clamp(1, MAX_FREEZERS)
}

/// An anonymous shared mapping that holds the table; unmapped on drop (the helpers keep their
/// own mappings of the same pages).
struct Mapping {
    table: NonNull<SharedTable>,
}

impl Mapping {
    fn new(len: usize, grace: Duration) -> io::Result<Mapping> {
        // SAFETY: an anonymous mapping at an address of the kernel's choice (no hint): no
        // descriptor and no existing memory are involved; failure is an `Err`.
        let p = unsafe {
            mmap_anonymous(
                std::ptr::null_mut(),
                size_of::<SharedTable>(),
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
            )
        }?;
        let table = NonNull::new(p.cast::<SharedTable>()).ok_or(io::ErrorKind::Other)?;
        let grace_ns = u64::try_from(grace.as_nanos()).unwrap_or(u64::MAX);
        // SAFETY: the mapping is fresh, writable, page-aligned (more than the table's alignment)
        // and at least size_of::<SharedTable>() bytes long; nothing else refers to it yet.
        unsafe { table.as_ptr().write(SharedTable::new(len as u32, grace_ns)) };
        Ok(Mapping { table })
    }

    fn table(&self) -> &SharedTable {
        // SAFETY: initialised in `new` and mapped until `drop`; the table is only ever accessed
        // through shared references (its fields are atomics).
        unsafe { self.table.as_ref() }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`; no reference to it outlives `self`
        // (`table()` borrows from `self`). An error would leave the pages mapped: nothing to do.
        let _ = unsafe { munmap(self.table.as_ptr().cast(), size_of::<SharedTable>()) };
    }
}

/// The intermediate process while it waits, seen from the controller.
struct Intermediate {
    pid: rustix::process::Pid,
    /// A pidfd of it (Linux 5.3 and later), taken while it was alive and unreaped: signalled
    /// and waited for through it, so that a host that reaps every child (`waitpid(-1)`) can
    /// never make us signal or wait for another process that got the same pid.
    pidfd: Option<OwnedFd>,
    /// The controller's end of its linger pipe.
    linger: OwnedFd,
}

impl Intermediate {
    /// SIGKILL.
    fn kill(&self) {
        let _ = match &self.pidfd {
            Some(fd) => rustix::process::pidfd_send_signal(fd, rustix::process::Signal::KILL),
            None => rustix::process::kill_process(self.pid, rustix::process::Signal::KILL),
        };
    }

    /// Waits for it to end (it has been killed). An error (ECHILD: the host reaped it) is fine.
    fn reap(self) {
        drop(self.linger);
        match &self.pidfd {
            Some(fd) => {
                while let Err(rustix::io::Errno::INTR) = rustix::process::waitid(
                    rustix::process::WaitId::PidFd(fd.as_fd()),
                    rustix::process::WaitIdOptions::EXITED,
                ) {}
            }
            None => reap(self.pid),
        }
    }
}

/// The helpers of one session, seen from the controller.
pub struct Helpers {
    map: Mapping,
    alive: Option<OwnedFd>,
    requests: Option<OwnedFd>,
    done: OwnedFd,
    /// The intermediate process (waiting until the helpers are released).
    intermediate: Option<Intermediate>,
    /// The guardian's pid.
    pub guardian: i32,
    /// The freezers' pids (the first `freezer_count` entries).
    pub freezers: [i32; MAX_FREEZERS],
    /// How many freezers run.
    pub freezer_count: usize,
}

/// The descriptors a helper keeps: every target's and two of its own (the guardian: the
/// liveness pipe and the controller's pidfd; a freezer: its two pipes).
type KeepList = heapless::Vec<RawFd, { MAX_TARGETS + 2 }>;

/// Sorted raw descriptors a helper keeps. Allocates nothing (the C ABI's session start must
/// not); `E2BIG` beyond capacity.
fn keep_list(fds: &[BorrowedFd<'_>], own: &[RawFd]) -> io::Result<KeepList> {
    let mut v = KeepList::new();
    for fd in fds
        .iter()
        .map(AsRawFd::as_raw_fd)
        .chain(own.iter().copied())
    {
        v.push(fd)
            .map_err(|_| io::Error::from_raw_os_error(E2BIG))?;
    }
    v.sort_unstable();
    let mut out = KeepList::new();
    for fd in v {
        if out.last() != Some(&fd) {
            let _ = out.push(fd);
        }
    }
    Ok(out)
}

/// Leaves the caller's session and process group (so that a signal to the terminal's or the
/// caller's group does not reach it), leaves every mount point (cwd `/`), names itself, and
/// closes every descriptor not in `keep`. Async-signal-safe.
fn become_helper(keep: &[RawFd], name: &CStr) {
    sys::detach(name);
    sys::close_all_except(keep);
}

/// Everything a helper needs after fork, prepared (allocated) before it.
struct ChildPlan<'a> {
    table: &'a SharedTable,
    fds: &'a [BorrowedFd<'a>],
    keep_guardian: KeepList,
    keep_freezer: KeepList,
    alive: BorrowedFd<'a>,
    controller: Option<BorrowedFd<'a>>,
    requests: BorrowedFd<'a>,
    done: BorrowedFd<'a>,
    record: Option<&'a CStr>,
    freezers: usize,
    keep_intermediate: heapless::Vec<RawFd, 2>,
    ready: BorrowedFd<'a>,
    linger: BorrowedFd<'a>,
}

/// The intermediate process: forks the guardian and the freezers, publishes their pids, says
/// so on `ready`, keeps only `linger` open and waits on it until the controller kills it or
/// goes away (see the module's text). Never returns; async-signal-safe.
fn intermediate(p: &ChildPlan<'_>) -> ! {
    // SAFETY: (both forks) this process is a raw-forked copy of one thread; each child runs
    // only `become_helper` and the core's loops (raw syscalls, no allocation, no lock, no
    // panic path in use) and ends with `exit_now`, as `sys::fork` requires.
    match unsafe { sys::fork() } {
        Ok(Forked::Child) => {
            become_helper(&p.keep_guardian, c"quiesce-guard");
            sys::exit_now(guardian::watch(
                p.table,
                p.fds,
                p.alive,
                p.controller,
                p.record,
            ));
        }
        Ok(Forked::Parent(g)) => p.table.set_guardian_pid(g),
        Err(_) => sys::exit_now(1),
    }
    for k in 0..p.freezers.clamp(1, MAX_FREEZERS) {
        // SAFETY: as for the first fork.
        match unsafe { sys::fork() } {
            Ok(Forked::Child) => {
                become_helper(&p.keep_freezer, c"quiesce-freezer");
                p.table.set_freezer_pid(k, getpid().as_raw_nonzero().get());
                sys::exit_now(freezer::serve(p.table, p.fds, p.requests, p.done));
            }
            Ok(Forked::Parent(f)) => p.table.set_freezer_pid(k, f),
            // The freezers forked so far are told to quit (the session is abandoned), the
            // guardian sees the controller's pipe close.
            Err(_) => sys::exit_now(2),
        }
    }
    // Nothing of the session stays open here (the liveness pipe, the request pipe and the
    // targets are the helpers' and the controller's): only the two pipes of this wait.
    sys::close_all_except(&p.keep_intermediate);
    if rustix::io::write(p.ready, &[1]).is_ok() {
        let mut byte = [0u8; 1];
        // Returns 0 (end of file) once every copy of the controller's end is closed.
        while let Err(rustix::io::Errno::INTR) | Ok(1..) = rustix::io::read(p.linger, &mut byte) {}
    }
    sys::exit_now(0)
}

impl Helpers {
    /// Forks the guardian and `freezers` freezers (1 to [`MAX_FREEZERS`]) for targets `fds`
    /// (in freeze order). `record` is the session's state file, which the guardian removes if
    /// it has to clean up after a dead controller. The guardian thaws on its own `grace` after
    /// the controller's deadline. Nothing is frozen yet. Allocates nothing on success.
    pub fn spawn(
        fds: &[BorrowedFd<'_>],
        record: Option<&CStr>,
        grace: Duration,
        freezers: usize,
    ) -> io::Result<Helpers> {
        if fds.len() > MAX_TARGETS {
            return Err(io::Error::from_raw_os_error(E2BIG));
        }
        let map = Mapping::new(fds.len(), grace)?;
        let (alive_r, alive_w) = pipe_with(PipeFlags::CLOEXEC)?;
        // A pidfd of this process for the guardian, which so learns of our death even while a
        // child forked by the host (without exec) holds `alive_w`. Without pidfds (before
        // Linux 5.3) the pipe alone tells.
        let controller = pidfd_open(getpid(), PidfdFlags::empty()).ok();
        let mut guardian_keeps: heapless::Vec<RawFd, 2> = heapless::Vec::new();
        let _ = guardian_keeps.push(alive_r.as_raw_fd());
        if let Some(c) = &controller {
            let _ = guardian_keeps.push(c.as_raw_fd());
        }
        let (req_r, req_w) = pipe_with(PipeFlags::CLOEXEC)?;
        let (done_r, done_w) = pipe_with(PipeFlags::CLOEXEC)?;
        rustix::io::ioctl_fionbio(&done_r, true)?;
        let (ready_r, ready_w) = pipe_with(PipeFlags::CLOEXEC)?;
        let (linger_r, linger_w) = pipe_with(PipeFlags::CLOEXEC)?;
        let mut keep_intermediate: heapless::Vec<RawFd, 2> = heapless::Vec::new();
        let _ = keep_intermediate.push(ready_w.as_raw_fd().min(linger_r.as_raw_fd()));
        let _ = keep_intermediate.push(ready_w.as_raw_fd().max(linger_r.as_raw_fd()));
        let plan = ChildPlan {
            table: map.table(),
            fds,
            keep_guardian: keep_list(fds, &guardian_keeps)?,
            keep_freezer: keep_list(fds, &[req_r.as_raw_fd(), done_w.as_raw_fd()])?,
            alive: alive_r.as_fd(),
            controller: controller.as_ref().map(AsFd::as_fd),
            requests: req_r.as_fd(),
            done: done_w.as_fd(),
            record,
            freezers,
            keep_intermediate,
            ready: ready_w.as_fd(),
            linger: linger_r.as_fd(),
        };
        // Every signal blocked around the fork, so that the child starts with them blocked
        // (inherited mask) and no handler of the host ever runs in it.
        let mask = sys::block_all_signals();
        // SAFETY: the child runs only `intermediate` (raw syscalls, no allocation; it never
        // returns), as `sys::fork` requires. Nothing of the C library's fork runs: no
        // pthread_atfork handler of the host, in either process.
        let forked = match unsafe { sys::fork() } {
            Ok(Forked::Child) => intermediate(&plan),
            Ok(Forked::Parent(pid)) => Ok(pid),
            Err(e) => Err(e),
        };
        if let Ok(mask) = &mask {
            sys::restore_signals(mask);
        }
        let pid = forked.map_err(io::Error::from_raw_os_error)?;
        drop(plan);
        drop((alive_r, controller, req_r, done_w, ready_w, linger_r));
        // One byte once every pid is published; end of file if the intermediate exited first
        // (a fork failed), and then it is reaped here.
        let mut byte = [0u8; 1];
        let ready = loop {
            match rustix::io::read(&ready_r, &mut byte) {
                Err(rustix::io::Errno::INTR) => {}
                r => break matches!(r, Ok(1)),
            }
        };
        drop(ready_r);
        let pid = rustix::process::Pid::from_raw(pid);
        let mut intermediate = None;
        if let Some(pid) = pid {
            if ready {
                // Alive (it wrote `ready` and waits) and ours: the pid is its own.
                let pidfd = pidfd_open(pid, PidfdFlags::empty()).ok();
                intermediate = Some(Intermediate {
                    pid,
                    pidfd,
                    linger: linger_w,
                });
            } else {
                reap(pid);
            }
        }
        let table = map.table();
        let guardian = table.guardian_pid();
        let freezer_count = freezers.clamp(1, MAX_FREEZERS);
        let mut pids = [0; MAX_FREEZERS];
        for (k, pid) in pids.iter_mut().enumerate().take(freezer_count) {
            *pid = table.freezer_pid(k);
        }
        let mut helpers = Helpers {
            map,
            alive: Some(alive_w),
            requests: Some(req_w),
            done: done_r,
            guardian,
            intermediate,
            freezers: pids,
            freezer_count,
        };
        if guardian <= 0 || pids[..freezer_count].iter().any(|&p| p <= 0) {
            // A fork in the intermediate process failed (it exited 1 or 2): the freezers
            // that run are told to quit, the guardian sees our pipe close.
            helpers.release();
            return Err(io::Error::from_raw_os_error(EAGAIN));
        }
        Ok(helpers)
    }

    /// The first freezer's pid.
    pub fn freezer(&self) -> i32 {
        self.freezers[0]
    }

    /// Every freezer's pid.
    pub fn freezer_pids(&self) -> &[i32] {
        &self.freezers[..self.freezer_count]
    }

    /// The shared table.
    pub fn table(&self) -> &SharedTable {
        self.map.table()
    }

    /// The executor's operations: `FIFREEZE` through the freezer, `FITHAW` here.
    pub fn client<'a, 'fd>(
        &'a self,
        fds: &'a [BorrowedFd<'fd>],
    ) -> Option<Client<'a, 'fd, MAX_TARGETS>> {
        let requests = self.requests.as_ref()?.as_fd();
        Some(Client::new(self.table(), fds, requests, self.done.as_fd()))
    }

    /// Ends the session for the helpers: the freezers are told to quit (each exits once any
    /// call it has in flight returns; closing the request pipe tells them too), and the
    /// liveness pipe is closed, so the guardian checks the table once more (thawing anything
    /// still ours) and exits.
    pub fn release(&mut self) {
        // SIGKILL rather than only closing the linger pipe: a child the host forked (without
        // exec) may hold a copy of it. After the thaw, not when everything is frozen: its
        // death raises SIGCHLD in the host, whose handler must not run while frozen. Killed
        // first, so that it dies before the freezers it would otherwise queue behind.
        let intermediate = self.intermediate.take();
        if let Some(i) = &intermediate {
            i.kill();
        }
        if let Some(r) = self.requests.take() {
            // Every freezer's QUIT in one write (at most MAX_FREEZERS bytes, below PIPE_BUF:
            // atomic): one wake-up for all of them, rather than one context switch to each
            // freezer's exit per byte.
            let quit = [QUIT; MAX_FREEZERS];
            let _ = rustix::io::write(&r, &quit[..self.freezer_count.min(MAX_FREEZERS)]);
        }
        self.alive = None;
        if let Some(i) = intermediate {
            i.reap();
        }
    }
}

/// Waits for our child `pid` to end (it has been told to). An error (ECHILD: the host reaped
/// it already) is fine.
fn reap(pid: rustix::process::Pid) {
    while let Err(rustix::io::Errno::INTR) =
        rustix::process::waitpid(Some(pid), WaitOptions::empty())
    {}
}

impl Drop for Helpers {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_covers_the_widest_wave_and_the_pre_sync() {
        assert_eq!(pool_size(&[], false, 5), 1, "sequential");
        assert_eq!(pool_size(&[true, false, false, true, false], false, 5), 3);
        assert_eq!(pool_size(&[true, false, false, true, false], true, 5), 8);
        assert_eq!(
            pool_size(&[true], true, 1),
            2,
            "a stuck syncfs leaves one for FIFREEZE"
        );
        assert_eq!(pool_size(&[true; 64], true, 64), MAX_FREEZERS);
        assert_eq!(pool_size(&[], false, 0), 1);
    }

    /// State letter of `pid` in /proc (`Z`: a zombie), None once it is gone.
    fn proc_state(pid: i32) -> Option<char> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat.rsplit_once(") ")?.1.chars().next()
    }

    /// No process of ours exits between arming and the last FIFREEZE (an exit there delays the
    /// freeze by an RCU grace period): the intermediate is alive, not a zombie, until the
    /// helpers are released; `release` kills and reaps it (no zombie is left to the host) and
    /// the helpers it forked outlive it.
    #[test]
    fn the_intermediate_waits_until_released_and_is_reaped() {
        let dir = std::fs::File::open(std::env::temp_dir()).map_err(|e| e.to_string());
        let Ok(dir) = dir else {
            panic!("cannot open the temporary directory: {dir:?}");
        };
        let fds = [dir.as_fd()];
        let spawned = Helpers::spawn(&fds, None, GUARDIAN_GRACE, 2);
        let Ok(mut helpers) = spawned else {
            panic!("spawn: {:?}", spawned.err());
        };
        let Some(pid) = helpers
            .intermediate
            .as_ref()
            .map(|i| i.pid.as_raw_nonzero().get())
        else {
            panic!("no intermediate process kept");
        };
        let state = proc_state(pid);
        assert!(
            matches!(state, Some(c) if c != 'Z'),
            "the intermediate {pid} must still run after spawn, state {state:?}"
        );
        assert!(
            matches!(proc_state(helpers.guardian), Some(c) if c != 'Z'),
            "the guardian runs"
        );
        let guardian = helpers.guardian;
        helpers.release();
        assert!(helpers.intermediate.is_none());
        assert_eq!(
            rustix::process::waitpid(rustix::process::Pid::from_raw(pid), WaitOptions::NOHANG)
                .err(),
            Some(rustix::io::Errno::CHILD),
            "release reaped the intermediate"
        );
        // The guardian sees the liveness pipe close and exits on its own (re-parented: not
        // ours to reap); give it up to 5 s.
        let gone = (0..500).any(|_| {
            std::thread::sleep(Duration::from_millis(10));
            !matches!(proc_state(guardian), Some(c) if c != 'Z')
        });
        assert!(gone, "the guardian {guardian} exits once released");
    }
}
