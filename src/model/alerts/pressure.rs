//! Ephemeral-port pressure: the ports in use toward one destination from one local address,
//! over the size of the ephemeral range (Linux lets one local port serve different
//! destinations, so the range runs out per destination). Each network namespace has its own
//! ports and its own range: a destination is one per namespace, and its ratio is over its
//! namespace's range.

use std::net::{IpAddr, SocketAddr};

use rustc_hash::FxHashMap;

use super::frequent::frequent;
use super::{Alert, RatioRule, RuleId, Rules, Severity, place_of};
use crate::model::connection::Connection;
use crate::model::netns::{NetnsId, NetnsTable, Ranges};
use crate::model::ports::PortRange;
use crate::model::state::TcpState;

/// Ephemeral ports used toward one destination from one local address.
#[derive(Clone, Debug, PartialEq)]
pub struct Pressure {
    /// The namespace whose ports they are.
    pub netns: NetnsId,
    pub local_ip: IpAddr,
    pub remote: SocketAddr,
    /// Connections (any non-LISTEN state) whose local port is in the ephemeral range.
    pub in_use: u32,
    pub time_wait: u32,
    /// `in_use` over the size of the namespace's ephemeral range.
    pub ratio: f64,
    /// The size of that range.
    pub range_size: u32,
    pub connections: Vec<usize>,
}

/// Ephemeral-port use per (namespace, local IP -> remote IP:port), highest first. Linux
/// lets the same local port serve different destinations, so the range runs out per
/// destination.
pub fn port_pressure(conns: &[Connection], ranges: Ranges<'_>) -> Vec<Pressure> {
    pressure_of(conns, 0..conns.len(), ranges)
}

/// The first `n` of [`port_pressure`] (what a report lists), the same values, without
/// grouping every connection by sorting it: while there are few destinations (the usual
/// case: a few local addresses toward a few services) each is counted in a small map, at a
/// fraction of the sort's cost, and only the connections of the `n` kept are listed. Past
/// [`FEW_DESTINATIONS`] the sort groups faster than the map's random accesses, and is used.
pub fn port_pressure_top(conns: &[Connection], ranges: Ranges<'_>, n: usize) -> Vec<Pressure> {
    let mut numbered = FxHashMap::default();
    // Per destination: its connections, those in TIME_WAIT, and its first connection.
    let mut counts: FxHashMap<u128, (u32, u32, usize)> = FxHashMap::default();
    for (i, c) in conns.iter().enumerate() {
        if !holds_ephemeral_port(c, ranges.of(c.netns())) {
            continue;
        }
        let key = destination_key(c, &mut numbered);
        let (in_use, time_wait, _) = counts.entry(key).or_insert((0, 0, i));
        *in_use += 1;
        *time_wait += u32::from(c.state == TcpState::TimeWait);
        if counts.len() > FEW_DESTINATIONS {
            let mut all = port_pressure(conns, ranges);
            all.truncate(n);
            return all;
        }
    }
    let mut top: Vec<(u128, Pressure)> = counts
        .into_iter()
        .map(|(key, (in_use, time_wait, first))| {
            let c = &conns[first];
            let range_size = ranges.of(c.netns()).len();
            let p = Pressure {
                netns: c.netns(),
                local_ip: c.local().ip(),
                remote: c.remote(),
                in_use,
                time_wait,
                ratio: f64::from(in_use) / f64::from(range_size.max(1)),
                range_size,
                connections: Vec::with_capacity(in_use as usize),
            };
            (key, p)
        })
        .collect();
    if top.len() > n {
        top.select_nth_unstable_by(n, |a, b| by_use(&a.1, &b.1));
        top.truncate(n);
    }
    top.sort_by(|a, b| by_use(&a.1, &b.1));
    if !top.is_empty() {
        for (i, c) in conns.iter().enumerate() {
            if holds_ephemeral_port(c, ranges.of(c.netns())) {
                let key = destination_key(c, &mut numbered);
                if let Some((_, p)) = top.iter_mut().find(|(k, _)| *k == key) {
                    p.connections.push(i);
                }
            }
        }
    }
    top.into_iter().map(|(_, p)| p).collect()
}

