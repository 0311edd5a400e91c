//! Messages on stderr that can neither panic nor carry raw control characters.
//!
//! `eprintln!` panics when stderr cannot be written (`2>/dev/full`, a closed pipe), which
//! turned a bad filter into exit status 101. A message is a courtesy to a reader who may not
//! be there: `say!` writes it whole, escaped by [`crate::sanitize::message`]
//! (it may quote a path, a filter or a process name), and ignores a failed write, so the
//! exit status stays the one the outcome calls for.

use std::fmt;
use std::io::Write;

/// Writes one line to stderr, escaped, ignoring any failure to write.
pub fn line(args: fmt::Arguments<'_>) {
    let text = args.to_string();
    let mut line = crate::sanitize::message(&text).into_owned();
    line.push('\n');
    // One write of the whole line, so lines of two threads never interleave mid-line.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// `eprintln!` that never panics and escapes control characters: see [`line`]. Used as
/// `crate::stderr::say!`; the binary calls [`line`] with `format_args!`.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::stderr::line(format_args!($($arg)*))
    };
}

pub(crate) use say;
