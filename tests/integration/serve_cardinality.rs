//! `lingertop serve` keeps label cardinality bounded: thousands of distinct TIME_WAIT
//! endpoints and more CLOSE_WAIT-holding processes than series, made on loopback, scraped
//! from the real binary. A test binary of its own, because the churn of 3000 connections
//! (each client end briefly in CLOSE_WAIT) would blur the exact per-process counts that
//! tests/serve.rs checks for this process.

use std::io::Read;
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

use crate::common::live::{Served, unix_now};
use crate::common::*;
use lingertop::model::TcpState;

/// A child process (`sleep`) that holds `sock` as its fd 3 and nothing else of ours.
fn holder(sock: &TcpStream) -> Child {
    let fd = sock.as_raw_fd();
    let mut cmd = Command::new("sleep");
    cmd.arg("60").stdin(Stdio::null()).stdout(Stdio::null());
    // SAFETY: between fork and exec, only async-signal-safe calls (dup2, fcntl) on the
    // child's own descriptor table. Inheriting by dup2 in the child keeps the socket out
    // of every other process this test binary spawns meanwhile.
    unsafe {
        cmd.pre_exec(move || {
            if fd == 3 {
                let flags = libc::fcntl(3, libc::F_GETFD);
                libc::fcntl(3, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
            } else if libc::dup2(fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn().expect("spawn sleep")
}

/// Kills the holders when the test ends, however it ends.
struct Holders(Vec<Child>);

impl Drop for Holders {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn label_cardinality_stays_bounded_with_thousands_of_endpoints() {
    const ENDPOINTS: usize = 3000;
    const HOLDERS: usize = 12;
    let l = listener(V4);

    // Server-side TIME_WAIT: the server closes first, so each TIME_WAIT is toward a
    // distinct client endpoint (its own ephemeral port): 3000 distinct remotes, and 3000
    // distinct destinations for the port-pressure breakdown.
    let mut buf = [0u8; 1];
    for _ in 0..ENDPOINTS {
        let (mut c, s) = pair(&l);
        drop(s);
        assert_eq!(c.read(&mut buf).unwrap(), 0, "client reads EOF");
    }
    // 12 processes holding one CLOSE_WAIT each: more processes than series.
    let mut holders = Holders(Vec::new());
    for _ in 0..HOLDERS {
        let (c, s) = pair(&l);
        holders.0.push(holder(&s));
        drop(s);
        let (client, server) = addr_of(&c);
        drop(c);
        wait_for_state(server, client, TcpState::CloseWait);
    }
    let made = unix_now();

    let served = Served::start(&["--interval", "200ms"]);
    let s = served.scrape_until("a poll after the sockets were made", |s| {
        s.get("lingertop_last_poll_timestamp_seconds", &[]) > Some(made)
    });
    let top_n = 10;

    // TIME_WAIT per remote: at most top N + other, adding up to every TIME_WAIT.
    let tw = s.all("lingertop_time_wait_connections");
    assert!(tw.len() <= top_n + 1, "{} series", tw.len());
    let tw_total = s.sum("lingertop_connections", &[("state", "TIME_WAIT")]);
    assert!(tw_total >= ENDPOINTS as f64, "{tw_total}");
    assert_eq!(s.sum("lingertop_time_wait_connections", &[]), tw_total);
    let other = s
        .get("lingertop_time_wait_connections", &[("remote", "other")])
        .unwrap();
    assert!(other >= (ENDPOINTS - top_n) as f64, "other = {other}");

    // Ephemeral ports per destination: the same bound.
    assert!(s.all("lingertop_ephemeral_ports_used").len() <= top_n + 1);
    assert!(s.all("lingertop_ephemeral_port_usage_ratio").len() <= top_n);
    let ports_other = s
        .get(
            "lingertop_ephemeral_ports_used",
            &[("local_ip", ""), ("remote", "other")],
        )
        .unwrap();
    assert!(ports_other >= (ENDPOINTS - top_n) as f64, "{ports_other}");

    // CLOSE_WAIT per process: the same bound; every holder is either listed with its one
    // socket or summed into other.
    let cw = s.all("lingertop_close_wait_connections");
    assert!(cw.len() <= top_n + 1, "{} series", cw.len());
    let cw_total = s.sum("lingertop_connections", &[("state", "CLOSE_WAIT")]);
    assert_eq!(s.sum("lingertop_close_wait_connections", &[]), cw_total);
    let mut folded = 0.0;
    for h in &holders.0 {
        let pid = h.id().to_string();
        match s
            .all("lingertop_close_wait_connections")
            .into_iter()
            .find(|x| x.labels["pid"] == pid)
        {
            Some(x) => assert_eq!(x.value, 1.0, "{x:?}"),
            None => folded += 1.0,
        }
    }
    assert!(
        folded >= (HOLDERS - top_n) as f64,
        "{folded} holders folded"
    );
    let cw_other = s
        .get(
            "lingertop_close_wait_connections",
            &[("pid", ""), ("process", "other")],
        )
        .unwrap();
    assert!(cw_other >= folded, "other {cw_other} < folded {folded}");

    // The per-process closes (with the kernel's events): the same top N plus other, by
    // kind and by reason.
    assert!(s.all("lingertop_process_closes_total").len() <= 5 * (top_n + 1));
    assert!(s.all("lingertop_process_resets_sent_total").len() <= 3 * (top_n + 1));

    // The whole scrape stays small whatever the host does (a fixed set of series plus the
    // top N of each breakdown; 4 of the fixed ones are the close rules' active alerts; the
    // resets by process and reason add 3 a listed process).
    let lines = s.text.lines().count();
    assert!(lines < 250, "{lines} lines");
    assert!(served.stop(libc::SIGTERM).success());
}
