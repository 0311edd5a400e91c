//! Joins the kernel's per-socket events into closes: one [`Close`] per full socket that was
//! connected, at its destroy.
//!
//! Events are joined by the socket's kernel address and checked against its cookie (an
//! address is reused once the socket is freed), never by the tuple: a linger-0 close zeroes
//! the addresses before the destroy event. The owner is the process last seen acting on the
//! socket in process context; the task that ran an event is believed only for the events
//! that run in the owner's own system call (connect, listen, close, shutdown, send, receive),
//! because passive transitions run in softirq, on loopback in the peer's task.

use std::net::SocketAddr;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::decode::{EventKind, RawEvent, state_of};
use super::owners::Learned;
use crate::model::action::LINGERTOP;
use crate::model::{Close, CloseKind, CloseOwner, ResetReason, TcpState};

/// The kernel's `enum sk_rst_reason` values the joiner tells apart.
const RST_NOT_SPECIFIED: u8 = 0;
const RST_TCP_ABORT_ON_CLOSE: u8 = 11;
const RST_TCP_STATE: u8 = 14;
const RST_TCP_DISCONNECT_WITH_DATA: u8 = 16;

/// Kernel state numbers (`include/net/tcp_states.h`).
const TCP_ESTABLISHED: u8 = 1;
const TCP_SYN_SENT: u8 = 2;
const TCP_SYN_RECV: u8 = 3;
const TCP_FIN_WAIT1: u8 = 4;
const TCP_CLOSE_WAIT: u8 = 8;
const TCP_LAST_ACK: u8 = 9;
const TCP_LISTEN: u8 = 10;
const TCP_CLOSING: u8 = 11;
const TCP_CLOSE: u8 = 7;

/// What the joiner knows of one live socket.
#[derive(Debug)]
struct Track {
    cookie: u64,
    first_ns: u64,
    /// The socket's birth was seen (connect or accept), so its lifetime is known.
    born_seen: bool,
    connected: bool,
    active_fin: bool,
    passive_fin: bool,
    /// The first RST either way: sent (with its reason) or received.
    reset: Option<Option<ResetReason>>,
    states: Vec<TcpState>,
    owner: Option<CloseOwner>,
    /// The owner is the listener's (an accepted socket nobody acted on yet in process
    /// context).
    owner_from_listener: bool,
    /// A listening socket: accepted sockets on its port inherit its owner.
    listening: bool,
    local: Option<SocketAddr>,
    remote: Option<SocketAddr>,
    linger_ticks: Option<u64>,
    netns: u32,
    /// A lingertop process that closed the socket from outside (`lingertop close`): its shutdown or its destroy ran in that task.
    action: Option<CloseOwner>,
}

impl Track {
    fn new(e: &RawEvent) -> Self {
        Track {
            cookie: e.cookie,
            first_ns: e.ts_ns,
            born_seen: false,
            connected: false,
            active_fin: false,
            passive_fin: false,
            reset: None,
            states: Vec::new(),
            owner: None,
            owner_from_listener: false,
            listening: false,
            local: None,
            remote: None,
            linger_ticks: None,
            netns: e.netns,
            action: None,
        }
    }
}

/// Counts of what the joiner saw besides closes, for the operator's "is this complete?".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JoinStats {
    /// Events read.
    pub events: u64,
    /// Sockets dropped because a new socket took their address before their destroy was
    /// seen (the destroy record was lost).
    pub missed_destroys: u64,
    /// Sockets not followed because `max_tracked` were already followed.
    pub untracked: u64,
}

/// The join state: live sockets by kernel address.
#[derive(Debug)]
pub struct Joiner {
    sockets: FxHashMap<u64, Track>,
    /// Only sockets of this network namespace (inode), when set.
    netns: Option<u32>,
    max_tracked: usize,
    names: FxHashMap<u32, Arc<str>>,
    /// Listening sockets by (namespace, port), for the owner of what they accept.
    listeners: FxHashMap<(u32, u16), u64>,
    pub stats: JoinStats,
    /// Owners learned and sockets ended since the reader last took them, for the poll
    /// thread's [`super::owners::OwnerMemory`].
    pub learned: Vec<Learned>,
}

/// The sockets followed at most at once; beyond, new sockets are counted as untracked.
pub const MAX_TRACKED: usize = 1 << 20;

impl Joiner {
    /// A joiner of the sockets of network namespace `netns` (every namespace for `None`).
    pub fn new(netns: Option<u32>) -> Self {
        Joiner {
            sockets: FxHashMap::default(),
            netns,
            max_tracked: MAX_TRACKED,
            names: FxHashMap::default(),
            listeners: FxHashMap::default(),
            stats: JoinStats::default(),
            learned: Vec::new(),
        }
    }

