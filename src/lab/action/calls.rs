//! The close mode's own calls on the closing end, and the preconditions they need (data
//! queued toward a peer that does not read, bytes left unread, a peer that never closes).

use std::io;
use std::net::Shutdown;
use std::os::fd::IntoRawFd;
use std::time::{Duration, Instant};

use socket2::Socket;

use super::reads::{read_once, read_to_end, unread};
use super::record::Recorder;
use super::{Act, DATA_CAP, GRACEFUL_READ, READ_WAIT, UNREAD_BYTES};
use crate::lab::engine::Inner;
use crate::lab::outcome::{CallResult, ReadOutcome};
use crate::lab::trace::PeerRead;
use crate::lab::{Behaviour, CloseMode, ConnId, End, EndStatus};

/// What the close mode's calls did.
pub(super) struct Calls {
    pub(super) close_result: CallResult,
    pub(super) close_blocked: Duration,
    /// What the closer's own read got (graceful reads to EOF before closing).
    pub(super) closer_read: Option<ReadOutcome>,
    /// The socket, when the mode keeps it open (half-close).
    pub(super) kept: Option<Socket>,
    /// Whether unread bytes sat in the receive buffer at close.
    pub(super) unread_at_close: bool,
}

/// Makes the close mode's calls on `socket`.
pub(super) fn calls(cx: &Act<'_>, socket: Socket, rec: &mut Recorder) -> Calls {
    let &Act {
        inner,
        id,
        end,
        action,
        opts,
        ..
    } = cx;
    let mut closer_read = None;
    let mut kept: Option<Socket> = None;
    let mut unread_at_close = false;
    let (close_result, close_blocked) = match action {
        CloseMode::Plain | CloseMode::UnreadData | CloseMode::PeerNeverCloses => {
            let _ = rec.call(end, "setsockopt(SO_LINGER, off)", || {
                socket.set_linger(None)
            });
            unread_at_close = check_unread(&socket, action, rec, end);
            close(socket, rec, end)
        }
        CloseMode::Abort => {
            let _ = rec.call(end, "setsockopt(SO_LINGER, on, 0 s)", || {
                socket.set_linger(Some(Duration::ZERO))
            });
            unread_at_close = check_unread(&socket, action, rec, end);
            close(socket, rec, end)
        }
        CloseMode::Linger | CloseMode::LingerNonblocking => {
            let nonblocking = action == CloseMode::LingerNonblocking;
            let _ = rec.call(end, linger_call(opts.linger), || {
                socket.set_linger(Some(opts.linger))
            });
            let mode = if nonblocking { "on" } else { "off" };
            let _ = rec.call(end, format!("fcntl(O_NONBLOCK {mode})"), || {
                socket.set_nonblocking(nonblocking)
            });
            unread_at_close = check_unread(&socket, action, rec, end);
            close(socket, rec, end)
        }
        CloseMode::Graceful => {
            let _ = rec.call(end, "shutdown(SHUT_WR)", || {
                socket.shutdown(Shutdown::Write)
            });
            let (outcome, bytes) = read_to_end(&socket, GRACEFUL_READ, inner, rec, end);
            inner.note_read(id, end, outcome.clone(), bytes);
            closer_read = Some(outcome);
            unread_at_close = check_unread(&socket, action, rec, end);
            close(socket, rec, end)
        }
        CloseMode::HalfClose => {
            let r = rec.call(end, "shutdown(SHUT_WR)", || {
                socket.shutdown(Shutdown::Write)
            });
            kept = Some(socket);
            (CallResult::of(&r), rec.last_took())
        }
    };
    Calls {
        close_result,
        close_blocked,
        closer_read,
        kept,
        unread_at_close,
    }
}

/// Sets up the precondition the close mode names (queued data, unread data, a peer that
/// never closes); returns the bytes queued toward the peer, for the linger modes.
pub(super) fn precondition(cx: &Act<'_>, socket: &Socket, rec: &mut Recorder) -> Option<u64> {
    let &Act {
        inner,
        id,
        end,
        action,
        ..
    } = cx;
    let peer = end.other();
    match action {
        CloseMode::Linger | CloseMode::LingerNonblocking => {
            if peer == End::Server {
                switch_behaviour(inner, id, Behaviour::NeverRead, rec);
            }
            let queued = fill(socket, rec, end);
            inner.note_written(id, end, queued);
            return Some(queued);
        }
        CloseMode::PeerNeverCloses if peer == End::Server => {
            switch_behaviour(inner, id, Behaviour::NeverClose, rec);
        }
        CloseMode::UnreadData => make_unread(inner, id, peer, socket, rec),
        _ => {}
    }
    None
}

pub(super) fn linger_call(d: Duration) -> String {
    format!("setsockopt(SO_LINGER, on, {} s)", d.as_secs())
}

