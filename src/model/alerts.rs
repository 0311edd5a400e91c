//! Buildup detection: rules over a snapshot (and the tracker's history) that say when
//! CLOSE_WAIT, TIME_WAIT or the other close states pile up or linger, in words a person acts on.

use std::collections::VecDeque;
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustc_hash::FxHashMap;
use serde::Serialize;

use super::connection::{Connection, PortRange};
use super::growth::growth_span;
use super::state::TcpState;
use super::tracker::Sample;

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
}

impl RuleId {
    /// Every rule, so exporters can show a zero for the rules that are quiet.
    pub const ALL: [RuleId; 8] = [
        RuleId::CloseWaitLingering,
        RuleId::TimeWaitBuildup,
        RuleId::TimeWaitRemote,
        RuleId::PortPressure,
        RuleId::FinWait1Lingering,
        RuleId::FinWait2Lingering,
        RuleId::LastAckLingering,
        RuleId::ClosingLingering,
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
        }
    }
}

/// Connections lingering in one state: alert when at least `warning` (or `critical`)
/// connections have been in `state` for `min_age` or longer.
#[derive(Clone, Debug, PartialEq)]
pub struct LingerRule {
    pub enabled: bool,
    pub min_age: Duration,
    pub warning: u32,
    pub critical: u32,
}

/// Count thresholds: alert when a count reaches `warning` (or `critical`).
#[derive(Clone, Debug, PartialEq)]
pub struct CountRule {
    pub enabled: bool,
    pub warning: u32,
    pub critical: u32,
}

/// Ratio thresholds in `0.0..=1.0`.
#[derive(Clone, Debug, PartialEq)]
pub struct RatioRule {
    pub enabled: bool,
    pub warning: f64,
    pub critical: f64,
}

/// Every rule's thresholds; `Default` is the shipped configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Rules {
    /// Window over which CLOSE_WAIT growth per process is measured.
    pub growth_window: Duration,
    pub close_wait: LingerRule,
    pub time_wait_total: CountRule,
    pub time_wait_per_remote: CountRule,
    pub port_pressure: RatioRule,
    pub fin_wait_1: LingerRule,
    pub fin_wait_2: LingerRule,
    pub last_ack: LingerRule,
    pub closing: LingerRule,
}

impl Default for Rules {
    fn default() -> Self {
        let linger = |secs, warning, critical| LingerRule {
            enabled: true,
            min_age: Duration::from_secs(secs),
            warning,
            critical,
        };
        Rules {
            growth_window: Duration::from_secs(60),
            close_wait: linger(30, 1, 100),
            time_wait_total: CountRule {
                enabled: true,
                warning: 10_000,
                critical: 50_000,
            },
            time_wait_per_remote: CountRule {
                enabled: true,
                warning: 2_000,
                critical: 10_000,
            },
            port_pressure: RatioRule {
                enabled: true,
                warning: 0.5,
                critical: 0.8,
            },
            fin_wait_1: linger(30, 10, 500),
            fin_wait_2: linger(60, 10, 500),
            last_ack: linger(30, 10, 500),
            closing: linger(30, 10, 500),
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
        }
    }
}

/// Ephemeral ports used toward one destination from one local address.
#[derive(Clone, Debug, PartialEq)]
pub struct Pressure {
    pub local_ip: IpAddr,
    pub remote: SocketAddr,
    /// Connections (any non-LISTEN state) whose local port is in the ephemeral range.
    pub in_use: u32,
    pub time_wait: u32,
    /// `in_use` over the size of the ephemeral range.
    pub ratio: f64,
    pub connections: Vec<usize>,
}

/// Ephemeral-port use per (local IP -> remote IP:port), highest first. Linux lets the same
/// local port serve different destinations, so the range runs out per destination.
pub fn port_pressure(conns: &[Connection], range: PortRange) -> Vec<Pressure> {
    pressure_of(conns, 0..conns.len(), range)
}

