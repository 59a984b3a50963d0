//! A background workload for the consistency tests, and the checker for the file it writes.
//!
//! Use it from a test file as `#[path = "support/workload.rs"] mod workload;`. It needs only std.
//!
//! Two workers run on threads while the test freezes and copies the filesystem:
//!
//! - the *churn* worker keeps about [`CHURN_FILES`] small files (0 to 16 KiB, random contents)
//!   in `MOUNT/churn`: it creates, overwrites, appends to, truncates, renames and deletes them,
//!   and fsyncs some of them, so the journal / log always has metadata in flight;
//! - the *sequence* writer appends fixed-width records `0000000001\n`, `0000000002\n`, ... to
//!   `MOUNT/seq.log` and fsyncs after each. After every successful fsync it publishes the
//!   acknowledged number in an `AtomicU64` and by overwriting (pwrite at offset 0) a small file
//!   *outside* the filesystem under test, so that a snapshot command running while the
//!   filesystem is frozen can read the last number acknowledged before the freeze.
//!
//! Both workers may be blocked by a freeze at any time. [`Workload::stop`] (and `Drop`) sets a
//! stop flag and joins them with a deadline; a worker that is still blocked after the deadline
//! is reported and left behind rather than hanging the test.
//!
//! [`check_sequence`] verifies the sequence file of a copy: every record from 1 up, consecutive,
//! no garbage, no torn tail (a run of NUL bytes where the file size already covered data that
//! never reached the disk).

#![allow(dead_code)] // Not every test file that includes this module uses every item.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Name of the sequence file, relative to the mount point.
pub const SEQ_FILE: &str = "seq.log";
/// Name of the churn directory, relative to the mount point.
pub const CHURN_DIR: &str = "churn";
/// Number of file slots the churn worker cycles through.
pub const CHURN_FILES: usize = 1000;
/// Largest churn file.
pub const CHURN_MAX_SIZE: usize = 16 * 1024;
/// Digits in one sequence record; a record is these digits and a newline.
pub const SEQ_DIGITS: usize = 10;
/// Bytes in one sequence record.
pub const SEQ_RECORD: usize = SEQ_DIGITS + 1;
/// Digits in the acknowledgement file (followed by a newline), always overwritten in place.
pub const ACKED_DIGITS: usize = 20;

/// One sequence record, exactly as the writer appends it.
pub fn seq_record(n: u64) -> String {
    format!("{n:0width$}\n", width = SEQ_DIGITS)
}

/// Parses the acknowledgement file (or a copy of it taken by a snapshot command).
pub fn parse_acked(bytes: &[u8]) -> Result<u64, String> {
    let text =
        std::str::from_utf8(bytes).map_err(|_| format!("acked file is not UTF-8: {bytes:?}"))?;
    let digits = text.trim_end_matches('\n');
    if digits.len() != ACKED_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "acked file must hold {ACKED_DIGITS} digits and a newline, found {text:?}"
        ));
    }
    digits
        .parse()
        .map_err(|e| format!("acked file {text:?}: {e}"))
}

/// Reads and parses an acknowledgement file.
pub fn read_acked(path: &Path) -> Result<u64, String> {
    let bytes = fs::read(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    parse_acked(&bytes)
}

/// Counters and errors shared by the workers and the test.
#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    /// Last sequence number whose fsync returned successfully.
    acked: AtomicU64,
    /// Last sequence number handed to write() (acked <= written <= acked + 1).
    written: AtomicU64,
    churn_ops: AtomicU64,
    churn_fsyncs: AtomicU64,
    churn_errors: AtomicU64,
    /// Set when the sequence writer hit an error and stopped; that invalidates the run.
    seq_failed: AtomicBool,
    /// First few error messages, for the report.
    errors: Mutex<Vec<String>>,
}

