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
pub mod record;
pub mod report;
pub mod resolve;
pub mod sanitize;
pub mod shutdown;
pub mod stderr;
pub mod syslog;
pub mod tui;

use std::process::ExitCode;

use anyhow::Result;

use cli::Cli;
use mode::settings::{self, Env, Mode};

/// Exit status when an alert reaches `--fail-on`.
pub const EXIT_ALERT: u8 = 2;
/// Exit status on any error.
pub const EXIT_ERROR: u8 = 1;

/// Runs the mode the command line asks for, every setting resolved once before
/// (`mode::settings`): the command line over the config file over the defaults.
pub fn run(cli: Cli) -> Result<ExitCode> {
    let env = Env::of_process();
    let file = settings::read_config(settings::config_path(&cli, &env).as_ref())?;
    let settings = settings::resolve(cli, file.as_ref(), &env).map_err(anyhow::Error::msg)?;
    let cfg = settings.config;
    match settings.mode {
        Mode::Dashboard(s) => mode::dashboard::run(cfg, s),
        Mode::Snapshot(s) => mode::snapshot::run(cfg, &s),
        Mode::Watch(s) => mode::watch::run(cfg, &s),
        Mode::Serve(s) => mode::serve::run(cfg, &s),
        Mode::Close(s) => mode::close::run(cfg, &s),
        Mode::Record(s) => mode::record::run(cfg, &s),
        Mode::Replay(r) => mode::dashboard::run_replay(cfg, &r.path, r.at),
        Mode::Lab(args) => mode::lab::run(&args),
        Mode::Completions(args) => manual::completions(&args),
        Mode::Man(args) => manual::man(&args),
    }
}
