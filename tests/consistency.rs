//! Issue 2, acceptance item 1: a copy of a disk image taken inside `quiesce run` is
//! file-system-consistent, under a live metadata-churn and fsync workload.
//!
//! For each filesystem type (ext4, xfs; one test each, so they run in parallel), on a
//! loop-mounted image of its own under a fresh scratch directory:
//!
//! 1. a background workload (`support/workload.rs`) churns ~1000 small files and appends
//!    fsynced sequence records, publishing the last acknowledged number outside the filesystem;
//! 2. [`SNAPSHOTS`] times (`QUIESCE_SOAK_SNAPSHOTS` overrides it): `quiesce run --timeout 30
//!    --json MOUNT -- sh -c 'cat ACKED > ACKED-AT-SNAPSHOT; exec cp --sparse=always IMAGE COPY'`.
//!    The command must exit 0 and report `"consistency":"filesystem-consistent"` (also `end`
//!    `acknowledged`, the target `thawed` with the right type and device, and `freeze_us <=
//!    window_us <= elapsed`), and the copy must be clean:
//!    - ext4: `dumpe2fs -h` shows no `needs_recovery` and state `clean`, `e2fsck -fn` exits 0;
//!    - xfs: `xfs_logprint -t` shows nothing but the superblock-only transactions with which a
//!      freeze covers the log; after one rw mount (`-o nouuid`), `xfs_repair -n` exits 0;
//!    - its sequence file holds every record 1..=N with N the number acknowledged before the
//!      freeze (read by the snapshot command while frozen) and at most one more, nothing else,
//!      and no torn tail of NUL bytes;
//! 3. [`CONTROL_COPIES`] times (`QUIESCE_SOAK_CONTROL_COPIES`), the control group: the same
//!    copy and checks without any freeze. Its results are printed, not asserted (they show that
//!    the checks can fail).
//!
//! Run with `cargo test -p quiesce --test consistency -- --nocapture --test-threads=2` to see
//! the summary tables.

#[path = "support/workload.rs"]
mod workload;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use quiesce_testkit::{
    check_report, check_str, ensure, is_mount_point, quiesce_bin, require_root, run_timeout,
    target, unmount, FsKind, Quiesce, Scratch, TestFs,
};
use workload::{check_sequence, read_acked, SeqCheck, Workload, WorkloadStats, SEQ_FILE};

/// Snapshots under `quiesce run` per filesystem type.
const SNAPSHOTS: usize = 20;
/// Copies without a freeze per filesystem type.
const CONTROL_COPIES: usize = 20;
/// Progress the workload must make between two copies, so that every copy races real writes.
const MIN_NEW_RECORDS: u64 = 20;
const MIN_NEW_CHURN_OPS: u64 = 100;
/// Deadline for every external command (quiesce itself has `--timeout 30`).
const CMD_TIMEOUT: Duration = Duration::from_secs(90);

quiesce_testkit::per_kind!(copies_taken_inside_quiesce_run_are_consistent);

fn copies_taken_inside_quiesce_run_are_consistent(kind: FsKind) {
    require_root();
    let started = Instant::now();
    // Build the CLI (once) before the workload starts, not inside the first iteration.
    let _ = quiesce_bin();
    // Drop order (reverse of declaration): workload, filesystem, scratch directory.
    let scratch = Scratch::new();
    let name = kind.fs_type();
    let testfs = TestFs::new(&scratch, name, kind);
    let acked_path = scratch.path("acked");
    let workload = Workload::start(&testfs.mount, &acked_path).expect("start the workload");
    workload
        .wait_for(MIN_NEW_RECORDS, MIN_NEW_CHURN_OPS, Duration::from_secs(30))
        .expect("workload warm-up");

    let run = Run {
        name,
        kind,
        scratch: &scratch,
        testfs: &testfs,
        acked_path: &acked_path,
        workload: &workload,
    };
    let snapshots = count_from_env("QUIESCE_SOAK_SNAPSHOTS", SNAPSHOTS);
    let control_copies = count_from_env("QUIESCE_SOAK_CONTROL_COPIES", CONTROL_COPIES);
    let mut results = Results::default();
    // Interleaved, so that both groups see the same workload.
    for i in 0..snapshots.max(control_copies) {
        if i < snapshots {
            run.snapshot_inside_quiesce(i, &mut results);
        }
        if i < control_copies {
            run.copy_without_freeze(i, &mut results);
        }
    }

    workload.check_alive().expect("workload during the run");
    let stats = workload.stop();
    println!("{}", results.summary(name, &stats, started.elapsed()));

    assert!(
        stats.healthy(),
        "{name}: the workload did not run cleanly: {stats}"
    );
    assert!(
        results.failures.is_empty(),
        "{name}: {} of {snapshots} copies taken inside `quiesce run` are not consistent:\n  {}",
        results.failures.len(),
        results.failures.join("\n  ")
    );
    assert_eq!(results.frozen.copies, snapshots);
}

