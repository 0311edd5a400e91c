//! The small value types of the lab: connection handles, ends, address families, server
//! behaviours and close modes, with the names people type and read.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// A handle to one lab connection. Only a [`Lab`] makes them, and a lab acts only on the
/// handles it made itself: any other number is refused. Numbers are unique within the
/// process, so one lab never mistakes another lab's handle for its own.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub(super) u64);

impl ConnId {
    /// The number shown to people (`#3` is 3).
    pub fn number(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

impl FromStr for ConnId {
    type Err = String;

    /// Reads a handle typed by a person (`#3` or `3`). Whether it names a lab connection is
    /// for the lab to say.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.trim()
            .trim_start_matches('#')
            .parse::<u64>()
            .map(ConnId)
            .map_err(|_| format!("\"{s}\" is not a lab connection number; write e.g. #3"))
    }
}

/// One end of a lab connection.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum End {
    /// The end that connected.
    Client,
    /// The end the lab's listener accepted; it runs the connection's [`Behaviour`].
    Server,
}

impl End {
    pub fn other(self) -> End {
        match self {
            End::Client => End::Server,
            End::Server => End::Client,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            End::Client => "client",
            End::Server => "server",
        }
    }

    pub(super) fn index(self) -> usize {
        match self {
            End::Client => 0,
            End::Server => 1,
        }
    }
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The address family of a lab connection.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// 127.0.0.1
    #[default]
    Ipv4,
    /// [::1]
    Ipv6,
}

impl Family {
    pub const ALL: [Family; 2] = [Family::Ipv4, Family::Ipv6];

    /// The loopback address it uses, for help texts.
    pub fn about(self) -> &'static str {
        match self {
            Family::Ipv4 => "127.0.0.1",
            Family::Ipv6 => "[::1]",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Family::Ipv4 => "ipv4",
            Family::Ipv6 => "ipv6",
        }
    }
}

/// What the server end of a lab connection does on its own.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Behaviour {
    /// Reads everything; closes on EOF or error.
    Normal,
    /// Reads to EOF but never closes: the CLOSE_WAIT leak.
    NeverClose,
    /// Never reads, so data sent to it stays queued (its window closes).
    NeverRead,
    /// Sends 4 KiB when accepted that the client never reads, then does nothing.
    SendThenIdle,
}

impl Behaviour {
    pub const ALL: [Behaviour; 4] = [
        Behaviour::Normal,
        Behaviour::NeverClose,
        Behaviour::NeverRead,
        Behaviour::SendThenIdle,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Behaviour::Normal => "normal",
            Behaviour::NeverClose => "never-close",
            Behaviour::NeverRead => "never-read",
            Behaviour::SendThenIdle => "send-then-idle",
        }
    }

    /// Whether the engine reads this end as data arrives.
    pub(super) fn reads(self) -> bool {
        matches!(self, Behaviour::Normal | Behaviour::NeverClose)
    }
}

impl fmt::Display for Behaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A way to close one end of a lab connection. Each action sets up the precondition it
/// names before closing (queued data, unread data, a peer that never closes) and records
/// that in the trace.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CloseMode {
    /// close() with SO_LINGER off.
    Plain,
    /// shutdown(SHUT_WR), read to EOF or error (with a timeout), then close().
    Graceful,
    /// SO_LINGER on with 0 s, then close(): an abortive close.
    Abort,
    /// Queue data to a peer that stops reading, SO_LINGER on with N s, then a blocking
    /// close().
    Linger,
    /// The same as linger on a non-blocking socket.
    LingerNonblocking,
    /// shutdown(SHUT_WR) only; the socket stays open and readable.
    HalfClose,
    /// close() while the receive buffer holds bytes never read (the peer sends some first
    /// when there are none).
    UnreadData,
    /// close() while the other end reads EOF and never closes (a server end switches to
    /// `never-close`).
    PeerNeverCloses,
}

impl CloseMode {
    pub const ALL: [CloseMode; 8] = [
        CloseMode::Plain,
        CloseMode::Graceful,
        CloseMode::Abort,
        CloseMode::Linger,
        CloseMode::LingerNonblocking,
        CloseMode::HalfClose,
        CloseMode::UnreadData,
        CloseMode::PeerNeverCloses,
    ];

    /// What the mode does, in one line (the variant's documentation), for help texts.
    pub fn about(self) -> &'static str {
        match self {
            CloseMode::Plain => "close() with SO_LINGER off",
            CloseMode::Graceful => {
                "shutdown(SHUT_WR), read to EOF or error (with a timeout), then close()"
            }
            CloseMode::Abort => "SO_LINGER on with 0 s, then close(): an abortive close",
            CloseMode::Linger => {
                "Queue data to a peer that stops reading, SO_LINGER on with N s, then a blocking close()"
            }
            CloseMode::LingerNonblocking => "The same as linger on a non-blocking socket",
            CloseMode::HalfClose => "shutdown(SHUT_WR) only; the socket stays open and readable",
            CloseMode::UnreadData => {
                "close() while the receive buffer holds bytes never read (the peer sends some first when there are none)"
            }
            CloseMode::PeerNeverCloses => {
                "close() while the other end reads EOF and never closes (a server end switches to `never-close`)"
            }
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            CloseMode::Plain => "plain",
            CloseMode::Graceful => "graceful",
            CloseMode::Abort => "abort",
            CloseMode::Linger => "linger",
            CloseMode::LingerNonblocking => "linger-nonblocking",
            CloseMode::HalfClose => "half-close",
            CloseMode::UnreadData => "unread-data",
            CloseMode::PeerNeverCloses => "peer-never-closes",
        }
    }

    /// The server behaviour `lingertop lab --mode` pairs with the action: the peer the
    /// documents' scenario for it assumes.
    pub fn default_behaviour(self) -> Behaviour {
        match self {
            CloseMode::Plain | CloseMode::Graceful | CloseMode::Abort => Behaviour::Normal,
            CloseMode::Linger | CloseMode::LingerNonblocking => Behaviour::NeverRead,
            CloseMode::HalfClose | CloseMode::PeerNeverCloses => Behaviour::NeverClose,
            CloseMode::UnreadData => Behaviour::SendThenIdle,
        }
    }

    pub(super) fn lingers(self) -> bool {
        matches!(self, CloseMode::Linger | CloseMode::LingerNonblocking)
    }
}

impl fmt::Display for CloseMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
