//! One close action, run on a worker thread: set up its precondition, make the calls,
//! watch both ends in the kernel table (every 5 ms while calls are in flight, every 50 ms
//! after), learn what the peer's next read got, wait for both ends to settle, and write it
//! all down as a [`Trace`].

mod calls;
mod peer;
mod reads;
mod record;

use std::net::SocketAddr;
use std::sync::PoisonError;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use socket2::Socket;

use self::calls::{Calls, calls, precondition, read_after_half_close};
use self::peer::next_peer_read;
use self::reads::{local_of, peer_of};
use self::record::{Recorder, StopOnDrop, Watch};
use super::engine::Inner;
use super::expect::{self, Documented, Observed};
use super::observe::system_probe;
use super::outcome::TimeWaitSide;
use super::trace::{Step, Trace};
use super::{Behaviour, CloseMode, CloseOptions, ConnId, End, LabError};
use crate::model::TcpState;

/// Poll interval while calls are in flight and just after.
const FAST: Duration = Duration::from_millis(5);
/// Poll interval once the calls have returned, until both ends settle.
const SLOW: Duration = Duration::from_millis(50);
/// Fast polling goes on this long after the last call returns.
const FAST_AFTER: Duration = Duration::from_millis(200);
/// Both ends count as settled when neither changed state for this long.
const QUIET: Duration = Duration::from_millis(300);
/// How long to wait for a peer that reads on its own to report its next read.
const PEER_READ_WAIT: Duration = Duration::from_secs(2);
/// How long a read the lab makes on an end waits for something to arrive.
const READ_WAIT: Duration = Duration::from_millis(500);
/// How long a graceful close reads for EOF before it closes anyway.
const GRACEFUL_READ: Duration = Duration::from_secs(2);
/// Most bytes an action queues, or reads back, on one connection.
const DATA_CAP: u64 = 64 << 20;
/// Bytes the peer sends when an unread-data close finds nothing unread.
const UNREAD_BYTES: usize = 1024;

/// Runs `action` on `end` of `id`, whose socket the caller took out of the table.
pub(super) fn run(
    inner: &Inner,
    id: ConnId,
    end: End,
    action: CloseMode,
    opts: CloseOptions,
    socket: Socket,
) -> Result<Trace, LabError> {
    let closer = (local_of(&socket)?, peer_of(&socket)?);
    let t0 = Instant::now();
    let watch = Watch::new(t0, closer);
    let probe = system_probe();
    let observer = probe.name();
    std::thread::scope(|s| {
        let w = &watch;
        s.spawn(move || w.observe(probe));
        let _stop = StopOnDrop(&watch);
        let cx = Act {
            inner,
            id,
            end,
            action,
            opts,
            watch: &watch,
            closer,
            observer,
        };
        act(&cx, socket)
    })
}

/// What one close acts on and who watches it: the arguments of [`act`].
#[derive(Clone, Copy)]
struct Act<'a> {
    inner: &'a Inner,
    id: ConnId,
    /// The end being closed.
    end: End,
    action: CloseMode,
    opts: CloseOptions,
    /// The observer polling both ends' states meanwhile.
    watch: &'a Watch,
    /// The closing end's 4-tuple (local, peer).
    closer: (SocketAddr, SocketAddr),
    /// The observer's name, for the trace.
    observer: &'static str,
}

