//! Unit tests of the parent module.

use super::*;
use crate::model::TimerKind;

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
}

fn time_wait(state: TcpState, left: Duration) -> Connection {
    let mut c = Connection::new(
        "127.0.0.1:40000".parse().unwrap(),
        "127.0.0.1:80".parse().unwrap(),
        state,
    );
    c.timer = Some(Timer {
        kind: TimerKind::TimeWait,
        expires_ms: u32::try_from(left.as_millis()).unwrap(),
        retransmits: 0,
    });
    c
}

#[test]
fn tuples_give_back_their_ends_exactly() {
    for (l, r) in [
        ("127.0.0.1:5000", "10.1.2.3:65535"),
        ("0.0.0.0:80", "0.0.0.0:0"),
        ("[::1]:80", "[::1]:40000"),
        ("[fe80::1%3]:80", "[::ffff:10.0.0.1]:1"),
        ("[::ffff:10.0.0.1]:80", "[::ffff:10.0.0.2]:1"),
        ("10.0.0.1:80", "[::1]:1"),
    ] {
        let ends: (SocketAddr, SocketAddr) = (l.parse().unwrap(), r.parse().unwrap());
        let t = Tuple::new(ends.0, ends.1);
        assert_eq!(t.ends(), ends);
        assert_eq!(t, Tuple::new(ends.0, ends.1));
        assert_ne!(t, Tuple::new(ends.1, ends.0));
    }
    // An IPv4-mapped end is not the IPv4 end it maps: the kernel reports them apart.
    assert_ne!(
        Tuple::new(
            "[::ffff:10.0.0.1]:80".parse().unwrap(),
            "[::ffff:10.0.0.2]:1".parse().unwrap()
        ),
        Tuple::new(
            "10.0.0.1:80".parse().unwrap(),
            "10.0.0.2:1".parse().unwrap()
        )
    );
    assert_eq!(std::mem::size_of::<Tuple>(), 16);
}

#[test]
fn the_same_ends_in_two_namespaces_are_two_tuples() {
    for (l, r) in [("127.0.0.1:80", "127.0.0.1:40000"), ("[::1]:80", "[::1]:1")] {
        let (l, r) = (l.parse().unwrap(), r.parse().unwrap());
        let (a, b) = (Tuple::in_netns(l, r, 3), Tuple::in_netns(l, r, 4));
        assert_ne!(a, b);
        assert_eq!((a.ends(), a.netns()), ((l, r), 3));
        assert_eq!(Tuple::new(l, r).netns(), OWN_NETNS);
        use std::hash::BuildHasher;
        let h = rustc_hash::FxBuildHasher;
        assert_ne!(h.hash_one(&a), h.hash_one(&b));
    }
}

#[test]
fn a_connection_stays_compact() {
    use std::mem::size_of;
    // Two snapshots of 100k connections are alive at the peak of the live modes: every
    // 8 bytes here is 1.5 MiB there. Each part in one word or less.
    assert_eq!(size_of::<Tuple>(), 16);
    assert_eq!(size_of::<Option<Arc<User>>>(), 8);
    assert_eq!(size_of::<Owners>(), 8);
    assert_eq!(size_of::<Option<Timer>>(), 8);
    assert_eq!(size_of::<Option<Tracking>>(), 32);
    assert_eq!(size_of::<Option<super::Shutdown>>(), 1);
    assert!(
        size_of::<Connection>() <= 96,
        "Connection grew to {} bytes",
        size_of::<Connection>()
    );
}

#[test]
fn queues_read_back_as_set() {
    let mut c = time_wait(TcpState::Established, Duration::ZERO);
    assert_eq!((c.recv_q(), c.send_q()), (None, None));
    c.set_queues(Some(0), Some(7));
    assert_eq!((c.recv_q(), c.send_q()), (Some(0), Some(7)));
    c.set_queues(Some(u32::MAX - 1), None);
    assert_eq!((c.recv_q(), c.send_q()), (Some(u32::MAX - 1), None));
}

#[test]
fn empty_owners_are_the_default() {
    assert_eq!(Owners::from(Vec::new()), Owners::default());
    assert!(
        Owners::from(Vec::new()).0.is_none(),
        "no allocation while empty"
    );
    let o: Owners = [1, 2]
        .into_iter()
        .map(|pid| Owner { pid, name: None })
        .collect();
    assert_eq!(o.iter().map(|o| o.pid).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(o.clone(), o);
}

#[test]
fn time_wait_age_comes_from_the_kernel_countdown_on_a_single_poll() {
    // The countdown itself is `age::kernel_age`'s (tested there); the collector seeds the
    // connection with it, and a single poll shows it.
    let mut c = time_wait(TcpState::TimeWait, Duration::from_millis(45_500));
    c.tracking = Some(Tracking::from_kernel(at(0), Duration::from_millis(14_500)));
    assert_eq!(c.state_age(at(0)), Some(Duration::from_millis(14_500)));
    assert_eq!(c.age_source(at(0)), Some(AgeSource::Kernel));
}

#[test]
fn the_tracked_bound_wins_when_it_is_larger() {
    let mut t = Tracking::new(at(0), at(0), true);
    t.absorb(Some(&Tracking::from_kernel(at(5), Duration::from_secs(1))));
    let mut c = time_wait(TcpState::TimeWait, Duration::from_secs(59));
    c.tracking = Some(t);
    assert_eq!(c.state_age(at(5)), Some(Duration::from_secs(5)));
    assert_eq!(c.age_source(at(5)), Some(AgeSource::Observed));
}

#[test]
fn an_older_kernel_bound_wins_and_any_beats_first_sight() {
    let mut t = Tracking::new(at(10), at(10), true);
    t.absorb(Some(&Tracking::from_kernel(at(10), Duration::from_secs(4))));
    assert_eq!((t.state_since(), t.source()), (at(6), AgeSource::Kernel));
    let mut first = Tracking::new(at(10), at(10), false);
    first.absorb(Some(&Tracking::from_kernel(at(11), Duration::ZERO)));
    assert_eq!(first.source(), AgeSource::Kernel);
    assert_eq!(
        first.state_since(),
        at(10),
        "read after the poll: from the poll"
    );
    // Not a kernel seed: nothing to take.
    first.absorb(Some(&Tracking::new(at(0), at(0), true)));
    assert_eq!(first.state_since(), at(10));
}

#[test]
fn a_first_sight_has_no_age_until_time_passes() {
    let mut c = time_wait(TcpState::FinWait2, Duration::from_secs(30));
    assert_eq!(c.state_age(at(0)), None, "no tracking, no age");
    c.tracking = Some(Tracking::new(at(0), at(0), false));
    assert_eq!(c.state_age(at(0)), None);
    assert_eq!(c.state_age(at(3)), Some(Duration::from_secs(3)));
    assert_eq!(c.age_source(at(3)), Some(AgeSource::FirstSight));
}
