//! The closes panel's feed: the source `--events` chose (the kernel's events, or the
//! counters), drained into the app's [`CloseStats`] once a second.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::events::{self, Closes, EventOptions, EventsMode};
use crate::model::alerts::close_alerts;
use crate::model::close_stats::CloseStats;
use crate::model::{CounterCloses, Rules};
use crate::tui::app::App;

/// The dashboard's close source and what it needs to turn readings into growth.
pub struct CloseFeed {
    source: Closes,
    counters_start: Option<CounterCloses>,
    started: Instant,
    /// For the close rules (reset storm, TIME_WAIT overflow), run after each refresh.
    rules: Rules,
}

impl CloseFeed {
    /// Chooses the source as `mode` asks and gives the app an empty panel state. With
    /// `auto`, the reason the kernel's events are not used goes on the panel (the terminal
    /// is the dashboard's by then).
    pub fn start(
        mode: EventsMode,
        app: &mut App,
        interval: Duration,
        rules: &Rules,
    ) -> Result<Self> {
        let opts = EventOptions {
            // Enough for a few seconds of a heavy close rate between two drains; more is
            // counted as lost and shown.
            queue: 1 << 16,
            ..EventOptions::default()
        };
        let (source, note) = Closes::choose(mode, &opts)?;
        let mut stats = CloseStats::new(source.source(), note, interval);
        stats.keep_for(rules.reset_storm.window);
        stats.mark(Duration::ZERO);
        app.closes = Some(stats);
        Ok(CloseFeed {
            source,
            counters_start: events::counters::read().ok(),
            started: Instant::now(),
            rules: rules.clone(),
        })
    }

    /// Moves what arrived since the last call into the app's panel state.
    pub fn refresh(&mut self, app: &mut App) {
        let Some(stats) = app.closes.as_mut() else {
            return;
        };
        stats.interval = app.interval;
        if let Closes::Kernel(k) = &self.source {
            let drained: Vec<_> = k.drain().collect();
            stats.add_closes(&drained);
            let sh = k.shared();
            stats.lost = sh.lost.load(Ordering::Relaxed) + sh.queue_dropped.load(Ordering::Relaxed);
        }
        // TIME_WAIT dropped is only ever in the counters, whatever the source.
        if let (Some(start), Ok(now)) = (self.counters_start, events::counters::read()) {
            stats.set_counters(now.since(&start));
        }
        stats.mark(self.started.elapsed());
        app.close_alerts = close_alerts(stats, &self.rules);
    }
}
