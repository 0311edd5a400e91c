//! The command line: every mode and option, documented for `--help`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::model::{Filter, Severity};

/// See how the TCP connections of this machine are closing, and why they are not.
///
/// With no command, opens the live dashboard. `lingertop snapshot` prints one poll for
/// scripts and CI.
#[derive(Debug, Parser)]
#[command(name = "lingertop", version, about, long_about)]
pub struct Cli {
    /// Config file to read instead of the default
    /// ($XDG_CONFIG_HOME/lingertop/config.toml on Linux).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Override one config key for this run, e.g. --set alerts.close-wait.min-age=5s
    /// (repeatable; wins over the config file).
    #[arg(long = "set", global = true, value_name = "KEY=VALUE")]
    pub sets: Vec<String>,

    /// Which backend reads the socket table: netlink (Linux sock_diag: timers, queues,
    /// cached owners), netstat2 (portable), or auto (netlink where it works)
    /// [default: the config's collector.backend, else auto].
    #[arg(long, global = true, value_enum, value_name = "BACKEND")]
    pub backend: Option<crate::collector::Backend>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Poll the socket table once (or twice, with --interval) and print counts, alerts and
    /// connections.
    ///
    /// Exit status: 0 when no alert reaches --fail-on (or --fail-on is not given), 2 when one
    /// does, 1 on error.
    Snapshot(SnapshotArgs),
}

/// Output formats of the snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned text for people.
    Table,
    /// One JSON document (shape in the README).
    Json,
    /// One row per connection, with a header.
    Csv,
}

/// The alert severity that makes `snapshot` exit with status 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    Warning,
    Critical,
}

impl FailOn {
    pub fn severity(self) -> Severity {
        match self {
            FailOn::Warning => Severity::Warning,
            FailOn::Critical => Severity::Critical,
        }
    }
}

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// Take a second poll after this long, so states have ages and CLOSE_WAIT growth has a
    /// rate (e.g. 2s, 500ms).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub interval: Option<Duration>,

    /// Output format [default: table on a terminal, json otherwise].
    #[arg(long, value_enum)]
    pub format: Option<Format>,

    /// Exit with status 2 when an alert at or above this severity is raised.
    #[arg(long, value_enum, value_name = "SEVERITY")]
    pub fail_on: Option<FailOn>,

    #[command(flatten)]
    pub filter: FilterArgs,

    /// Print nothing on stderr while waiting for the second poll.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Filter flags. Each becomes a term of the filter language; together they replace the
/// config's default filter.
#[derive(Debug, Args, Default)]
pub struct FilterArgs {
    /// Only these states, comma separated, any case: close-wait,TIME_WAIT,fin_wait_2.
    #[arg(long, value_name = "STATES")]
    pub state: Vec<String>,

    /// Only connections with this port on either side (N, or a range N-M).
    #[arg(long, value_name = "PORT")]
    pub port: Vec<String>,

    /// Only this local address: ADDR, ADDR:PORT, [V6]:PORT or ADDR/PREFIX.
    #[arg(long, value_name = "ADDR[:PORT]")]
    pub local: Vec<String>,

    /// Only this remote address: ADDR, ADDR:PORT, [V6]:PORT or ADDR/PREFIX.
    #[arg(long, value_name = "ADDR[:PORT]")]
    pub remote: Vec<String>,

    /// Only sockets held (or last held) by this pid.
    #[arg(long, value_name = "PID")]
    pub pid: Vec<String>,

    /// Only sockets of processes whose name contains NAME (any case).
    #[arg(long, value_name = "NAME")]
    pub process: Vec<String>,

    /// A filter expression, e.g. "state:close-wait port:443 !proc:sshd" (see README).
    #[arg(long, value_name = "EXPR")]
    pub filter: Option<String>,
}

impl FilterArgs {
    /// The filter the flags describe, or `None` when no filter flag was given.
    pub fn to_filter(&self) -> Result<Option<Filter>, String> {
        let mut out: Option<Filter> = None;
        let mut add = |f: Filter| out = Some(out.take().unwrap_or_default().and(f));
        for (flag, key, values) in [
            ("--state", "state", &self.state),
            ("--port", "port", &self.port),
            ("--local", "local", &self.local),
            ("--remote", "remote", &self.remote),
            ("--pid", "pid", &self.pid),
            ("--process", "proc", &self.process),
        ] {
            for v in values {
                if v.trim().is_empty() || v.contains(char::is_whitespace) {
                    return Err(format!("bad {flag} \"{v}\": give one value without spaces"));
                }
                let f = Filter::parse(&format!("{key}:{v}"))
                    .map_err(|e| format!("bad {flag} \"{v}\": {}", e.reason))?;
                add(f);
            }
        }
        if let Some(expr) = &self.filter {
            add(Filter::parse(expr).map_err(|e| format!("bad --filter: {e}"))?);
        }
        Ok(out)
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s)
        .map_err(|_| format!("\"{s}\" is not a duration; write e.g. 500ms, 2s, 1m"))?;
    if d < Duration::from_millis(10) || d > Duration::from_secs(3600) {
        return Err(format!("{s} is out of range; allowed: 10ms to 1h"));
    }
    Ok(d)
}
