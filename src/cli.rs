//! The command line: every mode and option, documented for `--help`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::PossibleValue;
use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};

use crate::lab::{CloseMode, Family, Scenario};
use crate::model::{Filter, Severity};

/// See how the TCP connections of this machine are closing, and why they are not.
///
/// With no command, opens the live dashboard. `lingertop snapshot` prints one poll for
/// scripts and CI; `lingertop watch` streams JSON lines; `lingertop serve` exports
/// Prometheus metrics.
#[derive(Debug, Parser)]
#[command(name = "lingertop", version, about, long_about)]
pub struct Cli {
    /// Config file to read instead of $LINGERTOP_CONFIG or the default
    /// ($XDG_CONFIG_HOME/lingertop/config.toml on Linux).
    #[arg(long, global = true, value_name = "PATH", value_hint = clap::ValueHint::FilePath)]
    pub config: Option<PathBuf>,

    /// Override one config key for this run, e.g. --set alerts.close-wait.min-age=5s
    /// (repeatable; wins over the config file).
    #[arg(long = "set", global = true, value_name = "KEY=VALUE")]
    pub sets: Vec<String>,

    /// Dashboard: poll interval (e.g. 1s, 500ms; 100ms to 1h); overrides
    /// collector.interval. Before `snapshot`, `watch` or `serve` it is that command's
    /// --interval.
    #[arg(long, value_name = "DURATION", value_parser = parse_interval)]
    pub interval: Option<Duration>,

    /// Dashboard: start with this filter, e.g. "state:close-wait port:443". Before
    /// `snapshot` or `watch` it is that command's --filter.
    #[arg(long, value_name = "EXPR")]
    pub filter: Option<String>,

    /// Dashboard: closes for its closes panel (key C) from the kernel's events (every
    /// close, by kind and process): on (fail without them), off (the kernel's counters
    /// only), auto (on when privileged: root or CAP_BPF and CAP_PERFMON).
    #[arg(long, value_enum, value_name = "MODE", default_value = "auto")]
    pub events: crate::events::EventsMode,

    /// Dashboard: let keys x (graceful close) and X (abort) close the selected connection,
    /// each after a confirmation; as the config's actions.allow-close. Off by default: a
    /// stray key never resets a connection.
    #[arg(long)]
    pub allow_close: bool,
    /// Which backend reads the socket table: netlink (Linux sock_diag: timers, queues,
    /// cached owners), netstat2 (portable), or auto (netlink where it works)
    /// [default: the config's collector.backend, else auto].
    #[arg(long, global = true, value_enum, value_name = "BACKEND")]
    pub backend: Option<crate::collector::Backend>,

    /// Which network namespaces to read: all (every container's, as root; without root
    /// only lingertop's own, said once), host (lingertop's own only), a NAME (from
    /// `ip netns list`, or a container's or pod's name) or the PID of a process in one
    /// [default: the config's collector.netns, else all].
    #[arg(long, global = true, value_name = "all|host|NAME|PID")]
    pub netns: Option<crate::model::NetnsChoice>,

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
    /// The close lab: open lingertop's own connections on loopback, close them the way you
    /// ask, and print what the kernel did beside what the documents say.
    ///
    /// Exit status: 0 when the lab ran (a deviation from the documents is a finding, not a
    /// failure), 1 on error.
    Lab(LabArgs),

    /// Serve Prometheus metrics on /metrics and a health check on /healthz, from one
    /// background poll per interval (a scrape never triggers a poll).
    ///
    /// Listens on 127.0.0.1:9797 unless --listen or the config's serve.listen says
    /// otherwise. Runs until Ctrl-C, SIGTERM or SIGHUP (no reload: it ends); exit status 0
    /// then, 1 on error.
    Serve(ServeArgs),

    /// Print one JSON line per poll (counts and alerts), or with --events one line per
    /// observed state transition, until interrupted or the reader goes away.
    ///
    /// Exit status 0 on Ctrl-C, SIGTERM, SIGHUP or a closed pipe (`lingertop watch | head -1`),
    /// 1 on error.
    Watch(WatchArgs),

