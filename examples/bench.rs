//! lingertop's benchmark: one command, one table.
//!
//! ```sh
//! cargo run --release --example bench            # 1k, 10k and 100k sockets (~7 minutes)
//! cargo run --release --example bench -- --sizes 1000 --runs 3    # a quick look
//! # the one-shot snapshot's target rows only (35k mix, 100k TIME_WAIT), in ~2 minutes:
//! cargo run --release --example bench -- --one-shot --kinds mixed,time-wait --sizes 100000
//! ```
//!
//! For each population (TIME_WAIT-heavy, ESTABLISHED-with-descriptors-heavy, and a CLOSE_WAIT
//! leak up to 10k) built by
//! `examples/loadgen.rs` on loopback, it times on the same population at the same time:
//! the raw sock_diag dump (the floor; and with tcp_info, what lingertop's first read of each
//! state asks), lingertop's first poll in a fresh collector, its steady in-process poll with process
//! attribution (and the whole live-loop iteration: poll, tracking, alerts), the netstat2
//! backend's poll; each as a median and as a ratio to `ss -tanp`; then the one-shot
//! commands in fresh processes (snapshot as JSON into `/dev/null` and into a pipe that is
//! read, as NDJSON and table into the pipe; `ss -tan` and `ss -tanp` into both;
//! `netstat -tanp` into `/dev/null`), alternating run by run, each with its ratio to
//! `ss -tanp` into the same sink, also on a mixed population (30k TIME_WAIT + 4k
//! ESTABLISHED + 500 CLOSE_WAIT). Then it runs the live
//! poll loop at 1 Hz in a process of its own and reports its CPU per second and peak RSS:
//! alone, feeding the dashboard's state and renderer, and feeding them with ESTABLISHED
//! read at every poll (see `LIVE_ROWS`).
//!
//! Needs `ss` (iproute2) and `netstat` (net-tools). Nothing is timed in `cargo test`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use lingertop::collector::netlink::{AF_INET, AF_INET6, SockDiag, state_mask};
use lingertop::collector::{Backend, Collector, ReadOptions};
use lingertop::config::Config;
use lingertop::config::EstablishedEvery;
use lingertop::lab::LabRecogniser;
use lingertop::live::{self, Message};
use lingertop::model::Filter;
use lingertop::model::{TcpState, Tracker};
use lingertop::tui::app::App;
use lingertop::tui::keys::Keymap;
use lingertop::tui::theme::{Theme, ThemeColors};
use lingertop::tui::ui;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

/// Benchmark lingertop against the kernel floor, ss and netstat.
#[derive(Debug, Parser)]
struct Args {
    /// Population sizes (sockets), comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000,100000")]
    sizes: Vec<usize>,
    /// Timed runs of each external command (in-process measures run twice as many).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Seconds the live poll loop runs at 1 Hz for its CPU and RSS figures.
    #[arg(long, default_value_t = 10)]
    live_secs: u64,
    /// Internal: run the live loop with this consumer and print its figures.
    #[arg(long, hide = true)]
    live_child: Option<String>,
    /// Only the one-shot commands (snapshot, ss, netstat: fresh processes into /dev/null and
    /// into a read pipe): no in-process or live rows. With `--kinds mixed,time-wait --sizes
    /// 100000` these are the issue's target rows, in a few minutes.
    #[arg(long)]
    one_shot: bool,
    /// Populations to build, comma separated: established, close-wait, time-wait, mixed
    /// (30k TIME_WAIT + 4k ESTABLISHED + 500 CLOSE_WAIT, whatever the sizes).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "established,close-wait,time-wait,mixed"
    )]
    kinds: Vec<KindArg>,
    /// For profiling (`perf record`): run this many live-loop iterations (poll, track,
    /// alerts) back to back on whatever the table holds, print their median, and exit.
    #[arg(long)]
    poll_loop: Option<usize>,
}