/// Destinations [`port_pressure_top`] counts in a map before it groups by sorting instead.
const FEW_DESTINATIONS: usize = 4096;

/// A connection's (namespace, local IP -> remote) as one integer: pair keys are below
/// 2^81, so the namespace id fits above them.
fn destination_key(c: &Connection, numbered: &mut FxHashMap<(IpAddr, SocketAddr), u32>) -> u128 {
    (u128::from(c.netns()) << 81) | pair_key(c, numbered)
}

/// [`port_pressure`] over only the connections at `indices` (indices into `conns`).
pub fn pressure_of(
    conns: &[Connection],
    indices: impl IntoIterator<Item = usize>,
    ranges: Ranges<'_>,
) -> Vec<Pressure> {
    let groups = pair_groups(conns, indices, ranges);
    let mut out: Vec<Pressure> = groups
        .iter()
        .map(|members| {
            let c = &conns[members[0]];
            let range_size = ranges.of(c.netns()).len();
            let in_use = u32::try_from(members.len()).unwrap_or(u32::MAX);
            Pressure {
                netns: c.netns(),
                local_ip: c.local().ip(),
                remote: c.remote(),
                in_use,
                time_wait: time_waits(conns, members),
                ratio: f64::from(in_use) / f64::from(range_size.max(1)),
                range_size,
                connections: members.to_vec(),
            }
        })
        .collect();
    out.sort_by(by_use);
    out
}

/// Highest share of its range first (ranges differ per namespace), then most ports; then by
/// destination, local address and namespace, so ties have one order.
fn by_use(a: &Pressure, b: &Pressure) -> std::cmp::Ordering {
    b.ratio
        .total_cmp(&a.ratio)
        .then(b.in_use.cmp(&a.in_use))
        .then(a.remote.cmp(&b.remote))
        .then(a.local_ip.cmp(&b.local_ip))
        .then(a.netns.cmp(&b.netns))
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

/// The connections at `indices` that hold an ephemeral port of their namespace's range,
/// grouped per (namespace, local IP -> remote): one list of indices into `conns` per group,
/// in the order of `indices`.
///
/// Grouped by sorting one packed integer per connection rather than through a hash map:
/// with tens of thousands of groups (many local addresses) a map's random accesses cost
/// several times the sort.
pub(crate) fn pair_groups(
    conns: &[Connection],
    indices: impl IntoIterator<Item = usize>,
    ranges: Ranges<'_>,
) -> PairGroups {
    let mut others = FxHashMap::default();
    let mut members: Vec<usize> = Vec::new();
    let mut keys: Vec<u128> = Vec::new();
    for i in indices {
        let c = &conns[i];
        if holds_ephemeral_port(c, ranges.of(c.netns())) {
            // The position in `members` in the low 31 bits (fewer than 2^31 sockets on a
            // host): ties sort in the order met, and the key needs no separate index. Above
            // it the pair key (below 2^81), and above that the namespace (16 bits): 128.
            let ns = u128::from(c.netns()) << (81 + INDEX_BITS);
            keys.push(ns | (pair_key(c, &mut others) << INDEX_BITS) | members.len() as u128);
            members.push(i);
        }
    }
    keys.sort_unstable();
    let mut sorted = Vec::with_capacity(members.len());
    let mut ends = Vec::new();
    for (n, &k) in keys.iter().enumerate() {
        if n > 0 && k >> INDEX_BITS != keys[n - 1] >> INDEX_BITS {
            ends.push(n);
        }
        sorted.push(members[(k & INDEX_MASK) as usize]);
    }
    if !sorted.is_empty() {
        ends.push(sorted.len());
    }
    PairGroups {
        members: sorted,
        ends,
    }
}

/// Bits of a [`pair_groups`] key that hold the connection's position.
const INDEX_BITS: u32 = 31;
const INDEX_MASK: u128 = (1 << INDEX_BITS) - 1;

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

/// The connections holding an ephemeral port, and beside each its (namespace, local IP,
/// remote) key: each namespace has its own ports, so the same pair in two namespaces is two
/// destinations.
pub(super) struct Ephemeral<'r> {
    rule: &'r RatioRule,
    ranges: Ranges<'r>,
    members: Vec<usize>,
    pairs: Vec<u128>,
    numbered: FxHashMap<(IpAddr, SocketAddr), u32>,
}

