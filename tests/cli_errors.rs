//! End-to-end tests of bad input (item 7): each is refused before anything is frozen, with the
//! exit code of the README and a message that names the offending input.
//!
//! Every refused command line also names a valid test filesystem FIRST, so that a quiesce that
//! froze before validating everything would be caught: with stdin at end of input it would then
//! exit 14, print `frozen`, or report a frozen target, and the write probes afterwards would show
//! anything left frozen.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use quiesce_testkit::*;

const RUN: Duration = Duration::from_secs(30);

/// Runs `freeze --stdin --timeout T [--json] VALID BAD` forms, plain and with `--json`, and
/// checks: exit `code`; stderr (and the JSON "error") mention `names`; nothing frozen.
struct Refusal<'a> {
    /// Arguments after `freeze`, without `--json`.
    args: Vec<String>,
    code: i32,
    /// A string the message must contain (case-insensitive).
    names: String,
    /// Filesystems that must be writable afterwards.
    all: &'a [&'a Path],
    wrapper: Vec<String>,
    program: Option<&'a Path>,
}

impl<'a> Refusal<'a> {
    fn new(args: &[&str], code: i32, names: &str, all: &'a [&'a Path]) -> Refusal<'a> {
        Refusal {
            args: args.iter().map(|s| s.to_string()).collect(),
            code,
            names: names.to_string(),
            all,
            wrapper: Vec::new(),
            program: None,
        }
    }

    fn quiesce(&self, json: bool) -> Quiesce {
        let mut q = Quiesce::sub("freeze");
        if json {
            q = q.arg("--json");
        }
        // Paths are guarded by the builder's safety net (they all contain '/').
        q = q.args(&self.args).wrapper(&self.wrapper);
        if let Some(p) = self.program {
            q = q.program(p);
        }
        q
    }

    fn check(&self) {
        for json in [false, true] {
            let out = self.quiesce(json).run(RUN);
            out.assert_code(
                self.code,
                "bad input must be refused with its README exit code",
            );
            ensure(
                out.stderr
                    .to_lowercase()
                    .contains(&self.names.to_lowercase()),
                &out,
                format!("stderr should name the offending input {:?}", self.names),
            );
            ensure(
                !out.stdout.lines().any(|l| l.trim() == "frozen"),
                &out,
                "printed `frozen` although the input was bad",
            );
            if json {
                let j = check_report(&out, "freeze", self.code);
                let err = j["error"].as_str().unwrap_or("");
                ensure(
                    err.to_lowercase().contains(&self.names.to_lowercase()),
                    &out,
                    format!(
                        "JSON \"error\" should name the offending input {:?}",
                        self.names
                    ),
                );
                check_nothing_frozen_in_report(&out, &j);
            }
            for p in self.all {
                assert_writable(p, &out);
            }
        }
    }
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// The three kinds of bad path inside a test filesystem of `kind`: exit 3 (bad-target).
fn bad_paths_are_refused(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    let valid = TestFs::new(&scratch, "valid", FsKind::Ext4);
    let fs = TestFs::new(&scratch, "bad", kind);
    std::fs::create_dir(fs.path("subdir")).unwrap();
    std::fs::write(fs.path("file"), b"x").unwrap();
    let all = [valid.mount.as_path(), fs.mount.as_path()];
    for bad in [fs.path("no-such-name"), fs.path("subdir"), fs.path("file")] {
        let args = ["--stdin", "--timeout", "5", &s(&valid.mount), &s(&bad)];
        Refusal::new(&args, 3, &s(&bad), &all).check();
    }
}

/// A tmpfs named explicitly: exit 4 (not-freezable).
fn tmpfs_is_not_freezable(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    let valid = TestFs::new(&scratch, "valid", kind);
    let t = tmpfs(&scratch, "tmpfs");
    let all = [valid.mount.as_path(), t.path.as_path()];
    let args = ["--stdin", "--timeout", "5", &s(&valid.mount), &s(&t.path)];
    Refusal::new(&args, 4, &s(&t.path), &all).check();
}

/// Bad `--timeout` values, a missing `--timeout`, an unknown option, no mount point: exit 2.
fn usage_errors(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "a", kind);
    let m = s(&fs.mount);
    let all = [fs.mount.as_path()];
    for bad in ["0", "-1", "abc", "1e9", "3601", ""] {
        Refusal::new(&["--stdin", "--timeout", bad, &m], 2, "timeout", &all).check();
        let joined = format!("--timeout={bad}");
        // `--timeout=V` is not in the README: either an unknown option or a bad value, exit 2.
        let out = Quiesce::sub("freeze")
            .args(["--stdin", &joined, &m])
            .run(RUN);
        out.assert_code(2, "--timeout=V with a bad value");
        assert_writable(&fs.mount, &out);
    }
    Refusal::new(&["--stdin", &m], 2, "timeout", &all).check();
    Refusal::new(
        &["--stdin", "--timeout", "5", "--bogus-option", &m],
        2,
        "--bogus-option",
        &all,
    )
    .check();
    Refusal::new(&["--stdin", "--timeout", "5"], 2, "mount", &all).check();
}

/// Without CAP_SYS_ADMIN (as nobody, no capabilities): exit 5 (permission).
fn without_cap_sys_admin(kind: FsKind) {
    require_root();
    let scratch = Scratch::new();
    let fs = TestFs::new(&scratch, "a", kind);
    // A copy of the binary that nobody can execute whatever the permissions of the workspace.
    // Copied by a `cp` child, not in this process: a descriptor open for writing here would be
    // inherited by any child another test thread forks meanwhile, and exec of the copy would
    // then fail with ETXTBSY ("Text file busy") until that child execs.
    let copy = scratch.path("quiesce");
    let cp = run_timeout(
        Command::new("cp").arg(quiesce_bin()).arg(&copy),
        Duration::from_secs(30),
    )
    .expect("cp the quiesce binary");
    assert!(cp.status.success(), "cp the quiesce binary: {cp:?}");
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    let all = [fs.mount.as_path()];
    let m = s(&fs.mount);
    let mut r = Refusal::new(&["--stdin", "--timeout", "5", &m], 5, &m, &all);
    r.wrapper = [
        "setpriv",
        "--reuid=nobody",
        "--regid=nogroup",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    r.program = Some(&copy);
    r.check();
}

per_kind!(
    bad_paths_are_refused,
    tmpfs_is_not_freezable,
    usage_errors,
    without_cap_sys_admin,
);
