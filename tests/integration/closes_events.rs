//! Every close from the kernel's own events, checked against the kernel's counters, in a
//! network namespace this test creates (so the counters are its alone) and removes on every
//! exit path. Separate child processes close connections in exactly one way each; their
//! peers are other children. Needs root (to create the namespace and load eBPF); skips with a
//! message otherwise.
//!
//! The children are this test binary run again with `LT_CLOSES_ROLE` set (see `helper`).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Graceful active closes, SO_LINGER {1, 0} resets, closes with unread data, passive closes.
const N: usize = 20;
const M: usize = 15;
const K: usize = 12;
const P: usize = 10;

/// lingertop's poll interval in these tests: every connection lives far less.
const INTERVAL_MS: u64 = 1000;

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn skip_unless_root(test: &str) -> bool {
    if !is_root() {
        eprintln!(
            "SKIPPED {test}: needs root (a network namespace and eBPF); run as root to check it"
        );
        return true;
    }
    if Command::new("ip").arg("-V").output().is_err() {
        eprintln!("SKIPPED {test}: needs ip (iproute2) for the network namespace");
        return true;
    }
    false
}

/// A network namespace, deleted on drop (also when the test panics), with every process
/// started in it killed first.
struct Netns {
    name: String,
    children: Vec<Child>,
}

impl Netns {
    fn new(tag: &str) -> Netns {
        let name = format!("lt-{tag}-{}", std::process::id());
        let _ = Command::new("ip")
            .args(["netns", "del", &name])
            .stderr(Stdio::null())
            .status();
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap();
        assert!(ok.success(), "ip netns add {name} failed");
        let ns = Netns {
            name,
            children: Vec::new(),
        };
        let ok = Command::new("ip")
            .args(["-n", &ns.name, "link", "set", "lo", "up"])
            .status()
            .unwrap();
        assert!(ok.success(), "cannot bring lo up in {}", ns.name);
        ns
    }

    /// A command run inside the namespace.
    fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A helper's own line (`LT-HELPER ...`; the test harness writes its own words first).
fn helper_line(rx: &mpsc::Receiver<String>) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).expect("the helper started");
        if let Some((_, rest)) = line.split_once("LT-HELPER ") {
            return rest.to_string();
        }
    }
}

/// Reads a child's lines on a thread, so the test can wait on them with a deadline.
fn lines_of(r: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The `Tcp:`/`TcpExt:` counters of a process's network namespace.
fn counters(pid: u32) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for (file, prefix) in [("snmp", "Tcp:"), ("netstat", "TcpExt:")] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{file}")).unwrap();
        let rows: Vec<&str> = text.lines().filter(|l| l.starts_with(prefix)).collect();
        for (k, v) in rows[0]
            .split_whitespace()
            .zip(rows[1].split_whitespace())
            .skip(1)
        {
            out.insert(k.to_string(), v.parse().unwrap_or(0));
        }
    }
    out
}

fn delta(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>, key: &str) -> u64 {
    after[key] - before[key]
}

/// The roles of the child processes: a server (listens, prints its port, serves `count`
/// connections its way) and a client (connects `count` times to the port and closes its way).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// Client closes first with a FIN; its server reads to EOF and closes.
    Active,
    /// Client closes with SO_LINGER {1, 0}; its server reads the reset and closes.
    Linger0,
    /// Client closes with unread data its server sent; the server reads the reset and closes.
    Unread,
    /// Server closes first; the client reads to EOF and closes.
    Passive,
}

const ROLES: [(Role, &str, usize); 4] = [
    (Role::Active, "active", N),
    (Role::Linger0, "linger0", M),
    (Role::Unread, "unread", K),
    (Role::Passive, "passive", P),
];

fn role_named(name: &str) -> Role {
    ROLES.iter().find(|r| r.1 == name).unwrap().0
}

