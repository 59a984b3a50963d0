//! End-to-end tests of the application hooks (issue 5) on real loop-mounted filesystems:
//! the order of the calls around FIFREEZE and FITHAW, the fallback to file-system consistency
//! when a hook fails or hangs, a background child holding the hook's output, the refusals
//! (world-writable hook or directory, symbolic link, foreign owner), `--require-app-consistent`,
//! and that every hook that got `freeze` gets exactly one `thaw` or `freeze-failed`.
//!
//! The hooks live in a [`HookDir`] under /run (root's, 0755: /tmp is world-writable, so hooks
//! there are refused) and append `NAME PHASE` lines to a call log outside the frozen
//! filesystem. Every test ends by checking that the filesystem is writable.

use std::path::Path;
use std::time::Duration;

use quiesce_testkit::*;

const RUN: Duration = Duration::from_secs(120);

/// A shell fragment: starts a write of `MOUNT/.probe-TAG` in the background and prints
/// `fs=writable` if it completes within 5 s, `fs=frozen` otherwise (the write then completes
/// after the thaw). Appends `LABEL fs=...` to `log`.
fn probe(mount: &Path, tag: &str, label: &str, log: &Path, wait_tenths: u32) -> String {
    format!(
        "dd if=/dev/zero of='{m}/.probe-{tag}' bs=4096 count=1 status=none </dev/null >/dev/null 2>&1 &\n\
         p=$!; i=0\n\
         while kill -0 $p 2>/dev/null && [ $i -lt {wait_tenths} ]; do sleep 0.1; i=$((i+1)); done\n\
         if kill -0 $p 2>/dev/null; then s=frozen; else s=writable; fi\n\
         echo \"{label} fs=$s\" >> '{l}'",
        m = mount.display(),
        l = log.display()
    )
}

/// `quiesce run --json --timeout 30 --hook-dir=DIR EXTRA... MOUNT -- sh -c CMD`.
fn run_hooks(fs: &TestFs, hooks: &HookDir, extra: &[&str], cmd: &str) -> QuiesceOutput {
    let mut dir = std::ffi::OsString::from("--hook-dir=");
    dir.push(&hooks.dir);
    Quiesce::sub("run")
        .args(["--json", "--timeout", "30"])
        .arg(dir)
        .args(extra)
        .mount(&fs.mount)
        .args(["--", "sh", "-c", cmd])
        .run(RUN)
}

/// The `(name, phase)` pairs of the report's `hooks`, in order.
fn hook_calls(j: &Json) -> Vec<(String, String)> {
    j["hooks"]
        .items()
        .iter()
        .map(|h| {
            (
                h["name"].as_str().unwrap_or("?").to_owned(),
                h["phase"].as_str().unwrap_or("?").to_owned(),
            )
        })
        .collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

/// The report entry of the call `name` `phase`.
fn call<'j>(out: &QuiesceOutput, j: &'j Json, name: &str, phase: &str) -> &'j Json {
    match j["hooks"]
        .items()
        .iter()
        .find(|h| h["name"].as_str() == Some(name) && h["phase"].as_str() == Some(phase))
    {
        Some(h) => h,
        None => panic!("no hook call {name} {phase} in the report\n{out}"),
    }
}

/// Every hook that got `freeze` (in the call log) got exactly one `thaw` or `freeze-failed`,
/// after it, and in reverse order of the `freeze` calls; returns the after-phase used.
#[track_caller]
fn check_pairing(out: &QuiesceOutput, calls: &[String], names: &[&str]) -> String {
    let phase_of = |l: &str| l.split_whitespace().nth(1).unwrap_or("").to_owned();
    let name_of = |l: &str| l.split_whitespace().next().unwrap_or("").to_owned();
    let plain: Vec<&String> = calls.iter().filter(|l| !l.contains("fs=")).collect();
    let froze: Vec<String> = plain
        .iter()
        .filter(|l| phase_of(l) == "freeze")
        .map(|l| name_of(l))
        .collect();
    let after: Vec<(String, String)> = plain
        .iter()
        .filter(|l| phase_of(l) != "freeze" && names.contains(&name_of(l).as_str()))
        .map(|l| (name_of(l), phase_of(l)))
        .collect();
    let mut expect = froze.clone();
    expect.retain(|n| names.contains(&n.as_str()));
    expect.reverse();
    ensure(
        after.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>() == expect,
        out,
        format!(
            "every hook that got `freeze` must get exactly one after-call, in reverse order: freeze calls {froze:?}, after calls {after:?}; call log {calls:?}"
        ),
    );
    let phases: Vec<&String> = after.iter().map(|(_, p)| p).collect();
    ensure(
        phases.windows(2).all(|w| w[0] == w[1]),
        out,
        format!("all after-calls must have the same argument: {after:?}"),
    );
    phases.first().map_or(String::new(), |p| (*p).clone())
}

