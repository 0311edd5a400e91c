//! The kernel's timers on a socket and the fixed length of TIME_WAIT: read by the collector
//! into each connection, and the clock `age` bounds a state's start with. A leaf, so the
//! connection and the ages both take it without taking each other.

use std::time::Duration;

/// Which kernel timer is running on a socket (`ss -o` shows the same names).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum TimerKind {
    /// Retransmission (or loss probe, or a SYN_RECV's SYN-ACK resend): `on` in `ss`.
    Retransmit,
    /// Keepalive, or the FIN_WAIT_2 timeout of an orphan that still has its full socket.
    Keepalive,
    /// The TIME_WAIT (or orphaned FIN_WAIT_2) countdown of a socket with no file.
    TimeWait,
    /// Zero-window probe: the peer advertises no room, so we probe it (`persist` in `ss`).
    ZeroWindowProbe,
}

impl TimerKind {
    /// The name `ss -o` prints.
    pub fn name(self) -> &'static str {
        match self {
            TimerKind::Retransmit => "on",
            TimerKind::Keepalive => "keepalive",
            TimerKind::TimeWait => "timewait",
            TimerKind::ZeroWindowProbe => "persist",
        }
    }
}

/// A kernel timer on a socket, as read at the poll that carried it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Timer {
    pub kind: TimerKind,
    /// Milliseconds left until it fires, as of the poll (0 when already due): the kernel's
    /// own unit and width, 16 bytes less per connection than a `Duration`.
    pub expires_ms: u32,
    /// Retransmissions (for `on`) or unanswered probes (keepalive, persist) so far.
    pub retransmits: u8,
}

impl Timer {
    /// Time left until it fires, as of the poll.
    pub fn expires(&self) -> Duration {
        Duration::from_millis(u64::from(self.expires_ms))
    }
}

/// How long Linux keeps a socket in TIME_WAIT (`TCP_TIMEWAIT_LEN`, fixed at 60 s).
pub const TIME_WAIT_LEN: Duration = Duration::from_secs(60);
