//! The close rules' feed, shared by the dashboard, `watch` and `snapshot --interval`: the
//! source `--events` chose (the kernel's events, or the counters), folded into a
//! [`CloseStats`] and judged by the close rules (`reset-storm`, `time-wait-overflow`).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::events::owners::EventOwners;
use crate::events::{self, Closes, EventOptions, EventsMode};
use crate::model::alerts::{OverflowWindow, close_alerts, close_alerts_in};
use crate::model::close_stats::CloseStats;
use std::net::SocketAddr;

use crate::model::{
    Alert, Close, Connection, CounterCloses, Filter, NetnsChoice, NetnsTable, OWN_NETNS, Owner,
    RuleId, Rules, Snapshot, TcpState, Tuple,
};

/// A close source and what it needs to turn readings into growth and alerts.
pub struct CloseFeed {
    pub source: Closes,
    /// Why the kernel's events are not used, when `auto` fell back to the counters.
    pub note: Option<String>,
    counters_start: Option<CounterCloses>,
    started: Instant,
    rules: Rules,
    /// Each namespace's TIME_WAIT overflow counter over the window.
    overflow: OverflowWindow,
}

impl CloseFeed {
    /// Chooses the source as `mode` asks (`on` fails without the privilege, with what to do)
    /// and gives back the empty stats the feed fills, keeping one rule window.
    pub fn start(
        mode: EventsMode,
        netns: &NetnsChoice,
        interval: Duration,
        rules: &Rules,
    ) -> Result<(Self, CloseStats)> {
        let (one, every) = events_netns(netns);
        let opts = EventOptions {
            // Enough for a few seconds of a heavy close rate between two drains; more is
            // counted as lost and shown.
            queue: 1 << 16,
            netns: one,
            every_netns: every,
            ..EventOptions::default()
        };
        let (source, note) = Closes::choose(mode, &opts)?;
        let mut stats = CloseStats::new(source.source(), note.clone(), interval);
        stats.keep_for(rules.reset_storm.window);
        stats.mark(Duration::ZERO);
        let feed = CloseFeed {
            source,
            note,
            counters_start: events::counters::read().ok(),
            started: Instant::now(),
            rules: rules.clone(),
            overflow: OverflowWindow::default(),
        };
        Ok((feed, stats))
    }

    /// Who owns each socket as the kernel's events saw it, for the poll loop's
    /// [`Scope`](crate::live::Scope); `None` on the counters.
    pub fn owners(&self) -> Option<EventOwners> {
        match &self.source {
            Closes::Kernel(k) => Some(k.owners()),
            Closes::Counters(_) => None,
        }
    }

    /// The kernel's closes that arrived since the last call; none from the counters.
    pub fn drain(&self) -> Vec<Close> {
        match &self.source {
            Closes::Kernel(k) => k.drain().collect(),
            Closes::Counters(_) => Vec::new(),
        }
    }

    /// Events the kernel side or the queue to the reader dropped, so far.
    pub fn lost(&self) -> u64 {
        match &self.source {
            Closes::Kernel(k) => {
                let sh = k.shared();
                sh.lost.load(Ordering::Relaxed) + sh.queue_dropped.load(Ordering::Relaxed)
            }
            Closes::Counters(_) => 0,
        }
    }

    /// Brings `stats` up to now (the closes already added by the caller, the counters read
    /// now) and runs the close rules over its window, worst first. With a poll that read
    /// each namespace's counters (`snap`), TIME_WAIT overflow is judged per namespace, so a
    /// container's is seen and named; else from lingertop's own namespace's counters.
    pub fn judge(&mut self, stats: &mut CloseStats, snap: Option<&Snapshot>) -> Vec<Alert> {
        stats.lost = self.lost();
        // TIME_WAIT dropped is only ever in the counters, whatever the source.
        if let (Some(start), Ok(now)) = (self.counters_start, events::counters::read()) {
            stats.set_counters(now.since(&start));
        }
        let at = self.started.elapsed();
        stats.mark(at);
        let table = snap.map(|s| &*s.netns);
        let mut alerts = match table {
            Some(t) => close_alerts_in(stats, &self.rules, t),
            None => close_alerts(stats, &self.rules),
        };
        if let Some(s) = snap.filter(|s| !s.counters.is_empty()) {
            let window = self.rules.reset_storm.window;
            self.overflow.mark(at, &s.counters, &s.netns, window);
            alerts.retain(|a| a.rule != RuleId::TimeWaitOverflow);
            alerts.extend(self.overflow.alerts(&s.netns, &self.rules));
            alerts.sort_by(|a, b| b.severity.cmp(&a.severity).then(b.count.cmp(&a.count)));
        }
        alerts
    }
}

/// Which namespaces' closes the events report for the collector's choice: every one for
/// `all` (the containers' closes are what a container host is watched for), lingertop's own
/// for `host`, the one a pid or an `ip netns` name holds. A container's name is resolved by
/// the collector from its processes' cgroups, which the events cannot wait for: every
/// namespace then, each close line naming its own.
fn events_netns(choice: &NetnsChoice) -> (Option<u32>, bool) {
    use std::os::unix::fs::MetadataExt;
    let inode = |path: String| {
        std::fs::metadata(path)
            .ok()
            .and_then(|m| u32::try_from(m.ino()).ok())
    };
    match choice {
        NetnsChoice::All => (None, true),
        NetnsChoice::Host => (None, false),
        NetnsChoice::Pid(p) => match inode(format!("/proc/{p}/ns/net")) {
            Some(i) => (Some(i), false),
            None => (None, true),
        },
        NetnsChoice::Named(n) => match inode(format!("/run/netns/{n}")) {
            Some(i) => (Some(i), false),
            None => (None, true),
        },
    }
}

/// Whether `filter` matches a close: its connection as last seen and owned, in CLOSE, in
/// its namespace as `netns` (the last poll's table) knows it. The close rules of `watch`
/// and `snapshot` judge only the closes their filter shows.
pub fn close_matches(filter: &Filter, netns: &NetnsTable, c: &Close) -> bool {
    if filter.is_empty() {
        return true;
    }
    let unknown = SocketAddr::from(([0, 0, 0, 0], 0));
    let id = netns
        .by_inode(u64::from(c.netns))
        .map_or(OWN_NETNS, |n| n.id);
    let tuple = Tuple::in_netns(c.local.unwrap_or(unknown), c.remote.unwrap_or(unknown), id);
    let mut conn = Connection::on(tuple, TcpState::Close);
    if let Some(o) = &c.owner {
        conn.owners = vec![Owner {
            pid: o.pid,
            name: Some(o.name.clone()),
        }]
        .into();
    }
    filter.matches_in(&conn, netns)
}