/// `default`, or the value of the environment variable `var` (for longer soak runs; the
/// minimum stays 10).
fn count_from_env(var: &str, default: usize) -> usize {
    match std::env::var(var) {
        Ok(v) => v
            .parse::<usize>()
            .unwrap_or_else(|e| panic!("{var}={v:?}: {e}"))
            .max(10),
        Err(_) => default,
    }
}

/// One filesystem under test, with its workload.
struct Run<'a> {
    name: &'static str,
    kind: FsKind,
    scratch: &'a Scratch,
    testfs: &'a TestFs,
    acked_path: &'a Path,
    workload: &'a Workload,
}

/// What the copies showed, per group.
#[derive(Default)]
struct Results {
    frozen: Tally,
    control: Tally,
    /// `window_us` of each report: first FIFREEZE to last FITHAW.
    windows_us: Vec<u64>,
    /// `targets[].freeze_us`: how long FIFREEZE itself took (flushing).
    freezes_us: Vec<u64>,
    /// Copies taken inside `quiesce run` that are not consistent, described in full.
    failures: Vec<String>,
    /// The first control copy with each kind of problem, described in full.
    control_examples: BTreeMap<&'static str, String>,
}

impl Run<'_> {
    /// `quiesce run ... -- sh -c 'cat ACKED > ACKED-AT; exec cp IMAGE COPY'`, then the checks.
    fn snapshot_inside_quiesce(&self, i: usize, results: &mut Results) {
        let name = self.name;
        wait_for_progress(self.workload);
        let copy = self.scratch.path(format!("copy-{i}.img"));
        let acked_at = self.scratch.path(format!("acked-at-snapshot-{i}"));
        // Runs while frozen: the writer cannot fsync, so ACKED holds the last number
        // acknowledged before the freeze.
        let script = format!(
            "set -e; cat {} > {}; exec cp --sparse=always {} {}",
            sh_quote(self.acked_path),
            sh_quote(&acked_at),
            sh_quote(&self.testfs.image),
            sh_quote(&copy)
        );
        let out = Quiesce::sub("run")
            .args(["--timeout", "30", "--json"])
            .mount(&self.testfs.mount)
            .args(["--", "sh", "-c", &script])
            .run(CMD_TIMEOUT);
        let report = check_report(&out, "run", 0);
        check_str(&out, &report, "consistency", "filesystem-consistent");
        let window = report["window_us"]
            .as_i64()
            .and_then(|w| u64::try_from(w).ok())
            .unwrap_or_else(|| {
                panic!("{name} snapshot {i}: no \"window_us\" number in the report\n{out}")
            });
        results.windows_us.push(window);
        check_str(&out, &report, "end", "acknowledged");
        ensure(
            report["acknowledged"].as_bool() == Some(true),
            &out,
            format!("{name} snapshot {i}: \"acknowledged\" should be true"),
        );
        ensure(
            Duration::from_micros(window) <= out.elapsed,
            &out,
            format!(
                "{name} snapshot {i}: window_us {window} is longer than the whole run ({:?})",
                out.elapsed
            ),
        );
        let t = target(&out, &report, &self.testfs.mount);
        check_str(&out, t, "outcome", "thawed");
        check_str(&out, t, "fs_type", name);
        check_str(&out, t, "device", &self.testfs.dev_string());
        let freeze_us = t["freeze_us"]
            .as_i64()
            .and_then(|f| u64::try_from(f).ok())
            .unwrap_or_else(|| panic!("{name} snapshot {i}: no numeric freeze_us\n{out}"));
        ensure(
            freeze_us <= window,
            &out,
            format!("{name} snapshot {i}: freeze_us {freeze_us} > window_us {window}"),
        );
        results.freezes_us.push(freeze_us);

        let acked = read_acked(&acked_at).unwrap_or_else(|e| panic!("{name} snapshot {i}: {e}"));
        let verdict = check_copy(
            self.kind,
            &copy,
            &self.scratch.path(format!("copy-{i}")),
            acked,
        );
        // While frozen the writer cannot get further than one record past what it had
        // acknowledged: more would mean the copy was not taken inside the freeze.
        let beyond = verdict
            .seq
            .as_ref()
            .is_some_and(|s| s.complete_to > acked + 1);
        results.frozen.add(&verdict);
        println!(
            "[{name}] snapshot {i}: window {:.1} ms; {}",
            window as f64 / 1000.0,
            verdict.summary()
        );
        if !verdict.clean() || beyond {
            results.failures.push(format!(
                "snapshot {i} (window {window} us): {}{}",
                verdict.describe(),
                if beyond {
                    "\n      the copy holds records written after the freeze"
                } else {
                    ""
                }
            ));
        }
        let _ = fs::remove_file(&copy);
    }

    /// The control group: a plain `cp` of the live image, then the same checks (not asserted).
    fn copy_without_freeze(&self, i: usize, results: &mut Results) {
        wait_for_progress(self.workload);
        let copy = self.scratch.path(format!("control-{i}.img"));
        // Everything acknowledged before the copy starts should be in it.
        let acked = self.workload.acked();
        let out = run_cmd(
            Command::new("cp")
                .arg("--sparse=always")
                .arg(&self.testfs.image)
                .arg(&copy),
        );
        assert!(
            out.status.success(),
            "{} control copy {i}: cp failed: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        let verdict = check_copy(
            self.kind,
            &copy,
            &self.scratch.path(format!("control-{i}")),
            acked,
        );
        results.control.add(&verdict);
        println!("[{}] control {i}: {}", self.name, verdict.summary());
        for (problem, _) in verdict.problems() {
            results
                .control_examples
                .entry(problem)
                .or_insert_with(|| format!("control copy {i}: {}", verdict.describe()));
        }
        let _ = fs::remove_file(&copy);
    }
}