pub(super) fn switch_behaviour(inner: &Inner, id: ConnId, to: Behaviour, rec: &mut Recorder) {
    let start = Instant::now();
    if let Some(before) = inner.set_behaviour(id, to) {
        if before != to {
            rec.push(
                End::Server,
                format!("behaviour {before} -> {to}"),
                CallResult::Ok,
                start,
            );
        }
    }
}

/// Writes until the send queue is full (the peer does not read): the "unsent data queued"
/// a linger close is about.
pub(super) fn fill(socket: &Socket, rec: &mut Recorder, end: End) -> u64 {
    let chunk = vec![b'q'; 64 * 1024];
    let start = Instant::now();
    let mut total = 0u64;
    let _ = socket.set_nonblocking(true);
    let result = loop {
        if total >= DATA_CAP {
            break CallResult::Ok;
        }
        match socket.send(&chunk) {
            Ok(n) => total += n as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break CallResult::Err(crate::lab::outcome::errno_name(&e)),
        }
    };
    rec.push(end, "send() until it would block", result, start);
    rec.detail(format!("{total} bytes queued"));
    total
}

/// Makes sure the closer's receive buffer holds bytes it never read.
pub(super) fn make_unread(
    inner: &Inner,
    id: ConnId,
    peer: End,
    socket: &Socket,
    rec: &mut Recorder,
) {
    let end = peer.other();
    if unread(socket).unwrap_or(0) == 0 {
        let start = Instant::now();
        if let Some(r) = inner.send_on(id, peer, &[b'u'; UNREAD_BYTES]) {
            rec.push(
                peer,
                "send() so the closer holds unread data",
                CallResult::of(&r),
                start,
            );
            rec.detail(format!("{UNREAD_BYTES} bytes"));
        }
        let by = Instant::now() + Duration::from_secs(1);
        while unread(socket).unwrap_or(0) == 0 && Instant::now() < by {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let start = Instant::now();
    let n = unread(socket);
    rec.push(
        end,
        "ioctl(FIONREAD)",
        if n.is_some() {
            CallResult::Ok
        } else {
            CallResult::Err("EINVAL")
        },
        start,
    );
    rec.detail(format!("{} bytes unread", n.unwrap_or(0)));
}

/// Whether the closing end holds unread bytes just before close(), which makes the close
/// abortive; said in the calls when it does (unread-data says so in its own set-up).
pub(super) fn check_unread(
    socket: &Socket,
    action: CloseMode,
    rec: &mut Recorder,
    end: End,
) -> bool {
    let start = Instant::now();
    let n = unread(socket).unwrap_or(0);
    if n > 0 && action != CloseMode::UnreadData {
        rec.push(end, "ioctl(FIONREAD)", CallResult::Ok, start);
        rec.detail(format!(
            "{n} bytes unread: the close will reset the connection"
        ));
    }
    n > 0
}

/// close() on the descriptor itself: the only way to see what it returns and how long it
/// blocks (dropping a socket closes it and ignores both).
pub(super) fn close(socket: Socket, rec: &mut Recorder, end: End) -> (CallResult, Duration) {
    let fd = socket.into_raw_fd();
    let start = Instant::now();
    // SAFETY: `fd` came out of the socket, which gave up ownership; it is closed once here.
    let r = unsafe { libc::close(fd) };
    let took = start.elapsed();
    let result = if r == 0 {
        CallResult::Ok
    } else {
        CallResult::Err(crate::lab::outcome::errno_name(&io::Error::last_os_error()))
    };
    rec.push(end, "close()", result.clone(), start);
    (result, took)
}

/// A half-closed socket still reads: the peer answers after EOF and the closer reads it;
/// the socket goes back to the lab, half-closed. What the closer's read got.
pub(super) fn read_after_half_close(
    cx: &Act<'_>,
    socket: Socket,
    peer_read: &PeerRead,
    rec: &mut Recorder,
) -> ReadOutcome {
    let &Act { inner, id, end, .. } = cx;
    let peer = end.other();
    if peer_read.outcome == ReadOutcome::Eof && inner.end_open(id, peer) {
        let msg = b"sent after EOF\n";
        let start = Instant::now();
        if let Some(r) = inner.send_on(id, peer, msg) {
            rec.push(peer, "send() after reading EOF", CallResult::of(&r), start);
            rec.detail(format!("{} bytes", msg.len()));
        }
    }
    let outcome = read_once(&socket, READ_WAIT, rec, end);
    let bytes = match outcome {
        ReadOutcome::Data(n) => n,
        _ => 0,
    };
    inner.note_read(id, end, outcome.clone(), bytes);
    inner.put_back(id, end, socket, EndStatus::HalfClosed);
    outcome
}
