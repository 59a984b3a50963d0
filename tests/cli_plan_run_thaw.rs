//! End-to-end tests of `quiesce plan` (order: a loop filesystem before the filesystem holding
//! its image, a nested mount before its parent), `quiesce thaw`, `quiesce run`, and foreign
//! freezes and thaws (exit 15 and 16).

use std::path::Path;
use std::time::Duration;

use quiesce_testkit::*;

const RUN: Duration = Duration::from_secs(30);

/// A: a filesystem; B: a loop filesystem whose image is on A; C: mounted inside A.
/// Fields drop in declaration order: C and B (which live on A) before A.
struct Stack {
    c: TestFs,
    b: TestFs,
    a: TestFs,
}

impl Stack {
    fn new(scratch: &Scratch, outer: FsKind, inner: FsKind) -> Stack {
        // A must hold B's image: room for the metadata mkfs writes (the xfs log is zeroed).
        let size = outer.image_size().max(2 * inner.image_size());
        let a = TestFs::new_sized_in(&scratch.dir, &scratch.dir, "a", outer, size);
        let b = TestFs::new_in(&a.mount, &scratch.dir, "b", inner);
        let c = TestFs::new_in(&scratch.dir, &a.mount, "c", inner);
        Stack { c, b, a }
    }

    fn all(&self) -> [&Path; 3] {
        [&self.a.mount, &self.b.mount, &self.c.mount]
    }
}

/// Checks the order constraints in a plan report: B before A, C before A, and "order" == index.
fn check_order(out: &QuiesceOutput, j: &Json, s: &Stack) {
    for (i, t) in j["targets"].items().iter().enumerate() {
        ensure(
            t["order"].as_i64() == Some(i as i64),
            out,
            format!("targets[{i}].order should be {i} (the array is in freeze order)"),
        );
    }
    let ia = target_index(out, j, &s.a.mount);
    let ib = target_index(out, j, &s.b.mount);
    let ic = target_index(out, j, &s.c.mount);
    ensure(
        ib < ia,
        out,
        "B (its image is on A) must be frozen before A",
    );
    ensure(ic < ia, out, "C (mounted inside A) must be frozen before A");
}

/// Item 8: the order does not depend on the order of the arguments.
fn plan_orders_by_storage_and_nesting(outer: FsKind, inner: FsKind) {
    require_root();
    let scratch = Scratch::new();
    let s = Stack::new(&scratch, outer, inner);
    let [a, b, c] = s.all();
    for args in [[a, b, c], [c, b, a], [b, a, c]] {
        let out = Quiesce::sub("plan").arg("--json").mounts(&args).run(RUN);
        let j = check_report(&out, "plan", 0);
        ensure(
            j["targets"].items().len() == 3,
            &out,
            "three named filesystems should be three targets",
        );
        for t in j["targets"].items() {
            check_str(&out, t, "outcome", "planned");
        }
        check_order(&out, &j, &s);
        check_str(&out, target(&out, &j, b), "fs_type", inner.fs_type());
        check_str(&out, target(&out, &j, b), "device", &s.b.dev_string());
        for p in s.all() {
            assert_writable(p, &out);
        }
    }
}

#[test]
fn plan_orders_ext4_on_xfs() {
    plan_orders_by_storage_and_nesting(FsKind::Xfs, FsKind::Ext4);
}

#[test]
fn plan_orders_xfs_on_ext4() {
    plan_orders_by_storage_and_nesting(FsKind::Ext4, FsKind::Xfs);
}

/// `plan` with no MOUNT plans every freezable filesystem (ours among them, in order) and lists
/// our tmpfs as skipped with a reason; `--exclude` removes one. Nothing is frozen.
#[test]
fn plan_all_and_exclude() {
    require_root();
    let scratch = Scratch::new();
    let s = Stack::new(&scratch, FsKind::Ext4, FsKind::Ext4);
    let t = tmpfs(&scratch, "tmpfs");
    let out = Quiesce::sub("plan").arg("--json").run(RUN);
    let j = check_report(&out, "plan", 0);
    check_order(&out, &j, &s);
    let tm = abs(&t.path);
    let skipped = j["skipped"]
        .items()
        .iter()
        .find(|k| k["mount_point"].as_str() == Some(tm.as_str()));
    ensure(
        skipped.is_some(),
        &out,
        format!("tmpfs {tm} not in \"skipped\""),
    );
    let k = skipped.unwrap();
    check_str(&out, k, "fs_type", "tmpfs");
    ensure(
        k["reason"].as_str().is_some_and(|r| !r.is_empty()),
        &out,
        "a skipped filesystem needs a reason",
    );
    let out = Quiesce::sub("plan")
        .args(["--json", "--exclude"])
        .arg(&s.b.mount)
        .run(RUN);
    let j = check_report(&out, "plan", 0);
    let b = abs(&s.b.mount);
    ensure(
        !j["targets"]
            .items()
            .iter()
            .any(|t| t["mount_point"].as_str() == Some(b.as_str())),
        &out,
        "--exclude B: B is still a target",
    );
    target(&out, &j, &s.a.mount);
    for p in s.all() {
        assert_writable(p, &out);
    }
}

/// Item 8: `thaw` on a filesystem that is not frozen: reported not-frozen, exit 0.
fn thaw_not_frozen(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "a", kind);
    let out = Quiesce::sub("thaw").arg("--json").mount(&fs.mount).run(RUN);
    let j = check_report(&out, "thaw", 0);
    check_str(&out, target(&out, &j, &fs.mount), "outcome", "not-frozen");
    assert_writable(&fs.mount, &out);
}

