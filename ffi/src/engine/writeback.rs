//! Whether there is anything to write back, so that the pre-sync can be left out when there is
//! not (issue 14). Allocation-free: `/proc/meminfo` into a stack buffer.
//!
//! The gate is global: `Dirty` + `Writeback` of `/proc/meminfo` (page-cache pages waiting
//! for, or under, writeback, on every filesystem). Kernel 6.18 has no per-device dirty count
//! outside debugfs (`/sys/class/bdi/MAJ:MIN/` holds only limits; `/sys/kernel/debug/bdi/*/stats`
//! needs debugfs mounted), so a per-target answer is not to be had cheaply. The global count is
//! an upper bound for every target: at or below [`CLEAN_LIMIT`] no target has more than that
//! to write back, and the `FIFREEZE` flushes it as fast as a `syncfs` would. Above it the
//! pre-sync runs on every target (also on the clean ones: a `syncfs` of a clean filesystem
//! costs one journal commit, in parallel with the others).
//!
//! A wrong "clean" answer (dirty metadata the kernel keeps outside the page cache, e.g.
//! xfs's in-memory log, or data dirtied between this check and the freeze) costs only a longer
//! flush inside `FIFREEZE`, never consistency: `FIFREEZE` itself syncs the filesystem before
//! it reports frozen, with or without a pre-sync.

use quiesce_core::linux::sys;

/// At or below this many bytes of `Dirty` + `Writeback`, the pre-sync is left out.
pub const CLEAN_LIMIT: u64 = 1 << 20;

/// What `/proc/meminfo` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pending {
    /// `Dirty` + `Writeback`, in bytes.
    Bytes(u64),
    /// `/proc/meminfo` could not be read or parsed: assume dirty.
    Unknown,
}

impl Pending {
    /// Whether the pre-sync can be left out.
    pub fn clean(self) -> bool {
        matches!(self, Pending::Bytes(b) if b <= CLEAN_LIMIT)
    }
}

/// `Dirty` + `Writeback` now.
pub fn pending() -> Pending {
    let mut buf = [0u8; 4096];
    match sys::read_file(c"/proc/meminfo", &mut buf) {
        Ok(text) => parse(text),
        Err(_) => Pending::Unknown,
    }
}

/// `Dirty` + `Writeback` (`kB` lines) of a `/proc/meminfo` text.
pub fn parse(text: &[u8]) -> Pending {
    let mut dirty = None;
    let mut writeback = None;
    for line in text.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let slot = match &line[..colon] {
            b"Dirty" => &mut dirty,
            b"Writeback" => &mut writeback,
            _ => continue,
        };
        *slot = kib(&line[colon + 1..]);
    }
    match (dirty, writeback) {
        (Some(d), Some(w)) => Pending::Bytes(d.saturating_add(w).saturating_mul(1024)),
        _ => Pending::Unknown,
    }
}

/// `   1234 kB` -> 1234.
fn kib(field: &[u8]) -> Option<u64> {
    let mut words = field
        .split(|&b| b == b' ' || b == b'\t')
        .filter(|w| !w.is_empty());
    let n = words.next()?;
    if words.next() != Some(b"kB".as_slice()) || n.is_empty() {
        return None;
    }
    n.iter().try_fold(0u64, |acc, &b| {
        b.is_ascii_digit()
            .then(|| acc.checked_mul(10)?.checked_add(u64::from(b - b'0')))?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recorded from this kernel (6.18), abridged to the lines around the two that count.
    const MEMINFO: &[u8] = b"MemTotal:       24634172 kB\nMemFree:        20112340 kB\n\
Buffers:           89324 kB\nCached:          2871020 kB\nSwapCached:            0 kB\n\
Dirty:               412 kB\nWriteback:             8 kB\nAnonPages:        812332 kB\n\
WritebackTmp:          0 kB\nHugePages_Total:       0\n";

    #[test]
    fn sums_dirty_and_writeback() {
        assert_eq!(parse(MEMINFO), Pending::Bytes(420 * 1024));
        assert!(parse(MEMINFO).clean());
    }

    #[test]
    fn dirty_above_the_limit_is_not_clean() {
        let text = b"Dirty:            262144 kB\nWriteback:             0 kB\n";
        assert_eq!(parse(text), Pending::Bytes(256 << 20));
        assert!(!parse(text).clean());
        // Exactly at the limit counts as clean.
        assert!(parse(b"Dirty: 1000 kB\nWriteback: 24 kB\n").clean());
        assert!(!parse(b"Dirty: 1000 kB\nWriteback: 25 kB\n").clean());
    }

    #[test]
    fn unreadable_counts_as_dirty() {
        assert_eq!(parse(b""), Pending::Unknown);
        assert_eq!(parse(b"Dirty: 12 kB\n"), Pending::Unknown);
        assert_eq!(parse(b"Dirty: x kB\nWriteback: 0 kB\n"), Pending::Unknown);
        assert_eq!(parse(b"Dirty: 12 MB\nWriteback: 0 kB\n"), Pending::Unknown);
        assert!(!Pending::Unknown.clean());
        // WritebackTmp is another line, not Writeback.
        assert_eq!(
            parse(b"Dirty: 1 kB\nWritebackTmp: 9 kB\nWriteback: 2 kB\n"),
            Pending::Bytes(3 * 1024)
        );
    }

    #[test]
    fn reads_this_machine() {
        // Whatever the machine's state, /proc/meminfo has both lines.
        assert!(matches!(pending(), Pending::Bytes(_)));
    }
}
