//! How much one poll of a lab connection's two 4-tuples costs with each way of reading the
//! socket table: the sock_diag exact lookup the lab uses, a full netstat2 dump without
//! process names, and the full collector (dump, /proc scan, names). Prints figures; asserts
//! nothing. Run with `cargo bench --bench lab_probe`.
//!
//! It makes its own loopback population (bounded: `EXTRA` connections, closed at the end)
//! so the dumps have something to wade through, as they would on a busy host.

// The lab runs on unix only; elsewhere this program says so and measures nothing.
#[cfg(unix)]
use std::net::{SocketAddr, TcpListener, TcpStream};
#[cfg(unix)]
use std::time::{Duration, Instant};

#[cfg(unix)]
use lingertop::collector::{Collector, Netstat2Source};
#[cfg(unix)]
use lingertop::lab::observe::{SourceProbe, TupleProbe, system_probe};
#[cfg(unix)]
use lingertop::lab::{Behaviour, Family, Lab};

#[cfg(unix)]
/// Extra loopback connections (two sockets each) in the table while measuring.
const EXTRA: usize = 1000;

#[cfg(unix)]
fn time_per_poll(mut poll: impl FnMut(), budget: Duration) -> (Duration, u32) {
    poll(); // warm up: first-use costs are not per-poll costs
    let start = Instant::now();
    let mut n = 0u32;
    while start.elapsed() < budget || n < 5 {
        poll();
        n += 1;
    }
    (start.elapsed() / n, n)
}

#[cfg(unix)]
fn main() {
    let lab = Lab::new().expect("start a lab");
    let id = lab.open(Behaviour::Normal, 1, Family::Ipv4).expect("open")[0];
    let v = lab.connection(id).expect("listed");
    let tuples: [(SocketAddr, SocketAddr); 2] = [
        (v.client.local, v.client.remote),
        (v.server.local, v.server.remote),
    ];

    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().expect("addr");
    let mut keep = Vec::with_capacity(EXTRA * 2);
    for _ in 0..EXTRA {
        keep.push(TcpStream::connect(addr).expect("connect"));
        keep.push(listener.accept().expect("accept").0);
    }

    let mut out = Vec::new();
    let mut exact = system_probe();
    let name = exact.name();
    let (t_exact, n_exact) = time_per_poll(
        || exact.lookup(&tuples, &mut out).expect("lookup"),
        Duration::from_secs(2),
    );
    let mut dump = SourceProbe::new(Netstat2Source);
    let (t_dump, n_dump) = time_per_poll(
        || dump.lookup(&tuples, &mut out).expect("dump"),
        Duration::from_secs(2),
    );
    let mut collector = Collector::system();
    let mut sockets = 0;
    let (t_full, n_full) = time_per_poll(
        || sockets = collector.poll().expect("poll").connections.len(),
        Duration::from_secs(2),
    );

    println!(
        "lab_probe: one poll of a lab connection's two 4-tuples ({sockets} TCP sockets in the table)"
    );
    println!(
        "{:<34} {:>12} {:>8} {:>22}",
        "method", "per poll", "polls", "CPU at one poll / 5 ms"
    );
    for (what, t, n) in [
        (format!("{name} exact lookup (the lab)"), t_exact, n_exact),
        (
            "netstat2 dump, no process names".to_string(),
            t_dump,
            n_dump,
        ),
        (
            "full collector (dump + /proc scan)".to_string(),
            t_full,
            n_full,
        ),
    ] {
        let share = t.as_secs_f64() / 0.005 * 100.0;
        println!(
            "{what:<34} {:>9.1} us {n:>8} {:>20.1} %",
            t.as_secs_f64() * 1e6,
            share
        );
    }
    drop(keep);
}

#[cfg(not(unix))]
fn main() {
    eprintln!("lab_probe: {}", lingertop::lab::UNIX_ONLY);
}
