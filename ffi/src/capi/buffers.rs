//! Fixed-size text buffers inside the caller's session storage: the filtered mount table, the
//! arena of NUL-terminated names handed to C, and the last error message. None allocates.

use core::fmt;

use quiesce_core::linux::sys::Errno;
use quiesce_core::mountinfo::{Escaped, MountInfo};
use rustix::fs::{Mode, OFlags};

/// Bytes of `/proc/self/mountinfo` a session keeps (after filtering).
pub const MOUNT_TABLE_BYTES: usize = 64 * 1024;
/// Bytes of NUL-terminated names (paths, fs types, reasons) a session keeps.
pub const NAMES_BYTES: usize = 16 * 1024;
/// Bytes of the last error message, NUL included.
pub const MESSAGE_BYTES: usize = 1024;

/// The lines of `/proc/self/mountinfo` that a plan can need, in their original order.
pub struct MountTable {
    len: usize,
    buf: [u8; MOUNT_TABLE_BYTES],
}

/// Why the mount table could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableError {
    /// A syscall failed.
    Sys(Errno),
    /// The kept lines do not fit into [`MOUNT_TABLE_BYTES`].
    TooLarge,
}

impl MountTable {
    /// The kept text.
    pub fn text(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Reads `/proc/self/mountinfo`, keeping only the lines for which `keep` says yes; the
    /// kernel's text is streamed through the buffer, so only kept lines take room.
    pub fn load(&mut self, keep: &dyn Fn(&[u8]) -> bool) -> Result<(), TableError> {
        let fd = rustix::fs::open(
            c"/proc/self/mountinfo",
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| TableError::Sys(e.raw_os_error()))?;
        self.len = 0;
        // `kept` bytes of whole lines, then `len - kept` bytes of a partial line.
        let mut kept = 0;
        loop {
            if self.len == self.buf.len() {
                return Err(TableError::TooLarge);
            }
            let n = match rustix::io::read(&fd, &mut self.buf[self.len..]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(TableError::Sys(e.raw_os_error())),
            };
            self.len += n;
            kept = self.filter_lines(kept, keep);
        }
        // A last line without a newline is kept as read (the parser rejects it if broken).
        if self.len > kept && !keep(&self.buf[kept..self.len]) {
            self.len = kept;
        }
        Ok(())
    }

    /// Filters the complete lines in `buf[from..len]`, compacting kept ones to `from`.
    /// Returns the end of the kept lines; a trailing partial line is moved after it.
    fn filter_lines(&mut self, from: usize, keep: &dyn Fn(&[u8]) -> bool) -> usize {
        let mut read = from;
        let mut write = from;
        while let Some(nl) = self.buf[read..self.len].iter().position(|&b| b == b'\n') {
            let end = read + nl + 1;
            if keep(&self.buf[read..end]) {
                self.buf.copy_within(read..end, write);
                write += end - read;
            }
            read = end;
        }
        self.buf.copy_within(read..self.len, write);
        self.len = write + (self.len - read);
        write
    }

    /// The parsed table.
    pub fn parsed(&self) -> MountInfo<'_> {
        MountInfo::new(self.text())
    }
}

/// Offsets into [`Names`]: a NUL-terminated string.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Name(u32);

/// An arena of NUL-terminated strings; handed to C as pointers into the session storage.
pub struct Names {
    len: usize,
    buf: [u8; NAMES_BYTES],
}

/// The arena is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NamesFull;

impl Names {
    /// Forgets every name.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Stores `bytes` (an interior NUL ends the C string early, which is harmless).
    pub fn push_bytes(&mut self, bytes: impl Iterator<Item = u8>) -> Result<Name, NamesFull> {
        let start = self.len;
        for b in bytes {
            // Keep room for the NUL.
            if self.len + 1 >= self.buf.len() {
                self.len = start;
                return Err(NamesFull);
            }
            self.buf[self.len] = b;
            self.len += 1;
        }
        if self.len >= self.buf.len() {
            self.len = start;
            return Err(NamesFull);
        }
        self.buf[self.len] = 0;
        self.len += 1;
        Ok(Name(start as u32))
    }

    /// Stores an escaped mountinfo field, unescaped.
    pub fn push_escaped(&mut self, e: Escaped<'_>) -> Result<Name, NamesFull> {
        self.push_bytes(e.bytes())
    }

    /// Stores what `args` formats to.
    pub fn push_fmt(&mut self, args: fmt::Arguments<'_>) -> Result<Name, NamesFull> {
        let start = self.len;
        let mut w = Cursor {
            buf: &mut self.buf[..NAMES_BYTES - 1],
            len: start,
            overflow: false,
        };
        let _ = fmt::write(&mut w, args);
        if w.overflow {
            return Err(NamesFull);
        }
        let end = w.len;
        self.buf[end] = 0;
        self.len = end + 1;
        Ok(Name(start as u32))
    }

