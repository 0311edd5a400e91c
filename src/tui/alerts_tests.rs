//! The alerts list (issue 15 item 10): reached with `a`, moved through, opened, Enter
//! filters the table to the alert's connections and clear-filter undoes it; insta snapshots
//! at 120x40, 80x24 and 60x12.

use crossterm::event::KeyCode;

use super::app::{App, View};
use super::fixture::{seven_alerts, seven_alerts_rules};
use super::keys::Keymap;
use super::tests::{draw, key};
use crate::model::{Filter, TcpState};

fn app() -> App {
    let mut app = App::new(
        Keymap::default(),
        std::time::Duration::from_secs(2),
        300,
        Filter::default(),
    );
    app.set_rules(&seven_alerts_rules());
    let (a, b) = seven_alerts();
    app.on_update(a);
    app.on_update(b);
    app
}

/// The one alert naming a process sits below six others; the box cannot show it, the
/// list reaches it, opens it with who, since when and the rule's thresholds, and Enter
/// filters the table to its connection.
#[test]
fn the_seventh_alert_is_reached_opened_and_filters_the_table() {
    let mut app = app();
    let alerts = app.all_alerts();
    assert_eq!(alerts.len(), 7, "{alerts:#?}");
    assert_eq!(alerts[6].process.as_deref(), Some("java"));
    assert!(alerts[..6].iter().all(|a| a.process.is_none()));
    let screen = draw(&mut app, 120, 40);
    assert!(!screen.contains("CLOSE_WAIT held by java"), "{screen}");
    assert!(
        screen.contains("1-5 of 7, worst first · a: list them all"),
        "{screen}"
    );

    key(&mut app, KeyCode::Char('a'));
    assert!(app.alerts_list.open);
    for _ in 0..6 {
        key(&mut app, KeyCode::Down);
    }
    let screen = draw(&mut app, 120, 40);
    assert!(
        screen.contains("› warning  1 CLOSE_WAIT held by java (pid 3121)"),
        "{screen}"
    );
    assert!(screen.contains("who   java (pid 3121)"), "{screen}");
    // Raised at the second poll (a CLOSE_WAIT first seen needs 30 s to count), held 40 s.
    assert!(
        screen.contains("since raised 0s ago; the oldest in CLOSE_WAIT"),
        "{screen}"
    );
    assert!(screen.contains("for 40s"), "{screen}");
    assert!(screen.contains("warning at 1, critical at 100"), "{screen}");
    // The TIME_WAIT piles were there at the first poll: they may be older than lingertop.
    key(&mut app, KeyCode::Home);
    let screen = draw(&mut app, 120, 40);
    assert!(
        screen.contains("since before lingertop's first poll, at least"),
        "{screen}"
    );
    key(&mut app, KeyCode::End);
    // Down past the last stays on it.
    key(&mut app, KeyCode::Down);
    assert_eq!(app.alerts_list.selected, 6);

    key(&mut app, KeyCode::Enter);
    assert!(!app.alerts_list.open);
    assert_eq!(app.view, View::All);
    assert_eq!(app.filter_text(), "state:close-wait pid:3121");
    // The oldest first: IN STATE descending.
    assert!(draw(&mut app, 120, 40).contains("IN STATE ▼"));
    assert_eq!(app.rows.len(), 1);
    let c = app.conn(app.rows[0]).unwrap();
    assert_eq!(c.state, TcpState::CloseWait);
    assert!(draw(&mut app, 120, 40).contains("filter state:close-wait pid:3121"));

    // Esc clears the alert's filter: every connection is back.
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.filter_text(), "");
    assert_eq!(app.rows.len(), 28);
}

/// Esc and `a` leave the list without filtering; a new poll keeps the same alert selected
/// even when the alerts reorder; PgDn/PgUp move by the list's page.
#[test]
fn the_list_leaves_without_filtering_and_keeps_its_selection_across_polls() {
    let mut app = app();
    key(&mut app, KeyCode::Char('a'));
    key(&mut app, KeyCode::End);
    assert_eq!(app.alerts_list.selected, 6);
    key(&mut app, KeyCode::Esc);
    assert!(!app.alerts_list.open);
    assert_eq!(app.filter_text(), "");
    key(&mut app, KeyCode::Char('a'));
    assert!(app.alerts_list.open);
    assert_eq!(app.alerts_list.selected, 6);
    key(&mut app, KeyCode::Home);
    key(&mut app, KeyCode::Char('j'));
    let second = app.selected_alert().unwrap().message.clone();
    assert!(second.contains("10.0.1.2:443"), "{second}");
    key(&mut app, KeyCode::Char('a'));
    assert!(!app.alerts_list.open);

    // The poll again, with the first remote's pile gone: the selection follows its alert.
    let (_, b) = seven_alerts();
    let mut u = (*b).clone();
    u.alerts.remove(0);
    app.on_update(std::sync::Arc::new(u));
    assert_eq!(app.alerts_list.selected, 0);
    assert_eq!(app.selected_alert().unwrap().message, second);

    key(&mut app, KeyCode::Char('a'));
    // At 80x24 the list has a page of 13 lines, more than the six alerts; at 60x12 one.
    draw(&mut app, 60, 12);
    assert_eq!(app.alerts_list.page, 1);
    key(&mut app, KeyCode::PageDown);
    assert_eq!(app.alerts_list.selected, 1);
    key(&mut app, KeyCode::PageUp);
    draw(&mut app, 80, 24);
    let page = app.alerts_list.page;
    assert!(page >= 6, "{page}");
    key(&mut app, KeyCode::PageDown);
    assert_eq!(app.alerts_list.selected, page.min(5));
    key(&mut app, KeyCode::PageUp);
    assert_eq!(app.alerts_list.selected, 0);
}

