//! Which columns the table shows at a width, and how wide: each view's columns in the order
//! they give way, defined once here ([`keep_order`]). The columns a person reads a view by
//! (state, remote and process; a process's or namespace's CLOSE_WAIT, TIME_WAIT and total)
//! always stay; the others go from the end of the order when the table is narrow (the
//! namespace, the kernel's timer and queues, resets, the local address), and the sorted
//! column stays with room for its arrow.

use ratatui::layout::{Constraint, Flex, Layout, Rect};

use crate::model::Connection;
use crate::tui::app::{App, View};
use crate::tui::cells::remote_width;
use crate::tui::rows::Row;

/// One column the table shows: its sort key (see `View::column_name`) and width.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Col {
    pub key: usize,
    pub width: Constraint,
}

/// The columns chosen for one frame, left to right, with the address columns' widths
/// (`usize::MAX` where the view has none; 0 for one that gave way).
#[derive(Clone, Debug)]
pub(super) struct Columns {
    pub cols: Vec<Col>,
    pub local_w: usize,
    pub remote_w: usize,
}

impl Columns {
    pub fn shows(&self, key: usize) -> bool {
        self.cols.iter().any(|c| c.key == key)
    }

    /// Where each header lands in `area` (the table's inner area; headers on its first
    /// line), as ratatui's table lays its columns out: x, y, width, sort key.
    pub fn hit_areas(&self, area: Rect) -> Vec<(u16, u16, u16, usize)> {
        let line = Rect { height: 1, ..area };
        let rects = Layout::horizontal(self.cols.iter().map(|c| c.width))
            .flex(Flex::Start)
            .spacing(1)
            .split(line);
        rects
            .iter()
            .zip(&self.cols)
            .map(|(r, c)| (r.x, r.y, r.width, c.key))
            .collect()
    }
}

/// Each view's columns (sort keys), most needed first; `ESSENTIAL` of them always stay,
/// the rest give way from the end as the table narrows.
pub(crate) fn keep_order(view: View) -> (&'static [usize], usize) {
    match view {
        // STATE, REMOTE, PROCESS, IN STATE; then LOCAL, VIA, TIMER, RECV-Q, SEND-Q, NETNS.
        View::All | View::ByState => (&[0, 2, 3, 4, 1, 5, 7, 8, 9, 6], 4),
        // PROCESS, CLOSE_W, TIME_W, TOTAL; PID, CW/MIN, ESTAB, FIN_W, LAST_A, RST OUT, RST IN,
        // RST UNREAD, RST LINGER0 (why the resets sent were sent).
        View::ByProcess => (&[0, 4, 6, 2, 1, 5, 3, 7, 8, 9, 10, 11, 12], 4),
        // REMOTE, TIME_WAIT, TOTAL; PORTS USED, FROM.
        View::ByRemote => (&[0, 1, 2, 3, 4], 3),
        // NETNS, CLOSE_W, TIME_W, TOTAL; OLD_CW, CW/MIN, KIND, ESTAB, FIN_W, LAST_A.
        View::ByNetns => (&[0, 4, 7, 2, 5, 6, 1, 3, 8, 9], 4),
    }
}

/// The columns of `view` for the `visible` rows in `width` columns, sorted on `sorted`.
pub(super) fn choose(app: &App, view: View, visible: &[Row], width: u16, sorted: usize) -> Columns {
    let conn_view = matches!(view, View::All | View::ByState);
    let widest = |f: &dyn Fn(&Connection) -> usize| {
        visible
            .iter()
            .filter_map(|&r| app.conn(r))
            .map(f)
            .max()
            .unwrap_or(6)
            .max(6)
    };
    let (l, r) = if conn_view {
        (
            widest(&|c| c.local().to_string().len()),
            widest(&|c| c.remote().to_string().len()),
        )
    } else {
        (0, 0)
    };
    // With names on, what the remote would take whole (`name:port`); the address width
    // above is what it needs at the least, and what the columns are chosen by.
    let named = if conn_view && app.names.on {
        widest(&|c| remote_width(&c.remote(), app.names.get(c.remote().ip())))
    } else {
        r
    };
    // What each column needs to be worth showing, and how it is drawn.
    let arrow_room = |key: usize| u16::try_from(view.column_name(key).chars().count() + 2).ok();
    let candidate = |key: usize| -> Option<(u16, Constraint)> {
        let (fit, c) = base_width(app, view, key, (l, r))?;
        match arrow_room(key).filter(|_| key == sorted) {
            Some(need) => Some((fit.max(need), widen(c, need))),
            None => Some((fit, c)),
        }
    };
    let (order, essential) = keep_order(view);
    let mut keys: Vec<usize> = std::iter::once(sorted)
        .chain(order.iter().copied().filter(|&k| k != sorted))
        .collect();
    if !order.contains(&sorted) {
        keys.remove(0);
    }
    let mut chosen: Vec<(usize, u16, Constraint)> = Vec::new();
    let mut used: u16 = 0;
    for key in keys {
        let Some((fit, c)) = candidate(key) else {
            continue;
        };
        let need = used
            .saturating_add(fit)
            .saturating_add(u16::from(!chosen.is_empty()));
        let must = order[..essential].contains(&key) || key == sorted;
        if need > width && !must {
            break;
        }
        used = need;
        chosen.push((key, fit, c));
    }
    chosen.sort_by_key(|c| c.0);
    let (mut local_w, mut remote_w) = (usize::MAX, usize::MAX);
    if conn_view {
        (local_w, remote_w) = address_widths(&chosen, width, (l, r), named);
        for c in &mut chosen {
            let arrow = arrow_room(c.0).filter(|_| c.0 == sorted).unwrap_or(0);
            match c.0 {
                1 => c.2 = Constraint::Length(to_u16(local_w).max(arrow)),
                2 => c.2 = Constraint::Length(to_u16(remote_w).max(arrow)),
                _ => {}
            }
        }
    }
    Columns {
        cols: chosen
            .into_iter()
            .map(|(key, _, width)| Col { key, width })
            .collect(),
        local_w,
        remote_w,
    }
}

