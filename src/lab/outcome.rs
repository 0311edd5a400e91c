//! What a call or a read on a lab socket returned, and which end kept a TIME_WAIT: the
//! words both the trace (what happened) and the documents (`expect`: what should have)
//! are written in, so neither needs the other's module for them.

use std::fmt;
use std::io;

use serde::Serialize;

/// What a read returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// Bytes arrived (this many in the first read).
    Data(u64),
    /// The read returned 0: an orderly end of stream (the other end's FIN).
    Eof,
    /// The read failed; the errno name, e.g. `ECONNRESET`.
    Error(&'static str),
    /// Nothing arrived before the read's deadline.
    Timeout,
    /// No read was possible: that end's descriptor was already closed.
    Closed,
}

impl ReadOutcome {
    /// `data`, `eof`, `timeout`, or the errno name in lower case (`econnreset`).
    pub fn name(&self) -> String {
        match self {
            ReadOutcome::Data(_) => "data".to_string(),
            ReadOutcome::Eof => "eof".to_string(),
            ReadOutcome::Error(e) => e.to_ascii_lowercase(),
            ReadOutcome::Timeout => "timeout".to_string(),
            ReadOutcome::Closed => "closed".to_string(),
        }
    }

    /// The outcome of a read call's result.
    pub fn of(r: &io::Result<usize>) -> ReadOutcome {
        match r {
            Ok(0) => ReadOutcome::Eof,
            Ok(n) => ReadOutcome::Data(*n as u64),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                ReadOutcome::Timeout
            }
            Err(e) => ReadOutcome::Error(errno_name(e)),
        }
    }
}

impl fmt::Display for ReadOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadOutcome::Data(n) => write!(f, "data ({n} bytes)"),
            other => f.write_str(&other.name()),
        }
    }
}

/// The name of an error's errno (`ECONNRESET`), or `errno N` for one without a name here.
pub fn errno_name(e: &io::Error) -> &'static str {
    let Some(code) = e.raw_os_error() else {
        return match e.kind() {
            io::ErrorKind::TimedOut => "ETIMEDOUT",
            io::ErrorKind::WouldBlock => "EWOULDBLOCK",
            _ => "EIO",
        };
    };
    errno_code_name(code)
}

/// The name of an errno value; the ones a close, shutdown or read can return.
pub fn errno_code_name(code: i32) -> &'static str {
    // EAGAIN and EWOULDBLOCK are one value on Linux; the SO_LINGER texts say EWOULDBLOCK.
    // Unix errno values: the lab that makes these calls runs on unix only, and elsewhere an
    // OS error code means something else (Windows' WSA codes).
    #[cfg(not(unix))]
    const NAMES: &[(i32, &str)] = &[];
    #[cfg(unix)]
    const NAMES: &[(i32, &str)] = &[
        (libc::EWOULDBLOCK, "EWOULDBLOCK"),
        (libc::ECONNRESET, "ECONNRESET"),
        (libc::EPIPE, "EPIPE"),
        (libc::ETIMEDOUT, "ETIMEDOUT"),
        (libc::ENOTCONN, "ENOTCONN"),
        (libc::ECONNABORTED, "ECONNABORTED"),
        (libc::ECONNREFUSED, "ECONNREFUSED"),
        (libc::EINTR, "EINTR"),
        (libc::EBADF, "EBADF"),
        (libc::EINVAL, "EINVAL"),
        (libc::EIO, "EIO"),
        (libc::EINPROGRESS, "EINPROGRESS"),
        (libc::ENOBUFS, "ENOBUFS"),
        (libc::EADDRNOTAVAIL, "EADDRNOTAVAIL"),
        (libc::EHOSTUNREACH, "EHOSTUNREACH"),
        (libc::ENETUNREACH, "ENETUNREACH"),
        (libc::EMFILE, "EMFILE"),
        (libc::ENFILE, "ENFILE"),
    ];
    NAMES
        .iter()
        .find(|(c, _)| *c == code)
        .map_or("EUNKNOWN", |(_, n)| n)
}

/// The result of a call: `ok` or the errno name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallResult {
    Ok,
    Err(&'static str),
}

impl CallResult {
    pub fn of<T>(r: &io::Result<T>) -> CallResult {
        match r {
            Ok(_) => CallResult::Ok,
            Err(e) => CallResult::Err(errno_name(e)),
        }
    }

    /// `ok` or the errno name, as the JSON spells it.
    pub fn name(&self) -> &'static str {
        match self {
            CallResult::Ok => "ok",
            CallResult::Err(e) => e,
        }
    }
}

/// Which end kept a TIME_WAIT once the close settled.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeWaitSide {
    Closer,
    Peer,
    Both,
    None,
}

impl TimeWaitSide {
    pub fn name(self) -> &'static str {
        match self {
            TimeWaitSide::Closer => "closer",
            TimeWaitSide::Peer => "peer",
            TimeWaitSide::Both => "both",
            TimeWaitSide::None => "none",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn read_outcomes_are_named_as_the_json_spells_them() {
        assert_eq!(ReadOutcome::of(&Ok(0)).name(), "eof");
        assert_eq!(ReadOutcome::of(&Ok(5)), ReadOutcome::Data(5));
        let reset = io::Error::from_raw_os_error(libc::ECONNRESET);
        assert_eq!(ReadOutcome::of(&Err(reset)).name(), "econnreset");
        let again = io::Error::from_raw_os_error(libc::EAGAIN);
        assert_eq!(ReadOutcome::of(&Err(again)), ReadOutcome::Timeout);
    }

    #[cfg(unix)]
    #[test]
    fn errno_names_cover_close_results() {
        assert_eq!(errno_code_name(libc::EAGAIN), "EWOULDBLOCK");
        assert_eq!(errno_code_name(libc::EPIPE), "EPIPE");
        assert_eq!(errno_code_name(99_999), "EUNKNOWN");
    }
}
