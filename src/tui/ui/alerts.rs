//! The alert lines under the strip.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::model::Severity;
use crate::tui::app::App;
use crate::tui::theme::Theme;

/// Draws at most `max` alerts under a title line.
pub(super) fn render_alerts(f: &mut Frame, app: &App, theme: &Theme, area: Rect, max: usize) {
    let alerts = app
        .latest
        .as_ref()
        .map(|u| u.alerts.as_slice())
        .unwrap_or(&[]);
    let mut lines = Vec::new();
    if alerts.is_empty() {
        lines.push(Line::from(Span::styled(
            "no alerts: no close state is building up",
            theme.muted,
        )));
    } else {
        let more = alerts.len().saturating_sub(max);
        lines.push(Line::from(vec![
            Span::styled(format!("ALERTS ({})", alerts.len()), theme.title),
            Span::styled(
                if more > 0 {
                    format!("  (+{more} more; a taller window shows up to 5)")
                } else {
                    String::new()
                },
                theme.muted,
            ),
        ]));
        for a in alerts.iter().take(max) {
            let style = match a.severity {
                Severity::Critical => theme.critical,
                Severity::Warning => theme.warning,
            };
            lines.push(Line::from(vec![
                Span::styled(format!("{:<8} ", a.severity.name()), style),
                Span::raw(a.message.clone()),
            ]));
        }
    }
    f.render_widget(Paragraph::new(lines), area);
}
