//! The machine, as the report describes it.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::guard;
use crate::process::run;

fn read_trim(p: &str) -> String {
    fs::read_to_string(p)
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "?".into())
}

fn first_line_value(text: &str, key: &str) -> Option<String> {
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_once([':', '=']))
        .map(|(_, v)| v.trim().trim_matches('"').to_owned())
}

/// One value of a command's output, or `?`.
fn command_line(cmd: &mut Command) -> String {
    run(cmd, Duration::from_secs(10))
        .ok()
        .filter(|o| o.exit.success())
        .map(|o| o.stdout.trim().to_owned())
        .unwrap_or_else(|| "?".into())
}

/// `key: value` lines describing this machine.
pub fn describe(scratch: &Path) -> Vec<(String, String)> {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let os = fs::read_to_string("/etc/os-release").unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let model = first_line_value(&cpuinfo, "model name").unwrap_or_else(|| "?".into());
    let mem_kib: u64 = first_line_value(&meminfo, "MemTotal")
        .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0);
    // The filesystem that holds the images (the longest mount point containing the scratch).
    let backing = guard::mounts()
        .unwrap_or_default()
        .into_iter()
        .filter(|m| scratch.starts_with(&m.mount_point))
        .max_by_key(|m| m.mount_point.as_os_str().len())
        .map(|m| {
            format!(
                "{} ({} on {})",
                m.mount_point.display(),
                m.fs_type,
                m.source
            )
        })
        .unwrap_or_else(|| "?".into());
    let mut git = command_line(Command::new("git").args(["rev-parse", "--short", "HEAD"]));
    let changes =
        command_line(Command::new("git").args(["status", "--porcelain", "--untracked-files=no"]));
    if git != "?" && changes != "?" && !changes.is_empty() {
        git.push_str(" + uncommitted changes");
    }
    vec![
        (
            "date (UTC)".into(),
            command_line(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M"])),
        ),
        ("CPUs (nproc)".into(), format!("{cpus} × {model}")),
        (
            "memory".into(),
            format!("{:.1} GiB", mem_kib as f64 / (1 << 20) as f64),
        ),
        ("kernel".into(), read_trim("/proc/sys/kernel/osrelease")),
        (
            "OS".into(),
            first_line_value(&os, "PRETTY_NAME").unwrap_or_else(|| "?".into()),
        ),
        ("load average at start".into(), read_trim("/proc/loadavg")),
        (
            "vm.dirty_ratio / dirty_background_ratio / dirty_expire_centisecs".into(),
            format!(
                "{} / {} / {}",
                read_trim("/proc/sys/vm/dirty_ratio"),
                read_trim("/proc/sys/vm/dirty_background_ratio"),
                read_trim("/proc/sys/vm/dirty_expire_centisecs")
            ),
        ),
        ("image files on".into(), backing),
        ("repository commit (working directory)".into(), git),
    ]
}
