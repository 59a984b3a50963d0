//! Smoke test of the benchmark (`examples/bench`, issue 6): `quiesce-bench --quick` against the
//! debug CLI must exit 0, print every row of the table with numbers where numbers belong, write
//! the same report with `--write`, and leave no mount, loop device or directory behind.
//! No timing is asserted.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use quiesce_testkit::*;

/// `quiesce-bench`, built (debug) with cargo, located from cargo's JSON messages.
fn bench_bin() -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let out = run_timeout(
        Command::new(cargo)
            .args(["build", "-p", "quiesce-bench", "--bin", "quiesce-bench"])
            .args([
                "--message-format=json-render-diagnostics",
                "--manifest-path",
            ])
            .arg(&manifest),
        Duration::from_secs(900),
    )
    .unwrap_or_else(|e| panic!("building quiesce-bench: {e}"));
    assert!(
        out.status.success(),
        "cargo build -p quiesce-bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| Json::parse(l).ok())
        .filter(|m| m["reason"].as_str() == Some("compiler-artifact"))
        .filter(|m| m["target"]["name"].as_str() == Some("quiesce-bench"))
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .expect("cargo reported no executable named quiesce-bench")
}

/// The table row whose first cell starts with `id` (e.g. "2b."), split into trimmed cells.
fn row<'a>(report: &'a str, id: &str) -> Vec<&'a str> {
    let line = report
        .lines()
        .find(|l| l.starts_with(&format!("| {id} ")))
        .unwrap_or_else(|| panic!("no table row {id} in the report:\n{report}"));
    line.trim_matches('|').split('|').map(str::trim).collect()
}

/// The leading number of a cell ("570 (dynamically linked, stripped)" -> 570).
fn number(cell: &str) -> Option<f64> {
    cell.split_whitespace()
        .next()
        .map(|w| w.trim_end_matches('×'))
        .and_then(|w| w.parse().ok())
}

#[test]
fn quick_benchmark_prints_every_row_and_cleans_up() {
    require_root();
    let scratch = Scratch::new();
    let written = scratch.path("BENCHMARKS.md");
    let out = run_timeout(
        Command::new(bench_bin())
            .arg("--quick")
            .arg("--quiesce")
            .arg(quiesce_bin())
            .arg("--write")
            .arg(&written),
        Duration::from_secs(300),
    )
    .unwrap_or_else(|e| panic!("quiesce-bench: {e}"));
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "quiesce-bench --quick failed ({}):\n{log}\n{report}",
        out.status
    );

    // Columns: measurement, quiesce, fsfreeze, limit (parallel), limit (sequential),
    // fsfreeze ÷ quiesce, quiesce ÷ limit, target, result.
    let header = report
        .lines()
        .find(|l| l.starts_with("| Measurement |"))
        .unwrap_or_else(|| panic!("no table header:\n{report}"));
    assert!(
        header.contains("| limit: in-process, parallel | limit: in-process, sequential |")
            && header.contains("÷ limit |"),
        "no limit columns: {header}"
    );
    for id in ["1a.", "1b.", "1c.", "1e.", "1f.", "2a.", "2b."] {
        let r = row(&report, id);
        assert_eq!(r.len(), 9, "row {id}: {r:?}");
        for (col, what) in [
            (1, "quiesce"),
            (2, "fsfreeze"),
            (3, "limit"),
            (4, "sequential limit"),
        ] {
            assert!(
                number(r[col]).is_some_and(|v| v > 0.0),
                "row {id}: {what} {r:?}"
            );
        }
        assert!(number(r[5]).is_some(), "row {id}: ratio {r:?}");
        assert!(number(r[6]).is_some(), "row {id}: ratio to the limit {r:?}");
    }
    // The dirty-stall rows on both kinds.
    assert!(row(&report, "1c.")[0].contains("(ext4)"), "{report}");
    assert!(row(&report, "1f.")[0].contains("(xfs)"), "{report}");
    for id in ["1d.", "1g."] {
        let r = row(&report, id);
        assert!(number(r[1]).is_some() && number(r[2]).is_some(), "{r:?}");
        assert!(number(r[3]).is_some(), "row {id}: limit {r:?}");
    }
    for id in ["3a.", "3b.", "3c.", "3d.", "4a.", "4b.", "4c."] {
        let r = row(&report, id);
        assert!(number(r[1]).is_some(), "row {id}: quiesce {r:?}");
    }
    assert_eq!(row(&report, "3b.")[2], "n/a (fsfreeze has no deadline)");
    assert_eq!(row(&report, "4b.")[2], "never (stays frozen)");
    assert!(number(row(&report, "5a.")[1]).is_some_and(|v| v > 0.0));
    assert!(number(row(&report, "5b.")[1]).is_some_and(|v| v > 0.0));
    assert!(row(&report, "5c.")[1].contains("tests/no_alloc.rs"));
    assert!(row(&report, "6.")[1].contains("cleaned up"));
    for id in ["1d.", "1g.", "2a.", "2b.", "3b.", "4b.", "5a.", "5b.", "6."] {
        let result = row(&report, id)[8];
        assert!(
            result == "PASS" || result == "FAIL",
            "row {id}: result {result:?}"
        );
    }
    assert!(report.contains("## Machine and setup") && report.contains("kernel: "));
    // quiesce's own account of its cycles: every phase with a number.
    for id in ["2a", "2b"] {
        let line = report
            .lines()
            .find(|l| l.starts_with(&format!("- {id} where the time went, `quiesce`")))
            .unwrap_or_else(|| panic!("no phases of {id}:\n{report}"));
        for p in [
            "plan", "arm", "hooks", "presync", "freeze", "wait", "thaw", "finish",
        ] {
            let v = line
                .split_once(&format!(" {p} "))
                .and_then(|(_, rest)| rest.split(',').next())
                .and_then(number);
            assert!(v.is_some(), "phase {p} in {line}");
        }
    }

    let file = std::fs::read_to_string(&written).expect("the --write file");
    assert_eq!(file, report, "--write wrote something else than stdout");

    // Nothing left of its scratch directory.
    let dir = log
        .lines()
        .find_map(|l| {
            l.split_once("] scratch ")
                .map(|(_, d)| PathBuf::from(d.trim()))
        })
        .unwrap_or_else(|| panic!("no scratch directory in the log:\n{log}"));
    assert!(
        dir.starts_with("/tmp") && dir.to_string_lossy().contains("quiesce-bench-"),
        "{}",
        dir.display()
    );
    assert!(mounts_under(&dir).is_empty(), "{:?}", mounts_under(&dir));
    assert!(
        loops_backed_under(&dir).is_empty(),
        "{:?}",
        loops_backed_under(&dir)
    );
    assert!(!dir.exists(), "{} still exists", dir.display());
}