/// The live-loop consumers measured in a process of their own, at 1 Hz, with the default
/// configuration (`collector.established-every = "auto"`), and the dashboard once more
/// reading ESTABLISHED at every poll, to show what `auto` saves.
const LIVE_ROWS: &[(&str, &str)] = &[
    ("poll loop at 1 Hz (what the dashboard runs)", "none"),
    (
        "dashboard at 1 Hz (ms: take in a poll + draw 120x40)",
        "dashboard",
    ),
    (
        "the same dashboard reading ESTABLISHED every poll (established-every = 1)",
        "dashboard-every-poll",
    ),
];

/// The populations `--kinds` may name.
#[derive(Clone, Copy, Debug, PartialEq, clap::ValueEnum)]
enum KindArg {
    Established,
    CloseWait,
    TimeWait,
    Mixed,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    TimeWait,
    Established,
    /// A CLOSE_WAIT leak (its peers orphaned in FIN_WAIT_2): the full sockets whose ages
    /// come from `tcp_info`. Built for sizes up to [`CLOSE_WAIT_MAX`].
    CloseWait,
    /// The one-shot snapshot's issue population: 30k TIME_WAIT + 4k ESTABLISHED + 500
    /// CLOSE_WAIT (`n` is ignored).
    Mixed,
}

/// The largest CLOSE_WAIT population built (each needs a descriptor held).
const CLOSE_WAIT_MAX: usize = 10_000;

/// The label of the mixed population.
const MIXED: &str = "30k TIME_WAIT + 4k ESTABLISHED + 500 CLOSE_WAIT";

/// Where a one-shot command's output goes.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Sink {
    /// `/dev/null`: the writes cost nothing past the system call.
    Null,
    /// A pipe the benchmark reads to the end, as `| jq` or `| grep` would.
    Pipe,
}

/// The one-shot commands, each timed start to exit in a fresh process with its output into
/// `/dev/null` and into a pipe that is read, alternating run by run (every command and sink
/// once per round) so a noisy moment hits each of them alike; labelled as in the table. The
/// ratio of a row is to `ss -tanp` into the same sink.
const ONE_SHOT: &[(&str, &str, &[&str], Sink)] = &[
    (
        "lingertop snapshot --format json (fresh, into /dev/null)",
        "lingertop",
        &["snapshot", "--format", "json", "-q"],
        Sink::Null,
    ),
    ("ss -tanp (into /dev/null)", "ss", &["-tanp"], Sink::Null),
    (
        "lingertop snapshot --format json (fresh, into a read pipe)",
        "lingertop",
        &["snapshot", "--format", "json", "-q"],
        Sink::Pipe,
    ),
    ("ss -tanp (into a read pipe)", "ss", &["-tanp"], Sink::Pipe),
    (
        "lingertop snapshot --format ndjson (fresh, into a read pipe)",
        "lingertop",
        &["snapshot", "--format", "ndjson", "-q"],
        Sink::Pipe,
    ),
    (
        "lingertop snapshot --format table (fresh, into a read pipe)",
        "lingertop",
        &["snapshot", "--format", "table", "-q"],
        Sink::Pipe,
    ),
    ("ss -tan (into /dev/null)", "ss", &["-tan"], Sink::Null),
    ("ss -tan (into a read pipe)", "ss", &["-tan"], Sink::Pipe),
    (
        "netstat -tanp (into /dev/null)",
        "netstat",
        &["-tanp"],
        Sink::Null,
    ),
];

const BOTH_SINKS: &[Sink] = &[Sink::Null, Sink::Pipe];
const PIPE_ONLY: &[Sink] = &[Sink::Pipe];

/// The row every one-shot row into `sink` is compared with.
fn ss_row(sink: Sink) -> &'static str {
    match sink {
        Sink::Null => "ss -tanp (into /dev/null)",
        Sink::Pipe => "ss -tanp (into a read pipe)",
    }
}

#[derive(Clone, Copy, Debug)]
struct Population {
    kind: Kind,
    n: usize,
}

impl Population {
    fn label(&self) -> String {
        let n = if self.n >= 1000 {
            format!("{}k", self.n / 1000)
        } else {
            self.n.to_string()
        };
        match self.kind {
            Kind::TimeWait => format!("{n} TIME_WAIT"),
            Kind::Established => format!("{n} ESTABLISHED, fds in 8 procs"),
            Kind::CloseWait => format!("{n} CLOSE_WAIT, fds in 8 procs"),
            Kind::Mixed => MIXED.to_string(),
        }
    }
}

