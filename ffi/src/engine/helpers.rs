//! Forking the helper processes of a session: the guardian and the freezer
//! (`quiesce_core::linux::{guardian, freezer}`), before the first `FIFREEZE`.
//!
//! Layout: the controller (this process) maps a shared table of per-target states
//! (`MAP_SHARED | MAP_ANONYMOUS`), makes three close-on-exec pipes (liveness, requests,
//! answers), blocks every signal, and forks a short-lived intermediate process that forks the
//! guardian and a pool of freezers (they share the request pipe: each request goes to
//! whichever is free), publishes their pids in the table, and exits. The helpers are so
//! re-parented at once: the controller never has to reap them (a host process such as a Go or
//! Python agent gets no zombies), and their lifetime does not depend on it.
//!
//! After `fork` the children run only async-signal-safe code: raw syscalls (`setsid`, `chdir`,
//! `prctl`, `close_range`, then the core's allocation-free loops) and `_exit`. They keep only the
//! mount descriptors and their own pipe ends; every other descriptor (stdout, the test harness's
//! pipes, the liveness pipe's write end) is closed. The liveness pipe's write end exists only
//! in the controller, close-on-exec, so a snapshot command it starts does not inherit it.

use std::ffi::CStr;
use std::io;
use std::mem::{size_of, MaybeUninit};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::time::Duration;

use quiesce_core::linux::freezer::{self, Client, QUIT};
use quiesce_core::linux::guardian;
use quiesce_core::linux::table::{Table, MAX_FREEZERS};
use rustix::pipe::{pipe_with, PipeFlags};

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
        // SAFETY: an anonymous mapping at an address of the kernel's choice; no descriptor and no
        // existing memory are involved. The result is checked against MAP_FAILED.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size_of::<SharedTable>(),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
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
        // (`table()` borrows from `self`).
        unsafe { libc::munmap(self.table.as_ptr().cast(), size_of::<SharedTable>()) };
    }
}

/// The helpers of one session, seen from the controller.
pub struct Helpers {
    map: Mapping,
    alive: Option<OwnedFd>,
    requests: Option<OwnedFd>,
    done: OwnedFd,
    /// The guardian's pid.
    pub guardian: i32,
    /// The freezers' pids (the first `freezer_count` entries).
    pub freezers: [i32; MAX_FREEZERS],
    /// How many freezers run.
    pub freezer_count: usize,
}

/// The descriptors a helper keeps: every target's and two of its own.
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
            .map_err(|_| io::Error::from_raw_os_error(libc::E2BIG))?;
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

/// Closes every descriptor except those in `keep` (sorted). Async-signal-safe.
fn close_all_except(keep: &[RawFd]) {
    let close_range = |lo: RawFd, hi: u32| {
        // SAFETY: close_range(2) takes two descriptor numbers and flags; it touches no memory.
        let r = unsafe { libc::syscall(libc::SYS_close_range, lo as u32, hi, 0u32) };
        if r != 0 {
            // Before Linux 5.9: close one by one, up to the descriptor limit.
            let mut lim = MaybeUninit::<libc::rlimit>::zeroed();
            // SAFETY: getrlimit writes one rlimit into the valid buffer.
            let max = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, lim.as_mut_ptr()) } == 0 {
                // SAFETY: initialised by the successful getrlimit.
                unsafe { lim.assume_init() }.rlim_cur.min(1 << 20) as u32
            } else {
                4096
            };
            for fd in lo as u32..=hi.min(max) {
                // SAFETY: close(2) on a number; a descriptor that is not open gives EBADF.
                unsafe { libc::close(fd as RawFd) };
            }
        }
    };
    let mut next: RawFd = 0;
    for &k in keep {
        if k > next {
            close_range(next, (k - 1) as u32);
        }
        next = k + 1;
    }
    close_range(next, u32::MAX);
}

/// Leaves the caller's session and process group (so that a signal to the terminal's or the
/// caller's group does not reach it), leaves every mount point (cwd `/`), names itself, and
/// closes every descriptor not in `keep`. Async-signal-safe.
fn become_helper(keep: &[RawFd], name: &CStr) {
    // SAFETY: setsid, chdir, prctl(PR_SET_NAME) are plain syscalls; the strings are valid C
    // strings that live in the (copied) address space.
    unsafe {
        libc::setsid();
        libc::chdir(c"/".as_ptr());
        libc::prctl(libc::PR_SET_NAME, name.as_ptr(), 0, 0, 0);
    }
    close_all_except(keep);
}

