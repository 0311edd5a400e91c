//! The two collector backends on the same real loopback population: netlink (sock_diag)
//! and netstat2 must give the same connections, states, inodes, users and owners; netlink
//! adds timers and queues, asks the kernel for only some states, and finds the owners of
//! new sockets at a later poll without rescanning /proc for every one.

#![cfg(target_os = "linux")]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use lingertop::collector::{Backend, Collector, ReadOptions};
use lingertop::model::{Connection, TcpState};

type Row = (SocketAddr, SocketAddr, TcpState, u32, Option<u32>, Vec<u32>);

/// The connections on `ports`, in a comparable form, sorted.
/// The test's sockets, owners limited to `pids`: a process other tests of this binary start
/// at the same moment inherits, for its short life, the descriptor shared with a child
/// (it has no close-on-exec flag), and one backend's read may catch it while the other's
/// does not.
fn rows(c: &mut Collector, ports: &[u16], pids: &[u32]) -> Vec<Row> {
    let snap = c.poll().expect("poll");
    let mut out: Vec<Row> = snap
        .connections
        .iter()
        .filter(|x| ports.contains(&x.local().port()) || ports.contains(&x.remote().port()))
        .map(|x| {
            (
                x.local(),
                x.remote(),
                x.state,
                x.inode,
                x.uid(),
                x.owners
                    .iter()
                    .map(|o| o.pid)
                    .filter(|p| pids.contains(p))
                    .collect(),
            )
        })
        .collect();
    out.sort();
    out
}

/// A child we started; killed when dropped, so a failing test leaves none behind.
struct Sharer(Child);

impl Drop for Sharer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A child process that inherits a duplicate of `s`, so two processes hold the socket.
fn share_with_child(s: &TcpStream) -> Sharer {
    // SAFETY: dup(2) of a descriptor we own; the copy has no close-on-exec flag, so the
    // child inherits it. We close our copy once the child runs.
    let dup = unsafe { libc::dup(s.as_raw_fd()) };
    assert!(dup >= 0, "dup");
    let child = Command::new("sleep")
        .arg("30")
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn sleep");
    // SAFETY: `dup` is ours and no longer needed in this process.
    unsafe { libc::close(dup) };
    Sharer(child)
}

#[test]
fn netlink_and_netstat2_agree_on_a_population_we_create() {
    let me = std::process::id();
    let mut ports = Vec::new();
    let mut keep = Vec::new();
    let mut keep_listeners = Vec::new();
    let mut children = Vec::new();
    for ip in [V4, V6] {
        let l = listener(ip);
        ports.push(l.local_addr().unwrap().port());
        for _ in 0..20 {
            let (c, s) = pair(&l);
            keep.extend([c, s]);
        }
        // CLOSE_WAIT held by us, with orphaned FIN_WAIT_2 peers.
        let mut last = None;
        for _ in 0..10 {
            let (c, s) = pair(&l);
            last = Some(addr_of(&c));
            drop(c);
            keep.push(s);
        }
        let (client, server) = last.unwrap();
        wait_for_state(server, client, TcpState::CloseWait);
        // TIME_WAIT: the client closes first.
        for _ in 0..10 {
            let (c, mut s) = pair(&l);
            let (client, server) = addr_of(&c);
            drop(c);
            let mut buf = [0u8; 1];
            assert_eq!(s.read(&mut buf).unwrap(), 0);
            drop(s);
            last = Some((client, server));
        }
        let (client, server) = last.unwrap();
        wait_for_state(client, server, TcpState::TimeWait);
        // A half-closed FIN_WAIT_2 that we still hold, shared with a child process.
        let (c, s) = pair(&l);
        c.shutdown(Shutdown::Write).unwrap();
        let (client, server) = addr_of(&c);
        wait_for_state(client, server, TcpState::FinWait2);
        children.push(share_with_child(&c));
        keep.extend([c, s]);
        keep_listeners.push(l);
    }

    let mut netlink = Collector::from_choice(Backend::Netlink).expect("netlink works here");
    let mut netstat2 = Collector::from_choice(Backend::Netstat2).unwrap();
    assert_eq!(netlink.backend_name(), "netlink");
    assert_eq!(netstat2.backend_name(), "netstat2");
    let pids: Vec<u32> = [me]
        .into_iter()
        .chain(children.iter().map(|c| c.0.id()))
        .collect();
    let a = rows(&mut netlink, &ports, &pids);
    let b = rows(&mut netstat2, &ports, &pids);
    assert_eq!(a, b, "netlink and netstat2 disagree");

    // The population is really there, owners included.
    let count = |s: TcpState| a.iter().filter(|r| r.2 == s).count();
    assert!(count(TcpState::Established) >= 2 * 2 * 20);
    // Ten per family, and the server end of each half-closed pair.
    assert_eq!(count(TcpState::CloseWait), 2 * 11);
    assert!(count(TcpState::TimeWait) >= 2 * 10);
    assert_eq!(count(TcpState::Listen), 2);
    assert!(
        a.iter().all(|r| r.3 != 0 || r.5.is_empty()),
        "inode 0 has no owner"
    );
    let shared: Vec<&Row> = a.iter().filter(|r| r.5.len() == 2).collect();
    assert_eq!(
        shared.len(),
        2,
        "the two sockets shared with children: {a:?}"
    );
    for (r, child) in shared.iter().zip(&children) {
        let mut want = vec![me, child.0.id()];
        want.sort();
        assert_eq!(r.5, want);
    }
    drop(children);
}