/// One line of the table.
struct Row {
    population: String,
    sockets: usize,
    what: String,
    median_ms: Option<f64>,
    cpu_pct: Option<f64>,
    rss_mib: Option<f64>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(consumer) = &args.live_child {
        return match live_child(consumer, args.live_secs) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("bench live child: {e}");
                ExitCode::from(1)
            }
        };
    }
    if let Some(n) = args.poll_loop {
        return match poll_loop(n) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("bench: {e}");
                ExitCode::from(1)
            }
        };
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let started = Instant::now();
    for tool in ["ss", "netstat"] {
        if Command::new(tool).arg("-V").output().is_err() {
            return Err(format!(
                "`{tool}` is missing: install iproute2 and net-tools (apt-get install iproute2 net-tools)"
            ));
        }
    }
    let dir = build()?;
    let lingertop = dir.join("lingertop");
    let loadgen = dir.join("examples").join("loadgen");
    describe_machine();

    let mut rows = Vec::new();
    let mut pops: Vec<Population> = Vec::new();
    // ESTABLISHED first: they end with resets and leave nothing behind, while TIME_WAIT
    // lives on for 60 s; each TIME_WAIT population tops up what is still there.
    let mut sizes = args.sizes.clone();
    sizes.sort_unstable();
    let wanted = |k: KindArg| args.kinds.contains(&k);
    for (kind, arg) in [
        (Kind::Established, KindArg::Established),
        (Kind::CloseWait, KindArg::CloseWait),
        (Kind::TimeWait, KindArg::TimeWait),
    ] {
        for &n in &sizes {
            // The mixed population tops up the TIME_WAIT left by the smaller ones to 30k,
            // so it comes before any larger TIME_WAIT population.
            if kind == Kind::TimeWait
                && n > 30_000
                && wanted(KindArg::Mixed)
                && !pops.iter().any(|p: &Population| p.kind == Kind::Mixed)
            {
                pops.push(Population {
                    kind: Kind::Mixed,
                    n: 34_500,
                });
            }
            if wanted(arg) && (kind != Kind::CloseWait || n <= CLOSE_WAIT_MAX) {
                pops.push(Population { kind, n });
            }
        }
    }
    if wanted(KindArg::Mixed) && !pops.iter().any(|p| p.kind == Kind::Mixed) {
        pops.push(Population {
            kind: Kind::Mixed,
            n: 34_500,
        });
    }
    for p in pops {
        eprintln!("bench: building {} ...", p.label());
        let mut load = LoadGen::start(&loadgen, p)?;
        let sockets = table_size()?;
        eprintln!(
            "bench: {} ready ({} sockets in the table, setup {:.1} s); measuring",
            p.label(),
            sockets,
            load.setup_secs
        );
        measure(args, &lingertop, p, sockets, &mut rows)?;
        load.stop();
    }
    print_table(&rows);
    print_targets(&rows);
    eprintln!("bench: done in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Builds the release binary and the load generator; returns the target directory.
fn build() -> Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--quiet",
            "--bin",
            "lingertop",
            "--example",
            "loadgen",
        ])
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err("cargo build --release failed".to_string());
    }
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    // target/release/examples/bench -> target/release
    me.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .ok_or_else(|| "cannot locate the target directory".to_string())
}

fn describe_machine() {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown CPU".to_string());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse::<u64>().ok())
        .map_or("?".to_string(), |kb| {
            format!("{:.0} GiB", kb as f64 / 1048576.0)
        });
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let version = |cmd: &str| {
        Command::new(cmd)
            .arg("-V")
            .output()
            .ok()
            .map(|o| {
                let t = String::from_utf8_lossy(&o.stdout).to_string();
                t.lines().next().unwrap_or("").trim().to_string()
            })
            .unwrap_or_default()
    };
    println!(
        "machine: {model}, {cpus} CPUs, {mem} RAM, Linux {}; {}; {}",
        kernel.trim(),
        version("ss"),
        version("netstat")
    );
}

