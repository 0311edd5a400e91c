//! The dashboard's state and the one `match` that applies an [`Action`] to it. Rendering
//! reads this state and never changes it; the event loop feeds it keys and poll results.

use std::collections::{BTreeSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rustc_hash::FxHashMap;

use super::keys::{Action, Keymap};
use super::lab_panel::{LabPanel, LabRequest};
use crate::live::Update;
use crate::model::alerts::{endpoint_key, pair_groups};
use crate::model::{
    Attribution, Connection, Filter, Owner, RuleId, Severity, StateCounts, TcpState, Transition,
};

/// The states of the strip, in its order; keys 1..9 and 0 toggle them as quick filters.
pub const STRIP: [TcpState; 10] = [
    TcpState::Established,
    TcpState::SynSent,
    TcpState::SynRecv,
    TcpState::FinWait1,
    TcpState::FinWait2,
    TcpState::TimeWait,
    TcpState::CloseWait,
    TcpState::LastAck,
    TcpState::Closing,
    TcpState::Listen,
];

/// Poll intervals `+` and `-` step through.
const INTERVALS_MS: [u64; 9] = [250, 500, 1000, 2000, 5000, 10_000, 15_000, 30_000, 60_000];

/// How many polls a vanished connection stays on screen, fading.
const GHOST_POLLS: u8 = 2;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum View {
    All,
    ByState,
    ByProcess,
    ByRemote,
}

impl View {
    pub const ALL: [View; 4] = [View::All, View::ByState, View::ByProcess, View::ByRemote];

    pub fn title(self) -> &'static str {
        match self {
            View::All => "All connections",
            View::ByState => "By state",
            View::ByProcess => "By process",
            View::ByRemote => "By remote endpoint",
        }
    }

    fn index(self) -> usize {
        View::ALL.iter().position(|v| *v == self).unwrap_or(0)
    }

    /// Column titles; the sort key is an index into these.
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            View::All | View::ByState => &["STATE", "LOCAL", "REMOTE", "PROCESS", "IN STATE"],
            View::ByProcess => &[
                "PROCESS", "PID", "TOTAL", "ESTAB", "CLOSE_W", "CW/MIN", "TIME_W", "FIN_W",
                "LAST_A",
            ],
            View::ByRemote => &["REMOTE", "TIME_WAIT", "TOTAL", "PORTS USED", "FROM"],
        }
    }
}

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
}

/// How a connection changed at the last poll.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Mark {
    New,
    Changed,
}

/// Counts of each close state held by one process.
#[derive(Clone, Debug, PartialEq)]
pub struct ProcRow {
    pub pid: Option<u32>,
    pub name: String,
    pub counts: StateCounts,
    pub total: u32,
    /// CLOSE_WAIT change per minute over the last polls.
    pub close_wait_per_min: Option<f64>,
}

/// Connections toward one remote endpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct RemoteRow {
    pub remote: SocketAddr,
    pub time_wait: u32,
    pub total: u32,
    /// Highest ephemeral-port use toward it from one local address, and that address.
    pub pressure: f64,
    pub ports_used: u32,
    pub from: Option<IpAddr>,
}

/// A vanished connection kept on screen for a few polls.
#[derive(Clone, Debug)]
pub struct Ghost {
    pub conn: Connection,
    pub polls_left: u8,
}

/// What the event loop must do after an action.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    None,
    Quit,
    SetInterval(Duration),
    /// The lab panel opened: the loop starts the lab if it has none yet.
    OpenLab,
    Lab(LabRequest),
}

/// Where things were drawn last frame, for the mouse.
#[derive(Clone, Debug, Default)]
pub struct HitAreas {
    /// The table's rows (header excluded): x, y, width, height.
    pub table: (u16, u16, u16, u16),
    /// Strip cells: (x, y, width, height, index into `STRIP`).
    pub strip: Vec<(u16, u16, u16, u16, usize)>,
}

