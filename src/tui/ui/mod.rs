//! Drawing: reads [`App`] and returns where things landed (for the mouse). No I/O, no
//! state changes; only the visible rows of the table are built each frame. One widget per
//! file; this one lays them out.

mod alerts;
mod alerts_list;
mod closes;
mod columns;
mod confirm;
mod detail;
mod footer;
mod header;
mod help;
mod lab_panel;
mod prompt;
mod strip;
mod table;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};
use ratatui::widgets::{Paragraph, Wrap};

use crate::model::ProcessInfo;
use crate::tui::app::{App, HitAreas};
use crate::tui::theme::Theme;

/// Below this the dashboard says the window is too small instead of drawing.
/// Which header shows the sort arrow and which way it points (see `table::sort_mark`).
#[cfg(test)]
pub(crate) fn sort_mark_of(view: crate::tui::app::View, col: usize, desc: bool) -> (usize, bool) {
    table::sort_mark(view, col, desc)
}

pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 12;

/// Draws the whole dashboard, and the close confirmation over it while one waits.
pub fn render(f: &mut Frame, app: &App, theme: &Theme) -> HitAreas {
    let hit = render_screen(f, app, theme);
    let area = f.area();
    if let Some(c) = &app.confirm
        && area.width >= MIN_WIDTH
        && area.height >= MIN_HEIGHT
    {
        confirm::render_confirm(f, c, theme, area);
    }
    hit
}

fn render_screen(f: &mut Frame, app: &App, theme: &Theme) -> HitAreas {
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
    let alert_lines = app.all_alerts().len();
    // A short window keeps its rows for the table: the list (`a`) has every alert.
    let max_alerts: usize = match area.height {
        34.. => 5,
        16.. => 2,
        _ => 1,
    };
    let alerts_h = 1 + alert_lines.min(max_alerts) as u16;
    // The notice as tall as its text wraps to (it says what to do last), up to 3 lines; 2,
    // then 1, in shorter windows, so the table keeps rows.
    let notice_max = match area.height {
        24.. => 3,
        16.. => 2,
        _ => 1,
    };
    let notice_h = if partial {
        header::notice_height(app, area.width, notice_max)
    } else {
        0
    };
    let [header, strip, alerts, main, footer] = Layout::vertical([
        Constraint::Length(1 + notice_h),
        Constraint::Length(3),
        Constraint::Length(alerts_h),
        Constraint::Fill(1),
        Constraint::Length(prompt::prompt_height(app)),
    ])
    .areas(area);
    header::render_header(f, app, theme, header);
    hit.strip = strip::render_strip(f, app, theme, strip);
    if app.alerts_list.open {
        // The list takes everything between the strip and the footer.
        let room = alerts.union(main);
        hit.alerts_list_rows = alerts_list::render_alerts_list(f, app, theme, room);
        footer::render_footer(f, app, theme, footer);
        if app.help {
            help::render_help(f, app, theme, area);
        }
        return hit;
    }
    hit.alerts_shown = alerts::render_alerts(f, app, theme, alerts, max_alerts);
    hit.alerts_box = (
        alerts.x,
        alerts.y + 1,
        alerts.width,
        alerts.height.saturating_sub(1),
    );

    let wide = main.width >= 110;
    if let Some(panel) = &app.lab {
        // The lab panel takes the lower part; the table above shows the lab's sockets.
        // Narrow and short, the keys sit above the trace and need all the room there is.
        let panel_h = if main.width < 100 && main.height < 24 {
            main.height
        } else {
            (main.height / 2).max(10).min(main.height.saturating_sub(4))
        };
        let [t, p] =
            Layout::vertical([Constraint::Fill(1), Constraint::Length(panel_h)]).areas(main);
        (hit.table, hit.headers) = table::render_table(f, app, theme, t);
        let (r, max_scroll) = lab_panel::render_lab_panel(f, panel, theme, p);
        hit.lab_trace = (r.x, r.y, r.width, r.height);
        hit.lab_max_scroll = max_scroll;
        footer::render_footer(f, app, theme, footer);
        if app.help {
            help::render_help(f, app, theme, area);
        }
        return hit;
    }
    if app.closes_panel {
        // The panel takes the lower half, or everything when the window is too short for both.
        let panel_h = if main.height < 18 {
            main.height
        } else {
            (main.height / 2).max(14).min(main.height.saturating_sub(4))
        };
        let [t, p] =
            Layout::vertical([Constraint::Fill(1), Constraint::Length(panel_h)]).areas(main);
        if t.height > 0 {
            (hit.table, hit.headers) = table::render_table(f, app, theme, t);
        }
        let key = app.keymap.keys_of(crate::tui::keys::Action::Closes);
        closes::render_closes(f, app.closes.as_ref(), theme, &key, p);
        footer::render_footer(f, app, theme, footer);
        if app.help {
            help::render_help(f, app, theme, area);
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
    (hit.table, hit.headers) = table::render_table(f, app, theme, table_area);
    if let Some(d) = detail_area {
        detail::render_detail(f, app, theme, d);
    }
    footer::render_footer(f, app, theme, footer);
    if app.help {
        help::render_help(f, app, theme, area);
    }
    hit
}
