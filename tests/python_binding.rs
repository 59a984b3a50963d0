//! The Python binding (examples/python, package `quiesce`): runs its pytest suite against the
//! freshly built libquiesce.so, with a loop-mounted ext4 made here as the only filesystem the
//! end-to-end tests may freeze (QUIESCE_TEST_MOUNT). QUIESCE_REQUIRE_E2E=1 makes the suite
//! fail instead of skipping when it cannot freeze; this test also rejects any skip.
//!
//! And the package as pip installs it (issue 15): in a fresh virtual environment,
//! `pip install ./examples/python` (setuptools-rust runs cargo and puts libquiesce.so inside the
//! package); then, from another directory and with no QUIESCE_LIB, the same suite passes against
//! the installed package, and `mypy --strict` is clean on the installed package (py.typed) and
//! on the tests.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use quiesce_testkit::{
    abs, assert_frozen, assert_writable, check_report, ffi_lib, guard, repo_root, require_root,
    run_timeout, ChildGuard, FsKind, JsonExt, Quiesce, Scratch, TestFs,
};

const PYTEST_TIMEOUT: Duration = Duration::from_secs(300);

/// The Python interpreter: `$QUIESCE_PYTHON`, else `python3` from PATH.
fn python() -> String {
    std::env::var("QUIESCE_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Panics with the fix unless `python` runs and can import pytest.
fn require_pytest(python: &str) {
    let out = run_timeout(
        Command::new(python).args(["-c", "import pytest, sys; print(sys.version)"]),
        Duration::from_secs(60),
    )
    .unwrap_or_else(|e| {
        panic!("cannot run {python} (set QUIESCE_PYTHON to a Python 3 interpreter): {e}")
    });
    assert!(
        out.status.success(),
        "{python} cannot import pytest: pip install pytest\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The counts of pytest's summary line ("3 passed, 1 skipped in 0.42s"), by word.
fn summary_counts(stdout: &str) -> Vec<(String, u64)> {
    let line = stdout
        .lines()
        .rev()
        .map(|l| l.trim().trim_matches('='))
        .map(str::trim)
        .find(|l| l.starts_with(|c: char| c.is_ascii_digit()) && l.contains(" in "))
        .unwrap_or_else(|| panic!("no pytest summary line in:\n{stdout}"));
    let counts = line.split(" in ").next().unwrap_or_default();
    counts
        .split(", ")
        .filter_map(|part| {
            let (n, word) = part.split_once(' ')?;
            Some((word.trim().to_string(), n.parse().ok()?))
        })
        .collect()
}

fn count(counts: &[(String, u64)], word: &str) -> u64 {
    counts
        .iter()
        .filter(|(w, _)| w.starts_with(word))
        .map(|(_, n)| n)
        .sum()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn python_binding_pytest_suite() {
    require_root();
    let python = python();
    require_pytest(&python);
    let lib = ffi_lib();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "py", FsKind::Ext4);
    guard(&fs.mount);

    // Output to files, not pipes: the library's helper processes are forked from Python and
    // may hold inherited descriptors a little longer than pytest runs.
    let stdout_path = scratch.path("pytest.out");
    let stderr_path = scratch.path("pytest.err");
    let root = repo_root();
    let started = Instant::now();
    let child = Command::new(&python)
        .args(["-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider"])
        .args(["--durations=5"])
        .arg(root.join("examples/python"))
        .current_dir(&root)
        .env("QUIESCE_LIB", &lib.cdylib)
        .env("QUIESCE_TEST_MOUNT", &fs.mount)
        .env("QUIESCE_REQUIRE_E2E", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("PYTEST_ADDOPTS")
        .stdin(Stdio::null())
        .stdout(File::create(&stdout_path).expect("create pytest.out"))
        .stderr(File::create(&stderr_path).expect("create pytest.err"))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {python} -m pytest: {e}"));
    let mut child = ChildGuard::new(child);
    let status = child.wait_timeout(PYTEST_TIMEOUT);
    let elapsed = started.elapsed();
    let output = format!(
        "--- pytest stdout ---\n{}--- pytest stderr ---\n{}",
        read(&stdout_path),
        read(&stderr_path)
    );
    println!("{output}");
    let Some(status) = status else {
        drop(child);
        panic!("pytest did not finish within {PYTEST_TIMEOUT:?}; killed\n{output}");
    };
    assert!(status.success(), "pytest failed ({status})\n{output}");
    let counts = summary_counts(&read(&stdout_path));
    let passed = count(&counts, "passed");
    assert!(passed > 0, "pytest passed no test\n{output}");
    for bad in ["skipped", "failed", "error", "xfail", "xpass", "deselected"] {
        assert_eq!(
            count(&counts, bad),
            0,
            "pytest reported {bad} tests: every one must run\n{output}"
        );
    }
    assert_writable(&fs.mount, &output);
    println!(
        "python binding: {passed} pytest tests passed in {elapsed:?} on {} ({})",
        fs.mount.display(),
        fs.kind.fs_type()
    );
}

/// Runs `cmd` (stdout and stderr to files in `scratch`, as pytest's helpers may keep pipes
/// open) within `timeout`; returns its success and output.
fn run_logged(
    scratch: &Scratch,
    what: &str,
    cmd: &mut Command,
    timeout: Duration,
) -> (bool, String) {
    let name = what.replace(|c: char| !c.is_ascii_alphanumeric(), "_");
    let out_path = scratch.path(format!("{name}.out"));
    let err_path = scratch.path(format!("{name}.err"));
    let child = cmd
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).expect("create .out"))
        .stderr(File::create(&err_path).expect("create .err"))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let mut child = ChildGuard::new(child);
    let status = child.wait_timeout(timeout);
    let output = format!(
        "--- {what} stdout ---\n{}--- {what} stderr ---\n{}",
        read(&out_path),
        read(&err_path)
    );
    println!("{output}");
    let Some(status) = status else {
        drop(child);
        panic!("{what} did not finish within {timeout:?}; killed\n{output}");
    };
    (status.success(), output)
}

/// A command with nothing of the development setup: no QUIESCE_LIB, PYTHONPATH or virtual
/// environment of the caller.
fn clean(program: &Path, dir: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir(dir)
        .env_remove("QUIESCE_LIB")
        .env_remove("PYTHONPATH")
        .env_remove("VIRTUAL_ENV")
        .env_remove("PYTEST_ADDOPTS")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1");
    cmd
}

#[test]
fn pip_installed_package_passes_the_suite_and_mypy() {
    require_root();
    let python = python();
    let root = repo_root();
    let scratch = Scratch::new();
    let venv = scratch.path("venv");
    let (ok, out) = run_logged(
        &scratch,
        "python -m venv",
        Command::new(&python).arg("-m").arg("venv").arg(&venv),
        Duration::from_secs(300),
    );
    assert!(
        ok,
        "cannot make a virtual environment (apt-get install python3-venv)\n{out}"
    );
    let vpy = venv.join("bin/python");
    let away = scratch.path("elsewhere");
    std::fs::create_dir_all(&away).expect("mkdir elsewhere");

    // pip install ./examples/python (cargo builds the library into a target directory of its
    // own, so that this build does not invalidate the one the other tests use).
    let (ok, out) = run_logged(
        &scratch,
        "pip install ./examples/python pytest mypy",
        clean(&vpy, &root)
            .args([
                "-m",
                "pip",
                "install",
                "-q",
                "./examples/python",
                "pytest",
                "mypy",
            ])
            .env("CARGO_TARGET_DIR", root.join("target/python-package")),
        Duration::from_secs(1800),
    );
    assert!(ok, "pip install ./examples/python failed\n{out}");

    // From elsewhere, no QUIESCE_LIB: the installed package, with its own library.
    let site = venv.join("lib");
    let probe = "import quiesce, sys; print(quiesce.__file__); print(quiesce.library_path())";
    let (ok, out) = run_logged(
        &scratch,
        "import quiesce",
        clean(&vpy, &away).args(["-c", probe]),
        Duration::from_secs(60),
    );
    assert!(ok, "the installed package does not import\n{out}");
    let stdout = read(&scratch.path("import_quiesce.out"));
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines.len() == 2 && lines.iter().all(|l| Path::new(l).starts_with(&site)),
        "quiesce or its library is not the installed one (under {}): {lines:?}",
        site.display()
    );
    assert!(
        lines[1].contains("/site-packages/quiesce/libquiesce"),
        "the library is not inside the package: {}",
        lines[1]
    );

    // The suite, against that module: imported first (and checked), then pytest runs the
    // repository's test file, whose `import quiesce` gets the same module.
    let fs = TestFs::new(&scratch, "pip", FsKind::Ext4);
    guard(&fs.mount);
    let test_file = root.join("examples/python/test_quiesce.py");
    let driver = format!(
        "import sys, quiesce, pytest\n\
         assert quiesce.__file__.startswith({site:?}), quiesce.__file__\n\
         sys.exit(pytest.main(['-q', '-rs', '-p', 'no:cacheprovider', '--import-mode=importlib', \
         '--rootdir', {away:?}, {test:?}]))\n",
        site = site.display().to_string(),
        away = away.display().to_string(),
        test = test_file.display().to_string(),
    );
    let started = Instant::now();
    let (ok, output) = run_logged(
        &scratch,
        "pytest",
        clean(&vpy, &away)
            .args(["-c", &driver])
            .env("QUIESCE_TEST_MOUNT", &fs.mount)
            .env("QUIESCE_REQUIRE_E2E", "1"),
        PYTEST_TIMEOUT,
    );
    assert!(ok, "pytest against the installed package failed\n{output}");
    let counts = summary_counts(&read(&scratch.path("pytest.out")));
    let passed = count(&counts, "passed");
    assert!(passed > 0, "pytest passed no test\n{output}");
    for bad in ["skipped", "failed", "error", "xfail", "xpass", "deselected"] {
        assert_eq!(
            count(&counts, bad),
            0,
            "pytest reported {bad} tests\n{output}"
        );
    }
    assert_writable(&fs.mount, &output);
    println!(
        "installed package: {passed} pytest tests passed in {:?}",
        started.elapsed()
    );

    // mypy --strict: the installed package (it must carry py.typed, or mypy refuses to use it)
    // and the tests, checked against it (a copy outside the repository, so that `import
    // quiesce` resolves to the installed package, not to the source next to the tests).
    std::fs::copy(&test_file, away.join("test_quiesce.py")).expect("copy the tests");
    for (what, target) in [
        ("mypy_package", ["-p", "quiesce"]),
        ("mypy_tests", ["--", "test_quiesce.py"]),
    ] {
        let (ok, out) = run_logged(
            &scratch,
            what,
            clean(&vpy, &away)
                .args(["-m", "mypy", "--strict", "--no-incremental"])
                .args(target),
            Duration::from_secs(600),
        );
        assert!(ok, "mypy --strict ({what}) is not clean\n{out}");
        assert!(
            read(&scratch.path(format!("{what}.out"))).contains("Success: no issues found"),
            "{out}"
        );
    }
}

#[test]
fn the_python_package_has_the_crate_version() {
    let pyproject = std::fs::read_to_string(repo_root().join("examples/python/pyproject.toml"))
        .expect("read examples/python/pyproject.toml");
    let version = pyproject
        .lines()
        .find_map(|l| l.strip_prefix("version = "))
        .map(|v| v.trim().trim_matches('"'));
    assert_eq!(
        version,
        Some(env!("CARGO_PKG_VERSION")),
        "examples/python/pyproject.toml"
    );
    assert!(repo_root()
        .join("examples/python/quiesce/py.typed")
        .is_file());
}

#[test]
fn pytest_summary_is_parsed() {
    let c = summary_counts("....\n1 failed, 36 passed, 2 skipped, 1 warning in 4.78s\n");
    assert_eq!(count(&c, "passed"), 36);
    assert_eq!(count(&c, "failed"), 1);
    assert_eq!(count(&c, "skipped"), 2);
    assert_eq!(count(&c, "error"), 0);
    let c = summary_counts("===== 3 passed, 1 error in 0.10s =====\n");
    assert_eq!((count(&c, "passed"), count(&c, "error")), (3, 1));
}

/// `program` as a path (from PATH if it is a bare name).
fn which(program: &str) -> std::path::PathBuf {
    if program.contains('/') {
        return program.into();
    }
    std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(program))
                .find(|c| c.is_file())
        })
        .unwrap_or_else(|| program.into())
}

