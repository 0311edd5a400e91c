//! What every mode shares, against the real binary: SIGHUP ends `serve`, `watch` and
//! `lab --scenario close-wait-leak --hold` cleanly (exit 0; the lab closes its own sockets,
//! checked in the kernel's /proc/net/tcp and tcp6); options given before the subcommand are
//! honoured or refused, never ignored; `--interval` has the config's 100ms minimum.

use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::live::{Served, Watched, next_line, signal, wait_exit};
use crate::common::*;
use serde_json::Value;

#[test]
fn sighup_ends_serve_cleanly() {
    let served = Served::start(&["--interval", "100ms"]);
    let (status, _, _) = served.get("/healthz", None);
    assert_eq!(status, 200);
    let exit = served.stop(libc::SIGHUP);
    assert_eq!(exit.code(), Some(0), "serve on SIGHUP: {exit:?}");
}

#[test]
fn sighup_ends_watch_cleanly() {
    let mut w = Watched::start(&["--interval", "100ms"]);
    // A line means the loop runs (and the handlers are in place: they come before it).
    let line = next_line(&w.stdout, Duration::from_secs(10), "a poll line");
    assert!(line.starts_with('{'), "{line}");
    signal(&w.child, libc::SIGHUP);
    let exit = wait_exit(&mut w.child, Duration::from_secs(10));
    assert_eq!(exit.code(), Some(0), "watch on SIGHUP: {exit:?}");
}

/// The TCP sockets with `port` on either side, from the kernel's own text tables:
/// (state as the kernel's hex code, local port, remote port).
fn proc_net_tcp(port: u16) -> Vec<(u8, u16, u16)> {
    let port_of = |hex: &str| {
        hex.rsplit(':')
            .next()
            .and_then(|p| u16::from_str_radix(p, 16).ok())
    };
    let mut out = Vec::new();
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (Some(l), Some(r), Some(st)) = (
                f.get(1).and_then(|s| port_of(s)),
                f.get(2).and_then(|s| port_of(s)),
                f.get(3).and_then(|s| u8::from_str_radix(s, 16).ok()),
            ) else {
                continue;
            };
            if l == port || r == port {
                out.push((st, l, r));
            }
        }
    }
    out
}

const TCP_CLOSE_WAIT: u8 = 0x08;
const TCP_TIME_WAIT: u8 = 0x06;

#[test]
fn sighup_ends_the_lab_hold_and_the_lab_closes_its_sockets() {
    let mut lab = lingertop()
        .args([
            "lab",
            "--scenario",
            "close-wait-leak",
            "-n",
            "3",
            "--hold",
            "60s",
            "--format",
            "json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn lingertop lab");
    let report: Value = serde_json::Deserializer::from_reader(lab.stdout.take().unwrap())
        .into_iter::<Value>()
        .next()
        .expect("a report")
        .expect("JSON");
    let mut stderr = BufReader::new(lab.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    // Said once the handlers are in place.
    assert!(line.contains("holding 3 CLOSE_WAIT"), "{line}");
    let port: u16 = report["listener"]
        .as_str()
        .and_then(|l| l.parse::<std::net::SocketAddr>().ok())
        .map(|a| a.port())
        .unwrap_or_else(|| panic!("no listener in {report}"));
    let held = proc_net_tcp(port)
        .iter()
        .filter(|s| s.0 == TCP_CLOSE_WAIT && s.1 == port)
        .count();
    assert_eq!(
        held,
        3,
        "the hold's CLOSE_WAIT sockets: {:?}",
        proc_net_tcp(port)
    );

    let started = Instant::now();
    signal(&lab, libc::SIGHUP);
    let exit = wait_exit(&mut lab, Duration::from_secs(10));
    let mut rest = String::new();
    let _ = stderr.read_to_string(&mut rest);
    assert_eq!(exit.code(), Some(0), "lab on SIGHUP: {exit:?} {rest}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the hold ended early"
    );
    assert!(rest.contains("closed the CLOSE_WAIT"), "{rest}");
    // Only the TIME_WAIT of the orderly closes may outlive the lab (the kernel keeps it).
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let left: Vec<_> = proc_net_tcp(port)
            .into_iter()
            .filter(|s| s.0 != TCP_TIME_WAIT)
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "lab sockets outlived the lab: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs the binary; (exit status, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    let out = lingertop().args(args).output().expect("run lingertop");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Fails unless the run exits 1 with one line on stderr containing every one of `words`.
fn refused(args: &[&str], words: &[&str]) {
    let (code, stdout, stderr) = run(args);
    assert_eq!(code, 1, "{args:?}: {stderr}");
    assert!(stdout.is_empty(), "{args:?} printed {stdout}");
    assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    for w in words {
        assert!(stderr.contains(w), "{args:?}: {w:?} not in {stderr}");
    }
}

#[test]
fn a_filter_before_snapshot_is_the_snapshots_filter() {
    let l = listener(V4);
    let port = l.local_addr().unwrap().port().to_string();
    let filter = format!("port:{port}");
    let out = lingertop()
        .args(["--filter", &filter, "snapshot", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let json = parse(&out);
    assert_eq!(json["filter"], filter.as_str(), "{json}");
    // Every row has our port on one side (other programs' loopback churn may reuse it as
    // an ephemeral port, so more than our listener can match), and our listener is there.
    let conns = json["connections"].as_array().unwrap();
    let ours = format!(":{port}");
    for c in conns {
        let (l, r) = (c["local"].as_str().unwrap(), c["remote"].as_str().unwrap());
        assert!(l.ends_with(&ours) || r.ends_with(&ours), "{c}");
    }
    let local = l.local_addr().unwrap().to_string();
    assert!(
        conns
            .iter()
            .any(|c| c["state"] == "LISTEN" && c["local"] == local.as_str()),
        "our listener: {json}"
    );
    assert!(
        json["total_connections"].as_u64().unwrap() > conns.len() as u64,
        "the filter left some out: {json}"
    );

    // A bad one is an error, not a snapshot of everything.
    refused(
        &["--filter", "state:bogus", "snapshot", "--format", "json"],
        &["bad --filter", "bogus"],
    );
    // Given on both sides: refused rather than one silently winning.
    refused(
        &["--filter", "state:listen", "snapshot", "--filter", "port:1"],
        &["--filter", "both before and after `snapshot`"],
    );
}

#[test]
fn an_interval_before_snapshot_takes_the_second_poll() {
    let (code, stdout, stderr) = run(&["--interval", "200ms", "snapshot", "--format", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let json: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["polls"], 2, "{stderr}");
    assert_eq!(json["interval_secs"], 0.2);
    assert!(stderr.contains("polling again in 200ms"), "{stderr}");
}

#[test]
fn options_a_subcommand_has_not_are_refused_before_it() {
    refused(
        &["--interval", "1s", "lab", "--all"],
        &["--interval does not apply to `lab`"],
    );
    refused(
        &["--filter", "port:1", "serve", "--listen", "127.0.0.1:0"],
        &["--filter does not apply to `serve`"],
    );
    refused(
        &["--filter", "port:1", "lab", "--all"],
        &["--filter does not apply to `lab`"],
    );
}

#[test]
fn intervals_below_the_configs_minimum_are_refused_everywhere() {
    for args in [
        &["--interval", "10ms", "snapshot"][..],
        &["snapshot", "--interval", "99ms"],
        &["watch", "--interval", "50ms"],
        &["serve", "--interval", "10ms"],
        &["--interval", "10ms"],
    ] {
        refused(args, &["too short", "100ms"]);
    }
    refused(&["watch", "--interval", "2h"], &["too long", "1h"]);
}
