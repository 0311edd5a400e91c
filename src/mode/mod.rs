//! The modes, one runner each, siblings chosen by the one `match` in `lib.rs`: the
//! dashboard, `snapshot`, `watch`, `serve` and `lab`. Every setting is resolved once, before
//! any runner starts ([`settings`]: the command line over the config); a runner takes its
//! part, wires the collector, the live loop or the lab to an output, and waits on the one
//! [`Shutdown`](crate::shutdown::Shutdown) type when it runs long.
//!
//! A new mode is a new file here, a variant of [`settings::Mode`] resolved in
//! [`settings::resolve`], an arm in `lib.rs` and a subcommand in `cli.rs`.

pub mod close;
mod closes;
pub mod dashboard;
mod http;
pub mod lab;
pub mod record;
pub mod serve;
pub mod settings;
pub mod snapshot;
mod snapshot_from;
pub mod watch;

use anyhow::{Context, Result};

use crate::cli;
use crate::collector::{Backend, Collector};
use crate::events::owners::EventOwners;
use crate::lab::LabRecogniser;
use crate::live;
use crate::model::{Filter, NetnsChoice};

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
