//! The alert lines under the strip.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::model::Severity;
use crate::tui::app::App;
use crate::tui::keys::Action;
use crate::tui::theme::Theme;

/// Draws the first `max` alerts, worst first, under a title line that says how many more
/// there are and which key opens the list of them all (`a`: move through, open, filter);
/// returns how many it drew.
pub(super) fn render_alerts(
    f: &mut Frame,
    app: &App,
    theme: &Theme,
    area: Rect,
    max: usize,
) -> usize {
    let alerts = app.all_alerts();
    let mut lines = Vec::new();
    let mut shown = 0;
    if alerts.is_empty() {
        lines.push(Line::from(Span::styled(
            "no alerts: no close state is building up",
            theme.muted,
        )));
    } else {
        let page = &alerts[..max.min(alerts.len())];
        shown = page.len();
        let key = app.keymap.keys_of(Action::Alerts);
        let key = key.split(", ").next().unwrap_or("");
        let hint = match (alerts.len() - shown, key) {
            (_, "") => String::new(),
            (0, k) => format!("  {k}: open them"),
            (_, k) => format!(
                "  1-{shown} of {}, worst first · {k}: list them all",
                alerts.len()
            ),
        };
        lines.push(Line::from(vec![
            Span::styled(format!("ALERTS ({})", alerts.len()), theme.title),
            Span::styled(hint, theme.muted),
        ]));
        for a in page {
            let style = match a.severity {
                Severity::Critical => theme.critical,
                Severity::Warning => theme.warning,
            };
            lines.push(Line::from(vec![
                Span::styled(format!("{:<8} ", a.severity.name()), style),
                Span::raw(crate::sanitize::message(&a.message).into_owned()),
            ]));
        }
    }
    f.render_widget(Paragraph::new(lines), area);
    shown
}
