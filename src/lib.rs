//! lingertop: see how the TCP connections of a machine are closing, and why they are not.
//!
//! Data flows one way: collector → snapshot → model (tracker, filter, alerts) → a report
//! writer or the dashboard. This file is the mode match; each mode's runner is a sibling
//! in `mode/`, and `main.rs` only maps the outcome to an exit status.

pub mod caps;
pub mod cli;
pub mod collector;
pub mod config;
pub mod events;
pub mod lab;
pub mod live;
pub mod manual;
pub mod mode;
pub mod model;
pub mod notify;
pub mod report;
pub mod resolve;
pub mod sanitize;
pub mod shutdown;
pub mod stderr;
pub mod tui;

use std::process::ExitCode;

use anyhow::Result;

use cli::{Cli, Command};
use mode::Overrides;

/// Exit status when an alert reaches `--fail-on`.
pub const EXIT_ALERT: u8 = 2;
/// Exit status on any error.
pub const EXIT_ERROR: u8 = 1;

/// Runs the mode the command line asks for.
pub fn run(cli: Cli) -> Result<ExitCode> {
    // Options given before the subcommand move into it, or are refused: never ignored.
    let cli = cli.lift_globals().map_err(anyhow::Error::msg)?;
    // Completions and the man page come from the command line's definition alone: a broken
    // config must not break a shell's start-up or a package build.
    let cfg = match cli.command {
        Some(Command::Completions(_) | Command::Man(_)) => config::Config::default(),
        _ => config::load(cli.config.as_deref(), &cli.sets)?,
    };
    let over = Overrides {
        backend: cli.backend,
        netns: cli.netns,
        ..Overrides::default()
    };
    match cli.command {
        Some(Command::Snapshot(args)) => mode::snapshot::run(cfg, over, &args),
        Some(Command::Lab(args)) => mode::lab::run(&args),
        Some(Command::Serve(args)) => mode::serve::run(cfg, over, &args),
        Some(Command::Watch(args)) => mode::watch::run(cfg, over, &args),
        Some(Command::Completions(args)) => manual::completions(&args),
        Some(Command::Man(args)) => manual::man(&args),
        None => mode::dashboard::run(cfg, over, cli.interval, cli.filter.as_deref(), cli.events),
    }
}
