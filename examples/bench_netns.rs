//! What reading every network namespace costs: lingertop's poll of N small namespaces
//! (a few sockets each) beside its poll of one namespace holding the same sockets, and
//! beside `ip netns exec NS ss -tan` run once per namespace (what an operator does today).
//!
//! ```sh
//! sudo cargo run --release --example bench_netns                 # 1, 20 and 100 namespaces
//! cargo build --release --example loadgen   # --big runs it inside a namespace
//! sudo cargo run --release --example bench_netns -- --counts 20 --big 100000 --floor
//! ```
//!
//! Needs root (it creates its namespaces with `ip netns add` and removes them on exit) and
//! `ss`. Nothing here is timed in `cargo test`.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use lingertop::collector::netlink::{SockDiag, state_mask};
use lingertop::collector::{Backend, Collector, ReadOptions};

/// Time lingertop's poll over many network namespaces.
#[derive(Debug, Parser)]
struct Args {
    /// Namespace counts, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1,20,100")]
    counts: Vec<usize>,
    /// Connections held in each small namespace (each is a listener, an ESTABLISHED pair,
    /// a CLOSE_WAIT with its FIN_WAIT_2 peer and a TIME_WAIT: about 6 sockets).
    #[arg(long, default_value_t = 1)]
    each: usize,
    /// Also time one namespace holding this many TIME_WAIT (made by `loadgen` run in it
    /// with `ip netns exec`; at most 110000) beside 20 small ones (0: not).
    #[arg(long, default_value_t = 0)]
    big: usize,
    /// Also time the floor: one raw sock_diag dump (every state, both families) of an empty
    /// namespace, i.e. the kernel's walk of the hash table it shares.
    #[arg(long)]
    floor: bool,
    /// Give each namespace made here a TCP hash table of its own with this many buckets
    /// (`net.ipv4.tcp_child_ehash_entries`, restored after); 0: they share the host's, and
    /// each namespace's dump walks the whole machine's table.
    #[arg(long, default_value_t = 0)]
    child_ehash: u32,
    /// Polls timed per case (the median is shown).
    #[arg(long, default_value_t = 30)]
    polls: usize,
}

/// A namespace made here, removed when dropped.
struct Ns(String);

impl Ns {
    fn new(i: usize) -> Ns {
        let name = format!("ltb{}-{i}", std::process::id());
        let ok = |c: &mut Command| c.status().is_ok_and(|s| s.success());
        assert!(
            ok(Command::new("ip").args(["netns", "add", &name])),
            "ip netns add {name} failed: run as root"
        );
        assert!(ok(
            Command::new("ip").args(["-n", &name, "link", "set", "lo", "up"])
        ));
        Ns(name)
    }

    fn enter<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let file = File::open(format!("/run/netns/{}", self.0)).expect("open netns");
        std::thread::scope(|s| {
            s.spawn(|| {
                // SAFETY: the file stays open for the scope; only this thread moves.
                assert_eq!(
                    unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) },
                    0
                );
                f()
            })
            .join()
            .expect("thread in netns")
        })
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.0])
            .stderr(Stdio::null())
            .status();
    }
}

