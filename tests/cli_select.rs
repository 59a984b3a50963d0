//! End-to-end tests of target selection: the same filesystem at two paths is one target and is
//! frozen once; only the named filesystems are frozen; relative paths are reported absolute.

use std::path::Path;
use std::time::Duration;

use quiesce_testkit::*;

const START: Duration = Duration::from_secs(15);
const EXIT: Duration = Duration::from_secs(15);

/// `quiesce freeze --stdin --json --timeout 60 PATHS...` (run in `cwd` if given), waits for
/// `frozen` and returns the running child.
fn freeze_until_frozen(paths: &[&Path], cwd: Option<&Path>) -> QuiesceChild {
    let mut q = Quiesce::sub("freeze").args(["--stdin", "--json", "--timeout", "60"]);
    if let Some(d) = cwd {
        q = q.current_dir(d);
    }
    let mut child = q.mounts(paths).spawn();
    if !child.wait_for_line("frozen", START) {
        let out = child.try_wait(Duration::from_secs(1));
        panic!(
            "no `frozen` line within {START:?}; stdout so far: {:?}; exited: {}",
            child.stdout_so_far(),
            out.map_or("no".into(), |o| o.to_string())
        );
    }
    child
}

/// Item 5: a filesystem named through two paths is one target listing both, frozen once.
fn check_two_paths(fs: &TestFs, other: &Path, how: &str) {
    let mut q = freeze_until_frozen(&[&fs.mount, other], None);
    assert_frozen(fs, &format!("frozen through {how}"));
    let mut probe = start_write_probe(other);
    assert!(
        !probe.completed_within(Duration::from_secs(1)),
        "a write through the {how} path completed while frozen"
    );
    q.send_line("thaw");
    let out = q.wait(EXIT);
    let j = check_report(&out, "freeze", 0);
    check_str(&out, &j, "consistency", "filesystem-consistent");
    ensure(
        j["targets"].items().len() == 1,
        &out,
        format!("the same filesystem at two paths ({how}) should be one target"),
    );
    let t = &j["targets"][0];
    check_str(&out, t, "outcome", "thawed");
    check_str(&out, t, "device", &fs.dev_string());
    let paths = t["paths"].str_array();
    for p in [&fs.mount, other] {
        ensure(
            paths.contains(&abs(p).as_str()),
            &out,
            format!("{} missing from the target's paths {paths:?}", abs(p)),
        );
    }
    ensure(
        probe.wait(Duration::from_secs(10)),
        &out,
        "the write did not complete after the thaw",
    );
    assert_writable(&fs.mount, &out);
}

fn second_mount_of_the_same_device(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "a", kind);
    let again = fs.mount_again(&scratch.path("again"));
    check_two_paths(&fs, &again.path, "a second mount of the device");
}

fn bind_mount(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "a", kind);
    let bound = fs.bind(&scratch.path("bind"));
    check_two_paths(&fs, &bound.path, "a bind mount");
}

/// Item 5 (both at once): the original, a second mount and a bind mount: one target, 3 paths.
fn three_paths_one_target(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "a", kind);
    let again = fs.mount_again(&scratch.path("again"));
    let bound = fs.bind(&scratch.path("bind"));
    let mut q = freeze_until_frozen(&[&again.path, &fs.mount, &bound.path], None);
    assert_frozen(&fs, &"frozen through three paths");
    q.send_line("thaw");
    let out = q.wait(EXIT);
    let j = check_report(&out, "freeze", 0);
    ensure(
        j["targets"].items().len() == 1,
        &out,
        "one filesystem at three paths should be one target",
    );
    let mut paths = j["targets"][0]["paths"].str_array();
    paths.sort();
    let mut want = [abs(&fs.mount), abs(&again.path), abs(&bound.path)];
    want.sort();
    ensure(
        paths == want.iter().map(String::as_str).collect::<Vec<_>>(),
        &out,
        format!("paths should be {want:?}"),
    );
    assert_writable(&fs.mount, &out);
}

/// Item 6: of three test filesystems, only the two named ones are frozen.
fn only_named_filesystems_are_frozen(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    let a = TestFs::new(&scratch, "a", kind);
    let b = TestFs::new(&scratch, "b", kind);
    let c = TestFs::new(&scratch, "c", kind);
    let mut q = freeze_until_frozen(&[&a.mount, &b.mount], None);
    let mut pa = start_write_probe(&a.mount);
    let mut pb = start_write_probe(&b.mount);
    let mut pc = start_write_probe(&c.mount);
    let c_done = pc.completed_within(Duration::from_secs(5));
    let a_blocked = !pa.completed_within(Duration::from_secs(1));
    let b_blocked = !pb.completed_within(Duration::from_millis(200));
    q.send_line("thaw");
    let out = q.wait(EXIT);
    ensure(
        c_done,
        &out,
        "a write to the filesystem that was NOT named did not complete within 5 s",
    );
    ensure(a_blocked, &out, "a write to named filesystem a completed");
    ensure(b_blocked, &out, "a write to named filesystem b completed");
    let j = check_report(&out, "freeze", 0);
    let mut mounts: Vec<&str> = j["targets"]
        .items()
        .iter()
        .filter_map(|t| t["mount_point"].as_str())
        .collect();
    mounts.sort();
    ensure(
        mounts == [abs(&a.mount).as_str(), abs(&b.mount).as_str()],
        &out,
        "the targets should be exactly a and b",
    );
    ensure(
        pa.wait(Duration::from_secs(10)) && pb.wait(Duration::from_secs(10)),
        &out,
        "writes to a and b did not complete after the thaw",
    );
}

/// Item 7: a relative path is resolved against the working directory and reported as the
/// absolute mount point.
fn relative_path_is_reported_absolute(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "rel", kind);
    let mut q = freeze_until_frozen(&[Path::new("rel")], Some(&scratch.dir));
    assert_frozen(&fs, &"frozen through a relative path");
    q.send_line("thaw");
    let out = q.wait(EXIT);
    let j = check_report(&out, "freeze", 0);
    let t = &j["targets"][0];
    check_str(&out, t, "mount_point", &abs(&fs.mount));
    ensure(
        t["paths"].str_array() == vec![abs(&fs.mount).as_str()],
        &out,
        format!("paths should be [{:?}]", abs(&fs.mount)),
    );
    assert_writable(&fs.mount, &out);
}

per_kind!(
    second_mount_of_the_same_device,
    bind_mount,
    three_paths_one_target,
    only_named_filesystems_are_frozen,
    relative_path_is_reported_absolute,
);
