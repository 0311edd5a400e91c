//! The close lab panel: its keys, the lab's listeners and connections, and the trace of
//! the last close.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use crate::tui::lab_panel::{ACTION_KEYS, LabPanel, trace_lines};
use crate::tui::theme::Theme;

/// Draws the panel into `area`.
pub(super) fn render_lab_panel(f: &mut Frame, p: &LabPanel, theme: &Theme, area: Rect) {
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

    let trace = trace_view(p, theme);
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

/// The trace of the last close, the deviation as a warning; a hint before the first.
fn trace_view(p: &LabPanel, theme: &Theme) -> Vec<Line<'static>> {
    match &p.trace {
        None => vec![Line::from(Span::styled(
            "the trace of the last close appears here: the calls, how long close() blocked, the states each end went through, what the peer read, where TIME_WAIT stayed, and where Linux differs from the documented behaviour",
            theme.muted,
        ))],
        Some(t) => trace_lines(t)
            .into_iter()
            .map(|l| {
                if l.deviation {
                    Line::from(Span::styled(l.text, theme.warning))
                } else {
                    Line::from(l.text)
                }
            })
            .collect(),
    }
}
