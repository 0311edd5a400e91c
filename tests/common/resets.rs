//! Two python children that make linger-0 resets on loopback: a server that accepts N
//! connections and reads each until the peer's reset, and a client that connects N times and
//! closes each with SO_LINGER {1, 0}. Separate processes, so a close's owner can be checked
//! against the child that really made it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::netns::Netns;

/// Accepts `M` connections and reads each until its peer's reset; prints its port first.
pub const SERVER: &str = r#"
import socket, sys
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(64)
print(l.getsockname()[1], flush=True)
l.settimeout(20)
for _ in range(int(sys.argv[1])):
    s, _ = l.accept(); s.settimeout(20)
    try:
        while s.recv(64):
            pass
    except ConnectionResetError:
        pass
    s.close()
print("done", flush=True)
"#;

/// Connects `M` times and closes each with SO_LINGER {1, 0}: a reset instead of a FIN.
pub const CLIENT: &str = r#"
import socket, struct, sys
for _ in range(int(sys.argv[1])):
    c = socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=20)
    c.sendall(b"x")
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()
print("done", flush=True)
"#;

pub fn python(ns: &Netns, script: &str, args: &[String]) -> Child {
    ns.command("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 in the namespace")
}

pub fn first_line(c: &mut Child) -> String {
    let mut line = String::new();
    BufReader::new(c.stdout.as_mut().expect("piped stdout"))
        .read_line(&mut line)
        .expect("a line from the child");
    line.trim().to_string()
}

pub fn wait(mut c: Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Some(st) = c.try_wait().unwrap() {
            assert!(st.success(), "child failed: {st}");
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = c.kill();
    panic!("child did not finish in 30 s");
}

/// Accepts N connections and never closes them: once the peers close, N CLOSE_WAIT held
/// until it is killed. Prints "held" when all N are accepted.
pub const LEAK_SERVER: &str = r#"
import socket, sys, time
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(64)
print(l.getsockname()[1], flush=True)
kept = [l.accept()[0] for _ in range(int(sys.argv[1]))]
print("held", flush=True)
time.sleep(120)
"#;

/// Connects N times and keeps the connections ESTABLISHED until told on stdin, then closes.
pub const HOLD_CLIENT: &str = r#"
import socket, sys
cs = [socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=20) for _ in range(int(sys.argv[1]))]
print("open", flush=True)
sys.stdin.readline()
for c in cs:
    c.close()
print("done", flush=True)
"#;
