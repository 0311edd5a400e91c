//! The table of the current view, with only its visible rows built each frame.

use std::time::SystemTime;

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::Span;
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row as TRow, Table};

use super::text::{fit_addr, fit_remote, process_text, queue_text, remote_width, timer_text, via};
use crate::model::duration::fmt_age;
use crate::model::{Connection, TcpState};
use crate::report::state_age_cell;
use crate::tui::app::{App, Mark, View};
use crate::tui::rows::{NetnsRow, ProcRow, RemoteRow, Row};
use crate::tui::theme::Theme;

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

/// The NETNS column's width, where the poll read more than one namespace and the table has
/// room: it gives way first, before the kernel columns and the addresses narrow.
fn netns_column(app: &App, view: View, width: u16) -> Option<u16> {
    let table = &app.shown.as_ref()?.snapshot.netns;
    if !matches!(view, View::All | View::ByState) || !table.several() {
        return None;
    }
    let w = table
        .iter()
        .map(|n| n.name.chars().count())
        .max()
        .unwrap_or(5);
    let w = u16::try_from(w.clamp(5, 12)).unwrap_or(12);
    let kernel = if kernel_columns(app, view, width) {
        27
    } else {
        0
    };
    // The fixed columns (46 with their gaps), two IPv4 addresses (30) and this one's gap.
    (width >= 77 + w + kernel).then_some(w)
}

/// Draws the table; returns the rows' area for the mouse.
pub(super) fn render_table(
    f: &mut Frame,
    app: &App,
    theme: &Theme,
    area: Rect,
) -> (u16, u16, u16, u16) {
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
        return (inner.x, inner.y, inner.width, 0);
    }
    let body_h = inner.height - 1;
    let (mark_col, mark_desc) = sort_mark(view, col, desc);
    let header_cells: Vec<Cell> = view
        .columns()
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let arrow = if i == mark_col {
                if mark_desc { " ▼" } else { " ▲" }
            } else {
                ""
            };
            Cell::from(format!("{name}{arrow}"))
        })
        .collect();
    let end = (app.offset + usize::from(body_h)).min(app.rows.len());
    let visible = &app.rows[app.offset.min(end)..end];
    let (widths, addr_widths) = column_widths(app, view, visible, inner.width);
    // Room for the sorted column's header with its arrow (the others keep their widths,
    // so the row still fits beside the detail pane).
    let widths: Vec<Constraint> = widths
        .into_iter()
        .enumerate()
        .map(|(i, w)| {
            let need = match view.columns().get(i) {
                Some(n) if i == mark_col => {
                    u16::try_from(n.chars().count() + 2).unwrap_or(u16::MAX)
                }
                _ => 0,
            };
            match w {
                Constraint::Length(n) => Constraint::Length(n.max(need)),
                Constraint::Min(n) => Constraint::Min(n.max(need)),
                other => other,
            }
        })
        .collect();
    let extra = Extra::of(app, view, inner.width);
    let (mut header_cells, mut widths) = (header_cells, widths);
    extra.header(&mut header_cells, &mut widths);
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
            extra.cells(app, row, &mut cells);
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
        render_empty(f, app, theme, inner);
    }
    (inner.x, inner.y + 1, inner.width, body_h)
}

/// The columns after a view's own: VIA, NETNS, the kernel's timer and queues (connection
/// views), resets per process (by-process), each where the width has room for it.
struct Extra {
    via: bool,
    netns_w: Option<u16>,
    kernel_cols: bool,
    rst_cols: bool,
}

impl Extra {
    fn of(app: &App, view: View, width: u16) -> Extra {
        let conn_view = matches!(view, View::All | View::ByState);
        Extra {
            via: conn_view,
            netns_w: netns_column(app, view, width).filter(|_| conn_view),
            kernel_cols: conn_view && kernel_columns(app, view, width),
            // Resets per process, from the kernel's events, where the table has room beside
            // the state columns (hide the detail pane for them at 120 columns).
            rst_cols: view == View::ByProcess && width >= RST_MIN_WIDTH,
        }
    }