/// Acceptance 4: pre script, hooks `freeze` (filesystem writable), FIFREEZE, the snapshot
/// (filesystem frozen), FITHAW, hooks `thaw` in reverse (writable again), post script.
fn hooks_run_in_order_around_the_freeze(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "a", kind);
    let hooks = HookDir::new();
    let log = hooks.log.clone();
    for name in ["10-first", "20-second"] {
        hooks.logging(
            name,
            &probe(&fs.mount, name, &format!("{name} $1"), &log, 50),
        );
    }
    let pre = hooks.outside("pre", &hooks.log_line("pre", ""));
    let post = hooks.outside(
        "post",
        &hooks.log_line("post", &probe(&fs.mount, "post", "post $1", &log, 50)),
    );
    let snapshot = format!(
        "echo snapshot >> '{}'\n{}",
        log.display(),
        probe(&fs.mount, "snap", "snapshot", &log, 10)
    );
    let out = run_hooks(
        &fs,
        &hooks,
        &[
            &format!("--pre-script={}", pre.display()),
            &format!("--post-script={}", post.display()),
        ],
        &snapshot,
    );
    let j = check_report(&out, "run", 0);
    check_str(&out, &j, "consistency", "application-consistent");
    ensure(
        j["consistency_reason"].is_null(),
        &out,
        "an application-consistent report has no consistency_reason",
    );
    check_str(&out, target(&out, &j, &fs.mount), "outcome", "thawed");
    let want = [
        "pre freeze",
        "10-first freeze",
        "10-first freeze fs=writable",
        "20-second freeze",
        "20-second freeze fs=writable",
        "snapshot",
        "snapshot fs=frozen",
        "20-second thaw",
        "20-second thaw fs=writable",
        "10-first thaw",
        "10-first thaw fs=writable",
        "post thaw",
        "post thaw fs=writable",
    ];
    let calls = hooks.calls();
    ensure(
        calls == want,
        &out,
        format!("call log {calls:#?}\nshould be {want:#?}"),
    );
    let pre_s = pre.to_string_lossy().into_owned();
    let post_s = post.to_string_lossy().into_owned();
    ensure(
        hook_calls(&j)
            == pairs(&[
                (&pre_s, "freeze"),
                ("10-first", "freeze"),
                ("20-second", "freeze"),
                ("20-second", "thaw"),
                ("10-first", "thaw"),
                (&post_s, "thaw"),
            ]),
        &out,
        format!("report hooks {:?}", hook_calls(&j)),
    );
    for h in j["hooks"].items() {
        ensure(
            h["succeeded"].as_bool() == Some(true) && h["exit_status"].as_i64() == Some(0),
            &out,
            format!("hook call {h} should have succeeded"),
        );
    }
    assert_writable(&fs.mount, &out);
}

/// Acceptance 2 (failure): a hook that exits 3 before the freeze: the freeze goes on, the
/// snapshot is file-system-consistent with the reason naming the hook; the other hooks still
/// ran; every hook got `thaw`. A file without the execute bit is not run, and a note says so.
fn failing_hook_falls_back_to_filesystem_consistent(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "a", kind);
    let hooks = HookDir::new();
    hooks.logging("10-ok", "");
    hooks.logging(
        "20-fails",
        "[ \"$1\" = freeze ] || exit 0\necho 'cannot reach the database' >&2; exit 3",
    );
    hooks.logging("30-ok", "");
    let disabled = hooks.logging("40-disabled", "");
    std::fs::set_permissions(
        &disabled,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .expect("chmod 0644");
    let out = run_hooks(&fs, &hooks, &[], "true");
    let j = check_report(&out, "run", 0);
    check_str(&out, &j, "consistency", "filesystem-consistent");
    let reason = j["consistency_reason"].as_str().unwrap_or("");
    ensure(
        reason.contains("20-fails") && reason.contains("exit status 3"),
        &out,
        format!("consistency_reason should name the hook and its exit status: {reason:?}"),
    );
    let c = call(&out, &j, "20-fails", "freeze");
    ensure(
        c["exit_status"].as_i64() == Some(3) && c["succeeded"].as_bool() == Some(false),
        &out,
        "20-fails freeze: exit_status 3",
    );
    ensure(
        c["output"]
            .as_str()
            .is_some_and(|o| o.contains("cannot reach the database")),
        &out,
        "the hook's stderr is in the report",
    );
    let calls = hooks.calls();
    ensure(
        !calls.iter().any(|l| l.starts_with("40-disabled")),
        &out,
        "a hook without the execute bit must not run",
    );
    ensure(
        j["log"]
            .str_array()
            .iter()
            .any(|l| l.contains("40-disabled") && l.contains("not executable")),
        &out,
        "a note should say why 40-disabled was not run",
    );
    let phase = check_pairing(&out, &calls, &["10-ok", "20-fails", "30-ok"]);
    ensure(phase == "thaw", &out, "after a good freeze: thaw");
    ensure(
        calls.len() == 6,
        &out,
        format!("three freeze and three thaw calls: {calls:?}"),
    );
    assert_writable(&fs.mount, &out);
}

