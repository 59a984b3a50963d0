//! Issue 11: the test-only export `quiesce_test_panic()` is not in release builds of the
//! library nor in the public header (it exists only with the cargo feature `test-hooks`, with
//! which the tests build the library they run C programs against).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use quiesce_testkit::*;

/// `cargo build --release -p quiesce-ffi --lib` (as `packaging/deb/build.sh` does); returns
/// the paths of `libquiesce.so` and `libquiesce.a`.
fn release_libs() -> (PathBuf, PathBuf) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = run_timeout(
        Command::new(cargo)
            .args(["build", "--release", "-p", "quiesce-ffi", "--lib"])
            .args([
                "--message-format=json-render-diagnostics",
                "--manifest-path",
            ])
            .arg(repo_root().join("Cargo.toml")),
        Duration::from_secs(1800),
    )
    .unwrap_or_else(|e| panic!("building the release library: {e}"));
    assert!(
        out.status.success(),
        "cargo build --release -p quiesce-ffi failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let files: Vec<PathBuf> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| Json::parse(l).ok())
        .filter(|m| m["reason"].as_str() == Some("compiler-artifact"))
        .filter(|m| m["target"]["name"].as_str() == Some("quiesce"))
        .flat_map(|m| {
            m["filenames"]
                .str_array()
                .into_iter()
                .map(PathBuf::from)
                .collect::<Vec<_>>()
        })
        .collect();
    let find = |ext: &str| {
        files
            .iter()
            .find(|f| f.extension().is_some_and(|e| e == ext))
            .cloned()
            .unwrap_or_else(|| panic!("cargo built no libquiesce.{ext}: {files:?}"))
    };
    (find("so"), find("a"))
}

/// The symbols `nm ARGS LIB` lists.
fn symbols(args: &[&str], lib: &PathBuf) -> Vec<String> {
    let out = run_ok(
        Command::new("nm").args(args).arg(lib),
        Duration::from_secs(120),
    )
    .unwrap_or_else(|e| panic!("nm {args:?} {}: {e}", lib.display()));
    out.lines()
        .filter_map(|l| l.split_whitespace().last())
        .map(String::from)
        .collect()
}

#[test]
fn release_library_does_not_export_the_test_hook() {
    let (so, a) = release_libs();
    let syms = symbols(&["-D", "--defined-only"], &so);
    assert!(
        syms.iter().any(|s| s == "quiesce_freeze"),
        "nm -D {} lists no quiesce_freeze: not the library? {} symbols",
        so.display(),
        syms.len()
    );
    let hooks: Vec<&String> = syms.iter().filter(|s| s.contains("test_panic")).collect();
    assert!(
        hooks.is_empty(),
        "the release build {} exports the test-only hook: {hooks:?}",
        so.display()
    );
    // The static library holds LTO bitcode, which this nm cannot read; its symbol names are
    // in it as plain bytes all the same.
    let bytes = std::fs::read(&a).unwrap_or_else(|e| panic!("read {}: {e}", a.display()));
    let has = |name: &[u8]| bytes.windows(name.len()).any(|w| w == name);
    assert!(
        has(b"quiesce_freeze"),
        "{} does not name quiesce_freeze: not the library?",
        a.display()
    );
    assert!(
        !has(b"quiesce_test_panic"),
        "the release build {} holds the test-only hook",
        a.display()
    );
}

#[test]
fn header_does_not_declare_the_test_hook() {
    let p = repo_root().join("include/quiesce.h");
    let header =
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()));
    for word in ["quiesce_test_panic", "QUIESCE_TEST_PANIC"] {
        assert!(
            !header.contains(word),
            "{} declares the test-only {word}",
            p.display()
        );
    }
}
