//! The C ABI from C: the agent example (examples/c/agent.c) freezes and thaws real loop-mounted
//! filesystems, also under AddressSanitizer/UBSan and under valgrind; no malloc from session
//! init to cleanup (--wrap=malloc); SIGKILL of the C program while frozen leaves nothing
//! frozen; a panic inside an export poisons the session and thaw still works; the emergency
//! thaw; bad input; the application hooks (issue 5) through the C ABI: order around the
//! freeze, application consistency, the fallback and its reason, required consistency,
//! refusal, and exactly one `thaw` or `freeze-failed` per `freeze` whatever the caller does
//! (tests/c/hooks.c), also a caller of the first, smaller `quiesce_config`.

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use quiesce_testkit::{
    assert_frozen, assert_writable, compile_c, compile_c_static, ffi_lib, mkfs, per_kind,
    require_root, run_timeout, start_write_probe, FsKind, HookDir, LoopDisk, Mount, Quiesce,
    QuiesceOutput, Scratch, TestFs,
};

const AGENT: &str = "examples/c/agent.c";

fn agent() -> PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| compile_c_static("quiesce-agent", &[AGENT], &[]))
        .clone()
}

/// Runs `program` (an agent build) on `fs` with a snapshot command that waits for a line on
/// stdin: checks that a write blocks while frozen and completes after the acknowledgement.
fn freeze_write_thaw(program: &std::path::Path, wrapper: &[&str], fs: &TestFs) -> QuiesceOutput {
    let mut q = Quiesce::new()
        .program(program)
        .wrapper(wrapper)
        .args(["-t", "60000"])
        .mount(&fs.mount)
        .args(["--", "sh", "-c", "read line"])
        .spawn();
    assert!(
        q.wait_for_line("frozen", Duration::from_secs(60)),
        "the agent did not freeze: {}",
        q.stdout_so_far()
    );
    let mut probe = start_write_probe(&fs.mount);
    assert!(
        !probe.completed_within(Duration::from_millis(500)),
        "a write completed on {} while the agent said frozen",
        fs.mount.display()
    );
    q.send_line("snapshot taken");
    let out = q.wait(Duration::from_secs(60));
    assert!(
        probe.wait(Duration::from_secs(10)),
        "the write did not complete after the thaw\n{out}"
    );
    out
}

fn agent_freezes_and_thaws(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "c", kind);
    // The pre-sync runs only when something is dirty: give it something to write back.
    std::fs::write(fs.path("dirty"), vec![7u8; 8 << 20]).unwrap();
    let out = freeze_write_thaw(&agent(), &[], &fs);
    out.assert_code(0, "acknowledged snapshot");
    assert!(
        out.stdout.contains(&format!(
            "freeze 1: {} ({}",
            fs.mount.display(),
            kind.fs_type()
        )),
        "{out}"
    );
    assert!(
        out.stdout.contains("status: ok; filesystem-consistent"),
        "{out}"
    );
    assert!(out.stdout.contains(": thawed (freeze"), "{out}");
    // Pre-sync is on by default (in the freezers; QUIESCE_FLAG_NO_PRESYNC turns it off).
    let presync_ms: f64 = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("pre-sync: "))
        .and_then(|v| v.trim_end_matches(" ms").parse().ok())
        .unwrap_or_else(|| panic!("no pre-sync line:\n{out}"));
    assert!(presync_ms > 0.0, "pre-sync did not run:\n{out}");
}

fn agent_sigkill_leaves_nothing_frozen(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "k", kind);
    // The snapshot command kills the agent (its parent) while everything is frozen.
    let mut q = Quiesce::new()
        .program(&agent())
        .args(["-t", "60000"])
        .mount(&fs.mount)
        .args(["--", "sh", "-c", "read line; kill -KILL $PPID"])
        .spawn();
    assert!(
        q.wait_for_line("frozen", Duration::from_secs(30)),
        "{}",
        q.stdout_so_far()
    );
    assert_frozen(&fs, &"the agent said frozen");
    q.send_line("kill it");
    let out = q.wait(Duration::from_secs(30));
    let killed = Instant::now();
    assert_eq!(out.status.signal(), Some(libc::SIGKILL), "{out}");
    assert_writable(&fs.mount, &out);
    println!(
        "{}: writable {:?} after the agent died by SIGKILL (60 s deadline)",
        kind.fs_type(),
        killed.elapsed()
    );
}

per_kind!(agent_freezes_and_thaws, agent_sigkill_leaves_nothing_frozen);