/// A running load generator, stopped (and its sockets reset) on drop.
struct LoadGen {
    child: Option<Child>,
    setup_secs: f64,
}

impl LoadGen {
    fn start(exe: &Path, p: Population) -> Result<LoadGen, String> {
        let mut cmd = Command::new(exe);
        match p.kind {
            Kind::TimeWait => {
                // Top up what earlier populations (and everyone else) left in TIME_WAIT.
                let have = count_states(&[TcpState::TimeWait])?;
                let make = p.n.saturating_sub(have);
                cmd.args(["--time-wait", &make.to_string()])
                    .args(["--established", &(p.n / 50).to_string()])
                    .args(["--close-wait", &(p.n / 100).to_string()])
                    .args(["--procs", "2"]);
            }
            Kind::Established => {
                cmd.args(["--established", &(p.n / 2).to_string()])
                    .args(["--close-wait", &(p.n / 100).to_string()])
                    .args(["--procs", "8"]);
            }
            Kind::CloseWait => {
                cmd.args(["--close-wait", &p.n.to_string()])
                    .args(["--procs", "8"]);
            }
            Kind::Mixed => {
                let have = count_states(&[TcpState::TimeWait])?;
                let make = 30_000usize.saturating_sub(have);
                // 2000 pairs are 4000 ESTABLISHED sockets.
                cmd.args(["--time-wait", &make.to_string()])
                    .args(["--established", "2000"])
                    .args(["--close-wait", "500"])
                    .args(["--procs", "2"]);
            }
        }
        let mut child = cmd
            .args(["--hold", "5m", "--until-stdin-closes"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start the load generator: {e}"))?;
        let out = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        BufReader::new(out)
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        if !line.contains("\"ready\":true") {
            let _ = child.kill();
            let _ = child.wait();
            return Err("the load generator failed (see above)".to_string());
        }
        let setup_secs = line
            .split("\"setup_secs\":")
            .nth(1)
            .and_then(|v| v.trim().trim_end_matches('}').parse().ok())
            .unwrap_or(0.0);
        Ok(LoadGen {
            child: Some(child),
            setup_secs,
        })
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            drop(c.stdin.take());
            let _ = c.wait();
        }
    }
}

impl Drop for LoadGen {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sockets in the table now (every state, both families).
fn table_size() -> Result<usize, String> {
    let mut n = 0usize;
    SockDiag::new()
        .dump_tcp(state_mask(None), |_| n += 1)
        .map_err(|e| e.to_string())?;
    Ok(n)
}

fn count_states(states: &[TcpState]) -> Result<usize, String> {
    let mut n = 0usize;
    SockDiag::new()
        .dump_tcp(state_mask(Some(states)), |_| n += 1)
        .map_err(|e| e.to_string())?;
    Ok(n)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn timed(runs: usize, mut f: impl FnMut() -> Result<(), String>) -> Result<f64, String> {
    let mut v = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        f()?;
        v.push(ms(t.elapsed()));
    }
    Ok(median(v))
}

/// Runs `program args` once with stdout into `sink` (a pipe is read to the end here);
/// returns the bytes read from a pipe (0 for `/dev/null`).
fn one_shot_once(program: &Path, args: &[&str], sink: Sink) -> Result<usize, String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(match sink {
            Sink::Null => Stdio::null(),
            Sink::Pipe => Stdio::piped(),
        })
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{}: {e}", program.display()))?;
    let mut total = 0;
    if let Some(mut out) = child.stdout.take() {
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match std::io::Read::read(&mut out, &mut buf) {
                Ok(0) => break,
                Ok(n) => total += n,
                Err(e) => return Err(e.to_string()),
            }
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    // lingertop exits 2 when an alert fires, which it may on these populations.
    match status.code() {
        Some(0) | Some(2) => Ok(total),
        _ => Err(format!("{} {args:?} failed: {status}", program.display())),
    }
}

/// The [`ONE_SHOT`] commands, alternating run by run: (label, median ms, bytes of the last
/// run into a pipe).
fn one_shot_rows(runs: usize, lingertop: &Path) -> Result<Vec<(&'static str, f64, usize)>, String> {
    let mut times: Vec<Vec<f64>> = vec![Vec::with_capacity(runs); ONE_SHOT.len()];
    let mut bytes = vec![0usize; ONE_SHOT.len()];
    for _ in 0..runs {
        for (i, (_, program, args, sink)) in ONE_SHOT.iter().enumerate() {
            let program = if *program == "lingertop" {
                lingertop
            } else {
                Path::new(program)
            };
            let t = Instant::now();
            bytes[i] = one_shot_once(program, args, *sink)?;
            times[i].push(ms(t.elapsed()));
        }
    }
    Ok(ONE_SHOT
        .iter()
        .zip(times)
        .zip(bytes)
        .map(|(((label, _, _, _), t), b)| (*label, median(t), b))
        .collect())
}

fn measure(
    args: &Args,
    lingertop: &Path,
    p: Population,
    sockets: usize,
    rows: &mut Vec<Row>,
) -> Result<(), String> {
    let mut add = |what: &str, median_ms: Option<f64>, cpu: Option<f64>, rss: Option<f64>| {
        rows.push(Row {
            population: p.label(),
            sockets,
            what: what.to_string(),
            median_ms,
            cpu_pct: cpu,
            rss_mib: rss,
        });
    };

    if !args.one_shot {
        in_process_rows(args, &mut add)?;
    }
    for (label, median_ms, bytes) in one_shot_rows(args.runs, lingertop)? {
        add(label, Some(median_ms), None, None);
        if bytes > 0 {
            eprintln!("bench: {label}: {bytes} bytes");
        }
    }
    if p.kind == Kind::Mixed || args.one_shot {
        // The mixed population is there for the one-shot commands only.
        return Ok(());
    }

    for (what, consumer) in LIVE_ROWS {
        let me = std::env::current_exe().map_err(|e| e.to_string())?;
        let out = Command::new(me)
            .args(["--live-child", consumer])
            .args(["--live-secs", &args.live_secs.to_string()])
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&out.stdout);
        let field = |name: &str| -> Option<f64> {
            text.split(&format!("\"{name}\":"))
                .nth(1)?
                .split([',', '}'])
                .next()?
                .trim()
                .parse()
                .ok()
        };
        add(
            what,
            field("median_poll_ms"),
            field("cpu_pct"),
            field("peak_rss_kib").map(|k| k / 1024.0),
        );
    }
    Ok(())
}

/// Adds a row to the table: what, median ms, CPU %, peak RSS MiB.
type AddRow<'a> = dyn FnMut(&str, Option<f64>, Option<f64>, Option<f64>) + 'a;

/// The in-process rows: the kernel's dump (the floor), lingertop's first and steady polls,
/// a live-loop iteration, the netstat2 backend.
fn in_process_rows(args: &Args, add: &mut AddRow<'_>) -> Result<(), String> {
    let in_process = 2 * args.runs + 1;
    // The floor: the kernel's dump of every TCP socket, read and dropped; as lingertop asks
    // (one walk for both families) and as `ss` asks (one request per family).
    let mut diag = SockDiag::new();
    let floor = timed(in_process, || {
        diag.dump_tcp(state_mask(None), |_| {})
            .map_err(|e| e.to_string())
    })?;
    add("raw sock_diag dump (floor)", Some(floor), None, None);
    let per_family = timed(in_process, || {
        for family in [AF_INET, AF_INET6] {
            diag.dump(family, state_mask(None), |_| {})
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    })?;
    add(
        "raw sock_diag dump, a request per family (as ss)",
        Some(per_family),
        None,
        None,
    );
    // What the first read of each state costs more: tcp_info for every full socket.
    diag.set_tcp_info(true);
    let with_info = timed(in_process, || {
        diag.dump_tcp(state_mask(None), |_| {})
            .map_err(|e| e.to_string())
    })?;
    diag.set_tcp_info(false);
    add(
        "raw sock_diag dump with tcp_info (what a first read asks)",
        Some(with_info),
        None,
        None,
    );

    // lingertop's first poll in a fresh collector: tcp_info, and the owner scan of /proc.
    let first = timed(args.runs, || {
        let mut c = Collector::from_choice(Backend::Netlink).map_err(|e| e.to_string())?;
        c.poll().map(drop).map_err(|e| e.to_string())
    })?;
    add(
        "lingertop first poll (netlink: tcp_info, whole /proc scan)",
        Some(first),
        None,
        None,
    );

    // lingertop's steady poll: netlink, as the live modes run it (rate-limited owners,
    // names cached); two warm-up polls first.
    let mut c = Collector::from_choice(Backend::Netlink).map_err(|e| e.to_string())?;
    c.set_options(&ReadOptions::default());
    for _ in 0..2 {
        c.poll().map_err(|e| e.to_string())?;
    }
    let poll = timed(in_process, || c.poll().map(drop).map_err(|e| e.to_string()))?;
    add(
        "lingertop steady poll (netlink, with owners)",
        Some(poll),
        None,
        None,
    );

    // The whole live-loop iteration: poll, tracking across polls, alert rules.
    let cfg = Config::default();
    let mut tracker = Tracker::new(cfg.history);
    let mut labs = LabRecogniser::new(lingertop::cli::is_lab_command);
    let iteration = timed(in_process, || {
        let snap = c.poll().map_err(|e| e.to_string())?;
        drop(live::Update::observe(
            &mut tracker,
            snap,
            &cfg.rules,
            0,
            &mut labs,
        ));
        Ok(())
    })?;
    add(
        "lingertop poll + track + alerts",
        Some(iteration),
        None,
        None,
    );
    drop((c, tracker));

    let mut n2 = Collector::from_choice(Backend::Netstat2).map_err(|e| e.to_string())?;
    n2.poll().map_err(|e| e.to_string())?;
    let n2_poll = timed(args.runs, || n2.poll().map(drop).map_err(|e| e.to_string()))?;
    add(
        "lingertop steady poll (netstat2)",
        Some(n2_poll),
        None,
        None,
    );
    drop(n2);
    Ok(())
}

fn poll_loop(n: usize) -> Result<(), String> {
    let mut c = Collector::from_choice(Backend::Netlink).map_err(|e| e.to_string())?;
    let cfg = Config::default();
    let mut tracker = Tracker::new(cfg.history);
    let mut labs = LabRecogniser::new(lingertop::cli::is_lab_command);
    let mut polls = Vec::new();
    let mut iterations = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        let snap = c.poll().map_err(|e| e.to_string())?;
        polls.push(ms(snap.poll_duration));
        drop(live::Update::observe(
            &mut tracker,
            snap,
            &cfg.rules,
            0,
            &mut labs,
        ));
        iterations.push(ms(t.elapsed()));
    }
    println!(
        "{n} iterations: median poll {:.1} ms, median iteration {:.1} ms",
        median(polls),
        median(iterations)
    );
    Ok(())
}

/// Runs the live poll loop at 1 Hz for `secs` seconds after its first poll, with
/// `consumer` taking each update, and prints its CPU share and peak RSS as JSON.
fn live_child(consumer: &str, secs: u64) -> Result<(), String> {
    let collector = Collector::from_choice(Backend::Netlink).map_err(|e| e.to_string())?;
    let cfg = Config {
        interval: Duration::from_secs(1),
        established_every: if consumer == "dashboard-every-poll" {
            EstablishedEvery::Polls(1)
        } else {
            EstablishedEvery::Auto
        },
        ..Config::default()
    };
    let consumer = consumer.strip_suffix("-every-poll").unwrap_or(consumer);
    let (tx, mut rx) = tokio::sync::mpsc::channel(2);
    let handle =
        live::spawn(collector, &cfg, live::Scope::default(), tx).map_err(|e| e.to_string())?;
    // The dashboard's own state and renderer, drawing into an off-screen 120x40 buffer:
    // everything the real dashboard does per poll but the terminal write.
    let mut app = App::new(
        Keymap::default(),
        cfg.interval,
        cfg.history,
        Filter::default(),
    );
    let theme = Theme::new(&ThemeColors::default(), false);
    let mut term = Terminal::new(TestBackend::new(120, 40)).map_err(|e| e.to_string())?;
    // The first poll does the full /proc scan: count from the second second on.
    let mut latest = rx.blocking_recv();
    // The dashboard takes in every poll, the first one too, and keeps no other copy.
    if consumer == "dashboard" {
        if let Some(Message::Update(u)) = latest.take() {
            app.on_update(u);
        }
    }
    let (cpu0, wall0) = (cpu_time(), Instant::now());
    let mut polls = Vec::new();
    let mut frames = Vec::new();
    while wall0.elapsed() < Duration::from_secs(secs) {
        let Some(msg) = rx.blocking_recv() else {
            return Err("the poll loop stopped".to_string());
        };
        if let Message::Update(u) = &msg {
            polls.push(ms(u.snapshot.poll_duration));
        }
        match consumer {
            // Keep the newest update, as a dashboard does between frames.
            "none" => latest = Some(msg),
            "dashboard" => {
                let t = Instant::now();
                if let Message::Update(u) = msg {
                    app.on_update(u);
                }
                let mut hit = Default::default();
                term.draw(|f| hit = ui::render(f, &app, &theme))
                    .map_err(|e| e.to_string())?;
                app.after_draw(hit);
                frames.push(ms(t.elapsed()));
            }
            other => return Err(format!("unknown consumer {other}")),
        }
    }
    // For the dashboard, the figure is its frame: taking in a poll and drawing it.
    if consumer == "dashboard" {
        polls = frames;
    }
    let cpu = cpu_time() - cpu0;
    let wall = wall0.elapsed();
    drop(latest);
    drop(handle);
    println!(
        "{{\"cpu_pct\":{:.2},\"peak_rss_kib\":{},\"polls\":{},\"median_poll_ms\":{:.2}}}",
        100.0 * cpu.as_secs_f64() / wall.as_secs_f64(),
        peak_rss_kib(),
        polls.len(),
        if polls.is_empty() {
            0.0
        } else {
            median(polls.clone())
        }
    );
    Ok(())
}

fn rusage() -> libc::rusage {
    // SAFETY: getrusage fills the struct; all-zero is a valid start.
    unsafe {
        let mut r: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut r);
        r
    }
}