impl Results {
    /// The table and numbers printed at the end of each test.
    fn summary(&mut self, name: &str, stats: &WorkloadStats, elapsed: Duration) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "\n=== {name}: consistency of image copies under a churn + fsync workload ==="
        );
        let _ = writeln!(s, "{}", Tally::header());
        let _ = writeln!(s, "{}", self.frozen.row("inside quiesce run"));
        let _ = writeln!(s, "{}", self.control.row("control (no freeze)"));
        for (what, values) in [
            ("freeze window (window_us)", &mut self.windows_us),
            (
                "FIFREEZE latency (targets[].freeze_us)",
                &mut self.freezes_us,
            ),
        ] {
            values.sort_unstable();
            if let (Some(min), Some(max)) = (values.first(), values.last()) {
                let _ = writeln!(
                    s,
                    "{what}: median {:.1} ms, min {:.1} ms, max {:.1} ms",
                    median(values) as f64 / 1000.0,
                    *min as f64 / 1000.0,
                    *max as f64 / 1000.0
                );
            }
        }
        if !self.frozen.sb_transactions.is_empty() {
            let _ = writeln!(
                s,
                "xfs logs of the copies taken inside quiesce run: {}",
                self.frozen
                    .sb_transactions
                    .iter()
                    .map(|(n, copies)| format!(
                        "{copies} copies with {n} superblock-only transactions"
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        let _ = writeln!(s, "workload: {stats}");
        for (problem, example) in &self.control_examples {
            let _ = writeln!(s, "first {problem} control copy: {example}");
        }
        let _ = write!(s, "elapsed: {:.1} s", elapsed.as_secs_f64());
        s
    }
}

/// Waits until the workload has made some progress since the last copy.
fn wait_for_progress(workload: &Workload) {
    let (acked, ops) = (workload.acked(), workload.churn_ops());
    workload
        .wait_for(
            acked + MIN_NEW_RECORDS,
            ops + MIN_NEW_CHURN_OPS,
            Duration::from_secs(30),
        )
        .expect("workload progress between copies");
}

/// Everything the checks found out about one copy.
#[derive(Debug, Default)]
struct CopyVerdict {
    /// ext4: `needs_recovery` is set; xfs: the log holds more than a freeze's superblock
    /// transactions.
    needs_recovery: bool,
    /// ext4: `e2fsck -fn` exited 0 and the superblock says `clean`; xfs: `xfs_repair -n` exited 0
    /// after one mount.
    fsck_clean: bool,
    /// The copy could not be mounted.
    mount_failed: bool,
    /// The sequence file, if the copy could be mounted.
    seq: Option<SeqCheck>,
    /// xfs: what `xfs_logprint -t` showed.
    xfs_log: Option<XfsLog>,
    /// Evidence for the report: what exactly was wrong.
    notes: Vec<String>,
}

impl CopyVerdict {
    fn clean(&self) -> bool {
        !self.needs_recovery
            && self.fsck_clean
            && !self.mount_failed
            && self.seq.as_ref().is_some_and(SeqCheck::ok)
    }

    /// What is wrong with the copy: (category as in the summary table, short description).
    fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        if self.needs_recovery {
            problems.push(("needs-recovery", "NEEDS RECOVERY".to_owned()));
        }
        if !self.fsck_clean {
            problems.push(("fsck-unclean", "FSCK UNCLEAN".to_owned()));
        }
        if self.mount_failed {
            problems.push(("mount-failed", "MOUNT FAILED".to_owned()));
        }
        if let Some(seq) = &self.seq {
            if seq.missing_acked() {
                let missing = seq.acked - seq.complete_to;
                problems.push(("missed-acked", format!("MISSING {missing} acked")));
            }
            if seq.torn_tail() {
                let tail = seq.torn_tail_bytes;
                problems.push(("torn-tail", format!("TORN TAIL {tail} B")));
            }
            if seq.garbage.is_some() {
                problems.push(("garbage", "GARBAGE".to_owned()));
            }
        }
        problems
    }

    /// One line: what the copy holds and what is wrong with it.
    fn summary(&self) -> String {
        let mut s = match &self.seq {
            Some(seq) => format!("acked {}, copy holds 1..={}", seq.acked, seq.complete_to),
            None => "sequence file not read".to_owned(),
        };
        if let Some(log) = &self.xfs_log {
            let _ = write!(
                s,
                ", log: {} transactions ({} superblock-only), last record at {}",
                log.transactions,
                log.superblock_only,
                log.last_record.as_deref().unwrap_or("-")
            );
        }
        let problems: Vec<String> = self.problems().into_iter().map(|(_, p)| p).collect();
        if problems.is_empty() {
            s.push_str("; clean");
        } else {
            let _ = write!(s, "; {}", problems.join(", "));
        }
        s
    }

    fn describe(&self) -> String {
        let mut s = String::new();
        let _ = write!(
            s,
            "needs recovery: {}, fsck clean: {}, ",
            self.needs_recovery, self.fsck_clean
        );
        match &self.seq {
            Some(seq) => {
                let _ = write!(s, "{SEQ_FILE}: {seq}");
            }
            None => s.push_str("sequence file not checked (mount failed)"),
        }
        for note in &self.notes {
            let _ = write!(s, "\n      {note}");
        }
        s
    }
}

/// Counts over a group of copies.
#[derive(Debug, Default)]
struct Tally {
    copies: usize,
    clean: usize,
    needs_recovery: usize,
    fsck_unclean: usize,
    mount_failed: usize,
    torn_tail: usize,
    missed_acked: usize,
    garbage: usize,
    /// xfs: how many copies had how many superblock-only log transactions (clean logs only).
    sb_transactions: BTreeMap<usize, usize>,
}

impl Tally {
    fn add(&mut self, v: &CopyVerdict) {
        self.copies += 1;
        self.clean += usize::from(v.clean());
        self.needs_recovery += usize::from(v.needs_recovery);
        self.fsck_unclean += usize::from(!v.fsck_clean);
        self.mount_failed += usize::from(v.mount_failed);
        if let Some(log) = &v.xfs_log {
            if log.transactions == log.superblock_only {
                *self.sb_transactions.entry(log.superblock_only).or_default() += 1;
            }
        }
        if let Some(seq) = &v.seq {
            self.torn_tail += usize::from(seq.torn_tail());
            self.missed_acked += usize::from(seq.missing_acked());
            self.garbage += usize::from(seq.garbage.is_some());
        }
    }

    fn header() -> String {
        format!(
            "{:<22}{:>7}{:>7}{:>16}{:>14}{:>14}{:>11}{:>14}{:>9}",
            "group",
            "copies",
            "clean",
            "needs-recovery",
            "fsck-unclean",
            "mount-failed",
            "torn-tail",
            "missed-acked",
            "garbage"
        )
    }

    fn row(&self, label: &str) -> String {
        format!(
            "{:<22}{:>7}{:>7}{:>16}{:>14}{:>14}{:>11}{:>14}{:>9}",
            label,
            self.copies,
            self.clean,
            self.needs_recovery,
            self.fsck_unclean,
            self.mount_failed,
            self.torn_tail,
            self.missed_acked,
            self.garbage
        )
    }
}

fn check_copy(kind: FsKind, copy: &Path, mount_dir: &Path, acked: u64) -> CopyVerdict {
    match kind {
        FsKind::Ext4 => check_ext4_copy(copy, mount_dir, acked),
        FsKind::Xfs => check_xfs_copy(copy, mount_dir, acked),
        other => panic!("no consistency check for {other:?}"),
    }
}

/// ext4: no `needs_recovery`, `e2fsck -fn` clean, then the sequence file (read-only mount).
fn check_ext4_copy(copy: &Path, mount_dir: &Path, acked: u64) -> CopyVerdict {
    let mut v = CopyVerdict::default();

    let out = run_cmd(Command::new("dumpe2fs").arg("-h").arg(copy));
    let text = String::from_utf8_lossy(&out.stdout);
    let state = text
        .lines()
        .find_map(|l| l.strip_prefix("Filesystem state:"))
        .map(str::trim);
    let state_clean = state == Some("clean");
    if !state_clean {
        v.notes
            .push(format!("dumpe2fs -h: Filesystem state: {state:?}"));
    }
    match text
        .lines()
        .find_map(|l| l.strip_prefix("Filesystem features:"))
    {
        Some(features) => {
            v.needs_recovery = features.split_whitespace().any(|f| f == "needs_recovery");
            if v.needs_recovery {
                v.notes.push(format!(
                    "dumpe2fs -h: Filesystem features:{}",
                    features.trim_end()
                ));
            }
        }
        None => {
            v.needs_recovery = true;
            v.notes.push(format!(
                "dumpe2fs -h exited {} without a features line: {}",
                out.status,
                excerpt(&String::from_utf8_lossy(&out.stderr), 3)
            ));
        }
    }

    let out = run_cmd(Command::new("e2fsck").arg("-fn").arg(copy));
    v.fsck_clean = out.status.success() && state_clean;
    if !out.status.success() {
        v.notes.push(format!(
            "e2fsck -fn exited {}: {}",
            out.status,
            fsck_excerpt(&combined(&out))
        ));
    }

    read_sequence(&mut v, copy, mount_dir, "ext4", "ro", acked);
    v
}

/// xfs: the log holds only a freeze's superblock transactions; one rw mount (which replays
/// them) to read the sequence file; then `xfs_repair -n` clean.
fn check_xfs_copy(copy: &Path, mount_dir: &Path, acked: u64) -> CopyVerdict {
    let mut v = CopyVerdict::default();

    let out = run_cmd(Command::new("xfs_logprint").arg("-t").arg(copy));
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        v.needs_recovery = true;
        v.notes.push(format!(
            "xfs_logprint -t exited {}: {}",
            out.status,
            excerpt(&combined(&out), 4)
        ));
    } else {
        let log = XfsLog::parse(&text);
        if !log.only_freeze_cover() {
            v.needs_recovery = true;
            v.notes.push(format!("xfs_logprint -t: {log}"));
        }
        v.xfs_log = Some(log);
    }

    // The original is still mounted with the same UUID.
    read_sequence(&mut v, copy, mount_dir, "xfs", "nouuid", acked);

    let out = run_cmd(Command::new("xfs_repair").arg("-n").arg(copy));
    v.fsck_clean = out.status.success();
    if !v.fsck_clean {
        v.notes.push(format!(
            "xfs_repair -n exited {}: {}",
            out.status,
            fsck_excerpt(&combined(&out))
        ));
    }
    v
}

