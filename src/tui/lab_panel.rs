//! The close lab panel (`L`): create lab connections, pick one and an end, and close it
//! each way the lab knows; the trace appears here while the table shows the lab's sockets
//! changing state live. The panel only asks: the event loop owns the [`Lab`] and carries
//! out each [`LabRequest`], so this state stays testable without sockets. Drawn by
//! `ui::lab_panel`.
//!
//! [`Lab`]: crate::lab::Lab

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::lab::{Behaviour, CloseMode, ConnId, ConnView, End, Family, Scenario, Trace};
use crate::report::lab::trace_text;

/// Traces kept: every close of a session up to this many (a trace is a few dozen short
/// lines), the oldest dropped past it.
pub const MAX_TRACES: usize = 10_000;

/// Lines the trace moves on PageUp/PageDown and on a mouse wheel step.
const SCROLL_PAGE: u16 = 5;
const SCROLL_WHEEL: u16 = 3;

/// Counts `c` cycles through when opening connections or running a scenario.
const COUNTS: [usize; 5] = [1, 5, 20, 100, 500];

/// Close action keys, in the order the panel lists them.
pub const ACTION_KEYS: [(char, CloseMode); 8] = [
    ('p', CloseMode::Plain),
    ('g', CloseMode::Graceful),
    ('a', CloseMode::Abort),
    ('l', CloseMode::Linger),
    ('n', CloseMode::LingerNonblocking),
    ('h', CloseMode::HalfClose),
    ('u', CloseMode::UnreadData),
    ('w', CloseMode::PeerNeverCloses),
];

/// What the panel asks the event loop to do with the lab.
#[derive(Clone, Debug, PartialEq)]
pub enum LabRequest {
    Open {
        behaviour: Behaviour,
        count: usize,
        family: Family,
    },
    Close {
        id: ConnId,
        end: End,
        action: CloseMode,
    },
    Scenario {
        scenario: Scenario,
        count: usize,
        family: Family,
    },
    Discard(ConnId),
}

/// The panel's state.
#[derive(Clone, Debug)]
pub struct LabPanel {
    pub behaviour: usize,
    pub count: usize,
    pub family: Family,
    pub end: End,
    pub selected: usize,
    /// The lab's connections, newest last, as the loop last read them.
    pub conns: Vec<ConnView>,
    pub listeners: Vec<std::net::SocketAddr>,
    /// The traces of the session's closes, oldest first (see [`MAX_TRACES`]).
    pub traces: Vec<Trace>,
    /// Which of `traces` is shown.
    pub shown: usize,
    /// The first line of the shown trace in view.
    pub scroll: u16,
    /// The furthest `scroll` goes: the last screenful of the trace as last drawn (it
    /// depends on the width the trace wraps to).
    pub max_scroll: u16,
    /// One line on what just happened (opened, running, refused...).
    pub status: Option<String>,
    /// Operations still running.
    pub busy: usize,
}

impl Default for LabPanel {
    fn default() -> Self {
        LabPanel {
            behaviour: 0,
            count: 0,
            family: Family::Ipv4,
            end: End::Client,
            selected: 0,
            conns: Vec::new(),
            listeners: Vec::new(),
            traces: Vec::new(),
            shown: 0,
            scroll: 0,
            max_scroll: u16::MAX,
            status: None,
            busy: 0,
        }
    }
}

impl LabPanel {
    pub fn behaviour(&self) -> Behaviour {
        Behaviour::ALL[self.behaviour % Behaviour::ALL.len()]
    }

    pub fn count(&self) -> usize {
        COUNTS[self.count % COUNTS.len()]
    }

    /// Keeps a finished close's trace and shows it from its first line.
    pub fn push_trace(&mut self, t: Trace) {
        if self.traces.len() >= MAX_TRACES {
            self.traces.remove(0);
        }
        self.traces.push(t);
        self.shown = self.traces.len() - 1;
        self.scroll = 0;
        self.max_scroll = u16::MAX;
    }

    /// The trace shown, with its place among the session's (1-based).
    pub fn shown_trace(&self) -> Option<(usize, &Trace)> {
        self.traces.get(self.shown).map(|t| (self.shown + 1, t))
    }

    /// Scrolls the trace `lines` down (negative: up), no further than its last screenful.
    pub fn scroll_trace(&mut self, lines: i32) {
        let to = i32::from(self.scroll)
            .saturating_add(lines)
            .clamp(0, i32::from(self.max_scroll));
        self.scroll = u16::try_from(to).unwrap_or(u16::MAX);
    }

    /// A mouse wheel step over the trace (`down` or up).
    pub fn wheel(&mut self, down: bool) {
        let step = i32::from(SCROLL_WHEEL);
        self.scroll_trace(if down { step } else { -step });
    }

