//! The help overlay: every key with what it does, and the TCP close state diagram.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use crate::tui::app::App;
use crate::tui::keys::Action;
use crate::tui::theme::Theme;

/// The TCP close state diagram, as the help overlay shows it.
const DIAGRAM: &[&str] = &[
    "ACTIVE CLOSE (this side closes first)",
    " ESTABLISHED",
    "   │ close()/shutdown(): send FIN",
    " FIN_WAIT_1",
    "   │ ACK of our FIN",
    " FIN_WAIT_2    (peer never sends FIN: lingers)",
    "   │ peer's FIN, send ACK",
    " TIME_WAIT ── 2*MSL (60 s on Linux) ──> CLOSED",
    " (both FIN at once: FIN_WAIT_1 > CLOSING > TIME_WAIT)",
    "",
    "PASSIVE CLOSE (the peer closes first)",
    " ESTABLISHED",
    "   │ peer's FIN, send ACK",
    " CLOSE_WAIT    (app never calls close(): a leak)",
    "   │ close(): send FIN",
    " LAST_ACK",
    "   │ ACK of our FIN",
    " CLOSED",
];

/// The same diagram in two narrow columns, for small windows.
const COMPACT_DIAGRAM: &[&str] = &[
    "ACTIVE CLOSE (we close first)",
    " ESTABLISHED",
    "   │ close(): send FIN",
    " FIN_WAIT_1",
    "   │ ACK of our FIN",
    " FIN_WAIT_2  (peer owes FIN)",
    "   │ peer FIN, send ACK",
    " TIME_WAIT ─ 60 s ─> CLOSED",
    " (FIN both ways: CLOSING)",
    "PASSIVE CLOSE (peer first)",
    " ESTABLISHED",
    "   │ peer FIN, send ACK",
    " CLOSE_WAIT (app must close)",
    "   │ close(): send FIN",
    " LAST_ACK",
    "   │ ACK of our FIN",
    " CLOSED",
];

/// A `w`x`h` rectangle in the middle of `area` (which holds it), for an overlay.
pub(super) fn centred(area: Rect, w: u16, h: u16) -> Rect {
    Rect {
        x: area.x + area.width.saturating_sub(w) / 2,
        y: area.y + area.height.saturating_sub(h) / 2,
        width: w.min(area.width),
        height: h.min(area.height),
    }
}

/// Draws the help overlay over `area`.
pub(super) fn render_help(f: &mut Frame, app: &App, theme: &Theme, area: Rect) {
    let w = area.width.saturating_sub(4).min(110);
    // 30: every key, the VIA legend and its two lines fit at 40 rows.
    let h = area.height.saturating_sub(2).min(30);
    let rect = centred(area, w, h);
    f.render_widget(Clear, rect);
    let block = Block::default().borders(Borders::ALL).title(Span::styled(
        " Help: keys and TCP close states (? or Esc closes) ",
        theme.title,
    ));
    let inner = block.inner(rect);
    f.render_widget(block, rect);

    let keys = help_keys(app);
    let key_line = |(k, what): &(String, &str)| {
        Line::from(vec![
            Span::styled(format!("{k:<16}"), theme.key),
            Span::raw(what.to_string()),
        ])
    };
    let legend = vec![
        Line::from(Span::styled(
            "VIA column: last = owner seen at an earlier poll",
            theme.muted,
        )),
        Line::from(Span::styled(
            "            lsn = the listener on the local port",
            theme.muted,
        )),
        Line::from(Span::styled(
            "IN STATE: time since first seen in the state",
            theme.muted,
        )),
    ];
    if inner.width >= 100 {
        // The legend under the diagram: the keys' column is the longer one.
        let mut diagram: Vec<Line> = DIAGRAM.iter().map(|l| diagram_line(l, theme)).collect();
        diagram.push(Line::from(""));
        diagram.extend(legend);
        let [left, right] =
            Layout::horizontal([Constraint::Length(50), Constraint::Fill(1)]).areas(inner);
        let l: Vec<Line> = keys.iter().map(key_line).collect();
        f.render_widget(Paragraph::new(l), left);
        f.render_widget(Paragraph::new(diagram), right);
    } else {
        render_narrow(f, &paired_keys(app), theme, inner);
    }
}