    /// Sockets followed now.
    pub fn tracked(&self) -> usize {
        self.sockets.len()
    }

    fn owner(&mut self, e: &RawEvent) -> Option<CloseOwner> {
        if e.kthread || e.tgid == 0 {
            return None;
        }
        // One shared name per pid: 10k closes/s would otherwise allocate 10k names.
        let name = match self.names.get(&e.tgid) {
            Some(n) if **n == *e.comm => n.clone(),
            _ => {
                if self.names.len() > 65_536 {
                    self.names.clear();
                }
                let n: Arc<str> = e.comm.as_str().into();
                self.names.insert(e.tgid, n.clone());
                n
            }
        };
        Some(CloseOwner { pid: e.tgid, name })
    }

    /// Takes one event; returns the close it completes, if any.
    pub fn handle(&mut self, e: &RawEvent) -> Option<Close> {
        self.stats.events += 1;
        if self.netns.is_some_and(|ns| ns != e.netns) {
            return None;
        }
        if let EventKind::Destroy = e.kind {
            let t = self.sockets.remove(&e.sk)?;
            if t.owner.is_some() {
                self.learned.push(Learned::Ended(t.cookie));
            }
            if t.listening
                && let Some(port) = t.local.map(|a| a.port())
                && self.listeners.get(&(t.netns, port)) == Some(&e.sk)
            {
                self.listeners.remove(&(t.netns, port));
            }
            if t.cookie != e.cookie {
                self.stats.missed_destroys += 1;
                return None;
            }
            return finish(t, e);
        }
        let mut owner = match e.kind {
            EventKind::State { new, .. } if in_callers_context(new) => self.owner(e),
            EventKind::SendReset { reason } if reset_reason(reason, e).is_some_and(by_close) => {
                self.owner(e)
            }
            EventKind::Owner => self.owner(e),
            _ => None,
        };
        // A close lingertop made from outside runs in lingertop's task: a shutdown (the
        // FIN, in the caller's context) or a destroy (its RST, sent from the netlink
        // request). Taken as the application's, it would count as its own close or reset.
        let actor = match e.kind {
            EventKind::State {
                new: TCP_FIN_WAIT1 | TCP_LAST_ACK,
                ..
            } => owner.clone(),
            EventKind::SendReset { .. } => self.owner(e),
            _ => None,
        }
        .filter(|a| &*a.name == LINGERTOP);
        if !self.sockets.contains_key(&e.sk) && self.sockets.len() >= self.max_tracked {
            self.stats.untracked += 1;
            return None;
        }
        let t = self.sockets.entry(e.sk).or_insert_with(|| Track::new(e));
        if t.cookie != e.cookie {
            // The address now holds another socket: the old one's destroy was lost.
            self.stats.missed_destroys += 1;
            if t.owner.is_some() {
                self.learned.push(Learned::Ended(t.cookie));
            }
            *t = Track::new(e);
        }
        if let Some(a) = actor
            && t.owner.as_ref().is_some_and(|o| o.pid != a.pid)
        {
            // Another process's socket: lingertop acted on it; its owner stays the owner.
            t.action = Some(a);
            owner = None;
        }
        if let Some(o) = owner {
            if t.owner.as_ref() != Some(&o) || t.owner_from_listener {
                self.learned.push(Learned::Owner(e.cookie, o.clone()));
            }
            t.owner = Some(o);
            t.owner_from_listener = false;
        }
        if e.local.is_some() {
            t.local = e.local;
        }
        if e.remote.is_some() {
            t.remote = e.remote;
        }
        if e.linger_ticks.is_some() {
            t.linger_ticks = e.linger_ticks;
        }
        match e.kind {
            EventKind::State { old, new } => {
                self.on_state(e, old, new);
                // A connection lingertop closed ends when it reaches CLOSE, though the
                // application may hold its descriptor (and so the socket) for long after:
                // the action is told then, and the later destroy finds nothing to tell.
                if new == TCP_CLOSE
                    && let Some(t) = self.sockets.get(&e.sk)
                    && t.action.is_some()
                {
                    let t = self.sockets.remove(&e.sk)?;
                    if t.owner.is_some() {
                        self.learned.push(Learned::Ended(t.cookie));
                    }
                    return finish(t, e);
                }
            }
            EventKind::SendReset { reason } => {
                if t.reset.is_none() {
                    t.reset = Some(Some(
                        reset_reason(reason, e).unwrap_or(ResetReason::Other(reason)),
                    ));
                }
            }
            EventKind::ReceiveReset => {
                if t.reset.is_none() {
                    t.reset = Some(None);
                }
            }
            EventKind::Owner | EventKind::Destroy => {}
        }
        None
    }

