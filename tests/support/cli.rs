//! Building and running the `quiesce` command.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use crate::guard::guard;
use crate::json_ext::{Json, JsonExt};
use crate::process::{drain, run_timeout, send_signal, ChildGuard};
use crate::signals::install_usr1_recorder;

/// The `quiesce` binary: `$QUIESCE_BIN` if set, else built once per test process with
/// `cargo build -p quiesce-cli` (cargo from `$CARGO`), located from cargo's JSON messages.
pub fn quiesce_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("QUIESCE_BIN") {
            return PathBuf::from(p);
        }
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
        let out = run_timeout(
            Command::new(cargo)
                .args(["build", "-p", "quiesce-cli", "--bin", "quiesce"])
                .args([
                    "--message-format=json-render-diagnostics",
                    "--manifest-path",
                ])
                .arg(&manifest),
            Duration::from_secs(900),
        )
        .unwrap_or_else(|e| panic!("building the CLI: {e}"));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "cargo build -p quiesce-cli failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
            .lines()
            .filter_map(|l| Json::parse(l).ok())
            .filter(|m| m["reason"].as_str() == Some("compiler-artifact"))
            .filter(|m| m["target"]["name"].as_str() == Some("quiesce"))
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .expect("cargo reported no executable named quiesce")
    })
    .clone()
}

/// Subcommands that never freeze or thaw anything, so their path arguments need no guard.
const HARMLESS: [&str; 4] = ["plan", "--help", "-h", "--version"];

/// A `quiesce` command line under construction.
///
/// Every path that could be frozen must go through [`Quiesce::mount`] (guarded). As a second
/// safety net, [`Quiesce::command`] guards every argument before `--` that looks like a path
/// (contains `/` or exists relative to the working directory) unless the subcommand is `plan`.
#[derive(Clone, Debug, Default)]
pub struct Quiesce {
    args: Vec<OsString>,
    cwd: Option<PathBuf>,
    wrapper: Vec<OsString>,
    program: Option<PathBuf>,
    stderr_file: Option<PathBuf>,
    no_stdin: bool,
    env: Vec<(OsString, OsString)>,
}

impl Quiesce {
    /// `quiesce` with no arguments yet.
    pub fn new() -> Quiesce {
        Quiesce::default()
    }

    /// `quiesce SUBCOMMAND`.
    pub fn sub(subcommand: &str) -> Quiesce {
        Quiesce::new().arg(subcommand)
    }

