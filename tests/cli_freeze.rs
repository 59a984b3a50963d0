//! End-to-end tests of `quiesce freeze`: writes block while frozen, the deadline, the SIGUSR1
//! handshake with the parent, `--stdin`, the `quiesce TIMEOUT MOUNT...` form, and the phases of
//! a notification that outlasts the deadline.
//!
//! The test process is quiesce's parent: the testkit records every SIGUSR1 it receives with the
//! sender's pid, and the tests acknowledge with kill(2).

use std::time::Duration;

use quiesce_testkit::*;

const START: Duration = Duration::from_secs(15);
const EXIT: Duration = Duration::from_secs(15);

fn freeze_stdin(fs: &TestFs, timeout: &str) -> QuiesceChild {
    Quiesce::sub("freeze")
        .args(["--stdin", "--json", "--timeout", timeout])
        .mount(&fs.mount)
        .spawn()
}

fn wait_frozen_line(q: &mut QuiesceChild) {
    if !q.wait_for_line("frozen", START) {
        let out = q.try_wait(Duration::from_secs(1));
        panic!(
            "no `frozen` line on stdout within {START:?}; stdout so far: {:?}; exited: {}",
            q.stdout_so_far(),
            out.map_or("no".into(), |o| o.to_string())
        );
    }
}

fn wait_usr1(q: &mut QuiesceChild) {
    if !wait_usr1_from(q.pid(), START) {
        let out = q.try_wait(Duration::from_secs(1));
        panic!(
            "the parent got no SIGUSR1 from quiesce (pid {}) within {START:?}; exited: {}",
            q.pid(),
            out.map_or("no".into(), |o| o.to_string())
        );
    }
}

/// Checks the single target of a report about `fs`.
fn check_single_target(out: &QuiesceOutput, j: &Json, fs: &TestFs, outcome: &str) {
    ensure(
        j["targets"].items().len() == 1,
        out,
        "expected exactly one target",
    );
    let t = target(out, j, &fs.mount);
    check_str(out, t, "fs_type", fs.kind.fs_type());
    check_str(out, t, "device", &fs.dev_string());
    check_str(out, t, "outcome", outcome);
    ensure(
        t["paths"].str_array() == vec![abs(&fs.mount).as_str()],
        out,
        format!("paths should be [{:?}], are {}", abs(&fs.mount), t["paths"]),
    );
}

/// Item 2: a write to a frozen filesystem does not complete until after the thaw; `thaw` on
/// stdin acknowledges (exit 0, file-system-consistent).
fn write_blocks_until_thaw(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "a", kind);
    let mut q = freeze_stdin(&fs, "60");
    wait_frozen_line(&mut q);
    let mut probe = start_write_probe(&fs.mount);
    assert!(
        !probe.completed_within(Duration::from_secs(1)),
        "a write+fsync completed while quiesce said `frozen`"
    );
    assert!(!q.has_exited(), "quiesce exited before `thaw` was sent");
    q.send_line("thaw");
    let out = q.wait(EXIT);
    ensure(
        probe.wait(Duration::from_secs(10)),
        &out,
        "the blocked write did not complete within 10 s of the thaw",
    );
    let j = check_report(&out, "freeze", 0);
    check_str(&out, &j, "consistency", "filesystem-consistent");
    check_str(&out, &j, "end", "acknowledged");
    ensure(
        j["acknowledged"].as_bool() == Some(true),
        &out,
        "acknowledged should be true",
    );
    check_single_target(&out, &j, &fs, "thawed");
    ensure(
        j["window_us"].as_i64().is_some_and(|w| w >= 1_000_000),
        &out,
        "window_us should cover the >= 1 s the write was blocked",
    );
    assert_writable(&fs.mount, &out);
}

/// Item 3: without acknowledgement, quiesce thaws by itself at the deadline: exit 13.
fn deadline_thaws_by_itself(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "a", kind);
    let mut q = Quiesce::sub("freeze")
        .args(["--timeout", "2", "--json"])
        .mount(&fs.mount)
        .spawn();
    wait_usr1(&mut q);
    assert!(
        fs.is_frozen_within(Duration::from_millis(500)),
        "not frozen right after the SIGUSR1"
    );
    // Never acknowledge.
    let out = q.wait(Duration::from_secs(15));
    let j = check_report(&out, "freeze", 13);
    check_str(&out, &j, "consistency", "not-consistent");
    check_str(&out, &j, "end", "deadline");
    ensure(
        j["acknowledged"].as_bool() == Some(false),
        &out,
        "acknowledged should be false",
    );
    ensure(
        j["timeout_ms"].as_i64() == Some(2000),
        &out,
        "timeout_ms should be 2000",
    );
    check_single_target(&out, &j, &fs, "thawed");
    ensure(
        out.elapsed >= Duration::from_secs(1),
        &out,
        "exited long before the 2 s deadline",
    );
    ensure(
        j["window_us"]
            .as_i64()
            .is_some_and(|w| (1_000_000..=2_500_000).contains(&w)),
        &out,
        "window_us should be about the 2 s deadline (first FIFREEZE to last FITHAW)",
    );
    assert_writable(&fs.mount, &out);
}