/// Acceptance 2 (hang): a hook that hangs (and starts a child that hangs too) is killed with
/// its whole process group at --hook-timeout; the run goes on, falls back, and the hook still
/// gets its `thaw`.
fn hanging_hook_is_killed_with_its_group(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "a", kind);
    let hooks = HookDir::new();
    let pids = hooks.root.join("pids");
    hooks.logging(
        "10-hangs",
        &format!(
            "if [ \"$1\" = freeze ]; then sleep 1000 & echo $! > '{p}'; echo $$ >> '{p}'; sleep 1000; fi",
            p = pids.display()
        ),
    );
    let out = run_hooks(&fs, &hooks, &["--hook-timeout", "2"], "true");
    let j = check_report(&out, "run", 0);
    check_str(&out, &j, "consistency", "filesystem-consistent");
    let c = call(&out, &j, "10-hangs", "freeze");
    check_str(&out, c, "end", "timed-out");
    ensure(
        c["timed_out"].as_bool() == Some(true),
        &out,
        "timed_out: true",
    );
    ensure(
        j["consistency_reason"]
            .as_str()
            .is_some_and(|r| r.contains("10-hangs") && r.contains("timed out")),
        &out,
        "the reason names the hook that timed out",
    );
    ensure(
        out.elapsed < Duration::from_secs(60),
        &out,
        "a hook timeout of 2 s should cut the hang (bound: 60 s)",
    );
    // Both the hook and the child it started are gone (the whole group was killed).
    let text = std::fs::read_to_string(&pids).unwrap_or_default();
    let listed: Vec<u32> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
    ensure(listed.len() == 2, &out, format!("pid file: {text:?}"));
    for pid in listed {
        let mut gone = false;
        for _ in 0..50 {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // Gone, or a zombie waiting for its new parent to reap it.
            if stat.is_empty() || stat.contains(") Z ") {
                gone = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if !gone {
            let _ = send_signal(pid, libc::SIGKILL);
        }
        ensure(
            gone,
            &out,
            format!("pid {pid} of the hook's group survived the timeout"),
        );
    }
    let phase = check_pairing(&out, &hooks.calls(), &["10-hangs"]);
    ensure(
        phase == "thaw",
        &out,
        "the timed-out hook still gets `thaw`",
    );
    assert_writable(&fs.mount, &out);
}

/// Acceptance 2 (background child): a hook that exits 0 but leaves a child holding its stdout
/// does not wedge quiesce; the report says the output was held open; the hook counts as
/// succeeded (application-consistent).
#[test]
fn background_child_holding_stdout_does_not_wedge() {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "a", FsKind::Ext4);
    let hooks = HookDir::new();
    let pidfile = hooks.root.join("bg.pid");
    hooks.logging(
        "10-leaves-child",
        &format!(
            "echo started\n[ \"$1\" = freeze ] && {{ sleep 1000 & echo $! > '{}'; }}\nexit 0",
            pidfile.display()
        ),
    );
    let out = run_hooks(&fs, &hooks, &[], "true");
    let bg: Option<u32> = std::fs::read_to_string(&pidfile)
        .ok()
        .and_then(|t| t.trim().parse().ok());
    if let Some(pid) = bg {
        let _ = send_signal(pid, libc::SIGKILL);
    }
    let j = check_report(&out, "run", 0);
    check_str(&out, &j, "consistency", "application-consistent");
    let c = call(&out, &j, "10-leaves-child", "freeze");
    ensure(
        c["output_held_open"].as_bool() == Some(true),
        &out,
        "output_held_open should be true for the freeze call",
    );
    ensure(
        c["output"].as_str().is_some_and(|o| o.contains("started")),
        &out,
        "the output written before the exit is kept",
    );
    ensure(
        out.elapsed < Duration::from_secs(60),
        &out,
        "quiesce must not wait for the background child (sleep 1000)",
    );
    ensure(bg.is_some(), &out, "the hook wrote no pid file");
    check_pairing(&out, &hooks.calls(), &["10-leaves-child"]);
    assert_writable(&fs.mount, &out);
}

