//! Reports for people (text) and machines (`--json`, one object on one line).

use std::fmt::Write as _;
use std::time::Duration;

use quiesce::runtime::{
    errno_name, DiskFsInfo, DiskPlan, Failure, HookEnd, HookRun, Phases, Prepared, Report,
    SkipInfo, TargetInfo, ThawResult,
};
use quiesce::Status;

use crate::json::{array, Object};
use crate::skips;

fn ms(ns: u64) -> String {
    if ns == 0 {
        "-".into()
    } else if ns < 100_000 {
        format!("{:.1} µs", ns as f64 / 1e3)
    } else {
        format!("{:.1} ms", ns as f64 / 1e6)
    }
}

fn head(command: &str, status: Status) -> Object {
    Object::new()
        .str("command", command)
        .num("status", status.code())
        .str("status_name", status.name())
}

pub(crate) fn target_json(t: &TargetInfo, order: usize) -> Object {
    Object::new()
        .str("mount_point", &t.mount_point)
        .strings("paths", t.paths.iter().map(String::as_str))
        .str("fs_type", &t.fs_type)
        .str("device", &t.device.to_string())
        .str("source", &t.source)
        .num("order", order)
}

pub(crate) fn skip_json(s: &SkipInfo) -> String {
    Object::new()
        .str("mount_point", &s.mount_point)
        .str("fs_type", &s.fs_type)
        .str("device", &s.device.to_string())
        .str("reason", &s.reason)
        .finish()
}

/// What becomes of a filesystem on a disk: `frozen`, `not-covered` or `skipped`.
fn verdict(f: &DiskFsInfo) -> &'static str {
    match (&f.skipped, f.not_covered) {
        (None, _) => "frozen",
        (Some(_), true) => "not-covered",
        (Some(_), false) => "skipped",
    }
}

fn disk_json(d: &DiskPlan) -> String {
    let filesystems = array(d.filesystems.iter().map(|f| {
        Object::new()
            .str("mount_point", &f.mount_point)
            .str("fs_type", &f.fs_type)
            .str("device", &f.device.to_string())
            .str("verdict", verdict(f))
            .opt_str("reason", f.skipped.as_deref())
            .finish()
    }));
    let devices = array(d.devices.iter().map(|u| {
        Object::new()
            .str("path", &u.path)
            .str("device", &u.device.to_string())
            .str("kind", &u.kind)
            .str("verdict", "skipped")
            .str("why", u.why)
            .str("reason", &u.reason)
            .finish()
    }));
    Object::new()
        .str("path", &d.path)
        .str("serial", &d.serial)
        .str("device", &d.device.to_string())
        .str("level", d.level.name())
        .raw("filesystems", &filesystems)
        .raw("devices", &devices)
        .finish()
}

/// The per-disk tree of a selection by disk: each disk, then its filesystems.
fn disk_tree(disks: &[DiskPlan]) {
    outln!("disks (the snapshot group):");
    for d in disks {
        let serial = if d.serial.is_empty() {
            String::new()
        } else {
            format!(" serial {}", d.serial)
        };
        outln!("  {} ({}{serial}): {}", d.path, d.device, d.level.name());
        if d.filesystems.is_empty() {
            outln!("    (no mounted filesystem)");
        }
        for f in &d.filesystems {
            let why = f
                .skipped
                .as_deref()
                .map_or_else(String::new, |r| format!(": {r}"));
            outln!(
                "    {}  ({} {})  {}{why}",
                f.mount_point,
                f.fs_type,
                f.device,
                verdict(f)
            );
        }
        for u in &d.devices {
            outln!(
                "    {}  ({} {})  skipped: {}",
                u.path,
                u.kind,
                u.device,
                u.reason
            );
        }
    }
}

/// A failure before anything was frozen.
pub fn failure(command: &str, f: &Failure, json: bool) {
    failure_with_hooks(command, f, json, &[], Duration::ZERO);
}

