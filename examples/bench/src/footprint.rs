//! Footprint: the CLI binary's size and what `file` says about linking and stripping; peak
//! RSS of a command as GNU time reports it.
//!
//! Why GNU time and not `wait4` in the benchmark itself: on exec, the kernel records the RSS
//! high-water mark of the *old* address space as the new program's `ru_maxrss`; a child
//! spawned by the benchmark (vfork or fork) starts from the benchmark's own ~4 MiB. GNU time
//! is a small C program (a floor of about 1 MiB, reported beside the numbers).

use std::ffi::OsString;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::error::{bail, Context, Result};
use crate::process::{run, run_ok};

const MARK: &str = "quiesce-bench-maxrss=";

/// Peak RSS (KiB) of `argv` (program first), from `TIME -f %M`; it must exit 0.
pub fn peak_rss_kib(time: &Path, argv: &[OsString]) -> Result<u64> {
    let out = run(
        Command::new(time)
            .arg("-f")
            .arg(format!("{MARK}%M"))
            .args(argv),
        Duration::from_secs(30),
    )?;
    let kib = out
        .stderr
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix(MARK))
        .and_then(|v| v.parse().ok());
    match kib {
        Some(k) if out.exit.success() => Ok(k),
        _ => bail!(
            "`{} {}` failed ({}): {}",
            time.display(),
            argv.iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(" "),
            out.exit.describe(),
            out.stderr.trim()
        ),
    }
}

pub struct Binary {
    pub size: u64,
    /// `file -b` output.
    pub file: String,
    pub is_static: bool,
    pub stripped: bool,
}

pub fn inspect(bin: &Path) -> Result<Binary> {
    let size = std::fs::metadata(bin)
        .ctx(|| format!("stat {}", bin.display()))?
        .len();
    let file = run_ok(
        Command::new("file").arg("-b").arg("-L").arg(bin),
        Duration::from_secs(10),
    )?
    .stdout
    .trim()
    .to_owned();
    let is_static = file.contains("statically linked") || file.contains("static-pie linked");
    let stripped = file.contains(", stripped");
    Ok(Binary {
        size,
        file,
        is_static,
        stripped,
    })
}
