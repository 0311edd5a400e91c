//! Reads and address lookups on a lab socket, each written down in the [`Recorder`].
//!
//! [`Recorder`]: super::record::Recorder

use std::io::{self, Read};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use socket2::Socket;

use super::DATA_CAP;
use super::record::Recorder;
use crate::lab::engine::Inner;
use crate::lab::outcome::{CallResult, ReadOutcome};
use crate::lab::{End, LabError};

pub(super) fn local_of(s: &Socket) -> Result<SocketAddr, LabError> {
    s.local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .ok_or_else(|| LabError::io("lab socket", io::Error::other("no local address")))
}

pub(super) fn peer_of(s: &Socket) -> Result<SocketAddr, LabError> {
    s.peer_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .ok_or_else(|| {
            LabError::io(
                "lab socket",
                io::Error::other("not connected any more; open a new lab connection"),
            )
        })
}

/// Bytes received and not yet read on `socket` (FIONREAD).
pub(super) fn unread(socket: &Socket) -> Option<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the pointer, which points at `n`.
    let r = unsafe { libc::ioctl(socket.as_raw_fd(), libc::FIONREAD, &mut n) };
    (r == 0).then(|| usize::try_from(n).unwrap_or(0))
}

/// One read with a deadline.
pub(super) fn read_once(
    socket: &Socket,
    wait: Duration,
    rec: &mut Recorder,
    end: End,
) -> ReadOutcome {
    let _ = socket.set_nonblocking(false);
    let _ = socket.set_read_timeout(Some(wait));
    let mut buf = [0u8; 4096];
    let start = Instant::now();
    let r = (&*socket).read(&mut buf);
    let outcome = ReadOutcome::of(&r);
    rec.push(end, "read()", read_result(&outcome), start);
    if let ReadOutcome::Data(_) | ReadOutcome::Eof = outcome {
        rec.detail(outcome.to_string());
    }
    outcome
}

/// Reads until EOF, an error, or `wait` passes; returns how it ended and the bytes read.
pub(super) fn read_to_end(
    socket: &Socket,
    wait: Duration,
    inner: &Inner,
    rec: &mut Recorder,
    end: End,
) -> (ReadOutcome, u64) {
    let _ = socket.set_nonblocking(false);
    // Short reads so a stopping lab is noticed quickly.
    let _ = socket.set_read_timeout(Some(Duration::from_millis(100)));
    let mut buf = vec![0u8; 64 * 1024];
    let start = Instant::now();
    let mut total = 0u64;
    let outcome = loop {
        let r = (&*socket).read(&mut buf);
        match ReadOutcome::of(&r) {
            ReadOutcome::Data(n) => {
                total += n;
                if total >= DATA_CAP {
                    break ReadOutcome::Data(total);
                }
            }
            ReadOutcome::Timeout if start.elapsed() < wait && !inner.stopping() => {}
            other => break other,
        }
    };
    rec.push(end, "read() until EOF", read_result(&outcome), start);
    rec.detail(format!("{total} bytes, then {}", outcome.name()));
    (outcome, total)
}

pub(super) fn read_result(o: &ReadOutcome) -> CallResult {
    match o {
        ReadOutcome::Error(e) => CallResult::Err(e),
        ReadOutcome::Timeout => CallResult::Err("EWOULDBLOCK"),
        _ => CallResult::Ok,
    }
}
