//! Issue 3, "Nothing stays frozen": end-to-end tests of the guardian, the hang-proof deadline,
//! foreign freezes and thaws, session records (`status`, `recover`) and signals.
//!
//! Acceptance items (issue 3) and their tests:
//! 1. SIGKILL of `quiesce freeze` right after the first of two filesystems froze, while waiting
//!    for the acknowledgement, and during the thaw: `sigkill_after_the_first_freeze`,
//!    `sigkill_while_waiting`, `sigkill_during_the_thaw` (each prints the time it took);
//! 2. a stuck FIFREEZE (B's image on A, A frozen by the test, B dirty): `stuck_fifreeze`;
//! 3. `quiesce run A B -- cp` with B's image on A freezes B first, copies clean:
//!    `loop_filesystem_is_frozen_before_its_storage`;
//! 4. foreign freeze, and `--if-frozen=skip`: `foreign_freeze_fails_and_thaws_ours`,
//!    `if_frozen_skip_freezes_the_rest`;
//! 5. foreign thaw: `foreign_thaw_is_suspect_16`;
//! 6. stderr on a frozen filesystem: `stderr_on_a_frozen_filesystem`;
//! 7. `status`, then controller and guardian SIGSTOPped and SIGKILLed, then `recover`:
//!    `status_and_recover`;
//! 8. SIGTERM (and SIGINT, SIGHUP) while frozen: `signals_thaw_and_exit_18`.
//!
//! Also: the guardian's own deadline when the controller is stopped
//! (`guardian_thaws_a_stopped_controller`), and the snapshot command of `quiesce run` inherits
//! no descriptor of the session (`snapshot_command_inherits_no_session_descriptor`).
//!
//! Stuck set-ups (a loop filesystem whose image lives on a filesystem the test froze) are always
//! undone by the fixtures' Drop (thaw, then unmount), also on panic.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use quiesce_testkit::*;

const START: Duration = Duration::from_secs(15);
const EXIT: Duration = Duration::from_secs(15);
/// The bound: writable again within 5 s of the controller's death, with no other action.
const AFTER_KILL: Duration = Duration::from_secs(5);
const RUN_DIR: &str = "/run/quiesce";

/// `quiesce freeze --stdin --json --timeout SECS MOUNTS...`, spawned.
fn freeze_stdin(mounts: &[&Path], timeout: &str, extra: &[&str]) -> QuiesceChild {
    Quiesce::sub("freeze")
        .args(["--stdin", "--json", "--timeout", timeout])
        .args(extra)
        .mounts(mounts)
        .spawn()
}

fn wait_frozen_line(q: &mut QuiesceChild) {
    if !q.wait_for_line("frozen", START) {
        let out = q.try_wait(Duration::from_secs(1));
        panic!(
            "no `frozen` line within {START:?}; stdout so far: {:?}; exited: {}",
            q.stdout_so_far(),
            out.map_or("no".into(), |o| o.to_string())
        );
    }
}

/// How long until a write (create + write, no fsync) to `dir` completes, waiting at most
/// `limit`; None if it did not.
fn time_until_writable(dir: &Path, since: Instant, limit: Duration) -> Option<Duration> {
    let mut p = start_write_probe_nosync(dir);
    p.wait(limit).then(|| since.elapsed())
}

/// Polls until `fs` is frozen (a write blocks for 200 ms), at most `limit`.
fn wait_until_frozen(fs: &TestFs, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if fs.is_frozen_within(Duration::from_millis(200)) {
            return true;
        }
    }
    false
}

/// `quiesce status --json`.
fn status_json() -> (QuiesceOutput, Json) {
    let out = Quiesce::sub("status").arg("--json").run(EXIT);
    let j = check_report(&out, "status", 0);
    (out, j)
}

/// The session of controller `pid` in `quiesce status --json`, if listed.
fn session_of(pid: u32) -> Option<Json> {
    let (_, j) = status_json();
    j["sessions"]
        .items()
        .iter()
        .find(|s| s["controller"]["pid"].as_i64() == Some(i64::from(pid)))
        .cloned()
}

