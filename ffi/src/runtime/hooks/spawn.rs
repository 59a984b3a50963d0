//! Starting one hook: `fork`, then `execveat(fd, "", AT_EMPTY_PATH)` on the verified
//! descriptor, so the file that runs is the file that was checked.
//!
//! The child gets: its own process group (so a timeout can kill the hook and everything it
//! started), stdin from `/dev/null`, stdout and stderr into one pipe that quiesce reads, a fixed
//! `PATH` and nothing else of quiesce's environment, the working directory `/`, umask 022,
//! default signal dispositions and an empty signal mask, and no other descriptor. The one
//! exception: a script (`#!`) keeps its own file open as descriptor 3, because the kernel hands
//! a script run through a descriptor to its interpreter as `/dev/fd/3`; a binary does not.
//!
//! Everything is allocated before `fork` (the raw system call, `sys::fork`: no
//! `pthread_atfork` handler of the host runs); after it the child runs only async-signal-safe
//! syscalls (safe inside a multi-threaded host process too).

use std::ffi::{c_char, CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};

use quiesce_core::linux::sys::{self, Forked};
use rustix::fs::{fcntl_setfl, openat, Mode, OFlags, CWD};
use rustix::io::FdFlags;
use rustix::pipe::{pipe_with, PipeFlags};

/// The only environment a hook gets.
pub(crate) const HOOK_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// A started hook.
pub(crate) struct Spawned {
    /// Its pid, which is also its process group id.
    pub pid: i32,
    /// The read end of its stdout+stderr pipe, non-blocking.
    pub output: OwnedFd,
}

/// Starts the file behind `exe` (an `O_PATH` descriptor of a verified hook) with `argv`.
/// `Err` when it could not be started (the errno of `fork`, of `execveat`, ...).
pub(crate) fn spawn(exe: BorrowedFd<'_>, argv: &[&CStr], env: &[CString]) -> io::Result<Spawned> {
    let mut argv_ptrs: Vec<*const c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let mut env_ptrs: Vec<*const c_char> = env.iter().map(|e| e.as_ptr()).collect();
    env_ptrs.push(std::ptr::null());
    let devnull = openat(
        CWD,
        "/dev/null",
        OFlags::RDWR | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let (out_r, out_w) = pipe_with(PipeFlags::CLOEXEC)?;
    // Reports a failed exec: the child writes its errno; EOF means exec succeeded.
    let (err_r, err_w) = pipe_with(PipeFlags::CLOEXEC)?;
    let fds = ChildFds {
        devnull: devnull.as_raw_fd(),
        out: out_w.as_raw_fd(),
        exe: exe.as_raw_fd(),
        err: err_w.as_raw_fd(),
    };
    // SAFETY: the raw fork runs no pthread_atfork handler of the host; the child only runs
    // `child_main`, which makes async-signal-safe syscalls on memory prepared above (argv,
    // env, descriptor numbers), allocates nothing and never returns (exec or _exit), as
    // `sys::fork` requires.
    let pid = match unsafe { sys::fork() } {
        Ok(Forked::Child) => child_main(&fds, argv_ptrs.as_ptr(), env_ptrs.as_ptr()),
        Ok(Forked::Parent(pid)) => pid,
        Err(e) => return Err(io::Error::from_raw_os_error(e)),
    };
    // Also from this side, so that the group exists before we might signal it.
    // EACCES after the child's exec is harmless.
    let group = rustix::process::Pid::from_raw(pid);
    let _ = rustix::process::setpgid(group, group);
    drop(out_w);
    drop(err_w);
    drop(devnull);
    let exec_errno = read_errno(&err_r);
    if let Some(errno) = exec_errno {
        reap(pid);
        return Err(io::Error::from_raw_os_error(errno));
    }
    fcntl_setfl(&out_r, OFlags::NONBLOCK)?;
    Ok(Spawned { pid, output: out_r })
}

/// Blocks until the exec-error pipe gives 4 bytes (the child's errno) or EOF (exec done).
fn read_errno(fd: &OwnedFd) -> Option<i32> {
    let mut buf = [0u8; 4];
    let mut got = 0;
    while got < buf.len() {
        match rustix::io::read(fd, &mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => break,
        }
    }
    (got == buf.len()).then(|| i32::from_ne_bytes(buf))
}

/// Waits for a child that has failed its exec (it exits at once).
fn reap(pid: i32) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid) {
        while let Err(rustix::io::Errno::INTR) =
            rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty())
        {}
    }
}

