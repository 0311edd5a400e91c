//! The rows the current view shows, recomputed after a poll, a filter, a sort or a view
//! change, and the selection kept on the same connection or group across a rebuild.

use std::net::SocketAddr;

use super::{App, View};
use crate::model::growth::growth_span;
use crate::model::{NetnsId, TcpState};
use crate::tui::rows::aggregate::{
    aggregate_processes, aggregate_remotes, sort_processes_with, sort_remotes_with,
};
use crate::tui::rows::keyed::keyed_rows;
use crate::tui::rows::netns::{aggregate_netns, sort_netns_with};
use crate::tui::rows::{ConnRows, Row, RowFilter, compared_rows};

impl App {
    /// Recomputes the rows of the current view: after a poll, a filter, a sort or a view
    /// change; never per frame.
    pub fn rebuild(&mut self) {
        let key = self.selected_key();
        let Some(u) = self.shown.clone() else {
            self.rows.clear();
            return;
        };
        let conns = &u.snapshot.connections;
        let col = self.sort[self.view.index()];
        let desc = self.sort_desc[self.view.index()];
        let filter = RowFilter::new(&self.filter, &self.quick, self.lab.is_some())
            .in_netns(&u.snapshot.netns);
        self.rows =
            match self.view {
                View::All | View::ByState => {
                    let q = ConnRows {
                        conns,
                        ghosts: &self.ghosts,
                        filter: &filter,
                        by_state: self.view == View::ByState,
                        col,
                        desc,
                        collapsed: &self.collapsed,
                    };
                    let sel = match key {
                        Some(SelKey::Conn(l, r)) => Some((l, r)),
                        _ => None,
                    };
                    if let Some((rows, found)) = keyed_rows(&q, sel) {
                        self.rows = rows;
                        if sel.is_some() {
                            // The keyed sort found the selected connection's new row itself.
                            if let Some(i) = found {
                                self.selected = i;
                            }
                            self.clamp();
                        } else {
                            self.restore_selection(key);
                        }
                        return;
                    }
                    compared_rows(&q, u.snapshot.taken_at)
                }
                View::ByProcess => {
                    let matching = filter.matching(conns);
                    // The alert rule's growth, over the same window (`model::growth`).
                    let growth = self.cw_history.back().and_then(|last| {
                        growth_span(&self.cw_history, last.at, self.growth_window)
                    });
                    self.procs = aggregate_processes(conns, &matching, growth);
                    if let Some(closes) = &self.closes {
                        for p in &mut self.procs {
                            p.resets = p.pid.and_then(|pid| closes.resets_of(pid));
                        }
                    }
                    sort_processes_with(&self.procs, col, desc, false)
                }
                View::ByRemote => {
                    let matching = filter.matching(conns);
                    self.remotes = aggregate_remotes(conns, u.snapshot.port_ranges(), &matching);
                    sort_remotes_with(&self.remotes, col, desc, false)
                }
                View::ByNetns => {
                    let matching = filter.matching(conns);
                    let growth = self.cw_history.back().and_then(|last| {
                        growth_span(&self.cw_history, last.at, self.growth_window)
                    });
                    let (snap, now) = (&u.snapshot, u.snapshot.taken_at);
                    self.netns_rows = aggregate_netns(conns, &matching, &snap.netns, now, growth);
                    sort_netns_with(&self.netns_rows, col, desc, false)
                }
            };
        self.restore_selection(key);
    }

    /// A stable identity of the selected row, to keep the selection across rebuilds.
    fn selected_key(&self) -> Option<SelKey> {
        Some(match self.selected_row()? {
            r @ (Row::Conn(_) | Row::Ghost(_)) => {
                let c = self.conn(r)?;
                SelKey::Conn(c.local(), c.remote())
            }
            Row::Group(s, _) => SelKey::Group(s),
            Row::Process(i) => SelKey::Process(self.procs.get(i)?.pid),
            Row::Remote(i) => SelKey::Remote(self.remotes.get(i)?.remote),
            Row::Netns(i) => SelKey::Netns(self.netns_rows.get(i)?.id),
        })
    }

    fn restore_selection(&mut self, key: Option<SelKey>) {
        if let Some(key) = key {
            let found = self.rows.iter().position(|&r| match (r, &key) {
                (Row::Conn(_) | Row::Ghost(_), SelKey::Conn(l, rm)) => self
                    .conn(r)
                    .is_some_and(|c| c.local() == *l && c.remote() == *rm),
                (Row::Group(s, _), SelKey::Group(k)) => s == *k,
                (Row::Process(i), SelKey::Process(pid)) => self.procs[i].pid == *pid,
                (Row::Remote(i), SelKey::Remote(a)) => self.remotes[i].remote == *a,
                (Row::Netns(i), SelKey::Netns(id)) => self.netns_rows[i].id == *id,
                _ => false,
            });
            if let Some(i) = found {
                self.selected = i;
            }
        }
        self.clamp();
    }

    pub(super) fn clamp(&mut self) {
        let n = self.rows.len();
        if self.selected >= n {
            self.selected = n.saturating_sub(1);
        }
        let page = self.page.max(1);
        if self.selected < self.offset {
            self.offset = self.selected;
        } else if self.selected >= self.offset + page {
            self.offset = self.selected + 1 - page;
        }
        self.offset = self.offset.min(n.saturating_sub(page));
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(super) enum SelKey {
    Conn(SocketAddr, SocketAddr),
    Group(TcpState),
    Process(Option<u32>),
    Remote(SocketAddr),
    Netns(NetnsId),
}
