//! Issue 16, "Two calls, one deadline": `quiesce freeze --detach` and a later, unrelated
//! `quiesce thaw`, end to end on loop-mounted ext4 and xfs. Every test uses its own control
//! directory ([`RunDir`], `$QUIESCE_RUN_DIR` under `/run/quiesce-test-run-*`), never the real
//! `/run/quiesce`.
//!
//! Acceptance items and their tests:
//! - two unrelated processes: `two_calls` (the first exits before the second starts; a write
//!   blocks until the thaw; a consistent report, exit 0);
//! - no second call: `deadline_without_second_call` (writable at the deadline; `status`
//!   shows the ended session; a later `thaw` exits 13 and says why; collected afterwards);
//! - kills: `caller_killed_right_after_return` (nothing changes), `controller_killed_while_frozen`
//!   (writable at once; a later `thaw` says the controller is gone, 14);
//! - `two_sessions_at_once` (each thawed by its own call; a second `--detach` on a held
//!   filesystem gets 15 and leaves it frozen) and `part_of_a_session_is_refused`;
//! - hostile control paths: `hostile_control_directory` (symlink, other owner, world-writable:
//!   5, nothing frozen, nothing thawed) and `hostile_control_socket` (a symlink, a socket of
//!   another owner, a socket served by someone other than the controller: 5, nothing thawed);
//!   root only: `only_root_may_thaw` (a process of uid 65534 cannot reach the socket, and with
//!   the way opened by hand the controller still refuses it);
//! - the Velero sequence, each hook a separate `sh -c`: `velero_hooks` and
//!   `velero_post_hook_never_runs`;
//! - `overlay_cannot_be_frozen` (4, with the reason) and `thaw_without_a_session_is_the_rescue`;
//! - also: `recover_after_controller_and_guardian_die`, `status_clear_collects_only_ended_sessions`,
//!   `sigterm_to_the_controller_thaws` (18), `first_call_killed_before_frozen_thaws_at_once`
//!   (14; hooks run in the controller), `velero_annotations_exec_without_a_shell`,
//!   `own_output_on_the_frozen_filesystem`, `thaw_before_frozen_is_refused`,
//!   `thaw_of_an_orphaned_session_points_to_recover`.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use quiesce_testkit::*;

const EXIT: Duration = Duration::from_secs(30);
/// The bound for "writable at once" after the controller's death (as in cli_guardian.rs).
const AFTER_KILL: Duration = Duration::from_secs(5);

/// `quiesce freeze --detach --json --timeout SECS MOUNTS...`, run to its exit.
fn freeze_detached(run: &RunDir, mounts: &[&Path], timeout: &str) -> QuiesceOutput {
    run.quiesce("freeze")
        .args(["--detach", "--json", "--timeout", timeout])
        .mounts(mounts)
        .run(EXIT)
}

/// Freezes detached, checks the report so far, returns (session id, controller pid).
fn frozen_session(run: &RunDir, mounts: &[&Path], timeout: &str) -> (String, u32) {
    let out = freeze_detached(run, mounts, timeout);
    let j = check_report(&out, "freeze", 0);
    ensure(
        j["detached"].as_bool() == Some(true),
        &out,
        "the report should say detached",
    );
    let id = j["session"].as_str().expect("session id").to_string();
    let pid = j["controller_pid"].as_i64().expect("controller pid") as u32;
    for m in mounts {
        check_str(&out, target(&out, &j, m), "outcome", "frozen");
    }
    ensure(
        run.files_of(&id).iter().any(|f| f.ends_with(".sock")),
        &out,
        format!("the control socket should exist: {:?}", run.files()),
    );
    (id, pid)
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rfind(')')
                .and_then(|i| s[i + 1..].trim_start().chars().next())
        })
        .is_some_and(|c| c != 'Z' && c != 'X')
}

/// Waits until `dir` takes a write, at most `limit`; how long it took.
fn writable_within(dir: &Path, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut p = start_write_probe_nosync(dir);
    p.wait(limit).then(|| start.elapsed())
}

// ---------------------------------------------------------------------------------------------

fn two_calls(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "data", kind);
    let run = RunDir::new();
    // The first call, to its exit: its stdout closes although the session goes on.
    let (id, controller) = frozen_session(&run, &[&fs.mount], "60");
    assert!(alive(controller), "the controller should run on");
    assert_frozen(&fs, &"after `freeze --detach` returned");
    let mut write = start_write_probe(&fs.mount);
    assert!(
        !write.completed_within(Duration::from_secs(1)),
        "a write completed while the detached session held the filesystem"
    );
    let st = run.quiesce("status").arg("--json").run(EXIT);
    let sj = check_report(&st, "status", 0);
    let d = sj["detached"].items();
    ensure(
        d.iter()
            .any(|s| s["session"].as_str() == Some(&id) && s["state"].as_str() == Some("live")),
        &st,
        "status should list the live detached session",
    );
    // The second call: another process, started after the first exited.
    let out = run.quiesce("thaw").arg("--json").mount(&fs.mount).run(EXIT);
    let j = check_report(&out, "thaw", 0);
    check_str(&out, &j, "session", &id);
    check_str(&out, &j, "consistency", "filesystem-consistent");
    check_str(&out, &j, "end", "acknowledged");
    check_str(&out, target(&out, &j, &fs.mount), "outcome", "thawed");
    ensure(
        j["window_us"].as_i64().is_some_and(|w| w > 0),
        &out,
        "a frozen window",
    );
    assert!(
        write.wait(Duration::from_secs(10)),
        "the blocked write did not complete after the thaw\n{out}"
    );
    assert!(
        run.files_of(&id).is_empty(),
        "the session's files should be collected: {:?}",
        run.files()
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(controller) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    assert!(!alive(controller), "the controller should have exited");
    // The text form of the second call, on a new session.
    let (_, _) = frozen_session(&run, &[&fs.mount], "60");
    let out = run.quiesce("thaw").mount(&fs.mount).run(EXIT);
    out.assert_code(0, "text thaw");
    ensure(
        out.stdout.contains("quiesce thaw: ok (0)") && out.stdout.contains("filesystem-consistent"),
        &out,
        "the text report",
    );
    assert_writable(&fs.mount, &out);
}