/// Session record files of controller `pid`.
fn records_of(pid: u32) -> Vec<PathBuf> {
    std::fs::read_dir(RUN_DIR)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with(&format!("{pid}-")))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Waits up to `limit` until controller `pid` has no session record left.
fn wait_no_record(pid: u32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if records_of(pid).is_empty() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// The state letter and wchan of a process, from /proc.
fn proc_state(pid: u32) -> (char, String) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].trim_start().chars().next())
        .unwrap_or('?');
    let wchan = std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
    (state, wchan)
}

/// Writes `mib` MiB to `dir/name` without syncing: dirty data a freeze has to flush.
fn write_dirty(dir: &Path, name: &str, mib: usize) {
    let out = run_timeout(
        Command::new("dd")
            .args(["if=/dev/urandom", "bs=1M", "status=none"])
            .arg(format!("count={mib}"))
            .arg(format!("of={}", dir.join(name).display())),
        Duration::from_secs(60),
    )
    .expect("dd");
    assert!(out.status.success(), "dd failed: {out:?}");
}

/// X: an ext4 big enough to hold a loop filesystem's image; B: a filesystem of `kind` whose
/// image lives on X; A: an independent filesystem of `kind`. Fields drop in declaration order:
/// B (on X) before X.
struct Stuckable {
    a: TestFs,
    b: TestFs,
    x: TestFs,
}

impl Stuckable {
    fn new(scratch: &Scratch, kind: FsKind) -> Stuckable {
        let size = FsKind::Ext4.image_size().max(2 * kind.image_size());
        let x = TestFs::new_sized_in(&scratch.dir, &scratch.dir, "x", FsKind::Ext4, size);
        let b = TestFs::new_in(&x.mount, &scratch.dir, "b", kind);
        let a = TestFs::new(scratch, "a", kind);
        Stuckable { a, b, x }
    }
}

impl Drop for Stuckable {
    fn drop(&mut self) {
        // Whatever happened, X must be thawed first so that B's freeze and thaw can finish.
        self.x.fsthaw();
    }
}

/// Checks that `quiesce plan A B` freezes A first (independent filesystems keep the order
/// they were named in).
fn assert_planned_first(first: &Path, second: &Path) {
    let out = Quiesce::sub("plan")
        .arg("--json")
        .arg(first)
        .arg(second)
        .run(EXIT);
    let j = check_report(&out, "plan", 0);
    let i = target_index(&out, &j, first);
    let k = target_index(&out, &j, second);
    ensure(
        i < k,
        &out,
        "the first named filesystem should be frozen first",
    );
}

// ---------------------------------------------------------------------------------------------
// 1. SIGKILL at three points
// ---------------------------------------------------------------------------------------------

/// Right after the first of two filesystems froze: the second's FIFREEZE is stuck (its image
/// lives on X, which the test froze), so quiesce is between the two freezes when it is killed.
fn sigkill_after_the_first_freeze(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    let s = Stuckable::new(&scratch, kind);
    assert_planned_first(&s.a.mount, &s.b.mount);
    write_dirty(&s.b.mount, "dirty", 8);
    s.x.fsfreeze();
    let mut q = freeze_stdin(&[&s.a.mount, &s.b.mount], "60", &[]);
    assert!(
        wait_until_frozen(&s.a, START),
        "A was not frozen within {START:?}"
    );
    assert!(
        !q.has_exited(),
        "quiesce exited before B's freeze: {}",
        q.wait(Duration::ZERO)
    );
    let killed = Instant::now();
    q.signal(libc::SIGKILL);
    let took = time_until_writable(&s.a.mount, killed, AFTER_KILL);
    eprintln!(
        "[{kind:?}] SIGKILL right after the first freeze: A writable again after {took:?} \
         (B's FIFREEZE still stuck on frozen X)"
    );
    assert!(
        took.is_some(),
        "A was still frozen {AFTER_KILL:?} after quiesce was killed (the guardian should thaw it)"
    );
    // B's FIFREEZE returns once X is thawed; the freezer then thaws B at once.
    let unstuck = Instant::now();
    s.x.fsthaw();
    let took_b = time_until_writable(&s.b.mount, unstuck, AFTER_KILL);
    eprintln!("[{kind:?}] B (stuck FIFREEZE) writable {took_b:?} after X was thawed");
    assert!(
        took_b.is_some(),
        "B stayed frozen after its stuck FIFREEZE returned"
    );
    assert!(
        wait_no_record(q.pid(), AFTER_KILL),
        "the guardian should remove the session record once everything is thawed"
    );
    assert_writable(&s.a.mount, &"A after the guardian");
    assert_writable(&s.b.mount, &"B after the freezer");
}

