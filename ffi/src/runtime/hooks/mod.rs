//! Application hooks around a freeze: checked before anything runs, run with a timeout, their
//! output kept (bounded) for the report, and every hook that got `freeze` gets exactly one of
//! `thaw` or `freeze-failed`.
//!
//! - [`HookConfig`]: what to run (a hook directory, a pre and a post script), the per-call
//!   timeout, and whether application consistency is required;
//! - [`Hooks::load`]: verifies every hook (owner root, not writable by group or others, the
//!   same for every directory above it, a regular executable file, no symbolic link anywhere
//!   on the path) and keeps a descriptor of each; nothing runs if one is refused;
//! - [`Hooks::run_freeze`] before the freeze, [`Hooks::run_after`] after the thaw;
//! - [`Prepared::freeze_with_hooks`](crate::runtime::Prepared::freeze_with_hooks): the whole
//!   sequence around one freeze session, with the consistency level in the report.
//!
//! Order: the pre script, then the directory's executables in byte-wise name order, each with
//! the argument `freeze`; after the thaw, the directory's hooks that got `freeze` in reverse
//! order, then the post script, each with `thaw` (the filesystems were frozen and thawed in
//! time) or `freeze-failed` (the freeze failed, the deadline passed, a hook failed before the
//! freeze with application consistency required, or nothing was frozen). The pre script is the
//! `freeze` half of a pair whose other half is the post script: with both set, they behave as
//! one hook of the directory would.
//!
//! Hooks run before the first `FIFREEZE` and after the last `FITHAW`, never in between.

mod capture;
mod session;
mod spawn;
mod verify;

pub use capture::{HookEnd, LINGER, LINGER_MAX, OUTPUT_LIMIT};
pub use session::HookSummary;

use std::ffi::{CStr, CString, OsStr, OsString};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use quiesce_core::Status;

use super::Failure;
use crate::engine::hooks::{Halt, Quiesced, SessionHooks};
use crate::engine::text::Seconds;
use verify::{verify, Kind};

/// The default per-call timeout: 30 minutes, as the Alibaba Cloud snapshot plugin's
/// `ScriptTimeoutInSeconds`.
pub const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(1800);

/// The longest per-call timeout accepted.
pub const MAX_HOOK_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// Most executables a hook directory may hold.
pub const MAX_DIR_HOOKS: usize = 256;

/// What to run around a freeze.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookConfig {
    /// A directory whose executables are the hooks (`freeze` in name order, then `thaw` or
    /// `freeze-failed` in reverse).
    pub dir: Option<PathBuf>,
    /// One script run with `freeze` before the freeze (before the directory's hooks).
    pub pre: Option<PathBuf>,
    /// One script run with `thaw` or `freeze-failed` after the thaw (after the directory's).
    pub post: Option<PathBuf>,
    /// The timeout of each call; at expiry the hook's whole process group is killed.
    pub timeout: Duration,
    /// Fail instead of falling back to file-system consistency: a hook that fails before the
    /// freeze stops everything before anything is frozen.
    pub require_app_consistent: bool,
}

impl Default for HookConfig {
    fn default() -> Self {
        HookConfig {
            dir: None,
            pre: None,
            post: None,
            timeout: DEFAULT_HOOK_TIMEOUT,
            require_app_consistent: false,
        }
    }
}

impl HookConfig {
    /// True if no hook is configured.
    pub fn is_empty(&self) -> bool {
        self.dir.is_none() && self.pre.is_none() && self.post.is_none()
    }
}

/// The argument a hook is called with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookPhase {
    /// Before the freeze: quiesce the application.
    Freeze,
    /// After the thaw of a freeze that succeeded: resume.
    Thaw,
    /// After a freeze that failed, timed out or never happened: resume.
    FreezeFailed,
}

impl HookPhase {
    /// The argument: `freeze`, `thaw`, `freeze-failed`.
    pub const fn name(self) -> &'static str {
        match self {
            HookPhase::Freeze => "freeze",
            HookPhase::Thaw => "thaw",
            HookPhase::FreezeFailed => "freeze-failed",
        }
    }

    fn arg(self) -> &'static CStr {
        match self {
            HookPhase::Freeze => c"freeze",
            HookPhase::Thaw => c"thaw",
            HookPhase::FreezeFailed => c"freeze-failed",
        }
    }
}

/// Where a hook came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookSource {
    /// `--pre-script`.
    PreScript,
    /// `--post-script`.
    PostScript,
    /// An executable in the hook directory.
    Directory,
}