    /// Close the connections a filter selects, gracefully (the FIN the application never
    /// sent, through its own descriptor) or abortively (the kernel resets them), then read
    /// them again and report each one: closed, half-closed, still there, or refused and why.
    ///
    /// Lists and asks first on a terminal unless --yes; refuses without a terminal and
    /// without --yes. Never selects lingertop's own sockets nor the SSH connection you are
    /// on; refuses listeners unless --include-listen, and more than --max connections. Every
    /// action goes to stderr and to the system log. Exit status: 0 when every selected
    /// connection reached its end, 3 when some did, 1 when none did or on error.
    Close(CloseArgs),
    /// Record every poll, every close the kernel's events tell and every alert to an
    /// SQLite file, for `replay`, `snapshot --from` and SQL (the guide's docs/record.md).
    ///
    /// Runs until Ctrl-C, SIGTERM or SIGHUP; exit status 0 then, 1 on error (a second
    /// recorder on the file, a symlinked path, another program's database).
    Record(RecordArgs),

    /// The dashboard over a recording, with a time cursor: [ and ] step a poll, { and } a
    /// minute, t types a time, p plays at 1x, 10x or 60x. The header says REPLAY and the
    /// instant; the lab is off.
    Replay(ReplayArgs),

    /// Print the shell completion script for bash, zsh, fish, elvish or powershell.
    ///
    /// bash: `source <(lingertop completions bash)`, or save it as
    /// /usr/share/bash-completion/completions/lingertop. zsh: save it as `_lingertop` in a
    /// directory of $fpath. fish: save it as ~/.config/fish/completions/lingertop.fish.
    Completions(CompletionsArgs),

    /// Print the manual page lingertop(1) (read it with `lingertop man | man -l -`), or with
    /// --dir write it and one page per command there.
    Man(ManArgs),
}

#[derive(Clone, Debug, PartialEq, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Clone, Debug, PartialEq, Args)]
pub struct ManArgs {
    /// Write lingertop.1 and lingertop-COMMAND.1 into this directory (created if missing)
    /// instead of printing lingertop(1).
    #[arg(long, value_name = "DIR", value_hint = clap::ValueHint::DirPath)]
    pub dir: Option<PathBuf>,
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
    /// rate (e.g. 2s, 500ms; 100ms to 1h).
    #[arg(long, value_name = "DURATION", value_parser = parse_interval)]
    pub interval: Option<Duration>,

    /// Output format [default: table on a terminal, json otherwise].
    #[arg(long, value_enum)]
    pub format: Option<Format>,

    /// Indent the JSON (the default on a terminal; compact otherwise).
    #[arg(long)]
    pub pretty: bool,

    /// With --interval: the closes between the two polls, for the reset-storm rule, from
    /// the kernel's events: on (fail without them), off (the counters only: TIME_WAIT
    /// overflow but no reset storm), auto (on when privileged: root or CAP_BPF and
    /// CAP_PERFMON).
    #[arg(long, value_enum, value_name = "MODE", default_value = "auto")]
    pub events: crate::events::EventsMode,

    /// Exit with status 2 when an alert at or above this severity is raised.
    #[arg(long, value_enum, value_name = "SEVERITY")]
    pub fail_on: Option<FailOn>,

    #[command(flatten)]
    pub filter: FilterArgs,

    /// Add each remote address's name (reverse DNS: /etc/hosts, then the servers of
    /// /etc/resolv.conf) as remote_name in JSON, NDJSON and CSV; the table shows
    /// name:port. Waits at most resolve.timeout (2s) in all after the poll; an address not
    /// named by then gets null [default: the config's resolve.headless, else off].
    #[arg(long)]
    pub resolve: bool,

    /// Print nothing on stderr while waiting for the second poll.
    #[arg(long, short)]
    pub quiet: bool,

    /// Read the snapshot from a recording instead of the kernel: the last poll at or
    /// before --at, as a live snapshot gave it then (what was not recorded is null).
    #[arg(long, value_name = "PATH", requires = "at", conflicts_with_all = ["interval", "resolve"],
          value_hint = clap::ValueHint::FilePath)]
    pub from: Option<PathBuf>,

    /// With --from: the instant, in RFC 3339 (2025-03-02T03:12:00Z, or with an offset
    /// such as +01:00).
    #[arg(long, value_name = "TIME", requires = "from", value_parser = parse_time)]
    pub at: Option<std::time::SystemTime>,
}

