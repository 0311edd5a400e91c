//! lingertop's soak: the live modes run for a long time beside loopback churn, and their
//! memory, CPU and descriptors are sampled. Not part of the test run (see RELIABILITY.md).
//!
//! ```sh
//! cargo build --release && cargo run --release --example soak -- --duration 1h --rate 600
//! cargo run --release --example soak -- --duration 2m      # a quick look
//! ```
//!
//! It starts the release binary three times — `serve` (scraped every 5 s), `watch --events`
//! (its NDJSON read and checked) and the dashboard in a tmux window of 120x40 — holds `--close-wait` CLOSE_WAIT sockets, and opens and closes
//! `--rate` loopback connections a second: client-first closes, server-first closes and
//! resets, from eight source addresses so ephemeral ports never run out. Every 10 s it samples
//! each process's RSS, CPU time and open descriptors; at the end it prints one table.
//! Everything it makes is on loopback and ends by itself after `--duration`. Run it in a
//! network namespace of its own so its tens of thousands of TIME_WAIT sockets stay out of
//! the host's table (and out of any test running beside it):
//!
//! ```sh
//! unshare -n sh -c 'ip link set lo up && exec target/release/examples/soak --duration 1h'
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use socket2::{Domain, SockAddr, Socket, Type};

/// Long-running lingertop beside loopback churn; prints RSS/CPU/fd figures.
#[derive(Debug, Parser)]
struct Args {
    /// How long to run (e.g. 1h, 10m); at most 6h.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Loopback connections opened and closed per second (at most 5000).
    #[arg(long, default_value_t = 600)]
    rate: u32,
    /// CLOSE_WAIT sockets held for the whole run (at most 5000).
    #[arg(long, default_value_t = 200)]
    close_wait: usize,
    /// Poll interval of the three live modes.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    interval: Duration,
    /// The network namespaces the modes read (`collector.netns`): by default their own
    /// (the soak's), so what they hold is the soak's churn and nothing else on the machine.
    #[arg(long, default_value = "host")]
    netns: String,
}

/// One sample of a process.
#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    rss_kib: u64,
    cpu: Duration,
    fds: usize,
}

/// The samples of one process over the run.
struct Watched {
    name: &'static str,
    pid: u32,
    samples: Vec<(Duration, Sample)>,
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(&args) {
        eprintln!("soak: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Result<(), String> {
    if args.duration > Duration::from_secs(6 * 3600) || args.rate > 5000 || args.close_wait > 5000 {
        return Err("--duration is at most 6h, --rate and --close-wait at most 5000".into());
    }
    let exe = lingertop_binary()?;
    let interval = humantime::format_duration(args.interval).to_string();
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));

