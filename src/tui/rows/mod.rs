//! The row engine: which connections the table shows and in what order, for every view.
//! Pure functions of a poll, the ghosts and the view's sort; the dashboard's state
//! ([`App`](super::app::App)) calls them after a poll, a filter, a sort or a view change,
//! never per frame.
//!
//! The connection views sort on packed keys ([`keyed`]) where they can and compare rows
//! otherwise ([`compared_rows`]); the process and remote views aggregate first
//! ([`aggregate`], [`netns`]).

pub mod aggregate;
pub mod keyed;
pub mod netns;

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::time::SystemTime;

use crate::model::{Connection, Filter, NetnsTable, TcpState};
pub use aggregate::{ProcRow, RemoteRow};
pub use netns::NetnsRow;

/// One line of the table.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Row {
    /// A connection of the shown snapshot.
    Conn(usize),
    /// A connection that vanished at a recent poll.
    Ghost(usize),
    /// A state group header (by-state view).
    Group(TcpState, u32),
    Process(usize),
    Remote(usize),
    /// A network namespace (by-namespace view).
    Netns(usize),
}

/// A vanished connection kept on screen for a few polls.
#[derive(Clone, Debug)]
pub struct Ghost {
    pub conn: Connection,
    pub polls_left: u8,
}

/// Which connections pass the filters (lab panel, quick states, filter prompt), with what
/// is the same for every connection worked out once.
pub struct RowFilter<'a> {
    lab_only: bool,
    /// Bit `TcpState::index` set for each quick-filter state; 0: no quick filter.
    quick: u16,
    /// `None` when the filter is empty.
    filter: Option<&'a Filter>,
    /// The shown poll's namespace names, for `netns:` terms.
    netns: Option<&'a NetnsTable>,
}

impl<'a> RowFilter<'a> {
    /// The filter of the prompt, the quick states of the strip, and whether only the lab's
    /// own sockets are shown (the lab panel is open).
    pub fn new(filter: &'a Filter, quick: &BTreeSet<TcpState>, lab_only: bool) -> Self {
        RowFilter {
            lab_only,
            quick: quick.iter().fold(0u16, |m, s| m | (1 << s.index())),
            filter: (!filter.is_empty()).then_some(filter),
            netns: None,
        }
    }

    /// The same, naming namespaces from `netns` (the shown snapshot's table).
    pub fn in_netns(self, netns: &'a NetnsTable) -> Self {
        RowFilter {
            netns: Some(netns),
            ..self
        }
    }

    /// Whether `c` is shown.
    #[inline]
    pub fn keep(&self, c: &Connection) -> bool {
        (!self.lab_only || c.lab)
            && (self.quick == 0 || self.quick & (1 << c.state.index()) != 0)
            && self.filter.is_none_or(|f| match self.netns {
                Some(t) => f.matches_in(c, t),
                None => f.matches(c),
            })
    }

    /// The indices of the connections shown.
    pub fn matching(&self, conns: &[Connection]) -> Vec<usize> {
        (0..conns.len()).filter(|&i| self.keep(&conns[i])).collect()
    }
}

/// What the connection views (all, by state) are built from.
pub struct ConnRows<'a> {
    pub conns: &'a [Connection],
    pub ghosts: &'a [Ghost],
    pub filter: &'a RowFilter<'a>,
    /// The by-state view: rows grouped under one header per state.
    pub by_state: bool,
    /// The sort column, an index into the view's columns (state, local, remote, process,
    /// age, then via, namespace, timer, recv-q, send-q).
    pub col: usize,
    pub desc: bool,
    /// States whose group shows only its header.
    pub collapsed: &'a BTreeSet<TcpState>,
}

impl ConnRows<'_> {
    /// The connection of a `Conn` or `Ghost` row.
    fn conn_of(&self, r: &Row) -> &Connection {
        match *r {
            Row::Conn(i) => &self.conns[i],
            Row::Ghost(i) => &self.ghosts[i].conn,
            _ => unreachable!("only connection rows here"),
        }
    }
}

/// The rows of the connection views for any sort, comparing rows through their
/// connections (the process and age sorts). `now` is when the snapshot was taken (ages).
pub fn compared_rows(q: &ConnRows<'_>, now: SystemTime) -> Vec<Row> {
    let keep = |c: &Connection| q.filter.keep(c);
    let mut rows: Vec<Row> = (0..q.conns.len())
        .filter(|&i| keep(&q.conns[i]))
        .map(Row::Conn)
        .collect();
    rows.extend(
        (0..q.ghosts.len())
            .filter(|&i| keep(&q.ghosts[i].conn))
            .map(Row::Ghost),
    );
    rows.sort_by(|a, b| {
        let (ca, cb) = (q.conn_of(a), q.conn_of(b));
        let primary = if q.by_state {
            ca.state.cmp(&cb.state)
        } else {
            std::cmp::Ordering::Equal
        };
        let by_col = match q.col {
            0 => ca.state.cmp(&cb.state),
            1 => ca.local().cmp(&cb.local()),
            2 => ca.remote().cmp(&cb.remote()),
            3 => owner_name(ca).cmp(owner_name(cb)),
            4 => ca.state_age(now).cmp(&cb.state_age(now)),
            // The columns shown where there is room (`View::extra_columns`).
            5 => ca
                .attribution
                .map(|a| a as u8)
                .cmp(&cb.attribution.map(|a| a as u8)),
            6 => ca.netns().cmp(&cb.netns()),
            7 => timer_left(ca).cmp(&timer_left(cb)),
            8 => ca.recv_q().cmp(&cb.recv_q()),
            _ => ca.send_q().cmp(&cb.send_q()),
        };
        let by_col = if q.desc { by_col.reverse() } else { by_col };
        primary
            .then(by_col)
            .then(ca.local().cmp(&cb.local()))
            .then(ca.remote().cmp(&cb.remote()))
    });
    if q.by_state { group(q, rows) } else { rows }
}

/// Sorted connection rows under one header per state, counting the state's live rows;
/// a collapsed state keeps only its header.
fn group(q: &ConnRows<'_>, rows: Vec<Row>) -> Vec<Row> {
    let mut out = Vec::with_capacity(rows.len() + 11);
    let mut i = 0;
    while i < rows.len() {
        let state = q.conn_of(&rows[i]).state;
        let end = rows[i..]
            .iter()
            .position(|r| q.conn_of(r).state != state)
            .map_or(rows.len(), |n| i + n);
        let n = rows[i..end]
            .iter()
            .filter(|r| matches!(r, Row::Conn(_)))
            .count();
        out.push(Row::Group(state, u32::try_from(n).unwrap_or(u32::MAX)));
        if !q.collapsed.contains(&state) {
            out.extend_from_slice(&rows[i..end]);
        }
        i = end;
    }
    out
}

/// How long the kernel's timer has left; `None` (first ascending) without one.
fn timer_left(c: &Connection) -> Option<std::time::Duration> {
    c.timer.map(|t| t.expires())
}

fn owner_name(c: &Connection) -> &str {
    c.owner().and_then(|o| o.name.as_deref()).unwrap_or("")
}
