//! The physical limit (issue 14): the same filesystems frozen and thawed by this process
//! itself, `FIFREEZE` and `FITHAW` on descriptors opened beforehand, either in parallel (one
//! thread per filesystem, started before the clock) or sequentially on this thread; the
//! snapshot command in between, as for the other tools. What the kernel needs, with no
//! process of ours to start and no deadline to keep: no tool can be faster.
//!
//! [`Freezer`] is that work; the fresh-process limit (fresh_limit.rs) runs the same in a
//! child process started for the cycle.

use std::ffi::OsString;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::cycle::{Cycle, PHASES};
use crate::error::{bail, Context, Result};
use crate::guard;
use crate::process::run;
use crate::thaw::thaw;

/// `_IOWR('X', 119, int)`.
const FIFREEZE: libc::c_ulong = (3 << 30) | (4 << 16) | ((b'X' as libc::c_ulong) << 8) | 119;
/// `_IOWR('X', 120, int)`.
const FITHAW: libc::c_ulong = (3 << 30) | (4 << 16) | ((b'X' as libc::c_ulong) << 8) | 120;

/// How long one ioctl (or the snapshot command) may take before the cycle is given up (then
/// everything is thawed).
pub const STEP: Duration = Duration::from_secs(30);

/// In-process freezing, parallel or sequential.
#[derive(Clone, Copy, Debug)]
pub struct Limit {
    pub parallel: bool,
}

fn ioctl(dir: &File, request: libc::c_ulong) -> std::io::Result<()> {
    let mut arg: libc::c_int = 0;
    // SAFETY: FIFREEZE/FITHAW on a descriptor we own; the kernel ignores the int argument.
    let r = unsafe { libc::ioctl(dir.as_raw_fd(), request as _, &mut arg) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Thaws every mount (guarded) when dropped: a failed or abandoned cycle leaves nothing
/// frozen (a mount that is not frozen is fine).
pub struct ThawAll<'a>(pub &'a [PathBuf]);

impl Drop for ThawAll<'_> {
    fn drop(&mut self) {
        for m in self.0.iter().rev() {
            if let Err(e) = thaw(m) {
                eprintln!("quiesce-bench: cleanup: {e}");
            }
        }
    }
}

/// One worker thread per filesystem: it waits for a request, does the ioctl, answers.
struct Workers {
    to: Vec<mpsc::Sender<libc::c_ulong>>,
    from: mpsc::Receiver<(usize, std::io::Result<()>)>,
    handles: Vec<thread::JoinHandle<()>>,
}

impl Workers {
    fn start(dirs: Vec<File>) -> Workers {
        let (done, from) = mpsc::channel();
        let mut to = Vec::new();
        let mut handles = Vec::new();
        for (i, dir) in dirs.into_iter().enumerate() {
            let (tx, rx) = mpsc::channel::<libc::c_ulong>();
            let done = done.clone();
            handles.push(thread::spawn(move || {
                while let Ok(request) = rx.recv() {
                    if done.send((i, ioctl(&dir, request))).is_err() {
                        break;
                    }
                }
            }));
            to.push(tx);
        }
        Workers { to, from, handles }
    }

    /// The ioctl on every filesystem at once, waiting up to [`STEP`] for each answer:
    /// per filesystem, None if it did not answer in time (or its thread is gone).
    fn all(&self, request: libc::c_ulong) -> Vec<Option<std::io::Result<()>>> {
        let mut out: Vec<Option<std::io::Result<()>>> = self.to.iter().map(|_| None).collect();
        let mut asked = 0;
        for tx in &self.to {
            if tx.send(request).is_ok() {
                asked += 1;
            }
        }
        for _ in 0..asked {
            match self.from.recv_timeout(STEP) {
                Ok((i, r)) => {
                    if let Some(slot) = out.get_mut(i) {
                        *slot = Some(r);
                    }
                }
                Err(_) => break,
            }
        }
        out
    }

    fn stop(self) {
        drop(self.to);
        for h in self.handles {
            let _ = h.join();
        }
    }
}

/// The first failure of a round of ioctls, as an error message.
fn first_error(
    what: &str,
    results: &[Option<std::io::Result<()>>],
    mounts: &[PathBuf],
) -> Option<String> {
    results.iter().zip(mounts).find_map(|(r, m)| match r {
        Some(Ok(())) => None,
        Some(Err(e)) => Some(format!("{what} {}: {e}", m.display())),
        None => Some(format!("{what} {}: no answer within {STEP:?}", m.display())),
    })
}

/// When each step of a timed cycle ended.
#[derive(Clone, Copy, Debug)]
pub struct Times {
    /// The clock started: just before the first `FIFREEZE`.
    pub start: Instant,
    /// Every `FIFREEZE` returned.
    pub frozen: Instant,
    /// The snapshot command exited.
    pub snapped: Instant,
    /// Every `FITHAW` returned.
    pub thawed: Instant,
}

/// The mounts to freeze, opened (after the guard), with their worker threads when parallel:
/// everything a cycle needs before its clock starts.
pub struct Freezer<'a> {
    mounts: &'a [PathBuf],
    how: How,
}

enum How {
    Sequential(Vec<File>),
    Parallel(Workers),
}