    // The load: a listener, the held CLOSE_WAIT, the churn.
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| e.to_string())?;
    let target = listener.local_addr().map_err(|e| e.to_string())?;
    let made = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let server = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || serve_churn(listener, &stop))
    };
    let held = hold_close_waits(args.close_wait)?;
    let churn = {
        let (stop, made, failed, rate) = (
            Arc::clone(&stop),
            Arc::clone(&made),
            Arc::clone(&failed),
            args.rate,
        );
        std::thread::spawn(move || churn(target, rate, &stop, &made, &failed))
    };

    // The three live modes.
    let netns = format!("collector.netns={}", args.netns);
    let mut serve = Command::new(&exe)
        .args(["--set", &netns])
        .args(["serve", "--listen", "127.0.0.1:0", "--interval", &interval])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start serve: {e}"))?;
    let serve_addr = serve_address(&mut serve)?;
    let mut watch = Command::new(&exe)
        .args(["--set", &netns])
        .args(["watch", "--events", "--interval", &interval])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start watch: {e}"))?;
    let watch_lines = Arc::new(AtomicU64::new(0));
    let watch_bad = Arc::new(AtomicU64::new(0));
    let watch_reader = {
        let out = watch.stdout.take().ok_or("watch has no stdout")?;
        let (lines, bad) = (Arc::clone(&watch_lines), Arc::clone(&watch_bad));
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                lines.fetch_add(1, Ordering::Relaxed);
                if serde_json::from_str::<serde_json::Value>(&line).is_err() {
                    bad.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    // The dashboard in a real terminal emulator: tmux answers the terminal's queries and
    // draws into a 120x40 window that nobody looks at.
    let session = format!("lingertop-soak-{}", std::process::id());
    let dashboard_cmd = format!("exec {} --set {netns} --interval {interval}", exe.display());
    let status = Command::new("tmux")
        .args([
            "-L",
            &session,
            "new-session",
            "-d",
            "-x",
            "120",
            "-y",
            "40",
            "-s",
            &session,
        ])
        .arg(&dashboard_cmd)
        .status()
        .map_err(|e| format!("cannot start the dashboard in tmux: {e}"))?;
    if !status.success() {
        return Err(format!("tmux new-session failed: {status}"));
    }
    let dashboard_pid = tmux_pane_pid(&session)?;
    let mut watched = vec![
        Watched {
            name: "serve",
            pid: serve.id(),
            samples: Vec::new(),
        },
        Watched {
            name: "watch --events",
            pid: watch.id(),
            samples: Vec::new(),
        },
        Watched {
            name: "dashboard (tmux 120x40)",
            pid: dashboard_pid,
            samples: Vec::new(),
        },
    ];

    let mut scrapes_ok = 0u64;
    let mut scrape_failures = Vec::new();
    let mut series = (usize::MAX, 0usize);
    let mut next_sample = Instant::now();
    let mut next_scrape = Instant::now();
    // How quiet the machine was: the 1-minute load average at each sample, and the
    // machine's busy CPU (all cores, every process: the soak's own included) over the run.
    let mut load = (f64::MAX, 0f64);
    let cpu_start = machine_cpu();
    let end = started + args.duration;
    while Instant::now() < end {
        let now = Instant::now();
        if now >= next_scrape {
            next_scrape += Duration::from_secs(5);
            match scrape(serve_addr) {
                Ok(n) => {
                    scrapes_ok += 1;
                    series = (series.0.min(n), series.1.max(n));
                }
                Err(e) => scrape_failures.push(format!("{:?}: {e}", started.elapsed())),
            }
        }
        if now >= next_sample {
            next_sample += Duration::from_secs(10);
            if let Some(l) = load_average() {
                load = (load.0.min(l), load.1.max(l));
            }
            for w in &mut watched {
                if let Some(s) = sample(w.pid) {
                    w.samples.push((started.elapsed(), s));
                }
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }

    stop.store(true, Ordering::Relaxed);
    let _ = churn.join();
    // Wake the churn server out of accept().
    let _ = TcpStream::connect(target);
    let _ = server.join();
    drop(held);

    // End each mode as a user would and check that it ends cleanly.
    let mut exits = Vec::new();
    for (name, child) in [("serve", &mut serve), ("watch", &mut watch)] {
        exits.push((name, terminate(child)));
    }
    let dashboard_screen = tmux(&["capture-pane", "-p", "-t", &session]).unwrap_or_default();
    let _ = tmux(&["send-keys", "-t", &session, "q"]);
    exits.push((
        "dashboard",
        gone_within(dashboard_pid, Duration::from_secs(10)),
    ));
    let _ = tmux(&["kill-session", "-t", &session]);
    let _ = watch_reader.join();

    let elapsed = started.elapsed();
    println!(
        "soak: {} at {} connections/s ({} made, {} failed to connect), {} CLOSE_WAIT held, polls every {interval}\n",
        humantime::format_duration(Duration::from_secs(elapsed.as_secs())),
        args.rate,
        made.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        args.close_wait
    );
    println!(
        "| process | RSS start (MiB) | RSS peak | RSS end | CPU (% of a core) | fds start | fds max | fds end |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for w in &watched {
        row(w);
    }
    println!();
    println!(
        "scrapes: {scrapes_ok} answered, {} failed; series per scrape: {} to {}",
        scrape_failures.len(),
        if series.0 == usize::MAX { 0 } else { series.0 },
        series.1
    );
    for f in scrape_failures.iter().take(10) {
        println!("  failed scrape at {f}");
    }
    println!(
        "watch: {} NDJSON lines, {} not JSON; dashboard's last screen begins: {:?}",
        watch_lines.load(Ordering::Relaxed),
        watch_bad.load(Ordering::Relaxed),
        dashboard_screen.lines().next().unwrap_or("")
    );
    for (name, exit) in exits {
        println!("{name} exit: {exit}");
    }
    if let (Some(a), Some(b)) = (cpu_start, machine_cpu()) {
        let busy = (b.0 - a.0) as f64 / ((b.1 - a.1) as f64).max(1.0);
        println!(
            "machine: load average (1 min) {:.2} to {:.2} over the run; CPU busy {:.1} % of all cores (the soak's processes included)",
            if load.0 == f64::MAX { 0.0 } else { load.0 },
            load.1,
            100.0 * busy
        );
    }
    Ok(())
}

/// The 1-minute load average.
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The machine's (busy, total) CPU ticks since boot, from the `cpu` line of /proc/stat.
fn machine_cpu() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|t| t.parse().ok())
        .collect();
    let total: u64 = ticks.iter().sum();
    // idle and iowait are the 4th and 5th fields.
    let idle = ticks.get(3)? + ticks.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// The release binary next to this example (`target/release/examples/soak` →
/// `target/release/lingertop`).
fn lingertop_binary() -> Result<std::path::PathBuf, String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let dir = me
        .parent()
        .and_then(|p| p.parent())
        .ok_or("cannot find the target directory")?;
    let exe = dir.join("lingertop");
    if exe.is_file() {
        Ok(exe)
    } else {
        Err(format!(
            "{} is missing: run `cargo build --release` first",
            exe.display()
        ))
    }
}

/// Reads serve's stderr until it says where it serves; keeps draining it after.
fn serve_address(serve: &mut Child) -> Result<SocketAddr, String> {
    let err = serve.stderr.take().ok_or("serve has no stderr")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200))
            && let Some(addr) = line
                .split("http://")
                .nth(1)
                .and_then(|r| r.split('/').next())
                .and_then(|a| a.parse().ok())
        {
            return Ok(addr);
        }
    }
    Err("serve did not say where it serves within 30 s".into())
}

