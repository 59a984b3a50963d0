//! `quiesce-bench`: measures quiesce against util-linux `fsfreeze` (issue 6) on loop-mounted
//! filesystems it makes itself, and prints a Markdown table (see `--help`).
//!
//! Safety: it runs as root and freezes real filesystems, but only its own: images in
//! `/tmp/quiesce-bench-XXXXXX`, attached to loop devices and mounted there. The guard
//! (guard.rs) is checked before every freeze and thaw; every freeze is undone on every path
//! (drop guards, quiesce's own guardian, a signal thread for SIGINT/SIGTERM/SIGHUP); every step
//! that can block has a timeout.

mod args;
mod ballast;
mod baseline;
mod cycle;
mod dirty;
mod error;
mod fixtures;
mod footprint;
mod fresh_limit;
mod guard;
mod json;
mod library;
mod limit;
mod machine;
mod measure;
mod process;
mod quiesce;
mod signals;
mod stats;
mod table;
mod thaw;
mod writer;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use baseline::Fsfreeze;
use error::{bail, Context, Result};
use fixtures::{Fixtures, MIB};
use measure::Bench;
use process::find_program;
use quiesce::QuiesceCli;

fn main() -> ExitCode {
    // The benchmark's own child for the fresh-process limit (fresh_limit.rs): before the
    // signal thread (it has no fixtures to clean up) and anything else a fresh CLI would not do.
    if std::env::args_os().nth(1).as_deref() == Some(std::ffi::OsStr::new(fresh_limit::MODE)) {
        return fresh_limit::child_main(std::env::args_os().skip(2).collect());
    }
    if let Err(e) = signals::install() {
        eprintln!("quiesce-bench: {e}");
        return ExitCode::from(1);
    }
    let code = match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(3),
        Err(e) => {
            match signals::check() {
                Err(stop) => eprintln!("quiesce-bench: {stop} (then: {e})"),
                Ok(()) => eprintln!("quiesce-bench: error: {e}"),
            }
            ExitCode::from(1)
        }
    };
    signals::finished();
    code
}