/// What `lingertop lab` runs: one close mode, all of them, or a bulk scenario.
#[derive(Clone, Debug, PartialEq, Args)]
#[command(group(ArgGroup::new("what").required(true).args(["mode", "all", "scenario"])))]
pub struct LabArgs {
    /// Run one close mode on a new lab connection and print its trace.
    #[arg(long, value_enum, value_name = "MODE")]
    pub mode: Option<CloseMode>,

    /// Run every close mode and print one row per mode: observed beside documented.
    #[arg(long)]
    pub all: bool,

    /// Build up a close state on purpose so the buildup alerts fire.
    #[arg(long, value_enum, value_name = "SCENARIO")]
    pub scenario: Option<Scenario>,

    /// How many connections the scenario makes (1 to 20000) [default: 100].
    #[arg(short = 'n', long = "count", value_name = "N", conflicts_with_all = ["mode", "all"],
          value_parser = clap::value_parser!(u32).range(1..=20_000))]
    pub count: Option<u32>,

    /// SO_LINGER time of the linger modes, in seconds (1 to 30).
    #[arg(long, value_name = "N", default_value_t = 2,
          value_parser = clap::value_parser!(u64).range(1..=30))]
    pub linger_secs: u64,

    /// How long close-wait-leak keeps its CLOSE_WAIT sockets before it closes them
    /// (Ctrl-C, SIGTERM or SIGHUP ends the hold early; at most 1h) [default: 60s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, conflicts_with_all = ["mode", "all"])]
    pub hold: Option<Duration>,

    /// Address family of the lab connections: ipv4 (127.0.0.1) or ipv6 ([::1]).
    #[arg(long, value_enum, default_value = "ipv4")]
    pub family: Family,

    /// Output format [default: table on a terminal, json otherwise].
    #[arg(long, value_enum)]
    pub format: Option<LabFormat>,
}

/// The lab's choices as clap values: mapped here so the lab knows nothing of clap. Each
/// value is the type's `name()`, its help the type's `about()`.
macro_rules! lab_value_enum {
    ($($ty:ty),*) => {$(
        impl ValueEnum for $ty {
            fn value_variants<'a>() -> &'a [Self] {
                &<$ty>::ALL
            }
            fn to_possible_value(&self) -> Option<PossibleValue> {
                Some(PossibleValue::new(self.name()).help(self.about()))
            }
        }
    )*};
}
lab_value_enum!(CloseMode, Scenario, Family, Format, LabFormat);

pub use crate::report::{Format, LabFormat};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to serve on: IP:PORT, [V6]:PORT or localhost:PORT; port 0 picks a free one
    /// (printed on stderr). Overrides the config's serve.listen [default: 127.0.0.1:9797].
    /// An address other than loopback exposes process names and addresses to the network.
    #[arg(long, value_name = "ADDR", value_parser = crate::config::parse_listen)]
    pub listen: Option<std::net::SocketAddr>,

    /// Poll the socket table this often (e.g. 5s); overrides the config's
    /// collector.interval (100ms to 1h) [default: 2s].
    #[arg(long, value_name = "DURATION", value_parser = parse_interval)]
    pub interval: Option<Duration>,

    /// Closes from the kernel's events (every close, by kind and process): on (fail
    /// without them), off (the kernel's counters only), auto (on when privileged: root or
    /// CAP_BPF and CAP_PERFMON).
    #[arg(long, value_enum, value_name = "MODE", default_value = "auto")]
    pub events: crate::events::EventsMode,

    /// Also record every poll, close and alert to this SQLite file, as `lingertop record`
    /// does [default: off].
    #[arg(long, value_name = "PATH", value_hint = clap::ValueHint::FilePath)]
    pub record: Option<PathBuf>,

    #[command(flatten)]
    pub retention: RetentionArgs,
}

/// Output formats of `close`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CloseFormat {
    /// One row per connection.
    Table,
    /// One JSON document: every connection with its result.
    Json,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("how").required(true).args(["graceful", "abort"])))]
pub struct CloseArgs {
    #[command(flatten)]
    pub filter: FilterArgs,