/// Runs tmux with `args` on the soak's own server (`-L`, named after the session, so a
/// run inside a network namespace never reaches a tmux server outside it); its standard
/// output on success.
fn tmux(args: &[&str]) -> Result<String, String> {
    let socket = format!("lingertop-soak-{}", std::process::id());
    let out = Command::new("tmux")
        .args(["-L", &socket])
        .args(args)
        .output()
        .map_err(|e| format!("tmux: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "tmux {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The pid of the program in the session's one pane (it was started with `exec`).
fn tmux_pane_pid(session: &str) -> Result<u32, String> {
    tmux(&["list-panes", "-t", session, "-F", "#{pane_pid}"])?
        .trim()
        .parse()
        .map_err(|e| format!("no pane pid: {e}"))
}

/// Waits for a process that is not our child to end.
fn gone_within(pid: u32, within: Duration) -> String {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            return "ended (q)".to_string();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    format!("still running after {within:?}")
}

/// RSS, CPU time and open descriptors of `pid`, if it still runs.
fn sample(pid: u32) -> Option<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(") ")?.1.split(' ').collect();
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the comm.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no memory-safety preconditions.
    let hz = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) })
        .ok()
        .filter(|&h| h > 0)?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count();
    Some(Sample {
        rss_kib,
        cpu: Duration::from_millis(ticks * 1000 / hz),
        fds,
    })
}

