//! The close rules' feed, shared by the dashboard, `watch` and `snapshot --interval`: the
//! source `--events` chose (the kernel's events, or the counters), folded into a
//! [`CloseStats`] and judged by the close rules (`reset-storm`, `time-wait-overflow`).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::events::{self, Closes, EventOptions, EventsMode};
use crate::model::alerts::close_alerts;
use crate::model::close_stats::CloseStats;
use std::net::SocketAddr;

use crate::model::{Alert, Close, Connection, CounterCloses, Filter, Owner, Rules, TcpState};

/// A close source and what it needs to turn readings into growth and alerts.
pub struct CloseFeed {
    pub source: Closes,
    /// Why the kernel's events are not used, when `auto` fell back to the counters.
    pub note: Option<String>,
    counters_start: Option<CounterCloses>,
    started: Instant,
    rules: Rules,
}

impl CloseFeed {
    /// Chooses the source as `mode` asks (`on` fails without the privilege, with what to do)
    /// and gives back the empty stats the feed fills, keeping one rule window.
    pub fn start(
        mode: EventsMode,
        interval: Duration,
        rules: &Rules,
    ) -> Result<(Self, CloseStats)> {
        let opts = EventOptions {
            // Enough for a few seconds of a heavy close rate between two drains; more is
            // counted as lost and shown.
            queue: 1 << 16,
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
        };
        Ok((feed, stats))
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
    /// now) and runs the close rules over its window, worst first.
    pub fn judge(&mut self, stats: &mut CloseStats) -> Vec<Alert> {
        stats.lost = self.lost();
        // TIME_WAIT dropped is only ever in the counters, whatever the source.
        if let (Some(start), Ok(now)) = (self.counters_start, events::counters::read()) {
            stats.set_counters(now.since(&start));
        }
        stats.mark(self.started.elapsed());
        close_alerts(stats, &self.rules)
    }
}

/// Whether `filter` matches a close: its connection as last seen and owned, in CLOSE. The
/// close rules of `watch` and `snapshot` judge only the closes their filter shows.
pub fn close_matches(filter: &Filter, c: &Close) -> bool {
    if filter.is_empty() {
        return true;
    }
    let unknown = SocketAddr::from(([0, 0, 0, 0], 0));
    let mut conn = Connection::new(
        c.local.unwrap_or(unknown),
        c.remote.unwrap_or(unknown),
        TcpState::Close,
    );
    if let Some(o) = &c.owner {
        conn.owners = vec![Owner {
            pid: o.pid,
            name: Some(o.name.clone()),
        }]
        .into();
    }
    filter.matches(&conn)
}