/// Not a test of its own: the body of a child process when `LT_CLOSES_ROLE` is set
/// (`server:ROLE:COUNT` or `client:ROLE:COUNT:PORT`); does nothing otherwise.
#[test]
fn helper() {
    let Ok(spec) = std::env::var("LT_CLOSES_ROLE") else {
        return;
    };
    let parts: Vec<&str> = spec.split(':').collect();
    let role = role_named(parts[1]);
    let count: usize = parts[2].parse().unwrap();
    // Bounded: a peer that never comes must not leave this process behind.
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_secs(60));
        eprintln!(
            "helper {spec_}: gave up after 60 s",
            spec_ = std::process::id()
        );
        std::process::exit(3);
    });
    let mut buf = [0u8; 64];
    match parts[0] {
        "server" => {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            println!(
                "\nLT-HELPER {} {}",
                std::process::id(),
                l.local_addr().unwrap().port()
            );
            std::io::stdout().flush().unwrap();
            for _ in 0..count {
                let (mut s, _) = l.accept().unwrap();
                match role {
                    Role::Active | Role::Linger0 => {
                        // EOF for a graceful close, ECONNRESET for a reset: either ends it.
                        while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
                    }
                    Role::Unread => {
                        s.write_all(b"unread by the client").unwrap();
                        while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
                    }
                    Role::Passive => {}
                }
                drop(s);
            }
        }
        "client" => {
            let port: u16 = parts[3].parse().unwrap();
            println!("\nLT-HELPER {}", std::process::id());
            for _ in 0..count {
                let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
                match role {
                    Role::Active => {}
                    Role::Linger0 => {
                        socket2::SockRef::from(&c)
                            .set_linger(Some(Duration::ZERO))
                            .unwrap();
                    }
                    Role::Unread => {
                        // Wait until the server's bytes are here, and leave them unread.
                        let n = c.peek(&mut buf).unwrap();
                        assert!(n > 0);
                    }
                    Role::Passive => while matches!(c.read(&mut buf), Ok(n) if n > 0) {},
                }
                if role == Role::Active {
                    // Close first, then wait for the server's FIN so the close completes
                    // while this process still runs.
                    c.shutdown(Shutdown::Write).unwrap();
                    while matches!(c.read(&mut buf), Ok(n) if n > 0) {}
                }
                drop(c);
            }
        }
        other => panic!("unknown helper part {other}"),
    }
}

