//! What an HTTP client can hold of `lingertop serve`: the real binary on a free loopback
//! port, under a low open-files limit, with hundreds of real loopback connections held
//! silent, half-way through a request, or idle after one. A fresh scrape must still be
//! answered, and the server must close what it holds within its bounds.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

use crate::common::lingertop;
use crate::common::live::Served;

/// `lingertop` with its soft and hard open-files limit set to `n` before it starts.
fn with_open_files(n: u64) -> std::process::Command {
    let mut cmd = lingertop();
    // SAFETY: the closure runs in the child between fork and exec and calls only setrlimit,
    // which is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: n as libc::rlim_t,
                rlim_max: n as libc::rlim_t,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

/// Connections to `addr` that say nothing.
fn silent(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| TcpStream::connect(addr).expect("connect to serve"))
        .collect()
}

/// Connections that send the start of a request and never the rest.
fn half_headers(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            let mut c = TcpStream::connect(addr).expect("connect to serve");
            c.write_all(b"GET /metrics HTTP/1.1\r\nHost: lingertop\r\nX-Slow: ")
                .expect("send half a header");
            c
        })
        .collect()
}

/// Connections that complete one keep-alive request, read its whole answer, then idle.
fn idle_after_one(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            let mut c = TcpStream::connect(addr).expect("connect to serve");
            c.write_all(b"GET /healthz HTTP/1.1\r\nHost: lingertop\r\n\r\n")
                .expect("send a request");
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 512];
            while !got.ends_with(b"ok\n") {
                let n = c.read(&mut buf).expect("read the answer");
                assert!(n > 0, "closed before answering: {got:?}");
                got.extend_from_slice(&buf[..n]);
            }
            assert!(got.starts_with(b"HTTP/1.1 200"), "{got:?}");
            c
        })
        .collect()
}

/// Waits until the server has closed every connection in `held` (EOF or reset on read),
/// for at most `within`. Returns how many are still open then.
fn still_open_after(held: &mut [TcpStream], within: Duration) -> usize {
    let deadline = Instant::now() + within;
    let mut open: Vec<&mut TcpStream> = held.iter_mut().collect();
    while !open.is_empty() && Instant::now() < deadline {
        open.retain_mut(|c| {
            c.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
            let mut buf = [0u8; 256];
            match c.read(&mut buf) {
                Ok(0) => false,
                Ok(_) => true, // an answer or a timeout response; keep waiting for the close
                Err(e) => matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
            }
        });
    }
    open.len()
}

#[test]
fn hundreds_of_held_connections_leave_room_for_a_fresh_scrape() {
    // 64 descriptors leave room for 32 connections: lower than the default cap of 64.
    let served = Served::start_from(
        with_open_files(64),
        &[
            "--interval",
            "500ms",
            "--set",
            "serve.header-timeout=1s",
            "--set",
            "serve.idle-timeout=2s",
        ],
    );
    let said = served
        .stderr
        .recv_timeout(Duration::from_secs(5))
        .expect("a line about the lowered cap");
    assert!(
        said.contains("at most 32 connections") && said.contains("ulimit -n"),
        "{said}"
    );

    let mut held = idle_after_one(served.addr, 20);
    held.extend(half_headers(served.addr, 100));
    held.extend(silent(served.addr, 380));

    // 500 connections against a cap of 32 and 64 descriptors: a new scrape is answered.
    let scrape = served.scrape();
    assert!(scrape.get("lingertop_polls_total", &[]).is_some());
    let (status, _, body) = served.get("/healthz", None);
    assert_eq!(status, 200, "{body}");

    // The server closes everything it was made to hold: the oldest ones gave way to newer
    // ones, the rest end at their header (1 s) or idle (2 s) bound.
    let left = still_open_after(&mut held, Duration::from_secs(15));
    assert_eq!(left, 0, "{left} of 500 held connections were never closed");
}

#[test]
fn a_silent_or_half_sent_connection_is_closed_at_its_bound_and_a_busy_one_is_not() {
    let served = Served::start(&[
        "--interval",
        "500ms",
        "--set",
        "serve.header-timeout=1s",
        "--set",
        "serve.idle-timeout=3s",
    ]);
    let started = Instant::now();
    let mut half = half_headers(served.addr, 3);
    let mut quiet = silent(served.addr, 3);
    assert_eq!(still_open_after(&mut half, Duration::from_secs(10)), 0);
    let half_closed_after = started.elapsed();
    assert_eq!(still_open_after(&mut quiet, Duration::from_secs(10)), 0);
    let quiet_closed_after = started.elapsed();
    // The stricter header bound closed the half-sent requests before the idle bound
    // closed the silent ones, and neither before its own bound.
    assert!(
        half_closed_after >= Duration::from_secs(1) && half_closed_after < quiet_closed_after,
        "half-sent closed after {half_closed_after:?}, silent after {quiet_closed_after:?}"
    );
    assert!(
        quiet_closed_after >= Duration::from_secs(3),
        "{quiet_closed_after:?}"
    );

    // A keep-alive client that scrapes more often than the idle bound keeps its connection.
    let mut c = TcpStream::connect(served.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    for _ in 0..4 {
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: lingertop\r\n\r\n")
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 512];
        while !got.ends_with(b"ok\n") {
            let n = c.read(&mut buf).expect("the kept-alive connection answers");
            assert!(n > 0, "the kept-alive connection was closed: {got:?}");
            got.extend_from_slice(&buf[..n]);
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}
