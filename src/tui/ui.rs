//! Drawing: reads [`App`] and returns where things landed (for the mouse). No I/O, no
//! state changes; only the visible rows of the table are built each frame.

use std::time::{Duration, SystemTime};

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Block, Borders, Cell, Clear, Paragraph, Row as TRow, Sparkline, Table, Wrap,
};

use super::app::{App, HitAreas, Mark, Row, STRIP, View};
use super::keys::Action;
use super::theme::Theme;
use crate::model::alerts::human_duration;
use crate::model::{Attribution, Connection, ProcessInfo, Severity, TcpState};
use crate::report::fmt_age;

/// Below this the dashboard says the window is too small instead of drawing.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 12;

/// Draws the whole dashboard.
pub fn render(f: &mut Frame, app: &App, theme: &Theme) -> HitAreas {
    let area = f.area();
    let mut hit = HitAreas::default();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let msg = format!(
            "window too small ({}x{}): lingertop needs {MIN_WIDTH}x{MIN_HEIGHT}",
            area.width, area.height
        );
        f.render_widget(Paragraph::new(msg).wrap(Wrap { trim: true }), area);
        return hit;
    }
    let partial = app
        .latest
        .as_ref()
        .is_some_and(|u| matches!(u.snapshot.process_info, ProcessInfo::Partial { .. }));
    let alert_lines = app.latest.as_ref().map_or(0, |u| u.alerts.len());
    let max_alerts: usize = if area.height >= 34 { 5 } else { 2 };
    let alerts_h = 1 + alert_lines.min(max_alerts) as u16;
    let notice_h = if partial { 2 } else { 0 };
    let [header, strip, alerts, main, footer] = Layout::vertical([
        Constraint::Length(1 + notice_h),
        Constraint::Length(3),
        Constraint::Length(alerts_h),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(area);
    render_header(f, app, theme, header);
    hit.strip = render_strip(f, app, theme, strip);
    render_alerts(f, app, theme, alerts, max_alerts);

    let wide = main.width >= 110;
    if let Some(panel) = &app.lab {
        // The lab panel takes the lower part; the table above shows the lab's sockets.
        let panel_h = (main.height / 2).max(10).min(main.height.saturating_sub(4));
        let [t, p] =
            Layout::vertical([Constraint::Fill(1), Constraint::Length(panel_h)]).areas(main);
        hit.table = render_table(f, app, theme, t);
        super::lab_panel::render(f, panel, theme, p);
        render_footer(f, app, theme, footer);
        if app.help {
            render_help(f, app, theme, area);
        }
        return hit;
    }
    let (table_area, detail_area) = if !app.detail {
        (main, None)
    } else if wide {
        let [t, d] = Layout::horizontal([Constraint::Fill(1), Constraint::Length(40)]).areas(main);
        (t, Some(d))
    } else if main.height >= 18 {
        let [t, d] = Layout::vertical([Constraint::Fill(1), Constraint::Length(8)]).areas(main);
        (t, Some(d))
    } else {
        (main, None)
    };
    hit.table = render_table(f, app, theme, table_area);
    if let Some(d) = detail_area {
        render_detail(f, app, theme, d);
    }
    render_footer(f, app, theme, footer);
    if app.help {
        render_help(f, app, theme, area);
    }
    hit
}

fn render_header(f: &mut Frame, app: &App, theme: &Theme, area: Rect) {
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

fn render_strip(
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

fn render_alerts(f: &mut Frame, app: &App, theme: &Theme, area: Rect, max: usize) {
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

/// An address in at most `width` columns, keeping the port: the IP is cut with `…`.
fn fit_addr(sa: &std::net::SocketAddr, width: usize) -> String {
    let full = sa.to_string();
    if full.chars().count() <= width {
        return full;
    }
    let port = format!(":{}", sa.port());
    let (open, close) = if sa.is_ipv6() { ("[", "]") } else { ("", "") };
    let keep = width.saturating_sub(port.len() + open.len() + close.len() + 1);
    let ip: String = sa.ip().to_string().chars().take(keep).collect();
    format!("{open}{ip}…{close}{port}")
}

/// Whether the table has room for, and data in, the kernel timer and queue columns.
fn kernel_columns(app: &App, view: View, width: u16) -> bool {
    matches!(view, View::All | View::ByState)
        && width >= 100
        && app.shown.as_ref().is_some_and(|u| {
            u.snapshot
                .connections
                .iter()
                .take(64)
                .any(|c| c.recv_q().is_some())
        })
}

/// `timewait 58s`, `on 200ms ×2`, `keepalive 2h`; empty without a timer.
fn timer_text(c: &Connection) -> String {
    let Some(t) = c.timer else {
        return String::new();
    };
    let left = if t.expires() >= Duration::from_secs(1) {
        human_duration(t.expires()).replace(' ', "")
    } else {
        format!("{}ms", t.expires_ms)
    };
    let retries = if t.retransmits > 0 {
        format!(" ×{}", t.retransmits)
    } else {
        String::new()
    };
    let kind = match t.kind.name() {
        "timewait" => "tw",
        "keepalive" => "ka",
        other => other,
    };
    format!("{kind} {left}{retries}")
}

/// `0 0`: bytes waiting to be read, bytes not yet acknowledged.
fn queue_text(c: &Connection) -> String {
    match (c.recv_q(), c.send_q()) {
        (Some(r), Some(s)) => format!("{r:>6} {s:>6}"),
        _ => String::new(),
    }
}

fn via(c: &Connection) -> &'static str {
    match c.attribution {
        Some(Attribution::LastOwner) => "last",
        Some(Attribution::Listener) => "lsn",
        _ => "",
    }
}

fn process_text(c: &Connection) -> String {
    match c.owner() {
        Some(o) => {
            let more = if c.owners.len() > 1 {
                format!(" +{}", c.owners.len() - 1)
            } else {
                String::new()
            };
            format!("{} ({}){more}", o.name.as_deref().unwrap_or("?"), o.pid)
        }
        None => "-".to_string(),
    }
}

/// Draws the table; returns the rows' area for the mouse.
fn render_table(f: &mut Frame, app: &App, theme: &Theme, area: Rect) -> (u16, u16, u16, u16) {
    let view = app.view;
    let col = app.sort[View::ALL.iter().position(|v| *v == view).unwrap_or(0)];
    let desc = app.sort_desc[View::ALL.iter().position(|v| *v == view).unwrap_or(0)];
    let title = format!(
        " {} ({}) · Tab: next view ",
        view.title(),
        app.rows
            .iter()
            .filter(|r| !matches!(r, Row::Group(..)))
            .count()
    );
    let block = Block::default()
        .borders(Borders::TOP)
        .title(Span::styled(title, theme.title));
    let inner = block.inner(area);
    f.render_widget(block, area);
    if inner.height < 2 {
        return (inner.x, inner.y, inner.width, 0);
    }
    let body_h = inner.height - 1;
    let header_cells: Vec<Cell> = view
        .columns()
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let arrow = if i == col {
                if desc { " ▼" } else { " ▲" }
            } else {
                ""
            };
            Cell::from(format!("{name}{arrow}"))
        })
        .collect();
    let end = (app.offset + usize::from(body_h)).min(app.rows.len());
    let visible = &app.rows[app.offset.min(end)..end];
    let mut addr_widths = (usize::MAX, usize::MAX);
    let widths: Vec<Constraint> = match view {
        View::All | View::ByState => {
            // Addresses as wide as the visible ones need, the process gets the rest.
            let widest = |f: &dyn Fn(&Connection) -> usize| {
                visible
                    .iter()
                    .filter_map(|&r| app.conn(r))
                    .map(f)
                    .max()
                    .unwrap_or(6)
                    .max(6)
            };
            let l = widest(&|c| c.local().to_string().len());
            let r = widest(&|c| c.remote().to_string().len());
            let kernel = if kernel_columns(app, view, inner.width) {
                12 + 13 + 2
            } else {
                0
            };
            let room = usize::from(inner.width).saturating_sub(13 + 9 + 4 + 5 + 14 + kernel);
            let (l, r) = if l + r <= room {
                (l, r)
            } else {
                (room * l / (l + r), room * r / (l + r))
            };
            addr_widths = (l, r);
            vec![
                Constraint::Length(13),
                Constraint::Length(u16::try_from(l).unwrap_or(20)),
                Constraint::Length(u16::try_from(r).unwrap_or(20)),
                Constraint::Fill(1),
                Constraint::Length(9),
                Constraint::Length(4),
            ]
        }
        View::ByProcess => vec![
            Constraint::Min(14),
            Constraint::Length(7),
            Constraint::Length(6),
            Constraint::Length(6),
            Constraint::Length(8),
            Constraint::Length(7),
            Constraint::Length(7),
            Constraint::Length(6),
            Constraint::Length(7),
        ],
        View::ByRemote => vec![
            Constraint::Fill(2),
            Constraint::Length(10),
            Constraint::Length(7),
            Constraint::Length(16),
            Constraint::Fill(1),
        ],
    };
    let mut header_cells = header_cells;
    let mut widths = widths;
    let kernel_cols = kernel_columns(app, view, inner.width);
    if matches!(view, View::All | View::ByState) {
        header_cells.push(Cell::from("VIA"));
        if kernel_cols {
            header_cells.push(Cell::from("TIMER"));
            header_cells.push(Cell::from("RECV-Q SEND-Q"));
            widths.push(Constraint::Length(12));
            widths.push(Constraint::Length(13));
        }
    }
    let now = app
        .shown
        .as_ref()
        .map_or(SystemTime::UNIX_EPOCH, |u| u.snapshot.taken_at);
    let rows: Vec<TRow> = visible
        .iter()
        .enumerate()
        .map(|(i, &row)| {
            let selected = app.offset + i == app.selected;
            let (mut cells, mut style) = row_cells(app, theme, row, now, addr_widths);
            if kernel_cols {
                let c = app.conn(row);
                cells.push(Cell::from(c.map_or(String::new(), timer_text)));
                cells.push(Cell::from(c.map_or(String::new(), queue_text)));
            }
            if selected {
                style = theme.selected;
            }
            TRow::new(cells).style(style)
        })
        .collect();
    let table = Table::new(rows, widths)
        .header(TRow::new(header_cells).style(theme.header_row))
        .column_spacing(1);
    f.render_widget(table, inner);
    if app.rows.is_empty() {
        let msg = if app.shown.is_none() {
            "waiting for the first poll…".to_string()
        } else {
            format!(
                "no connection matches \"{}\" (Esc clears the filter)",
                app.filter_text()
            )
        };
        let y = inner.y + 1;
        f.render_widget(
            Paragraph::new(Span::styled(msg, theme.muted)),
            Rect {
                y,
                height: 1,
                ..inner
            },
        );
    }
    (inner.x, inner.y + 1, inner.width, body_h)
}

fn row_cells<'a>(
    app: &'a App,
    theme: &Theme,
    row: Row,
    now: SystemTime,
    (lw, rw): (usize, usize),
) -> (Vec<Cell<'a>>, Style) {
    match row {
        Row::Conn(_) | Row::Ghost(_) => {
            let Some(c) = app.conn(row) else {
                return (Vec::new(), Style::default());
            };
            let style = if matches!(row, Row::Ghost(_)) {
                theme.vanished_row
            } else {
                match app.marks.get(&(c.local(), c.remote())) {
                    Some(Mark::New) => theme.new_row,
                    Some(Mark::Changed) => theme.changed_row,
                    None => Style::default(),
                }
            };
            let age = if matches!(row, Row::Ghost(_)) {
                "gone".to_string()
            } else {
                fmt_age(c.state_age(now))
            };
            (
                vec![
                    Cell::from(c.state.name()),
                    Cell::from(fit_addr(&c.local(), lw)),
                    Cell::from(fit_addr(&c.remote(), rw)),
                    Cell::from(process_text(c)),
                    Cell::from(format!("{age:>8}")),
                    Cell::from(via(c)),
                ],
                style,
            )
        }
        Row::Group(state, n) => {
            let arrow = if app.collapsed.contains(&state) {
                "▶"
            } else {
                "▼"
            };
            (
                vec![
                    Cell::from(format!("{arrow} {}", state.name())),
                    Cell::from(format!("{n} connections")),
                    Cell::from(""),
                    Cell::from(""),
                    Cell::from(""),
                    Cell::from(""),
                ],
                theme.title,
            )
        }
        Row::Process(i) => {
            let p = &app.procs[i];
            let cw = p.counts.get(TcpState::CloseWait);
            let growth = p
                .close_wait_per_min
                .map_or("-".to_string(), |g| format!("{:+.0}", g.round()));
            let style = if cw > 0 {
                theme.warning
            } else {
                Style::default()
            };
            (
                vec![
                    Cell::from(p.name.clone()),
                    Cell::from(p.pid.map_or("-".to_string(), |x| x.to_string())),
                    Cell::from(p.total.to_string()),
                    Cell::from(p.counts.get(TcpState::Established).to_string()),
                    Cell::from(cw.to_string()),
                    Cell::from(growth),
                    Cell::from(p.counts.get(TcpState::TimeWait).to_string()),
                    Cell::from(
                        (p.counts.get(TcpState::FinWait1) + p.counts.get(TcpState::FinWait2))
                            .to_string(),
                    ),
                    Cell::from(p.counts.get(TcpState::LastAck).to_string()),
                ],
                style,
            )
        }
        Row::Remote(i) => {
            let r = &app.remotes[i];
            let style = if r.pressure >= 0.5 {
                theme.critical
            } else if r.time_wait > 0 {
                theme.warning
            } else {
                Style::default()
            };
            (
                vec![
                    Cell::from(r.remote.to_string()),
                    Cell::from(r.time_wait.to_string()),
                    Cell::from(r.total.to_string()),
                    Cell::from(if r.ports_used == 0 {
                        "-".to_string()
                    } else {
                        format!("{} ({:.2}%)", r.ports_used, r.pressure * 100.0)
                    }),
                    Cell::from(r.from.map_or("-".to_string(), |ip| ip.to_string())),
                ],
                style,
            )
        }
    }
}

