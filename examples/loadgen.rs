//! Load generator for lingertop's benchmark and for trying the tool on a busy table: creates
//! on loopback only, bounded in count and lifetime, and exits by itself:
//!
//! - N TIME_WAIT sockets (this host closes first), from source addresses 127.0.1.1,
//!   127.0.2.1, … (10 000 each) so ephemeral ports never run out;
//! - M ESTABLISHED pairs (2M sockets with descriptors) held across K child processes;
//! - C CLOSE_WAIT sockets (the peer closed, the holder never does), across the same children.
//!
//! ```sh
//! cargo run --release --example loadgen -- --time-wait 100000 --established 2000 \
//!     --close-wait 1000 --procs 8 --hold 60s
//! ```
//!
//! When everything is up it prints one JSON line (`{"ready":true,...}`) and holds until
//! `--hold` ends (or, with `--until-stdin-closes`, until its standard input closes). On the
//! way out every held socket is reset (SO_LINGER 0), so ending the population leaves no
//! TIME_WAIT behind; the TIME_WAIT sockets it made live their 60 s in the kernel.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clap::Parser;
use socket2::{Domain, SockAddr, Socket, Type};

/// The kernel caps TIME_WAIT at net.ipv4.tcp_max_tw_buckets (131072 here); stay clear.
const MAX_TIME_WAIT: usize = 110_000;
const MAX_PAIRS: usize = 100_000;
const MAX_HOLD: Duration = Duration::from_secs(600);
/// TIME_WAIT sockets made from one source address (the ephemeral range holds ~28 000).
const PER_SOURCE: usize = 10_000;

/// Loopback load for lingertop: TIME_WAIT, ESTABLISHED and CLOSE_WAIT sockets.
#[derive(Debug, Parser)]
struct Args {
    /// TIME_WAIT sockets to create (at most 110000).
    #[arg(long, default_value_t = 0)]
    time_wait: usize,
    /// ESTABLISHED pairs to hold (each is two sockets with descriptors; at most 100000).
    #[arg(long, default_value_t = 0)]
    established: usize,
    /// CLOSE_WAIT sockets to hold.
    #[arg(long, default_value_t = 0)]
    close_wait: usize,
    /// Child processes holding the ESTABLISHED and CLOSE_WAIT sockets.
    #[arg(long, default_value_t = 8)]
    procs: usize,
    /// How long to hold the population before exiting (at most 10m).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    hold: Duration,
    /// Also exit as soon as standard input closes (for a parent such as the benchmark).
    #[arg(long)]
    until_stdin_closes: bool,
    /// Internal: run as a holding child with this index.
    #[arg(long, hide = true)]
    child: Option<usize>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.child {
        Some(index) => child(&args, index),
        None => parent(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::from(1)
        }
    }
}

fn parent(args: &Args) -> Result<(), String> {
    if args.time_wait > MAX_TIME_WAIT {
        return Err(format!(
            "--time-wait {} is too many: at most {MAX_TIME_WAIT} (the kernel caps TIME_WAIT at net.ipv4.tcp_max_tw_buckets)",
            args.time_wait
        ));
    }
    if args.established > MAX_PAIRS {
        return Err(format!("--established is at most {MAX_PAIRS} pairs"));
    }
    if args.hold > MAX_HOLD {
        return Err("--hold is at most 10m".to_string());
    }
    let procs = args.procs.clamp(1, 64);
    let started = Instant::now();

    // Children first: they hold descriptors, which the per-process limit bounds.
    let mut children = Vec::new();
    let holding = args.established + args.close_wait > 0;
    if holding {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find myself: {e}"))?;
        for i in 0..procs {
            let share = |total: usize| total / procs + usize::from(i < total % procs);
            let mut cmd = Command::new(&exe);
            cmd.args(["--child", &i.to_string()])
                .args(["--established", &share(args.established).to_string()])
                .args(["--close-wait", &share(args.close_wait).to_string()])
                .args(["--hold", &format!("{}s", args.hold.as_secs() + 5)])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped());
            let child = cmd
                .spawn()
                .map_err(|e| format!("cannot start a child: {e}"))?;
            children.push(Holder(child));
        }
    }
    let mut pids = Vec::new();
    let mut ports = Vec::new();
    for h in &mut children {
        let out = h.0.stdout.take().ok_or("child without stdout")?;
        let mut line = String::new();
        BufReader::new(out)
            .read_line(&mut line)
            .map_err(|e| format!("child: {e}"))?;
        let port = line
            .strip_prefix("ready ")
            .and_then(|p| p.trim().parse::<u16>().ok())
            .ok_or_else(|| "a child failed to build its sockets (see above)".to_string())?;
        pids.push(h.0.id());
        ports.push(port);
    }

    let tw_port = if args.time_wait > 0 {
        Some(time_waits(args.time_wait)?)
    } else {
        None
    };

    println!(
        "{{\"ready\":true,\"time_wait\":{},\"established_pairs\":{},\"close_wait\":{},\"time_wait_port\":{},\"holder_ports\":{:?},\"holder_pids\":{:?},\"setup_secs\":{:.2}}}",
        args.time_wait,
        args.established,
        args.close_wait,
        tw_port.map_or("null".to_string(), |p| p.to_string()),
        ports,
        pids,
        started.elapsed().as_secs_f64()
    );
    let _ = std::io::stdout().flush();
    wait_out(args.hold, args.until_stdin_closes);
    // Dropping the holders closes their stdin: they reset their sockets and exit.
    drop(children);
    Ok(())
}

