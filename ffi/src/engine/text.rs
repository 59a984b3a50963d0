//! Text without allocation: bytes shown as UTF-8 (lossy), escaped mount table fields shown
//! decoded, durations for people, and a `fmt::Write` into a fixed byte buffer. What the engine
//! explains is a `fmt::Display`; each front end decides where the text goes (a `String` in the
//! runtime, the session storage in the C ABI).

use core::fmt;
use core::time::Duration;

use quiesce_core::mountinfo::Escaped;

/// The longest path the engine decodes (Linux `PATH_MAX`).
pub const PATH_MAX: usize = 4096;

/// Shows bytes (a path from C or the kernel) as text: invalid UTF-8 becomes U+FFFD.
#[derive(Clone, Copy)]
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

/// Shows an escaped mountinfo field (`\040` for a space) decoded, as [`Lossy`] text.
#[derive(Clone, Copy)]
pub struct Decoded<'a>(pub Escaped<'a>);

impl fmt::Display for Decoded<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; PATH_MAX];
        match self.0.decode_into(&mut buf) {
            Some(b) => Lossy(b).fmt(f),
            None => Lossy(self.0.raw()).fmt(f),
        }
    }
}

/// A duration for people: `300 ms` below a second, `30 s`, `2.5 s`.
#[derive(Clone, Copy)]
pub struct Seconds(pub Duration);

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d < Duration::from_secs(1) && d.subsec_nanos().is_multiple_of(1_000_000) {
            return write!(f, "{} ms", d.as_millis());
        }
        let s = d.as_secs_f64();
        if s.fract() == 0.0 {
            write!(f, "{s:.0} s")
        } else {
            write!(f, "{s} s")
        }
    }
}

/// Milliseconds from nanoseconds, one decimal: `12.3 ms`.
#[derive(Clone, Copy)]
pub struct Millis(pub u64);

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.1} ms", self.0 as f64 / 1e6)
    }
}

/// A `fmt::Write` over a byte slice that notes when it runs out of room (and keeps what fit).
pub struct Cursor<'b> {
    buf: &'b mut [u8],
    len: usize,
    overflow: bool,
}

impl<'b> Cursor<'b> {
    /// Writes into `buf` from `start` on.
    pub fn new(buf: &'b mut [u8], start: usize) -> Self {
        Cursor {
            buf,
            len: start,
            overflow: false,
        }
    }

    /// Where the text written so far ends.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether some text did not fit.
    pub fn overflowed(&self) -> bool {
        self.overflow
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_bytes_read_well() {
        assert_eq!(Seconds(Duration::from_millis(300)).to_string(), "300 ms");
        assert_eq!(Seconds(Duration::from_secs(30)).to_string(), "30 s");
        assert_eq!(Seconds(Duration::from_millis(2500)).to_string(), "2.5 s");
        assert_eq!(Millis(12_345_678).to_string(), "12.3 ms");
        assert_eq!(Lossy(b"a\xffb").to_string(), "a\u{FFFD}b");
        let mut buf = [0u8; 4];
        let mut c = Cursor::new(&mut buf, 0);
        assert!(fmt::write(&mut c, format_args!("{}", "abcdef")).is_err());
        assert!(c.overflowed() && c.len() == 4);
    }
}
