//! The close rules outside the dashboard, from the kernel's real events: in a network
//! namespace this test creates, one python child makes M SO_LINGER {1, 0} resets to another.
//! `watch --events` says when the reset storm starts (an `alert` line, `firing`, for the
//! client's pid and the server's, and for no other) and when it ends (`resolved`, once the
//! window has passed without resets); `snapshot --interval` raises it over the resets made
//! between its two polls and exits 2 with `--fail-on warning`. Needs root (a namespace and
//! eBPF); skips with a message otherwise.

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::live::{line_reader, next_line, wait_exit};
use crate::common::netns::{Netns, privileged};
use crate::common::resets::{CLIENT, SERVER, first_line, python, wait};
use serde_json::Value;

const M: usize = 25;

/// The storm rule over a 2 s window, warning at 3 resets a second: M resets made within a
/// second or two are well over it, and a quiet window ends it.
const RULE: [&str; 8] = [
    "--set",
    "alerts.reset-storm.window=2s",
    "--set",
    "alerts.reset-storm.warning=3",
    "--set",
    "alerts.reset-storm.critical=100000",
    "--set",
    "collector.netns=host",
];

/// Runs the client and the server to the end; their pids (client, server).
fn storm(ns: &Netns) -> (u32, u32) {
    let mut server = python(ns, SERVER, &[M.to_string()]);
    let port = first_line(&mut server);
    let client = python(ns, CLIENT, &[M.to_string(), port]);
    let pids = (client.id(), server.id());
    wait(client);
    wait(server);
    pids
}

/// Starts `cmd` (a `watch --events on`) and returns once its first poll says it reads the
/// kernel's events, with its stdout's lines.
fn watch_events(
    mut cmd: std::process::Command,
) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    let mut watch = cmd
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lingertop watch");
    let stderr = line_reader(watch.stderr.take().unwrap());
    let said = next_line(&stderr, Duration::from_secs(20), "the first poll's line");
    assert!(said.contains("the kernel's events"), "{said}");
    let stdout = line_reader(watch.stdout.take().unwrap());
    (watch, stdout)
}

#[test]
fn watch_says_when_a_reset_storm_starts_and_ends_naming_both_processes() {
    if !privileged("watch_says_when_a_reset_storm_starts_and_ends_naming_both_processes") {
        return;
    }
    let ns = Netns::new("storm").expect("a network namespace");
    let mut cmd = ns.command(env!("CARGO_BIN_EXE_lingertop"));
    cmd.args(RULE)
        .args(["watch", "--events", "on", "--interval", "500ms"]);
    let (mut watch, stdout) = watch_events(cmd);

    let (client, server) = storm(&ns);
    let want: BTreeSet<u64> = [u64::from(client), u64::from(server)].into();
    let (mut firing, mut resolved) = (BTreeSet::new(), BTreeSet::new());
    let deadline = Instant::now() + Duration::from_secs(20);
    while resolved != want && Instant::now() < deadline {
        let Ok(line) = stdout.recv_timeout(Duration::from_secs(1)) else {
            continue;
        };
        let v: Value = serde_json::from_str(&line).expect("an NDJSON line");
        if v["event"] != "alert" {
            continue;
        }
        assert_eq!(v["rule"], "reset-storm", "{v}");
        assert_eq!(v["source"], "kernel", "{v}");
        let pid = v["pid"].as_u64().expect("the storm's pid");
        assert!(
            want.contains(&pid),
            "a storm for pid {pid}, not a child: {v}"
        );
        match v["state"].as_str() {
            Some("firing") => {
                assert_eq!(v["severity"], "warning", "{v}");
                assert_eq!(v["process"], "python3", "{v}");
                firing.insert(pid);
            }
            Some("resolved") => {
                assert!(firing.contains(&pid), "resolved before firing: {v}");
                resolved.insert(pid);
            }
            other => panic!("state {other:?}: {v}"),
        }
    }
    crate::common::live::signal(&watch, libc::SIGTERM);
    let status = wait_exit(&mut watch, Duration::from_secs(10));
    assert!(status.success(), "{status}");
    assert_eq!(firing, want, "a firing line for the client and the server");
    assert_eq!(
        resolved, want,
        "and a resolved line for each after a quiet window"
    );
}