/// Runs a configuration that must be refused: exit 7, nothing ran, nothing was frozen, and
/// the error contains every word of `words`.
#[track_caller]
fn check_refused(out: &QuiesceOutput, hooks: &HookDir, fs: &TestFs, words: &[&str]) {
    let j = check_report(out, "run", 7);
    check_nothing_frozen_in_report(out, &j);
    let err = j["error"].as_str().unwrap_or("");
    for w in words {
        ensure(
            err.contains(w),
            out,
            format!("the refusal should mention {w:?}: {err:?}"),
        );
    }
    ensure(
        hooks.calls().is_empty(),
        out,
        format!("no hook may run when one is refused: {:?}", hooks.calls()),
    );
    ensure(
        !std::fs::read_to_string(hooks.root.join("snap")).is_ok_and(|s| !s.is_empty()),
        out,
        "the snapshot command must not run",
    );
    assert_writable(&fs.mount, out);
}

/// Acceptance 2 (refusals): a world-writable hook, a group-writable hook, a hook owned by
/// another user, a world-writable (and a sticky) hook directory, a symbolic link in the
/// directory, a hook directory reached through a symbolic link, a pre script under /tmp.
#[test]
fn untrustworthy_hooks_are_refused_before_anything_runs() {
    use std::os::unix::fs::{chown, symlink, PermissionsExt};
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "a", FsKind::Ext4);
    let hooks = HookDir::new();
    hooks.logging("10-good", "");
    let snap = format!("echo ran > '{}'", hooks.root.join("snap").display());
    let mode = |p: &Path, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).expect("chmod")
    };

    let bad = hooks.logging("20-bad", "");
    for (m, who) in [(0o777, "everyone"), (0o775, "its group")] {
        mode(&bad, m);
        let out = run_hooks(&fs, &hooks, &[], &snap);
        check_refused(&out, &hooks, &fs, &["20-bad", who, "chmod go-w"]);
    }
    mode(&bad, 0o755);
    chown(&bad, Some(65534), None).expect("chown nobody");
    let out = run_hooks(&fs, &hooks, &[], &snap);
    check_refused(&out, &hooks, &fs, &["20-bad", "uid 65534", "not root"]);
    std::fs::remove_file(&bad).expect("rm 20-bad");

    for m in [0o777, 0o1777] {
        mode(&hooks.dir, m);
        let out = run_hooks(&fs, &hooks, &[], &snap);
        check_refused(
            &out,
            &hooks,
            &fs,
            &[&hooks.dir.to_string_lossy(), "writable by"],
        );
    }
    mode(&hooks.dir, 0o755);

    let real = hooks.outside("real-hook", &hooks.log_line("real", ""));
    let link = hooks.dir.join("15-link");
    symlink(&real, &link).expect("symlink");
    let out = run_hooks(&fs, &hooks, &[], &snap);
    check_refused(&out, &hooks, &fs, &["15-link", "symbolic link"]);
    std::fs::remove_file(&link).expect("rm link");

    let dir_link = hooks.root.join("hooks-link");
    symlink(&hooks.dir, &dir_link).expect("symlink dir");
    let out = Quiesce::sub("run")
        .args(["--json", "--timeout", "30"])
        .arg(format!("--hook-dir={}", dir_link.display()))
        .mount(&fs.mount)
        .args(["--", "sh", "-c", &snap])
        .run(RUN);
    check_refused(&out, &hooks, &fs, &["hooks-link", "symbolic link"]);

    // /tmp is world-writable: a pre script there is refused, naming /tmp.
    let in_tmp = scratch.path("pre.sh");
    std::fs::write(&in_tmp, "#!/bin/sh\nexit 0\n").expect("write");
    mode(&in_tmp, 0o755);
    let out = Quiesce::sub("run")
        .args(["--json", "--timeout", "30"])
        .arg(format!("--pre-script={}", in_tmp.display()))
        .mount(&fs.mount)
        .args(["--", "sh", "-c", &snap])
        .run(RUN);
    check_refused(&out, &hooks, &fs, &["/tmp", "writable by", "everyone"]);

    // With everything fixed, the good hook runs.
    let out = run_hooks(&fs, &hooks, &[], &snap);
    let j = check_report(&out, "run", 0);
    check_str(&out, &j, "consistency", "application-consistent");
    ensure(
        hooks.calls() == ["10-good freeze", "10-good thaw"],
        &out,
        format!("calls {:?}", hooks.calls()),
    );
}

