//! `lingertop serve` under a `Type=notify` unit, without systemd: the real binary with
//! `$NOTIFY_SOCKET` naming a datagram socket this test binds, as systemd's manager does.
//! READY=1 arrives once serve answers; a serve that cannot start never sends it.
//! (packaging/systemd-nspawn-check.sh runs the unit itself under a real systemd.)

use std::net::SocketAddr;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::Duration;

use crate::common::live::Served;
use crate::common::*;

/// A datagram socket in a directory of its own, as the manager's notify socket.
struct Manager {
    dir: PathBuf,
    path: PathBuf,
    socket: UnixDatagram,
}

impl Manager {
    fn bind(name: &str) -> Manager {
        let dir = std::env::temp_dir().join(format!("lingertop-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let path = dir.join("notify");
        let _ = std::fs::remove_file(&path);
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        Manager { dir, path, socket }
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn serve_says_ready_once_it_answers() {
    let manager = Manager::bind("notify-ready");
    let mut cmd = lingertop();
    cmd.env("NOTIFY_SOCKET", &manager.path);
    let served = Served::start_from(cmd, &["--netns", "host", "--events", "off"]);

    manager
        .socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut buf = [0u8; 256];
    let n = manager.socket.recv(&mut buf).expect("READY=1 within 20 s");
    assert_eq!(&buf[..n], b"READY=1");
    let (status, _, body) = served.get("/healthz", None);
    assert_eq!(status, 200, "{body}");
    // Once: a second datagram would be a second start to the manager.
    manager.socket.set_nonblocking(true).unwrap();
    assert!(manager.socket.recv(&mut buf).is_err(), "one READY=1 only");
    assert!(served.stop(libc::SIGTERM).success());
}

#[test]
fn a_serve_that_cannot_start_never_says_ready() {
    let manager = Manager::bind("notify-fail");
    let taken = listener(V4);
    let addr: SocketAddr = taken.local_addr().unwrap();
    let out = lingertop()
        .env("NOTIFY_SOCKET", &manager.path)
        .args(["serve", "--netns", "host", "--events", "off"])
        .args(["--listen", &addr.to_string()])
        .output()
        .expect("run lingertop");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("already in use"), "{stderr}");
    // The process has exited: anything it sent is queued by now.
    manager.socket.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 256];
    let got = manager.socket.recv(&mut buf);
    assert!(
        got.is_err(),
        "sent {:?} although it never served",
        got.map(|n| String::from_utf8_lossy(&buf[..n]).into_owned())
    );
}