/// [`port_pressure`] over only the connections at `indices` (indices into `conns`).
pub fn pressure_of(
    conns: &[Connection],
    indices: impl IntoIterator<Item = usize>,
    range: PortRange,
) -> Vec<Pressure> {
    let groups = pair_groups(conns, indices, range);
    let size = f64::from(range.len().max(1));
    let mut out: Vec<Pressure> = groups
        .iter()
        .map(|members| {
            let c = &conns[members[0]];
            let in_use = u32::try_from(members.len()).unwrap_or(u32::MAX);
            Pressure {
                local_ip: c.local().ip(),
                remote: c.remote(),
                in_use,
                time_wait: time_waits(conns, members),
                ratio: f64::from(in_use) / size,
                connections: members.to_vec(),
            }
        })
        .collect();
    out.sort_by(by_use);
    out
}

/// Highest use first; then by destination and local address, so ties have one order.
fn by_use(a: &Pressure, b: &Pressure) -> std::cmp::Ordering {
    b.in_use
        .cmp(&a.in_use)
        .then(a.remote.cmp(&b.remote))
        .then(a.local_ip.cmp(&b.local_ip))
}

fn time_waits(conns: &[Connection], members: &[usize]) -> u32 {
    let n = members
        .iter()
        .filter(|&&i| conns[i].state == TcpState::TimeWait)
        .count();
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Whether a connection counts toward port pressure: it holds a local ephemeral port.
fn holds_ephemeral_port(c: &Connection, range: PortRange) -> bool {
    c.state != TcpState::Listen && range.contains(c.local().port())
}

/// The connections at `indices` that hold an ephemeral port, grouped per (local IP ->
/// remote): one list of indices into `conns` per group, in the order of `indices`.
///
/// Grouped by sorting one packed integer per connection rather than through a hash map:
/// with tens of thousands of groups (many local addresses) a map's random accesses cost
/// several times the sort.
pub(crate) fn pair_groups(
    conns: &[Connection],
    indices: impl IntoIterator<Item = usize>,
    range: PortRange,
) -> PairGroups {
    let mut others = FxHashMap::default();
    let mut members: Vec<usize> = Vec::new();
    let mut keys: Vec<u128> = Vec::new();
    for i in indices {
        let c = &conns[i];
        if holds_ephemeral_port(c, range) {
            // The position in `members` below the key (fewer than 2^32 sockets on a host):
            // ties sort in the order met, and the key needs no pair with a separate index.
            keys.push((pair_key(c, &mut others) << 32) | members.len() as u128);
            members.push(i);
        }
    }
    keys.sort_unstable();
    let mut sorted = Vec::with_capacity(members.len());
    let mut ends = Vec::new();
    for (n, &k) in keys.iter().enumerate() {
        if n > 0 && k >> 32 != keys[n - 1] >> 32 {
            ends.push(n);
        }
        sorted.push(members[(k & u128::from(u32::MAX)) as usize]);
    }
    if !sorted.is_empty() {
        ends.push(sorted.len());
    }
    PairGroups {
        members: sorted,
        ends,
    }
}

/// Groups of connections as one list: group `g` is `members[ends[g - 1]..ends[g]]`.
pub(crate) struct PairGroups {
    members: Vec<usize>,
    ends: Vec<usize>,
}

impl PairGroups {
    /// Each group's connections (indices into the slice grouped), none empty.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &[usize]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .map(|(a, b)| &self.members[a..b])
    }
}

/// Keys at or above bit 80 stand for pairs numbered through a map, not packed.
const PAIR_NUMBERED: u128 = 1 << 80;

/// (local IP, remote endpoint) of a connection as an integer below 2^81, equal exactly when
/// the pairs are: IPv4 pairs packed (local IP, remote IP, remote port), other pairs
/// numbered through `others` (IPv6 endpoints also compare flow and scope ids).
fn pair_key(c: &Connection, others: &mut FxHashMap<(IpAddr, SocketAddr), u32>) -> u128 {
    if let (SocketAddr::V4(l), SocketAddr::V4(r)) = (c.local(), c.remote()) {
        (u128::from(l.ip().to_bits()) << 48)
            | (u128::from(r.ip().to_bits()) << 16)
            | u128::from(r.port())
    } else {
        let next = u32::try_from(others.len()).unwrap_or(u32::MAX);
        PAIR_NUMBERED | u128::from(*others.entry((c.local().ip(), c.remote())).or_insert(next))
    }
}