    /// A state change of a tracked socket: the states it went through, how it was opened,
    /// which end sent the first FIN, and the listener an accepted socket's owner comes from.
    fn on_state(&mut self, e: &RawEvent, old: u8, new: u8) {
        let Some(t) = self.sockets.get_mut(&e.sk) else {
            return;
        };
        if t.states.is_empty()
            && let Some(s) = state_of(old)
        {
            t.states.push(s);
        }
        if let Some(s) = state_of(new)
            && t.states.last() != Some(&s)
        {
            t.states.push(s);
        }
        match new {
            TCP_SYN_SENT => t.born_seen = true,
            TCP_LISTEN => {
                t.listening = true;
                if let Some(port) = e.local.map(|a| a.port()) {
                    self.listeners.insert((e.netns, port), e.sk);
                }
            }
            TCP_SYN_RECV if old == TCP_LISTEN => {
                t.born_seen = true;
                // Accepted: until its owner acts on it, the listener's owner is
                // the best guess (one process per listening port, the usual case).
                if t.owner.is_none()
                    && let Some(port) = e.local.map(|a| a.port())
                    && let Some(l) = self.listeners.get(&(e.netns, port))
                {
                    let inherited = self.sockets.get(l).and_then(|l| l.owner.clone());
                    let t = self.sockets.get_mut(&e.sk).expect("inserted above");
                    t.owner = inherited;
                    t.owner_from_listener = t.owner.is_some();
                }
            }
            TCP_ESTABLISHED => t.connected = true,
            TCP_FIN_WAIT1 | TCP_CLOSING => {
                t.connected = true;
                if !t.passive_fin {
                    t.active_fin = true;
                }
            }
            TCP_CLOSE_WAIT => {
                t.connected = true;
                if !t.active_fin {
                    t.passive_fin = true;
                }
            }
            TCP_LAST_ACK => t.connected = true,
            _ => {}
        }
    }
}

/// State changes that only a system call on the socket makes, in the caller's task:
/// connect (SYN_SENT), listen (LISTEN), close or shutdown (FIN_WAIT1, LAST_ACK).
fn in_callers_context(new: u8) -> bool {
    matches!(
        new,
        TCP_SYN_SENT | TCP_LISTEN | TCP_FIN_WAIT1 | TCP_LAST_ACK
    )
}

/// The RSTs close() itself sends, in the closing task.
fn by_close(r: ResetReason) -> bool {
    matches!(r, ResetReason::UnreadData | ResetReason::Linger0)
}

/// The reason of a RST, where the kernel's reason and the socket tell it: close() with unread
/// data says so; SO_LINGER {1, 0} makes close() disconnect, which the kernel reports as a reset
/// for the socket's state (or for data left unsent) on a socket with a zero linger deadline.
fn reset_reason(kernel: u8, e: &RawEvent) -> Option<ResetReason> {
    match kernel {
        RST_TCP_ABORT_ON_CLOSE => Some(ResetReason::UnreadData),
        RST_TCP_STATE | RST_TCP_DISCONNECT_WITH_DATA | RST_NOT_SPECIFIED
            if e.linger_ticks == Some(0) =>
        {
            Some(ResetReason::Linger0)
        }
        _ => None,
    }
}

fn finish(t: Track, e: &RawEvent) -> Option<Close> {
    // Listeners and connects that never connected end no connection.
    if !t.connected {
        return None;
    }
    let (kind, reason) = match t.reset {
        Some(Some(r)) => (CloseKind::ResetSent, Some(r)),
        Some(None) => (CloseKind::ResetReceived, None),
        None if t.active_fin => (CloseKind::GracefulActive, None),
        None if t.passive_fin => (CloseKind::GracefulPassive, None),
        None => (CloseKind::Timeout, None),
    };
    Some(Close {
        kind,
        reason,
        owner: t.owner,
        owner_via_listener: t.owner_from_listener,
        local: t.local,
        remote: t.remote,
        cookie: t.cookie,
        netns: t.netns,
        lifetime_ns: t.born_seen.then(|| e.ts_ns.saturating_sub(t.first_ns)),
        states: t.states,
        linger_ticks: t.linger_ticks,
        at_ns: e.ts_ns,
        action: t.action,
    })
}

#[cfg(test)]
mod tests {
    use super::super::decode::{decode, tests::record};
    use super::*;

    const CLOSE: u8 = 7;
    const FIN_WAIT2: u8 = 5;

