//! The close lab panel (`L`): create lab connections, pick one and an end, and close it
//! each way the lab knows; the trace appears here while the table shows the lab's sockets
//! changing state live. The panel only asks: the event loop owns the [`Lab`] and carries
//! out each [`LabRequest`], so this state stays testable without sockets.
//!
//! [`Lab`]: crate::lab::Lab

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use super::theme::Theme;
use crate::lab::{Behaviour, CloseMode, ConnId, ConnView, End, Family, Scenario};

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
    /// The latest trace, as text.
    pub trace: Vec<String>,
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
            trace: Vec::new(),
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

/// Draws the panel into `area`.
pub fn render(f: &mut Frame, p: &LabPanel, theme: &Theme, area: Rect) {
    let block = Block::default().borders(Borders::TOP).title(Span::styled(
        " Close lab · L or Esc hides it · the table shows lab sockets ",
        theme.title,
    ));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let wide = inner.width >= 100;
    let (left, right) = if wide {
        let [l, r] = Layout::horizontal([Constraint::Length(60), Constraint::Fill(1)]).areas(inner);
        (l, r)
    } else {
        let [l, r] = Layout::vertical([Constraint::Length(8), Constraint::Fill(1)]).areas(inner);
        (l, r)
    };

    let key = |k: &str| Span::styled(k.to_string(), theme.key);
    let listeners: Vec<String> = p.listeners.iter().map(|a| a.to_string()).collect();
    let mut lines = vec![
        Line::from(vec![
            Span::styled("listening ", theme.label),
            Span::raw(listeners.join("  ")),
        ]),
        Line::from(vec![
            key("b"),
            Span::raw(format!(" peer {}  ", p.behaviour())),
            key("c"),
            Span::raw(format!(" ×{}  ", p.count())),
            key("f"),
            Span::raw(format!(" {}  ", p.family.name())),
            key("o"),
            Span::raw(" open  "),
            key("T"),
            Span::raw(" TW storm  "),
            key("W"),
            Span::raw(" CW leak"),
        ]),
        Line::from(vec![
            Span::raw("close the "),
            key("e"),
            Span::raw(format!(" {} end of the selected: ", p.end.name())),
        ]),
        Line::from(
            ACTION_KEYS[..4]
                .iter()
                .flat_map(|(k, a)| [key(&k.to_string()), Span::raw(format!(" {a}  "))])
                .collect::<Vec<_>>(),
        ),
        Line::from(
            ACTION_KEYS[4..]
                .iter()
                .flat_map(|(k, a)| [key(&k.to_string()), Span::raw(format!(" {a}  "))])
                .chain([key("x"), Span::raw(" discard")])
                .collect::<Vec<_>>(),
        ),
    ];
    if let Some(s) = &p.status {
        let busy = if p.busy > 0 {
            format!("  ({} running)", p.busy)
        } else {
            String::new()
        };
        lines.push(Line::from(Span::styled(
            format!("{s}{busy}"),
            theme.warning,
        )));
    }
    let list_rows = usize::from(left.height).saturating_sub(lines.len());
    if p.conns.is_empty() {
        lines.push(Line::from(Span::styled(
            "no lab connections yet: o opens some",
            theme.muted,
        )));
    } else {
        let start = p.selected.saturating_sub(list_rows.saturating_sub(1));
        for (i, c) in p.conns.iter().enumerate().skip(start).take(list_rows) {
            let e = c.end(p.end);
            let text = format!(
                "{} {} {} {}: {}",
                c.id,
                c.behaviour,
                p.end.name(),
                e.local,
                e.status
            );
            let style = if i == p.selected {
                theme.selected
            } else {
                ratatui::style::Style::default()
            };
            lines.push(Line::from(Span::styled(text, style)));
        }
    }
    f.render_widget(Paragraph::new(lines), left);

    let trace: Vec<Line> = if p.trace.is_empty() {
        vec![Line::from(Span::styled(
            "the trace of the last close appears here: the calls, how long close() blocked, the states each end went through, what the peer read, where TIME_WAIT stayed, and where Linux differs from the documented behaviour",
            theme.muted,
        ))]
    } else {
        p.trace
            .iter()
            .map(|l| {
                if l.starts_with("deviation") {
                    Line::from(Span::styled(l.clone(), theme.warning))
                } else {
                    Line::from(l.clone())
                }
            })
            .collect()
    };
    let block = if wide {
        Block::default().borders(Borders::LEFT)
    } else {
        Block::default()
    };
    f.render_widget(
        Paragraph::new(trace)
            .block(block)
            .wrap(Wrap { trim: false }),
        right,
    );
}
