//! Joins successive snapshots into connection histories: when each connection was first
//! seen, which state it is in and since when, the states it went through, who owned it last;
//! and a ring buffer of per-state counts for history views and rates.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime};

use rustc_hash::FxHashMap;

use super::connection::{Attribution, Connection, Owner, Owners, Snapshot, Tracking, Tuple};
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

/// One connection's history, kept compact: the tracker holds one per socket of the machine
/// (56 bytes, stored in the hash table itself, where the plain layout took 104 bytes plus
/// an allocation of its own; the owners list is shared with the snapshots).
#[derive(Clone, Debug)]
struct Tracked {
    inode: u32,
    /// Times as [`Nanos`].
    first_seen: Nanos,
    state_since: Nanos,
    seen_in_poll: u64,
    /// Boxed slices: no allocation while empty, as nearly always.
    previous: Box<[(TcpState, Nanos)]>,
    /// Owners at the last poll that had any.
    last_owners: Owners,
    state: TcpState,
    state_start_observed: bool,
}

/// A time as nanoseconds since the Unix epoch: half the size of a `SystemTime`, and exact for
/// every time from 1970 to 2554 (an earlier clock reads as 1970).
type Nanos = u64;

fn nanos(t: SystemTime) -> Nanos {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn time(n: Nanos) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_nanos(n)
}

/// The connections seen on one 4-tuple: nearly always one, kept inline; several for
/// reuseport listeners, or a new socket on a tuple whose last one has not vanished yet.
#[derive(Clone, Debug)]
enum Slot {
    One(Tracked),
    Many(Vec<Tracked>),
}

impl Slot {
    fn as_slice(&self) -> &[Tracked] {
        match self {
            Slot::One(t) => std::slice::from_ref(t),
            Slot::Many(v) => v,
        }
    }

    fn as_mut_slice(&mut self) -> &mut [Tracked] {
        match self {
            Slot::One(t) => std::slice::from_mut(t),
            Slot::Many(v) => v,
        }
    }

    /// Adds `t` and returns it.
    fn push(&mut self, t: Tracked) -> &mut Tracked {
        match self {
            Slot::Many(v) if v.is_empty() => *self = Slot::One(t),
            Slot::Many(v) => v.push(t),
            Slot::One(_) => {
                if let Slot::One(first) = std::mem::replace(self, Slot::Many(Vec::new())) {
                    *self = Slot::Many(vec![first, t]);
                }
            }
        }
        self.as_mut_slice().last_mut().expect("just pushed")
    }

    /// Keeps the connections `keep` says to; false when none is left.
    fn retain(&mut self, mut keep: impl FnMut(&Tracked) -> bool) -> bool {
        match self {
            Slot::One(t) => keep(t),
            Slot::Many(v) => {
                v.retain(|t| keep(t));
                if v.len() == 1 {
                    if let Some(t) = v.pop() {
                        *self = Slot::One(t);
                    }
                    return true;
                }
                !v.is_empty()
            }
        }
    }
}

/// Follows connections across polls. Feed it every snapshot, unfiltered, in order.
#[derive(Debug)]
pub struct Tracker {
    by_tuple: FxHashMap<Tuple, Slot>,
    history: VecDeque<Sample>,
    history_len: usize,
    polls: u64,
}

