//! The report: machine, command, the Markdown table with PASS/FAIL against the targets of
//! issue 6, and the samples behind each number.

use std::fmt::Write as _;

use crate::ballast::PAGE;
use crate::cycle::PHASES;
use crate::footprint::Binary;
use crate::measure::{Host, Results, Series, BASELINE_WATCH, DEADLINE, SNAPSHOT_SECS};
use crate::stats::{max, median, min, percentile};

/// Everything the report needs besides the results.
pub struct Context {
    pub command_line: String,
    pub labels: Vec<String>,
    pub machine: Vec<(String, String)>,
    pub setup: Vec<(String, String)>,
    pub binary: Binary,
    pub reps: usize,
    pub cycle_reps: usize,
    pub runs: usize,
    pub dirty_mib: u64,
    /// The filesystem type of the 8 filesystems, and of the one of the other kind.
    pub kind: &'static str,
    pub other_kind: &'static str,
    pub elapsed_s: f64,
    pub cleanup: String,
    pub cleanup_ok: bool,
}

fn f(v: Option<f64>) -> String {
    match v {
        Some(v) if v.abs() >= 100.0 => format!("{v:.0}"),
        Some(v) if v.abs() >= 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.2}"),
        None => "–".into(),
    }
}

fn pass(ok: Option<bool>) -> &'static str {
    match ok {
        Some(true) => "PASS",
        Some(false) => "FAIL",
        None => "–",
    }
}

struct Row {
    label: String,
    quiesce: Vec<String>,
    fsfreeze: String,
    limit_parallel: String,
    limit_sequential: String,
    fresh_parallel: String,
    fresh_sequential: String,
    ratio: Vec<String>,
    /// quiesce ÷ the parallel limit.
    vs_limit: Vec<String>,
    target: String,
    result: Vec<&'static str>,
}

impl Row {
    fn new(label: impl Into<String>, n: usize) -> Row {
        Row {
            label: label.into(),
            quiesce: vec![String::new(); n],
            fsfreeze: String::new(),
            limit_parallel: String::new(),
            limit_sequential: String::new(),
            fresh_parallel: String::new(),
            fresh_sequential: String::new(),
            ratio: vec!["".into(); n],
            vs_limit: vec!["".into(); n],
            target: String::new(),
            result: vec![""; n],
        }
    }
}

/// Median of quiesce config `i`, median of the baseline, and the ratio baseline ÷ quiesce.
fn medians(s: &Series, i: usize) -> (Option<f64>, Option<f64>, Option<f64>) {
    let q = s.quiesce.get(i).and_then(|v| median(v));
    let b = median(&s.fsfreeze);
    let ratio = match (q, b) {
        (Some(q), Some(b)) if q > 0.0 => Some(b / q),
        _ => None,
    };
    (q, b, ratio)
}

/// Median of quiesce config `i` ÷ median of the parallel limit (> 1: slower than the limit).
fn vs_limit(s: &Series, i: usize) -> Option<f64> {
    let q = s.quiesce.get(i).and_then(|v| median(v));
    match (q, median(&s.limit_parallel)) {
        (Some(q), Some(l)) if l > 0.0 => Some(q / l),
        _ => None,
    }
}

fn ratio_text(r: Option<f64>) -> String {
    r.map_or("–".into(), |r| format!("{}×", f(Some(r))))
}

fn median_row(label: String, s: &Series, n: usize) -> Row {
    let mut row = Row::new(label, n);
    for i in 0..n {
        let (q, b, r) = medians(s, i);
        row.quiesce[i] = f(q);
        row.fsfreeze = f(b);
        row.ratio[i] = ratio_text(r);
        row.vs_limit[i] = ratio_text(vs_limit(s, i));
    }
    row.limit_parallel = f(median(&s.limit_parallel));
    row.limit_sequential = f(median(&s.limit_sequential));
    row.fresh_parallel = f(median(&s.fresh_parallel));
    row.fresh_sequential = f(median(&s.fresh_sequential));
    row
}

/// The fresh-process floor of the empty cycles: the faster of the two fresh-process medians
/// (parallel or sequential), and which one it is. The least any tool that runs as its own
/// process can take.
fn fresh_floor(s: &Series) -> Option<(f64, &'static str)> {
    let p = median(&s.fresh_parallel).map(|v| (v, "parallel"));
    let q = median(&s.fresh_sequential).map(|v| (v, "sequential"));
    match (p, q) {
        (Some(p), Some(q)) => Some(if q.0 < p.0 { q } else { p }),
        (p, q) => p.or(q),
    }
}

/// `a` ÷ the fresh-process floor.
fn vs_floor(a: Option<f64>, s: &Series) -> String {
    match (a, fresh_floor(s)) {
        (Some(a), Some((fl, _))) if fl > 0.0 => ratio_text(Some(a / fl)),
        _ => "–".into(),
    }
}

