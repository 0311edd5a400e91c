//! The close lab: TCP connections lingertop opens to itself on loopback, closed the way a
//! person asks, with a trace of what the kernel actually did.
//!
//! A [`Lab`] listens on `127.0.0.1` and `[::1]` (ephemeral ports) and opens connections to
//! itself. The server end of each has a [`Behaviour`] run by one engine thread; either end
//! can be closed with a [`CloseMode`], which runs on a worker thread of its own and yields a
//! [`Trace`]: the calls made, how long they blocked, the states both ends went through in
//! the kernel table, what the peer's next read got, and the deviation from the documented
//! behaviour. Connections are named by [`ConnId`] handles the lab hands out; nothing reaches
//! a socket the lab did not create. Dropping the lab closes every socket it holds and joins
//! every thread it started.
//!
//! Nothing here blocks for long on the caller's thread: [`Lab::open`] takes well under a
//! millisecond per connection on loopback, and [`Lab::close`] and [`Lab::scenario`] return a
//! [`Pending`] result at once, to be polled from a render loop:
//!
//! ```no_run
//! use lingertop::lab::{CloseMode, Behaviour, CloseOptions, End, Family, Lab};
//!
//! let lab = Lab::new()?;
//! let ids = lab.open(Behaviour::Normal, 3, Family::Ipv4)?;
//! let pending = lab.close(ids[0], End::Client, CloseMode::Abort, CloseOptions::default())?;
//! // ... each frame: draw `lab.connections()`, mark rows with `lab.is_lab_tuple(..)` ...
//! if let Some(result) = pending.try_take() {
//!     let trace = result?;
//!     println!("{}: peer read {}", trace.action, trace.peer_read.outcome);
//! }
//! # Ok::<(), lingertop::lab::LabError>(())
//! ```

mod action;
mod engine;
pub mod expect;
mod kinds;
pub mod observe;
pub mod recognise;
pub mod run;
mod scenario;
pub mod trace;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

pub use kinds::{Behaviour, CloseMode, ConnId, End, Family};
pub use recognise::LabRecogniser;
pub use scenario::{Scenario, ScenarioReport, SideStates};
pub use trace::{ReadOutcome, TimeWaitSide, Trace};

use engine::Inner;

/// Settings of one close action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CloseOptions {
    /// SO_LINGER time for the linger actions (1 s to 30 s).
    pub linger: Duration,
    /// How long after its calls the action keeps watching for both ends to settle.
    pub settle: Duration,
}

impl Default for CloseOptions {
    fn default() -> Self {
        CloseOptions {
            linger: Duration::from_secs(2),
            settle: Duration::from_secs(3),
        }
    }
}

/// The longest SO_LINGER time the lab sets: a linger close blocks its worker this long.
pub const MAX_LINGER: Duration = Duration::from_secs(30);
/// The most connections one [`Lab::open`] call makes.
pub const MAX_OPEN: usize = 1000;

/// Where one end of a lab connection is, as the lab sees it (the kernel state is the
/// socket table's to tell).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EndStatus {
    /// The lab holds the socket.
    Open,
    /// An action is running on it.
    Acting(CloseMode),
    /// `shutdown(SHUT_WR)` was called; the lab still holds the socket.
    HalfClosed,
    /// The descriptor is closed; the words say how (`abort`, `closed on EOF`).
    Closed(String),
}

impl fmt::Display for EndStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndStatus::Open => f.write_str("open"),
            EndStatus::Acting(a) => write!(f, "{a} running"),
            EndStatus::HalfClosed => f.write_str("half-closed"),
            EndStatus::Closed(how) => write!(f, "closed ({how})"),
        }
    }
}

/// One end of a lab connection, for display.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndView {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub status: EndStatus,
    /// The last thing a read on this end returned, if it was read.
    pub last_read: Option<ReadOutcome>,
    pub bytes_read: u64,
    pub bytes_written: u64,
}

/// A lab connection, for display.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnView {
    pub id: ConnId,
    pub family: Family,
    /// The server end's behaviour now (an action may have changed it).
    pub behaviour: Behaviour,
    pub client: EndView,
    pub server: EndView,
}

