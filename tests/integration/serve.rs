//! `lingertop serve` against real loopback sockets: the real binary on a free loopback
//! port, scraped over HTTP with a real client, its values checked against sockets this
//! test put into known states.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Stdio;
use std::time::Duration;

use crate::common::live::{Scrape, Served, unix_now};
use crate::common::*;
use lingertop::model::TcpState;

/// `n` connections to `l` whose client closed first and whose server end this process
/// keeps open: the server ends sit in CLOSE_WAIT. Returns the server ends.
fn close_waits(l: &TcpListener, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            let (c, s) = pair(l);
            let (client, server) = addr_of(&c);
            drop(c);
            wait_for_state(server, client, TcpState::CloseWait);
            s
        })
        .collect()
}

/// A connection to `l` whose client closes first and whose server then closes too: the
/// client end sits in TIME_WAIT toward `l`.
fn client_time_wait(l: &TcpListener) {
    let (c, mut s) = pair(l);
    let (client, server) = addr_of(&c);
    drop(c);
    let mut buf = [0u8; 8];
    assert_eq!(s.read(&mut buf).unwrap(), 0, "server reads EOF");
    drop(s);
    wait_for_state(client, server, TcpState::TimeWait);
}

#[test]
fn metrics_show_the_sockets_the_test_made() {
    let me = std::process::id().to_string();
    let comm = my_comm();
    let l = listener(V4);
    let laddr = l.local_addr().unwrap().to_string();
    let cw = close_waits(&l, 3);
    client_time_wait(&l);
    client_time_wait(&l);

    let served = Served::start(&[
        "--interval",
        "200ms",
        // The most series allowed: other tests on this machine may leave thousands of
        // TIME_WAIT toward hundreds of endpoints, and ours must still be listed.
        "--set",
        "serve.top-n=10000",
        "--set",
        "alerts.close-wait.min-age=0s",
    ]);
    let (status, _, body) = served.get("/healthz", None);
    assert_eq!((status, body.as_str()), (200, "ok\n"));

    let close_wait = [("pid", me.as_str()), ("process", comm.as_str())];
    // Our CLOSE_WAIT have an age (from the first poll on netlink, the second on netstat2)
    // and their alert fires; two polls in, for the counters below.
    let s = served.scrape_until("a CLOSE_WAIT age and alert", |s| {
        s.get("lingertop_close_wait_oldest_age_seconds", &[]) > Some(0.0)
            && s.get("lingertop_polls_total", &[]) >= Some(2.0)
            && s.get(
                "lingertop_active_alerts",
                &[("rule", "close-wait-lingering"), ("severity", "warning")],
            ) >= Some(1.0)
    });

    assert_eq!(
        s.get("lingertop_close_wait_connections", &close_wait),
        Some(3.0),
        "{}",
        s.text
    );
    assert_eq!(
        s.get("lingertop_time_wait_connections", &[("remote", &laddr)]),
        Some(2.0),
        "{}",
        s.text
    );
    // Our client ends toward the listener: 3 orphaned FIN_WAIT_2 (the peers of the
    // CLOSE_WAIT) and 2 TIME_WAIT, each on its own ephemeral port.
    let dest = [("local_ip", "127.0.0.1"), ("remote", laddr.as_str())];
    assert_eq!(
        s.get("lingertop_ephemeral_ports_used", &dest),
        Some(5.0),
        "{}",
        s.text
    );
    let range = s
        .get("lingertop_ephemeral_port_range_size", &[])
        .expect("range size");
    let ratio = s
        .get("lingertop_ephemeral_port_usage_ratio", &dest)
        .expect("ratio");
    assert!((ratio - 5.0 / range).abs() < 1e-12, "{ratio} vs 5/{range}");

    // The per-process breakdown adds up to the per-state count.
    let cw_total = s.sum("lingertop_connections", &[("state", "CLOSE_WAIT")]);
    assert!(cw_total >= 3.0);
    assert_eq!(s.sum("lingertop_close_wait_connections", &[]), cw_total);
    assert_eq!(s.get("lingertop_poll_errors_total", &[]), Some(0.0));
    assert!(s.get("lingertop_polls_total", &[]) >= Some(2.0));
    let age = unix_now() - s.get("lingertop_last_poll_timestamp_seconds", &[]).unwrap();
    assert!((0.0..5.0).contains(&age), "last poll {age} s ago");

    // Close them: the next polls drop our process from the breakdown.
    drop(cw);
    served.scrape_until("our CLOSE_WAIT gone", |s| {
        s.get("lingertop_close_wait_connections", &close_wait)
            .is_none()
    });

    assert!(served.stop(libc::SIGTERM).success());
}

