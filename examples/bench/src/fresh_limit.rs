//! The limit in a fresh process (issue 14): the floor for any tool that runs as its own
//! process. The benchmark starts its own binary again for each cycle, in a hidden mode
//! ([`MODE`]), spawned and timed exactly as the quiesce CLI is (process.rs: from just before
//! the spawn to the moment its exit is seen). The child does the least any freezing command
//! must do: the guard (guard.rs, with the scratch directory and loop devices the parent
//! registered, passed on its command line), open the mount points, `FIFREEZE` them, run the
//! snapshot command (spawned as the in-process limit spawns it), `FITHAW` them, print its own
//! split, exit 0. Sequential freezes on its main thread, as `fsfreeze -f` does; parallel
//! starts one thread per filesystem first (the in-process limit's [`Freezer`], unchanged).
//!
//! A process started just before its first `FIFREEZE` waits out a kernel grace period that
//! its own start put in flight (freeze_super's `rcu_sync_enter` calls `synchronize_rcu`); no
//! command-line tool can avoid it, so this, not the in-process limit, is what a CLI can reach.
//!
//! Safety: the child refuses any mount the guard refuses; a failure after a freeze thaws what
//! it froze (the [`Freezer`]); the parent kills a child that is not done within
//! [`CHILD_TIMEOUT`] and then thaws every mount of the cycle itself (also after a child that
//! died or failed), guarded, as the other tools' drop guards do.

use std::ffi::{OsStr, OsString};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use crate::cycle::{Cycle, PHASES};
use crate::error::{bail, Result};
use crate::guard;
use crate::json;
use crate::limit::{snapshot_command, Freezer, ThawAll};
use crate::process::run;

/// The hidden first argument of the child (not in `--help`: the benchmark's own use).
pub const MODE: &str = "--fresh-limit";

/// How long the parent waits for the child: longer than the child's own bounds on its steps
/// (30 s each), so that it normally reports its own failure first.
pub const CHILD_TIMEOUT: Duration = Duration::from_secs(100);

/// The child's split of the cycle, in the order it prints them (ns in its report).
pub const SPLIT: [&str; 4] = ["open", "freeze", "snapshot", "thaw"];

/// The limit in a fresh process: this binary started again for each cycle.
#[derive(Clone, Copy, Debug)]
pub struct FreshLimit<'a> {
    /// The benchmark's own executable.
    pub exe: &'a Path,
    pub parallel: bool,
}

/// What the child is asked to do.
#[derive(Debug, PartialEq, Eq)]
pub struct ChildArgs {
    pub parallel: bool,
    pub scratch: PathBuf,
    /// (mount point, its loop device), as the parent's fixtures registered them.
    pub mounts: Vec<(PathBuf, PathBuf)>,
    pub snapshot: Vec<OsString>,
}

/// The child's arguments after [`MODE`]:
/// `parallel|sequential --scratch DIR (--mount MOUNT LOOP)... -- SNAPSHOT...`.
pub fn child_argv(a: &ChildArgs) -> Vec<OsString> {
    let mut v: Vec<OsString> = vec![
        MODE.into(),
        if a.parallel { "parallel" } else { "sequential" }.into(),
        "--scratch".into(),
        a.scratch.clone().into_os_string(),
    ];
    for (m, l) in &a.mounts {
        v.extend([
            "--mount".into(),
            m.clone().into_os_string(),
            l.clone().into_os_string(),
        ]);
    }
    v.push("--".into());
    v.extend(a.snapshot.iter().cloned());
    v
}

