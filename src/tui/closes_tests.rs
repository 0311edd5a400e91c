//! The closes panel drawn at 120x40, 80x24 and 60x12 from both sources (insta snapshots),
//! and its key.

use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};

use super::app::App;
use super::fixture::close_stats;
use super::handle_event;
use super::tests::{app_with_fixture, draw};

fn app(kernel: bool) -> App {
    let mut app = app_with_fixture(false);
    app.closes = Some(close_stats(kernel));
    app
}

fn press(app: &mut App, c: char) {
    handle_event(
        app,
        Event::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)),
    );
}

#[test]
fn the_closes_key_opens_and_hides_the_panel() {
    let mut app = app(true);
    assert!(!draw(&mut app, 120, 40).contains("Closes from"));
    press(&mut app, 'C');
    assert!(app.closes_panel);
    let screen = draw(&mut app, 120, 40);
    assert!(
        screen.contains("Closes from the kernel's events"),
        "{screen}"
    );
    press(&mut app, 'C');
    assert!(!draw(&mut app, 120, 40).contains("Closes from"));
}

#[test]
fn the_panel_shows_kinds_resetters_lifetimes_and_lost_events() {
    let mut app = app(true);
    press(&mut app, 'C');
    let screen = draw(&mut app, 120, 40);
    // The busiest resetter first, with its pid and both directions.
    let worker = screen
        .lines()
        .find(|l| l.contains("worker"))
        .expect(&screen);
    assert!(
        worker.contains("4410") && worker.contains("120"),
        "{worker}"
    );
    assert!(screen.contains("7 events lost"), "{screen}");
    // 150 resets over the 5 s window: 30 per second.
    let sent = screen
        .lines()
        .find(|l| l.contains("reset sent"))
        .expect(&screen);
    assert!(sent.contains("30.0") && sent.contains("150"), "{sent}");
    // TIME_WAIT dropped comes from the counters even when events are on.
    let tw = screen
        .lines()
        .find(|l| l.contains("TIME_WAIT dropped"))
        .expect(&screen);
    assert!(tw.contains(" 4"), "{tw}");
}

#[test]
fn the_panel_at_three_sizes_from_both_sources() {
    for kernel in [true, false] {
        for (w, h) in [(120u16, 40u16), (80, 24), (60, 12)] {
            let mut app = app(kernel);
            press(&mut app, 'C');
            let source = if kernel { "kernel" } else { "counters" };
            insta::assert_snapshot!(format!("closes_{source}_{w}x{h}"), draw(&mut app, w, h));
        }
    }
}

/// The RST columns of one process's row in the by-process view, as drawn: sent, received,
/// sent with data unread, sent with SO_LINGER {1, 0}.
fn rst_of(screen: &str, pid: u32) -> Vec<String> {
    let line = screen
        .lines()
        .find(|l| l.contains(&format!(" {pid} ")))
        .unwrap_or_else(|| panic!("no row for {pid}:\n{screen}"));
    let cells: Vec<String> = line
        .trim_matches('"')
        .split_whitespace()
        .map(str::to_string)
        .collect();
    cells[cells.len() - 4..].to_vec()
}

#[test]
fn the_process_view_has_rst_columns_from_the_events_and_dashes_from_the_counters() {
    for kernel in [true, false] {
        let mut app = app(kernel);
        handle_event(
            &mut app,
            Event::Key(KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE)),
        );
        handle_event(
            &mut app,
            Event::Key(KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE)),
        );
        press(&mut app, 'd');
        let screen = draw(&mut app, 120, 40);
        assert!(
            screen.contains("RST OUT") && screen.contains("RST IN"),
            "{screen}"
        );
        assert!(
            screen.contains("RST UNREAD") && screen.contains("RST LINGER0"),
            "{screen}"
        );
        let rows = [4410, 812, 3121].map(|pid| rst_of(&screen, pid));
        if kernel {
            // worker aborts on purpose (linger-0); java closes with the request unread.
            assert_eq!(
                rows,
                [
                    ["120", "0", "0", "120"],
                    ["0", "12", "0", "0"],
                    ["30", "0", "30", "0"]
                ]
                .map(|r| r.map(String::from).to_vec())
            );
            insta::assert_snapshot!("closes_by_process_rst_120x40", screen);
        } else {
            assert_eq!(rows[0], vec!["-"; 4], "{screen}");
        }
    }
}
