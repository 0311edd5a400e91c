//! The TIME_WAIT-overflow alert when the kernel drops TIME_WAIT sockets: in a network
//! namespace of the test's own whose `tcp_max_tw_buckets` is 8, twenty client-first closes
//! leave 8 TIME_WAIT and 12 dropped, and the alert's count is the namespace's own
//! `TCPTimeWaitOverflow` delta, in `snapshot --interval` (between its two polls), in `watch`'s
//! poll lines and as `watch --events`' alert line. Needs root.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::process::Stdio;
use std::time::Duration;

use crate::common::live::{line_reader, next_line};
use crate::common::netns::{Netns, privileged};
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
    let ns = small_time_wait_table("twov");

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

    // Between the two polls.
    let dropped = overflow(&ns);

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

/// A namespace of the test's own that keeps at most 8 TIME_WAIT sockets.
fn small_time_wait_table(tag: &str) -> Netns {
    let ns = Netns::new(tag).expect("ip netns add");
    let set = ns
        .command("sysctl")
        .args(["-q", "-w", "net.ipv4.tcp_max_tw_buckets=8"])
        .status()
        .expect("sysctl");
    assert!(
        set.success(),
        "cannot set tcp_max_tw_buckets in the namespace"
    );
    ns
}

/// Twenty connections this end closes first; how many TIME_WAIT the kernel dropped.
fn overflow(ns: &Netns) -> u64 {
    let before = overflows(ns);
    ns.enter(|| {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        for _ in 0..20 {
            let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
            let (s, _) = l.accept().unwrap();
            drop(c);
            drop(s);
        }
    });
    let dropped = overflows(ns) - before;
    assert!(
        dropped > 0,
        "the kernel dropped no TIME_WAIT (tcp_max_tw_buckets = 8)"
    );
    dropped
}

/// `watch` with `args` in a namespace that overflows once it runs; the first alert `pick`
/// finds (when `exact`, in a line that counts every TIME_WAIT dropped) within 10 s, and how
/// many were dropped.
fn watch_until(
    tag: &str,
    args: &[&str],
    exact: bool,
    pick: impl Fn(&Value, &str) -> Option<Value>,
) -> (Value, u64) {
    watch_from(tag, Place::Inside, args, exact, pick)
}

/// Where `watch` runs: inside the namespace that overflows, reading it alone, or on the
/// host reading every namespace (a container host's view).
enum Place {
    Inside,
    Host,
}

fn watch_from(
    tag: &str,
    place: Place,
    args: &[&str],
    exact: bool,
    pick: impl Fn(&Value, &str) -> Option<Value>,
) -> (Value, u64) {
    let ns = small_time_wait_table(tag);
    let mut cmd = match place {
        Place::Inside => {
            let mut c = ns.command(env!("CARGO_BIN_EXE_lingertop"));
            c.args(["--set", "collector.netns=host"]);
            c
        }
        Place::Host => {
            let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_lingertop"));
            c.args(["--netns", "all"]);
            c
        }
    };
    let mut watch = cmd
        .args(["watch", "--interval", "500ms"])
        .args(args)
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("lingertop watch");
    let stdout = line_reader(watch.stdout.take().unwrap());
    if args.is_empty() {
        // A poll line says the loop runs (event lines come only once something happens).
        next_line(&stdout, Duration::from_secs(20), "the first poll line");
    } else {
        std::thread::sleep(Duration::from_secs(2));
    }
    let dropped = overflow(&ns);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    // A poll during the twenty closes may see some of them: the alert that counts them all
    // must follow.
    let mut last = None;
    let found = loop {
        let line = next_line(&stdout, Duration::from_secs(10), "after the overflow");
        let v: Value = serde_json::from_str(&line).expect("an NDJSON line");
        if let Some(a) = pick(&v, &ns.name) {
            if !exact || a["count"].as_u64() == Some(dropped) {
                break a;
            }
            last = Some(a);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no alert counting {dropped} within 10 s; the last: {last:?}"
        );
    };
    crate::common::live::signal(&watch, libc::SIGTERM);
    crate::common::live::wait_exit(&mut watch, Duration::from_secs(10));
    (found, dropped)
}

#[test]
fn watch_poll_lines_carry_the_time_wait_overflow() {
    if !privileged("watch_poll_lines_carry_the_time_wait_overflow") {
        return;
    }
    let (alert, dropped) = watch_until("twwatch", &[], true, |v, _| {
        v["alerts"]
            .as_array()?
            .iter()
            .find(|a| a["rule"] == "time-wait-overflow")
            .cloned()
    });
    assert_eq!(alert["count"].as_u64(), Some(dropped), "{alert}");
}

#[test]
fn watch_events_says_the_time_wait_overflow_in_an_alert_line() {
    if !privileged("watch_events_says_the_time_wait_overflow_in_an_alert_line") {
        return;
    }
    // The line says when the alert starts, not each change of its count: a poll in the
    // middle of the twenty closes fires it with some of them (the poll lines' test checks
    // the count exactly).
    let (alert, dropped) = watch_until("twevents", &["--events", "off"], false, |v, _| {
        (v["event"] == "alert").then(|| v.clone())
    });
    assert_eq!(alert["rule"], "time-wait-overflow", "{alert}");
    assert_eq!(alert["state"], "firing", "{alert}");
    assert_eq!(alert["source"], "counters", "{alert}");
    let count = alert["count"].as_u64().expect("a count");
    assert!(
        (1..=dropped).contains(&count),
        "{count} of {dropped}: {alert}"
    );
}

#[test]
fn a_containers_time_wait_overflow_is_seen_from_the_host_and_named() {
    if !privileged("a_containers_time_wait_overflow_is_seen_from_the_host_and_named") {
        return;
    }
    // The kernel counts the drop in the namespace's own counters only: the host's never move.
    let (alert, dropped) = watch_from("twhost", Place::Host, &[], true, |v, name| {
        v["alerts"]
            .as_array()?
            .iter()
            .find(|a| a["rule"] == "time-wait-overflow" && a["netns"] == name)
            .cloned()
    });
    assert_eq!(alert["count"].as_u64(), Some(dropped), "{alert}");
    let name = alert["netns"].as_str().unwrap();
    let msg = alert["message"].as_str().unwrap();
    assert!(msg.contains(&format!("in netns {name}")), "{msg}");
}

#[test]
fn serve_counts_a_containers_time_wait_overflow_among_its_active_alerts() {
    if !privileged("serve_counts_a_containers_time_wait_overflow_among_its_active_alerts") {
        return;
    }
    let ns = small_time_wait_table("twserve");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_lingertop"));
    cmd.args(["--netns", "all"])
        .env("XDG_CONFIG_HOME", "/nonexistent");
    let served =
        crate::common::live::Served::start_from(cmd, &["--interval", "500ms", "--events", "off"]);
    let active = |s: &crate::common::live::Scrape| {
        s.get(
            "lingertop_active_alerts",
            &[("rule", "time-wait-overflow"), ("severity", "warning")],
        )
        .unwrap_or(0.0)
    };
    overflow(&ns);
    let s = served.scrape_until("the overflow among the active alerts", |s| active(s) >= 1.0);
    assert!(active(&s) >= 1.0, "{}", s.text);
    served.stop(libc::SIGTERM);
}