/// `snapshot --interval 3s --events EVENTS --fail-on warning` in `ns` with the storm made
/// between its two polls: its exit status, its output and the children's pids.
fn snapshot_over_a_storm(
    ns: &Netns,
    events: &str,
) -> (std::process::ExitStatus, String, (u32, u32)) {
    let mut snap = ns
        .command(env!("CARGO_BIN_EXE_lingertop"))
        .args(RULE)
        .args(["snapshot", "--format", "json", "--interval", "3s"])
        .args(["--events", events, "--fail-on", "warning"])
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lingertop snapshot");
    let stderr = line_reader(snap.stderr.take().unwrap());
    let said = next_line(&stderr, Duration::from_secs(20), "the first poll's line");
    assert!(said.contains("first poll saw"), "{said}");
    let stdout = line_reader(snap.stdout.take().unwrap());
    let pids = storm(ns);
    let status = wait_exit(&mut snap, Duration::from_secs(20));
    (status, stdout.iter().collect(), pids)
}

#[test]
fn a_snapshot_over_an_interval_raises_the_reset_storm_made_between_its_polls() {
    if !privileged("a_snapshot_over_an_interval_raises_the_reset_storm_made_between_its_polls") {
        return;
    }
    let ns = Netns::new("snapstorm").expect("a network namespace");
    let (status, out, (client, server)) = snapshot_over_a_storm(&ns, "on");
    assert_eq!(
        status.code(),
        Some(2),
        "a storm fails --fail-on warning: {out}"
    );
    let json: Value = serde_json::from_str(&out).expect("one JSON document");
    let pids: BTreeSet<u64> = json["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .filter(|a| a["rule"] == "reset-storm")
        .map(|a| a["pid"].as_u64().expect("the storm's pid"))
        .collect();
    assert_eq!(
        pids,
        [u64::from(client), u64::from(server)].into(),
        "{}",
        json["alerts"]
    );
}

#[test]
fn without_events_a_snapshot_over_an_interval_judges_no_reset_storm() {
    if !privileged("without_events_a_snapshot_over_an_interval_judges_no_reset_storm") {
        return;
    }
    let ns = Netns::new("snapquiet").expect("a network namespace");
    let (status, out, _) = snapshot_over_a_storm(&ns, "off");
    // The counters cannot tell processes apart: no storm, so no alert and exit 0.
    assert_eq!(status.code(), Some(0), "{out}");
    let json: Value = serde_json::from_str(&out).expect("one JSON document");
    assert!(
        json["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["rule"] != "reset-storm"),
        "{}",
        json["alerts"]
    );
}

#[test]
fn watch_on_the_host_sees_the_closes_inside_a_container_and_names_it() {
    if !privileged("watch_on_the_host_sees_the_closes_inside_a_container_and_names_it") {
        return;
    }
    let ns = Netns::new("boxed").expect("a network namespace");
    // On the host, reading every namespace (the default as root); the filter keeps this
    // test's namespace, as the operator narrowing to one container would.
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_lingertop"));
    cmd.args(["--netns", "all"])
        .args(&RULE[..6])
        .args(["watch", "--events", "on", "--interval", "500ms"])
        .args(["--filter", &format!("netns:{}", ns.name)]);
    let (mut watch, stdout) = watch_events(cmd);

    let (client, server) = storm(&ns);
    let mut sent = 0;
    let mut received = 0;
    let mut storm_named = None;
    let deadline = Instant::now() + Duration::from_secs(15);
    while (sent < M || received < M || storm_named.is_none()) && Instant::now() < deadline {
        let Ok(line) = stdout.recv_timeout(Duration::from_secs(1)) else {
            continue;
        };
        let v: Value = serde_json::from_str(&line).expect("an NDJSON line");
        if v["event"] == "alert" && v["pid"].as_u64() == Some(u64::from(client)) {
            // The storm's alert names the container the process is in.
            storm_named = Some(v);
            continue;
        }
        if v["event"] != "close" {
            continue;
        }
        assert_eq!(v["netns"], ns.name.as_str(), "{v}");
        match v["kind"].as_str() {
            Some("reset-sent") => {
                assert_eq!(v["pid"].as_u64(), Some(u64::from(client)), "{v}");
                sent += 1;
            }
            Some("reset-received") => {
                assert_eq!(v["pid"].as_u64(), Some(u64::from(server)), "{v}");
                received += 1;
            }
            _ => {}
        }
    }
    crate::common::live::signal(&watch, libc::SIGTERM);
    wait_exit(&mut watch, Duration::from_secs(10));
    assert_eq!(
        (sent, received),
        (M, M),
        "every reset inside the namespace, seen from the host"
    );
    let storm = storm_named.expect("a reset-storm alert for the client");
    assert_eq!(storm["rule"], "reset-storm", "{storm}");
    assert_eq!(storm["netns"], ns.name.as_str(), "{storm}");
    let msg = storm["message"].as_str().unwrap();
    assert!(msg.contains(&format!("in netns {}", ns.name)), "{msg}");
}