/// The dashboard's whole state.
pub struct App {
    pub keymap: Keymap,
    pub interval: Duration,
    /// The newest poll: header, strip and alerts show it.
    pub latest: Option<Arc<Update>>,
    /// The poll the table shows: the newest, or the one frozen by pause.
    pub shown: Option<Arc<Update>>,
    pub paused: bool,
    /// Polls and transitions that arrived while paused.
    pub paused_polls: u64,
    pub paused_changes: usize,
    pub prev_counts: Option<StateCounts>,
    /// Per-state counts of recent polls, oldest first (sparklines).
    pub history: VecDeque<StateCounts>,
    history_len: usize,
    /// CLOSE_WAIT per pid of recent polls, with their times (growth per process).
    cw_history: VecDeque<(std::time::SystemTime, FxHashMap<u32, u32>)>,
    pub view: View,
    pub filter: Filter,
    pub quick: BTreeSet<TcpState>,
    /// The filter prompt while it is open.
    pub input: Option<String>,
    pub input_error: Option<String>,
    pub sort: [usize; 4],
    pub sort_desc: [bool; 4],
    pub collapsed: BTreeSet<TcpState>,
    pub help: bool,
    pub detail: bool,
    pub rows: Vec<Row>,
    pub procs: Vec<ProcRow>,
    pub remotes: Vec<RemoteRow>,
    pub ghosts: Vec<Ghost>,
    pub marks: FxHashMap<(SocketAddr, SocketAddr), Mark>,
    pub selected: usize,
    pub offset: usize,
    /// Table rows visible in the last frame.
    pub page: usize,
    pub hit: HitAreas,
    /// A one-line message for the footer (poll errors).
    pub status: Option<String>,
    pub errors: u64,
    /// The close lab panel, while it is open; the table then shows lab sockets only.
    pub lab: Option<LabPanel>,
    /// The panel's state while hidden, so reopening it finds it as it was.
    lab_hidden: Option<LabPanel>,
}

impl App {
    pub fn new(keymap: Keymap, interval: Duration, history_len: usize, filter: Filter) -> Self {
        App {
            keymap,
            interval,
            latest: None,
            shown: None,
            paused: false,
            paused_polls: 0,
            paused_changes: 0,
            prev_counts: None,
            history: VecDeque::new(),
            history_len: history_len.max(2),
            cw_history: VecDeque::new(),
            view: View::All,
            filter,
            quick: BTreeSet::new(),
            input: None,
            input_error: None,
            sort: [0; 4],
            sort_desc: [false; 4],
            collapsed: BTreeSet::new(),
            help: false,
            detail: true,
            rows: Vec::new(),
            procs: Vec::new(),
            remotes: Vec::new(),
            ghosts: Vec::new(),
            marks: FxHashMap::default(),
            selected: 0,
            offset: 0,
            page: 10,
            hit: HitAreas::default(),
            status: None,
            errors: 0,
            lab: None,
            lab_hidden: None,
        }
    }

    /// Takes in a poll result.
    pub fn on_update(&mut self, u: Arc<Update>) {
        let counts = u.sample.counts;
        if let Some(prev) = &self.latest {
            self.prev_counts = Some(prev.sample.counts);
        }
        if self.history.len() == self.history_len {
            self.history.pop_front();
        }
        self.history.push_back(counts);
        if self.cw_history.len() == 64 {
            self.cw_history.pop_front();
        }
        self.cw_history
            .push_back((u.sample.at, u.sample.close_wait_by_pid.clone()));
        self.errors = u.errors;
        self.status = None;
        self.latest = Some(u.clone());
        if self.paused {
            self.paused_polls += 1;
            self.paused_changes += u.transitions.len();
        } else {
            self.show(u);
        }
    }

    /// A poll failed; the loop retries at the next interval.
    pub fn on_poll_failed(&mut self, msg: String) {
        self.errors += 1;
        self.status = Some(format!("poll failed: {msg}"));
    }

    fn show(&mut self, u: Arc<Update>) {
        self.marks.clear();
        for g in &mut self.ghosts {
            g.polls_left = g.polls_left.saturating_sub(1);
        }
        self.ghosts.retain(|g| g.polls_left > 0);
        for t in &u.transitions {
            match (t.from, t.to) {
                (None, Some(_)) => {
                    self.marks.insert((t.local, t.remote), Mark::New);
                }
                (Some(_), Some(_)) => {
                    self.marks.insert((t.local, t.remote), Mark::Changed);
                }
                (Some(from), None) => self.ghosts.push(ghost(t, from)),
                (None, None) => {}
            }
        }
        self.shown = Some(u);
        self.rebuild();
    }

