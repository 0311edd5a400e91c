//! What the kernel event path costs: `lingertop serve` in a network namespace of its own
//! while a load generator there opens and closes loopback connections at a fixed rate, with
//! `--events on` and `--events off`. Prints, per rate and mode: the rate reached, lingertop's
//! CPU (share of one core), the machine's CPU (share of all cores; other work on the machine
//! counts too), the closes lingertop counted, the events lost and lingertop's peak memory.
//!
//! Needs root and a release build (`cargo build --release`), then
//! `cargo run --release --example closes_cost [SECONDS]` (default 10 s per row).
//!
//! Each connection ends with SO_LINGER {1, 0} from the client (two closes as lingertop counts
//! them: reset sent, reset received): a graceful close would leave a TIME_WAIT behind for 60 s
//! and 10k of them a second use up the namespace's ephemeral ports in three seconds.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Connections a second asked of the load; `u32::MAX`: as fast as one thread can, the
/// highest rate this machine sustains with one connecting thread.
const RATES: [u32; 3] = [1_000, 10_000, u32::MAX];

fn main() {
    if let Ok(spec) = std::env::var("LT_COST_LOAD") {
        let (rate, secs) = spec.split_once(':').expect("RATE:SECS");
        load(rate.parse().unwrap(), secs.parse().unwrap());
        return;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("closes_cost needs root (a network namespace and eBPF)");
        std::process::exit(2);
    }
    let secs: u64 = std::env::args()
        .nth(1)
        .map_or(10, |s| s.parse().expect("SECONDS"));
    let me = std::env::current_exe().unwrap();
    let bin = me
        .parent()
        .and_then(|p| p.parent())
        .unwrap()
        .join("lingertop");
    assert!(
        bin.exists(),
        "build lingertop first: cargo build --release ({})",
        bin.display()
    );
    let ns = format!("lt-cost-{}", std::process::id());
    let status = Command::new("ip")
        .args(["netns", "add", &ns])
        .status()
        .unwrap();
    assert!(status.success());
    let _cleanup = Cleanup(ns.clone());
    Command::new("ip")
        .args(["-n", &ns, "link", "set", "lo", "up"])
        .status()
        .unwrap();

    println!(
        "| target conn/s | events | conn/s reached | lingertop CPU (% of a core) | machine CPU (% of {} cores) | closes counted | events lost | lingertop peak RSS |",
        cores()
    );
    println!("|---|---|---|---|---|---|---|---|");
    for rate in RATES {
        for events in ["off", "on"] {
            let row = run(&ns, &bin, &me, rate, events, secs);
            let target = if rate == u32::MAX {
                "max".to_string()
            } else {
                rate.to_string()
            };
            println!(
                "| {target} | {events} | {:.0} | {:.1} | {:.1} | {} | {} | {} MiB |",
                row.reached,
                row.lingertop_cpu,
                row.machine_cpu,
                row.closes,
                row.lost,
                row.peak_rss_kib / 1024
            );
        }
    }
}

struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

struct Row {
    reached: f64,
    lingertop_cpu: f64,
    machine_cpu: f64,
    closes: u64,
    lost: u64,
    peak_rss_kib: u64,
}

fn run(
    ns: &str,
    bin: &std::path::Path,
    me: &std::path::Path,
    rate: u32,
    events: &str,
    secs: u64,
) -> Row {
    let mut serve = Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(bin)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--interval",
            "1s",
            "--events",
            events,
        ])
        .env("XDG_CONFIG_HOME", "/nonexistent-lingertop-bench")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = serve.id();
    let mut err = BufReader::new(serve.stderr.take().unwrap());
    let mut addr = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while addr.is_empty() && Instant::now() < deadline {
        let mut line = String::new();
        if err.read_line(&mut line).unwrap() == 0 {
            break;
        }
        if let Some(i) = line.find("http://") {
            addr = line[i + 7..].split('/').next().unwrap().to_string();
        }
    }
    assert!(!addr.is_empty(), "serve did not start");
    std::thread::spawn(move || for _ in err.lines() {});

    let cpu0 = proc_cpu(pid);
    let m0 = machine();
    let t0 = Instant::now();
    let out = Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(me)
        .env("LT_COST_LOAD", format!("{rate}:{secs}"))
        .output()
        .unwrap();
    let wall = t0.elapsed().as_secs_f64();
    let cpu1 = proc_cpu(pid);
    let m1 = machine();
    let made: f64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0.0);
    // Let the last closes reach the tally (the reader drains within 50 ms, serve publishes
    // each 1 s poll).
    std::thread::sleep(Duration::from_millis(2500));
    let metrics = scrape(ns, &addr);
    let peak_rss_kib = status_kib(pid, "VmHWM:");
    let _ = Command::new("kill").arg(pid.to_string()).status();
    let _ = serve.wait();
    let tick = clock_ticks();
    Row {
        reached: made / wall,
        lingertop_cpu: 100.0 * (cpu1 - cpu0) as f64 / tick / wall,
        machine_cpu: 100.0 * (m1.0 - m0.0) as f64 / ((m1.1 - m0.1) as f64).max(1.0),
        closes: sum(&metrics, "lingertop_closes_total{"),
        lost: sum(&metrics, "lingertop_events_lost_total"),
        peak_rss_kib,
    }
}

/// The load: `rate` connections a second for `secs` seconds, each ended by the client with
/// SO_LINGER {1, 0}; prints how many it made.
fn load(rate: u32, secs: u64) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            drop(s);
        }
    });
    let start = Instant::now();
    let end = start + Duration::from_secs(secs);
    let mut made = 0u64;
    while Instant::now() < end {
        // Paced: as many as the elapsed time allows, so a slow moment catches up.
        let due = (start.elapsed().as_secs_f64() * f64::from(rate)) as u64;
        if made >= due {
            std::thread::sleep(Duration::from_micros(200));
            continue;
        }
        let Ok(c) = TcpStream::connect(addr) else {
            continue;
        };
        let _ = socket2::SockRef::from(&c).set_linger(Some(Duration::ZERO));
        drop(c);
        made += 1;
    }
    println!("{made}");
}

fn scrape(ns: &str, addr: &str) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "curl", "-fsS"])
        .arg(format!("http://{addr}/metrics"))
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sum(metrics: &str, prefix: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// utime + stime of a process, in clock ticks.
fn proc_cpu(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    f.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
}

/// (busy, total) jiffies of the whole machine.
fn machine() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap();
    let v: Vec<u64> = stat
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v[3] + v[4];
    (total - idle, total)
}

fn status_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix(key)?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }) as f64
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