fn ago(now: SystemTime, t: SystemTime) -> String {
    let d = now.duration_since(t).unwrap_or(Duration::ZERO);
    if d.is_zero() {
        "0s".to_string()
    } else {
        fmt_age(Some(d))
    }
}

fn render_detail(f: &mut Frame, app: &App, theme: &Theme, area: Rect) {
    let block = Block::default()
        .borders(Borders::TOP | Borders::LEFT)
        .title(Span::styled(" Detail (d hides) ", theme.title));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let now = app
        .shown
        .as_ref()
        .map_or(SystemTime::UNIX_EPOCH, |u| u.snapshot.taken_at);
    let label = |s: &str| Span::styled(format!("{s:<8}"), theme.label);
    let mut lines: Vec<Line> = Vec::new();
    match app.selected_row() {
        None => lines.push(Line::from(Span::styled("nothing selected", theme.muted))),
        Some(row @ (Row::Conn(_) | Row::Ghost(_))) => {
            if let Some(c) = app.conn(row) {
                lines.push(Line::from(vec![
                    Span::styled(c.state.name(), theme.title),
                    Span::raw(if matches!(row, Row::Ghost(_)) {
                        "  (vanished at the last poll)"
                    } else {
                        ""
                    }),
                ]));
                lines.push(Line::from(vec![
                    label("local"),
                    Span::raw(c.local().to_string()),
                ]));
                lines.push(Line::from(vec![
                    label("remote"),
                    Span::raw(c.remote().to_string()),
                ]));
                let owner = match (c.owner(), c.attribution) {
                    (Some(_), Some(Attribution::Owner)) => {
                        format!("{} (holds the socket now)", process_text(c))
                    }
                    (Some(_), Some(Attribution::LastOwner)) => {
                        format!("{} (held it at an earlier poll)", process_text(c))
                    }
                    (Some(_), Some(Attribution::Listener)) => {
                        format!("{} (listens on this port)", process_text(c))
                    }
                    _ => "none visible".to_string(),
                };
                lines.push(Line::from(vec![label("owner"), Span::raw(owner)]));
                let user = match (c.user_name(), c.uid()) {
                    (Some(name), Some(id)) => format!("{name} (uid {id})"),
                    (None, Some(id)) => format!("uid {id}"),
                    _ => "-".to_string(),
                };
                lines.push(Line::from(vec![
                    label("user"),
                    Span::raw(format!("{user}  inode {}", c.inode)),
                ]));
                if let Some(t) = &c.tracking {
                    let seen = if t.first_seen() >= now {
                        "at this poll".to_string()
                    } else {
                        format!("first {} ago", ago(now, t.first_seen()))
                    };
                    lines.push(Line::from(vec![label("seen"), Span::raw(seen)]));
                    lines.push(Line::from(Span::styled("history", theme.label)));
                    for (s, at) in t.previous() {
                        lines.push(Line::from(format!("  -{:>7}  {}", ago(now, at), s.name())));
                    }
                    let for_how_long = match c.state_age(now) {
                        Some(a) if !a.is_zero() => {
                            // Exact from the start of the state, or from the kernel's TIME_WAIT
                            // countdown; else a lower bound.
                            let exact = t.state_start_observed()
                                || (c.state == TcpState::TimeWait && c.timer.is_some());
                            let at_least = if exact { "" } else { "≥ " };
                            format!(", {at_least}{}", fmt_age(Some(a)))
                        }
                        _ => String::new(),
                    };
                    lines.push(Line::from(format!(
                        "  -{:>7}  {} (now{for_how_long})",
                        ago(now, t.state_since()),
                        c.state.name(),
                    )));
                }
                let timer = match (c.timer, c.recv_q()) {
                    (Some(_), _) => Span::raw(timer_text(c)),
                    (None, Some(_)) => Span::raw("none running"),
                    (None, None) => Span::styled("not provided by this backend", theme.muted),
                };
                lines.push(Line::from(vec![label("timer"), timer]));
                if let (Some(r), Some(s)) = (c.recv_q(), c.send_q()) {
                    let what = if c.state == TcpState::Listen {
                        format!("{r} waiting for accept(), backlog {s}")
                    } else {
                        format!("recv-q {r} B unread, send-q {s} B unacked")
                    };
                    lines.push(Line::from(vec![label("queues"), Span::raw(what)]));
                }
                lines.push(Line::from(Span::styled(c.state.meaning(), theme.muted)));
            }
        }
        Some(Row::Group(state, n)) => {
            lines.push(Line::from(Span::styled(
                format!("{} · {n} connections", state.name()),
                theme.title,
            )));
            lines.push(Line::from("Enter folds or unfolds the group."));
            lines.push(Line::from(Span::styled(state.meaning(), theme.muted)));
        }
        Some(Row::Process(i)) => {
            let p = &app.procs[i];
            lines.push(Line::from(Span::styled(
                format!(
                    "{} {}",
                    p.name,
                    p.pid.map_or(String::new(), |x| format!("(pid {x})"))
                ),
                theme.title,
            )));
            for (s, n) in p.counts.iter().filter(|(_, n)| *n > 0) {
                lines.push(Line::from(format!("  {:<12}{n:>7}", s.name())));
            }
            if let Some(g) = p.close_wait_per_min {
                lines.push(Line::from(format!("CLOSE_WAIT growth {g:+.1}/min")));
            }
            if p.counts.get(TcpState::CloseWait) > 0 {
                lines.push(Line::from(Span::styled(
                    TcpState::CloseWait.meaning(),
                    theme.muted,
                )));
            }
        }
        Some(Row::Remote(i)) => {
            let r = &app.remotes[i];
            lines.push(Line::from(Span::styled(r.remote.to_string(), theme.title)));
            lines.push(Line::from(format!("TIME_WAIT   {:>7}", r.time_wait)));
            lines.push(Line::from(format!("connections {:>7}", r.total)));
            if let (Some(from), Some(u)) = (r.from, &app.shown) {
                lines.push(Line::from(format!(
                    "{} of {} ephemeral ports ({:.1}%) used from {from}",
                    r.ports_used,
                    u.snapshot.ephemeral_ports.len(),
                    r.pressure * 100.0
                )));
            }
            lines.push(Line::from(Span::styled(
                "Each connection to one destination needs its own local port; TIME_WAIT holds it for 60 s.",
                theme.muted,
            )));
        }
    }
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
}

