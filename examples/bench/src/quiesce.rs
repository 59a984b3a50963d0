//! The quiesce CLI under test: `quiesce run` cycles and `quiesce freeze --stdin` sessions,
//! with the configuration's extra arguments after the subcommand.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::cycle::{Cycle, PHASES};
use crate::error::{bail, Result};
use crate::guard;
use crate::json;
use crate::process::{run, Proc};

/// The deadline of `quiesce run` cycles (s): far above what a cycle takes.
pub const RUN_TIMEOUT: &str = "10";

/// One configuration of the CLI: the binary and extra arguments (e.g. `--presync`).
pub struct QuiesceCli {
    pub bin: PathBuf,
    pub args: Vec<OsString>,
}

/// The `phases` object of a JSON report (ms).
fn phases(report: &str) -> Option<[f64; 8]> {
    let start = report.find("\"phases\":{")?;
    let rest = &report[start..];
    let obj = &rest[..rest.find('}')? + 1];
    let mut out = [0.0; 8];
    for (o, name) in out.iter_mut().zip(PHASES) {
        *o = json::number(obj, &format!("{name}_us"))? / 1000.0;
    }
    Some(out)
}

impl QuiesceCli {
    /// `quiesce` plus the extra arguments, for tables.
    pub fn label(&self) -> String {
        let mut s = String::from("quiesce");
        for a in &self.args {
            s.push(' ');
            s.push_str(&a.to_string_lossy());
        }
        s
    }

    /// `quiesce --version`.
    pub fn version(&self) -> String {
        run(
            Command::new(&self.bin).arg("--version"),
            Duration::from_secs(10),
        )
        .map(|o| o.stdout.trim().to_owned())
        .unwrap_or_else(|e| format!("unknown ({e})"))
    }

    fn command(&self, sub: &str, mounts: &[PathBuf]) -> Result<Command> {
        for m in mounts {
            guard::check(m)?;
        }
        let mut c = Command::new(&self.bin);
        c.arg(sub).args(&self.args);
        Ok(c)
    }

    /// The command line of a `run` cycle (guarded), program first.
    pub fn run_argv(&self, mounts: &[PathBuf], snapshot: &[OsString]) -> Result<Vec<OsString>> {
        for m in mounts {
            guard::check(m)?;
        }
        let mut v = vec![self.bin.clone().into_os_string(), "run".into()];
        v.extend(self.args.iter().cloned());
        v.extend(["--timeout".into(), RUN_TIMEOUT.into()]);
        v.extend(mounts.iter().map(|m| m.clone().into_os_string()));
        v.push("--".into());
        v.extend(snapshot.iter().cloned());
        Ok(v)
    }

    /// `quiesce run --timeout 10 MOUNT... -- SNAPSHOT...`; it must exit 0.
    pub fn cycle(&self, mounts: &[PathBuf], snapshot: &[OsString]) -> Result<Cycle> {
        let argv = self.run_argv(mounts, snapshot)?;
        let Some((prog, args)) = argv.split_first() else {
            bail!("empty command line");
        };
        let mut c = Command::new(prog);
        // `run --json`: the report's phases say where the time went.
        c.args(args.iter().take(1)).arg("--json").args(&args[1..]);
        let out = run(&mut c, Duration::from_secs(30))?;
        if !out.exit.success() {
            bail!(
                "`{} run` failed ({}): {}",
                self.label(),
                out.exit.describe(),
                out.stderr.trim()
            );
        }
        Ok(Cycle {
            wall: out.wall,
            phases: phases(&out.stdout),
        })
    }

    /// Starts `quiesce freeze --stdin --timeout SECS [--json] MOUNT` with stdin held open.
    pub fn freeze_stdin(&self, mount: &Path, timeout: &str, json: bool) -> Result<Proc> {
        let mounts = [mount.to_path_buf()];
        let mut c = self.command("freeze", &mounts)?;
        c.args(["--stdin", "--timeout", timeout]);
        if json {
            c.arg("--json");
        }
        c.arg(mount);
        Proc::spawn(&mut c, true)
    }
}