/// While waiting for the acknowledgement: both frozen, quiesce killed.
fn sigkill_while_waiting(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    let a = TestFs::new(&scratch, "a", kind);
    let b = TestFs::new(&scratch, "b", kind);
    let mut q = freeze_stdin(&[&a.mount, &b.mount], "60", &[]);
    wait_frozen_line(&mut q);
    assert_frozen(&a, &"after `frozen`");
    assert_frozen(&b, &"after `frozen`");
    let killed = Instant::now();
    q.signal(libc::SIGKILL);
    let took_a = time_until_writable(&a.mount, killed, AFTER_KILL);
    let took_b = time_until_writable(&b.mount, killed, AFTER_KILL);
    eprintln!(
        "[{kind:?}] SIGKILL while waiting for the acknowledgement: writable again after \
         {took_a:?} (A) and {took_b:?} (B)"
    );
    assert!(
        took_a.is_some() && took_b.is_some(),
        "still frozen {AFTER_KILL:?} after quiesce was killed: A {took_a:?}, B {took_b:?}"
    );
    assert!(
        wait_no_record(q.pid(), AFTER_KILL),
        "the guardian should remove the session record"
    );
    let out = q.wait(EXIT);
    assert_eq!(out.code, None, "quiesce was killed: {out}");
}

/// During the thaw: B (thawed first) is an ext4 whose image lives on X; the test freezes X
/// after quiesce froze A and B, then acknowledges. Thawing B writes B's superblock, which blocks
/// on frozen X, so quiesce is inside its thaw (B being thawed, A not yet) when it is killed.
/// The kill takes effect when that FITHAW returns, i.e. once X is thawed; A must then be
/// thawed by the guardian with no other action.
fn sigkill_during_the_thaw(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    // B must be ext4 (its thaw writes the superblock synchronously); A is of `kind`.
    let size = FsKind::Ext4.image_size() * 2;
    let x = TestFs::new_sized_in(&scratch.dir, &scratch.dir, "x", FsKind::Ext4, size);
    let b = TestFs::new_in(&x.mount, &scratch.dir, "b", FsKind::Ext4);
    let a = TestFs::new(&scratch, "a", kind);
    let _thaw_x_first = ThawOnDrop(&x);
    assert_planned_first(&a.mount, &b.mount);
    let mut q = freeze_stdin(&[&a.mount, &b.mount], "60", &[]);
    wait_frozen_line(&mut q);
    x.fsfreeze();
    q.send_line("thaw");
    // Wait until quiesce sits in B's FITHAW.
    let deadline = Instant::now() + START;
    let mut state = proc_state(q.pid());
    while state.0 != 'D' && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
        state = proc_state(q.pid());
    }
    assert_eq!(
        state.0, 'D',
        "quiesce should be blocked inside the thaw of B (wchan {:?})",
        state.1
    );
    assert_frozen(&a, &"A is thawed after B: it must still be frozen");
    q.signal(libc::SIGKILL);
    thread::sleep(Duration::from_millis(300));
    let unstuck = Instant::now();
    x.fsthaw();
    let took_a = time_until_writable(&a.mount, unstuck, AFTER_KILL);
    let took_b = time_until_writable(&b.mount, unstuck, AFTER_KILL);
    eprintln!(
        "[{kind:?}] SIGKILL during the thaw (inside FITHAW of B, which waited on frozen X): \
         after X was thawed, A writable after {took_a:?}, B after {took_b:?} (wchan was {:?})",
        state.1.trim()
    );
    assert!(
        took_a.is_some() && took_b.is_some(),
        "still frozen {AFTER_KILL:?} after the killed quiesce could die: A {took_a:?}, B {took_b:?}"
    );
    let out = q.wait(EXIT);
    assert_eq!(out.code, None, "quiesce was killed: {out}");
    assert!(
        wait_no_record(q.pid(), AFTER_KILL),
        "the guardian should remove the session record"
    );
}

