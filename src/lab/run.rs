//! `lingertop lab`: runs one close mode, every mode, or a bulk scenario, and prints what
//! happened. The lab is dropped before the process exits, so every socket it made is closed
//! and every thread joined; an interrupt kills the process and the kernel closes them the
//! same way.

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::{Action, CloseOptions, End, Family, Lab, LabError, Pending, Scenario, Trace};
use crate::cli::{LabArgs, LabFormat};
use crate::report::lab as out;

/// Connections a scenario makes when `-n` is not given.
const DEFAULT_COUNT: u32 = 100;
/// How long close-wait-leak holds its sockets when `--hold` is not given: long enough for
/// the default CLOSE_WAIT rule (30 s) to fire in a snapshot taken meanwhile.
const DEFAULT_HOLD: Duration = Duration::from_secs(60);

/// Runs `lingertop lab` as `args` says.
pub fn run(args: &LabArgs) -> Result<ExitCode> {
    let format = args.format.unwrap_or(if io::stdout().is_terminal() {
        LabFormat::Table
    } else {
        LabFormat::Json
    });
    let opts = CloseOptions {
        linger: Duration::from_secs(args.linger_secs),
        ..CloseOptions::default()
    };
    let lab = Lab::new()?;
    if let Some(action) = args.mode {
        let trace = run_mode(&lab, action, args.family, opts)?;
        print(|w| out::write_trace(format, &trace, w))?;
    } else if args.all {
        let traces = run_all(&lab, args.family, opts)?;
        print(|w| out::write_all(format, &traces, args.family, w))?;
    } else if let Some(scenario) = args.scenario {
        let count = args.count.unwrap_or(DEFAULT_COUNT) as usize;
        let report = lab.scenario(scenario, count, args.family)?.wait()?;
        let hold =
            (scenario == Scenario::CloseWaitLeak).then_some(args.hold.unwrap_or(DEFAULT_HOLD));
        print(|w| out::write_scenario(format, &report, hold, w))?;
        if let Some(hold) = hold {
            let held = report.server.counts.get(crate::model::TcpState::CloseWait);
            let started = Instant::now();
            // Said once the signal handlers are in place, so a Ctrl-C right after it still
            // ends the hold the orderly way.
            wait_or_interrupt(hold, || {
                crate::say!(
                    "lingertop lab: holding {held} CLOSE_WAIT sockets (pid {}, server {}) for {}; Ctrl-C ends the hold early",
                    report.pid,
                    report.listener,
                    humantime::format_duration(hold)
                );
            })?;
            drop(lab);
            crate::say!(
                "lingertop lab: closed the CLOSE_WAIT sockets after {}",
                humantime::format_duration(Duration::from_secs(started.elapsed().as_secs()))
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs one close mode on a new connection whose server end has the mode's peer behaviour,
/// closing the client end.
pub fn run_mode(
    lab: &Lab,
    action: Action,
    family: Family,
    opts: CloseOptions,
) -> Result<Trace, LabError> {
    start_mode(lab, action, family, opts)?.wait()
}

fn start_mode(
    lab: &Lab,
    action: Action,
    family: Family,
    opts: CloseOptions,
) -> Result<Pending<Trace>, LabError> {
    let ids = lab.open(action.default_behaviour(), 1, family)?;
    let id = *ids.first().ok_or(LabError::Stopped)?;
    lab.close(id, End::Client, action, opts)
}

/// Runs every close mode at once, each on its own connection (they share nothing but the
/// listener, and each watches only its own 4-tuples), in [`Action::ALL`] order.
pub fn run_all(lab: &Lab, family: Family, opts: CloseOptions) -> Result<Vec<Trace>, LabError> {
    let pending = Action::ALL
        .iter()
        .map(|&a| start_mode(lab, a, family, opts))
        .collect::<Result<Vec<_>, _>>()?;
    pending.into_iter().map(Pending::wait).collect()
}

fn print(write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> Result<()> {
    let stdout = io::stdout();
    let mut w = io::BufWriter::new(stdout.lock());
    match write(&mut w).and_then(|()| w.flush()) {
        Ok(()) => Ok(()),
        // The reader went away (`| head`): nothing left to say to it.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(e).context("cannot write the lab's output to stdout"),
    }
}

/// Sleeps for `hold`, or until SIGINT or SIGTERM; calls `ready` once both are caught.
fn wait_or_interrupt(hold: Duration, ready: impl FnOnce()) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the timer for --hold")?;
    rt.block_on(async {
        // Unix signal streams catch their signal from creation on, so `ready` comes after.
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let mut int = signal(SignalKind::interrupt()).context("cannot catch SIGINT")?;
            let mut term = signal(SignalKind::terminate()).context("cannot catch SIGTERM")?;
            ready();
            tokio::select! {
                () = tokio::time::sleep(hold) => {}
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            ready();
            tokio::select! {
                () = tokio::time::sleep(hold) => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Ok(())
    })
}
