//! Issue 11: the snapshot command of `quiesce run` does not outlive the session.
//!
//! - `sigkill_of_run_kills_its_command`: `quiesce run` is killed with SIGKILL while frozen and
//!   its snapshot command (`sh -c`, with two `sleep` children in its process group) runs: within
//!   a second no process of the command's group is left, and the filesystem is writable. (Before
//!   the guardian killed the tied group, the command went on for its whole 60 s, copying a
//!   filesystem the guardian had thawed.)
//! - `deadline_still_terminates_the_command`: at the deadline quiesce thaws, then sends the
//!   command SIGTERM itself (the guardian, released after the thaw, leaves the group alone):
//!   the command's SIGTERM trap runs.

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use quiesce_testkit::*;

const START: Duration = Duration::from_secs(15);
const EXIT: Duration = Duration::from_secs(30);
/// The bound: the command and its children are gone within a second of the SIGKILL.
const GONE_WITHIN: Duration = Duration::from_secs(1);

/// The processes of process group `pgid` that have not exited (zombies count as gone: they
/// run nothing), as (pid, state letter, command name).
fn live_members(pgid: i32) -> Vec<(u32, char, String)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid pgrp ...
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = stat[open + 1..close].to_string();
        let rest: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let state = rest.first().and_then(|s| s.chars().next()).unwrap_or('?');
        let pgrp = rest.get(2).and_then(|s| s.parse::<i32>().ok());
        if pgrp == Some(pgid) && state != 'Z' && state != 'X' {
            out.push((pid, state, comm));
        }
    }
    out
}

/// Kills process group `pgid` on drop, so that a failing test leaves no `sleep 60` behind.
struct GroupGuard(i32);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        // SAFETY: kill(2) with a negative pid signals a process group; no memory is involved.
        unsafe { libc::kill(-self.0, libc::SIGKILL) };
    }
}

/// Waits up to `limit` for `path` to hold a pid (written by the command when it starts).
fn wait_pid_file(path: &Path, q: &mut QuiesceChild, limit: Duration) -> i32 {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(pid) = std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        {
            return pid;
        }
        if let Some(out) = q.try_wait(Duration::ZERO) {
            panic!("quiesce exited before its snapshot command started:\n{out}");
        }
        assert!(
            Instant::now() < deadline,
            "the snapshot command did not start within {limit:?}; stdout so far: {:?}",
            q.stdout_so_far()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

fn sigkill_of_run_kills_its_command(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "a", kind);
    let pid_file = scratch.path("command.pid");
    // The pid file lives in the scratch directory, not on the frozen filesystem.
    let script = format!(
        "sleep 60 & sleep 60 & echo $$ > '{p}.new' && mv '{p}.new' '{p}'; wait",
        p = pid_file.display()
    );
    let mut q = Quiesce::sub("run")
        .args(["--timeout", "60", "--json"])
        .mount(&fs.mount)
        .args(["--", "sh", "-c", &script])
        .spawn();
    let pgid = wait_pid_file(&pid_file, &mut q, START);
    let _group = GroupGuard(pgid);
    let members = live_members(pgid);
    assert!(
        members.len() >= 3,
        "the command's group {pgid} should hold sh and its two sleeps: {members:?}"
    );
    assert_frozen(&fs, &"while the snapshot command runs");

    q.signal(libc::SIGKILL);
    let killed = Instant::now();
    let mut left = live_members(pgid);
    while !left.is_empty() && killed.elapsed() < GONE_WITHIN {
        thread::sleep(Duration::from_millis(5));
        left = live_members(pgid);
    }
    let took = killed.elapsed();
    eprintln!("[{kind:?}] SIGKILL of quiesce run: its command's group was gone after {took:?}");
    assert!(
        left.is_empty(),
        "{GONE_WITHIN:?} after SIGKILL of quiesce run, its snapshot command's group {pgid} still \
         runs: {left:?}"
    );
    let out = q.wait(EXIT);
    assert_eq!(
        out.status.code(),
        None,
        "quiesce was killed by a signal:\n{out}"
    );
    assert_writable(&fs.mount, &out);
}

fn deadline_still_terminates_the_command(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "a", kind);
    let term_file = scratch.path("got-term");
    let script = format!(
        "trap \"echo term > '{}'; exit 0\" TERM; sleep 60 & wait",
        term_file.display()
    );
    let out = Quiesce::sub("run")
        .args(["--timeout", "1", "--json"])
        .mount(&fs.mount)
        .args(["--", "sh", "-c", &script])
        .run(EXIT);
    let j = check_report(&out, "run", 13);
    check_str(&out, &j, "end", "deadline");
    let log = j["log"].str_array().join("\n");
    ensure(
        log.contains("sent SIGTERM") && !log.contains("sent SIGKILL"),
        &out,
        "the command outlived the window: quiesce sends it SIGTERM (and needs no SIGKILL)",
    );
    ensure(
        std::fs::read_to_string(&term_file).is_ok_and(|s| s.trim() == "term"),
        &out,
        "the command's SIGTERM trap should have run (the guardian must not SIGKILL the group \
         once quiesce has thawed)",
    );
    assert_writable(&fs.mount, &out);
}

per_kind!(
    sigkill_of_run_kills_its_command,
    deadline_still_terminates_the_command
);
