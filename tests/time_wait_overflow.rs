//! `snapshot --interval` raises the TIME_WAIT-overflow alert when the kernel drops TIME_WAIT
//! sockets between its two polls: in a network namespace of the test's own whose
//! `tcp_max_tw_buckets` is 8, twenty client-first closes leave 8 TIME_WAIT and 12 dropped,
//! and the alert's count is the namespace's own `TCPTimeWaitOverflow` delta. Needs root.

mod common;

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::process::Stdio;
use std::time::Duration;

use common::live::{line_reader, next_line};
use common::netns::{Netns, privileged};
use serde_json::Value;

/// `TCPTimeWaitOverflow` of the namespace, from its `/proc/net/netstat`.
fn overflows(ns: &Netns) -> u64 {
    let out = ns
        .command("cat")
        .arg("/proc/net/netstat")
        .output()
        .expect("cat /proc/net/netstat");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let (names, values) = (lines.next().unwrap(), lines.next().unwrap());
    let at = names
        .split_whitespace()
        .position(|n| n == "TCPTimeWaitOverflow")
        .expect("TCPTimeWaitOverflow in TcpExt");
    values.split_whitespace().nth(at).unwrap().parse().unwrap()
}

#[test]
fn a_snapshot_over_an_interval_sees_the_kernel_drop_time_wait() {
    if !privileged("a_snapshot_over_an_interval_sees_the_kernel_drop_time_wait") {
        return;
    }
    let ns = Netns::new("twov").expect("ip netns add");
    let set = ns
        .command("sysctl")
        .args(["-q", "-w", "net.ipv4.tcp_max_tw_buckets=8"])
        .status()
        .expect("sysctl");
    assert!(
        set.success(),
        "cannot set tcp_max_tw_buckets in the namespace"
    );

    let mut child = ns
        .command(env!("CARGO_BIN_EXE_lingertop"))
        .args([
            "--set",
            "collector.netns=host",
            "snapshot",
            "--format",
            "json",
        ])
        .args(["--interval", "3s", "--fail-on", "warning"])
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lingertop snapshot");
    let stderr = line_reader(child.stderr.take().unwrap());
    let first = next_line(&stderr, Duration::from_secs(20), "the first poll's line");
    assert!(first.contains("first poll saw"), "{first}");

    // Between the two polls: twenty connections this end closes first.
    let before = overflows(&ns);
    ns.enter(|| {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        for _ in 0..20 {
            let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
            let (s, _) = l.accept().unwrap();
            drop(c);
            drop(s);
        }
    });
    let dropped = overflows(&ns) - before;
    assert!(
        dropped > 0,
        "the kernel dropped no TIME_WAIT (tcp_max_tw_buckets = 8)"
    );

    let mut out = String::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        out.push_str(&line.unwrap());
    }
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(2),
        "an overflow fails --fail-on warning: {out}"
    );
    let json: Value = serde_json::from_str(&out).expect("JSON");
    let alert = json["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["rule"] == "time-wait-overflow")
        .unwrap_or_else(|| panic!("no time-wait-overflow alert: {}", json["alerts"]));
    assert_eq!(alert["count"].as_u64(), Some(dropped), "{alert}");
    assert!(
        alert["message"]
            .as_str()
            .is_some_and(|m| m.contains("tcp_max_tw_buckets")),
        "{alert}"
    );
}
