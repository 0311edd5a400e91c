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

/// A state's labels, longest first: the strip uses the longest that fits every cell, so
/// the cells read alike.
fn labels(s: TcpState) -> [&'static str; 3] {
    let (short, tiny) = match s {
        TcpState::Established => ("ESTAB", "EST"),
        TcpState::SynSent => ("SYN_S", "SS"),
        TcpState::SynRecv => ("SYN_R", "SR"),
        TcpState::FinWait1 => ("FIN_W1", "FW1"),
        TcpState::FinWait2 => ("FIN_W2", "FW2"),
        TcpState::TimeWait => ("TIME_W", "TW"),
        TcpState::CloseWait => ("CLOSE_W", "CW"),
        TcpState::LastAck => ("LAST_A", "LA"),
        TcpState::Closing => ("CLOSNG", "CLG"),
        TcpState::Listen => ("LISTEN", "LSN"),
        TcpState::Close => ("CLOSE", "CL"),
    };
    [s.name(), short, tiny]
}

/// The quick-filter key of the strip's `i`-th cell.
fn key_of(i: usize) -> char {
    if i == 9 {
        '0'
    } else {
        char::from(b'1' + (i % 9) as u8)
    }
}

/// `n` in at most `width` columns: exact when it fits, else in thousands or millions
/// (`19.4k`, `148k`, `+15k`, `2.1M`). `signed` writes the sign of a change.
pub(crate) fn fit_number(n: i64, signed: bool, width: usize) -> String {
    let exact = if signed {
        format!("{n:+}")
    } else {
        n.to_string()
    };
    if exact.len() <= width {
        return exact;
    }
    let sign = match (signed, n < 0) {
        (_, true) => "-",
        (true, false) => "+",
        (false, false) => "",
    };
    let m = n.unsigned_abs() as f64;
    let candidates = [
        format!("{sign}{:.1}k", m / 1e3),
        format!("{sign}{:.0}k", m / 1e3),
        format!("{sign}{:.1}M", m / 1e6),
        format!("{sign}{:.0}M", m / 1e6),
    ];
    candidates
        .into_iter()
        // `1000.0k` is no way to write a million.
        .filter(|c| !c.starts_with(&format!("{sign}1000")))
        .find(|c| c.len() <= width)
        .unwrap_or(exact)
}

/// What one cell shows, laid out for `width` columns.
#[derive(Debug, PartialEq, Eq)]
struct CellText {
    /// `[6] CLOSE_W`, or `6 CW` when narrow.
    key: String,
    label: &'static str,
    count: String,
    /// The change since the previous poll (empty when none), on the count's line when it
    /// fits there with a space between, else on the sparkline's line.
    delta: String,
    delta_on_count_line: bool,
}

fn cell_text(i: usize, state: TcpState, n: u32, delta: i64, width: usize, tier: usize) -> CellText {
    let key = key_of(i);
    let label = labels(state)[tier];
    let key = if format!("[{key}] {label}").len() <= width {
        format!("[{key}] ")
    } else {
        format!("{key} ")
    };
    let count = fit_number(i64::from(n), false, width);
    let delta = match delta {
        0 => String::new(),
        d => fit_number(d, true, width),
    };
    let delta_on_count_line = delta.is_empty() || count.len() + 1 + delta.len() <= width;
    CellText {
        key,
        label,
        count,
        delta,
        delta_on_count_line,
    }
}

/// The longest label tier (full, short, tiny) whose `k LABEL` fits `width` for every state.
fn tier_for(width: usize) -> usize {
    (0..3)
        .find(|&t| STRIP.iter().all(|&s| 2 + labels(s)[t].len() <= width))
        .unwrap_or(2)
}

/// Draws the strip; returns each cell's area with its index into `STRIP`, for the mouse.
///
/// Cells are one column apart, so numbers never run together; every cell shows its
/// quick-filter key and its count whatever the width (numbers too long for a narrow cell
/// are written in thousands, `19.4k`).
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
    .spacing(1)
    .split(area);
    let alerted = app.alerted_states();
    let counts = app.latest.as_ref().map(|u| u.sample.counts);
    let narrowest = cells
        .iter()
        .map(|c| usize::from(c.width))
        .min()
        .unwrap_or(0);
    let tier = tier_for(narrowest);
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
        let text = cell_text(i, state, n, delta, usize::from(cell.width), tier);
        let [l1, l2, l3] = Layout::vertical([Constraint::Length(1); 3]).areas(cell);
        f.render_widget(
            Paragraph::new(Line::from(vec![
                Span::styled(text.key.clone(), theme.muted),
                Span::styled(text.label, style),
            ])),
            l1,
        );
        let delta_style = if delta > 0 && state.is_closing() {
            theme.warning
        } else {
            theme.muted
        };
        let count = Span::styled(
            text.count.clone(),
            Style::default().add_modifier(Modifier::BOLD),
        );
        let mut spark_area = l3;
        if text.delta_on_count_line {
            let mut spans = vec![count];
            if !text.delta.is_empty() {
                spans.push(Span::raw(" "));
                spans.push(Span::styled(text.delta.clone(), delta_style));
            }
            f.render_widget(Paragraph::new(Line::from(spans)), l2);
        } else {
            f.render_widget(Paragraph::new(count), l2);
            f.render_widget(
                Paragraph::new(Span::styled(text.delta.clone(), delta_style)),
                l3,
            );
            // The sparkline takes what the change leaves of the line, a column apart.
            let used = u16::try_from(text.delta.len() + 1).unwrap_or(u16::MAX);
            spark_area = Rect {
                x: l3.x.saturating_add(used),
                width: l3.width.saturating_sub(used),
                ..l3
            };
        }
        let width = usize::from(spark_area.width);
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
        if width >= 2 {
            f.render_widget(
                Sparkline::default().data(&data).style(spark_style),
                spark_area,
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_fit_their_width_in_thousands_when_they_must() {
        assert_eq!(fit_number(33664, false, 5), "33664");
        assert_eq!(fit_number(19371, false, 4), "19k");
        assert_eq!(fit_number(19371, false, 5), "19371");
        assert_eq!(fit_number(19371, true, 5), "+19k");
        assert_eq!(fit_number(193_710, false, 5), "194k");
        assert_eq!(fit_number(14925, true, 5), "+15k");
        assert_eq!(fit_number(-2090, true, 5), "-2090");
        assert_eq!(fit_number(-2090, true, 4), "-2k");
        assert_eq!(fit_number(148_123, false, 5), "148k");
        assert_eq!(fit_number(999_999, false, 4), "1.0M");
        assert_eq!(fit_number(2_140_000, false, 4), "2.1M");
    }

    #[test]
    fn every_cell_keeps_its_key_and_count_at_any_width() {
        for width in [5usize, 7, 11] {
            let tier = tier_for(width);
            for (i, &state) in STRIP.iter().enumerate() {
                let t = cell_text(i, state, 33664, -1299, width, tier);
                assert!(t.key.contains(key_of(i)), "{t:?}");
                assert!(t.key.len() + t.label.len() <= width, "{width}: {t:?}");
                assert!(t.count.len() <= width && t.delta.len() <= width, "{t:?}");
                if t.delta_on_count_line {
                    assert!(t.count.len() + 1 + t.delta.len() <= width, "{t:?}");
                }
            }
        }
    }
}
