//! Every network namespace, against `ss` run inside each as the oracle. These tests create
//! their own namespaces (`ip netns add`, loopback up, removed on every exit path by a
//! guard), hold CLOSE_WAIT / TIME_WAIT / ESTABLISHED in two of them and on the host, and
//! check what lingertop shows. They need root and skip, saying so, without it.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::live::{Watched, next_line};
use crate::common::netns::*;
use crate::common::*;
use lingertop::collector::Collector;
use serde_json::Value;

/// `ss -tanpH` for `port` from our address, run as `ip PREFIX ss` or plain `ss`.
fn ss(prefix: &[&str], port: u16) -> Vec<SsRow> {
    ss_rows(
        prefix,
        &format!("( sport = :{port} or dport = :{port} ) and src {}", ours()),
    )
}

/// lingertop's rows for one namespace, in the oracle's shape.
fn rows_of(json: &Value, netns: &str) -> Vec<SsRow> {
    let mut rows: Vec<SsRow> = json["connections"]
        .as_array()
        .expect("connections")
        .iter()
        .filter(|c| c["netns"] == netns)
        .map(|c| {
            let mut pids: Vec<u32> = c["pids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_u64().unwrap() as u32)
                .collect();
            pids.sort_unstable();
            SsRow {
                state: c["state"].as_str().unwrap().to_string(),
                local: c["local"].as_str().unwrap().to_string(),
                remote: c["remote"].as_str().unwrap().to_string(),
                pids,
            }
        })
        .collect();
    rows.sort();
    rows
}

fn counts(rows: &[SsRow]) -> BTreeMap<&str, usize> {
    let mut m = BTreeMap::new();
    for r in rows {
        *m.entry(r.state.as_str()).or_default() += 1;
    }
    m
}

/// The sockets one place holds on `port`: a listener, one ESTABLISHED pair from the fixed
/// client port `client`, `close_waits` connections the peer closed and `time_waits` this
/// end closed first.
struct Held {
    _listener: TcpListener,
    _established: (TcpStream, TcpStream),
    _close_waits: Vec<TcpStream>,
}

fn hold(port: u16, client: u16, n_close_waits: usize, time_waits: usize) -> Held {
    let at: SocketAddr = (ours(), port).into();
    let l = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    l.set_reuse_address(true).unwrap();
    l.bind(&at.into()).unwrap();
    l.listen(64).unwrap();
    let listener: TcpListener = l.into();
    // The fixed client end: the same four numbers wherever this runs.
    let c = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    c.set_reuse_address(true).unwrap();
    c.bind(&SocketAddr::from((ours(), client)).into()).unwrap();
    c.connect(&at.into()).unwrap();
    let established = (c.into(), listener.accept().unwrap().0);
    let mut close_waits = Vec::new();
    for _ in 0..n_close_waits {
        let c = connect(at, 0);
        let s = listener.accept().unwrap().0;
        drop(c);
        close_waits.push(s);
    }
    for _ in 0..time_waits {
        let c = connect(at, 0);
        let mut s = listener.accept().unwrap().0;
        c.shutdown(std::net::Shutdown::Write).unwrap();
        let mut buf = [0u8; 1];
        assert_eq!(s.read(&mut buf).unwrap(), 0);
        drop(s);
        // The client's read of the server's FIN completes its close into TIME_WAIT.
        let mut c = c;
        assert_eq!(c.read(&mut buf).unwrap(), 0);
        drop(c);
    }
    Held {
        _listener: listener,
        _established: established,
        _close_waits: close_waits,
    }
}

/// This test run's own loopback address, so that the host's other loopback traffic (other
/// tests on the same ports) never mixes in.
fn ours() -> std::net::Ipv4Addr {
    let pid = std::process::id();
    std::net::Ipv4Addr::new(127, 201, (pid >> 8) as u8, (pid as u8).max(1))
}

/// A connection to `at` from our address, port `from` (0: any).
fn connect(at: SocketAddr, from: u16) -> TcpStream {
    let c = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    c.set_reuse_address(true).unwrap();
    c.bind(&SocketAddr::from((ours(), from)).into()).unwrap();
    c.connect(&at.into()).unwrap();
    c.into()
}

/// A free port on the host's loopback (fresh namespaces have every port free).
fn free_port() -> u16 {
    TcpListener::bind((ours(), 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A cgroup v2 directory that names a Docker container, made under the unified hierarchy
/// when it is writable; the process `pid` is moved into it.
fn docker_cgroup(ns: &mut Netns, pid: u32, id: &str) -> bool {
    let roots = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"];
    for root in roots {
        let root = std::path::Path::new(root);
        if !root.join("cgroup.procs").exists() || !root.join("cgroup.subtree_control").exists() {
            continue;
        }
        let parent = root.join(format!("lt-test-{}", std::process::id()));
        let dir = parent.join(format!("docker-{id}.scope"));
        if std::fs::create_dir_all(&dir).is_err() {
            continue;
        }
        ns.cgroups.push(parent.clone());
        ns.cgroups.push(dir.clone());
        if std::fs::write(dir.join("cgroup.procs"), pid.to_string()).is_ok() {
            return true;
        }
    }
    false
}

#[test]
fn every_namespace_agrees_with_ss_inside_it() {
    if !privileged("every_namespace_agrees_with_ss_inside_it") {
        return;
    }
    let (port, client) = (free_port(), free_port());
    let a = Netns::new("a").unwrap();
    let mut b = Netns::new("b").unwrap();
    // B is held by a process in a Docker container's cgroup: named for the container.
    let id = format!("{:x}{:056x}", 0xfeed_beefu32, std::process::id());
    let sleeper = b.sleeper();
    let in_docker = docker_cgroup(&mut b, sleeper, &id);
    let b_name = if in_docker {
        id[..12].to_string()
    } else {
        eprintln!("no writable cgroup v2 here: B is named by its netns name");
        b.name.clone()
    };

    let _host = hold(port, client, 1, 1);
    let _in_a = a.enter(|| hold(port, client, 2, 1));
    let _in_b = b.enter(|| hold(port, client, 1, 3));

    let want_host = ss(&[], port);
    let here = own_namespace_name();
    let want_a = ss(&["netns", "exec", &a.name], port);
    let want_b = ss(&["netns", "exec", &b.name], port);
    for (place, rows, cw, tw) in [
        ("host", &want_host, 1, 1),
        ("a", &want_a, 2, 1),
        ("b", &want_b, 1, 3),
    ] {
        let c = counts(rows);
        assert_eq!(c.get("CLOSE_WAIT"), Some(&cw), "{place}: {rows:?}");
        assert_eq!(c.get("TIME_WAIT"), Some(&tw), "{place}: {rows:?}");
        assert_eq!(c.get("ESTABLISHED"), Some(&2), "{place}: {rows:?}");
    }

    let (code, json) = snapshot_json(&[
        "--netns",
        "all",
        "--local",
        &ours().to_string(),
        "--port",
        &port.to_string(),
    ]);
    assert_eq!(code, 0);
    for (name, want) in [
        (here, &want_host),
        (a.name.as_str(), &want_a),
        (b_name.as_str(), &want_b),
    ] {
        assert_eq!(&rows_of(&json, name), want, "namespace {name}");
    }
    // Owners: the test holds every socket with a file, in every namespace.
    let me = std::process::id();
    assert!(
        want_a
            .iter()
            .filter(|r| r.state == "CLOSE_WAIT")
            .all(|r| r.pids == [me])
    );
    // The same four numbers in three namespaces are three connections.
    let tuple = |c: &&Value| {
        c["local"] == format!("{}:{client}", ours()) && c["remote"] == format!("{}:{port}", ours())
    };
    let same: Vec<&Value> = json["connections"]
        .as_array()
        .unwrap()
        .iter()
        .filter(tuple)
        .collect();
    let mut where_: Vec<&str> = same.iter().map(|c| c["netns"].as_str().unwrap()).collect();
    where_.sort_unstable();
    let mut want_where = vec![here, a.name.as_str(), b_name.as_str()];
    want_where.sort_unstable();
    assert_eq!(where_, want_where);
    let established: usize = [&want_host, &want_a, &want_b]
        .iter()
        .map(|rows| counts(rows)["ESTABLISHED"])
        .sum();
    assert_eq!(json["counts"]["ESTABLISHED"], established);
    // An alert names the namespace: A's two CLOSE_WAITs pass a threshold of 2, the host's and
    // B's one each do not.
    let mut child = lingertop()
        .args([
            "--netns",
            "all",
            "snapshot",
            "--format",
            "json",
            "--interval",
            "1s",
        ])
        .args(["--local", &ours().to_string(), "--port", &port.to_string()])
        .args(["--set", "alerts.close-wait.min-age=500ms"])
        .args(["--set", "alerts.close-wait.warning=2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut text = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    let _ = child.wait();
    let polled: Value = serde_json::from_str(&text).expect("JSON");
    let cw: Vec<&Value> = polled["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["rule"] == "close-wait-lingering")
        .collect();
    assert_eq!(cw.len(), 1, "{cw:?}");
    assert_eq!(cw[0]["netns"], a.name.as_str());
    assert_eq!(cw[0]["count"], 2);
    assert_eq!(cw[0]["pid"], me);
    let msg = cw[0]["message"].as_str().unwrap();
    assert!(
        msg.contains(&format!("(pid {me}) in netns {} for > ", a.name)),
        "{msg}"
    );

    // The namespace table says what each is.
    let table = json["netns"].as_array().unwrap();
    let kind_of = |name: &str| {
        table
            .iter()
            .find(|n| n["name"] == name)
            .map(|n| n["kind"].as_str().unwrap().to_string())
    };
    assert_eq!(kind_of(&a.name).as_deref(), Some("netns"));
    assert_eq!(
        kind_of(&b_name).as_deref(),
        Some(if in_docker { "docker" } else { "netns" })
    );
    assert_eq!(
        kind_of(here).as_deref(),
        Some(if here == "host" { "host" } else { "own" })
    );

    // The filter key picks one namespace, and --netns reads one.
    let (_, only_a) = snapshot_json(&[
        "--netns",
        "all",
        "--port",
        &port.to_string(),
        "--filter",
        &format!("netns:{}", a.name),
    ]);
    assert_eq!(rows_of(&only_a, &a.name), want_a);
    assert_eq!(
        only_a["connections"].as_array().unwrap().len(),
        want_a.len()
    );
    let (_, read_b) = snapshot_json(&[
        "--local",
        &ours().to_string(),
        "--port",
        &port.to_string(),
        "--netns",
        &b_name,
    ]);
    assert_eq!(rows_of(&read_b, &b_name), want_b);
    assert_eq!(
        read_b["connections"].as_array().unwrap().len(),
        want_b.len()
    );
    let (_, read_pid) = snapshot_json(&[
        "--local",
        &ours().to_string(),
        "--port",
        &port.to_string(),
        "--netns",
        &sleeper.to_string(),
    ]);
    assert_eq!(rows_of(&read_pid, &b_name), want_b);
    let (_, host_only) = snapshot_json(&[
        "--local",
        &ours().to_string(),
        "--port",
        &port.to_string(),
        "--netns",
        "host",
    ]);
    assert_eq!(rows_of(&host_only, here), want_host);
    assert_eq!(
        host_only["connections"].as_array().unwrap().len(),
        want_host.len()
    );
}

/// Whether one of `pid`'s descriptors is the namespace `inode`: a namespace file (on the
/// nsfs device) of that inode, whatever path its link shows.
fn holds_namespace(pid: u32, inode: u64) -> bool {
    let nsfs = std::fs::metadata("/proc/self/ns/net").unwrap().dev();
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten().any(|e| {
                std::fs::metadata(e.path()).is_ok_and(|m| m.dev() == nsfs && m.ino() == inode)
            })
        })
        .unwrap_or(false)
}

#[test]
fn a_deleted_namespace_is_let_go_within_a_poll() {
    if !privileged("a_deleted_namespace_is_let_go_within_a_poll") {
        return;
    }
    let mut d = Netns::new("gone").unwrap();
    let inode = d.inode();
    // A veth with one end inside: the host end lives exactly as long as the namespace.
    let host_end = format!("ltv{}", std::process::id() % 100_000);
    assert!(ip(&[
        "link", "add", &host_end, "type", "veth", "peer", "name", "eth9", "netns", &d.name,
    ]));
    let mut watch = Watched::start(&["--netns", "all", "--interval", "200ms"]);
    let pid = watch.child.id();
    wait_until("lingertop reads the namespace", || {
        holds_namespace(pid, inode)
    });
    let _ = next_line(&watch.stdout, Duration::from_secs(10), "a watch line");

    d.delete();
    wait_until("lingertop lets the deleted namespace go", || {
        !holds_namespace(pid, inode)
    });
    // And so the kernel frees it: the veth pair goes with it.
    wait_until("the deleted namespace's veth disappears", || {
        !std::path::Path::new(&format!("/sys/class/net/{host_end}")).exists()
    });
    assert!(
        watch.child.try_wait().unwrap().is_none(),
        "watch still runs"
    );
    let _ = watch.child.kill();
}

#[test]
fn without_privilege_it_says_once_what_it_cannot_see() {
    if !privileged("without_privilege_it_says_once_what_it_cannot_see") {
        return;
    }
    let a = Netns::new("unpriv").unwrap();
    let port = free_port();
    let _in_a = a.enter(|| hold(port, free_port(), 1, 0));
    let mut child = Command::new("setpriv")
        .args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "--inh-caps=-all",
            env!("CARGO_BIN_EXE_lingertop"),
            "watch",
            "--interval",
            "100ms",
            "--port",
            &port.to_string(),
        ])
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("setpriv (util-linux) must be installed for this test");
    let stdout = crate::common::live::line_reader(child.stdout.take().unwrap());
    // Several polls, each free to repeat the message.
    for _ in 0..4 {
        let _ = next_line(&stdout, Duration::from_secs(10), "a watch line as nobody");
    }
    let _ = child.kill();
    let _ = child.wait();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let said = "without root, only lingertop's own network namespace is read";
    assert_eq!(err.matches(said).count(), 1, "stderr: {err}");
    assert!(err.contains("run with sudo"), "stderr: {err}");
    assert!(err.contains("could not be entered"), "stderr: {err}");
}

#[test]
fn a_time_wait_pile_up_in_one_namespace_is_named_for_it_not_the_host() {
    if !privileged("a_time_wait_pile_up_in_one_namespace_is_named_for_it_not_the_host") {
        return;
    }
    let (port, client) = (free_port(), free_port());
    let busy = Netns::new("tw").unwrap();
    let quiet = Netns::new("quiet").unwrap();
    // 24 TIME_WAIT in `busy`, 6 in `quiet`, 6 on the host: 36 together, 24 at most in one.
    let _host = hold(port, client, 0, 6);
    let _in_busy = busy.enter(|| hold(port, client, 0, 24));
    let _in_quiet = quiet.enter(|| hold(port, client, 0, 6));
    let tw = |rows: &[SsRow]| counts(rows).get("TIME_WAIT").copied().unwrap_or(0);
    let in_busy = tw(&ss(&["netns", "exec", &busy.name], port));
    assert_eq!(in_busy, 24, "ss inside {}", busy.name);
    assert_eq!(tw(&ss(&["netns", "exec", &quiet.name], port)), 6);
    assert_eq!(tw(&ss(&[], port)), 6);

    let (_, json) = snapshot_json(&[
        "--netns",
        "all",
        "--local",
        &ours().to_string(),
        "--port",
        &port.to_string(),
        "--set",
        "alerts.time-wait.warning=20",
        "--set",
        "alerts.time-wait.critical=1000",
        "--set",
        "alerts.time-wait-per-remote.warning=20",
        "--set",
        "alerts.time-wait-per-remote.critical=1000",
    ]);
    let of = |rule: &str| -> Vec<Value> {
        json["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["rule"] == rule)
            .cloned()
            .collect()
    };
    for rule in ["time-wait-buildup", "time-wait-remote"] {
        let alerts = of(rule);
        assert_eq!(alerts.len(), 1, "{rule}: {alerts:?}");
        assert_eq!(alerts[0]["netns"], busy.name.as_str(), "{rule}");
        assert_eq!(alerts[0]["count"], in_busy, "{rule}");
        let msg = alerts[0]["message"].as_str().unwrap();
        assert!(msg.contains(&format!("in netns {}", busy.name)), "{msg}");
        assert!(!msg.contains("on this host"), "{msg}");
    }
}

#[test]
fn an_orphaned_fin_wait_2_counts_from_its_own_namespaces_fin_timeout() {
    if !privileged("an_orphaned_fin_wait_2_counts_from_its_own_namespaces_fin_timeout") {
        return;
    }
    // Not the host's 60 s: an age computed from the host's value would read 40 s too old.
    let ns = Netns::new("fin").expect("ip netns add");
    let set = ns
        .command("sysctl")
        .args(["-q", "-w", "net.ipv4.tcp_fin_timeout=20"])
        .status()
        .expect("sysctl");
    assert!(set.success(), "cannot set tcp_fin_timeout in the namespace");
    let (_listener, _peer, client) = ns.enter(|| {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        let client = c.local_addr().unwrap();
        // Closed first while the peer holds on: an orphaned FIN_WAIT_2.
        drop(c);
        (l, s, client)
    });
    let made = std::time::Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    let out = lingertop()
        .args(["--set", &format!("collector.netns={}", ns.name)])
        .args(["snapshot", "--format", "json", "--state", "fin-wait-2"])
        .output()
        .expect("run lingertop");
    let json = parse(&out);
    let c = json["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["local"] == client.to_string())
        .unwrap_or_else(|| panic!("no FIN_WAIT_2 from {client}: {json}"));
    assert_eq!(c["state_age_from"], "kernel", "{c}");
    let age = c["state_age_secs"].as_f64().expect("an age");
    let lived = made.elapsed().as_secs_f64();
    assert!(
        age >= 1.5 && age <= lived + 0.5,
        "orphaned FIN_WAIT_2 age {age} s, but it began {lived:.1} s ago: {c}"
    );
}

#[test]
fn port_pressure_is_judged_against_each_namespaces_own_port_range() {
    if !privileged("port_pressure_is_judged_against_each_namespaces_own_port_range") {
        return;
    }
    // Ten ephemeral ports in `narrow`, the default 28k in `wide`: six connections to one
    // destination are 60 % of the first (over the 50 % warning) and nothing in the second.
    let narrow = Netns::new("ports").expect("ip netns add");
    let wide = Netns::new("wide").expect("ip netns add");
    let set = narrow
        .command("sysctl")
        .args(["-q", "-w", "net.ipv4.ip_local_port_range=40000 40009"])
        .status()
        .expect("sysctl");
    assert!(
        set.success(),
        "cannot set ip_local_port_range in the namespace"
    );
    // A listening port outside both ranges, so only the clients' ends hold ephemeral ports.
    let port = 5001;
    let six = || {
        let at: SocketAddr = (ours(), port).into();
        let l = TcpListener::bind(at).unwrap();
        let pairs: Vec<(TcpStream, TcpStream)> = (0..6)
            .map(|_| (connect(at, 0), l.accept().unwrap().0))
            .collect();
        (l, pairs)
    };
    let _in_narrow = narrow.enter(six);
    let _in_wide = wide.enter(six);
    let established = |ns: &Netns| {
        ss(&["netns", "exec", &ns.name], port)
            .iter()
            .filter(|r| {
                ss_state(&r.state) == "ESTABLISHED" && !r.local.ends_with(&format!(":{port}"))
            })
            .count()
    };
    assert_eq!(established(&narrow), 6, "ss inside {}", narrow.name);
    assert_eq!(established(&wide), 6, "ss inside {}", wide.name);

    let (_, json) = snapshot_json(&["--netns", "all", "--port", &port.to_string()]);
    let alerts: Vec<&Value> = json["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["rule"] == "port-pressure")
        .collect();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let a = alerts[0];
    assert_eq!(a["netns"], narrow.name.as_str(), "{a}");
    assert_eq!(a["ratio"].as_f64(), Some(0.6), "{a}");
    assert_eq!(a["severity"], "warning", "{a}");
    let msg = a["message"].as_str().unwrap();
    assert!(msg.contains("(6 of 10,"), "{msg}");
    // The listing names each destination's namespace, and its share of that range.
    let listed: Vec<(String, f64)> = json["port_pressure"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["netns"].as_str().unwrap_or("").to_string(),
                p["ratio"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(listed[0], (narrow.name.clone(), 0.6), "{listed:?}");
    assert!(
        listed.iter().any(|(n, r)| n == &wide.name && *r < 0.001),
        "{listed:?}"
    );
}

#[test]
fn from_a_namespace_of_its_own_the_host_is_still_named_host() {
    if !privileged("from_a_namespace_of_its_own_the_host_is_still_named_host") {
        return;
    }
    use std::os::unix::fs::MetadataExt;
    // The host's namespace is the initial one, where kernel threads live: lingertop, run
    // inside `inside`, must call it the host (not "kthreadd[2]", where pid 1's link cannot
    // be read), wherever this test itself runs (`unshare -n` included).
    let kthreadd = std::fs::read_to_string("/proc/2/comm").is_ok_and(|c| c.trim() == "kthreadd");
    if !kthreadd {
        eprintln!(
            "SKIPPED: no kthreadd at pid 2 (a PID namespace of its own): the host's namespace is not known to this test"
        );
        return;
    }
    let host = std::fs::metadata("/proc/2/ns/net").unwrap().ino();
    let inside = Netns::new("self").expect("ip netns add");
    let out = inside
        .command(env!("CARGO_BIN_EXE_lingertop"))
        .args(["snapshot", "--format", "json", "--netns", "all"])
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .output()
        .expect("lingertop snapshot");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let of = |inode: u64| {
        json["netns"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["inode"].as_u64() == Some(inode))
            .cloned()
            .unwrap_or_else(|| panic!("no namespace {inode}: {}", json["netns"]))
    };
    let h = of(host);
    assert_eq!(
        (h["name"].as_str(), h["kind"].as_str()),
        (Some("host"), Some("host")),
        "{h}"
    );
    let own = of(inside.inode());
    assert_eq!(own["kind"], "own", "{own}");
}

/// What lingertop calls the namespace this test runs in: `host` on the host, `self` when the
/// test itself runs in a namespace of its own (`unshare -n`).
fn own_namespace_name() -> &'static str {
    use std::os::unix::fs::MetadataExt;
    let ino = |p: &str| std::fs::metadata(p).map(|m| m.ino()).ok();
    let kthreadd = std::fs::read_to_string("/proc/2/comm").is_ok_and(|c| c.trim() == "kthreadd");
    if !kthreadd || ino("/proc/self/ns/net") == ino("/proc/2/ns/net") {
        "host"
    } else {
        "self"
    }
}

/// A socket's state, ends and receive queue.
type QRow = (String, String, String, u32);

/// `ss -tanH` inside `ns`: state, ends and receive queue of every TCP socket, sorted.
fn ss_queues(ns: &Netns) -> Vec<QRow> {
    let out = ns
        .command("ss")
        .arg("-tanH")
        .output()
        .expect("ss (iproute2) must be installed for this test");
    assert!(out.status.success());
    let mut rows: Vec<_> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((
                ss_state(f.first()?).to_string(),
                f.get(3)?.to_string(),
                f.get(4)?.replace(":*", ":0"),
                f.get(1)?.parse().ok()?,
            ))
        })
        .collect();
    rows.sort();
    rows
}

/// The same of one poll of lingertop's collector.
fn polled_queues(c: &mut Collector) -> Vec<QRow> {
    let snap = c.poll().expect("poll");
    let mut rows: Vec<_> = snap
        .connections
        .iter()
        .map(|c| {
            (
                c.state.name().to_string(),
                c.local().to_string(),
                c.remote().to_string(),
                c.recv_q().unwrap_or(0),
            )
        })
        .collect();
    rows.sort();
    rows
}

/// A small namespace in which nothing happened since the last poll is read by asking for
/// its known sockets one by one, not by a walk of the machine's table; whatever happens in
/// it next (data, a close, a new connection, a reset, an application draining its receive
/// queue without a segment) shows at the next poll, as `ss` inside it says.
#[test]
fn a_quiet_namespace_is_looked_up_and_every_change_in_it_shows_at_the_next_poll() {
    use lingertop::collector::{Backend, NetnsReads};
    use lingertop::model::NetnsChoice;
    use std::io::Write;
    if !privileged("a_quiet_namespace_is_looked_up_and_every_change_in_it_shows_at_the_next_poll") {
        return;
    }
    let ns = Netns::new("quiet").unwrap();
    let mut c = Collector::in_netns(Backend::Netlink, &NetnsChoice::Named(ns.name.clone()))
        .expect("a collector of the namespace");
    let dumped = Some(NetnsReads {
        dumped: 1,
        ..NetnsReads::default()
    });
    let looked_up = Some(NetnsReads {
        looked_up: 1,
        ..NetnsReads::default()
    });
    let port = 4555;
    let at: SocketAddr = ([127, 0, 0, 1], port).into();
    let (listener, c1, s1, mut c2, mut s2) = ns.enter(|| {
        let l = TcpListener::bind(at).unwrap();
        let c1 = TcpStream::connect(at).unwrap();
        let s1 = l.accept().unwrap().0;
        let c2 = TcpStream::connect(at).unwrap();
        let s2 = l.accept().unwrap().0;
        (l, c1, s1, c2, s2)
    });
    // Five bytes s2 does not read yet, once acknowledged (nothing left in flight).
    c2.write_all(b"hello").unwrap();
    let settled = |what: &str, ok: &dyn Fn(&[QRow]) -> bool| {
        wait_until(what, || ok(&ss_queues(&ns)));
    };
    settled("the data is queued at s2", &|rows| {
        rows.iter().any(|r| r.0 == "ESTABLISHED" && r.3 == 5)
    });

    assert_eq!(polled_queues(&mut c), ss_queues(&ns));
    assert_eq!(c.netns_reads(), dumped, "the first read walks the table");
    assert_eq!(polled_queues(&mut c), ss_queues(&ns));
    assert_eq!(c.netns_reads(), looked_up, "nothing happened: looked up");

    // s2 reads its data: the receive queue drains, maybe with no segment at all.
    let mut buf = [0u8; 5];
    std::io::Read::read_exact(&mut s2, &mut buf).unwrap();
    settled("s2's queue drains", &|rows| rows.iter().all(|r| r.3 == 0));
    assert_eq!(polled_queues(&mut c), ss_queues(&ns));

    // c1 closes: s1 in CLOSE_WAIT, c1 in FIN_WAIT_2.
    c1.shutdown(std::net::Shutdown::Both).unwrap();
    settled("s1 is in CLOSE_WAIT", &|rows| {
        rows.iter().any(|r| r.0 == "CLOSE_WAIT")
    });
    let rows = polled_queues(&mut c);
    assert!(rows.iter().any(|r| r.0 == "CLOSE_WAIT"), "{rows:?}");
    assert_eq!(rows, ss_queues(&ns));
    assert_eq!(c.netns_reads(), dumped, "a close stirs the namespace");
    assert_eq!(polled_queues(&mut c), ss_queues(&ns));
    assert_eq!(c.netns_reads(), looked_up);

    // A new connection.
    let (c3, s3) = ns.enter(|| {
        let c3 = TcpStream::connect(at).unwrap();
        (c3, listener.accept().unwrap().0)
    });
    let rows = polled_queues(&mut c);
    assert_eq!(rows.len(), 7, "{rows:?}");
    assert_eq!(rows, ss_queues(&ns));

    // s1 closes too (LAST_ACK, then gone; c1 into TIME_WAIT); c3 is reset.
    drop(s1);
    socket2::SockRef::from(&c3)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(c3);
    settled("c1 is in TIME_WAIT and c3 gone", &|rows| {
        rows.iter().any(|r| r.0 == "TIME_WAIT") && rows.len() == 4
    });
    let rows = polled_queues(&mut c);
    assert!(rows.iter().any(|r| r.0 == "TIME_WAIT"), "{rows:?}");
    assert_eq!(rows, ss_queues(&ns));
    assert_eq!(polled_queues(&mut c), ss_queues(&ns));
    assert_eq!(c.netns_reads(), looked_up);
    drop((s3, c2, s2, c1));
}

/// A namespace holding only IPv6 connections holds TCP sockets: its `/proc/net/sockstat`
/// says `TCP: inuse 0` (IPv4 only), `sockstat6` says how many.
#[test]
fn a_namespace_of_ipv6_connections_only_is_read() {
    use lingertop::collector::Backend;
    use lingertop::model::NetnsChoice;
    if !privileged("a_namespace_of_ipv6_connections_only_is_read") {
        return;
    }
    let ns = Netns::new("six").unwrap();
    let at: SocketAddr = (std::net::Ipv6Addr::LOCALHOST, 4556).into();
    let _held = ns.enter(|| {
        let l = TcpListener::bind(at).unwrap();
        let c = TcpStream::connect(at).unwrap();
        let s = l.accept().unwrap().0;
        (l, c, s)
    });
    let mut c = Collector::in_netns(Backend::Netlink, &NetnsChoice::Named(ns.name.clone()))
        .expect("a collector of the namespace");
    let rows = polled_queues(&mut c);
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(rows, ss_queues(&ns));
}
