//! `lingertop close` on real connections (root; loopback in a network namespace the test
//! creates, `ss` inside it as the oracle): a python process holds the connections, its
//! peers in the same process, and answers what its sockets see on its stdin.

#![cfg(target_os = "linux")]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Output, Stdio};

use crate::common::netns::{Netns, privileged, wait_until};
use serde_json::Value;

/// Listens, makes N connections to itself and holds both ends: with `close-wait` the
/// clients close first (the held server ends sit in CLOSE_WAIT, the clients' in
/// FIN_WAIT_2), with `established` nobody closes, with `time-wait` the clients close and
/// the servers answer (the clients' ends wait in TIME_WAIT, nothing is held). Prints its
/// port, then answers commands on stdin, one line each:
/// - `fds`: how many held server descriptors are still open;
/// - `peers`: what each client's recv gets within 0.5 s: counts of eof, reset, data, wait;
/// - `reuse`: closes the first held server descriptor N and puts a new connection's
///   server end under the same number N; prints the new connection's client port.
const HOLDER: &str = r#"
import os, socket, sys, errno
mode, n = sys.argv[1], int(sys.argv[2])
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(256)
port = l.getsockname()[1]
clients, held = [], []
for _ in range(n):
    clients.append(socket.create_connection(("127.0.0.1", port)))
    held.append(l.accept()[0])
if mode in ("close-wait", "time-wait"):
    for c in clients: c.close()
    clients = []
if mode == "time-wait":
    for s in held: s.close()
    held = []
print(port, flush=True)
extra = []
for line in sys.stdin:
    cmd = line.split()
    if cmd[0] == "fds":
        ok = 0
        for s in held:
            try:
                os.fstat(s.fileno()); ok += 1
            except OSError:
                pass
        print(ok, flush=True)
    elif cmd[0] == "peers":
        got = {"eof": 0, "reset": 0, "data": 0, "wait": 0}
        for c in clients:
            c.settimeout(0.5)
            try:
                got["data" if c.recv(1) else "eof"] += 1
            except ConnectionResetError:
                got["reset"] += 1
            except socket.timeout:
                got["wait"] += 1
        print(" ".join(f"{k}={v}" for k, v in sorted(got.items())), flush=True)
    elif cmd[0] == "reuse":
        c = socket.create_connection(("127.0.0.1", port))
        a = l.accept()[0]
        fd = held[0].detach()
        os.dup2(a.fileno(), fd)
        a.close()
        held[0] = socket.socket(fileno=fd)
        extra.append(c)
        print(c.getsockname()[1], flush=True)
    elif cmd[0] == "extra":
        c = extra[0]; c.settimeout(0.5)
        try:
            print("data" if c.recv(1) else "eof", flush=True)
        except socket.timeout:
            print("wait", flush=True)
        except ConnectionResetError:
            print("reset", flush=True)
"#;

/// The python holder and its pipes.
struct Holder {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    port: u16,
}