/// Waits `hold`, or less when stdin closes and `watch_stdin` is set.
fn wait_out(hold: Duration, watch_stdin: bool) {
    let (tx, rx) = mpsc::channel::<()>();
    if watch_stdin {
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
            let _ = tx.send(());
        });
    }
    // Any message, or the sender going away, ends the wait; so does the deadline.
    let _ = rx.recv_timeout(hold);
}

/// A holding child; dropping it closes its stdin (so it resets its sockets and exits) and
/// reaps it.
struct Holder(Child);

impl Drop for Holder {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Creates `n` TIME_WAIT sockets: each client (from 127.0.k.1) connects to our listener,
/// closes first, the server reads the EOF and closes. Returns the listener's port.
fn time_waits(n: usize) -> Result<u16, String> {
    let l = server_listener()?;
    let to = l.local_addr().map_err(|e| e.to_string())?;
    for i in 0..n {
        let source = Ipv4Addr::new(127, 0, (1 + i / PER_SOURCE) as u8, 1);
        let c = connect_from(source, to).map_err(|e| format!("connect {i} of {n}: {e}"))?;
        let (mut s, _) = l.accept().map_err(|e| format!("accept: {e}"))?;
        drop(c);
        let mut buf = [0u8; 1];
        // The server reads the client's FIN before closing, so the client (not both ends)
        // ends in TIME_WAIT.
        let _ = s.read(&mut buf);
    }
    Ok(to.port())
}

/// A client socket bound to `source` that picks its port at connect time, so ports are
/// shared across destinations as long as the 4-tuple is unique.
fn connect_from(source: Ipv4Addr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    let on: libc::c_int = 1;
    // SAFETY: setsockopt on a socket we own with a valid int.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&raw const on).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    s.bind(&SockAddr::from(SocketAddrV4::new(source, 0)))?;
    s.connect(&SockAddr::from(to))?;
    Ok(s.into())
}

/// A listener on 127.0.0.1 at a port below the ephemeral range, as real servers listen
/// (a listener on an ephemeral port would make each of its accepted sockets look like a
/// client using up an ephemeral port to lingertop's port-pressure rule).
fn server_listener() -> Result<TcpListener, String> {
    let start = 20_000 + (std::process::id() % 1000) as u16 * 10;
    for port in (start..30_000).chain(20_000..start) {
        let s = Socket::new(Domain::IPV4, Type::STREAM, None).map_err(|e| e.to_string())?;
        if s.bind(&SockAddr::from(SocketAddrV4::new(
            Ipv4Addr::LOCALHOST,
            port,
        )))
        .is_ok()
        {
            s.listen(1024).map_err(|e| format!("listen: {e}"))?;
            return Ok(s.into());
        }
    }
    Err("no free port between 20000 and 29999 on 127.0.0.1".to_string())
}

/// Raises the soft descriptor limit to `need` (within the hard limit).
fn raise_nofile(need: u64) -> Result<(), String> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return Err("getrlimit failed".to_string());
        }
        if lim.rlim_cur >= need {
            return Ok(());
        }
        if lim.rlim_max < need {
            return Err(format!(
                "a child needs {need} descriptors but the hard limit is {}; use more --procs",
                lim.rlim_max
            ));
        }
        lim.rlim_cur = need;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
            return Err("setrlimit failed".to_string());
        }
    }
    Ok(())
}

fn child(args: &Args, index: usize) -> Result<(), String> {
    let result = build_and_hold(args, index);
    if let Err(e) = &result {
        // The parent reads "ready PORT" or nothing: say what went wrong on stderr.
        eprintln!("loadgen child {index}: {e}");
    }
    result
}

fn build_and_hold(args: &Args, index: usize) -> Result<(), String> {
    raise_nofile((2 * args.established + args.close_wait + 64) as u64)?;
    let listener = server_listener()?;
    let to = listener.local_addr().map_err(|e| e.to_string())?;
    // Each child connects from its own source address.
    let source = Ipv4Addr::new(127, 1, (index / 250) as u8, (index % 250 + 1) as u8);
    let mut held: Vec<TcpStream> = Vec::with_capacity(2 * args.established + args.close_wait);
    for _ in 0..args.established {
        let c = connect_from(source, to).map_err(|e| format!("connect: {e}"))?;
        let (s, _) = listener.accept().map_err(|e| format!("accept: {e}"))?;
        held.push(c);
        held.push(s);
    }
    for _ in 0..args.close_wait {
        let c = connect_from(source, to).map_err(|e| format!("connect: {e}"))?;
        let (s, _) = listener.accept().map_err(|e| format!("accept: {e}"))?;
        // The peer closes; we never do: CLOSE_WAIT here, an orphaned FIN_WAIT_2 there.
        drop(c);
        held.push(s);
    }
    println!("ready {}", to.port());
    let _ = std::io::stdout().flush();
    wait_out(args.hold, true);
    // Reset rather than close: no TIME_WAIT left behind by the ESTABLISHED pairs.
    for s in &held {
        let _ = socket2::SockRef::from(s).set_linger(Some(Duration::ZERO));
    }
    drop(held);
    drop(listener);
    Ok(())
}