    /// Close by sending the FIN the owner never sent: shutdown(SHUT_WR) on a duplicate of
    /// its descriptor (pidfd_getfd; needs ptrace rights over the owner). The peer reads an
    /// orderly EOF; a connection no process holds (TIME_WAIT) is refused, never aborted.
    #[arg(long)]
    pub graceful: bool,

    /// Close by destroying the socket (SOCK_DESTROY, as `ss -K`; needs CAP_NET_ADMIN in the
    /// socket's network namespace). The peer gets a RST: ECONNRESET, data lost.
    #[arg(long)]
    pub abort: bool,

    /// List what would be closed and how, and change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Close without asking (needed when stdin is not a terminal).
    #[arg(long, short)]
    pub yes: bool,

    /// Refuse a selection of more than N connections (1 to 100000).
    #[arg(long, value_name = "N", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max: u32,

    /// How long to wait for the closed connections to reach their end before reporting
    /// (e.g. 3s; 10ms to 1h).
    #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = parse_duration)]
    pub wait: Duration,

    /// Also close listening sockets the filter selects (closing a listener stops a service).
    #[arg(long)]
    pub include_listen: bool,

    /// Output format [default: table on a terminal, json otherwise].
    #[arg(long, value_enum)]
    pub format: Option<CloseFormat>,
}

/// Line formats of `watch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StreamFormat {
    /// One JSON document per line.
    Ndjson,
}

/// How much a recording keeps: `record` and `serve --record`.
#[derive(Debug, Args, Default)]
pub struct RetentionArgs {
    /// Drop recorded data older than this, a whole piece at a time (e.g. 7d, 12h)
    /// [default: keep everything].
    #[arg(long, value_name = "DURATION", value_parser = parse_retain)]
    pub retain: Option<Duration>,

    /// Keep the recording (the database and its -wal) within this size, dropping the
    /// oldest pieces, never the newest (e.g. 1GiB, 500MiB, 10MB) [default: no bound].
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_size: Option<u64>,
}

#[derive(Debug, Args)]
pub struct RecordArgs {
    /// The recording: an SQLite file, created 0600 if missing (never through a symlink);
    /// an existing lingertop recording is appended to.
    #[arg(value_name = "PATH", value_hint = clap::ValueHint::FilePath)]
    pub path: PathBuf,

    /// Poll the socket table this often (e.g. 1s); overrides the config's
    /// collector.interval (100ms to 1h) [default: 2s].
    #[arg(long, value_name = "DURATION", value_parser = parse_interval)]
    pub interval: Option<Duration>,

    /// Closes from the kernel's events (every close, by kind, reason and process): on
    /// (fail without them), off (none recorded), auto (on when privileged: root or CAP_BPF
    /// and CAP_PERFMON).
    #[arg(long, value_enum, value_name = "MODE", default_value = "auto")]
    pub events: crate::events::EventsMode,

    #[command(flatten)]
    pub retention: RetentionArgs,

    /// Print nothing on stderr but errors.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Clone, Debug, PartialEq, Args)]
pub struct ReplayArgs {
    /// A recording made by `lingertop record` or `serve --record`.
    #[arg(value_name = "PATH", value_hint = clap::ValueHint::FilePath)]
    pub path: PathBuf,

    /// Start at the last poll at or before this instant (RFC 3339, e.g.
    /// 2025-03-02T03:12:00Z) [default: the first recorded poll].
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub at: Option<std::time::SystemTime>,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Line format.
    #[arg(long, value_enum, default_value = "ndjson")]
    pub format: StreamFormat,

    /// Poll the socket table this often (e.g. 500ms); overrides the config's
    /// collector.interval (100ms to 1h) [default: 2s].
    #[arg(long, value_name = "DURATION", value_parser = parse_interval)]
    pub interval: Option<Duration>,

    /// Print one line per event instead of one line per poll: each close from the kernel's
    /// own events (`source: kernel`, with its kind, owner and exact states), the kernel's
    /// close counters each poll (`source: counters`), the state transitions two polls
    /// show (`source: poll`), and the close rules' alerts as they start and end
    /// (`event: alert`, `state: firing|resolved`: reset-storm from the kernel's events,
    /// time-wait-overflow from the counters). MODE picks the kernel's events: on (fail without them), off
    /// (counters only), auto (on when privileged: root or CAP_BPF and CAP_PERFMON)
    /// [default: auto].
    #[arg(long, value_enum, value_name = "MODE", num_args = 0..=1, require_equals = false)]
    pub events: Option<Option<crate::events::EventsMode>>,

