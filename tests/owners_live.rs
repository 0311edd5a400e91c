//! A connection's owner in the live modes, on a big table (root; in a network namespace the
//! test creates): more than 20,000 ESTABLISHED held open, so `established-every = auto`
//! reads ESTABLISHED every second poll, then a burst of short connections that each live
//! between one and two polls, made by a process of their own. `watch --events` must name
//! that process on every line about them: with the kernel's events, every line; without,
//! only a lookup still pending may leave a line unnamed, and it says so.

#![cfg(target_os = "linux")]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::live::next_line;
use common::netns::{Netns, privileged};
use common::resets::first_line;
use common::*;
use serde_json::Value;

/// Holds N loopback pairs open (2N ESTABLISHED) until its stdin closes; prints its port.
/// (A process may hold 20,000 descriptors here: the pairs are shared by two holders.)
const HOLDER: &str = r#"
import resource, socket, sys
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(4096)
port = l.getsockname()[1]
keep = []
for _ in range(int(sys.argv[1])):
    c = socket.create_connection(("127.0.0.1", port)); s, _ = l.accept(); keep += [c, s]
print(port, flush=True)
sys.stdin.read()
"#;

/// Prints its listener's port, waits for a line, then makes N connections to itself, one
/// every STEP seconds, each closed by the client LIFE seconds after it opened (the server
/// end reads the byte and the EOF, then closes): both ends are this process's.
const BURSTER: &str = r#"
import socket, sys, threading, time
n, step, life = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(1024)
print(l.getsockname()[1], flush=True)
sys.stdin.readline()
def serve(s):
    while s.recv(16):
        pass
    s.close()
opened = []
def close_due(now):
    while opened and now - opened[0][0] >= life:
        opened.pop(0)[1].close()
for _ in range(n):
    c = socket.create_connection(("127.0.0.1", l.getsockname()[1])); c.sendall(b"x")
    s, _ = l.accept(); threading.Thread(target=serve, args=(s,), daemon=True).start()
    opened.append((time.monotonic(), c))
    close_due(time.monotonic())
    time.sleep(step)
while opened:
    close_due(time.monotonic()); time.sleep(0.005)
print("done", flush=True)
sys.stdin.readline()
"#;

/// ESTABLISHED pairs held: 21,000 sockets, past `AUTO_PER_POLL` (20,000).
const PAIRS: usize = 10_500;
const INTERVAL_MS: u64 = 300;
/// Burst connections, one every 40 ms, each living 1.5 polls.
const BURST: usize = 100;

fn python(ns: &Netns, script: &str, args: &[String]) -> Child {
    ns.command("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 in the namespace")
}

/// Every transition line `watch --events` wrote about the burst (either end on its port)
/// while it ran, by connection.
/// Each connection's lines (by its two ends) that one watch gave.
type LinesByConnection = BTreeMap<(String, String), Vec<Value>>;

