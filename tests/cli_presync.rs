//! Pre-sync (issue 6): with `--presync` every target is synced before the first FIFREEZE and
//! the report says how long that took; without it (the default, for now) nothing is synced.

use std::time::Duration;

use quiesce_testkit::{assert_writable, require_root, FsKind, Quiesce, Scratch, TestFs};

#[test]
fn presync_is_reported_when_asked_for() {
    require_root();
    let scratch = Scratch::new();
    let a = TestFs::new(&scratch, "a", FsKind::Ext4);
    let b = TestFs::new(&scratch, "b", FsKind::Xfs);
    // Dirty data to flush, not fsynced.
    std::fs::write(a.path("dirty"), vec![7u8; 8 << 20]).unwrap();
    std::fs::write(b.path("dirty"), vec![7u8; 8 << 20]).unwrap();
    let on = Quiesce::sub("run")
        .args(["--json", "--presync", "--timeout", "30"])
        .mount(&a.mount)
        .mount(&b.mount)
        .args(["--", "true"])
        .run(Duration::from_secs(60));
    on.assert_code(0, "acknowledged");
    let j = on.json();
    assert!(j["presync_us"].as_f64().is_some(), "no presync_us:\n{on}");
    let off = Quiesce::sub("run")
        .args(["--json", "--timeout", "30"])
        .mount(&a.mount)
        .args(["--", "true"])
        .run(Duration::from_secs(60));
    off.assert_code(0, "acknowledged");
    assert!(
        off.json()["presync_us"].is_null(),
        "presync ran anyway:\n{off}"
    );
    // A misplaced flag is a usage error.
    let bad = Quiesce::sub("plan")
        .arg("--presync")
        .run(Duration::from_secs(30));
    bad.assert_code(2, "--presync is for run and freeze");
    assert_writable(&a.mount, &on);
    assert_writable(&b.mount, &on);
}
