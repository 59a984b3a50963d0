//! Issue 6: pre-sync and parallel freezing, both on by default, each with a switch, both in
//! the JSON report. No timings are asserted: what is checked is which filesystems were synced,
//! how the freezes were grouped (`wave`), and what a stuck `FIFREEZE` does to the others.

use std::path::Path;
use std::time::{Duration, Instant};

use quiesce_testkit::{
    assert_writable, check_report, require_root, start_write_probe_nosync, target, FsKind, Quiesce,
    QuiesceOutput, Scratch, TestFs,
};

const EXIT: Duration = Duration::from_secs(60);

fn num(out: &QuiesceOutput, v: &quiesce_testkit::Json, what: &str) -> u64 {
    v.as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number:\n{out}")) as u64
}

fn wave(out: &QuiesceOutput, j: &quiesce_testkit::Json, m: &Path) -> u64 {
    num(out, &target(out, j, m)["wave"], "wave")
}

#[test]
fn presync_and_parallel_freezing_are_on_by_default_and_reported() {
    require_root();
    let scratch = Scratch::new();
    let a = TestFs::new(&scratch, "a", FsKind::Ext4);
    let b = TestFs::new(&scratch, "b", FsKind::Xfs);
    // Dirty data to flush, not fsynced.
    std::fs::write(a.path("dirty"), vec![7u8; 8 << 20]).unwrap();
    std::fs::write(b.path("dirty"), vec![7u8; 8 << 20]).unwrap();
    let on = Quiesce::sub("run")
        .args(["--json", "--timeout", "30"])
        .mount(&a.mount)
        .mount(&b.mount)
        .args(["--", "true"])
        .run(EXIT);
    let j = check_report(&on, "run", 0);
    assert!(j["presync_us"].as_f64().is_some(), "no presync_us:\n{on}");
    for m in [&a.mount, &b.mount] {
        let t = target(&on, &j, m);
        assert!(
            num(&on, &t["presync_us"], "presync_us") > 0,
            "{} was not pre-synced:\n{on}",
            m.display()
        );
        assert_eq!(t["outcome"].as_str(), Some("thawed"), "{on}");
        assert_eq!(t["presync"].as_str(), Some("synced"), "{on}");
    }
    // Where the time went: every phase that ran has a time; no hooks here.
    let phases = &j["phases"];
    for p in ["plan", "arm", "presync", "freeze", "wait", "thaw", "finish"] {
        assert!(
            num(&on, &phases[format!("{p}_us").as_str()], "phase") > 0,
            "phase {p}:\n{on}"
        );
    }
    assert!(phases["hooks_us"].as_f64().is_some(), "{on}");
    // Independent filesystems: one wave; a freezer each for the wave and for the pre-sync.
    assert_eq!(wave(&on, &j, &a.mount), 0, "{on}");
    assert_eq!(wave(&on, &j, &b.mount), 0, "{on}");
    assert_eq!(num(&on, &j["freezers"], "freezers"), 4, "{on}");

    let off = Quiesce::sub("run")
        .args(["--json", "--no-presync", "--sequential", "--timeout", "30"])
        .mount(&a.mount)
        .mount(&b.mount)
        .args(["--", "true"])
        .run(EXIT);
    let j = check_report(&off, "run", 0);
    assert!(j["presync_us"].is_null(), "presync ran anyway:\n{off}");
    let waves = [wave(&off, &j, &a.mount), wave(&off, &j, &b.mount)];
    assert!(
        waves == [0, 1] || waves == [1, 0],
        "--sequential should freeze one after another:\n{off}"
    );
    assert_eq!(num(&off, &j["freezers"], "freezers"), 1, "{off}");
    for m in [&a.mount, &b.mount] {
        assert_eq!(
            num(&off, &target(&off, &j, m)["presync_us"], "presync_us"),
            0
        );
        assert_eq!(
            target(&off, &j, m)["presync"].as_str(),
            Some("off"),
            "{off}"
        );
    }
    assert_eq!(
        num(&off, &j["phases"]["presync_us"], "presync_us"),
        0,
        "{off}"
    );
    // The switches belong to run and freeze.
    for flag in ["--no-presync", "--sequential"] {
        let bad = Quiesce::sub("plan").arg(flag).run(EXIT);
        bad.assert_code(2, "the speed switches are for run and freeze");
    }
    assert_writable(&a.mount, &on);
    assert_writable(&b.mount, &on);
}