/// Row 2a′/2b′: every column of an empty-cycle row ÷ the fresh-process floor.
fn floor_row(id: &str, of: &str, s: &Series, n: usize) -> Row {
    let which = fresh_floor(s).map_or("–", |(_, w)| w);
    let mut row = Row::new(
        format!(
            "{id}. {of} ÷ the fresh-process floor (the faster fresh-process median, here {which}; 1×: as fast as a tool that runs as its own process can be)"
        ),
        n,
    );
    for i in 0..n {
        row.quiesce[i] = vs_floor(s.quiesce.get(i).and_then(|v| median(v)), s);
        row.ratio[i] = "–".into();
        row.vs_limit[i] = "–".into();
    }
    row.fsfreeze = vs_floor(median(&s.fsfreeze), s);
    row.limit_parallel = vs_floor(median(&s.limit_parallel), s);
    row.limit_sequential = vs_floor(median(&s.limit_sequential), s);
    row.fresh_parallel = vs_floor(median(&s.fresh_parallel), s);
    row.fresh_sequential = vs_floor(median(&s.fresh_sequential), s);
    row.target =
        "none (information: the in-process limit below 1× is what starting a process costs)".into();
    row
}

/// For a target: the fresh-process floor ÷ the parallel limit, and each configuration ÷ the
/// floor ("the fresh-process floor is 1.25× the limit; `quiesce` 1.08× the floor").
fn floor_note(s: &Series, labels: &[String], id: &str) -> String {
    let floor = fresh_floor(s).map(|(v, _)| v);
    let limit = median(&s.limit_parallel);
    let over = match (floor, limit) {
        (Some(fl), Some(l)) if l > 0.0 => ratio_text(Some(fl / l)),
        _ => "–".into(),
    };
    let each: Vec<String> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| {
            format!(
                "`{l}` {}",
                vs_floor(s.quiesce.get(i).and_then(|v| median(v)), s)
            )
        })
        .collect();
    format!(
        "the fresh-process floor is {over} the limit; {} the floor, see {id}",
        each.join(", ")
    )
}

/// The stall ratio dirty ÷ clean (medians), for quiesce config `i` (or the baseline).
fn stall_ratio(dirty: Option<f64>, clean: Option<f64>) -> Option<f64> {
    match (dirty, clean) {
        (Some(d), Some(c)) if c > 0.0 => Some(d / c),
        _ => None,
    }
}

/// Target of issue 14: the longest stall with dirty data ≤ this × the clean one.
const DIRTY_STALL_TARGET: f64 = 1.3;

fn stall_ratio_row(label: String, dirty: &Series, clean: &Series, n: usize) -> Row {
    let mut row = Row::new(label, n);
    row.fsfreeze = f(stall_ratio(
        median(&dirty.fsfreeze),
        median(&clean.fsfreeze),
    ));
    row.limit_parallel = f(stall_ratio(
        median(&dirty.limit_parallel),
        median(&clean.limit_parallel),
    ));
    row.limit_sequential = f(stall_ratio(
        median(&dirty.limit_sequential),
        median(&clean.limit_sequential),
    ));
    row.target = format!("≤ {DIRTY_STALL_TARGET} (quiesce)");
    for i in 0..n {
        let q = stall_ratio(medians(dirty, i).0, medians(clean, i).0);
        row.quiesce[i] = f(q);
        row.ratio[i] = "–".into();
        row.vs_limit[i] = "–".into();
        row.result[i] = pass(q.map(|q| q <= DIRTY_STALL_TARGET));
    }
    row
}

/// The median of phase `name` over `runs`.
fn phase_median(runs: &[[f64; 8]], name: &str) -> Option<f64> {
    let k = PHASES.iter().position(|p| *p == name)?;
    median(&runs.iter().map(|r| r[k]).collect::<Vec<_>>())
}

/// MiB from KiB.
fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Row 2e / 2f: the library's empty cycle with the host ballast (`wall`, `phases`) beside the
/// same cycle without it (`of`: 2c / 2d, `plain`, `plain_phases`), in the first column.
fn host_row(
    id: &str,
    of: &str,
    count: usize,
    h: &Host,
    (wall, phases): (&[f64], &[[f64; 8]]),
    (plain, plain_phases): (&[f64], &[[f64; 8]]),
    n: usize,
) -> Row {
    let mut row = Row::new(
        format!(
            "{id}. Cycle wall time, empty snapshot, {count} fs, quiesce as a library in a host of {} MiB ({of} with that much anonymous memory touched in this process, VmRSS {} MiB; first column: wall, × {of}'s wall, then the arm and finish phases beside {of}'s) (ms, median of {})",
            h.mib,
            f(Some(mib(h.loaded.rss_kib))),
            wall.len()
        ),
        n,
    );
    let w = median(wall);
    let times = match (w, median(plain)) {
        (Some(w), Some(p)) if p > 0.0 => ratio_text(Some(w / p)),
        _ => "–".into(),
    };
    let phase = |name: &str| {
        format!(
            "{name} {} vs {}",
            f(phase_median(phases, name)),
            f(phase_median(plain_phases, name))
        )
    };
    for (i, cell) in row.quiesce.iter_mut().enumerate() {
        *cell = if i == 0 {
            format!(
                "{} ({times} {of}; {}, {})",
                f(w),
                phase("arm"),
                phase("finish")
            )
        } else {
            "–".into()
        };
    }
    for v in row.ratio.iter_mut().chain(row.vs_limit.iter_mut()) {
        *v = "–".into();
    }
    for r in row.result.iter_mut() {
        *r = "–";
    }
    row.fsfreeze = "–".into();
    row.target = format!(
        "none (information: quiesce's helpers are forked from the host, each fork copies its page tables and the session's end waits for the first helper's teardown; the baseline for making that independent of the host's size; {} repetitions)",
        wall.len()
    );
    row
}

