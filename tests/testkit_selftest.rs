//! Self-tests of the fixtures in tests/support (the `quiesce_testkit` crate): the safety guard,
//! filesystem setup and teardown, and external freezes with util-linux `fsfreeze`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use quiesce_testkit::*;

fn refused(p: &Path) -> bool {
    std::panic::catch_unwind(|| guard(p)).is_err()
}

/// Loop devices whose backing file is inside `dir`.
fn loops_of(dir: &Path) -> Vec<PathBuf> {
    loops_backed_under(dir)
}

#[test]
fn guard_refuses_everything_that_is_not_a_fixture() {
    require_root();
    let scratch = Scratch::new();
    for p in [
        Path::new("/"),
        Path::new("/tmp"),
        Path::new(env!("CARGO_MANIFEST_DIR")),
        Path::new("/proc"),
        Path::new("relative/path"),
        &scratch.dir,
        &scratch.path("unregistered"),
    ] {
        assert!(refused(p), "guard accepted {}", p.display());
    }
    std::fs::create_dir(scratch.path("plain")).unwrap();
    assert!(
        refused(&scratch.path("plain")),
        "guard accepted a plain dir"
    );
}

#[test]
fn guard_accepts_fixture_mounts_and_paths_inside_them_only_while_mounted() {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "a", FsKind::Ext4);
    guard(&fs.mount);
    guard(&fs.path("does-not-exist"));
    std::fs::create_dir(fs.path("sub")).unwrap();
    guard(&fs.path("sub"));
    // `..` out of the mount is resolved before checking.
    assert!(
        refused(&fs.path("sub/../..")),
        "guard accepted the scratch dir via .."
    );
    let tmp = tmpfs(&scratch, "t");
    guard(&tmp.path);
    let mount = fs.mount.clone();
    drop(fs);
    assert!(
        refused(&mount),
        "guard accepted an unmounted fixture mount point"
    );
    drop(tmp);
    assert!(
        refused(&scratch.path("t")),
        "guard accepted an unmounted tmpfs"
    );
}

#[test]
fn quiesce_builder_guards_paths() {
    require_root();
    let q = std::panic::catch_unwind(|| {
        Quiesce::sub("freeze")
            .args(["--timeout", "1"])
            .mount(Path::new("/"))
    });
    assert!(q.is_err(), "Quiesce::mount accepted /");
    // The safety net guards raw path-like arguments too (command() panics before spawning).
    let q = Quiesce::sub("freeze").args(["--timeout", "1", "/tmp"]);
    assert!(
        std::panic::catch_unwind(|| q.command()).is_err(),
        "raw /tmp argument passed the safety net"
    );
}

fn setup_and_teardown_leave_nothing_behind(kinds: &[FsKind]) {
    require_root();
    let scratch = Scratch::new();
    for &kind in kinds {
        let fs = TestFs::new(&scratch, &format!("{kind:?}").to_lowercase(), kind);
        assert!(is_mount_point(&fs.mount), "{kind:?} not mounted");
        assert_eq!(fs.dev.0, 7, "loop devices have major 7");
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            info.lines()
                .any(|l| l.contains(&format!(" {} ", fs.mount.display()))
                    && l.contains(&format!(" - {} ", kind.fs_type()))),
            "{kind:?} mount not in mountinfo"
        );
        assert_writable(&fs.mount, &"fresh fs");
        assert_eq!(loops_of(&scratch.dir).len(), 1);
        drop(fs);
        assert!(
            mounts_under(&scratch.dir).is_empty(),
            "{kind:?} still mounted"
        );
        assert!(
            loops_of(&scratch.dir).is_empty(),
            "{kind:?} loop device left behind"
        );
    }
    let dir = scratch.dir.clone();
    drop(scratch);
    assert!(!dir.exists(), "scratch dir not removed");
}

#[test]
fn testfs_ext4_xfs_setup_and_teardown_leave_nothing_behind() {
    setup_and_teardown_leave_nothing_behind(&KINDS);
}

