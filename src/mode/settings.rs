//! Every setting of a run, resolved once: the command line over the config file (itself
//! over the defaults, with `--set` over the file), with what the environment says
//! (`LINGERTOP_CONFIG`, whether stdout is a terminal), into the mode to run and its
//! settings. [`resolve`] is pure and tested by a table of command lines; `lib.rs` reads the
//! environment and the file ([`Env::of_process`], [`read_config`]) and hands each runner
//! its part, so no runner lays one setting over another.
//!
//! The one precedence rule: the command line's value when it gave one, else the config's
//! ([`layer`]); the config's is the file's (or `--set`'s) when it has one, else the default.

use std::path::PathBuf;
use std::time::Duration;

use crate::cli::{
    Cli, CloseFormat, Command, CompletionsArgs, FilterArgs, Format, LabArgs, ManArgs, StreamFormat,
};
use crate::config::{self, Config, ConfigError};
use crate::events::EventsMode;
use crate::model::action::{CloseHow, Rails};
use crate::model::{Filter, Severity};

/// The environment variable naming the config file when `--config` does not.
pub const CONFIG_ENV: &str = "LINGERTOP_CONFIG";

/// The command line's value when it gave one, else the config's (which is the file's,
/// else the default): the one precedence rule of every setting.
pub fn layer<T>(cli: Option<T>, config: T) -> T {
    cli.unwrap_or(config)
}

/// What the environment says about a run, read once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Env {
    /// `LINGERTOP_CONFIG` (when set and not empty): the config file `--config` did not name.
    pub config: Option<PathBuf>,
    /// Where the config file is when neither names one ([`config::default_path`]).
    pub default_config: Option<PathBuf>,
    /// Whether stdout is a terminal: the default output format and indentation.
    pub stdout_terminal: bool,
    /// Whether stdin is a terminal: `close` may ask there.
    pub stdin_terminal: bool,
    /// `$SSH_CONNECTION`: the connection a close never selects.
    pub ssh_connection: Option<String>,
}

impl Env {
    /// This process's environment.
    pub fn of_process() -> Env {
        use std::io::IsTerminal;
        Env {
            config: std::env::var_os(CONFIG_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            default_config: config::default_path(),
            stdout_terminal: std::io::stdout().is_terminal(),
            stdin_terminal: std::io::stdin().is_terminal(),
            ssh_connection: std::env::var("SSH_CONNECTION").ok(),
        }
    }
}

/// Where the config file of a run is, and who named it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigPath {
    /// `--config PATH`: it must exist.
    Flag(PathBuf),
    /// `LINGERTOP_CONFIG`: it must exist.
    Env(PathBuf),
    /// The platform's config directory: it may be missing.
    Default(PathBuf),
}

/// The config file a run reads: `--config`, else `LINGERTOP_CONFIG`, else the default
/// path; none for `completions` and `man`, which come from the command line's definition
/// alone (a broken config must not break a shell's start-up or a package build).
pub fn config_path(cli: &Cli, env: &Env) -> Option<ConfigPath> {
    if matches!(cli.command, Some(Command::Completions(_) | Command::Man(_))) {
        return None;
    }
    if let Some(p) = &cli.config {
        return Some(ConfigPath::Flag(p.clone()));
    }
    if let Some(p) = &env.config {
        return Some(ConfigPath::Env(p.clone()));
    }
    env.default_config.clone().map(ConfigPath::Default)
}

/// A config file's text as read, and the name errors give it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigFile {
    pub shown: String,
    pub text: String,
}

/// Reads the config file at `path` (the one I/O of resolving): `None` where the default
/// path has no file.
pub fn read_config(path: Option<&ConfigPath>) -> Result<Option<ConfigFile>, ConfigError> {
    let (path, hint) = match path {
        None => return Ok(None),
        Some(ConfigPath::Flag(p)) => (p, "; check the path given to --config"),
        Some(ConfigPath::Env(p)) => (p, "; check the path in LINGERTOP_CONFIG"),
        Some(ConfigPath::Default(p)) if !p.exists() => return Ok(None),
        Some(ConfigPath::Default(p)) => (p, ""),
    };
    let text = config::read_text(path)
        .map_err(|why| ConfigError(format!("config file {} {why}{hint}", path.display())))?;
    Ok(Some(ConfigFile {
        shown: path.display().to_string(),
        text,
    }))
}