/// Item 4: SIGUSR1 to the parent once frozen; a SIGUSR1 from another process is ignored and
/// logged with its pid; the parent's SIGUSR1 thaws, exit 0.
fn handshake_with_parent(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "a", kind);
    let mut q = Quiesce::sub("freeze")
        .args(["--timeout", "60", "--json"])
        .mount(&fs.mount)
        .spawn();
    wait_usr1(&mut q);
    assert_frozen(&fs, &"after quiesce signalled its parent");
    let other_pid = usr1_from_other_process(q.pid());
    assert_frozen(&fs, &"after a SIGUSR1 from another process");
    assert!(
        !q.has_exited(),
        "quiesce exited on a SIGUSR1 from a process that is not its parent: {}",
        q.wait(Duration::ZERO)
    );
    q.signal(libc::SIGUSR1);
    let out = q.wait(EXIT);
    let j = check_report(&out, "freeze", 0);
    check_str(&out, &j, "consistency", "filesystem-consistent");
    check_str(&out, &j, "end", "acknowledged");
    check_single_target(&out, &j, &fs, "thawed");
    let pid = other_pid.to_string();
    ensure(
        j["log"].str_array().iter().any(|l| l.contains(&pid)),
        &out,
        format!("the JSON log should mention the foreign sender pid {pid}"),
    );
    ensure(
        out.stderr.contains(&pid),
        &out,
        format!("stderr should mention the foreign sender pid {pid}"),
    );
    assert_writable(&fs.mount, &out);
}

/// Item 4: `--stdin` and end of input without `thaw`: not acknowledged, exit 14.
fn stdin_eof_is_not_acknowledged(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "a", kind);
    let mut q = freeze_stdin(&fs, "60");
    wait_frozen_line(&mut q);
    assert_frozen(&fs, &"after `frozen`");
    q.close_stdin();
    let out = q.wait(EXIT);
    let j = check_report(&out, "freeze", 14);
    check_str(&out, &j, "consistency", "not-consistent");
    check_str(&out, &j, "end", "controller-gone");
    ensure(
        j["acknowledged"].as_bool() == Some(false),
        &out,
        "acknowledged should be false",
    );
    check_single_target(&out, &j, &fs, "thawed");
    assert_writable(&fs.mount, &out);
}

/// Item 4: the parent exits without acknowledging: not acknowledged, exit 14.
fn parent_exit_is_not_acknowledged(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "a", kind);
    let q = Quiesce::sub("freeze")
        .args(["--timeout", "60", "--json"])
        .mount(&fs.mount);
    let mut ctl = ParentGone::start(&q, &scratch, "quiesce");
    assert!(
        ctl.wait_usr1(START),
        "the perl parent got no SIGUSR1 from quiesce"
    );
    assert_frozen(&fs, &"after quiesce signalled its parent");
    ctl.parent_exit();
    let out = ctl.wait_quiesce(Duration::from_secs(20));
    let j = check_report(&out, "freeze", 14);
    check_str(&out, &j, "consistency", "not-consistent");
    check_str(&out, &j, "end", "controller-gone");
    check_single_target(&out, &j, &fs, "thawed");
    ensure(
        out.elapsed < Duration::from_secs(30),
        &out,
        "quiesce should notice its parent's exit, not wait for the 60 s deadline",
    );
    assert_writable(&fs.mount, &out);
}

/// Item 4: the fsfreezer / safefreeze argument form `quiesce TIMEOUT MOUNT`.
fn fsfreezer_form_acknowledged(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "a", kind);
    let mut q = Quiesce::new().arg("5").mount(&fs.mount).spawn();
    wait_usr1(&mut q);
    assert!(
        fs.is_frozen_within(Duration::from_millis(500)),
        "not frozen after SIGUSR1 from `quiesce 5 MNT`"
    );
    q.signal(libc::SIGUSR1);
    let out = q.wait(EXIT);
    out.assert_code(0, "`quiesce 5 MNT` acknowledged by the parent");
    assert_writable(&fs.mount, &out);
}

/// Item 4: `quiesce 2 MOUNT` without acknowledgement: exit 13 at the deadline.
fn fsfreezer_form_deadline(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "a", kind);
    let mut q = Quiesce::new().arg("2").mount(&fs.mount).spawn();
    wait_usr1(&mut q);
    let out = q.wait(Duration::from_secs(15));
    out.assert_code(13, "`quiesce 2 MNT` never acknowledged");
    assert_writable(&fs.mount, &out);
}

