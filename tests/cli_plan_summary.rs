//! `quiesce plan` for people (issue 15): without mount points it lists what will be frozen,
//! lists in full only the skips a person would not expect (here: a read-only ext4 made for
//! the test), and counts the expected ones by kind in one line (our tmpfs is counted, not
//! listed); `--verbose` lists every skip; named mount points are explained in full; `--json`
//! keeps everything. Nothing is frozen.

use std::process::Command;
use std::time::Duration;

use quiesce_testkit::*;

const RUN: Duration = Duration::from_secs(30);

/// The `MOUNT  (TYPE DEV): reason` lines under `skipped:` in a text plan: (mount, type).
fn listed_skips(stdout: &str) -> Vec<(String, String)> {
    stdout
        .lines()
        .skip_while(|l| *l != "skipped:")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| {
            let (mount, rest) = l.trim_start().split_once("  (")?;
            let fs_type = rest.split_whitespace().next()?;
            Some((mount.to_string(), fs_type.to_string()))
        })
        .collect()
}

/// The one count line: "skipped N kernel and in-memory filesystems...; --verbose lists them".
fn count_line(stdout: &str) -> Option<&str> {
    stdout
        .lines()
        .find(|l| l.starts_with("skipped ") && l != &"skipped:")
}

#[test]
fn plan_lists_the_unexpected_skips_and_counts_the_rest() {
    require_root();
    let scratch = Scratch::new();
    let rw = TestFs::new(&scratch, "rw", FsKind::Ext4);
    let ro = TestFs::new(&scratch, "ro", FsKind::Ext4);
    guard(&ro.mount);
    run_ok(
        Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&ro.mount),
        RUN,
    )
    .unwrap_or_else(|e| panic!("remount read-only: {e}"));
    let t = tmpfs(&scratch, "tmpfs");
    let (rw_abs, ro_abs, tm_abs) = (abs(&rw.mount), abs(&ro.mount), abs(&t.path));

    // Text, no mount point: ours is a target, the read-only ext4 is listed with its reason,
    // the tmpfs only counted.
    let out = Quiesce::sub("plan").run(RUN);
    out.assert_code(0, "plan");
    ensure(
        out.stdout.lines().any(|l| {
            l.trim_start()
                .split_once(". ")
                .is_some_and(|(_, rest)| rest.starts_with(&format!("{rw_abs}  (ext4 ")))
        }),
        &out,
        format!("{rw_abs} is not listed as a target"),
    );
    let listed = listed_skips(&out.stdout);
    ensure(
        listed.iter().any(|(m, ty)| *m == ro_abs && ty == "ext4"),
        &out,
        format!("the read-only {ro_abs} is not listed under skipped:"),
    );
    ensure(
        out.stdout
            .lines()
            .any(|l| l.contains(&ro_abs) && l.contains("read-only")),
        &out,
        "the read-only skip does not say why",
    );
    for (m, ty) in &listed {
        ensure(
            ![
                "tmpfs", "proc", "sysfs", "cgroup", "cgroup2", "devtmpfs", "devpts",
            ]
            .contains(&ty.as_str()),
            &out,
            format!("{m} ({ty}) is an expected skip, listed in full"),
        );
    }
    ensure(
        !out.stdout.contains(&tm_abs),
        &out,
        format!("the tmpfs {tm_abs} is named without --verbose"),
    );
    let line = count_line(&out.stdout).unwrap_or_else(|| panic!("no count line\n{out}"));
    let n: usize = line
        .strip_prefix("skipped ")
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("count line without a number: {line}\n{out}"));
    ensure(
        n >= 1
            && line.contains("kernel and in-memory filesystems")
            && line.ends_with("; --verbose lists them"),
        &out,
        format!("count line: {line}"),
    );

    // --verbose: every skip listed, the tmpfs too, and no count line.
    let verbose = Quiesce::sub("plan").arg("--verbose").run(RUN);
    verbose.assert_code(0, "plan --verbose");
    let all = listed_skips(&verbose.stdout);
    ensure(
        all.iter().any(|(m, ty)| *m == tm_abs && ty == "tmpfs"),
        &verbose,
        format!("--verbose does not list the tmpfs {tm_abs}"),
    );
    ensure(
        all.iter().any(|(m, _)| *m == ro_abs),
        &verbose,
        "--verbose does not list the read-only filesystem",
    );
    ensure(
        count_line(&verbose.stdout).is_none(),
        &verbose,
        "--verbose still prints a count line",
    );
    ensure(
        all.len() > listed.len(),
        &verbose,
        "--verbose lists no more than the summary",
    );

    // --json keeps everything: the tmpfs and the read-only filesystem, each with a reason.
    let json = Quiesce::sub("plan").arg("--json").run(RUN);
    let j = check_report(&json, "plan", 0);
    for m in [&tm_abs, &ro_abs] {
        let k = j["skipped"]
            .items()
            .iter()
            .find(|k| k["mount_point"].as_str() == Some(m.as_str()))
            .cloned();
        ensure(k.is_some(), &json, format!("{m} not in \"skipped\""));
        ensure(
            k.is_some_and(|k| k["reason"].as_str().is_some_and(|r| !r.is_empty())),
            &json,
            format!("{m} has no reason"),
        );
    }

    // Named mount points: every skip among them is explained in full, and nothing counted.
    let named = Quiesce::sub("plan")
        .mount(&rw.mount)
        .mount(&ro.mount)
        .run(RUN);
    named.assert_code(0, "plan RW RO");
    ensure(
        listed_skips(&named.stdout) == [(ro_abs.clone(), "ext4".to_string())],
        &named,
        "a plan of named mount points does not explain its one skip",
    );
    ensure(
        count_line(&named.stdout).is_none(),
        &named,
        "a plan of named mount points counts skips",
    );
    assert_writable(&rw.mount, &out);
}