struct ChildFds {
    devnull: RawFd,
    out: RawFd,
    exe: RawFd,
    err: RawFd,
}

/// The child between fork and exec. Never returns. Every call is async-signal-safe and
/// allocates nothing (through `sys` or rustix; descriptors are plain numbers this child owns).
fn child_main(fds: &ChildFds, argv: *const *const c_char, env: *const *const c_char) -> ! {
    sys::reset_signals();
    if let Err(e) = rustix::process::setpgid(None, None) {
        fail(fds.err, e.raw_os_error());
    }
    // Move the descriptors we keep above 0..=3 first, so that dup2 cannot clobber one with
    // another, then into place. dup2 clears close-on-exec on the copies.
    let high = |fd: RawFd| {
        // SAFETY: `fd` is open in this child (prepared before the fork) for this call.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        rustix::io::fcntl_dupfd_cloexec(fd, 10).map(IntoRawFd::into_raw_fd)
    };
    let (null, out, exe) = match (high(fds.devnull), high(fds.out), high(fds.exe)) {
        (Ok(n), Ok(o), Ok(e)) => (n, o, e),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => fail(fds.err, e.raw_os_error()),
    };
    let err = match high(fds.err) {
        Ok(e) => e,
        Err(e) => fail(fds.err, e.raw_os_error()),
    };
    for (from, to) in [(null, 0), (out, 1), (out, 2), (exe, 3)] {
        if let Err(e) = sys::dup_onto(from, to) {
            fail(err, e);
        }
    }
    close_from_4(err);
    if let Err(e) = rustix::process::chdir(c"/") {
        fail(err, e.raw_os_error());
    }
    rustix::process::umask(Mode::from_raw_mode(0o022));
    // SAFETY: descriptor 3 is the hook's own file, open in this child.
    let three = unsafe { BorrowedFd::borrow_raw(3) };
    // A binary needs no descriptor of its own: try with close-on-exec first. The kernel
    // refuses that for a script (ENOENT: its interpreter could not open /dev/fd/3), so then
    // descriptor 3 stays open for the interpreter.
    let _ = rustix::io::fcntl_setfd(three, FdFlags::CLOEXEC);
    // SAFETY: argv and env are NULL-terminated arrays of C strings allocated before the fork,
    // alive until exec (this function never returns).
    let mut errno = unsafe { sys::exec_fd(3, argv, env) };
    if errno == quiesce_core::errno::ENOENT {
        let _ = rustix::io::fcntl_setfd(three, FdFlags::empty());
        // SAFETY: as above.
        errno = unsafe { sys::exec_fd(3, argv, env) };
    }
    fail(err, errno)
}

/// Writes `errno` to the exec-error pipe and exits. Async-signal-safe.
fn fail(pipe: RawFd, errno: i32) -> ! {
    // SAFETY: the exec-error pipe's write end is open in this child until it exits.
    let pipe = unsafe { BorrowedFd::borrow_raw(pipe) };
    let _ = rustix::io::write(pipe, &errno.to_ne_bytes());
    sys::exit_now(127)
}

/// Closes every descriptor from 4 up, except `keep` (the exec-error pipe, close-on-exec, above
/// 3). Async-signal-safe.
fn close_from_4(keep: RawFd) {
    sys::close_all_except(&[0, 1, 2, 3, keep]);
}
