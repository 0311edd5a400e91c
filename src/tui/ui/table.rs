//! The table of the current view, with only its visible rows built each frame.

use std::time::SystemTime;

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::Span;
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row as TRow, Table};

use super::columns::{self, Columns};
use crate::model::TcpState;
use crate::model::duration::fmt_age;
use crate::report::state_age_cell;
use crate::tui::app::{App, Mark, View};
use crate::tui::cells::{fit_addr, fit_remote, process_text, timer_text, via};
use crate::tui::rows::{NetnsRow, ProcRow, RemoteRow, Row};
use crate::tui::theme::Theme;

/// x, y, width, height.
type Area = (u16, u16, u16, u16);
/// x, y, width and the sort key of a header.
type HeaderHit = (u16, u16, u16, usize);

/// Draws the table; returns the rows' area for the mouse and where each header landed.
pub(super) fn render_table(
    f: &mut Frame,
    app: &App,
    theme: &Theme,
    area: Rect,
) -> (Area, Vec<HeaderHit>) {
    let view = app.view;
    let col = app.sort[View::ALL.iter().position(|v| *v == view).unwrap_or(0)];
    let desc = app.sort_desc[View::ALL.iter().position(|v| *v == view).unwrap_or(0)];
    let title = format!(
        " {} ({}) · Tab: next view{} ",
        view.title(),
        app.rows
            .iter()
            .filter(|r| !matches!(r, Row::Group(..)))
            .count(),
        if app.names.on { " · names" } else { "" }
    );
    let block = Block::default()
        .borders(Borders::TOP)
        .title(Span::styled(title, theme.title));
    let inner = block.inner(area);
    f.render_widget(block, area);
    if inner.height < 2 {
        return ((inner.x, inner.y, inner.width, 0), Vec::new());
    }
    let body_h = inner.height - 1;
    let (mark_col, mark_desc) = sort_mark(view, col, desc);
    let end = (app.offset + usize::from(body_h)).min(app.rows.len());
    let visible = &app.rows[app.offset.min(end)..end];
    let columns = columns::choose(app, view, visible, inner.width, mark_col);
    let header_cells: Vec<Cell> = columns
        .cols
        .iter()
        .map(|c| {
            let arrow = match (c.key == mark_col, mark_desc) {
                (true, true) => " ▼",
                (true, false) => " ▲",
                _ => "",
            };
            Cell::from(format!("{}{arrow}", view.column_name(c.key)))
        })
        .collect();
    let widths: Vec<Constraint> = columns.cols.iter().map(|c| c.width).collect();
    let now = app
        .shown
        .as_ref()
        .map_or(SystemTime::UNIX_EPOCH, |u| u.snapshot.taken_at);
    let rows: Vec<TRow> = visible
        .iter()
        .enumerate()
        .map(|(i, &row)| {
            let selected = app.offset + i == app.selected;
            let (cells, mut style) = row_cells(app, theme, row, now, &columns);
            if selected {
                style = theme.selected;
            }
            let shown = columns
                .cols
                .iter()
                .map(|c| cells.get(c.key).cloned().unwrap_or_default());
            TRow::new(shown).style(style)
        })
        .collect();
    let table = Table::new(rows, widths)
        .header(TRow::new(header_cells).style(theme.header_row))
        .column_spacing(1);
    f.render_widget(table, inner);
    if app.rows.is_empty() {
        render_empty(f, app, theme, inner);
    }
    (
        (inner.x, inner.y + 1, inner.width, body_h),
        columns.hit_areas(inner),
    )
}

/// The line an empty table shows: waiting, or what the filter matched nothing of.
fn render_empty(f: &mut Frame, app: &App, theme: &Theme, inner: Rect) {
    let msg = if app.shown.is_none() {
        "waiting for the first poll…".to_string()
    } else {
        // In the prompt Esc gives back the filter from before; outside it clears it.
        let esc = if app.input.is_some() {
            "Esc: previous filter"
        } else {
            "Esc clears the filter"
        };
        format!("no connection matches \"{}\" ({esc})", app.filter_text())
    };
    f.render_widget(
        Paragraph::new(Span::styled(msg, theme.muted)),
        Rect {
            y: inner.y + 1,
            height: 1,
            ..inner
        },
    );
}

/// The name of a connection row's namespace; nothing for a group header.
fn netns_name(app: &App, row: Row) -> String {
    let table = app.shown.as_ref().map(|u| &u.snapshot.netns);
    match (app.conn(row), table) {
        (Some(c), Some(t)) => t.name(c.netns()).unwrap_or("?").to_string(),
        _ => String::new(),
    }
}

/// Which header carries the sort arrow, and whether it points down (largest first): the
/// sorted column itself, as every view's default is now a real column (CLOSE_W, TIME_WAIT
/// descending), so a click on a name column sorts by name.
pub(super) fn sort_mark(_view: View, col: usize, desc: bool) -> (usize, bool) {
    (col, desc)
}

/// The cells and style of one table row.
/// Every column's cell, by sort key; the table picks the columns it shows.
fn row_cells<'a>(
    app: &'a App,
    theme: &Theme,
    row: Row,
    now: SystemTime,
    columns: &Columns,
) -> (Vec<Cell<'a>>, Style) {
    let (lw, rw) = (columns.local_w, columns.remote_w);
    match row {
        Row::Conn(_) | Row::Ghost(_) => conn_cells(app, theme, row, now, (lw, rw)),
        // The count goes under LOCAL, or under REMOTE where LOCAL gave way.
        Row::Group(state, n) if columns.shows(1) => group_cells(app, theme, state, n, lw),
        Row::Group(state, n) => {
            let (mut cells, style) = group_cells(app, theme, state, n, rw);
            cells.swap(1, 2);
            (cells, style)
        }
        Row::Process(i) => process_cells(app, &app.procs[i], theme),
        Row::Remote(i) => remote_cells(app, &app.remotes[i], theme),
        Row::Netns(i) => netns_cells(&app.netns_rows[i], theme),
    }
}

