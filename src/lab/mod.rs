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
//!
//! The lab's vocabulary (the kinds, [`Trace`], the documented behaviour, the scenario
//! reports, the recogniser) is plain data and builds everywhere: the command line, the
//! reports and the dashboard's panel use it. The machinery that opens and closes sockets
//! ([`Lab`], the engine, the actions, the bulk scenarios, [`run`]) is unix only; elsewhere
//! `lingertop lab` and the dashboard's lab key say [`UNIX_ONLY`].

#[cfg(unix)]
mod action;
#[cfg(unix)]
mod bulk;
#[cfg(unix)]
mod engine;
pub mod expect;
#[cfg(unix)]
mod handle;
mod kinds;
pub mod observe;
pub mod outcome;
pub mod recognise;
#[cfg(unix)]
pub mod run;
mod scenario;
pub mod trace;

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

#[cfg(unix)]
pub use handle::{Lab, Pending};
pub use kinds::{Behaviour, CloseMode, ConnId, End, Family};
pub use outcome::{ReadOutcome, TimeWaitSide};
pub use recognise::LabRecogniser;
pub use scenario::{Scenario, ScenarioReport, SideStates};
pub use trace::Trace;

/// What `lingertop lab` and the dashboard's lab key say where the lab cannot run.
pub const UNIX_ONLY: &str = "the close lab runs on unix systems only (Linux, macOS, the BSDs): it drives its sockets through descriptor calls (ioctl, close, SO_LINGER) this platform lacks";

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

#[cfg(unix)]
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