fn deadline_without_second_call(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "data", kind);
    let run = RunDir::new();
    let (id, controller) = frozen_session(&run, &[&fs.mount], "2");
    assert_frozen(&fs, &"right after `freeze --detach`");
    // The deadline thaws (2 s after the first FIFREEZE); allow generously for a busy machine.
    let took = writable_within(&fs.mount, Duration::from_secs(20));
    assert!(took.is_some(), "still frozen long after the 2 s deadline");
    // The outcome stays readable.
    let deadline = Instant::now() + Duration::from_secs(10);
    let ended = loop {
        let st = run.quiesce("status").arg("--json").run(EXIT);
        let sj = check_report(&st, "status", 0);
        let s = sj["detached"]
            .items()
            .iter()
            .find(|s| s["session"].as_str() == Some(&id))
            .cloned();
        match s {
            Some(s) if s["state"].as_str() == Some("ended") => break s,
            _ if Instant::now() > deadline => panic!("status never showed the ended session\n{st}"),
            _ => thread::sleep(Duration::from_millis(100)),
        }
    };
    assert_eq!(ended["status"].as_i64(), Some(13), "{ended}");
    assert!(!alive(controller), "the controller should have exited");
    let text = run.quiesce("status").run(EXIT);
    ensure(
        text.stdout
            .contains(&format!("detached session {id}: ended: timeout (13)")),
        &text,
        "plain status should show the ended session",
    );
    // The late post hook.
    let out = run.quiesce("thaw").arg("--json").mount(&fs.mount).run(EXIT);
    let j = check_report(&out, "thaw", 13);
    check_str(&out, &j, "consistency", "not-consistent");
    check_str(&out, &j, "end", "deadline");
    ensure(
        j["ended_before_thaw"].as_bool() == Some(true),
        &out,
        "it should say the session ended before this thaw",
    );
    ensure(
        out.stderr
            .contains("had ended before this `quiesce thaw` came")
            && out.stderr.contains("deadline")
            && out.stderr.contains("not to be trusted"),
        &out,
        "stderr should say why",
    );
    assert!(run.files_of(&id).is_empty(), "collected: {:?}", run.files());
    // Collected: the next thaw is the rescue (not frozen: fine).
    let again = run.quiesce("thaw").arg("--json").mount(&fs.mount).run(EXIT);
    let j = check_report(&again, "thaw", 0);
    ensure(j["rescue"].as_bool() == Some(true), &again, "a rescue thaw");
    check_str(
        &again,
        target(&again, &j, &fs.mount),
        "outcome",
        "not-frozen",
    );
}

fn controller_killed_while_frozen(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "data", kind);
    let run = RunDir::new();
    let (id, controller) = frozen_session(&run, &[&fs.mount], "120");
    assert_frozen(&fs, &"before the kill");
    send_signal(controller, libc::SIGKILL).expect("SIGKILL the controller");
    let took = writable_within(&fs.mount, AFTER_KILL);
    assert!(
        took.is_some(),
        "not writable within {AFTER_KILL:?} of the controller's SIGKILL"
    );
    eprintln!(
        "writable {:?} after the controller's SIGKILL",
        took.unwrap()
    );
    let out = run.quiesce("thaw").arg("--json").mount(&fs.mount).run(EXIT);
    let j = check_report(&out, "thaw", 14);
    check_str(&out, &j, "consistency", "not-consistent");
    check_str(&out, &j, "end", "controller-gone");
    check_str(
        &out,
        target(&out, &j, &fs.mount),
        "outcome",
        "thawed-by-guardian",
    );
    ensure(
        out.stderr.contains("is gone") && out.stderr.contains("not to be trusted"),
        &out,
        "it should say the controller is gone",
    );
    assert!(run.files_of(&id).is_empty(), "collected: {:?}", run.files());
}

per_kind!(
    two_calls,
    deadline_without_second_call,
    controller_killed_while_frozen,
    velero_hooks,
    velero_post_hook_never_runs
);

