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
    /// RSTs lingertop's namespace sent while the scenario ran (`OutRsts`), where read.
    pub resets_sent: Option<u64>,
    /// `net.ipv4.tcp_rfc1337` there: whether a RST received in TIME_WAIT is ignored.
    pub rfc1337: Option<bool>,
    /// The connections, for a view that lists or acts on them.
    pub ids: Vec<ConnId>,
}

impl ScenarioReport {
    /// Why client ends of a storm are gone instead of in TIME_WAIT, where the kernel's own
    /// figures say so: a late segment reached a server end already closed, the kernel
    /// answered it with a RST, and with `tcp_rfc1337 = 0` (Linux's default) a RST kills the
    /// TIME_WAIT it reaches (TIME-WAIT assassination, RFC 1337).
    pub fn assassinated(&self) -> Option<String> {
        if self.scenario != Scenario::TimeWaitStorm || self.client.gone == 0 {
            return None;
        }
        let resets = self.resets_sent?;
        if self.rfc1337 != Some(false) || resets == 0 {
            return None;
        }
        Some(format!(
            "{} client end{} gone instead of in TIME_WAIT, and the kernel sent {resets} RST{} meanwhile: a late segment reached a server end already closed, its RST killed the TIME_WAIT (TIME-WAIT assassination, RFC 1337); `sysctl net.ipv4.tcp_rfc1337=1` keeps them",
            self.client.gone,
            if self.client.gone == 1 {
                " is"
            } else {
                "s are"
            },
            if resets == 1 { "" } else { "s" }
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn storm(gone: u32, resets: Option<u64>, rfc1337: Option<bool>) -> ScenarioReport {
        ScenarioReport {
            scenario: Scenario::TimeWaitStorm,
            family: Family::Ipv4,
            requested: 300,
            done: 300,
            listener: "127.0.0.1:9".parse().unwrap(),
            pid: 1,
            client: SideStates {
                gone,
                ..SideStates::default()
            },
            server: SideStates::default(),
            elapsed: Duration::ZERO,
            stopped_early: None,
            resets_sent: resets,
            rfc1337,
            ids: Vec::new(),
        }
    }

    #[test]
    fn ends_gone_are_put_down_to_resets_only_when_the_kernel_says_so() {
        let why = storm(11, Some(11), Some(false)).assassinated().unwrap();
        assert!(why.starts_with("11 client ends are gone"), "{why}");
        assert!(why.contains("sent 11 RSTs"), "{why}");
        assert!(why.contains("tcp_rfc1337=1"), "{why}");
        assert!(
            storm(1, Some(1), Some(false))
                .assassinated()
                .unwrap()
                .starts_with("1 client end is gone")
        );
        // None gone, no RST sent, the sysctl on or unknown: nothing to explain.
        assert_eq!(storm(0, Some(5), Some(false)).assassinated(), None);
        assert_eq!(storm(3, Some(0), Some(false)).assassinated(), None);
        assert_eq!(storm(3, Some(3), Some(true)).assassinated(), None);
        assert_eq!(storm(3, None, Some(false)).assassinated(), None);
        assert_eq!(storm(3, Some(3), None).assassinated(), None);
        let mut leak = storm(3, Some(3), Some(false));
        leak.scenario = Scenario::CloseWaitLeak;
        assert_eq!(leak.assassinated(), None);
    }
}