/// A connection's cells, styled by how it changed at the last poll.
fn conn_cells<'a>(
    app: &'a App,
    theme: &Theme,
    row: Row,
    now: SystemTime,
    (lw, rw): (usize, usize),
) -> (Vec<Cell<'a>>, Style) {
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
        state_age_cell(c, now)
    };
    (
        vec![
            Cell::from(c.state.name()),
            Cell::from(fit_addr(&c.local(), lw)),
            Cell::from(fit_remote(&c.remote(), app.names.get(c.remote().ip()), rw)),
            Cell::from(process_text(c)),
            Cell::from(format!("{age:>8}")),
            Cell::from(via(c)),
            Cell::from(netns_name(app, row)),
            Cell::from(timer_text(c)),
            Cell::from(c.recv_q().map_or(String::new(), |q| format!("{q:>6}"))),
            Cell::from(c.send_q().map_or(String::new(), |q| format!("{q:>6}"))),
        ],
        style,
    )
}

/// How many connections a group holds, in at most `width` columns: `1 connection`,
/// `14996 connections`, shortened rather than clipped (`14996 conns`, `14996`).
pub(super) fn group_count_text(n: u32, width: usize) -> String {
    let s = if n == 1 { "" } else { "s" };
    [
        format!("{n} connection{s}"),
        format!("{n} conn{s}"),
        n.to_string(),
    ]
    .into_iter()
    .find(|t| t.chars().count() <= width)
    .unwrap_or_else(|| n.to_string())
}

/// A state group header's cells; the count goes in the local address column, `lw` wide.
fn group_cells(
    app: &App,
    theme: &Theme,
    state: TcpState,
    n: u32,
    lw: usize,
) -> (Vec<Cell<'static>>, Style) {
    let arrow = if app.collapsed.contains(&state) {
        "▶"
    } else {
        "▼"
    };
    (
        vec![
            Cell::from(format!("{arrow} {}", state.name())),
            Cell::from(group_count_text(n, lw)),
            Cell::from(""),
            Cell::from(""),
            Cell::from(""),
            Cell::from(""),
        ],
        theme.title,
    )
}

/// A process's resets since start: sent, received, and the sent ones with data unread and
/// with SO_LINGER {1, 0}; `-` when the source is the counters (host-wide, no processes) or
/// there is no source.
fn reset_cells(app: &App, pid: Option<u32>) -> [String; 4] {
    match (app.closes.as_ref(), pid) {
        (Some(s), Some(pid)) => match s.resets_of(pid) {
            Some(r) => [r.sent, r.received, r.unread_data, r.linger0].map(|n| n.to_string()),
            None => ["-"; 4].map(String::from),
        },
        _ => ["-"; 4].map(String::from),
    }
}

/// A process's cells; a warning while it holds CLOSE_WAIT.
fn process_cells(app: &App, p: &ProcRow, theme: &Theme) -> (Vec<Cell<'static>>, Style) {
    let cw = p.counts.get(TcpState::CloseWait);
    let growth = p
        .close_wait_per_min
        .map_or("-".to_string(), |g| format!("{:+.0}", g.round()));
    let style = if cw > 0 {
        theme.warning
    } else {
        Style::default()
    };
    let [out, inn, unread, linger0] = reset_cells(app, p.pid);
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
                (p.counts.get(TcpState::FinWait1) + p.counts.get(TcpState::FinWait2)).to_string(),
            ),
            Cell::from(p.counts.get(TcpState::LastAck).to_string()),
            Cell::from(out),
            Cell::from(inn),
            Cell::from(unread),
            Cell::from(linger0),
        ],
        style,
    )
}

/// A remote endpoint's cells; critical from half the ephemeral range on.
fn remote_cells(app: &App, r: &RemoteRow, theme: &Theme) -> (Vec<Cell<'static>>, Style) {
    let style = if r.pressure >= 0.5 {
        theme.critical
    } else if r.time_wait > 0 {
        theme.warning
    } else {
        Style::default()
    };
    (
        vec![
            // Grouped by address still; shown by name where it has one.
            Cell::from(fit_remote(
                &r.remote,
                app.names.get(r.remote.ip()),
                usize::MAX,
            )),
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

/// A namespace's cells; a warning while it holds CLOSE_WAIT.
fn netns_cells(r: &NetnsRow, theme: &Theme) -> (Vec<Cell<'static>>, Style) {
    let get = |s| r.counts.get(s).to_string();
    let cw = r.counts.get(TcpState::CloseWait);
    let style = if cw > 0 {
        theme.warning
    } else {
        Style::default()
    };
    let growth = r
        .close_wait_per_min
        .map_or("-".to_string(), |g| format!("{:+.0}", g.round()));
    let oldest = match r.oldest_close_wait {
        Some(_) => fmt_age(r.oldest_close_wait),
        None => "-".to_string(),
    };
    let fin_waits = r.counts.get(TcpState::FinWait1) + r.counts.get(TcpState::FinWait2);
    (
        vec![
            Cell::from(r.name.to_string()),
            Cell::from(r.kind),
            Cell::from(r.total.to_string()),
            Cell::from(get(TcpState::Established)),
            Cell::from(cw.to_string()),
            Cell::from(oldest),
            Cell::from(growth),
            Cell::from(get(TcpState::TimeWait)),
            Cell::from(fin_waits.to_string()),
            Cell::from(get(TcpState::LastAck)),
        ],
        style,
    )
}