/// A failure before anything was frozen, after some hooks ran (each that got `freeze` got
/// `freeze-failed`).
pub fn failure_with_hooks(
    command: &str,
    f: &Failure,
    json: bool,
    hooks: &[HookRun],
    hook_timeout: Duration,
) {
    errln!("quiesce: {}", f.message);
    if json {
        let mut o = head(command, f.status)
            .str("message", &f.message)
            .str("consistency", "not-consistent")
            .bool("acknowledged", false)
            .str("end", "none")
            .str("error", &f.message)
            .num("errno", f.errno)
            .raw("targets", "[]")
            .raw("skipped", "[]");
        if !hooks.is_empty() {
            o = o.raw("hooks", &hooks_json(hooks, hook_timeout));
        }
        outln!("{}", o.finish());
    } else {
        for h in hooks {
            out!("{}", hook_text(h, hook_timeout));
        }
    }
}

/// `[{name, path, source, phase, end, exit_status, signal, errno, duration_ms, output, ...}]`.
fn hooks_json(hooks: &[HookRun], timeout: Duration) -> String {
    array(hooks.iter().map(|h| {
        let (exit, signal, errno) = match h.end {
            HookEnd::Exited(c) => (Some(c as u64), None, 0),
            HookEnd::Signaled(s) => (None, Some(s as u64), 0),
            HookEnd::NotStarted(e) => (None, None, e),
            HookEnd::TimedOut | HookEnd::Cancelled => (None, None, 0),
        };
        Object::new()
            .str("name", &h.name)
            .str("path", &h.path.to_string_lossy())
            .str("source", h.source.name())
            .str("phase", h.phase.name())
            .str("end", h.end.name())
            .bool("succeeded", h.succeeded())
            .opt_num("exit_status", exit)
            .opt_num("signal", signal)
            .num("errno", errno)
            .bool("timed_out", h.end == HookEnd::TimedOut)
            .str("result", &h.describe(timeout))
            .num("duration_us", h.duration.as_micros())
            .str("output", &h.output)
            .num("output_dropped", h.output_dropped)
            .bool("output_held_open", h.output_held_open)
            .finish()
    }))
}

fn hook_text(h: &HookRun, timeout: Duration) -> String {
    let mut out = format!(
        "  hook {} {}: {} ({})\n",
        h.name,
        h.phase.name(),
        h.describe(timeout),
        ms(h.duration.as_nanos() as u64)
    );
    for line in h.output.lines() {
        let _ = writeln!(out, "      | {line}");
    }
    if h.output_held_open {
        out.push_str(
            "      (a process it left behind still held its output open; quiesce stopped reading)\n",
        );
    }
    out
}

/// `quiesce plan`. With `all_skips` (`--verbose`, or named mount points) every skipped
/// filesystem is listed with its reason; without, only those a person would not expect, and a
/// count of the rest by kind (`skips`). The JSON always has every one.
pub fn plan(p: &Prepared, json: bool, all_skips: bool) {
    if json {
        let targets = array(
            p.targets
                .iter()
                .enumerate()
                .map(|(i, t)| target_json(t, i).str("outcome", "planned").finish()),
        );
        let o = head("plan", Status::Ok)
            .str("message", "nothing was frozen")
            .raw("targets", &targets)
            .raw("skipped", &array(p.skipped.iter().map(skip_json)))
            .num("skipped_uncounted", p.skipped_dropped)
            .raw("disks", &array(p.disks.iter().map(disk_json)))
            .strings("log", p.notes.iter().map(String::as_str));
        outln!("{}", o.finish());
        return;
    }
    if !p.disks.is_empty() {
        disk_tree(&p.disks);
    }
    outln!(
        "{} filesystem{} would be frozen, in this order (thawed in reverse):",
        p.targets.len(),
        if p.targets.len() == 1 { "" } else { "s" }
    );
    for (i, t) in p.targets.iter().enumerate() {
        outln!(
            "  {:>2}. {}  ({} {} from {})",
            i + 1,
            t.mount_point,
            t.fs_type,
            t.device,
            t.source
        );
        for other in t.paths.iter().skip(1) {
            outln!("      also at {other} (same filesystem, frozen once)");
        }
    }
    let summary = skips::summarize(&p.skipped, p.skipped_dropped, all_skips);
    if !summary.listed.is_empty() {
        outln!("skipped:");
        for s in &summary.listed {
            outln!(
                "  {}  ({} {}): {}",
                s.mount_point,
                s.fs_type,
                s.device,
                s.reason
            );
        }
        if all_skips && p.skipped_dropped > 0 {
            outln!("  ... and {} more", p.skipped_dropped);
        }
    }
    if let Some(line) = summary.counted {
        outln!("{line}");
    }
    for n in &p.notes {
        outln!("note: {n}");
    }
}