/// Item 8: `thaw` on a filesystem frozen by `fsfreeze -f` thaws it.
fn thaw_frozen(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "a", kind);
    fs.fsfreeze();
    assert_frozen(&fs, &"after fsfreeze -f");
    let out = Quiesce::sub("thaw").arg("--json").mount(&fs.mount).run(RUN);
    let j = check_report(&out, "thaw", 0);
    check_str(&out, target(&out, &j, &fs.mount), "outcome", "thawed");
    assert_writable(&fs.mount, &out);
    let out = Quiesce::sub("thaw").mount(&fs.mount).run(RUN);
    out.assert_code(0, "plain `thaw` (no --json) of a thawed filesystem");
}

/// `run ... -- true`: exit 0, consistent; `-- false`: exit 17; writable afterwards.
fn run_true_and_false(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "a", kind);
    for (cmd, code, consistency, end) in [
        ("true", 0, "filesystem-consistent", "acknowledged"),
        ("false", 17, "not-consistent", "snapshot-failed"),
    ] {
        let out = Quiesce::sub("run")
            .args(["--timeout", "30"])
            .mount(&fs.mount)
            .args(["--", cmd])
            .run(RUN);
        out.assert_code(code, &format!("run -- {cmd}"));
        assert_writable(&fs.mount, &out);
        let out = Quiesce::sub("run")
            .args(["--timeout", "30", "--json"])
            .mount(&fs.mount)
            .args(["--", cmd])
            .run(RUN);
        let j = check_report(&out, "run", code);
        check_str(&out, &j, "consistency", consistency);
        check_str(&out, &j, "end", end);
        check_str(&out, target(&out, &j, &fs.mount), "outcome", "thawed");
        assert_writable(&fs.mount, &out);
    }
}

/// `run`: the command runs while the filesystem is frozen (a write it starts blocks).
fn run_command_sees_a_frozen_fs(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "a", kind);
    let verdict = scratch.path("verdict");
    let script = format!(
        "dd if=/dev/zero of='{}' bs=4096 count=1 status=none </dev/null >/dev/null 2>&1 & \
         sleep 1; if kill -0 $! 2>/dev/null; then echo blocked; else echo completed; fi > '{}'",
        fs.path("written-by-cmd").display(),
        verdict.display()
    );
    let out = Quiesce::sub("run")
        .args(["--timeout", "30", "--json"])
        .mount(&fs.mount)
        .args(["--", "sh", "-c", &script])
        .run(RUN);
    check_report(&out, "run", 0);
    let v = std::fs::read_to_string(&verdict).unwrap_or_default();
    ensure(
        v.trim() == "blocked",
        &out,
        format!("a write started by the snapshot command should block while frozen; it {v:?}"),
    );
    assert_writable(&fs.mount, &out);
}

/// `run` past its deadline: thawed first, the command terminated, exit 13.
fn run_deadline(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "a", kind);
    let out = Quiesce::sub("run")
        .args(["--timeout", "2", "--json"])
        .mount(&fs.mount)
        .args(["--", "sleep", "60"])
        .run(RUN);
    let j = check_report(&out, "run", 13);
    check_str(&out, &j, "consistency", "not-consistent");
    check_str(&out, &j, "end", "deadline");
    ensure(
        out.elapsed < Duration::from_secs(20),
        &out,
        "run --timeout 2 -- sleep 60 should end shortly after the deadline",
    );
    assert_writable(&fs.mount, &out);
}

/// A filesystem frozen by someone else (fsfreeze -f): exit 15, the report names the path, and
/// their freeze is left alone (failure catalogue 10).
fn foreign_freeze_is_left_alone(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "a", kind);
    let path = abs(&fs.mount);
    fs.fsfreeze();
    for json in [false, true] {
        let mut q = Quiesce::sub("freeze").args(["--stdin", "--timeout", "5"]);
        if json {
            q = q.arg("--json");
        }
        let out = q.mount(&fs.mount).run(RUN);
        let still_frozen = fs.is_frozen();
        if !still_frozen {
            // Re-establish the foreign freeze for the next round before failing below.
            fs.fsfreeze();
        }
        out.assert_code(15, "the filesystem was already frozen by another holder");
        ensure(
            still_frozen,
            &out,
            "quiesce thawed a freeze it did not make (failure catalogue 10)",
        );
        if json {
            let j = check_report(&out, "freeze", 15);
            check_str(&out, &j, "consistency", "not-consistent");
            check_str(
                &out,
                target(&out, &j, &fs.mount),
                "outcome",
                "freeze-failed",
            );
            ensure(
                j["message"].as_str().is_some_and(|m| m.contains(&path)),
                &out,
                "the JSON message should name the path that was already frozen",
            );
        } else {
            ensure(
                out.stdout.contains(&path) || out.stderr.contains(&path),
                &out,
                "the output should name the path that was already frozen",
            );
        }
    }
    fs.fsthaw();
    assert_writable(&fs.mount, &"after our own fsfreeze -u");
}

/// Someone else thaws our filesystem during the window: exit 16 (suspect).
fn foreign_thaw_is_suspect(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "a", kind);
    let mut q = Quiesce::sub("freeze")
        .args(["--stdin", "--timeout", "60", "--json"])
        .mount(&fs.mount)
        .spawn();
    assert!(
        q.wait_for_line("frozen", Duration::from_secs(15)),
        "no `frozen` line"
    );
    fs.fsthaw();
    q.send_line("thaw");
    let out = q.wait(Duration::from_secs(15));
    let j = check_report(&out, "freeze", 16);
    check_str(&out, &j, "consistency", "not-consistent");
    assert_writable(&fs.mount, &out);
}

per_kind!(
    thaw_not_frozen,
    thaw_frozen,
    run_true_and_false,
    run_command_sees_a_frozen_fs,
    run_deadline,
    foreign_freeze_is_left_alone,
    foreign_thaw_is_suspect,
);
