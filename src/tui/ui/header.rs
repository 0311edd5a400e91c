//! The header line: host, poll interval, live or paused, connection count, poll time,
//! and the partial-process-info notice.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use crate::model::ProcessInfo;
use crate::model::alerts::human_duration;
use crate::tui::app::App;
use crate::tui::cells::ago;
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
    if let Some(replay) = &app.replay {
        spans.push(Span::styled(
            format!("{replay}  "),
            theme.warning.add_modifier(Modifier::BOLD),
        ));
    } else if app.paused {
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
    // One line, never wrapped (its last fields are the first to be cut), so the notice
    // under it keeps the lines the layout gave it.
    let [line, rest] = Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(area);
    f.render_widget(Paragraph::new(Line::from(spans)), line);
    if let Some(notice) = partial_notice(app) {
        f.render_widget(
            Paragraph::new(Line::from(Span::styled(notice, theme.warning)))
                .wrap(Wrap { trim: true }),
            rest,
        );
    }
}

/// The partial-process-info notice of the newest poll, if its process information is partial.
fn partial_notice(app: &App) -> Option<String> {
    match &app.latest.as_ref()?.snapshot.process_info {
        ProcessInfo::Partial { reason } => Some(format!("process info is partial: {reason}")),
        ProcessInfo::Full => None,
    }
}

/// How many lines the notice needs at `width` (words wrapped as the header wraps them),
/// at most `max`; 0 without a notice. The layout gives the header this many more lines,
/// so the notice's last words (what to do) are never cut.
pub(super) fn notice_height(app: &App, width: u16, max: u16) -> u16 {
    let Some(text) = partial_notice(app) else {
        return 0;
    };
    let width = usize::from(width.max(1));
    let (mut lines, mut used) = (1usize, 0usize);
    for word in text.split_whitespace() {
        let w = word.chars().count();
        if used == 0 {
            used = w;
        } else if used + 1 + w <= width {
            used += 1 + w;
        } else {
            lines += 1;
            used = w;
        }
        // A word wider than the line takes as many lines as it needs.
        while used > width {
            lines += 1;
            used -= width;
        }
    }
    u16::try_from(lines).unwrap_or(u16::MAX).min(max)
}