/// A column's width to be worth showing and its constraint, before the sort arrow; `None`
/// where the poll has no data for it (one namespace, no kernel timers).
fn base_width(
    app: &App,
    view: View,
    key: usize,
    (l, r): (usize, usize),
) -> Option<(u16, Constraint)> {
    let len = |n: u16| Some((n, Constraint::Length(n)));
    match view {
        View::All | View::ByState => match key {
            0 => len(13),
            // Addresses: the width of the visible ones, up to an IPv4 address and port;
            // the final widths are set once the columns are chosen.
            1 => Some((to_u16(l.min(15)), Constraint::Length(0))),
            2 => Some((to_u16(r.min(15)), Constraint::Length(0))),
            3 => Some((14, Constraint::Fill(1))),
            4 => len(10),
            5 => len(4),
            6 => {
                let table = &app.shown.as_ref()?.snapshot.netns;
                if !table.several() {
                    return None;
                }
                let w = table
                    .iter()
                    .map(|n| n.name.chars().count())
                    .max()
                    .unwrap_or(5);
                len(to_u16(w.clamp(5, 12)))
            }
            7..=9 if !has_kernel_fields(app) => None,
            7 => len(12),
            8 | 9 => len(6),
            _ => None,
        },
        View::ByProcess => match key {
            0 => Some((14, Constraint::Min(14))),
            1 => len(7),
            2 | 3 | 7 => len(6),
            4 => len(8),
            5 | 6 | 8..=10 => len(7),
            11 => len(10),
            12 => len(11),
            _ => None,
        },
        View::ByNetns => match key {
            0 => Some((10, Constraint::Min(10))),
            1 | 5..=7 | 9 => len(7),
            2 | 3 => len(5),
            4 => len(9),
            8 => len(6),
            _ => None,
        },
        View::ByRemote => match key {
            0 => Some((15, Constraint::Fill(2))),
            1 => len(10),
            2 => len(7),
            3 => len(16),
            4 => Some((8, Constraint::Fill(1))),
            _ => None,
        },
    }
}

/// Whether the poll carries the kernel's timers and queues (the netlink backend).
fn has_kernel_fields(app: &App) -> bool {
    app.shown.as_ref().is_some_and(|u| {
        u.snapshot
            .connections
            .iter()
            .take(64)
            .any(|c| c.recv_q().is_some())
    })
}

/// The address columns' widths: what the visible addresses need where there is room, else
/// shared in proportion; the process column keeps 14.
fn address_widths(
    chosen: &[(usize, u16, Constraint)],
    width: u16,
    (l, r): (usize, usize),
    named: usize,
) -> (usize, usize) {
    let others: usize = chosen
        .iter()
        .filter(|c| c.0 != 1 && c.0 != 2)
        .map(|c| usize::from(c.1))
        .sum();
    let gaps = chosen.len().saturating_sub(1);
    let room = usize::from(width).saturating_sub(others + gaps);
    let local = chosen.iter().any(|c| c.0 == 1);
    if !local {
        return (0, named.max(r).min(room));
    }
    if l + named.max(r) <= room {
        (l, named.max(r))
    } else if l + r <= room {
        // Names are cut before any address is: the remote gets what is left.
        (l, room - l)
    } else {
        (room * l / (l + r), room * r / (l + r))
    }
}

fn widen(c: Constraint, need: u16) -> Constraint {
    match c {
        Constraint::Length(n) => Constraint::Length(n.max(need)),
        Constraint::Min(n) => Constraint::Min(n.max(need)),
        other => other,
    }
}

fn to_u16(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}
