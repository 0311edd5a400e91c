//! The remote names the dashboard shows: whether names are on, the names the resolver
//! has given so far for the rows on screen, and which addresses the screen needs. The
//! runner asks the resolver; this state only holds what came back, so a frame never waits
//! and the tests need no DNS.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::App;
use crate::tui::rows::Row;

/// Names held at most; past it they are dropped and asked again of the resolver's cache
/// for the rows then on screen.
const NAMES_HELD: usize = 4096;

/// Remote names for the table, the by-remote view and the detail pane.
#[derive(Clone, Debug, Default)]
pub struct RemoteNames {
    /// Names shown instead of addresses (the `names` key toggles it).
    pub on: bool,
    known: FxHashMap<IpAddr, Arc<str>>,
    /// Why names cannot be had (no resolver configuration), said when they are turned on.
    pub unavailable: Option<String>,
}

impl RemoteNames {
    /// Names off (or on), none known yet.
    pub fn new(on: bool) -> Self {
        RemoteNames {
            on,
            ..RemoteNames::default()
        }
    }

    /// Keeps the name of `ip` the resolver gave.
    pub fn insert(&mut self, ip: IpAddr, name: Arc<str>) {
        if self.known.len() >= NAMES_HELD && !self.known.contains_key(&ip) {
            self.known.clear();
        }
        self.known.insert(ip.to_canonical(), name);
    }

    /// The name to show for `ip`: none while names are off, pending or unknown.
    pub fn get(&self, ip: IpAddr) -> Option<&str> {
        if !self.on {
            return None;
        }
        self.known.get(&ip.to_canonical()).map(|n| &**n)
    }
}

impl App {
    /// The remote addresses of the rows on screen (and the selected one, for the detail
    /// pane), each once: what the runner asks the resolver for before a frame. Empty while
    /// names are off.
    pub fn wanted_names(&self) -> Vec<IpAddr> {
        if !self.names.on {
            return Vec::new();
        }
        let end = (self.offset + self.page).min(self.rows.len());
        let on_screen = self.rows[self.offset.min(end)..end].iter();
        let mut out: Vec<IpAddr> = Vec::new();
        for &row in on_screen.chain(self.selected_row().iter()) {
            if let Some(ip) = self.remote_of(row).map(|sa| sa.ip().to_canonical())
                && !ip.is_unspecified()
                && !out.contains(&ip)
            {
                out.push(ip);
            }
        }
        out
    }

    /// The remote end a row shows: a connection's, or a remote endpoint's.
    fn remote_of(&self, row: Row) -> Option<SocketAddr> {
        match row {
            Row::Conn(_) | Row::Ghost(_) => self.conn(row).map(|c| c.remote()),
            Row::Remote(i) => self.remotes.get(i).map(|r| r.remote),
            _ => None,
        }
    }

    /// The `names` key: names on or off. Turning them on without a resolver says why.
    pub(super) fn toggle_names(&mut self) {
        self.names.on = !self.names.on;
        if self.names.on
            && let Some(why) = &self.names.unavailable
        {
            self.status = Some(why.clone());
        }
    }
}
