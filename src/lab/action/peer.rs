//! What the peer's next read got after the close: reported by the engine for a peer that
//! reads on its own, else a read the lab makes on its behalf once the closer is quiet.

use std::io::Read;
use std::time::{Duration, Instant};

use super::reads::{read_result, read_to_end};
use super::record::{Recorder, Watch};
use super::{Act, PEER_READ_WAIT, QUIET, READ_WAIT};
use crate::lab::engine::Inner;
use crate::lab::outcome::ReadOutcome;
use crate::lab::trace::PeerRead;
use crate::lab::{CloseMode, ConnId, End, EndStatus};

/// What the peer's next read got after the calls (`calls` = when they began and returned),
/// and the bytes it read after the close: counted by the engine for a peer that reads on
/// its own (from `bytes_before`), else by the lab's own read.
pub(super) fn next_peer_read(
    cx: &Act<'_>,
    peer_self_reads: bool,
    bytes_before: u64,
    (calls_start, calls_done): (Instant, Instant),
    rec: &mut Recorder,
) -> PeerRead {
    let &Act {
        inner,
        id,
        end,
        action,
        watch,
        ..
    } = cx;
    let peer = end.other();
    let peer_read = if peer_self_reads {
        wait_peer_read(inner, id, peer, calls_start, watch.t0)
    } else {
        // Let the closer settle first, so the read does not change what is being watched
        // (reading opens a closed window and lets a lingering FIN through).
        wait_quiet(inner, watch, calls_done, Duration::from_secs(1));
        probe_read(inner, id, peer, action, rec)
    };
    let peer_bytes = if peer_self_reads {
        inner.bytes_read(id, peer).saturating_sub(bytes_before)
    } else {
        peer_read.bytes_after_close
    };
    PeerRead {
        bytes_after_close: peer_bytes,
        ..peer_read
    }
}

/// Waits until both ends have been still for [`QUIET`] since the calls returned, at most
/// `max`.
pub(super) fn wait_quiet(inner: &Inner, watch: &Watch, calls_done: Instant, max: Duration) {
    let until = Instant::now() + max;
    while Instant::now() < until && !inner.stopping() {
        if watch.quiet_for().min(calls_done.elapsed()) >= QUIET {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The first read the engine made on a self-reading peer since the calls began.
pub(super) fn wait_peer_read(
    inner: &Inner,
    id: ConnId,
    peer: End,
    since: Instant,
    t0: Instant,
) -> PeerRead {
    let until = Instant::now() + PEER_READ_WAIT;
    let mut first_seen: Option<Instant> = None;
    loop {
        let (first, ended) = inner.read_since(id, peer, since);
        if let Some(ev) = first {
            let data = matches!(ev.outcome, ReadOutcome::Data(_));
            let seen = *first_seen.get_or_insert_with(Instant::now);
            // After data, give the end of the stream a moment to arrive too.
            if !data || ended.is_some() || seen.elapsed() >= READ_WAIT || inner.stopping() {
                return PeerRead {
                    outcome: ev.outcome,
                    at: ev.at.saturating_duration_since(t0),
                    probe: false,
                    bytes_after_close: 0,
                    then: if data {
                        Some(ended.map_or(ReadOutcome::Timeout, |e| e.outcome))
                    } else {
                        None
                    },
                };
            }
        } else if Instant::now() >= until || inner.stopping() {
            return PeerRead {
                outcome: ReadOutcome::Timeout,
                at: t0.elapsed(),
                probe: false,
                bytes_after_close: 0,
                then: None,
            };
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A read the lab makes on the peer's behalf, for behaviours that never read on their own;
/// when data comes, it reads on to EOF to learn whether everything queued arrived.
pub(super) fn probe_read(
    inner: &Inner,
    id: ConnId,
    peer: End,
    action: CloseMode,
    rec: &mut Recorder,
) -> PeerRead {
    let t0 = rec.t0;
    let Ok((socket, before)) = inner.take_end(id, peer, EndStatus::Acting(action)) else {
        return PeerRead {
            outcome: ReadOutcome::Closed,
            at: t0.elapsed(),
            probe: true,
            bytes_after_close: 0,
            then: None,
        };
    };
    let was_nonblocking = peer == End::Server;
    let _ = socket.set_nonblocking(false);
    let _ = socket.set_read_timeout(Some(READ_WAIT));
    let mut buf = vec![0u8; 64 * 1024];
    let start = Instant::now();
    let r = (&socket).read(&mut buf);
    let outcome = ReadOutcome::of(&r);
    let at = start.saturating_duration_since(t0) + start.elapsed();
    rec.push(
        peer,
        "read() (the peer's next read)",
        read_result(&outcome),
        start,
    );
    if let ReadOutcome::Data(_) | ReadOutcome::Eof = outcome {
        rec.detail(outcome.to_string());
    }
    let mut total = match outcome {
        ReadOutcome::Data(n) => n,
        _ => 0,
    };
    let mut last = outcome.clone();
    let mut then = None;
    if let ReadOutcome::Data(_) = outcome {
        let (end_outcome, more) = read_to_end(&socket, READ_WAIT * 4, inner, rec, peer);
        total += more;
        last = end_outcome.clone();
        then = Some(end_outcome);
    }
    inner.note_read(id, peer, last, total);
    let _ = socket.set_read_timeout(None);
    let _ = socket.set_nonblocking(was_nonblocking);
    let status = match before {
        EndStatus::Acting(_) | EndStatus::Closed(_) => EndStatus::Open,
        other => other,
    };
    inner.put_back(id, peer, socket, status);
    PeerRead {
        outcome,
        at,
        probe: true,
        bytes_after_close: total,
        then,
    }
}
