//! The closes panel: how connections ended, per second and since start by kind, the
//! processes that reset most, the lifetimes of the closed connections (and how many lived and
//! died between two polls), lost events, and which source all of it came from.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use crate::model::close_stats::{CloseStats, LIFETIME_BOUNDS, Resets};
use crate::model::{CloseSource, CounterCloses, KindCounts};
use crate::tui::theme::Theme;

/// One row of the kinds table: its label, its count from the events, from the counters.
type KindRow = (
    &'static str,
    Option<fn(&KindCounts) -> u64>,
    Option<fn(&CounterCloses) -> u64>,
);

/// Every kind the panel lists; `None` where that source cannot tell the kind.
const KINDS: [KindRow; 9] = [
    ("graceful active", Some(|k| k.graceful_active), None),
    ("graceful passive", Some(|k| k.graceful_passive), None),
    (
        "reset sent",
        Some(|k| k.reset_sent),
        Some(|c| c.resets_sent),
    ),
    (
        "  unread data",
        Some(|k| k.reset_sent_unread_data),
        Some(|c| c.reset_sent_unread_data),
    ),
    (
        "  linger-0",
        Some(|k| k.reset_sent_linger0),
        Some(|c| c.reset_sent_linger0),
    ),
    ("  other", Some(|k| k.reset_sent_other), None),
    ("reset received", Some(|k| k.reset_received), None),
    ("timeout", Some(|k| k.timeout), Some(|c| c.timeout)),
    ("TIME_WAIT dropped", None, Some(|c| c.time_wait_overflow)),
];

/// Draws the panel into `area`; `key` is the key that hides it, for the title.
pub(super) fn render_closes(
    f: &mut Frame,
    stats: Option<&CloseStats>,
    theme: &Theme,
    key: &str,
    area: Rect,
) {
    let source = match stats.map(|s| s.source) {
        Some(CloseSource::Kernel) => "from the kernel's events",
        Some(CloseSource::Counters) => "from the kernel's counters (this namespace)",
        None => "no source yet",
    };
    let block = Block::default().borders(Borders::TOP).title(Span::styled(
        format!(" Closes {source} · {key} hides ",),
        theme.title,
    ));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let Some(s) = stats else {
        f.render_widget(
            Paragraph::new("the close source is starting; closes show from the next second"),
            inner,
        );
        return;
    };
    // The status (lost events, why not the kernel's events) across the whole width.
    let [status, inner] =
        Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(inner);
    f.render_widget(Paragraph::new(status_line(s, theme)), status);
    if inner.height < 4 {
        // Too short for the tables: the resets and the busiest resetter, one line each.
        f.render_widget(Paragraph::new(summary_lines(s, theme)), inner);
        return;
    }
    let mut left = kind_lines(s, theme);
    let mut right = process_lines(s, theme);
    right.extend(lifetime_lines(s, theme, inner.width >= 100));
    if inner.width >= 100 {
        let [l, r] = Layout::horizontal([Constraint::Length(46), Constraint::Fill(1)]).areas(inner);
        f.render_widget(Paragraph::new(left), l);
        f.render_widget(
            Paragraph::new(right).block(Block::default().borders(Borders::LEFT)),
            r,
        );
    } else {
        // Narrow: one column, the kinds first; what does not fit is cut from the bottom.
        left.append(&mut right);
        f.render_widget(Paragraph::new(left), inner);
    }
}

fn rate_text(r: Option<f64>) -> String {
    match r {
        None => "…".to_string(),
        Some(r) if r >= 100.0 => format!("{r:.0}"),
        Some(r) => format!("{r:.1}"),
    }
}

/// The kinds, per second and since start.
fn kind_lines(s: &CloseStats, theme: &Theme) -> Vec<Line<'static>> {
    let mut lines = vec![Line::from(Span::styled(
        format!("{:<18}{:>10}{:>14}", "KIND", "/s", "SINCE START"),
        theme.header_row,
    ))];
    for (label, from_events, from_counters) in KINDS {
        let (rate, total) = match (s.source, from_events, from_counters) {
            // A TIME_WAIT overflow is only ever counted by the kernel's counters.
            (_, None, Some(c)) | (CloseSource::Counters, _, Some(c)) => {
                (rate_text(s.counter_rate(c)), c(&s.counters).to_string())
            }
            (CloseSource::Kernel, Some(k), _) => {
                (rate_text(s.rate(k)), k(&s.tally.all).to_string())
            }
            _ => ("-".to_string(), "-".to_string()),
        };
        lines.push(Line::from(format!("{label:<18}{rate:>10}{total:>14}")));
    }
    lines
}

fn status_line(s: &CloseStats, theme: &Theme) -> Line<'static> {
    let lost = if s.lost > 0 {
        Span::styled(format!("{} events lost", s.lost), theme.critical)
    } else if s.source == CloseSource::Kernel {
        Span::styled("0 events lost".to_string(), theme.muted)
    } else {
        Span::styled("no events: counters only".to_string(), theme.muted)
    };
    let mut spans = vec![lost];
    if let Some(n) = &s.note {
        spans.push(Span::styled(format!(" · {n}"), theme.muted));
    }
    Line::from(spans)
}

