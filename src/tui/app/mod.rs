//! The dashboard's state and the one `match` that applies an [`Action`] to it. Rendering
//! reads this state and never changes it; the event loop feeds it keys and poll results.

use std::collections::{BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustc_hash::FxHashMap;

mod alerts;
mod close;
mod history;
mod names;
mod prompt;
mod rebuild;
mod row_text;
mod sort;
mod view;

pub use alerts::{AlertsList, Since};
pub use close::{CLOSE_OFF, CLOSE_REPLAY, CLOSE_WAIT_FOR, CloseConfirm, CloseKeys};
pub use history::{FilterHistory, HISTORY_MAX};
pub use names::RemoteNames;
pub use prompt::TabCycle;
pub use view::View;

use super::keys::{Action, Keymap};
use super::lab_panel::{LabPanel, LabRequest};
use super::rows::{Ghost, NetnsRow, ProcRow, RemoteRow, Row};
use crate::collector::ProcessCommand;
use crate::live::Update;
use crate::model::Alert;
use crate::model::close_stats::CloseStats;
use crate::model::tracker::Sample;
use crate::model::{
    Attribution, Connection, Filter, Owner, Rules, Severity, StateCounts, TcpState, Transition,
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
/// The most polls CW/MIN is measured over: a 60 s window at 4 Hz is 240.
const CW_HISTORY_MAX: usize = 4096;

/// The footer's confirmation of `y`: the row went to the terminal as OSC 52.
pub const COPIED: &str = "copied 1 row (OSC 52: the terminal's clipboard; tmux: its buffer)";

/// How a connection changed at the last poll.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Mark {
    New,
    Changed,
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
    /// Put this text on the clipboard (the loop writes it to the terminal as OSC 52).
    Copy(String),
    /// A confirmed close: the loop sends it to the poll thread.
    Close(Box<crate::live::CloseRequest>),
}

/// Where things were drawn last frame, for the mouse.
#[derive(Clone, Debug, Default)]
pub struct HitAreas {
    /// The table's rows (header excluded): x, y, width, height.
    pub table: (u16, u16, u16, u16),
    /// Strip cells: (x, y, width, height, index into `STRIP`).
    pub strip: Vec<(u16, u16, u16, u16, usize)>,
    /// How many alert lines the alerts box had room for.
    pub alerts_shown: usize,
    /// The alerts box's alert lines (title excluded): x, y, width, height; a click opens one.
    pub alerts_box: (u16, u16, u16, u16),
    /// How many alerts the open alerts list had room for (its page).
    pub alerts_list_rows: usize,
    /// The table's column headers: x, y, width, sort key (see `View::column_name`).
    pub headers: Vec<(u16, u16, u16, usize)>,
    /// The lab panel's trace, when the panel is open: x, y, width, height.
    pub lab_trace: (u16, u16, u16, u16),
    /// How far the lab panel's trace scrolls at the size drawn.
    pub lab_max_scroll: u16,
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
    /// The polls of the last `growth_window` (CLOSE_WAIT per pid: growth per process).
    cw_history: VecDeque<Sample>,
    /// `alerts.growth-window`: CW/MIN is measured over it, as the alert's growth is.
    growth_window: Duration,
    pub view: View,
    pub filter: Filter,
    pub quick: BTreeSet<TcpState>,
    /// The filter prompt while it is open.
    pub input: Option<String>,
    pub input_error: Option<String>,
    /// Where in the prompt's text (0-based, in characters) the error starts.
    pub input_error_at: Option<usize>,
    /// The prompt's cursor, in characters from the start of its text.
    pub input_cursor: usize,
    /// The filter applied when the prompt opened, given back by Esc.
    filter_before_prompt: Option<Filter>,
    /// Tab's candidates while Tab is being pressed in the prompt.
    pub tab: Option<TabCycle>,
    /// The filters applied with Enter (Up/Down in the prompt).
    pub filter_history: FilterHistory,
    pub sort: [usize; View::ALL.len()],
    pub sort_desc: [bool; View::ALL.len()],
    pub collapsed: BTreeSet<TcpState>,
    pub help: bool,
    pub detail: bool,
    pub rows: Vec<Row>,
    pub procs: Vec<ProcRow>,
    pub remotes: Vec<RemoteRow>,
    /// The by-namespace view's rows.
    pub netns_rows: Vec<NetnsRow>,
    pub ghosts: Vec<Ghost>,
    pub marks: FxHashMap<(SocketAddr, SocketAddr), Mark>,
    pub selected: usize,
    pub offset: usize,
    /// Table rows visible in the last frame.
    pub page: usize,
    pub hit: HitAreas,
    /// A one-line message for the footer (poll errors).
    pub status: Option<String>,
    /// A one-line confirmation for the footer ("copied 1 row"), until the next key.
    pub notice: Option<String>,
    /// In a replay: what the header says instead of LIVE (REPLAY, the instant, the cursor).
    pub replay: Option<String>,
    pub errors: u64,
    /// The close lab panel, while it is open; the table then shows lab sockets only.
    pub lab: Option<LabPanel>,
    /// The panel's state while hidden, so reopening it finds it as it was.
    lab_hidden: Option<LabPanel>,
    /// The filter and quick states set aside while the lab panel is open (its table shows
    /// the lab's own sockets, which a start filter such as `port:19900` would hide), given
    /// back when it closes.
    filter_before_lab: Option<(Filter, BTreeSet<TcpState>)>,
    /// How connections end, for the closes panel: `None` until the runner has a source.
    pub closes: Option<CloseStats>,
    /// The closes panel is open.
    pub closes_panel: bool,
    /// The close rules' alerts (reset storm, TIME_WAIT overflow), from [`App::closes`].
    pub close_alerts: Vec<Alert>,
    /// The alerts list (`a`): open or not, its selection, when each alert began.
    pub alerts_list: AlertsList,
    /// How many alerts the box showed at the last draw.
    pub alerts_shown: usize,
    /// Finds what the selected row's owner runs, for the detail pane: the dashboard sets
    /// it to the OS's (`/proc`), tests to a fixture; none shows no command line.
    pub command_of: Option<fn(u32) -> Option<ProcessCommand>>,
    /// Remote names (reverse DNS), as far as they have come, and whether they are shown.
    pub names: RemoteNames,
    /// Whether the close keys act, and the rails they go through.
    pub close_keys: CloseKeys,
    /// A close waiting for its confirmation (`y`, or `n`/Esc).
    pub confirm: Option<CloseConfirm>,
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
            growth_window: Rules::default().growth_window,
            view: View::All,
            filter,
            quick: BTreeSet::new(),
            input: None,
            input_error: None,
            input_error_at: None,
            input_cursor: 0,
            filter_before_prompt: None,
            tab: None,
            filter_history: FilterHistory::default(),
            sort: View::ALL.map(View::default_sort).map(|(col, _)| col),
            sort_desc: View::ALL.map(View::default_sort).map(|(_, desc)| desc),
            collapsed: BTreeSet::new(),
            help: false,
            detail: true,
            rows: Vec::new(),
            procs: Vec::new(),
            remotes: Vec::new(),
            netns_rows: Vec::new(),
            ghosts: Vec::new(),
            marks: FxHashMap::default(),
            selected: 0,
            offset: 0,
            page: 10,
            hit: HitAreas::default(),
            status: None,
            notice: None,
            replay: None,
            errors: 0,
            lab: None,
            lab_hidden: None,
            filter_before_lab: None,
            alerts_list: AlertsList::default(),
            alerts_shown: 1,
            closes: None,
            closes_panel: false,
            close_alerts: Vec::new(),
            command_of: None,
            names: RemoteNames::default(),
            close_keys: CloseKeys::default(),
            confirm: None,
        }
    }

    /// Sets `alerts.growth-window`, over which CW/MIN is measured (default 60 s).
    pub fn set_growth_window(&mut self, window: Duration) {
        self.growth_window = window;
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
        // Only the polls a growth can be measured from (the last one older than the window
        // goes once the next is older too), at most CW_HISTORY_MAX.
        let now = u.sample.at;
        let window = self.growth_window;
        while self.cw_history.len() > 1
            && self
                .cw_history
                .get(1)
                .is_some_and(|s| now.duration_since(s.at).unwrap_or_default() > window)
            || self.cw_history.len() >= CW_HISTORY_MAX
        {
            self.cw_history.pop_front();
        }
        self.cw_history.push_back(u.sample.clone());
        self.errors = u.errors;
        self.status = None;
        self.latest = Some(u.clone());
        self.observe_alerts(now);
        if self.paused {
            self.paused_polls += 1;
            self.paused_changes += u.transitions.iter().filter(|t| t.from != t.to).count();
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
                // Its owner named at last: not a change of the connection.
                (Some(from), Some(to)) if from == to => {}
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

    /// Records where the last frame put things (the loop calls it after each draw).
    pub fn after_draw(&mut self, hit: HitAreas) {
        self.page = usize::from(hit.table.3).max(1);
        self.alerts_shown = hit.alerts_shown.max(1);
        self.alerts_list.page = hit.alerts_list_rows.max(1);
        if let Some(p) = &mut self.lab {
            p.max_scroll = hit.lab_max_scroll;
            p.scroll = p.scroll.min(p.max_scroll);
        }
        self.hit = hit;
        self.clamp();
    }

    /// Every alert the alerts box shows: the poll's and the close rules', worst first.
    pub fn all_alerts(&self) -> Vec<&Alert> {
        let mut v: Vec<&Alert> = self
            .latest
            .iter()
            .flat_map(|u| u.alerts.iter())
            .chain(self.close_alerts.iter())
            .collect();
        // Worst first: severity, then how many connections (or resets) are behind it;
        // stable, so each source's own order stays among equals.
        v.sort_by_key(|a| std::cmp::Reverse((a.severity, a.count)));
        v
    }

    /// The severity of the worst alert on each strip state.
    pub fn alerted_states(&self) -> FxHashMap<TcpState, Severity> {
        let mut out: FxHashMap<TcpState, Severity> = FxHashMap::default();
        {
            for a in self.all_alerts() {
                // Resets end connections in any state: no strip state to mark.
                let Some(state) = a.rule.state() else {
                    continue;
                };
                let e = out.entry(state).or_insert(a.severity);
                *e = (*e).max(a.severity);
            }
        }
        out
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
        self.notice = None;
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
            Action::Filter => self.open_prompt(),
            Action::ClearFilter => {
                self.filter = Filter::default();
                self.quick.clear();
                self.rebuild();
            }
            Action::Sort => self.next_sort(),
            Action::SortDirection => {
                let v = self.view.index();
                self.sort_desc[v] = !self.sort_desc[v];
                self.rebuild();
            }
            Action::Pause => self.toggle_pause(),
            Action::Faster | Action::Slower => {
                if let Some(d) = self.step_interval(action == Action::Faster) {
                    return Effect::SetInterval(d);
                }
            }
            Action::Detail => self.detail = !self.detail,
            Action::Alerts if !self.all_alerts().is_empty() => {
                let at = self.alerts_list.selected;
                self.open_alert(at);
            }
            Action::Alerts => {}
            Action::Lab => {
                self.toggle_lab();
                if self.lab.is_some() {
                    return Effect::OpenLab;
                }
            }
            Action::Closes => self.closes_panel = !self.closes_panel,
            Action::Copy => match self.row_text() {
                Ok(text) => {
                    self.notice = Some(COPIED.to_string());
                    return Effect::Copy(text);
                }
                Err(why) => self.notice = Some(format!("nothing copied: {why}")),
            },
            Action::Names => self.toggle_names(),
            Action::Close => self.ask_close(crate::model::action::CloseHow::Graceful),
            Action::Abort => self.ask_close(crate::model::action::CloseHow::Abort),
            Action::ToggleGroup if self.view == View::ByNetns => self.open_netns(),
            Action::ToggleGroup => self.toggle_group(),
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

    /// Pauses, or resumes and shows the newest poll.
    fn toggle_pause(&mut self) {
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

    /// Moves the poll interval one step faster or slower; the new interval, or `None` at
    /// either end of the steps.
    fn step_interval(&mut self, faster: bool) -> Option<Duration> {
        let ms = u64::try_from(self.interval.as_millis()).unwrap_or(u64::MAX);
        let next = if faster {
            INTERVALS_MS.iter().rev().find(|&&s| s < ms).copied()
        } else {
            INTERVALS_MS.iter().find(|&&s| s > ms).copied()
        }?;
        self.interval = Duration::from_millis(next);
        Some(self.interval)
    }

    /// Folds or unfolds the selected state group (or the group of the selected connection
    /// in the by-state view), keeping its header selected.
    fn toggle_group(&mut self) {
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

    /// The by-namespace view's Enter: the table of every connection, filtered to the
    /// selected namespace (added to the filter already typed; Esc clears it).
    fn open_netns(&mut self) {
        let Some(Row::Netns(i)) = self.selected_row() else {
            return;
        };
        let Some(ns) = self.netns_rows.get(i) else {
            return;
        };
        // Quoted: names such as `sleep[812]` hold characters the filter would read.
        let term = format!("netns:\"{}\"", ns.name.replace('"', ""));
        let text = match self.filter.to_string() {
            t if t.is_empty() => term,
            t => format!("{t} {term}"),
        };
        match Filter::parse(&text) {
            Ok(f) => {
                self.filter = f;
                self.view = View::All;
                self.selected = 0;
                self.offset = 0;
                self.rebuild();
            }
            Err(e) => self.input_error = Some(e.to_string()),
        }
    }

    /// Shows or hides the lab panel (its state is kept while hidden).
    pub fn toggle_lab(&mut self) {
        if let Some(p) = self.lab.take() {
            self.lab_hidden = Some(p);
            if let Some((filter, quick)) = self.filter_before_lab.take() {
                self.filter = filter;
                self.quick = quick;
            }
        } else {
            let mut panel = self.lab_hidden.take().unwrap_or_default();
            let before = self.filter_text();
            if !before.is_empty() {
                panel.status = Some(format!(
                    "the filter \"{before}\" is set aside while the lab is open (the table shows the lab's sockets); it is back when you close the lab"
                ));
            }
            self.filter_before_lab = Some((
                std::mem::take(&mut self.filter),
                std::mem::take(&mut self.quick),
            ));
            self.lab = Some(panel);
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

fn group_count(rows: &[Row], s: TcpState) -> u32 {
    rows.iter()
        .find_map(|r| match r {
            Row::Group(g, n) if *g == s => Some(*n),
            _ => None,
        })
        .unwrap_or(0)
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