/// A Python agent: freezes its argument for up to 60 s, prints `frozen`, thaws when a line
/// arrives on stdin.
const HOLD_PY: &str = "import sys\nimport quiesce\nwith quiesce.frozen([sys.argv[1]], 60):\n    print('frozen', flush=True)\n    sys.stdin.readline()\nprint('thawed', flush=True)\n";

/// `quiesce status` lists a live Python session (its record, written by the C ABI), and the
/// record is gone once the session has thawed.
#[test]
fn status_lists_a_python_session() {
    require_root();
    let python = python();
    let lib = ffi_lib();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "pyrec", FsKind::Xfs);
    let python = which(&python);
    let mut q = Quiesce::new()
        .wrapper([
            "env".to_string(),
            format!("QUIESCE_LIB={}", lib.cdylib.display()),
            format!(
                "PYTHONPATH={}",
                repo_root().join("examples/python").display()
            ),
            "PYTHONDONTWRITEBYTECODE=1".to_string(),
        ])
        .program(&python)
        .arg("-c")
        .arg(HOLD_PY)
        .mount(&fs.mount)
        .spawn();
    assert!(
        q.wait_for_line("frozen", Duration::from_secs(30)),
        "the Python agent did not freeze: {}",
        q.stdout_so_far()
    );
    assert_frozen(&fs, &"the Python agent holds it");
    let status = Quiesce::sub("status")
        .arg("--json")
        .run(Duration::from_secs(15));
    let j = check_report(&status, "status", 0);
    let s = j["sessions"]
        .items()
        .iter()
        .find(|s| s["controller"]["pid"].as_i64() == Some(i64::from(q.pid())))
        .cloned()
        .unwrap_or_else(|| panic!("`quiesce status` should list the Python session: {status}"));
    assert_eq!(s["state"].as_str(), Some("active"), "{s}");
    assert_eq!(s["guardian"]["alive"].as_bool(), Some(true), "{s}");
    let mounts: Vec<&str> = s["targets"]
        .items()
        .iter()
        .filter_map(|t| t["mount_point"].as_str())
        .collect();
    assert_eq!(mounts, [abs(&fs.mount).as_str()], "{s}");
    q.send_line("thaw");
    assert!(
        q.wait_for_line("thawed", Duration::from_secs(30)),
        "the Python agent did not thaw: {}",
        q.stdout_so_far()
    );
    let out = q.wait(Duration::from_secs(15));
    assert_eq!(out.code, Some(0), "{out}");
    assert_writable(&fs.mount, &out);
    let after = Quiesce::sub("status")
        .arg("--json")
        .run(Duration::from_secs(15));
    let j = check_report(&after, "status", 0);
    assert!(
        !j["sessions"]
            .items()
            .iter()
            .any(|s| s["controller"]["pid"].as_i64() == Some(i64::from(q.pid()))),
        "the record should be gone after the thaw: {after}"
    );
}