    /// Appends a raw argument (an option, a timeout, a command after `--`).
    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Quiesce {
        self.args.push(a.as_ref().to_owned());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, it: I) -> Quiesce {
        self.args
            .extend(it.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Appends a path to freeze / thaw / plan, after checking it with the guard.
    pub fn mount(self, p: &Path) -> Quiesce {
        guard(&self.resolve(p));
        self.arg(p)
    }

    /// Appends every path of `ps` (guarded).
    pub fn mounts<P: AsRef<Path>>(self, ps: &[P]) -> Quiesce {
        ps.iter().fold(self, |q, p| q.mount(p.as_ref()))
    }

    /// Runs in `dir` (for relative mount arguments).
    pub fn current_dir(mut self, dir: &Path) -> Quiesce {
        self.cwd = Some(dir.to_path_buf());
        self
    }

    /// Runs `WRAPPER... quiesce ARGS` (e.g. setpriv to drop privileges).
    pub fn wrapper<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, it: I) -> Quiesce {
        self.wrapper = it.into_iter().map(|a| a.as_ref().to_owned()).collect();
        self
    }

    /// [`Quiesce::spawn`] sends its stderr to this file (created; e.g. on the filesystem it
    /// freezes, to check that it never writes there while frozen) instead of a pipe.
    pub fn stderr_file(mut self, p: &Path) -> Quiesce {
        self.stderr_file = Some(p.to_path_buf());
        self
    }

    /// [`Quiesce::spawn`] gives it /dev/null as stdin instead of a pipe.
    pub fn no_stdin(mut self) -> Quiesce {
        self.no_stdin = true;
        self
    }

    /// Sets an environment variable for it (e.g. `QUIESCE_RUN_DIR`).
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Quiesce {
        self.env
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Uses this binary instead of [`quiesce_bin`] (e.g. a copy others can execute).
    pub fn program(mut self, p: &Path) -> Quiesce {
        self.program = Some(p.to_path_buf());
        self
    }

    fn resolve(&self, p: &Path) -> PathBuf {
        match &self.cwd {
            Some(d) if p.is_relative() => d.join(p),
            _ => p.to_path_buf(),
        }
    }

    /// The arguments as one printable line.
    pub fn display(&self) -> String {
        let mut s = String::from("quiesce");
        for a in &self.args {
            s.push(' ');
            s.push_str(&a.to_string_lossy());
        }
        s
    }

    fn safety_net(&self) {
        let first = self.args.first().map(|a| a.to_string_lossy().into_owned());
        if first.as_deref().is_some_and(|f| HARMLESS.contains(&f)) {
            return;
        }
        let mut disks: Vec<OsString> = Vec::new();
        let mut value_of_disk = false;
        for a in self.args.iter().skip(1).take_while(|a| *a != "--") {
            let s = a.to_string_lossy();
            if value_of_disk {
                // A DISK, not a mount point: guarded below through its plan.
                value_of_disk = false;
                disks.push(a.clone());
                continue;
            }
            if s == "--disk" || s == "--exclude-disk" {
                value_of_disk = true;
                disks.push(a.clone());
                continue;
            }
            if s.starts_with("--disk=")
                || s.starts_with("--exclude-disk=")
                || s == "--allow-partial-group"
            {
                disks.push(a.clone());
                continue;
            }
            if s.is_empty() || s.starts_with('-') {
                continue;
            }
            let p = self.resolve(Path::new(a));
            if s.contains('/') || p.exists() {
                guard(&p);
            }
        }
        if !disks.is_empty() {
            self.guard_disk_selection(&disks);
        }
    }

    /// A selection by disk: every filesystem its plan would freeze must pass the guard (a
    /// plan that is refused freezes nothing).
    fn guard_disk_selection(&self, selection: &[OsString]) {
        let out = Quiesce::sub("plan")
            .arg("--json")
            .args(selection)
            .run(Duration::from_secs(60));
        let Ok(j) = out.try_json() else {
            return;
        };
        if j["status"].as_i64() != Some(0) {
            return;
        }
        for t in j["targets"].items() {
            if let Some(mp) = t["mount_point"].as_str() {
                guard(Path::new(mp));
            }
        }
    }

    /// The `Command` (guarded; SIGUSR1 recorder installed). stdio is left to the caller.
    pub fn command(&self) -> Command {
        self.safety_net();
        install_usr1_recorder();
        let bin = self.program.clone().unwrap_or_else(quiesce_bin);
        let mut c = match self.wrapper.split_first() {
            Some((w, rest)) => {
                let mut c = Command::new(w);
                c.args(rest).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        c.args(&self.args);
        c.envs(self.env.iter().map(|(k, v)| (k, v)));
        if let Some(d) = &self.cwd {
            c.current_dir(d);
        }
        c
    }

    /// Runs it to completion with stdin from /dev/null; panics if it takes longer than `timeout`.
    pub fn run(&self, timeout: Duration) -> QuiesceOutput {
        let start = Instant::now();
        let out = run_timeout(&mut self.command(), timeout)
            .unwrap_or_else(|e| panic!("{}: {e}", self.display()));
        QuiesceOutput::from_parts(self.display(), out.status, &out.stdout, &out.stderr, start)
    }

    /// Starts it with stdin (unless [`Quiesce::no_stdin`]), stdout and stderr (unless
    /// [`Quiesce::stderr_file`]) piped; see [`QuiesceChild`].
    pub fn spawn(&self) -> QuiesceChild {
        let mut cmd = self.command();
        cmd.stdout(Stdio::piped());
        cmd.stdin(if self.no_stdin {
            Stdio::null()
        } else {
            Stdio::piped()
        });
        match &self.stderr_file {
            Some(f) => cmd.stderr(
                std::fs::File::create(f).unwrap_or_else(|e| panic!("create {}: {e}", f.display())),
            ),
            None => cmd.stderr(Stdio::piped()),
        };
        let start = Instant::now();
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.display()));
        let stdin = child.stdin.take();
        let (lines_tx, lines) = mpsc::channel();
        let stdout_acc = Arc::new(Mutex::new(String::new()));
        let acc = Arc::clone(&stdout_acc);
        let out = child.stdout.take().expect("piped stdout");
        let stdout_done = {
            let (tx, rx) = mpsc::channel();
            thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    acc.lock().unwrap().push_str(&line);
                    acc.lock().unwrap().push('\n');
                    let _ = lines_tx.send(line);
                }
                let _ = tx.send(());
            });
            rx
        };
        let stderr = match child.stderr.take() {
            Some(e) => drain(e),
            None => drain(std::io::empty()),
        };
        QuiesceChild {
            display: self.display(),
            guard: ChildGuard::new(child),
            stdin,
            lines,
            stdout_acc,
            stdout_done,
            stderr,
            start,
            finished: None,
        }
    }
}

/// What a finished `quiesce` did.
#[derive(Clone, Debug)]
pub struct QuiesceOutput {
    /// The command line, for messages.
    pub cmdline: String,
    /// Exit code (None if killed by a signal).
    pub code: Option<i32>,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// Wall-clock time from start to exit.
    pub elapsed: Duration,
}