/// What the pre-sync did for one target: `synced`, `skipped: clean` (nothing dirty at
/// arming), `off` (`--no-presync`, or the session never armed), `not finished` (failed or
/// over its limit: the notes say which).
fn presync_decision(r: &Report, target_ns: u64) -> &'static str {
    match (r.presync_skipped_clean, r.presync_ns, target_ns) {
        (Some(_), _, _) => "skipped: clean",
        (None, None, _) => "off",
        (None, Some(_), 0) => "not finished",
        (None, Some(_), _) => "synced",
    }
}

/// `{"plan_us":…,"arm_us":…,…}`: how long each phase took.
fn phases_json(p: &Phases) -> String {
    p.named()
        .iter()
        .fold(Object::new(), |o, (name, ns)| {
            o.num(&format!("{name}_us"), ns / 1000)
        })
        .finish()
}

/// The filesystems left out because they span disks outside the group.
fn partial_group(r: &Report) -> impl Iterator<Item = &SkipInfo> {
    let reason = quiesce_core::plan::SkipReason::PartialGroup.to_string();
    r.skipped.iter().filter(move |s| s.reason == reason)
}

/// The report of `quiesce run` and `quiesce freeze` (and of a detached session's end), as
/// printed on stdout: one JSON line with `json`, else text lines.
pub fn render_session(command: &str, r: &Report, log: &[&str], json: bool) -> String {
    let mut out = String::new();
    if json {
        let targets = array(r.targets.iter().map(|t| {
            let err = (t.errno != 0).then(|| errno_name(t.errno));
            target_json(&t.info, t.order)
                .str("outcome", t.outcome.name())
                .num("errno", t.errno)
                .opt_str("error", err.as_deref())
                .num("freeze_us", t.freeze_ns / 1000)
                .num("thaw_us", t.thaw_ns / 1000)
                .num("wave", t.wave)
                .num("presync_us", t.presync_ns / 1000)
                .str("presync", presync_decision(r, t.presync_ns))
                .finish()
        }));
        let hooks = r.hooks.as_ref();
        let o = head(command, r.status)
            .str("message", &r.message())
            .str("consistency", r.consistency.name())
            .opt_str("consistency_reason", r.consistency_reason.as_deref())
            .raw(
                "hooks",
                &hooks.map_or_else(|| "[]".into(), |h| hooks_json(&h.runs, h.timeout)),
            )
            .opt_num(
                "hook_timeout_ms",
                hooks.map(|h| h.timeout.as_millis() as u64),
            )
            .bool("require_app_consistent", hooks.is_some_and(|h| h.required))
            .bool("acknowledged", r.acknowledged())
            .str("end", r.end.name())
            .num("timeout_ms", r.timeout.as_millis())
            .opt_num("window_us", r.window_ns.map(|n| n / 1000))
            .opt_num("presync_us", r.presync_ns.map(|n| n / 1000))
            .raw("phases", &phases_json(&r.phases))
            .num("freezers", r.freezers)
            .raw("targets", &targets)
            .raw("skipped", &array(r.skipped.iter().map(skip_json)))
            .strings(
                "not_covered",
                r.not_covered()
                    .map(|t| t.info.mount_point.as_str())
                    .chain(partial_group(r).map(|s| s.mount_point.as_str())),
            )
            .opt_str("slowest", r.slowest().map(|t| t.info.mount_point.as_str()))
            .raw("blocked", &blocked_json(r))
            .strings("log", log.iter().copied());
        let _ = writeln!(out, "{}", o.finish());
        return out;
    }
    let _ = writeln!(
        out,
        "quiesce {command}: {} ({}): {}",
        r.status.name(),
        r.status.code(),
        r.message()
    );
    for t in &r.targets {
        let err = if t.errno != 0 {
            format!("  {}", errno_name(t.errno))
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "  {:>2}. {}  ({} {})  {}  freeze {}  thaw {}{err}",
            t.order + 1,
            t.info.mount_point,
            t.info.fs_type,
            t.info.device,
            t.outcome.name(),
            ms(t.freeze_ns),
            ms(t.thaw_ns)
        );
        for other in t.info.paths.iter().skip(1) {
            let _ = writeln!(out, "      also at {other} (same filesystem, frozen once)");
        }
    }
    for s in &r.skipped {
        let _ = writeln!(
            out,
            "  skipped {} ({}): {}",
            s.mount_point, s.fs_type, s.reason
        );
    }
    for h in r
        .hooks
        .iter()
        .flat_map(|h| h.runs.iter().map(move |run| (run, h.timeout)))
    {
        out.push_str(&hook_text(h.0, h.1));
    }
    for t in r.not_covered() {
        let _ = writeln!(
            out,
            "  not covered: {} (already frozen by another holder; the snapshot does not cover it)",
            t.info.mount_point
        );
    }
    for s in partial_group(r) {
        let _ = writeln!(
            out,
            "  not covered: {} (on disks outside the group too: --allow-partial-group)",
            s.mount_point
        );
    }
    for b in r.diagnosis.iter().flat_map(|d| d.blocked.iter()) {
        let _ = writeln!(
            out,
            "  in uninterruptible sleep: pid {} tid {} ({}){}",
            b.pid,
            b.tid,
            b.comm,
            if b.wchan.is_empty() {
                String::new()
            } else {
                format!(" in {}", b.wchan)
            }
        );
    }
    let _ = match r.window_ns {
        Some(w) => writeln!(
            out,
            "  frozen window {} (deadline {:.1} s); {}",
            ms(w),
            r.timeout.as_secs_f64(),
            r.consistency.name()
        ),
        None => writeln!(out, "  nothing was frozen; {}", r.consistency.name()),
    };
    if let Some(why) = &r.consistency_reason {
        let _ = writeln!(out, "  not application-consistent: {why}");
    }
    out
}

