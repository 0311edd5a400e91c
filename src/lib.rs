//! lingertop: see how the TCP connections of a machine are closing, and why they are not.
//!
//! Data flows one way: collector → snapshot → model (tracker, filter, alerts) → a report
//! writer or the dashboard. This file is the mode match; `main.rs` only maps the outcome to
//! an exit status.

pub mod cli;
pub mod collector;
pub mod config;
pub mod lab;
pub mod live;
pub mod manual;
pub mod model;
pub mod report;
pub mod serve;
pub mod shutdown;
pub mod tui;
pub mod watch;

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use cli::{Cli, Command, Format, SnapshotArgs};
use collector::{Collector, ReadOptions};
use model::alerts::{detect, port_pressure};
use model::{Filter, Tracker};

/// Exit status when an alert reaches `--fail-on`.
pub const EXIT_ALERT: u8 = 2;
/// Exit status on any error.
pub const EXIT_ERROR: u8 = 1;

/// The single-threaded async runtime the live modes run on (the poll itself has a thread
/// of its own).
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Runs the mode the command line asks for.
pub fn run(cli: Cli) -> Result<ExitCode> {
    // Completions and the man page come from the command line's definition alone: a broken
    // config must not break a shell's start-up or a package build.
    let mut cfg = match cli.command {
        Some(Command::Completions(_) | Command::Man(_)) => config::Config::default(),
        _ => config::load(cli.config.as_deref(), &cli.sets)?,
    };
    if let Some(b) = cli.backend {
        cfg.backend = b;
    }
    match cli.command {
        Some(Command::Snapshot(args)) => snapshot(&cfg, &args),
        Some(Command::Lab(args)) => lab::run::run(&args),
        Some(Command::Serve(args)) => serve::run(&cfg, &args),
        Some(Command::Watch(args)) => watch::run(&cfg, &args),
        Some(Command::Completions(args)) => manual::completions(&args),
        Some(Command::Man(args)) => manual::man(&args),
        None => {
            if !io::stdout().is_terminal() || !io::stdin().is_terminal() {
                bail!(
                    "the dashboard needs a terminal and stdin/stdout is not one; for scripts use `lingertop snapshot` (e.g. `lingertop snapshot --format json`)"
                );
            }
            if let Some(i) = cli.interval {
                cfg.interval = i;
            }
            let filter = match &cli.filter {
                Some(expr) => {
                    Filter::parse(expr).map_err(|e| anyhow::anyhow!("bad --filter: {e}"))?
                }
                None => cfg.default_filter.clone(),
            };
            // Said before the dashboard takes the screen, so it stays readable after.
            let collector = Collector::chosen(cfg.backend, false)?;
            tui::run(&cfg, filter, collector)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The filter in force: the command line's if it gave one, else the config's default.
pub(crate) fn effective_filter(cfg: &config::Config, args: &cli::FilterArgs) -> Result<Filter> {
    let from_cli = args.to_filter().map_err(anyhow::Error::msg)?;
    Ok(from_cli.unwrap_or_else(|| cfg.default_filter.clone()))
}

/// The states to ask the kernel for: only those the filter can match, plus LISTEN so
/// server-side connections can still be attributed to their listener. A snapshot with
/// `--interval` reads everything, because a connection's earlier state (and so its last
/// owner) may lie outside the filter.
fn kernel_states(filter: &Filter, two_polls: bool) -> Option<Vec<model::TcpState>> {
    if two_polls {
        return None;
    }
    let mut states = filter.states()?;
    if !states.contains(&model::TcpState::Listen) {
        states.push(model::TcpState::Listen);
    }
    Some(states)
}

fn snapshot(cfg: &config::Config, args: &SnapshotArgs) -> Result<ExitCode> {
    let filter = effective_filter(cfg, &args.filter)?;
    let format = args.format.unwrap_or(if io::stdout().is_terminal() {
        Format::Table
    } else {
        Format::Json
    });

    let mut collector = Collector::chosen(cfg.backend, args.quiet)?;
    collector.set_options(&ReadOptions {
        states: kernel_states(&filter, args.interval.is_some()),
        // A snapshot is read once or twice and must be complete: no deferred owners.
        exact_owners: true,
    });
    let mut tracker = Tracker::new(cfg.history);
    let mut snap = collector.poll().context("first poll failed")?;
    tracker.observe(&mut snap);
    if let Some(interval) = args.interval {
        if !args.quiet {
            eprintln!(
                "lingertop: first poll saw {} sockets; polling again in {} to measure ages",
                snap.connections.len(),
                humantime::format_duration(interval)
            );
        }
        tracker.keep(std::sync::Arc::new(snap));
        std::thread::sleep(interval);
        snap = collector.poll().context("second poll failed")?;
        tracker.observe(&mut snap);
    }
    lab::LabRecogniser::new().mark(&mut snap, None);

    let total_connections = snap.connections.len();
    snap.connections.retain(|c| filter.matches(c));
    snap.connections
        // Unstable: the keys are all but unique, and a stable sort moves each 232-byte
        // connection far more often (a tenth of a 100k-socket snapshot's time).
        .sort_unstable_by_key(|c| (c.state, c.local(), c.remote()));
    let alerts = detect(
        &snap.connections,
        snap.taken_at,
        snap.ephemeral_ports,
        tracker.history(),
        &cfg.rules,
    );
    let pressure = port_pressure(&snap.connections, snap.ephemeral_ports);
    let view = report::SnapshotView {
        snapshot: &snap,
        backend: collector.backend_name(),
        polls: tracker.polls(),
        interval: args.interval,
        total_connections,
        filter: filter.to_string(),
        alerts: &alerts,
        pressure: &pressure,
    };
    // CSV has no place for it, so the partial-information notice goes to stderr.
    if let (Format::Csv, model::ProcessInfo::Partial { reason }) = (format, &snap.process_info) {
        eprintln!("lingertop: process info is partial: {reason}");
    }
    let stdout = io::stdout();
    // A large buffer: a 100k-connection JSON is tens of megabytes.
    let mut out = io::BufWriter::with_capacity(1 << 18, stdout.lock());
    let pretty = args.pretty || io::stdout().is_terminal();
    match report::write_snapshot(format, pretty, &view, &mut out) {
        Ok(()) => {}
        // The reader went away (`| head`): nothing left to say to it.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(ExitCode::SUCCESS),
        Err(e) => return Err(e).context("cannot write the snapshot to stdout"),
    }
    let _ = out.flush();

    let failing = args
        .fail_on
        .is_some_and(|f| alerts.iter().any(|a| a.severity >= f.severity()));
    // The process exits next: freeing 100k connections one allocation at a time would
    // cost a fifth of a large snapshot's time, and the OS takes the memory back at once.
    std::mem::forget((snap, tracker, alerts, pressure, collector));
    Ok(if failing {
        ExitCode::from(EXIT_ALERT)
    } else {
        ExitCode::SUCCESS
    })
}