#[test]
fn a_loop_filesystem_is_frozen_in_a_wave_before_the_one_holding_its_image() {
    require_root();
    let scratch = Scratch::new();
    let size = FsKind::Ext4.image_size().max(2 * FsKind::Xfs.image_size());
    let x = TestFs::new_sized_in(&scratch.dir, &scratch.dir, "x", FsKind::Ext4, size);
    let b = TestFs::new_in(&x.mount, &scratch.dir, "b", FsKind::Xfs);
    let a = TestFs::new(&scratch, "a", FsKind::Ext4);
    let out = Quiesce::sub("run")
        .args(["--json", "--timeout", "30"])
        .mount(&x.mount)
        .mount(&b.mount)
        .mount(&a.mount)
        .args(["--", "true"])
        .run(EXIT);
    let j = check_report(&out, "run", 0);
    assert!(
        wave(&out, &j, &b.mount) < wave(&out, &j, &x.mount),
        "B's image lives on X: B must be frozen (and its flush done) before X freezes:\n{out}"
    );
    assert_eq!(
        wave(&out, &j, &a.mount),
        wave(&out, &j, &b.mount),
        "A depends on nothing: it is frozen together with B:\n{out}"
    );
    for m in [&x.mount, &b.mount, &a.mount] {
        assert_eq!(
            target(&out, &j, m)["outcome"].as_str(),
            Some("thawed"),
            "{out}"
        );
        assert_writable(m, &out);
    }
}

/// B's image lives on X, which the test froze: B's pre-sync and `FIFREEZE` hang until X is
/// thawed. B is mounted last, so a sequential session freezes it first.
struct Stuck {
    a: TestFs,
    c: TestFs,
    b: TestFs,
    x: TestFs,
}

impl Stuck {
    fn new(scratch: &Scratch) -> Stuck {
        let size = FsKind::Ext4.image_size().max(2 * FsKind::Ext4.image_size());
        let x = TestFs::new_sized_in(&scratch.dir, &scratch.dir, "x", FsKind::Ext4, size);
        let a = TestFs::new(scratch, "a", FsKind::Ext4);
        let c = TestFs::new(scratch, "c", FsKind::Xfs);
        let b = TestFs::new_in(&x.mount, &scratch.dir, "b", FsKind::Ext4);
        Stuck { a, c, b, x }
    }

    fn run(&self, extra: &[&str]) -> QuiesceOutput {
        Quiesce::sub("run")
            .args(["--json", "--timeout", "2"])
            .args(extra)
            .mount(&self.a.mount)
            .mount(&self.b.mount)
            .mount(&self.c.mount)
            .args(["--", "true"])
            .run(EXIT)
    }

    /// Thaws X and waits until B is writable again (its freezer thaws it once the stuck call
    /// returns).
    fn unstick(&self, out: &QuiesceOutput) {
        let since = Instant::now();
        self.x.fsthaw();
        let mut probe = start_write_probe_nosync(&self.b.mount);
        assert!(
            probe.wait(Duration::from_secs(20)),
            "B stayed frozen {:?} after X was thawed:\n{out}",
            since.elapsed()
        );
    }
}

impl Drop for Stuck {
    fn drop(&mut self) {
        // Whatever happened, X first, so that B's calls can finish.
        self.x.fsthaw();
    }
}

#[test]
fn a_stuck_freeze_holds_up_nothing_else_in_its_wave() {
    require_root();
    let scratch = Scratch::new();
    let s = Stuck::new(&scratch);
    std::fs::write(s.b.path("dirty"), vec![1u8; 4 << 20]).unwrap();

    // Sequential: B first; stuck until the deadline; A and C never attempted.
    s.x.fsfreeze();
    let seq = s.run(&["--sequential"]);
    let j = check_report(&seq, "run", 13);
    assert_eq!(
        target(&seq, &j, &s.b.mount)["outcome"].as_str(),
        Some("in-flight-at-deadline"),
        "{seq}"
    );
    for m in [&s.a.mount, &s.c.mount] {
        assert_eq!(
            target(&seq, &j, m)["outcome"].as_str(),
            Some("not-attempted"),
            "sequential: nothing after the stuck freeze is attempted:\n{seq}"
        );
    }
    s.unstick(&seq);

    // Parallel (the default): A and C are frozen beside the stuck B, then thawed at the
    // deadline; the pre-sync of B (stuck too) gave up at its limit and said so.
    s.x.fsfreeze();
    let par = s.run(&[]);
    let j = check_report(&par, "run", 13);
    assert_eq!(
        target(&par, &j, &s.b.mount)["outcome"].as_str(),
        Some("in-flight-at-deadline"),
        "{par}"
    );
    for m in [&s.a.mount, &s.c.mount] {
        assert_eq!(
            target(&par, &j, m)["outcome"].as_str(),
            Some("thawed"),
            "parallel: the others are frozen (and thawed) beside the stuck one:\n{par}"
        );
        assert_writable(m, &par);
    }
    assert!(
        par.stdout.contains("pre-sync (syncfs) of")
            && par.stdout.contains("did not finish within 2000 ms"),
        "the unfinished pre-sync should be noted:\n{par}"
    );
    eprintln!("parallel, B stuck:\n{par}");
    s.unstick(&par);
    assert_writable(&s.b.mount, &par);
}
