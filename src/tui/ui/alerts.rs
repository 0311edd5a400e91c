//! The alert lines under the strip.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::model::Severity;
use crate::tui::app::App;
use crate::tui::keys::Action;
use crate::tui::theme::Theme;

/// Draws at most `max` alerts under a title line, from the app's alert offset (`a` moves
/// it, so every alert can be reached however short the window); returns how many it drew.
/// The alerts come worst first (critical, then warning), as the rules list them.
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
        let from = if app.alert_offset < alerts.len() {
            app.alert_offset
        } else {
            0
        };
        let page = &alerts[from..(from + max).min(alerts.len())];
        shown = page.len();
        let more = alerts.len() > max;
        let key = app.keymap.keys_of(Action::Alerts);
        lines.push(Line::from(vec![
            Span::styled(format!("ALERTS ({})", alerts.len()), theme.title),
            Span::styled(
                if more && !key.is_empty() {
                    format!(
                        "  {}-{} of {}, worst first; {key}: next {}",
                        from + 1,
                        from + shown,
                        alerts.len(),
                        if from + shown >= alerts.len() {
                            "(back to the first)".to_string()
                        } else {
                            format!("{}", max.min(alerts.len() - from - shown))
                        }
                    )
                } else if more {
                    format!("  {}-{} of {}", from + 1, from + shown, alerts.len())
                } else {
                    String::new()
                },
                theme.muted,
            ),
        ]));
        for a in page {
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
    shown
}
