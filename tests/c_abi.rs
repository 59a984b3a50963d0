//! The C ABI from C: the agent example (examples/c/agent.c) freezes and thaws real loop-mounted
//! filesystems, also under AddressSanitizer/UBSan and under valgrind; no malloc from session
//! init to cleanup (--wrap=malloc); SIGKILL of the C program while frozen leaves nothing
//! frozen; a panic inside an export poisons the session and thaw still works; the emergency
//! thaw; bad input.

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use quiesce_testkit::{
    assert_frozen, assert_writable, compile_c, compile_c_static, ffi_lib, per_kind, require_root,
    run_timeout, start_write_probe, FsKind, Quiesce, QuiesceOutput, Scratch, TestFs,
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
    assert_writable(&a.mount, &out);
    assert_writable(&b.mount, &out);
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