/// Acceptance 3: with --require-app-consistent, a hook failing before the freeze stops
/// everything: nothing is frozen, the hooks that got `freeze` (the failing one included) get
/// `freeze-failed` in reverse order, later hooks never run, exit 19. The `freeze-failed`
/// calls find the filesystem writable.
fn require_app_consistent_stops_on_a_failing_hook(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "a", kind);
    let hooks = HookDir::new();
    let log = hooks.log.clone();
    let check = |n: &str| probe(&fs.mount, n, &format!("{n} $1"), &log, 50);
    hooks.logging("10-ok", &check("10-ok"));
    hooks.logging(
        "20-fails",
        &format!(
            "{}\n[ \"$1\" = freeze ] && exit 4\nexit 0",
            check("20-fails")
        ),
    );
    hooks.logging("30-never", "");
    let post = hooks.outside("post", &hooks.log_line("post", ""));
    let snap = format!("echo ran > '{}'", hooks.root.join("snap").display());
    let out = run_hooks(
        &fs,
        &hooks,
        &[
            "--require-app-consistent",
            &format!("--post-script={}", post.display()),
        ],
        &snap,
    );
    let j = check_report(&out, "run", 19);
    check_str(&out, &j, "consistency", "not-consistent");
    check_nothing_frozen_in_report(&out, &j);
    ensure(
        j["window_us"].is_null(),
        &out,
        "window_us: null (never frozen)",
    );
    check_str(
        &out,
        target(&out, &j, &fs.mount),
        "outcome",
        "not-attempted",
    );
    let msg = j["message"].as_str().unwrap_or("");
    ensure(
        msg.contains("20-fails")
            && msg.contains("exit status 4")
            && msg.contains("nothing was frozen"),
        &out,
        format!("the message should say which hook failed and that nothing was frozen: {msg:?}"),
    );
    let calls = hooks.calls();
    let want = [
        "10-ok freeze",
        "10-ok freeze fs=writable",
        "20-fails freeze",
        "20-fails freeze fs=writable",
        "20-fails freeze-failed",
        "20-fails freeze-failed fs=writable",
        "10-ok freeze-failed",
        "10-ok freeze-failed fs=writable",
        "post freeze-failed",
    ];
    ensure(
        calls == want,
        &out,
        format!("call log {calls:#?}\nshould be {want:#?}"),
    );
    ensure(
        !scratch.path("snap").exists() && !hooks.root.join("snap").exists(),
        &out,
        "the snapshot command must not run",
    );
    assert_writable(&fs.mount, &out);

    // The same with a failing pre script: no directory hook runs at all.
    hooks.clear_calls();
    let pre = hooks.outside("pre", &hooks.log_line("pre", "exit 9"));
    let out = run_hooks(
        &fs,
        &hooks,
        &[
            "--require-app-consistent",
            &format!("--pre-script={}", pre.display()),
            &format!("--post-script={}", post.display()),
        ],
        &snap,
    );
    let j = check_report(&out, "run", 19);
    check_nothing_frozen_in_report(&out, &j);
    ensure(
        hooks.calls() == ["pre freeze", "post freeze-failed"],
        &out,
        format!("calls {:?}", hooks.calls()),
    );
    assert_writable(&fs.mount, &out);
}

/// Every `freeze` gets `freeze-failed` when the freeze fails (another holder's freeze: 15)
/// and when the deadline fires (13).
#[test]
fn failed_freeze_and_deadline_give_freeze_failed() {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "a", FsKind::Ext4);
    let hooks = HookDir::new();
    hooks.logging("10-a", "");
    hooks.logging("20-b", "");

    fs.fsfreeze();
    let out = run_hooks(&fs, &hooks, &[], "true");
    fs.fsthaw();
    let j = check_report(&out, "run", 15);
    check_str(&out, &j, "consistency", "not-consistent");
    let phase = check_pairing(&out, &hooks.calls(), &["10-a", "20-b"]);
    ensure(phase == "freeze-failed", &out, "after EBUSY: freeze-failed");
    ensure(
        hooks.calls().len() == 4,
        &out,
        format!("calls {:?}", hooks.calls()),
    );
    assert_writable(&fs.mount, &out);

    hooks.clear_calls();
    let out = Quiesce::sub("run")
        .args(["--json", "--timeout", "1"])
        .arg(format!("--hook-dir={}", hooks.dir.display()))
        .mount(&fs.mount)
        .args(["--", "sleep", "30"])
        .run(RUN);
    let j = check_report(&out, "run", 13);
    check_str(&out, &j, "end", "deadline");
    let phase = check_pairing(&out, &hooks.calls(), &["10-a", "20-b"]);
    ensure(
        phase == "freeze-failed",
        &out,
        "after the deadline: freeze-failed",
    );
    assert_writable(&fs.mount, &out);

    // A failed snapshot command: the freeze itself worked, so the hooks get `thaw`.
    hooks.clear_calls();
    let out = run_hooks(&fs, &hooks, &[], "exit 1");
    check_report(&out, "run", 17);
    let phase = check_pairing(&out, &hooks.calls(), &["10-a", "20-b"]);
    ensure(
        phase == "thaw",
        &out,
        "after a failed snapshot command: thaw",
    );
    assert_writable(&fs.mount, &out);
}

