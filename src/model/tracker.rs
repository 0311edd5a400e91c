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

/// A change the tracker observed between two polls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub at: SystemTime,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// `None`: the connection appeared.
    pub from: Option<TcpState>,
    /// `None`: the connection vanished.
    pub to: Option<TcpState>,
    pub owner: Option<Owner>,
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
                    follow(conn, &p, now, &mut transitions);
                    continue;
                }
                if !first_poll {
                    transitions.push(Transition {
                        at: now,
                        local: conn.local(),
                        remote: conn.remote(),
                        from: None,
                        to: Some(conn.state),
                        owner: conn.owners.first().cloned(),
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
            follow(conn, &prev[i], now, &mut transitions);
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
            for (p, claimed) in prev.iter().zip(&mut self.join.claimed) {
                if !*claimed && unread.contains(p.state) {
                    *claimed = true;
                    snap.connections.push(p.clone());
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
) {
    if let (true, Some(held)) = (conn.owners.is_empty(), held_owners(p)) {
        conn.owners.clone_from(held);
        conn.attribution = Some(Attribution::LastOwner);
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
            from: Some(p.state),
            to: Some(conn.state),
            owner: conn.owners.first().cloned(),
        });
        known.entering(p.state, nanos(now), MAX_PREVIOUS)
    };
    tracking.absorb(seed.as_ref());
    conn.tracking = Some(tracking);
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
        from: Some(p.state),
        to: None,
        owner: held_owners(p).and_then(|o| o.first()).cloned(),
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
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    fn conn(
        local: &str,
        remote: &str,
        state: TcpState,
        inode: u32,
        pid: Option<u32>,
    ) -> Connection {
        let mut c = Connection::new(local.parse().unwrap(), remote.parse().unwrap(), state);
        c.inode = inode;
        if let Some(pid) = pid {
            c.owners = vec![Owner {
                pid,
                name: Some("app".into()),
            }]
            .into();
            c.attribution = Some(Attribution::Owner);
        }
        c
    }

    fn snap(t: u64, connections: Vec<Connection>) -> Snapshot {
        Snapshot::fixture(at(t), connections)
    }

    /// One poll as the live loop runs it: observed, then kept for the next.
    fn step(tr: &mut Tracker, mut s: Snapshot) -> (Arc<Snapshot>, Vec<Transition>) {
        let changes = tr.observe(&mut s);
        let s = Arc::new(s);
        tr.keep(s.clone());
        (s, changes)
    }

    #[test]
    fn time_wait_inherits_the_owner_it_had_when_established() {
        let mut tr = Tracker::new(10);
        let s1 = snap(
            0,
            vec![conn(
                "10.0.0.1:40000",
                "10.0.0.2:80",
                TcpState::Established,
                77,
                Some(42),
            )],
        );
        step(&mut tr, s1);
        let s2 = snap(
            5,
            vec![conn(
                "10.0.0.1:40000",
                "10.0.0.2:80",
                TcpState::TimeWait,
                0,
                None,
            )],
        );
        let (s2, tr2) = step(&mut tr, s2);
        let c = &s2.connections[0];
        assert_eq!(c.owner().map(|o| o.pid), Some(42));
        assert_eq!(c.attribution, Some(Attribution::LastOwner));
        let t = c.tracking.as_ref().unwrap();
        assert_eq!(t.first_seen(), at(0));
        assert_eq!(t.state_since(), at(5));
        assert_eq!(
            t.previous().collect::<Vec<_>>(),
            [(TcpState::Established, at(0))]
        );
        assert_eq!(
            tr2.iter().map(|t| (t.from, t.to)).collect::<Vec<_>>(),
            vec![(Some(TcpState::Established), Some(TcpState::TimeWait))]
        );
    }

    #[test]
    fn ages_are_unknown_on_the_first_poll_and_lower_bounds_after() {
        let mut tr = Tracker::new(10);
        let s1 = snap(
            0,
            vec![conn(
                "127.0.0.1:5000",
                "127.0.0.1:40000",
                TcpState::CloseWait,
                9,
                Some(1),
            )],
        );
        let s1 = step(&mut tr, s1).0;
        assert_eq!(s1.connections[0].state_age(at(0)), None);
        let s2 = snap(
            7,
            vec![
                conn(
                    "127.0.0.1:5000",
                    "127.0.0.1:40000",
                    TcpState::CloseWait,
                    9,
                    Some(1),
                ),
                conn(
                    "127.0.0.1:5000",
                    "127.0.0.1:40001",
                    TcpState::CloseWait,
                    10,
                    Some(1),
                ),
            ],
        );
        let s2 = step(&mut tr, s2).0;
        assert_eq!(
            s2.connections[0].state_age(at(7)),
            Some(Duration::from_secs(7))
        );
        // Appeared between polls: it entered the state at most one interval ago.
        assert_eq!(s2.connections[1].state_age(at(7)), Some(Duration::ZERO));
    }

    #[test]
    fn a_new_inode_on_the_same_tuple_is_a_new_connection() {
        let mut tr = Tracker::new(10);
        let s1 = snap(
            0,
            vec![conn(
                "10.0.0.1:40000",
                "10.0.0.2:80",
                TcpState::Established,
                5,
                Some(1),
            )],
        );
        step(&mut tr, s1);
        let s2 = snap(
            3,
            vec![conn(
                "10.0.0.1:40000",
                "10.0.0.2:80",
                TcpState::Established,
                6,
                Some(2),
            )],
        );
        let (s2, changes) = step(&mut tr, s2);
        let t = s2.connections[0].tracking.as_ref().unwrap();
        assert_eq!(t.first_seen(), at(3));
        assert_eq!(changes.len(), 2, "one vanished, one appeared: {changes:?}");
    }

    #[test]
    fn reuseport_listeners_are_tracked_apart_and_vanished_ones_reported() {
        let mut tr = Tracker::new(10);
        let s1 = snap(
            0,
            vec![
                conn("0.0.0.0:80", "0.0.0.0:0", TcpState::Listen, 1, Some(10)),
                conn("0.0.0.0:80", "0.0.0.0:0", TcpState::Listen, 2, Some(11)),
            ],
        );
        step(&mut tr, s1);
        let s2 = snap(
            1,
            vec![conn(
                "0.0.0.0:80",
                "0.0.0.0:0",
                TcpState::Listen,
                2,
                Some(11),
            )],
        );
        let (_, changes) = step(&mut tr, s2);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].to, None);
        assert_eq!(changes[0].owner.as_ref().map(|o| o.pid), Some(10));
    }

    #[test]
    fn server_side_time_wait_is_attributed_to_the_listener() {
        let mut tr = Tracker::new(10);
        let s = snap(
            0,
            vec![
                conn("0.0.0.0:8080", "0.0.0.0:0", TcpState::Listen, 1, Some(99)),
                conn(
                    "10.0.0.1:8080",
                    "10.0.0.9:50000",
                    TcpState::TimeWait,
                    0,
                    None,
                ),
                conn(
                    "10.0.0.1:9090",
                    "10.0.0.9:50001",
                    TcpState::TimeWait,
                    0,
                    None,
                ),
            ],
        );
        let s = step(&mut tr, s).0;
        assert_eq!(s.connections[1].attribution, Some(Attribution::Listener));
        assert_eq!(s.connections[1].owner().map(|o| o.pid), Some(99));
        assert_eq!(s.connections[2].attribution, None);
        assert!(s.connections[2].owners.is_empty());
    }

    #[test]
    fn unread_states_are_carried_until_read_and_moves_out_of_them_still_seen() {
        let mut tr = Tracker::new(10);
        let a = || {
            conn(
                "127.0.0.1:1000",
                "127.0.0.1:80",
                TcpState::Established,
                1,
                Some(5),
            )
        };
        let b = |state| conn("127.0.0.1:1001", "127.0.0.1:80", state, 2, Some(5));
        step(&mut tr, snap(0, vec![a(), b(TcpState::Established)]));
        // A poll that left ESTABLISHED out: `b` moved on and is seen; `a` is carried.
        let mut partial = snap(2, vec![b(TcpState::CloseWait)]);
        partial.unread = Some(crate::model::Unread {
            states: vec![TcpState::Established],
            last_read: None,
        });
        let (s, changes) = step(&mut tr, partial);
        assert_eq!(
            changes.iter().map(|t| (t.from, t.to)).collect::<Vec<_>>(),
            [(Some(TcpState::Established), Some(TcpState::CloseWait))],
            "a carried connection neither vanishes nor changes"
        );
        let states: Vec<_> = s.connections.iter().map(|c| (c.inode, c.state)).collect();
        assert_eq!(
            states,
            [(2, TcpState::CloseWait), (1, TcpState::Established)]
        );
        assert_eq!(
            s.connections[1].tracking.as_ref().unwrap().first_seen(),
            at(0)
        );
        assert_eq!(s.unread.as_ref().unwrap().last_read, Some(at(0)));
        // Another such poll: still as of the last read, not of the poll that carried it.
        let mut partial = snap(4, vec![b(TcpState::CloseWait)]);
        partial.unread = Some(crate::model::Unread {
            states: vec![TcpState::Established],
            last_read: None,
        });
        let (s, changes) = step(&mut tr, partial);
        assert!(changes.is_empty(), "{changes:?}");
        assert_eq!(s.connections.len(), 2);
        assert_eq!(s.unread.as_ref().unwrap().last_read, Some(at(0)));
        // A full read without `a`: now it vanishes.
        let (s, changes) = step(&mut tr, snap(6, vec![b(TcpState::CloseWait)]));
        assert_eq!(s.connections.len(), 1);
        assert_eq!(
            changes.iter().map(|t| (t.from, t.to)).collect::<Vec<_>>(),
            [(Some(TcpState::Established), None)]
        );
    }

    fn without_established(t: u64, conns: Vec<Connection>) -> Snapshot {
        let mut s = snap(t, conns);
        s.unread = Some(crate::model::Unread {
            states: vec![TcpState::Established],
            last_read: None,
        });
        s
    }

    fn kinds(changes: &[Transition]) -> Vec<(Option<TcpState>, Option<TcpState>)> {
        changes.iter().map(|t| (t.from, t.to)).collect()
    }

    #[test]
    fn an_opening_connection_is_kept_out_of_sight_while_established_goes_unread() {
        use TcpState::{Established, SynSent, TimeWait};
        let (l, r) = ("10.0.0.1:40000", "10.0.0.2:80");
        let (l2, r2) = ("10.0.0.1:40001", "10.0.0.2:80");
        let mut tr = Tracker::new(10);
        step(&mut tr, snap(0, vec![]));
        let (_, changes) = step(
            &mut tr,
            without_established(
                1,
                vec![
                    conn(l, r, SynSent, 7, Some(42)),
                    conn(l2, r2, SynSent, 8, Some(43)),
                ],
            ),
        );
        assert_eq!(
            kinds(&changes),
            [(None, Some(SynSent)), (None, Some(SynSent))]
        );
        // Both are ESTABLISHED now, or gone: nothing shown, nothing reported.
        let (s, changes) = step(&mut tr, without_established(2, vec![]));
        assert!(changes.is_empty(), "{changes:?}");
        assert!(s.connections.is_empty());
        // One closes to TIME_WAIT: the same connection, owner kept, history whole.
        let (s, changes) = step(
            &mut tr,
            without_established(3, vec![conn(l, r, TimeWait, 0, None)]),
        );
        assert_eq!(kinds(&changes), [(Some(SynSent), Some(TimeWait))]);
        let tw = &s.connections[0];
        assert_eq!(tw.owner().map(|o| o.pid), Some(42));
        assert_eq!(tw.attribution, Some(Attribution::LastOwner));
        assert_eq!(tw.tracking.as_ref().unwrap().first_seen(), at(1));
        // A read of ESTABLISHED finds the other one, or reports it gone.
        let (s, changes) = step(
            &mut tr,
            snap(
                4,
                vec![
                    conn(l, r, TimeWait, 0, None),
                    conn(l2, r2, Established, 8, Some(43)),
                ],
            ),
        );
        assert_eq!(kinds(&changes), [(Some(SynSent), Some(Established))]);
        assert_eq!(
            s.connections[1].tracking.as_ref().unwrap().first_seen(),
            at(1)
        );
        let mut tr = Tracker::new(10);
        step(&mut tr, snap(0, vec![conn(l, r, SynSent, 7, Some(42))]));
        step(&mut tr, without_established(1, vec![]));
        let (_, changes) = step(&mut tr, snap(2, vec![]));
        assert_eq!(kinds(&changes), [(Some(SynSent), None)]);
    }

    #[test]
    fn a_poll_in_a_different_order_joins_through_the_index() {
        let mut tr = Tracker::new(10);
        let conns: Vec<Connection> = (0..50)
            .map(|i| {
                conn(
                    &format!("127.0.0.1:{}", 2000 + i),
                    "127.0.0.1:80",
                    TcpState::Established,
                    i + 1,
                    Some(5),
                )
            })
            .collect();
        step(&mut tr, snap(0, conns.clone()));
        let mut shuffled: Vec<Connection> = conns.into_iter().rev().collect();
        shuffled.swap(3, 40);
        shuffled[7].state = TcpState::CloseWait;
        let (s, changes) = step(&mut tr, snap(1, shuffled));
        assert_eq!(changes.len(), 1, "only the one that changed: {changes:?}");
        assert!(
            s.connections
                .iter()
                .all(|c| c.tracking.as_ref().unwrap().first_seen() == at(0))
        );
    }

    fn cookied(local: &str, remote: &str, state: TcpState, inode: u32, cookie: u64) -> Connection {
        let mut c = conn(local, remote, state, inode, None);
        c.cookie = cookie;
        c
    }

    #[test]
    fn a_new_cookie_on_a_reused_tuple_is_a_new_connection() {
        use TcpState::{Established, TimeWait};
        let (l, r) = ("127.0.0.1:8080", "127.0.0.1:40000");
        let mut tr = Tracker::new(10);
        step(&mut tr, snap(0, vec![cookied(l, r, TimeWait, 0, 11)]));
        // Not accepted yet, so no file either: only the cookie tells it from the old one.
        let (s, changes) = step(&mut tr, snap(2, vec![cookied(l, r, Established, 0, 12)]));
        assert_eq!(
            kinds(&changes),
            [(None, Some(Established)), (Some(TimeWait), None)],
            "the old one vanished, a new one appeared"
        );
        let t = s.connections[0].tracking.as_ref().unwrap();
        assert_eq!((t.first_seen(), t.previous().len()), (at(2), 0));
        // Its file closed, the same cookie: the same connection moving on.
        let (s, changes) = step(&mut tr, snap(3, vec![cookied(l, r, TimeWait, 0, 12)]));
        assert_eq!(kinds(&changes), [(Some(Established), Some(TimeWait))]);
        assert_eq!(
            s.connections[0].tracking.as_ref().unwrap().first_seen(),
            at(2)
        );
        // A whole new life between two polls, ending in TIME_WAIT as the old one would.
        step(&mut tr, snap(4, vec![cookied(l, r, Established, 9, 13)]));
        let (_, changes) = step(&mut tr, snap(5, vec![cookied(l, r, TimeWait, 0, 14)]));
        assert_eq!(
            kinds(&changes),
            [(None, Some(TimeWait)), (Some(Established), None)]
        );
    }

    #[test]
    fn kernel_seeds_give_ages_on_the_first_poll_and_observation_wins_when_older() {
        use TcpState::{CloseWait, Established};
        let (l, r) = ("127.0.0.1:8080", "127.0.0.1:40000");
        let seeded = |t: u64, state, age_secs: u64| {
            let mut c = cookied(l, r, state, 5, 1);
            c.tracking = Some(Tracking::from_kernel(at(t), Duration::from_secs(age_secs)));
            c
        };
        let mut tr = Tracker::new(10);
        let (s, _) = step(&mut tr, snap(100, vec![seeded(100, Established, 40)]));
        let c = &s.connections[0];
        assert_eq!(c.state_age(at(100)), Some(Duration::from_secs(40)));
        assert_eq!(c.age_source(at(100)), Some(crate::model::AgeSource::Kernel));
        assert_eq!(c.tracking.as_ref().unwrap().first_seen(), at(100));
        // Later reads carry no seed: the kernel's start stays, the age advances.
        let (s, _) = step(&mut tr, snap(110, vec![cookied(l, r, Established, 5, 1)]));
        assert_eq!(
            s.connections[0].state_age(at(110)),
            Some(Duration::from_secs(50))
        );
        // Seen to change at 120: observed; a younger kernel bound does not override it.
        let (s, _) = step(&mut tr, snap(120, vec![seeded(120, CloseWait, 0)]));
        let c = &s.connections[0];
        assert_eq!(
            c.age_source(at(125)),
            Some(crate::model::AgeSource::Observed)
        );
        assert_eq!(c.state_age(at(125)), Some(Duration::from_secs(5)));
        let history: Vec<_> = c.tracking.as_ref().unwrap().previous().collect();
        assert_eq!(
            history,
            [(Established, at(60))],
            "began when the kernel said"
        );
    }

    #[test]
    fn history_is_a_bounded_ring_of_counts() {
        let mut tr = Tracker::new(3);
        for t in 0..5u64 {
            let conns = (0..t as u32)
                .map(|i| {
                    conn(
                        &format!("127.0.0.1:{}", 5000 + i),
                        "127.0.0.1:1",
                        TcpState::CloseWait,
                        i + 1,
                        Some(7),
                    )
                })
                .collect();
            step(&mut tr, snap(t, conns));
        }
        let h: Vec<u32> = tr
            .history()
            .iter()
            .map(|s| s.counts.get(TcpState::CloseWait))
            .collect();
        assert_eq!(h, vec![2, 3, 4]);
        assert_eq!(
            tr.history().back().unwrap().close_wait_by_pid.get(&7),
            Some(&4)
        );
    }
}
