//! What a connection's receive queue holds: bytes, the peer's FIN, or both.
//!
//! sock_diag's `idiag_rqueue` is `rcv_nxt - copied_seq`, and a FIN takes one sequence
//! number: a CLOSE_WAIT whose peer sent no data and whose application has not read the
//! end of the stream shows a receive queue of 1 with no byte to read. The kernel's
//! `INET_DIAG_SHUTDOWN` attribute (`sk_shutdown`) says whether the receive side is shut,
//! which in the states after the peer's FIN (CLOSE_WAIT, LAST_ACK, CLOSING) means the FIN
//! has arrived; the queue then counts it until the application reads up to it (`read()`
//! returning 0 moves `copied_seq` past it).

use super::Connection;
use crate::model::TcpState;

/// The socket's shutdown bits as the kernel reports them (`sk_shutdown`): an enum rather
/// than the byte, so `Option<Shutdown>` takes one byte of a [`Connection`] (which must
/// stay within 96 at 100k sockets).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Shutdown {
    /// Both sides open.
    Open = 0,
    /// `RCV_SHUTDOWN`: nothing more will be received (the peer's FIN, or
    /// `shutdown(SHUT_RD)`).
    Receive = 1,
    /// `SEND_SHUTDOWN`: nothing more will be sent (our FIN: `shutdown(SHUT_WR)` or
    /// `close()`).
    Send = 2,
    /// Both.
    Both = 3,
}

impl Shutdown {
    /// The bits of the kernel's one-byte attribute (RCV_SHUTDOWN 1, SEND_SHUTDOWN 2;
    /// higher bits are ignored).
    pub fn from_kernel(bits: u8) -> Self {
        match bits & 3 {
            0 => Shutdown::Open,
            1 => Shutdown::Receive,
            2 => Shutdown::Send,
            _ => Shutdown::Both,
        }
    }

    /// Whether the receive side is shut.
    pub fn receive(self) -> bool {
        matches!(self, Shutdown::Receive | Shutdown::Both)
    }

    /// Whether the send side is shut.
    pub fn send(self) -> bool {
        matches!(self, Shutdown::Send | Shutdown::Both)
    }
}

/// What the receive queue holds, told apart with the shutdown bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReceiveQueue {
    /// Bytes not yet read, no FIN among them (or none known to be).
    Data(u32),
    /// The peer's FIN has arrived; `unread` bytes come before it and the application has
    /// not read up to it.
    FinUnread { unread: u32 },
    /// The peer's FIN has arrived and the application has read the end of the stream
    /// (`read()` returned 0) yet keeps the socket open.
    FinRead,
    /// The peer's FIN has arrived (the state says so) but the backend did not report the
    /// shutdown bits: the queue's `n` may count it.
    MayCountFin(u32),
}

impl ReceiveQueue {
    /// The text the detail pane shows.
    pub fn describe(self) -> String {
        match self {
            ReceiveQueue::Data(n) => format!("{n} B unread"),
            ReceiveQueue::FinUnread { unread: 0 } => "peer sent FIN, 0 B unread".to_string(),
            ReceiveQueue::FinUnread { unread } => format!("{unread} B unread, then FIN"),
            ReceiveQueue::FinRead => "peer sent FIN, read (EOF seen)".into(),
            ReceiveQueue::MayCountFin(n) => format!("{n} B (with the peer's FIN if unread)"),
        }
    }
}

/// Whether the peer's FIN has arrived in `state`.
fn fin_received(state: TcpState) -> bool {
    matches!(
        state,
        TcpState::CloseWait | TcpState::LastAck | TcpState::Closing
    )
}

impl Connection {
    /// What the receive queue holds; `None` when the backend cannot see queues or for a
    /// LISTEN socket (whose queue is connections waiting for `accept()`).
    pub fn receive_queue(&self) -> Option<ReceiveQueue> {
        let n = self.recv_q()?;
        if self.state == TcpState::Listen {
            return None;
        }
        if !fin_received(self.state) {
            return Some(ReceiveQueue::Data(n));
        }
        Some(match self.shutdown {
            Some(s) if s.receive() => match n {
                0 => ReceiveQueue::FinRead,
                n => ReceiveQueue::FinUnread { unread: n - 1 },
            },
            // The state says the FIN came but the kernel says the receive side is open:
            // trust the bytes as they are.
            Some(_) => ReceiveQueue::Data(n),
            None => ReceiveQueue::MayCountFin(n),
        })
    }
}
