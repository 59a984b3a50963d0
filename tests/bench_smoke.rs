//! Smoke test of the benchmark (`examples/bench`, issue 6): `quiesce-bench --quick` against the
//! debug CLI must exit 0, print every row of the table with numbers where numbers belong (the
//! limit in a fresh process of issue 14 included, and the library in a host holding a ballast of
//! memory), write the same report with `--write`, and leave no mount, loop device or directory
//! behind. Its hidden child mode refuses what the benchmark's guard refuses. No timing is
//! asserted.

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

    // Columns: measurement, quiesce, fsfreeze, limit (parallel), limit (sequential), limit in
    // a fresh process (parallel), (sequential), fsfreeze ÷ quiesce, quiesce ÷ limit, target,
    // result.
    let header = report
        .lines()
        .find(|l| l.starts_with("| Measurement |"))
        .unwrap_or_else(|| panic!("no table header:\n{report}"));
    assert!(
        header.contains(
            "| limit: in-process, parallel | limit: in-process, sequential \
             | limit: fresh process, parallel | limit: fresh process, sequential |"
        ) && header.contains("÷ limit |"),
        "no limit columns: {header}"
    );
    for id in ["1a.", "1b.", "1c.", "1e.", "1f.", "2a.", "2b."] {
        let r = row(&report, id);
        assert_eq!(r.len(), 11, "row {id}: {r:?}");
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
        assert!(number(r[7]).is_some(), "row {id}: ratio {r:?}");
        assert!(number(r[8]).is_some(), "row {id}: ratio to the limit {r:?}");
        // The fresh-process limit: in the empty cycles only.
        for (col, what) in [(5, "fresh parallel"), (6, "fresh sequential")] {
            if id.starts_with('2') {
                assert!(
                    number(r[col]).is_some_and(|v| v > 0.0),
                    "row {id}: {what} {r:?}"
                );
            } else {
                assert_eq!(r[col], "–", "row {id}: {what} {r:?}");
            }
        }
    }
    // 2a′ and 2b′: every median of 2a / 2b ÷ the fresh-process floor, which is one of the two
    // fresh-process columns (1.00× there); the 2a and 2b targets say the floor ÷ the limit.
    for (id, of) in [("2a′.", "2a."), ("2b′.", "2b.")] {
        let r = row(&report, id);
        assert_eq!(r.len(), 11, "row {id}: {r:?}");
        for col in 1..=6 {
            assert!(
                r[col].ends_with('×') && number(r[col]).is_some_and(|v| v > 0.0),
                "row {id}: column {col} {r:?}"
            );
        }
        assert!(r[5] == "1.00×" || r[6] == "1.00×", "row {id}: {r:?}");
        let target = row(&report, of)[9];
        let over = target
            .split_once("the fresh-process floor is ")
            .and_then(|(_, rest)| number(rest));
        assert!(
            over.is_some_and(|v| v > 0.0) && target.contains("`quiesce` "),
            "row {of}: target {target:?}"
        );
    }
    // 2c and 2d: the library in the benchmark's process; 2e and 2f: the same while it holds
    // the host ballast (64 MiB under --quick): the wall, × 2c / 2d's wall, and the arm and
    // finish phases beside 2c / 2d's.
    for id in ["2c.", "2d."] {
        let r = row(&report, id);
        assert_eq!(r.len(), 11, "row {id}: {r:?}");
        assert!(number(r[1]).is_some_and(|v| v > 0.0), "row {id}: {r:?}");
    }
    for (id, of) in [("2e.", "2c"), ("2f.", "2d")] {
        let r = row(&report, id);
        assert_eq!(r.len(), 11, "row {id}: {r:?}");
        assert!(
            r[0].contains("host of 64 MiB") && r[0].contains("median of 2)"),
            "row {id}: {r:?}"
        );
        let cell = r[1];
        assert!(
            number(cell).is_some_and(|v| v > 0.0),
            "row {id}: wall {cell:?}"
        );
        let times = cell.split_once('(').and_then(|(_, rest)| number(rest));
        assert!(
            times.is_some_and(|v| v > 0.0) && cell.contains(&format!("× {of};")),
            "row {id}: ratio to {of} {cell:?}"
        );
        for p in ["arm", "finish"] {
            let (with, without) = cell
                .split_once(&format!(" {p} "))
                .and_then(|(_, rest)| rest.split_once(" vs "))
                .map(|(w, rest)| (number(w), rest.split([',', ')']).next().and_then(number)))
                .unwrap_or((None, None));
            assert!(
                with.is_some_and(|v| v > 0.0) && without.is_some_and(|v| v > 0.0),
                "row {id}: {p} {cell:?}"
            );
        }
        assert!(r[9].starts_with("none (information"), "row {id}: {r:?}");
    }
    // The ballast was resident while measured and gone afterwards (VmRSS, MiB).
    let setup = report
        .lines()
        .find_map(|l| l.strip_prefix("- host ballast (rows 2e, 2f): 64 MiB of anonymous memory"))
        .unwrap_or_else(|| panic!("no setup line of the host ballast:\n{report}"));
    let after = |marker: &str| {
        setup
            .split_once(marker)
            .and_then(|(_, rest)| number(rest))
            .unwrap_or_else(|| panic!("no {marker:?} in {setup}"))
    };
    let (with, gone) = (after("before it, "), after("(last), "));
    assert!(with > 57.0 && gone + 57.0 < with, "{setup}");
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
        let result = row(&report, id)[10];
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

    // The fresh-process limit's own account: every part with a number, and its samples.
    for id in ["2a", "2b"] {
        for how in ["parallel", "sequential"] {
            let line = report
                .lines()
                .find(|l| {
                    l.starts_with(&format!(
                        "- {id} where the time went, limit in a fresh process ({how})"
                    ))
                })
                .unwrap_or_else(|| panic!("no fresh-process split of {id}:\n{report}"));
            // The numbers follow the description in parentheses.
            let values = line
                .rsplit_once("): ")
                .map(|(_, v)| format!(" {v}"))
                .unwrap_or_default();
            for p in ["open", "freeze", "snapshot", "thaw", "process"] {
                let v = values
                    .split_once(&format!(" {p} "))
                    .and_then(|(_, rest)| rest.split(',').next())
                    .and_then(number);
                assert!(v.is_some_and(|v| v >= 0.0), "{p} in {line}");
            }
            let samples = report
                .lines()
                .find_map(|l| {
                    l.strip_prefix(&format!("- {id} cycle "))
                        .and_then(|l| l.split_once(&format!("limit in a fresh process ({how}): ")))
                        .map(|(_, s)| s)
                })
                .unwrap_or_else(|| panic!("no fresh-process samples of {id}:\n{report}"));
            let xs: Vec<f64> = samples.split(", ").filter_map(number).collect();
            assert!(
                xs.len() == 2 && xs.iter().all(|v| *v > 0.0),
                "{id} {how}: {samples}"
            );
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

/// The hidden child mode checks the benchmark's guard itself: a scratch directory that is not
/// `/tmp/quiesce-bench-*`, a mount point outside it, or one that does not resolve, is refused
/// (exit 1, no split printed) before anything is opened. The paths do not exist (or are `/`,
/// refused by the guard's first structural check), so nothing could be frozen even if the
/// guard failed.
#[test]
fn fresh_limit_child_refuses_what_the_guard_refuses() {
    require_root();
    let bench = bench_bin();
    let missing = "/tmp/quiesce-bench-no-such-run-9f3c";
    assert!(!Path::new(missing).exists());
    for (scratch, mount, why) in [
        (
            "/tmp/elsewhere-9f3c".to_owned(),
            "/tmp/elsewhere-9f3c/fs0".to_owned(),
            "SAFETY GUARD: scratch directory /tmp/elsewhere-9f3c is not".to_owned(),
        ),
        (
            missing.to_owned(),
            "/".to_owned(),
            "SAFETY GUARD refused /: not directly inside".to_owned(),
        ),
        (
            missing.to_owned(),
            format!("{missing}/fs0"),
            format!("canonicalize {missing}/fs0"),
        ),
    ] {
        for how in ["sequential", "parallel"] {
            let out = run_timeout(
                Command::new(&bench)
                    .args(["--fresh-limit", how, "--scratch", &scratch])
                    .args(["--mount", &mount, "/dev/loop0", "--", "true"]),
                Duration::from_secs(30),
            )
            .unwrap_or_else(|e| panic!("quiesce-bench --fresh-limit: {e}"));
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{how} {mount}: {err}");
            assert!(err.contains(&why), "{how} {mount}: {err}");
            assert!(out.stdout.is_empty(), "{how} {mount}: printed a split");
        }
    }
}