/// The setup line of the host ballast: what rows 2e and 2f measured.
fn host_setup(h: &Host) -> String {
    format!(
        "{} MiB of anonymous memory mapped in the benchmark's own process, one byte written per {} KiB ({}), allocated after every other measurement and unmapped at the end (then the benchmark waits for those sessions' helpers to be gone); VmRSS {} MiB before it, {} MiB with it (first cycle) and {} MiB (last), {} MiB after it was unmapped; VmPTE (page tables) {} MiB with it, {} MiB after; VmHWM reset after (`/proc/self/clear_refs` 5): {} MiB",
        h.mib,
        PAGE / 1024,
        if h.small_pages {
            "4 KiB pages: `MADV_NOHUGEPAGE`"
        } else {
            "`MADV_NOHUGEPAGE` refused: the kernel may back it with huge pages"
        },
        f(Some(mib(h.before.rss_kib))),
        f(Some(mib(h.loaded.rss_kib))),
        f(Some(mib(h.last.rss_kib))),
        f(Some(mib(h.after.rss_kib))),
        f(Some(mib(h.loaded.pte_kib))),
        f(Some(mib(h.after.pte_kib))),
        f(Some(mib(h.after.hwm_kib))),
    )
}

/// "name median, …" over `runs` for the phases `names` (in the order of [`PHASES`]).
fn phase_medians(runs: &[[f64; 8]], names: &[&str]) -> String {
    let same: Vec<(&str, &str)> = PHASES
        .iter()
        .filter(|p| names.contains(p))
        .map(|p| (*p, *p))
        .collect();
    labelled_medians(runs, &same)
}

