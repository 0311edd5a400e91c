//! TIME_WAIT building up: this host closes first, and the kernel keeps each 4-tuple for
//! 2*MSL. Alerts on each network namespace's total (every namespace has its own TIME_WAIT
//! table and ephemeral ports) and on the count toward one remote endpoint from one namespace.

use std::net::SocketAddr;

use rustc_hash::FxHashMap;

use super::frequent::frequent;
use super::{Alert, CountRule, RuleId, Rules, Severity, place_of, severity_of};
use crate::model::connection::Connection;
use crate::model::netns::{NetnsId, NetnsTable};

/// The TIME_WAIT connections per namespace, and beside each its (namespace, remote) as a key.
pub(super) struct TimeWaits<'r> {
    total: &'r CountRule,
    per_remote: &'r CountRule,
    /// Per namespace, in the order first met; few namespaces, so a list beats a map.
    by_ns: Vec<(NetnsId, Vec<usize>)>,
    /// Every member, in visit order, for the per-remote keys.
    members: Vec<usize>,
    remotes: Vec<u128>,
    endpoints: FxHashMap<SocketAddr, u32>,
}

impl<'r> TimeWaits<'r> {
    pub(super) fn new(rules: &'r Rules) -> Self {
        TimeWaits {
            total: &rules.time_wait_total,
            per_remote: &rules.time_wait_per_remote,
            by_ns: Vec::new(),
            members: Vec::new(),
            remotes: Vec::new(),
            endpoints: FxHashMap::default(),
        }
    }

    /// Takes connection `i`, in TIME_WAIT.
    pub(super) fn visit(&mut self, i: usize, c: &Connection) {
        let ns = c.netns();
        if self.total.enabled {
            // A namespace's connections come together from the collector: the last list
            // is nearly always the one.
            match self.by_ns.iter_mut().rev().find(|(n, _)| *n == ns) {
                Some((_, list)) => list.push(i),
                None => self.by_ns.push((ns, vec![i])),
            }
        }
        if self.per_remote.enabled {
            self.members.push(i);
            let remote = endpoint_key(&c.remote(), &mut self.endpoints);
            self.remotes
                .push((u128::from(ns) << 64) | u128::from(remote));
        }
    }

    /// One total alert per namespace at a threshold, then one per (namespace, remote);
    /// `netns` names the namespace where it is not the host's ("in netns blue").
    pub(super) fn alerts(self, conns: &[Connection], netns: &NetnsTable, alerts: &mut Vec<Alert>) {
        let (total, per) = (self.total, self.per_remote);
        // TIME_WAIT toward one remote: only remotes at the lower threshold are listed.
        let mut per_remote = Vec::new();
        if per.enabled {
            let min = per.warning.max(1).min(per.critical.max(1));
            for (_, at) in frequent(&self.remotes, min as usize) {
                let idx: Vec<usize> = at.into_iter().map(|p| self.members[p]).collect();
                let n = u32::try_from(idx.len()).unwrap_or(u32::MAX);
                if let Some(sev) = severity_of(n, per.warning, per.critical) {
                    let first = &conns[idx[0]];
                    let remote = first.remote();
                    let (in_place, place) = place_of(netns, first.netns());
                    let msg = format!("{n} TIME_WAIT toward {remote}{in_place}");
                    let mut a = Alert::new(RuleId::TimeWaitRemote, sev, msg, idx);
                    a.remote = Some(remote);
                    a.netns = place;
                    per_remote.push(a);
                }
            }
        }
        if total.enabled {
            for (ns, members) in self.by_ns {
                let n = u32::try_from(members.len()).unwrap_or(u32::MAX);
                let Some(sev) = severity_of(n, total.warning, total.critical) else {
                    continue;
                };
                let limit = if sev == Severity::Critical {
                    total.critical
                } else {
                    total.warning
                };
                let (in_place, place) = place_of(netns, ns);
                let place_words = if place.is_some() {
                    in_place.trim_start().to_string()
                } else {
                    "on this host".to_string()
                };
                let msg = format!(
                    "{n} TIME_WAIT {place_words} ({} at {limit}): this host closes first; many toward one destination exhaust ephemeral ports",
                    sev.name()
                );
                let mut a = Alert::new(RuleId::TimeWaitBuildup, sev, msg, members);
                a.netns = place;
                alerts.push(a);
            }
        }
        alerts.extend(per_remote);
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