    fn ev(kind: u8, sk: u64, old: u8, new: u8, reason: u8, pid: u32, ts: u64) -> RawEvent {
        decode(&record(
            kind,
            sk,
            old,
            new,
            reason,
            pid,
            &format!("p{pid}"),
            ts,
        ))
        .unwrap()
    }

    fn run(j: &mut Joiner, events: &[RawEvent]) -> Vec<Close> {
        events.iter().filter_map(|e| j.handle(e)).collect()
    }

    #[test]
    fn a_passive_close_belongs_to_the_closer_not_to_the_peer_that_ran_the_softirq() {
        let mut j = Joiner::new(None);
        // The accepted socket: LISTEN -> SYN_RECV -> ESTABLISHED and the peer's FIN all run
        // in the client's task (pid 20) on loopback; the server (pid 10) closes.
        let closes = run(
            &mut j,
            &[
                ev(1, 7, TCP_LISTEN, TCP_SYN_RECV, 0, 20, 1),
                ev(1, 7, TCP_SYN_RECV, TCP_ESTABLISHED, 0, 20, 2),
                ev(1, 7, TCP_ESTABLISHED, TCP_CLOSE_WAIT, 0, 20, 3),
                ev(1, 7, TCP_CLOSE_WAIT, TCP_LAST_ACK, 0, 10, 4),
                ev(1, 7, TCP_LAST_ACK, CLOSE, 0, 20, 5),
                ev(4, 7, CLOSE, CLOSE, 0, 20, 6),
            ],
        );
        assert_eq!(closes.len(), 1);
        let c = &closes[0];
        assert_eq!(c.kind, CloseKind::GracefulPassive);
        assert_eq!(c.owner.as_ref().map(|o| o.pid), Some(10));
        assert_eq!(c.lifetime_ns, Some(5));
        assert_eq!(
            c.states,
            vec![
                TcpState::Listen,
                TcpState::SynRecv,
                TcpState::Established,
                TcpState::CloseWait,
                TcpState::LastAck,
                TcpState::Close
            ]
        );
    }

    #[test]
    fn a_reset_received_keeps_the_owner_seen_receiving_and_ignores_the_sender_task() {
        let mut j = Joiner::new(None);
        let closes = run(
            &mut j,
            &[
                ev(1, 9, TCP_LISTEN, TCP_SYN_RECV, 0, 20, 1),
                ev(1, 9, TCP_SYN_RECV, TCP_ESTABLISHED, 0, 20, 2),
                ev(5, 9, TCP_ESTABLISHED, TCP_ESTABLISHED, 0, 10, 3),
                ev(3, 9, TCP_ESTABLISHED, TCP_ESTABLISHED, 0, 20, 4),
                ev(1, 9, TCP_ESTABLISHED, CLOSE, 0, 20, 5),
                ev(4, 9, CLOSE, CLOSE, 0, 10, 6),
            ],
        );
        assert_eq!(closes[0].kind, CloseKind::ResetReceived);
        assert_eq!(closes[0].owner.as_ref().map(|o| o.pid), Some(10));
    }

    #[test]
    fn reset_reasons_unread_data_and_linger0_and_a_graceful_active_close() {
        let mut j = Joiner::new(None);
        let mut linger = ev(2, 1, CLOSE, CLOSE, RST_TCP_STATE, 30, 3);
        linger.linger_ticks = Some(0);
        let mut closes = run(
            &mut j,
            &[
                ev(1, 1, CLOSE, TCP_SYN_SENT, 0, 30, 1),
                ev(1, 1, TCP_SYN_SENT, TCP_ESTABLISHED, 0, 30, 2),
                ev(1, 1, TCP_ESTABLISHED, CLOSE, 0, 30, 3),
                linger,
                ev(4, 1, CLOSE, CLOSE, 0, 99, 4),
                ev(1, 2, CLOSE, TCP_SYN_SENT, 0, 31, 1),
                ev(1, 2, TCP_SYN_SENT, TCP_ESTABLISHED, 0, 31, 2),
                ev(1, 2, TCP_ESTABLISHED, CLOSE, 0, 31, 3),
                ev(2, 2, CLOSE, CLOSE, RST_TCP_ABORT_ON_CLOSE, 31, 3),
                ev(4, 2, CLOSE, CLOSE, 0, 31, 4),
                ev(1, 3, CLOSE, TCP_SYN_SENT, 0, 32, 1),
                ev(1, 3, TCP_SYN_SENT, TCP_ESTABLISHED, 0, 32, 2),
                ev(1, 3, TCP_ESTABLISHED, TCP_FIN_WAIT1, 0, 32, 3),
                ev(1, 3, TCP_FIN_WAIT1, FIN_WAIT2, 0, 40, 4),
                ev(1, 3, FIN_WAIT2, CLOSE, 0, 40, 5),
                ev(4, 3, CLOSE, CLOSE, 0, 40, 6),
            ],
        );
        closes.sort_by_key(|c| c.owner.as_ref().map(|o| o.pid));
        let got: Vec<_> = closes
            .iter()
            .map(|c| (c.kind, c.reason, c.owner.as_ref().map(|o| o.pid)))
            .collect();
        assert_eq!(
            got,
            vec![
                (CloseKind::ResetSent, Some(ResetReason::Linger0), Some(30)),
                (
                    CloseKind::ResetSent,
                    Some(ResetReason::UnreadData),
                    Some(31)
                ),
                (CloseKind::GracefulActive, None, Some(32)),
            ]
        );
    }

