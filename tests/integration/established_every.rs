//! The live loop reading ESTABLISHED only every few polls (`collector.established-every`),
//! on real loopback sockets: between reads the ESTABLISHED connections are carried as last
//! read, a connection leaving ESTABLISHED shows in its next state at the very next poll,
//! and a new one shows by the next read of ESTABLISHED.

#![cfg(target_os = "linux")]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;
use lingertop::collector::{Backend, Collector};
use lingertop::config::{Config, EstablishedEvery};
use lingertop::live::{self, Message, Update};
use lingertop::model::TcpState;

const EVERY: u32 = 3;

/// Takes updates until `done` says so, for at most 10 s.
fn until(
    rx: &mut tokio::sync::mpsc::Receiver<Message>,
    what: &str,
    mut done: impl FnMut(&Update) -> bool,
) -> Arc<Update> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match rx.blocking_recv() {
            Some(Message::Update(u)) if done(&u) => return u,
            Some(_) => {}
            None => panic!("the poll loop stopped while waiting for {what}"),
        }
    }
    panic!("no update within 10 s: {what}");
}

fn states_of(u: &Update, local: SocketAddr, remote: SocketAddr) -> Vec<TcpState> {
    u.snapshot
        .connections
        .iter()
        .filter(|c| c.local() == local && c.remote() == remote)
        .map(|c| c.state)
        .collect()
}

fn is_full(u: &Update) -> bool {
    u.snapshot.unread.is_none()
}

#[test]
fn established_is_carried_between_reads_and_every_close_is_seen_at_once() {
    let l = listener(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let (client, server) = pair(&l);
    let (c_addr, s_addr) = addr_of(&client);

    let cfg = Config {
        interval: Duration::from_millis(100),
        established_every: EstablishedEvery::Polls(EVERY),
        ..Config::default()
    };
    let collector = Collector::from_choice(Backend::Netlink).expect("netlink works here");
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let handle =
        live::spawn(collector, &cfg, live::Scope::default(), tx).expect("spawn the poll loop");

    // A full read, then a poll that left ESTABLISHED out but still shows both ends, as last
    // read, with the same tracking.
    let full = until(&mut rx, "a full read", is_full);
    assert_eq!(states_of(&full, c_addr, s_addr), [TcpState::Established]);
    let first_seen = |u: &Update| {
        u.snapshot
            .connections
            .iter()
            .find(|c| c.local() == c_addr && c.remote() == s_addr)
            .and_then(|c| c.tracking.as_ref())
            .map(|t| t.first_seen())
    };
    let partial = until(&mut rx, "a poll without ESTABLISHED", |u| !is_full(u));
    let unread = partial.snapshot.unread.as_ref().unwrap();
    assert_eq!(unread.states, [TcpState::Established]);
    assert_eq!(unread.last_read, Some(full.snapshot.taken_at));
    assert_eq!(states_of(&partial, c_addr, s_addr), [TcpState::Established]);
    assert_eq!(states_of(&partial, s_addr, c_addr), [TcpState::Established]);
    assert_eq!(first_seen(&partial), first_seen(&full));
    assert!(first_seen(&full).is_some());

    // The client closes: the next poll taken after that shows both ends in their closing
    // states, full read or not, each exactly once.
    let (new_client, _new_server) = pair(&l);
    let new_addr = addr_of(&new_client);
    drop(client);
    wait_for_state(s_addr, c_addr, TcpState::CloseWait);
    let closed_at = std::time::SystemTime::now();
    let after = until(&mut rx, "a poll after the close", |u| {
        u.snapshot.taken_at > closed_at
    });
    assert_eq!(states_of(&after, s_addr, c_addr), [TcpState::CloseWait]);
    assert_eq!(states_of(&after, c_addr, s_addr), [TcpState::FinWait2]);
    // Its partial polls went on; the new connection shows by the next read of ESTABLISHED.
    let next_full = until(&mut rx, "the next full read", is_full);
    assert_eq!(
        states_of(&next_full, new_addr.0, new_addr.1),
        [TcpState::Established]
    );
    assert_eq!(states_of(&next_full, s_addr, c_addr), [TcpState::CloseWait]);
    drop(handle);
    drop(server);
}

#[test]
fn every_poll_reads_everything_when_told_to() {
    let cfg = Config {
        interval: Duration::from_millis(100),
        established_every: EstablishedEvery::Polls(1),
        ..Config::default()
    };
    let collector = Collector::from_choice(Backend::Netlink).expect("netlink works here");
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let handle =
        live::spawn(collector, &cfg, live::Scope::default(), tx).expect("spawn the poll loop");
    let mut seen = 0;
    until(&mut rx, "five polls", |u| {
        assert!(is_full(u), "poll {} left states out", u.seq);
        seen += 1;
        seen == 5
    });
    drop(handle);
}