impl<'r> Ephemeral<'r> {
    pub(super) fn new(rules: &'r Rules, ranges: Ranges<'r>) -> Self {
        Ephemeral {
            rule: &rules.port_pressure,
            ranges,
            members: Vec::new(),
            pairs: Vec::new(),
            numbered: FxHashMap::default(),
        }
    }

    /// Takes connection `i`, in any state.
    pub(super) fn visit(&mut self, i: usize, c: &Connection) {
        if self.rule.enabled && holds_ephemeral_port(c, self.ranges.of(c.netns())) {
            self.members.push(i);
            self.pairs.push(destination_key(c, &mut self.numbered));
        }
    }

    /// One alert per destination at a threshold, highest use first; `netns` names the
    /// namespace where it is not the host's.
    pub(super) fn alerts(self, conns: &[Connection], netns: &NetnsTable, alerts: &mut Vec<Alert>) {
        let rule = self.rule;
        if !rule.enabled || self.members.is_empty() {
            return;
        }
        // The fewest connections that can reach the lower threshold in the smallest range
        // any of them has, rounded down (and one less) so float rounding drops no group;
        // each group is then checked exactly, over its own namespace's range.
        let smallest = self
            .members
            .iter()
            .map(|&i| self.ranges.of(conns[i].netns()).len())
            .min()
            .unwrap_or(1);
        let lower = rule.warning.min(rule.critical);
        let min = if lower > 0.0 {
            ((lower * f64::from(smallest.max(1))).floor() as usize).saturating_sub(1)
        } else {
            1
        };
        let mut hot: Vec<(Severity, Pressure)> = Vec::new();
        for (_, at) in frequent(&self.pairs, min) {
            let members: Vec<usize> = at.into_iter().map(|p| self.members[p]).collect();
            let c = &conns[members[0]];
            let range_size = self.ranges.of(c.netns()).len();
            let in_use = u32::try_from(members.len()).unwrap_or(u32::MAX);
            let ratio = f64::from(in_use) / f64::from(range_size.max(1));
            let sev = if ratio >= rule.critical {
                Severity::Critical
            } else if ratio >= rule.warning {
                Severity::Warning
            } else {
                continue;
            };
            let p = Pressure {
                netns: c.netns(),
                local_ip: c.local().ip(),
                remote: c.remote(),
                in_use,
                time_wait: time_waits(conns, &members),
                ratio,
                range_size,
                connections: members,
            };
            hot.push((sev, p));
        }
        hot.sort_by(|a, b| by_use(&a.1, &b.1));
        for (sev, p) in hot {
            let (in_place, place) = place_of(netns, conns[p.connections[0]].netns());
            let msg = format!(
                "{:.0}% of ephemeral ports in use from {} to {}{in_place} ({} of {}, {} in TIME_WAIT)",
                p.ratio * 100.0,
                p.local_ip,
                p.remote,
                p.in_use,
                p.range_size,
                p.time_wait
            );
            let mut a = Alert::new(RuleId::PortPressure, sev, msg, p.connections);
            a.local_ip = Some(p.local_ip);
            a.remote = Some(p.remote);
            a.ratio = Some(p.ratio);
            a.netns = place;
            alerts.push(a);
        }
    }
}
