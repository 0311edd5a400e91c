//! One close action, run on a worker thread: set up its precondition, make the calls,
//! watch both ends in the kernel table (every 5 ms while calls are in flight, every 50 ms
//! after), learn what the peer's next read got, wait for both ends to settle, and write it
//! all down as a [`Trace`].

use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsRawFd, IntoRawFd};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use socket2::Socket;

use super::engine::Inner;
use super::expect::{self, Observed};
use super::observe::{TupleProbe, system_probe};
use super::trace::{Call, CallResult, PeerRead, ReadOutcome, Step, TimeWaitSide, Trace};
use super::{Behaviour, CloseMode, CloseOptions, ConnId, End, EndStatus, LabError};
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

/// The calls of an action, timed from its start.
struct Recorder {
    t0: Instant,
    calls: Vec<Call>,
}

impl Recorder {
    fn call<T>(
        &mut self,
        end: End,
        call: impl Into<String>,
        f: impl FnOnce() -> io::Result<T>,
    ) -> io::Result<T> {
        let start = Instant::now();
        let r = f();
        self.push(end, call, CallResult::of(&r), start);
        r
    }

    fn push(&mut self, end: End, call: impl Into<String>, result: CallResult, start: Instant) {
        self.calls.push(Call {
            at: start.saturating_duration_since(self.t0),
            end,
            call: call.into(),
            result,
            took: start.elapsed(),
            detail: None,
        });
    }

    fn detail(&mut self, d: impl Into<String>) {
        if let Some(c) = self.calls.last_mut() {
            c.detail = Some(d.into());
        }
    }

    fn last_took(&self) -> Duration {
        self.calls.last().map_or(Duration::ZERO, |c| c.took)
    }
}

/// The observer's record, shared with the thread that polls.
struct Watch {
    t0: Instant,
    tuples: [(SocketAddr, SocketAddr); 2],
    steps: Mutex<[Vec<Step>; 2]>,
    last_change: Mutex<Instant>,
    /// Poll fast until this instant; `None`: fast until told otherwise.
    fast_until: Mutex<Option<Instant>>,
    stop: AtomicBool,
    polls: AtomicU32,
    error: Mutex<Option<String>>,
}

impl Watch {
    fn new(t0: Instant, closer: (SocketAddr, SocketAddr)) -> Watch {
        Watch {
            t0,
            tuples: [closer, (closer.1, closer.0)],
            steps: Mutex::new([Vec::new(), Vec::new()]),
            last_change: Mutex::new(t0),
            fast_until: Mutex::new(None),
            stop: AtomicBool::new(false),
            polls: AtomicU32::new(0),
            error: Mutex::new(None),
        }
    }

    fn observe(&self, mut probe: Box<dyn TupleProbe>) {
        let mut out = Vec::with_capacity(2);
        while !self.stop.load(Ordering::Relaxed) {
            match probe.lookup(&self.tuples, &mut out) {
                Ok(()) => self.record(&out),
                Err(e) => {
                    *self.error.lock().unwrap_or_else(PoisonError::into_inner) =
                        Some(e.to_string());
                }
            }
            self.polls.fetch_add(1, Ordering::Relaxed);
            let fast = self
                .fast_until
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .is_none_or(|t| Instant::now() < t);
            std::thread::sleep(if fast { FAST } else { SLOW });
        }
    }

    fn record(&self, found: &[Option<super::observe::Probed>]) {
        let now = Instant::now();
        let mut steps = self.steps.lock().unwrap_or_else(PoisonError::into_inner);
        let mut changed = false;
        for (i, p) in found.iter().enumerate().take(2) {
            let state = p.map(|p| p.state);
            if steps[i].last().map(|s| s.state) != Some(state) {
                steps[i].push(Step {
                    state,
                    at: now.saturating_duration_since(self.t0),
                    send_queue: p.map_or(0, |p| p.send_queue),
                });
                changed = true;
            }
        }
        if changed {
            *self
                .last_change
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = now;
        }
    }

    fn polled(&self) -> bool {
        self.polls.load(Ordering::Relaxed) > 0
    }

    fn slow_down_after(&self, d: Duration) {
        *self
            .fast_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now() + d);
    }

    fn steps(&self) -> [Vec<Step>; 2] {
        self.steps
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn quiet_for(&self) -> Duration {
        self.last_change
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .elapsed()
    }
}