#[test]
fn agent_runs_clean_under_asan_and_ubsan() {
    require_root();
    let asan = compile_c_static(
        "quiesce-agent-asan",
        &[AGENT],
        &[
            "-fsanitize=address,undefined",
            "-fno-sanitize-recover=all",
            "-fno-omit-frame-pointer",
        ],
    );
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "asan", FsKind::Ext4);
    let out = freeze_write_thaw(
        &asan,
        &[
            "env",
            "ASAN_OPTIONS=detect_leaks=1:abort_on_error=0",
            "UBSAN_OPTIONS=print_stacktrace=1",
        ],
        &fs,
    );
    out.assert_code(0, "acknowledged snapshot under ASan/UBSan");
    for bad in ["AddressSanitizer", "LeakSanitizer", "runtime error"] {
        assert!(!out.stderr.contains(bad), "{bad} reported:\n{out}");
    }
}

#[test]
fn agent_runs_clean_under_valgrind() {
    require_root();
    let lib = ffi_lib();
    let dynamic = compile_c(
        "quiesce-agent-dynamic",
        &[AGENT],
        &[
            &format!("-L{}", lib.dir().display()),
            &format!("-Wl,-rpath,{}", lib.dir().display()),
            "-lquiesce",
        ],
    );
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "vg", FsKind::Ext4);
    let out = freeze_write_thaw(
        &dynamic,
        &[
            "valgrind",
            "-q",
            "--error-exitcode=99",
            "--leak-check=full",
            "--errors-for-leak-kinds=definite,indirect",
            "--child-silent-after-fork=yes",
        ],
        &fs,
    );
    out.assert_code(
        0,
        "acknowledged snapshot under valgrind (99: valgrind found errors)",
    );
    assert!(
        out.stdout.contains("status: ok; filesystem-consistent"),
        "{out}"
    );
}

#[test]
fn no_malloc_from_init_to_cleanup() {
    require_root();
    let lib = ffi_lib();
    // The archive really calls malloc (through Rust's allocator), so the wrap can see it.
    // (readelf, not nm: GNU nm cannot read objects that carry LLVM bitcode.)
    let syms = run_timeout(
        Command::new("readelf").arg("-Ws").arg(&lib.staticlib),
        Duration::from_secs(60),
    )
    .expect("readelf");
    assert!(
        String::from_utf8_lossy(&syms.stdout)
            .lines()
            .any(|l| l.contains(" UND ") && l.trim_end().ends_with(" malloc")),
        "libquiesce.a has no undefined malloc: the wrap test would prove nothing"
    );
    let prog = compile_c_static(
        "no_malloc",
        &["tests/c/no_malloc.c"],
        &["-Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=posix_memalign,--wrap=aligned_alloc"],
    );
    let scratch = Scratch::new();
    let a = TestFs::new(&scratch, "e", FsKind::Ext4);
    let b = TestFs::new(&scratch, "x", FsKind::Xfs);
    let out = Quiesce::new()
        .program(&prog)
        .mount(&a.mount)
        .mount(&b.mount)
        .run(Duration::from_secs(60));
    out.assert_code(0, "0 allocations, frozen and thawed, consistent");
    assert!(out.stdout.contains("allocations 0"), "{out}");
    assert!(out.stdout.contains("targets 2"), "{out}");
    assert!(
        out.stdout
            .contains("record while frozen: 2 targets; after cleanup: gone"),
        "the session record, written without malloc, lists both targets: {out}"
    );
    assert_writable(&a.mount, &out);
    assert_writable(&b.mount, &out);
}

/// The same with a selection by disk: resolving the disks and following the block-device graph
/// allocate nothing either (a loop disk with an ext4 and an xfs partition).
#[test]
fn no_malloc_when_selecting_by_disk() {
    require_root();
    let prog = compile_c_static(
        "no_malloc",
        &["tests/c/no_malloc.c"],
        &["-Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=posix_memalign,--wrap=aligned_alloc"],
    );
    let scratch = Scratch::new();
    let disk = LoopDisk::new(&scratch, "disk", 400);
    let p1 = disk.add_partition(1, 2048, 64 << 11);
    let p2 = disk.add_partition(2, 2048 + (64 << 11), 320 << 11);
    mkfs("mkfs.ext4", &["-q", "-F"], &[&p1]);
    mkfs("mkfs.xfs", &["-q", "-f"], &[&p2]);
    let m1 = Mount::new(&p1, scratch.path("p1"));
    let m2 = Mount::new(&p2, scratch.path("p2"));
    let out = Quiesce::new()
        .program(&prog)
        .arg("--targets=2")
        .arg(format!("--disk={}", disk.dev.display()))
        .run(Duration::from_secs(60));
    out.assert_code(0, "0 allocations selecting by disk");
    assert!(out.stdout.contains("allocations 0"), "{out}");
    assert!(out.stdout.contains("targets 2"), "{out}");
    assert_writable(&m1.at, &out);
    assert_writable(&m2.at, &out);
}

fn panic_program() -> PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| compile_c_static("panic", &["tests/c/panic.c"], &[]))
        .clone()
}