impl Shared {
    fn record_error(&self, what: String) {
        let mut errors = self.errors.lock().unwrap_or_else(|e| e.into_inner());
        if errors.len() < 20 {
            errors.push(what);
        }
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// What the workload did, returned by [`Workload::stop`].
#[derive(Debug, Clone, Default)]
pub struct WorkloadStats {
    /// Last acknowledged (fsynced) sequence number.
    pub acked: u64,
    pub churn_ops: u64,
    pub churn_fsyncs: u64,
    /// Failed churn operations (e.g. ENOSPC); they do not stop the churn worker.
    pub churn_errors: u64,
    /// True if the sequence writer stopped on an error.
    pub seq_failed: bool,
    /// The first errors seen, if any.
    pub errors: Vec<String>,
    /// Workers that had not finished when the join deadline passed (left running).
    pub stuck_workers: Vec<&'static str>,
}

impl WorkloadStats {
    /// True if nothing went wrong: no sequence-writer failure and no worker left behind.
    pub fn healthy(&self) -> bool {
        !self.seq_failed && self.stuck_workers.is_empty()
    }
}

impl fmt::Display for WorkloadStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "acked {} records, {} churn ops ({} fsyncs, {} errors)",
            self.acked, self.churn_ops, self.churn_fsyncs, self.churn_errors
        )?;
        if self.seq_failed {
            write!(f, ", SEQUENCE WRITER FAILED")?;
        }
        if !self.stuck_workers.is_empty() {
            write!(f, ", workers still blocked: {:?}", self.stuck_workers)?;
        }
        if !self.errors.is_empty() {
            write!(f, ", errors: {:?}", self.errors)?;
        }
        Ok(())
    }
}

/// The running workload. Stop it with [`Workload::stop`]; dropping it stops it too.
pub struct Workload {
    shared: Arc<Shared>,
    threads: Vec<(&'static str, JoinHandle<()>)>,
    seq_path: PathBuf,
    acked_path: PathBuf,
    join_timeout: Duration,
}

impl Workload {
    /// Starts both workers on the filesystem mounted at `mount`. `acked_path` must be a file
    /// path on a *different* filesystem (one that is never frozen): it is overwritten with the
    /// last acknowledged sequence number after every fsync.
    pub fn start(mount: &Path, acked_path: &Path) -> io::Result<Workload> {
        let seq_path = mount.join(SEQ_FILE);
        let churn_dir = mount.join(CHURN_DIR);
        fs::create_dir_all(&churn_dir)?;
        let seq = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&seq_path)?;
        let acked = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(acked_path)?;
        acked.write_all_at(acked_line(0).as_bytes(), 0)?;
        // The directory entry of the sequence file must be durable too, or an early copy
        // could lack the file although records in it were acknowledged.
        File::open(mount)?.sync_all()?;

        let shared = Arc::new(Shared::default());
        let mut threads = Vec::new();
        let s = Arc::clone(&shared);
        threads.push((
            "sequence-writer",
            thread::Builder::new()
                .name("seq-writer".into())
                .spawn(move || sequence_writer(&s, seq, acked))?,
        ));
        let s = Arc::clone(&shared);
        let seed = seed_from(mount);
        threads.push((
            "churn",
            thread::Builder::new()
                .name("churn".into())
                .spawn(move || churn_worker(&s, &churn_dir, seed))?,
        ));
        Ok(Workload {
            shared,
            threads,
            seq_path,
            acked_path: acked_path.to_owned(),
            join_timeout: Duration::from_secs(30),
        })
    }

    /// Path of the sequence file on the live filesystem.
    pub fn seq_path(&self) -> &Path {
        &self.seq_path
    }

    /// Path of the acknowledgement file (outside the filesystem under test).
    pub fn acked_path(&self) -> &Path {
        &self.acked_path
    }

    /// Last acknowledged sequence number.
    pub fn acked(&self) -> u64 {
        self.shared.acked.load(Ordering::SeqCst)
    }

    /// Last sequence number handed to write() (acknowledged or not yet).
    pub fn written(&self) -> u64 {
        self.shared.written.load(Ordering::SeqCst)
    }

