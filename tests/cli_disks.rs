//! Selection by disk (`--disk`, `--exclude-disk`, `--allow-partial-group`) on this machine,
//! with loop devices as the disks: a disk with two partitions (ext4, xfs), btrfs RAID1 over two
//! disks, and a disk whose ext4 holds the image of another loop filesystem. Every freeze names
//! only these disks, and its plan is checked to hold only scratch mounts before it runs.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use quiesce_testkit::*;

const EXIT: Duration = Duration::from_secs(30);

fn s(p: &Path) -> String {
    p.to_str().expect("utf-8 path").to_string()
}

fn plan(args: &[String]) -> QuiesceOutput {
    Quiesce::sub("plan").arg("--json").args(args).run(EXIT)
}

fn target_points(j: &Json) -> Vec<String> {
    j["targets"]
        .items()
        .iter()
        .map(|t| t["mount_point"].as_str().unwrap_or("").to_string())
        .collect()
}

/// The plan of `args`, checked to freeze only mounts under the scratch directory.
fn safe_plan(d: &DiskSet, args: &[String]) -> Vec<String> {
    let out = plan(args);
    out.assert_code(0, "plan by disk");
    let points = target_points(&out.json());
    for p in &points {
        assert!(
            Path::new(p).starts_with(&d.scratch.dir),
            "{p} is not a scratch mount: refusing to freeze\n{out}"
        );
    }
    points
}

#[test]
fn disk_selection_freezes_exactly_the_filesystems_on_the_named_disks() {
    require_root();
    let d = DiskSet::new();
    let args = vec![
        format!("--disk={}", s(&d.parts.dev)),
        "--disk".into(),
        s(&d.host.loop_dev),
    ];
    let points = safe_plan(&d, &args);
    let want = [&d.p1.at, &d.p2.at, &d.host.mount, &d.inner.mount];
    assert_eq!(points.len(), 4, "{points:?}");
    for w in want {
        assert!(
            points.contains(&abs(w)),
            "{} missing: {points:?}",
            w.display()
        );
    }
    let pos = |p: &Path| points.iter().position(|x| *x == abs(p));
    assert!(
        pos(&d.inner.mount) < pos(&d.host.mount),
        "the loop filesystem freezes before the one holding its image: {points:?}"
    );
    // The per-disk view: both disks, every filesystem frozen.
    let j = plan(&args).json();
    let view = j["disks"].items();
    assert_eq!(view.len(), 2, "{j}");
    assert_eq!(view[0]["path"].as_str(), Some(s(&d.parts.dev).as_str()));
    assert_eq!(view[0]["filesystems"].items().len(), 2);
    assert_eq!(view[0]["level"].as_str(), Some("filesystem-consistent"));
    for disk in view {
        for f in disk["filesystems"].items() {
            assert_eq!(f["verdict"].as_str(), Some("frozen"), "{j}");
        }
    }

    let mut q = Quiesce::sub("freeze")
        .args(["--stdin", "--json", "--timeout", "20"])
        .args(&args)
        .spawn();
    assert!(
        q.wait_for_line("frozen", Duration::from_secs(20)),
        "not frozen"
    );
    // The other disks' filesystem is not frozen: a write completes inside the window.
    let mut other = start_write_probe(&d.pool.at);
    let other_done = other.completed_within(Duration::from_secs(10));
    let mut frozen: Vec<WriteProbe> = want.iter().map(|w| start_write_probe_nosync(w)).collect();
    std::thread::sleep(Duration::from_millis(300));
    let blocked: Vec<bool> = frozen.iter_mut().map(|p| !p.is_done()).collect();
    q.send_line("thaw");
    let out = q.wait(EXIT);
    for p in &mut frozen {
        assert!(
            p.wait(Duration::from_secs(20)),
            "a write did not finish after the thaw"
        );
    }
    out.assert_code(0, "freeze by disk");
    assert!(
        other_done,
        "a write to the btrfs on other disks did not complete in the window"
    );
    assert!(
        blocked.iter().all(|&b| b),
        "a write to a frozen filesystem completed in the window: {blocked:?}"
    );
    let frozen_points = target_points(&out.json());
    assert_eq!(
        frozen_points, points,
        "the session freezes what the plan said, in order"
    );
}

