//! The physical limit (issue 14): the same filesystems frozen and thawed by this process
//! itself, `FIFREEZE` and `FITHAW` on descriptors opened beforehand, either in parallel (one
//! thread per filesystem, started before the clock) or sequentially on this thread; the
//! snapshot command in between, as for the other tools. What the kernel needs, with no
//! process of ours to start and no deadline to keep: no tool can be faster.

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

/// How long one ioctl may take before the cycle is given up (then everything is thawed).
const STEP: Duration = Duration::from_secs(30);

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
struct ThawAll<'a>(&'a [PathBuf]);

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

    /// The ioctl on every filesystem at once; Ok once all of them returned.
    fn all(&self, request: libc::c_ulong, what: &str, mounts: &[PathBuf]) -> Result<()> {
        for tx in &self.to {
            if tx.send(request).is_err() {
                bail!("a {what} thread is gone");
            }
        }
        let mut first_error = None;
        for _ in 0..self.to.len() {
            match self.from.recv_timeout(STEP) {
                Ok((_, Ok(()))) => {}
                Ok((i, Err(e))) => {
                    first_error.get_or_insert(format!("{what} {}: {e}", mounts[i].display()));
                }
                Err(_) => bail!("{what} took longer than {STEP:?}"),
            }
        }
        match first_error {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    fn stop(self) {
        drop(self.to);
        for h in self.handles {
            let _ = h.join();
        }
    }
}

/// The limit's split of one cycle in the slots of [`PHASES`] (ms): `freeze` (every
/// `FIFREEZE` returned), `wait` (the snapshot command), `thaw` (every `FITHAW` returned).
fn split(t: Instant, frozen: Instant, snapped: Instant, thawed: Instant) -> [f64; 8] {
    let ms = |a: Instant, b: Instant| b.duration_since(a).as_secs_f64() * 1e3;
    let mut p = [0.0; PHASES.len()];
    for (k, name) in PHASES.iter().enumerate() {
        p[k] = match *name {
            "freeze" => ms(t, frozen),
            "wait" => ms(frozen, snapped),
            "thaw" => ms(snapped, thawed),
            _ => 0.0,
        };
    }
    p
}

impl Limit {
    /// One cycle: FIFREEZE every mount, run `snapshot`, FITHAW every mount (in reverse when
    /// sequential). The descriptors are opened and the threads started before the clock.
    pub fn cycle(&self, mounts: &[PathBuf], snapshot: &[OsString]) -> Result<Cycle> {
        let Some((prog, args)) = snapshot.split_first() else {
            bail!("no snapshot command");
        };
        let mut dirs = Vec::new();
        for m in mounts {
            guard::check(m)?;
            dirs.push(
                File::options()
                    .read(true)
                    .custom_flags(libc::O_DIRECTORY)
                    .open(m)
                    .ctx(|| format!("open {}", m.display()))?,
            );
        }
        let _thaw = ThawAll(mounts);
        let mut command = Command::new(prog);
        command.args(args);
        if self.parallel {
            let workers = Workers::start(dirs);
            let t = Instant::now();
            workers.all(FIFREEZE, "FIFREEZE", mounts)?;
            let frozen = Instant::now();
            let snap = run(&mut command, STEP)?;
            let snapped = Instant::now();
            workers.all(FITHAW, "FITHAW", mounts)?;
            let thawed = Instant::now();
            let wall = thawed.duration_since(t);
            workers.stop();
            if !snap.exit.success() {
                bail!("the snapshot command failed: {}", snap.exit.describe());
            }
            Ok(Cycle {
                wall,
                phases: Some(split(t, frozen, snapped, thawed)),
            })
        } else {
            let t = Instant::now();
            for (d, m) in dirs.iter().zip(mounts) {
                ioctl(d, FIFREEZE).ctx(|| format!("FIFREEZE {}", m.display()))?;
            }
            let frozen = Instant::now();
            let snap = run(&mut command, STEP)?;
            let snapped = Instant::now();
            for (d, m) in dirs.iter().zip(mounts).rev() {
                ioctl(d, FITHAW).ctx(|| format!("FITHAW {}", m.display()))?;
            }
            let thawed = Instant::now();
            let wall = thawed.duration_since(t);
            if !snap.exit.success() {
                bail!("the snapshot command failed: {}", snap.exit.describe());
            }
            Ok(Cycle {
                wall,
                phases: Some(split(t, frozen, snapped, thawed)),
            })
        }
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