/// On a timeout, the tasks in uninterruptible sleep after the thaw (`[]` otherwise).
fn blocked_json(r: &Report) -> String {
    let tasks = r.diagnosis.iter().flat_map(|d| d.blocked.iter());
    array(tasks.map(|b| {
        Object::new()
            .num("pid", b.pid)
            .num("tid", b.tid)
            .str("comm", &b.comm)
            .str("wchan", &b.wchan)
            .finish()
    }))
}

/// `quiesce thaw` of filesystems no detached session holds (the rescue).
pub fn thaw(status: Status, results: &[ThawResult], rescue: bool, json: bool) {
    if json {
        let targets = array(results.iter().map(|t| {
            Object::new()
                .str("mount_point", &t.mount_point)
                .str("fs_type", &t.fs_type)
                .str("device", &t.device.to_string())
                .str("outcome", t.outcome.name())
                .num("errno", t.errno)
                .opt_str(
                    "error",
                    (t.errno != 0).then(|| errno_name(t.errno)).as_deref(),
                )
                .finish()
        }));
        let o = head("thaw", status)
            .str("message", status.message())
            .bool("rescue", rescue)
            .raw("targets", &targets);
        outln!("{}", o.finish());
        return;
    }
    for t in results {
        let detail = if t.errno != 0 {
            format!(": {}", errno_name(t.errno))
        } else {
            String::new()
        };
        outln!(
            "{}  ({} {}): {}{detail}",
            t.mount_point,
            t.fs_type,
            t.device,
            t.outcome.name()
        );
    }
}