/// Runs `lingertop --backend netlink snapshot --format json --port PORT` and returns the
/// connection `local -> remote` once it satisfies `ok` (the kernel updates queues and
/// states asynchronously), failing after 5 s.
fn wait_json(
    port: u16,
    local: SocketAddr,
    remote: SocketAddr,
    ok: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (code, json) = snapshot_json(&["--backend", "netlink", "--port", &port.to_string()]);
        assert_eq!(code, 0);
        assert_eq!(json["backend"], "netlink");
        let found = find(&json, local, remote);
        if let Some(c) = found.first().filter(|c| ok(c)) {
            return (*c).clone();
        }
        assert!(Instant::now() < deadline, "never satisfied: {found:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn netlink_reports_timers_and_queues() {
    let l = listener(V4);
    let port = l.local_addr().unwrap().port();

    // Unread bytes sit in the receiver's queue.
    let (mut c, s) = pair(&l);
    c.write_all(&[7u8; 1000]).unwrap();
    let (client, server) = addr_of(&c);
    let rx = wait_json(port, server, client, |c| c["recv_q"] == 1000);
    assert_eq!(rx["timer"], serde_json::Value::Null, "{rx}");

    // Keepalive arms a timer (2 h by default on Linux).
    let on: libc::c_int = 1;
    // SAFETY: setsockopt on our own socket with a valid int.
    let rc = unsafe {
        libc::setsockopt(
            c.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_KEEPALIVE,
            (&raw const on).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0);
    // (Until the peer acknowledges the bytes above, the retransmit timer runs instead.)
    let ka = wait_json(port, client, server, |c| c["timer"]["kind"] == "keepalive");
    assert!(ka["timer"]["expires_ms"].as_u64().unwrap() > 60_000, "{ka}");

    // A TIME_WAIT counts down from 60 s, which gives its exact age from a single poll.
    let (tc, mut ts) = pair(&l);
    let (tw_client, tw_server) = addr_of(&tc);
    drop(tc);
    let mut buf = [0u8; 1];
    assert_eq!(ts.read(&mut buf).unwrap(), 0);
    drop(ts);
    let tw = wait_json(port, tw_client, tw_server, |c| c["state"] == "TIME_WAIT");
    assert_eq!(tw["timer"]["kind"], "timewait", "{tw}");
    let left = tw["timer"]["expires_ms"].as_u64().unwrap();
    assert!((50_000..=60_000).contains(&left), "{tw}");
    let age = tw["state_age_secs"]
        .as_f64()
        .expect("exact age on one poll");
    assert!((age - (60.0 - left as f64 / 1000.0)).abs() < 0.01, "{tw}");
    // Connections waiting for accept() are the listener's receive queue.
    // (Last: `pair` would accept one of these.)
    let waiting: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(l.local_addr().unwrap()).unwrap())
        .collect();
    let unspecified: SocketAddr = "0.0.0.0:0".parse().unwrap();
    let listen = wait_json(port, l.local_addr().unwrap(), unspecified, |c| {
        c["recv_q"] == 3
    });
    assert!(
        listen["send_q"].as_u64().unwrap() >= 3,
        "the backlog: {listen}"
    );

    drop((waiting, s));
}

#[test]
fn netstat2_reports_no_timers_or_queues() {
    let l = listener(V4);
    let port = l.local_addr().unwrap().port();
    let (code, json) = snapshot_json(&["--backend", "netstat2", "--port", &port.to_string()]);
    assert_eq!(code, 0);
    assert_eq!(json["backend"], "netstat2");
    let rows = json["connections"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rows[0]["recv_q"].is_null() && rows[0]["timer"].is_null());
}

#[test]
fn a_state_filter_asks_the_kernel_for_only_those_states() {
    let l = listener(V4);
    let (c, s) = pair(&l);
    let (client, server) = addr_of(&c);
    let (_est_c, _est_s) = pair(&l);
    drop(c);
    wait_for_state(server, client, TcpState::CloseWait);

    let mut netlink = Collector::from_choice(Backend::Netlink).unwrap();
    netlink.set_options(&ReadOptions {
        states: Some(vec![TcpState::CloseWait]),
        exact_owners: true,
    });
    let snap = netlink.poll().unwrap();
    assert!(
        snap.connections
            .iter()
            .all(|c: &Connection| c.state == TcpState::CloseWait),
        "only CLOSE_WAIT comes back"
    );
    assert!(
        snap.connections
            .iter()
            .any(|c| c.local() == server && c.remote() == client)
    );
    drop(s);
}

#[test]
fn new_sockets_get_their_owner_at_a_later_live_poll() {
    let me = std::process::id();
    let l = listener(V4);
    let mut live = Collector::from_choice(Backend::Netlink).unwrap();
    live.poll().unwrap();
    let (c, _s) = pair(&l);
    let (client, server) = addr_of(&c);
    // A rescan waits ten times as long as the last one took: seconds at most, unless other
    // processes on the machine hold hundreds of thousands of descriptors.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let snap = live.poll().unwrap();
        let conn = snap
            .connections
            .iter()
            .find(|x| x.local() == client && x.remote() == server)
            .expect("the new connection is in the table");
        if let Some(o) = conn.owner() {
            assert_eq!(o.pid, me);
            break;
        }
        // Deferred by the rate limit: the snapshot says so.
        assert!(
            matches!(&snap.process_info, lingertop::model::ProcessInfo::Partial { reason } if reason.contains("not matched to a process yet")),
            "{:?}",
            snap.process_info
        );
        assert!(Instant::now() < deadline, "owner never found");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn backend_flag_and_config_choose_the_backend() {
    let l = listener(V4);
    let port = l.local_addr().unwrap().port().to_string();
    let (_, json) = snapshot_json(&["--port", &port]);
    assert_eq!(
        json["backend"], "netlink",
        "auto takes netlink where it works"
    );

    let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    f.write_all(b"[collector]\nbackend = \"netstat2\"\n")
        .unwrap();
    let cfg = f.path().to_str().unwrap();
    let (_, json) = snapshot_json(&["--config", cfg, "--port", &port]);
    assert_eq!(json["backend"], "netstat2");
    let (_, json) = snapshot_json(&["--config", cfg, "--backend", "netlink", "--port", &port]);
    assert_eq!(json["backend"], "netlink", "the flag wins over the file");

    let out = lingertop()
        .args(["--backend", "fast", "snapshot"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--backend"), "{err}");
}

#[test]
fn a_single_poll_state_filter_still_attributes_to_the_listener() {
    let me = std::process::id();
    let l = listener(V4);
    let port = l.local_addr().unwrap().port().to_string();
    // The server closes first: its end (on the listener's port) goes to TIME_WAIT.
    let (mut c, s) = pair(&l);
    let (client, server) = addr_of(&c);
    drop(s);
    let mut buf = [0u8; 1];
    assert_eq!(c.read(&mut buf).unwrap(), 0);
    drop(c);
    wait_for_state(server, client, TcpState::TimeWait);

    // One poll, so the kernel is asked for TIME_WAIT (and LISTEN) only.
    let (code, json) = snapshot_json(&["--state", "time-wait", "--port", &port]);
    assert_eq!(code, 0);
    let rows = json["connections"].as_array().unwrap();
    assert!(rows.iter().all(|r| r["state"] == "TIME_WAIT"), "{rows:?}");
    let tw = one(&json, server, client);
    assert_eq!(tw["attribution"], "listener", "{tw}");
    assert_eq!(tw["pid"], me, "{tw}");
    assert!(
        tw["state_age_secs"].as_f64().is_some(),
        "exact from the timer"
    );
}

/// The connection `local -> remote` at a fresh netlink poll, once it is in `state` with a
/// receive queue of `recv_q` (the kernel takes a moment to queue what the peer sent).
fn netlink_conn(local: SocketAddr, remote: SocketAddr, state: TcpState, recv_q: u32) -> Connection {
    let mut netlink = Collector::from_choice(Backend::Netlink).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let snap = netlink.poll().unwrap();
        let found = snap
            .connections
            .into_iter()
            .find(|c| c.local() == local && c.remote() == remote && c.state == state);
        match found {
            Some(c) if c.recv_q() == Some(recv_q) => return c,
            other => assert!(
                Instant::now() < deadline,
                "{local} -> {remote} never {state} with recv-q {recv_q}: {other:?}"
            ),
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn the_peers_fin_is_told_from_unread_data() {
    use lingertop::model::ReceiveQueue;
    let l = listener(V4);

    // The peer closes without sending: the queue's one "byte" is its FIN.
    let (c, mut no_data) = pair(&l);
    let (client, server) = addr_of(&c);
    drop(c);
    let cw = netlink_conn(server, client, TcpState::CloseWait, 1);
    assert_eq!(
        cw.receive_queue(),
        Some(ReceiveQueue::FinUnread { unread: 0 })
    );
    assert!(cw.shutdown.is_some_and(|s| s.receive() && !s.send()));
    assert_eq!(
        cw.receive_queue().unwrap().describe(),
        "peer sent FIN, 0 B unread"
    );

    // The peer sends 5 bytes, then closes: 5 bytes, then the FIN.
    let (mut c, five) = pair(&l);
    let (client5, server5) = addr_of(&c);
    c.write_all(b"hello").unwrap();
    drop(c);
    let cw5 = netlink_conn(server5, client5, TcpState::CloseWait, 6);
    assert_eq!(
        cw5.receive_queue(),
        Some(ReceiveQueue::FinUnread { unread: 5 })
    );
    assert_eq!(
        cw5.receive_queue().unwrap().describe(),
        "5 B unread, then FIN"
    );

    // The application reads the end of the stream and keeps the socket: the FIN is read.
    let mut buf = [0u8; 8];
    assert_eq!(no_data.read(&mut buf).unwrap(), 0);
    let read = netlink_conn(server, client, TcpState::CloseWait, 0);
    assert_eq!(read.receive_queue(), Some(ReceiveQueue::FinRead));

    // Data without a FIN is data; our own shutdown(SHUT_WR) shows as the send side shut.
    let (mut c, s) = pair(&l);
    let (clientd, serverd) = addr_of(&c);
    c.write_all(b"hello").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let est = netlink_conn(serverd, clientd, TcpState::FinWait2, 5);
    assert_eq!(est.receive_queue(), Some(ReceiveQueue::Data(5)));
    assert!(est.shutdown.is_some_and(|s| s.send() && !s.receive()));
    drop((no_data, five, c, s));
}