fn panic_poisons_and_thaw_still_works(point: &str) {
    require_root();
    let prog = panic_program();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "p", FsKind::Ext4);
    let mut q = Quiesce::new()
        .program(&prog)
        .arg(point)
        .mount(&fs.mount)
        .spawn();
    assert!(
        q.wait_for_line("poisoned", Duration::from_secs(30)),
        "no panic caught: {}",
        q.stdout_so_far()
    );
    // The panic came while everything was frozen, and nothing thawed behind our back.
    assert_frozen(&fs, &"after the caught panic");
    q.send_line("go on");
    let out = q.wait(Duration::from_secs(30));
    out.assert_code(0, "every check of tests/c/panic.c");
    assert!(out.stdout.contains("thawed: thawed"), "{out}");
    assert!(out.stderr.contains("caught: "), "{out}");
    assert!(
        out.stderr.contains("injected panic"),
        "the panic message is printed: {out}"
    );
    assert_writable(&fs.mount, &out);
}

#[test]
fn panic_with_hooks_still_gives_each_hook_freeze_failed_once() {
    require_root();
    let prog = panic_program();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "ph", FsKind::Ext4);
    let hooks = HookDir::new();
    hooks.logging("10-app", "");
    let mut q = Quiesce::new()
        .program(&prog)
        .arg("frozen")
        .mount(&fs.mount)
        .arg(hook_dir_arg(&hooks))
        .spawn();
    assert!(
        q.wait_for_line("poisoned", Duration::from_secs(30)),
        "no panic caught: {}",
        q.stdout_so_far()
    );
    assert_frozen(&fs, &"after the caught panic");
    assert_calls(&hooks, &["10-app freeze"], &q.stdout_so_far());
    q.send_line("go on");
    let out = q.wait(Duration::from_secs(30));
    out.assert_code(0, "every check of tests/c/panic.c");
    // Poisoned: not to be trusted, so `freeze-failed`, once (thaw, then cleanup twice).
    assert_calls(&hooks, &["10-app freeze", "10-app freeze-failed"], &out);
    assert_writable(&fs.mount, &out);
}

#[test]
fn panic_after_freeze_poisons_and_thaw_still_works() {
    panic_poisons_and_thaw_still_works("frozen");
}

#[test]
fn panic_in_thaw_poisons_and_thaw_still_works() {
    panic_poisons_and_thaw_still_works("thaw");
}

#[test]
fn emergency_thaw_needs_no_session() {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "t", FsKind::Xfs);
    fs.fsfreeze();
    let out = Quiesce::new()
        .program(&agent())
        .arg("--thaw")
        .mount(&fs.mount)
        .run(Duration::from_secs(30));
    out.assert_code(0, "thawed");
    assert!(out.stdout.contains("thawed 1 of 1: ok"), "{out}");
    assert_writable(&fs.mount, &out);
    // Not frozen: fine, nothing thawed.
    let again = Quiesce::new()
        .program(&agent())
        .arg("--thaw")
        .mount(&fs.mount)
        .run(Duration::from_secs(30));
    again.assert_code(0, "not frozen is fine");
    assert!(again.stdout.contains("thawed 0 of 1: ok"), "{again}");
    // A directory inside the filesystem is refused: its filesystem is not thawed by accident.
    let inside = fs.path("dir");
    std::fs::create_dir_all(&inside).unwrap();
    fs.fsfreeze();
    let refused = Quiesce::new()
        .program(&agent())
        .arg("--thaw")
        .mount(&inside)
        .run(Duration::from_secs(30));
    refused.assert_code(3, "not a mount point");
    assert_frozen(&fs, &refused);
    fs.fsthaw();
}

#[test]
fn bad_input_is_named_and_nothing_is_frozen() {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "b", FsKind::Ext4);
    let missing = fs.mount.join("nope");
    let out = Quiesce::new()
        .program(&agent())
        .mount(&fs.mount)
        .mount(&missing)
        .args(["--", "true"])
        .run(Duration::from_secs(30));
    out.assert_code(3, "bad target");
    assert!(
        out.stderr
            .contains(&format!("'{}' does not exist", missing.display())),
        "{out}"
    );
    assert!(out.stderr.contains("errno 2"), "{out}");
    assert!(!out.stdout.contains("frozen"), "{out}");
    let inside = fs.path("sub");
    std::fs::create_dir_all(&inside).unwrap();
    let out = Quiesce::new()
        .program(&agent())
        .mount(&inside)
        .args(["--", "true"])
        .run(Duration::from_secs(30));
    out.assert_code(3, "not a mount point");
    assert!(
        out.stderr.contains(&format!(
            "it is a directory inside the filesystem mounted at {}",
            fs.mount.display()
        )),
        "{out}"
    );
    let out = Quiesce::new()
        .program(&agent())
        .args(["-t", "0"])
        .mount(&fs.mount)
        .args(["--", "true"])
        .run(Duration::from_secs(30));
    out.assert_code(2, "usage");
    assert_writable(&fs.mount, &out);
}

// ---- hooks ----

