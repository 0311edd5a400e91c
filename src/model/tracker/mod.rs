//! Joins successive snapshots into connection histories: when each connection was first
//! seen, which state it is in and since when, the states it went through, who owned it last;
//! and a ring buffer of per-state counts for history views and rates.
//!
//! The tracker keeps no table of its own: what it knows of a connection travels in the
//! connection itself ([`Tracking`], its owners), and each poll is joined to the previous
//! snapshot, which the live loop shares with its consumers anyway. The join walks both in
//! the kernel's order (the socket hash table's, nearly the same from one poll to the next),
//! so nearly every connection finds its predecessor at the next position; the others go
//! through an index of positions, 5 bytes a socket.

use std::collections::VecDeque;
use std::hash::BuildHasher;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::SystemTime;

use hashbrown::HashTable;
use rustc_hash::{FxBuildHasher, FxHashMap};

use super::connection::{Attribution, Connection, Owner, Owners, Snapshot, Tracking, Tuple, nanos};
use super::netns::NetnsId;
use super::state::{StateCounts, TcpState};

/// How many earlier states a connection remembers; closes go through at most five.
const MAX_PREVIOUS: usize = 8;

/// Per-poll figures kept for history and growth rates.
#[derive(Clone, Debug)]
pub struct Sample {
    pub at: SystemTime,
    pub counts: StateCounts,
    /// CLOSE_WAIT connections per owning pid (attributed owners included).
    pub close_wait_by_pid: FxHashMap<u32, u32>,
}

/// A change the tracker observed between two polls: a connection appeared (`from` is
/// `None`), changed state, vanished (`to` is `None`), or, in the same state, had its owner
/// named at last (`from == to`: its owner lookup had been deferred).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub at: SystemTime,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// The network namespace of both ends (an id of the snapshot's table).
    pub netns: NetnsId,
    /// `None`: the connection appeared.
    pub from: Option<TcpState>,
    /// `None`: the connection vanished.
    pub to: Option<TcpState>,
    pub owner: Option<Owner>,
    /// How `owner` is known (for a connection that vanished: as it was last seen).
    pub attribution: Option<Attribution>,
}

/// No position: the end of a chain in [`Join::next`].
const NONE: u32 = u32::MAX;

/// The previous snapshot's connections by 4-tuple, rebuilt per poll in reused buffers.
#[derive(Debug, Default)]
struct Join {
    /// Hash of a 4-tuple -> the position of its first connection in the previous snapshot.
    index: HashTable<u32>,
    /// Position -> the position of the next connection on the same 4-tuple, or [`NONE`]
    /// (reuseport listeners; a new socket on a tuple whose last one has not vanished yet).
    next: Vec<u32>,
    /// Position -> already matched to a connection of this poll.
    claimed: Vec<bool>,
    /// Whether `index` and `next` describe the current previous snapshot.
    built: bool,
}

fn tuple_hash(c: &Connection) -> u64 {
    FxBuildHasher.hash_one(c.tuple())
}

fn same_tuple(a: &Connection, b: &Connection) -> bool {
    a.tuple() == b.tuple()
}

/// Whether `conn` is certainly the socket `p` was, on the same 4-tuple: the same kernel
/// cookie where both have one (netlink), else the same inode.
fn same_socket(conn: &Connection, p: &Connection) -> bool {
    if conn.cookie != 0 && p.cookie != 0 {
        return conn.cookie == p.cookie;
    }
    p.inode == conn.inode
}

/// Whether `conn`, without a file now, can be `p`, which had one, where no cookies tell:
/// its file was closed (TIME_WAIT, an orphan).
fn lost_its_file(conn: &Connection, p: &Connection) -> bool {
    (conn.cookie == 0 || p.cookie == 0) && conn.inode == 0 && p.inode != 0
}

impl Join {
    /// Starts a poll against `prev`: nothing claimed, the index built on first need.
    fn start(&mut self, prev: &[Connection]) {
        self.claimed.clear();
        self.claimed.resize(prev.len(), false);
        self.built = false;
    }

    fn build(&mut self, prev: &[Connection]) {
        self.index.clear();
        self.index
            .reserve(prev.len(), |&i| tuple_hash(&prev[i as usize]));
        self.next.clear();
        self.next.resize(prev.len(), NONE);
        // From the end, so each chain runs from the earliest position to the latest.
        for (i, c) in prev.iter().enumerate().rev() {
            let h = tuple_hash(c);
            let pos = u32::try_from(i).expect("fewer than 4 billion sockets");
            match self
                .index
                .find_mut(h, |&j| same_tuple(&prev[j as usize], c))
            {
                Some(head) => {
                    self.next[i] = *head;
                    *head = pos;
                }
                None => {
                    self.index
                        .insert_unique(h, pos, |&j| tuple_hash(&prev[j as usize]));
                }
            }
        }
        self.built = true;
    }