#[test]
fn caller_killed_right_after_return() {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "data", FsKind::Ext4);
    let run = RunDir::new();
    guard(&fs.mount);
    // The caller: a shell that runs the first call, prints its id, and lives on; killed (its
    // whole process group) as soon as the id is out.
    let mut sh = Command::new("sh");
    sh.arg("-c")
        .arg(format!(
            "{} {} freeze --detach --timeout 60 {}; echo rc=$?; exec sleep 60",
            run.assignment(),
            quiesce_bin().display(),
            fs.mount.display()
        ))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    // SAFETY: setpgid in the child before exec, a plain syscall.
    unsafe {
        use std::os::unix::process::CommandExt;
        sh.pre_exec(|| {
            libc::setpgid(0, 0);
            Ok(())
        });
    }
    let mut child = ChildGuard::new(sh.spawn().expect("sh"));
    let stdout = child.child().stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        use std::io::BufRead;
        for l in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(l);
        }
    });
    let id = rx.recv_timeout(EXIT).expect("the session id");
    let rc = rx.recv_timeout(EXIT).expect("rc line");
    assert_eq!(rc, "rc=0", "freeze --detach failed");
    // SAFETY: kill of the caller's process group (negative pid), which it leads.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
    let _ = child.wait_timeout(Duration::from_secs(5));
    thread::sleep(Duration::from_millis(500));
    assert_frozen(&fs, &"the caller's death must change nothing");
    let out = run
        .quiesce("thaw")
        .arg("--json")
        .args(["--session", &id])
        .run(EXIT);
    let j = check_report(&out, "thaw", 0);
    check_str(&out, &j, "consistency", "filesystem-consistent");
    assert_writable(&fs.mount, &out);
}

#[test]
fn two_sessions_at_once() {
    require_root();
    let scratch = Scratch::new();
    let a = TestFs::new(&scratch, "a", FsKind::Ext4);
    let b = TestFs::new(&scratch, "b", FsKind::Xfs);
    let run = RunDir::new();
    let (ida, _) = frozen_session(&run, &[&a.mount], "60");
    let (idb, _) = frozen_session(&run, &[&b.mount], "60");
    assert_ne!(ida, idb);
    // A second detached freeze of a held filesystem: frozen by another holder, theirs kept.
    let out = freeze_detached(&run, &[&a.mount], "60");
    let j = check_report(&out, "freeze", 15);
    check_nothing_frozen_in_report(&out, &j);
    let files: Vec<String> = run
        .files()
        .into_iter()
        .filter(|f| !f.starts_with(&ida) && !f.starts_with(&idb))
        .collect();
    assert!(files.is_empty(), "the failed session left files: {files:?}");
    assert_frozen(&a, &out);
    // Each thawed by its own call, in either order.
    let out = run.quiesce("thaw").arg("--json").mount(&b.mount).run(EXIT);
    let j = check_report(&out, "thaw", 0);
    check_str(&out, &j, "session", &idb);
    assert_writable(&b.mount, &out);
    assert_frozen(&a, &"thawing b must leave a's session alone");
    let out = run
        .quiesce("thaw")
        .arg("--json")
        .args(["--session", &ida])
        .run(EXIT);
    let j = check_report(&out, "thaw", 0);
    check_str(&out, &j, "session", &ida);
    check_str(&out, &j, "consistency", "filesystem-consistent");
    assert_writable(&a.mount, &out);
}

#[test]
fn part_of_a_session_is_refused() {
    require_root();
    let scratch = Scratch::new();
    let a = TestFs::new(&scratch, "a", FsKind::Ext4);
    let b = TestFs::new(&scratch, "b", FsKind::Xfs);
    let c = TestFs::new(&scratch, "c", FsKind::Ext4);
    let run = RunDir::new();
    let (id, _) = frozen_session(&run, &[&a.mount, &b.mount], "60");
    let out = run.quiesce("thaw").arg("--json").mount(&a.mount).run(EXIT);
    let j = check_report(&out, "thaw", 2);
    let err = j["error"].as_str().unwrap_or("");
    ensure(
        err.contains(&abs(&b.mount)) && err.contains(&id) && err.contains("nothing was thawed"),
        &out,
        "the refusal should name the other filesystem and the session",
    );
    assert_frozen(&a, &out);
    assert_frozen(&b, &out);
    // A mix of a session's filesystems and one no session holds: refused too.
    let out = run
        .quiesce("thaw")
        .mounts(&[&a.mount, &b.mount, &c.mount])
        .run(EXIT);
    out.assert_code(2, "a mix of a session and a free filesystem");
    assert_frozen(&a, &out);
    let out = run
        .quiesce("thaw")
        .arg("--json")
        .mounts(&[&b.mount, &a.mount])
        .run(EXIT);
    let j = check_report(&out, "thaw", 0);
    check_str(&out, &j, "consistency", "filesystem-consistent");
    assert_writable(&a.mount, &out);
    assert_writable(&b.mount, &out);
}

