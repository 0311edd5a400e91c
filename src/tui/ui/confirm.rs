//! The close confirmation: what will be closed, how, what the peer and the application
//! will see, who holds the socket; `y` closes, `n` or Esc cancels.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use crate::tui::app::CloseConfirm;
use crate::tui::theme::Theme;

/// Draws the confirmation over the middle of `area`.
pub(super) fn render_confirm(f: &mut Frame, c: &CloseConfirm, theme: &Theme, area: Rect) {
    let w = area.width.saturating_sub(4).min(100);
    let inner_w = usize::from(w.saturating_sub(2)).max(1);
    // Each line as tall as it wraps to, plus the borders and the keys' line.
    let text_h: usize = c
        .lines
        .iter()
        .map(|l| l.chars().count().div_ceil(inner_w).max(1))
        .sum();
    let h = (text_h as u16 + 4).min(area.height);
    let rect = super::help::centred(area, w, h);
    f.render_widget(Clear, rect);
    let block = Block::default().borders(Borders::ALL).title(Span::styled(
        format!(" {} close: are you sure? ", c.how),
        theme.critical,
    ));
    let mut lines: Vec<Line> = c
        .lines
        .iter()
        .map(|l| {
            if l.starts_with("Warning:") {
                Line::from(Span::styled(l.clone(), theme.critical))
            } else {
                Line::from(l.clone())
            }
        })
        .collect();
    lines.push(Line::from(""));
    lines.push(Line::from(vec![
        Span::styled("y", theme.key),
        Span::raw(" close   "),
        Span::styled("n, Esc", theme.key),
        Span::raw(" cancel (nothing is sent)"),
    ]));
    f.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        rect,
    );
}
