//! `lingertop watch` against real loopback sockets: the real binary's NDJSON lines, the
//! transitions of a connection this test closes step by step, and how the stream ends.

use std::io::{BufRead, BufReader, Read};
use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant};

use crate::common::live::{Watched, next_line, signal, wait_exit};
use crate::common::*;
use serde_json::Value;

/// Reads event lines into `seen` until one for `local -> remote` satisfies `done` (at
/// most 10 s).
fn events_until(
    w: &Watched,
    local: SocketAddr,
    remote: SocketAddr,
    seen: &mut Vec<Value>,
    done: impl Fn(&Value) -> bool,
) {
    let is_it =
        |v: &Value| v["local"] == local.to_string() && v["remote"] == remote.to_string() && done(v);
    // Lines of one poll come together: the one wanted may already have been read.
    if seen.iter().any(is_it) {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = next_line(&w.stdout, left, "of the expected transition");
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let found = is_it(&v);
        seen.push(v);
        if found {
            return;
        }
    }
}

/// `(event, from, to)` of the lines about `local -> remote`.
fn path(seen: &[Value], local: SocketAddr, remote: SocketAddr) -> Vec<(String, Value, Value)> {
    seen.iter()
        .filter(|v| v["local"] == local.to_string() && v["remote"] == remote.to_string())
        .map(|v| {
            (
                v["event"].as_str().unwrap().to_string(),
                v["from"].clone(),
                v["to"].clone(),
            )
        })
        .collect()
}

#[test]
fn events_show_each_step_of_a_close_the_test_drives() {
    let me = std::process::id();
    let l = listener(V4);
    let port = l.local_addr().unwrap().port().to_string();
    // The connection whose close the test drives exists before the first poll, whose
    // complete /proc scan finds its owner: later scans are rate-limited, and a close driven
    // right after a new socket's first poll could come before any scan saw its owner.
    let (c, s) = pair(&l);
    let (client, server) = addr_of(&c);
    let w = Watched::start(&["--events", "--interval", "100ms", "--port", &port]);
    let first = next_line(&w.stderr, Duration::from_secs(20), "about the first poll");
    assert!(first.contains("first poll saw"), "{first}");

    // A connection made while watching appears.
    let mut seen = Vec::new();
    let (c2, _s2) = pair(&l);
    let (client2, server2) = addr_of(&c2);
    events_until(&w, client2, server2, &mut seen, |v| {
        v["to"] == "ESTABLISHED"
    });
    assert_eq!(
        path(&seen, client2, server2),
        [("appeared".into(), Value::Null, "ESTABLISHED".into())]
    );

    // The client half-closes and keeps its descriptor: FIN_WAIT_2 on its side,
    // CLOSE_WAIT on the server's.
    c.shutdown(Shutdown::Write).unwrap();
    events_until(&w, client, server, &mut seen, |v| v["to"] == "FIN_WAIT_2");
    events_until(&w, server, client, &mut seen, |v| v["to"] == "CLOSE_WAIT");

    // The server closes: the client moves to TIME_WAIT, the server end goes away.
    drop(s);
    events_until(&w, client, server, &mut seen, |v| v["to"] == "TIME_WAIT");
    events_until(&w, server, client, &mut seen, |v| v["event"] == "vanished");

    assert_eq!(
        path(&seen, client, server),
        vec![
            ("changed".into(), "ESTABLISHED".into(), "FIN_WAIT_2".into()),
            ("changed".into(), "FIN_WAIT_2".into(), "TIME_WAIT".into()),
        ]
    );
    let server_path = path(&seen, server, client);
    assert_eq!(
        server_path[..1],
        [("changed".into(), "ESTABLISHED".into(), "CLOSE_WAIT".into())]
    );
    // Between CLOSE_WAIT and gone, a poll may catch the brief LAST_ACK.
    assert_eq!(server_path.last().unwrap().0, "vanished");

    // The lines name the owner: us, and in TIME_WAIT the owner seen before.
    let comm = my_comm();
    for v in seen.iter().filter(|v| v["local"] == client.to_string()) {
        assert_eq!(v["pid"], me, "{v}");
        assert_eq!(v["process"], comm.as_str(), "{v}");
    }
    let tw = seen
        .iter()
        .find(|v| v["local"] == client.to_string() && v["to"] == "TIME_WAIT")
        .unwrap();
    assert_eq!(tw["attribution"], "last-owner", "{tw}");
    // Only our port was asked for.
    assert!(
        seen.iter().all(
            |v| v["local"].as_str().unwrap().ends_with(&format!(":{port}"))
                || v["remote"].as_str().unwrap().ends_with(&format!(":{port}"))
        ),
        "{seen:?}"
    );
    drop(c);

    let mut w = w;
    signal(&w.child, libc::SIGTERM);
    assert!(wait_exit(&mut w.child, Duration::from_secs(10)).success());
}

#[test]
fn poll_lines_count_the_filtered_sockets_and_stop_on_sigint() {
    let l = listener(V6);
    let port = l.local_addr().unwrap().port().to_string();
    // One CLOSE_WAIT on our listener (and its orphaned FIN_WAIT_2 peer).
    let (c, s) = pair(&l);
    let (client, server) = addr_of(&c);
    drop(c);
    wait_for_state(server, client, lingertop::model::TcpState::CloseWait);

    let mut w = Watched::start(&["--interval", "100ms", "--port", &port]);
    let mut lines = Vec::new();
    for _ in 0..3 {
        let line = next_line(&w.stdout, Duration::from_secs(20), "per poll");
        lines.push(serde_json::from_str::<Value>(&line).unwrap());
    }
    let seqs: Vec<u64> = lines.iter().map(|v| v["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, vec![1, 2, 3]);
    let v = &lines[2];
    assert_eq!(v["filter"], format!("port:{port}"));
    assert_eq!(v["counts"]["LISTEN"], 1, "{v}");
    assert_eq!(v["counts"]["CLOSE_WAIT"], 1, "{v}");
    assert_eq!(v["counts"]["FIN_WAIT_2"], 1, "{v}");
    assert_eq!(v["matched_connections"], 3, "{v}");
    assert!(v["total_connections"].as_u64().unwrap() >= 3);
    assert!(v["alerts"].is_array());

    signal(&w.child, libc::SIGINT);
    assert!(wait_exit(&mut w.child, Duration::from_secs(10)).success());
    let mut err = String::new();
    while let Ok(l) = w.stderr.try_recv() {
        err.push_str(&l);
    }
    assert!(err.is_empty(), "stderr: {err}");
    drop(s);
}

#[test]
fn a_closed_pipe_ends_the_stream_quietly() {
    let (mut child, out) = Watched::start_raw(&["--interval", "100ms"]);
    let mut reader = BufReader::new(out);
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    let v: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(v["seq"], 1);
    // The reader goes away, as `| head -1` does.
    drop(reader);
    let status = wait_exit(&mut child, Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{status:?}");
    let mut rest = String::new();
    if let Some(mut e) = child.stderr.take() {
        e.read_to_string(&mut rest).unwrap();
    }
    assert!(rest.is_empty(), "{rest}");
}

#[test]
fn a_bad_filter_is_one_line_and_status_1() {
    let out = lingertop()
        .args(["watch", "--events", "--state", "close-wiat"])
        .output()
        .expect("run lingertop");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(out.stdout.is_empty());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("--state") && stderr.contains("close-wait"),
        "{stderr}"
    );
}