    /// The position in `prev` of `conn`'s predecessor, claimed: the unclaimed connection on
    /// the same 4-tuple with the same cookie (netlink) or, without cookies, the same inode,
    /// or one that had a file where `conn` has none (its file was closed: TIME_WAIT, an
    /// orphan). A new socket on a reused 4-tuple has a new cookie: it is a new connection,
    /// never the old one changing state. `hint` is where the kernel's order says to look
    /// first.
    fn claim(&mut self, prev: &[Connection], conn: &Connection, hint: usize) -> Option<usize> {
        if let Some(p) = prev.get(hint) {
            if !self.claimed[hint] && same_tuple(p, conn) && same_socket(conn, p) {
                self.claimed[hint] = true;
                return Some(hint);
            }
        }
        if prev.is_empty() {
            return None;
        }
        if !self.built {
            self.build(prev);
        }
        let head = *self
            .index
            .find(tuple_hash(conn), |&j| same_tuple(&prev[j as usize], conn))?;
        let chain = || {
            std::iter::successors(Some(head), |&i| {
                Some(self.next[i as usize]).filter(|&n| n != NONE)
            })
            .map(|i| i as usize)
            .filter(|&i| !self.claimed[i])
        };
        let found = chain()
            .find(|&i| same_socket(conn, &prev[i]))
            .or_else(|| chain().find(|&i| lost_its_file(conn, &prev[i])))?;
        self.claimed[found] = true;
        Some(found)
    }
}

/// Follows connections across polls. Feed it every snapshot, unfiltered, in order: each one
/// to [`Tracker::observe`], then, once final, to [`Tracker::keep`].
#[derive(Debug)]
pub struct Tracker {
    /// The last snapshot kept: what the next one is joined to.
    prev: Option<Arc<Snapshot>>,
    join: Join,
    /// Connections last seen opening (SYN_SENT, SYN_RECV) while ESTABLISHED goes unread:
    /// they may be ESTABLISHED now, so they are kept out of sight, neither shown nor
    /// reported vanished, until a poll finds them or a poll that reads ESTABLISHED does not.
    limbo: FxHashMap<Tuple, Vec<Connection>>,
    history: VecDeque<Sample>,
    history_len: usize,
    polls: u64,
}

impl Tracker {
    /// A tracker keeping `history_len` samples of per-state counts.
    pub fn new(history_len: usize) -> Self {
        Tracker {
            prev: None,
            join: Join::default(),
            limbo: FxHashMap::default(),
            history: VecDeque::with_capacity(history_len.min(4096)),
            history_len: history_len.max(1),
            polls: 0,
        }
    }

    /// Number of snapshots observed so far.
    pub fn polls(&self) -> u64 {
        self.polls
    }

    /// The samples kept, oldest first.
    pub fn history(&self) -> &VecDeque<Sample> {
        &self.history
    }

    /// Keeps `snap`, the snapshot last observed in its final form, as the one the next poll
    /// is joined to. Shared with whoever shows it: the tracker holds no copy of its own.
    pub fn keep(&mut self, snap: Arc<Snapshot>) {
        self.prev = Some(snap);
    }

    /// Annotates `snap` with tracking and attribution, and returns what changed since the
    /// snapshot last kept (nothing "appeared" on the first one: everything did).
    pub fn observe(&mut self, snap: &mut Snapshot) -> Vec<Transition> {
        self.observe_known(snap, &mut |_| None)
    }

