//! The close lab panel: its keys, the lab's listeners and connections, and the traces of
//! the session's closes, one at a time, scrollable.
//!
//! The keys flow into as many lines as the width needs, so none is cut at 60 columns; the
//! trace has a title line saying which trace of how many and which lines are in view.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use crate::tui::lab_panel::{ACTION_KEYS, LabPanel, trace_lines};
use crate::tui::theme::Theme;

/// Below this inner width the keys sit above the trace instead of beside it.
const SIDE_BY_SIDE: u16 = 100;
/// The left column's width when side by side.
const LEFT_WIDTH: u16 = 60;
/// Connection rows kept in view when the keys sit above the trace.
const NARROW_CONN_ROWS: usize = 2;

/// Draws the panel into `area`; returns the trace's area (for the mouse wheel) and how far
/// the trace scrolls at this size.
pub(super) fn render_lab_panel(
    f: &mut Frame,
    p: &LabPanel,
    theme: &Theme,
    area: Rect,
) -> (Rect, u16) {
    let block = Block::default().borders(Borders::TOP).title(Span::styled(
        " Close lab · L or Esc hides it · the table shows lab sockets ",
        theme.title,
    ));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let wide = inner.width >= SIDE_BY_SIDE;
    let left_w = if wide { LEFT_WIDTH } else { inner.width };
    let mut lines = key_lines(p, theme, usize::from(left_w));
    let (left, right) = if wide {
        let [l, r] =
            Layout::horizontal([Constraint::Length(LEFT_WIDTH), Constraint::Fill(1)]).areas(inner);
        (l, r)
    } else {
        // The keys and a few connections above; the trace gets the rest, at least 3 lines.
        let want = lines.len() + NARROW_CONN_ROWS;
        let top = u16::try_from(want)
            .unwrap_or(u16::MAX)
            .min(inner.height.saturating_sub(3));
        let [l, r] = Layout::vertical([Constraint::Length(top), Constraint::Fill(1)]).areas(inner);
        (l, r)
    };
    let list_rows = usize::from(left.height).saturating_sub(lines.len());
    lines.extend(conn_lines(p, theme, list_rows));
    f.render_widget(Paragraph::new(lines), left);

    let block = if wide {
        Block::default().borders(Borders::LEFT)
    } else {
        Block::default()
    };
    let trace_area = block.inner(right);
    f.render_widget(block, right);
    let max_scroll = render_trace(f, p, theme, trace_area);
    (trace_area, max_scroll)
}

/// Packs `items` (each a list of spans) into lines of at most `width` columns, two spaces
/// between items; an item wider than `width` gets a line of its own.
fn flow(items: Vec<Vec<Span<'static>>>, width: usize) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    let mut cur: Vec<Span<'static>> = Vec::new();
    let mut used = 0;
    for item in items {
        let w: usize = item.iter().map(Span::width).sum();
        if !cur.is_empty() && used + 2 + w > width {
            lines.push(Line::from(std::mem::take(&mut cur)));
            used = 0;
        }
        if !cur.is_empty() {
            cur.push(Span::raw("  "));
            used += 2;
        }
        cur.extend(item);
        used += w;
    }
    if !cur.is_empty() {
        lines.push(Line::from(cur));
    }
    lines
}

/// `text` broken at spaces into lines of at most `width` columns (a longer word is cut).
fn wrap_words(text: &str, width: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for word in text.split(' ') {
        if !cur.is_empty() && cur.chars().count() + 1 + word.chars().count() > width {
            out.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The listeners, the keys with the settings they change, and the status line, fitted to
/// `width` columns.
fn key_lines(p: &LabPanel, theme: &Theme, width: usize) -> Vec<Line<'static>> {
    let key = |k: &str| Span::styled(k.to_string(), theme.key);
    let item = |k: &str, what: String| vec![key(k), Span::raw(format!(" {what}"))];
    let listeners: Vec<String> = p.listeners.iter().map(|a| a.to_string()).collect();
    let mut lines = vec![Line::from(vec![
        Span::styled("listening ", theme.label),
        Span::raw(listeners.join("  ")),
    ])];
    lines.extend(flow(
        vec![
            item("b", format!("peer {}", p.behaviour())),
            item("c", format!("×{}", p.count())),
            item("f", p.family.name().to_string()),
            item("o", "open".into()),
            item("T", "TW storm".into()),
            item("W", "CW leak".into()),
        ],
        width,
    ));
    let mut actions = vec![vec![
        Span::raw("close the "),
        key("e"),
        Span::raw(format!(" {} end of the selected:", p.end.name())),
    ]];
    actions.extend(
        ACTION_KEYS
            .iter()
            .map(|(k, a)| item(&k.to_string(), a.to_string())),
    );
    actions.push(item("x", "discard".into()));
    lines.extend(flow(actions, width));
    if let Some(s) = &p.status {
        let busy = if p.busy > 0 {
            format!("  ({} running)", p.busy)
        } else {
            String::new()
        };
        lines.extend(
            wrap_words(&format!("{s}{busy}"), width)
                .into_iter()
                .map(|l| Line::from(Span::styled(l, theme.warning))),
        );
    }
    lines
}

/// Up to `list_rows` of the lab's connections, the selected one in view.
fn conn_lines(p: &LabPanel, theme: &Theme, list_rows: usize) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
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
                Style::default()
            };
            lines.push(Line::from(Span::styled(text, style)));
        }
    }
    lines
}

/// The shown trace under a title line (which of how many, the lines in view, the keys),
/// the deviation as a warning; a hint before the first close. Returns the furthest the
/// trace scrolls.
fn render_trace(f: &mut Frame, p: &LabPanel, theme: &Theme, area: Rect) -> u16 {
    let Some((nth, t)) = p.shown_trace() else {
        f.render_widget(
            Paragraph::new(Span::styled(
                "the trace of the last close appears here (every close of the session is kept: [ and ] step through them): the calls, how long close() blocked, the states each end went through, what the peer read, where TIME_WAIT stayed, and where Linux differs from the documented behaviour",
                theme.muted,
            ))
            .wrap(Wrap { trim: false }),
            area,
        );
        return 0;
    };
    let [title, text] = Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(area);
    // Wrapped here rather than by the paragraph, so the lines in view can be counted.
    let body: Vec<Line<'static>> = trace_lines(t)
        .into_iter()
        .flat_map(|l| {
            let style = if l.deviation {
                theme.warning
            } else {
                Style::default()
            };
            let parts = wrap_words(&l.text, usize::from(text.width).max(1));
            let parts = if parts.is_empty() {
                vec![String::new()]
            } else {
                parts
            };
            parts
                .into_iter()
                .map(move |s| Line::from(Span::styled(s, style)))
        })
        .collect();
    let total = u16::try_from(body.len()).unwrap_or(u16::MAX);
    let max_scroll = total.saturating_sub(text.height);
    let scroll = p.scroll.min(max_scroll);
    let last = (scroll + text.height).min(total);
    let key = |k: &str| Span::styled(k.to_string(), theme.key);
    f.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(format!("trace {nth}/{} ", p.traces.len()), theme.label),
            Span::raw(format!(" {}-{last} of {total}  ", scroll + 1)),
            key("pgup/pgdn"),
            Span::raw(" scroll  "),
            key("[ ]"),
            Span::raw(" older/newer"),
        ])),
        title,
    );
    f.render_widget(Paragraph::new(body).scroll((scroll, 0)), text);
    max_scroll
}