/// "label median, …" over `runs` for the slots of [`PHASES`] named in `names` (slot, label),
/// in the order given.
fn labelled_medians(runs: &[[f64; 8]], names: &[(&str, &str)]) -> String {
    names
        .iter()
        .filter_map(|(slot, label)| {
            let k = PHASES.iter().position(|p| p == slot)?;
            let xs: Vec<f64> = runs.iter().map(|r| r[k]).collect();
            Some(format!("{label} {}", f(median(&xs))))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn samples(xs: &[f64]) -> String {
    xs.iter()
        .map(|x| f(Some(*x)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn distribution(xs: &[f64]) -> String {
    format!(
        "n={} min {} p50 {} p99 {} max {}",
        xs.len(),
        f(min(xs)),
        f(percentile(xs, 50.0)),
        f(percentile(xs, 99.0)),
        f(max(xs))
    )
}

pub fn render(c: &Context, r: &Results) -> String {
    let n = c.labels.len();
    let mut rows = Vec::new();
    let reps = c.reps;
    let dirty = c.dirty_mib;

    let (kind, other) = (c.kind, c.other_kind);
    rows.push(median_row(
        format!("1a. Longest write stall, 1 fs clean ({kind}), {SNAPSHOT_SECS} s snapshot (ms, median of {reps})"),
        &r.stall_clean_1,
        n,
    ));
    rows.push(median_row(
        format!("1b. Longest write stall, 8 fs clean ({kind}) (ms, median of {reps})"),
        &r.stall_clean_8,
        n,
    ));
    rows.push(median_row(
        format!("1c. Longest write stall, 1 fs ({kind}), {dirty} MiB dirty (ms, median of {reps})"),
        &r.stall_dirty_1,
        n,
    ));
    rows.push(stall_ratio_row(
        format!("1d. Stall ratio dirty ÷ clean, {kind} (1c ÷ 1a)"),
        &r.stall_dirty_1,
        &r.stall_clean_1,
        n,
    ));
    rows.push(median_row(
        format!("1e. Longest write stall, 1 fs clean ({other}), {SNAPSHOT_SECS} s snapshot (ms, median of {reps})"),
        &r.stall_other_clean,
        n,
    ));
    rows.push(median_row(
        format!(
            "1f. Longest write stall, 1 fs ({other}), {dirty} MiB dirty (ms, median of {reps})"
        ),
        &r.stall_other_dirty,
        n,
    ));
    rows.push(stall_ratio_row(
        format!("1g. Stall ratio dirty ÷ clean, {other} (1f ÷ 1e)"),
        &r.stall_other_dirty,
        &r.stall_other_clean,
        n,
    ));

    let mut row = median_row(
        format!(
            "2a. Cycle wall time, empty snapshot, 1 fs (ms, median of {})",
            c.cycle_reps
        ),
        &r.cycle_1,
        n,
    );
    row.target = format!(
        "≤ 1.1× the limit, and faster than fsfreeze ({})",
        floor_note(&r.cycle_1, &c.labels, "2a′")
    );
    for i in 0..n {
        let (q, b, _) = medians(&r.cycle_1, i);
        let ok = match (vs_limit(&r.cycle_1, i), q, b) {
            (Some(l), Some(q), Some(b)) => Some(l <= 1.1 && q < b),
            _ => None,
        };
        row.result[i] = pass(ok);
    }
    rows.push(row);
    rows.push(floor_row("2a′", "2a", &r.cycle_1, n));
    let mut row = median_row(
        format!(
            "2b. Cycle wall time, empty snapshot, 8 fs (ms, median of {})",
            c.cycle_reps
        ),
        &r.cycle_8,
        n,
    );
    row.target = format!(
        "≤ 1.05× the parallel limit, and fsfreeze ÷ quiesce ≥ 5× ({})",
        floor_note(&r.cycle_8, &c.labels, "2b′")
    );
    for i in 0..n {
        let ok = match (vs_limit(&r.cycle_8, i), medians(&r.cycle_8, i).2) {
            (Some(l), Some(b)) => Some(l <= 1.05 && b >= 5.0),
            _ => None,
        };
        row.result[i] = pass(ok);
    }
    rows.push(row);
    rows.push(floor_row("2b′", "2b", &r.cycle_8, n));
    // quiesce as a library in a long-lived process: the same session through the runtime API
    // in the benchmark's own process (no process started before the first FIFREEZE), shown
    // in the first quiesce column, against the same targets.
    for (label, s, target, count) in [("2c", &r.cycle_1, 1.1, 1), ("2d", &r.cycle_8, 1.05, 8)] {
        let lib = Series {
            quiesce: vec![s.library.clone()],
            fsfreeze: s.fsfreeze.clone(),
            limit_parallel: s.limit_parallel.clone(),
            limit_sequential: s.limit_sequential.clone(),
            fresh_parallel: s.fresh_parallel.clone(),
            fresh_sequential: s.fresh_sequential.clone(),
            library: Vec::new(),
        };
        let mut row = median_row(
            format!(
                "{label}. Cycle wall time, empty snapshot, {count} fs, quiesce as a library in a long-lived process (the runtime API in this one, as an agent links it; first column) (ms, median of {})",
                s.library.len()
            ),
            &lib,
            n,
        );
        row.target = format!("≤ {target}× the parallel limit");
        for r in row.result.iter_mut() {
            *r = "–";
        }
        if let Some(first) = row.result.first_mut() {
            *first = pass(vs_limit(&lib, 0).map(|l| l <= target));
        }
        rows.push(row);
    }
    // The same with the host ballast: what the host's size costs the library.
    let h = &r.host;
    rows.push(host_row(
        "2e",
        "2c",
        1,
        h,
        (&h.cycle_1, &h.phases_1),
        (&r.cycle_1.library, &r.library_phases_1),
        n,
    ));
    rows.push(host_row(
        "2f",
        "2d",
        8,
        h,
        (&h.cycle_8, &h.phases_8),
        (&r.cycle_8.library, &r.library_phases_8),
        n,
    ));

    for (p, name, target) in [
        (50.0, "p50", None),
        (99.0, "p99", Some(5.0)),
        (100.0, "max", None),
    ] {
        let mut row = Row::new(
            format!(
                "3{}. Automatic thaw after the deadline ({DEADLINE} s), lateness {name} (ms, {} runs)",
                match name {
                    "p50" => "a",
                    "p99" => "b",
                    _ => "c",
                },
                c.runs
            ),
            n,
        );
        row.fsfreeze = "n/a (fsfreeze has no deadline)".into();
        for i in 0..n {
            let v = r.lateness.get(i).and_then(|xs| percentile(xs, p));
            row.quiesce[i] = f(v);
            row.ratio[i] = "–".into();
            if let Some(t) = target {
                row.result[i] = pass(v.map(|v| v <= t));
            }
        }
        if let Some(t) = target {
            row.target = format!("≤ {t} ms");
        }
        rows.push(row);
    }

    // The part of the lateness that is not the FITHAW call itself: how late the thaw started.
    let mut row = Row::new(
        format!(
            "3d. … of which before the FITHAW call (lateness − `thaw_us`), p99 (ms, {} runs)",
            c.runs
        ),
        n,
    );
    row.fsfreeze = "n/a (fsfreeze has no deadline)".into();
    for i in 0..n {
        let late = r.lateness.get(i).map(Vec::as_slice).unwrap_or(&[]);
        let thaw = r.lateness_thaw.get(i).map(Vec::as_slice).unwrap_or(&[]);
        let start: Vec<f64> = late.iter().zip(thaw).map(|(l, t)| l - t).collect();
        row.quiesce[i] = f(percentile(&start, 99.0));
        row.ratio[i] = "–".into();
    }
    rows.push(row);

    let baseline_kill = match r.baseline_stays_frozen {
        Some(true) => "never (stays frozen)".to_owned(),
        Some(false) => "thawed within 1 s (unexpected)".to_owned(),
        None => "–".to_owned(),
    };
    for (p, name, target) in [
        (50.0, "p50", None),
        (99.0, "p99", Some(50.0)),
        (100.0, "max", None),
    ] {
        let mut row = Row::new(
            format!(
                "4{}. SIGKILL of the controller while frozen → writable, {name} (ms, {} runs)",
                match name {
                    "p50" => "a",
                    "p99" => "b",
                    _ => "c",
                },
                c.runs
            ),
            n,
        );
        row.fsfreeze = baseline_kill.clone();
        for i in 0..n {
            let v = r.sigkill.get(i).and_then(|xs| percentile(xs, p));
            row.quiesce[i] = f(v);
            row.ratio[i] = "–".into();
            if let Some(t) = target {
                row.result[i] = pass(v.map(|v| v <= t));
            }
        }
        if let Some(t) = target {
            row.target = format!("≤ {t} ms");
        }
        rows.push(row);
    }

    let b = &c.binary;
    let kib = b.size as f64 / 1024.0;
    let mut row = Row::new("5a. CLI binary size (KiB)", n);
    let desc = format!(
        "{} ({}, {})",
        f(Some(kib)),
        if b.is_static {
            "static"
        } else {
            "dynamically linked"
        },
        if b.stripped {
            "stripped"
        } else {
            "not stripped"
        }
    );
    let ok = b.size <= 1 << 20 && b.is_static;
    for i in 0..n {
        row.quiesce[i] = desc.clone();
        row.ratio[i] = "–".into();
        row.result[i] = pass(Some(ok));
    }
    row.fsfreeze = "–".into();
    row.target = "≤ 1024 KiB, static, stripped".into();
    rows.push(row);

    let mut row = Row::new(
        format!("5b. Peak RSS of `quiesce run … -- true`, 1 fs (MiB, max of {reps}, GNU time)"),
        n,
    );
    for i in 0..n {
        let v = r
            .rss_kib
            .quiesce
            .get(i)
            .and_then(|xs| max(xs))
            .map(|k| k / 1024.0);
        row.quiesce[i] = f(v);
        row.ratio[i] = "–".into();
        row.result[i] = pass(v.map(|v| v <= 4.0));
    }
    row.fsfreeze = format!(
        "{} (`fsfreeze -f`/`-u`; `true`: {})",
        f(max(&r.rss_kib.fsfreeze).map(|k| k / 1024.0)),
        f(max(&r.rss_floor_kib).map(|k| k / 1024.0))
    );
    row.target = "≤ 4 MiB".into();
    rows.push(row);

    let mut row = Row::new("5c. Heap allocations in the freeze path", n);
    for i in 0..n {
        row.quiesce[i] = "not measured here: counted by tests/no_alloc.rs".into();
        row.ratio[i] = "–".into();
        row.result[i] = "see test";
    }
    row.fsfreeze = "–".into();
    row.target = "0".into();
    rows.push(row);

    let mut row = Row::new("6. This benchmark: wall time (s), cleanup", n);
    let ok = c.elapsed_s < 600.0 && c.cleanup_ok;
    for i in 0..n {
        row.quiesce[i] = format!(
            "{} ({})",
            f(Some(c.elapsed_s)),
            if c.cleanup_ok {
                "cleaned up"
            } else {
                "LEFTOVERS"
            }
        );
        row.ratio[i] = "–".into();
        row.result[i] = pass(Some(ok));
    }
    row.fsfreeze = "–".into();
    row.target = "< 600 s, nothing left".into();
    rows.push(row);

    let mut out = String::new();
    let _ = writeln!(out, "# quiesce vs util-linux fsfreeze\n");
    let _ = writeln!(
        out,
        "Produced by `examples/bench` (issue 6). Reproduce (as root, from the repository root):\n"
    );
    // The static CLI lives under the musl target directory: say how to build it too.
    let musl = if c.command_line.contains("x86_64-unknown-linux-musl") {
        "cargo build --release --target x86_64-unknown-linux-musl -p quiesce-cli\n"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "```sh\ncargo build --release -p quiesce-cli -p quiesce-bench\n{musl}{}\n```\n",
        c.command_line
            .replacen("quiesce-bench", "target/release/quiesce-bench", 1)
    );
    let _ = writeln!(out, "## Machine and setup\n");
    for (k, v) in c.machine.iter().chain(c.setup.iter()) {
        let _ = writeln!(out, "- {k}: {v}");
    }
    let _ = writeln!(out, "- host ballast (rows 2e, 2f): {}", host_setup(&r.host));
    let _ = writeln!(out, "\n## Results\n");
    let _ = write!(out, "| Measurement |");
    for l in &c.labels {
        let _ = write!(out, " `{l}` |");
    }
    let _ = write!(
        out,
        " fsfreeze | limit: in-process, parallel | limit: in-process, sequential | limit: fresh process, parallel | limit: fresh process, sequential |"
    );
    for l in &c.labels {
        let _ = write!(out, " fsfreeze ÷ `{l}` |");
    }
    for l in &c.labels {
        let _ = write!(out, " `{l}` ÷ limit |");
    }
    let _ = write!(out, " Target |");
    for l in &c.labels {
        let _ = write!(out, " Result `{l}` |");
    }
    let _ = writeln!(out);
    let cols = 1 + 4 * n + 6;
    let _ = writeln!(out, "|{}", "---|".repeat(cols));
    for row in &rows {
        let _ = write!(out, "| {} |", row.label);
        for v in &row.quiesce {
            let _ = write!(out, " {v} |");
        }
        let _ = write!(out, " {} |", row.fsfreeze);
        for v in [
            &row.limit_parallel,
            &row.limit_sequential,
            &row.fresh_parallel,
            &row.fresh_sequential,
        ] {
            let _ = write!(out, " {} |", if v.is_empty() { "–" } else { v });
        }
        for v in row.ratio.iter().chain(&row.vs_limit) {
            let _ = write!(out, " {} |", if v.is_empty() { "–" } else { v });
        }
        let _ = write!(
            out,
            " {} |",
            if row.target.is_empty() {
                "–"
            } else {
                &row.target
            }
        );
        for v in &row.result {
            let _ = write!(out, " {} |", if v.is_empty() { "–" } else { v });
        }
        let _ = writeln!(out);
    }

    let _ = writeln!(out, "\n## How each number is taken\n");
    let _ = writeln!(out, "- Ratios are fsfreeze ÷ quiesce of the medians from this run (> 1: quiesce is faster / stalls less), and quiesce ÷ the parallel limit (≥ 1; 1: as fast as the kernel allows). Rows 2a′ and 2b′ divide every median of 2a and 2b by the fresh-process floor: the faster of the two fresh-process medians of that row. Repetitions alternate which tool goes first.");
    let _ = writeln!(out, "- The limit (issue 14): the same filesystems frozen and thawed by the benchmark process itself, `FIFREEZE` and `FITHAW` on descriptors opened before the clock starts, either in parallel (one thread per filesystem, started before the clock; the snapshot command between the two rounds) or one after the other on one thread (thawed in reverse order). No process to start, no deadline to keep, no pre-sync: no tool can do the same work faster. Measured in the same repetitions as the tools, interleaved with them.");
    let _ = writeln!(out, "- The limit in a fresh process (rows 2a and 2b): the floor for any tool that runs as its own process. For each cycle the benchmark starts its own binary again (`quiesce-bench --fresh-limit …`, a hidden mode; its size and linking under setup), spawned, waited for and timed exactly as `quiesce run` is (from before the spawn to the moment its exit is seen). The child does the least any freezing command must do: the benchmark's safety guard on each mount (the scratch directory and loop devices passed on its command line), open the mount points, `FIFREEZE` them, run the snapshot command (spawned as the in-process limit spawns it), `FITHAW` them in reverse, print its own split, exit 0. Sequential: on its main thread, one after the other, as `fsfreeze -f` does; parallel: one thread per filesystem started first, as the in-process parallel limit. A process started just before its first `FIFREEZE` waits out a kernel grace period that its own start put in flight (`freeze_super` → `rcu_sync_enter` → `synchronize_rcu`): the in-process limit does not, no command-line tool can avoid it. Interleaved with the other tools in the same repetitions.");
    let _ = writeln!(out, "- fsfreeze baseline: one `fsfreeze -f` process per mount, the snapshot command, one `fsfreeze -u` per mount in reverse order, each process spawned and waited for in turn. quiesce: `quiesce run --json --timeout 10 MOUNT... -- CMD` (its report's `phases` are listed under Samples: where the time went).");
    let _ = writeln!(out, "- 1: one writer thread per frozen filesystem does 4 KiB `pwrite` + `fsync` in a loop, timing each; the cycle (snapshot `sleep {SNAPSHOT_SECS}`) starts 100 ms after the writers and they stop 100 ms after it; the number is the longest write+fsync of any writer. Each repetition starts with `syncfs` on every filesystem. 1c writes {dirty} MiB (1 MiB `write`s, no fsync) to a second file on the filesystem right before the writers start.");
    let _ = writeln!(out, "- 2: wall time of the whole cycle with the snapshot `true`, from before the first process spawn to the exit of the last process.");
    let _ = writeln!(out, "- 2c, 2d: the same session through quiesce's Rust runtime API in the benchmark's own process (`prepare` → `freeze`, the snapshot command run from the controller's notification), timed from before `prepare` to the report; its report's `phases` under Samples. 2e, 2f: the same, measured last, while the process holds the host ballast (see setup), 1 and 8 filesystems alternating, at most {} repetitions; arm (forking the helpers) and finish (their teardown) are the phases that grow with the host.", crate::measure::HOST_REPS);
    let _ = writeln!(out, "- 3: `quiesce freeze --stdin --timeout {DEADLINE} --json MOUNT` with stdin held open and no `thaw` line; lateness = `window_us` (first FIFREEZE issued to last FITHAW returned, from its JSON report) − `timeout_ms`. Every run must end with exit 13 (`end: deadline`) and the filesystem must be writable afterwards. 3d subtracts the duration of the FITHAW call itself (`thaw_us` of the same report): how late quiesce started to thaw, as opposed to how long the kernel took to thaw.");
    let _ = writeln!(out, "- 4: `quiesce freeze --stdin --timeout 30 MOUNT`; after `frozen`, a thread starts a 4 KiB `pwrite` to a file opened before the freeze (checked to be blocked for 20 ms), then SIGKILL to quiesce; the number is SIGKILL sent → that write returned. Baseline: `fsfreeze -f` has exited by design (nothing to kill); a blocked write is watched for {} s, then the benchmark thaws it.", BASELINE_WATCH.as_secs());
    let _ = writeln!(out, "- 5: size of the benchmarked binary and `file -b -L` on it: {}. Peak RSS: `/usr/bin/time -f %M` (GNU time: `ru_maxrss` of the process and its reaped children, i.e. the snapshot command `true`) around `quiesce run --timeout 10 MOUNT -- true`, max of the runs; GNU time rather than the benchmark's own `wait4`, because a child's `ru_maxrss` starts from the RSS of the process that spawned it (the kernel keeps the old address space's high-water mark across exec); `true` under GNU time shows that floor. Heap allocations are not counted by this program: `tests/no_alloc.rs` counts them (a counting global allocator around the freeze → thaw path on real ext4 and xfs) and asserts 0.", b.file);
    let _ = writeln!(
        out,
        "- Percentiles are nearest-rank (p99 of 100 runs is the 99th smallest)."
    );

    let _ = writeln!(out, "\n## Samples (ms unless said)\n");
    let series: [(&str, &Series); 7] = [
        ("1a stall 1 fs clean", &r.stall_clean_1),
        ("1b stall 8 fs clean", &r.stall_clean_8),
        ("1c stall 1 fs dirty", &r.stall_dirty_1),
        ("1e stall 1 fs clean, other kind", &r.stall_other_clean),
        ("1f stall 1 fs dirty, other kind", &r.stall_other_dirty),
        ("2a cycle 1 fs", &r.cycle_1),
        ("2b cycle 8 fs", &r.cycle_8),
    ];
    for (name, s) in series {
        for (i, l) in c.labels.iter().enumerate() {
            let xs = s.quiesce.get(i).map(Vec::as_slice).unwrap_or(&[]);
            let _ = writeln!(out, "- {name}, `{l}`: {}", samples(xs));
        }
        let _ = writeln!(out, "- {name}, fsfreeze: {}", samples(&s.fsfreeze));
        let _ = writeln!(
            out,
            "- {name}, limit (parallel): {}",
            samples(&s.limit_parallel)
        );
        let _ = writeln!(
            out,
            "- {name}, limit (sequential): {}",
            samples(&s.limit_sequential)
        );
        if !s.library.is_empty() {
            let _ = writeln!(
                out,
                "- {name}, quiesce as a library in this process: {}",
                samples(&s.library)
            );
        }
        for (how, xs) in [
            ("parallel", &s.fresh_parallel),
            ("sequential", &s.fresh_sequential),
        ] {
            if !xs.is_empty() {
                let _ = writeln!(
                    out,
                    "- {name}, limit in a fresh process ({how}): {}",
                    samples(xs)
                );
            }
        }
    }
    for (name, all) in [("2a", &r.phases_1), ("2b", &r.phases_8)] {
        for (i, l) in c.labels.iter().enumerate() {
            let runs = all.get(i).map(Vec::as_slice).unwrap_or(&[]);
            let _ = writeln!(
                out,
                "- {name} where the time went, `{l}` (its JSON report's `phases`, median of each, {} runs): {}",
                runs.len(),
                phase_medians(runs, &PHASES)
            );
        }
    }
    for (name, runs) in [("2c", &r.library_phases_1), ("2d", &r.library_phases_8)] {
        let _ = writeln!(
            out,
            "- {name} where the time went, quiesce as a library (its report's `phases`, median of each, {} runs): {}",
            runs.len(),
            phase_medians(runs, &PHASES)
        );
    }
    for (id, count, wall, runs) in [
        ("2e", 1, &r.host.cycle_1, &r.host.phases_1),
        ("2f", 8, &r.host.cycle_8, &r.host.phases_8),
    ] {
        let _ = writeln!(
            out,
            "- {id} cycle {count} fs, quiesce as a library in a host of {} MiB: {}",
            r.host.mib,
            samples(wall)
        );
        let _ = writeln!(
            out,
            "- {id} where the time went, quiesce as a library in a host of {} MiB (its report's `phases`, median of each, {} runs): {}",
            r.host.mib,
            runs.len(),
            phase_medians(runs, &PHASES)
        );
    }
    for (name, all) in [("2a", &r.limit_phases_1), ("2b", &r.limit_phases_8)] {
        for (i, l) in ["parallel", "sequential"].iter().enumerate() {
            let runs = all.get(i).map(Vec::as_slice).unwrap_or(&[]);
            let _ = writeln!(
                out,
                "- {name} where the time went, limit ({l}) (all `FIFREEZE`s returned; the snapshot command; all `FITHAW`s returned; median of each, {} runs): {}",
                runs.len(),
                phase_medians(runs, &["freeze", "wait", "thaw"])
            );
        }
    }
    for (name, all) in [("2a", &r.fresh_phases_1), ("2b", &r.fresh_phases_8)] {
        for (i, l) in ["parallel", "sequential"].iter().enumerate() {
            let runs = all.get(i).map(Vec::as_slice).unwrap_or(&[]);
            let _ = writeln!(
                out,
                "- {name} where the time went, limit in a fresh process ({l}) (the child's own split: open = the guard and opening the mounts{}, freeze = all `FIFREEZE`s returned, snapshot = the command, thaw = all `FITHAW`s returned; process = the rest of the wall time: spawn, exec and start-up of the child, its exit, the benchmark seeing it; median of each, {} runs): {}",
                if *l == "parallel" { " and starting a thread per filesystem" } else { "" },
                runs.len(),
                labelled_medians(
                    runs,
                    &[
                        ("plan", "open"),
                        ("freeze", "freeze"),
                        ("wait", "snapshot"),
                        ("thaw", "thaw"),
                        ("finish", "process"),
                    ]
                )
            );
        }
    }
    let _ = writeln!(
        out,
        "- 1c dirty data seen (growth of Dirty+Writeback in /proc/meminfo while writing, MiB): {}",
        samples(&r.dirty_seen_mib)
    );
    for (i, l) in c.labels.iter().enumerate() {
        let xs = r.lateness.get(i).map(Vec::as_slice).unwrap_or(&[]);
        let _ = writeln!(out, "- 3 lateness, `{l}`: {}", distribution(xs));
        let xs = r.lateness_thaw.get(i).map(Vec::as_slice).unwrap_or(&[]);
        let _ = writeln!(
            out,
            "- 3 of which the FITHAW itself (`thaw_us`), `{l}`: {}",
            distribution(xs)
        );
        let xs = r.lateness_freeze.get(i).map(Vec::as_slice).unwrap_or(&[]);
        let _ = writeln!(
            out,
            "- 3 the FIFREEZE of those runs (`freeze_us`), `{l}`: {}",
            distribution(xs)
        );
        let xs = r.sigkill.get(i).map(Vec::as_slice).unwrap_or(&[]);
        let _ = writeln!(out, "- 4 SIGKILL → writable, `{l}`: {}", distribution(xs));
        let xs = r.rss_kib.quiesce.get(i).map(Vec::as_slice).unwrap_or(&[]);
        let _ = writeln!(out, "- 5b peak RSS (KiB), `{l}`: {}", samples(xs));
    }
    let _ = writeln!(
        out,
        "- 5b peak RSS (KiB), fsfreeze (larger of -f and -u): {}",
        samples(&r.rss_kib.fsfreeze)
    );
    let _ = writeln!(
        out,
        "- 5b peak RSS (KiB), `true` (floor of the method): {}",
        samples(&r.rss_floor_kib)
    );
    let _ = writeln!(out, "- cleanup: {}", c.cleanup);
    if !r.notes.is_empty() {
        let _ = writeln!(out, "\n## Notes\n");
        for note in &r.notes {
            let _ = writeln!(out, "- {note}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ballast::Memory;

    /// Phases with only `arm` and `finish` set (ms).
    fn arm_finish(arm: f64, finish: f64) -> [f64; 8] {
        let mut p = [0.5; 8];
        p[1] = arm;
        p[7] = finish;
        p
    }

    #[test]
    fn the_host_rows_show_the_growth_beside_the_plain_cycle() {
        let h = Host {
            mib: 1024,
            loaded: Memory {
                rss_kib: 1050 * 1024,
                hwm_kib: 1050 * 1024,
                pte_kib: 2048,
            },
            ..Host::default()
        };
        let with = [arm_finish(150.0, 90.0), arm_finish(170.0, 110.0)];
        let without = [arm_finish(1.5, 0.7)];
        let row = host_row(
            "2e",
            "2c",
            1,
            &h,
            (&[200.0, 220.0], &with),
            (&[40.0], &without),
            2,
        );
        assert!(row.label.starts_with("2e. "), "{}", row.label);
        for part in ["1 fs", "host of 1024 MiB", "VmRSS 1050 MiB", "median of 2)"] {
            assert!(row.label.contains(part), "{part}: {}", row.label);
        }
        assert_eq!(
            row.quiesce,
            ["210 (5.25× 2c; arm 160 vs 1.50, finish 100 vs 0.70)", "–"]
        );
        assert!(row.target.starts_with("none (information"));
        assert!(row.target.contains("2 repetitions"));
        assert_eq!(row.result, ["–", "–"]);
        assert_eq!(row.fsfreeze, "–");
        // Without samples of 2c: no ratio, not a division by zero.
        let row = host_row("2f", "2d", 8, &h, (&[300.0], &with), (&[], &[]), 1);
        assert_eq!(row.quiesce, ["300 (– 2d; arm 160 vs –, finish 100 vs –)"]);

        let line = host_setup(&h);
        assert!(line.starts_with("1024 MiB of anonymous memory"), "{line}");
        assert!(line.contains("1050 MiB with it"), "{line}");
    }

    fn series(fresh_parallel: &[f64], fresh_sequential: &[f64]) -> Series {
        Series {
            quiesce: vec![vec![44.0, 46.0], vec![50.0]],
            fsfreeze: vec![40.0],
            limit_parallel: vec![32.0],
            limit_sequential: vec![24.0],
            fresh_parallel: fresh_parallel.to_vec(),
            fresh_sequential: fresh_sequential.to_vec(),
            library: Vec::new(),
        }
    }

    #[test]
    fn the_fresh_process_floor_is_the_faster_fresh_median() {
        let s = series(&[41.0, 39.0], &[38.0, 42.0]);
        assert_eq!(fresh_floor(&s), Some((40.0, "parallel")));
        let s = series(&[41.0], &[40.0]);
        assert_eq!(fresh_floor(&s), Some((40.0, "sequential")));
        assert_eq!(
            fresh_floor(&series(&[], &[50.0])),
            Some((50.0, "sequential"))
        );
        assert_eq!(fresh_floor(&series(&[], &[])), None);

        let row = floor_row("2a′", "2a", &s, 2);
        assert!(row.label.starts_with("2a′. 2a ÷ the fresh-process floor"));
        assert!(row.label.contains("here sequential"));
        assert_eq!(row.quiesce, ["1.12×", "1.25×"]);
        assert_eq!(row.fsfreeze, "1.00×");
        assert_eq!(row.limit_parallel, "0.80×");
        assert_eq!(row.limit_sequential, "0.60×");
        assert_eq!(row.fresh_parallel, "1.02×");
        assert_eq!(row.fresh_sequential, "1.00×");
        // Without fresh-process samples there is no floor: no ratios, not a division by zero.
        let row = floor_row("2b′", "2b", &series(&[], &[]), 2);
        assert_eq!(row.quiesce, ["–", "–"]);

        let labels = ["quiesce".to_owned(), "quiesce --x".to_owned()];
        assert_eq!(
            floor_note(&s, &labels, "2a′"),
            "the fresh-process floor is 1.25× the limit; `quiesce` 1.12×, `quiesce --x` 1.25× the floor, see 2a′"
        );
    }
}
