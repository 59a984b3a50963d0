//! Write probes: a child process that creates and writes a file (and by default fsyncs it).
//! On a frozen filesystem the probe blocks until the thaw; on a thawed one it completes at once.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::process::{park, wait_timeout};

static SEQ: AtomicU64 = AtomicU64::new(0);

/// A running write probe. Dropping it kills it; if it is blocked on a frozen filesystem it is
/// parked and reaped after the fixture's thaw.
pub struct WriteProbe {
    child: Option<Child>,
    status: Option<ExitStatus>,
    pub file: PathBuf,
    pub started: Instant,
}

/// Starts a probe that creates a fresh file inside directory `dir`, writes 4 KiB and fsyncs it
/// (`dd conv=fsync`).
pub fn start_write_probe(dir: &Path) -> WriteProbe {
    WriteProbe::start(dir, true)
}

/// Like [`start_write_probe`] but without the fsync: only the create and the write, which block
/// on a frozen filesystem just the same and are fast otherwise, even under heavy I/O.
pub fn start_write_probe_nosync(dir: &Path) -> WriteProbe {
    WriteProbe::start(dir, false)
}

impl WriteProbe {
    fn start(dir: &Path, fsync: bool) -> WriteProbe {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let file = dir.join(format!(".probe-{}-{n}", std::process::id()));
        let mut of = std::ffi::OsString::from("of=");
        of.push(&file);
        let mut cmd = Command::new("dd");
        cmd.args(["if=/dev/zero", "bs=4096", "count=1", "status=none"])
            .arg(of)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if fsync {
            cmd.arg("conv=fsync");
        }
        let child = cmd.spawn().expect("cannot start dd for a write probe");
        WriteProbe {
            child: Some(child),
            status: None,
            file,
            started: Instant::now(),
        }
    }

    /// The probe's pid.
    pub fn id(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// True if the probe finished within `timeout` (from now). Panics if it finished but failed
    /// (the probe itself is broken, e.g. the directory does not exist): that must not be
    /// mistaken for "the filesystem is writable".
    pub fn completed_within(&mut self, timeout: Duration) -> bool {
        if self.status.is_none() {
            if let Some(child) = self.child.as_mut() {
                self.status = wait_timeout(child, timeout);
            }
        }
        match self.status {
            None => false,
            Some(st) if st.success() => true,
            Some(st) => panic!(
                "write probe on {} failed ({st}); is the directory there?",
                self.file.display()
            ),
        }
    }

    /// Waits up to `timeout` for the probe to complete; same as [`Self::completed_within`].
    pub fn wait(&mut self, timeout: Duration) -> bool {
        self.completed_within(timeout)
    }

    /// True if the probe has completed already (does not wait).
    pub fn is_done(&mut self) -> bool {
        self.completed_within(Duration::ZERO)
    }
}

impl Drop for WriteProbe {
    fn drop(&mut self) {
        if self.status.is_none() {
            if let Some(child) = self.child.take() {
                park(child);
            }
        }
    }
}
