//! `--resolve` against a DNS of the test's own, without the network: the test makes a
//! network namespace, gives it `/etc/netns/NAME/resolv.conf` (which `ip netns exec`
//! bind-mounts over /etc/resolv.conf) naming a PTR responder it runs inside that
//! namespace on 127.0.0.1:53 and a second server on 127.0.0.2:53 that never answers, and
//! holds connections there between addresses of TEST-NET-1 (192.0.2.0/24, on the
//! namespace's own loopback: nothing leaves it). Then `lingertop snapshot --resolve` must
//! show the responder's name for one address, the address (a null name) for the one whose
//! lookup never answers, within a bounded time, and a hostile name neutralised; without
//! `--resolve` no DNS packet may be sent. The dashboard, in tmux in the same namespace,
//! must send none until `n`, then show the name where the address was. Needs root; skips,
//! saying so, without it.

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::common::netns::{Netns, ip, privileged};
use serde_json::Value;

/// Answered with [`NAME`].
const NAMED: &str = "192.0.2.1";
/// Never answered, by either server.
const SILENT: &str = "192.0.2.2";
/// Answered with [`HOSTILE_NAME`].
const HOSTILE: &str = "192.0.2.3";
const NAME: &str = "named-by-test.lingertop.example";
/// A PTR name with a terminal escape in its first label.
const HOSTILE_NAME: &[&[u8]] = &[b"evil\x1b[31m", b"example"];
/// `resolve.timeout` for these runs: the snapshot waits this long for SILENT.
const TIMEOUT: Duration = Duration::from_millis(1000);

/// The tests here one at a time: each may create and remove /etc/netns itself.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// `/etc/netns/NAME/`, removed when dropped (a failed assertion included).
struct EtcNetns(PathBuf);

impl EtcNetns {
    fn new(ns: &Netns) -> EtcNetns {
        let dir = PathBuf::from("/etc/netns").join(&ns.name);
        std::fs::create_dir_all(&dir).expect("create /etc/netns/NAME");
        let guard = EtcNetns(dir);
        std::fs::write(
            guard.0.join("resolv.conf"),
            "nameserver 127.0.0.1\nnameserver 127.0.0.2\n",
        )
        .expect("write resolv.conf");
        // Hermetic: the host's /etc/hosts cannot answer for the test's addresses.
        std::fs::write(guard.0.join("hosts"), "127.0.0.1 localhost\n").expect("write hosts");
        guard
    }
}

impl Drop for EtcNetns {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        // The parent goes too when this test made it and nothing else is in it.
        let _ = std::fs::remove_dir("/etc/netns");
    }
}

/// The DNS servers in the namespace: the responder and the silent one, counting every
/// query each receives.
struct Dns {
    stop: Arc<AtomicBool>,
    queries: Arc<Mutex<Vec<String>>>,
    threads: Vec<JoinHandle<()>>,
}

impl Dns {
    fn start(ns: &Netns) -> Dns {
        let (answering, silent) = ns.enter(|| {
            (
                UdpSocket::bind("127.0.0.1:53").expect("bind the responder"),
                UdpSocket::bind("127.0.0.2:53").expect("bind the silent server"),
            )
        });
        let stop = Arc::new(AtomicBool::new(false));
        let queries = Arc::new(Mutex::new(Vec::new()));
        let threads = [(answering, true), (silent, false)]
            .into_iter()
            .map(|(sock, answers)| {
                let (stop, queries) = (Arc::clone(&stop), Arc::clone(&queries));
                std::thread::spawn(move || serve(&sock, answers, &stop, &queries))
            })
            .collect();
        Dns {
            stop,
            queries,
            threads,
        }
    }

