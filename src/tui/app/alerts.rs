//! The alerts list: every alert worst first, one selected and opened (what it is, who,
//! since when, the rule and its threshold), Enter to filter the table to its connections.
//! Its state lives here; the one `match` of `App::apply` opens it, and while it is open its
//! keys come here first (`App::on_alerts_key`).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustc_hash::FxHashMap;

use super::{App, Effect, View};
use crate::model::{Alert, Filter, RuleId, Rules};
use crate::tui::keys::Action;

/// What makes an alert the same alert from one poll to the next: its rule and whom it
/// names (its count and message change as connections come and go).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AlertKey {
    rule: RuleId,
    pid: Option<u32>,
    local_ip: Option<IpAddr>,
    remote: Option<SocketAddr>,
    netns: Option<Arc<str>>,
}

impl AlertKey {
    pub fn of(a: &Alert) -> Self {
        AlertKey {
            rule: a.rule,
            pid: a.pid,
            local_ip: a.local_ip,
            remote: a.remote,
            netns: a.netns.clone(),
        }
    }
}

/// The alerts list's state.
#[derive(Clone, Debug, Default)]
pub struct AlertsList {
    /// The list has the keys and the screen below the strip.
    pub open: bool,
    /// Index into [`App::all_alerts`].
    pub selected: usize,
    /// How many alerts the list showed at the last draw, for PgUp/PgDn.
    pub page: usize,
    /// The selected alert's identity, so a poll that reorders the alerts keeps it selected.
    selected_key: Option<AlertKey>,
    /// When the dashboard first saw each alert it still sees.
    since: FxHashMap<AlertKey, SystemTime>,
    /// The first poll the dashboard saw: an alert raised there may be older.
    first_poll: Option<SystemTime>,
    /// The thresholds the alerts were raised with, for the opened alert's rule line.
    pub rules: Rules,
}

/// When an alert was first seen: at `at`, or already at the dashboard's first poll.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Since {
    pub at: SystemTime,
    /// Raised at the first poll: it may have begun before lingertop started.
    pub at_start: bool,
}

impl App {
    /// The rule thresholds the poll thread runs with (`[alerts]` of the config), for the
    /// alerts list's rule lines and CW/MIN's window.
    pub fn set_rules(&mut self, rules: &Rules) {
        self.set_growth_window(rules.growth_window);
        self.alerts_list.rules = rules.clone();
    }

    /// Notes which alerts are new at the poll taken `at` and keeps the list's selection on
    /// the same alert; the loop calls it after each poll (`on_update` does).
    pub(super) fn observe_alerts(&mut self, at: SystemTime) {
        let keys: Vec<AlertKey> = self.all_alerts().into_iter().map(AlertKey::of).collect();
        let list = &mut self.alerts_list;
        list.first_poll.get_or_insert(at);
        list.since.retain(|k, _| keys.contains(k));
        for k in &keys {
            list.since.entry(k.clone()).or_insert(at);
        }
        if let Some(i) = list
            .selected_key
            .as_ref()
            .and_then(|sel| keys.iter().position(|k| k == sel))
        {
            list.selected = i;
        }
        list.selected = list.selected.min(keys.len().saturating_sub(1));
        list.selected_key = keys.get(list.selected).cloned();
    }

    /// The alert the list has selected.
    pub fn selected_alert(&self) -> Option<&Alert> {
        self.all_alerts().get(self.alerts_list.selected).copied()
    }

    /// When the dashboard first saw `a`.
    pub fn alert_since(&self, a: &Alert) -> Option<Since> {
        let at = *self.alerts_list.since.get(&AlertKey::of(a))?;
        Some(Since {
            at,
            at_start: self.alerts_list.first_poll == Some(at),
        })
    }

    /// How long the oldest connection behind `a` has been in its state. The dashboard runs
    /// the rules over the whole poll, so an alert's connections index the newest poll.
    pub fn oldest_behind(&self, a: &Alert) -> Option<Duration> {
        let snap = &self.latest.as_ref()?.snapshot;
        a.connections
            .iter()
            .filter_map(|&i| snap.connections.get(i))
            .filter(|c| a.rule.state().is_none_or(|s| s == c.state))
            .filter_map(|c| c.state_age(snap.taken_at))
            .max()
    }

    /// Routes a key to the alerts list while it is open: moves, Enter filters the table to
    /// the selected alert, Esc (or the alerts key again) leaves. `None`: the list is closed.
    pub fn on_alerts_key(&mut self, k: &crossterm::event::KeyEvent) -> Option<Effect> {
        use crossterm::event::KeyCode;
        if !self.alerts_list.open || self.help || self.input.is_some() {
            return None;
        }
        let n = self.all_alerts().len();
        let page = self.alerts_list.page.max(1);
        let action = match k.code {
            // Whatever they are bound to, these two keep their meaning in a list.
            KeyCode::Enter => Some(Action::ToggleGroup),
            KeyCode::Esc => Some(Action::ClearFilter),
            _ => self.keymap.action(k),
        };
        let sel = self.alerts_list.selected;
        let moved = match action {
            Some(Action::Up) => sel.saturating_sub(1),
            Some(Action::Down) => sel + 1,
            Some(Action::PageUp) => sel.saturating_sub(page),
            Some(Action::PageDown) => sel + page,
            Some(Action::Home) => 0,
            Some(Action::End) => n.saturating_sub(1),
            Some(Action::ToggleGroup) => {
                self.filter_to_selected_alert();
                return Some(Effect::None);
            }
            Some(Action::ClearFilter | Action::Alerts) => {
                self.alerts_list.open = false;
                return Some(Effect::None);
            }
            // Quit and help as anywhere; the table's other keys wait until the list closes.
            Some(Action::Quit) => return Some(Effect::Quit),
            Some(Action::Help) => {
                self.help = true;
                return Some(Effect::None);
            }
            _ => return Some(Effect::None),
        };
        self.select_alert(moved);
        Some(Effect::None)
    }

    /// Opens the list at alert `i` (a click on the alerts box).
    pub fn open_alert(&mut self, i: usize) {
        self.alerts_list.open = true;
        self.select_alert(i);
    }

    fn select_alert(&mut self, i: usize) {
        let alerts = self.all_alerts();
        let i = i.min(alerts.len().saturating_sub(1));
        let key = alerts.get(i).map(|a| AlertKey::of(a));
        self.alerts_list.selected = i;
        self.alerts_list.selected_key = key;
    }

    /// The table of every connection filtered to the selected alert's (the footer shows
    /// the filter; clear-filter undoes it), and the list closed.
    fn filter_to_selected_alert(&mut self) {
        let Some(text) = self.selected_alert().map(Alert::filter_text) else {
            return;
        };
        match Filter::parse(&text) {
            Ok(f) => {
                self.filter = f;
                self.quick.clear();
                self.view = View::All;
                // Oldest first: a lingering rule's connections (past its age) come on top
                // of the younger ones of the same state that the filter also shows.
                let v = View::All.index();
                (self.sort[v], self.sort_desc[v]) = (4, true);
                self.alerts_list.open = false;
                self.rebuild();
                // From the top (the oldest), not wherever the row selected before landed.
                self.selected = 0;
                self.offset = 0;
            }
            Err(e) => self.status = Some(format!("cannot filter to this alert: {e}")),
        }
    }
}