impl Holder {
    fn start(ns: &Netns, mode: &str, n: usize) -> Holder {
        let mut child = ns
            .command("python3")
            .args(["-c", HOLDER, mode, &n.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 in the namespace");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let port = line.trim().parse().expect("the holder's port");
        Holder {
            child,
            stdin,
            stdout,
            port,
        }
    }

    fn ask(&mut self, cmd: &str) -> String {
        writeln!(self.stdin, "{cmd}").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        line.trim().to_string()
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `lingertop close ARGS --format json` inside the namespace (its own namespace only).
fn close(ns: &Netns, args: &[&str]) -> Output {
    close_as(ns, &[], args)
}

/// The same, run through `prefix` (e.g. setpriv) inside the namespace.
fn close_as(ns: &Netns, prefix: &[&str], args: &[&str]) -> Output {
    let mut cmd = match prefix.split_first() {
        Some((first, rest)) => {
            let mut c = ns.command(first);
            c.args(rest).arg(env!("CARGO_BIN_EXE_lingertop"));
            c
        }
        None => ns.command(env!("CARGO_BIN_EXE_lingertop")),
    };
    cmd.args(["--netns", "host", "close"])
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .env_remove("LINGERTOP_CONFIG")
        .args(args)
        .args(["--format", "json"])
        .stdin(Stdio::null())
        .env_remove("SSH_CONNECTION")
        .output()
        .expect("run lingertop close")
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}); stdout: {} stderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The `result` of every row, counted.
fn results(v: &Value) -> std::collections::BTreeMap<String, usize> {
    let mut m = std::collections::BTreeMap::new();
    for r in v["connections"].as_array().expect("rows") {
        *m.entry(r["result"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
    }
    m
}

/// The sockets `ss -tanH FILTER` lists inside the namespace (counted by line: with a
/// state filter ss leaves the state column out, which `Netns::ss` does not parse).
fn count(ns: &Netns, filter: &str) -> usize {
    let out = ns
        .command("ss")
        .arg("-tanH")
        .args(filter.split_whitespace())
        .output()
        .expect("ss");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count()
}

#[test]
fn a_graceful_close_of_40_close_wait_leaves_none_and_the_process_alive_with_its_descriptors() {
    if !privileged("graceful_close_wait") {
        return;
    }
    let ns = Netns::new("cw").expect("netns");
    let mut h = Holder::start(&ns, "close-wait", 40);
    let sport = format!("sport = :{}", h.port);
    wait_until("40 CLOSE_WAIT", || {
        count(&ns, &format!("state close-wait {sport}")) == 40
    });
    let pid = h.pid().to_string();
    let out = close(
        &ns,
        &[
            "--state",
            "close-wait",
            "--pid",
            &pid,
            "--graceful",
            "--yes",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(v["how"], "graceful");
    assert_eq!(results(&v).get("closed"), Some(&40), "{v}");
    // The kernel's table: no CLOSE_WAIT left, every peer in TIME_WAIT.
    assert_eq!(count(&ns, &format!("state close-wait {sport}")), 0);
    assert_eq!(count(&ns, &format!("state last-ack {sport}")), 0);
    let dport = format!("dport = :{}", h.port);
    assert_eq!(count(&ns, &format!("state time-wait {dport}")), 40);
    assert!(h.alive(), "the holder died");
    assert_eq!(h.ask("fds"), "40", "its descriptors are still open");
    // Every action went to stderr.
    assert_eq!(
        stderr(&out).matches("graceful close of").count(),
        40,
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_abort_of_established_resets_the_peer() {
    if !privileged("abort_established") {
        return;
    }
    let ns = Netns::new("ab").expect("netns");
    let mut h = Holder::start(&ns, "established", 5);
    let local = format!("127.0.0.1:{}", h.port);
    let out = close(
        &ns,
        &[
            "--local",
            &local,
            "--state",
            "established",
            "--abort",
            "--yes",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(results(&json(&out)).get("closed"), Some(&5));
    assert_eq!(
        count(&ns, &format!("state established sport = :{}", h.port)),
        0
    );
    assert_eq!(h.ask("peers"), "data=0 eof=0 reset=5 wait=0");
}

#[test]
fn a_dry_run_changes_nothing() {
    if !privileged("dry_run") {
        return;
    }
    let ns = Netns::new("dry").expect("netns");
    let mut h = Holder::start(&ns, "close-wait", 3);
    let cw = format!("state close-wait sport = :{}", h.port);
    wait_until("3 CLOSE_WAIT", || count(&ns, &cw) == 3);
    let before = ns.ss(&cw);
    let pid = h.pid().to_string();
    let out = close(
        &ns,
        &[
            "--pid",
            &pid,
            "--state",
            "close-wait",
            "--abort",
            "--dry-run",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(results(&json(&out)).get("would-close"), Some(&3));
    assert_eq!(ns.ss(&cw), before);
    assert_eq!(h.ask("peers"), "data=0 eof=0 reset=0 wait=0");
}

#[test]
fn time_wait_is_refused_gracefully_and_gone_when_aborted() {
    if !privileged("time_wait") {
        return;
    }
    let ns = Netns::new("tw").expect("netns");
    let h = Holder::start(&ns, "time-wait", 4);
    let tw = format!("state time-wait dport = :{}", h.port);
    wait_until("4 TIME_WAIT", || count(&ns, &tw) == 4);
    let port = h.port.to_string();
    let out = close(
        &ns,
        &[
            "--state",
            "time-wait",
            "--port",
            &port,
            "--graceful",
            "--yes",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(results(&v).get("refused"), Some(&4), "{v}");
    assert!(
        v["connections"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["why"] == "no-descriptor"),
        "{v}"
    );
    assert_eq!(count(&ns, &tw), 4);
    let out = close(
        &ns,
        &["--state", "time-wait", "--port", &port, "--abort", "--yes"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(results(&json(&out)).get("closed"), Some(&4));
    assert_eq!(count(&ns, &tw), 0);
}

#[test]
fn a_listener_is_refused_unless_included() {
    if !privileged("listen") {
        return;
    }
    let ns = Netns::new("ls").expect("netns");
    let h = Holder::start(&ns, "established", 1);
    let listen = format!("state listening sport = :{}", h.port);
    let local = format!("127.0.0.1:{}", h.port);
    let out = close(
        &ns,
        &["--state", "listen", "--local", &local, "--abort", "--yes"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(v["connections"][0]["why"], "listen", "{v}");
    assert!(
        v["connections"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("--include-listen")
    );
    assert_eq!(count(&ns, &listen), 1);
}

#[test]
fn nobody_against_roots_process_is_refused_naming_what_is_missing() {
    if !privileged("nobody") {
        return;
    }
    let ns = Netns::new("nb").expect("netns");
    let mut h = Holder::start(&ns, "close-wait", 2);
    let cw = format!("state close-wait sport = :{}", h.port);
    wait_until("2 CLOSE_WAIT", || count(&ns, &cw) == 2);
    let before = ns.ss(&cw);
    let nobody = [
        "setpriv",
        "--reuid",
        "nobody",
        "--regid",
        "nogroup",
        "--clear-groups",
    ];
    let local = format!("127.0.0.1:{}", h.port);
    let sel = ["--state", "close-wait", "--local", &local, "--yes"];
    let out = close_as(&ns, &nobody, &[&sel[..], &["--graceful"]].concat());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v = json(&out);
    for r in v["connections"].as_array().unwrap() {
        assert_eq!(r["why"], "no-ptrace", "{v}");
        assert!(
            r["detail"].as_str().unwrap().contains("CAP_SYS_PTRACE"),
            "{v}"
        );
    }
    let out = close_as(&ns, &nobody, &[&sel[..], &["--abort"]].concat());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(v["connections"].as_array().unwrap().len(), 2);
    for r in v["connections"].as_array().unwrap() {
        assert_eq!(r["why"], "no-net-admin", "{v}");
        assert!(
            r["detail"].as_str().unwrap().contains("CAP_NET_ADMIN"),
            "{v}"
        );
    }
    assert_eq!(ns.ss(&cw), before, "nothing touched");
    assert_eq!(h.ask("fds"), "2");
}

#[test]
fn a_selection_over_max_is_refused_whole() {
    if !privileged("max") {
        return;
    }
    let ns = Netns::new("mx").expect("netns");
    let h = Holder::start(&ns, "close-wait", 12);
    let cw = format!("state close-wait sport = :{}", h.port);
    wait_until("12 CLOSE_WAIT", || count(&ns, &cw) == 12);
    let pid = h.pid().to_string();
    let out = close(&ns, &["--pid", &pid, "--abort", "--yes", "--max", "10"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("more than --max 10"),
        "{}",
        stderr(&out)
    );
    assert_eq!(count(&ns, &cw), 12);
}

#[test]
fn without_yes_and_without_a_terminal_it_refuses() {
    if !privileged("no_yes") {
        return;
    }
    let ns = Netns::new("ny").expect("netns");
    let h = Holder::start(&ns, "close-wait", 1);
    let cw = format!("state close-wait sport = :{}", h.port);
    wait_until("1 CLOSE_WAIT", || count(&ns, &cw) == 1);
    let pid = h.pid().to_string();
    let out = close(&ns, &["--pid", &pid, "--abort"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("without --yes"), "{}", stderr(&out));
    assert_eq!(count(&ns, &cw), 1);
}

#[test]
fn a_descriptor_number_reused_between_listing_and_acting_is_refused_and_the_new_connection_untouched()
 {
    if !privileged("reused_fd") {
        return;
    }
    let ns = Netns::new("ru").expect("netns");
    let mut h = Holder::start(&ns, "close-wait", 1);
    let cw = format!("state close-wait sport = :{}", h.port);
    wait_until("1 CLOSE_WAIT", || count(&ns, &cw) == 1);
    let dir = tempfile::tempdir().unwrap();
    let go = dir.path().join("go");
    let pid = h.pid().to_string();
    let mut child = ns
        .command(env!("CARGO_BIN_EXE_lingertop"))
        .args(["--netns", "host", "close"])
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .env_remove("LINGERTOP_CONFIG")
        .args([
            "--pid",
            &pid,
            "--state",
            "close-wait",
            "--graceful",
            "--yes",
        ])
        .args(["--format", "json"])
        .env("LINGERTOP_TEST_CLOSE_PAUSE", &go)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("test: listed") {
        line.clear();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "lingertop ended early"
        );
    }
    // The same descriptor number now holds another, established connection.
    let new_port = h.ask("reuse");
    std::fs::write(&go, b"").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_eq!(v["connections"][0]["why"], "identity-changed", "{v}");
    // The new connection: still established both ways, its client reads nothing.
    assert_eq!(
        count(&ns, &format!("state established sport = :{new_port}")),
        1
    );
    assert_eq!(h.ask("extra"), "wait");
    assert_eq!(h.ask("fds"), "1");
}

#[test]
fn closes_lingertop_makes_are_its_actions_in_watch_and_serve_never_the_applications() {
    let test = "closes_are_lingertops_actions";
    if !privileged(test) {
        return;
    }
    use crate::common::live::{Served, Watched, next_line};
    use std::time::{Duration, Instant};
    let mut ns = Netns::new("act").expect("netns");
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

    let h = Holder::start(&ns, "close-wait", 6);
    let e = Holder::start(&ns, "established", 4);
    let cw = format!("state close-wait sport = :{}", h.port);
    wait_until("6 CLOSE_WAIT", || count(&ns, &cw) == 6);
    let pid = h.pid().to_string();
    let out = close(
        &ns,
        &[
            "--pid",
            &pid,
            "--state",
            "close-wait",
            "--graceful",
            "--yes",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let local = format!("127.0.0.1:{}", e.port);
    let out = close(
        &ns,
        &[
            "--local",
            &local,
            "--state",
            "established",
            "--abort",
            "--yes",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // watch --events: one action line per close, by how, naming the owner; no close line
    // of either holder is a reset it sent.
    let holders = [u64::from(h.pid()), u64::from(e.pid())];
    let (mut graceful, mut abort, mut resets) = (0, 0, 0);
    let deadline = Instant::now() + Duration::from_secs(15);
    while (graceful < 6 || abort < 4) && Instant::now() < deadline {
        let Ok(line) = watched.stdout.recv_timeout(Duration::from_millis(200)) else {
            continue;
        };
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        if v["event"] == "action" {
            match v["how"].as_str() {
                Some("graceful") => graceful += 1,
                Some("abort") => abort += 1,
                other => panic!("an action line without how: {other:?} {line}"),
            }
            assert!(holders.contains(&v["pid"].as_u64().unwrap_or(0)), "{line}");
        }
        if v["event"] == "close"
            && v["kind"] == "reset-sent"
            && holders.contains(&v["pid"].as_u64().unwrap_or(0))
        {
            resets += 1;
        }
    }
    assert_eq!((graceful, abort, resets), (6, 4, 0));

    // serve: the actions counted apart; the holders' reset counts never moved.
    let scrape = served.scrape_until("the actions counted", |s| {
        s.get("lingertop_actions_total", &[("how", "abort")]) == Some(4.0)
    });
    assert_eq!(
        scrape.get("lingertop_actions_total", &[("how", "graceful")]),
        Some(6.0)
    );
    for p in [h.pid(), e.pid()] {
        let pid = p.to_string();
        assert_eq!(
            scrape.sum("lingertop_process_resets_sent_total", &[("pid", &pid)]),
            0.0,
            "pid {pid}"
        );
    }
}