/// Everything a run needs: the config every setting has been laid over, and the mode.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub config: Config,
    pub mode: Mode,
}

/// The mode to run and its own settings.
#[derive(Clone, Debug, PartialEq)]
pub enum Mode {
    Dashboard(Dashboard),
    Snapshot(Snapshot),
    Watch(Watch),
    Serve(Serve),
    Close(Close),
    Record(Record),
    Replay(crate::cli::ReplayArgs),
    Lab(LabArgs),
    Completions(CompletionsArgs),
    Man(ManArgs),
}

/// The dashboard's own settings (its interval and filter are the config's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dashboard {
    /// `--events`: the closes panel's source.
    pub events: EventsMode,
    /// `--allow-close`, or the config's `actions.allow-close`: the close keys act.
    pub allow_close: bool,
    /// The rails every close from the dashboard goes through (listeners always refused).
    pub rails: Rails,
}

/// `lingertop snapshot`'s settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// `--interval`: the gap before a second poll; `None`: one poll.
    pub second_poll: Option<Duration>,
    pub format: Format,
    /// Indented JSON: `--pretty`, or stdout is a terminal.
    pub pretty: bool,
    /// `--events`: the closes between the two polls.
    pub events: EventsMode,
    /// `--fail-on`: the severity that makes the exit status 2.
    pub fail_on: Option<Severity>,
    /// `--resolve`, or the config's `resolve.headless`.
    pub resolve: bool,
    pub quiet: bool,
    /// `--from PATH --at TIME`: read from a recording, not the kernel.
    pub from: Option<(std::path::PathBuf, std::time::SystemTime)>,
}

/// `lingertop watch`'s settings (its interval and filter are the config's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watch {
    pub format: StreamFormat,
    /// `--events[=MODE]`: one line per event, closes from the kernel's events as MODE
    /// says; `None`: one line per poll.
    pub events: Option<EventsMode>,
    /// `--resolve`, or the config's `resolve.headless`.
    pub resolve: bool,
    pub quiet: bool,
}

/// `lingertop serve`'s settings (its interval and address are the config's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Serve {
    /// `--events`: closes from the kernel's events.
    pub events: EventsMode,
    /// `--record PATH`: also record, as `lingertop record` does.
    pub record: Option<RecordTo>,
}

/// Where and how much to record: `record PATH` or `serve --record PATH`, with `--retain`
/// and `--max-size`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordTo {
    pub path: std::path::PathBuf,
    pub retention: crate::record::Retention,
}

impl RecordTo {
    fn of(path: std::path::PathBuf, r: &crate::cli::RetentionArgs) -> Self {
        RecordTo {
            path,
            retention: crate::record::Retention {
                age: r.retain,
                max_size: r.max_size,
            },
        }
    }
}

/// `lingertop record`'s settings (its interval is the config's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub to: RecordTo,
    /// `--events`: closes from the kernel's events.
    pub events: EventsMode,
    pub quiet: bool,
}

/// `lingertop close`'s settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Close {
    /// What the filter flags select (never the config's default filter: a close acts only
    /// on what its own command line names).
    pub filter: Filter,
    pub how: CloseHow,
    pub dry_run: bool,
    pub yes: bool,
    /// Whether it may ask (stdin is a terminal).
    pub ask: bool,
    pub max: usize,
    pub wait: Duration,
    pub rails: Rails,
    pub format: CloseFormat,
}