    /// As [`Tracker::observe`], with `known` asked for the owners of a connection (by its
    /// kernel cookie) that neither the socket table nor an earlier poll names: the kernel's
    /// events saw who acted on it (see `events::EventOwners`). Its answer is used before any
    /// transition is made, so every transition of such a connection names its owner.
    pub fn observe_known(
        &mut self,
        snap: &mut Snapshot,
        known: &mut dyn FnMut(u64) -> Option<Owners>,
    ) -> Vec<Transition> {
        self.polls += 1;
        let first_poll = self.polls == 1;
        let now = snap.taken_at;
        let mut transitions = Vec::new();
        // Released at the end of this call: a snapshot not kept again is not held twice.
        let prev_snap = self.prev.take();
        let prev: &[Connection] = prev_snap.as_deref().map_or(&[], |s| &s.connections);
        self.join.start(prev);

        let mut limbo = std::mem::take(&mut self.limbo);
        let mut hint = 0;
        for conn in &mut snap.connections {
            let Some(i) = self.join.claim(prev, conn, hint) else {
                if let Some(p) = limbo.get_mut(conn.tuple()).and_then(|on_tuple| {
                    let j = on_tuple.iter().position(|p| succeeds(conn, p))?;
                    Some(on_tuple.swap_remove(j))
                }) {
                    follow(conn, &p, now, &mut transitions, known);
                    continue;
                }
                ask_events(conn, known);
                if !first_poll {
                    transitions.push(Transition {
                        at: now,
                        local: conn.local(),
                        remote: conn.remote(),
                        netns: conn.netns(),
                        from: None,
                        to: Some(conn.state),
                        owner: conn.owners.first().cloned(),
                        attribution: conn.attribution,
                    });
                }
                // Seen first now: at its state's start, unless this is the first poll; the
                // kernel's bound (the collector's seed) wins where it is older.
                let mut t = Tracking::new(now, now, !first_poll);
                t.absorb(conn.tracking.as_ref());
                conn.tracking = Some(t);
                continue;
            };
            hint = i + 1;
            follow(conn, &prev[i], now, &mut transitions, known);
        }

        // States this poll did not read: their connections as last read, unless the poll
        // saw them in another state (then they were claimed above).
        let established_unread = snap
            .unread
            .as_ref()
            .is_some_and(|u| u.contains(TcpState::Established));
        if let Some(unread) = &mut snap.unread {
            unread.last_read = match prev_snap.as_deref() {
                Some(p) if p.unread.is_some() => p.unread.as_ref().and_then(|u| u.last_read),
                Some(p) => Some(p.taken_at),
                None => None,
            };
            let carried = prev
                .iter()
                .zip(&self.join.claimed)
                .filter(|(p, claimed)| !**claimed && unread.contains(p.state))
                .count();
            snap.connections.reserve(carried);
            let found: FxHashMap<u32, &Owners> = unread
                .found_owners
                .iter()
                .map(|(inode, owners)| (*inode, owners))
                .collect();
            for (p, claimed) in prev.iter().zip(&mut self.join.claimed) {
                if !*claimed && unread.contains(p.state) {
                    *claimed = true;
                    let mut c = p.clone();
                    // Its deferred lookup was made by this poll's scan, or the kernel's
                    // events know who acted on it: said now, not at the next read of its
                    // state (by then it may have no file left to look up).
                    if c.owner_pending() {
                        if let Some(owners) = found.get(&c.inode) {
                            c.owners = (*owners).clone();
                            c.attribution = Some(Attribution::Owner);
                        } else {
                            ask_events(&mut c, known);
                        }
                        if !c.owner_pending() {
                            transitions.push(owner_found(&c, now));
                        }
                    }
                    snap.connections.push(c);
                }
            }
        }
        // Opening connections not seen again may be ESTABLISHED, unread: out of sight until
        // a read of ESTABLISHED settles it.
        if established_unread {
            for (p, claimed) in prev.iter().zip(&mut self.join.claimed) {
                if !*claimed && matches!(p.state, TcpState::SynSent | TcpState::SynRecv) {
                    *claimed = true;
                    limbo.entry(p.tuple().clone()).or_default().push(p.clone());
                }
            }
            limbo.retain(|_, on_tuple| !on_tuple.is_empty());
            self.limbo = limbo;
        } else {
            for p in limbo.values().flatten() {
                transitions.push(vanished(p, now));
            }
        }
        for (p, _) in prev
            .iter()
            .zip(&self.join.claimed)
            .filter(|(_, claimed)| !**claimed)
        {
            transitions.push(vanished(p, now));
        }

        attribute_to_listeners(&mut snap.connections);
        self.record_sample(snap);
        transitions
    }

    fn record_sample(&mut self, snap: &Snapshot) {
        let mut close_wait_by_pid = FxHashMap::default();
        for c in &snap.connections {
            if c.state == TcpState::CloseWait {
                if let Some(o) = c.owner() {
                    *close_wait_by_pid.entry(o.pid).or_insert(0) += 1;
                }
            }
        }
        if self.history.len() == self.history_len {
            self.history.pop_front();
        }
        self.history.push_back(Sample {
            at: snap.taken_at,
            counts: snap.counts(),
            close_wait_by_pid,
        });
    }
}