/// Mounts the copy, checks its sequence file, unmounts it and detaches its loop device.
fn read_sequence(
    v: &mut CopyVerdict,
    copy: &Path,
    mount_dir: &Path,
    fs_type: &str,
    options: &str,
    acked: u64,
) {
    let mut mnt = match CopyMount::mount(copy, mount_dir, fs_type, options) {
        Ok(m) => m,
        Err(e) => {
            v.mount_failed = true;
            v.notes.push(e);
            return;
        }
    };
    let data = match fs::read(mnt.dir.join(SEQ_FILE)) {
        Ok(data) => data,
        Err(e) => {
            v.notes.push(format!("read {SEQ_FILE} in the copy: {e}"));
            Vec::new()
        }
    };
    v.seq = Some(check_sequence(&data, acked));
    if let Err(e) = mnt.release() {
        panic!("cannot clean up the mount of {}: {e}", copy.display());
    }
}

/// A copy mounted on a loop device of its own. Never frozen. Unmounted and detached on drop.
struct CopyMount {
    dir: PathBuf,
    loop_dev: Option<String>,
    mounted: bool,
}

impl CopyMount {
    /// Attaches `image` to a free loop device and mounts it at `dir` (`mount -t fs_type -o
    /// options`). A failing mount is an `Err` (a bad copy may not mount); a failing `losetup`
    /// panics.
    fn mount(image: &Path, dir: &Path, fs_type: &str, options: &str) -> Result<CopyMount, String> {
        fs::create_dir_all(dir).expect("create the mount point for a copy");
        let out = run_cmd(
            Command::new("losetup")
                .args(["--find", "--show"])
                .arg(image),
        );
        assert!(
            out.status.success(),
            "losetup --find --show {}: {}",
            image.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let dev = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let mut m = CopyMount {
            dir: dir.to_owned(),
            loop_dev: Some(dev.clone()),
            mounted: false,
        };
        let out = run_cmd(
            Command::new("mount")
                .args(["-t", fs_type, "-o", options])
                .arg(&dev)
                .arg(dir),
        );
        if !out.status.success() {
            return Err(format!(
                "mount -t {fs_type} -o {options} {dev} (copy {}) failed: {}",
                image.display(),
                excerpt(&combined(&out), 3)
            ));
        }
        m.mounted = true;
        Ok(m)
    }

    /// Unmounts and detaches; idempotent.
    fn release(&mut self) -> Result<(), String> {
        if self.mounted {
            // Retried while busy (a transient "target is busy", seen under load), then lazy.
            unmount(&self.dir);
            if is_mount_point(&self.dir) {
                return Err(format!("umount {}: still mounted", self.dir.display()));
            }
            self.mounted = false;
        }
        if let Some(dev) = &self.loop_dev {
            let out = run_timeout(Command::new("losetup").arg("-d").arg(dev), CMD_TIMEOUT)?;
            if !out.status.success() {
                return Err(format!(
                    "losetup -d {dev}: {}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            self.loop_dev = None;
        }
        let _ = fs::remove_dir(&self.dir);
        Ok(())
    }
}

impl Drop for CopyMount {
    fn drop(&mut self) {
        if let Err(e) = self.release() {
            eprintln!("cleanup of the copy mount {}: {e}", self.dir.display());
        }
    }
}

/// What `xfs_logprint -t` says about a log.
///
/// A freeze quiesces the log by writing superblock-only transactions (`xfs_log_cover`), so a
/// copy taken while frozen shows those and nothing else: each transaction is exactly one
/// buffer item for block 0 (`SUPER Block Buffer:`). A copy of a live filesystem shows
/// transactions with inode, buffer, extent-free and other items.
#[derive(Debug, Default)]
struct XfsLog {
    /// The `log tail: ... head: ... state: ...` header line.
    header: Option<String>,
    /// Where the last log record is (`cycle C block B`), to see that the log wrapped.
    last_record: Option<String>,
    transactions: usize,
    /// Transactions that consist of exactly one superblock buffer item.
    superblock_only: usize,
    /// The first lines that are not part of a superblock-only transaction (or the header).
    foreign: Vec<String>,
    foreign_count: usize,
}

impl XfsLog {
    fn parse(text: &str) -> XfsLog {
        let mut log = XfsLog::default();
        // The current transaction: its TRANS: line and the lines after it.
        let mut current: Option<(&str, Vec<&str>)> = None;
        for raw in text.lines() {
            let line = raw.trim();
            if line.is_empty() || line.chars().all(|c| c == '=') {
                continue;
            }
            if let Some(lsn) = line.strip_prefix("LOG REC AT LSN ") {
                log.finish(current.take());
                log.last_record = Some(lsn.split(" (").next().unwrap_or(lsn).to_owned());
                continue;
            }
            if line.starts_with("TRANS:") {
                log.finish(current.take());
                current = Some((line, Vec::new()));
                continue;
            }
            if let Some((_, items)) = current.as_mut() {
                items.push(line);
                continue;
            }
            if line.starts_with("log tail:") {
                log.header = Some(line.to_owned());
            } else if !(line == "xfs_logprint:"
                || line.starts_with("data device:")
                || line.starts_with("log device:"))
            {
                log.note_foreign(line);
            }
        }
        log.finish(current.take());
        log
    }

    /// Accounts for one transaction body.
    fn finish(&mut self, transaction: Option<(&str, Vec<&str>)>) {
        if let Some((trans, items)) = transaction {
            self.transactions += 1;
            if is_superblock_only(trans, &items) {
                self.superblock_only += 1;
            } else {
                self.note_foreign(trans);
                for line in items {
                    self.note_foreign(line);
                }
            }
        }
    }

    fn note_foreign(&mut self, line: &str) {
        self.foreign_count += 1;
        if self.foreign.len() < 6 {
            self.foreign.push(line.to_owned());
        }
    }

    /// True if the log holds the superblock transactions of a freeze and nothing else. (At
    /// least one: a freeze never leaves the log clean. Every frozen copy seen so far had
    /// exactly two, also when the log had wrapped.)
    fn only_freeze_cover(&self) -> bool {
        self.header.is_some()
            && self.foreign_count == 0
            && self.transactions >= 1
            && self.superblock_only == self.transactions
    }
}

/// One transaction (its `TRANS:` line and the lines after it): two log regions (`#items:2`)
/// that make up exactly one buffer item, for the superblock (block 0, one block), and nothing
/// else. This is what `xfs_log_cover` writes when a freeze quiesces the log:
///
/// ```text
/// TRANS: tid:0x927ba64d  #items:2  trans:0x927ba64d  q:0x55f00b72de30
/// BUF: cnt:2 total:2 a:0x55f00b735fe0 len:24 a:0x55f00b72deb0 len:384
///     BUF:  #regs:2   start blkno:0x0   len:1   bmap size:1   flags:0x9000
///     SUPER Block Buffer:
/// ```
fn is_superblock_only(trans: &str, items: &[&str]) -> bool {
    let trans_ok = trans.split_whitespace().any(|t| t == "#items:2");
    match items {
        [buf, desc, sb] => {
            let desc: Vec<&str> = desc.split_whitespace().collect();
            trans_ok
                && buf.starts_with("BUF: cnt:2 total:2 ")
                && desc.first() == Some(&"BUF:")
                && desc.contains(&"blkno:0x0")
                && desc.contains(&"len:1")
                && *sb == "SUPER Block Buffer:"
        }
        _ => false,
    }
}

impl std::fmt::Display for XfsLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} transactions, {} superblock-only, header {:?}",
            self.transactions,
            self.superblock_only,
            self.header.as_deref().unwrap_or("MISSING")
        )?;
        if self.foreign_count > 0 {
            write!(
                f,
                "; {} other lines, first: {:?}",
                self.foreign_count, self.foreign
            )?;
        }
        Ok(())
    }
}

