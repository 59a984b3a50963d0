//! One outcome, one message: the CLI (`quiesce freeze --json`, its `message`) and the C ABI
//! (examples/c/agent.c, which prints `quiesce_error()`'s message) explain the same outcome on
//! a real loop filesystem with the same text, the engine's (ffi/src/engine/explain.rs): a
//! filesystem frozen by another holder; a deadline that passed (the CLI's controller thaws at
//! it, the C ABI's guardian, its deadline timer, does: the same outcome); and a plan note (a
//! loop device whose backing file cannot be located).

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use quiesce_testkit::{
    compile_c_static, require_root, without_times, FsKind, JsonExt, Quiesce, Scratch, TestFs,
};

fn agent() -> PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| compile_c_static("quiesce-agent", &["examples/c/agent.c"], &[]))
        .clone()
}

/// The message of the agent's failed `step` on stderr (`quiesce-agent: STEP: MESSAGE [...]`).
fn agent_message(stderr: &str, step: &str) -> String {
    let head = format!("quiesce-agent: {step}: ");
    let line = stderr
        .lines()
        .find(|l| l.starts_with(&head))
        .unwrap_or_else(|| panic!("no `{head}` line in:\n{stderr}"));
    let body = &line[head.len()..];
    body.rfind(" [").map_or(body, |i| &body[..i]).to_string()
}

#[test]
fn frozen_by_another_holder_reads_the_same() {
    require_root();
    let scratch = Scratch::new();
    let a = TestFs::new(&scratch, "a", FsKind::Ext4);
    let b = TestFs::new(&scratch, "b", FsKind::Xfs);
    b.fsfreeze();
    let cli = Quiesce::sub("freeze")
        .args(["--json", "--stdin", "--timeout", "20"])
        .mounts(&[&a.mount, &b.mount])
        .run(Duration::from_secs(60));
    let c = Quiesce::new()
        .program(&agent())
        .args(["-t", "20000"])
        .mounts(&[&a.mount, &b.mount])
        .args(["--", "true"])
        .run(Duration::from_secs(60));
    b.fsthaw();
    cli.assert_code(15, "frozen-by-other from the CLI");
    c.assert_code(15, "frozen-by-other from the C agent");
    let from_cli = cli.json()["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let from_c = agent_message(&c.stderr, "freeze");
    assert!(
        from_cli.contains("is already frozen by another holder")
            && from_cli.contains(&b.mount.display().to_string()),
        "{cli}"
    );
    assert_eq!(from_cli, from_c, "CLI:\n{cli}\nC:\n{c}");
}

#[test]
fn a_deadline_the_guardian_kept_reads_the_same() {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "t", FsKind::Ext4);
    // C: the caller sleeps past the deadline; the guardian, the library's deadline timer
    // (grace 0), thaws at the deadline, and the late quiesce_thaw() reports the session's own
    // deadline thaw.
    let c = Quiesce::new()
        .program(&agent())
        .args(["-t", "300"])
        .mount(&fs.mount)
        .args(["--", "sleep", "1"])
        .run(Duration::from_secs(60));
    c.assert_code(13, "timeout from the C agent");
    // CLI: the acknowledgement comes late; its controller thaws at the deadline itself.
    let mut q = Quiesce::sub("freeze")
        .args(["--json", "--stdin", "--timeout", "0.3"])
        .mount(&fs.mount)
        .spawn();
    assert!(
        q.wait_for_line("frozen", Duration::from_secs(30)),
        "the CLI did not freeze: {}",
        q.stdout_so_far()
    );
    std::thread::sleep(Duration::from_millis(300) + Duration::from_secs(1));
    quiesce_testkit::assert_writable(&fs.mount, &"thawed at the deadline");
    if !q.has_exited() {
        q.send_line("thaw");
    }
    let cli = q.wait(Duration::from_secs(30));
    cli.assert_code(13, "timeout from the CLI");
    let j = cli.json();
    assert_eq!(j["targets"][0]["outcome"].as_str(), Some("thawed"), "{cli}");
    let from_cli = without_times(j["message"].as_str().unwrap_or_default());
    let from_c = without_times(&agent_message(&c.stderr, "thaw"));
    assert!(
        from_cli.starts_with("the deadline of 300 ms passed")
            && !from_cli.contains("the guardian had to thaw"),
        "{cli}"
    );
    assert_eq!(from_cli, from_c, "CLI:\n{cli}\nC:\n{c}");
}

#[test]
fn a_backing_file_that_cannot_be_located_is_a_note_in_both() {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "t", FsKind::Ext4);
    // The loop device keeps the deleted image open; its backing_file names a path that is gone.
    std::fs::remove_file(&fs.image).expect("remove the image");
    let cli = Quiesce::sub("plan")
        .arg("--json")
        .mount(&fs.mount)
        .run(Duration::from_secs(60));
    cli.assert_code(0, "plan");
    let notes: Vec<String> = cli.json()["log"]
        .items()
        .iter()
        .filter_map(|n| n.as_str().map(str::to_string))
        .collect();
    let note = notes
        .iter()
        .find(|n| n.starts_with("cannot locate the backing file"))
        .unwrap_or_else(|| panic!("no note in the CLI's plan: {cli}"));
    let c = Quiesce::new()
        .program(&agent())
        .args(["-t", "20000"])
        .mount(&fs.mount)
        .args(["--", "true"])
        .run(Duration::from_secs(60));
    c.assert_code(0, "the C agent freezes and thaws");
    assert!(
        c.stdout.lines().any(|l| l == format!("note: {note}")),
        "the C agent should print the note {note:?}:\n{c}"
    );
}

#[test]
fn times_are_masked_and_nothing_else() {
    assert_eq!(
        without_times("the deadline of 300 ms passed; the slowest freeze was /a (12.5 ms)"),
        "the deadline of 300 ms passed; the slowest freeze was /a (# ms)"
    );
}