/// Thaws a fixture when dropped (before the fixtures declared earlier are torn down).
struct ThawOnDrop<'a>(&'a TestFs);

impl Drop for ThawOnDrop<'_> {
    fn drop(&mut self) {
        self.0.fsthaw();
    }
}

// ---------------------------------------------------------------------------------------------
// 2. A stuck FIFREEZE
// ---------------------------------------------------------------------------------------------

/// B's image lives on A; A is frozen by the test; B has dirty data, so B's pre-sync and
/// FIFREEZE cannot finish. `quiesce freeze --timeout 2 B` must return by the pre-sync limit
/// (the timeout, 2 s) + the deadline + 1 s with exit 13, and B must become writable without
/// further action once the test thaws A.
fn stuck_fifreeze(kind: FsKind) {
    require_root();
    let _ = quiesce_bin();
    let scratch = Scratch::new();
    let size = FsKind::Ext4.image_size().max(2 * kind.image_size());
    let a = TestFs::new_sized_in(&scratch.dir, &scratch.dir, "a", FsKind::Ext4, size);
    let b = TestFs::new_in(&a.mount, &scratch.dir, "b", kind);
    let _thaw_a_first = ThawOnDrop(&a);
    write_dirty(&b.mount, "dirty", 8);
    a.fsfreeze();
    let q = Quiesce::sub("freeze")
        .args(["--timeout", "2", "--json"])
        .mount(&b.mount);
    let started = Instant::now();
    let mut child = q.spawn();
    let out = child.wait(Duration::from_secs(20));
    let returned = started.elapsed();
    eprintln!(
        "[{kind:?}] stuck FIFREEZE: `quiesce freeze --timeout 2` returned after {returned:?}"
    );
    let j = check_report(&out, "freeze", 13);
    ensure(
        returned <= Duration::from_secs(2 + 2 + 1),
        &out,
        format!(
            "quiesce must return by the pre-sync limit + the deadline + 1 s, took {returned:?}"
        ),
    );
    ensure(
        out.stdout.contains("did not finish within 2000 ms"),
        &out,
        "the stuck pre-sync should be noted",
    );
    check_str(&out, &j, "end", "deadline");
    check_str(&out, &j, "consistency", "not-consistent");
    check_str(
        &out,
        target(&out, &j, &b.mount),
        "outcome",
        "in-flight-at-deadline",
    );
    check_str(&out, &j, "slowest", &abs(&b.mount));
    ensure(
        j["message"]
            .as_str()
            .is_some_and(|m| m.contains(&abs(&b.mount)) && m.contains("in flight")),
        &out,
        "the message should name the stuck filesystem",
    );
    let blocked = j["blocked"].items();
    ensure(
        blocked
            .iter()
            .any(|t| t["comm"].as_str() == Some("quiesce-freezer")),
        &out,
        "the report should list the tasks in uninterruptible sleep (at least the freezer)",
    );
    eprintln!(
        "[{kind:?}] in uninterruptible sleep at the timeout: {}",
        blocked
            .iter()
            .map(|t| format!("{} ({})", t["tid"], t["comm"].as_str().unwrap_or("?")))
            .collect::<Vec<_>>()
            .join(", ")
    );
    // The session is still recorded (its freezer is stuck); status shows it.
    let session = session_of(child.pid());
    ensure(
        session.is_some(),
        &out,
        "while the FIFREEZE is stuck, `quiesce status` should still list the session",
    );
    let unstuck = Instant::now();
    a.fsthaw();
    let took = time_until_writable(&b.mount, unstuck, AFTER_KILL);
    eprintln!("[{kind:?}] stuck FIFREEZE: B writable {took:?} after A was thawed");
    ensure(
        took.is_some(),
        &out,
        "B stayed frozen after its stuck FIFREEZE returned",
    );
    ensure(
        wait_no_record(child.pid(), AFTER_KILL),
        &out,
        "the record should be removed once the freezer thawed B",
    );
    assert_writable(&b.mount, &out);
}