/// The body of an action on `socket`, while the observer polls.
fn act(cx: &Act<'_>, socket: Socket) -> Result<Trace, LabError> {
    let &Act {
        inner,
        id,
        end,
        action,
        opts,
        watch,
        closer,
        observer,
    } = cx;
    let peer = end.other();
    let mut rec = Recorder {
        t0: watch.t0,
        calls: Vec::new(),
    };
    let bytes_queued = precondition(cx, &socket, &mut rec);
    let behaviour = inner.behaviour(id).unwrap_or(Behaviour::Normal);
    let peer_open = inner.end_open(id, peer);
    let peer_closes = peer == End::Server && behaviour == Behaviour::Normal && peer_open;
    let peer_self_reads = inner.engine_reads(id, peer);
    let peer_bytes_before = inner.bytes_read(id, peer);

    // Never act before the observer has seen both ends as they were.
    let ready_by = Instant::now() + Duration::from_secs(1);
    while !watch.polled() && Instant::now() < ready_by {
        std::thread::sleep(Duration::from_millis(1));
    }
    let calls_start = Instant::now();

    let Calls {
        close_result,
        close_blocked,
        mut closer_read,
        mut kept,
        unread_at_close,
    } = calls(cx, socket, &mut rec);
    let calls_done = Instant::now();
    watch.slow_down_after(FAST_AFTER);
    if kept.is_none() {
        inner.closed(id, end, action.name().to_string());
    }

    let peer_read = next_peer_read(
        cx,
        peer_self_reads,
        peer_bytes_before,
        (calls_start, calls_done),
        &mut rec,
    );
    let peer_bytes = peer_read.bytes_after_close;
    if let Some(socket) = kept.take() {
        closer_read = Some(read_after_half_close(cx, socket, &peer_read, &mut rec));
    }

    let settled = wait_settled(cx);
    watch.stop.store(true, Ordering::Relaxed);
    let [closer_states, peer_states] = watch.steps();
    let duration = watch.t0.elapsed();

    let time_wait = time_wait_side(&closer_states, &peer_states);
    let documented = expect::documented(action, peer_closes, opts.linger, unread_at_close);
    let observed = Observed {
        close_result: &close_result,
        blocked: close_blocked,
        peer_read: &peer_read.outcome,
        peer_then: peer_read.then.as_ref(),
        peer_bytes,
        bytes_queued,
        time_wait,
        settled,
    };
    let deviation = deviation(watch, &documented, &observed);

    Ok(Trace {
        conn: id,
        end,
        action,
        behaviour,
        linger: action.lingers().then_some(opts.linger),
        closer,
        calls: rec.calls,
        close_result,
        close_blocked,
        closer_states,
        peer_states,
        peer_read,
        closer_read,
        bytes_queued,
        time_wait,
        settled,
        duration,
        observer,
        polls: watch.polls.load(Ordering::Relaxed),
        documented,
        deviation,
    })
}

/// The documented behaviour's deviation from what was observed, with a note when the
/// socket table could not always be read (the states may then be incomplete).
fn deviation(watch: &Watch, documented: &Documented, observed: &Observed<'_>) -> Option<String> {
    let deviation = expect::deviation(documented, observed);
    let Some(e) = watch
        .error
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
    else {
        return deviation;
    };
    // Said once, so a reader knows the states may be incomplete.
    let note = format!("the socket table could not always be read ({e})");
    Some(match deviation {
        Some(d) => format!("{d}; {note}"),
        None => note,
    })
}

/// Watches until both ends settle (gone or in TIME_WAIT, or quiet) or the deadline of
/// `opts.settle` passes; true when they settled.
fn wait_settled(cx: &Act<'_>) -> bool {
    let &Act {
        inner, watch, opts, ..
    } = cx;
    // Watch until both ends settle or the deadline passes. Quiet counts from the lab's
    // last step too: a read it just made may not have reached the table yet.
    let last_step = Instant::now();
    let deadline = last_step + opts.settle;
    loop {
        if inner.stopping() {
            return false;
        }
        let steps = watch.steps();
        let done = |v: &Vec<Step>| {
            v.last()
                .is_some_and(|s| matches!(s.state, None | Some(TcpState::TimeWait)))
        };
        if done(&steps[0]) && done(&steps[1]) {
            return true;
        }
        if watch.quiet_for().min(last_step.elapsed()) >= QUIET {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Which end was left in TIME_WAIT.
fn time_wait_side(closer_states: &[Step], peer_states: &[Step]) -> TimeWaitSide {
    let is_tw = |v: &[Step]| v.last().and_then(|s| s.state) == Some(TcpState::TimeWait);
    match (is_tw(closer_states), is_tw(peer_states)) {
        (true, true) => TimeWaitSide::Both,
        (true, false) => TimeWaitSide::Closer,
        (false, true) => TimeWaitSide::Peer,
        (false, false) => TimeWaitSide::None,
    }
}