    /// The connection a row stands for.
    pub fn conn(&self, row: Row) -> Option<&Connection> {
        match row {
            Row::Conn(i) => self.shown.as_ref()?.snapshot.connections.get(i),
            Row::Ghost(i) => self.ghosts.get(i).map(|g| &g.conn),
            _ => None,
        }
    }

    pub fn selected_row(&self) -> Option<Row> {
        self.rows.get(self.selected).copied()
    }

    /// The effective filter as text, for the footer.
    pub fn filter_text(&self) -> String {
        let mut parts = Vec::new();
        if !self.filter.is_empty() {
            parts.push(self.filter.to_string());
        }
        if !self.quick.is_empty() {
            let names: Vec<String> = self.quick.iter().map(|s| s.filter_name()).collect();
            parts.push(format!("state:{}", names.join(",")));
        }
        if self.lab.is_some() {
            parts.push("lab:yes".to_string());
        }
        parts.join(" ")
    }

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
        self.rows = match self.view {
            View::All | View::ByState => {
                let sel = match key {
                    Some(SelKey::Conn(l, r)) => Some((l, r)),
                    _ => None,
                };
                if let Some((rows, found)) = self.keyed_rows(conns, col, desc, sel) {
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
                self.compared_rows(conns, col, desc, u.snapshot.taken_at)
            }
            View::ByProcess => {
                let matching = self.matching(conns);
                self.procs = self.aggregate_processes(conns, &matching);
                let procs = &self.procs;
                let mut idx: Vec<usize> = (0..procs.len()).collect();
                idx.sort_by(|&a, &b| {
                    let (pa, pb) = (&procs[a], &procs[b]);
                    let cw = TcpState::CloseWait;
                    let o = match col {
                        0 => pa.name.cmp(&pb.name),
                        1 => pa.pid.cmp(&pb.pid),
                        2 => pa.total.cmp(&pb.total),
                        3 => pa
                            .counts
                            .get(TcpState::Established)
                            .cmp(&pb.counts.get(TcpState::Established)),
                        4 => pa.counts.get(cw).cmp(&pb.counts.get(cw)),
                        5 => pa
                            .close_wait_per_min
                            .unwrap_or(0.0)
                            .total_cmp(&pb.close_wait_per_min.unwrap_or(0.0)),
                        6 => pa
                            .counts
                            .get(TcpState::TimeWait)
                            .cmp(&pb.counts.get(TcpState::TimeWait)),
                        7 => fin_waits(pa).cmp(&fin_waits(pb)),
                        _ => pa
                            .counts
                            .get(TcpState::LastAck)
                            .cmp(&pb.counts.get(TcpState::LastAck)),
                    };
                    // Default (column 0 ascending) lists the worst CLOSE_WAIT holders first.
                    let o = if col == 0 && !desc {
                        pb.counts.get(cw).cmp(&pa.counts.get(cw)).then(o)
                    } else if desc {
                        o.reverse()
                    } else {
                        o
                    };
                    o.then(pa.pid.cmp(&pb.pid))
                });
                idx.into_iter().map(Row::Process).collect()
            }
            View::ByRemote => {
                let matching = self.matching(conns);
                self.remotes = aggregate_remotes(&u, &matching);
                let rs = &self.remotes;
                let mut idx: Vec<usize> = (0..rs.len()).collect();
                idx.sort_by(|&a, &b| {
                    let (ra, rb) = (&rs[a], &rs[b]);
                    let o = match col {
                        0 => ra.remote.cmp(&rb.remote),
                        1 => ra.time_wait.cmp(&rb.time_wait),
                        2 => ra.total.cmp(&rb.total),
                        3 => ra.pressure.total_cmp(&rb.pressure),
                        _ => ra.from.cmp(&rb.from),
                    };
                    // Default (column 0 ascending): most TIME_WAIT first.
                    let o = if col == 0 && !desc {
                        rb.time_wait.cmp(&ra.time_wait).then(o)
                    } else if desc {
                        o.reverse()
                    } else {
                        o
                    };
                    o.then(ra.remote.cmp(&rb.remote))
                });
                idx.into_iter().map(Row::Remote).collect()
            }
        };
        self.restore_selection(key);
    }

    /// The indices of the connections the filters let through.
    fn matching(&self, conns: &[Connection]) -> Vec<usize> {
        let keep = self.matcher();
        (0..conns.len()).filter(|&i| keep(&conns[i])).collect()
    }