/// A click on an alert line of the box opens the list at that alert.
#[test]
fn a_click_on_an_alert_opens_it() {
    use crossterm::event::{Event, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
    let mut app = app();
    draw(&mut app, 120, 40);
    let (x, y, _, h) = app.hit.alerts_box;
    assert_eq!(h, 5);
    super::handle_event(
        &mut app,
        Event::Mouse(MouseEvent {
            kind: MouseEventKind::Down(MouseButton::Left),
            column: x + 3,
            row: y + 2,
            modifiers: KeyModifiers::NONE,
        }),
    );
    assert!(app.alerts_list.open);
    assert_eq!(app.alerts_list.selected, 2);
}

#[test]
fn snapshots_of_the_alerts_list() {
    for (w, h) in [(120u16, 40u16), (80, 24), (60, 12)] {
        let mut app = app();
        key(&mut app, KeyCode::Char('a'));
        key(&mut app, KeyCode::End);
        insta::assert_snapshot!(format!("alerts_list_{w}x{h}"), draw(&mut app, w, h));
    }
}

/// Alerts that end while the list is open leave it saying so, not a stale or empty list.
#[test]
fn the_list_says_when_the_alerts_ended() {
    let mut app = app();
    key(&mut app, KeyCode::Char('a'));
    key(&mut app, KeyCode::End);
    let (_, b) = seven_alerts();
    let mut u = (*b).clone();
    u.alerts.clear();
    app.on_update(std::sync::Arc::new(u));
    let screen = draw(&mut app, 80, 24);
    assert!(screen.contains("Alerts: none now"), "{screen}");
    assert!(
        screen.contains("no alerts: no close state is building up"),
        "{screen}"
    );
    assert_eq!(app.selected_alert(), None);
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.filter_text(), "");
    key(&mut app, KeyCode::Esc);
    assert!(!app.alerts_list.open);
}

/// Enter shows the alert's connections from the top, oldest first, even when the row
/// selected before is one of them and lands further down.
#[test]
fn enter_shows_the_alerts_connections_from_the_top() {
    let mut app = app();
    // The table by LOCAL descending: its first row is 10.0.0.1:40051, the second of the
    // two TIME_WAIT toward 10.0.1.6:443 (the sixth alert) by the oldest-first order.
    (app.sort[0], app.sort_desc[0]) = (1, true);
    app.rebuild();
    app.selected = 0;
    let first = app.conn(app.rows[0]).unwrap().local();
    assert_eq!(first.port(), 40051);
    key(&mut app, KeyCode::Char('a'));
    for _ in 0..5 {
        key(&mut app, KeyCode::Down);
    }
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.filter_text(), "state:time-wait remote:10.0.1.6:443");
    assert_eq!(app.rows.len(), 2);
    assert_eq!((app.selected, app.offset), (0, 0));
}

/// While the list is open the mouse wheel moves through the alerts, not the table.
#[test]
fn the_wheel_moves_through_the_open_list() {
    use crossterm::event::{Event, KeyModifiers, MouseEvent, MouseEventKind};
    let mut app = app();
    draw(&mut app, 120, 40);
    key(&mut app, KeyCode::Char('a'));
    let wheel = |app: &mut App, kind| {
        super::handle_event(
            app,
            Event::Mouse(MouseEvent {
                kind,
                column: 10,
                row: 10,
                modifiers: KeyModifiers::NONE,
            }),
        );
    };
    wheel(&mut app, MouseEventKind::ScrollDown);
    wheel(&mut app, MouseEventKind::ScrollDown);
    assert_eq!(app.alerts_list.selected, 2);
    assert_eq!(app.selected, 0, "the table's selection stays");
    wheel(&mut app, MouseEventKind::ScrollUp);
    assert_eq!(app.alerts_list.selected, 1);
}