#[test]
fn the_group_check_exclusion_and_bad_input() {
    require_root();
    let d = DiskSet::new();
    let b1 = s(&d.b1.dev);
    let b2_name = d.b2.dev.file_name().unwrap().to_string_lossy().to_string();

    // One disk of the btrfs pair: refused with the group code, naming the missing disk, and
    // nothing frozen (a write to it completes while quiesce runs and after).
    let out = Quiesce::sub("freeze")
        .args(["--stdin", "--timeout", "10", "--disk", &b1])
        .run(EXIT);
    out.assert_code(8, "a btrfs only half in the group");
    assert!(
        out.stderr.contains(&abs(&d.pool.at))
            && out
                .stderr
                .contains(&format!("but {b2_name} is not in the group")),
        "the message names the filesystem and the missing disk:\n{out}"
    );
    assert_writable(&d.pool.at, &"after the refusal");
    let out = plan(&["--disk".into(), b1.clone()]);
    out.assert_code(8, "plan refuses the same");
    let j = out.json();
    assert_eq!(j["status_name"].as_str(), Some("partial-group"), "{out}");

    // --allow-partial-group: the pool is reported, not covered; the rest is frozen.
    let args = vec![
        "--disk".into(),
        b1.clone(),
        "--disk".into(),
        s(&d.parts.dev),
        "--allow-partial-group".into(),
    ];
    let points = safe_plan(&d, &args);
    assert_eq!(points.len(), 2, "{points:?}");
    let j = plan(&args).json();
    let pool_fs = &j["disks"].items()[0]["filesystems"].items()[0];
    assert_eq!(pool_fs["verdict"].as_str(), Some("not-covered"), "{j}");
    assert_eq!(
        j["disks"].items()[0]["level"].as_str(),
        Some("not-consistent")
    );
    let mut q = Quiesce::sub("freeze")
        .args(["--stdin", "--json", "--timeout", "20"])
        .args(&args)
        .spawn();
    assert!(
        q.wait_for_line("frozen", Duration::from_secs(20)),
        "not frozen"
    );
    let mut pool = start_write_probe(&d.pool.at);
    let pool_done = pool.completed_within(Duration::from_secs(10));
    q.send_line("thaw");
    let out = q.wait(EXIT);
    out.assert_code(0, "freeze with the partial group left out");
    assert!(pool_done, "the uncovered btrfs was frozen");
    let j = out.json();
    assert_eq!(
        j["not_covered"].str_array(),
        vec![abs(&d.pool.at).as_str()],
        "{out}"
    );

    // --exclude-disk (plan only: the complement holds /).
    let out = plan(&["--exclude-disk".into(), s(&d.parts.dev)]);
    out.assert_code(0, "plan --exclude-disk");
    let points = target_points(&out.json());
    assert!(points.contains(&"/".to_string()), "{points:?}");
    assert!(points.contains(&abs(&d.pool.at)) && points.contains(&abs(&d.host.mount)));
    assert!(!points.contains(&abs(&d.p1.at)) && !points.contains(&abs(&d.p2.at)));

    // Bad input: each a clear error, nothing frozen.
    let part = format!("{}p1", s(&d.parts.dev));
    let parts_name = d
        .parts
        .dev
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_string();
    let not_block = s(&d.scratch.path("b1.img"));
    let cases: Vec<(Vec<String>, i32, String)> = vec![
        (
            vec!["--disk".into(), part.clone()],
            3,
            format!("is a partition of disk {parts_name}"),
        ),
        (
            vec!["--disk".into(), not_block],
            3,
            "not a block device".into(),
        ),
        (
            vec!["--disk".into(), "serial:no-such-serial-anywhere".into()],
            3,
            "no disk has this serial".into(),
        ),
        (
            vec!["--disk".into(), "vdb".into()],
            2,
            "expected a block device path".into(),
        ),
        (
            vec!["--disk".into(), b1.clone(), s(&d.p1.at)],
            2,
            "do not mix".into(),
        ),
        (
            vec![
                "--disk".into(),
                b1.clone(),
                "--exclude-disk".into(),
                b1.clone(),
            ],
            2,
            "do not mix".into(),
        ),
    ];
    for (args, code, words) in cases {
        let out = Quiesce::sub("freeze")
            .args(["--stdin", "--timeout", "10"])
            .args(&args)
            .run(EXIT);
        out.assert_code(code, &format!("{args:?}"));
        assert!(
            out.stderr.contains(&words),
            "{args:?}: expected {words:?}:\n{out}"
        );
    }
    for m in [
        &d.p1.at,
        &d.p2.at,
        &d.pool.at,
        &d.host.mount,
        &d.inner.mount,
    ] {
        assert_writable(m, &"after the bad input");
    }
}