    /// Stops both servers once every datagram already sent to them is counted.
    fn stop(mut self) -> Vec<String> {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            t.join().expect("a DNS thread");
        }
        self.queries.lock().unwrap().clone()
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Answers (or, when not `answers`, only counts) queries until `stop`, then counts what
/// is left in the socket's queue. Bounded: each read waits at most 50 ms.
fn serve(sock: &UdpSocket, answers: bool, stop: &AtomicBool, queries: &Mutex<Vec<String>>) {
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut buf = [0u8; 1500];
    loop {
        let stopping = stop.load(Ordering::SeqCst);
        if stopping {
            sock.set_nonblocking(true).unwrap();
        }
        let (n, from) = match sock.recv_from(&mut buf) {
            Ok(got) => got,
            Err(_) if stopping => return,
            Err(_) => continue,
        };
        let Some((qname, question_end)) = question(&buf[..n]) else {
            continue;
        };
        queries.lock().unwrap().push(qname.clone());
        if !answers {
            continue;
        }
        let reply = match qname.as_str() {
            q if q == reverse(NAMED) => Some(answer(&buf[..question_end], &labels_of(NAME))),
            q if q == reverse(HOSTILE) => Some(answer(&buf[..question_end], HOSTILE_NAME)),
            q if q == reverse(SILENT) => None,
            _ => Some(nxdomain(&buf[..question_end])),
        };
        if let Some(r) = reply {
            let _ = sock.send_to(&r, from);
        }
    }
}

/// `1.2.0.192.in-addr.arpa` for `192.0.2.1`.
fn reverse(ip: &str) -> String {
    let mut octets: Vec<&str> = ip.split('.').collect();
    octets.reverse();
    format!("{}.in-addr.arpa", octets.join("."))
}

fn labels_of(name: &str) -> Vec<&[u8]> {
    name.split('.').map(str::as_bytes).collect()
}

/// The query's name (lower case, dotted) and where its question ends.
fn question(msg: &[u8]) -> Option<(String, usize)> {
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*msg.get(at)?);
        at += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(msg.get(at..at + len)?).to_lowercase());
        at += len;
    }
    // QTYPE and QCLASS.
    let end = at + 4;
    (end <= msg.len()).then(|| (labels.join("."), end))
}

/// The header of a reply to `query`'s header: same id, QR and RA set, `rcode`.
fn reply_header(query: &[u8], answers: u16, rcode: u8) -> Vec<u8> {
    let mut h = vec![query[0], query[1]];
    // QR, the query's opcode and RD, AA; RA and the rcode.
    h.push(0x80 | (query[2] & 0x79) | 0x04);
    h.push(0x80 | rcode);
    h.extend_from_slice(&[0, 1]);
    h.extend_from_slice(&answers.to_be_bytes());
    h.extend_from_slice(&[0, 0, 0, 0]);
    h
}

fn answer(query: &[u8], name: &[&[u8]]) -> Vec<u8> {
    let mut r = reply_header(query, 1, 0);
    r.extend_from_slice(&query[12..]);
    let mut rdata = Vec::new();
    for l in name {
        rdata.push(l.len() as u8);
        rdata.extend_from_slice(l);
    }
    rdata.push(0);
    // The question's name by pointer, PTR, IN, TTL 60.
    r.extend_from_slice(&[0xc0, 12, 0, 12, 0, 1, 0, 0, 0, 60]);
    r.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    r.extend_from_slice(&rdata);
    r
}

fn nxdomain(query: &[u8]) -> Vec<u8> {
    let mut r = reply_header(query, 0, 3);
    r.extend_from_slice(&query[12..]);
    r
}

/// Connections inside the namespace: SILENT and HOSTILE each connected to NAMED, and one
/// on 127.0.0.1. Held open while lingertop reads them.
fn hold_connections(ns: &Netns) -> Vec<TcpStream> {
    for a in [NAMED, SILENT, HOSTILE] {
        assert!(ip(&[
            "-n",
            &ns.name,
            "addr",
            "add",
            &format!("{a}/32"),
            "dev",
            "lo"
        ]));
    }
    ns.enter(|| {
        let server = TcpListener::bind((NAMED, 7001)).expect("listen on NAMED");
        let lo = TcpListener::bind(("127.0.0.1", 7002)).expect("listen on loopback");
        let mut held = Vec::new();
        for (from, to) in [(SILENT, &server), (HOSTILE, &server), ("127.0.0.1", &lo)] {
            let s =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            s.bind(&SocketAddr::new(from.parse().unwrap(), 0).into())
                .unwrap();
            s.connect(&to.local_addr().unwrap().into()).unwrap();
            held.push(TcpStream::from(s));
            held.push(to.accept().unwrap().0);
        }
        held
    })
}

