//! Assertions on `quiesce` reports; every failure message includes the full stdout/stderr.

use std::path::Path;

use crate::cli::QuiesceOutput;
use crate::guard::resolve;
use crate::json_ext::{Json, JsonExt};

/// The README's name of each exit status.
pub fn status_name(code: i32) -> Option<&'static str> {
    Some(match code {
        0 => "ok",
        2 => "usage",
        3 => "bad-target",
        4 => "not-freezable",
        5 => "permission",
        6 => "plan-refused",
        7 => "hook-refused",
        11 => "freeze-failed",
        12 => "thaw-failed",
        13 => "timeout",
        14 => "not-acknowledged",
        15 => "frozen-by-other",
        16 => "suspect",
        17 => "snapshot-failed",
        18 => "interrupted",
        19 => "not-app-consistent",
        20 => "thaw-hook-failed",
        70 => "internal",
        _ => return None,
    })
}

/// Panics with `what` and the whole output of the run unless `cond` holds.
#[track_caller]
pub fn ensure(cond: bool, out: &QuiesceOutput, what: impl std::fmt::Display) {
    if !cond {
        panic!("{what}\n{out}");
    }
}

/// Checks the exit code, then that the JSON report has this `command`, `status` and
/// `status_name`; returns the report.
#[track_caller]
pub fn check_report(out: &QuiesceOutput, command: &str, code: i32) -> Json {
    out.assert_code(code, "exit status");
    let j = out.json();
    ensure(
        j["command"].as_str() == Some(command),
        out,
        format!(
            "JSON \"command\" should be {command:?}, is {}",
            j["command"]
        ),
    );
    ensure(
        j["status"].as_i64() == Some(code as i64),
        out,
        format!("JSON \"status\" should be {code}, is {}", j["status"]),
    );
    ensure(
        j["status_name"].as_str() == status_name(code),
        out,
        format!(
            "JSON \"status_name\" should be {:?}, is {}",
            status_name(code),
            j["status_name"]
        ),
    );
    j
}

/// Checks that `j[key]` is the string `want`.
#[track_caller]
pub fn check_str(out: &QuiesceOutput, j: &Json, key: &str, want: &str) {
    ensure(
        j[key].as_str() == Some(want),
        out,
        format!("JSON {key:?} should be {want:?}, is {}", j[key]),
    );
}

/// The absolute, canonical form of `p` as the report should print it.
pub fn abs(p: &Path) -> String {
    resolve(p).to_string_lossy().into_owned()
}

/// The target of the report whose `mount_point` is `mount`; panics if there is none.
#[track_caller]
pub fn target<'j>(out: &QuiesceOutput, j: &'j Json, mount: &Path) -> &'j Json {
    let m = abs(mount);
    let t = j["targets"]
        .items()
        .iter()
        .find(|t| t["mount_point"].as_str() == Some(m.as_str()));
    match t {
        Some(t) => t,
        None => panic!("no target with mount_point {m:?} in the report\n{out}"),
    }
}

/// The index of the target whose mount_point is `mount` in the report's `targets` array.
#[track_caller]
pub fn target_index(out: &QuiesceOutput, j: &Json, mount: &Path) -> usize {
    let m = abs(mount);
    match j["targets"]
        .items()
        .iter()
        .position(|t| t["mount_point"].as_str() == Some(m.as_str()))
    {
        Some(i) => i,
        None => panic!("no target with mount_point {m:?} in the report\n{out}"),
    }
}

/// Checks that no target of the report was frozen (outcomes that mean FIFREEZE succeeded).
#[track_caller]
pub fn check_nothing_frozen_in_report(out: &QuiesceOutput, j: &Json) {
    for t in j["targets"].items() {
        let o = t["outcome"].as_str().unwrap_or("");
        ensure(
            !matches!(o, "thawed" | "frozen" | "thaw-failed"),
            out,
            format!(
                "target {} has outcome {o:?}: it was frozen",
                t["mount_point"]
            ),
        );
    }
}
