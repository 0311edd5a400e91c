//! The footer: the filter prompt while it is open, else status, filter and key hints.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::tui::app::App;
use crate::tui::keys::Action;
use crate::tui::theme::Theme;

/// Draws the footer line.
pub(super) fn render_footer(f: &mut Frame, app: &App, theme: &Theme, area: Rect) {
    let line = if let Some(text) = &app.input {
        let mut spans = vec![
            Span::styled("filter: ", theme.key),
            Span::raw(text.clone()),
            Span::styled("█", theme.label),
        ];
        match &app.input_error {
            Some(e) => spans.push(Span::styled(format!("  {e}"), theme.critical)),
            None => spans.push(Span::styled(
                "  Enter applies, Esc cancels (e.g. state:close-wait port:443 proc:nginx)",
                theme.muted,
            )),
        }
        Line::from(spans)
    } else {
        let mut spans = Vec::new();
        if let Some(s) = &app.status {
            spans.push(Span::styled(format!("{s}  "), theme.critical));
        }
        let filter = app.filter_text();
        if !filter.is_empty() {
            spans.push(Span::styled("filter ", theme.label));
            spans.push(Span::raw(format!("{filter}  ")));
        }
        for (action, what) in [
            (Action::Help, "help"),
            (Action::Filter, "filter"),
            (Action::NextView, "view"),
            (Action::Sort, "sort"),
            (Action::Pause, if app.paused { "resume" } else { "pause" }),
            (Action::Quit, "quit"),
        ] {
            let keys = app.keymap.keys_of(action);
            let first = keys.split(", ").next().unwrap_or("").to_string();
            spans.push(Span::styled(first, theme.key));
            spans.push(Span::raw(format!(" {what}  ")));
        }
        Line::from(spans)
    };
    f.render_widget(Paragraph::new(line), area);
}