    fn header<'a>(&self, cells: &mut Vec<Cell<'a>>, widths: &mut Vec<Constraint>) {
        if self.via {
            cells.push(Cell::from("VIA"));
        }
        if let Some(w) = self.netns_w {
            cells.push(Cell::from("NETNS"));
            widths.push(Constraint::Length(w));
        }
        if self.kernel_cols {
            cells.push(Cell::from("TIMER"));
            cells.push(Cell::from("RECV-Q SEND-Q"));
            widths.push(Constraint::Length(12));
            widths.push(Constraint::Length(13));
        }
        if self.rst_cols {
            cells.push(Cell::from("RST OUT"));
            cells.push(Cell::from("RST IN"));
            widths.push(Constraint::Length(7));
            widths.push(Constraint::Length(7));
        }
    }

    fn cells<'a>(&self, app: &App, row: Row, cells: &mut Vec<Cell<'a>>) {
        if self.netns_w.is_some() {
            cells.push(Cell::from(netns_name(app, row)));
        }
        if self.kernel_cols {
            let c = app.conn(row);
            cells.push(Cell::from(c.map_or(String::new(), timer_text)));
            cells.push(Cell::from(c.map_or(String::new(), queue_text)));
        }
        if self.rst_cols
            && let Row::Process(i) = row
        {
            let (out, inn) = reset_cells(app, app.procs[i].pid);
            cells.push(Cell::from(out));
            cells.push(Cell::from(inn));
        }
    }
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

/// Which header carries the sort arrow, and whether it points down (largest first).
/// The process and remote views' default order (column 0 ascending) is worst first, by
/// CLOSE_WAIT and by TIME_WAIT: the arrow says so on that column, not on the name.
pub(super) fn sort_mark(view: View, col: usize, desc: bool) -> (usize, bool) {
    match view {
        View::ByProcess if col == 0 && !desc => (4, true),
        View::ByRemote if col == 0 && !desc => (1, true),
        View::ByNetns if col == 0 && !desc => (4, true),
        _ => (col, desc),
    }
}

/// The widths of the view's columns for the `visible` rows in `width` columns, and the
/// address columns' widths (`usize::MAX` where the view has none).
fn column_widths(
    app: &App,
    view: View,
    visible: &[Row],
    width: u16,
) -> (Vec<Constraint>, (usize, usize)) {
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
            let r = widest(&|c| remote_width(&c.remote(), app.names.get(c.remote().ip())));
            // Without the names: what the remote column needs at the least.
            let r_addr = widest(&|c| c.remote().to_string().len());
            let kernel = if kernel_columns(app, view, width) {
                12 + 13 + 2
            } else {
                0
            };
            let netns = netns_column(app, view, width).map_or(0, |w| usize::from(w) + 1);
            let room = usize::from(width).saturating_sub(13 + 10 + 4 + 5 + 14 + kernel + netns);
            let (l, r) = if l + r <= room {
                (l, r)
            } else if l + r_addr <= room {
                // Names are cut before any address is: the remote gets what is left.
                (l, room - l)
            } else {
                (room * l / (l + r_addr), room * r_addr / (l + r_addr))
            };
            addr_widths = (l, r);
            vec![
                Constraint::Length(13),
                Constraint::Length(u16::try_from(l).unwrap_or(20)),
                Constraint::Length(u16::try_from(r).unwrap_or(20)),
                Constraint::Fill(1),
                Constraint::Length(10),
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
        // 79 columns with their gaps: fits beside the detail pane at 120 and alone at 80.
        View::ByNetns => vec![
            Constraint::Min(10),
            Constraint::Length(7),
            Constraint::Length(5),
            Constraint::Length(5),
            Constraint::Length(9),
            Constraint::Length(7),
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
    (widths, addr_widths)
}

/// The cells and style of one table row.
fn row_cells<'a>(
    app: &'a App,
    theme: &Theme,
    row: Row,
    now: SystemTime,
    (lw, rw): (usize, usize),
) -> (Vec<Cell<'a>>, Style) {
    match row {
        Row::Conn(_) | Row::Ghost(_) => conn_cells(app, theme, row, now, (lw, rw)),
        Row::Group(state, n) => group_cells(app, theme, state, n, lw),
        Row::Process(i) => process_cells(&app.procs[i], theme),
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

/// The by-process view shows its RST columns from this table width on.
pub(super) const RST_MIN_WIDTH: u16 = 96;

/// A process's resets sent and received since start; `-` when the source is the counters
/// (host-wide, no processes) or there is no source.
fn reset_cells(app: &App, pid: Option<u32>) -> (String, String) {
    match (app.closes.as_ref(), pid) {
        (Some(s), Some(pid)) => match s.resets_of(pid) {
            Some((out, inn)) => (out.to_string(), inn.to_string()),
            None => ("-".to_string(), "-".to_string()),
        },
        _ => ("-".to_string(), "-".to_string()),
    }
}

/// A process's cells; a warning while it holds CLOSE_WAIT.
fn process_cells(p: &ProcRow, theme: &Theme) -> (Vec<Cell<'static>>, Style) {
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
                (p.counts.get(TcpState::FinWait1) + p.counts.get(TcpState::FinWait2)).to_string(),
            ),
            Cell::from(p.counts.get(TcpState::LastAck).to_string()),
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