/// A hook failing on `thaw`: exit 20, the snapshot still application-consistent, the message
/// says the application may not have resumed.
#[test]
fn failing_thaw_hook_is_exit_20() {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "a", FsKind::Ext4);
    let hooks = HookDir::new();
    hooks.logging("10-a", "[ \"$1\" = thaw ] && exit 5\nexit 0");
    let out = run_hooks(&fs, &hooks, &[], "true");
    let j = check_report(&out, "run", 20);
    check_str(&out, &j, "consistency", "application-consistent");
    ensure(
        j["message"]
            .as_str()
            .is_some_and(|m| m.contains("10-a") && m.contains("may not have resumed")),
        &out,
        "the message names the hook and the risk",
    );
    assert_writable(&fs.mount, &out);
}

/// What a hook gets: a fixed PATH and nothing else of quiesce's environment, stdin from
/// /dev/null, no descriptor but 0-2 (and 3, its own file, for a script), working directory /.
/// A binary hook runs too (exec through the descriptor without a leftover descriptor). Output
/// beyond 64 KiB is cut with a marker.
#[test]
fn hooks_get_a_clean_environment() {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "a", FsKind::Ext4);
    let hooks = HookDir::new();
    hooks.script(
        "10-env",
        "echo \"env:$(env | grep -v '^PWD=' | grep -v '^SHLVL=' | grep -v '^_=' | sort | tr '\\n' ' ')\"\n\
         ls -l /proc/$$/fd\n\
         echo \"stdin:$(readlink /proc/$$/fd/0)\"\n\
         echo \"cwd:$(pwd)\"\n\
         echo \"args:$0 $*\"",
    );
    std::fs::copy("/bin/true", hooks.dir.join("20-binary")).expect("copy /bin/true");
    hooks.script("30-chatty", "head -c 100000 /dev/zero | tr '\\0' x");
    let out = Quiesce::sub("run")
        .args(["--json", "--timeout", "30"])
        .arg(format!("--hook-dir={}", hooks.dir.display()))
        .mount(&fs.mount)
        .args(["--", "true"])
        .run(RUN);
    let j = check_report(&out, "run", 0);
    check_str(&out, &j, "consistency", "application-consistent");
    let o = call(&out, &j, "10-env", "freeze")["output"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    let me = hooks.dir.join("10-env").to_string_lossy().into_owned();
    let line = |k: &str| {
        o.lines()
            .find_map(|l| l.strip_prefix(k))
            .unwrap_or("")
            .trim()
            .to_owned()
    };
    ensure(
        line("env:")
            == format!(
                "LC_ALL=C PATH=/usr/sbin:/usr/bin:/sbin:/bin QUIESCE_HOOK={me} QUIESCE_HOOK_PHASE=freeze"
            ),
        &out,
        format!(
            "the environment should be PATH, LC_ALL, QUIESCE_HOOK, QUIESCE_HOOK_PHASE only: {:?}",
            line("env:")
        ),
    );
    // 0-2, and the script's own file (3, and wherever the shell keeps it open for reading).
    // `ls -l /proc/$$/fd` without a pipeline: a `| sed` would make the shell hold a pipe of
    // its own while ls lists it (a race that showed up as an extra descriptor now and then).
    let fds: Vec<(u32, String)> = o
        .lines()
        .filter_map(|l| {
            let (left, t) = l.split_once(" -> ")?;
            Some((left.rsplit(' ').next()?.parse().ok()?, t.to_owned()))
        })
        .collect();
    ensure(
        fds.iter().any(|(n, _)| *n == 3) && fds.iter().all(|(n, t)| *n <= 2 || *t == me),
        &out,
        format!("a script holds 0-2 and its own file only: {fds:?}"),
    );
    ensure(
        fds.iter()
            .filter(|(n, _)| *n == 1 || *n == 2)
            .all(|(_, t)| t.starts_with("pipe:")),
        &out,
        format!("stdout and stderr go to quiesce's pipe: {fds:?}"),
    );
    ensure(line("stdin:") == "/dev/null", &out, "stdin is /dev/null");
    ensure(line("cwd:") == "/", &out, "the working directory is /");
    ensure(
        line("args:") == "/dev/fd/3 freeze",
        &out,
        format!("argv: {:?}", line("args:")),
    );
    let b = call(&out, &j, "20-binary", "freeze");
    ensure(
        b["succeeded"].as_bool() == Some(true),
        &out,
        "a binary hook runs",
    );
    let c = call(&out, &j, "30-chatty", "freeze");
    ensure(
        c["output_dropped"].as_i64() == Some(100_000 - 65_536),
        &out,
        format!("output_dropped should be {}", 100_000 - 65_536),
    );
    ensure(
        c["output"]
            .as_str()
            .is_some_and(|s| s.starts_with("xxxx") && s.contains("bytes of output dropped")),
        &out,
        "the kept output ends with a marker",
    );
    assert_writable(&fs.mount, &out);
}