    #[command(flatten)]
    pub filter: FilterArgs,

    /// Add the remote's name (reverse DNS: /etc/hosts, then the servers of
    /// /etc/resolv.conf) as remote_name to alerts and event lines. Never waited for: a
    /// line has it once the name has come (null until then, and where there is none)
    /// [default: the config's resolve.headless, else off].
    #[arg(long)]
    pub resolve: bool,

    /// Print nothing on stderr but errors.
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

    /// A filter expression, e.g. "state:close-wait port:443 !proc:sshd" (the language:
    /// FILTER LANGUAGE in `man lingertop`, or the guide's docs/filter.md).
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

impl Command {
    /// The subcommand as typed.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Snapshot(_) => "snapshot",
            Command::Lab(_) => "lab",
            Command::Serve(_) => "serve",
            Command::Watch(_) => "watch",
            Command::Close(_) => "close",
            Command::Record(_) => "record",
            Command::Replay(_) => "replay",
            Command::Completions(_) => "completions",
            Command::Man(_) => "man",
        }
    }
}

/// Whether a lingertop command line runs a lab: `lingertop lab ...`, or the dashboard
/// (whose only TCP sockets are its lab's). What another lingertop's lab recogniser asks.
pub fn is_lab_command(args: &[OsString]) -> bool {
    matches!(
        Cli::try_parse_from(args).map(|c| c.command),
        Ok(Some(Command::Lab(_)) | None)
    )
}

/// clap's error turned into the one line lingertop prints: every line of its detail kept
/// (the missing arguments named, the possible values, "a similar argument exists"), the
/// usage dropped, and a pointer to the help of the subcommand the error is in. `args` is
/// the command line (program name first), to find that subcommand when clap's text has
/// no usage line, and to say which subcommand an option given at the top level belongs to.
/// Every `--set` of the command line, in order, wherever it stands (before the subcommand
/// and after it). clap keeps a global argument's values from one level only (those after the
/// subcommand replace those before), so `lingertop --set a=1 snapshot --set b=2` lost `a=1`;
/// the parsed command line has already checked their shape, this only gathers them.
pub fn all_sets(args: &[OsString]) -> Vec<String> {
    let mut out = Vec::new();
    let mut it = args.iter().skip(1).map(|a| a.to_string_lossy());
    while let Some(a) = it.next() {
        if a == "--" {
            break;
        }
        if a == "--set" {
            if let Some(v) = it.next() {
                out.push(v.into_owned());
            }
        } else if let Some(v) = a.strip_prefix("--set=") {
            out.push(v.to_string());
        }
    }
    out
}

pub fn one_line_error(e: &clap::Error, args: &[OsString]) -> String {
    use clap::CommandFactory;
    use clap::error::{ContextKind, ContextValue, ErrorKind};

    let rendered = e.to_string();
    let top = Cli::command();
    let subcommand = args
        .iter()
        .skip(1)
        .filter_map(|a| a.to_str())
        .find(|a| top.get_subcommands().any(|c| c.get_name() == *a));
    let mut help = match subcommand {
        Some(sub) => format!("lingertop {sub} --help"),
        None => "lingertop --help".to_string(),
    };
    let mut parts: Vec<String> = Vec::new();
    for line in rendered.lines().map(str::trim) {
        if let Some(usage) = line.strip_prefix("Usage:") {
            // `Usage: lingertop lab --mode <MODE> ...`: the words before the first option
            // or placeholder are the command path.
            let path: Vec<&str> = usage
                .split_whitespace()
                .take_while(|w| !w.starts_with(['-', '[', '<']))
                .collect();
            if !path.is_empty() {
                help = format!("{} --help", path.join(" "));
            }
            continue;
        }
        if line.is_empty() || line.starts_with("For more information") {
            continue;
        }
        let line = line.trim_start_matches("error: ");
        let line = line.trim_start_matches("tip: ");
        parts.push(line.to_string());
    }
    // `lingertop --mode abort`: the option exists, under a subcommand.
    if e.kind() == ErrorKind::UnknownArgument
        && subcommand.is_none()
        && let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg)
    {
        let long = arg
            .split('=')
            .next()
            .unwrap_or(arg)
            .trim_start_matches("--");
        let owners: Vec<&str> = top
            .get_subcommands()
            .filter(|c| c.get_arguments().any(|a| a.get_long() == Some(long)))
            .map(|c| c.get_name())
            .collect();
        if !owners.is_empty() {
            parts.push(format!(
                "--{long} is an option of: lingertop {}",
                owners.join(", lingertop ")
            ));
        }
    }
    let mut out = String::new();
    for p in parts {
        if !out.is_empty() {
            out.push_str(if out.ends_with(':') { " " } else { "; " });
        }
        out.push_str(&p);
    }
    if out.is_empty() {
        out.push_str("bad arguments");
    }
    format!("{out} (see {help})")
}