/// README "Output": log lines produced while frozen are held until after the thaw, so stderr on
/// the frozen filesystem itself cannot deadlock quiesce (failure catalogue 7).
fn stderr_on_the_frozen_fs_does_not_deadlock(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "a", kind);
    let log = fs.path("quiesce.log");
    let mut q = Quiesce::sub("freeze")
        .args(["--timeout", "30"])
        .mount(&fs.mount)
        .stderr_file(&log)
        .spawn();
    wait_usr1(&mut q);
    assert_frozen(&fs, &"after quiesce signalled its parent");
    // Provoke a log line while frozen: a SIGUSR1 from a process that is not the parent.
    usr1_from_other_process(q.pid());
    std::thread::sleep(Duration::from_millis(300));
    q.signal(libc::SIGUSR1);
    let Some(out) = q.try_wait(EXIT) else {
        fs.fsthaw();
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        panic!(
            "quiesce did not exit within {EXIT:?} of the acknowledgement while its stderr is on \
             the frozen fs (deadlocked writing its log?); log after thaw:\n{text}"
        );
    };
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    out.assert_code(0, "acknowledged, with stderr on the frozen filesystem");
    ensure(
        text.contains("SIGUSR1") || text.to_lowercase().contains("usr1"),
        &out,
        format!("the log file should mention the ignored SIGUSR1:\n{text}"),
    );
    assert_writable(&fs.mount, &out);
}

/// The notification itself outlasts the deadline: the `frozen` line waits on a full stdout
/// pipe until past it (as when the controller is stopped or descheduled right after writing
/// it), so the session ends on the deadline inside the freeze call. Its phases must still say
/// that the wait (from the notification on) and the thaw ran, as for a thaw at the deadline
/// after the wait: the scenario `deadline` (tests/scenarios.rs) depends on it.
#[test]
fn a_notification_that_outlasts_the_deadline_still_counts_the_wait_and_the_thaw() {
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;
    use std::process::{Command, Stdio};

    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "a", FsKind::Ext4);
    let (mut reader, mut writer) = std::io::pipe().expect("pipe");
    // Fill the pipe, so that the `frozen` line blocks until the test reads.
    let fd = writer.as_raw_fd();
    // SAFETY: fcntl on a descriptor this test owns; no memory is passed.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    let set = unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) };
    assert_eq!(set, 0, "O_NONBLOCK on the pipe");
    let filler = [b'.'; 4096];
    let mut filled = 0;
    while let Ok(n) = writer.write(&filler) {
        filled += n;
    }
    // SAFETY: as above.
    let set = unsafe { libc::fcntl(fd, libc::F_SETFL, flags) };
    assert_eq!(set, 0, "the pipe blocking again");
    let child = Command::new(quiesce_bin())
        .args(["freeze", "--stdin", "--json", "--timeout", "0.5"])
        .arg(&fs.mount)
        .stdin(Stdio::piped())
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn quiesce");
    let mut q = ChildGuard::new(child);
    let started = std::time::Instant::now();
    while !fs.is_frozen_within(Duration::from_millis(100)) && started.elapsed() < START {}
    if started.elapsed() >= START {
        let _ = q.child().kill();
        let _ = q.wait_timeout(EXIT);
        let mut err = String::new();
        if let Some(mut e) = q.child().stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        panic!("quiesce did not freeze: {err}");
    }
    // Past the deadline (0.5 s), before the guardian's (2.5 s): the controller is still in
    // its write of `frozen`.
    std::thread::sleep(Duration::from_millis(1200));
    let drained = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = reader.read_to_end(&mut out);
        out
    });
    let status = q.wait_timeout(EXIT).expect("quiesce did not exit");
    let out = drained.join().expect("the reader");
    let text = String::from_utf8_lossy(&out[filled.min(out.len())..]).into_owned();
    let j = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .map(Json::parse)
        .unwrap_or_else(|| panic!("no JSON report ({status}): {text}"))
        .unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(j["status"].as_i64(), Some(13), "{text}");
    assert_eq!(j["end"].as_str(), Some("deadline"), "{text}");
    assert!(text.starts_with("frozen\n"), "{text}");
    let phase = |name: &str| j["phases"][name].as_i64().unwrap_or(-1);
    assert!(
        phase("wait_us") >= 500_000,
        "the blocked notification is the wait: {text}"
    );
    assert!(phase("thaw_us") > 0, "the thaw at the deadline ran: {text}");
    assert!(
        phase("freeze_us") < phase("wait_us"),
        "the freeze phase ends at the notification: {text}"
    );
    assert_writable(&fs.mount, &text);
}

per_kind!(
    write_blocks_until_thaw,
    deadline_thaws_by_itself,
    handshake_with_parent,
    stdin_eof_is_not_acknowledged,
    parent_exit_is_not_acknowledged,
    fsfreezer_form_acknowledged,
    fsfreezer_form_deadline,
    stderr_on_the_frozen_fs_does_not_deadlock,
);
