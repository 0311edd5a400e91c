//! Resets by why, per process, from the kernel's real events (root; in a network namespace
//! the test creates): three client processes make exactly known numbers of SO_LINGER {1, 0}
//! aborts and closes with data left unread, against a server that greets every connection.
//! `serve`'s /metrics, `watch --events` and the dashboard's closes panel (the real binary in
//! tmux) must each give every process's count by reason exactly.

#![cfg(target_os = "linux")]

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::live::{Served, Watched, next_line};
use crate::common::netns::{Netns, privileged};
use crate::common::resets::{first_line, wait};
use crate::common::tmux::Tmux;
use serde_json::Value;

/// Accepts N connections one after the other: greets each, reads it until the peer's
/// reset or EOF, closes it. Prints its port first.
const SERVER: &str = r#"
import socket, sys
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(64)
print(l.getsockname()[1], flush=True)
l.settimeout(30)
for _ in range(int(sys.argv[1])):
    s, _ = l.accept(); s.settimeout(30)
    s.sendall(b"hello\n")
    try:
        while s.recv(64):
            pass
    except ConnectionResetError:
        pass
    s.close()
print("done", flush=True)
"#;

/// Connects LINGER0 times, reads the greeting whole and closes with SO_LINGER {1, 0} (an
/// abort on purpose); then UNREAD times, waits until the greeting is there and closes
/// without reading it (the kernel resets: data unread).
const CLIENT: &str = r#"
import select, socket, struct, sys
port, linger0, unread = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
def connect():
    return socket.create_connection(("127.0.0.1", port), timeout=30)
for _ in range(linger0):
    c = connect()
    got = b""
    while len(got) < 6:
        got += c.recv(6 - len(got))
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()
for _ in range(unread):
    c = connect()
    select.select([c], [], [], 30)
    c.close()
print("done", flush=True)
"#;

/// (linger-0, unread-data) resets of each client.
const CLIENTS: [(u32, u32); 3] = [(7, 0), (0, 5), (4, 3)];

#[test]
fn each_process_resets_by_reason_are_exact_in_metrics_watch_and_the_closes_panel() {
    let test = "each_process_resets_by_reason_are_exact_in_metrics_watch_and_the_closes_panel";
    if !privileged(test) {
        return;
    }
    let mut ns = Netns::new("reasons").expect("a namespace");
    ns.sleeper();
    let in_ns = format!("collector.netns={}", ns.name);

    let served = Served::start(&["--set", &in_ns, "--events", "on", "--interval", "500ms"]);
    let watched = Watched::start(&["--set", &in_ns, "--events=on", "--interval", "500ms"]);
    let said = next_line(
        &watched.stderr,
        Duration::from_secs(20),
        "watch's first poll",
    );
    assert!(said.contains("first poll saw"), "{said}");
    let tmux = Tmux::start("reasons");
    tmux.start_dashboard_with("", &format!("--set {in_ns} --events on --interval 500ms"));
    tmux.wait_for("LIVE", Duration::from_secs(20));
    tmux.keys(&["C"]);
    tmux.wait_for("Closes from the kernel's events", Duration::from_secs(10));

    let total: u32 = CLIENTS.iter().map(|(a, b)| a + b).sum();
    let mut server = ns
        .command("python3")
        .args(["-c", SERVER, &total.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 server");
    let port = first_line(&mut server);
    let mut want: BTreeMap<(u32, &str), u32> = BTreeMap::new();
    let mut pids = Vec::new();
    for (linger0, unread) in CLIENTS {
        let client = ns
            .command("python3")
            .args([
                "-c",
                CLIENT,
                &port,
                &linger0.to_string(),
                &unread.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 client");
        let pid = client.id();
        pids.push(pid);
        want.insert((pid, "linger-0"), linger0);
        want.insert((pid, "unread-data"), unread);
        wait(client);
    }
    wait(server);

    // /metrics: each client's resets by reason, and none of another reason.
    let scrape = served.scrape_until("every client's resets by reason", |s| {
        want.iter().all(|((pid, reason), n)| {
            s.sum(
                "lingertop_process_resets_sent_total",
                &[("pid", &pid.to_string()), ("reason", reason)],
            ) == f64::from(*n)
        })
    });
    for pid in &pids {
        let of = |reason| {
            scrape
                .all("lingertop_process_resets_sent_total")
                .into_iter()
                .filter(|s| {
                    s.labels.get("pid") == Some(&pid.to_string())
                        && s.labels.get("reason").map(String::as_str) == Some(reason)
                })
                .map(|s| s.value)
                .collect::<Vec<_>>()
        };
        // One series per reason, named python3 as ss would, none of another reason.
        assert_eq!(of("other"), [0.0], "pid {pid}");
        assert_eq!(of("linger-0").len(), 1, "pid {pid}");
    }

    // watch --events: one close line per reset, with its pid and reason.
    let mut got: BTreeMap<(u32, String), u32> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    let sent = |got: &BTreeMap<(u32, String), u32>| got.values().sum::<u32>();
    while sent(&got) < total && Instant::now() < deadline {
        let Ok(line) = watched.stdout.recv_timeout(Duration::from_millis(200)) else {
            continue;
        };
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        if v["event"] == "close" && v["kind"] == "reset-sent" {
            let pid = v["pid"].as_u64().expect("a reset sent names its process") as u32;
            let reason = v["reason"].as_str().unwrap_or("none").to_string();
            *got.entry((pid, reason)).or_default() += 1;
        }
    }
    let want_lines: BTreeMap<(u32, String), u32> = want
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|((pid, r), n)| ((*pid, r.to_string()), *n))
        .collect();
    assert_eq!(
        got, want_lines,
        "watch --events' reset-sent lines by pid and reason"
    );

    // The closes panel: SENT UNREAD LNGR-0 OTHER RECV of each client's row.
    let row = |screen: &str, pid: u32| -> Option<Vec<String>> {
        let line = screen.lines().find(|l| l.contains(&format!(" {pid} ")))?;
        let cells: Vec<String> = line
            .rsplit('│')
            .next()?
            .split_whitespace()
            .map(str::to_string)
            .collect();
        (cells.len() >= 5).then(|| cells[cells.len() - 5..].to_vec())
    };
    let expect = |linger0: u32, unread: u32| {
        [linger0 + unread, unread, linger0, 0, 0]
            .map(|n| n.to_string())
            .to_vec()
    };
    tmux.wait_until(
        "every client's row on the closes panel",
        Duration::from_secs(10),
        |t| {
            let s = t.screen();
            pids.iter()
                .zip(CLIENTS)
                .all(|(pid, (l, u))| row(&s, *pid) == Some(expect(l, u)))
        },
    );
    eprintln!("{}", tmux.screen());
    tmux.keys(&["q"]);
    tmux.assert_normal_shell();
    drop(served);
    drop(watched);
    ns.delete();
}
