//! The figures `/metrics` shows for one poll, computed once from the live loop's [`Update`]
//! and cut to the top N per breakdown, the rest summed into one `other` series.

use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustc_hash::FxHashMap;

use crate::live::Update;
use crate::model::alerts::port_pressure;
use crate::model::state::STATE_COUNT;
use crate::model::{AgeSource, Alert, ProcessInfo, RuleId, Severity, TcpState};

/// The `process` label of CLOSE_WAIT sockets no visible process holds.
pub const UNKNOWN_PROCESS: &str = "unknown";

/// The top N of a breakdown, largest first, and the sum of everything else.
#[derive(Clone, Debug, PartialEq)]
pub struct Ranked<K> {
    pub top: Vec<(K, u64)>,
    /// The sum of the entries outside the top N (0 when there are none).
    pub other: u64,
}

/// Keeps the `n` largest counts (ties broken by key, so the cut is stable between polls)
/// and sums the rest.
pub fn rank<K: Ord + Hash>(counts: FxHashMap<K, u64>, n: usize) -> Ranked<K> {
    let mut all: Vec<(K, u64)> = counts.into_iter().collect();
    all.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let other = all.iter().skip(n).map(|(_, v)| v).sum();
    all.truncate(n);
    Ranked { top: all, other }
}

/// A process holding CLOSE_WAIT sockets; `None` when no process is visible.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProcessKey(pub Option<(u32, Option<Arc<str>>)>);

/// Ephemeral ports used from one local address toward one destination.
#[derive(Clone, Debug, PartialEq)]
pub struct PortUse {
    pub local_ip: IpAddr,
    pub remote: SocketAddr,
    pub in_use: u64,
    /// `in_use` over the size of the ephemeral range.
    pub ratio: f64,
}

/// Everything `/metrics` shows, for one poll. Small: every breakdown is cut to top N.
#[derive(Clone, Debug, PartialEq)]
pub struct Exposition {
    pub taken_at: SystemTime,
    /// Polls that succeeded so far.
    pub polls: u64,
    /// Polls that failed so far.
    pub poll_errors: u64,
    pub poll_duration: Duration,
    pub process_info_partial: bool,
    /// Sockets per state (kernel order) and family (IPv4, IPv6).
    pub connections: [[u64; 2]; STATE_COUNT],
    pub close_wait_by_process: Ranked<ProcessKey>,
    pub time_wait_by_remote: Ranked<SocketAddr>,
    /// Sockets per state (kernel order) of the top N network namespaces by sockets, by
    /// name; the rest summed in `netns_other`.
    pub netns: Vec<(Arc<str>, [u64; STATE_COUNT])>,
    pub netns_other: [u64; STATE_COUNT],
    /// The top N destinations by ephemeral ports in use.
    pub ports_by_destination: Vec<PortUse>,
    /// Ephemeral ports in use toward every other destination.
    pub ports_other: u64,
    pub ephemeral_range_size: u32,
    /// The age of the oldest CLOSE_WAIT socket (a lower bound; 0 when there is none or no
    /// age is known yet).
    pub oldest_close_wait: Duration,
    /// How that age is known (`model::age`); `None` with no age.
    pub oldest_close_wait_from: Option<AgeSource>,
    /// Active alerts per rule ([`RuleId::ALL`] order) and severity (warning, critical).
    pub alerts: [[u64; 2]; RuleId::ALL.len()],
    /// When each state (kernel order) was last read from the kernel: the poll's time, but
    /// for the states a big table's live poll reads only every few polls (ESTABLISHED).
    pub state_read_at: [SystemTime; STATE_COUNT],
    /// Closes by kind and process, set by `serve` from its close source.
    pub closes: Option<Arc<crate::report::closes_metrics::ClosesExposition>>,
}

impl Exposition {
    /// Counts the close rules' alerts (judged beside the poll, from the closes) among the
    /// active ones.
    pub fn add_alerts(&mut self, list: &[Alert]) {
        count_alerts(&mut self.alerts, list);
    }