fn watch_burst(events: &str) -> Option<(u32, LinesByConnection)> {
    let test = format!("owners_live (--events {events})");
    if !privileged(&test) {
        return None;
    }
    let mut ns = Netns::new("owners").expect("a namespace");
    let mut holders: Vec<Child> = (0..2)
        .map(|_| python(&ns, HOLDER, &[(PAIRS / 2).to_string()]))
        .collect();
    for h in &mut holders {
        first_line(h).parse::<u16>().expect("a holder's port");
    }
    let held = ns.ss("state established").len();
    assert!(
        held > 20_000,
        "{held} ESTABLISHED held, want more than 20,000"
    );

    let mut burster = python(
        &ns,
        BURSTER,
        &[
            BURST.to_string(),
            "0.04".to_string(),
            format!("{}", INTERVAL_MS as f64 * 1.5 / 1000.0),
        ],
    );
    let port: u16 = first_line(&mut burster)
        .parse()
        .expect("the burster's port");
    let burster_pid = burster.id();

    let mut watch = lingertop()
        .args(["--set", &format!("collector.netns={}", ns.name)])
        .args([
            "watch",
            &format!("--events={events}"),
            "--interval",
            &format!("{INTERVAL_MS}ms"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lingertop watch");
    let out = common::live::line_reader(watch.stdout.take().expect("stdout"));
    let err = common::live::line_reader(watch.stderr.take().expect("stderr"));
    let said = next_line(&err, Duration::from_secs(20), "the first poll");
    assert!(said.contains("first poll saw"), "{said}");

    // Go; collect lines until the burster is done and two full reads more have passed.
    let mut go = burster.stdin.take().expect("stdin");
    writeln!(go, "go").expect("start the burst");
    let done = first_line(&mut burster);
    assert_eq!(done, "done");
    let until = Instant::now() + Duration::from_millis(INTERVAL_MS * 5);
    let mut lines = Vec::new();
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match out.recv_timeout(left) {
            Ok(l) => lines.push(l),
            Err(_) => break,
        }
    }
    let _ = watch.kill();
    let _ = watch.wait();
    drop(go);
    let _ = burster.kill();
    let _ = burster.wait();
    for mut h in holders {
        drop(h.stdin.take());
        let _ = h.kill();
        let _ = h.wait();
    }
    ns.delete();

    let on_port = |a: &Value| {
        a.as_str()
            .and_then(|s| s.rsplit(':').next())
            .is_some_and(|p| p == port.to_string())
    };
    let mut by_conn: BTreeMap<(String, String), Vec<Value>> = BTreeMap::new();
    for l in &lines {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        if v["source"] != "poll" || !(on_port(&v["local"]) || on_port(&v["remote"])) {
            continue;
        }
        let key = (
            v["local"].as_str().unwrap().to_string(),
            v["remote"].as_str().unwrap().to_string(),
        );
        by_conn.entry(key).or_default().push(v);
    }
    Some((burster_pid, by_conn))
}

#[test]
fn with_the_kernel_events_every_line_about_a_short_connection_names_its_owner() {
    let Some((pid, by_conn)) = watch_burst("on") else {
        return;
    };
    let client_ends = by_conn
        .iter()
        .filter(|(_, lines)| lines.iter().any(|l| l["to"] == "TIME_WAIT"))
        .count();
    assert!(
        client_ends >= BURST / 2,
        "only {client_ends} of {BURST} client ends were seen reaching TIME_WAIT"
    );
    let mut unnamed = Vec::new();
    let mut via = BTreeSet::new();
    for lines in by_conn.values() {
        for l in lines {
            if l["pid"] != pid {
                unnamed.push(l.to_string());
            }
            via.insert(l["attribution"].to_string());
        }
    }
    assert!(
        unnamed.is_empty(),
        "{} of the burst's lines do not name the burster (pid {pid}):\n{}",
        unnamed.len(),
        unnamed.join("\n")
    );
    eprintln!("attributions seen: {via:?}");
}

/// Without the kernel's events, the `/proc` scan is the only source: it is rate-limited (a
/// lookup may wait, and the line says `pending`), and it cannot see a socket closed between
/// the kernel's dump and the walk. So lines may be unnamed, but none names another process,
/// a pending line names nobody, and the owner a later scan finds is said (`owner` lines).
#[test]
fn without_them_no_line_names_another_process_and_a_pending_lookup_says_so() {
    let Some((pid, by_conn)) = watch_burst("off") else {
        return;
    };
    let mut wrong = Vec::new();
    let (mut pending, mut named_later, mut unnamed) = (0, 0, 0);
    for lines in by_conn.values() {
        let mut was_pending = false;
        for l in lines {
            if l["attribution"] == "pending" {
                assert!(l["pid"].is_null(), "{l}");
                was_pending = true;
                pending += 1;
            } else if l["pid"] == pid {
                named_later += usize::from(was_pending);
            } else if l["pid"].is_null() {
                unnamed += 1;
            } else {
                wrong.push(l.to_string());
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "lines that name another process than the burster ({pid}):\n{}",
        wrong.join("\n")
    );
    eprintln!(
        "{pending} lines said the lookup was pending; {named_later} later lines named the owner; {unnamed} lines named nobody"
    );
}