/// The panel in two lines, for windows too short for its tables.
fn summary_lines(s: &CloseStats, theme: &Theme) -> Vec<Line<'static>> {
    let (sent, recv) = match s.source {
        CloseSource::Kernel => (
            (s.rate(|k| k.reset_sent), s.tally.all.reset_sent.to_string()),
            (
                s.rate(|k| k.reset_received),
                s.tally.all.reset_received.to_string(),
            ),
        ),
        CloseSource::Counters => (
            (
                s.counter_rate(|c| c.resets_sent),
                s.counters.resets_sent.to_string(),
            ),
            (None, "-".to_string()),
        ),
    };
    let mut lines = vec![Line::from(format!(
        "RST out {}/s ({}) · in {}/s ({}) · TW dropped {}",
        rate_text(sent.0),
        sent.1,
        rate_text(recv.0),
        recv.1,
        s.counters.time_wait_overflow
    ))];
    if let Some(p) = s.top_resetters(1).first() {
        let name = crate::sanitize::terminal(&p.name).into_owned();
        let r = Resets::of(&p.counts);
        lines.push(Line::from(vec![
            Span::styled("most resets ", theme.label),
            Span::raw(format!(
                "{name} ({}) out {} (unread {} l0 {}) in {}",
                p.pid, r.sent, r.unread_data, r.linger0, r.received
            )),
        ]));
    }
    lines
}

/// The processes with the most resets, the sent ones by why: data left unread at close()
/// (an application bug), SO_LINGER {1, 0} (on purpose), another reason the kernel gave.
fn process_lines(s: &CloseStats, theme: &Theme) -> Vec<Line<'static>> {
    let row = |name: &str, pid: &str, r: &Resets| {
        format!(
            "{name:<14}{pid:>7}{:>6}{:>7}{:>7}{:>6}{:>6}",
            r.sent,
            r.unread_data,
            r.linger0,
            r.other(),
            r.received
        )
    };
    let mut lines = vec![Line::from(Span::styled(
        format!(
            "{:<14}{:>7}{:>6}{:>7}{:>7}{:>6}{:>6}",
            "RESETS BY", "PID", "SENT", "UNREAD", "LNGR-0", "OTHER", "RECV"
        ),
        theme.header_row,
    ))];
    if s.source == CloseSource::Counters {
        lines.push(Line::from(Span::styled(
            "no processes: the counters are per namespace (events need root)",
            theme.muted,
        )));
        return lines;
    }
    let top = s.top_resetters(5);
    if top.is_empty() {
        lines.push(Line::from(Span::styled("no resets yet", theme.muted)));
    }
    for p in top {
        let name: String = crate::sanitize::terminal(&p.name)
            .chars()
            .take(13)
            .collect();
        lines.push(Line::from(row(
            &name,
            &p.pid.to_string(),
            &Resets::of(&p.counts),
        )));
    }
    // Sockets no process acted on in process context (reset in the accept queue, say).
    let unowned = Resets::of(&s.tally.unowned);
    if unowned.sent + unowned.received > 0 {
        lines.push(Line::from(Span::styled(
            row("(no owner)", "-", &unowned),
            theme.muted,
        )));
    }
    lines
}

/// The lifetime histogram, with how many lived shorter than a poll interval.
fn lifetime_lines(s: &CloseStats, theme: &Theme, wide: bool) -> Vec<Line<'static>> {
    if s.source == CloseSource::Counters {
        return vec![];
    }
    let known: u64 = s.lifetimes.iter().sum();
    let mut lines = vec![Line::from(vec![
        Span::styled("LIFETIME ", theme.header_row),
        Span::raw(format!(
            "{} of {} lived < {} (between polls)",
            s.between_polls,
            known + s.lifetime_unknown,
            crate::model::duration::compact(s.interval)
        )),
    ])];
    let max = s.lifetimes.iter().copied().max().unwrap_or(0).max(1);
    let bar_w: u64 = if wide { 30 } else { 16 };
    for (i, n) in s.lifetimes.iter().enumerate() {
        let label = match LIFETIME_BOUNDS.get(i) {
            Some(b) => format!("< {}", crate::model::duration::compact(*b)),
            None => format!(
                ">= {}",
                crate::model::duration::compact(LIFETIME_BOUNDS[LIFETIME_BOUNDS.len() - 1])
            ),
        };
        let bar = "█".repeat(((n * bar_w).div_ceil(max)) as usize);
        lines.push(Line::from(vec![
            Span::raw(format!("{label:<8}{n:>8} ")),
            Span::styled(bar, theme.label),
        ]));
    }
    if s.lifetime_unknown > 0 {
        lines.push(Line::from(Span::styled(
            format!("{} open before lingertop started", s.lifetime_unknown),
            theme.muted,
        )));
    }
    lines
}