fn row(w: &Watched) {
    let (Some(first), Some(last)) = (w.samples.first(), w.samples.last()) else {
        println!("| {} (pid {}) | no samples | | | | | | |", w.name, w.pid);
        return;
    };
    let mib = |k: u64| k as f64 / 1024.0;
    let peak = w.samples.iter().map(|(_, s)| s.rss_kib).max().unwrap_or(0);
    let fds_max = w.samples.iter().map(|(_, s)| s.fds).max().unwrap_or(0);
    let span = last.0.saturating_sub(first.0).as_secs_f64();
    let cpu = if span > 0.0 {
        100.0 * last.1.cpu.saturating_sub(first.1.cpu).as_secs_f64() / span
    } else {
        0.0
    };
    println!(
        "| {} | {:.1} | {:.1} | {:.1} | {:.2} | {} | {} | {} |",
        w.name,
        mib(first.1.rss_kib),
        mib(peak),
        mib(last.1.rss_kib),
        cpu,
        first.1.fds,
        fds_max,
        last.1.fds
    );
}

/// GET /metrics over a fresh connection, within 5 s: the number of samples (non-comment
/// lines) on success.
fn scrape(addr: SocketAddr) -> Result<usize, String> {
    let mut c =
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    c.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    c.write_all(b"GET /metrics HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut body = String::new();
    c.read_to_string(&mut body).map_err(|e| e.to_string())?;
    if !body.starts_with("HTTP/1.1 200") {
        return Err(body.lines().next().unwrap_or("empty answer").to_string());
    }
    let (_, text) = body.split_once("\r\n\r\n").ok_or("no body")?;
    Ok(text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count())
}

/// `n` CLOSE_WAIT sockets: the client end closes, the server end is kept here.
fn hold_close_waits(n: usize) -> Result<Vec<TcpStream>, String> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| e.to_string())?;
    let addr = l.local_addr().map_err(|e| e.to_string())?;
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        let c = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        let (s, _) = l.accept().map_err(|e| e.to_string())?;
        drop(c);
        held.push(s);
    }
    Ok(held)
}

/// The churn's server side: for each connection, read the one byte that says how it
/// ends, then end it that way.
fn serve_churn(l: TcpListener, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let Ok((mut s, _)) = l.accept() else { continue };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let mut how = [0u8; 1];
        match s.read(&mut how) {
            // Server first: this end closes, the server side holds TIME_WAIT.
            Ok(1) if how[0] == b's' => drop(s),
            // Client first: wait for its FIN, then close (the client holds TIME_WAIT).
            _ => {
                let _ = s.read(&mut how);
            }
        }
    }
}

/// Opens and closes `rate` connections a second to `target` until `stop`: half close
/// client-first, four in ten server-first, one in ten by reset.
fn churn(target: SocketAddr, rate: u32, stop: &AtomicBool, made: &AtomicU64, failed: &AtomicU64) {
    let period = Duration::from_secs(1) / rate.max(1);
    let mut next = Instant::now();
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let source = Ipv4Addr::new(127, 0, 1 + (i % 8) as u8, 1);
        match connect_from(source, target) {
            Ok(mut c) => {
                made.fetch_add(1, Ordering::Relaxed);
                match i % 10 {
                    0 => {
                        let _ = c.write_all(b"r");
                        let _ = socket2::SockRef::from(&c).set_linger(Some(Duration::ZERO));
                    }
                    1..=4 => {
                        let _ = c.write_all(b"s");
                        let mut b = [0u8; 1];
                        let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
                        let _ = c.read(&mut b);
                    }
                    _ => {
                        let _ = c.write_all(b"c");
                    }
                }
            }
            Err(_) => {
                failed.fetch_add(1, Ordering::Relaxed);
            }
        }
        next += period;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else if now - next > Duration::from_secs(1) {
            next = now; // fell behind: do not burst to catch up
        }
    }
}

fn connect_from(source: Ipv4Addr, target: SocketAddr) -> std::io::Result<TcpStream> {
    let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    s.bind(&SockAddr::from(SocketAddrV4::new(source, 0)))?;
    s.connect_timeout(&SockAddr::from(target), Duration::from_secs(2))?;
    Ok(s.into())
}

/// SIGTERM, then the exit status within 10 s (killed after that).
fn terminate(child: &mut Child) -> String {
    // SAFETY: kill has no memory-safety preconditions; the pid is our own child's.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    wait_within(child, Duration::from_secs(10))
}

fn wait_within(child: &mut Child, within: Duration) -> String {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return status.to_string();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    format!("did not end within {within:?}; killed")
}
