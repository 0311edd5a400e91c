//! Bulk scenarios that build up a close state on purpose, so the buildup alerts can be
//! seen firing: a TIME_WAIT storm (many graceful closes by the client) and a CLOSE_WAIT leak
//! (server ends that read EOF and never close, held by lingertop).

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;

use super::{ConnId, Family};
use crate::model::StateCounts;

/// The most connections one scenario makes.
pub const MAX_COUNT: usize = 20_000;

/// A bulk scenario.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// Open N connections and close each gracefully from the client (shutdown, read to EOF,
    /// close): N TIME_WAIT build up on the client side, toward the lab's listener.
    TimeWaitStorm,
    /// Open N connections whose server ends never close, and close the clients: N
    /// CLOSE_WAIT held by lingertop, their clients in FIN_WAIT_2. They stay until the lab
    /// closes them.
    CloseWaitLeak,
}

impl Scenario {
    pub const ALL: [Scenario; 2] = [Scenario::TimeWaitStorm, Scenario::CloseWaitLeak];

    /// What the scenario builds, in one line (the variant's documentation), for help texts.
    pub fn about(self) -> &'static str {
        match self {
            Scenario::TimeWaitStorm => {
                "Open N connections and close each gracefully from the client (shutdown, read to EOF, close): N TIME_WAIT build up on the client side, toward the lab's listener"
            }
            Scenario::CloseWaitLeak => {
                "Open N connections whose server ends never close, and close the clients: N CLOSE_WAIT held by lingertop, their clients in FIN_WAIT_2. They stay until the lab closes them"
            }
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Scenario::TimeWaitStorm => "time-wait-storm",
            Scenario::CloseWaitLeak => "close-wait-leak",
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Kernel states of one side of a scenario's connections when it finished.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SideStates {
    pub counts: StateCounts,
    /// Sockets the kernel no longer lists.
    pub gone: u32,
}

/// What a scenario built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioReport {
    pub scenario: Scenario,
    pub family: Family,
    pub requested: usize,
    /// Connections opened and closed as the scenario says.
    pub done: usize,
    /// The lab listener the connections went to (the "remote" of the client ends).
    pub listener: SocketAddr,
    /// The process holding the lab's sockets.
    pub pid: u32,
    pub client: SideStates,
    pub server: SideStates,
    pub elapsed: Duration,
    /// Why it stopped before `requested`, when it did.
    pub stopped_early: Option<String>,
    /// The connections, for a view that lists or acts on them.
    pub ids: Vec<ConnId>,
}