/// A shell fragment: starts a write of `MOUNT/.probe-TAG` in the background and appends
/// `LABEL fs=writable` to `log` if it completes within 5 s, `LABEL fs=frozen` otherwise.
fn probe(mount: &std::path::Path, tag: &str, label: &str, log: &std::path::Path) -> String {
    format!(
        "dd if=/dev/zero of='{m}/.probe-{tag}' bs=4096 count=1 status=none </dev/null >/dev/null 2>&1 &\n\
         p=$!; i=0\n\
         while kill -0 $p 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done\n\
         if kill -0 $p 2>/dev/null; then s=frozen; else s=writable; fi\n\
         echo \"{label} fs=$s\" >> '{l}'",
        m = mount.display(),
        l = log.display()
    )
}

/// A hook directory with logging hooks `names` (each also probes the filesystem), and
/// `failing` hooks that log, probe and exit 3 on `freeze`.
fn hook_dir(fs: &TestFs, names: &[&str], failing: &[&str]) -> HookDir {
    let hooks = HookDir::new();
    let log = hooks.log.clone();
    for name in names {
        hooks.logging(name, &probe(&fs.mount, name, &format!("{name} $1"), &log));
    }
    for name in failing {
        let body = format!(
            "{}\n[ \"$1\" = freeze ] && exit 3\nexit 0",
            probe(&fs.mount, name, &format!("{name} $1"), &log)
        );
        hooks.logging(name, &body);
    }
    hooks
}

/// The snapshot command of the agent: logs `snapshot` and whether the filesystem is frozen.
fn snapshot_cmd(fs: &TestFs, hooks: &HookDir) -> String {
    format!(
        "echo snapshot >> '{}'\n{}",
        hooks.log.display(),
        probe(&fs.mount, "snap", "snapshot", &hooks.log).replace("-lt 50", "-lt 10")
    )
}

/// `--hook-dir=DIR` (one argument, so the fixtures' guard does not take DIR for a mount).
fn hook_dir_arg(hooks: &HookDir) -> String {
    format!("--hook-dir={}", hooks.dir.display())
}

#[track_caller]
fn assert_calls(hooks: &HookDir, want: &[&str], out: &dyn std::fmt::Display) {
    let calls = hooks.calls();
    assert!(
        calls == want,
        "hook call log {calls:#?}\nshould be {want:#?}\n{out}"
    );
}

#[test]
fn agent_hooks_run_around_the_freeze_and_make_it_application_consistent() {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "h", FsKind::Ext4);
    let hooks = hook_dir(&fs, &["10-first", "20-second"], &[]);
    let pre = hooks.outside("pre", &hooks.log_line("pre", ""));
    let post = hooks.outside(
        "post",
        &hooks.log_line("post", &probe(&fs.mount, "post", "post $1", &hooks.log)),
    );
    let out = Quiesce::new()
        .program(&agent())
        .args(["-t", "60000"])
        .arg(hook_dir_arg(&hooks))
        .arg(format!("--pre-script={}", pre.display()))
        .arg(format!("--post-script={}", post.display()))
        .mount(&fs.mount)
        .args(["--", "sh", "-c", &snapshot_cmd(&fs, &hooks)])
        .run(Duration::from_secs(120));
    out.assert_code(0, "application-consistent snapshot");
    assert!(
        out.stdout.contains("status: ok; application-consistent"),
        "{out}"
    );
    assert!(out.stdout.contains("hooks: 6 calls, 0 failed"), "{out}");
    assert!(!out.stdout.contains("consistency reason"), "{out}");
    assert_calls(
        &hooks,
        &[
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
        ],
        &out,
    );
    assert_writable(&fs.mount, &out);
}

#[test]
fn agent_failing_hook_falls_back_to_filesystem_consistent_with_the_reason() {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "f", FsKind::Ext4);
    let hooks = hook_dir(&fs, &["10-ok", "30-later"], &["20-fails"]);
    let out = Quiesce::new()
        .program(&agent())
        .args(["-t", "60000"])
        .arg(hook_dir_arg(&hooks))
        .mount(&fs.mount)
        .args(["--", "sh", "-c", &snapshot_cmd(&fs, &hooks)])
        .run(Duration::from_secs(120));
    out.assert_code(0, "file-system-consistent: a failed hook is no failure");
    assert!(
        out.stdout.contains("status: ok; filesystem-consistent"),
        "{out}"
    );
    assert!(
        out.stdout.contains(
            "consistency reason: the hook 20-fails failed before the freeze (exit status 3)"
        ),
        "{out}"
    );
    assert!(out.stdout.contains("hooks: 6 calls, 1 failed"), "{out}");
    // Without required consistency the later hooks still run, and the snapshot is taken.
    assert_calls(
        &hooks,
        &[
            "10-ok freeze",
            "10-ok freeze fs=writable",
            "20-fails freeze",
            "20-fails freeze fs=writable",
            "30-later freeze",
            "30-later freeze fs=writable",
            "snapshot",
            "snapshot fs=frozen",
            "30-later thaw",
            "30-later thaw fs=writable",
            "20-fails thaw",
            "20-fails thaw fs=writable",
            "10-ok thaw",
            "10-ok thaw fs=writable",
        ],
        &out,
    );
    assert_writable(&fs.mount, &out);
}