fn cpu_time() -> Duration {
    let r = rusage();
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(r.ru_utime) + tv(r.ru_stime)
}

/// This process's peak resident set (VmHWM). Not getrusage's ru_maxrss: Linux carries
/// that across fork and exec, so a child would report its parent's peak.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

fn print_table(rows: &[Row]) {
    println!();
    println!(
        "| population | sockets | measure | median ms | × `ss -tanp` | CPU % of a core | peak RSS MiB |"
    );
    println!("|---|---:|---|---:|---:|---:|---:|");
    for r in rows {
        // Rows into a read pipe compare with ss into a read pipe; the others (in-process
        // ones too) with ss into /dev/null.
        let against = ss_row(if r.what.ends_with("into a read pipe)") {
            Sink::Pipe
        } else {
            Sink::Null
        });
        let ss = rows
            .iter()
            .find(|x| x.population == r.population && x.what == against)
            .and_then(|x| x.median_ms);
        let ratio = match (r.median_ms, ss, r.cpu_pct) {
            (Some(m), Some(s), None) if s > 0.0 => format!("{:.2}", m / s),
            _ => String::new(),
        };
        let opt =
            |v: Option<f64>, digits: usize| v.map_or(String::new(), |v| format!("{v:.digits$}"));
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.population,
            r.sockets,
            r.what,
            opt(r.median_ms, 1),
            ratio,
            opt(r.cpu_pct, 1),
            opt(r.rss_mib, 1)
        );
    }
    let _ = std::io::stdout().flush();
}

