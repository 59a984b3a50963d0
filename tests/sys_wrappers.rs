//! The syscall wrappers of `quiesce_core::linux::sys` that rustix does not provide (or that
//! quiesce builds on rustix): the CAP_SYS_ADMIN check, the raw `fork`, `close_all_except`.

use std::os::fd::{AsRawFd, OwnedFd};

use quiesce_core::linux::sys::{self, Forked};
use rustix::pipe::{pipe_with, PipeFlags};

/// CapEff from /proc/self/status: an independent source for the capget(2) answer.
fn cap_eff_has_sys_admin() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .expect("CapEff line");
    u64::from_str_radix(hex.trim(), 16).expect("CapEff is hex") & (1 << 21) != 0
}

#[test]
fn the_capability_check_agrees_with_proc() {
    assert_eq!(sys::has_cap_sys_admin(), cap_eff_has_sys_admin());
}

/// Forks with `sys::fork`; the child runs `child` (which must be async-signal-safe) and exits
/// with its result; returns the child's exit status.
fn in_child(child: impl FnOnce() -> i32) -> i32 {
    // SAFETY: the child runs only `child` (async-signal-safe by the caller's word: raw
    // syscalls, no allocation) and then _exit.
    match unsafe { sys::fork() }.expect("fork") {
        Forked::Child => sys::exit_now(child()),
        Forked::Parent(pid) => {
            let pid = rustix::process::Pid::from_raw(pid).expect("a positive pid");
            let status = loop {
                match rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty()) {
                    Ok(Some((_, status))) => break status,
                    Err(rustix::io::Errno::INTR) => continue,
                    other => panic!("waitpid: {other:?}"),
                }
            };
            status.exit_status().expect("the child exited")
        }
    }
}

fn is_open(fd: &OwnedFd) -> bool {
    let raw = fd.as_raw_fd();
    // SAFETY: fcntl(F_GETFD) on a number only reads the descriptor table.
    unsafe { libc::fcntl(raw, libc::F_GETFD) >= 0 }
}

#[test]
fn close_all_except_keeps_exactly_the_list() {
    let (a, a_w) = pipe_with(PipeFlags::CLOEXEC).expect("pipe");
    let (b, _b_w) = pipe_with(PipeFlags::CLOEXEC).expect("pipe");
    let (c, _c_w) = pipe_with(PipeFlags::CLOEXEC).expect("pipe");
    let mut keep = [a.as_raw_fd(), c.as_raw_fd()];
    keep.sort_unstable();
    assert!(is_open(&a) && is_open(&b) && is_open(&c));
    let code = in_child(|| {
        sys::close_all_except(&keep);
        // 1: a kept one was closed; 2: another survived; 0: as it should be.
        if !is_open(&a) || !is_open(&c) {
            1
        } else if is_open(&b) || is_open(&a_w) {
            2
        } else {
            0
        }
    });
    assert_eq!(
        code, 0,
        "1: a kept descriptor was closed, 2: another one stayed open"
    );
    assert!(is_open(&b), "the parent's descriptors are untouched");
}