/// A line of the state diagram; the headings in the title style.
fn diagram_line(l: &'static str, theme: &Theme) -> Line<'static> {
    if l.starts_with("ACTIVE") || l.starts_with("PASSIVE") {
        Line::from(Span::styled(l, theme.title))
    } else {
        Line::from(l)
    }
}

/// Narrow: keys in two columns, then the compact diagram in two.
fn render_narrow(f: &mut Frame, keys: &[(String, &'static str)], theme: &Theme, inner: Rect) {
    let half = keys.len().div_ceil(2);
    let rows = half as u16;
    let [top, bottom] =
        Layout::vertical([Constraint::Length(rows), Constraint::Fill(1)]).areas(inner);
    let [a, b] = Layout::horizontal([Constraint::Ratio(1, 2); 2]).areas(top);
    // A space always between a key and its words, and between the two columns.
    let room = usize::from(a.width).saturating_sub(12);
    let compact = |(k, what): &(String, &str)| {
        let k = k.split(", ").next().unwrap_or("");
        let what: String = if what.chars().count() > room {
            let mut w: String = what.chars().take(room.saturating_sub(1)).collect();
            w.push('…');
            w
        } else {
            what.to_string()
        };
        Line::from(vec![
            Span::styled(format!("{k:<10} "), theme.key),
            Span::raw(what),
        ])
    };
    f.render_widget(
        Paragraph::new(keys[..half].iter().map(compact).collect::<Vec<_>>()),
        a,
    );
    f.render_widget(
        Paragraph::new(keys[half..].iter().map(compact).collect::<Vec<_>>()),
        b,
    );
    let (active, passive) = COMPACT_DIAGRAM.split_at(9);
    let [c, d] = Layout::horizontal([Constraint::Ratio(1, 2); 2]).areas(bottom);
    let to_lines = |ls: &[&'static str]| -> Vec<Line> {
        ls.iter()
            .filter(|l| !l.is_empty())
            .map(|l| diagram_line(l, theme))
            .collect()
    };
    f.render_widget(
        Paragraph::new(to_lines(active)).wrap(Wrap { trim: false }),
        c,
    );
    f.render_widget(
        Paragraph::new(to_lines(passive)).wrap(Wrap { trim: false }),
        d,
    );
}

/// Every key with what it does, as the keymap binds them.
fn help_keys(app: &App) -> Vec<(String, &'static str)> {
    let mut keys: Vec<(String, &str)> = HELP
        .iter()
        .map(|&(action, what)| (app.keymap.keys_of(action), what))
        .collect();
    keys.push(("1-9, 0".to_string(), "quick state filter"));
    keys.push(("mouse".to_string(), "click selects or sorts, wheel scrolls"));
    keys
}

/// Actions that read as one line where the help is narrow (`↑/↓ move up / down`), so
/// every key and the whole diagram fit at 80x24.
const PAIRS: &[(Action, Action, &str)] = &[
    (Action::Up, Action::Down, "move up / down"),
    (Action::PageUp, Action::PageDown, "page up / down"),
    (Action::Home, Action::End, "first / last row"),
    (Action::NextView, Action::PrevView, "next / previous view"),
    (Action::Sort, Action::SortDirection, "sort column / reverse"),
    (Action::Faster, Action::Slower, "poll faster / slower"),
    (Action::Close, Action::Abort, "close FIN / abort RST"),
];

/// [`help_keys`] with [`PAIRS`] on one line each, every action's first key only.
fn paired_keys(app: &App) -> Vec<(String, &'static str)> {
    let first = |a: Action| {
        let keys = app.keymap.keys_of(a);
        keys.split(", ").next().unwrap_or("").to_string()
    };
    let mut out: Vec<(String, &str)> = Vec::new();
    for &(action, what) in HELP {
        if PAIRS.iter().any(|p| p.1 == action) {
            continue;
        }
        let what = SHORT.iter().find(|s| s.0 == action).map_or(what, |s| s.1);
        match PAIRS.iter().find(|p| p.0 == action) {
            // `shift-tab` as `S-tab`: the pair must fit the key column.
            Some(&(a, b, both)) => out.push((
                format!("{}/{}", first(a), first(b)).replace("shift-", "S-"),
                both,
            )),
            None => out.push((first(action), what)),
        }
    }
    out.push(("1-9, 0".to_string(), "quick state filter"));
    out.push(("click/wheel".to_string(), "select, sort, scroll"));
    out
}

/// Shorter words where the help is narrow (half of 74 columns, less the key's 11 and a
/// space before the next column).
const SHORT: &[(Action, &str)] = &[
    (Action::Filter, "filter; Tab completes"),
    (Action::Closes, "closes panel (endings)"),
    (Action::ToggleGroup, "fold group / open netns"),
    (Action::Copy, "copy row to clipboard"),
    (Action::Alerts, "alerts list (Enter)"),
];

/// Every action the help lists, in its order, with what it does.
const HELP: &[(Action, &str)] = &[
    (Action::Up, "move up"),
    (Action::Down, "move down"),
    (Action::PageUp, "page up"),
    (Action::PageDown, "page down"),
    (Action::Home, "first row"),
    (Action::End, "last row"),
    (Action::NextView, "next view"),
    (Action::PrevView, "previous view"),
    (Action::Filter, "filter: state: port: proc: netns:"),
    (Action::ClearFilter, "clear filter"),
    (Action::Sort, "sort by next column"),
    (Action::SortDirection, "reverse sort"),
    (Action::Pause, "pause / resume"),
    (Action::Faster, "poll faster"),
    (Action::Slower, "poll slower"),
    (Action::Detail, "show / hide detail"),
    (Action::Alerts, "alerts list: open one, Enter filters"),
    (Action::Names, "remote names / addresses"),
    (Action::ToggleGroup, "fold group / open namespace"),
    (Action::Lab, "close lab panel"),
    (Action::Closes, "closes panel: kinds, resets"),
    (Action::Help, "this help"),
    (Action::Copy, "copy row: clipboard, tmux buffer"),
    (Action::Close, "close row: FIN (--allow-close)"),
    (Action::Abort, "abort row: RST (--allow-close)"),
    (Action::Quit, "quit"),
];