    #[test]
    fn a_reused_socket_address_starts_a_new_socket_and_listeners_end_no_connection() {
        let mut j = Joiner::new(None);
        let mut reused = ev(1, 5, CLOSE, TCP_SYN_SENT, 0, 2, 10);
        reused.cookie ^= 1;
        let closes = run(
            &mut j,
            &[
                ev(1, 5, CLOSE, TCP_LISTEN, 0, 1, 1),
                reused,
                ev(4, 5, CLOSE, CLOSE, 0, 2, 11),
                ev(1, 6, CLOSE, TCP_LISTEN, 0, 1, 1),
                ev(4, 6, CLOSE, CLOSE, 0, 1, 2),
            ],
        );
        assert!(closes.is_empty());
        assert_eq!(j.stats.missed_destroys, 2);
        assert_eq!(j.tracked(), 0);
    }

    #[test]
    fn a_close_lingertop_made_from_outside_is_its_action_never_the_owners_close() {
        let mut j = Joiner::new(None);
        let by = |mut e: RawEvent, comm: &str| {
            e.comm = comm.into();
            e
        };
        let closes = run(
            &mut j,
            &[
                // Socket 1, owned by pid 10: lingertop (pid 50) shuts it down (LAST_ACK).
                ev(1, 1, CLOSE, TCP_SYN_SENT, 0, 10, 1),
                ev(1, 1, TCP_SYN_SENT, TCP_ESTABLISHED, 0, 10, 2),
                ev(1, 1, TCP_ESTABLISHED, TCP_CLOSE_WAIT, 0, 20, 3),
                by(
                    ev(1, 1, TCP_CLOSE_WAIT, TCP_LAST_ACK, 0, 50, 4),
                    "lingertop",
                ),
                ev(1, 1, TCP_LAST_ACK, CLOSE, 0, 20, 5),
                ev(4, 1, CLOSE, CLOSE, 0, 20, 6),
                // Socket 2, owned by pid 11: lingertop destroys it (a RST in its task).
                ev(1, 2, CLOSE, TCP_SYN_SENT, 0, 11, 1),
                ev(1, 2, TCP_SYN_SENT, TCP_ESTABLISHED, 0, 11, 2),
                by(ev(2, 2, CLOSE, CLOSE, RST_TCP_STATE, 50, 3), "lingertop"),
                by(ev(1, 2, TCP_ESTABLISHED, CLOSE, 0, 50, 4), "lingertop"),
                ev(4, 2, CLOSE, CLOSE, 0, 50, 5),
                // Socket 3, lingertop's own: its own close stays its own.
                by(ev(1, 3, CLOSE, TCP_SYN_SENT, 0, 50, 1), "lingertop"),
                by(
                    ev(1, 3, TCP_SYN_SENT, TCP_ESTABLISHED, 0, 50, 2),
                    "lingertop",
                ),
                by(
                    ev(1, 3, TCP_ESTABLISHED, TCP_FIN_WAIT1, 0, 50, 3),
                    "lingertop",
                ),
                ev(4, 3, CLOSE, CLOSE, 0, 50, 4),
            ],
        );
        let got: Vec<_> = closes
            .iter()
            .map(|c| {
                (
                    c.owner.as_ref().map(|o| o.pid),
                    c.kind,
                    c.action.as_ref().map(|a| a.pid),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (Some(10), CloseKind::GracefulPassive, Some(50)),
                (Some(11), CloseKind::ResetSent, Some(50)),
                (Some(50), CloseKind::GracefulActive, None),
            ]
        );
    }

    #[test]
    fn other_namespaces_are_left_out() {
        let mut j = Joiner::new(Some(1));
        assert!(j.handle(&ev(1, 5, CLOSE, TCP_SYN_SENT, 0, 2, 10)).is_none());
        assert_eq!(j.tracked(), 0);
    }
}