/// Carries what `p`, the same connection at an earlier poll, knew into `conn`: its owners
/// when it has none now, its tracking, and the change of state if there is one.
fn follow(
    conn: &mut Connection,
    p: &Connection,
    now: SystemTime,
    transitions: &mut Vec<Transition>,
    known: &mut dyn FnMut(u64) -> Option<Owners>,
) {
    if let (true, Some(held)) = (conn.owners.is_empty(), held_owners(p)) {
        conn.owners.clone_from(held);
        conn.attribution = Some(Attribution::LastOwner);
    }
    ask_events(conn, known);
    // A lookup deferred at an earlier poll named the owner now, with no change of state
    // to say it with.
    if p.owner_pending() && !conn.owners.is_empty() && p.state == conn.state {
        transitions.push(owner_found(conn, now));
    }
    let known = p
        .tracking
        .clone()
        .unwrap_or_else(|| Tracking::new(now, now, false));
    // The kernel's bound from this read, if the collector found one.
    let seed = conn.tracking.take();
    let mut tracking = if p.state == conn.state {
        known
    } else {
        transitions.push(Transition {
            at: now,
            local: conn.local(),
            remote: conn.remote(),
            netns: conn.netns(),
            from: Some(p.state),
            to: Some(conn.state),
            owner: conn.owners.first().cloned(),
            attribution: conn.attribution,
        });
        known.entering(p.state, nanos(now), MAX_PREVIOUS)
    };
    tracking.absorb(seed.as_ref());
    conn.tracking = Some(tracking);
}

/// Gives `conn`, owned by nobody the socket table or an earlier poll names, the owner the
/// kernel's events know by its cookie; returns whether it got one.
fn ask_events(conn: &mut Connection, known: &mut dyn FnMut(u64) -> Option<Owners>) -> bool {
    if !conn.owners.is_empty() || conn.cookie == 0 {
        return false;
    }
    match known(conn.cookie) {
        Some(owners) if !owners.is_empty() => {
            conn.owners = owners;
            conn.attribution = Some(Attribution::Event);
            true
        }
        _ => false,
    }
}

/// The transition that says a connection's owner became known while its state stayed.
fn owner_found(c: &Connection, now: SystemTime) -> Transition {
    Transition {
        at: now,
        local: c.local(),
        remote: c.remote(),
        netns: c.netns(),
        from: Some(c.state),
        to: Some(c.state),
        owner: c.owners.first().cloned(),
        attribution: c.attribution,
    }
}

/// Whether `conn` can be the same connection as `p` (seen earlier): the same 4-tuple, and
/// the same socket, or none now where it had one (see [`Join::claim`]).
fn succeeds(conn: &Connection, p: &Connection) -> bool {
    same_tuple(conn, p) && (same_socket(conn, p) || lost_its_file(conn, p))
}

/// `p` is gone.
fn vanished(p: &Connection, now: SystemTime) -> Transition {
    Transition {
        at: now,
        local: p.local(),
        remote: p.remote(),
        netns: p.netns(),
        from: Some(p.state),
        to: None,
        // As last seen: the socket's holder, or the listener it was attributed to.
        owner: p.owners.first().cloned(),
        attribution: match p.attribution {
            Some(Attribution::Owner) => Some(Attribution::LastOwner),
            other => other,
        },
    }
}

/// The processes that held `c`, now or at an earlier poll (not a listener it is only
/// attributed to); `None` when there are none.
fn held_owners(c: &Connection) -> Option<&Owners> {
    (c.attribution != Some(Attribution::Listener) && !c.owners.is_empty()).then_some(&c.owners)
}

/// Gives each connection that has no owner the owners of the socket listening on its local
/// port (same address, or a wildcard one), marking it as the server side of that listener.
fn attribute_to_listeners(conns: &mut [Connection]) {
    /// The listeners on a port: their address and owners.
    type OnPort = Vec<(IpAddr, Owners)>;
    let mut listeners: FxHashMap<u16, OnPort> = FxHashMap::default();
    for c in conns.iter() {
        if c.state == TcpState::Listen && !c.owners.is_empty() {
            listeners
                .entry(c.local().port())
                .or_default()
                .push((c.local().ip(), c.owners.clone()));
        }
    }
    if listeners.is_empty() {
        return;
    }
    for c in conns.iter_mut() {
        if !c.owners.is_empty() || c.state == TcpState::Listen {
            continue;
        }
        let Some(candidates) = listeners.get(&c.local().port()) else {
            continue;
        };
        let ip = c.local().ip();
        let hit = candidates
            .iter()
            .find(|(lip, _)| *lip == ip)
            .or_else(|| candidates.iter().find(|(lip, _)| lip.is_unspecified()));
        if let Some((_, owners)) = hit {
            c.owners.clone_from(owners);
            c.attribution = Some(Attribution::Listener);
        }
    }
}

#[cfg(test)]
mod tests;