/// The plan (target mount points in order) through the Go binding: examples/go's
/// `cmd/quiesce-plan`, built as tests/go_binding.rs builds the package (the library vendored
/// into the module, no CGO_* variables, no network).
fn go_plan(lib: &FfiLib, args: &[String]) -> (Option<i32>, Vec<String>) {
    static BUILT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    let go_dir = repo_root().join("examples/go");
    let program = BUILT.get_or_init(|| {
        run_ok(
            Command::new("sh")
                .arg(go_dir.join("vendor-lib.sh"))
                .arg(lib.dir()),
            Duration::from_secs(120),
        )
        .unwrap_or_else(|e| panic!("vendor-lib.sh: {e}"));
        let program = lib.dir().join("go/quiesce-plan");
        build_go(lib, &go_dir, &program);
        program
    });
    let out = run_timeout(Command::new(program).args(args), EXIT)
        .unwrap_or_else(|e| panic!("quiesce-plan: {e}"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (
        out.status.code(),
        text.lines().map(str::to_string).collect(),
    )
}

/// `go build -o program ./cmd/quiesce-plan` in `go_dir`.
fn build_go(lib: &FfiLib, go_dir: &Path, program: &Path) {
    let go = std::env::var_os("GO")
        .filter(|g| !g.is_empty())
        .unwrap_or_else(|| "go".into());
    let mut cmd = Command::new(go);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("CGO_") {
            cmd.env_remove(k);
        }
    }
    cmd.current_dir(go_dir)
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .env("GOFLAGS", "-mod=mod")
        .env("GOCACHE", lib.dir().join("go/cache"))
        .arg("build")
        .arg("-o")
        .arg(program)
        .arg("./cmd/quiesce-plan");
    run_ok(&mut cmd, Duration::from_secs(600)).unwrap_or_else(|e| panic!("go build: {e}"));
}

/// The plan (target mount points in order, and skip lines) as the C agent prints it.
fn agent_plan(agent: &Path, args: &[String]) -> Vec<String> {
    let out = run_ok(
        Command::new(agent)
            .args(["-t", "5000"])
            .args(args)
            .args(["--", "true"]),
        EXIT,
    )
    .unwrap_or_else(|e| panic!("agent: {e}"));
    out.lines()
        .filter_map(|l| l.strip_prefix("freeze "))
        .map(|l| {
            let path = l.split_once(": ").map_or("", |x| x.1);
            path.split(" (").next().unwrap_or("").to_string()
        })
        .collect()
}

#[test]
fn the_c_agent_go_python_and_the_cli_plan_the_same() {
    require_root();
    let d = DiskSet::new();
    let agent = compile_c_static("quiesce-agent", &["examples/c/agent.c"], &[]);
    let lib = ffi_lib();
    let selections: Vec<Vec<String>> = vec![
        vec![s(&d.parts.dev), s(&d.host.loop_dev)],
        vec![s(&d.b1.dev), s(&d.b2.dev)],
    ];
    for disks in selections {
        let mut cli_args = Vec::new();
        for x in &disks {
            cli_args.push("--disk".to_string());
            cli_args.push(x.clone());
        }
        let cli = safe_plan(&d, &cli_args);
        let c_args: Vec<String> = disks.iter().map(|x| format!("--disk={x}")).collect();
        let from_c = agent_plan(&agent, &c_args);
        assert_eq!(from_c, cli, "the C agent plans as the CLI does");
        let script = format!(
            "import quiesce\ns = quiesce.Session.plan(disks={disks:?}, timeout=5)\n\
             print('\\n'.join(t.path for t in s.targets))\ns.close()\n"
        );
        let py = run_ok(
            Command::new(std::env::var("QUIESCE_PYTHON").unwrap_or_else(|_| "python3".into()))
                .arg("-c")
                .arg(&script)
                .env("PYTHONPATH", repo_root().join("examples/python"))
                .env("QUIESCE_LIB", &lib.cdylib),
            EXIT,
        )
        .unwrap_or_else(|e| panic!("python: {e}"));
        let from_py: Vec<String> = py.lines().map(str::to_string).collect();
        assert_eq!(from_py, cli, "Python plans as the CLI does");
        let go_args: Vec<String> = disks.iter().map(|x| format!("-disk={x}")).collect();
        let (code, from_go) = go_plan(&lib, &go_args);
        assert_eq!(code, Some(0), "go run ./cmd/quiesce-plan {go_args:?}");
        assert_eq!(from_go, cli, "Go plans as the CLI does");
    }
    let (code, _) = go_plan(&lib, &[format!("-disk={}", s(&d.b1.dev))]);
    assert_eq!(code, Some(8), "Go gets the group code");
    // The group check through the C ABI: the same status.
    let st = Command::new(&agent)
        .args([
            "-t",
            "5000",
            &format!("--disk={}", s(&d.b1.dev)),
            "--",
            "true",
        ])
        .status()
        .expect("run the agent");
    assert_eq!(
        st.code(),
        Some(8),
        "the C agent refuses a partial group with 8"
    );
}

/// `freeze --detach` takes a selection by disk too (issue 16): the partitioned disk's two
/// filesystems are frozen by the first call, the other disks' stay writable, and the second
/// call (`thaw --session ID`, another process) acknowledges and thaws both.
#[test]
fn detached_session_by_disk_freezes_the_disk_and_thaws_on_the_second_call() {
    require_root();
    let d = DiskSet::new();
    let run = RunDir::new();
    let args = vec![format!("--disk={}", s(&d.parts.dev))];
    let points = safe_plan(&d, &args);
    assert_eq!(points.len(), 2, "{points:?}");
    let out = run
        .quiesce("freeze")
        .arg("--detach")
        .arg("--json")
        .args(["--timeout", "60"])
        .args(&args)
        .run(EXIT);
    let j = check_report(&out, "freeze", 0);
    let id = j["session"].as_str().expect("session id").to_string();
    for p in [&d.p1.at, &d.p2.at] {
        check_str(&out, target(&out, &j, p), "outcome", "frozen");
    }
    let mut w1 = start_write_probe(&d.p1.at);
    let mut w2 = start_write_probe(&d.p2.at);
    let mut other = start_write_probe(&d.pool.at);
    assert!(
        other.wait(Duration::from_secs(10)),
        "a write to the btrfs on other disks blocked\n{out}"
    );
    assert!(
        !w1.completed_within(Duration::from_secs(1)) && !w2.completed_within(Duration::ZERO),
        "a write to the selected disk's filesystems completed while detached-frozen\n{out}"
    );
    let thaw = run
        .quiesce("thaw")
        .arg("--json")
        .args(["--session", &id])
        .run(EXIT);
    let tj = check_report(&thaw, "thaw", 0);
    check_str(&thaw, &tj, "consistency", "filesystem-consistent");
    assert!(
        w1.wait(Duration::from_secs(10)) && w2.wait(Duration::from_secs(10)),
        "the blocked writes did not complete after the thaw\n{thaw}"
    );
}
