//! Fixed-size text buffers inside the caller's session storage: the (filtered) mount table,
//! the arena of NUL-terminated names handed to C, and the last error message. None allocates.

use core::fmt;

use quiesce_core::mountinfo::Escaped;

use crate::engine::text::Cursor;
pub use crate::engine::text::Lossy;

/// Bytes of `/proc/self/mountinfo` a session keeps (after filtering).
pub const MOUNT_TABLE_BYTES: usize = 64 * 1024;

/// The mount table: the lines that a plan can need, read by the engine.
pub type MountTable = [u8; MOUNT_TABLE_BYTES];
/// Bytes of NUL-terminated names (paths, fs types, reasons) a session keeps.
pub const NAMES_BYTES: usize = 16 * 1024;
/// Bytes of the last error message, NUL included.
pub const MESSAGE_BYTES: usize = 1024;

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
        let mut w = Cursor::new(&mut self.buf[..NAMES_BYTES - 1], start);
        let _ = fmt::write(&mut w, args);
        if w.overflowed() {
            return Err(NamesFull);
        }
        let end = w.len();
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
        let mut w = Cursor::new(&mut self.buf[..MESSAGE_BYTES - 1], 0);
        let _ = fmt::write(&mut w, args);
        let (mut len, overflow) = (w.len(), w.overflowed());
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

#[cfg(test)]
mod tests {
    use super::*;

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
