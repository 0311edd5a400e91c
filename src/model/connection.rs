//! One TCP socket as lingertop sees it, and the snapshot of all of them at one poll.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::state::{StateCounts, TcpState};

/// A process holding (or having held) a socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    pub pid: u32,
    /// Process name; `None` when the process vanished before its name could be read.
    pub name: Option<Arc<str>>,
}

/// How the owner of a connection was found.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Attribution {
    /// The kernel table maps the socket's inode to a process holding it now.
    Owner,
    /// No owner now (e.g. TIME_WAIT, inode 0); this process owned the same connection at an
    /// earlier poll.
    LastOwner,
    /// No owner now and never seen owned; this process listens on the connection's local port,
    /// so the connection is the server side of one of its connections.
    Listener,
}

impl Attribution {
    pub fn name(self) -> &'static str {
        match self {
            Attribution::Owner => "owner",
            Attribution::LastOwner => "last-owner",
            Attribution::Listener => "listener",
        }
    }
}

/// What the tracker learnt about a connection across polls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tracking {
    /// The first poll that saw this connection.
    pub first_seen: SystemTime,
    /// The first poll that saw it in its current state.
    pub state_since: SystemTime,
    /// Whether `state_since` is a real observation of the state starting (the state began
    /// after lingertop started watching) or only the time lingertop first looked.
    pub state_start_observed: bool,
    /// States seen before the current one, oldest first, with the poll that first saw each.
    pub previous: Vec<(TcpState, SystemTime)>,
}

/// One TCP socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub state: TcpState,
    /// Socket inode; 0 when the kernel has no file for it (TIME_WAIT, orphans).
    pub inode: u64,
    /// Owning user id, where the backend reports one.
    pub uid: Option<u32>,
    /// User name for `uid`, where it resolves.
    pub user: Option<Arc<str>>,
    /// Processes holding the socket now, or that held it (see `attribution`).
    pub owners: Vec<Owner>,
    pub attribution: Option<Attribution>,
    /// Set by the tracker; `None` on a snapshot no tracker has seen.
    pub tracking: Option<Tracking>,
    /// One of the close lab's own sockets (see `lab::LabRecogniser`).
    pub lab: bool,
}

impl Connection {
    /// A connection with no owner information; the collector and fixtures fill in the rest.
    pub fn new(local: SocketAddr, remote: SocketAddr, state: TcpState) -> Self {
        Connection {
            local,
            remote,
            state,
            inode: 0,
            uid: None,
            user: None,
            owners: Vec::new(),
            attribution: None,
            tracking: None,
            lab: false,
        }
    }

    /// The first owner, the one shown where only one fits.
    pub fn owner(&self) -> Option<&Owner> {
        self.owners.first()
    }

    /// How long the connection has been in its state at `now`, as a lower bound: measured
    /// from the first poll that saw the state. `None` when only one poll has seen it and that
    /// poll was lingertop's first, so nothing is known of when the state began.
    pub fn state_age(&self, now: SystemTime) -> Option<Duration> {
        let t = self.tracking.as_ref()?;
        if !t.state_start_observed && t.state_since >= now {
            return None;
        }
        Some(now.duration_since(t.state_since).unwrap_or_default())
    }
}

/// Whether every socket could be mapped to its process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProcessInfo {
    Full,
    /// Some sockets show no process; `reason` says why and what to do.
    Partial {
        reason: String,
    },
}

impl ProcessInfo {
    pub fn name(&self) -> &'static str {
        match self {
            ProcessInfo::Full => "full",
            ProcessInfo::Partial { .. } => "partial",
        }
    }
}

/// An inclusive port range, such as the kernel's ephemeral range.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct PortRange {
    pub low: u16,
    pub high: u16,
}

impl PortRange {
    pub fn contains(&self, port: u16) -> bool {
        (self.low..=self.high).contains(&port)
    }

    pub fn len(&self) -> u32 {
        u32::from(self.high.saturating_sub(self.low)) + 1
    }

    pub fn is_empty(&self) -> bool {
        self.high < self.low
    }
}

/// Every TCP socket of the machine at one poll.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub taken_at: SystemTime,
    pub host: String,
    pub process_info: ProcessInfo,
    /// The local ephemeral port range in force at this poll.
    pub ephemeral_ports: PortRange,
    /// How long the poll took.
    pub poll_duration: Duration,
    pub connections: Vec<Connection>,
}

impl Snapshot {
    pub fn counts(&self) -> StateCounts {
        let mut c = StateCounts::default();
        for conn in &self.connections {
            c.add(conn.state);
        }
        c
    }
}

/// `127.0.0.1:80`, `[::1]:80`; IPv4-mapped IPv6 addresses are shown as IPv4.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}