#[test]
fn hostile_control_directory() {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "data", FsKind::Ext4);
    let run = RunDir::new();
    let root = &run.root;
    let real = root.join("real");
    std::fs::create_dir(&real).unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::symlink(&real, root.join("link")).unwrap();
    let other = root.join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(&other, Some(65534), Some(65534)).unwrap();
    let open = root.join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    for (dir, word) in [
        (root.join("link"), "symbolic link"),
        (root.join("link/sub"), "symbolic link"),
        (other.clone(), "uid 65534"),
        (other.join("sub"), "uid 65534"),
        (open.clone(), "writable by everyone"),
    ] {
        let out = Quiesce::sub("freeze")
            .env("QUIESCE_RUN_DIR", &dir)
            .args(["--detach", "--json", "--timeout", "30"])
            .mount(&fs.mount)
            .run(EXIT);
        let j = check_report(&out, "freeze", 5);
        ensure(
            j["error"]
                .as_str()
                .is_some_and(|e| e.contains(word) && e.contains("not safe")),
            &out,
            format!("the refusal should say {word:?}"),
        );
        assert_writable(&fs.mount, &out);
        // The second call refuses too, and thaws nothing.
        fs.fsfreeze();
        let out = Quiesce::sub("thaw")
            .env("QUIESCE_RUN_DIR", &dir)
            .arg("--json")
            .mount(&fs.mount)
            .run(EXIT);
        check_report(&out, "thaw", 5);
        assert_frozen(&fs, &out);
        fs.fsthaw();
    }
    for d in [&real, &other, &open] {
        let n = std::fs::read_dir(d).unwrap().count();
        assert_eq!(n, 0, "{} should be untouched", d.display());
    }
    let m = std::fs::metadata(&other).unwrap();
    assert_eq!(m.uid(), 65534);
}

/// A fake session record of `controller` (a live process of ours), holding `fs`.
fn plant_record(dir: &Path, id: &str, controller: u32, start: u64, fs: &TestFs) {
    let text = format!(
        "quiesce-detached 1\ncontroller {controller} {start}\ntimeout_ms 60000\nstarted_unix_ms 0\ntarget {}:{} {}\n",
        fs.dev.0,
        fs.dev.1,
        abs(&fs.mount)
    );
    std::fs::write(dir.join(format!("{id}.detached")), text).unwrap();
}

fn start_time(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let i = s.rfind(')').unwrap();
    s[i + 1..]
        .split_ascii_whitespace()
        .nth(19)
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn hostile_control_socket() {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "data", FsKind::Ext4);
    let run = RunDir::new();
    std::fs::create_dir(run.dir()).unwrap();
    std::fs::set_permissions(run.dir(), std::fs::Permissions::from_mode(0o700)).unwrap();
    // A live process of ours stands in for the recorded controller.
    let mut sleeper = ChildGuard::new(Command::new("sleep").arg("60").spawn().unwrap());
    let pid = sleeper.id();
    let start = start_time(pid);
    let id = format!("{pid}-{start}");
    plant_record(run.dir(), &id, pid, start, &fs);
    let sock = run.dir().join(format!("{id}.sock"));
    // A listener of the test's own: served by someone other than the controller.
    let elsewhere = run.root.join("elsewhere.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&elsewhere).unwrap();
    fs.fsfreeze();
    type Plant<'a> = Box<dyn Fn() + 'a>;
    let cases: [(&str, Plant); 3] = [
        (
            "symbolic link",
            Box::new(|| std::os::unix::fs::symlink(&elsewhere, &sock).unwrap()),
        ),
        (
            "uid 65534",
            Box::new(|| {
                let l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
                std::mem::forget(l);
                std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o600)).unwrap();
                std::os::unix::fs::chown(&sock, Some(65534), None).unwrap();
            }),
        ),
        (
            "not by the session's controller",
            Box::new(|| {
                let l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
                std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o600)).unwrap();
                std::mem::forget(l);
            }),
        ),
    ];
    for (word, plant) in cases.iter() {
        let _ = std::fs::remove_file(&sock);
        plant();
        let out = run.quiesce("thaw").arg("--json").mount(&fs.mount).run(EXIT);
        let j = check_report(&out, "thaw", 5);
        ensure(
            j["error"].as_str().is_some_and(|e| e.contains(word)),
            &out,
            format!("the refusal should say {word:?}"),
        );
        assert_frozen(&fs, &out);
        assert!(
            run.dir().join(format!("{id}.detached")).exists(),
            "a refused thaw collects nothing"
        );
    }
    fs.fsthaw();
    let _ = sleeper.child().kill();
    let _ = sleeper.wait_timeout(Duration::from_secs(5));
}

#[test]
fn thaw_without_a_session_is_the_rescue() {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "data", FsKind::Xfs);
    let run = RunDir::new();
    fs.fsfreeze();
    let out = run.quiesce("thaw").arg("--json").mount(&fs.mount).run(EXIT);
    let j = check_report(&out, "thaw", 0);
    ensure(j["rescue"].as_bool() == Some(true), &out, "rescue: true");
    check_str(&out, target(&out, &j, &fs.mount), "outcome", "thawed");
    ensure(
        out.stderr.contains("no detached session holds") && out.stderr.contains("rescue"),
        &out,
        "it should say it is the rescue thaw",
    );
    assert_writable(&fs.mount, &out);
}

#[test]
fn overlay_cannot_be_frozen() {
    require_root();
    let scratch = Scratch::new();
    let ov = overlay(&scratch, "ov");
    let run = RunDir::new();
    let out = freeze_detached(&run, &[&ov.path], "600");
    let j = check_report(&out, "freeze", 4);
    ensure(
        j["error"]
            .as_str()
            .is_some_and(|e| e.contains("cannot be frozen") && e.contains("overlayfs")),
        &out,
        "the refusal should say overlayfs cannot be frozen",
    );
    let text = run
        .quiesce("freeze")
        .args(["--detach", "--timeout", "600"])
        .mount(&ov.path)
        .run(EXIT);
    text.assert_code(4, "text");
    ensure(
        text.stderr
            .contains("cannot be frozen: overlayfs cannot be frozen"),
        &text,
        "stderr names the reason",
    );
    assert!(
        run.files().is_empty(),
        "nothing left behind: {:?}",
        run.files()
    );
}

