//! The record of one close action: the calls made, what they returned and how long they
//! blocked, the states each end went through in the kernel table, what the peer's next read
//! got, whether a TIME_WAIT was left, and where that differs from the documents.

use std::net::SocketAddr;
use std::time::Duration;

use super::expect::Documented;
use super::outcome::{CallResult, ReadOutcome, TimeWaitSide};
use super::{Behaviour, CloseMode, ConnId, End};
use crate::model::TcpState;

/// One call the lab made on one end, in order.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    /// When it started, from the start of the action.
    pub at: Duration,
    /// The end it was made on.
    pub end: End,
    /// The call as a person reads it: `close()`, `setsockopt(SO_LINGER, on, 2 s)`.
    pub call: String,
    pub result: CallResult,
    /// How long it took to return.
    pub took: Duration,
    /// What it did, when that is more than its result: `3910656 bytes queued`.
    pub detail: Option<String>,
}

/// A state the kernel reported for one end, from the first poll that saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    /// `None`: the kernel has no socket with this 4-tuple any more.
    pub state: Option<TcpState>,
    pub at: Duration,
    /// Bytes in the send queue at that poll (sock_diag only; 0 otherwise).
    pub send_queue: u32,
}

/// What the peer's next read after the close returned.
#[derive(Clone, Debug, PartialEq)]
pub struct PeerRead {
    pub outcome: ReadOutcome,
    /// When it returned, from the start of the action.
    pub at: Duration,
    /// Whether the lab read on the peer's behalf (its behaviour never reads on its own).
    pub probe: bool,
    /// Every byte the peer read after the close began, through EOF when it came.
    pub bytes_after_close: u64,
    /// When the first read got data: how the peer's reading ended after it (EOF, an error,
    /// or a timeout).
    pub then: Option<ReadOutcome>,
}

/// The complete record of one close action.
#[derive(Clone, Debug, PartialEq)]
pub struct Trace {
    pub conn: ConnId,
    /// The end that was closed.
    pub end: End,
    pub action: CloseMode,
    /// The server end's peer behaviour once the action had set up its precondition.
    pub behaviour: Behaviour,
    /// SO_LINGER time for the linger actions.
    pub linger: Option<Duration>,
    /// The closing end's 4-tuple: (local, remote).
    pub closer: (SocketAddr, SocketAddr),
    pub calls: Vec<Call>,
    /// What the closing call returned: `close()`, or `shutdown()` for a half-close.
    pub close_result: CallResult,
    /// How long that call blocked.
    pub close_blocked: Duration,
    /// States of the closing end in the order seen (consecutive repeats merged).
    pub closer_states: Vec<Step>,
    pub peer_states: Vec<Step>,
    pub peer_read: PeerRead,
    /// What the closing end read after its call, for actions that read (graceful,
    /// half-close).
    pub closer_read: Option<ReadOutcome>,
    /// Bytes the closing end had queued to send when it closed (linger actions).
    pub bytes_queued: Option<u64>,
    pub time_wait: TimeWaitSide,
    /// Whether both ends settled before the deadline (else the trace ends at the deadline).
    pub settled: bool,
    /// From the start of the action to the last observation.
    pub duration: Duration,
    /// How states were observed: the probe's name and the fast polling interval.
    pub observer: &'static str,
    /// Polls of the socket table made.
    pub polls: u32,
    /// What close-semantics.md says should happen.
    pub documented: Documented,
    /// One line where the observation differs from the documents; `None` where it agrees.
    pub deviation: Option<String>,
}

impl Trace {
    /// The closing end's distinct states, kernel names, in order (the socket vanishing is
    /// not a state and is left out).
    pub fn closer_state_names(&self) -> Vec<TcpState> {
        names(&self.closer_states)
    }

    pub fn peer_state_names(&self) -> Vec<TcpState> {
        names(&self.peer_states)
    }

    /// The peer end's 4-tuple: (local, remote).
    pub fn peer(&self) -> (SocketAddr, SocketAddr) {
        (self.closer.1, self.closer.0)
    }
}

fn names(steps: &[Step]) -> Vec<TcpState> {
    let mut out: Vec<TcpState> = Vec::new();
    for s in steps.iter().filter_map(|s| s.state) {
        if out.last() != Some(&s) {
            out.push(s);
        }
    }
    out
}

/// The last observed state, `gone` when the socket vanished.
pub fn final_name(steps: &[Step]) -> &'static str {
    match steps.last() {
        Some(Step { state: Some(s), .. }) => s.name(),
        Some(Step { state: None, .. }) => "gone",
        None => "unseen",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_merge_repeats_and_drop_the_vanishing() {
        let at = |ms| Duration::from_millis(ms);
        let steps = [
            Step {
                state: Some(TcpState::Established),
                at: at(0),
                send_queue: 0,
            },
            Step {
                state: Some(TcpState::FinWait1),
                at: at(5),
                send_queue: 10,
            },
            Step {
                state: None,
                at: at(9),
                send_queue: 0,
            },
        ];
        assert_eq!(
            names(&steps),
            vec![TcpState::Established, TcpState::FinWait1]
        );
        assert_eq!(final_name(&steps), "gone");
        assert_eq!(final_name(&steps[..2]), "FIN_WAIT_1");
    }
}