    /// Whether a connection passes the filters (lab panel, quick states, filter prompt),
    /// with what is the same for every connection worked out once.
    fn matcher(&self) -> impl Fn(&Connection) -> bool + '_ {
        let lab_only = self.lab.is_some();
        let quick = self.quick.iter().fold(0u16, |m, s| m | (1 << s.index()));
        let no_filter = self.filter.is_empty();
        move |c| {
            (!lab_only || c.lab)
                && (quick == 0 || quick & (1 << c.state.index()) != 0)
                && (no_filter || self.filter.matches(c))
        }
    }

    /// The rows of the connection views for the usual sorts (state, local, remote), sorted
    /// on one packed 128-bit key per row: at 100k rows several times faster than comparing
    /// rows through their connections, and the rows come out of the keys without touching
    /// a connection again. With them, the row of the connection `sel` (local, remote), if
    /// it is still shown. `None` for the other sorts, which compare.
    ///
    /// A key is, high bits to low: a head (the state, where it sorts first), the address
    /// sorted on, the other address, and the row's id (an index into the connections, then
    /// the ghosts), which breaks ties as a stable sort over the rows would. An address is
    /// 49 bits: IPv4 packed as address and port; IPv6 a flag above any IPv4 (as
    /// `SocketAddr` sorts) and its rank among the IPv6 addresses shown.
    fn keyed_rows(
        &self,
        conns: &[Connection],
        col: usize,
        desc: bool,
        sel: Option<(SocketAddr, SocketAddr)>,
    ) -> Option<(Vec<Row>, Option<usize>)> {
        let n = conns.len();
        if col > 2 || n + self.ghosts.len() > ROW_ID as usize {
            return None;
        }
        let by_state = self.view == View::ByState;
        let head = |s: TcpState| -> u128 {
            let s = s.index() as u128;
            match col {
                _ if by_state => s,
                0 if desc => 15 - s,
                0 => s,
                _ => 0,
            }
        };
        let key = |c: &Connection, id: usize, local: u128, remote: u128| -> u128 {
            let (first, second) = if col == 2 {
                (remote, local)
            } else {
                (local, remote)
            };
            let first = if desc && col > 0 {
                !first & ADDR
            } else {
                first
            };
            (head(c.state) << 124) | (first << 75) | (second << 26) | id as u128
        };
        let conn = |id: usize| match id.checked_sub(n) {
            None => &conns[id],
            Some(g) => &self.ghosts[g].conn,
        };

        let keep = self.matcher();
        let mut keys: Vec<u128> = Vec::with_capacity(n + self.ghosts.len());
        // Positions in `keys` of rows with an IPv6 address, keyed once the ranks are known.
        let mut v6_rows: Vec<usize> = Vec::new();
        // Positions in `keys` of the selected connection's rows.
        let mut sel_rows: Vec<usize> = Vec::new();
        let all = conns.iter().chain(self.ghosts.iter().map(|g| &g.conn));
        for (id, c) in all.enumerate() {
            if !keep(c) {
                continue;
            }
            if sel.is_some_and(|(l, r)| c.local() == l && c.remote() == r) {
                sel_rows.push(keys.len());
            }
            match (v4_field(&c.local()), v4_field(&c.remote())) {
                (Some(l), Some(r)) => keys.push(key(c, id, l, r)),
                _ => {
                    v6_rows.push(keys.len());
                    keys.push(id as u128);
                }
            }
        }
        if !v6_rows.is_empty() {
            let mut v6: Vec<(u128, u16)> = v6_rows
                .iter()
                .flat_map(|&p| {
                    let c = conn(keys[p] as usize);
                    [v6_addr(&c.local()), v6_addr(&c.remote())]
                })
                .flatten()
                .collect();
            v6.sort_unstable();
            v6.dedup();
            let field = |a: &SocketAddr| {
                v4_field(a).unwrap_or_else(|| {
                    let rank = v6_addr(a).map_or(0, |k| v6.binary_search(&k).unwrap_or(0));
                    V6_FLAG | rank as u128
                })
            };
            for &p in &v6_rows {
                let id = keys[p] as usize;
                let c = conn(id);
                keys[p] = key(c, id, field(&c.local()), field(&c.remote()));
            }
        }
        // The selected connection's rows (a ghost and a live connection may share its
        // addresses), as positions in the new order.
        let sel_keys: Vec<u128> = sel_rows.iter().map(|&p| keys[p]).collect();
        keys.sort_unstable();
        let mut sel_pos: Vec<usize> = sel_keys
            .iter()
            .filter_map(|k| keys.binary_search(k).ok())
            .collect();
        sel_pos.sort_unstable();

        let row = |k: &u128| {
            let id = (k & ROW_ID) as usize;
            match id.checked_sub(n) {
                None => Row::Conn(id),
                Some(g) => Row::Ghost(g),
            }
        };
        if !by_state {
            return Some((keys.iter().map(row).collect(), sel_pos.first().copied()));
        }
        // One group per state: a header counting its live rows, then its rows unless
        // collapsed.
        let mut out = Vec::with_capacity(keys.len() + TcpState::ALL.len());
        let mut found = None;
        let mut i = 0;
        while i < keys.len() {
            let h = keys[i] >> 124;
            let end = keys[i..]
                .iter()
                .position(|k| k >> 124 != h)
                .map_or(keys.len(), |len| i + len);
            let live = keys[i..end]
                .iter()
                .filter(|&&k| ((k & ROW_ID) as usize) < n)
                .count();
            let state = TcpState::ALL[h as usize];
            out.push(Row::Group(state, u32::try_from(live).unwrap_or(u32::MAX)));
            if !self.collapsed.contains(&state) {
                if let Some(p) = sel_pos.iter().find(|p| (i..end).contains(p)) {
                    found = found.or(Some(out.len() + p - i));
                }
                out.extend(keys[i..end].iter().map(row));
            }
            i = end;
        }
        Some((out, found))
    }

    /// The rows of the connection views for any sort, comparing rows through their
    /// connections (the process and age sorts).
    fn compared_rows(
        &self,
        conns: &[Connection],
        col: usize,
        desc: bool,
        now: std::time::SystemTime,
    ) -> Vec<Row> {
        let keep = self.matcher();
        let mut rows: Vec<Row> = (0..conns.len())
            .filter(|&i| keep(&conns[i]))
            .map(Row::Conn)
            .collect();
        rows.extend(
            (0..self.ghosts.len())
                .filter(|&i| keep(&self.ghosts[i].conn))
                .map(Row::Ghost),
        );
        let conn_of = |r: &Row| match *r {
            Row::Conn(i) => &conns[i],
            Row::Ghost(i) => &self.ghosts[i].conn,
            _ => unreachable!("only connection rows here"),
        };
        let by_state = self.view == View::ByState;
        rows.sort_by(|a, b| {
            let (ca, cb) = (conn_of(a), conn_of(b));
            let primary = if by_state {
                ca.state.cmp(&cb.state)
            } else {
                std::cmp::Ordering::Equal
            };
            let by_col = match col {
                0 => ca.state.cmp(&cb.state),
                1 => ca.local().cmp(&cb.local()),
                2 => ca.remote().cmp(&cb.remote()),
                3 => owner_name(ca).cmp(owner_name(cb)),
                _ => ca.state_age(now).cmp(&cb.state_age(now)),
            };
            let by_col = if desc { by_col.reverse() } else { by_col };
            primary
                .then(by_col)
                .then(ca.local().cmp(&cb.local()))
                .then(ca.remote().cmp(&cb.remote()))
        });
        if by_state {
            self.group(rows, &conn_of)
        } else {
            rows
        }
    }

    fn group<'a>(&self, rows: Vec<Row>, conn_of: &dyn Fn(&Row) -> &'a Connection) -> Vec<Row> {
        let mut out = Vec::with_capacity(rows.len() + 11);
        let mut i = 0;
        while i < rows.len() {
            let state = conn_of(&rows[i]).state;
            let end = rows[i..]
                .iter()
                .position(|r| conn_of(r).state != state)
                .map_or(rows.len(), |n| i + n);
            let n = rows[i..end]
                .iter()
                .filter(|r| matches!(r, Row::Conn(_)))
                .count();
            out.push(Row::Group(state, u32::try_from(n).unwrap_or(u32::MAX)));
            if !self.collapsed.contains(&state) {
                out.extend_from_slice(&rows[i..end]);
            }
            i = end;
        }
        out
    }

    fn aggregate_processes(&self, conns: &[Connection], matching: &[usize]) -> Vec<ProcRow> {
        let mut by: FxHashMap<Option<u32>, ProcRow> = FxHashMap::default();
        for &i in matching {
            let c = &conns[i];
            let owner = c.owner();
            let pid = owner.map(|o| o.pid);
            let row = by.entry(pid).or_insert_with(|| ProcRow {
                pid,
                name: owner
                    .and_then(|o| o.name.as_deref())
                    .unwrap_or(if pid.is_some() { "?" } else { "(no process)" })
                    .to_string(),
                counts: StateCounts::default(),
                total: 0,
                close_wait_per_min: None,
            });
            row.counts.add(c.state);
            row.total += 1;
        }
        let anchor = self.cw_history.front();
        let current = self.cw_history.back();
        let mut out: Vec<ProcRow> = by.into_values().collect();
        if let (Some((t0, then)), Some((t1, now))) = (anchor, current) {
            let span = t1.duration_since(*t0).unwrap_or_default().as_secs_f64();
            if span > 0.0 {
                for p in &mut out {
                    if let Some(pid) = p.pid {
                        let a = f64::from(then.get(&pid).copied().unwrap_or(0));
                        let b = f64::from(now.get(&pid).copied().unwrap_or(0));
                        p.close_wait_per_min = Some((b - a) * 60.0 / span);
                    }
                }
            }
        }
        out
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
                _ => false,
            });
            if let Some(i) = found {
                self.selected = i;
            }
        }
        self.clamp();
    }

    fn clamp(&mut self) {
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

    /// Records where the last frame put things (the loop calls it after each draw).
    pub fn after_draw(&mut self, hit: HitAreas) {
        self.page = usize::from(hit.table.3).max(1);
        self.hit = hit;
        self.clamp();
    }

    /// The severity of the worst alert on each strip state.
    pub fn alerted_states(&self) -> FxHashMap<TcpState, Severity> {
        let mut out: FxHashMap<TcpState, Severity> = FxHashMap::default();
        if let Some(u) = &self.latest {
            for a in &u.alerts {
                let state = match a.rule {
                    RuleId::CloseWaitLingering => TcpState::CloseWait,
                    RuleId::TimeWaitBuildup | RuleId::TimeWaitRemote | RuleId::PortPressure => {
                        TcpState::TimeWait
                    }
                    RuleId::FinWait1Lingering => TcpState::FinWait1,
                    RuleId::FinWait2Lingering => TcpState::FinWait2,
                    RuleId::LastAckLingering => TcpState::LastAck,
                    RuleId::ClosingLingering => TcpState::Closing,
                };
                let e = out.entry(state).or_insert(a.severity);
                *e = (*e).max(a.severity);
            }
        }
        out
    }

    /// Handles a key typed into the filter prompt. Returns false when no prompt is open.
    pub fn on_input_key(&mut self, key: &crossterm::event::KeyEvent) -> bool {
        use crossterm::event::{KeyCode, KeyModifiers};
        let Some(text) = self.input.as_mut() else {
            return false;
        };
        match key.code {
            KeyCode::Esc => {
                self.input = None;
                self.input_error = None;
            }
            KeyCode::Enter => match Filter::parse(text) {
                Ok(f) => {
                    self.filter = f;
                    self.input = None;
                    self.input_error = None;
                    self.selected = 0;
                    self.offset = 0;
                    self.rebuild();
                }
                // Pasted text may hold control characters: shown escaped, like any message.
                Err(e) => {
                    self.input_error = Some(crate::sanitize::message(&e.to_string()).into_owned())
                }
            },
            KeyCode::Backspace => {
                text.pop();
                self.input_error = None;
            }
            KeyCode::Char('u') if key.modifiers.contains(KeyModifiers::CONTROL) => text.clear(),
            KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                self.input = None;
                self.input_error = None;
            }
            KeyCode::Char(c) => {
                text.push(c);
                self.input_error = None;
            }
            _ => {}
        }
        true
    }

    /// Applies one action. The one place state changes in answer to the user.
    pub fn apply(&mut self, action: Action) -> Effect {
        if self.help {
            // Help is modal: it closes on its own keys, and quit still quits.
            match action {
                Action::Help | Action::ClearFilter => self.help = false,
                Action::Quit => return Effect::Quit,
                _ => {}
            }
            return Effect::None;
        }
        let page = self.page.max(1);
        match action {
            Action::Quit => return Effect::Quit,
            Action::Help => self.help = true,
            Action::Up => self.selected = self.selected.saturating_sub(1),
            Action::Down => self.selected = self.selected.saturating_add(1),
            Action::PageUp => self.selected = self.selected.saturating_sub(page),
            Action::PageDown => self.selected = self.selected.saturating_add(page),
            Action::Home => self.selected = 0,
            Action::End => self.selected = self.rows.len().saturating_sub(1),
            Action::NextView | Action::PrevView => {
                let i = self.view.index();
                let n = View::ALL.len();
                let next = if action == Action::NextView {
                    (i + 1) % n
                } else {
                    (i + n - 1) % n
                };
                self.view = View::ALL[next];
                self.selected = 0;
                self.offset = 0;
                self.rebuild();
            }
            Action::Filter => {
                self.input = Some(self.filter.to_string());
                self.input_error = None;
            }
            Action::ClearFilter => {
                self.filter = Filter::default();
                self.quick.clear();
                self.rebuild();
            }
            Action::Sort => {
                let v = self.view.index();
                self.sort[v] = (self.sort[v] + 1) % self.view.columns().len();
                self.rebuild();
            }
            Action::SortDirection => {
                let v = self.view.index();
                self.sort_desc[v] = !self.sort_desc[v];
                self.rebuild();
            }
            Action::Pause => {
                self.paused = !self.paused;
                if !self.paused {
                    self.paused_polls = 0;
                    self.paused_changes = 0;
                    if let Some(u) = self.latest.clone() {
                        if !self.shown.as_ref().is_some_and(|s| Arc::ptr_eq(s, &u)) {
                            self.show(u);
                        }
                    }
                }
            }
            Action::Faster | Action::Slower => {
                let ms = u64::try_from(self.interval.as_millis()).unwrap_or(u64::MAX);
                let next = if action == Action::Faster {
                    INTERVALS_MS.iter().rev().find(|&&s| s < ms).copied()
                } else {
                    INTERVALS_MS.iter().find(|&&s| s > ms).copied()
                };
                if let Some(next) = next {
                    self.interval = Duration::from_millis(next);
                    return Effect::SetInterval(self.interval);
                }
            }
            Action::Detail => self.detail = !self.detail,
            Action::Lab => {
                self.toggle_lab();
                if self.lab.is_some() {
                    return Effect::OpenLab;
                }
            }
            Action::ToggleGroup => {
                let group = match self.selected_row() {
                    Some(Row::Group(s, _)) => Some(s),
                    Some(r @ (Row::Conn(_) | Row::Ghost(_))) if self.view == View::ByState => {
                        self.conn(r).map(|c| c.state)
                    }
                    _ => None,
                };
                if let Some(s) = group {
                    if !self.collapsed.remove(&s) {
                        self.collapsed.insert(s);
                    }
                    self.rebuild();
                    if let Some(i) = self
                        .rows
                        .iter()
                        .position(|r| *r == Row::Group(s, group_count(&self.rows, s)))
                    {
                        self.selected = i;
                    }
                }
            }
            Action::QuickState(i) => {
                if let Some(&s) = STRIP.get(i) {
                    if !self.quick.remove(&s) {
                        self.quick.insert(s);
                    }
                    self.selected = 0;
                    self.offset = 0;
                    self.rebuild();
                }
            }
        }
        self.clamp();
        Effect::None
    }

    /// Shows or hides the lab panel (its state is kept while hidden).
    pub fn toggle_lab(&mut self) {
        if let Some(p) = self.lab.take() {
            self.lab_hidden = Some(p);
        } else {
            self.lab = Some(self.lab_hidden.take().unwrap_or_default());
        }
        self.selected = 0;
        self.offset = 0;
        self.rebuild();
    }

    /// Routes a key to the lab panel while it is open. `None`: not the panel's key.
    pub fn on_lab_key(&mut self, k: &crossterm::event::KeyEvent) -> Option<Effect> {
        use crossterm::event::KeyCode;
        let panel = self.lab.as_mut()?;
        if k.code == KeyCode::Esc {
            self.toggle_lab();
            return Some(Effect::None);
        }
        match panel.on_key(k)? {
            Some(req) => Some(Effect::Lab(req)),
            None => Some(Effect::None),
        }
    }

    /// Selects the row at a table line clicked with the mouse.
    pub fn click_table_line(&mut self, line: usize) {
        let i = self.offset + line;
        if i < self.rows.len() {
            self.selected = i;
        }
    }
}

