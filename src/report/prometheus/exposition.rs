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
use crate::model::{ProcessInfo, RuleId, Severity, TcpState};

/// The label value of the series that sums everything outside the top N.
pub const OTHER: &str = "other";
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
    /// The top N destinations by ephemeral ports in use.
    pub ports_by_destination: Vec<PortUse>,
    /// Ephemeral ports in use toward every other destination.
    pub ports_other: u64,
    pub ephemeral_range_size: u32,
    /// The age of the oldest CLOSE_WAIT socket (a lower bound; 0 when there is none or no
    /// age is known yet).
    pub oldest_close_wait: Duration,
    /// Active alerts per rule ([`RuleId::ALL`] order) and severity (warning, critical).
    pub alerts: [[u64; 2]; RuleId::ALL.len()],
    /// When each state (kernel order) was last read from the kernel: the poll's time, but
    /// for the states a big table's live poll reads only every few polls (ESTABLISHED).
    pub state_read_at: [SystemTime; STATE_COUNT],
}

impl Exposition {
    /// Computes the exposition of `update`, keeping `top_n` series per breakdown.
    pub fn from_update(update: &Update, poll_errors: u64, top_n: usize) -> Self {
        let snap = &update.snapshot;
        let now = snap.taken_at;
        let mut connections = [[0u64; 2]; STATE_COUNT];
        let mut close_wait: FxHashMap<ProcessKey, u64> = FxHashMap::default();
        let mut time_wait: FxHashMap<SocketAddr, u64> = FxHashMap::default();
        let mut oldest_close_wait = Duration::ZERO;
        for c in &snap.connections {
            // The family of the socket as the kernel reports it: a dual-stack socket's
            // IPv4-mapped address counts as IPv6.
            let family = usize::from(c.local().is_ipv6());
            connections[c.state.index()][family] += 1;
            match c.state {
                TcpState::CloseWait => {
                    let key = ProcessKey(c.owner().map(|o| (o.pid, o.name.clone())));
                    *close_wait.entry(key).or_default() += 1;
                    if let Some(age) = c.state_age(now) {
                        oldest_close_wait = oldest_close_wait.max(age);
                    }
                }
                TcpState::TimeWait => *time_wait.entry(c.remote()).or_default() += 1,
                _ => {}
            }
        }

        let size = snap.ephemeral_ports.len();
        let pressure = port_pressure(&snap.connections, snap.ephemeral_ports);
        let ports_other = pressure
            .iter()
            .skip(top_n)
            .map(|p| u64::from(p.in_use))
            .sum();
        let ports_by_destination = pressure
            .into_iter()
            .take(top_n)
            .map(|p| PortUse {
                local_ip: p.local_ip,
                remote: p.remote,
                in_use: u64::from(p.in_use),
                ratio: p.ratio,
            })
            .collect();

        let mut alerts = [[0u64; 2]; RuleId::ALL.len()];
        for a in &update.alerts {
            if let Some(r) = RuleId::ALL.iter().position(|&id| id == a.rule) {
                alerts[r][usize::from(a.severity == Severity::Critical)] += 1;
            }
        }

        let mut state_read_at = [now; STATE_COUNT];
        if let Some(unread) = &snap.unread {
            for s in &unread.states {
                state_read_at[s.index()] = unread.last_read.unwrap_or(UNIX_EPOCH);
            }
        }

        Exposition {
            state_read_at,
            taken_at: now,
            polls: update.seq,
            poll_errors,
            poll_duration: snap.poll_duration,
            process_info_partial: matches!(snap.process_info, ProcessInfo::Partial { .. }),
            connections,
            close_wait_by_process: rank(close_wait, top_n),
            time_wait_by_remote: rank(time_wait, top_n),
            ports_by_destination,
            ports_other,
            ephemeral_range_size: size,
            oldest_close_wait,
            alerts,
        }
    }
}