    /// Computes the exposition of `update`, keeping `top_n` series per breakdown.
    pub fn from_update(update: &Update, poll_errors: u64, top_n: usize) -> Self {
        let snap = &update.snapshot;
        let now = snap.taken_at;
        let mut connections = [[0u64; 2]; STATE_COUNT];
        let mut close_wait: FxHashMap<ProcessKey, u64> = FxHashMap::default();
        let mut time_wait: FxHashMap<SocketAddr, u64> = FxHashMap::default();
        let mut oldest_close_wait = Duration::ZERO;
        let mut oldest_close_wait_from = None;
        let mut by_netns: FxHashMap<u16, [u64; STATE_COUNT]> = FxHashMap::default();
        for c in &snap.connections {
            by_netns.entry(c.netns()).or_insert([0; STATE_COUNT])[c.state.index()] += 1;
            // The family of the socket as the kernel reports it: a dual-stack socket's
            // IPv4-mapped address counts as IPv6.
            let family = usize::from(c.local().is_ipv6());
            connections[c.state.index()][family] += 1;
            match c.state {
                TcpState::CloseWait => {
                    let key = ProcessKey(c.owner().map(|o| (o.pid, o.name.clone())));
                    *close_wait.entry(key).or_default() += 1;
                    if let Some(age) = c.state_age(now) {
                        if oldest_close_wait_from.is_none() || age > oldest_close_wait {
                            oldest_close_wait = age;
                            oldest_close_wait_from = c.age_source(now);
                        }
                    }
                }
                TcpState::TimeWait => *time_wait.entry(c.remote()).or_default() += 1,
                _ => {}
            }
        }

        let size = snap.ephemeral_ports.len();
        let (ports_by_destination, ports_other) = ports_by_destination(snap, top_n);

        let mut alerts = [[0u64; 2]; RuleId::ALL.len()];
        count_alerts(&mut alerts, &update.alerts);

        let mut state_read_at = [now; STATE_COUNT];
        if let Some(unread) = &snap.unread {
            for s in &unread.states {
                state_read_at[s.index()] = unread.last_read.unwrap_or(UNIX_EPOCH);
            }
        }

        let (netns_top, netns_other) = netns_breakdown(snap, &by_netns, top_n);
        Exposition {
            state_read_at,
            taken_at: now,
            polls: update.seq,
            poll_errors,
            poll_duration: snap.poll_duration,
            process_info_partial: matches!(snap.process_info, ProcessInfo::Partial { .. }),
            connections,
            close_wait_by_process: rank(close_wait, top_n),
            netns: netns_top,
            netns_other,
            time_wait_by_remote: rank(time_wait, top_n),
            ports_by_destination,
            ports_other,
            ephemeral_range_size: size,
            oldest_close_wait,
            oldest_close_wait_from,
            alerts,
            closes: None,
        }
    }
}

/// Ephemeral ports in use toward each destination, the top N, and the rest summed.
fn ports_by_destination(snap: &crate::model::Snapshot, top_n: usize) -> (Vec<PortUse>, u64) {
    let pressure = port_pressure(&snap.connections, snap.port_ranges());
    let ports_other = pressure
        .iter()
        .skip(top_n)
        .map(|p| u64::from(p.in_use))
        .sum();
    let top = pressure
        .into_iter()
        .take(top_n)
        .map(|p| PortUse {
            local_ip: p.local_ip,
            remote: p.remote,
            in_use: u64::from(p.in_use),
            ratio: p.ratio,
        })
        .collect();
    (top, ports_other)
}

/// A namespace's name and its connections per state.
type NetnsStates = (Arc<str>, [u64; STATE_COUNT]);

/// Connections per state in each namespace: the top N namespaces by sockets, the rest
/// summed (a host with hundreds of containers still exports a bounded number of series).
/// Adds `list` to the active alerts per rule and severity.
fn count_alerts(counts: &mut [[u64; 2]; RuleId::ALL.len()], list: &[Alert]) {
    for a in list {
        if let Some(r) = RuleId::ALL.iter().position(|&id| id == a.rule) {
            counts[r][usize::from(a.severity == Severity::Critical)] += 1;
        }
    }
}

fn netns_breakdown(
    snap: &crate::model::Snapshot,
    by_netns: &FxHashMap<u16, [u64; STATE_COUNT]>,
    top_n: usize,
) -> (Vec<NetnsStates>, [u64; STATE_COUNT]) {
    // Namespaces ranked by sockets, cut to the top N like every breakdown: a host with
    // hundreds of containers still exports a bounded number of series.
    let named = |id: u16| -> Arc<str> {
        snap.netns
            .get(id)
            .map_or_else(|| "host".into(), |n| Arc::clone(&n.name))
    };
    let ranked = rank(
        by_netns
            .iter()
            .map(|(&id, states)| ((named(id), id), states.iter().sum::<u64>()))
            .collect(),
        top_n,
    );
    let netns_top: Vec<NetnsStates> = ranked
        .top
        .iter()
        .map(|((name, id), _)| (Arc::clone(name), by_netns[id]))
        .collect();
    let mut netns_other = [0u64; STATE_COUNT];
    for (id, states) in by_netns {
        if !ranked.top.iter().any(|((_, top), _)| top == id) {
            for (o, n) in netns_other.iter_mut().zip(states) {
                *o += n;
            }
        }
    }
    (netns_top, netns_other)
}