// ---------------------------------------------------------------------------------------------
// 3. The order that avoids the deadlock
// ---------------------------------------------------------------------------------------------

/// `dumpe2fs -h` shows no needs_recovery and `e2fsck -fn` is clean.
fn ext4_copy_is_clean(copy: &Path) -> Result<(), String> {
    let out = run_timeout(
        Command::new("dumpe2fs").arg("-h").arg(copy),
        Duration::from_secs(60),
    )?;
    let text = String::from_utf8_lossy(&out.stdout);
    if text.contains("needs_recovery") {
        return Err(format!("{} needs journal recovery", copy.display()));
    }
    let out = run_timeout(
        Command::new("e2fsck").arg("-fn").arg(copy),
        Duration::from_secs(120),
    )?;
    if !out.status.success() {
        return Err(format!(
            "e2fsck -fn {} exited {}: {}",
            copy.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout)
        ));
    }
    Ok(())
}

#[test]
fn loop_filesystem_is_frozen_before_its_storage() {
    require_root();
    let scratch = Scratch::new();
    let a = TestFs::new_sized_in(
        &scratch.dir,
        &scratch.dir,
        "a",
        FsKind::Ext4,
        2 * FsKind::Ext4.image_size(),
    );
    let b = TestFs::new_in(&a.mount, &scratch.dir, "b", FsKind::Ext4);
    write_dirty(&a.mount, "dirty-a", 4);
    write_dirty(&b.mount, "dirty-b", 4);
    let copies = scratch.path("copies");
    std::fs::create_dir(&copies).expect("mkdir copies");
    let script = format!(
        "cp --sparse=always '{}' '{}/a.img' && cp --sparse=always '{}' '{}/b.img'",
        a.image.display(),
        copies.display(),
        b.image.display(),
        copies.display()
    );
    let out = Quiesce::sub("run")
        .args(["--timeout", "30", "--json"])
        .mounts(&[&a.mount, &b.mount])
        .args(["--", "sh", "-c", &script])
        .run(Duration::from_secs(60));
    let j = check_report(&out, "run", 0);
    ensure(
        target_index(&out, &j, &b.mount) < target_index(&out, &j, &a.mount),
        &out,
        "B (its image is on A) must be frozen before A",
    );
    check_str(&out, &j, "consistency", "filesystem-consistent");
    for img in ["a.img", "b.img"] {
        if let Err(e) = ext4_copy_is_clean(&copies.join(img)) {
            panic!("the copy {img} taken inside `quiesce run` is not clean: {e}\n{out}");
        }
    }
    assert_writable(&a.mount, &out);
    assert_writable(&b.mount, &out);
}

// ---------------------------------------------------------------------------------------------
// 4. Foreign freezes
// ---------------------------------------------------------------------------------------------

fn foreign_freeze_fails_and_thaws_ours(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    // Independent filesystems are frozen newest mount first: A, then B.
    let b = TestFs::new(&scratch, "b", kind);
    let a = TestFs::new(&scratch, "a", kind);
    let _thaw_b = ThawOnDrop(&b);
    assert_planned_first(&a.mount, &b.mount);
    b.fsfreeze();
    let out = Quiesce::sub("freeze")
        .args(["--stdin", "--timeout", "30", "--json"])
        .mounts(&[&a.mount, &b.mount])
        .run(EXIT);
    let j = check_report(&out, "freeze", 15);
    check_str(&out, target(&out, &j, &a.mount), "outcome", "thawed");
    check_str(&out, target(&out, &j, &b.mount), "outcome", "freeze-failed");
    ensure(
        j["message"]
            .as_str()
            .is_some_and(|m| m.contains(&abs(&b.mount))),
        &out,
        "the message should name the filesystem frozen by another holder",
    );
    ensure(
        out.stderr.contains(&abs(&b.mount)),
        &out,
        "stderr should name it too",
    );
    ensure(
        b.is_frozen(),
        &out,
        "the other holder's freeze must still be in place",
    );
    assert_writable(&a.mount, &out);
}