/// The settings of the run `cli` asks for, over the config `file` (none: the defaults)
/// and the environment `env`; the error is one line that says what to change. Pure: the
/// file has been read ([`read_config`]) and the environment looked at ([`Env`]).
pub fn resolve(cli: Cli, file: Option<&ConfigFile>, env: &Env) -> Result<Settings, String> {
    let mut cli = lift_globals(cli)?;
    let config = match &cli.command {
        Some(Command::Completions(_) | Command::Man(_)) => Config::default(),
        _ => match file {
            Some(f) => config::parse(&f.text, &f.shown, &cli.sets),
            None => config::parse("", "config", &cli.sets),
        }
        .map_err(|e| e.0)?,
    };
    let mut config = Config {
        backend: layer(cli.backend, config.backend),
        netns: layer(cli.netns.take(), config.netns),
        ..config
    };
    let mode = match cli.command {
        None => {
            config.interval = layer(cli.interval, config.interval);
            let flags = FilterArgs {
                filter: cli.filter,
                ..FilterArgs::default()
            };
            config.default_filter = layer(flags.to_filter()?, config.default_filter);
            Mode::Dashboard(Dashboard {
                events: cli.events,
                allow_close: cli.allow_close || config.allow_close,
                rails: Rails {
                    include_listen: false,
                    ssh: env
                        .ssh_connection
                        .as_deref()
                        .and_then(crate::model::action::parse_ssh_connection),
                    own_pid: std::process::id(),
                },
            })
        }
        Some(Command::Snapshot(a)) => {
            config.default_filter = layer(a.filter.to_filter()?, config.default_filter);
            let format = a.format.unwrap_or(if env.stdout_terminal {
                Format::Table
            } else {
                Format::Json
            });
            Mode::Snapshot(Snapshot {
                second_poll: a.interval,
                format,
                pretty: a.pretty || env.stdout_terminal,
                events: a.events,
                fail_on: a.fail_on.map(|f| f.severity()),
                resolve: a.resolve || config.resolve.headless,
                quiet: a.quiet,
                from: a.from.zip(a.at),
            })
        }
        Some(Command::Watch(a)) => {
            config.interval = layer(a.interval, config.interval);
            config.default_filter = layer(a.filter.to_filter()?, config.default_filter);
            Mode::Watch(Watch {
                format: a.format,
                events: a.events.map(Option::unwrap_or_default),
                resolve: a.resolve || config.resolve.headless,
                quiet: a.quiet,
            })
        }
        Some(Command::Serve(a)) => {
            config.interval = layer(a.interval, config.interval);
            config.serve.listen = layer(a.listen, config.serve.listen);
            if a.record.is_none()
                && (a.retention.retain.is_some() || a.retention.max_size.is_some())
            {
                return Err(
                    "--retain and --max-size bound a recording: give --record PATH with them"
                        .into(),
                );
            }
            Mode::Serve(Serve {
                events: a.events,
                record: a.record.map(|p| RecordTo::of(p, &a.retention)),
            })
        }
        Some(Command::Close(a)) => {
            let filter = a.filter.to_filter()?.ok_or(
                "close needs a filter: give --state, --port, --pid, --process, --local, --remote or --filter (lingertop close never selects every connection)",
            )?;
            Mode::Close(Close {
                filter,
                how: if a.abort {
                    CloseHow::Abort
                } else {
                    CloseHow::Graceful
                },
                dry_run: a.dry_run,
                yes: a.yes,
                ask: env.stdin_terminal,
                max: a.max as usize,
                wait: a.wait,
                rails: Rails {
                    include_listen: a.include_listen,
                    ssh: env
                        .ssh_connection
                        .as_deref()
                        .and_then(crate::model::action::parse_ssh_connection),
                    own_pid: std::process::id(),
                },
                format: a.format.unwrap_or(if env.stdout_terminal {
                    CloseFormat::Table
                } else {
                    CloseFormat::Json
                }),
            })
        }
        Some(Command::Record(a)) => {
            config.interval = layer(a.interval, config.interval);
            Mode::Record(Record {
                to: RecordTo::of(a.path, &a.retention),
                events: a.events,
                quiet: a.quiet,
            })
        }
        Some(Command::Replay(a)) => Mode::Replay(a),
        Some(Command::Lab(a)) => Mode::Lab(a),
        Some(Command::Completions(a)) => Mode::Completions(a),
        Some(Command::Man(a)) => Mode::Man(a),
    };
    Ok(Settings { config, mode })
}