/// A remote endpoint as an integer, equal exactly when the endpoints are: IPv4 packed
/// below 2^48, others numbered through `others` above it.
pub(crate) fn endpoint_key(a: &SocketAddr, others: &mut FxHashMap<SocketAddr, u32>) -> u64 {
    match a {
        SocketAddr::V4(a) => (u64::from(a.ip().to_bits()) << 16) | u64::from(a.port()),
        SocketAddr::V6(_) => {
            let next = u32::try_from(others.len()).unwrap_or(u32::MAX);
            (1 << 48) | u64::from(*others.entry(*a).or_insert(next))
        }
    }
}

/// The keys that occur at least `min` times in `keys`, each with the positions it occurs
/// at (ascending), in the order first met.
///
/// Only `keys.len() / min` keys can qualify, and the Misra-Gries summary with that many
/// counters keeps every key occurring more than `len / (counters + 1)` times; so one pass
/// with a small map finds the candidates and a second counts them exactly, however many
/// distinct keys there are (100k TIME_WAIT toward 100k client ports cost no 100k-entry map).
fn frequent<K: Copy + Hash + Eq>(keys: &[K], min: usize) -> Vec<(K, Vec<usize>)> {
    let min = min.max(1);
    let slots = keys.len() / min;
    if slots == 0 {
        return Vec::new();
    }
    // Few counters (the usual thresholds) live in a short list, searched faster than hashed.
    let candidates: Vec<K> = if slots <= SHORT {
        let mut counters: Vec<(K, usize)> = Vec::with_capacity(slots);
        for &k in keys {
            if let Some(c) = counters.iter_mut().find(|c| c.0 == k) {
                c.1 += 1;
            } else if counters.len() < slots {
                counters.push((k, 1));
            } else {
                counters.retain_mut(|c| {
                    c.1 -= 1;
                    c.1 > 0
                });
            }
        }
        counters.into_iter().map(|c| c.0).collect()
    } else {
        let mut counters: FxHashMap<K, usize> = FxHashMap::default();
        for &k in keys {
            if let Some(n) = counters.get_mut(&k) {
                *n += 1;
            } else if counters.len() < slots {
                counters.insert(k, 1);
            } else {
                counters.retain(|_, n| {
                    *n -= 1;
                    *n > 0
                });
            }
        }
        counters.into_keys().collect()
    };
    // Count the candidates exactly, each numbered when first met.
    let mut found: Vec<(K, Vec<usize>)> = Vec::new();
    if candidates.len() <= SHORT {
        let mut slot_of: Vec<(K, usize)> =
            candidates.into_iter().map(|k| (k, usize::MAX)).collect();
        for (pos, k) in keys.iter().enumerate() {
            if let Some(c) = slot_of.iter_mut().find(|c| c.0 == *k) {
                if c.1 == usize::MAX {
                    c.1 = found.len();
                    found.push((*k, Vec::new()));
                }
                found[c.1].1.push(pos);
            }
        }
    } else {
        let mut slot_of: FxHashMap<K, usize> =
            candidates.into_iter().map(|k| (k, usize::MAX)).collect();
        for (pos, k) in keys.iter().enumerate() {
            if let Some(s) = slot_of.get_mut(k) {
                if *s == usize::MAX {
                    *s = found.len();
                    found.push((*k, Vec::new()));
                }
                found[*s].1.push(pos);
            }
        }
    }
    found.retain(|(_, at)| at.len() >= min);
    found
}

/// Up to this many counters, [`frequent`] keeps them in a list rather than a map.
const SHORT: usize = 16;

fn severity_of(n: u32, warning: u32, critical: u32) -> Option<Severity> {
    if n >= critical.max(1) {
        Some(Severity::Critical)
    } else if n >= warning.max(1) {
        Some(Severity::Warning)
    } else {
        None
    }
}