impl ConnView {
    pub fn end(&self, end: End) -> &EndView {
        match end {
            End::Client => &self.client,
            End::Server => &self.server,
        }
    }
}

/// Why the lab did not do what it was asked. Every message says what to do instead.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error(
        "{0} is not a lab connection: the lab acts only on connections it opened itself (open some first)"
    )]
    UnknownConnection(ConnId),
    #[error(
        "{local} -> {remote} is not a lab socket: lingertop closes only sockets its own lab created; open lab connections and act on those"
    )]
    NotALabSocket {
        local: SocketAddr,
        remote: SocketAddr,
    },
    #[error("the {end} end of {id} is already closed; pick a connection that is still open")]
    EndClosed { id: ConnId, end: End },
    #[error("an action is still running on the {end} end of {id}; wait for its trace")]
    Busy { id: ConnId, end: End },
    #[error("the lab cannot listen on [::1] ({0}); use IPv4 (--family ipv4)")]
    NoIpv6(String),
    #[error("asked for {asked} connections; the lab opens 1 to {max} at a time")]
    BadCount { asked: usize, max: usize },
    #[error("SO_LINGER time {0:?} is out of range; use 1 s to 30 s")]
    BadLinger(Duration),
    #[error("{what}: too many open files; raise the limit (ulimit -n) or use fewer connections")]
    TooManyFiles { what: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the lab is shutting down")]
    Stopped,
}

impl LabError {
    fn io(what: impl Into<String>, source: std::io::Error) -> LabError {
        let what = what.into();
        if matches!(source.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) {
            LabError::TooManyFiles { what }
        } else {
            LabError::Io { what, source }
        }
    }
}

/// The result of work running on a lab worker thread; poll it with [`Pending::try_take`]
/// from a render loop, or wait for it.
pub struct Pending<T> {
    rx: mpsc::Receiver<Result<T, LabError>>,
}

impl<T> Pending<T> {
    /// The result if the work is done, else `None` at once. Gives the result only once.
    pub fn try_take(&self) -> Option<Result<T, LabError>> {
        match self.rx.try_recv() {
            Ok(r) => Some(r),
            Err(mpsc::TryRecvError::Empty) => None,
            // The worker ended without answering: only when the lab is being dropped.
            Err(mpsc::TryRecvError::Disconnected) => Some(Err(LabError::Stopped)),
        }
    }

    /// Waits for the result.
    pub fn wait(self) -> Result<T, LabError> {
        self.rx.recv().unwrap_or(Err(LabError::Stopped))
    }
}

