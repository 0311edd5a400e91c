//! Buildup detection: rules over a snapshot (and the tracker's history) that say when
//! CLOSE_WAIT, TIME_WAIT or the other close states pile up or linger, in words a person acts on.
//!
//! One file per rule family, each a small gatherer that [`detect`] feeds in its one pass over
//! the connections and then asks for its alerts: `close_wait`, `linger` (FIN_WAIT_1,
//! FIN_WAIT_2, LAST_ACK, CLOSING), `time_wait` (total and per remote) and `pressure`
//! (ephemeral ports per destination). Their thresholds are in `rules`.

mod close_wait;
mod closes;
mod describe;
mod frequent;
mod linger;
mod pressure;
mod rules;
#[cfg(test)]
mod tests;
mod time_wait;

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::SystemTime;

use serde::Serialize;

use super::connection::Connection;
use super::netns::{NetnsId, NetnsKind, NetnsTable, Ranges};
use super::ports::PortRange;
use super::state::TcpState;
use super::tracker::Sample;

/// Kept at its old path for the dashboard; the one duration format is in `model::duration`.
pub use super::duration::human_duration;
pub use closes::{OverflowWindow, close_alerts, close_alerts_in, time_wait_overflow};
pub(crate) use pressure::pair_groups;
pub use pressure::{Pressure, port_pressure, port_pressure_top, pressure_of};
pub use rules::{CountRule, LingerRule, RateRule, RatioRule, Rules};
pub(crate) use time_wait::endpoint_key;

/// How bad an alert is. Ordered: `Warning < Critical`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Critical,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// Which rule raised an alert.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuleId {
    CloseWaitLingering,
    TimeWaitBuildup,
    TimeWaitRemote,
    PortPressure,
    FinWait1Lingering,
    FinWait2Lingering,
    LastAckLingering,
    ClosingLingering,
    /// One process's resets (sent and received) per second over a window, from the
    /// kernel's events (see `closes`).
    ResetStorm,
    /// The kernel dropped TIME_WAIT sockets (`TCPTimeWaitOverflow` grew).
    TimeWaitOverflow,
}

impl RuleId {
    /// Every rule, so exporters can show a zero for the rules that are quiet: those over
    /// the socket table, then the close rules (judged from the close source beside it).
    pub const ALL: [RuleId; 10] = [
        RuleId::CloseWaitLingering,
        RuleId::TimeWaitBuildup,
        RuleId::TimeWaitRemote,
        RuleId::PortPressure,
        RuleId::FinWait1Lingering,
        RuleId::FinWait2Lingering,
        RuleId::LastAckLingering,
        RuleId::ClosingLingering,
        RuleId::ResetStorm,
        RuleId::TimeWaitOverflow,
    ];

    pub fn name(self) -> &'static str {
        match self {
            RuleId::CloseWaitLingering => "close-wait-lingering",
            RuleId::TimeWaitBuildup => "time-wait-buildup",
            RuleId::TimeWaitRemote => "time-wait-remote",
            RuleId::PortPressure => "port-pressure",
            RuleId::FinWait1Lingering => "fin-wait-1-lingering",
            RuleId::FinWait2Lingering => "fin-wait-2-lingering",
            RuleId::LastAckLingering => "last-ack-lingering",
            RuleId::ClosingLingering => "closing-lingering",
            RuleId::ResetStorm => "reset-storm",
            RuleId::TimeWaitOverflow => "time-wait-overflow",
        }
    }
}

/// One buildup a person should look at.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    pub rule: RuleId,
    pub severity: Severity,
    /// One line, e.g. "412 CLOSE_WAIT held by java (pid 3121) for > 30 s, +40/min".
    pub message: String,
    /// How many connections are behind the alert.
    pub count: u32,
    pub pid: Option<u32>,
    pub process: Option<Arc<str>>,
    pub local_ip: Option<IpAddr>,
    pub remote: Option<SocketAddr>,
    /// For port pressure: the fraction of the ephemeral range in use.
    pub ratio: Option<f64>,
    /// For CLOSE_WAIT: change per minute of the process's CLOSE_WAIT count over the window.
    pub growth_per_min: Option<f64>,
    /// Indices, into the slice given to [`detect`], of the connections behind the alert.
    pub connections: Vec<usize>,
    /// The network namespace (container, pod, `ip netns`) the alert is about, where it is
    /// one namespace and not the host's.
    pub netns: Option<Arc<str>>,
}