impl<'a> Freezer<'a> {
    /// The guard on every mount, then its descriptor (and a thread per mount if `parallel`).
    pub fn open(mounts: &'a [PathBuf], parallel: bool) -> Result<Freezer<'a>> {
        guard::check_all(mounts)?;
        let mut dirs = Vec::new();
        for m in mounts {
            dirs.push(
                File::options()
                    .read(true)
                    .custom_flags(libc::O_DIRECTORY)
                    .open(m)
                    .ctx(|| format!("open {}", m.display()))?,
            );
        }
        let how = if parallel {
            How::Parallel(Workers::start(dirs))
        } else {
            How::Sequential(dirs)
        };
        Ok(Freezer { mounts, how })
    }

    /// FIFREEZE every mount, run `snapshot` (stdin /dev/null, output piped, as every
    /// command of the benchmark), FITHAW every mount (in reverse when sequential). Every
    /// path thaws what was frozen: a failed FIFREEZE thaws those frozen before it, a failed
    /// snapshot command is reported after the thaw.
    pub fn cycle(&self, snapshot: &mut Command) -> Result<Times> {
        let mounts = self.mounts;
        let (start, frozen, snap, snapped, thawed, failed) = match &self.how {
            How::Parallel(workers) => {
                let start = Instant::now();
                let froze = workers.all(FIFREEZE);
                let frozen = Instant::now();
                if let Some(e) = first_error("FIFREEZE", &froze, mounts) {
                    // Thaw those that froze (and leave a FIFREEZE still in flight to the
                    // caller's thaw of every mount).
                    for (m, r) in mounts.iter().zip(&froze).rev() {
                        if matches!(r, Some(Ok(()))) {
                            cleanup(thaw(m).map(|_| ()));
                        }
                    }
                    bail!("{e}");
                }
                let snap = run(snapshot, STEP);
                let snapped = Instant::now();
                let thawed_all = workers.all(FITHAW);
                let thawed = Instant::now();
                let failed = first_error("FITHAW", &thawed_all, mounts);
                (start, frozen, snap, snapped, thawed, failed)
            }
            How::Sequential(dirs) => {
                let start = Instant::now();
                for (k, (d, m)) in dirs.iter().zip(mounts).enumerate() {
                    if let Err(e) = ioctl(d, FIFREEZE) {
                        for (d, m) in dirs.iter().zip(mounts).take(k).rev() {
                            cleanup(ioctl(d, FITHAW).ctx(|| format!("FITHAW {}", m.display())));
                        }
                        bail!("FIFREEZE {}: {e}", m.display());
                    }
                }
                let frozen = Instant::now();
                let snap = run(snapshot, STEP);
                let snapped = Instant::now();
                let mut failed = None;
                for (d, m) in dirs.iter().zip(mounts).rev() {
                    if let Err(e) = ioctl(d, FITHAW) {
                        failed.get_or_insert(format!("FITHAW {}: {e}", m.display()));
                    }
                }
                let thawed = Instant::now();
                (start, frozen, snap, snapped, thawed, failed)
            }
        };
        if let Some(e) = failed {
            bail!("{e}");
        }
        snapshot_ok(snap)?;
        Ok(Times {
            start,
            frozen,
            snapped,
            thawed,
        })
    }

    /// Ends the worker threads.
    pub fn stop(self) {
        if let How::Parallel(w) = self.how {
            w.stop();
        }
    }
}

/// A thaw on a cleanup path: its failure is printed (the caller reports the first error).
fn cleanup(r: Result<()>) {
    if let Err(e) = r {
        eprintln!("quiesce-bench: cleanup: {e}");
    }
}

/// Ok if the snapshot command ran and exited 0.
fn snapshot_ok(snap: Result<crate::process::Output>) -> Result<()> {
    let snap = snap?;
    if !snap.exit.success() {
        bail!("the snapshot command failed: {}", snap.exit.describe());
    }
    Ok(())
}

/// The limit's split of one cycle in the slots of [`PHASES`] (ms): `freeze` (every
/// `FIFREEZE` returned), `wait` (the snapshot command), `thaw` (every `FITHAW` returned).
fn split(t: &Times) -> [f64; 8] {
    let ms = |a: Instant, b: Instant| b.duration_since(a).as_secs_f64() * 1e3;
    let mut p = [0.0; PHASES.len()];
    for (k, name) in PHASES.iter().enumerate() {
        p[k] = match *name {
            "freeze" => ms(t.start, t.frozen),
            "wait" => ms(t.frozen, t.snapped),
            "thaw" => ms(t.snapped, t.thawed),
            _ => 0.0,
        };
    }
    p
}

/// The snapshot command as a [`Command`].
pub fn snapshot_command(snapshot: &[OsString]) -> Result<Command> {
    let Some((prog, args)) = snapshot.split_first() else {
        bail!("no snapshot command");
    };
    let mut command = Command::new(prog);
    command.args(args);
    Ok(command)
}

impl Limit {
    /// One cycle: FIFREEZE every mount, run `snapshot`, FITHAW every mount (in reverse when
    /// sequential). The descriptors are opened and the threads started before the clock.
    pub fn cycle(&self, mounts: &[PathBuf], snapshot: &[OsString]) -> Result<Cycle> {
        let mut command = snapshot_command(snapshot)?;
        let freezer = Freezer::open(mounts, self.parallel)?;
        // After the clock: whatever a failure left frozen is thawed here.
        let _thaw = ThawAll(mounts);
        let times = freezer.cycle(&mut command)?;
        freezer.stop();
        Ok(Cycle {
            wall: times.thawed.duration_since(times.start),
            phases: Some(split(&times)),
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ioctl_numbers() {
        assert_eq!(super::FIFREEZE, 0xC004_5877);
        assert_eq!(super::FITHAW, 0xC004_5878);
    }
}
