//! Unit tests of the parent module.

use super::*;
use std::time::Duration;

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
}

fn conn(local: &str, remote: &str, state: TcpState, inode: u32, pid: Option<u32>) -> Connection {
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
fn one_four_tuple_in_two_namespaces_is_two_connections() {
    use crate::model::Tuple;
    let ends = (
        "127.0.0.1:40000".parse().unwrap(),
        "127.0.0.1:80".parse().unwrap(),
    );
    let in_ns = |ns, state| Connection::on(Tuple::in_netns(ends.0, ends.1, ns), state);
    let mut tr = Tracker::new(10);
    step(
        &mut tr,
        snap(
            0,
            vec![
                in_ns(1, TcpState::Established),
                in_ns(2, TcpState::Established),
            ],
        ),
    );
    // Namespace 1's closes; namespace 2's goes on: neither is taken for the other.
    let (s, changes) = step(
        &mut tr,
        snap(
            5,
            vec![
                in_ns(2, TcpState::Established),
                in_ns(1, TcpState::CloseWait),
            ],
        ),
    );
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(
        (changes[0].netns, changes[0].from, changes[0].to),
        (1, Some(TcpState::Established), Some(TcpState::CloseWait))
    );
    let since = |ns| {
        s.connections
            .iter()
            .find(|c| c.netns() == ns)
            .and_then(|c| c.tracking.as_ref())
            .map(|t| t.state_since())
    };
    assert_eq!((since(1), since(2)), (Some(at(5)), Some(at(0))));
    // It vanishes from namespace 2 only.
    let (_, changes) = step(&mut tr, snap(10, vec![in_ns(1, TcpState::CloseWait)]));
    assert_eq!(
        changes
            .iter()
            .map(|t| (t.netns, t.from, t.to))
            .collect::<Vec<_>>(),
        [(2, Some(TcpState::Established), None)]
    );
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
        found_owners: Vec::new(),
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
        found_owners: Vec::new(),
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
        found_owners: Vec::new(),
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

/// A short client connection whose owner lookup the rate limit deferred at the poll that
/// found it: the next poll leaves ESTABLISHED out but its scan finds the owner; the poll
/// after finds the socket in TIME_WAIT without a file. Every later line names the owner.
#[test]
fn a_pending_owner_found_by_a_read_that_left_its_state_out_is_carried_to_its_close() {
    let mut tr = Tracker::new(10);
    let client = |state, inode| {
        let mut c = conn("127.0.0.1:40000", "127.0.0.1:80", state, inode, None);
        if inode != 0 {
            c.attribution = Some(Attribution::Pending);
        }
        c
    };
    step(&mut tr, snap(0, vec![]));
    let (_, appeared) = step(&mut tr, snap(1, vec![client(TcpState::Established, 9)]));
    assert_eq!(kinds(&appeared), [(None, Some(TcpState::Established))]);
    assert_eq!(appeared[0].owner, None, "nobody named yet: pending");
    // ESTABLISHED left out; this poll's scan found inode 9 held by pid 7.
    let mut partial = without_established(2, vec![]);
    let owners: Owners = vec![Owner {
        pid: 7,
        name: Some("ab".into()),
    }]
    .into();
    partial.unread.as_mut().unwrap().found_owners = vec![(9, owners)];
    let (s, named) = step(&mut tr, partial);
    assert_eq!(
        kinds(&named),
        [(Some(TcpState::Established), Some(TcpState::Established))],
        "an owner line: same state, owner named"
    );
    assert_eq!(named[0].owner.as_ref().map(|o| o.pid), Some(7));
    assert_eq!(s.connections[0].attribution, Some(Attribution::Owner));
    // It closed: TIME_WAIT, no file. The change names the owner it had.
    let (s, changed) = step(&mut tr, snap(3, vec![client(TcpState::TimeWait, 0)]));
    assert_eq!(
        kinds(&changed),
        [(Some(TcpState::Established), Some(TcpState::TimeWait))]
    );
    assert_eq!(changed[0].owner.as_ref().map(|o| o.pid), Some(7));
    assert_eq!(s.connections[0].attribution, Some(Attribution::LastOwner));
}

/// With the kernel's events, a connection no scan named (its lookup deferred, then its file
/// gone) is named by its cookie in every transition, from the first.
#[test]
fn the_kernel_events_name_by_cookie_what_no_scan_could() {
    let mut tr = Tracker::new(10);
    let client = |state, inode| {
        let mut c = conn("127.0.0.1:40001", "127.0.0.1:80", state, inode, None);
        c.cookie = 0xc0ffee;
        if inode != 0 {
            c.attribution = Some(Attribution::Pending);
        }
        c
    };
    let ab: Owners = vec![Owner {
        pid: 8,
        name: Some("ab".into()),
    }]
    .into();
    let mut known = |cookie: u64| (cookie == 0xc0ffee).then(|| ab.clone());
    let mut observe = |tr: &mut Tracker, mut s: Snapshot| {
        let changes = tr.observe_known(&mut s, &mut known);
        let s = Arc::new(s);
        tr.keep(s.clone());
        (s, changes)
    };
    observe(&mut tr, snap(0, vec![]));
    let (s, appeared) = observe(&mut tr, snap(1, vec![client(TcpState::Established, 9)]));
    assert_eq!(appeared[0].owner.as_ref().map(|o| o.pid), Some(8));
    assert_eq!(s.connections[0].attribution, Some(Attribution::Event));
    let (_, changed) = observe(&mut tr, snap(2, vec![client(TcpState::TimeWait, 0)]));
    assert_eq!(changed[0].owner.as_ref().map(|o| o.pid), Some(8));
    // A socket the events never saw stays unnamed, and a scan's owner is never replaced.
    let mut other = conn(
        "127.0.0.1:40002",
        "127.0.0.1:80",
        TcpState::TimeWait,
        0,
        None,
    );
    other.cookie = 1;
    let owned = conn(
        "127.0.0.1:40003",
        "127.0.0.1:80",
        TcpState::Established,
        5,
        Some(3),
    );
    let (s, _) = observe(&mut tr, snap(3, vec![other, owned]));
    assert!(s.connections[0].owners.is_empty());
    assert_eq!(s.connections[1].owner().map(|o| o.pid), Some(3));
    assert_eq!(s.connections[1].attribution, Some(Attribution::Owner));
}