/// The lab: its listeners, its connections, the engine thread running the server ends'
/// behaviours, and the workers running actions. Dropping it closes everything it holds and
/// joins every thread (the kernel may keep TIME_WAIT entries, as it does for any close).
pub struct Lab {
    inner: Arc<Inner>,
    engine: Option<JoinHandle<()>>,
    workers: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

impl Lab {
    /// Starts a lab: listeners on 127.0.0.1 and [::1] (ephemeral ports; IPv6 only where the
    /// host has it) and the engine thread.
    pub fn new() -> Result<Lab, LabError> {
        let (inner, engine) = engine::start()?;
        Ok(Lab {
            inner,
            engine: Some(engine),
            workers: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// The listening addresses: IPv4 first, then IPv6 when available.
    pub fn listeners(&self) -> Vec<SocketAddr> {
        self.inner.listener_addrs()
    }

    /// The listener `family`'s connections go to.
    pub fn listener(&self, family: Family) -> Result<SocketAddr, LabError> {
        self.inner.listener_addr(family)
    }

    /// Opens `count` connections (1 to [`MAX_OPEN`]) whose server ends behave as
    /// `behaviour`. Returns once all are established.
    pub fn open(
        &self,
        behaviour: Behaviour,
        count: usize,
        family: Family,
    ) -> Result<Vec<ConnId>, LabError> {
        if count == 0 || count > MAX_OPEN {
            return Err(LabError::BadCount {
                asked: count,
                max: MAX_OPEN,
            });
        }
        self.inner.open(behaviour, count, family)
    }

    /// Every connection the lab opened and still remembers (closed ones included, for a
    /// few minutes), oldest first.
    pub fn connections(&self) -> Vec<ConnView> {
        self.inner.views()
    }

    /// One connection, or `None` for a handle this lab did not make.
    pub fn connection(&self, id: ConnId) -> Option<ConnView> {
        self.inner.view(id)
    }

    /// The lab connection and end whose socket has this (local, remote) 4-tuple, or a
    /// refusal for any socket the lab did not create.
    pub fn find(&self, local: SocketAddr, remote: SocketAddr) -> Result<(ConnId, End), LabError> {
        self.inner
            .find(local, remote)
            .ok_or(LabError::NotALabSocket { local, remote })
    }

    /// Whether the socket (local, remote) is one of the lab's: a listener or an end of a lab
    /// connection (also after its close, while the kernel may still list it).
    pub fn is_lab_tuple(&self, local: SocketAddr, remote: SocketAddr) -> bool {
        self.inner.is_lab_tuple(local, remote)
    }

    /// Closes `end` of connection `id` with `action` on a worker thread and returns at once;
    /// the [`Trace`] arrives through the [`Pending`]. Refuses handles this lab did not make,
    /// ends already closed, and ends with an action still running.
    pub fn close(
        &self,
        id: ConnId,
        end: End,
        action: CloseMode,
        opts: CloseOptions,
    ) -> Result<Pending<Trace>, LabError> {
        if action.lingers() && !(Duration::from_secs(1)..=MAX_LINGER).contains(&opts.linger) {
            return Err(LabError::BadLinger(opts.linger));
        }
        let (socket, _) = self.inner.take_end(id, end, EndStatus::Acting(action))?;
        let inner = Arc::clone(&self.inner);
        self.spawn("lingertop-lab-action", move || {
            action::run(&inner, id, end, action, opts, socket)
        })
    }

    /// Closes what the lab holds of a connection, both ends, at once and without a trace
    /// (to clear away, say, a scenario's CLOSE_WAIT pile). An end with an action running is
    /// left to its action. Refuses handles this lab did not make.
    pub fn discard(&self, id: ConnId) -> Result<(), LabError> {
        self.inner.discard(id)
    }

    /// Runs a bulk scenario of `count` connections on a worker thread (see [`Scenario`]).
    pub fn scenario(
        &self,
        scenario: Scenario,
        count: usize,
        family: Family,
    ) -> Result<Pending<ScenarioReport>, LabError> {
        if count == 0 || count > scenario::MAX_COUNT {
            return Err(LabError::BadCount {
                asked: count,
                max: scenario::MAX_COUNT,
            });
        }
        self.inner.listener_addr(family)?;
        let inner = Arc::clone(&self.inner);
        self.spawn("lingertop-lab-scenario", move || {
            scenario::run(&inner, scenario, count, family)
        })
    }

    fn spawn<T: Send + 'static>(
        &self,
        name: &str,
        work: impl FnOnce() -> Result<T, LabError> + Send + 'static,
    ) -> Result<Pending<T>, LabError> {
        let (tx, rx) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                let _ = tx.send(work());
            })
            .map_err(|e| LabError::io("cannot start a lab worker thread", e))?;
        let mut workers = self
            .workers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Reap the finished ones so a long session does not pile up handles.
        let (done, running): (Vec<_>, Vec<_>) = workers.drain(..).partition(|h| h.is_finished());
        for h in done {
            let _ = h.join();
        }
        *workers = running;
        workers.push(handle);
        Ok(Pending { rx })
    }
}

// The dashboard keeps the lab in its state and drives it from its event loop.
const _: fn() = || {
    fn shareable<T: Send + Sync>() {}
    shareable::<Lab>();
};

impl Drop for Lab {
    fn drop(&mut self) {
        // Closing every socket first also ends a linger close in flight: its peer's close
        // resets the connection, which wakes the blocked close() at once.
        self.inner.stop();
        if let Some(engine) = self.engine.take() {
            let _ = engine.join();
        }
        let workers = std::mem::take(
            &mut *self
                .workers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for w in workers {
            let _ = w.join();
        }
        // Workers may have handed sockets back while stopping.
        self.inner.close_all();
    }
}