impl HookSource {
    /// A stable name: `pre-script`, `post-script`, `hook-dir`.
    pub const fn name(self) -> &'static str {
        match self {
            HookSource::PreScript => "pre-script",
            HookSource::PostScript => "post-script",
            HookSource::Directory => "hook-dir",
        }
    }
}

/// One call of one hook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookRun {
    /// The file name (for a directory's hook) or the path (for the pre and post scripts).
    pub name: String,
    /// The verified path.
    pub path: PathBuf,
    /// Where it came from.
    pub source: HookSource,
    /// The argument it got.
    pub phase: HookPhase,
    /// How it ended.
    pub end: HookEnd,
    /// How long it ran.
    pub duration: Duration,
    /// Its stdout and stderr, interleaved, at most [`OUTPUT_LIMIT`] bytes (lossy UTF-8).
    pub output: String,
    /// Bytes of output beyond the limit, read and dropped.
    pub output_dropped: usize,
    /// The hook exited but a process it left behind still held its output open: quiesce
    /// stopped reading and left that process alone.
    pub output_held_open: bool,
    /// Killed (timeout or cancel) but not reaped within a few seconds.
    pub unreaped: bool,
}

impl HookRun {
    /// Exit status 0.
    pub fn succeeded(&self) -> bool {
        self.end.succeeded()
    }

    /// How it ended, for people: `exit status 0`, `killed by signal 9`, `timed out after 5 s`.
    pub fn describe(&self, timeout: Duration) -> String {
        match self.end {
            HookEnd::Exited(c) => format!("exit status {c}"),
            HookEnd::Signaled(s) => format!("killed by signal {s}"),
            HookEnd::TimedOut => format!(
                "timed out after {}; its process group was killed",
                Seconds(timeout)
            ),
            HookEnd::Cancelled => {
                "cancelled (quiesce was interrupted); its process group was killed".into()
            }
            HookEnd::NotStarted(e) => format!(
                "could not be started: {}",
                std::io::Error::from_raw_os_error(e)
            ),
        }
    }
}

/// A verified hook, ready to run.
#[derive(Debug)]
struct Hook {
    name: String,
    argv0: CString,
    path: PathBuf,
    source: HookSource,
    fd: OwnedFd,
}

/// The hooks of one session: verified, then run around the freeze.
#[derive(Debug)]
pub struct Hooks {
    pre: Option<Hook>,
    dir: Vec<Hook>,
    post: Option<Hook>,
    dir_path: Option<PathBuf>,
    timeout: Duration,
    require: bool,
    notes: Vec<String>,
    runs: Vec<HookRun>,
    /// Indexes into `dir` of the hooks that got `freeze`, in call order.
    called: Vec<usize>,
    freeze_started: bool,
    freeze_failure: Option<String>,
    after_done: bool,
    /// What the `freeze` calls decided, once they ran.
    verdict: Option<FreezeVerdict>,
    /// [`Hooks::after_failure`], once the calls after the thaw ran.
    after_failure_text: Option<String>,
}

/// What the freeze phase decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FreezeVerdict {
    /// Every hook that ran before the freeze succeeded, and at least one ran.
    pub quiesced: bool,
    /// Whether to go on and freeze: false when a hook failed and application consistency is
    /// required, or when the run was cancelled.
    pub proceed: bool,
    /// Cancelled by the caller.
    pub cancelled: bool,
    /// Why the application is not quiesced (when `quiesced` is false).
    pub reason: Option<String>,
}

