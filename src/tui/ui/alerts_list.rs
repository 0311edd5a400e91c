//! The alerts list (`a`): every alert worst first, the selected one opened beside it (wide)
//! or under it (narrow): what it is, who, since when, the rule and its threshold, and the
//! filter Enter applies.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use crate::model::duration::fmt_age;
use crate::model::{Alert, RuleId, Severity};
use crate::sanitize;
use crate::tui::app::App;
use crate::tui::cells::ago;
use crate::tui::theme::Theme;

/// From this width the opened alert sits beside the list, not under it.
const SIDE_BY_SIDE: u16 = 100;
/// Below this many lines (60x12 with a notice) the list shows only the selected alert.
const SHORT: u16 = 8;

/// Draws the list in `area` (everything between the strip and the footer); returns how many
/// alerts it had room for (PgUp/PgDn's step).
pub(super) fn render_alerts_list(f: &mut Frame, app: &App, theme: &Theme, area: Rect) -> usize {
    let alerts = app.all_alerts();
    let sel = app.alerts_list.selected.min(alerts.len().saturating_sub(1));
    let title = if alerts.is_empty() {
        " Alerts: none now · Esc: back ".to_string()
    } else if area.width >= 80 {
        format!(
            " Alerts {} of {}, worst first · ↑↓ move · Enter: its connections · Esc: back ",
            sel + 1,
            alerts.len()
        )
    } else {
        format!(
            " Alerts {}/{} · ↑↓ · Enter: filter · Esc ",
            sel + 1,
            alerts.len()
        )
    };
    let block = Block::default()
        .borders(Borders::TOP)
        .title(Span::styled(title, theme.title));
    let inner = block.inner(area);
    f.render_widget(block, area);
    if inner.height == 0 {
        return 1;
    }
    if alerts.is_empty() {
        // The alerts ended while the list was open.
        f.render_widget(
            Paragraph::new(Span::styled(
                "no alerts: no close state is building up",
                theme.muted,
            )),
            inner,
        );
        return 1;
    }
    let (list, detail) = if inner.width >= SIDE_BY_SIDE {
        let [l, d] = Layout::horizontal([Constraint::Fill(1), Constraint::Length(48)]).areas(inner);
        (l, d)
    } else {
        // The list keeps two lines (the selected alert and the next), one in a very short
        // window; the opened alert gets at least five.
        let n = u16::try_from(alerts.len()).unwrap_or(u16::MAX);
        let least = if inner.height < SHORT { 1 } else { 2 };
        let list_h = n.min(inner.height.saturating_sub(5).max(least));
        let [l, d] =
            Layout::vertical([Constraint::Length(list_h), Constraint::Fill(1)]).areas(inner);
        (l, d)
    };
    let rows = usize::from(list.height).max(1);
    // The selected line stays in view: the list scrolls only as far as it must.
    let from = sel.saturating_sub(rows - 1);
    let lines: Vec<Line> = alerts
        .iter()
        .enumerate()
        .skip(from)
        .take(rows)
        .map(|(i, a)| {
            let marker = if i == sel { "› " } else { "  " };
            // The selected line in the selection's colours alone, so it reads on any theme.
            let severity = if i == sel {
                theme.selected
            } else {
                severity_style(theme, a)
            };
            let mut line = Line::from(vec![
                Span::raw(marker),
                Span::styled(format!("{:<8} ", a.severity.name()), severity),
                Span::raw(sanitize::message(&a.message).into_owned()),
            ]);
            if i == sel {
                line = line.style(theme.selected);
            }
            line
        })
        .collect();
    f.render_widget(Paragraph::new(lines), list);
    if let Some(a) = alerts.get(sel) {
        // A very short window keeps every line for the text: no rule under the list.
        let block = if inner.width >= SIDE_BY_SIDE {
            Block::default().borders(Borders::LEFT)
        } else if inner.height < SHORT {
            Block::default()
        } else {
            Block::default().borders(Borders::TOP)
        };
        let d = block.inner(detail);
        f.render_widget(block, detail);
        let side = inner.width >= SIDE_BY_SIDE;
        f.render_widget(
            Paragraph::new(opened(app, theme, a, side)).wrap(Wrap { trim: false }),
            d,
        );
    }
    rows
}

