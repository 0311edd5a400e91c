//! `lingertop lab`: runs one close mode, every mode, or a bulk scenario, and prints what
//! happened. The lab is dropped before the process exits, so every socket it made is closed
//! by lingertop and every thread joined; a signal during close-wait-leak's hold (INT, TERM
//! or HUP) ends the hold early the same orderly way.

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::cli::{LabArgs, LabFormat};
use crate::lab::run::{run_all, run_mode};
use crate::lab::{CloseOptions, Lab, Scenario};
use crate::report::lab as out;
use crate::shutdown::Shutdown;

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
                eprintln!(
                    "lingertop lab: holding {held} CLOSE_WAIT sockets (pid {}, server {}) for {}; Ctrl-C ends the hold early",
                    report.pid,
                    report.listener,
                    crate::model::duration::compact(hold)
                );
            })?;
            drop(lab);
            eprintln!(
                "lingertop lab: closed the CLOSE_WAIT sockets after {}",
                crate::model::duration::compact(Duration::from_secs(started.elapsed().as_secs()))
            );
        }
    }
    Ok(ExitCode::SUCCESS)
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

/// Sleeps for `hold`, or until a signal asks the process to stop; calls `ready` once the
/// handlers are in place.
fn wait_or_interrupt(hold: Duration, ready: impl FnOnce()) -> Result<()> {
    super::runtime()?.block_on(async {
        // Signal streams catch their signal from creation on, so `ready` comes after.
        let mut shutdown = Shutdown::install().context("cannot install signal handlers")?;
        ready();
        tokio::select! {
            () = tokio::time::sleep(hold) => {}
            _ = shutdown.requested() => {}
        }
        Ok(())
    })
}