/// `lingertop snapshot ARGS` run inside the namespace, with an empty config directory,
/// and how long it took.
fn snapshot_in(ns: &Netns, args: &[&str]) -> (Output, Duration) {
    let cfg = std::env::temp_dir().join(format!("lingertop-resolve-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&cfg).unwrap();
    let timeout = format!("resolve.timeout={}ms", TIMEOUT.as_millis());
    let started = Instant::now();
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.name, env!("CARGO_BIN_EXE_lingertop")])
        .args([
            "--set",
            "collector.netns=host",
            "--set",
            &timeout,
            "snapshot",
        ])
        .args(args)
        .env("XDG_CONFIG_HOME", &cfg)
        .output()
        .expect("run lingertop in the namespace");
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "lingertop failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (out, took)
}

fn remote_name<'a>(doc: &'a Value, remote_ip: &str, local_port: Option<u16>) -> &'a Value {
    let c = doc["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| {
            let remote = c["remote"].as_str().unwrap_or("");
            let local = c["local"].as_str().unwrap_or("");
            remote.starts_with(&format!("{remote_ip}:"))
                && local_port.is_none_or(|p| local.ends_with(&format!(":{p}")))
        })
        .unwrap_or_else(|| panic!("no connection to {remote_ip}: {doc:#}"));
    c.get("remote_name")
        .unwrap_or_else(|| panic!("no remote_name with --resolve: {c}"))
}