impl Tracker {
    /// A tracker keeping `history_len` samples of per-state counts.
    pub fn new(history_len: usize) -> Self {
        Tracker {
            by_tuple: FxHashMap::default(),
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

    /// Annotates `snap` with tracking and attribution, and returns what changed since the
    /// previous snapshot (nothing "appeared" on the first one: everything did).
    pub fn observe(&mut self, snap: &mut Snapshot) -> Vec<Transition> {
        self.polls += 1;
        let poll = self.polls;
        let first_poll = poll == 1;
        let now = snap.taken_at;
        let now_nanos = nanos(now);
        let mut transitions = Vec::new();

        for conn in &mut snap.connections {
            let entries = self
                .by_tuple
                .entry(conn.tuple().clone())
                .or_insert_with(|| Slot::Many(Vec::new()));
            let found = find_match(entries.as_slice(), conn.inode, poll);
            let tracked = match found {
                Some(i) => {
                    let t = &mut entries.as_mut_slice()[i];
                    if t.state != conn.state {
                        transitions.push(Transition {
                            at: now,
                            local: conn.local(),
                            remote: conn.remote(),
                            from: Some(t.state),
                            to: Some(conn.state),
                            owner: conn.owners.first().or(t.last_owners.first()).cloned(),
                        });
                        let mut previous = std::mem::take(&mut t.previous).into_vec();
                        if previous.len() == MAX_PREVIOUS {
                            previous.remove(0);
                        }
                        previous.push((t.state, t.state_since));
                        t.previous = previous.into_boxed_slice();
                        t.state = conn.state;
                        t.state_since = now_nanos;
                        t.state_start_observed = true;
                    }
                    t.inode = conn.inode;
                    t
                }
                None => {
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
                    entries.push(Tracked {
                        inode: conn.inode,
                        state: conn.state,
                        first_seen: now_nanos,
                        state_since: now_nanos,
                        state_start_observed: !first_poll,
                        previous: Box::default(),
                        last_owners: Owners::default(),
                        seen_in_poll: poll,
                    })
                }
            };
            tracked.seen_in_poll = poll;
            if !conn.owners.is_empty() {
                tracked.last_owners.clone_from(&conn.owners);
            } else if !tracked.last_owners.is_empty() {
                conn.owners.clone_from(&tracked.last_owners);
                conn.attribution = Some(Attribution::LastOwner);
            }
            conn.tracking = Some(Tracking {
                first_seen: time(tracked.first_seen),
                state_since: time(tracked.state_since),
                state_start_observed: tracked.state_start_observed,
                previous: tracked
                    .previous
                    .iter()
                    .map(|&(state, at)| (state, time(at)))
                    .collect(),
            });
        }

        self.by_tuple.retain(|key, entries| {
            entries.retain(|t| {
                let alive = t.seen_in_poll == poll;
                if !alive {
                    let (local, remote) = key.ends();
                    transitions.push(Transition {
                        at: now,
                        local,
                        remote,
                        from: Some(t.state),
                        to: None,
                        owner: t.last_owners.first().cloned(),
                    });
                }
                alive
            })
        });

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

/// The entry for an observation with `inode`: the same inode, or, for an observation
/// without one, the socket that held this 4-tuple with a file before its file was closed.
fn find_match(entries: &[Tracked], inode: u32, poll: u64) -> Option<usize> {
    let unclaimed = |t: &&Tracked| t.seen_in_poll != poll;
    entries
        .iter()
        .position(|t| t.inode == inode && unclaimed(&t))
        .or_else(|| {
            if inode == 0 {
                entries.iter().position(|t| t.inode != 0 && unclaimed(&t))
            } else {
                None
            }
        })
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

    #[test]
    fn time_wait_inherits_the_owner_it_had_when_established() {
        let mut tr = Tracker::new(10);
        let mut s1 = snap(
            0,
            vec![conn(
                "10.0.0.1:40000",
                "10.0.0.2:80",
                TcpState::Established,
                77,
                Some(42),
            )],
        );
        tr.observe(&mut s1);
        let mut s2 = snap(
            5,
            vec![conn(
                "10.0.0.1:40000",
                "10.0.0.2:80",
                TcpState::TimeWait,
                0,
                None,
            )],
        );
        let tr2 = tr.observe(&mut s2);
        let c = &s2.connections[0];
        assert_eq!(c.owner().map(|o| o.pid), Some(42));
        assert_eq!(c.attribution, Some(Attribution::LastOwner));
        let t = c.tracking.as_ref().unwrap();
        assert_eq!(t.first_seen, at(0));
        assert_eq!(t.state_since, at(5));
        assert_eq!(*t.previous, [(TcpState::Established, at(0))]);
        assert_eq!(
            tr2.iter().map(|t| (t.from, t.to)).collect::<Vec<_>>(),
            vec![(Some(TcpState::Established), Some(TcpState::TimeWait))]
        );
    }

    #[test]
    fn ages_are_unknown_on_the_first_poll_and_lower_bounds_after() {
        let mut tr = Tracker::new(10);
        let mut s1 = snap(
            0,
            vec![conn(
                "127.0.0.1:5000",
                "127.0.0.1:40000",
                TcpState::CloseWait,
                9,
                Some(1),
            )],
        );
        tr.observe(&mut s1);
        assert_eq!(s1.connections[0].state_age(at(0)), None);
        let mut s2 = snap(
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
        tr.observe(&mut s2);
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
        let mut s1 = snap(
            0,
            vec![conn(
                "10.0.0.1:40000",
                "10.0.0.2:80",
                TcpState::Established,
                5,
                Some(1),
            )],
        );
        tr.observe(&mut s1);
        let mut s2 = snap(
            3,
            vec![conn(
                "10.0.0.1:40000",
                "10.0.0.2:80",
                TcpState::Established,
                6,
                Some(2),
            )],
        );
        let changes = tr.observe(&mut s2);
        let t = s2.connections[0].tracking.as_ref().unwrap();
        assert_eq!(t.first_seen, at(3));
        assert_eq!(changes.len(), 2, "one vanished, one appeared: {changes:?}");
    }

    #[test]
    fn reuseport_listeners_are_tracked_apart_and_vanished_ones_reported() {
        let mut tr = Tracker::new(10);
        let mut s1 = snap(
            0,
            vec![
                conn("0.0.0.0:80", "0.0.0.0:0", TcpState::Listen, 1, Some(10)),
                conn("0.0.0.0:80", "0.0.0.0:0", TcpState::Listen, 2, Some(11)),
            ],
        );
        tr.observe(&mut s1);
        let mut s2 = snap(
            1,
            vec![conn(
                "0.0.0.0:80",
                "0.0.0.0:0",
                TcpState::Listen,
                2,
                Some(11),
            )],
        );
        let changes = tr.observe(&mut s2);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].to, None);
        assert_eq!(changes[0].owner.as_ref().map(|o| o.pid), Some(10));
    }

    #[test]
    fn server_side_time_wait_is_attributed_to_the_listener() {
        let mut tr = Tracker::new(10);
        let mut s = snap(
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
        tr.observe(&mut s);
        assert_eq!(s.connections[1].attribution, Some(Attribution::Listener));
        assert_eq!(s.connections[1].owner().map(|o| o.pid), Some(99));
        assert_eq!(s.connections[2].attribution, None);
        assert!(s.connections[2].owners.is_empty());
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
            tr.observe(&mut snap(t, conns));
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
