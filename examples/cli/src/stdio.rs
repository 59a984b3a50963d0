//! Output that never panics: `println!` and `eprintln!` panic when the write fails, e.g. with
//! `EPIPE` when stdout is a pipe whose reader has gone (`quiesce plan | head -1`). quiesce's
//! exit status is the session's, and its output comes after the thaw: a reader that went away
//! must change neither, so these macros drop what cannot be written. (Rust ignores SIGPIPE, so
//! a write to a closed pipe fails with `EPIPE` instead of killing the process, which is right
//! while frozen too.)

use std::fmt;
use std::io::Write;

/// `println!` to stdout, ignoring write errors.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::stdio::stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` to stdout, ignoring write errors.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::stdio::stdout(format_args!($($arg)*))
    };
}

/// `eprintln!` to stderr, ignoring write errors.
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::stdio::stderr(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Writes to stdout; a failed write (a closed pipe, a full disk) is dropped.
pub fn stdout(args: fmt::Arguments<'_>) {
    let mut o = std::io::stdout().lock();
    let _ = o.write_fmt(args).and_then(|()| o.flush());
}

/// Writes to stderr; a failed write is dropped.
pub fn stderr(args: fmt::Arguments<'_>) {
    let _ = std::io::stderr().lock().write_fmt(args);
}
