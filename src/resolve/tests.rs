//! The cache on a stepped clock, and the resolver's bounds on a lookup of the tests' own
//! (the DNS stands in; the queueing, deadlines and caching under test are the real ones).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::cache::Cache;
use super::*;

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
}

fn name(s: &str) -> Option<Arc<str>> {
    Some(Arc::from(s))
}

#[test]
fn a_name_lasts_its_ttl_and_a_failure_a_shorter_one() {
    let t0 = Instant::now();
    let mut c = Cache::new(10, Duration::from_secs(600), Duration::from_secs(60));
    c.insert(ip(1), name("one.example"), t0);
    c.insert(ip(2), None, t0);
    assert_eq!(c.get(ip(1), t0), Some(name("one.example")));
    assert_eq!(c.get(ip(2), t0), Some(None), "a known want of a name");
    assert_eq!(c.get(ip(3), t0), None, "never asked");

    let later = t0 + Duration::from_secs(61);
    assert_eq!(c.get(ip(1), later), Some(name("one.example")));
    assert_eq!(c.get(ip(2), later), None, "the failure expired: ask again");
    assert_eq!(c.get(ip(1), t0 + Duration::from_secs(600)), None);
}

#[test]
fn the_cache_stays_within_its_bound_dropping_expired_then_oldest() {
    let t0 = Instant::now();
    let s = Duration::from_secs;
    let mut c = Cache::new(3, s(600), s(60));
    c.insert(ip(1), None, t0);
    c.insert(ip(2), name("two"), t0 + s(1));
    c.insert(ip(3), name("three"), t0 + s(2));
    // Full; ip(1)'s failure has expired by t0 + 70 s: it goes, the live names stay.
    c.insert(ip(4), name("four"), t0 + s(70));
    assert_eq!(c.len(), 3);
    assert_eq!(c.get(ip(2), t0 + s(70)), Some(name("two")));
    assert_eq!(c.get(ip(4), t0 + s(70)), Some(name("four")));
    // Full of live names: the oldest answer (ip 2) gives way.
    c.insert(ip(5), name("five"), t0 + s(71));
    assert_eq!(c.len(), 3);
    assert_eq!(c.get(ip(2), t0 + s(71)), None);
    assert_eq!(c.get(ip(3), t0 + s(71)), Some(name("three")));
    assert_eq!(c.get(ip(5), t0 + s(71)), Some(name("five")));
    // Answering an address again replaces its entry, it does not push another out.
    c.insert(ip(5), name("five again"), t0 + s(72));
    assert_eq!(c.len(), 3);
    assert_eq!(c.get(ip(3), t0 + s(72)), Some(name("three")));
    assert_eq!(c.get(ip(5), t0 + s(72)), Some(name("five again")));
}

/// A DNS of the test's own: `192.0.2.1` is `one.example.`, `192.0.2.2` and 198.51.100.0/24
/// never answer, others have no name; it counts the lookups and the most at once.
#[derive(Default)]
struct Dns {
    asked: AtomicUsize,
    now: AtomicUsize,
    most: AtomicUsize,
    seen: Mutex<Vec<IpAddr>>,
}

impl Dns {
    fn lookup(self: &Arc<Self>) -> Lookup {
        let dns = Arc::clone(self);
        Arc::new(move |addr| {
            let dns = Arc::clone(&dns);
            Box::pin(async move {
                dns.asked.fetch_add(1, Ordering::SeqCst);
                dns.seen.lock().unwrap().push(addr);
                let now = dns.now.fetch_add(1, Ordering::SeqCst) + 1;
                dns.most.fetch_max(now, Ordering::SeqCst);
                struct Leave<'a>(&'a AtomicUsize);
                impl Drop for Leave<'_> {
                    fn drop(&mut self) {
                        self.0.fetch_sub(1, Ordering::SeqCst);
                    }
                }
                let _leave = Leave(&dns.now);
                match addr {
                    a if a == ip(1) => Some("one.example.".to_string()),
                    a if a == ip(2) || stuck(a) => std::future::pending().await,
                    _ => {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        None
                    }
                }
            })
        })
    }
}

/// An address of the range that never answers.
fn stuck(a: IpAddr) -> bool {
    matches!(a, IpAddr::V4(v4) if v4.octets()[..3] == [198, 51, 100])
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
}

