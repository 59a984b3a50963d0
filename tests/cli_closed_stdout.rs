//! Issue 11: a closed stdout (`quiesce plan | head -1`, a reader that went away) changes
//! neither the exit status nor the thaw. `println!` panics on `EPIPE` (exit 101); the CLI's
//! output drops what it cannot write, and the status stays the session's.
//!
//! Every command here runs with stdout a pipe whose read end is closed before it starts, so
//! that every write to stdout fails with `EPIPE` (and SIGPIPE, ignored by Rust programs, kills
//! nothing).

use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use quiesce_testkit::*;

const EXIT: Duration = Duration::from_secs(60);

/// Runs `q` with stdout a pipe that nobody reads (its read end closed before the start) and
/// stderr in a file; returns the exit status and stderr.
fn run_with_closed_stdout(q: &Quiesce, scratch: &Scratch) -> (ExitStatus, String) {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let err_path = scratch.path("stderr");
    let err = std::fs::File::create(&err_path).expect("stderr file");
    let mut cmd = q.command();
    cmd.stdin(Stdio::null()).stdout(writer).stderr(err);
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", q.display()));
    // The parent's copy of the write end goes with `cmd`.
    drop(cmd);
    let status = wait_timeout(&mut child, EXIT).unwrap_or_else(|| {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{} did not exit within {EXIT:?}", q.display())
    });
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    (status, stderr)
}

/// Asserts exit code `code` and no panic.
fn check(q: &Quiesce, (status, stderr): &(ExitStatus, String), code: i32) {
    assert!(
        !stderr.contains("panicked"),
        "`{}` with stdout closed panicked ({status}):\n{stderr}",
        q.display()
    );
    assert_eq!(
        status.signal(),
        None,
        "`{}` with stdout closed was killed by a signal:\n{stderr}",
        q.display()
    );
    assert_eq!(
        status.code(),
        Some(code),
        "`{}` with stdout closed: the exit status must be the command's own:\n{stderr}",
        q.display()
    );
}

/// `plan` (every freezable filesystem; text, --verbose and --json), `--help`, `--version` and
/// `status`: exit 0, no panic.
#[test]
fn plan_and_listings_with_stdout_closed() {
    let scratch = Scratch::new();
    for args in [
        &["plan"][..],
        &["plan", "--verbose"],
        &["plan", "--json"],
        &["--help"],
        &["--version"],
        &["status"],
        &["status", "--json"],
    ] {
        let q = Quiesce::new().args(args);
        let r = run_with_closed_stdout(&q, &scratch);
        check(&q, &r, 0);
    }
}

/// `plan MOUNT` of a test filesystem, and a usage error (exit 2), with stdout closed.
#[test]
fn plan_of_a_mount_and_a_usage_error_with_stdout_closed() {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "a", FsKind::Ext4);
    for json in [false, true] {
        let mut q = Quiesce::sub("plan").mount(&fs.mount);
        if json {
            q = q.arg("--json");
        }
        let r = run_with_closed_stdout(&q, &scratch);
        check(&q, &r, 0);
        let mut q = Quiesce::sub("run").args(["--timeout", "0"]);
        if json {
            q = q.arg("--json");
        }
        let q = q.mount(&fs.mount).args(["--", "true"]);
        let r = run_with_closed_stdout(&q, &scratch);
        check(&q, &r, 2);
    }
}

/// `run` with stdout closed: frozen, acknowledged, thawed, exit 0 (text and JSON); a failing
/// snapshot command keeps its status 17 (also one killed by SIGPIPE writing to that stdout); `thaw` of a filesystem that is not frozen: 0. The
/// filesystem is writable after each.
fn run_freeze_thaw_with_stdout_closed(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "a", kind);
    for json in [false, true] {
        let base = |sub: &str| {
            let q = Quiesce::sub(sub);
            if json {
                q.arg("--json")
            } else {
                q
            }
        };
        let q = base("run")
            .args(["--timeout", "30"])
            .mount(&fs.mount)
            .args(["--", "true"]);
        let r = run_with_closed_stdout(&q, &scratch);
        check(&q, &r, 0);
        assert_writable(&fs.mount, &r.1);

        let q = base("run")
            .args(["--timeout", "30"])
            .mount(&fs.mount)
            .args(["--", "false"]);
        let r = run_with_closed_stdout(&q, &scratch);
        check(&q, &r, 17);
        assert_writable(&fs.mount, &r.1);

        // The snapshot command's stdout is quiesce's closed pipe: its `echo` dies of SIGPIPE
        // (the command gets the default disposition), a failed snapshot (17). With --json its
        // stdout is quiesce's stderr: it succeeds.
        let q = base("run")
            .args(["--timeout", "30"])
            .mount(&fs.mount)
            .args(["--", "sh", "-c", "echo snapshot taken; true"]);
        let r = run_with_closed_stdout(&q, &scratch);
        check(&q, &r, if json { 0 } else { 17 });
        assert_writable(&fs.mount, &r.1);

        // `freeze --stdin` cannot say `frozen` (and stdin is /dev/null): the controller is
        // gone, thawed at once, not acknowledged (14).
        let q = base("freeze")
            .args(["--stdin", "--timeout", "30"])
            .mount(&fs.mount);
        let r = run_with_closed_stdout(&q, &scratch);
        check(&q, &r, 14);
        assert_writable(&fs.mount, &r.1);

        let q = base("thaw").mount(&fs.mount);
        let r = run_with_closed_stdout(&q, &scratch);
        check(&q, &r, 0);
    }
}

per_kind!(run_freeze_thaw_with_stdout_closed);