    /// Number of churn operations so far.
    pub fn churn_ops(&self) -> u64 {
        self.shared.churn_ops.load(Ordering::Relaxed)
    }

    /// Fails if the sequence writer has stopped on an error.
    pub fn check_alive(&self) -> Result<(), String> {
        if self.shared.seq_failed.load(Ordering::SeqCst) {
            let errors = self.shared.errors.lock().unwrap_or_else(|e| e.into_inner());
            return Err(format!("the sequence writer failed: {errors:?}"));
        }
        Ok(())
    }

    /// Waits until the sequence writer has acknowledged at least `seq` and the churn worker has
    /// done at least `churn` operations, or `timeout` passes.
    pub fn wait_for(&self, seq: u64, churn: u64, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            self.check_alive()?;
            let (acked, ops) = (self.acked(), self.churn_ops());
            if acked >= seq && ops >= churn {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "workload made no progress in {timeout:?}: acked {acked} (want {seq}), \
                     churn ops {ops} (want {churn})"
                ));
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Stops both workers and joins them, waiting at most the join timeout (30 s) in total.
    /// Call it only when nothing is frozen any more, or workers blocked by the freeze will be
    /// reported as stuck.
    pub fn stop(mut self) -> WorkloadStats {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> WorkloadStats {
        self.shared.stop.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + self.join_timeout;
        let mut stuck = Vec::new();
        for (name, handle) in self.threads.drain(..) {
            while !handle.is_finished() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(2));
            }
            if handle.is_finished() {
                if handle.join().is_err() {
                    self.shared.record_error(format!("{name} panicked"));
                    if name == "sequence-writer" {
                        self.shared.seq_failed.store(true, Ordering::SeqCst);
                    }
                }
            } else {
                // Still blocked (a freeze nobody thawed?). Leave the thread behind: joining
                // would hang the test forever.
                eprintln!(
                    "workload: {name} did not stop within {:?}",
                    self.join_timeout
                );
                stuck.push(name);
            }
        }
        let errors = self
            .shared
            .errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        WorkloadStats {
            acked: self.acked(),
            churn_ops: self.shared.churn_ops.load(Ordering::SeqCst),
            churn_fsyncs: self.shared.churn_fsyncs.load(Ordering::SeqCst),
            churn_errors: self.shared.churn_errors.load(Ordering::SeqCst),
            seq_failed: self.shared.seq_failed.load(Ordering::SeqCst),
            errors,
            stuck_workers: stuck,
        }
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            let stats = self.stop_and_join();
            if !stats.healthy() {
                eprintln!("workload stopped by drop: {stats}");
            }
        }
    }
}

fn acked_line(n: u64) -> String {
    format!("{n:0width$}\n", width = ACKED_DIGITS)
}

fn sequence_writer(shared: &Shared, mut seq: File, acked_file: File) {
    let mut n: u64 = 0;
    while !shared.stopping() {
        n += 1;
        shared.written.store(n, Ordering::SeqCst);
        let step = seq
            .write_all(seq_record(n).as_bytes())
            .map_err(|e| format!("append record {n}: {e}"))
            .and_then(|()| seq.sync_all().map_err(|e| format!("fsync record {n}: {e}")));
        if let Err(e) = step {
            shared.record_error(format!("sequence writer: {e}"));
            shared.seq_failed.store(true, Ordering::SeqCst);
            return;
        }
        shared.acked.store(n, Ordering::SeqCst);
        if let Err(e) = acked_file.write_all_at(acked_line(n).as_bytes(), 0) {
            shared.record_error(format!("sequence writer: write acked file: {e}"));
            shared.seq_failed.store(true, Ordering::SeqCst);
            return;
        }
    }
}

/// xorshift64*: good enough for picking files and sizes, no dependencies.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

fn seed_from(path: &Path) -> u64 {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let h = path
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
    (t ^ h) | 1
}