impl Hooks {
    /// Verifies every hook of `config` before anything runs. `Err` with
    /// [`Status::HookRefused`] names the refused file and why; [`Status::Usage`] for a bad
    /// timeout; [`Status::NotAppConsistent`] when application consistency is required but no
    /// hook runs before the freeze.
    pub fn load(config: &HookConfig) -> Result<Hooks, Failure> {
        if config.timeout.is_zero() || config.timeout > MAX_HOOK_TIMEOUT {
            return Err(Failure::new(
                Status::Usage,
                format!(
                    "the hook timeout must be more than 0 and at most {} seconds",
                    MAX_HOOK_TIMEOUT.as_secs()
                ),
            ));
        }
        let refused = |m: String| Failure::new(Status::HookRefused, format!("hook refused: {m}"));
        let mut notes = Vec::new();
        let single = |p: &Path, source: HookSource| -> Result<Hook, Failure> {
            let v = verify(p, Kind::Executable).map_err(refused)?;
            Ok(Hook {
                name: v.path.to_string_lossy().into_owned(),
                argv0: cstring(v.path.as_os_str())?,
                path: v.path,
                source,
                fd: v.fd,
            })
        };
        let pre = config
            .pre
            .as_deref()
            .map(|p| single(p, HookSource::PreScript))
            .transpose()?;
        let post = config
            .post
            .as_deref()
            .map(|p| single(p, HookSource::PostScript))
            .transpose()?;
        let (dir, dir_path) = match config.dir.as_deref() {
            Some(d) => {
                let (hooks, path) = load_dir(d, &mut notes)?;
                (hooks, Some(path))
            }
            None => (Vec::new(), None),
        };
        if config.require_app_consistent && pre.is_none() && dir.is_empty() {
            let why = match &dir_path {
                Some(d) => format!(
                    "the hook directory {} holds no executable hook{}",
                    d.display(),
                    if config.pre.is_none() {
                        " and no --pre-script is given"
                    } else {
                        ""
                    }
                ),
                None => "neither a hook directory nor a pre script is given".into(),
            };
            return Err(Failure::new(
                Status::NotAppConsistent,
                format!(
                    "application consistency is required but no hook runs before the freeze: {why}; nothing was run or frozen"
                ),
            ));
        }
        Ok(Hooks {
            pre,
            dir,
            post,
            dir_path,
            timeout: config.timeout,
            require: config.require_app_consistent,
            notes,
            runs: Vec::new(),
            called: Vec::new(),
            freeze_started: false,
            freeze_failure: None,
            after_done: false,
            verdict: None,
            after_failure_text: None,
        })
    }

    /// True if there is nothing to run.
    pub fn is_empty(&self) -> bool {
        self.pre.is_none() && self.post.is_none() && self.dir.is_empty()
    }

    /// True if a hook directory, a pre or a post script was given (even an empty directory:
    /// the report then says that no hook ran before the freeze).
    pub fn is_configured(&self) -> bool {
        self.dir_path.is_some() || self.pre.is_some() || self.post.is_some()
    }

    /// The names of the hooks in the order of the `freeze` calls (pre script first).
    pub fn freeze_order(&self) -> Vec<String> {
        self.pre
            .iter()
            .chain(self.dir.iter())
            .map(|h| h.name.clone())
            .collect()
    }

    /// The per-call timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Whether application consistency is required.
    pub fn required(&self) -> bool {
        self.require
    }

    /// Notes from loading (entries of the hook directory that are not run, and why).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Every call so far, in order.
    pub fn runs(&self) -> &[HookRun] {
        &self.runs
    }

    /// Runs the `freeze` calls: the pre script, then the directory's hooks in name order. With
    /// application consistency required, stops at the first failure. Runs once.
    pub fn run_freeze(&mut self) -> FreezeVerdict {
        self.run_freeze_with(&mut || false)
    }

    /// [`Hooks::run_freeze`], asking `cancel` every few milliseconds while a hook runs: when
    /// it says true, that hook's process group is killed and no further hook gets `freeze`.
    pub fn run_freeze_with(&mut self, cancel: &mut dyn FnMut() -> bool) -> FreezeVerdict {
        if self.freeze_started {
            return self.verdict_so_far();
        }
        self.freeze_started = true;
        let mut cancelled = false;
        if let Some(pre) = self.pre.take() {
            let run = self.call(&pre, HookPhase::Freeze, cancel);
            self.pre = Some(pre);
            cancelled = run.end == HookEnd::Cancelled;
            self.note_freeze_result(&run);
            self.runs.push(run);
        }
        for i in 0..self.dir.len() {
            if cancelled || (self.require && self.freeze_failure.is_some()) {
                break;
            }
            let run = self.call(&self.dir[i], HookPhase::Freeze, cancel);
            self.called.push(i);
            cancelled = run.end == HookEnd::Cancelled;
            self.note_freeze_result(&run);
            self.runs.push(run);
        }
        let verdict = self.verdict(cancelled);
        self.verdict = Some(verdict.clone());
        verdict
    }

    /// What the `freeze` calls decided (as [`Hooks::run_freeze`] returned it), or, before
    /// they ran, that nothing quiesced the application.
    pub fn verdict_so_far(&self) -> FreezeVerdict {
        self.verdict.clone().unwrap_or_else(|| self.verdict(false))
    }

    fn note_freeze_result(&mut self, run: &HookRun) {
        if !run.succeeded() && self.freeze_failure.is_none() {
            self.freeze_failure = Some(format!(
                "the hook {} failed before the freeze ({})",
                run.name,
                run.describe(self.timeout)
            ));
        }
    }