/// The shortest poll interval, the same as the config's collector.interval allows: below
/// it a busy table's poll costs more than the time between polls.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// A poll interval: a duration from [`MIN_INTERVAL`] to 1h.
fn parse_interval(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s)
        .map_err(|_| format!("\"{s}\" is not a duration; write e.g. 500ms, 2s, 1m"))?;
    if d < MIN_INTERVAL {
        return Err(format!(
            "{s} is too short: the shortest poll interval is 100ms (as for the config's collector.interval)"
        ));
    }
    if d > Duration::from_secs(3600) {
        return Err(format!("{s} is too long: the longest poll interval is 1h"));
    }
    Ok(d)
}

/// `--retain`: at least a minute (a piece is an eighth of it, at most an hour).
fn parse_retain(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s)
        .map_err(|_| format!("\"{s}\" is not a duration; write e.g. 7d, 12h, 30m"))?;
    if d < Duration::from_secs(60) {
        return Err(format!("{s} is too short: keep at least 1m"));
    }
    Ok(d)
}

/// `--max-size`: bytes, or a number with B, KB, MB, GB (powers of 1000) or KiB, MiB, GiB
/// (powers of 1024); at least 1 MiB.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || format!("\"{s}\" is not a size; write e.g. 1GiB, 500MiB, 10MB");
    let n: u64 = num.parse().map_err(|_| bad())?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        _ => return Err(bad()),
    };
    let size = n.checked_mul(mult).ok_or_else(bad)?;
    if size < 1 << 20 {
        return Err(format!("{s} is too small: a recording needs at least 1MiB"));
    }
    Ok(size)
}