fn churn_worker(shared: &Shared, dir: &Path, seed: u64) {
    let mut rng = Rng(seed);
    let mut buf = vec![0u8; CHURN_MAX_SIZE];
    while !shared.stopping() {
        let a = rng.below(CHURN_FILES as u64);
        let op = rng.below(100);
        match churn_op(shared, dir, &mut rng, &mut buf, a, op) {
            Ok(()) => {}
            // A racing rename/delete of our own is not an error worth reporting.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                shared.churn_errors.fetch_add(1, Ordering::Relaxed);
                shared.record_error(format!("churn op {op} on slot {a}: {e}"));
                // Back off a little (e.g. ENOSPC) instead of spinning on errors.
                thread::sleep(Duration::from_millis(10));
            }
        }
        shared.churn_ops.fetch_add(1, Ordering::Relaxed);
    }
}

fn churn_slot(dir: &Path, i: u64) -> PathBuf {
    dir.join(format!("f{i:04}"))
}

/// One churn operation `op` (0..100) on file slot `a`.
fn churn_op(
    shared: &Shared,
    dir: &Path,
    rng: &mut Rng,
    buf: &mut [u8],
    a: u64,
    op: u64,
) -> io::Result<()> {
    let path = churn_slot(dir, a);
    match op {
        // Create or overwrite with random contents, sometimes fsynced.
        0..=39 => {
            let len = rng.below(CHURN_MAX_SIZE as u64 + 1) as usize;
            rng.fill(&mut buf[..len]);
            let mut f = File::create(&path)?;
            f.write_all(&buf[..len])?;
            if rng.below(8) == 0 {
                f.sync_all()?;
                shared.churn_fsyncs.fetch_add(1, Ordering::Relaxed);
            }
        }
        // Atomic replace: write a temporary file, fsync, rename over the slot.
        40..=49 => {
            let len = rng.below(CHURN_MAX_SIZE as u64 + 1) as usize;
            rng.fill(&mut buf[..len]);
            let tmp = dir.join(format!("tmp{a:04}"));
            let mut f = File::create(&tmp)?;
            f.write_all(&buf[..len])?;
            f.sync_all()?;
            shared.churn_fsyncs.fetch_add(1, Ordering::Relaxed);
            fs::rename(&tmp, &path)?;
        }
        // Append a little to an existing file, keeping it under the maximum size.
        50..=59 => {
            if let Ok(meta) = fs::metadata(&path) {
                let room = CHURN_MAX_SIZE.saturating_sub(meta.len() as usize);
                let len = rng.below(room.min(2048) as u64 + 1) as usize;
                rng.fill(&mut buf[..len]);
                OpenOptions::new()
                    .append(true)
                    .open(&path)?
                    .write_all(&buf[..len])?;
            }
        }
        // Truncate to a random smaller size.
        60..=64 => {
            if let Ok(f) = OpenOptions::new().write(true).open(&path) {
                f.set_len(rng.below(CHURN_MAX_SIZE as u64 / 2))?;
            }
        }
        // Rename onto another slot (replacing it).
        65..=79 => {
            if path.exists() {
                fs::rename(&path, churn_slot(dir, rng.below(CHURN_FILES as u64)))?;
            }
        }
        // Delete.
        80..=97 => {
            if path.exists() {
                fs::remove_file(&path)?;
            }
        }
        // Fsync the directory.
        _ => {
            File::open(dir)?.sync_all()?;
            shared.churn_fsyncs.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(())
}

/// The verdict on one sequence file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeqCheck {
    /// File size in bytes.
    pub len: usize,
    /// Highest `n` such that records `1..=n` are all present, in order, from the start.
    pub complete_to: u64,
    /// The acknowledged number the copy was checked against.
    pub acked: u64,
    /// Trailing NUL bytes (a torn tail), if any.
    pub torn_tail_bytes: usize,
    /// The first record that is neither the expected one nor part of a NUL tail.
    pub garbage: Option<String>,
}

impl SeqCheck {
    pub fn torn_tail(&self) -> bool {
        self.torn_tail_bytes > 0
    }

    /// Some acknowledged record is missing from the copy.
    pub fn missing_acked(&self) -> bool {
        self.complete_to < self.acked
    }

    pub fn ok(&self) -> bool {
        !self.torn_tail() && self.garbage.is_none() && !self.missing_acked()
    }
}

impl fmt::Display for SeqCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} bytes, records 1..={} intact, {} acknowledged before the snapshot",
            self.len, self.complete_to, self.acked
        )?;
        if self.missing_acked() {
            write!(
                f,
                "; MISSING acknowledged records {}..={}",
                self.complete_to + 1,
                self.acked
            )?;
        }
        if self.torn_tail() {
            write!(f, "; TORN TAIL of {} NUL bytes", self.torn_tail_bytes)?;
        }
        if let Some(g) = &self.garbage {
            write!(f, "; GARBAGE: {g}")?;
        }
        Ok(())
    }
}