/// SIGTERM while a hook hangs before the freeze: the hook's group is killed, nothing is
/// frozen, the hook gets `freeze-failed`, exit 18.
#[test]
fn sigterm_during_a_hook_stops_before_freezing() {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "a", FsKind::Ext4);
    let hooks = HookDir::new();
    hooks.logging("10-hangs", "[ \"$1\" = freeze ] && sleep 1000\nexit 0");
    let mut q = Quiesce::sub("run")
        .args(["--json", "--timeout", "30"])
        .arg(format!("--hook-dir={}", hooks.dir.display()))
        .mount(&fs.mount)
        .args(["--", "true"])
        .spawn();
    let mut started = false;
    for _ in 0..300 {
        if hooks.calls().iter().any(|l| l == "10-hangs freeze") {
            started = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(started, "the hook did not start within 15 s");
    q.signal(libc::SIGTERM);
    let out = q.wait(Duration::from_secs(30));
    let j = check_report(&out, "run", 18);
    check_nothing_frozen_in_report(&out, &j);
    check_str(
        &out,
        call(&out, &j, "10-hangs", "freeze"),
        "end",
        "cancelled",
    );
    ensure(
        hooks.calls() == ["10-hangs freeze", "10-hangs freeze-failed"],
        &out,
        format!("calls {:?}", hooks.calls()),
    );
    assert_writable(&fs.mount, &out);
}

/// An empty hook directory with --require-app-consistent: refused before anything (19).
#[test]
fn require_app_consistent_with_no_hook_is_refused() {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "a", FsKind::Ext4);
    let hooks = HookDir::new();
    let out = run_hooks(&fs, &hooks, &["--require-app-consistent"], "true");
    let j = check_report(&out, "run", 19);
    ensure(
        j["error"]
            .as_str()
            .is_some_and(|e| e.contains("no executable hook")),
        &out,
        "the error says the directory holds no hook",
    );
    assert_writable(&fs.mount, &out);
    // Without the requirement: file-system-consistent, with the reason.
    let out = run_hooks(&fs, &hooks, &[], "true");
    let j = check_report(&out, "run", 0);
    check_str(&out, &j, "consistency", "filesystem-consistent");
    ensure(
        j["consistency_reason"]
            .as_str()
            .is_some_and(|r| r.contains("no hook ran before the freeze")),
        &out,
        "the reason says no hook ran",
    );
}

/// `freeze --stdin` with hooks: the hooks run around the handshake.
#[test]
fn freeze_stdin_with_hooks() {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "a", FsKind::Ext4);
    let hooks = HookDir::new();
    hooks.logging("10-a", "");
    let mut q = Quiesce::sub("freeze")
        .args(["--stdin", "--json", "--timeout", "30"])
        .arg(format!("--hook-dir={}", hooks.dir.display()))
        .mount(&fs.mount)
        .spawn();
    assert!(
        q.wait_for_line("frozen", Duration::from_secs(30)),
        "no `frozen` line"
    );
    assert_frozen(&fs, &"after `frozen`");
    let during = hooks.calls();
    q.send_line("thaw");
    let out = q.wait(Duration::from_secs(30));
    let j = check_report(&out, "freeze", 0);
    check_str(&out, &j, "consistency", "application-consistent");
    ensure(
        during == ["10-a freeze"],
        &out,
        format!("while frozen only `freeze` had run: {during:?}"),
    );
    ensure(
        hooks.calls() == ["10-a freeze", "10-a thaw"],
        &out,
        format!("calls {:?}", hooks.calls()),
    );
    assert_writable(&fs.mount, &out);
}

per_kind!(
    hooks_run_in_order_around_the_freeze,
    failing_hook_falls_back_to_filesystem_consistent,
    hanging_hook_is_killed_with_its_group,
    require_app_consistent_stops_on_a_failing_hook,
);

/// Installs `examples/hooks/NAME` as `hooks.d/AS` with `KEY=value` settings replaced.
fn install_example(hooks: &HookDir, name: &str, as_name: &str, settings: &[(&str, String)]) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/hooks")
        .join(name);
    let text = std::fs::read_to_string(&src).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
    let mut replaced = 0;
    let body: Vec<String> = text
        .lines()
        .map(|l| {
            for (k, v) in settings {
                if l.starts_with(&format!("{k}=")) {
                    replaced += 1;
                    return format!("{k}='{v}'");
                }
            }
            l.to_owned()
        })
        .collect();
    assert_eq!(
        replaced,
        settings.len(),
        "{}: settings not found",
        src.display()
    );
    // The body without its `#!/bin/sh` line (HookDir::script adds it).
    hooks.script(as_name, &body[1..].join("\n"));
}