// ---------------------------------------------------------------------------------------------
// Velero: each hook is a separate `sh -c` exec, as Velero runs pod annotations' commands.

fn hook(run: &RunDir, cmd: &str) -> std::process::Output {
    run_timeout(
        Command::new("sh")
            .arg("-c")
            .arg(format!("{} {}", run.assignment(), cmd)),
        EXIT,
    )
    .unwrap_or_else(|e| panic!("sh -c {cmd}: {e}"))
}

fn text(o: &std::process::Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The snapshot step: a copy of the image while frozen; for ext4, the copy is clean.
fn snapshot(run: &RunDir, fs: &TestFs, scratch: &Scratch) {
    let copy = scratch.path("snapshot.img");
    let o = hook(
        run,
        &format!(
            "cp --sparse=always {} {}",
            fs.image.display(),
            copy.display()
        ),
    );
    assert!(o.status.success(), "snapshot: {}", text(&o));
    if fs.kind == FsKind::Ext4 {
        let o = run_timeout(Command::new("e2fsck").args(["-fn"]).arg(&copy), EXIT).unwrap();
        assert!(
            o.status.success(),
            "the copy taken while frozen should be clean: {}",
            text(&o)
        );
        let o = run_timeout(Command::new("dumpe2fs").arg("-h").arg(&copy), EXIT).unwrap();
        assert!(
            !String::from_utf8_lossy(&o.stdout).contains("needs_recovery"),
            "the copy should need no journal recovery"
        );
    }
}

/// The command of a hook annotation in examples/velero/pod.yaml (`pre` or `post`), as Velero
/// runs it: a JSON array, `/quiesce` replaced by the binary under test, `/data` by `data`, and
/// `--timeout`'s value by `timeout` if given.
fn annotation(phase: &str, data: &Path, timeout: Option<&str>) -> Vec<String> {
    let pod = std::fs::read_to_string(repo_root().join("examples/velero/pod.yaml"))
        .expect("examples/velero/pod.yaml");
    let key = format!("{phase}.hook.backup.velero.io/command:");
    let line = pod
        .lines()
        .find_map(|l| l.trim().strip_prefix(&key))
        .unwrap_or_else(|| panic!("no {key} in pod.yaml"));
    let array = line.trim().trim_matches('\'');
    let j = Json::parse(array).unwrap_or_else(|e| panic!("{key} is not a JSON array: {e}"));
    let mut argv: Vec<String> = j.str_array().iter().map(|s| s.to_string()).collect();
    assert_eq!(
        argv.first().map(String::as_str),
        Some("/quiesce"),
        "{argv:?}"
    );
    argv[0] = quiesce_bin().display().to_string();
    for a in argv.iter_mut() {
        if a == "/data" {
            *a = data.display().to_string();
        }
    }
    if let Some(t) = timeout {
        let i = argv
            .iter()
            .position(|a| a == "--timeout")
            .expect("--timeout")
            + 1;
        argv[i] = t.to_string();
    }
    argv
}

fn velero_hooks(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "data", kind);
    let run = RunDir::new();
    guard(&fs.mount);
    std::fs::write(fs.path("before"), b"written before the backup").unwrap();
    // pre.hook.backup.velero.io/command, one `sh -c` exec.
    let pre = hook(&run, &annotation("pre", &fs.mount, None).join(" "));
    assert!(pre.status.success(), "pre hook: {}", text(&pre));
    let id = String::from_utf8_lossy(&pre.stdout).trim().to_string();
    assert!(
        run.files_of(&id).iter().any(|f| f.ends_with(".sock")),
        "the pre hook prints the session id ({id:?}): {}",
        text(&pre)
    );
    assert_frozen(&fs, &text(&pre));
    let mut write = start_write_probe(&fs.mount);
    snapshot(&run, &fs, &scratch);
    assert!(!write.is_done(), "a write completed during the snapshot");
    // post.hook.backup.velero.io/command, another exec.
    let post = hook(&run, &annotation("post", &fs.mount, None).join(" "));
    assert_eq!(post.status.code(), Some(0), "post hook: {}", text(&post));
    let out = String::from_utf8_lossy(&post.stdout);
    assert!(
        out.contains("filesystem-consistent") && out.contains("thawed"),
        "the post hook prints the final report: {}",
        text(&post)
    );
    assert!(
        write.wait(Duration::from_secs(10)),
        "the write after the thaw"
    );
    assert!(run.files().iter().all(|f| !f.starts_with(&id)));
}

