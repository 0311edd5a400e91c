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
    /// The trace of the last close that finished.
    pub trace: Option<Trace>,
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
            trace: None,
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
            KeyCode::Char('T') => Some(LabRequest::Scenario {
                scenario: Scenario::TimeWaitStorm,
                count: self.count().max(20),
                family: self.family,
            }),
            KeyCode::Char('W') => Some(LabRequest::Scenario {
                scenario: Scenario::CloseWaitLeak,
                count: self.count().max(20),
                family: self.family,
            }),
            KeyCode::Char('x') => match self.selected_conn() {
                Some(c) => Some(LabRequest::Discard(c.id)),
                None => {
                    self.status = Some("no lab connection selected: press o to open some".into());
                    None
                }
            },
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