/// Ok(true): measured and cleaned up; Ok(false): measured, but something was left behind.
fn run() -> Result<bool> {
    let started = Instant::now();
    let o = args::parse(std::env::args_os().skip(1).collect())?;
    if o.help {
        print!("{}", args::USAGE);
        return Ok(true);
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("needs root (it creates loop devices, mounts and freezes its own test filesystems)");
    }
    if !o.quiesce.is_file() {
        bail!(
            "{} not found; build it first: cargo build --release -p quiesce-cli (or pass --quiesce PATH)",
            o.quiesce.display()
        );
    }
    let bin = std::fs::canonicalize(&o.quiesce).ctx(|| format!("{}", o.quiesce.display()))?;
    let (mkfs, mkfs_opts) = o.fs.mkfs();
    let (other_mkfs, _) = o.fs.other().mkfs();
    for p in ["losetup", "mount", "umount", "file", mkfs, other_mkfs] {
        find_program(p)?;
    }
    if !Path::new("/usr/bin/time").is_file() {
        bail!("/usr/bin/time (GNU time, Debian package `time`) is needed for the peak RSS");
    }
    let exe = std::env::current_exe().ctx(|| "the benchmark's own executable".into())?;
    let fsfreeze = Fsfreeze {
        bin: find_program("fsfreeze")?,
    };
    let mut configs = vec![QuiesceCli {
        bin: bin.clone(),
        args: o.quiesce_args.clone(),
    }];
    if let Some(extra) = &o.compare_args {
        let mut args = o.quiesce_args.clone();
        args.extend(extra.iter().cloned());
        configs.push(QuiesceCli {
            bin: bin.clone(),
            args,
        });
    }
    let log = move |msg: &str| {
        eprintln!(
            "quiesce-bench [{:6.1} s] {msg}",
            started.elapsed().as_secs_f64()
        )
    };

    let first_size = (1024 * MIB).max((o.dirty_mib + 512) * MIB);
    log(&format!(
        "making 8 {} filesystems (first image {} MiB, others {} MiB)",
        o.fs.name(),
        first_size / MIB,
        o.fs.small_image() / MIB
    ));
    let fixtures = Fixtures::create(o.fs, o.backing, 8, first_size)?;
    log(&format!("scratch {}", fixtures.dir.display()));
    let machine = machine::describe(fixtures.images_dir());
    let mut setup = vec![
        (
            "filesystems".to_owned(),
            format!(
                "8 × {} on loop devices (buffered, default `losetup`), sparse image files on {} (`--backing {}`): fs0 {} MiB (holds the dirty data), fs1–fs7 {} MiB; `{mkfs} {}`; plus fs8, one {} of the size of fs0 (the dirty-stall rows on both kinds); default mount options",
                o.fs.name(),
                match o.backing {
                    fixtures::Backing::Tmpfs => "a tmpfs in the scratch directory",
                    fixtures::Backing::Disk => "the disk of /tmp",
                },
                o.backing.name(),
                first_size / MIB,
                o.fs.small_image() / MIB,
                mkfs_opts.join(" "),
                o.fs.other().name()
            ),
        ),
        (
            "quiesce binary".to_owned(),
            format!("{} ({})", bin.display(), configs[0].version()),
        ),
        (
            "fsfreeze".to_owned(),
            format!("{} ({})", fsfreeze.bin.display(), fsfreeze.version()),
        ),
    ];
    setup.push((
        "fresh-process limit".to_owned(),
        match footprint::inspect(&exe) {
            Ok(b) => format!(
                "`{} {} …` (this benchmark's own binary, {:.0} KiB, {})",
                exe.display(),
                fresh_limit::MODE,
                b.size as f64 / 1024.0,
                if b.is_static {
                    "static"
                } else {
                    "dynamically linked"
                }
            ),
            Err(e) => format!("`{} {} …` ({e})", exe.display(), fresh_limit::MODE),
        },
    ));
    for (i, q) in configs.iter().enumerate() {
        setup.push((
            format!("configuration {}", i + 1),
            format!("`{}`", q.label()),
        ));
    }
    setup.push((
        "repetitions".to_owned(),
        format!(
            "{} per stall measurement and {} per empty cycle (median; {} with the host ballast, 2e and 2f), {} runs per distribution (lateness, SIGKILL){}",
            o.reps,
            o.cycle_reps,
            o.cycle_reps.min(measure::HOST_REPS),
            o.runs,
            if o.quick { "; --quick (smoke test, not for conclusions)" } else { "" }
        ),
    ));

    let bench = Bench {
        fixtures: &fixtures,
        configs: &configs,
        fsfreeze: &fsfreeze,
        reps: o.reps,
        cycle_reps: o.cycle_reps,
        runs: o.runs,
        dirty_mib: o.dirty_mib,
        sleep: find_program("sleep")?,
        true_: find_program("true")?,
        time: Path::new("/usr/bin/time").to_path_buf(),
        exe: &exe,
        host_mib: o.host_mib,
    };
    let measured = bench.run_all(&log);
    log("tearing down the filesystems");
    let left = fixtures.close();
    if !left.clean() {
        eprintln!("quiesce-bench: cleanup incomplete: {}", left.describe());
    }
    let results = measured?;
    let binary = footprint::inspect(&bin)?;
    let ctx = table::Context {
        command_line: o.command_line.clone(),
        labels: configs.iter().map(QuiesceCli::label).collect(),
        machine,
        setup,
        binary,
        reps: o.reps,
        cycle_reps: o.cycle_reps,
        runs: o.runs,
        dirty_mib: o.dirty_mib,
        kind: o.fs.name(),
        other_kind: o.fs.other().name(),
        elapsed_s: started.elapsed().as_secs_f64(),
        cleanup: left.describe(),
        cleanup_ok: left.clean(),
    };
    let report = table::render(&ctx, &results);
    print!("{report}");
    if let Some(path) = &o.write {
        std::fs::write(path, &report).ctx(|| format!("write {}", PathBuf::from(path).display()))?;
        log(&format!("report written to {}", path.display()));
    }
    log("done");
    Ok(left.clean())
}