/// Velero runs hook commands without a shell: the annotations' argv, exec'd directly.
#[test]
fn velero_annotations_exec_without_a_shell() {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "data", FsKind::Ext4);
    let run = RunDir::new();
    guard(&fs.mount);
    let exec = |argv: &[String]| {
        run_timeout(
            Command::new(&argv[0])
                .args(&argv[1..])
                .env("QUIESCE_RUN_DIR", run.dir()),
            EXIT,
        )
        .unwrap_or_else(|e| panic!("{argv:?}: {e}"))
    };
    let pre = exec(&annotation("pre", &fs.mount, None));
    assert!(pre.status.success(), "pre hook: {}", text(&pre));
    assert_frozen(&fs, &text(&pre));
    let post = exec(&annotation("post", &fs.mount, None));
    assert_eq!(post.status.code(), Some(0), "post hook: {}", text(&post));
    assert_writable(&fs.mount, &text(&post));
}

fn velero_post_hook_never_runs(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "data", kind);
    let run = RunDir::new();
    guard(&fs.mount);
    let pre = hook(&run, &annotation("pre", &fs.mount, Some("3")).join(" "));
    assert!(pre.status.success(), "pre hook: {}", text(&pre));
    snapshot(&run, &fs, &scratch);
    // The backup worker died: no post hook. The deadline thaws.
    assert!(
        writable_within(&fs.mount, Duration::from_secs(20)).is_some(),
        "still frozen long after the deadline"
    );
    // A post hook that runs late learns that its snapshot is not to be trusted.
    let deadline = Instant::now() + Duration::from_secs(10);
    let late = loop {
        let late = hook(&run, &annotation("post", &fs.mount, None).join(" "));
        // Until the controller has written the outcome, the session is still live; the
        // thaw then acknowledges a session whose deadline passed: 13 either way.
        if late.status.code() == Some(13) || Instant::now() > deadline {
            break late;
        }
        thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        late.status.code(),
        Some(13),
        "late post hook: {}",
        text(&late)
    );
    let err = String::from_utf8_lossy(&late.stderr);
    assert!(
        err.contains("not to be trusted") && err.contains("deadline"),
        "it should say why: {}",
        text(&late)
    );
}