/// Everything a helper needs after fork, prepared (allocated) before it.
struct ChildPlan<'a> {
    table: &'a SharedTable,
    fds: &'a [BorrowedFd<'a>],
    keep_guardian: KeepList,
    keep_freezer: KeepList,
    alive: BorrowedFd<'a>,
    requests: BorrowedFd<'a>,
    done: BorrowedFd<'a>,
    record: Option<&'a CStr>,
    freezers: usize,
}

/// The intermediate process: forks the guardian and the freezers, publishes their pids, exits.
/// Never returns; async-signal-safe.
fn intermediate(p: &ChildPlan<'_>) -> ! {
    // SAFETY: fork in a single-threaded child; both sides continue with async-signal-safe code.
    let g = unsafe { libc::fork() };
    if g == 0 {
        become_helper(&p.keep_guardian, c"quiesce-guard");
        let code = guardian::watch(p.table, p.fds, p.alive, p.record);
        // SAFETY: _exit ends the process without running anything of the parent's.
        unsafe { libc::_exit(code) };
    }
    if g < 0 {
        // SAFETY: as above.
        unsafe { libc::_exit(1) };
    }
    p.table.set_guardian_pid(g);
    for k in 0..p.freezers.clamp(1, MAX_FREEZERS) {
        // SAFETY: as for the first fork.
        let f = unsafe { libc::fork() };
        if f == 0 {
            become_helper(&p.keep_freezer, c"quiesce-freezer");
            // SAFETY: getpid has no preconditions.
            p.table.set_freezer_pid(k, unsafe { libc::getpid() });
            let code = freezer::serve(p.table, p.fds, p.requests, p.done);
            // SAFETY: as above.
            unsafe { libc::_exit(code) };
        }
        if f < 0 {
            // The freezers forked so far are told to quit (the session is abandoned), the
            // guardian sees the controller's pipe close.
            // SAFETY: as above.
            unsafe { libc::_exit(2) };
        }
        p.table.set_freezer_pid(k, f);
    }
    // SAFETY: as above.
    unsafe { libc::_exit(0) }
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
            return Err(io::Error::from_raw_os_error(libc::E2BIG));
        }
        let map = Mapping::new(fds.len(), grace)?;
        let (alive_r, alive_w) = pipe_with(PipeFlags::CLOEXEC)?;
        let (req_r, req_w) = pipe_with(PipeFlags::CLOEXEC)?;
        let (done_r, done_w) = pipe_with(PipeFlags::CLOEXEC)?;
        rustix::io::ioctl_fionbio(&done_r, true)?;
        let plan = ChildPlan {
            table: map.table(),
            fds,
            keep_guardian: keep_list(fds, &[alive_r.as_raw_fd()])?,
            keep_freezer: keep_list(fds, &[req_r.as_raw_fd(), done_w.as_raw_fd()])?,
            alive: alive_r.as_fd(),
            requests: req_r.as_fd(),
            done: done_w.as_fd(),
            record,
            freezers,
        };
        let mut all = MaybeUninit::<libc::sigset_t>::uninit();
        let mut old = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigfillset initialises `all`; pthread_sigmask reads it and fills `old`.
        let masked = unsafe {
            libc::sigfillset(all.as_mut_ptr());
            libc::pthread_sigmask(libc::SIG_BLOCK, all.as_ptr(), old.as_mut_ptr()) == 0
        };
        // SAFETY: fork; the child runs only `intermediate` (async-signal-safe, never returns),
        // with every signal blocked (inherited mask), so no handler of the host runs in it.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            intermediate(&plan);
        }
        let fork_error = io::Error::last_os_error();
        if masked {
            // SAFETY: restores the mask saved above.
            unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, old.as_ptr(), std::ptr::null_mut()) };
        }
        if pid < 0 {
            return Err(fork_error);
        }
        let mut status = 0;
        loop {
            // SAFETY: waits for our own child; `status` is a valid out-parameter.
            let r = unsafe { libc::waitpid(pid, &mut status, 0) };
            if r >= 0 || io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                break;
            }
        }
        drop(plan);
        drop((alive_r, req_r, done_w));
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
            freezers: pids,
            freezer_count,
        };
        if guardian <= 0 || pids[..freezer_count].iter().any(|&p| p <= 0) {
            // A fork in the intermediate process failed (it exited 1 or 2): the freezers
            // that run are told to quit, the guardian sees our pipe close.
            helpers.release();
            return Err(io::Error::from_raw_os_error(libc::EAGAIN));
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
        if let Some(r) = self.requests.take() {
            for _ in 0..self.freezer_count {
                let _ = rustix::io::write(&r, &[QUIT]);
            }
        }
        self.alive = None;
    }
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
}
