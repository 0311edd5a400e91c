//! The closes panel's feed: the shared [`CloseFeed`] drained into the app's [`CloseStats`]
//! once a second, its close rules' alerts beside the table's.
//!
//! [`CloseStats`]: crate::model::close_stats::CloseStats

use std::time::Duration;

use anyhow::Result;

use crate::events::EventsMode;
use crate::mode::closes::CloseFeed;
use crate::model::{NetnsChoice, Rules};
use crate::tui::app::App;

/// The dashboard's close source.
pub struct PanelFeed(CloseFeed);

impl PanelFeed {
    /// Chooses the source as `mode` asks and gives the app an empty panel state. With
    /// `auto`, the reason the kernel's events are not used goes on the panel (the terminal
    /// is the dashboard's by then).
    pub fn start(
        mode: EventsMode,
        netns: &NetnsChoice,
        app: &mut App,
        interval: Duration,
        rules: &Rules,
    ) -> Result<Self> {
        let (feed, stats) = CloseFeed::start(mode, netns, interval, rules)?;
        app.closes = Some(stats);
        Ok(PanelFeed(feed))
    }

    /// Who owns each socket as the kernel's events saw it, for the poll loop.
    pub fn owners(&self) -> Option<crate::events::owners::EventOwners> {
        self.0.owners()
    }

    /// Moves what arrived since the last call into the app's panel state.
    pub fn refresh(&mut self, app: &mut App) {
        let Some(stats) = app.closes.as_mut() else {
            return;
        };
        stats.interval = app.interval;
        stats.add_closes(&self.0.drain());
        let latest = app.latest.clone();
        app.close_alerts = self.0.judge(stats, latest.as_deref().map(|u| &*u.snapshot));
    }
}
