//! Ages from the kernel's clocks on lingertop's first poll, identities by socket cookie,
//! and the one-poll CLOSE_WAIT alert, against real loopback sockets (netlink backend; the
//! tests say so and return where sock_diag is missing).

use std::io::Read;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::common::*;
use lingertop::collector::NetlinkSource;
use lingertop::model::TcpState;
use serde_json::Value;

/// How old the sockets are when lingertop first looks.
const MADE_BEFORE: Duration = Duration::from_secs(3);
/// What the age read may lag the age at the moment the poll began: the kernel's clocks
/// tick in jiffies, and lingertop measures back from when the answer arrived.
const SLACK: Duration = Duration::from_millis(250);

fn have_netlink() -> bool {
    if NetlinkSource::open().is_err() {
        eprintln!("skipped: no netlink sock_diag here, so no kernel clocks to test");
        return false;
    }
    true
}

/// Waits until `since` is at least `age` ago, checking the clock (bounded by `age` + 1 s).
fn wait_until_older(since: Instant, age: Duration) {
    let deadline = since + age + Duration::from_secs(1);
    while since.elapsed() < age {
        assert!(Instant::now() < deadline, "the clock did not advance");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The age of `c` and how it is known.
fn age_of(c: &Value) -> (Duration, &str) {
    let secs = c["state_age_secs"]
        .as_f64()
        .unwrap_or_else(|| panic!("no age on the first poll: {c}"));
    (
        Duration::from_secs_f64(secs),
        c["state_age_from"].as_str().unwrap_or("none"),
    )
}

#[test]
fn states_made_before_the_first_poll_show_their_age_on_it() {
    if !have_netlink() {
        return;
    }
    let l = listener(V4);
    let port = l.local_addr().unwrap().port().to_string();
    let born = Instant::now();

    // Idle ESTABLISHED.
    let (est_c, _est_s) = pair(&l);
    // The client closes: server end CLOSE_WAIT, client end an orphaned FIN_WAIT_2.
    let (cw_c, _cw_s) = pair(&l);
    let (cw_client, cw_server) = addr_of(&cw_c);
    drop(cw_c);
    // The client half-closes and keeps its descriptor: FIN_WAIT_2 held.
    let (fw_c, _fw_s) = pair(&l);
    fw_c.shutdown(Shutdown::Write).unwrap();
    let (fw_client, fw_server) = addr_of(&fw_c);
    // The client closes first, the server after EOF: client end TIME_WAIT.
    let (tw_client, tw_server) = client_time_wait(&l);
    wait_for_state(cw_server, cw_client, TcpState::CloseWait);
    wait_for_state(cw_client, cw_server, TcpState::FinWait2);
    wait_for_state(fw_client, fw_server, TcpState::FinWait2);
    let made = Instant::now();
    wait_until_older(made, MADE_BEFORE);

    let asked = Instant::now();
    let (code, json) = snapshot_json(&["--port", &port]);
    let lived = born.elapsed();
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["polls"], 1);
    let at_least = asked.duration_since(made).saturating_sub(SLACK);

    let (est_client, est_server) = addr_of(&est_c);
    let rows: [(&str, SocketAddr, SocketAddr); 6] = [
        ("ESTABLISHED", est_client, est_server),
        ("ESTABLISHED", est_server, est_client),
        ("CLOSE_WAIT", cw_server, cw_client),
        ("FIN_WAIT_2", cw_client, cw_server),
        ("FIN_WAIT_2", fw_client, fw_server),
        ("TIME_WAIT", tw_client, tw_server),
    ];
    for (state, local, remote) in rows {
        let c = one(&json, local, remote);
        assert_eq!(c["state"], state, "{c}");
        let (age, from) = age_of(c);
        assert_eq!(from, "kernel", "{c}");
        assert!(
            age >= at_least,
            "{state} {local} -> {remote} made {:?} before the poll reads {age:?}",
            asked.duration_since(made)
        );
        assert!(
            age <= lived,
            "{state} {local} -> {remote} reads {age:?}, older than its whole life {lived:?}"
        );
    }
    // No kernel clock starts with LISTEN: one poll knows nothing of its age.
    let listen = one(&json, l.local_addr().unwrap(), "0.0.0.0:0".parse().unwrap());
    assert_eq!(listen["state_age_secs"], Value::Null, "{listen}");
    assert_eq!(listen["state_age_from"], Value::Null, "{listen}");
}

#[test]
fn a_one_poll_snapshot_raises_the_close_wait_alert_and_exits_2() {
    if !have_netlink() {
        return;
    }
    let l = listener(V4);
    let port = l.local_addr().unwrap().port().to_string();
    let (c, _s) = pair(&l);
    let (client, server) = addr_of(&c);
    drop(c);
    wait_for_state(server, client, TcpState::CloseWait);
    let made = Instant::now();
    let args = [
        "--port",
        port.as_str(),
        "--state",
        "close-wait",
        "--fail-on",
        "warning",
        "--set",
        "alerts.close-wait.min-age=2s",
    ];
    // Younger than min-age: no alert yet, exit 0 (so the alert below is the age's doing).
    let (code, json) = snapshot_json(&args);
    if made.elapsed() < Duration::from_millis(1500) {
        assert_eq!(code, 0, "{json}");
        assert_eq!(json["alerts"], serde_json::json!([]), "{json}");
    }
    wait_until_older(made, Duration::from_millis(2500));
    let (code, json) = snapshot_json(&args);
    assert_eq!(code, 2, "a CLOSE_WAIT older than min-age: {json}");
    let alert = alert(&json, "close-wait-lingering");
    assert!(
        alert["connections"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["local"] == server.to_string()),
        "{alert}"
    );
}

/// Server end of a connection closed by the server first, so the server end lingers in
/// TIME_WAIT, as a busy web server's do; returns (client, server) addresses.
fn server_side_time_wait(l: &std::net::TcpListener) -> (SocketAddr, SocketAddr) {
    let (mut c, s) = pair(l);
    let (client, server) = addr_of(&c);
    drop(s);
    let mut buf = [0u8; 8];
    assert_eq!(c.read(&mut buf).unwrap(), 0, "client reads EOF");
    drop(c);
    wait_for_state(server, client, TcpState::TimeWait);
    (client, server)
}

/// A new client on exactly `client`'s address and port, to `server`.
fn connect_from(client: SocketAddr, server: SocketAddr) -> TcpStream {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.set_reuse_address(true).unwrap();
    s.bind(&client.into()).expect("bind the old client port");
    s.connect(&server.into())
        .expect("the server's TIME_WAIT takes a new SYN on its tuple");
    s.into()
}

#[test]
fn a_tuple_reused_after_time_wait_is_a_new_connection() {
    if !have_netlink() {
        return;
    }
    let l = listener(V4);
    let port = l.local_addr().unwrap().port().to_string();
    let (client, server) = server_side_time_wait(&l);
    // First poll sees the TIME_WAIT; the tuple is reused before the second.
    let child = snapshot_two_polls("1s", &["--port", &port]);
    // Not accepted before the second poll: in the accept queue it has no file (inode 0),
    // like the TIME_WAIT, so only the cookie tells them apart.
    let c = connect_from(client, server);
    wait_for_state(server, client, TcpState::Established);
    let (code, json) = finish(child);
    let (_s, _) = l.accept().unwrap();
    assert_eq!(code, 0, "{json}");
    let conn = one(&json, server, client);
    assert_eq!(conn["state"], "ESTABLISHED", "{conn}");
    assert_eq!(
        conn["previous_states"],
        serde_json::json!([]),
        "a new socket, not the TIME_WAIT moving on: {conn}"
    );
    assert_eq!(conn["state_age_from"], "observed", "{conn}");
    drop(c);
}

#[test]
fn watch_reports_the_old_socket_gone_and_the_new_one_appeared() {
    use crate::common::live::{Watched, next_line, signal, wait_exit};
    if !have_netlink() {
        return;
    }
    let l = listener(V4);
    let port = l.local_addr().unwrap().port().to_string();
    let (client, server) = server_side_time_wait(&l);
    let w = Watched::start(&["--events", "--interval", "100ms", "--port", &port]);
    let first = next_line(&w.stderr, Duration::from_secs(20), "about the first poll");
    assert!(first.contains("first poll saw"), "{first}");
    // Left in the accept queue, without a file, as in the test above.
    let c = connect_from(client, server);
    let mut seen: Vec<Value> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let ours = |v: &Value| v["local"] == server.to_string() && v["remote"] == client.to_string();
    let done = |seen: &[Value]| {
        seen.iter().any(|v| ours(v) && v["to"] == "ESTABLISHED")
            && seen.iter().any(|v| ours(v) && v["event"] == "vanished")
    };
    while !done(&seen) {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = next_line(&w.stdout, left, "about the reused tuple");
        seen.push(serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}")));
    }
    let path: Vec<(String, Value, Value)> = seen
        .iter()
        .filter(|v| ours(v))
        .map(|v| {
            (
                v["event"].as_str().unwrap().into(),
                v["from"].clone(),
                v["to"].clone(),
            )
        })
        .collect();
    let mut expected = vec![
        (
            "appeared".to_string(),
            Value::Null,
            Value::from("ESTABLISHED"),
        ),
        (
            "vanished".to_string(),
            Value::from("TIME_WAIT"),
            Value::Null,
        ),
    ];
    // A poll may catch the handshake's SYN_RECV first; either way, never a change of the
    // TIME_WAIT into something else.
    if path.first().is_some_and(|p| p.2 == "SYN_RECV") {
        expected = vec![
            ("appeared".to_string(), Value::Null, Value::from("SYN_RECV")),
            (
                "vanished".to_string(),
                Value::from("TIME_WAIT"),
                Value::Null,
            ),
            (
                "changed".to_string(),
                Value::from("SYN_RECV"),
                Value::from("ESTABLISHED"),
            ),
        ];
    }
    assert_eq!(path, expected, "{seen:?}");
    let appeared = seen
        .iter()
        .find(|v| ours(v) && v["event"] == "appeared")
        .unwrap();
    assert_eq!(appeared["state_age_from"], "observed", "{appeared}");
    drop(c);
    let mut w = w;
    signal(&w.child, libc::SIGTERM);
    wait_exit(&mut w.child, Duration::from_secs(10));
}

#[test]
fn serve_reads_an_old_leak_at_its_age_right_after_it_starts() {
    use crate::common::live::Served;
    if !have_netlink() {
        return;
    }
    let l = listener(V4);
    let (c, _s) = pair(&l);
    let (client, server) = addr_of(&c);
    drop(c);
    wait_for_state(server, client, TcpState::CloseWait);
    let made = Instant::now();
    wait_until_older(made, MADE_BEFORE);
    let asked = Instant::now();
    // A long interval: the first scrape is of the first poll.
    let served = Served::start(&["--interval", "1h"]);
    let s = served.scrape();
    assert_eq!(s.get("lingertop_polls_total", &[]), Some(1.0), "{}", s.text);
    let oldest = s
        .get("lingertop_close_wait_oldest_age_seconds", &[])
        .expect("the oldest CLOSE_WAIT age");
    let at_least = asked.duration_since(made).saturating_sub(SLACK);
    assert!(
        oldest >= at_least.as_secs_f64(),
        "a CLOSE_WAIT {at_least:?} old reads {oldest} s: {}",
        s.text
    );
    let from = |f: &str| s.get("lingertop_close_wait_oldest_age_source", &[("from", f)]);
    assert_eq!(from("kernel"), Some(1.0), "{}", s.text);
    assert_eq!(
        (from("observed"), from("first-sight")),
        (Some(0.0), Some(0.0))
    );
}