/// Runs a command with [`CMD_TIMEOUT`]; a timeout or spawn failure fails the test.
fn run_cmd(cmd: &mut Command) -> Output {
    let desc = format!("{cmd:?}");
    run_timeout(cmd, CMD_TIMEOUT).unwrap_or_else(|e| panic!("{desc}: {e}"))
}

fn combined(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The first `n` non-empty lines of `text`, joined with " | ".
fn excerpt(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let mut s = lines[..lines.len().min(n)].join(" | ");
    if lines.len() > n {
        let _ = write!(s, " | ... ({} more lines)", lines.len() - n);
    }
    s
}

/// What a checker said, without its progress lines (`Pass 1: ...`, `Phase 1 - ...`,
/// `        - ...`).
fn fsck_excerpt(text: &str) -> String {
    let findings: Vec<&str> = text
        .lines()
        .filter(|l| {
            let t = l.trim_start();
            !(t.starts_with("Pass ") || t.starts_with("Phase ") || t.starts_with("- "))
        })
        .collect();
    excerpt(&findings.join("\n"), 8)
}

fn sh_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

fn median(sorted: &[u64]) -> u64 {
    sorted[sorted.len() / 2]
}

#[test]
fn xfs_logprint_parser_tells_a_frozen_log_from_a_live_one() {
    let frozen = "xfs_logprint:\n    data device: 0xffffffffffffffff\n    \
        log device: 0xffffffffffffffff daddr: 327728 length: 131072\n\n    \
        log tail: 156 head: 160 state: <DIRTY>\n\n\n\
        LOG REC AT LSN cycle 1 block 156 (0x1, 0x9c)\n\
        ============================================================================\n\
        TRANS: tid:0x927ba64d  #items:2  trans:0x927ba64d  q:0x55f00b72de30\n\
        BUF: cnt:2 total:2 a:0x55f00b735fe0 len:24 a:0x55f00b72deb0 len:384 \n\
        \tBUF:  #regs:2   start blkno:0x0   len:1   bmap size:1   flags:0x9000\n\
        \tSUPER Block Buffer:\n";
    let log = XfsLog::parse(frozen);
    assert!(log.only_freeze_cover(), "{log}");
    assert_eq!(log.transactions, 1);

    let live = format!(
        "{frozen}\nLOG REC AT LSN cycle 1 block 160 (0x1, 0xa0)\n\
         TRANS: tid:0x1  #items:3  trans:0x1  q:0x1\n\
         INO: cnt:2 total:2 a:0x1 len:56 a:0x2 len:176\n\
         \tINODE: #regs:2   ino:0x83  flags:0x1   dsize:0\n"
    );
    let log = XfsLog::parse(&live);
    assert!(!log.only_freeze_cover(), "{log}");
    assert_eq!(log.transactions, 2);
    assert_eq!(log.superblock_only, 1);

    // A live transaction often starts with the superblock too; what follows it counts.
    let mixed = frozen.replace(
        "\tSUPER Block Buffer:\n",
        "\tSUPER Block Buffer:\nINO: cnt:2 total:2 a:0x1 len:56 a:0x2 len:176\n\
         \tINODE: #regs:2   ino:0x84  flags:0x1   dsize:0\n\tCORE inode:\n",
    );
    let log = XfsLog::parse(&mixed);
    assert!(!log.only_freeze_cover(), "{log}");
    assert_eq!(log.superblock_only, 0);

    // No transactions at all is not what a freeze leaves behind.
    let empty = "xfs_logprint:\n    log tail: 2 head: 2 state: <CLEAN>\n";
    let log = XfsLog::parse(empty);
    assert!(!log.only_freeze_cover(), "{log}");
}
