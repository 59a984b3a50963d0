//! One table of scenarios, every front end (issue 11): each scenario is run through the CLI
//! (`quiesce freeze --stdin --json`), the C agent (examples/c/agent.c), Go
//! (examples/go/cmd/quiesce-scenario) and Python (tests/python/scenario.py) on real ext4 and
//! xfs, and each must give the same status, the same per-target outcomes and the same message
//! text (times masked), the same phases run (a non-zero time in the result's `phases`, the
//! CLI's JSON object) and not run (0), the pre-sync aside (see `COMPARED_PHASES`), with the
//! phases adding up to no more than the driver's own wall time, and leave every filesystem
//! writable. The drivers and the protocol are in tests/support/frontends.rs; this file is the
//! table. The phases that run: all but the hooks' for a session without hooks that froze
//! (also past its deadline: the late `thaw` is a thaw); the hooks' too with hooks; plan, arm,
//! freeze and finish for a freeze that failed (no wait, no thaw phase: what it froze was
//! thawed inside the freeze); none for a session refused while planning.
//!
//! | scenario | setup | action | expected |
//! |---|---|---|---|
//! | `success` | A | acknowledge | 0 `ok`; A `thawed`; "froze 1 filesystem, snapshot acknowledged, thawed: file-system-consistent" |
//! | `deadline` | A, deadline 1 s | SIGSTOP of the driver (the controller misses the deadline) past the deadline and the CLI's 2 s grace; writable while stopped; SIGCONT, acknowledge | 13 `timeout`; C, Go, Python: A `thawed` (their deadline timer is the guardian, which the SIGSTOP does not stop: as `late_ack`); CLI: A `thawed-by-guardian` and "the guardian had to thaw A" (a known difference: its deadline timer is the stopped process, and its guardian thaws at the deadline plus the grace, a rescue) |
//! | `late_ack` | A, deadline 1 s | acknowledge 1.5 s after the deadline (the controller runs) | 13 `timeout`; A `thawed` (the CLI's controller thaws at the deadline; the library's guardian, its deadline timer with no grace, does, and the late thaw reports it as the session's own deadline thaw) |
//! | `sigkill` | A, B | SIGKILL of the driver while frozen | killed; A and B writable within 5 s |
//! | `stuck_fifreeze` | B's image on X, X frozen, B dirty; deadline 2 s | none (the freeze fails) | 13 `timeout`; B `in-flight-at-deadline`, "still in flight"; B writable once X is thawed |
//! | `foreign_freeze` | A, B; B frozen by `fsfreeze` | none (the freeze fails) | 15 `frozen-by-other`; B `freeze-failed`, A `thawed`; "B is already frozen by another holder" |
//! | `foreign_thaw` | A, B | `fsfreeze -u A`, then acknowledge | 16 `suspect`; B `thawed`, A `thawed-by-other`; "A was thawed by someone else" |
//! | `hooks_in_order` | A; hooks 10-a, 20-b | acknowledge | 0; application-consistent; calls 10-a, 20-b freeze; 20-b, 10-a thaw |
//! | `hook_fails` | A; 20-b exits 3 on freeze | acknowledge | 0; file-system-consistent, "the hook 20-b failed before the freeze (exit status 3)"; every call made |
//! | `hook_hangs` | A; 20-b sleeps on freeze; hook timeout 1 s | acknowledge | 0; file-system-consistent, "timed out after 1 s; its process group was killed"; every call made |
//! | `hook_fails_after` | A; 20-b exits 4 on thaw | acknowledge | 20 `thaw-hook-failed`; application-consistent, the message names 20-b |
//! | `not_a_mount_point` | A and a directory inside it named | none (refused) | 3 `bad-target`, no target; the message names the directory |
//! | `two_paths` | A mounted at two paths, both named | acknowledge | 0; one target, A |
//! | `loop_and_holder` | B's image on X; X and B named | acknowledge | 0; B `thawed`, X `thawed` (B is frozen first) |
//!
//! Targets are listed in freeze order (independent filesystems: the one mounted last first).
//! Every front end must also give exactly the same result as the others (the CLI's is the
//! reference; within a known difference, the first front end of it).
//!
//! Each scenario is one test per filesystem kind (`scenario::ext4`, `scenario::xfs`) that runs
//! the front ends one after another; on a failure it prints every front end's result side by
//! side.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use quiesce_testkit::{
    per_kind, require_root, start_write_probe, start_write_probe_nosync, FrontEnd, FrontEndResult,
    FsKind, HookArgs, HookDir, QuiesceChild, Scratch, TestFs,
};

