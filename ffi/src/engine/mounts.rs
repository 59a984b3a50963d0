//! Reading `/proc/self/mountinfo` into a buffer the caller provides, streamed through it so
//! that only the lines kept take room: a fixed array in the C ABI's session storage, a growing
//! `Vec` in the runtime. Nothing here allocates; a buffer that can grow does so itself
//! ([`TextBuffer::grow`]).

use quiesce_core::linux::sys::Errno;
use rustix::fs::{Mode, OFlags};

/// The first size of a growing buffer.
const FIRST_SIZE: usize = 64 * 1024;

/// Storage for text read from the kernel.
pub trait TextBuffer {
    /// All of the buffer (its capacity), to read into.
    fn room(&mut self) -> &mut [u8];
    /// Makes [`TextBuffer::room`] larger, keeping its bytes; false if it cannot grow.
    fn grow(&mut self) -> bool;
}

/// A fixed array: it never grows.
impl<const N: usize> TextBuffer for [u8; N] {
    fn room(&mut self) -> &mut [u8] {
        self
    }

    fn grow(&mut self) -> bool {
        false
    }
}

impl TextBuffer for Vec<u8> {
    fn room(&mut self) -> &mut [u8] {
        if self.is_empty() {
            self.resize(FIRST_SIZE, 0);
        }
        self
    }

    fn grow(&mut self) -> bool {
        let n = self.len().max(FIRST_SIZE) * 2;
        self.resize(n, 0);
        true
    }
}

/// Why the mount table could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableError {
    /// A syscall failed.
    Sys(Errno),
    /// The kept lines do not fit into a buffer that cannot grow (of this many bytes).
    TooLarge(usize),
}

/// Which lines of the mount table to keep.
pub type Keep<'k> = &'k dyn Fn(&[u8]) -> bool;

/// Reads `/proc/self/mountinfo` into `buf`, keeping only the lines for which `keep` says yes,
/// in their order; returns the length of the kept text (at the start of `buf.room()`).
pub fn read_mountinfo(buf: &mut dyn TextBuffer, keep: Keep<'_>) -> Result<usize, TableError> {
    let fd = rustix::fs::open(
        c"/proc/self/mountinfo",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| TableError::Sys(e.raw_os_error()))?;
    // `kept` bytes of whole lines, then `len - kept` bytes of a partial line.
    let mut len = 0;
    let mut kept = 0;
    loop {
        if len == buf.room().len() && !buf.grow() {
            return Err(TableError::TooLarge(len));
        }
        let room = buf.room();
        let n = match rustix::io::read(&fd, &mut room[len..]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(TableError::Sys(e.raw_os_error())),
        };
        len += n;
        (kept, len) = filter_lines(room, kept, len, keep);
    }
    // A last line without a newline is kept as read (the parser rejects it if broken).
    let room = buf.room();
    if len > kept && !keep(&room[kept..len]) {
        len = kept;
    }
    Ok(len)
}

/// Filters the complete lines in `buf[from..len]`, compacting kept ones to `from`. Returns the
/// end of the kept lines and the new length (a trailing partial line is moved after them).
fn filter_lines(buf: &mut [u8], from: usize, len: usize, keep: Keep<'_>) -> (usize, usize) {
    let mut read = from;
    let mut write = from;
    while let Some(nl) = buf[read..len].iter().position(|&b| b == b'\n') {
        let end = read + nl + 1;
        if keep(&buf[read..end]) {
            buf.copy_within(read..end, write);
            write += end - read;
        }
        read = end;
    }
    buf.copy_within(read..len, write);
    (write, write + (len - read))
}

#[cfg(test)]
mod tests {
    use super::*;
    use quiesce_core::mountinfo::MountInfo;

    #[test]
    fn filtering_keeps_whole_lines_across_reads() {
        let text = b"1 a\n2 bb\n3 ccc\n4 d";
        let mut buf = [0u8; 32];
        // Feed it in pieces, as read(2) would.
        let (mut kept, mut len) = (0, 0);
        for piece in text.chunks(3) {
            buf[len..len + piece.len()].copy_from_slice(piece);
            len += piece.len();
            (kept, len) = filter_lines(&mut buf, kept, len, &|l| !l.starts_with(b"2"));
        }
        assert_eq!(&buf[..kept], b"1 a\n3 ccc\n");
        assert_eq!(&buf[kept..len], b"4 d");
    }

    #[test]
    fn the_real_table_loads_into_fixed_and_growing_buffers() {
        let mut fixed = vec![[0u8; 64 * 1024]; 1];
        let all = read_mountinfo(&mut fixed[0], &|_| true).unwrap();
        let mi = MountInfo::new(&fixed[0][..all]);
        assert!(mi.validate().is_ok() && mi.entries().count() > 0);
        let root = read_mountinfo(&mut fixed[0], &|l| l.windows(5).any(|w| w == b" / / ")).unwrap();
        assert!(root < all);
        assert_eq!(MountInfo::new(&fixed[0][..root]).entries().count(), 1);
        // Too small and fixed: refused; a Vec starting smaller than the table grows.
        let mut tiny = [0u8; 16];
        assert_eq!(
            read_mountinfo(&mut tiny, &|_| true),
            Err(TableError::TooLarge(16))
        );
        // (Not compared with `all`: other processes, other tests among them, mount and unmount
        // at the same time; the root line is there in both.)
        let mut v = vec![0u8; 16];
        let n = read_mountinfo(&mut v, &|_| true).unwrap();
        assert!(n > 16, "the Vec grew: {n} bytes");
        let grown = MountInfo::new(&v[..n]);
        assert!(grown.validate().is_ok());
        let root_line = &fixed[0][..root];
        assert!(
            v[..n].windows(root_line.len()).any(|w| w == root_line),
            "the grown table holds the root mount's line"
        );
    }
}