/// `30 s`, `2 min`, `1 h 5 min`: short and readable.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s < 120 {
        if s == 0 && d.as_millis() > 0 {
            return format!("{} ms", d.as_millis());
        }
        format!("{s} s")
    } else if s < 7200 {
        format!("{} min", s / 60)
    } else {
        format!("{} h {} min", s / 3600, (s % 3600) / 60)
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
    let linger_rules = [
        (
            &rules.fin_wait_1,
            TcpState::FinWait1,
            RuleId::FinWait1Lingering,
            "our FIN is not acknowledged, often data queued to a peer that does not read",
        ),
        (
            &rules.fin_wait_2,
            TcpState::FinWait2,
            RuleId::FinWait2Lingering,
            "we closed, the peer never sent its FIN",
        ),
        (
            &rules.last_ack,
            TcpState::LastAck,
            RuleId::LastAckLingering,
            "our FIN is sent, the peer's last ACK never came",
        ),
        (
            &rules.closing,
            TcpState::Closing,
            RuleId::ClosingLingering,
            "both sides closed at once and the final ACK is missing",
        ),
    ];
    let cw = &rules.close_wait;
    let (tw_total, tw_per) = (&rules.time_wait_total, &rules.time_wait_per_remote);
    let want_tw = tw_total.enabled || tw_per.enabled;

    // Per owning process; connections without an owner are grouped together.
    let mut close_wait: FxHashMap<Option<u32>, Vec<usize>> = FxHashMap::default();
    let mut lingering: [Vec<usize>; 4] = Default::default();
    // TIME_WAIT connections, and beside each its remote as a key.
    let mut tw: Vec<usize> = Vec::new();
    let mut tw_remote: Vec<u64> = Vec::new();
    let mut endpoints = FxHashMap::default();
    // Connections holding an ephemeral port, and beside each its (local IP, remote) key.
    let pressure = rules.port_pressure.enabled;
    let mut ephemeral: Vec<usize> = Vec::new();
    let mut pair: Vec<u128> = Vec::new();
    let mut pairs = FxHashMap::default();

    for (i, c) in conns.iter().enumerate() {
        match c.state {
            TcpState::CloseWait => {
                if cw.enabled && c.state_age(now).is_some_and(|a| a >= cw.min_age) {
                    close_wait
                        .entry(c.owner().map(|o| o.pid))
                        .or_default()
                        .push(i);
                }
            }
            TcpState::TimeWait => {
                if want_tw {
                    tw.push(i);
                }
                if tw_per.enabled {
                    tw_remote.push(endpoint_key(&c.remote(), &mut endpoints));
                }
            }
            state => {
                if let Some(k) = linger_rules.iter().position(|r| r.1 == state) {
                    let rule = linger_rules[k].0;
                    if rule.enabled && c.state_age(now).is_some_and(|a| a >= rule.min_age) {
                        lingering[k].push(i);
                    }
                }
            }
        }
        if pressure && holds_ephemeral_port(c, ports) {
            ephemeral.push(i);
            pair.push(pair_key(c, &mut pairs));
        }
    }

    let mut alerts = Vec::new();
    if cw.enabled {
        close_wait_alerts(conns, now, close_wait, history, rules, &mut alerts);
    }
    for ((rule, state, id, why), idx) in linger_rules.into_iter().zip(lingering) {
        if !rule.enabled {
            continue;
        }
        let n = u32::try_from(idx.len()).unwrap_or(u32::MAX);
        if let Some(sev) = severity_of(n, rule.warning, rule.critical) {
            let msg = format!(
                "{n} {} for > {}: {why}",
                state.name(),
                human_duration(rule.min_age)
            );
            alerts.push(Alert::new(id, sev, msg, idx));
        }
    }

    // TIME_WAIT toward one remote: only remotes at the lower threshold are listed.
    let mut per_remote = Vec::new();
    if tw_per.enabled {
        let min = tw_per.warning.max(1).min(tw_per.critical.max(1));
        for (_, at) in frequent(&tw_remote, min as usize) {
            let idx: Vec<usize> = at.into_iter().map(|p| tw[p]).collect();
            let n = u32::try_from(idx.len()).unwrap_or(u32::MAX);
            if let Some(sev) = severity_of(n, tw_per.warning, tw_per.critical) {
                let remote = conns[idx[0]].remote();
                let msg = format!("{n} TIME_WAIT toward {remote}");
                let mut a = Alert::new(RuleId::TimeWaitRemote, sev, msg, idx);
                a.remote = Some(remote);
                per_remote.push(a);
            }
        }
    }
    if tw_total.enabled {
        let n = u32::try_from(tw.len()).unwrap_or(u32::MAX);
        if let Some(sev) = severity_of(n, tw_total.warning, tw_total.critical) {
            let limit = if sev == Severity::Critical {
                tw_total.critical
            } else {
                tw_total.warning
            };
            let msg = format!(
                "{n} TIME_WAIT on this host ({} at {limit}): this host closes first; many toward one destination exhaust ephemeral ports",
                sev.name()
            );
            alerts.push(Alert::new(RuleId::TimeWaitBuildup, sev, msg, tw));
        }
    }
    alerts.extend(per_remote);

    if pressure {
        pressure_alerts(conns, &ephemeral, &pair, ports, rules, &mut alerts);
    }
    alerts.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(b.count.cmp(&a.count))
            .then(a.message.cmp(&b.message))
    });
    alerts
}