    fn verdict(&self, cancelled: bool) -> FreezeVerdict {
        let ran = self.runs.iter().any(|r| r.phase == HookPhase::Freeze);
        let reason = match (&self.freeze_failure, ran) {
            (Some(f), _) => Some(f.clone()),
            (None, false) => Some(match &self.dir_path {
                Some(d) if self.pre.is_none() => format!(
                    "no hook ran before the freeze (the hook directory {} holds no executable hook)",
                    d.display()
                ),
                _ => "no hook ran before the freeze (only a post script is configured)".into(),
            }),
            (None, true) => None,
        };
        let quiesced = reason.is_none() && !cancelled;
        FreezeVerdict {
            quiesced,
            proceed: !cancelled && (quiesced || !self.require),
            cancelled,
            reason,
        }
    }

    /// Runs the calls after the thaw: the directory's hooks that got `freeze`, in reverse
    /// order, then the post script, each with `thaw` if `thawed_ok` (the filesystems were
    /// frozen and thawed in time) and `freeze-failed` otherwise. Runs once; returns whether
    /// every one of these calls succeeded.
    pub fn run_after(&mut self, thawed_ok: bool) -> bool {
        if self.after_done {
            return self.after_ok();
        }
        self.after_done = true;
        let phase = if thawed_ok {
            HookPhase::Thaw
        } else {
            HookPhase::FreezeFailed
        };
        let called = std::mem::take(&mut self.called);
        for &i in called.iter().rev() {
            let run = self.call(&self.dir[i], phase, &mut || false);
            self.runs.push(run);
        }
        if let Some(post) = self.post.take() {
            let run = self.call(&post, phase, &mut || false);
            self.post = Some(post);
            self.runs.push(run);
        }
        self.after_failure_text = self.after_failure();
        self.after_ok()
    }

    /// Every call after the thaw succeeded (true before any).
    pub fn after_ok(&self) -> bool {
        self.runs
            .iter()
            .filter(|r| r.phase != HookPhase::Freeze)
            .all(HookRun::succeeded)
    }

    /// The first failed call after the thaw, described.
    pub fn after_failure(&self) -> Option<String> {
        self.runs
            .iter()
            .find(|r| r.phase != HookPhase::Freeze && !r.succeeded())
            .map(|r| {
                format!(
                    "the hook {} failed on `{}` ({}): the application may not have resumed",
                    r.name,
                    r.phase.name(),
                    r.describe(self.timeout)
                )
            })
    }

    fn call(&self, hook: &Hook, phase: HookPhase, cancel: &mut dyn FnMut() -> bool) -> HookRun {
        let start = Instant::now();
        let argv = [hook.argv0.as_c_str(), phase.arg()];
        let env = hook_env(hook, phase);
        let (end, output, dropped, held, unreaped) =
            match spawn::spawn(hook.fd.as_fd(), &argv, &env) {
                Ok(sp) => {
                    let f = capture::wait(sp, self.timeout, cancel);
                    (f.end, f.output, f.truncated, f.held_open, f.unreaped)
                }
                Err(e) => (
                    HookEnd::NotStarted(e.raw_os_error().unwrap_or(quiesce_core::errno::EIO)),
                    Vec::new(),
                    0,
                    false,
                    false,
                ),
            };
        let mut output = String::from_utf8_lossy(&output).into_owned();
        if dropped > 0 {
            output.push_str(&format!(
                "\n[quiesce: {dropped} more bytes of output dropped; the limit is {OUTPUT_LIMIT} bytes per call]"
            ));
        }
        HookRun {
            name: hook.name.clone(),
            path: hook.path.clone(),
            source: hook.source,
            phase,
            end,
            duration: start.elapsed(),
            output,
            output_dropped: dropped,
            output_held_open: held,
            unreaped,
        }
    }
}

/// The hooks as the engine's lifecycle drives them (the CLI's sessions and the C ABI's).
impl SessionHooks for Hooks {
    fn before_freeze(&mut self, cancel: &mut dyn FnMut() -> bool) -> Result<(), Halt> {
        if !self.is_configured() {
            return Ok(());
        }
        let v = self.run_freeze_with(cancel);
        match (v.proceed, v.cancelled) {
            (true, _) => Ok(()),
            (false, true) => Err(Halt::Cancelled),
            (false, false) => Err(Halt::Required),
        }
    }

    fn after_thaw(&mut self, thawed_ok: bool) {
        if self.freeze_started {
            self.run_after(thawed_ok);
        }
    }