/// `each` sets of a listener, an ESTABLISHED pair, a CLOSE_WAIT and a TIME_WAIT, on a port
/// of its own per set; returns what must stay open.
fn small(each: usize, base: u16) -> Vec<OwnedFd> {
    let mut keep: Vec<OwnedFd> = Vec::new();
    for k in 0..each {
        let at = SocketAddr::from((Ipv4Addr::LOCALHOST, base + k as u16));
        let l = TcpListener::bind(at).expect("bind");
        let c = TcpStream::connect(at).unwrap();
        let s = l.accept().unwrap().0;
        keep.extend([c.into(), s.into()]);
        let c = TcpStream::connect(at).unwrap();
        let s = l.accept().unwrap().0;
        drop(c);
        keep.push(s.into());
        let c = TcpStream::connect(at).unwrap();
        let mut s = l.accept().unwrap().0;
        c.shutdown(std::net::Shutdown::Write).unwrap();
        let mut buf = [0u8; 1];
        let _ = s.read(&mut buf);
        drop(s);
        let mut c = c;
        let _ = c.read(&mut buf);
        keep.push(l.into());
    }
    keep
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// CPU time this process has used so far (every thread, user and system).
fn cpu() -> Duration {
    // SAFETY: getrusage fills the struct it is given; all-zero is a valid start.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is valid for writing.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// One case's figures: the median wall time of a poll, its mean CPU time, the namespaces
/// read and the sockets read.
struct Polled {
    wall: Duration,
    cpu: Duration,
    read: usize,
    sockets: usize,
}

/// lingertop's steady poll (every state, rate-limited owners: the live modes' poll).
fn poll_median(polls: usize) -> Polled {
    let mut c = Collector::from_choice(Backend::Netlink).expect("netlink");
    c.set_options(&ReadOptions {
        states: None,
        exact_owners: false,
    });
    let mut last = c.poll().expect("poll");
    let mut times = Vec::new();
    let started = cpu();
    for _ in 0..polls {
        let t = Instant::now();
        last = c.poll().expect("poll");
        times.push(t.elapsed());
    }
    Polled {
        wall: median(times),
        cpu: (cpu() - started) / polls.max(1) as u32,
        read: last.netns.len(),
        sockets: last.connections.len(),
    }
}

/// `ip netns exec NS ss -tan` for every namespace, one after the other (the host's `ss -tan`
/// included), as wall time.
fn ss_loop(names: &[String], runs: usize) -> Duration {
    let mut times = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let _ = Command::new("ss")
            .arg("-tan")
            .stdout(Stdio::null())
            .status();
        for n in names {
            let _ = Command::new("ip")
                .args(["netns", "exec", n, "ss", "-tan"])
                .stdout(Stdio::null())
                .status();
        }
        times.push(t.elapsed());
    }
    median(times)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn main() -> ExitCode {
    let args = Args::parse();
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("bench_netns needs root: it creates network namespaces");
        return ExitCode::FAILURE;
    }
    const CHILD_EHASH: &str = "/proc/sys/net/ipv4/tcp_child_ehash_entries";
    let was = std::fs::read_to_string(CHILD_EHASH).unwrap_or_default();
    if args.child_ehash > 0 {
        std::fs::write(CHILD_EHASH, args.child_ehash.to_string())
            .expect("set net.ipv4.tcp_child_ehash_entries (Linux 6.1 or later)");
    }
    println!(
        "tcp_child_ehash_entries: {} (host table: {} buckets)",
        args.child_ehash,
        std::fs::read_to_string("/proc/sys/net/ipv4/tcp_ehash_entries")
            .unwrap_or_default()
            .trim()
    );
    let code = run(&args);
    if args.child_ehash > 0 && !was.trim().is_empty() {
        let _ = std::fs::write(CHILD_EHASH, was.trim());
    }
    code
}

fn run(args: &Args) -> ExitCode {
    let base = poll_median(args.polls);
    println!(
        "baseline: the host alone ({} sockets, {} namespaces already on this machine included): {} wall, {} CPU",
        base.sockets,
        base.read,
        ms(base.wall),
        ms(base.cpu)
    );
    println!(
        "{:>14}  {:>8}  {:>21}  {:>21}  {:>11}  {:>16}  {:>10}",
        "namespaces",
        "sockets",
        "lingertop wall / CPU",
        "one namespace",
        "ratio wall/CPU",
        "ip netns exec ss",
        "ratio"
    );
    for &n in &args.counts {
        let spaces: Vec<Ns> = (0..n).map(Ns::new).collect();
        let held: Vec<Vec<OwnedFd>> = spaces
            .iter()
            .map(|ns| ns.enter(|| small(args.each, 30_000)))
            .collect();
        let many = poll_median(args.polls);
        let names: Vec<String> = spaces.iter().map(|s| s.0.clone()).collect();
        let ss = ss_loop(&names, 3.min(args.polls));
        drop(held);
        drop(spaces);
        // The same sockets in one namespace.
        let one = Ns::new(9999);
        let held = one.enter(|| {
            (0..n)
                .map(|i| small(args.each, 30_000 + (i * args.each) as u16))
                .collect::<Vec<_>>()
        });
        let single = poll_median(args.polls);
        drop(held);
        drop(one);
        let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-9);
        println!(
            "{:>14}  {:>8}  {:>21}  {:>21}  {:>11}  {:>16}  {:>9.3}x",
            format!("{n} ({} read)", many.read),
            many.sockets,
            format!("{} / {}", ms(many.wall), ms(many.cpu)),
            format!("{} / {}", ms(single.wall), ms(single.cpu)),
            format!(
                "{:.2}x/{:.2}x",
                ratio(many.wall, single.wall),
                ratio(many.cpu, single.cpu)
            ),
            ms(ss),
            ratio(many.wall, ss),
        );
    }
    if args.floor {
        floor(args.polls);
    }
    if args.big > 0 {
        let big = Ns::new(8888);
        let Some((mut loadgen, made)) = loadgen_in(&big, args.big) else {
            return ExitCode::FAILURE;
        };
        let spaces: Vec<Ns> = (0..20).map(Ns::new).collect();
        let held: Vec<Vec<OwnedFd>> = spaces
            .iter()
            .map(|ns| ns.enter(|| small(args.each, 30_000)))
            .collect();
        let p = poll_median(args.polls);
        let (t, read, sockets) = (p.wall, p.read, p.sockets);
        let mut names: Vec<String> = spaces.iter().map(|s| s.0.clone()).collect();
        names.push(big.0.clone());
        let ss = ss_loop(&names, 3);
        println!(
            "{made} TIME_WAIT in one namespace beside 20 small ones ({read} read, {sockets} sockets): lingertop {}, ip netns exec ss loop {} ({:.3}x)",
            ms(t),
            ms(ss),
            t.as_secs_f64() / ss.as_secs_f64()
        );
        drop(held);
        // Its standard input closing ends it (the held sockets reset, no TIME_WAIT left
        // by them); the TIME_WAIT go with the namespace.
        drop(loadgen.stdin.take());
        let _ = loadgen.wait();
    }
    ExitCode::SUCCESS
}

