//! Shared helpers for the integration tests: real loopback sockets in known states, the
//! real binary, and waiting on the real kernel socket table (bounded by a deadline).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use lingertop::collector::Collector;
use lingertop::model::TcpState;
use serde_json::Value;

pub mod live;
pub mod netns;
pub mod resets;
pub mod tmux;

pub const V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
pub const V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

/// The real binary with an empty config directory, so a user's config never leaks in,
/// reading the host's network namespace only: these tests hold their sockets on the host
/// and check them against the host's `ss`, and other namespaces of the machine (other
/// tests', containers') may hold the same ports. `tests/netns.rs` asks for `--netns all`.
pub fn lingertop() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lingertop"));
    cmd.args(["--set", "collector.netns=host"]);
    cmd.env("XDG_CONFIG_HOME", empty_config_home());
    cmd.env_remove("LINGERTOP_CONFIG");
    cmd.env_remove("NO_COLOR");
    cmd
}

fn empty_config_home() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lingertop-test-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Runs `lingertop snapshot --format json ARGS` and parses its output.
pub fn snapshot_json(args: &[&str]) -> (i32, Value) {
    let out = lingertop()
        .arg("snapshot")
        .args(["--format", "json"])
        .args(args)
        .output()
        .expect("run lingertop");
    (out.status.code().unwrap_or(-1), parse(&out))
}

pub fn parse(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}); stdout: {} stderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Starts `lingertop snapshot --format json --interval D ARGS`, returns once its first
/// poll is done (it says so on stderr), so the caller can change sockets between polls.
pub fn snapshot_two_polls(interval: &str, args: &[&str]) -> Child {
    let mut child = lingertop()
        .arg("snapshot")
        .args(["--format", "json", "--interval", interval])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn lingertop");
    let stderr = child.stderr.take().expect("stderr");
    let mut line = String::new();
    let mut reader = BufReader::new(stderr);
    reader.read_line(&mut line).expect("read stderr");
    assert!(line.contains("first poll"), "unexpected stderr: {line}");
    // Keep draining stderr so the child never blocks on it.
    std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = reader.read_to_string(&mut rest);
    });
    child
}

pub fn finish(child: Child) -> (i32, Value) {
    let out = child.wait_with_output().expect("wait lingertop");
    (out.status.code().unwrap_or(-1), parse(&out))
}

pub fn listener(ip: IpAddr) -> TcpListener {
    TcpListener::bind(SocketAddr::new(ip, 0)).expect("bind loopback")
}

/// A connected pair: (client, server end).
pub fn pair(l: &TcpListener) -> (TcpStream, TcpStream) {
    let c = TcpStream::connect(l.local_addr().unwrap()).expect("connect");
    let (s, _) = l.accept().expect("accept");
    (c, s)
}

pub fn addr_of(s: &TcpStream) -> (SocketAddr, SocketAddr) {
    (s.local_addr().unwrap(), s.peer_addr().unwrap())
}

/// Waits (at most 5 s) until the kernel table shows `local -> remote` in `state`.
pub fn wait_for_state(local: SocketAddr, remote: SocketAddr, state: TcpState) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut c = Collector::system();
    loop {
        let snap = c.poll().expect("poll");
        if snap
            .connections
            .iter()
            .any(|x| x.local() == local && x.remote() == remote && x.state == state)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{local} -> {remote} never reached {state}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// This process's name as the kernel reports it (what lingertop must show).
pub fn my_comm() -> String {
    std::fs::read_to_string("/proc/self/comm")
        .expect("comm")
        .trim()
        .to_string()
}

/// Connections of a snapshot JSON matching `local` and `remote`.
pub fn find(json: &Value, local: SocketAddr, remote: SocketAddr) -> Vec<&Value> {
    json["connections"]
        .as_array()
        .expect("connections array")
        .iter()
        .filter(|c| c["local"] == local.to_string() && c["remote"] == remote.to_string())
        .collect()
}

/// The single connection `local -> remote`, which must exist.
pub fn one(json: &Value, local: SocketAddr, remote: SocketAddr) -> &Value {
    let found = find(json, local, remote);
    assert_eq!(
        found.len(),
        1,
        "expected one {local} -> {remote} in {}",
        serde_json::to_string_pretty(&json["connections"]).unwrap()
    );
    found[0]
}

/// A connection on `l` whose client closes first and whose server closes after reading
/// EOF: the client end lingers in TIME_WAIT. Returns (client, server) once the kernel shows it.
pub fn client_time_wait(l: &TcpListener) -> (SocketAddr, SocketAddr) {
    let (tw_c, mut tw_s) = pair(l);
    let (client, server) = addr_of(&tw_c);
    drop(tw_c);
    let mut buf = [0u8; 8];
    assert_eq!(tw_s.read(&mut buf).unwrap(), 0, "server reads EOF");
    drop(tw_s);
    wait_for_state(client, server, TcpState::TimeWait);
    (client, server)
}

/// The alert of `rule` in a snapshot JSON, which must be there.
pub fn alert<'a>(json: &'a Value, rule: &str) -> &'a Value {
    json["alerts"]
        .as_array()
        .expect("alerts array")
        .iter()
        .find(|a| a["rule"] == rule)
        .unwrap_or_else(|| panic!("no {rule} alert: {json}"))
}

/// Held by the tests that load the machine (tens of thousands of sockets, a load client):
/// they run one at a time, as they did when each file was a test binary of its own, so
/// none of them measures another's load.
pub fn heavy() -> std::sync::MutexGuard<'static, ()> {
    static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());
    HEAVY.lock().unwrap_or_else(|p| p.into_inner())
}