fn close_wait_alerts(
    conns: &[Connection],
    now: SystemTime,
    by_pid: FxHashMap<Option<u32>, Vec<usize>>,
    history: &VecDeque<Sample>,
    rules: &Rules,
    alerts: &mut Vec<Alert>,
) {
    let rule = &rules.close_wait;
    // The one growth definition, shared with the dashboard's CW/MIN.
    let span = growth_span(history, now, rules.growth_window);
    for (pid, idx) in by_pid {
        let n = u32::try_from(idx.len()).unwrap_or(u32::MAX);
        let Some(sev) = severity_of(n, rule.warning, rule.critical) else {
            continue;
        };
        let name = conns[idx[0]].owner().and_then(|o| o.name.clone());
        let growth = pid.zip(span).map(|(pid, span)| span.per_min(pid));
        let who = match (pid, &name) {
            (Some(pid), Some(name)) => format!("{name} (pid {pid})"),
            (Some(pid), None) => format!("pid {pid}"),
            (None, _) => "an unknown process (no owner visible; run as root)".to_string(),
        };
        let mut msg = format!(
            "{n} CLOSE_WAIT held by {who} for > {}",
            human_duration(rule.min_age)
        );
        match (growth, span) {
            (Some(g), _) => msg.push_str(&format!(", {}", rate(g))),
            // Ages can come from the kernel on one poll; a growth needs two.
            (None, None) if history.len() <= 1 => msg.push_str(", growth unknown (one poll)"),
            (None, None) => msg.push_str(", growth unknown (no earlier poll in the growth window)"),
            (None, Some(_)) => {}
        }
        msg.push_str(": the peer closed and the process never called close()");
        let mut a = Alert::new(RuleId::CloseWaitLingering, sev, msg, idx);
        a.pid = pid;
        a.process = name;
        a.growth_per_min = growth;
        alerts.push(a);
    }
}

/// Port pressure alerts: `ephemeral` are the connections holding an ephemeral port,
/// `pair` their (local IP, remote) keys.
fn pressure_alerts(
    conns: &[Connection],
    ephemeral: &[usize],
    pair: &[u128],
    ports: PortRange,
    rules: &Rules,
    alerts: &mut Vec<Alert>,
) {
    let rule = &rules.port_pressure;
    let size = f64::from(ports.len().max(1));
    // The fewest connections that can reach the lower threshold, rounded down (and one
    // less) so float rounding drops no group; each group is then checked exactly.
    let lower = rule.warning.min(rule.critical);
    let min = if lower > 0.0 {
        ((lower * size).floor() as usize).saturating_sub(1)
    } else {
        1
    };
    let mut hot: Vec<(Severity, Pressure)> = Vec::new();
    for (_, at) in frequent(pair, min) {
        let members: Vec<usize> = at.into_iter().map(|p| ephemeral[p]).collect();
        let in_use = u32::try_from(members.len()).unwrap_or(u32::MAX);
        let ratio = f64::from(in_use) / size;
        let sev = if ratio >= rule.critical {
            Severity::Critical
        } else if ratio >= rule.warning {
            Severity::Warning
        } else {
            continue;
        };
        let c = &conns[members[0]];
        let p = Pressure {
            local_ip: c.local().ip(),
            remote: c.remote(),
            in_use,
            time_wait: time_waits(conns, &members),
            ratio,
            connections: members,
        };
        hot.push((sev, p));
    }
    hot.sort_by(|a, b| by_use(&a.1, &b.1));
    for (sev, p) in hot {
        let msg = format!(
            "{:.0}% of ephemeral ports in use from {} to {} ({} of {}, {} in TIME_WAIT)",
            p.ratio * 100.0,
            p.local_ip,
            p.remote,
            p.in_use,
            ports.len(),
            p.time_wait
        );
        let mut a = Alert::new(RuleId::PortPressure, sev, msg, p.connections);
        a.local_ip = Some(p.local_ip);
        a.remote = Some(p.remote);
        a.ratio = Some(p.ratio);
        alerts.push(a);
    }
}