/// The issue's targets, checked against this run.
fn print_targets(rows: &[Row]) {
    let get = |pop: &str, what: &str| {
        rows.iter()
            .find(|r| r.population == pop && r.what.starts_with(what))
    };
    let med = |pop: &str, what: &str| get(pop, what).and_then(|r| r.median_ms);
    let mut lines = Vec::new();
    let mut check = |name: String, value: f64, limit: f64, unit: &str| {
        let verdict = if value <= limit {
            "met".to_string()
        } else {
            format!("MISSED by {:.0} %", 100.0 * (value / limit - 1.0))
        };
        lines.push(format!(
            "- {name}: {value:.2}{unit} (target <= {limit}{unit}): {verdict}"
        ));
    };
    let tw = "100k TIME_WAIT";
    if let (Some(poll), Some(floor), Some(ss)) = (
        med(tw, "lingertop steady poll (netlink"),
        med(tw, "raw sock_diag"),
        med(tw, ss_row(Sink::Null)),
    ) {
        check(format!("{tw}: steady poll"), poll, 60.0, " ms");
        check(
            format!("{tw}: steady poll / raw dump"),
            poll / floor,
            1.5,
            "x",
        );
        check(
            format!("{tw}: steady poll / ss -tanp"),
            poll / ss,
            0.15,
            "x",
        );
    }
    let est = "100k ESTABLISHED, fds in 8 procs";
    if let (Some(poll), Some(snap), Some(ss)) = (
        med(est, "lingertop steady poll (netlink"),
        med(
            est,
            "lingertop snapshot --format json (fresh, into /dev/null)",
        ),
        med(est, ss_row(Sink::Null)),
    ) {
        check(format!("{est}: steady poll"), poll, 110.0, " ms");
        check(
            format!("{est}: fresh snapshot / ss -tanp"),
            snap / ss,
            0.2,
            "x",
        );
    }
    for pop in [tw, est] {
        if let Some(r) = get(pop, "poll loop at 1 Hz") {
            if let (Some(cpu), Some(rss)) = (r.cpu_pct, r.rss_mib) {
                check(format!("{pop}: poll loop CPU at 1 Hz"), cpu, 8.0, " %");
                check(format!("{pop}: poll loop peak RSS"), rss, 40.0, " MiB");
            }
        }
        if let Some(r) = get(pop, "dashboard at 1 Hz") {
            if let (Some(cpu), Some(rss), Some(frame)) = (r.cpu_pct, r.rss_mib, r.median_ms) {
                check(format!("{pop}: dashboard CPU at 1 Hz"), cpu, 8.0, " %");
                check(format!("{pop}: dashboard peak RSS"), rss, 40.0, " MiB");
                check(
                    format!("{pop}: dashboard frame (take in a poll + draw)"),
                    frame,
                    10.0,
                    " ms",
                );
            }
        }
    }
    // The one-shot snapshot (issues 16 and 22): whole processes, output into /dev/null and
    // into a pipe that is read, each against `ss -tanp` into the same.
    for (pop, what, sinks, limit) in [
        (tw, "lingertop snapshot --format json", BOTH_SINKS, 0.5),
        (tw, "lingertop snapshot --format table", PIPE_ONLY, 0.5),
        (MIXED, "lingertop snapshot --format json", BOTH_SINKS, 0.35),
        (
            "1k TIME_WAIT",
            "lingertop snapshot --format json",
            PIPE_ONLY,
            1.0,
        ),
        (
            "1k ESTABLISHED, fds in 8 procs",
            "lingertop snapshot --format json",
            PIPE_ONLY,
            1.0,
        ),
    ] {
        for &sink in sinks {
            let into = match sink {
                Sink::Null => "into /dev/null",
                Sink::Pipe => "into a read pipe",
            };
            let snap = med(pop, &format!("{what} (fresh, {into})"));
            if let (Some(snap), Some(ss)) = (snap, med(pop, ss_row(sink))) {
                check(
                    format!("{pop}: fresh `{}` / ss -tanp, {into}", &what[10..]),
                    snap / ss,
                    limit,
                    "x",
                );
            }
        }
    }
    if !lines.is_empty() {
        println!("\nTargets (from the issue):");
        for l in lines {
            println!("{l}");
        }
    }
}