/// The process group `pgid` has no member left (zombies aside).
fn group_gone(pgid: u32) -> bool {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .all(|e| {
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            // pid (comm) state ppid pgrp ...
            let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
            let f: Vec<&str> = after.split_whitespace().collect();
            !(f.len() > 2 && f[2] == pgid.to_string() && f[0] != "Z")
        })
}

/// The MySQL/MariaDB example hook, with a stand-in client (no server needed): `freeze` leaves
/// a session holding the "lock" while frozen, `thaw` ends it; with a client that cannot
/// connect, `freeze` fails cleanly (file-system-consistent, reason names the hook) and leaves
/// nothing behind.
#[test]
fn mysql_example_hook_holds_and_releases_its_session() {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "a", FsKind::Ext4);
    let hooks = HookDir::new();
    let state = hooks.root.join("mysql-state");
    // Prints the marker when asked for it, then reads until its input ends (the held session).
    let client = hooks.outside(
        "fake-mysql",
        "while read -r line; do case \"$line\" in *quiesce-locked*) echo quiesce-locked;; esac; done",
    );
    let settings = |client: &Path| {
        vec![
            ("MYSQL", client.to_string_lossy().into_owned()),
            ("STATE", state.to_string_lossy().into_owned()),
            ("LOCK_WAIT", "10".to_string()),
        ]
    };
    install_example(&hooks, "mysql.sh", "40-mysql", &settings(&client));
    let pgid_file = state.join("pgid");
    let snap = format!(
        "if kill -0 \"$(cat '{p}')\" 2>/dev/null; then echo 'snapshot session=held' >> '{l}'; else echo 'snapshot session=gone' >> '{l}'; fi",
        p = pgid_file.display(),
        l = hooks.log.display()
    );
    let out = run_hooks(&fs, &hooks, &["--require-app-consistent"], &snap);
    let j = check_report(&out, "run", 0);
    check_str(&out, &j, "consistency", "application-consistent");
    ensure(
        hooks.calls() == ["snapshot session=held"],
        &out,
        format!(
            "the session must be held during the snapshot: {:?}",
            hooks.calls()
        ),
    );
    let freeze_out = call(&out, &j, "40-mysql", "freeze")["output"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    let pgid: Option<u32> = freeze_out
        .split("(session ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .and_then(|n| n.parse().ok());
    ensure(pgid.is_some(), &out, "the freeze output names the session");
    let pgid = pgid.unwrap_or(0);
    let mut gone = false;
    for _ in 0..50 {
        if group_gone(pgid) {
            gone = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    ensure(gone, &out, format!("the session {pgid} must end on `thaw`"));
    ensure(!pgid_file.exists(), &out, "thaw removes the pid file");

    // A client that cannot connect: the hook fails, nothing is held, the fallback names it.
    install_example(
        &hooks,
        "mysql.sh",
        "40-mysql",
        &settings(Path::new("/nonexistent/mysql")),
    );
    let out = run_hooks(&fs, &hooks, &[], "true");
    let j = check_report(&out, "run", 0);
    check_str(&out, &j, "consistency", "filesystem-consistent");
    ensure(
        j["consistency_reason"]
            .as_str()
            .is_some_and(|r| r.contains("40-mysql")),
        &out,
        "the reason names the MySQL hook",
    );
    ensure(
        call(&out, &j, "40-mysql", "freeze")["output"]
            .as_str()
            .is_some_and(|o| o.contains("not granted")),
        &out,
        "the hook says the lock was not granted",
    );
    check_str(&out, call(&out, &j, "40-mysql", "thaw"), "end", "exited");
    ensure(!pgid_file.exists(), &out, "nothing is left behind");
    assert_writable(&fs.mount, &out);
}

/// Without hook options nothing changes: file-system-consistent, `hooks` empty, and the
/// reason says no hooks were configured.
#[test]
fn without_hooks_the_report_says_so() {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "a", FsKind::Ext4);
    let out = Quiesce::sub("run")
        .args(["--json", "--timeout", "30"])
        .mount(&fs.mount)
        .args(["--", "true"])
        .run(RUN);
    let j = check_report(&out, "run", 0);
    check_str(&out, &j, "consistency", "filesystem-consistent");
    check_str(
        &out,
        &j,
        "consistency_reason",
        "no application hooks were configured",
    );
    ensure(j["hooks"].items().is_empty(), &out, "hooks: []");
    ensure(
        j["message"]
            .as_str()
            .is_some_and(|m| m.ends_with("thawed: file-system-consistent")),
        &out,
        "the message is the one without hooks",
    );
    assert_writable(&fs.mount, &out);
}
