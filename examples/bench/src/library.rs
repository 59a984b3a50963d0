//! quiesce as a library in a long-lived process (rows 2c and 2d; 2e and 2f the same with the
//! host ballast of ballast.rs): a whole session run in this process through the Rust runtime
//! API (`quiesce::runtime`, what the CLI and, through the C ABI, a Go or Python agent use):
//! plan, fork the helpers, freeze, the snapshot command, thaw, report. A process started just
//! before its first `FIFREEZE` (the CLI, `fsfreeze -f`) waits for a kernel grace period that
//! its own start began; a long-lived agent does not, nor does the limit: this row compares like
//! with like.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use ::quiesce::runtime::{prepare, Controller, Select, Signal};

use crate::cycle::{Cycle, PHASES};
use crate::error::{bail, Result};
use crate::guard;
use crate::process::run;

/// The session's deadline (as `quiesce run --timeout 10`).
const TIMEOUT: Duration = Duration::from_secs(10);
/// How long the snapshot command may take.
const STEP: Duration = Duration::from_secs(30);

/// Runs the snapshot command when everything is frozen (spawned and waited for as by the
/// limit), then acknowledges, or reports the snapshot failed.
struct Snapshot<'a> {
    argv: &'a [OsString],
    ok: Option<bool>,
}

impl Controller for Snapshot<'_> {
    fn notify(&mut self) -> std::result::Result<(), i32> {
        let ok = match self.argv.split_first() {
            Some((prog, args)) => {
                let mut c = Command::new(prog);
                c.args(args);
                run(&mut c, STEP).is_ok_and(|o| o.exit.success())
            }
            None => false,
        };
        self.ok = Some(ok);
        Ok(())
    }

    fn wait(&mut self, _until_ns: u64) -> Option<Signal> {
        match self.ok {
            Some(true) => Some(Signal::Acknowledged),
            _ => Some(Signal::SnapshotFailed),
        }
    }
}

/// One session on `mounts` with `snapshot` between freeze and thaw; it must end `ok`.
pub fn cycle(mounts: &[PathBuf], snapshot: &[OsString]) -> Result<Cycle> {
    for m in mounts {
        guard::check(m)?;
    }
    let names: Vec<OsString> = mounts.iter().map(|m| m.clone().into_os_string()).collect();
    let mut controller = Snapshot {
        argv: snapshot,
        ok: None,
    };
    let t = Instant::now();
    let prepared = match prepare(Select::Named(&names)) {
        Ok(p) => p,
        Err(e) => bail!("quiesce library: {e}"),
    };
    let report = match prepared.freeze(TIMEOUT, &mut controller) {
        Ok(r) => r,
        Err(e) => bail!("quiesce library: {e}"),
    };
    let wall = t.elapsed();
    if report.status.code() != 0 {
        bail!(
            "quiesce library: the session ended with status {} ({:?})",
            report.status.code(),
            report.end
        );
    }
    let ms = |ns: u64| ns as f64 / 1e6;
    let named = report.phases.named();
    let mut phases = [0.0; PHASES.len()];
    for (slot, name) in phases.iter_mut().zip(PHASES) {
        if let Some((_, ns)) = named.iter().find(|(n, _)| *n == name) {
            *slot = ms(*ns);
        }
    }
    Ok(Cycle {
        wall,
        phases: Some(phases),
    })
}