    fn quiesced(&self) -> Option<Quiesced<'_>> {
        let v = self.verdict.as_ref().filter(|_| self.is_configured())?;
        Some(if v.quiesced {
            Quiesced::Yes
        } else {
            Quiesced::No(v.reason.as_deref())
        })
    }

    fn after_failure(&self) -> Option<&str> {
        self.after_failure_text.as_deref()
    }

    fn has_hooks(&self) -> bool {
        !self.is_empty()
    }
}

impl Drop for Hooks {
    /// A hook that got `freeze` always gets its second call, even if the caller forgot (or
    /// unwound past) [`Hooks::run_after`].
    fn drop(&mut self) {
        if self.freeze_started && !self.after_done {
            self.run_after(false);
        }
    }
}

/// The whole environment of a hook: a fixed `PATH`, `LC_ALL=C`, `QUIESCE_HOOK` (its verified
/// path: a script's `$0` is `/dev/fd/3`, since it runs through its descriptor) and
/// `QUIESCE_HOOK_PHASE` (its argument).
fn hook_env(hook: &Hook, phase: HookPhase) -> Vec<CString> {
    let mut me = b"QUIESCE_HOOK=".to_vec();
    me.extend_from_slice(hook.argv0.as_bytes());
    [
        format!("PATH={}", spawn::HOOK_PATH).into_bytes(),
        b"LC_ALL=C".to_vec(),
        me,
        format!("QUIESCE_HOOK_PHASE={}", phase.name()).into_bytes(),
    ]
    .into_iter()
    // No NUL can be inside: the path was checked when the hook was loaded.
    .filter_map(|v| CString::new(v).ok())
    .collect()
}

fn cstring(s: &OsStr) -> Result<CString, Failure> {
    CString::new(s.as_bytes()).map_err(|_| {
        Failure::new(
            Status::Usage,
            format!("the hook path {} contains a NUL byte", s.to_string_lossy()),
        )
    })
}

/// Verifies the directory and every executable in it; returns them in byte-wise name order.
fn load_dir(d: &Path, notes: &mut Vec<String>) -> Result<(Vec<Hook>, PathBuf), Failure> {
    let refused = |m: String| Failure::new(Status::HookRefused, format!("hook refused: {m}"));
    let v = verify(d, Kind::Directory).map_err(refused)?;
    let listing = verify::open_for_listing(&v).map_err(refused)?;
    let mut dir = rustix::fs::Dir::new(listing).map_err(|e| {
        refused(format!(
            "cannot read the hook directory {}: {e}",
            v.path.display()
        ))
    })?;
    let mut names: Vec<OsString> = Vec::new();
    while let Some(entry) = dir.read() {
        let entry = entry.map_err(|e| {
            refused(format!(
                "cannot read the hook directory {}: {e}",
                v.path.display()
            ))
        })?;
        let name = OsStr::from_bytes(entry.file_name().to_bytes());
        if name == "." || name == ".." {
            continue;
        }
        names.push(name.to_owned());
    }
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    let mut hooks = Vec::new();
    for name in names {
        let shown = name.to_string_lossy().into_owned();
        if name.as_bytes().starts_with(b".") {
            notes.push(format!(
                "{}: not run (hidden: its name starts with a dot)",
                v.path.join(&name).display()
            ));
            continue;
        }
        let Some(st) = verify::stat_entry(v.fd.as_fd(), &name) else {
            return Err(refused(format!(
                "{} vanished while the hook directory was read",
                v.path.join(&name).display()
            )));
        };
        let file_type = rustix::fs::FileType::from_raw_mode(st.st_mode);
        let is_link = file_type == rustix::fs::FileType::Symlink;
        if !is_link && !verify::is_executable_file(&st) {
            notes.push(format!(
                "{}: not run ({})",
                v.path.join(&name).display(),
                if file_type == rustix::fs::FileType::RegularFile {
                    "not executable"
                } else {
                    "not a regular file"
                }
            ));
            continue;
        }
        // Symbolic links are refused here, with the reason.
        let h = verify(&v.path.join(&name), Kind::Executable).map_err(refused)?;
        if hooks.len() == MAX_DIR_HOOKS {
            return Err(refused(format!(
                "the hook directory {} holds more than {MAX_DIR_HOOKS} executables",
                v.path.display()
            )));
        }
        hooks.push(Hook {
            argv0: cstring(h.path.as_os_str())?,
            name: shown,
            path: h.path,
            source: HookSource::Directory,
            fd: h.fd,
        });
    }
    Ok((hooks, v.path))
}
