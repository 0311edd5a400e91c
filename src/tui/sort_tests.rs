//! Click-to-sort (issue 15): every header of every view sorts on a click, counts worst
//! first, a second click reverses, the arrow whole; and the columns that give way at 80 and
//! 60 columns leave the essential ones whole.

use crossterm::event::{Event, KeyCode, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};

use super::app::{App, View};
use super::fixture::two_polls_from;
use super::handle_event;
use super::keys::Keymap;
use super::tests::{draw, key};
use crate::model::Filter;
use crate::tui::rows::Row;

fn kernel_app() -> App {
    let mut app = App::new(
        Keymap::default(),
        std::time::Duration::from_secs(2),
        300,
        Filter::default(),
    );
    let (a, b) = two_polls_from(false, true);
    app.on_update(a);
    app.on_update(b);
    app
}

fn click(app: &mut App, x: u16, y: u16) {
    handle_event(
        app,
        Event::Mouse(MouseEvent {
            kind: MouseEventKind::Down(MouseButton::Left),
            column: x,
            row: y,
            modifiers: KeyModifiers::NONE,
        }),
    );
}

/// The header line of the table (the one with the arrow).
fn header_line(screen: &str) -> String {
    screen
        .lines()
        .find(|l| l.contains('▲') || l.contains('▼'))
        .unwrap_or_else(|| panic!("no header with an arrow:\n{screen}"))
        .to_string()
}

/// Every header drawn, in every view, sorts on a click: the arrow lands on it, whole,
/// pointing down for a count (worst first) and up for a name; a second click flips it.
#[test]
fn every_header_sorts_on_a_click_and_a_second_click_reverses() {
    let mut app = kernel_app();
    // The detail pane hidden: the table has 120 columns, the kernel columns show.
    key(&mut app, KeyCode::Char('d'));
    let mut seen = Vec::new();
    for view in View::ALL {
        assert_eq!(app.view, view);
        draw(&mut app, 120, 40);
        let headers = app.hit.headers.clone();
        assert!(
            headers.len() >= view.columns().len() - 1,
            "{view:?}: {headers:?}"
        );
        for &(x, y, w, col) in &headers {
            let v = view_index(view);
            // The column sorted already (the view's default) reverses on its first click.
            let expected = if app.sort[v] == col {
                !app.sort_desc[v]
            } else {
                view.worst_first(col)
            };
            click(&mut app, x + w / 2, y);
            assert_eq!(app.sort[v], col, "{view:?} {}", view.column_name(col));
            let first = app.sort_desc[v];
            assert_eq!(first, expected, "{}", view.column_name(col));
            let screen = draw(&mut app, 120, 40);
            let arrow = if first { '▼' } else { '▲' };
            let name = view.column_name(col);
            assert!(
                header_line(&screen).contains(&format!("{name} {arrow}")),
                "{view:?} after a click on {name}:\n{screen}"
            );
            // Where the header is now (the arrow may have moved the columns after it).
            let (x, y, _, _) = app
                .hit
                .headers
                .iter()
                .find(|h| h.3 == col)
                .copied()
                .unwrap();
            click(&mut app, x, y);
            assert_eq!(app.sort_desc[v], !first, "second click on {name}");
            let screen = draw(&mut app, 120, 40);
            let arrow = if first { '▲' } else { '▼' };
            assert!(
                header_line(&screen).contains(&format!("{name} {arrow}")),
                "{view:?} after a second click on {name}:\n{screen}"
            );
            seen.push(name);
        }
        key(&mut app, KeyCode::Tab);
    }
    for name in [
        "RECV-Q", "SEND-Q", "TIMER", "VIA", "IN STATE", "CW/MIN", "FROM",
    ] {
        assert!(seen.contains(&name), "{name} never clicked: {seen:?}");
    }
}

fn view_index(view: View) -> usize {
    View::ALL.iter().position(|v| *v == view).unwrap()
}

/// The rows follow the click: RECV-Q worst first puts the fullest receive queue on top;
/// TOTAL in the process view the busiest process; the name A to Z.
#[test]
fn a_click_orders_the_rows_by_that_column() {
    let mut app = kernel_app();
    key(&mut app, KeyCode::Char('d'));
    draw(&mut app, 120, 40);
    let at = |app: &App, key: usize| {
        let h = app.hit.headers.iter().find(|h| h.3 == key).copied();
        h.unwrap_or_else(|| panic!("no header {key}: {:?}", app.hit.headers))
    };
    let (x, y, _, _) = at(&app, 8);
    click(&mut app, x, y);
    let queues: Vec<u32> = app
        .rows
        .iter()
        .filter_map(|&r| app.conn(r).and_then(|c| c.recv_q()))
        .collect();
    assert!(
        queues.len() > 2 && queues.windows(2).all(|w| w[0] >= w[1]),
        "{queues:?}"
    );
    assert!(queues[0] > 0, "{queues:?}");

    for _ in 0..2 {
        key(&mut app, KeyCode::Tab);
    }
    assert_eq!(app.view, View::ByProcess);
    draw(&mut app, 120, 40);
    let (x, y, _, _) = at(&app, 2);
    click(&mut app, x, y);
    let totals: Vec<u32> = rows_of(&app).iter().map(|&i| app.procs[i].total).collect();
    assert!(totals.windows(2).all(|w| w[0] >= w[1]), "{totals:?}");
    let (x, y, _, _) = at(&app, 0);
    click(&mut app, x, y);
    let names: Vec<String> = rows_of(&app)
        .iter()
        .map(|&i| app.procs[i].name.clone())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
}