    /// Shows the previous (`older`) or next trace, from its first line.
    fn step_trace(&mut self, older: bool) {
        let last = self.traces.len().saturating_sub(1);
        self.shown = if older {
            self.shown.saturating_sub(1)
        } else {
            (self.shown + 1).min(last)
        };
        self.scroll = 0;
        self.max_scroll = u16::MAX;
    }

    pub fn selected_conn(&self) -> Option<&ConnView> {
        self.conns.get(self.selected)
    }

    /// Replaces the connection list, keeping the same connection selected.
    pub fn set_conns(&mut self, conns: Vec<ConnView>) {
        let keep = self.selected_conn().map(|c| c.id);
        self.conns = conns;
        if let Some(i) = keep.and_then(|id| self.conns.iter().position(|c| c.id == id)) {
            self.selected = i;
        }
        self.selected = self.selected.min(self.conns.len().saturating_sub(1));
    }

    /// Handles a key while the panel is open. `Some(None)`: handled, nothing to run;
    /// `None`: not a panel key.
    pub fn on_key(&mut self, k: &KeyEvent) -> Option<Option<LabRequest>> {
        if k.modifiers.contains(KeyModifiers::CONTROL) {
            return None;
        }
        let req = match k.code {
            KeyCode::Char('b') => {
                self.behaviour = (self.behaviour + 1) % Behaviour::ALL.len();
                None
            }
            KeyCode::Char('c') => {
                self.count = (self.count + 1) % COUNTS.len();
                None
            }
            KeyCode::Char('f') => {
                self.family = match self.family {
                    Family::Ipv4 => Family::Ipv6,
                    Family::Ipv6 => Family::Ipv4,
                };
                None
            }
            KeyCode::Char('e') => {
                self.end = self.end.other();
                None
            }
            KeyCode::Char('o') => Some(LabRequest::Open {
                behaviour: self.behaviour(),
                count: self.count(),
                family: self.family,
            }),
            // The count shown is the count run (`c` cycles it), small ones too: a
            // scenario of 1 is a fine way to watch one close.
            KeyCode::Char('T') => Some(LabRequest::Scenario {
                scenario: Scenario::TimeWaitStorm,
                count: self.count(),
                family: self.family,
            }),
            KeyCode::Char('W') => Some(LabRequest::Scenario {
                scenario: Scenario::CloseWaitLeak,
                count: self.count(),
                family: self.family,
            }),
            KeyCode::Char('x') => match self.selected_conn() {
                Some(c) => Some(LabRequest::Discard(c.id)),
                None => {
                    self.status = Some("no lab connection selected: press o to open some".into());
                    None
                }
            },
            KeyCode::PageDown => {
                self.scroll_trace(i32::from(SCROLL_PAGE));
                None
            }
            KeyCode::PageUp => {
                self.scroll_trace(-i32::from(SCROLL_PAGE));
                None
            }
            KeyCode::Char('[') => {
                self.step_trace(true);
                None
            }
            KeyCode::Char(']') => {
                self.step_trace(false);
                None
            }
            KeyCode::Up | KeyCode::Char('k') => {
                self.selected = self.selected.saturating_sub(1);
                None
            }
            KeyCode::Down | KeyCode::Char('j') => {
                self.selected = (self.selected + 1).min(self.conns.len().saturating_sub(1));
                None
            }
            KeyCode::Char(c) => {
                let (_, action) = ACTION_KEYS.iter().find(|(k, _)| *k == c)?;
                match self.selected_conn() {
                    Some(conn) => Some(LabRequest::Close {
                        id: conn.id,
                        end: self.end,
                        action: *action,
                    }),
                    None => {
                        self.status =
                            Some("no lab connection selected: press o to open some".into());
                        None
                    }
                }
            }
            _ => return None,
        };
        Some(req)
    }
}

/// One line of a trace in the panel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceLine {
    pub text: String,
    /// The line saying where Linux differs from the documents (drawn as a warning).
    pub deviation: bool,
}

/// The trace as the panel shows it: the verdict first (what close returned, what the peer
/// read, where TIME_WAIT stayed, the deviation), then the states, then the calls; lines
/// without their indentation, each block followed by a blank line.
pub fn trace_lines(t: &Trace) -> Vec<TraceLine> {
    let text = trace_text(t);
    let plain = |l: &String| TraceLine {
        text: l.trim_start().to_string(),
        deviation: false,
    };
    let blank = || TraceLine {
        text: String::new(),
        deviation: false,
    };
    let mut out: Vec<TraceLine> = text.head.iter().map(plain).collect();
    out.push(blank());
    out.extend(text.verdict.iter().map(|(label, l)| TraceLine {
        deviation: *label == "deviation",
        ..plain(l)
    }));
    for block in [&text.states, &text.calls] {
        out.push(blank());
        out.extend(block.iter().map(plain));
    }
    out.push(blank());
    out
}