/// Bits of a row key holding the row's id; ids must stay below this.
const ROW_ID: u128 = (1 << 26) - 1;
/// Bits of a row key's address field, and the flag of an IPv6 address in it.
const ADDR: u128 = (1 << 49) - 1;
const V6_FLAG: u128 = 1 << 48;

/// An IPv4 socket address as a row key's address field (address, then port).
fn v4_field(sa: &SocketAddr) -> Option<u128> {
    match sa {
        SocketAddr::V4(a) => Some((u128::from(a.ip().to_bits()) << 16) | u128::from(a.port())),
        SocketAddr::V6(_) => None,
    }
}

/// An IPv6 socket address as it sorts among IPv6 addresses (address, then port).
fn v6_addr(sa: &SocketAddr) -> Option<(u128, u16)> {
    match sa {
        SocketAddr::V6(a) => Some((a.ip().to_bits(), a.port())),
        SocketAddr::V4(_) => None,
    }
}

#[derive(Clone, Debug, PartialEq)]
enum SelKey {
    Conn(SocketAddr, SocketAddr),
    Group(TcpState),
    Process(Option<u32>),
    Remote(SocketAddr),
}

fn group_count(rows: &[Row], s: TcpState) -> u32 {
    rows.iter()
        .find_map(|r| match r {
            Row::Group(g, n) if *g == s => Some(*n),
            _ => None,
        })
        .unwrap_or(0)
}