fn rows_of(app: &App) -> Vec<usize> {
    app.rows
        .iter()
        .filter_map(|r| match r {
            Row::Process(i) => Some(*i),
            _ => None,
        })
        .collect()
}

/// At 80 and 60 columns the columns that give way go whole: every header drawn is a whole
/// column name, the sorted one with its arrow, and the essential ones stay.
#[test]
fn narrow_tables_drop_whole_columns_and_keep_the_essential_ones() {
    let essential: [(View, &[&str]); 5] = [
        (View::All, &["STATE", "REMOTE", "PROCESS", "IN STATE"]),
        (View::ByState, &["STATE", "REMOTE", "PROCESS", "IN STATE"]),
        (View::ByProcess, &["PROCESS", "TOTAL", "CLOSE_W", "TIME_W"]),
        (View::ByRemote, &["REMOTE", "TIME_WAIT", "TOTAL"]),
        (View::ByNetns, &["NETNS", "TOTAL", "CLOSE_W", "TIME_W"]),
    ];
    for (w, h) in [(80u16, 24u16), (60, 12)] {
        let mut app = kernel_app();
        for (view, names) in essential {
            assert_eq!(app.view, view);
            let screen = draw(&mut app, w, h);
            let line = header_line(&screen);
            let mut text = line.trim_matches('"').to_string();
            for &(_, _, _, col) in &app.hit.headers {
                let name = view.column_name(col);
                assert!(
                    text.contains(name),
                    "{view:?} {w}x{h}: {name} cut in {line}"
                );
                text = text.replacen(name, "", 1);
            }
            // Nothing but arrows and spaces is left: no cut-off column name.
            assert!(
                text.chars().all(|c| c == ' ' || c == '▲' || c == '▼'),
                "{view:?} {w}x{h}: {line}"
            );
            for name in names {
                assert!(line.contains(name), "{view:?} {w}x{h}: no {name} in {line}");
            }
            key(&mut app, KeyCode::Tab);
        }
    }
}

/// Issue 15: at 80x24 the partial-info banner's third line was cut (the part that says
/// what to do). The banner is as tall as its words wrap to: every word of a long reason is
/// on screen at 80x24, and the table still has rows.
#[test]
fn the_partial_banner_keeps_its_last_line_at_80x24() {
    let reason = "1 socket shows no process: they belong to another PID namespace (a container) or closed mid-poll; run lingertop in the host's PID namespace to see them";
    let mut app = super::tests::app_with_fixture(true);
    let mut u = (**app.latest.as_ref().unwrap()).clone();
    let mut snap = (*u.snapshot).clone();
    snap.process_info = crate::model::ProcessInfo::Partial {
        reason: reason.into(),
    };
    u.snapshot = std::sync::Arc::new(snap);
    app.on_update(std::sync::Arc::new(u));
    let screen = draw(&mut app, 80, 24);
    let text: String = screen
        .lines()
        .map(|l| l.trim_matches('"').trim())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        text.contains("run lingertop in the host's PID namespace to see them"),
        "{screen}"
    );
    assert!(
        text.contains(&format!("process info is partial: {reason}")),
        "{screen}"
    );
    assert!(screen.contains("ESTABLISHED   10.0.0.2:8080"), "{screen}");
}

/// At 60x12 with the partial-info banner and several alerts the table still shows rows:
/// the banner takes one line and the alerts box one alert there (the list has them all).
#[test]
fn a_60x12_window_with_the_banner_and_alerts_still_shows_table_rows() {
    let mut app = super::tests::app_with_fixture(true);
    assert!(app.all_alerts().len() >= 2);
    let screen = draw(&mut app, 60, 12);
    assert!(screen.contains("process info is partial"), "{screen}");
    let rows = screen
        .lines()
        .filter(|l| l.trim_start_matches('"').starts_with("ESTABLISHED"))
        .count();
    assert!(rows >= 2, "{screen}");
}

/// Sorted on a column that would give way (TIMER), a 60-column table keeps it with its
/// arrow and still every essential column: the sorted one takes a lesser column's place.
#[test]
fn a_sorted_extra_column_stays_beside_the_essential_ones() {
    let mut app = kernel_app();
    key(&mut app, KeyCode::Char('d'));
    draw(&mut app, 120, 40);
    let (x, y, _, _) = app.hit.headers.iter().find(|h| h.3 == 7).copied().unwrap();
    click(&mut app, x, y);
    for (w, h) in [(80u16, 24u16), (60, 12)] {
        let line = header_line(&draw(&mut app, w, h));
        for name in ["STATE", "REMOTE", "PROCESS", "IN STATE", "TIMER ▼"] {
            assert!(line.contains(name), "{w}x{h}: no {name} in {line}");
        }
    }
}
