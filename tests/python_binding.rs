//! The Python binding (examples/python/quiesce.py): runs its pytest suite against the freshly
//! built libquiesce.so, with a loop-mounted ext4 made here as the only filesystem the
//! end-to-end tests may freeze (QUIESCE_TEST_MOUNT). QUIESCE_REQUIRE_E2E=1 makes the suite
//! fail instead of skipping when it cannot freeze; this test also rejects any skip.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use quiesce_testkit::{
    assert_writable, ffi_lib, guard, repo_root, require_root, run_timeout, ChildGuard, FsKind,
    Scratch, TestFs,
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
