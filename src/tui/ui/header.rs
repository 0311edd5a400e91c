//! The header line: host, poll interval, live or paused, connection count, poll time,
//! and the partial-process-info notice.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::text::ago;
use crate::model::ProcessInfo;
use crate::model::alerts::human_duration;
use crate::tui::app::App;
use crate::tui::theme::Theme;

/// Draws the header line (and the partial-info notice under it).
pub(super) fn render_header(f: &mut Frame, app: &App, theme: &Theme, area: Rect) {
    let mut spans = vec![Span::styled("lingertop", theme.title), Span::raw("  ")];
    let Some(u) = &app.latest else {
        spans.push(Span::styled("waiting for the first poll…", theme.muted));
        f.render_widget(Paragraph::new(Line::from(spans)), area);
        return;
    };
    let s = &u.snapshot;
    spans.push(Span::raw(format!("{}  ", s.host)));
    spans.push(Span::styled(
        format!("every {}  ", human_duration(app.interval)),
        theme.muted,
    ));
    if app.paused {
        spans.push(Span::styled(
            format!(
                "PAUSED: {} polls, {} changes since  ",
                app.paused_polls, app.paused_changes
            ),
            theme.warning,
        ));
    } else {
        spans.push(Span::styled(
            "LIVE  ",
            theme.label.add_modifier(Modifier::BOLD),
        ));
    }
    spans.push(Span::raw(format!("{} connections  ", s.connections.len())));
    spans.push(Span::styled(
        format!("poll {} ms", s.poll_duration.as_millis()),
        theme.muted,
    ));
    // A big table's ESTABLISHED sockets are read only every few polls (config::EstablishedEvery).
    if let Some(unread) = &s.unread {
        let states: Vec<&str> = unread.states.iter().map(|st| st.name()).collect();
        let when = unread.last_read.map_or("not read yet".to_string(), |t| {
            format!("as of {} ago", ago(s.taken_at, t))
        });
        spans.push(Span::styled(
            format!("  {} {when}", states.join(",")),
            theme.muted,
        ));
    }
    if app.errors > 0 {
        spans.push(Span::styled(
            format!("  {} poll errors", app.errors),
            theme.critical,
        ));
    }
    let mut lines = vec![Line::from(spans)];
    if let ProcessInfo::Partial { reason } = &s.process_info {
        lines.push(Line::from(Span::styled(
            format!("process info is partial: {reason}"),
            theme.warning,
        )));
    }
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), area);
}