fn if_frozen_skip_freezes_the_rest(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    let a = TestFs::new(&scratch, "a", kind);
    let b = TestFs::new(&scratch, "b", kind);
    let _thaw_b = ThawOnDrop(&b);
    b.fsfreeze();
    let mut q = freeze_stdin(&[&b.mount, &a.mount], "30", &["--if-frozen=skip"]);
    wait_frozen_line(&mut q);
    assert_frozen(
        &a,
        &"A should be frozen although B is frozen by someone else",
    );
    q.send_line("thaw");
    let out = q.wait(EXIT);
    let j = check_report(&out, "freeze", 0);
    check_str(&out, target(&out, &j, &a.mount), "outcome", "thawed");
    check_str(&out, target(&out, &j, &b.mount), "outcome", "not-covered");
    ensure(
        j["not_covered"].str_array() == vec![abs(&b.mount).as_str()],
        &out,
        "not_covered should list B",
    );
    ensure(
        j["message"]
            .as_str()
            .is_some_and(|m| m.contains("does not cover") && m.contains(&abs(&b.mount))),
        &out,
        "the message should say that the snapshot does not cover B",
    );
    ensure(b.is_frozen(), &out, "the other holder's freeze must stay");
    assert_writable(&a.mount, &out);
    // With every named filesystem frozen by others, there is nothing to snapshot: 15.
    let out = Quiesce::sub("freeze")
        .args(["--stdin", "--timeout", "30", "--json", "--if-frozen=skip"])
        .mount(&b.mount)
        .run(EXIT);
    check_report(&out, "freeze", 15);
    ensure(b.is_frozen(), &out, "the other holder's freeze must stay");
}

// ---------------------------------------------------------------------------------------------
// 5. Foreign thaw
// ---------------------------------------------------------------------------------------------

fn foreign_thaw_is_suspect_16(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    let a = TestFs::new(&scratch, "a", kind);
    let b = TestFs::new(&scratch, "b", kind);
    let mut q = freeze_stdin(&[&a.mount, &b.mount], "60", &[]);
    wait_frozen_line(&mut q);
    a.fsthaw();
    q.send_line("thaw");
    let out = q.wait(EXIT);
    let j = check_report(&out, "freeze", 16);
    check_str(&out, &j, "consistency", "not-consistent");
    check_str(
        &out,
        target(&out, &j, &a.mount),
        "outcome",
        "thawed-by-other",
    );
    check_str(&out, target(&out, &j, &b.mount), "outcome", "thawed");
    assert_writable(&a.mount, &out);
    assert_writable(&b.mount, &out);
}

// ---------------------------------------------------------------------------------------------
// 6. stderr on a frozen filesystem
// ---------------------------------------------------------------------------------------------

fn stderr_on_a_frozen_filesystem(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    let a = TestFs::new(&scratch, "a", kind);
    let b = TestFs::new(&scratch, "b", kind);
    let log = a.path("quiesce.log");
    // No acknowledgement: the deadline ends the window, and log lines are produced while frozen
    // (a SIGUSR1 from a process that is not the parent).
    let mut q = Quiesce::sub("freeze")
        .args(["--timeout", "2"])
        .mounts(&[&a.mount, &b.mount])
        .stderr_file(&log)
        .spawn();
    assert!(wait_usr1_from(q.pid(), START), "no SIGUSR1 from quiesce");
    assert_frozen(&a, &"after the SIGUSR1");
    let other = usr1_from_other_process(q.pid());
    let Some(out) = q.try_wait(EXIT) else {
        a.fsthaw();
        b.fsthaw();
        panic!("quiesce with stderr on a frozen filesystem did not finish: deadlocked?");
    };
    out.assert_code(13, "deadline, stderr on a frozen filesystem");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        text.contains(&other.to_string()) && text.contains("deadline"),
        "the log lines produced while frozen should be in {} after the thaw:\n{text}",
        log.display()
    );
    assert_writable(&a.mount, &out);
    assert_writable(&b.mount, &out);
}

// ---------------------------------------------------------------------------------------------
// 7. status and recover
// ---------------------------------------------------------------------------------------------