/// Parses what [`child_argv`] wrote (without [`MODE`]).
pub fn parse_child(argv: Vec<OsString>) -> Result<ChildArgs> {
    let mut it = argv.into_iter();
    let parallel = match it.next().as_deref().and_then(OsStr::to_str) {
        Some("parallel") => true,
        Some("sequential") => false,
        other => bail!("{MODE}: expected parallel or sequential, got {other:?}"),
    };
    let mut scratch = None;
    let mut mounts = Vec::new();
    loop {
        match it.next().as_deref().and_then(OsStr::to_str) {
            Some("--scratch") => match it.next() {
                Some(d) => scratch = Some(PathBuf::from(d)),
                None => bail!("{MODE}: --scratch needs a directory"),
            },
            Some("--mount") => match (it.next(), it.next()) {
                (Some(m), Some(l)) => mounts.push((PathBuf::from(m), PathBuf::from(l))),
                _ => bail!("{MODE}: --mount needs a mount point and its loop device"),
            },
            Some("--") => break,
            other => bail!("{MODE}: unexpected argument {other:?}"),
        }
    }
    let Some(scratch) = scratch else {
        bail!("{MODE}: no --scratch");
    };
    if mounts.is_empty() {
        bail!("{MODE}: no --mount");
    }
    let snapshot: Vec<OsString> = it.collect();
    if snapshot.is_empty() {
        bail!("{MODE}: no snapshot command after --");
    }
    Ok(ChildArgs {
        parallel,
        scratch,
        mounts,
        snapshot,
    })
}

/// The child's one-line report: its split in ns, in the order of [`SPLIT`].
fn report(ns: [u128; 4]) -> String {
    let fields: Vec<String> = SPLIT
        .iter()
        .zip(ns)
        .map(|(k, v)| format!("\"{k}_ns\":{v}"))
        .collect();
    format!("{{{}}}", fields.join(","))
}

/// The split (ms, in the order of [`SPLIT`]) from the child's stdout.
pub fn parse_report(stdout: &str) -> Result<[f64; 4]> {
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with('{'))
        .unwrap_or("");
    let mut out = [0.0; 4];
    for (o, k) in out.iter_mut().zip(SPLIT) {
        match json::number(line, &format!("{k}_ns")) {
            Some(v) => *o = v / 1e6,
            None => bail!("{MODE}: no {k}_ns in its report {:?}", stdout.trim()),
        }
    }
    Ok(out)
}

/// The child: guard, open, freeze, snapshot, thaw; its report on stdout.
pub fn child_main(argv: Vec<OsString>) -> ExitCode {
    let entered = Instant::now();
    match child(entered, argv) {
        Ok(line) => {
            let mut out = std::io::stdout().lock();
            if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
                return ExitCode::from(1);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("quiesce-bench {MODE}: {e}");
            ExitCode::from(1)
        }
    }
}

fn child(entered: Instant, argv: Vec<OsString>) -> Result<String> {
    let a = parse_child(argv)?;
    guard::set_scratch(&a.scratch)?;
    for (m, l) in &a.mounts {
        guard::register(m, l);
    }
    let mounts: Vec<PathBuf> = a.mounts.iter().map(|(m, _)| m.clone()).collect();
    let mut command = snapshot_command(&a.snapshot)?;
    // The guard on every mount, then its descriptor (and the threads when parallel).
    let freezer = Freezer::open(&mounts, a.parallel)?;
    // A failure thaws what it froze before it returns.
    let t = freezer.cycle(&mut command)?;
    freezer.stop();
    let ns = |a: Instant, b: Instant| b.duration_since(a).as_nanos();
    Ok(report([
        ns(entered, t.start),
        ns(t.start, t.frozen),
        ns(t.frozen, t.snapped),
        ns(t.snapped, t.thawed),
    ]))
}

/// The split of a cycle in the slots of [`PHASES`] (ms): `plan` the child's guard and
/// opening, `freeze`, `wait` the snapshot command, `thaw`, and `finish` the rest of the wall
/// time (the spawn, exec and start-up of the child, its exit, the parent seeing it).
fn slots(split: [f64; 4], wall_ms: f64) -> [f64; 8] {
    let mut p = [0.0; PHASES.len()];
    for (k, name) in PHASES.iter().enumerate() {
        p[k] = match *name {
            "plan" => split[0],
            "freeze" => split[1],
            "wait" => split[2],
            "thaw" => split[3],
            "finish" => (wall_ms - split.iter().sum::<f64>()).max(0.0),
            _ => 0.0,
        };
    }
    p
}

