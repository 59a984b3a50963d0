//! The measurements of issue 6, each for every quiesce configuration and for the fsfreeze
//! baseline in the same run (interleaved, so that drift of the machine hits both alike).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use crate::ballast::{self, Ballast, Memory};
use crate::baseline::Fsfreeze;
use crate::cycle::Tool;
use crate::dirty::{syncfs, write_dirty};
use crate::error::{bail, Result};
use crate::fixtures::Fixtures;
use crate::footprint::peak_rss_kib;
use crate::fresh_limit::FreshLimit;
use crate::json;
use crate::library;
use crate::limit::Limit;
use crate::quiesce::QuiesceCli;
use crate::signals;
use crate::stats::ms;
use crate::thaw::thaw;
use crate::writer::{open_prepared, BlockedWrite, StallWriters};

/// Writers run this long before the cycle starts and after it ends.
const AROUND: Duration = Duration::from_millis(100);
/// Pause before each empty cycle.
pub const SETTLE: Duration = Duration::from_millis(200);
/// The automatic-thaw deadline (s).
pub const DEADLINE: &str = "0.2";
/// The snapshot of the stall cycles (s).
pub const SNAPSHOT_SECS: &str = "0.2";
/// How long a write may take after SIGKILL of the controller before the benchmark gives up
/// and thaws itself.
pub const KILL_GIVE_UP: Duration = Duration::from_secs(5);
/// How long the baseline's blocked write is watched after `fsfreeze -f` exited.
pub const BASELINE_WATCH: Duration = Duration::from_secs(1);
/// At most this many repetitions of the cycles with the host ballast (2e, 2f): the effect is
/// large, and every cycle costs the ballast's page tables several times over.
pub const HOST_REPS: usize = 11;

/// Samples (ms) per quiesce configuration, for the baseline and for the limit.
#[derive(Debug, Default)]
pub struct Series {
    pub quiesce: Vec<Vec<f64>>,
    pub fsfreeze: Vec<f64>,
    /// The limit: in-process FIFREEZE/FITHAW in parallel threads.
    pub limit_parallel: Vec<f64>,
    /// The limit, one filesystem after another.
    pub limit_sequential: Vec<f64>,
    /// The limit in a process started for the cycle (the empty cycles only): in parallel
    /// threads, and one filesystem after another on its main thread.
    pub fresh_parallel: Vec<f64>,
    pub fresh_sequential: Vec<f64>,
    /// quiesce as a library in this process (the empty cycles only).
    pub library: Vec<f64>,
}

impl Series {
    fn new(configs: usize) -> Series {
        Series {
            quiesce: vec![Vec::new(); configs],
            ..Series::default()
        }
    }

    fn push(&mut self, who: Who, v: f64) {
        match who {
            Who::Quiesce(i) => {
                if let Some(s) = self.quiesce.get_mut(i) {
                    s.push(v);
                }
            }
            Who::Fsfreeze => self.fsfreeze.push(v),
            Who::Limit(true) => self.limit_parallel.push(v),
            Who::Limit(false) => self.limit_sequential.push(v),
            Who::Fresh(true) => self.fresh_parallel.push(v),
            Who::Fresh(false) => self.fresh_sequential.push(v),
            Who::Library => self.library.push(v),
        }
    }
}

