//! The command line.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::error::{bail, Result};
use crate::fixtures::{Backing, FsKind};

pub const USAGE: &str = "\
quiesce-bench: quiesce against util-linux fsfreeze on the benchmark's own loop-mounted
filesystems (issue 6). Run as root. Prints a Markdown table on stdout.

Usage: quiesce-bench [OPTIONS]

Options:
  --quiesce PATH       the quiesce CLI to measure (default: target/release/quiesce;
                       build it first: cargo build --release -p quiesce-cli)
  --quiesce-arg ARG    extra argument for every quiesce command, after the subcommand
                       (repeatable), e.g. --quiesce-arg --no-presync
  --compare-arg ARG    measure a second quiesce configuration side by side (same binary,
                       these extra arguments; repeatable); adds a column
  --reps N             repetitions of the stall measurements (median; default 7)
  --cycle-reps N       repetitions of the empty-cycle measurements (median; default 21: a
                       freeze's time is bimodal, by a kernel grace period, so more are needed)
  --runs N             runs of the deadline-lateness and SIGKILL measurements (default 100)
  --dirty-mib N        dirty data written before the dirty-stall cycle (default 256)
  --host-mib N         rows 2e and 2f: anonymous memory the benchmark's process holds (every
                       page touched) while the library's empty cycles run in it (default
                       1024; allocated for those rows only, unmapped before anything else)
  --fs ext4|xfs        filesystem type of the images (default ext4)
  --backing disk|tmpfs where the image files live (default disk): in the scratch directory
                       on the disk of /tmp (a freeze's flush reaches a real disk, as on a real
                       system; other writers to that disk add noise), or on a tmpfs mounted
                       there (flushes cost no disk I/O: the freeze mechanics alone)
  --quick              a smoke test: 2 repetitions (cycles too), 5 runs, 32 MiB dirty,
                       a 64 MiB host
  --write FILE         also write the report (Markdown) to FILE
  -h, --help           this text
";

/// What to run.
#[derive(Debug)]
pub struct Options {
    pub quiesce: PathBuf,
    pub quiesce_args: Vec<OsString>,
    /// Some(args) to measure a second configuration.
    pub compare_args: Option<Vec<OsString>>,
    pub reps: usize,
    pub cycle_reps: usize,
    pub runs: usize,
    pub dirty_mib: u64,
    /// The host ballast of rows 2e and 2f (MiB).
    pub host_mib: u64,
    pub fs: FsKind,
    pub backing: Backing,
    pub quick: bool,
    pub write: Option<PathBuf>,
    pub help: bool,
    /// The command line as given, for the report.
    pub command_line: String,
}

fn number(name: &str, v: Option<OsString>, min: u64) -> Result<u64> {
    let Some(v) = v else {
        bail!("{name} needs a value");
    };
    let s = v.to_string_lossy();
    match s.parse::<u64>() {
        Ok(n) if n >= min => Ok(n),
        _ => bail!("{name}: expected a whole number >= {min}, got {s:?}"),
    }
}

fn usize_arg(name: &str, v: Option<OsString>, min: u64) -> Result<usize> {
    let n = number(name, v, min)?;
    usize::try_from(n).map_err(|_| format!("{name}: {n} is too large").into())
}