impl FreshLimit<'_> {
    /// The child's command line (guarded: only the benchmark's own mounts).
    pub fn argv(&self, mounts: &[PathBuf], snapshot: &[OsString]) -> Result<Vec<OsString>> {
        let mut scratch = None;
        let mut owned = Vec::new();
        for m in mounts {
            guard::check(m)?;
            let (s, loop_dev) = guard::lookup(m)?;
            scratch = Some(s);
            owned.push((m.clone(), loop_dev));
        }
        let Some(scratch) = scratch else {
            bail!("no filesystem to freeze");
        };
        Ok(child_argv(&ChildArgs {
            parallel: self.parallel,
            scratch,
            mounts: owned,
            snapshot: snapshot.to_vec(),
        }))
    }

    /// One cycle in a child started for it; it must exit 0 and report its split.
    pub fn cycle(&self, mounts: &[PathBuf], snapshot: &[OsString]) -> Result<Cycle> {
        let argv = self.argv(mounts, snapshot)?;
        let mut c = Command::new(self.exe);
        c.args(&argv);
        // After the child, whatever way it ended (killed at the timeout included: `run`
        // kills and reaps it first): every mount of the cycle is thawed, guarded.
        let _thaw = ThawAll(mounts);
        let out = run(&mut c, CHILD_TIMEOUT)?;
        if !out.exit.success() {
            bail!(
                "`quiesce-bench {MODE}` failed ({}): {}",
                out.exit.describe(),
                out.stderr.trim()
            );
        }
        let split = parse_report(&out.stdout)?;
        Ok(Cycle {
            wall: out.wall,
            phases: Some(slots(split, out.wall.as_secs_f64() * 1e3)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn child_command_line_round_trip() -> Result<()> {
        let a = ChildArgs {
            parallel: true,
            scratch: "/tmp/quiesce-bench-x".into(),
            mounts: vec![
                ("/tmp/quiesce-bench-x/fs0".into(), "/dev/loop3".into()),
                ("/tmp/quiesce-bench-x/fs1".into(), "/dev/loop4".into()),
            ],
            snapshot: os(&["/bin/true", "--", "x"]),
        };
        let argv = child_argv(&a);
        assert_eq!(
            argv.first().map(OsString::as_os_str),
            Some(OsStr::new(MODE))
        );
        assert_eq!(parse_child(argv[1..].to_vec())?, a);
        let seq = ChildArgs {
            parallel: false,
            ..a
        };
        assert_eq!(parse_child(child_argv(&seq)[1..].to_vec())?, seq);
        Ok(())
    }

    #[test]
    fn child_refuses_incomplete_command_lines() {
        for bad in [
            &[][..],
            &["both"][..],
            &["sequential", "--mount", "/m", "/dev/loop0", "--", "true"][..],
            &[
                "sequential",
                "--scratch",
                "/tmp/quiesce-bench-x",
                "--",
                "true",
            ][..],
            &[
                "sequential",
                "--scratch",
                "/s",
                "--mount",
                "/m",
                "/dev/loop0",
                "--",
            ][..],
            &["sequential", "--scratch", "/s", "--mount", "/m"][..],
            &["sequential", "--scratch", "/s", "--bogus"][..],
        ] {
            assert!(parse_child(os(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn report_round_trip_and_slots() -> Result<()> {
        let line = report([250_000, 30_000_000, 1_500_000, 400_000]);
        assert_eq!(
            line,
            r#"{"open_ns":250000,"freeze_ns":30000000,"snapshot_ns":1500000,"thaw_ns":400000}"#
        );
        let split = parse_report(&format!("{line}\n"))?;
        assert_eq!(split, [0.25, 30.0, 1.5, 0.4]);
        assert!(parse_report("").is_err());
        assert!(parse_report(r#"{"open_ns":1}"#).is_err());
        let p = slots(split, 34.15);
        let at = |n: &str| PHASES.iter().position(|p| *p == n).map(|k| p[k]);
        assert_eq!(at("plan"), Some(0.25));
        assert_eq!(at("freeze"), Some(30.0));
        assert_eq!(at("wait"), Some(1.5));
        assert_eq!(at("thaw"), Some(0.4));
        assert!(at("finish").is_some_and(|f| (f - 2.0).abs() < 1e-9));
        assert_eq!(at("arm"), Some(0.0));
        // A wall time below the child's own sum (clock skew between the two) gives 0, not < 0.
        assert!(slots(split, 1.0).iter().all(|v| *v >= 0.0));
        Ok(())
    }
}