#[test]
fn resolve_names_what_answers_keeps_addresses_that_do_not_and_asks_nothing_unasked() {
    if !privileged(
        "resolve_names_what_answers_keeps_addresses_that_do_not_and_asks_nothing_unasked",
    ) {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let ns = Netns::new("dns").expect("a network namespace");
    let _etc = EtcNetns::new(&ns);
    let _held = hold_connections(&ns);

    // Without --resolve: not one packet to either server.
    let dns = Dns::start(&ns);
    let (out, _) = snapshot_in(&ns, &["--format", "json"]);
    let plain: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(!plain.to_string().contains("remote_name"), "{plain}");
    let asked = dns.stop();
    assert!(asked.is_empty(), "DNS queries without --resolve: {asked:?}");

    // With it: the responder's name, null for the one never answered, in bounded time.
    let dns = Dns::start(&ns);
    let (out, took) = snapshot_in(&ns, &["--resolve", "--format", "json"]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let asked: BTreeSet<String> = dns.stop().into_iter().collect();
    assert_eq!(remote_name(&doc, NAMED, None), NAME, "{doc:#}");
    assert_eq!(
        remote_name(&doc, SILENT, Some(7001)),
        &Value::Null,
        "{doc:#}"
    );
    assert_eq!(
        remote_name(&doc, HOSTILE, Some(7001)).as_str(),
        Some("evil\u{1b}[31m.example"),
        "JSON keeps the name's own bytes (escaped on the wire)"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains('\u{1b}'));
    // Loopback is named without asking the DNS (the namespace's /etc/hosts).
    assert_eq!(remote_name(&doc, "127.0.0.1", Some(7002)), "localhost");
    for a in [NAMED, SILENT, HOSTILE] {
        assert!(asked.contains(&reverse(a)), "{a} never asked: {asked:?}");
    }
    assert!(
        !asked.iter().any(|q| q.ends_with(".127.in-addr.arpa")),
        "loopback asked of the DNS: {asked:?}"
    );
    assert!(
        took >= TIMEOUT && took < TIMEOUT + Duration::from_secs(4),
        "the snapshot took {took:?}; it may wait {TIMEOUT:?} for names and no longer"
    );

    // The table: name:port, the hostile name escaped, the silent address as it is.
    let dns = Dns::start(&ns);
    let (out, _) = snapshot_in(&ns, &["--resolve", "--format", "table"]);
    drop(dns.stop());
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains(&format!("{NAME}:7001")), "{table}");
    assert!(table.contains("evil\\x1b[31m.example:"), "{table}");
    assert!(table.contains(&format!("{SILENT}:")), "{table}");
    assert!(!table.contains('\u{1b}'), "{table}");
}

/// A tmux server of the test's own, with the dashboard run in the namespace at 120x40;
/// killed when dropped.
struct Dashboard {
    socket: String,
}

impl Dashboard {
    fn start(ns: &Netns) -> Dashboard {
        let cfg =
            std::env::temp_dir().join(format!("lingertop-resolve-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&cfg).unwrap();
        let d = Dashboard {
            socket: format!("lingertop-test-resolve-{}", std::process::id()),
        };
        let run = format!(
            "env XDG_CONFIG_HOME={} TERM=xterm-256color ip netns exec {} {} --set collector.netns=host --set resolve.timeout={}ms --interval 500ms",
            cfg.display(),
            ns.name,
            env!("CARGO_BIN_EXE_lingertop"),
            TIMEOUT.as_millis()
        );
        let ok = d
            .tmux(&[
                "new-session",
                "-d",
                "-s",
                "t",
                "-x",
                "120",
                "-y",
                "40",
                &run,
            ])
            .status()
            .expect("tmux must be installed for this test")
            .success();
        assert!(ok, "tmux new-session failed");
        d
    }

    fn tmux(&self, args: &[&str]) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket]).args(args);
        c
    }

    fn screen(&self) -> String {
        let out = self
            .tmux(&["capture-pane", "-p", "-t", "t"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    fn key(&self, key: &str) {
        assert!(
            self.tmux(&["send-keys", "-t", "t", key])
                .status()
                .unwrap()
                .success()
        );
    }

    /// Waits (10 s at most) until the screen satisfies `ok`; fails with the screen.
    fn wait(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let s = self.screen();
            if ok(&s) {
                return s;
            }
            assert!(Instant::now() < deadline, "never saw {what}:\n{s}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        let _ = self
            .tmux(&["kill-server"])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

#[test]
fn the_dashboard_asks_nothing_until_n_then_shows_names_where_addresses_were() {
    if !privileged("the_dashboard_asks_nothing_until_n_then_shows_names_where_addresses_were") {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let ns = Netns::new("dnsui").expect("a network namespace");
    let _etc = EtcNetns::new(&ns);
    let _held = hold_connections(&ns);
    let dns = Dns::start(&ns);
    let ui = Dashboard::start(&ns);
    let named_addr = format!("{NAMED}:7001");
    ui.wait("the connections to NAMED by address", |s| {
        s.contains("LIVE") && s.contains(&named_addr)
    });
    // Two polls at 500 ms with names off: not one query.
    std::thread::sleep(Duration::from_millis(1200));
    assert!(
        dns.queries.lock().unwrap().is_empty(),
        "the dashboard asked the DNS with names off: {:?}",
        dns.queries.lock().unwrap()
    );
    // The detail pane hidden, the table has room for whole names.
    ui.key("d");
    ui.key("n");
    // Whole, or cut at its end beside the kernel's columns: the port is always kept.
    let s = ui.wait("the responder's name", |s| {
        s.lines()
            .any(|l| l.contains(&NAME[..20]) && l.contains(":7001"))
    });
    assert!(s.contains("· names"), "{s}");
    // The address whose lookup never answers stays an address; the hostile name is escaped.
    assert!(s.contains(&format!("{SILENT}:")), "{s}");
    let s = ui.wait("the hostile name, escaped", |s| s.contains("evil\\x1b[31m"));
    assert!(!s.contains('\u{1b}'), "{s}");
    ui.key("n");
    ui.wait("addresses again", |s| {
        !s.contains(&NAME[..20]) && s.contains(&named_addr)
    });
    ui.key("q");
    let deadline = Instant::now() + Duration::from_secs(5);
    while ui
        .tmux(&["has-session", "-t", "t"])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        assert!(
            Instant::now() < deadline,
            "the dashboard did not quit:\n{}",
            ui.screen()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let asked: BTreeSet<String> = dns.stop().into_iter().collect();
    assert!(asked.contains(&reverse(NAMED)), "{asked:?}");
}