#[test]
fn want_never_waits_and_a_name_arrives_with_a_wake_up() {
    runtime().block_on(async {
        let dns = Arc::new(Dns::default());
        let r = Resolver::with_lookup(dns.lookup(), Duration::from_secs(2)).unwrap();
        assert_eq!(r.want(ip(1)), Known::Pending);
        assert_eq!(
            r.want(ip(1)),
            Known::Pending,
            "asked once, still on its way"
        );
        r.changed().await;
        assert_eq!(r.want(ip(1)), Known::Name(Arc::from("one.example")));
        assert_eq!(
            dns.asked.load(Ordering::SeqCst),
            1,
            "the second want was the cache's"
        );
        // Nothing to ask about an unspecified address (a listener's remote).
        assert_eq!(r.want(IpAddr::V4(Ipv4Addr::UNSPECIFIED)), Known::NoName);
        assert_eq!(dns.asked.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn a_lookup_that_never_answers_gives_its_slot_back_at_the_deadline() {
    runtime().block_on(async {
        let dns = Arc::new(Dns::default());
        let r = Resolver::with_lookup(dns.lookup(), Duration::from_secs(2)).unwrap();
        let started = tokio::time::Instant::now();
        // Every slot taken by a server that never answers, and one more address behind.
        let stuck: Vec<IpAddr> = (1..=IN_FLIGHT as u8)
            .map(|i| IpAddr::V4(Ipv4Addr::new(198, 51, 100, i)))
            .collect();
        for &a in &stuck {
            assert_eq!(r.want(a), Known::Pending);
        }
        assert_eq!(r.want(ip(1)), Known::Pending);
        let waited = tokio::time::timeout(Duration::from_secs(30), async {
            while r.want(ip(1)) == Known::Pending {
                r.changed().await;
            }
        })
        .await;
        assert!(waited.is_ok(), "the queued lookup never got a slot");
        let took = started.elapsed();
        assert_eq!(r.want(ip(1)), Known::Name(Arc::from("one.example")));
        assert!(
            took >= Duration::from_secs(2) && took < Duration::from_secs(3),
            "a slot came free after {took:?}; the deadline is 2 s"
        );
        for &a in &stuck {
            assert_eq!(r.want(a), Known::NoName, "past its deadline: no name");
        }
        assert!(
            dns.most.load(Ordering::SeqCst) <= IN_FLIGHT,
            "at most {IN_FLIGHT} at once, saw {}",
            dns.most.load(Ordering::SeqCst)
        );
        assert_eq!(
            dns.now.load(Ordering::SeqCst),
            0,
            "every lookup dropped or done"
        );
    });
}

#[test]
fn ipv4_mapped_addresses_are_the_same_address() {
    runtime().block_on(async {
        let dns = Arc::new(Dns::default());
        let r = Resolver::with_lookup(dns.lookup(), Duration::from_secs(2)).unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        r.want(mapped);
        r.changed().await;
        assert_eq!(r.want(ip(1)), Known::Name(Arc::from("one.example")));
        assert_eq!(*dns.seen.lock().unwrap(), vec![ip(1)]);
    });
}

#[test]
fn resolve_all_waits_no_longer_than_asked_and_keeps_what_arrived() {
    runtime().block_on(async {
        let dns = Arc::new(Dns::default());
        let r = Resolver::with_lookup(dns.lookup(), Duration::from_secs(2)).unwrap();
        let started = tokio::time::Instant::now();
        let many: Vec<IpAddr> = (3..40).map(ip).chain([ip(1), ip(2), ip(1)]).collect();
        let names = r.resolve_all(many, Duration::from_millis(1500)).await;
        let took = started.elapsed();
        assert!(took <= Duration::from_millis(1600), "waited {took:?}");
        assert_eq!(names.get(ip(1)), Some("one.example"));
        assert_eq!(names.get(ip(2)), None, "never answered within the wait");
        assert_eq!(names.get(ip(3)), None);
        assert_eq!(names.len(), 39, "each address once");
        assert!(dns.most.load(Ordering::SeqCst) <= IN_FLIGHT);
        // What arrived is cached for the next ask.
        assert_eq!(r.want(ip(1)), Known::Name(Arc::from("one.example")));
    });
}

#[test]
fn live_lookups_queue_no_more_than_max_waiting() {
    runtime().block_on(async {
        let dns = Arc::new(Dns::default());
        let r = Resolver::with_lookup(dns.lookup(), Duration::from_secs(2)).unwrap();
        for i in 0..(MAX_WAITING as u32 + 50) {
            let b = i.to_be_bytes();
            r.want(IpAddr::V4(Ipv4Addr::new(10, b[1], b[2], b[3])));
        }
        assert_eq!(r.state().pending.len(), MAX_WAITING);
    });
}

#[test]
fn names_lose_the_final_dot_and_empty_ones_are_none() {
    assert_eq!(tidy("host.example."), Some("host.example"));
    assert_eq!(tidy("host"), Some("host"));
    assert_eq!(tidy("."), None);
    assert_eq!(tidy(""), None);
}

#[test]
fn presentation_escapes_become_the_names_own_characters() {
    assert_eq!(
        unescape("evil\\033\\[31m.example"),
        "evil\u{1b}[31m.example"
    );
    assert_eq!(unescape("a\\.b.example"), "a.b.example");
    assert_eq!(
        unescape("na\\303\\257ve"),
        "naïve",
        "UTF-8 bytes, one at a time"
    );
    assert_eq!(unescape("plain.example"), "plain.example");
    // Not an escape of a byte: kept as it is.
    assert_eq!(unescape("x\\400"), "x\\400");
    assert_eq!(unescape("x\\9"), "x\\9");
    assert_eq!(unescape("trailing\\"), "trailing\\");
}