/// Needs btrfs-progs (mkfs.btrfs).
#[test]
fn testfs_btrfs_setup_and_teardown_leave_nothing_behind() {
    setup_and_teardown_leave_nothing_behind(&[FsKind::Btrfs]);
}

#[test]
fn nested_and_loop_on_loop_teardown_in_order() {
    require_root();
    let scratch = Scratch::new();
    let a = TestFs::new(&scratch, "a", FsKind::Xfs);
    let b = TestFs::new_in(&a.mount, &scratch.dir, "b", FsKind::Ext4);
    let c = TestFs::new_in(&scratch.dir, &a.mount, "c", FsKind::Ext4);
    let again = b.mount_again(&scratch.path("b-again"));
    let bound = c.bind(&scratch.path("c-bind"));
    assert!(b.image.starts_with(&a.mount));
    assert!(c.mount.starts_with(&a.mount));
    assert_writable(&again.path, &"second mount");
    assert_writable(&bound.path, &"bind mount");
    assert_eq!(loops_of(&scratch.dir).len(), 3);
    drop((bound, again, c, b, a));
    assert!(mounts_under(&scratch.dir).is_empty(), "mounts left behind");
    assert!(
        loops_of(&scratch.dir).is_empty(),
        "loop devices left behind"
    );
}

#[test]
fn fsfreeze_fsthaw_and_is_frozen() {
    require_root();
    let scratch = Scratch::new();
    for kind in KINDS {
        let fs = TestFs::new(&scratch, &format!("{kind:?}").to_lowercase(), kind);
        assert!(!fs.is_frozen(), "{kind:?}: fresh fs reported frozen");
        fs.fsfreeze();
        assert!(
            fs.is_frozen(),
            "{kind:?}: fsfreeze'd fs not reported frozen"
        );
        let mut probe = start_write_probe(&fs.mount);
        assert!(
            !probe.completed_within(Duration::from_secs(1)),
            "{kind:?}: write completed on a frozen fs"
        );
        fs.fsthaw();
        assert!(
            probe.wait(Duration::from_secs(10)),
            "{kind:?}: write did not complete after thaw"
        );
        assert!(!fs.is_frozen(), "{kind:?}: thawed fs reported frozen");
        fs.fsthaw(); // not frozen: tolerated
    }
}

#[test]
fn teardown_thaws_a_frozen_fs_with_blocked_writers() {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "a", FsKind::Xfs);
    fs.fsfreeze();
    let probe = start_write_probe(&fs.mount);
    assert!(fs.is_frozen());
    drop(probe); // blocked: parked, reaped after the thaw in teardown
    drop(fs);
    assert!(mounts_under(&scratch.dir).is_empty(), "mount left behind");
    assert!(loops_of(&scratch.dir).is_empty(), "loop device left behind");
    assert_eq!(
        reap_pending(Duration::from_secs(1)),
        0,
        "blocked probes not reaped"
    );
}

#[test]
fn run_timeout_kills_on_expiry() {
    let mut cmd = std::process::Command::new("sleep");
    cmd.arg("30");
    let t = std::time::Instant::now();
    let r = run_timeout(&mut cmd, Duration::from_millis(300));
    assert!(r.is_err(), "sleep 30 finished within 300 ms?");
    assert!(t.elapsed() < Duration::from_secs(5));
    let out = run_timeout(
        std::process::Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]),
        Duration::from_secs(10),
    )
    .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(out.stdout, b"out\n");
    assert_eq!(out.stderr, b"err\n");
}

#[test]
fn json_parses_cargo_like_lines() {
    let j = Json::parse(r#"{"reason":"compiler-artifact","executable":null,"n":[1,2.5,-3e2]}"#)
        .unwrap();
    assert!(j["executable"].is_null());
    assert_eq!(j["n"][2].as_f64(), Some(-300.0));
}

#[test]
fn usr1_recorder_sees_the_sender() {
    install_usr1_recorder();
    let me = std::process::id();
    let sender = usr1_from_other_process(me);
    assert!(
        wait_usr1_from(sender, Duration::from_secs(5)),
        "the SIGUSR1 from pid {sender} was not recorded"
    );
}