impl Alert {
    fn new(rule: RuleId, severity: Severity, message: String, connections: Vec<usize>) -> Self {
        Alert {
            rule,
            severity,
            message,
            count: u32::try_from(connections.len()).unwrap_or(u32::MAX),
            pid: None,
            process: None,
            local_ip: None,
            remote: None,
            ratio: None,
            growth_per_min: None,
            connections,
            netns: None,
        }
    }
}

/// Runs every enabled rule over `conns` (already filtered as the user asked) at time `now`.
/// `history` is the tracker's, for growth rates. Alerts come back worst first.
///
/// One pass over the connections gathers what every rule needs; the connections behind a
/// group are listed only for groups that raise an alert.
pub fn detect(
    conns: &[Connection],
    now: SystemTime,
    ports: PortRange,
    history: &VecDeque<Sample>,
    rules: &Rules,
) -> Vec<Alert> {
    detect_in(conns, &NetnsTable::default(), now, ports, history, rules)
}

/// [`detect`], naming the network namespace of per-process alerts from `netns` (the
/// snapshot's table): "CLOSE_WAIT held by orders-api (pid 812) in container orders-7f9c".
pub fn detect_in(
    conns: &[Connection],
    netns: &NetnsTable,
    now: SystemTime,
    ports: PortRange,
    history: &VecDeque<Sample>,
    rules: &Rules,
) -> Vec<Alert> {
    let mut close_wait = close_wait::CloseWaits::new(rules);
    let mut lingering = linger::Lingering::new(rules);
    let mut time_wait = time_wait::TimeWaits::new(rules);
    let mut ephemeral = pressure::Ephemeral::new(rules, Ranges::new(ports, netns));
    for (i, c) in conns.iter().enumerate() {
        match c.state {
            TcpState::CloseWait => close_wait.visit(i, c, now),
            TcpState::TimeWait => time_wait.visit(i, c),
            state => lingering.visit(i, c, state, now),
        }
        ephemeral.visit(i, c);
    }

    let mut alerts = Vec::new();
    close_wait.alerts(conns, netns, now, history, rules.growth_window, &mut alerts);
    lingering.alerts(&mut alerts);
    time_wait.alerts(conns, netns, &mut alerts);
    ephemeral.alerts(conns, netns, &mut alerts);
    alerts.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(b.count.cmp(&a.count))
            .then(a.message.cmp(&b.message))
    });
    alerts
}

/// Where namespace `ns` is for an alert's text (" in netns blue") and its name for the
/// alert's `netns`; nothing for the host's namespace or one `netns` does not know (a poll
/// of one namespace), so a host without containers reads as it always did.
fn place_of(netns: &NetnsTable, ns: NetnsId) -> (String, Option<Arc<str>>) {
    // With one namespace read there is nowhere else it could be: lingertop's own, even when
    // that is not the host's (run in a container, or under `unshare -n`).
    if netns.len() <= 1 {
        return (String::new(), None);
    }
    match netns.get(ns).filter(|n| n.kind != NetnsKind::Host) {
        Some(n) => (format!(" in {}", n.place()), Some(n.name.clone())),
        None => (String::new(), None),
    }
}

/// The severity a count reaches, if any (a threshold of 0 counts as 1).
fn severity_of(n: u32, warning: u32, critical: u32) -> Option<Severity> {
    if n >= critical.max(1) {
        Some(Severity::Critical)
    } else if n >= warning.max(1) {
        Some(Severity::Warning)
    } else {
        None
    }
}
