//! The host's size (rows 2e and 2f): a ballast of anonymous memory in the benchmark's own
//! process, every page touched, so that a session through the library runs in a process of
//! that size, as in an agent that holds a large heap. quiesce's helpers are forked from the
//! caller, so each fork copies the caller's page tables, and the session's end waits for the
//! intermediate helper (a copy of the caller) to be torn down: the cost grows with the host.
//!
//! The ballast exists only while those rows are measured: every process the benchmark starts
//! afterwards would pay for it too. [`Ballast::release`] unmaps it; [`memory`] reads the
//! process's own figures from /proc/self/status to show it was there and is gone.

use std::ptr::NonNull;

use crate::error::{bail, Context, Result};
use crate::fixtures::MIB;

/// One byte is written per this many bytes: every 4 KiB page is touched.
pub const PAGE: usize = 4096;

/// Anonymous private memory, every page written once; unmapped on [`Ballast::release`] or
/// drop.
pub struct Ballast {
    ptr: NonNull<u8>,
    /// Bytes mapped; 0 once unmapped.
    len: usize,
    /// Whether `madvise(MADV_NOHUGEPAGE)` was accepted (4 KiB pages, as a host's heap has under
    /// the usual transparent-huge-page setting `madvise`).
    pub small_pages: bool,
}

impl Ballast {
    /// Maps `mib` MiB and writes one byte in every 4 KiB of it.
    pub fn new(mib: u64) -> Result<Ballast> {
        let Some(len) = mib
            .checked_mul(MIB)
            .and_then(|b| usize::try_from(b).ok())
            .filter(|b| *b > 0)
        else {
            bail!("host ballast: {mib} MiB is not a size this process can map (--host-mib)");
        };
        // SAFETY: a new private anonymous mapping without an address hint: it overlaps
        // nothing; the result is checked before use.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            bail!(
                "host ballast: mmap of {mib} MiB: {} (a smaller --host-mib?)",
                std::io::Error::last_os_error()
            );
        }
        let Some(ptr) = NonNull::new(p.cast::<u8>()) else {
            bail!("host ballast: mmap returned a null address");
        };
        let mut b = Ballast {
            ptr,
            len,
            small_pages: false,
        };
        // SAFETY: [p, p + len) is the mapping made above; madvise only changes how the kernel
        // backs it (no huge pages), not its contents or validity.
        b.small_pages = unsafe { libc::madvise(p, len, libc::MADV_NOHUGEPAGE) } == 0;
        for off in (0..len).step_by(PAGE) {
            // SAFETY: off < len, so the byte lies inside the mapping, which is readable and
            // writable and owned by `b` alone; volatile, so that the write (never read back)
            // is not optimised away and the page is really faulted in.
            unsafe { b.ptr.as_ptr().add(off).write_volatile(1) };
        }
        Ok(b)
    }

    /// The ballast's size in bytes (0 once released).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Unmaps it now, reporting an error (drop does the same silently).
    pub fn release(mut self) -> Result<()> {
        self.unmap()
    }

    fn unmap(&mut self) -> Result<()> {
        if self.len == 0 {
            return Ok(());
        }
        let len = std::mem::replace(&mut self.len, 0);
        // SAFETY: `ptr`/`len` are exactly the mapping made in `new`, unmapped only here (len is
        // 0 afterwards); nothing else points into it.
        if unsafe { libc::munmap(self.ptr.as_ptr().cast(), len) } != 0 {
            bail!("host ballast: munmap: {}", std::io::Error::last_os_error());
        }
        Ok(())
    }
}

impl Drop for Ballast {
    fn drop(&mut self) {
        if let Err(e) = self.unmap() {
            eprintln!("quiesce-bench: {e}");
        }
    }
}

/// The process's own memory figures from /proc/self/status (KiB).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Memory {
    /// Resident set size now.
    pub rss_kib: u64,
    /// Its high-water mark.
    pub hwm_kib: u64,
    /// Size of the page tables.
    pub pte_kib: u64,
}

/// The `FIELD:   N kB` value of a /proc/PID/status text.
pub fn status_kib(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

/// VmRSS, VmHWM and VmPTE of this process now.
pub fn memory() -> Result<Memory> {
    let s = std::fs::read_to_string("/proc/self/status").ctx(|| "read /proc/self/status".into())?;
    let get = |field: &str| match status_kib(&s, field) {
        Some(v) => Ok(v),
        None => Err(format!("/proc/self/status has no {field} line")),
    };
    Ok(Memory {
        rss_kib: get("VmRSS")?,
        hwm_kib: get("VmHWM")?,
        pte_kib: get("VmPTE")?,
    })
}

/// Resets the process's RSS high-water mark to its current RSS (`/proc/self/clear_refs` 5), so
/// that nothing measured later (a child's `ru_maxrss` starts from its parent's mark) sees the
/// ballast.
pub fn reset_peak() -> Result<()> {
    std::fs::write("/proc/self/clear_refs", "5").ctx(|| "write 5 to /proc/self/clear_refs".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Part of a recorded /proc/self/status (kernel 6.18).
    const STATUS: &str = "Name:\tquiesce-bench\nVmPeak:\t 1065436 kB\nVmHWM:\t 1052244 kB\n\
                          VmRSS:\t    4312 kB\nRssAnon:\t     940 kB\nVmPTE:\t      64 kB\n\
                          Threads:\t2\n";

    #[test]
    fn reads_status_fields() {
        assert_eq!(status_kib(STATUS, "VmRSS"), Some(4312));
        assert_eq!(status_kib(STATUS, "VmHWM"), Some(1_052_244));
        assert_eq!(status_kib(STATUS, "VmPTE"), Some(64));
        // A prefix of another field's name is not that field; no unit, no value.
        assert_eq!(status_kib(STATUS, "Vm"), None);
        assert_eq!(status_kib(STATUS, "Threads"), None);
        assert_eq!(status_kib(STATUS, "VmSwap"), None);
    }

    #[test]
    fn the_ballast_is_resident_while_it_lives_and_gone_after() -> Result<()> {
        let before = memory()?;
        let b = Ballast::new(32)?;
        assert_eq!(b.len(), 32 << 20);
        let loaded = memory()?;
        b.release()?;
        let after = memory()?;
        // Other test threads allocate too: only the ballast's own 32 MiB is asserted, loosely.
        assert!(
            loaded.rss_kib >= before.rss_kib + 30 * 1024,
            "{before:?} -> {loaded:?}"
        );
        assert!(
            after.rss_kib + 30 * 1024 <= loaded.rss_kib,
            "{loaded:?} -> {after:?}"
        );
        assert!(Ballast::new(0).is_err());
        Ok(())
    }
}