static RECOVER_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn status_and_recover(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    let a = TestFs::new(&scratch, "a", kind);
    let b = TestFs::new(&scratch, "b", kind);
    let mut q = freeze_stdin(&[&a.mount, &b.mount], "60", &[]);
    wait_frozen_line(&mut q);
    let s = session_of(q.pid()).expect("`quiesce status` should list the live session");
    assert_eq!(s["state"].as_str(), Some("active"), "{s}");
    assert_eq!(s["controller"]["alive"].as_bool(), Some(true), "{s}");
    assert_eq!(s["guardian"]["alive"].as_bool(), Some(true), "{s}");
    assert_eq!(s["timeout_ms"].as_i64(), Some(60_000), "{s}");
    let mounts: Vec<&str> = s["targets"]
        .items()
        .iter()
        .filter_map(|t| t["mount_point"].as_str())
        .collect();
    assert!(
        mounts.contains(&abs(&a.mount).as_str()) && mounts.contains(&abs(&b.mount).as_str()),
        "status should list both targets: {s}"
    );
    let text = Quiesce::sub("status").run(EXIT);
    text.assert_code(0, "status");
    assert!(
        text.stdout.contains(&abs(&a.mount)) && text.stdout.contains("active"),
        "plain `status` should show the session: {text}"
    );
    let guardian = s["guardian"]["pid"].as_i64().expect("guardian pid") as u32;
    // `recover` acts on every orphaned session: keep the other kind's run of this test from
    // recovering ours.
    let _one_at_a_time = RECOVER_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    // Stop both first, so that neither can react to the other's death; then kill both.
    for pid in [q.pid(), guardian] {
        send_signal(pid, libc::SIGSTOP).expect("SIGSTOP");
    }
    for pid in [q.pid(), guardian] {
        send_signal(pid, libc::SIGKILL).expect("SIGKILL");
    }
    let out = q.wait(EXIT);
    assert_eq!(out.code, None, "quiesce was killed: {out}");
    // The freezer follows its controller (end of its request pipe).
    let deadline = Instant::now() + AFTER_KILL;
    let mut state = String::new();
    while Instant::now() < deadline {
        state = session_of(q.pid())
            .and_then(|s| s["state"].as_str().map(str::to_string))
            .unwrap_or_default();
        if state == "orphaned" {
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(state, "orphaned", "the session should be orphaned now");
    assert_frozen(&a, &"nobody is left to thaw A");
    assert_frozen(&b, &"nobody is left to thaw B");
    let rec = Quiesce::sub("recover").arg("--json").run(EXIT);
    let j = check_report(&rec, "recover", 0);
    let mine = j["sessions"]
        .items()
        .iter()
        .find(|s| s["controller"]["pid"].as_i64() == Some(i64::from(q.pid())))
        .cloned()
        .unwrap_or_else(|| panic!("recover should report our session\n{rec}"));
    ensure(
        mine["removed"].as_bool() == Some(true),
        &rec,
        "the record should be removed",
    );
    for t in mine["outcomes"].items() {
        ensure(
            t["outcome"].as_str() == Some("thawed"),
            &rec,
            format!("each target should be thawed by recover: {t}"),
        );
    }
    ensure(mine["outcomes"].items().len() == 2, &rec, "two targets");
    assert_writable(&a.mount, &rec);
    assert_writable(&b.mount, &rec);
    assert!(records_of(q.pid()).is_empty(), "record left behind");
    ensure(
        session_of(q.pid()).is_none(),
        &rec,
        "status should no longer list it",
    );
}

// ---------------------------------------------------------------------------------------------
// 8. Signals
// ---------------------------------------------------------------------------------------------

fn signals_thaw_and_exit_18(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    let a = TestFs::new(&scratch, "a", kind);
    let b = TestFs::new(&scratch, "b", kind);
    for (sig, name) in [
        (libc::SIGTERM, "SIGTERM"),
        (libc::SIGINT, "SIGINT"),
        (libc::SIGHUP, "SIGHUP"),
    ] {
        let mut q = freeze_stdin(&[&a.mount, &b.mount], "60", &[]);
        wait_frozen_line(&mut q);
        q.signal(sig);
        let out = q.wait(EXIT);
        let j = check_report(&out, "freeze", 18);
        check_str(&out, &j, "end", "interrupted");
        check_str(&out, target(&out, &j, &a.mount), "outcome", "thawed");
        check_str(&out, target(&out, &j, &b.mount), "outcome", "thawed");
        ensure(
            out.stderr.contains(name),
            &out,
            format!("stderr should name {name}"),
        );
        assert_writable(&a.mount, &out);
        assert_writable(&b.mount, &out);
        ensure(
            wait_no_record(q.pid(), AFTER_KILL),
            &out,
            "no record after a clean end",
        );
    }
}

// ---------------------------------------------------------------------------------------------
// More: the guardian's own deadline, and what the snapshot command inherits
// ---------------------------------------------------------------------------------------------

/// The controller is stopped (SIGSTOP) while frozen: the guardian thaws at the deadline plus
/// its grace; once resumed, quiesce reports the guardian's thaw (timeout), not a foreign thaw.
fn guardian_thaws_a_stopped_controller(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    let a = TestFs::new(&scratch, "a", kind);
    let mut q = freeze_stdin(&[&a.mount], "1", &[]);
    wait_frozen_line(&mut q);
    let stopped = Instant::now();
    send_signal(q.pid(), libc::SIGSTOP).expect("SIGSTOP");
    let took = time_until_writable(&a.mount, stopped, Duration::from_secs(10));
    eprintln!("[{kind:?}] controller stopped: the guardian thawed after {took:?} (deadline 1 s + grace 2 s)");
    let _ = send_signal(q.pid(), libc::SIGCONT);
    assert!(
        took.is_some(),
        "the guardian did not thaw for a stopped controller"
    );
    let out = q.wait(EXIT);
    let j = check_report(&out, "freeze", 13);
    check_str(
        &out,
        target(&out, &j, &a.mount),
        "outcome",
        "thawed-by-guardian",
    );
    assert_writable(&a.mount, &out);
}

/// The descriptors `sh -c 'ls /proc/self/fd > FILE'` has when run by `run` (a Command).
fn fds_seen_by(run: impl FnOnce(&str), listing: &Path) -> Vec<u32> {
    let _ = std::fs::remove_file(listing);
    run(&format!("ls /proc/self/fd > '{}'", listing.display()));
    let text = std::fs::read_to_string(listing).unwrap_or_default();
    let mut fds: Vec<u32> = text
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    fds.sort_unstable();
    fds
}

#[test]
fn snapshot_command_inherits_no_session_descriptor() {
    require_root();
    let scratch = Scratch::new();
    let a = TestFs::new(&scratch, "a", FsKind::Ext4);
    let listing = scratch.path("fds");
    // Baseline: what the same command inherits from this test process directly.
    let direct = fds_seen_by(
        |script| {
            run_ok(
                Command::new("sh").args(["-c", script]),
                Duration::from_secs(30),
            )
            .expect("sh");
        },
        &listing,
    );
    let mut out = None;
    let through_quiesce = fds_seen_by(
        |script| {
            out = Some(
                Quiesce::sub("run")
                    .args(["--timeout", "30", "--json"])
                    .mount(&a.mount)
                    .args(["--", "sh", "-c", script])
                    .run(EXIT),
            );
        },
        &listing,
    );
    let out = out.expect("ran");
    check_report(&out, "run", 0);
    // Nothing of the session (the guardian's liveness pipe, the freezer's pipes, the mount
    // descriptors, the signalfd) leaks into the command.
    ensure(
        through_quiesce == direct,
        &out,
        format!(
            "the snapshot command has descriptors {through_quiesce:?}; run directly it has {direct:?}"
        ),
    );
}

per_kind!(
    sigkill_after_the_first_freeze,
    sigkill_while_waiting,
    sigkill_during_the_thaw,
    stuck_fifreeze,
    foreign_freeze_fails_and_thaws_ours,
    if_frozen_skip_freezes_the_rest,
    foreign_thaw_is_suspect_16,
    stderr_on_a_frozen_filesystem,
    status_and_recover,
    signals_thaw_and_exit_18,
    guardian_thaws_a_stopped_controller,
);