pub fn parse(argv: Vec<OsString>) -> Result<Options> {
    let command_line = std::iter::once("quiesce-bench".to_owned())
        .chain(argv.iter().map(|a| a.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(" ");
    let mut o = Options {
        quiesce: PathBuf::from("target/release/quiesce"),
        quiesce_args: Vec::new(),
        compare_args: None,
        reps: 7,
        cycle_reps: 21,
        runs: 100,
        dirty_mib: 256,
        host_mib: 1024,
        fs: FsKind::Ext4,
        backing: Backing::Disk,
        quick: false,
        write: None,
        help: false,
        command_line,
    };
    let (mut reps, mut cycle_reps, mut runs, mut dirty, mut host) = (None, None, None, None, None);
    let mut it = argv.into_iter();
    while let Some(a) = it.next() {
        match a.to_string_lossy().as_ref() {
            "--quiesce" => match it.next() {
                Some(v) => o.quiesce = PathBuf::from(v),
                None => bail!("--quiesce needs a path"),
            },
            "--quiesce-arg" => match it.next() {
                Some(v) => o.quiesce_args.push(v),
                None => bail!("--quiesce-arg needs a value"),
            },
            "--compare-arg" => match it.next() {
                Some(v) => o.compare_args.get_or_insert_with(Vec::new).push(v),
                None => bail!("--compare-arg needs a value"),
            },
            "--reps" => reps = Some(usize_arg("--reps", it.next(), 1)?),
            "--cycle-reps" => cycle_reps = Some(usize_arg("--cycle-reps", it.next(), 1)?),
            "--runs" => runs = Some(usize_arg("--runs", it.next(), 1)?),
            "--dirty-mib" => dirty = Some(number("--dirty-mib", it.next(), 1)?),
            "--host-mib" => host = Some(number("--host-mib", it.next(), 1)?),
            "--fs" => {
                let v = it.next().map(|v| v.to_string_lossy().into_owned());
                match v.as_deref().and_then(FsKind::parse) {
                    Some(k) => o.fs = k,
                    None => bail!("--fs: expected ext4 or xfs, got {v:?}"),
                }
            }
            "--backing" => {
                let v = it.next().map(|v| v.to_string_lossy().into_owned());
                match v.as_deref().and_then(Backing::parse) {
                    Some(b) => o.backing = b,
                    None => bail!("--backing: expected tmpfs or disk, got {v:?}"),
                }
            }
            "--quick" => o.quick = true,
            "--write" => match it.next() {
                Some(v) => o.write = Some(PathBuf::from(v)),
                None => bail!("--write needs a file"),
            },
            "-h" | "--help" => o.help = true,
            other => bail!("unknown argument {other:?} (see --help)"),
        }
    }
    if o.quick {
        o.reps = 2;
        o.cycle_reps = 2;
        o.runs = 5;
        o.dirty_mib = 32;
        o.host_mib = 64;
    }
    o.reps = reps.unwrap_or(o.reps);
    o.cycle_reps = cycle_reps.unwrap_or(o.cycle_reps);
    o.runs = runs.unwrap_or(o.runs);
    o.dirty_mib = dirty.unwrap_or(o.dirty_mib);
    o.host_mib = host.unwrap_or(o.host_mib);
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    #[test]
    fn defaults_quick_and_overrides() -> Result<()> {
        let o = parse(args(&[]))?;
        assert_eq!(
            (o.reps, o.cycle_reps, o.runs, o.dirty_mib, o.host_mib),
            (7, 21, 100, 256, 1024)
        );
        let o = parse(args(&["--quick", "--runs", "9"]))?;
        assert_eq!(
            (o.reps, o.cycle_reps, o.runs, o.dirty_mib, o.host_mib),
            (2, 2, 9, 32, 64)
        );
        let o = parse(args(&["--host-mib", "2048", "--quick"]))?;
        assert_eq!(o.host_mib, 2048);
        assert!(parse(args(&["--host-mib", "0"])).is_err());
        assert!(parse(args(&["--host-mib"])).is_err());
        let o = parse(args(&["--cycle-reps", "31", "--reps", "3"]))?;
        assert_eq!((o.reps, o.cycle_reps), (3, 31));
        assert!(parse(args(&["--cycle-reps", "0"])).is_err());
        let o = parse(args(&[
            "--compare-arg",
            "--presync",
            "--quiesce-arg",
            "--x",
            "--fs",
            "xfs",
            "--backing",
            "tmpfs",
        ]))?;
        assert_eq!(o.backing, Backing::Tmpfs);
        assert_eq!(o.compare_args, Some(args(&["--presync"])));
        assert_eq!(o.quiesce_args, args(&["--x"]));
        assert_eq!(o.fs, FsKind::Xfs);
        assert!(parse(args(&["--runs", "0"])).is_err());
        assert!(parse(args(&["--fs", "btrfs"])).is_err());
        assert!(parse(args(&["--bogus"])).is_err());
        Ok(())
    }
}