/// Checks the contents of a sequence file against the number acknowledged before the
/// snapshot: every record `1..=complete_to` must be present in order (with `complete_to >=
/// acked`), the file must hold nothing else, and must not end in NUL bytes.
pub fn check_sequence(data: &[u8], acked: u64) -> SeqCheck {
    let nul_tail = data.iter().rev().take_while(|&&b| b == 0).count();
    let body = &data[..data.len() - nul_tail];
    let mut complete_to = 0;
    let mut garbage = None;
    for (i, record) in body.chunks(SEQ_RECORD).enumerate() {
        let want = i as u64 + 1;
        if record == seq_record(want).as_bytes() {
            complete_to = want;
            continue;
        }
        let offset = i * SEQ_RECORD;
        let shown = String::from_utf8_lossy(record).escape_debug().to_string();
        garbage = Some(if record.len() < SEQ_RECORD {
            format!("partial record {shown:?} at offset {offset} (expected record {want})")
        } else {
            format!("{shown:?} at offset {offset} where record {want} belongs")
        });
        break;
    }
    SeqCheck {
        len: data.len(),
        complete_to,
        acked,
        torn_tail_bytes: nul_tail,
        garbage,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(n: u64) -> Vec<u8> {
        (1..=n).flat_map(|i| seq_record(i).into_bytes()).collect()
    }

    #[test]
    fn sequence_checker_accepts_a_good_file() {
        let c = check_sequence(&file(100), 100);
        assert!(c.ok(), "{c}");
        let c = check_sequence(&file(101), 100);
        assert!(c.ok() && c.complete_to == 101, "{c}");
        assert!(check_sequence(b"", 0).ok());
    }

    #[test]
    fn sequence_checker_rejects_bad_files() {
        let c = check_sequence(&file(99), 100);
        assert!(c.missing_acked() && !c.ok(), "{c}");

        let mut torn = file(100);
        torn.extend_from_slice(&[0; SEQ_RECORD * 3]);
        let c = check_sequence(&torn, 100);
        assert!(c.torn_tail() && c.garbage.is_none() && !c.ok(), "{c}");
        assert_eq!(c.torn_tail_bytes, SEQ_RECORD * 3);

        let mut dup = file(50);
        dup.extend_from_slice(seq_record(50).as_bytes());
        let c = check_sequence(&dup, 50);
        assert!(c.garbage.is_some() && !c.ok(), "{c}");

        let mut partial = file(10);
        partial.extend_from_slice(b"00000");
        let c = check_sequence(&partial, 10);
        assert!(c.garbage.is_some(), "{c}");

        let mut hole = file(10);
        hole[SEQ_RECORD * 4..SEQ_RECORD * 5].fill(0);
        let c = check_sequence(&hole, 10);
        assert!(c.garbage.is_some() && c.complete_to == 4, "{c}");
    }

    #[test]
    fn acked_file_round_trip() {
        assert_eq!(parse_acked(acked_line(12345).as_bytes()), Ok(12345));
        assert!(parse_acked(b"12\n").is_err());
        assert!(parse_acked(b"").is_err());
    }
}
