//! The exporter's HTTP front: hyper's HTTP/1 on an accept loop of our own, so that what a
//! client can hold is bounded. `axum::serve` keeps every connection for as long as the client
//! likes; an exporter that runs as root on a production host must not. Three bounds:
//!
//! - a connection that has sent part of a request and not the rest (a slow or stuck client,
//!   "slowloris") is closed `header_timeout` after its first unanswered byte;
//! - a connection with nothing in flight (idle keep-alive, or a client that connected and
//!   said nothing) is closed after `idle_timeout` of silence;
//! - at most `max_connections` are open at once (kept below RLIMIT_NOFILE). When a new one
//!   arrives at the cap, the connection that has been silent longest gives way, so a fresh
//!   scrape is always answered while stale ones are the ones dropped.
//!
//! The clock of a connection is kept by a wrapper around its socket that notes when bytes were
//! read and written: every response here is rendered from memory at once, so "read but not yet
//! answered" is a request still arriving.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

pub use crate::config::ServeLimits as Limits;

/// File descriptors kept free for lingertop itself (netlink sockets, `/proc` reads, the
/// runtime) when the connection cap is derived from RLIMIT_NOFILE.
const FD_RESERVE: u64 = 32;

/// The limits actually used: the configured ones with the connection cap lowered to fit
/// under the soft RLIMIT_NOFILE `nofile` (with [`FD_RESERVE`] left over). Returns them and
/// whether the cap was lowered.
pub fn fitted(limits: Limits, nofile: Option<u64>) -> (Limits, bool) {
    let Some(nofile) = nofile else {
        return (limits, false);
    };
    let room = usize::try_from(nofile.saturating_sub(FD_RESERVE).max(1)).unwrap_or(usize::MAX);
    if room < limits.max_connections {
        (
            Limits {
                max_connections: room,
                ..limits
            },
            true,
        )
    } else {
        (limits, false)
    }
}

/// The soft limit on open files of this process, where the OS has one.
pub fn open_files_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes into the struct we own and reads nothing else.
        let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
        (rc == 0 && lim.rlim_cur != libc::RLIM_INFINITY).then_some(lim.rlim_cur)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Milliseconds since the server started: one clock all connections share, kept in atomics.
#[derive(Clone, Copy)]
struct Clock(Instant);