fn severity_style(theme: &Theme, a: &Alert) -> ratatui::style::Style {
    match a.severity {
        Severity::Critical => theme.critical,
        Severity::Warning => theme.warning,
    }
}

/// The opened alert's lines, the most needed first (a short window cuts the last). Under
/// the list (`side` false) the selected line already says what and how bad: who, since and
/// the rule come first.
fn opened<'a>(app: &App, theme: &Theme, a: &Alert, side: bool) -> Vec<Line<'a>> {
    let label = |s: &'static str| Span::styled(s, theme.label);
    let now = app
        .latest
        .as_ref()
        .map_or(std::time::SystemTime::UNIX_EPOCH, |u| u.snapshot.taken_at);
    let heading = Line::from(vec![
        Span::styled(a.severity.name().to_uppercase(), severity_style(theme, a)),
        Span::raw(" "),
        Span::styled(a.rule.name(), theme.title),
    ]);
    let what = Line::from(vec![label("what  "), Span::raw(what(a))]);
    let (mut lines, what) = if side {
        (vec![heading, what], None)
    } else {
        (Vec::new(), Some(what))
    };
    lines.push(Line::from(vec![label("who   "), Span::raw(who(a))]));
    let since = match app.alert_since(a) {
        Some(s) if s.at_start => format!(
            "before lingertop's first poll, at least {} ago",
            ago(now, s.at)
        ),
        Some(s) => format!("raised {} ago", ago(now, s.at)),
        None => "this poll".to_string(),
    };
    let mut since = vec![label("since "), Span::raw(since)];
    if let Some(age) = app.oldest_behind(a) {
        let state = a.rule.state().map_or("its state", |s| s.name());
        since.push(Span::raw(format!(
            "; the oldest in {state} for {}",
            fmt_age(Some(age))
        )));
    }
    lines.push(Line::from(since));
    lines.push(Line::from(vec![
        label("rule  "),
        Span::raw(app.alerts_list.rules.describe(a.rule)),
    ]));
    lines.push(Line::from(vec![
        label("Enter "),
        Span::raw(format!("filter the table to: {}", a.filter_text())),
    ]));
    lines.extend(what);
    lines.push(Line::from(Span::styled(
        sanitize::message(&a.message).into_owned(),
        theme.muted,
    )));
    lines
}

/// How many connections of which state, or what the count counts.
fn what(a: &Alert) -> String {
    let n = a.count;
    match (a.rule, a.rule.state()) {
        (RuleId::ResetStorm, _) => format!("{n} resets/s sent and received"),
        (RuleId::TimeWaitOverflow, _) => format!("{n} TIME_WAIT sockets dropped by the kernel"),
        (RuleId::PortPressure, _) => format!(
            "{n} local ports in use toward one endpoint ({:.1}% of the range)",
            a.ratio.unwrap_or(0.0) * 100.0
        ),
        (_, Some(s)) => format!("{n} connection{} in {}", plural(n), s.name()),
        (_, None) => format!("{n} connection{}", plural(n)),
    }
}

fn plural(n: u32) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Whom the alert names: the process, the endpoint, the namespace; else the whole host.
fn who(a: &Alert) -> String {
    let mut parts = Vec::new();
    match (&a.process, a.pid) {
        (Some(name), Some(pid)) => parts.push(format!("{} (pid {pid})", sanitize::message(name))),
        (None, Some(pid)) => parts.push(format!("pid {pid}")),
        _ => {}
    }
    match (a.local_ip, a.remote) {
        (Some(l), Some(r)) => parts.push(format!("from {l} to {r}")),
        (None, Some(r)) => parts.push(format!("toward {r}")),
        _ => {}
    }
    if a.rule == RuleId::CloseWaitLingering && a.pid.is_none() {
        parts.push("a process lingertop cannot see (run as root to name it)".to_string());
    }
    if let Some(ns) = &a.netns {
        parts.push(format!("in namespace {}", sanitize::message(ns)));
    }
    if parts.is_empty() {
        parts.push("the whole host".to_string());
    }
    parts.join(", ")
}