#[test]
fn agent_hook_failing_after_the_thaw_is_thaw_hook_failed() {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "t", FsKind::Ext4);
    let hooks = hook_dir(&fs, &["10-ok"], &[]);
    hooks.logging("20-thaw-fails", "[ \"$1\" = thaw ] && exit 4\nexit 0");
    let out = Quiesce::new()
        .program(&agent())
        .args(["-t", "60000"])
        .arg(hook_dir_arg(&hooks))
        .mount(&fs.mount)
        .args(["--", "sh", "-c", &snapshot_cmd(&fs, &hooks)])
        .run(Duration::from_secs(120));
    out.assert_code(20, "thaw-hook-failed");
    assert!(
        out.stderr.contains(
            "quiesce-agent: thaw: froze 1 filesystem, snapshot acknowledged, thawed: application-consistent (the hooks succeeded); the hook 20-thaw-fails failed on `thaw` (exit status 4): the application may not have resumed [thaw-hook-failed"
        ),
        "{out}"
    );
    // The level of the snapshot is not changed by a failure after the thaw.
    assert!(
        out.stdout
            .contains("status: thaw-hook-failed; application-consistent"),
        "{out}"
    );
    assert!(out.stdout.contains("hooks: 4 calls, 1 failed"), "{out}");
    assert!(out.stdout.contains(": thawed (freeze"), "{out}");
    // The later hooks still get their call.
    assert_calls(
        &hooks,
        &[
            "10-ok freeze",
            "10-ok freeze fs=writable",
            "20-thaw-fails freeze",
            "snapshot",
            "snapshot fs=frozen",
            "20-thaw-fails thaw",
            "10-ok thaw",
            "10-ok thaw fs=writable",
        ],
        &out,
    );
    assert_writable(&fs.mount, &out);
}

#[test]
fn agent_required_consistency_stops_before_anything_is_frozen() {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "r", FsKind::Ext4);
    let hooks = hook_dir(&fs, &["10-ok", "30-never"], &["20-fails"]);
    let out = Quiesce::new()
        .program(&agent())
        .args(["-t", "60000", "--require-app-consistent"])
        .arg(hook_dir_arg(&hooks))
        .mount(&fs.mount)
        .args(["--", "sh", "-c", &snapshot_cmd(&fs, &hooks)])
        .run(Duration::from_secs(120));
    out.assert_code(19, "not-app-consistent");
    assert!(
        out.stderr.contains(
            "application consistency is required, but the hook 20-fails failed before the freeze (exit status 3): nothing was frozen"
        ),
        "{out}"
    );
    assert!(out.stderr.contains("[not-app-consistent"), "{out}");
    assert!(!out.stdout.contains("\nfrozen\n"), "{out}");
    assert!(out.stdout.contains(": not-attempted (freeze"), "{out}");
    assert!(
        out.stdout
            .contains("status: not-app-consistent; not-consistent"),
        "{out}"
    );
    assert!(out.stdout.contains("hooks: 4 calls, 1 failed"), "{out}");
    // The snapshot never ran; 30-never never got `freeze`; the others got `freeze-failed`
    // in reverse order, with the filesystem writable all along.
    assert_calls(
        &hooks,
        &[
            "10-ok freeze",
            "10-ok freeze fs=writable",
            "20-fails freeze",
            "20-fails freeze fs=writable",
            "20-fails freeze-failed",
            "20-fails freeze-failed fs=writable",
            "10-ok freeze-failed",
            "10-ok freeze-failed fs=writable",
        ],
        &out,
    );
    assert_writable(&fs.mount, &out);
}

#[test]
fn agent_refuses_a_world_writable_hook_before_anything_runs() {
    use std::os::unix::fs::PermissionsExt;
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "w", FsKind::Ext4);
    let hooks = hook_dir(&fs, &["10-ok"], &[]);
    let bad = hooks.logging("20-writable", "");
    std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o757)).unwrap();
    let out = Quiesce::new()
        .program(&agent())
        .args(["-t", "60000"])
        .arg(hook_dir_arg(&hooks))
        .mount(&fs.mount)
        .args(["--", "sh", "-c", &snapshot_cmd(&fs, &hooks)])
        .run(Duration::from_secs(120));
    out.assert_code(7, "hook-refused");
    assert!(
        out.stderr.contains("quiesce-agent: plan: hook refused: "),
        "{out}"
    );
    assert!(out.stderr.contains(&bad.display().to_string()), "{out}");
    assert!(out.stderr.contains("chmod go-w"), "the fix: {out}");
    assert!(out.stderr.contains("[hook-refused"), "{out}");
    assert!(!out.stdout.contains("frozen"), "{out}");
    assert_calls(&hooks, &[], &out);
    // A pre script where everyone can write (the scratch directory under /tmp): refused too.
    let tmp_pre = scratch.path("pre.sh");
    std::fs::write(&tmp_pre, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&tmp_pre, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = Quiesce::new()
        .program(&agent())
        .args(["-t", "60000"])
        .arg(format!("--pre-script={}", tmp_pre.display()))
        .mount(&fs.mount)
        .args(["--", "true"])
        .run(Duration::from_secs(120));
    out.assert_code(7, "hook-refused");
    assert!(out.stderr.contains("hook refused: "), "{out}");
    assert!(!out.stdout.contains("frozen"), "{out}");
    assert_writable(&fs.mount, &out);
}