    /// The bytes of `name` (without the NUL).
    pub fn get(&self, name: Name) -> &[u8] {
        let rest = self.buf.get(name.0 as usize..self.len).unwrap_or(&[]);
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        &rest[..end]
    }

    /// A C pointer to `name`, valid while the session storage is.
    pub fn c_ptr(&self, name: Name) -> *const core::ffi::c_char {
        match self.buf.get(name.0 as usize) {
            Some(b) if (name.0 as usize) < self.len => (b as *const u8).cast(),
            _ => c"".as_ptr(),
        }
    }
}

/// The last error message, NUL-terminated; truncated with "..." when too long.
pub struct Message {
    len: usize,
    buf: [u8; MESSAGE_BYTES],
}

impl Message {
    /// Replaces the message with what `args` formats to.
    pub fn set(&mut self, args: fmt::Arguments<'_>) {
        let mut w = Cursor {
            buf: &mut self.buf[..MESSAGE_BYTES - 1],
            len: 0,
            overflow: false,
        };
        let _ = fmt::write(&mut w, args);
        let (mut len, overflow) = (w.len, w.overflow);
        if overflow {
            len = MESSAGE_BYTES - 4;
            // Do not cut a UTF-8 sequence in half.
            while len > 0 && (self.buf[len] & 0xC0) == 0x80 {
                len -= 1;
            }
            self.buf[len..len + 3].copy_from_slice(b"...");
            len += 3;
        }
        self.buf[len] = 0;
        self.len = len;
    }

    /// Empties the message.
    pub fn clear(&mut self) {
        self.len = 0;
        self.buf[0] = 0;
    }

    /// The text.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// A C pointer to the text, valid until the next call on the session.
    pub fn c_ptr(&self) -> *const core::ffi::c_char {
        self.buf.as_ptr().cast()
    }
}

/// A `fmt::Write` over a byte slice that notes when it runs out of room.
struct Cursor<'b> {
    buf: &'b mut [u8],
    len: usize,
    overflow: bool,
}

impl fmt::Write for Cursor<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.buf.len().saturating_sub(self.len);
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        if n < s.len() {
            self.overflow = true;
            return Err(fmt::Error);
        }
        Ok(())
    }
}

/// Shows bytes from C (a path) as text: invalid UTF-8 becomes U+FFFD. Allocates nothing.
pub struct Lossy<'a>(pub &'a [u8]);

impl fmt::Display for Lossy<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.0.utf8_chunks() {
            f.write_str(chunk.valid())?;
            if !chunk.invalid().is_empty() {
                f.write_str("\u{FFFD}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Box<MountTable> {
        Box::new(MountTable {
            len: 0,
            buf: [0; MOUNT_TABLE_BYTES],
        })
    }

    #[test]
    fn filtering_keeps_whole_lines_across_reads() {
        let mut t = table();
        let text = b"1 a\n2 bb\n3 ccc\n4 d";
        // Feed it in pieces, as read(2) would.
        let mut kept = 0;
        for piece in text.chunks(3) {
            t.buf[t.len..t.len + piece.len()].copy_from_slice(piece);
            t.len += piece.len();
            kept = t.filter_lines(kept, &|l| !l.starts_with(b"2"));
        }
        assert_eq!(&t.buf[..kept], b"1 a\n3 ccc\n");
        assert_eq!(&t.buf[kept..t.len], b"4 d");
    }

    #[test]
    fn the_real_table_loads_and_parses() {
        let mut t = table();
        t.load(&|_| true).unwrap();
        assert!(t.parsed().validate().is_ok());
        assert!(t.parsed().entries().count() > 0);
        let all = t.len;
        t.load(&|l| l.windows(5).any(|w| w == b" / / ")).unwrap();
        assert!(t.len < all);
        assert_eq!(t.parsed().entries().count(), 1);
    }

    #[test]
    fn names_and_messages_are_bounded_c_strings() {
        let mut n = Box::new(Names {
            len: 0,
            buf: [0; NAMES_BYTES],
        });
        let a = n.push_bytes(b"/mnt/a".iter().copied()).unwrap();
        let b = n.push_fmt(format_args!("{}-{}", "x", 7)).unwrap();
        assert_eq!(n.get(a), b"/mnt/a");
        assert_eq!(n.get(b), b"x-7");
        let long = [b'z'; NAMES_BYTES];
        assert_eq!(n.push_bytes(long.iter().copied()), Err(NamesFull));
        assert_eq!(n.get(b), b"x-7");
        let mut m = Box::new(Message {
            len: 0,
            buf: [0; MESSAGE_BYTES],
        });
        m.set(format_args!("{}", "é".repeat(MESSAGE_BYTES)));
        assert!(m.as_bytes().ends_with(b"..."));
        assert!(core::str::from_utf8(m.as_bytes()).is_ok());
        assert_eq!(m.buf[m.len], 0);
        assert_eq!(format!("{}", Lossy(b"a\xffb")), "a\u{FFFD}b");
    }
}