/// A detached session of `fs` whose controller and guardian were both killed (stopped first,
/// so neither thaws): `orphaned`, still frozen. Returns its id.
fn orphaned_session(run: &RunDir, fs: &TestFs) -> String {
    let (id, controller) = frozen_session(run, &[&fs.mount], "120");
    let st = run.quiesce("status").arg("--json").run(EXIT);
    let sj = check_report(&st, "status", 0);
    let session = sj["sessions"]
        .items()
        .iter()
        .find(|s| s["controller"]["pid"].as_i64() == Some(i64::from(controller)))
        .cloned()
        .unwrap_or_else(|| panic!("status should list the session's record\n{st}"));
    assert_eq!(session["detached"].as_bool(), Some(true), "{session}");
    let guardian = session["guardian"]["pid"].as_i64().expect("guardian") as u32;
    for pid in [controller, guardian] {
        send_signal(pid, libc::SIGSTOP).expect("SIGSTOP");
    }
    for pid in [controller, guardian] {
        send_signal(pid, libc::SIGKILL).expect("SIGKILL");
    }
    let deadline = Instant::now() + AFTER_KILL;
    let mut state = String::new();
    while Instant::now() < deadline {
        let st = run.quiesce("status").arg("--json").run(EXIT);
        let sj = check_report(&st, "status", 0);
        state = sj["sessions"]
            .items()
            .iter()
            .find(|s| s["controller"]["pid"].as_i64() == Some(i64::from(controller)))
            .and_then(|s| s["state"].as_str().map(str::to_string))
            .unwrap_or_default();
        if state == "orphaned" {
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(state, "orphaned");
    id
}

/// `quiesce recover` with a detached session whose controller and guardian were both killed
/// (stopped first, so neither thaws): it thaws, and the session's late `thaw` says the
/// controller is gone (14).
#[test]
fn recover_after_controller_and_guardian_die() {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "data", FsKind::Ext4);
    let run = RunDir::new();
    let id = orphaned_session(&run, &fs);
    assert_frozen(&fs, &"nobody is left to thaw it");
    let rec = run.quiesce("recover").arg("--json").run(EXIT);
    let j = check_report(&rec, "recover", 0);
    let outcomes: Vec<&str> = j["sessions"]
        .items()
        .iter()
        .flat_map(|s| s["outcomes"].items().iter())
        .filter_map(|t| t["outcome"].as_str())
        .collect();
    assert_eq!(outcomes, ["thawed"], "{rec}");
    assert_writable(&fs.mount, &rec);
    // The detached record outlives the recovery, for the post hook.
    let out = run.quiesce("thaw").arg("--json").mount(&fs.mount).run(EXIT);
    let j = check_report(&out, "thaw", 14);
    check_str(&out, &j, "session", &id);
    check_str(
        &out,
        target(&out, &j, &fs.mount),
        "outcome",
        "thawed-by-guardian",
    );
    assert!(
        run.files().is_empty(),
        "everything collected: {:?}",
        run.files()
    );
}

/// `quiesce status --clear` collects ended detached sessions and leaves live ones.
#[test]
fn status_clear_collects_only_ended_sessions() {
    require_root();
    let scratch = Scratch::new();
    let a = TestFs::new(&scratch, "a", FsKind::Ext4);
    let b = TestFs::new(&scratch, "b", FsKind::Xfs);
    let run = RunDir::new();
    let (ended, ended_pid) = frozen_session(&run, &[&a.mount], "1");
    let (live, _) = frozen_session(&run, &[&b.mount], "60");
    let deadline = Instant::now() + Duration::from_secs(20);
    while alive(ended_pid) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    assert!(!alive(ended_pid), "the 1 s session should have ended");
    let out = run.quiesce("status").args(["--clear", "--json"]).run(EXIT);
    let j = check_report(&out, "status", 0);
    assert_eq!(j["cleared"].str_array(), [ended.as_str()], "{out}");
    assert!(run.files_of(&ended).is_empty());
    assert!(!run.files_of(&live).is_empty(), "the live session is kept");
    assert_frozen(&b, &out);
    let out = run.quiesce("thaw").arg("--json").mount(&b.mount).run(EXIT);
    check_report(&out, "thaw", 0);
}

/// SIGTERM to the detached controller while frozen: it thaws (not consistent), and the later
/// `thaw` reports `interrupted` (18).
#[test]
fn sigterm_to_the_controller_thaws() {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "data", FsKind::Xfs);
    let run = RunDir::new();
    let (id, controller) = frozen_session(&run, &[&fs.mount], "120");
    send_signal(controller, libc::SIGTERM).expect("SIGTERM");
    assert!(
        writable_within(&fs.mount, AFTER_KILL).is_some(),
        "SIGTERM should thaw at once"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(controller) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    let out = run
        .quiesce("thaw")
        .arg("--json")
        .args(["--session", &id])
        .run(EXIT);
    let j = check_report(&out, "thaw", 18);
    check_str(&out, &j, "end", "interrupted");
    check_str(&out, &j, "consistency", "not-consistent");
}

/// Hooks run in the controller; and a first call killed before everything is frozen (here,
/// while the pre script runs) never prints an id: the controller's "frozen" finds nobody, so
/// it thaws at once (not acknowledged, 14), and the hooks get their after-call.
#[test]
fn first_call_killed_before_frozen_thaws_at_once() {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "data", FsKind::Ext4);
    let run = RunDir::new();
    let hooks = HookDir::new();
    let pre = hooks.outside("pre", &hooks.log_line("pre", "sleep 2"));
    let post = hooks.outside("post", &hooks.log_line("post", "exit 0"));
    let mut q = run
        .quiesce("freeze")
        .args(["--detach", "--json", "--timeout", "120"])
        .arg(format!("--pre-script={}", pre.display()))
        .arg(format!("--post-script={}", post.display()))
        .mount(&fs.mount)
        .no_stdin()
        .spawn();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !hooks.calls().iter().any(|c| c == "pre freeze") && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        hooks.calls(),
        ["pre freeze"],
        "the pre script should be running"
    );
    q.signal(libc::SIGKILL);
    let out = q.wait(EXIT);
    assert_eq!(out.code, None, "killed: {out}");
    // The controller goes on: freezes, finds the first call gone, thaws, records the end.
    let deadline = Instant::now() + Duration::from_secs(20);
    let ended = loop {
        let st = run.quiesce("status").arg("--json").run(EXIT);
        let sj = check_report(&st, "status", 0);
        let e = sj["detached"]
            .items()
            .iter()
            .find(|s| s["state"].as_str() == Some("ended"))
            .cloned();
        match e {
            Some(e) => break e,
            None if Instant::now() > deadline => panic!("no ended session\n{st}"),
            None => thread::sleep(Duration::from_millis(100)),
        }
    };
    assert_eq!(ended["status"].as_i64(), Some(14), "{ended}");
    assert_writable(&fs.mount, &ended);
    assert_eq!(
        hooks.calls(),
        ["pre freeze", "post thaw"],
        "the post script's after-call"
    );
    let out = run.quiesce("thaw").arg("--json").mount(&fs.mount).run(EXIT);
    let j = check_report(&out, "thaw", 14);
    check_str(&out, &j, "end", "controller-gone");
}

/// Root only, three layers: the control directory (0700) and the socket (0600) keep others
/// out; with both opened up by hand, the controller still refuses a peer that is not root
/// (SO_PEERCRED), and `thaw` refuses a socket that others may use.
#[test]
fn only_root_may_thaw() {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "data", FsKind::Ext4);
    let run = RunDir::new();
    let (id, _) = frozen_session(&run, &[&fs.mount], "120");
    let sock = run.dir().join(format!("{id}.sock"));
    let nobody_thaws = || {
        let script = format!(
            "import socket,sys\ns=socket.socket(socket.AF_UNIX)\ntry:\n  s.connect({:?})\nexcept OSError as e:\n  print('refused', e.errno); sys.exit(3)\ntry:\n  s.sendall(b'thaw\\n'); n = len(s.recv(65536))\nexcept OSError as e:\n  n = 0\nprint('reply', n)\n",
            sock.display().to_string()
        );
        let mut cmd = Command::new("/usr/bin/python3");
        std::os::unix::process::CommandExt::uid(&mut cmd, 65534);
        std::os::unix::process::CommandExt::gid(&mut cmd, 65534);
        let o = run_timeout(cmd.args(["-c", &script]), EXIT).expect("python3 as nobody");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let said = nobody_thaws();
    assert!(said.starts_with("refused 13"), "EACCES expected: {said}");
    assert_frozen(&fs, &said);
    // Open the way by hand: the directories traversable, the socket writable by all.
    for (p, mode) in [(&run.root, 0o755), (&run.path, 0o711), (&sock, 0o666)] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let said = nobody_thaws();
    assert!(
        said.starts_with("reply 0"),
        "the controller should close the connection without a reply: {said}"
    );
    assert_frozen(&fs, &"a peer that is not root must not thaw");
    let out = run.quiesce("thaw").arg("--json").mount(&fs.mount).run(EXIT);
    let j = check_report(&out, "thaw", 5);
    ensure(
        j["error"]
            .as_str()
            .is_some_and(|e| e.contains("lets others in")),
        &out,
        "thaw should refuse a socket others may use",
    );
    assert_frozen(&fs, &out);
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = run.quiesce("thaw").arg("--json").mount(&fs.mount).run(EXIT);
    let j = check_report(&out, "thaw", 0);
    ensure(
        j["log"]
            .str_array()
            .iter()
            .any(|l| l.contains("refused a connection on the control socket from uid 65534")),
        &out,
        "the refusal should be in the session's log",
    );
    assert_writable(&fs.mount, &out);
}