impl QuiesceOutput {
    /// Builds an output from its parts (used by controllers that reap `quiesce` themselves).
    pub fn from_parts(
        cmdline: String,
        status: ExitStatus,
        stdout: &[u8],
        stderr: &[u8],
        start: Instant,
    ) -> QuiesceOutput {
        QuiesceOutput {
            cmdline,
            code: status.code(),
            status,
            stdout: String::from_utf8_lossy(stdout).into_owned(),
            stderr: String::from_utf8_lossy(stderr).into_owned(),
            elapsed: start.elapsed(),
        }
    }

    /// The JSON report: the last stdout line that parses as a JSON object.
    pub fn try_json(&self) -> Result<Json, String> {
        self.stdout
            .lines()
            .rev()
            .filter(|l| l.trim_start().starts_with('{'))
            .map(Json::parse)
            .next()
            .unwrap_or_else(|| Err("no JSON object on stdout".into()))
    }

    /// The JSON report; panics (with the whole output) if there is none.
    pub fn json(&self) -> Json {
        self.try_json()
            .unwrap_or_else(|e| panic!("no JSON report: {e}\n{self}"))
    }

    /// Panics (with the whole output) unless the exit code is `code`.
    pub fn assert_code(&self, code: i32, why: &str) -> &QuiesceOutput {
        assert_eq!(
            self.code,
            Some(code),
            "{why}: expected exit code {code}, got {:?}\n{self}",
            self.code
        );
        self
    }
}

impl fmt::Display for QuiesceOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "--- `{}` exited {} after {:?}\n--- stdout:\n{}\n--- stderr:\n{}\n---",
            self.cmdline,
            self.status,
            self.elapsed,
            self.stdout.trim_end(),
            self.stderr.trim_end()
        )
    }
}

/// A running `quiesce`. Dropping it sends SIGTERM (then SIGKILL) and reaps it.
pub struct QuiesceChild {
    display: String,
    guard: ChildGuard,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stdout_acc: Arc<Mutex<String>>,
    stdout_done: Receiver<()>,
    stderr: Receiver<Vec<u8>>,
    start: Instant,
    finished: Option<QuiesceOutput>,
}

impl QuiesceChild {
    pub fn pid(&self) -> u32 {
        self.guard.id()
    }

    /// The next stdout line, waiting up to `timeout`.
    pub fn read_line(&self, timeout: Duration) -> Option<String> {
        self.lines.recv_timeout(timeout).ok()
    }

    /// Waits up to `timeout` for a stdout line equal to `want` (other lines are skipped).
    pub fn wait_for_line(&self, want: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.trim_end() == want => return true,
                Ok(_) => continue,
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return false,
            }
        }
    }

    /// Everything it printed on stdout so far.
    pub fn stdout_so_far(&self) -> String {
        self.stdout_acc.lock().unwrap().clone()
    }

    /// Writes `line` and a newline to its stdin.
    pub fn send_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin already closed");
        writeln!(stdin, "{line}")
            .and_then(|_| stdin.flush())
            .unwrap_or_else(|e| panic!("writing {line:?} to {}: {e}", self.display));
    }

    /// Closes its stdin (end of input).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Sends signal `sig` from the test process (its parent).
    pub fn signal(&self, sig: i32) {
        send_signal(self.pid(), sig).unwrap_or_else(|e| panic!("kill({}, {sig}): {e}", self.pid()));
    }

    /// True if it has exited (it is then reaped; [`Self::wait`] still returns the output).
    pub fn has_exited(&mut self) -> bool {
        self.guard.wait_timeout(Duration::ZERO).is_some()
    }

    /// Waits up to `timeout` for it to exit; None if it is still running.
    pub fn try_wait(&mut self, timeout: Duration) -> Option<QuiesceOutput> {
        if let Some(o) = &self.finished {
            return Some(o.clone());
        }
        let status = self.guard.wait_timeout(timeout)?;
        let grace = Duration::from_secs(5);
        let _ = self.stdout_done.recv_timeout(grace);
        // Lines not consumed by read_line are still in the accumulated stdout.
        let stderr = self.stderr.recv_timeout(grace).unwrap_or_default();
        let stdout = self.stdout_so_far();
        let out = QuiesceOutput::from_parts(
            self.display.clone(),
            status,
            stdout.as_bytes(),
            &stderr,
            self.start,
        );
        self.finished = Some(out.clone());
        Some(out)
    }

    /// Waits up to `timeout` for it to exit; panics (with what it printed so far) if it does not.
    pub fn wait(&mut self, timeout: Duration) -> QuiesceOutput {
        match self.try_wait(timeout) {
            Some(o) => o,
            None => panic!(
                "`{}` did not exit within {timeout:?}; stdout so far:\n{}",
                self.display,
                self.stdout_so_far()
            ),
        }
    }
}