fn fin_waits(p: &ProcRow) -> u32 {
    p.counts.get(TcpState::FinWait1) + p.counts.get(TcpState::FinWait2)
}

fn owner_name(c: &Connection) -> &str {
    c.owner().and_then(|o| o.name.as_deref()).unwrap_or("")
}

fn ghost(t: &Transition, from: TcpState) -> Ghost {
    let mut conn = Connection::new(t.local, t.remote, from);
    if let Some(o) = &t.owner {
        conn.owners = vec![Owner {
            pid: o.pid,
            name: o.name.clone(),
        }]
        .into();
        conn.attribution = Some(Attribution::LastOwner);
    }
    Ghost {
        conn,
        polls_left: GHOST_POLLS,
    }
}

fn aggregate_remotes(u: &Update, matching: &[usize]) -> Vec<RemoteRow> {
    let conns = &u.snapshot.connections;
    let range = u.snapshot.ephemeral_ports;
    // Remotes keyed as integers (cheap to hash); neighbouring rows often share one.
    let mut others = FxHashMap::default();
    let mut ids: FxHashMap<u64, usize> = FxHashMap::default();
    let mut last: Option<(u64, usize)> = None;
    let mut rows: Vec<RemoteRow> = Vec::new();
    for &i in matching {
        let c = &conns[i];
        if c.state == TcpState::Listen {
            continue;
        }
        let k = endpoint_key(&c.remote(), &mut others);
        let r = match last {
            Some((lk, r)) if lk == k => r,
            _ => {
                let r = *ids.entry(k).or_insert_with(|| {
                    rows.push(RemoteRow {
                        remote: c.remote(),
                        time_wait: 0,
                        total: 0,
                        pressure: 0.0,
                        ports_used: 0,
                        from: None,
                    });
                    rows.len() - 1
                });
                last = Some((k, r));
                r
            }
        };
        rows[r].total += 1;
        rows[r].time_wait += u32::from(c.state == TcpState::TimeWait);
    }
    // Per remote, the local address using most ephemeral ports toward it (the lowest
    // address among equals: groups come sorted by local address).
    let size = f64::from(range.len().max(1));
    for members in pair_groups(conns, matching.iter().copied(), range).iter() {
        let c = &conns[members[0]];
        let Some(&r) = ids.get(&endpoint_key(&c.remote(), &mut others)) else {
            continue;
        };
        let in_use = u32::try_from(members.len()).unwrap_or(u32::MAX);
        let ratio = f64::from(in_use) / size;
        let row = &mut rows[r];
        if ratio > row.pressure {
            row.pressure = ratio;
            row.ports_used = in_use;
            row.from = Some(c.local().ip());
        }
    }
    rows
}