/// Stops the observer however the action ends, so the scope joining it never hangs.
struct StopOnDrop<'a>(&'a Watch);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.stop.store(true, Ordering::Relaxed);
    }
}

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

    // What the peer's next read got.
    let peer_read = if peer_self_reads {
        wait_peer_read(inner, id, peer, calls_start, watch.t0)
    } else {
        // Let the closer settle first, so the read does not change what is being watched
        // (reading opens a closed window and lets a lingering FIN through).
        wait_quiet(inner, watch, calls_done, Duration::from_secs(1));
        probe_read(inner, id, peer, action, &mut rec)
    };
    let peer_bytes = if peer_self_reads {
        inner.bytes_read(id, peer).saturating_sub(peer_bytes_before)
    } else {
        peer_read.bytes_after_close
    };
    let peer_read = PeerRead {
        bytes_after_close: peer_bytes,
        ..peer_read
    };

    // A half-closed socket still reads: the peer answers after EOF and the closer reads it.
    if let Some(socket) = kept.take() {
        if peer_read.outcome == ReadOutcome::Eof && inner.end_open(id, peer) {
            let msg = b"sent after EOF\n";
            let start = Instant::now();
            if let Some(r) = inner.send_on(id, peer, msg) {
                rec.push(peer, "send() after reading EOF", CallResult::of(&r), start);
                rec.detail(format!("{} bytes", msg.len()));
            }
        }
        let outcome = read_once(&socket, READ_WAIT, &mut rec, end);
        let bytes = match outcome {
            ReadOutcome::Data(n) => n,
            _ => 0,
        };
        inner.note_read(id, end, outcome.clone(), bytes);
        closer_read = Some(outcome);
        inner.put_back(id, end, socket, EndStatus::HalfClosed);
    }

    let settled = wait_settled(cx);
    watch.stop.store(true, Ordering::Relaxed);
    let [closer_states, peer_states] = watch.steps();
    let duration = watch.t0.elapsed();

    let time_wait = time_wait_side(&closer_states, &peer_states);
    let documented = expect::documented(action, peer_closes, opts.linger, unread_at_close);
    let mut deviation = expect::deviation(
        &documented,
        &Observed {
            close_result: &close_result,
            blocked: close_blocked,
            peer_read: &peer_read.outcome,
            peer_then: peer_read.then.as_ref(),
            peer_bytes,
            bytes_queued,
            time_wait,
            settled,
        },
    );
    if let Some(e) = watch
        .error
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
    {
        // Said once, so a reader knows the states may be incomplete.
        let note = format!("the socket table could not always be read ({e})");
        deviation = Some(match deviation {
            Some(d) => format!("{d}; {note}"),
            None => note,
        });
    }

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

/// What the close mode's calls did.
struct Calls {
    close_result: CallResult,
    close_blocked: Duration,
    /// What the closer's own read got (graceful reads to EOF before closing).
    closer_read: Option<ReadOutcome>,
    /// The socket, when the mode keeps it open (half-close).
    kept: Option<Socket>,
    /// Whether unread bytes sat in the receive buffer at close.
    unread_at_close: bool,
}

/// Makes the close mode's calls on `socket`.
fn calls(cx: &Act<'_>, socket: Socket, rec: &mut Recorder) -> Calls {
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
fn precondition(cx: &Act<'_>, socket: &Socket, rec: &mut Recorder) -> Option<u64> {
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

fn linger_call(d: Duration) -> String {
    format!("setsockopt(SO_LINGER, on, {} s)", d.as_secs())
}

fn local_of(s: &Socket) -> Result<SocketAddr, LabError> {
    s.local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .ok_or_else(|| LabError::io("lab socket", io::Error::other("no local address")))
}

fn peer_of(s: &Socket) -> Result<SocketAddr, LabError> {
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

fn switch_behaviour(inner: &Inner, id: ConnId, to: Behaviour, rec: &mut Recorder) {
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
fn fill(socket: &Socket, rec: &mut Recorder, end: End) -> u64 {
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
            Err(e) => break CallResult::Err(super::trace::errno_name(&e)),
        }
    };
    rec.push(end, "send() until it would block", result, start);
    rec.detail(format!("{total} bytes queued"));
    total
}

/// Bytes received and not yet read on `socket` (FIONREAD).
fn unread(socket: &Socket) -> Option<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the pointer, which points at `n`.
    let r = unsafe { libc::ioctl(socket.as_raw_fd(), libc::FIONREAD, &mut n) };
    (r == 0).then(|| usize::try_from(n).unwrap_or(0))
}

/// Makes sure the closer's receive buffer holds bytes it never read.
fn make_unread(inner: &Inner, id: ConnId, peer: End, socket: &Socket, rec: &mut Recorder) {
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
fn check_unread(socket: &Socket, action: CloseMode, rec: &mut Recorder, end: End) -> bool {
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
fn close(socket: Socket, rec: &mut Recorder, end: End) -> (CallResult, Duration) {
    let fd = socket.into_raw_fd();
    let start = Instant::now();
    // SAFETY: `fd` came out of the socket, which gave up ownership; it is closed once here.
    let r = unsafe { libc::close(fd) };
    let took = start.elapsed();
    let result = if r == 0 {
        CallResult::Ok
    } else {
        CallResult::Err(super::trace::errno_name(&io::Error::last_os_error()))
    };
    rec.push(end, "close()", result.clone(), start);
    (result, took)
}

/// One read with a deadline.
fn read_once(socket: &Socket, wait: Duration, rec: &mut Recorder, end: End) -> ReadOutcome {
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
fn read_to_end(
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

fn read_result(o: &ReadOutcome) -> CallResult {
    match o {
        ReadOutcome::Error(e) => CallResult::Err(e),
        ReadOutcome::Timeout => CallResult::Err("EWOULDBLOCK"),
        _ => CallResult::Ok,
    }
}

/// Waits until both ends have been still for [`QUIET`] since the calls returned, at most
/// `max`.
fn wait_quiet(inner: &Inner, watch: &Watch, calls_done: Instant, max: Duration) {
    let until = Instant::now() + max;
    while Instant::now() < until && !inner.stopping() {
        if watch.quiet_for().min(calls_done.elapsed()) >= QUIET {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The first read the engine made on a self-reading peer since the calls began.
fn wait_peer_read(inner: &Inner, id: ConnId, peer: End, since: Instant, t0: Instant) -> PeerRead {
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
fn probe_read(
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