impl Clock {
    fn now(self) -> u64 {
        u64::try_from(self.0.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// What is known of one connection's traffic; shared by its socket wrapper, its task and
/// the accept loop that may evict it.
struct Activity {
    /// When bytes last moved either way (ms on the server clock).
    last: AtomicU64,
    /// When the first byte of a request not yet answered arrived, plus one; 0 when nothing
    /// is in flight.
    pending_since: AtomicU64,
    /// Wakes the connection's task to close it (eviction).
    evict: Notify,
}

impl Activity {
    fn new(now: u64) -> Self {
        Activity {
            last: AtomicU64::new(now),
            pending_since: AtomicU64::new(0),
            evict: Notify::new(),
        }
    }

    /// How long this connection has been silent at `now`, and whether a request is stuck
    /// half-way (as opposed to idle with nothing in flight).
    fn silence(&self, now: u64) -> (Duration, bool) {
        let pending = self.pending_since.load(Ordering::Relaxed);
        if pending != 0 {
            (Duration::from_millis(now.saturating_sub(pending - 1)), true)
        } else {
            let last = self.last.load(Ordering::Relaxed);
            (Duration::from_millis(now.saturating_sub(last)), false)
        }
    }

    /// Whether the connection has outlived the bound that applies to it.
    fn expired(&self, now: u64, limits: &Limits) -> bool {
        match self.silence(now) {
            (waited, true) => waited > limits.header_timeout,
            (waited, false) => waited > limits.idle_timeout,
        }
    }
}

/// A socket that keeps its connection's [`Activity`] up to date.
struct Tracked {
    inner: TcpStream,
    activity: Arc<Activity>,
    clock: Clock,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            let now = self.clock.now();
            self.activity.last.store(now, Ordering::Relaxed);
            // Only the first unanswered byte starts the request clock.
            let _ = self.activity.pending_since.compare_exchange(
                0,
                now + 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
        r
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity
                .last
                .store(self.clock.now(), Ordering::Relaxed);
            self.activity.pending_since.store(0, Ordering::Relaxed);
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity
                .last
                .store(self.clock.now(), Ordering::Relaxed);
            self.activity.pending_since.store(0, Ordering::Relaxed);
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The open connections, by id, for the accept loop to pick one to evict.
#[derive(Default)]
struct Registry {
    open: Mutex<HashMap<u64, Arc<Activity>>>,
}

impl Registry {
    fn len(&self) -> usize {
        self.open.lock().map_or(0, |m| m.len())
    }

    fn insert(&self, id: u64, a: Arc<Activity>) {
        if let Ok(mut m) = self.open.lock() {
            m.insert(id, a);
        }
    }

    fn remove(&self, id: u64) {
        if let Ok(mut m) = self.open.lock() {
            m.remove(&id);
        }
    }

    /// Asks the connection silent longest to close; a request stuck half-way counts as
    /// silent since its first byte. Returns whether one was asked.
    fn evict_one(&self, now: u64) -> bool {
        let Ok(m) = self.open.lock() else {
            return false;
        };
        let victim = m
            .iter()
            .max_by_key(|(id, a)| (a.silence(now).0, std::cmp::Reverse(**id)));
        match victim {
            Some((_, a)) => {
                a.evict.notify_one();
                true
            }
            None => false,
        }
    }
}

/// How often a connection's task looks at its clock: often enough that a bound is kept
/// within a tenth of itself, never busier than every 20 ms.
fn check_every(limits: &Limits) -> Duration {
    (limits.header_timeout.min(limits.idle_timeout) / 10).max(Duration::from_millis(20))
}

/// Serves `router` on `listener` within `limits` until `stop` resolves; then stops accepting,
/// lets requests in flight finish for up to `drain`, and closes what is left.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    stop: impl std::future::Future<Output = ()>,
    drain: Duration,
) {
    let clock = Clock(Instant::now());
    let registry = Arc::new(Registry::default());
    let (stopping_tx, stopping) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut next_id = 0u64;
    tokio::pin!(stop);
    loop {
        // Reap finished connections so the set does not grow with the server's lifetime.
        while tasks.try_join_next().is_some() {}
        let accepted = tokio::select! {
            () = &mut stop => break,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, _)) => {
                if registry.len() >= limits.max_connections {
                    registry.evict_one(clock.now());
                }
                next_id += 1;
                let id = next_id;
                let activity = Arc::new(Activity::new(clock.now()));
                registry.insert(id, Arc::clone(&activity));
                let io = Tracked {
                    inner: stream,
                    activity: Arc::clone(&activity),
                    clock,
                };
                let service = TowerToHyperService::new(router.clone());
                let registry = Arc::clone(&registry);
                let stopping = stopping.clone();
                tasks.spawn(async move {
                    connection(io, service, activity, limits, clock, stopping).await;
                    registry.remove(id);
                });
            }
            // Out of descriptors: make room by closing the longest-silent connection, then
            // try again shortly (the pending connection waits in the listen queue).
            Err(e) if is_out_of_files(&e) => {
                registry.evict_one(clock.now());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            // A connection reset before it was accepted, and the like: nothing to do.
            Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
    drop(listener);
    let _ = stopping_tx.send(true);
    let _ = tokio::time::timeout(drain, async { while tasks.join_next().await.is_some() {} }).await;
    tasks.abort_all();
}

fn is_out_of_files(e: &io::Error) -> bool {
    #[cfg(unix)]
    {
        matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
    }
    #[cfg(not(unix))]
    {
        let _ = e;
        false
    }
}

/// One connection, closed when it is done, outlives its bound, is evicted, or the server
/// stops (after its request in flight, if any).
async fn connection(
    io: Tracked,
    service: TowerToHyperService<Router>,
    activity: Arc<Activity>,
    limits: Limits,
    clock: Clock,
    mut stopping: watch::Receiver<bool>,
) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    // Our own clock closes stuck requests; hyper's header timer would also run while a
    // kept-alive connection is idle, so it is left off.
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .keep_alive(true)
        .max_buf_size(64 * 1024);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let mut tick = tokio::time::interval(check_every(&limits));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut draining = false;
    loop {
        tokio::select! {
            _ = &mut conn => return,
            () = activity.evict.notified() => return,
            _ = tick.tick() => {
                if activity.expired(clock.now(), &limits) {
                    return;
                }
            }
            r = stopping.changed(), if !draining => {
                draining = true;
                if r.is_err() || *stopping.borrow() {
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;

    use super::*;

    const LIMITS: Limits = Limits {
        max_connections: 64,
        header_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(90),
    };

    #[test]
    fn the_cap_fits_under_the_open_files_limit() {
        assert_eq!(fitted(LIMITS, None), (LIMITS, false));
        assert_eq!(fitted(LIMITS, Some(1024)), (LIMITS, false));
        let (lowered_limits, lowered) = fitted(LIMITS, Some(64));
        assert!(lowered);
        assert_eq!(lowered_limits.max_connections, 32);
        assert_eq!(fitted(LIMITS, Some(10)).0.max_connections, 1);
    }

    #[test]
    fn a_stuck_request_is_held_to_the_header_bound_and_an_idle_one_to_the_idle_bound() {
        let a = Activity::new(1_000);
        // Idle since 1 s: within the idle bound until 91 s.
        assert!(!a.expired(91_000, &LIMITS));
        assert!(a.expired(91_001, &LIMITS));
        // A first byte at 5 s starts the request clock: 10 s from then.
        a.pending_since.store(5_001, Ordering::Relaxed);
        assert_eq!(a.silence(12_000), (Duration::from_secs(7), true));
        assert!(!a.expired(15_000, &LIMITS));
        assert!(a.expired(15_001, &LIMITS));
    }

    #[test]
    fn the_longest_silent_connection_is_the_one_evicted() {
        let r = Registry::default();
        let talking = Arc::new(Activity::new(9_000));
        let idle = Arc::new(Activity::new(2_000));
        let stuck = Arc::new(Activity::new(8_000));
        stuck.pending_since.store(1_001, Ordering::Relaxed); // half a request since 1 s
        r.insert(1, Arc::clone(&talking));
        r.insert(2, Arc::clone(&idle));
        r.insert(3, Arc::clone(&stuck));
        assert!(r.evict_one(10_000));
        // Only the stuck one was woken: a permit is stored for it alone.
        let mut cx = Context::from_waker(std::task::Waker::noop());
        for (a, expect) in [(&stuck, true), (&idle, false), (&talking, false)] {
            let fut = a.evict.notified();
            tokio::pin!(fut);
            assert_eq!(fut.as_mut().poll(&mut cx).is_ready(), expect);
        }
        r.remove(3);
        r.remove(2);
        r.remove(1);
        assert!(!r.evict_one(10_000));
    }
}