fn hooks_program() -> PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| compile_c_static("hooks", &["tests/c/hooks.c"], &[]))
        .clone()
}

/// `tests/c/hooks.c MODE --hook-dir=DIR MOUNT`.
fn hooks_c(program: &std::path::Path, mode: &str, hooks: &HookDir, fs: &TestFs) -> Quiesce {
    Quiesce::new()
        .program(program)
        .arg(mode)
        .arg(hook_dir_arg(hooks))
        .mount(&fs.mount)
}

/// `quiesce_cancel()` from a SIGALRM handler while a hook before the freeze hangs (its
/// timeout: 60 s): `quiesce_freeze()` returns `QUIESCE_CANCELLED` promptly, the hook killed
/// and given `freeze-failed`, nothing frozen.
#[test]
fn cancel_from_a_signal_handler_ends_a_hanging_hook() {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "k", FsKind::Ext4);
    let hooks = HookDir::new();
    hooks.logging("10-hang", "[ \"$1\" = freeze ] && exec sleep 60\nexit 0");
    let out =
        hooks_c(&hooks_program(), "cancel-from-signal", &hooks, &fs).run(Duration::from_secs(50));
    out.assert_code(0, "every check of tests/c/hooks.c");
    assert!(out.stdout.contains("freeze cancelled"), "{out}");
    assert!(
        out.stdout
            .contains("cancelled by the caller (quiesce_cancel) before the freeze"),
        "{out}"
    );
    assert!(out.stdout.contains("cleaned up"), "{out}");
    assert!(
        out.stdout.contains("hook call 0: 10-hang hook-dir freeze cancelled exit -1 signal 0 errno 0 succeeded 0 timed_out 0 (cancelled"),
        "{out}"
    );
    assert!(
        out.stdout
            .contains("hook call 1: 10-hang hook-dir freeze-failed exited exit 0"),
        "{out}"
    );
    assert_calls(&hooks, &["10-hang freeze", "10-hang freeze-failed"], &out);
    assert_writable(&fs.mount, &out);
}

#[test]
fn cleanup_without_thaw_gives_each_hook_its_thaw_exactly_once() {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "c", FsKind::Ext4);
    let hooks = HookDir::new();
    hooks.logging("10-app", "");
    let mut q = hooks_c(&hooks_program(), "cleanup-frozen", &hooks, &fs).spawn();
    assert!(
        q.wait_for_line("frozen", Duration::from_secs(60)),
        "{}",
        q.stdout_so_far()
    );
    assert_frozen(&fs, &"the program said frozen");
    assert_calls(&hooks, &["10-app freeze"], &q.stdout_so_far());
    q.send_line("go on");
    let out = q.wait(Duration::from_secs(60));
    out.assert_code(0, "every check of tests/c/hooks.c");
    assert!(out.stdout.contains("cleaned up"), "{out}");
    // Frozen and thawed in time (not acknowledged): the application resumes with `thaw`;
    // the second cleanup adds nothing.
    assert_calls(&hooks, &["10-app freeze", "10-app thaw"], &out);
    assert_writable(&fs.mount, &out);
}

#[test]
fn a_failed_freeze_gives_freeze_failed_once_and_cleanup_adds_nothing() {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "o", FsKind::Ext4);
    let hooks = HookDir::new();
    hooks.logging("10-app", "");
    fs.fsfreeze();
    let out = hooks_c(&hooks_program(), "failed-freeze", &hooks, &fs).run(Duration::from_secs(60));
    assert_frozen(&fs, &"the other holder's freeze is left alone");
    fs.fsthaw();
    out.assert_code(0, "every check of tests/c/hooks.c");
    assert!(out.stdout.contains("freeze frozen-by-other"), "{out}");
    assert!(out.stdout.contains("report: status frozen-by-other; not-consistent; reason (none); hooks 2 calls, 0 failed"), "{out}");
    assert_calls(&hooks, &["10-app freeze", "10-app freeze-failed"], &out);
    assert_writable(&fs.mount, &out);
}