/// Runs the four pairs of children in `ns` and returns (role, client pid, server pid).
fn run_workload(ns: &mut Netns) -> Vec<(Role, u32, u32)> {
    let me = std::env::current_exe().unwrap();
    let me = me.to_str().unwrap();
    let mut pairs = Vec::new();
    for (role, name, count) in ROLES {
        let mut server = ns
            .command(me)
            .args([
                "--exact",
                "closes_events::helper",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("LT_CLOSES_ROLE", format!("server:{name}:{count}"))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = lines_of(server.stdout.take().unwrap());
        let first = helper_line(&out);
        let (spid, port) = first.split_once(' ').unwrap();
        let mut client = ns
            .command(me)
            .args([
                "--exact",
                "closes_events::helper",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("LT_CLOSES_ROLE", format!("client:{name}:{count}:{port}"))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let cout = lines_of(client.stdout.take().unwrap());
        let cpid = helper_line(&cout);
        for child in [&mut client, &mut server] {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Some(st) = child.try_wait().unwrap() {
                    assert!(st.success(), "{name} child failed: {st}");
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{name} child did not finish in 30 s"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        pairs.push((role, cpid.trim().parse().unwrap(), spid.parse().unwrap()));
        ns.children.push(client);
        ns.children.push(server);
    }
    pairs
}

/// lingertop's watch, started in `ns`; returns its pid and its stdout lines once it says how
/// it reads closes (that stderr line is returned too).
fn start_watch(
    ns: &mut Netns,
    prefix: &[&str],
    events: &str,
) -> (u32, mpsc::Receiver<String>, String) {
    let bin = env!("CARGO_BIN_EXE_lingertop");
    let mut cmd = ns.command(prefix.first().copied().unwrap_or(bin));
    cmd.args(prefix.iter().skip(1));
    if !prefix.is_empty() {
        cmd.arg(bin);
    }
    let interval = format!("{INTERVAL_MS}ms");
    let mut child = cmd
        .args([
            "watch",
            &format!("--events={events}"),
            "--interval",
            &interval,
            // The test's own namespace only: as nobody, the note about the namespaces it
            // cannot enter would otherwise come first.
            "--netns",
            "host",
        ])
        .env("XDG_CONFIG_HOME", "/nonexistent-lingertop-test")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = lines_of(child.stdout.take().unwrap());
    let err = lines_of(child.stderr.take().unwrap());
    let pid = child.id();
    ns.children.push(child);
    // The first stderr line, about the first poll, says which source it uses (and why it
    // fell back); it comes after the counters' baseline is read.
    let said = err
        .recv_timeout(Duration::from_secs(30))
        .expect("watch says how it reads closes");
    (pid, out, said)
}

fn kind_of(line: &Value) -> String {
    match line["reason"].as_str() {
        Some(r) => format!("{}/{r}", line["kind"].as_str().unwrap()),
        None => line["kind"].as_str().unwrap().to_string(),
    }
}

#[test]
fn every_close_is_counted_by_kind_and_attributed_to_the_child_that_owned_it() {
    if skip_unless_root("every_close_is_counted_by_kind_and_attributed_to_the_child_that_owned_it")
    {
        return;
    }
    let mut ns = Netns::new("closes");
    let (watch_pid, out, said) = start_watch(&mut ns, &[], "on");
    assert!(
        said.contains("closes from the kernel's events"),
        "watch said: {said}"
    );
    let before = counters(watch_pid);
    let pairs = run_workload(&mut ns);
    let after = counters(watch_pid);

    let expected_total = 2 * (N + M + K + P);
    let mut closes: Vec<Value> = Vec::new();
    let mut last_counters: Option<Value> = None;
    let deadline = Instant::now() + Duration::from_secs(20);
    // Until every close is in and the counters line has caught up; then one more interval so
    // a close too many would show.
    let mut settled: Option<Instant> = None;
    while settled.is_none_or(|s| s.elapsed() < Duration::from_millis(2 * INTERVAL_MS)) {
        assert!(
            Instant::now() < deadline,
            "closes seen so far: {}",
            closes.len()
        );
        let Ok(line) = out.recv_timeout(Duration::from_millis(100)) else {
            continue;
        };
        let v: Value = serde_json::from_str(&line).unwrap();
        match (v["event"].as_str(), v["source"].as_str()) {
            (Some("close"), Some("kernel")) => closes.push(v),
            (Some("closes"), Some("counters")) => last_counters = Some(v),
            (Some("lost"), _) => panic!("events lost: {line}"),
            _ => {}
        }
        let counters_in = last_counters.as_ref().is_some_and(|c| {
            c["since_start"]["active_opens"].as_u64() == Some(delta(&before, &after, "ActiveOpens"))
        });
        if settled.is_none() && closes.len() >= expected_total && counters_in {
            settled = Some(Instant::now());
        }
    }

    // By process and kind, exactly.
    let mut by_pid: BTreeMap<u64, BTreeMap<String, usize>> = BTreeMap::new();
    for c in &closes {
        let pid = c["pid"]
            .as_u64()
            .unwrap_or_else(|| panic!("a close without owner: {c}"));
        assert_eq!(c["attribution"], "owner", "{c}");
        let lifetime = c["lifetime_ms"].as_f64().expect("lifetime known");
        assert!(
            lifetime < INTERVAL_MS as f64,
            "lived {lifetime} ms, longer than a poll: {c}"
        );
        *by_pid
            .entry(pid)
            .or_default()
            .entry(kind_of(c))
            .or_default() += 1;
    }
    let mut expected: BTreeMap<u64, BTreeMap<String, usize>> = BTreeMap::new();
    for (role, client, server) in &pairs {
        let (c_kind, s_kind, n) = match role {
            Role::Active => ("graceful-active", "graceful-passive", N),
            Role::Linger0 => ("reset-sent/linger-0", "reset-received", M),
            Role::Unread => ("reset-sent/unread-data", "reset-received", K),
            Role::Passive => ("graceful-passive", "graceful-active", P),
        };
        expected.insert(
            u64::from(*client),
            BTreeMap::from([(c_kind.to_string(), n)]),
        );
        expected.insert(
            u64::from(*server),
            BTreeMap::from([(s_kind.to_string(), n)]),
        );
    }
    assert_eq!(
        by_pid, expected,
        "closes by pid and kind (pairs: {pairs:?})"
    );

    // The kinds the counters cover agree with their deltas around the test.
    let total = |k: &str| {
        by_pid
            .values()
            .map(|m| m.get(k).copied().unwrap_or(0) as u64)
            .sum::<u64>()
    };
    let linger0 = total("reset-sent/linger-0");
    let unread = total("reset-sent/unread-data");
    assert_eq!(delta(&before, &after, "TCPAbortOnData"), linger0);
    assert_eq!(delta(&before, &after, "TCPAbortOnClose"), unread);
    assert_eq!(delta(&before, &after, "OutRsts"), linger0 + unread);
    assert_eq!(
        delta(&before, &after, "EstabResets"),
        linger0 + unread + total("reset-received")
    );
    assert_eq!(
        delta(&before, &after, "ActiveOpens"),
        (N + M + K + P) as u64
    );
    assert_eq!(
        delta(&before, &after, "PassiveOpens"),
        (N + M + K + P) as u64
    );
    // And lingertop's own counters line says the same.
    let c = &last_counters.expect("a counters line")["since_start"];
    assert_eq!(c["reset_sent_linger0"].as_u64(), Some(linger0));
    assert_eq!(c["reset_sent_unread_data"].as_u64(), Some(unread));
    assert_eq!(c["resets_sent"].as_u64(), Some(linger0 + unread));
}

#[test]
fn without_privilege_the_counters_give_the_kinds_they_count() {
    if skip_unless_root("without_privilege_the_counters_give_the_kinds_they_count") {
        return;
    }
    let mut ns = Netns::new("counters");
    let nobody = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
    ];
    let (watch_pid, out, said) = start_watch(&mut ns, &nobody, "auto");
    assert!(
        said.contains("CAP_BPF") && said.contains("/proc/net/snmp"),
        "the fallback is said plainly: {said}"
    );
    let before = counters(watch_pid);
    run_workload(&mut ns);
    let after = counters(watch_pid);
    let deadline = Instant::now() + Duration::from_secs(20);
    let want_opens = delta(&before, &after, "ActiveOpens");
    let last = loop {
        assert!(Instant::now() < deadline, "no counters line caught up");
        let Ok(line) = out.recv_timeout(Duration::from_millis(100)) else {
            continue;
        };
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_ne!(
            v["source"], "kernel",
            "no kernel events without privilege: {line}"
        );
        if v["event"] == "closes" && v["since_start"]["active_opens"].as_u64() == Some(want_opens) {
            break v;
        }
    };
    let c = &last["since_start"];
    assert_eq!(c["reset_sent_linger0"].as_u64(), Some(M as u64));
    assert_eq!(c["reset_sent_unread_data"].as_u64(), Some(K as u64));
    assert_eq!(c["resets_sent"].as_u64(), Some((M + K) as u64));
    assert_eq!(c["established_resets"].as_u64(), Some(2 * (M + K) as u64));
    assert_eq!(c["passive_opens"].as_u64(), Some((N + M + K + P) as u64));
}

#[test]
fn events_on_without_privilege_fails_with_what_to_do_and_off_loads_nothing() {
    if skip_unless_root("events_on_without_privilege_fails_with_what_to_do_and_off_loads_nothing") {
        return;
    }
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_lingertop"))
        .args(["watch", "--events=on", "--interval", "100ms"])
        .env("XDG_CONFIG_HOME", "/nonexistent-lingertop-test")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("CAP_BPF") && err.contains("--events off"),
        "{err}"
    );

    // As root with --events=off: counters only, and no program attached by lingertop.
    let mut ns = Netns::new("off");
    let (_pid, out, said) = start_watch(&mut ns, &[], "off");
    assert!(said.contains("closes from the kernel's counters"), "{said}");
    assert!(
        !said.contains("CAP_BPF"),
        "off is asked for, not a fallback: {said}"
    );
    run_workload(&mut ns);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(Instant::now() < deadline, "no counters line");
        let Ok(line) = out.recv_timeout(Duration::from_millis(100)) else {
            continue;
        };
        assert!(!line.contains(r#""source":"kernel""#), "{line}");
        if line.contains(r#""source":"counters""#)
            && line.contains(&format!(r#""reset_sent_linger0":{M}"#))
        {
            break;
        }
    }
}

#[test]
fn a_tiny_ring_buffer_loses_events_and_says_how_many() {
    if skip_unless_root("a_tiny_ring_buffer_loses_events_and_says_how_many") {
        return;
    }
    use lingertop::events::{EventOptions, KernelEvents};
    use std::sync::atomic::Ordering;
    let events = KernelEvents::start(&EventOptions {
        ring_bytes: 4096,
        netns: None,
        every_netns: false,
        queue: 0,
    })
    .expect("kernel events load as root");
    // Linger-0 connections on loopback as fast as this thread can, 500 at a time: about 16
    // records each, far more than a 4 KiB ring (39 records) holds between two reads. On a
    // loaded machine (other tests of this binary beside it) this thread may be slower than
    // the reader for a while: it goes on, up to 20,000, until records are lost.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    const BATCH: usize = 500;
    const MAX_CONNS: usize = 20_000;
    let shared = events.shared().clone();
    let mut made = 0;
    while made < MAX_CONNS && shared.lost.load(Ordering::Relaxed) == 0 {
        for _ in 0..BATCH {
            let c = TcpStream::connect(addr).unwrap();
            let (s, _) = l.accept().unwrap();
            socket2::SockRef::from(&c)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
            drop(c);
            drop(s);
        }
        made += BATCH;
        // The reader's next read (every 50 ms) says what the ring dropped.
        std::thread::sleep(Duration::from_millis(60));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while shared.lost.load(Ordering::Relaxed) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let lost = shared.lost.load(Ordering::Relaxed);
    let closes = shared.tally().all.total();
    assert!(
        lost > 0,
        "a 4 KiB ring kept up with {made} connections ({closes} closes)"
    );
    assert!(
        closes < 2 * made as u64,
        "{lost} lost, yet every close of this test counted ({closes})"
    );
    drop(events);
}

#[test]
fn sockets_of_other_namespaces_are_left_out_in_the_kernel() {
    if skip_unless_root("sockets_of_other_namespaces_are_left_out_in_the_kernel") {
        return;
    }
    use lingertop::events::{EventOptions, KernelEvents, own_netns};
    use std::sync::atomic::Ordering;
    let own = own_netns().expect("this process's network namespace");
    let (elsewhere, here) = [own.wrapping_add(1), own]
        .map(|ns| {
            KernelEvents::start(&EventOptions {
                netns: Some(ns),
                ..EventOptions::default()
            })
            .expect("kernel events load as root")
        })
        .into();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    for _ in 0..20 {
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        drop((c, s));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while here.shared().tally().all.total() < 40 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        here.shared().tally().all.total() >= 40,
        "this namespace's closes are seen"
    );
    std::thread::sleep(Duration::from_millis(200));
    // Not a record read for another namespace: the filter runs before the ring buffer.
    assert_eq!(elsewhere.shared().events.load(Ordering::Relaxed), 0);
}