/// What the test does while a session runs.
#[derive(Clone, Copy, Debug)]
enum Action {
    /// Waits for `frozen`, then acknowledges.
    Ack,
    /// Waits for `frozen`, then past the deadline (by 1.5 s), then acknowledges (if the
    /// driver still runs): the acknowledgement comes late, the controller runs.
    LateAck,
    /// Waits for `frozen`, stops the driver (SIGSTOP: the controller itself misses the
    /// deadline) until past the deadline and the CLI's guardian grace (2 s) by 1.5 s, checks
    /// that the mounts are writable while it is stopped, continues it and acknowledges.
    Stopped,
    /// Waits for `frozen`, then kills the driver with SIGKILL.
    Kill,
    /// Waits for `frozen`, thaws the mount with this index itself, then acknowledges.
    ForeignThaw(usize),
    /// The session fails before `frozen`: the driver must exit by itself.
    NoFreeze,
}

/// What a scenario must end with, from every front end.
struct Expect {
    /// The status code and name; None: the driver was killed (no result).
    status: Option<(i64, &'static str)>,
    /// Each target (freeze order): its mount point and outcome.
    targets: Vec<(PathBuf, &'static str)>,
    /// Text the message must contain (every front end's message must also be the same).
    message: Vec<String>,
    /// The hook calls, in order (`NAME PHASE`), if hooks are configured.
    calls: Option<Vec<&'static str>>,
    /// The phases that ran (a time of at least 1 µs in the result's `phases`), of
    /// `COMPARED_PHASES` (the pre-sync is not compared: see there); the others must be 0.
    ran: &'static [&'static str],
    /// A difference between the front ends that exists today and is reported, with its
    /// reason: these front ends must give exactly these targets and this text in the message
    /// (as well as `message`) instead, and must agree among themselves.
    known: Option<Known>,
}

/// A known difference: see [`Expect::known`].
struct Known {
    front_ends: &'static [FrontEnd],
    targets: Vec<(PathBuf, &'static str)>,
    message: Vec<String>,
    why: &'static str,
}

/// One row of the table.
struct Scenario<'a> {
    name: &'static str,
    mounts: Vec<&'a Path>,
    timeout: Duration,
    hooks: Option<(&'a HookDir, Duration)>,
    action: Action,
    expect: Expect,
    /// Must be writable after each run (within 5 s of a SIGKILL).
    writable: Vec<&'a Path>,
    /// Run before each front end's session (e.g. a foreign freeze).
    before: Box<dyn Fn() + 'a>,
    /// Run after it, before the writability check (e.g. undo a foreign freeze).
    after: Box<dyn Fn() + 'a>,
}

/// What one front end did.
struct Observed {
    fe: FrontEnd,
    /// The result line, or why there is none.
    result: Result<FrontEndResult, String>,
    killed: bool,
    calls: Vec<String>,
    /// Problems found (each is a failure).
    problems: Vec<String>,
    output: String,
    /// The driver's wall time, start to exit.
    elapsed: Duration,
}

/// The phases of a session without hooks that froze and thawed (the pre-sync not compared).
const OK_PHASES: &[&str] = &["plan", "arm", "freeze", "wait", "thaw", "finish"];
/// The same with hooks.
const HOOK_PHASES: &[&str] = &["plan", "arm", "hooks", "freeze", "wait", "thaw", "finish"];

const EXIT: Duration = Duration::from_secs(60);
const FROZEN: Duration = Duration::from_secs(30);

fn abs(p: &Path) -> String {
    p.display().to_string()
}

fn drive(s: &Scenario<'_>, fe: FrontEnd) -> Observed {
    let hook_args = s.hooks.map(|(h, t)| HookArgs {
        dir: h.dir.clone(),
        timeout: t,
    });
    if let Some((h, _)) = s.hooks {
        h.clear_calls();
    }
    (s.before)();
    let mut q: QuiesceChild = fe.spawn(&s.mounts, s.timeout, hook_args.as_ref());
    let mut problems = Vec::new();
    match s.action {
        Action::NoFreeze => {}
        _ => {
            if !q.wait_for_line("frozen", FROZEN) {
                problems.push("never printed `frozen`".to_string());
            } else {
                match s.action {
                    Action::Ack => q.send_line("thaw"),
                    Action::LateAck => {
                        std::thread::sleep(s.timeout + Duration::from_millis(1500));
                        if !q.has_exited() {
                            q.send_line("thaw");
                        }
                    }
                    Action::Stopped => {
                        q.signal(libc::SIGSTOP);
                        std::thread::sleep(s.timeout + Duration::from_millis(3500));
                        for m in &s.mounts {
                            let mut probe = start_write_probe_nosync(m);
                            if !probe.wait(Duration::from_secs(5)) {
                                problems.push(format!(
                                    "{} not writable while the controller is stopped past its deadline",
                                    m.display()
                                ));
                            }
                        }
                        q.signal(libc::SIGCONT);
                        if !q.has_exited() {
                            q.send_line("thaw");
                        }
                    }
                    Action::Kill => {
                        q.signal(libc::SIGKILL);
                        let since = Instant::now();
                        // At once: the driver's own children (the C agent's snapshot command)
                        // may keep its output open for a while after it died.
                        for m in &s.writable {
                            let mut probe = start_write_probe_nosync(m);
                            let limit = Duration::from_secs(5).saturating_sub(since.elapsed());
                            if !probe.wait(limit) {
                                problems.push(format!(
                                    "{} not writable within 5 s of the SIGKILL",
                                    m.display()
                                ));
                            }
                        }
                    }
                    Action::ForeignThaw(i) => {
                        let m = s.mounts[i];
                        quiesce_testkit::guard(m);
                        let out = std::process::Command::new("fsfreeze")
                            .arg("-u")
                            .arg(m)
                            .output();
                        if !out.as_ref().is_ok_and(|o| o.status.success()) {
                            problems.push(format!("fsfreeze -u {}: {out:?}", m.display()));
                        }
                        q.send_line("thaw");
                    }
                    Action::NoFreeze => {}
                }
            }
        }
    }
    let out = q.wait(EXIT);
    let killed = out.code.is_none();
    (s.after)();
    for m in &s.writable {
        let mut probe = start_write_probe(m);
        if !probe.wait(Duration::from_secs(20)) {
            problems.push(format!("{} is not writable afterwards", m.display()));
        }
    }
    let calls = s.hooks.map(|(h, _)| h.calls()).unwrap_or_default();
    let result = if killed {
        Err("killed".to_string())
    } else {
        FrontEndResult::of(fe, &out)
    };
    Observed {
        fe,
        result,
        killed,
        calls,
        problems,
        output: out.to_string(),
        elapsed: out.elapsed,
    }
}

/// The differences of one front end's run from the table.
fn check(s: &Scenario<'_>, o: &mut Observed) {
    let e = &s.expect;
    let known = e.known.as_ref().filter(|k| k.front_ends.contains(&o.fe));
    let (want_targets, want_message) = match known {
        Some(k) => (&k.targets, &k.message),
        None => (&e.targets, &e.message),
    };
    match (&o.result, e.status) {
        (_, None) => {
            if !o.killed {
                o.problems
                    .push("expected to be killed, but it exited".into());
            }
        }
        (Err(why), Some(_)) => o.problems.push(format!("no result: {why}")),
        (Ok(r), Some((code, name))) => {
            if (r.status, r.status_name.as_str()) != (code, name) {
                o.problems.push(format!(
                    "status {} ({}), expected {name} ({code})",
                    r.status_name, r.status
                ));
            }
            let got: Vec<(String, &str)> = r
                .targets
                .iter()
                .map(|t| (t.mount.clone(), t.outcome.as_str()))
                .collect();
            let want: Vec<(String, &str)> =
                want_targets.iter().map(|(m, oc)| (abs(m), *oc)).collect();
            if got != want {
                o.problems
                    .push(format!("targets {got:?}, expected {want:?}"));
            }
            for m in e.message.iter().chain(want_message) {
                if !r.message.contains(m.as_str()) {
                    o.problems
                        .push(format!("the message does not contain {m:?}"));
                }
            }
            if r.ran() != e.ran {
                o.problems.push(format!(
                    "the phases that ran: {:?}, expected {:?} (µs: {:?})",
                    r.ran(),
                    e.ran,
                    r.phases_us
                ));
            }
            // The phases do not overlap: together at most the driver's own wall time.
            let wall = o.elapsed.as_micros() as u64;
            if r.phases_total_us() > wall {
                o.problems.push(format!(
                    "the phases add up to {} µs, more than the driver's {wall} µs (µs: {:?})",
                    r.phases_total_us(),
                    r.phases_us
                ));
            }
        }
    }
    if let Some(want) = &e.calls {
        if o.calls != *want {
            o.problems
                .push(format!("hook calls {:?}, expected {want:?}", o.calls));
        }
    }
}

/// Runs the scenario through every front end; panics with a table of the differences.
fn run(kind: FsKind, s: Scenario<'_>) {
    for fe in FrontEnd::ALL {
        fe.build();
    }
    let mut seen: Vec<Observed> = FrontEnd::ALL
        .iter()
        .map(|&fe| {
            let mut o = drive(&s, fe);
            check(&s, &mut o);
            o
        })
        .collect();
    // The same result from every front end: the first one's is the reference (within the
    // front ends of a known difference, the first of them).
    let group = |fe: FrontEnd| {
        s.expect
            .known
            .as_ref()
            .is_some_and(|k| k.front_ends.contains(&fe))
    };
    for i in 1..seen.len() {
        let Some(first) = (0..i).find(|&k| group(seen[k].fe) == group(seen[i].fe)) else {
            continue;
        };
        if let (Ok(a), Ok(b)) = (seen[first].result.clone(), seen[i].result.clone()) {
            if a != b {
                let (fa, fb) = (seen[first].fe, seen[i].fe);
                seen[i].problems.push(format!(
                    "differs from {fa}:\n      {fa}: {a}\n      {fb}: {b}"
                ));
            }
        }
    }
    let mut table = format!("scenario {} on {}:\n", s.name, kind.fs_type());
    if let Some(k) = &s.expect.known {
        let names: Vec<&str> = k.front_ends.iter().map(|f| f.name()).collect();
        table.push_str(&format!(
            "  KNOWN DIFFERENCE ({}): {}\n",
            names.join(", "),
            k.why
        ));
    }
    for o in &seen {
        let r = match &o.result {
            Ok(r) => r.to_string(),
            Err(e) => e.clone(),
        };
        table.push_str(&format!("  {:<7} {r}\n", o.fe.name()));
        if let Ok(r) = &o.result {
            table.push_str(&format!(
                "          phases (µs, of {} µs): {:?}\n",
                o.elapsed.as_micros(),
                r.phases_us
            ));
        }
        if !o.calls.is_empty() {
            table.push_str(&format!("          hooks: {}\n", o.calls.join(", ")));
        }
    }
    eprintln!("{table}");
    let failed: Vec<&Observed> = seen.iter().filter(|o| !o.problems.is_empty()).collect();
    if !failed.is_empty() {
        let mut msg = table;
        for o in failed {
            msg.push_str(&format!("\n{} differs:\n", o.fe));
            for p in &o.problems {
                msg.push_str(&format!("  - {p}\n"));
            }
            msg.push_str(&format!("  output:\n{}\n", o.output));
        }
        panic!("{msg}");
    }
}

fn nothing() -> Box<dyn Fn()> {
    Box::new(|| {})
}

// ---------------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------------

fn success(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    let a = TestFs::new(&scratch, "a", kind);
    run(
        kind,
        Scenario {
            name: "success",
            mounts: vec![&a.mount],
            timeout: Duration::from_secs(20),
            hooks: None,
            action: Action::Ack,
            expect: Expect {
                status: Some((0, "ok")),
                targets: vec![(a.mount.clone(), "thawed")],
                message: vec![
                    "froze 1 filesystem, snapshot acknowledged, thawed: file-system-consistent"
                        .into(),
                ],
                calls: None,
                ran: OK_PHASES,
                known: None,
            },
            writable: vec![&a.mount],
            before: nothing(),
            after: nothing(),
        },
    );
}

/// The controller itself misses the deadline (stopped). The CLI's deadline timer is its own
/// thread, in the stopped process: its guardian thaws after its grace of 2 s, a rescue
/// (`thawed-by-guardian`, "the guardian had to thaw"). The library's deadline timer is the
/// guardian (grace 0), which a stopped host does not stop: it thaws at the deadline, and the
/// late acknowledgement finds the session's own deadline thaw (`thawed`), as in `late_ack`.
fn deadline(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    let a = TestFs::new(&scratch, "a", kind);
    run(
        kind,
        Scenario {
            name: "deadline",
            mounts: vec![&a.mount],
            timeout: Duration::from_secs(1),
            hooks: None,
            action: Action::Stopped,
            expect: Expect {
                status: Some((13, "timeout")),
                targets: vec![(a.mount.clone(), "thawed")],
                message: vec![
                    "the deadline of 1 s passed before the snapshot was acknowledged; everything we froze was thawed and the snapshot is not consistent; the slowest freeze was ".into(),
                ],
                calls: None,
                ran: OK_PHASES,
                known: Some(Known {
                    front_ends: &[FrontEnd::Cli],
                    targets: vec![(a.mount.clone(), "thawed-by-guardian")],
                    message: vec![format!(
                        "; the guardian had to thaw {} ({} {})",
                        abs(&a.mount),
                        kind.fs_type(),
                        a.dev_string()
                    )],
                    why: "the SIGSTOP stops the CLI's deadline timer (its own thread), so its guardian thaws at the deadline plus its grace (a rescue); the library's deadline timer is its guardian, which keeps the deadline",
                }),
            },
            writable: vec![&a.mount],
            before: nothing(),
            after: nothing(),
        },
    );
}

/// The acknowledgement comes after the deadline while the controller runs: the session thawed
/// at its deadline, in every front end. The CLI's controller thaws itself; the library has no
/// thread of its own, so its guardian (grace 0) thaws at the deadline, and the late
/// `quiesce_thaw()` reports that as the session's own deadline thaw (`thawed`, no "the
/// guardian had to thaw"): the table's `GuardianThaw` (core/src/linux/table.rs).
fn late_ack(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    let a = TestFs::new(&scratch, "a", kind);
    run(
        kind,
        Scenario {
            name: "late_ack",
            mounts: vec![&a.mount],
            timeout: Duration::from_secs(1),
            hooks: None,
            action: Action::LateAck,
            expect: Expect {
                status: Some((13, "timeout")),
                targets: vec![(a.mount.clone(), "thawed")],
                message: vec![
                    "the deadline of 1 s passed before the snapshot was acknowledged; everything we froze was thawed and the snapshot is not consistent; the slowest freeze was ".into(),
                ],
                calls: None,
                ran: OK_PHASES,
                known: None,
            },
            writable: vec![&a.mount],
            before: nothing(),
            after: nothing(),
        },
    );
}

fn sigkill(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    let a = TestFs::new(&scratch, "a", kind);
    let b = TestFs::new(&scratch, "b", kind);
    run(
        kind,
        Scenario {
            name: "sigkill",
            mounts: vec![&a.mount, &b.mount],
            timeout: Duration::from_secs(20),
            hooks: None,
            action: Action::Kill,
            expect: Expect {
                status: None,
                targets: vec![],
                message: vec![],
                calls: None,
                ran: &[],
                known: None,
            },
            writable: vec![&a.mount, &b.mount],
            before: nothing(),
            after: nothing(),
        },
    );
}

/// B's image lives on X; the test freezes X, so B's pre-sync and FIFREEZE (B has dirty data)
/// cannot finish: the session fails at its deadline with B in flight; B is thawed by its
/// freezer as soon as the call returns (once the test thaws X).
fn stuck_fifreeze(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    let size = FsKind::Ext4.image_size().max(2 * kind.image_size());
    let x = TestFs::new_sized_in(&scratch.dir, &scratch.dir, "x", FsKind::Ext4, size);
    let b = TestFs::new_in(&x.mount, &scratch.dir, "b", kind);
    let _thaw_x = ThawOnDrop(&x);
    run(
        kind,
        Scenario {
            name: "stuck_fifreeze",
            mounts: vec![&b.mount],
            timeout: Duration::from_secs(2),
            hooks: None,
            action: Action::NoFreeze,
            expect: Expect {
                status: Some((13, "timeout")),
                targets: vec![(b.mount.clone(), "in-flight-at-deadline")],
                message: vec![
                    "the deadline of 2 s passed".into(),
                    format!("the freeze of {} was still in flight", abs(&b.mount)),
                ],
                calls: None,
                ran: &["plan", "arm", "freeze", "finish"],
                known: None,
            },
            writable: vec![&b.mount, &x.mount],
            before: Box::new(|| {
                std::fs::write(b.path("dirty"), vec![7u8; 8 << 20]).expect("write dirty data");
                x.fsfreeze();
            }),
            after: Box::new(|| x.fsthaw()),
        },
    );
}

fn foreign_freeze(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    let a = TestFs::new(&scratch, "a", kind);
    let b = TestFs::new(&scratch, "b", kind);
    let _thaw_b = ThawOnDrop(&b);
    run(
        kind,
        Scenario {
            name: "foreign_freeze",
            mounts: vec![&a.mount, &b.mount],
            timeout: Duration::from_secs(20),
            hooks: None,
            action: Action::NoFreeze,
            expect: Expect {
                status: Some((15, "frozen-by-other")),
                targets: vec![
                    (b.mount.clone(), "freeze-failed"),
                    (a.mount.clone(), "thawed"),
                ],
                message: vec![format!(
                    "{} ({} {}) is already frozen by another holder",
                    abs(&b.mount),
                    kind.fs_type(),
                    b.dev_string()
                )],
                calls: None,
                ran: &["plan", "arm", "freeze", "finish"],
                known: None,
            },
            writable: vec![&a.mount, &b.mount],
            before: Box::new(|| b.fsfreeze()),
            after: Box::new(|| b.fsthaw()),
        },
    );
}

fn foreign_thaw(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    let a = TestFs::new(&scratch, "a", kind);
    let b = TestFs::new(&scratch, "b", kind);
    run(
        kind,
        Scenario {
            name: "foreign_thaw",
            mounts: vec![&a.mount, &b.mount],
            timeout: Duration::from_secs(20),
            hooks: None,
            action: Action::ForeignThaw(0),
            expect: Expect {
                status: Some((16, "suspect")),
                targets: vec![
                    (b.mount.clone(), "thawed"),
                    (a.mount.clone(), "thawed-by-other"),
                ],
                message: vec![format!(
                    "{} ({} {}) was thawed by someone else during the window",
                    abs(&a.mount),
                    kind.fs_type(),
                    a.dev_string()
                )],
                calls: None,
                ran: OK_PHASES,
                known: None,
            },
            writable: vec![&a.mount, &b.mount],
            before: nothing(),
            after: nothing(),
        },
    );
}

/// A session on A with the hooks `10-a` (succeeds) and `20-b` (with `b_body` after it logs
/// its call), and this limit per call.
fn hooks_scenario(
    kind: FsKind,
    name: &'static str,
    b_body: &str,
    hook_timeout: Duration,
    status: (i64, &'static str),
    message: Vec<String>,
) {
    require_root();
    let scratch = Scratch::new();
    let a = TestFs::new(&scratch, "a", kind);
    let hooks = HookDir::new();
    hooks.logging("10-a", "exit 0");
    hooks.logging("20-b", b_body);
    run(
        kind,
        Scenario {
            name,
            mounts: vec![&a.mount],
            timeout: Duration::from_secs(20),
            hooks: Some((&hooks, hook_timeout)),
            action: Action::Ack,
            expect: Expect {
                status: Some(status),
                targets: vec![(a.mount.clone(), "thawed")],
                message,
                calls: Some(vec!["10-a freeze", "20-b freeze", "20-b thaw", "10-a thaw"]),
                ran: HOOK_PHASES,
                known: None,
            },
            writable: vec![&a.mount],
            before: nothing(),
            after: nothing(),
        },
    );
}

fn hooks_in_order(kind: FsKind) {
    hooks_scenario(
        kind,
        "hooks_in_order",
        "exit 0",
        Duration::from_secs(20),
        (0, "ok"),
        vec!["froze 1 filesystem, snapshot acknowledged, thawed: application-consistent (the hooks succeeded)".into()],
    );
}

fn hook_fails(kind: FsKind) {
    hooks_scenario(
        kind,
        "hook_fails",
        "[ \"$1\" = freeze ] && exit 3\nexit 0",
        Duration::from_secs(20),
        (0, "ok"),
        vec![
            "thawed: file-system-consistent; not application-consistent: the hook 20-b failed before the freeze (exit status 3)".into(),
        ],
    );
}

fn hook_hangs(kind: FsKind) {
    hooks_scenario(
        kind,
        "hook_hangs",
        "[ \"$1\" = freeze ] && sleep 30\nexit 0",
        Duration::from_secs(1),
        (0, "ok"),
        vec![
            "thawed: file-system-consistent; not application-consistent: the hook 20-b failed before the freeze (timed out after 1 s; its process group was killed)".into(),
        ],
    );
}

fn hook_fails_after(kind: FsKind) {
    hooks_scenario(
        kind,
        "hook_fails_after",
        "[ \"$1\" = thaw ] && exit 4\nexit 0",
        Duration::from_secs(20),
        (20, "thaw-hook-failed"),
        vec![
            "froze 1 filesystem, snapshot acknowledged, thawed: application-consistent (the hooks succeeded); ".into(),
            "20-b".into(),
        ],
    );
}

/// A named path that is not a mount point (a directory inside A): refused before anything is
/// frozen.
fn not_a_mount_point(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    let a = TestFs::new(&scratch, "a", kind);
    let sub = a.path("sub");
    std::fs::create_dir_all(&sub).expect("mkdir sub");
    run(
        kind,
        Scenario {
            name: "not_a_mount_point",
            mounts: vec![&a.mount, &sub],
            timeout: Duration::from_secs(20),
            hooks: None,
            action: Action::NoFreeze,
            expect: Expect {
                status: Some((3, "bad-target")),
                targets: vec![],
                message: vec![abs(&sub)],
                calls: None,
                ran: &[],
                known: None,
            },
            writable: vec![&a.mount],
            before: nothing(),
            after: nothing(),
        },
    );
}

fn two_paths(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    let a = TestFs::new(&scratch, "a", kind);
    let again = a.mount_again(&scratch.path("a-again"));
    run(
        kind,
        Scenario {
            name: "two_paths",
            mounts: vec![&a.mount, &again.path],
            timeout: Duration::from_secs(20),
            hooks: None,
            action: Action::Ack,
            expect: Expect {
                status: Some((0, "ok")),
                targets: vec![(a.mount.clone(), "thawed")],
                message: vec!["froze 1 filesystem, snapshot acknowledged".into()],
                calls: None,
                ran: OK_PHASES,
                known: None,
            },
            writable: vec![&a.mount, &again.path],
            before: nothing(),
            after: nothing(),
        },
    );
}

fn loop_and_holder(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    let size = FsKind::Ext4.image_size().max(2 * kind.image_size());
    let x = TestFs::new_sized_in(&scratch.dir, &scratch.dir, "x", FsKind::Ext4, size);
    let b = TestFs::new_in(&x.mount, &scratch.dir, "b", kind);
    run(
        kind,
        Scenario {
            name: "loop_and_holder",
            mounts: vec![&x.mount, &b.mount],
            timeout: Duration::from_secs(20),
            hooks: None,
            action: Action::Ack,
            expect: Expect {
                status: Some((0, "ok")),
                targets: vec![(b.mount.clone(), "thawed"), (x.mount.clone(), "thawed")],
                message: vec!["froze 2 filesystems, snapshot acknowledged".into()],
                calls: None,
                ran: OK_PHASES,
                known: None,
            },
            writable: vec![&b.mount, &x.mount],
            before: nothing(),
            after: nothing(),
        },
    );
}

/// Thaws a fixture when dropped (before the fixtures declared earlier are torn down).
struct ThawOnDrop<'a>(&'a TestFs);

impl Drop for ThawOnDrop<'_> {
    fn drop(&mut self) {
        self.0.fsthaw();
    }
}

per_kind!(
    success,
    deadline,
    late_ack,
    sigkill,
    stuck_fifreeze,
    foreign_freeze,
    foreign_thaw,
    hooks_in_order,
    hook_fails,
    hook_hangs,
    hook_fails_after,
    not_a_mount_point,
    two_paths,
    loop_and_holder,
);