#[test]
fn past_the_deadline_cleanup_gives_freeze_failed() {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "d", FsKind::Ext4);
    let hooks = HookDir::new();
    hooks.logging("10-app", "");
    let out = hooks_c(&hooks_program(), "deadline", &hooks, &fs).run(Duration::from_secs(60));
    out.assert_code(0, "every check of tests/c/hooks.c");
    assert!(out.stdout.contains("freeze ok"), "{out}");
    assert!(out.stdout.contains("cleaned up"), "{out}");
    assert_calls(&hooks, &["10-app freeze", "10-app freeze-failed"], &out);
    assert_writable(&fs.mount, &out);
}

#[test]
fn one_shot_run_with_hooks_is_application_consistent() {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "s", FsKind::Xfs);
    let hooks = HookDir::new();
    hooks.logging("10-app", "echo \"said $1\"; echo \"to stderr\" >&2");
    let out = hooks_c(&hooks_program(), "run", &hooks, &fs).run(Duration::from_secs(60));
    out.assert_code(0, "every check of tests/c/hooks.c");
    assert!(out.stdout.contains("callback: frozen"), "{out}");
    // Each call's result through quiesce_hook_call(): the CLI's hooks[] fields.
    for (i, phase) in ["freeze", "thaw"].iter().enumerate() {
        let want = format!(
            "hook call {i}: 10-app hook-dir {phase} exited exit 0 signal 0 errno 0 succeeded 1 timed_out 0 (exit status 0) "
        );
        let line = out
            .stdout
            .lines()
            .find(|l| l.starts_with(&want))
            .unwrap_or_else(|| panic!("no line {want:?}: {out}"));
        assert!(
            line.ends_with(&format!("output bytes: said {phase}")),
            "{line}: {out}"
        );
        assert!(out.stdout.contains("to stderr"), "{out}");
    }
    assert!(
        out.stdout.contains(
            "report: status ok; application-consistent; reason (none); hooks 2 calls, 0 failed"
        ),
        "{out}"
    );
    // quiesce_phases(): everything ran, the hooks' calls and the callback's wait included
    // (the pre-sync may be left out: nothing dirty).
    let phases = phases_line(&out);
    for p in ["plan", "arm", "hooks", "freeze", "wait", "thaw", "finish"] {
        assert!(
            phases.contains(&format!("{p} 1")),
            "phase {p}: {phases}: {out}"
        );
    }
    assert_calls(&hooks, &["10-app freeze", "10-app thaw"], &out);
    assert_writable(&fs.mount, &out);
}

/// tests/c/hooks.c's `phases: plan 1 arm 1 ...` line (after its checks of the size
/// convention of `quiesce_phases_info`).
fn phases_line(out: &QuiesceOutput) -> String {
    out.stdout
        .lines()
        .find(|l| l.starts_with("phases: "))
        .unwrap_or_else(|| panic!("no phases line: {out}"))
        .to_string()
}

#[test]
fn a_caller_of_the_first_config_version_gets_no_hooks() {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "v", FsKind::Ext4);
    // A hook dir that would run (and log) if the bytes after the old struct were read.
    let hooks = HookDir::new();
    hooks.logging("10-app", "");
    let out = hooks_c(&hooks_program(), "old-config", &hooks, &fs).run(Duration::from_secs(60));
    out.assert_code(0, "every check of tests/c/hooks.c");
    assert!(out.stdout.contains("init ok"), "{out}");
    assert!(out.stdout.contains("thaw ok"), "{out}");
    assert!(
        out.stdout.contains("report: status ok; filesystem-consistent; reason no application hooks were configured; hooks 0 calls, 0 failed"),
        "{out}"
    );
    // No hooks: that phase did not run; every other one did but the pre-sync (maybe).
    let phases = phases_line(&out);
    for p in ["plan", "arm", "freeze", "wait", "thaw", "finish"] {
        assert!(
            phases.contains(&format!("{p} 1")),
            "phase {p}: {phases}: {out}"
        );
    }
    assert!(phases.contains("hooks 0"), "{phases}: {out}");
    assert_calls(&hooks, &[], &out);
    assert_writable(&fs.mount, &out);
}