/// `loadgen --time-wait n` run inside `ns` (`ip netns exec`), once it says it is ready; with
/// the TIME_WAIT count it reports.
fn loadgen_in(ns: &Ns, n: usize) -> Option<(std::process::Child, usize)> {
    let path = std::env::current_exe().ok()?.with_file_name("loadgen");
    if !path.exists() {
        eprintln!(
            "{} is missing: run `cargo build --release --example loadgen` first",
            path.display()
        );
        return None;
    }
    let mut child = Command::new("ip")
        .args(["netns", "exec", &ns.0])
        .arg(&path)
        .args(["--time-wait", &n.to_string(), "--hold", "300s"])
        .arg("--until-stdin-closes")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .ok()?;
    let mut line = String::new();
    let stdout = child.stdout.take()?;
    let _ = BufReader::new(stdout).read_line(&mut line);
    let made = line
        .split("\"time_wait\":")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .and_then(|v| v.parse().ok());
    match made {
        Some(made) => Some((child, made)),
        None => {
            eprintln!("loadgen in {} did not get ready: {line:?}", ns.0);
            let _ = child.kill();
            let _ = child.wait();
            None
        }
    }
}

/// The floor of a namespace's read: one raw sock_diag dump (every state, both families)
/// of an empty namespace, median of `polls`; the kernel walks the whole hash table it
/// shares with the host (every namespace's sockets) to find none.
fn floor(polls: usize) {
    let ns = Ns::new(7777);
    let file = File::open(format!("/run/netns/{}", ns.0)).expect("open netns");
    let mut diag = SockDiag::inside(OwnedFd::from(file));
    let all = state_mask(None);
    let mut found = 0usize;
    diag.dump_tcp(all, |_| found += 1).expect("sock_diag dump");
    let started = cpu();
    let times: Vec<Duration> = (0..polls)
        .map(|_| {
            let t = Instant::now();
            diag.dump_tcp(all, |_| found += 1).expect("sock_diag dump");
            t.elapsed()
        })
        .collect();
    let per = (cpu() - started) / polls.max(1) as u32;
    println!(
        "floor: raw sock_diag dump of an empty namespace ({found} sockets found): {} wall, {} CPU (median of {polls})",
        ms(median(times)),
        ms(per)
    );
}
