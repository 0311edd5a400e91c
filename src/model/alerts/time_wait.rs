//! TIME_WAIT building up: this host closes first, and the kernel keeps each 4-tuple for
//! 2*MSL. Alerts on the host's total and on the count toward one remote endpoint.

use std::net::SocketAddr;

use rustc_hash::FxHashMap;

use super::frequent::frequent;
use super::{Alert, CountRule, RuleId, Rules, Severity, severity_of};
use crate::model::connection::Connection;

/// The TIME_WAIT connections, and beside each its remote as a key.
pub(super) struct TimeWaits<'r> {
    total: &'r CountRule,
    per_remote: &'r CountRule,
    members: Vec<usize>,
    remotes: Vec<u64>,
    endpoints: FxHashMap<SocketAddr, u32>,
}

impl<'r> TimeWaits<'r> {
    pub(super) fn new(rules: &'r Rules) -> Self {
        TimeWaits {
            total: &rules.time_wait_total,
            per_remote: &rules.time_wait_per_remote,
            members: Vec::new(),
            remotes: Vec::new(),
            endpoints: FxHashMap::default(),
        }
    }

    /// Takes connection `i`, in TIME_WAIT.
    pub(super) fn visit(&mut self, i: usize, c: &Connection) {
        if self.total.enabled || self.per_remote.enabled {
            self.members.push(i);
        }
        if self.per_remote.enabled {
            self.remotes
                .push(endpoint_key(&c.remote(), &mut self.endpoints));
        }
    }

    /// The host's total alert, then one per remote at a threshold.
    pub(super) fn alerts(self, conns: &[Connection], alerts: &mut Vec<Alert>) {
        let (total, per) = (self.total, self.per_remote);
        // TIME_WAIT toward one remote: only remotes at the lower threshold are listed.
        let mut per_remote = Vec::new();
        if per.enabled {
            let min = per.warning.max(1).min(per.critical.max(1));
            for (_, at) in frequent(&self.remotes, min as usize) {
                let idx: Vec<usize> = at.into_iter().map(|p| self.members[p]).collect();
                let n = u32::try_from(idx.len()).unwrap_or(u32::MAX);
                if let Some(sev) = severity_of(n, per.warning, per.critical) {
                    let remote = conns[idx[0]].remote();
                    let msg = format!("{n} TIME_WAIT toward {remote}");
                    let mut a = Alert::new(RuleId::TimeWaitRemote, sev, msg, idx);
                    a.remote = Some(remote);
                    per_remote.push(a);
                }
            }
        }
        if total.enabled {
            let n = u32::try_from(self.members.len()).unwrap_or(u32::MAX);
            if let Some(sev) = severity_of(n, total.warning, total.critical) {
                let limit = if sev == Severity::Critical {
                    total.critical
                } else {
                    total.warning
                };
                let msg = format!(
                    "{n} TIME_WAIT on this host ({} at {limit}): this host closes first; many toward one destination exhaust ephemeral ports",
                    sev.name()
                );
                alerts.push(Alert::new(RuleId::TimeWaitBuildup, sev, msg, self.members));
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
