//! Log lines held in memory while anything is frozen, written after the thaw.
//!
//! Writing a log line to a frozen filesystem blocks the writer, and a freezer that blocks never
//! thaws (background.md, failure 7). So between the first freeze and the last thaw every line
//! goes into this fixed buffer (no allocation either), and is written out afterwards.

use std::fmt::{self, Write as _};
use std::io::Write as _;

/// Bytes held; lines beyond that are counted and dropped.
const CAPACITY: usize = 16 * 1024;

/// A fixed-size buffer of log lines.
pub struct DeferredLog {
    buf: [u8; CAPACITY],
    len: usize,
    dropped: usize,
}

struct Cursor<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl fmt::Write for Cursor<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

impl DeferredLog {
    pub fn new() -> Self {
        DeferredLog {
            buf: [0; CAPACITY],
            len: 0,
            dropped: 0,
        }
    }

    /// Adds one line (without its newline). Never blocks, never allocates.
    pub fn line(&mut self, args: fmt::Arguments<'_>) {
        let mut c = Cursor {
            buf: &mut self.buf,
            len: self.len,
        };
        if c.write_fmt(args).is_ok() && c.write_str("\n").is_ok() {
            self.len = c.len;
        } else {
            self.dropped += 1;
        }
    }

    /// The lines held, in order.
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        let text = std::str::from_utf8(&self.buf[..self.len]).unwrap_or("");
        text.lines()
    }

    /// How many lines did not fit.
    pub fn dropped(&self) -> usize {
        self.dropped
    }

    /// Writes every line to stderr, prefixed with `quiesce: `. Call only after the thaw.
    pub fn flush_to_stderr(&self) {
        let mut err = std::io::stderr().lock();
        for l in self.lines() {
            let _ = writeln!(err, "quiesce: {l}");
        }
        if self.dropped > 0 {
            let _ = writeln!(
                err,
                "quiesce: ({} more log lines did not fit in memory)",
                self.dropped
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_lines_and_counts_overflow() {
        let mut l = DeferredLog::new();
        l.line(format_args!("one {}", 1));
        l.line(format_args!("two"));
        assert_eq!(l.lines().collect::<Vec<_>>(), ["one 1", "two"]);
        let long = "x".repeat(CAPACITY);
        l.line(format_args!("{long}"));
        assert_eq!(l.dropped(), 1);
        assert_eq!(
            l.lines().count(),
            2,
            "a line that does not fit is not half-written"
        );
    }
}
