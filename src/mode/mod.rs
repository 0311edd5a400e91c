//! The modes, one runner each, siblings chosen by the one `match` in `lib.rs`: the
//! dashboard, `snapshot`, `watch`, `serve` and `lab`. A runner lays the command line over
//! the config ([`Overrides`]), wires the collector, the live loop or the lab to an output,
//! and waits on the one [`Shutdown`](crate::shutdown::Shutdown) type when it runs long.
//!
//! A new mode is a new file here, an arm in `lib.rs` and a subcommand in `cli.rs`.

mod closes;
pub mod dashboard;
mod http;
pub mod lab;
pub mod serve;
pub mod snapshot;
pub mod watch;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::cli;
use crate::collector::{Backend, Collector};
use crate::config::Config;
use crate::events::owners::EventOwners;
use crate::lab::LabRecogniser;
use crate::live;
use crate::model::{Filter, NetnsChoice};

/// The command line's value when it gave one, else the config's (which is the file's,
/// else the default): the one precedence rule of every setting.
pub fn layer<T>(cli: Option<T>, config: T) -> T {
    cli.unwrap_or(config)
}

/// What the command line sets over the config, for whichever mode runs. A field left
/// `None` keeps the config's value.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--backend`.
    pub backend: Option<Backend>,
    /// `--netns`.
    pub netns: Option<NetnsChoice>,
    /// The live modes' `--interval`: how often the live loop polls.
    pub interval: Option<Duration>,
    /// `serve --listen`.
    pub listen: Option<SocketAddr>,
    /// The filter flags: they replace the config's default filter.
    pub filter: Option<Filter>,
}

impl Overrides {
    /// The config this run uses: every override laid over `cfg`.
    pub fn over(self, mut cfg: Config) -> Config {
        cfg.backend = layer(self.backend, cfg.backend);
        cfg.netns = layer(self.netns, cfg.netns);
        cfg.interval = layer(self.interval, cfg.interval);
        cfg.serve.listen = layer(self.listen, cfg.serve.listen);
        cfg.default_filter = layer(self.filter, cfg.default_filter);
        cfg
    }
}

/// The live loop's scope for a mode: alerts over the connections `alerts_over` matches,
/// and lab sockets of every lingertop lab recognised.
pub(crate) fn live_scope(alerts_over: Filter, owners: Option<EventOwners>) -> live::Scope {
    live::Scope {
        alerts_over,
        labs: LabRecogniser::new(cli::is_lab_command),
        owners,
    }
}

/// The collector `backend` asks for, reading the network namespaces `netns` asks for, its
/// notes (a fallback, namespaces it could not enter) on stderr unless `quiet`: the
/// collector never prints, the modes do.
pub(crate) fn open_collector(
    backend: Backend,
    netns: &NetnsChoice,
    quiet: bool,
) -> Result<Collector, crate::collector::CollectError> {
    let c = Collector::in_netns(backend, netns)?;
    if !quiet {
        for note in c.notes() {
            crate::stderr::say!("lingertop: {note}");
        }
    }
    Ok(c)
}

/// The single-threaded async runtime the long-running modes run on (the live poll has a
/// thread of its own, the lab its engine and workers).
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_wins_over_the_config_and_the_config_over_the_defaults() {
        let file = crate::config::parse(
            "[collector]\ninterval = \"5s\"\n[filter]\ndefault = \"!state:listen\"\n",
            "test",
            &[],
        )
        .unwrap();
        let kept = Overrides::default().over(file.clone());
        assert_eq!(kept.interval, Duration::from_secs(5));
        assert_eq!(kept.default_filter.to_string(), "!state:listen");
        assert_eq!(kept.serve.listen, Config::default().serve.listen);

        let listen: SocketAddr = "127.0.0.1:9000".parse().unwrap();
        let over = Overrides {
            interval: Some(Duration::from_millis(500)),
            listen: Some(listen),
            filter: Some(Filter::parse("port:443").unwrap()),
            backend: None,
            netns: None,
        }
        .over(file);
        assert_eq!(over.interval, Duration::from_millis(500));
        assert_eq!(over.serve.listen, listen);
        assert_eq!(over.default_filter.to_string(), "port:443");
        assert_eq!(over.backend, Config::default().backend);
    }
}