/// An instant in RFC 3339: `2025-03-02T03:12:00Z`, with fractions of a second, or with an
/// offset (`+01:00`, `-05:30`) instead of `Z`.
pub fn parse_time(s: &str) -> Result<std::time::SystemTime, String> {
    let bad = || {
        format!(
            "\"{s}\" is not an RFC 3339 time; write e.g. 2025-03-02T03:12:00Z or 2025-03-02T04:12:00+01:00"
        )
    };
    let t = s.trim();
    let (local, offset) = if let Some(rest) = t.strip_suffix(['Z', 'z']) {
        (rest, 0i64)
    } else if t.len() > 6
        && matches!(t.as_bytes()[t.len() - 6], b'+' | b'-')
        && t.as_bytes()[t.len() - 3] == b':'
    {
        let (l, o) = t.split_at(t.len() - 6);
        let sign = if o.starts_with('-') { -1 } else { 1 };
        let h: i64 = o[1..3].parse().map_err(|_| bad())?;
        let m: i64 = o[4..6].parse().map_err(|_| bad())?;
        if h > 23 || m > 59 {
            return Err(bad());
        }
        (l, sign * (h * 3600 + m * 60))
    } else {
        return Err(bad());
    };
    let utc = humantime::parse_rfc3339(&format!("{local}Z")).map_err(|_| bad())?;
    let shift = Duration::from_secs(offset.unsigned_abs());
    Ok(if offset >= 0 {
        utc - shift
    } else {
        utc + shift
    })
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s)
        .map_err(|_| format!("\"{s}\" is not a duration; write e.g. 500ms, 2s, 1m"))?;
    if d < Duration::from_millis(10) || d > Duration::from_secs(3600) {
        return Err(format!("{s} is out of range; allowed: 10ms to 1h"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_set_is_gathered_from_both_sides_of_the_subcommand() {
        let a = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        let got = all_sets(&a(&[
            "lingertop",
            "--set",
            "a=1",
            "snapshot",
            "--set=b=2",
            "--set",
            "c=3",
            "--",
            "--set",
            "d=4",
        ]));
        assert_eq!(got, ["a=1", "b=2", "c=3"]);
        // What each set means is the config's to say; an option's value is not a set.
        assert_eq!(
            all_sets(&a(&["lingertop", "--filter", "x", "snapshot"])),
            Vec::<String>::new()
        );
    }

    use super::*;

    fn args(s: &str) -> Vec<OsString> {
        s.split_whitespace().map(OsString::from).collect()
    }

    fn error_of(s: &str) -> String {
        let e = Cli::try_parse_from(args(s)).expect_err("a parse error");
        one_line_error(&e, &args(s))
    }

    #[test]
    fn parse_errors_keep_claps_detail_on_one_line() {
        let e = error_of("lingertop lab");
        assert!(e.contains("--mode") || e.contains("--scenario"), "{e}");
        assert!(e.ends_with("(see lingertop lab --help)"), "{e}");
        let e = error_of("lingertop lab --mode bogus");
        assert!(e.contains("possible values") && e.contains("abort"), "{e}");
        assert!(e.ends_with("(see lingertop lab --help)"), "{e}");
        let e = error_of("lingertop --mode abort");
        assert!(e.contains("option of: lingertop lab"), "{e}");
        let e = error_of("lingertop snapshot --stat x");
        assert!(e.contains("'--state'"), "did you mean: {e}");
        assert!(e.ends_with("(see lingertop snapshot --help)"), "{e}");
        let e = error_of("lingertop snapshott");
        assert!(e.contains("'snapshot'"), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }

    #[test]
    fn lab_and_dashboard_command_lines_are_lab_processes() {
        assert!(is_lab_command(&args("lingertop lab --all")));
        assert!(is_lab_command(&args(
            "/usr/bin/lingertop --config /x.toml lab --scenario close-wait-leak -n 5"
        )));
        assert!(is_lab_command(&args("lingertop")));
        assert!(!is_lab_command(&args("lingertop snapshot --interval 2s")));
        assert!(!is_lab_command(&args("lingertop no-such-mode")));
    }
}

#[cfg(test)]
mod record_values {
    use std::time::{Duration, UNIX_EPOCH};

    use super::{parse_size, parse_time};

    #[test]
    fn sizes_in_decimal_and_binary_units_and_their_refusals() {
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("500MiB"), Ok(500 << 20));
        assert_eq!(parse_size("10MB"), Ok(10_000_000));
        assert_eq!(parse_size("2097152"), Ok(2 << 20));
        assert!(parse_size("1KiB").unwrap_err().contains("too small"));
        assert!(parse_size("1TB").unwrap_err().contains("not a size"));
        assert!(parse_size("GiB").unwrap_err().contains("not a size"));
        assert!(
            parse_size("99999999999999GiB")
                .unwrap_err()
                .contains("not a size")
        );
    }

    #[test]
    fn times_in_utc_with_fractions_and_with_an_offset() {
        let t = |secs: u64, nanos: u32| UNIX_EPOCH + Duration::new(secs, nanos);
        assert_eq!(parse_time("2025-03-02T03:12:00Z"), Ok(t(1_740_885_120, 0)));
        assert_eq!(
            parse_time("2025-03-02T03:12:00.250Z"),
            Ok(t(1_740_885_120, 250_000_000))
        );
        assert_eq!(
            parse_time("2025-03-02T04:12:00+01:00"),
            Ok(t(1_740_885_120, 0))
        );
        assert_eq!(
            parse_time("2025-03-01T22:42:00-04:30"),
            Ok(t(1_740_885_120, 0))
        );
        for bad in [
            "yesterday",
            "2025-03-02 03:12",
            "2025-03-02T03:12:00+25:00",
            "",
        ] {
            assert!(parse_time(bad).unwrap_err().contains("RFC 3339"), "{bad}");
        }
    }
}