fn render_footer(f: &mut Frame, app: &App, theme: &Theme, area: Rect) {
    let line = if let Some(text) = &app.input {
        let mut spans = vec![
            Span::styled("filter: ", theme.key),
            Span::raw(text.clone()),
            Span::styled("█", theme.label),
        ];
        match &app.input_error {
            Some(e) => spans.push(Span::styled(format!("  {e}"), theme.critical)),
            None => spans.push(Span::styled(
                "  Enter applies, Esc cancels (e.g. state:close-wait port:443 proc:nginx)",
                theme.muted,
            )),
        }
        Line::from(spans)
    } else {
        let mut spans = Vec::new();
        if let Some(s) = &app.status {
            spans.push(Span::styled(format!("{s}  "), theme.critical));
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

/// The TCP close state diagram, as the help overlay shows it.
const DIAGRAM: &[&str] = &[
    "ACTIVE CLOSE (this side closes first)",
    " ESTABLISHED",
    "   │ close()/shutdown(): send FIN",
    " FIN_WAIT_1",
    "   │ ACK of our FIN",
    " FIN_WAIT_2    (peer never sends FIN: lingers)",
    "   │ peer's FIN, send ACK",
    " TIME_WAIT ── 2*MSL (60 s on Linux) ──> CLOSED",
    " (both FIN at once: FIN_WAIT_1 > CLOSING > TIME_WAIT)",
    "",
    "PASSIVE CLOSE (the peer closes first)",
    " ESTABLISHED",
    "   │ peer's FIN, send ACK",
    " CLOSE_WAIT    (app never calls close(): a leak)",
    "   │ close(): send FIN",
    " LAST_ACK",
    "   │ ACK of our FIN",
    " CLOSED",
];

/// The same diagram in two narrow columns, for small windows.
const COMPACT_DIAGRAM: &[&str] = &[
    "ACTIVE CLOSE (we close first)",
    " ESTABLISHED",
    "   │ close(): send FIN",
    " FIN_WAIT_1",
    "   │ ACK of our FIN",
    " FIN_WAIT_2  (peer owes FIN)",
    "   │ peer FIN, send ACK",
    " TIME_WAIT ─ 60 s ─> CLOSED",
    " (FIN both ways: CLOSING)",
    "PASSIVE CLOSE (peer first)",
    " ESTABLISHED",
    "   │ peer FIN, send ACK",
    " CLOSE_WAIT (app must close)",
    "   │ close(): send FIN",
    " LAST_ACK",
    "   │ ACK of our FIN",
    " CLOSED",
];

fn render_help(f: &mut Frame, app: &App, theme: &Theme, area: Rect) {
    let w = area.width.saturating_sub(4).min(110);
    let h = area.height.saturating_sub(2).min(28);
    let rect = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    f.render_widget(Clear, rect);
    let block = Block::default().borders(Borders::ALL).title(Span::styled(
        " Help: keys and TCP close states (? or Esc closes) ",
        theme.title,
    ));
    let inner = block.inner(rect);
    f.render_widget(block, rect);

    let mut keys: Vec<(String, &str)> = vec![];
    for (action, what) in [
        (Action::Up, "move up"),
        (Action::Down, "move down"),
        (Action::PageUp, "page up"),
        (Action::PageDown, "page down"),
        (Action::Home, "first row"),
        (Action::End, "last row"),
        (Action::NextView, "next view"),
        (Action::PrevView, "previous view"),
        (Action::Filter, "filter: state: port: proc:"),
        (Action::ClearFilter, "clear filter"),
        (Action::Sort, "sort by next column"),
        (Action::SortDirection, "reverse sort"),
        (Action::Pause, "pause / resume"),
        (Action::Faster, "poll faster"),
        (Action::Slower, "poll slower"),
        (Action::Detail, "show / hide detail"),
        (Action::ToggleGroup, "fold state group"),
        (Action::Lab, "close lab panel"),
        (Action::Help, "this help"),
        (Action::Quit, "quit"),
    ] {
        keys.push((app.keymap.keys_of(action), what));
    }
    keys.push(("1-9, 0".to_string(), "quick state filter"));
    keys.push(("mouse".to_string(), "click selects, wheel scrolls"));
    let key_line = |(k, what): &(String, &str)| {
        Line::from(vec![
            Span::styled(format!("{k:<16}"), theme.key),
            Span::raw(what.to_string()),
        ])
    };
    let legend = vec![
        Line::from(Span::styled(
            "VIA column: last = owner seen at an earlier poll",
            theme.muted,
        )),
        Line::from(Span::styled(
            "            lsn = the listener on the local port",
            theme.muted,
        )),
        Line::from(Span::styled(
            "IN STATE: time since first seen in the state",
            theme.muted,
        )),
    ];
    let diagram: Vec<Line> = DIAGRAM
        .iter()
        .map(|l| {
            if l.starts_with("ACTIVE") || l.starts_with("PASSIVE") {
                Line::from(Span::styled(*l, theme.title))
            } else {
                Line::from(*l)
            }
        })
        .collect();
    if inner.width >= 100 {
        let [left, right] =
            Layout::horizontal([Constraint::Length(50), Constraint::Fill(1)]).areas(inner);
        let mut l: Vec<Line> = keys.iter().map(key_line).collect();
        l.push(Line::from(""));
        l.extend(legend);
        f.render_widget(Paragraph::new(l), left);
        f.render_widget(Paragraph::new(diagram), right);
    } else {
        // Narrow: keys in two columns, then the diagram.
        let half = keys.len().div_ceil(2);
        let rows = half as u16;
        let [top, bottom] =
            Layout::vertical([Constraint::Length(rows), Constraint::Fill(1)]).areas(inner);
        let [a, b] = Layout::horizontal([Constraint::Ratio(1, 2); 2]).areas(top);
        let compact = |(k, what): &(String, &str)| {
            let k = k.split(", ").next().unwrap_or("");
            Line::from(vec![
                Span::styled(format!("{k:<10}"), theme.key),
                Span::raw(what.to_string()),
            ])
        };
        f.render_widget(
            Paragraph::new(keys[..half].iter().map(compact).collect::<Vec<_>>()),
            a,
        );
        f.render_widget(
            Paragraph::new(keys[half..].iter().map(compact).collect::<Vec<_>>()),
            b,
        );
        let (active, passive) = COMPACT_DIAGRAM.split_at(9);
        let [c, d] = Layout::horizontal([Constraint::Ratio(1, 2); 2]).areas(bottom);
        let to_lines = |ls: &[&'static str]| -> Vec<Line> {
            ls.iter()
                .filter(|l| !l.is_empty())
                .map(|l| {
                    if l.starts_with("ACTIVE") || l.starts_with("PASSIVE") {
                        Line::from(Span::styled(*l, theme.title))
                    } else {
                        Line::from(*l)
                    }
                })
                .collect()
        };
        f.render_widget(
            Paragraph::new(to_lines(active)).wrap(Wrap { trim: false }),
            c,
        );
        f.render_widget(
            Paragraph::new(to_lines(passive)).wrap(Wrap { trim: false }),
            d,
        );
    }
}