#[test]
fn scrapes_read_the_last_poll_and_never_trigger_one() {
    // One poll an hour: every scrape must show the first poll.
    let served = Served::start(&["--interval", "1h"]);
    let first = served.scrape();
    assert_eq!(first.get("lingertop_polls_total", &[]), Some(1.0));
    let at = first.get("lingertop_last_poll_timestamp_seconds", &[]);
    for _ in 0..5 {
        let s = served.scrape();
        assert_eq!(s.get("lingertop_polls_total", &[]), Some(1.0));
        assert_eq!(s.get("lingertop_last_poll_timestamp_seconds", &[]), at);
    }

    // Content negotiation: Prometheus asks for OpenMetrics, everyone else gets the
    // classic text format.
    let (status, ctype, body) = served.get(
        "/metrics",
        Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"),
    );
    assert_eq!(status, 200);
    assert!(ctype.starts_with("application/openmetrics-text"), "{ctype}");
    assert!(body.ends_with("# EOF\n"));
    assert!(body.contains("# TYPE lingertop_polls counter\nlingertop_polls_total 1\n"));
    let (_, ctype, body) = served.get("/metrics", None);
    assert!(ctype.starts_with("text/plain; version=0.0.4"), "{ctype}");
    assert!(body.contains("# TYPE lingertop_polls_total counter\nlingertop_polls_total 1\n"));

    let (status, _, _) = served.get("/nope", None);
    assert_eq!(status, 404);
    assert!(served.stop(libc::SIGINT).success());
}

#[test]
fn a_taken_port_is_one_line_that_says_so() {
    let taken = listener(V4);
    let addr: SocketAddr = taken.local_addr().unwrap();
    let out = lingertop()
        .args(["serve", "--listen", &addr.to_string()])
        .output()
        .expect("run lingertop");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&addr.to_string()) && stderr.contains("already in use"),
        "{stderr}"
    );
    assert!(stderr.contains("--listen"), "{stderr}");

    for bad in ["everywhere", "127.0.0.1", "127.0.0.1:http"] {
        let out = lingertop()
            .args(["serve", "--listen", bad])
            .output()
            .expect("run lingertop");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains("127.0.0.1:9797"), "{stderr}");
    }
}

#[test]
fn the_config_sets_the_listen_address_and_the_flag_wins() {
    let taken = listener(V4);
    let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::io::Write::write_all(
        &mut f,
        format!("[serve]\nlisten = \"{}\"\n", taken.local_addr().unwrap()).as_bytes(),
    )
    .unwrap();
    let cfg = f.path().to_str().unwrap();
    // The config's address is taken: serve says so.
    let out = lingertop()
        .args(["--config", cfg, "serve"])
        .output()
        .expect("run lingertop");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already in use"));
    // --listen overrides it.
    let mut child = lingertop()
        .args(["--config", cfg, "serve", "--listen", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = crate::common::live::line_reader(child.stderr.take().unwrap());
    let line = crate::common::live::next_line(&stderr, Duration::from_secs(20), "serving");
    assert!(line.contains("serving http://127.0.0.1:"), "{line}");
    crate::common::live::signal(&child, libc::SIGTERM);
    assert!(crate::common::live::wait_exit(&mut child, Duration::from_secs(10)).success());
}

#[test]
fn an_ipv4_mapped_loopback_address_is_loopback() {
    // `[::ffff:127.0.0.1]` is 127.0.0.1 seen through an IPv6 socket: no exposure warning.
    let mut child = lingertop()
        .args([
            "serve",
            "--listen",
            "[::ffff:127.0.0.1]:0",
            "--interval",
            "200ms",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = crate::common::live::line_reader(child.stderr.take().unwrap());
    let line = crate::common::live::next_line(&stderr, Duration::from_secs(20), "serving");
    assert!(
        line.contains("serving http://[::ffff:127.0.0.1]:"),
        "{line}"
    );
    crate::common::live::signal(&child, libc::SIGTERM);
    assert!(crate::common::live::wait_exit(&mut child, Duration::from_secs(10)).success());
    // The warning, when given, follows the serving line at once.
    // The child has exited, so its stderr ends and the reader stops.
    let rest: Vec<String> = stderr.iter().collect();
    assert!(
        !rest.iter().any(|l| l.contains("not a loopback")),
        "{rest:?}"
    );
}

#[test]
fn scrape_parser_reads_what_it_is_given() {
    // The tests above lean on this parser; make sure it is not fooled.
    let s = Scrape::parse("# HELP a b\na{x=\"1\",y=\"\"} 2.5\nb 3\n");
    assert_eq!(s.get("a", &[("x", "1"), ("y", "")]), Some(2.5));
    assert_eq!(s.get("a", &[("x", "1")]), None);
    assert_eq!(s.get("b", &[]), Some(3.0));
}
