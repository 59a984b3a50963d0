//! Writers on the benchmark's filesystems.
//!
//! [`StallWriters`]: one thread per filesystem, each doing 4 KiB writes followed by `fsync`,
//! timing every write+fsync; the longest one is the stall a frozen window causes.
//! [`BlockedWrite`]: one 4 KiB write on a frozen filesystem; the moment it returns is the
//! moment the filesystem is writable again.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{bail, Context, Result};

const BLOCK: usize = 4096;
/// The writers cycle through this many blocks of their file.
const BLOCKS: u64 = 256;

/// Opens (creating and filling it if needed) `path` for writing. Done before any freeze: an
/// open for writing of an existing file does not block on a frozen filesystem, but creating
/// one does.
pub fn open_prepared(path: &Path) -> Result<File> {
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .ctx(|| format!("open {}", path.display()))?;
    let len = f
        .metadata()
        .ctx(|| format!("stat {}", path.display()))?
        .len();
    let want = BLOCKS * BLOCK as u64;
    if len < want {
        let buf = vec![0x5a_u8; want as usize];
        f.write_all_at(&buf, 0)
            .and_then(|()| f.sync_all())
            .ctx(|| format!("fill {}", path.display()))?;
    }
    Ok(f)
}

/// What the writers saw.
#[derive(Clone, Copy, Debug, Default)]
pub struct StallStats {
    /// The longest write+fsync of any writer.
    pub max: Duration,
    /// How many write+fsync operations completed, all writers together.
    pub ops: u64,
}

/// One writer thread per file.
pub struct StallWriters {
    stop: Arc<AtomicBool>,
    results: Receiver<std::io::Result<StallStats>>,
    started: Receiver<()>,
    count: usize,
}

impl StallWriters {
    /// Starts one writer per file (opened with [`open_prepared`]) and returns once every writer
    /// has completed its first write.
    pub fn start(files: Vec<File>) -> Result<StallWriters> {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, results) = mpsc::channel();
        let (stx, started) = mpsc::channel();
        let count = files.len();
        for (i, f) in files.into_iter().enumerate() {
            let stop = Arc::clone(&stop);
            let tx = tx.clone();
            let stx = stx.clone();
            thread::Builder::new()
                .name(format!("writer{i}"))
                .spawn(move || {
                    let _ = tx.send(write_loop(&f, &stop, &stx));
                })
                .ctx(|| "cannot start a writer thread".into())?;
        }
        let w = StallWriters {
            stop,
            results,
            started,
            count,
        };
        for _ in 0..count {
            if w.started.recv_timeout(Duration::from_secs(10)).is_err() {
                bail!("a writer did not complete its first write within 10 s");
            }
        }
        Ok(w)
    }

    /// Stops the writers and waits up to `timeout` for their results.
    pub fn finish(self, timeout: Duration) -> Result<StallStats> {
        self.stop.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + timeout;
        let mut all = StallStats::default();
        for _ in 0..self.count {
            let left = deadline.saturating_duration_since(Instant::now());
            let r = self
                .results
                .recv_timeout(left)
                .ctx(|| format!("a writer did not stop within {timeout:?}"))?;
            let s = r.ctx(|| "writer".into())?;
            all.max = all.max.max(s.max);
            all.ops += s.ops;
        }
        Ok(all)
    }
}

impl Drop for StallWriters {
    fn drop(&mut self) {
        // Threads still blocked on a frozen filesystem finish after the thaw.
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn write_loop(
    f: &File,
    stop: &AtomicBool,
    started: &mpsc::Sender<()>,
) -> std::io::Result<StallStats> {
    let buf = [0xa5_u8; BLOCK];
    let mut s = StallStats::default();
    let mut block = 0;
    while !stop.load(Ordering::SeqCst) {
        let t = Instant::now();
        f.write_all_at(&buf, block * BLOCK as u64)?;
        f.sync_all()?;
        let dt = t.elapsed();
        s.max = s.max.max(dt);
        s.ops += 1;
        if s.ops == 1 {
            let _ = started.send(());
        }
        block = (block + 1) % BLOCKS;
    }
    Ok(s)
}

/// A write that blocks on a frozen filesystem; it records when it returned.
pub struct BlockedWrite {
    done: Receiver<std::io::Result<Instant>>,
    result: Option<std::io::Result<Instant>>,
}

impl BlockedWrite {
    /// Starts one 4 KiB write (no fsync) to `f` in a new thread.
    pub fn start(f: File) -> Result<BlockedWrite> {
        let (tx, done) = mpsc::channel();
        thread::Builder::new()
            .name("blocked-write".into())
            .spawn(move || {
                let buf = [0x3c_u8; BLOCK];
                let r = f.write_all_at(&buf, 0).map(|()| Instant::now());
                let _ = tx.send(r);
            })
            .ctx(|| "cannot start the blocked writer".into())?;
        Ok(BlockedWrite { done, result: None })
    }

    /// Some(when it returned) if it completed within `timeout`.
    pub fn completed_within(&mut self, timeout: Duration) -> Result<Option<Instant>> {
        if self.result.is_none() {
            match self.done.recv_timeout(timeout) {
                Ok(r) => self.result = Some(r),
                Err(mpsc::RecvTimeoutError::Timeout) => return Ok(None),
                Err(mpsc::RecvTimeoutError::Disconnected) => bail!("the blocked writer vanished"),
            }
        }
        match &self.result {
            Some(Ok(t)) => Ok(Some(*t)),
            Some(Err(e)) => bail!("the blocked write failed: {e}"),
            None => Ok(None),
        }
    }
}