/// Everything measured.
#[derive(Debug, Default)]
pub struct Results {
    pub stall_clean_1: Series,
    pub stall_clean_8: Series,
    pub stall_dirty_1: Series,
    /// 1a and 1c on the filesystem of the other kind (xfs when the others are ext4).
    pub stall_other_clean: Series,
    pub stall_other_dirty: Series,
    /// Growth of Dirty+Writeback in /proc/meminfo while the dirty data was written (MiB).
    pub dirty_seen_mib: Vec<f64>,
    pub cycle_1: Series,
    pub cycle_8: Series,
    /// quiesce's phases in the 2a and 2b cycles (ms), per configuration.
    pub phases_1: Vec<Vec<[f64; 8]>>,
    pub phases_8: Vec<Vec<[f64; 8]>>,
    /// The limit's own split of the same cycles (freeze, snapshot command, thaw; ms in the
    /// slots of [`crate::cycle::PHASES`]): index 0 parallel, 1 sequential.
    pub limit_phases_1: Vec<Vec<[f64; 8]>>,
    pub limit_phases_8: Vec<Vec<[f64; 8]>>,
    /// The fresh-process limit's split of the same cycles (see
    /// [`crate::fresh_limit::FreshLimit::cycle`]): index 0 parallel, 1 sequential.
    pub fresh_phases_1: Vec<Vec<[f64; 8]>>,
    pub fresh_phases_8: Vec<Vec<[f64; 8]>>,
    /// The library's phases in the same cycles.
    pub library_phases_1: Vec<[f64; 8]>,
    pub library_phases_8: Vec<[f64; 8]>,
    /// Peak RSS (KiB) under GNU time of `quiesce run --timeout 10 M -- true` and of
    /// `fsfreeze -f` / `-u` (the larger).
    pub rss_kib: Series,
    /// Peak RSS (KiB) of `true` under GNU time: the floor of the method.
    pub rss_floor_kib: Vec<f64>,
    /// Automatic-thaw lateness (ms) per configuration.
    pub lateness: Vec<Vec<f64>>,
    /// The FITHAW (`thaw_us`) and FIFREEZE (`freeze_us`) of those runs (ms) per configuration.
    pub lateness_thaw: Vec<Vec<f64>>,
    pub lateness_freeze: Vec<Vec<f64>>,
    /// SIGKILL of the controller -> writable (ms) per configuration.
    pub sigkill: Vec<Vec<f64>>,
    /// The baseline after its controller is gone: still frozen after [`BASELINE_WATCH`]?
    pub baseline_stays_frozen: Option<bool>,
    /// Rows 2e and 2f: the library in a process holding a ballast.
    pub host: Host,
    /// Anything worth saying about how the numbers came about.
    pub notes: Vec<String>,
}

/// Rows 2e and 2f: the empty cycle of 2c and 2d, the benchmark's process holding a ballast of
/// anonymous memory, every page touched (see [`crate::ballast`]).
#[derive(Debug, Default)]
pub struct Host {
    /// The ballast's size (MiB).
    pub mib: u64,
    /// Whether the kernel accepted `MADV_NOHUGEPAGE` on it (4 KiB pages).
    pub small_pages: bool,
    /// Wall times (ms) on 1 and 8 filesystems.
    pub cycle_1: Vec<f64>,
    pub cycle_8: Vec<f64>,
    /// The library's phases (ms) in the same cycles.
    pub phases_1: Vec<[f64; 8]>,
    pub phases_8: Vec<[f64; 8]>,
    /// The process's memory before the ballast, with it before the first cycle and after the
    /// last one, and after it was unmapped (the high-water mark then reset).
    pub before: Memory,
    pub loaded: Memory,
    pub last: Memory,
    pub after: Memory,
}

/// Samples of the lateness runs (ms).
#[derive(Debug, Default)]
struct Lateness {
    late: Vec<f64>,
    thaw: Vec<f64>,
    freeze: Vec<f64>,
}

#[derive(Clone, Copy, Debug)]
enum Who {
    Quiesce(usize),
    Fsfreeze,
    /// In-process freezing (parallel?).
    Limit(bool),
    /// The same in a process started for the cycle (parallel?; the empty cycles only).
    Fresh(bool),
    /// quiesce's runtime API in this process (the empty cycles only).
    Library,
}

