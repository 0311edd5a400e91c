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
        let count = args.count as usize;
        let report = lab.scenario(scenario, count, args.family)?.wait()?;
        let hold = (scenario == Scenario::CloseWaitLeak).then_some(args.hold);
        print(|w| out::write_scenario(format, &report, hold, w))?;
        if let Some(hold) = hold {
            let held = report.server.counts.get(crate::model::TcpState::CloseWait);
            eprintln!(
                "lingertop lab: holding {held} CLOSE_WAIT sockets (pid {}, server {}) for {}; Ctrl-C ends the hold early",
                report.pid,
                report.listener,
                humantime::format_duration(hold)
            );
            let started = Instant::now();
            wait_or_interrupt(hold)?;
            drop(lab);
            eprintln!(
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

/// Sleeps for `hold`, or until SIGINT or SIGTERM.
fn wait_or_interrupt(hold: Duration) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the timer for --hold")?;
    rt.block_on(async {
        #[cfg(unix)]
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("cannot listen for SIGTERM")?;
        #[cfg(unix)]
        let terminated = term.recv();
        #[cfg(not(unix))]
        let terminated = std::future::pending::<Option<()>>();
        tokio::select! {
            () = tokio::time::sleep(hold) => {}
            _ = tokio::signal::ctrl_c() => {}
            _ = terminated => {}
        }
        Ok(())
    })
}