/// `+40/min`, `-3/min`, `steady`.
fn rate(per_min: f64) -> String {
    let r = per_min.round();
    if r == 0.0 {
        "steady".to_string()
    } else {
        format!("{r:+}/min")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::connection::{Owner, Snapshot};
    use crate::model::tracker::Tracker;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
    }

    const RANGE: PortRange = PortRange {
        low: 32768,
        high: 60999,
    };

    fn owned(local: String, remote: &str, state: TcpState, inode: u32, pid: u32) -> Connection {
        let mut c = Connection::new(local.parse().unwrap(), remote.parse().unwrap(), state);
        c.inode = inode;
        c.owners = vec![Owner {
            pid,
            name: Some("java".into()),
        }]
        .into();
        c
    }

    fn snap(t: u64, connections: Vec<Connection>) -> Snapshot {
        Snapshot::fixture(at(t), connections)
    }

    /// `n` CLOSE_WAIT connections held by pid 3121.
    fn close_waits(n: u32) -> Vec<Connection> {
        (0..n)
            .map(|i| {
                owned(
                    format!("127.0.0.1:{}", 8000),
                    &format!("127.0.0.1:{}", 40000 + i),
                    TcpState::CloseWait,
                    100 + i,
                    3121,
                )
            })
            .collect()
    }

    fn run(tracker: &mut Tracker, t: u64, conns: Vec<Connection>, rules: &Rules) -> Vec<Alert> {
        let mut s = snap(t, conns);
        tracker.observe(&mut s);
        let alerts = detect(&s.connections, s.taken_at, RANGE, tracker.history(), rules);
        tracker.keep(std::sync::Arc::new(s));
        alerts
    }

    #[test]
    fn close_wait_fires_only_past_its_age_and_names_process_and_growth() {
        let rules = Rules::default();
        let mut tr = Tracker::new(100);
        assert!(
            run(&mut tr, 0, close_waits(10), &rules).is_empty(),
            "ages unknown"
        );
        assert!(
            run(&mut tr, 20, close_waits(30), &rules).is_empty(),
            "20 s < 30 s"
        );
        let alerts = run(&mut tr, 40, close_waits(50), &rules);
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        let a = &alerts[0];
        assert_eq!(a.rule, RuleId::CloseWaitLingering);
        assert_eq!(a.severity, Severity::Warning);
        // Only the 10 seen since t=0 are older than 30 s.
        assert_eq!(a.count, 10);
        assert_eq!(a.pid, Some(3121));
        // 10 -> 50 over 40 s is +60/min.
        assert_eq!(a.growth_per_min, Some(60.0));
        assert!(
            a.message
                .starts_with("10 CLOSE_WAIT held by java (pid 3121) for > 30 s, +60/min"),
            "{}",
            a.message
        );
    }

    #[test]
    fn a_kernel_age_fires_on_the_first_poll_and_the_growth_says_it_needs_two() {
        let rules = Rules::default();
        let mut tr = Tracker::new(100);
        let mut conns = close_waits(3);
        // The kernel says two of them have waited 45 s (tcp_info's last ACK), one 5 s.
        for (c, secs) in conns.iter_mut().zip([45, 45, 5]) {
            c.tracking = Some(crate::model::Tracking::from_kernel(
                at(0),
                Duration::from_secs(secs),
            ));
        }
        let alerts = run(&mut tr, 0, conns, &rules);
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        let a = &alerts[0];
        assert_eq!((a.rule, a.count), (RuleId::CloseWaitLingering, 2));
        assert_eq!(a.growth_per_min, None);
        assert!(
            a.message.starts_with(
                "2 CLOSE_WAIT held by java (pid 3121) for > 30 s, growth unknown (one poll)"
            ),
            "{}",
            a.message
        );
    }

    #[test]
    fn close_wait_turns_critical_at_its_threshold() {
        let mut rules = Rules::default();
        rules.close_wait.critical = 5;
        rules.close_wait.min_age = Duration::from_secs(1);
        let mut tr = Tracker::new(100);
        run(&mut tr, 0, close_waits(5), &rules);
        let alerts = run(&mut tr, 2, close_waits(5), &rules);
        assert_eq!(alerts[0].severity, Severity::Critical);
        rules.close_wait.enabled = false;
        assert!(run(&mut tr, 3, close_waits(5), &rules).is_empty());
    }

    #[test]
    fn time_wait_total_and_per_remote_and_port_pressure() {
        let mut rules = Rules::default();
        rules.time_wait_total.warning = 100;
        rules.time_wait_per_remote.warning = 80;
        rules.port_pressure.warning = 0.003; // 90 of 28232 ports is 0.32 %
        let mut conns = Vec::new();
        for i in 0..90u16 {
            let mut c = Connection::new(
                format!("127.0.0.2:{}", 33000 + i).parse().unwrap(),
                "127.0.0.1:8080".parse().unwrap(),
                TcpState::TimeWait,
            );
            c.inode = 0;
            conns.push(c);
        }
        for i in 0..20u16 {
            conns.push(Connection::new(
                format!("127.0.0.3:{}", 33000 + i).parse().unwrap(),
                "127.0.0.1:9090".parse().unwrap(),
                TcpState::TimeWait,
            ));
        }
        let mut tr = Tracker::new(10);
        let alerts = run(&mut tr, 0, conns, &rules);
        let rules_fired: Vec<RuleId> = alerts.iter().map(|a| a.rule).collect();
        assert_eq!(
            rules_fired,
            vec![
                RuleId::TimeWaitBuildup,
                RuleId::PortPressure,
                RuleId::TimeWaitRemote
            ],
            "{alerts:?}"
        );
        assert_eq!(alerts[0].count, 110);
        let pressure = &alerts[1];
        assert_eq!(pressure.count, 90);
        assert_eq!(pressure.remote, Some("127.0.0.1:8080".parse().unwrap()));
        assert!((pressure.ratio.unwrap() - 90.0 / 28232.0).abs() < 1e-9);
        assert!(
            pressure
                .message
                .contains("from 127.0.0.2 to 127.0.0.1:8080"),
            "{}",
            pressure.message
        );
        assert_eq!(alerts[2].remote, Some("127.0.0.1:8080".parse().unwrap()));
    }

    #[test]
    fn fin_wait_2_lingering_uses_its_own_threshold() {
        let mut rules = Rules::default();
        rules.fin_wait_2.warning = 2;
        rules.fin_wait_2.min_age = Duration::from_secs(5);
        let fw2 = |n: u32| -> Vec<Connection> {
            (0..n)
                .map(|i| {
                    owned(
                        format!("127.0.0.1:{}", 40000 + i),
                        "127.0.0.1:80",
                        TcpState::FinWait2,
                        500 + i,
                        9,
                    )
                })
                .collect()
        };
        let mut tr = Tracker::new(10);
        run(&mut tr, 0, fw2(1), &rules);
        assert!(run(&mut tr, 10, fw2(1), &rules).is_empty(), "1 < warning 2");
        let mut tr = Tracker::new(10);
        run(&mut tr, 0, fw2(2), &rules);
        let alerts = run(&mut tr, 10, fw2(2), &rules);
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].rule, RuleId::FinWait2Lingering);
        assert!(
            alerts[0].message.starts_with("2 FIN_WAIT_2 for > 5 s"),
            "{}",
            alerts[0].message
        );
    }

    #[test]
    fn pressure_ignores_listeners_and_server_ports() {
        let conns = vec![
            Connection::new(
                "0.0.0.0:40000".parse().unwrap(),
                "0.0.0.0:0".parse().unwrap(),
                TcpState::Listen,
            ),
            Connection::new(
                "127.0.0.1:80".parse().unwrap(),
                "127.0.0.1:40001".parse().unwrap(),
                TcpState::TimeWait,
            ),
            Connection::new(
                "127.0.0.1:40001".parse().unwrap(),
                "127.0.0.1:80".parse().unwrap(),
                TcpState::Established,
            ),
        ];
        let p = port_pressure(&conns, RANGE);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].connections, vec![2]);
    }
}