#[test]
fn hooks_leak_nothing_under_asan() {
    require_root();
    let asan = compile_c_static(
        "hooks-asan",
        &["tests/c/hooks.c"],
        &[
            "-fsanitize=address,undefined",
            "-fno-sanitize-recover=all",
            "-fno-omit-frame-pointer",
        ],
    );
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "l", FsKind::Ext4);
    let hooks = HookDir::new();
    hooks.logging("10-app", "");
    let env = [
        "env",
        "ASAN_OPTIONS=detect_leaks=1:abort_on_error=0",
        "UBSAN_OPTIONS=print_stacktrace=1",
    ];
    for (mode, want) in [
        ("run", vec!["10-app freeze", "10-app thaw"]),
        ("deadline", vec!["10-app freeze", "10-app freeze-failed"]),
    ] {
        hooks.clear_calls();
        let out = hooks_c(&asan, mode, &hooks, &fs)
            .wrapper(env)
            .run(Duration::from_secs(120));
        out.assert_code(0, &format!("{mode} under ASan/UBSan"));
        for bad in ["AddressSanitizer", "LeakSanitizer", "runtime error"] {
            assert!(!out.stderr.contains(bad), "{mode}: {bad} reported:\n{out}");
        }
        assert_calls(&hooks, &want, &out);
    }
    // The refusal path frees what it loaded too: a world-writable hook.
    use std::os::unix::fs::PermissionsExt;
    let bad = hooks.logging("20-writable", "");
    std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o757)).unwrap();
    hooks.clear_calls();
    let out = hooks_c(&asan, "run", &hooks, &fs)
        .wrapper(env)
        .run(Duration::from_secs(120));
    out.assert_code(1, "run refused (the program's check of QUIESCE_OK fails)");
    assert!(out.stdout.contains("run hook-refused"), "{out}");
    for bad in ["AddressSanitizer", "LeakSanitizer", "runtime error"] {
        assert!(!out.stderr.contains(bad), "refused: {bad} reported:\n{out}");
    }
    assert_calls(&hooks, &[], &out);
    assert_writable(&fs.mount, &out);
}

/// tests/c/host.c: the library inside a host that forks, registers atfork handlers, reuses
/// storage.
fn host_program() -> PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| compile_c_static("host", &["tests/c/host.c"], &[]))
        .clone()
}

#[test]
fn a_session_runs_no_atfork_handler_of_the_host() {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "af", FsKind::Ext4);
    let out = Quiesce::new()
        .program(&host_program())
        .arg("atfork")
        .mount(&fs.mount)
        .run(Duration::from_secs(60));
    // Check 8 is the one that fails when the helpers are forked with the C library's fork().
    out.assert_code(
        0,
        "the host's own fork() ran its handlers; the session's forks ran none",
    );
    assert!(
        out.stdout
            .contains("session ok; atfork handlers called: prepare 0, parent 0"),
        "{out}"
    );
    assert_writable(&fs.mount, &out);
}

/// A host that forks a child (without exec) while frozen, then dies by SIGKILL: the child
/// holds a copy of the guardian's liveness pipe, so only the guardian's pidfd of the host tells
/// it; everything is thawed long before the 30 s deadline.
fn forked_child_does_not_keep_the_guardian_waiting(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "fk", kind);
    let mut q = Quiesce::new()
        .program(&host_program())
        .arg("fork")
        .mount(&fs.mount)
        .spawn();
    let child = q
        .read_line(Duration::from_secs(30))
        .and_then(|l| l.trim().strip_prefix("child ")?.parse::<u32>().ok())
        .unwrap_or_else(|| panic!("no child pid line: {}", q.stdout_so_far()));
    let worker = KillOnDrop(child);
    assert!(
        q.wait_for_line("frozen", Duration::from_secs(30)),
        "{}",
        q.stdout_so_far()
    );
    let mut probe = start_write_probe(&fs.mount);
    assert!(
        !probe.completed_within(Duration::from_millis(300)),
        "a write finished while the host said frozen"
    );
    q.signal(libc::SIGKILL);
    let killed = Instant::now();
    // Without the pidfd the guardian would wait for its deadline (30 s: a C ABI session has no grace).
    let thawed = probe.wait(Duration::from_secs(10));
    let took = killed.elapsed();
    drop(worker);
    let out = q.wait(Duration::from_secs(30));
    assert_eq!(out.status.signal(), Some(libc::SIGKILL), "{out}");
    assert!(
        thawed,
        "the write did not complete within 10 s of the host's SIGKILL (deadline 30 s): the guardian waited for its deadline\n{out}"
    );
    assert_writable(&fs.mount, &out);
    println!(
        "{}: writable {took:?} after SIGKILL of a host whose forked child still runs (30 s deadline)",
        kind.fs_type()
    );
}

per_kind!(forked_child_does_not_keep_the_guardian_waiting);

/// Kills a process (SIGKILL) when dropped: a child forked by a test program.
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = quiesce_testkit::send_signal(self.0, libc::SIGKILL);
    }
}

#[test]
fn init_refuses_storage_that_holds_a_live_session() {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "ri", FsKind::Ext4);
    let out = Quiesce::new()
        .program(&host_program())
        .arg("reinit")
        .mount(&fs.mount)
        .run(Duration::from_secs(60));
    // Check 31 is the one that fails when init overwrites a live session.
    out.assert_code(
        0,
        "a second init on live storage is refused; fresh storage is accepted",
    );
    assert!(
        out.stderr.contains("holds a live session"),
        "the refusal names the problem: {out}"
    );
    assert_writable(&fs.mount, &out);
}