/// Moves `--interval` and `--filter` given before the subcommand into it
/// (`lingertop --interval 1s snapshot` is `lingertop snapshot --interval 1s`), and refuses
/// them, saying why, where the subcommand has no such option or got it twice. With no
/// subcommand they are the dashboard's own and stay where they are.
fn lift_globals(mut cli: Cli) -> Result<Cli, String> {
    let Some(command) = &mut cli.command else {
        return Ok(cli);
    };
    let name = command.name();
    let twice = |flag: &str| {
        format!(
            "{flag} was given both before and after `{name}`; give it once (e.g. `lingertop {name} {flag} ...`)"
        )
    };
    if let Some(interval) = cli.interval.take() {
        let slot = match command {
            Command::Snapshot(a) => &mut a.interval,
            Command::Watch(a) => &mut a.interval,
            Command::Serve(a) => &mut a.interval,
            Command::Record(a) => &mut a.interval,
            Command::Replay(_) => {
                return Err(
                    "--interval does not apply to `replay`: it steps through the recorded polls"
                        .into(),
                );
            }
            Command::Completions(_) | Command::Man(_) | Command::Close(_) => {
                return Err(format!("--interval does not apply to `{name}`"));
            }
            Command::Lab(_) => {
                return Err(
                    "--interval does not apply to `lab` (the lab polls its own sockets as fast as it needs); for how long close-wait-leak holds, use `lab --hold`".into(),
                );
            }
        };
        if slot.replace(interval).is_some() {
            return Err(twice("--interval"));
        }
    }
    if let Some(filter) = cli.filter.take() {
        let slot = match command {
            Command::Snapshot(a) => &mut a.filter.filter,
            Command::Watch(a) => &mut a.filter.filter,
            Command::Close(a) => &mut a.filter.filter,
            Command::Replay(_) => {
                return Err(
                    "--filter does not apply to `replay`: open it, then filter with / as in the dashboard".into(),
                );
            }
            Command::Record(_) => {
                return Err(
                    "--filter does not apply to `record`: it records every connection; filter when you read it (replay, snapshot --from, SQL)".into(),
                );
            }
            Command::Serve(_) => {
                return Err(
                    "--filter does not apply to `serve`: the exporter counts every connection of the host; filter in the Prometheus query instead".into(),
                );
            }
            Command::Completions(_) | Command::Man(_) => {
                return Err(format!("--filter does not apply to `{name}`"));
            }
            Command::Lab(_) => {
                return Err(
                    "--filter does not apply to `lab`: the lab only shows its own connections"
                        .into(),
                );
            }
        };
        if slot.replace(filter).is_some() {
            return Err(twice("--filter"));
        }
    }
    Ok(cli)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    const FIVE_SECONDS: &str = "[collector]\ninterval = \"5s\"\n";
    const HEADLESS_NAMES: &str = "[resolve]\nheadless = true\n";
    const NOT_LISTEN: &str = "[filter]\ndefault = \"!state:listen\"\n";
    const LISTEN_9100: &str = "[serve]\nlisten = \"127.0.0.1:9100\"\n";
    const BROKEN: &str = "[collector]\ninterval = 5\n";

    /// The settings of `argv` over the config `text` (`None`: no file), stdout a terminal
    /// or not, as one line of what they are; the error as it reads.
    fn settings_of(argv: &str, text: Option<&str>, terminal: bool) -> Result<String, String> {
        let args: Vec<std::ffi::OsString> = std::iter::once("lingertop")
            .chain(argv.split_whitespace())
            .map(Into::into)
            .collect();
        let mut cli = Cli::try_parse_from(&args).map_err(|e| e.to_string())?;
        cli.sets = crate::cli::all_sets(&args);
        let file = text.map(|text| ConfigFile {
            shown: "test.toml".into(),
            text: text.into(),
        });
        let env = Env {
            stdout_terminal: terminal,
            ..Env::default()
        };
        resolve(cli, file.as_ref(), &env).map(|s| summary(&s))
    }

    fn summary(s: &Settings) -> String {
        let c = &s.config;
        let common = format!(
            "interval={:?} filter={:?} backend={:?} netns={}",
            c.interval,
            c.default_filter.to_string(),
            c.backend,
            c.netns
        );
        match &s.mode {
            Mode::Dashboard(d) => format!(
                "dashboard {common} events={:?} allow_close={}",
                d.events, d.allow_close
            ),
            Mode::Snapshot(x) => format!(
                "snapshot {common} second_poll={:?} format={} pretty={} events={:?} fail_on={:?} resolve={} quiet={}",
                x.second_poll,
                x.format.name(),
                x.pretty,
                x.events,
                x.fail_on,
                x.resolve,
                x.quiet
            ),
            Mode::Watch(w) => format!(
                "watch {common} events={:?} resolve={} quiet={}",
                w.events, w.resolve, w.quiet
            ),
            Mode::Serve(v) => format!(
                "serve {common} listen={} events={:?}",
                c.serve.listen, v.events
            ),
            Mode::Close(x) => format!(
                "close {common} select={:?} how={} dry_run={} yes={} ask={} max={} wait={:?} listen={} format={:?}",
                x.filter.to_string(),
                x.how,
                x.dry_run,
                x.yes,
                x.ask,
                x.max,
                x.wait,
                x.rails.include_listen,
                x.format
            ),
            Mode::Record(r) => format!("record {common} {:?}", r),
            Mode::Replay(r) => format!("replay {common} {:?}", r),
            Mode::Lab(_) => "lab".into(),
            Mode::Completions(_) => "completions".into(),
            Mode::Man(_) => "man".into(),
        }
    }

    /// From the command line to the settings: each row is argv (after `lingertop`), the
    /// config file (or none), whether stdout is a terminal, and what the run gets.
    #[test]
    fn argv_to_settings_table() {
        #[rustfmt::skip]
        let table: &[(&str, Option<&str>, bool, &str)] = &[
            // The defaults, and the dashboard's own flags.
            ("", None, true,
             r#"dashboard interval=2s filter="" backend=Auto netns=all events=Auto allow_close=false"#),
            ("--interval 500ms --filter port:443 --events off", None, true,
             r#"dashboard interval=500ms filter="port:443" backend=Auto netns=all events=Off allow_close=false"#),
            // Closing from the dashboard: the flag, or the config's actions.allow-close.
            ("--allow-close", None, true,
             r#"dashboard interval=2s filter="" backend=Auto netns=all events=Auto allow_close=true"#),
            ("--set actions.allow-close=true", None, true,
             r#"dashboard interval=2s filter="" backend=Auto netns=all events=Auto allow_close=true"#),
            // The file over the defaults; --set over the file; a flag over both, given
            // before the subcommand or after it.
            ("watch", Some(FIVE_SECONDS), false,
             r#"watch interval=5s filter="" backend=Auto netns=all events=None resolve=false quiet=false"#),
            ("--set collector.interval=3s watch", Some(FIVE_SECONDS), false,
             r#"watch interval=3s filter="" backend=Auto netns=all events=None resolve=false quiet=false"#),
            ("--interval 1s watch", Some(FIVE_SECONDS), false,
             r#"watch interval=1s filter="" backend=Auto netns=all events=None resolve=false quiet=false"#),
            ("--set collector.interval=3s watch --interval 1s", None, false,
             r#"watch interval=1s filter="" backend=Auto netns=all events=None resolve=false quiet=false"#),
            ("--backend netstat2 --netns host watch --events --quiet", None, false,
             r#"watch interval=2s filter="" backend=Netstat2 netns=host events=Some(Auto) resolve=false quiet=true"#),
            ("watch --events off --netns all", None, false,
             r#"watch interval=2s filter="" backend=Auto netns=all events=Some(Off) resolve=false quiet=false"#),
            // The filter flags replace the config's default filter, wherever given.
            ("watch", Some(NOT_LISTEN), false,
             r#"watch interval=2s filter="!state:listen" backend=Auto netns=all events=None resolve=false quiet=false"#),
            ("watch --state close-wait", Some(NOT_LISTEN), false,
             r#"watch interval=2s filter="state:close-wait" backend=Auto netns=all events=None resolve=false quiet=false"#),
            ("--filter port:80", Some(NOT_LISTEN), true,
             r#"dashboard interval=2s filter="port:80" backend=Auto netns=all events=Auto allow_close=false"#),
            ("--filter port:80 snapshot", Some(NOT_LISTEN), false,
             r#"snapshot interval=2s filter="port:80" backend=Auto netns=all second_poll=None format=json pretty=false events=Auto fail_on=None resolve=false quiet=false"#),
            // snapshot: the format and indentation follow the terminal unless given; its
            // --interval is the gap before a second poll, not the live modes' interval.
            ("snapshot", Some(FIVE_SECONDS), true,
             r#"snapshot interval=5s filter="" backend=Auto netns=all second_poll=None format=table pretty=true events=Auto fail_on=None resolve=false quiet=false"#),
            ("--interval 3s snapshot --format csv --fail-on critical --events off -q", None, false,
             r#"snapshot interval=2s filter="" backend=Auto netns=all second_poll=Some(3s) format=csv pretty=false events=Off fail_on=Some(Critical) resolve=false quiet=true"#),
            ("snapshot --pretty --resolve", None, false,
             r#"snapshot interval=2s filter="" backend=Auto netns=all second_poll=None format=json pretty=true events=Auto fail_on=None resolve=true quiet=false"#),
            // The config's resolve.headless is --resolve's default.
            ("snapshot", Some(HEADLESS_NAMES), false,
             r#"snapshot interval=2s filter="" backend=Auto netns=all second_poll=None format=json pretty=false events=Auto fail_on=None resolve=true quiet=false"#),
            ("watch", Some(HEADLESS_NAMES), false,
             r#"watch interval=2s filter="" backend=Auto netns=all events=None resolve=true quiet=false"#),
            // serve: --listen over serve.listen over 127.0.0.1:9797.
            ("serve", None, false,
             r#"serve interval=2s filter="" backend=Auto netns=all listen=127.0.0.1:9797 events=Auto"#),
            ("serve", Some(LISTEN_9100), false,
             r#"serve interval=2s filter="" backend=Auto netns=all listen=127.0.0.1:9100 events=Auto"#),
            ("--interval 5s serve --listen 127.0.0.1:9000 --events on", Some(LISTEN_9100), false,
             r#"serve interval=5s filter="" backend=Auto netns=all listen=127.0.0.1:9000 events=On"#),
            // The generated texts never read the config: a broken one cannot break them.
            ("completions bash", Some(BROKEN), false, "completions"),
            ("man", Some(BROKEN), false, "man"),
            ("lab --all", None, false, "lab"),
            // close: its selection is its own flags only, never the config's default filter.
            ("close --state close-wait --pid 7 --graceful --yes", Some(NOT_LISTEN), false,
             r#"close interval=2s filter="!state:listen" backend=Auto netns=all select="state:close-wait pid:7" how=graceful dry_run=false yes=true ask=false max=100 wait=3s listen=false format=Json"#),
            ("--filter port:80 close --abort --dry-run --max 5 --wait 1s --include-listen", None, true,
             r#"close interval=2s filter="" backend=Auto netns=all select="port:80" how=abort dry_run=true yes=false ask=false max=5 wait=1s listen=true format=Table"#),
        ];
        let mut wrong = Vec::new();
        for (argv, file, terminal, want) in table {
            let got = settings_of(argv, *file, *terminal);
            if got.as_deref() != Ok(*want) {
                wrong.push(format!("lingertop {argv}\n  want {want}\n  got  {got:?}"));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn what_cannot_be_resolved_says_what_to_do() {
        #[rustfmt::skip]
        let table: &[(&str, Option<&str>, &str)] = &[
            ("--interval 1s snapshot --interval 2s", None,
             "--interval was given both before and after `snapshot`; give it once (e.g. `lingertop snapshot --interval ...`)"),
            ("--filter port:1 watch --filter port:2", None,
             "--filter was given both before and after `watch`; give it once (e.g. `lingertop watch --filter ...`)"),
            ("--filter port:1 serve", None,
             "--filter does not apply to `serve`: the exporter counts every connection of the host; filter in the Prometheus query instead"),
            ("--interval 1s lab --all", None,
             "--interval does not apply to `lab` (the lab polls its own sockets as fast as it needs); for how long close-wait-leak holds, use `lab --hold`"),
            ("--filter port:1 man", None, "--filter does not apply to `man`"),
            ("close --graceful", None,
             "close needs a filter: give --state, --port, --pid, --process, --local, --remote or --filter (lingertop close never selects every connection)"),
            ("--interval 1s close --abort --port 1", None, "--interval does not apply to `close`"),
            ("snapshot", Some(BROKEN),
             "config error in test.toml line 2, key collector.interval: invalid type: integer `5`, expected a string"),
            ("--set collector.interval=nope watch", None,
             "bad --set: \"nope\" is not a duration; write e.g. \"500ms\", \"30s\", \"2m\""),
        ];
        let mut wrong = Vec::new();
        for (argv, file, want) in table {
            let got = settings_of(argv, *file, false);
            if got.as_ref().err().map(String::as_str) != Some(*want) {
                wrong.push(format!("lingertop {argv}\n  want {want}\n  got  {got:?}"));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn a_bad_filter_reads_the_same_for_every_mode() {
        for expr in ["state:bogus", "port:99999", "!!state:listen"] {
            let dashboard = settings_of(&format!("--filter {expr}"), None, true).unwrap_err();
            assert!(dashboard.starts_with("bad --filter: "), "{dashboard}");
            for argv in [
                format!("snapshot --filter {expr}"),
                format!("--filter {expr} snapshot"),
                format!("watch --filter {expr}"),
            ] {
                assert_eq!(
                    settings_of(&argv, None, false).unwrap_err(),
                    dashboard,
                    "{argv}"
                );
            }
        }
    }

    #[test]
    fn the_config_file_is_the_flags_else_the_environments_else_the_default() {
        let cli = |argv: &str| {
            Cli::try_parse_from(std::iter::once("lingertop").chain(argv.split_whitespace()))
                .unwrap()
        };
        let env = Env {
            config: Some("/from/env.toml".into()),
            default_config: Some("/home/me/.config/lingertop/config.toml".into()),
            stdout_terminal: false,
            ..Env::default()
        };
        assert_eq!(
            config_path(&cli("--config /from/flag.toml snapshot"), &env),
            Some(ConfigPath::Flag("/from/flag.toml".into()))
        );
        assert_eq!(
            config_path(&cli("watch"), &env),
            Some(ConfigPath::Env("/from/env.toml".into()))
        );
        let no_env = Env {
            config: None,
            ..env.clone()
        };
        assert_eq!(
            config_path(&cli(""), &no_env),
            Some(ConfigPath::Default(
                "/home/me/.config/lingertop/config.toml".into()
            ))
        );
        assert_eq!(config_path(&cli("completions bash"), &env), None);
        assert_eq!(config_path(&cli("--config /x.toml man"), &env), None);
    }

    #[test]
    fn a_named_file_must_exist_and_the_default_may_be_missing() {
        let missing = std::path::Path::new("/nonexistent/lingertop/config.toml");
        assert_eq!(
            read_config(Some(&ConfigPath::Default(missing.into()))).unwrap(),
            None
        );
        let e = read_config(Some(&ConfigPath::Env(missing.into()))).unwrap_err();
        assert!(
            e.0.starts_with("config file /nonexistent/lingertop/config.toml cannot be read")
                && e.0.ends_with("; check the path in LINGERTOP_CONFIG"),
            "{e}"
        );
        let e = read_config(Some(&ConfigPath::Flag(missing.into()))).unwrap_err();
        assert!(e.0.ends_with("; check the path given to --config"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, FIVE_SECONDS).unwrap();
        let file = read_config(Some(&ConfigPath::Env(path.clone())))
            .unwrap()
            .unwrap();
        assert_eq!(file.text, FIVE_SECONDS);
        assert_eq!(file.shown, path.display().to_string());
    }
}