/// The first call writes its id (stdout) and a line (stderr) while frozen: stderr on the
/// frozen filesystem costs only that line (the call returns at once, not at the deadline);
/// stdout there is refused before anything is frozen.
#[test]
fn own_output_on_the_frozen_filesystem() {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "data", FsKind::Ext4);
    let run = RunDir::new();
    guard(&fs.mount);
    let q = format!(
        "{} {} freeze --detach --timeout 120 {}",
        run.assignment(),
        quiesce_bin().display(),
        fs.mount.display()
    );
    let o = hook(&run, &format!("{q} >{}/out", fs.mount.display()));
    assert_eq!(
        o.status.code(),
        Some(2),
        "stdout on the target: {}",
        text(&o)
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("stdout is a file on a filesystem"),
        "{}",
        text(&o)
    );
    assert_writable(&fs.mount, &text(&o));
    let start = Instant::now();
    let o = hook(&run, &format!("{q} 2>{}/err", fs.mount.display()));
    assert!(o.status.success(), "stderr on the target: {}", text(&o));
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "the first call must not wait for the deadline"
    );
    let id = String::from_utf8_lossy(&o.stdout).trim().to_string();
    assert_frozen(&fs, &text(&o));
    let out = run.quiesce("thaw").args(["--session", &id]).run(EXIT);
    out.assert_code(0, "thaw");
    assert_writable(&fs.mount, &out);
}

/// A `thaw` that comes before everything is frozen (here, while the pre script still runs)
/// would acknowledge a snapshot that may predate the freeze: refused (2), the session goes
/// on, and a `thaw` after the first call returned acknowledges it.
#[test]
fn thaw_before_frozen_is_refused() {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "data", FsKind::Xfs);
    let run = RunDir::new();
    let hooks = HookDir::new();
    let pre = hooks.outside("pre", &hooks.log_line("pre", "sleep 3"));
    let mut first = run
        .quiesce("freeze")
        .args(["--detach", "--json", "--timeout", "120"])
        .arg(format!("--pre-script={}", pre.display()))
        .mount(&fs.mount)
        .no_stdin()
        .spawn();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !hooks.calls().iter().any(|c| c == "pre freeze") && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    let early = run.quiesce("thaw").arg("--json").mount(&fs.mount).run(EXIT);
    let j = check_report(&early, "thaw", 2);
    ensure(
        j["error"]
            .as_str()
            .is_some_and(|e| e.contains("came before everything was frozen")),
        &early,
        "it should say why",
    );
    let out = first.wait(EXIT);
    let j = check_report(&out, "freeze", 0);
    let id = j["session"].as_str().expect("id").to_string();
    assert_frozen(&fs, &out);
    let out = run
        .quiesce("thaw")
        .arg("--json")
        .args(["--session", &id])
        .run(EXIT);
    let j = check_report(&out, "thaw", 0);
    ensure(
        j["log"]
            .str_array()
            .iter()
            .any(|l| l.contains("came before everything was frozen")),
        &out,
        "the session's log notes the early thaw",
    );
    assert_writable(&fs.mount, &out);
}

/// The post hook comes while the session is orphaned (controller and guardian killed, still
/// frozen): its `thaw` says the filesystems may still be frozen and points to `quiesce
/// recover` (14), and thaws nothing itself; `recover` then does.
#[test]
fn thaw_of_an_orphaned_session_points_to_recover() {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "data", FsKind::Xfs);
    let run = RunDir::new();
    let id = orphaned_session(&run, &fs);
    let out = run.quiesce("thaw").arg("--json").mount(&fs.mount).run(EXIT);
    let j = check_report(&out, "thaw", 14);
    check_str(&out, &j, "session", &id);
    check_str(
        &out,
        target(&out, &j, &fs.mount),
        "outcome",
        "may-be-frozen",
    );
    ensure(
        out.stderr.contains("quiesce recover"),
        &out,
        "it should point to recover",
    );
    assert_frozen(&fs, &out);
    let rec = run.quiesce("recover").arg("--json").run(EXIT);
    check_report(&rec, "recover", 0);
    assert_writable(&fs.mount, &rec);
}
