//! The state strip: one cell per close state with its count, the change since the last
//! poll, its quick-filter key and a sparkline of its history.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Sparkline};

use crate::model::{Severity, TcpState};
use crate::tui::app::{App, STRIP};
use crate::tui::theme::Theme;

/// State labels that fit a strip cell of `width` columns.
fn strip_label(s: TcpState, width: u16) -> &'static str {
    if width > u16::try_from(s.name().len()).unwrap_or(u16::MAX) {
        return s.name();
    }
    match s {
        TcpState::Established => "ESTAB",
        TcpState::SynSent => "SYN_S",
        TcpState::SynRecv => "SYN_R",
        TcpState::FinWait1 => "FIN_W1",
        TcpState::FinWait2 => "FIN_W2",
        TcpState::TimeWait => "TIME_W",
        TcpState::CloseWait => "CLOSE_W",
        TcpState::LastAck => "LAST_A",
        TcpState::Closing => "CLOSNG",
        TcpState::Listen => "LISTEN",
        TcpState::Close => "CLOSE",
    }
}

/// Draws the strip; returns each cell's area with its index into `STRIP`, for the mouse.
pub(super) fn render_strip(
    f: &mut Frame,
    app: &App,
    theme: &Theme,
    area: Rect,
) -> Vec<(u16, u16, u16, u16, usize)> {
    let cells = Layout::horizontal(
        STRIP
            .iter()
            .map(|_| Constraint::Ratio(1, STRIP.len() as u32)),
    )
    .split(area);
    let alerted = app.alerted_states();
    let counts = app.latest.as_ref().map(|u| u.sample.counts);
    let mut out = Vec::new();
    for (i, (&state, &cell)) in STRIP.iter().zip(cells.iter()).enumerate() {
        out.push((cell.x, cell.y, cell.width, cell.height, i));
        let n = counts.map_or(0, |c| c.get(state));
        let delta = match (counts, app.prev_counts) {
            (Some(c), Some(p)) => i64::from(c.get(state)) - i64::from(p.get(state)),
            _ => 0,
        };
        let style = match alerted.get(&state) {
            Some(Severity::Critical) => theme.critical.add_modifier(Modifier::REVERSED),
            Some(Severity::Warning) => theme.warning.add_modifier(Modifier::REVERSED),
            None if app.quick.contains(&state) => theme.label.add_modifier(Modifier::UNDERLINED),
            None => theme.label,
        };
        let key = if i == 9 {
            '0'
        } else {
            char::from(b'1' + i as u8)
        };
        let label_text = strip_label(state, cell.width).to_string();
        let delta_text = match delta {
            0 => String::new(),
            d => format!(" {d:+}"),
        };
        // The quick-filter key, right-aligned on the count line when it fits.
        let used = format!("{n}{delta_text}").len();
        let room = usize::from(cell.width).saturating_sub(used + 1);
        let key_text = if room >= 4 {
            format!("{:>room$}", format!("[{key}]"))
        } else {
            String::new()
        };
        let [l1, l2, l3] = Layout::vertical([Constraint::Length(1); 3]).areas(cell);
        f.render_widget(Paragraph::new(Span::styled(label_text, style)), l1);
        let delta_style = if delta > 0 && state.is_closing() {
            theme.warning
        } else {
            theme.muted
        };
        f.render_widget(
            Paragraph::new(Line::from(vec![
                Span::styled(
                    format!("{n}"),
                    Style::default().add_modifier(Modifier::BOLD),
                ),
                Span::styled(delta_text, delta_style),
                Span::styled(key_text, theme.muted),
            ])),
            l2,
        );
        let width = usize::from(l3.width.saturating_sub(1));
        let data: Vec<u64> = app
            .history
            .iter()
            .rev()
            .take(width)
            .rev()
            .map(|c| u64::from(c.get(state)))
            .collect();
        let spark_style = if alerted.contains_key(&state) {
            style.remove_modifier(Modifier::REVERSED)
        } else {
            theme.muted
        };
        f.render_widget(
            Sparkline::default().data(&data).style(spark_style),
            Rect {
                width: l3.width.saturating_sub(1),
                ..l3
            },
        );
    }
    out
}
