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
    if app.input.is_some() {
        super::prompt::render_prompt(f, app, theme, area);
        return;
    }
    let line = {
        let mut spans = Vec::new();
        if let Some(s) = &app.status {
            spans.push(Span::styled(format!("{s}  "), theme.critical));
        }
        if let Some(n) = &app.notice {
            spans.push(Span::styled(format!("{n}  "), theme.label));
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