pub struct Bench<'a> {
    pub fixtures: &'a Fixtures,
    pub configs: &'a [QuiesceCli],
    pub fsfreeze: &'a Fsfreeze,
    pub reps: usize,
    /// Repetitions of the empty cycles (2a, 2b).
    pub cycle_reps: usize,
    pub runs: usize,
    pub dirty_mib: u64,
    pub sleep: PathBuf,
    pub true_: PathBuf,
    /// GNU time.
    pub time: PathBuf,
    /// This benchmark's own executable (the fresh-process limit runs it again).
    pub exe: &'a Path,
    /// The host ballast of rows 2e and 2f (MiB).
    pub host_mib: u64,
}

impl Bench<'_> {
    fn tool(&self, who: Who) -> Result<Tool<'_>> {
        match who {
            Who::Quiesce(i) => match self.configs.get(i) {
                Some(q) => Ok(Tool::Quiesce(q)),
                None => bail!("no quiesce configuration {i}"),
            },
            Who::Fsfreeze => Ok(Tool::Fsfreeze(self.fsfreeze)),
            Who::Limit(parallel) => Ok(Tool::Limit(Limit { parallel })),
            Who::Fresh(parallel) => Ok(Tool::Fresh(FreshLimit {
                exe: self.exe,
                parallel,
            })),
            Who::Library => Ok(Tool::Library),
        }
    }

    /// Every tool, the starting one rotating with `rep`.
    fn order(&self, rep: usize) -> Vec<Who> {
        let mut all: Vec<Who> = (0..self.configs.len()).map(Who::Quiesce).collect();
        all.push(Who::Fsfreeze);
        all.push(Who::Limit(true));
        all.push(Who::Limit(false));
        let k = rep % all.len();
        all.rotate_left(k);
        all
    }

    /// Every tool of the empty cycles: those of [`Bench::order`], the library and the limit
    /// in a fresh process, the starting one rotating with `rep`.
    fn cycle_order(&self, rep: usize) -> Vec<Who> {
        let mut all = self.order(0);
        all.extend([Who::Library, Who::Fresh(true), Who::Fresh(false)]);
        let k = rep % all.len();
        all.rotate_left(k);
        all
    }

    fn snapshot_sleep(&self) -> Vec<OsString> {
        vec![self.sleep.clone().into_os_string(), SNAPSHOT_SECS.into()]
    }

    fn snapshot_true(&self) -> Vec<OsString> {
        vec![self.true_.clone().into_os_string()]
    }

    fn mounts(&self, n: usize) -> Result<Vec<PathBuf>> {
        let m = self.fixtures.mounts(n);
        if m.len() != n {
            bail!("need {n} filesystems, have {}", m.len());
        }
        Ok(m)
    }

    fn other_mount(&self) -> Result<Vec<PathBuf>> {
        match self.fixtures.other() {
            Some((_, m)) => Ok(vec![m]),
            None => bail!("no filesystem of the other kind"),
        }
    }

    fn first_mount(&self) -> Result<PathBuf> {
        self.mounts(1)?.pop().ok_or_else(|| "no filesystem".into())
    }

    /// Runs everything.
    pub fn run_all(&self, log: &dyn Fn(&str)) -> Result<Results> {
        let n = self.configs.len();
        let mut r = Results {
            stall_clean_1: Series::new(n),
            stall_clean_8: Series::new(n),
            stall_dirty_1: Series::new(n),
            stall_other_clean: Series::new(n),
            stall_other_dirty: Series::new(n),
            cycle_1: Series::new(n),
            cycle_8: Series::new(n),
            rss_kib: Series::new(n),
            lateness: vec![Vec::new(); n],
            phases_1: vec![Vec::new(); n],
            phases_8: vec![Vec::new(); n],
            limit_phases_1: vec![Vec::new(); 2],
            limit_phases_8: vec![Vec::new(); 2],
            fresh_phases_1: vec![Vec::new(); 2],
            fresh_phases_8: vec![Vec::new(); 2],
            lateness_thaw: vec![Vec::new(); n],
            lateness_freeze: vec![Vec::new(); n],
            sigkill: vec![Vec::new(); n],
            ..Results::default()
        };
        log("warm-up: one empty cycle per tool on 8 filesystems");
        let all = self.mounts(8)?;
        for who in self.cycle_order(0) {
            self.tool(who)?.cycle(&all, &self.snapshot_true())?;
        }

        for rep in 0..self.reps {
            log(&format!(
                "1. write stall, repetition {}/{}",
                rep + 1,
                self.reps
            ));
            for who in self.order(rep) {
                signals::check()?;
                let v = self.stall(who, self.mounts(1)?, false, &mut r)?;
                r.stall_clean_1.push(who, v);
                let v = self.stall(who, self.mounts(8)?, false, &mut r)?;
                r.stall_clean_8.push(who, v);
                let v = self.stall(who, self.mounts(1)?, true, &mut r)?;
                r.stall_dirty_1.push(who, v);
                let v = self.stall(who, self.other_mount()?, false, &mut r)?;
                r.stall_other_clean.push(who, v);
                let v = self.stall(who, self.other_mount()?, true, &mut r)?;
                r.stall_other_dirty.push(who, v);
            }
        }
        for rep in 0..self.cycle_reps {
            log(&format!(
                "2. empty cycle, repetition {}/{}",
                rep + 1,
                self.cycle_reps
            ));
            // The library and the fresh-process limit too, in the same rotation.
            for who in self.cycle_order(rep) {
                signals::check()?;
                for (count, series, phases, limit_phases, fresh_phases, library_phases) in [
                    (
                        1,
                        &mut r.cycle_1,
                        &mut r.phases_1,
                        &mut r.limit_phases_1,
                        &mut r.fresh_phases_1,
                        &mut r.library_phases_1,
                    ),
                    (
                        8,
                        &mut r.cycle_8,
                        &mut r.phases_8,
                        &mut r.limit_phases_8,
                        &mut r.fresh_phases_8,
                        &mut r.library_phases_8,
                    ),
                ] {
                    let mounts = self.mounts(count)?;
                    for m in &mounts {
                        syncfs(m)?;
                    }
                    // Cold start: a freeze soon after another one of the same filesystem is
                    // cheaper (the kernel's rcu_sync of its freeze locks is still armed).
                    thread::sleep(SETTLE);
                    let c = self.tool(who)?.cycle(&mounts, &self.snapshot_true())?;
                    series.push(who, ms(c.wall));
                    let slot = match who {
                        Who::Quiesce(i) => phases.get_mut(i),
                        Who::Limit(parallel) => limit_phases.get_mut(usize::from(!parallel)),
                        Who::Fresh(parallel) => fresh_phases.get_mut(usize::from(!parallel)),
                        Who::Library => Some(library_phases),
                        Who::Fsfreeze => None,
                    };
                    if let (Some(v), Some(p)) = (slot, c.phases) {
                        v.push(p);
                    }
                }
            }
        }
        log(&format!(
            "5. peak RSS under {}, {} runs",
            self.time.display(),
            self.reps
        ));
        let m = self.first_mount()?;
        for rep in 0..self.reps {
            for who in self.order(rep) {
                signals::check()?;
                let kib = match who {
                    Who::Quiesce(i) => match self.configs.get(i) {
                        Some(q) => {
                            let argv =
                                q.run_argv(std::slice::from_ref(&m), &self.snapshot_true())?;
                            peak_rss_kib(&self.time, &argv)?
                        }
                        None => bail!("no quiesce configuration {i}"),
                    },
                    Who::Fsfreeze => self.fsfreeze.peak_rss_kib(&self.time, &m)?,
                    Who::Limit(_) | Who::Fresh(_) | Who::Library => continue,
                };
                r.rss_kib.push(who, kib as f64);
            }
            let floor = peak_rss_kib(&self.time, &self.snapshot_true())?;
            r.rss_floor_kib.push(floor as f64);
        }
        for (i, q) in self.configs.iter().enumerate() {
            log(&format!(
                "3. automatic-thaw lateness, {} runs of `{} freeze --stdin --timeout {DEADLINE}`",
                self.runs,
                q.label()
            ));
            let v = self.lateness(q)?;
            for (all, mine) in [
                (&mut r.lateness, v.late),
                (&mut r.lateness_thaw, v.thaw),
                (&mut r.lateness_freeze, v.freeze),
            ] {
                if let Some(s) = all.get_mut(i) {
                    *s = mine;
                }
            }
        }
        for (i, q) in self.configs.iter().enumerate() {
            log(&format!(
                "4. SIGKILL of `{} freeze` while frozen, {} runs",
                q.label(),
                self.runs
            ));
            let v = self.sigkill(q, &mut r.notes)?;
            if let Some(s) = r.sigkill.get_mut(i) {
                *s = v;
            }
        }
        log("4. baseline: fsfreeze -f, its process gone");
        r.baseline_stays_frozen = Some(self.sigkill_baseline()?);
        // Last: the ballast exists only while these rows are measured (every process started
        // with it would pay for it), and each session's helpers (copies of this process) are
        // torn down after it ends, in the background: nothing measured afterwards.
        r.host = self.host(log)?;
        helpers_gone(HELPERS_GONE_WITHIN);
        Ok(r)
    }

    /// Repetitions of rows 2e and 2f.
    fn host_reps(&self) -> usize {
        self.cycle_reps.min(HOST_REPS)
    }

    /// Rows 2e and 2f: allocates the ballast, runs the library's empty cycles on 1 and 8
    /// filesystems with it, unmaps it and checks that the process's RSS fell back.
    fn host(&self, log: &dyn Fn(&str)) -> Result<Host> {
        let reps = self.host_reps();
        log(&format!(
            "2e/2f. empty cycle through the library with a {} MiB host ballast, {reps} repetitions",
            self.host_mib
        ));
        let mut h = Host {
            mib: self.host_mib,
            before: ballast::memory()?,
            ..Host::default()
        };
        let b = Ballast::new(self.host_mib)?;
        h.small_pages = b.small_pages;
        // The measurement's errors come back here: the ballast is unmapped before any of them
        // is returned (and by its drop on a panic).
        let measured = (|| -> Result<()> {
            h.loaded = ballast::memory()?;
            let want = (b.len() / 1024) as u64 * 9 / 10;
            if h.loaded.rss_kib < h.before.rss_kib + want {
                bail!(
                    "host ballast: VmRSS grew from {} to {} KiB only, with {} MiB touched",
                    h.before.rss_kib,
                    h.loaded.rss_kib,
                    self.host_mib
                );
            }
            for rep in 0..reps {
                log(&format!("2e/2f. repetition {}/{reps}", rep + 1));
                signals::check()?;
                for (count, wall, phases) in [
                    (1, &mut h.cycle_1, &mut h.phases_1),
                    (8, &mut h.cycle_8, &mut h.phases_8),
                ] {
                    let mounts = self.mounts(count)?;
                    for m in &mounts {
                        syncfs(m)?;
                    }
                    thread::sleep(SETTLE);
                    let c = library::cycle(&mounts, &self.snapshot_true())?;
                    wall.push(ms(c.wall));
                    if let Some(p) = c.phases {
                        phases.push(p);
                    }
                }
            }
            h.last = ballast::memory()?;
            Ok(())
        })();
        let len = b.len();
        let released = b.release();
        measured?;
        released?;
        let after = ballast::memory()?;
        let gone = (len / 1024) as u64 * 9 / 10;
        if after.rss_kib + gone > h.last.rss_kib {
            bail!(
                "host ballast: VmRSS is still {} KiB after unmapping {} MiB (was {} KiB)",
                after.rss_kib,
                self.host_mib,
                h.last.rss_kib
            );
        }
        ballast::reset_peak()?;
        h.after = ballast::memory()?;
        log(&format!(
            "2e/2f. host ballast unmapped: VmRSS {} -> {} KiB",
            h.last.rss_kib, h.after.rss_kib
        ));
        Ok(h)
    }

    /// The longest write+fsync stall during one cycle with a 200 ms snapshot (ms).
    fn stall(&self, who: Who, mounts: Vec<PathBuf>, dirty: bool, r: &mut Results) -> Result<f64> {
        for m in &mounts {
            syncfs(m)?;
        }
        let files = mounts
            .iter()
            .map(|m| open_prepared(&m.join("bench-writer.dat")))
            .collect::<Result<Vec<_>>>()?;
        let dirty_file = mounts.first().map(|m| m.join("bench-dirty.dat"));
        if let (true, Some(f)) = (dirty, &dirty_file) {
            let seen = write_dirty(f, self.dirty_mib)?;
            if seen < 0.8 * self.dirty_mib as f64 {
                r.notes.push(format!(
                    "1c: Dirty+Writeback grew by only {seen:.0} MiB while {} MiB were written: \
                     part of the data may have been written back before the cycle",
                    self.dirty_mib
                ));
            }
            r.dirty_seen_mib.push(seen);
        }
        let writers = StallWriters::start(files)?;
        thread::sleep(AROUND);
        let cycle = self.tool(who)?.cycle(&mounts, &self.snapshot_sleep());
        thread::sleep(AROUND);
        let stats = writers.finish(Duration::from_secs(30))?;
        cycle?;
        if let (true, Some(f)) = (dirty, &dirty_file) {
            let _ = std::fs::remove_file(f);
            if let Some(m) = mounts.first() {
                syncfs(m)?;
            }
        }
        if stats.ops < 2 {
            bail!("the writers completed only {} writes", stats.ops);
        }
        Ok(ms(stats.max))
    }

    /// Lateness (ms) of the automatic thaw at the deadline: window_us − timeout from the JSON
    /// report of `quiesce freeze --stdin --timeout 0.2 --json`, stdin held open.
    fn lateness(&self, q: &QuiesceCli) -> Result<Lateness> {
        let m = self.first_mount()?;
        let probe = m.join("bench-probe.dat");
        let mut out = Lateness::default();
        for _ in 0..self.runs {
            signals::check()?;
            syncfs(&m)?;
            let mut p = q.freeze_stdin(&m, DEADLINE, true)?;
            if !p.wait_for_line("frozen", Duration::from_secs(10)) {
                let _ = p.wait(Duration::from_secs(5));
                let (o, e) = p.collect();
                bail!(
                    "`{}` never printed `frozen`: {} {}",
                    p.what(),
                    o.trim(),
                    e.trim()
                );
            }
            let exit = p.wait_exit(Duration::from_secs(10))?;
            let (stdout, stderr) = p.collect();
            let report = stdout
                .lines()
                .rev()
                .find(|l| l.trim_start().starts_with('{'))
                .unwrap_or("");
            let (Some(window_us), Some(timeout_ms)) = (
                json::number(report, "window_us"),
                json::number(report, "timeout_ms"),
            ) else {
                bail!(
                    "`{}` ({}): no window_us/timeout_ms in its report: {stdout} {stderr}",
                    p.what(),
                    exit.describe()
                );
            };
            if exit.code != Some(13) || json::string(report, "end") != Some("deadline") {
                bail!(
                    "`{}` should end at the deadline with exit 13, got {} ({report})",
                    p.what(),
                    exit.describe()
                );
            }
            out.late.push(window_us / 1000.0 - timeout_ms);
            // One target: the first (only) occurrences are its own.
            out.thaw
                .push(json::number(report, "thaw_us").unwrap_or(f64::NAN) / 1000.0);
            out.freeze
                .push(json::number(report, "freeze_us").unwrap_or(f64::NAN) / 1000.0);
            // Writable again?
            let mut w = BlockedWrite::start(open_prepared(&probe)?)?;
            if w.completed_within(Duration::from_secs(5))?.is_none() {
                thaw(&m)?;
                bail!("{} still frozen after `{}` exited", m.display(), p.what());
            }
        }
        Ok(out)
    }

    /// SIGKILL of `quiesce freeze` while frozen -> a blocked write returns (ms).
    fn sigkill(&self, q: &QuiesceCli, notes: &mut Vec<String>) -> Result<Vec<f64>> {
        let m = self.first_mount()?;
        let path = m.join("bench-kill.dat");
        let mut out = Vec::new();
        for run in 0..self.runs {
            signals::check()?;
            let f = open_prepared(&path)?;
            let mut p = q.freeze_stdin(&m, "30", false)?;
            if !p.wait_for_line("frozen", Duration::from_secs(10)) {
                bail!("`{}` never printed `frozen`", p.what());
            }
            let mut w = BlockedWrite::start(f)?;
            if w.completed_within(Duration::from_millis(20))?.is_some() {
                bail!(
                    "a write to {} completed while `{}` said frozen",
                    m.display(),
                    p.what()
                );
            }
            let killed = Instant::now();
            p.signal(libc::SIGKILL)?;
            match w.completed_within(KILL_GIVE_UP)? {
                Some(t) => out.push(ms(t.saturating_duration_since(killed))),
                None => {
                    notes.push(format!(
                        "run {}: {} was still frozen {KILL_GIVE_UP:?} after SIGKILL of `{}`; \
                         thawed by the benchmark, counted as {} ms",
                        run + 1,
                        m.display(),
                        q.label(),
                        KILL_GIVE_UP.as_millis()
                    ));
                    thaw(&m)?;
                    if w.completed_within(Duration::from_secs(10))?.is_none() {
                        bail!("{} stays frozen even after FITHAW", m.display());
                    }
                    out.push(ms(KILL_GIVE_UP));
                }
            }
            p.wait_exit(Duration::from_secs(5))?;
        }
        Ok(out)
    }

    /// `fsfreeze -f`, then its process is gone: is the filesystem still frozen after
    /// [`BASELINE_WATCH`]? Thawed by the benchmark afterwards.
    fn sigkill_baseline(&self) -> Result<bool> {
        let m = self.first_mount()?;
        let f = open_prepared(&m.join("bench-kill.dat"))?;
        struct ThawOnDrop<'a>(&'a Path);
        impl Drop for ThawOnDrop<'_> {
            fn drop(&mut self) {
                if let Err(e) = thaw(self.0) {
                    eprintln!("quiesce-bench: cleanup: {e}");
                }
            }
        }
        let _thaw = ThawOnDrop(&m);
        self.fsfreeze.freeze(&m)?;
        let mut w = BlockedWrite::start(f)?;
        let stays = w.completed_within(BASELINE_WATCH)?.is_none();
        self.fsfreeze.thaw(&m)?;
        if w.completed_within(Duration::from_secs(10))?.is_none() {
            bail!("{} still frozen after fsfreeze -u", m.display());
        }
        Ok(stays)
    }
}

/// How long the benchmark waits, at its end, for the helpers of the library's sessions (rows
/// 2e/2f: copies of a process holding the ballast) to be gone.
const HELPERS_GONE_WITHIN: std::time::Duration = std::time::Duration::from_secs(30);

/// Waits (at most `within`) until no process of this benchmark's sessions' helpers is left:
/// no child of ours, or of our children, named `quiesce-guard` or `quiesce-freezer` (they end
/// on their own once a session is over; with the ballast, tearing each down takes a while).
fn helpers_gone(within: std::time::Duration) {
    let until = std::time::Instant::now() + within;
    while std::time::Instant::now() < until && helpers_left() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Whether a `quiesce-guard` or `quiesce-freezer` process runs (any: the benchmark runs alone).
fn helpers_left() -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return false;
    };
    dir.filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .any(|e| {
            std::fs::read_to_string(e.path().join("comm"))
                .is_ok_and(|c| matches!(c.trim_end(), "quiesce-guard" | "quiesce-freezer"))
        })
}
