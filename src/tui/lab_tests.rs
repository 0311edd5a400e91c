//! The lab panel's traces: every close of the session kept and reachable (`[`, `]`), a long
//! trace scrolled by keys and by the mouse wheel over it, and the panel's keys whole at
//! 80 columns; insta snapshots of the panel with a long trace at 120x40, 80x24 and 60x12.

use crossterm::event::{Event, KeyCode, MouseEvent, MouseEventKind};

use super::handle_event;
use super::lab_panel::LabPanel;
use super::tests::{app_with_fixture, draw, fixture_trace, key};
use crate::lab::outcome::CallResult;
use crate::lab::trace::Call;
use crate::lab::{ConnId, End};

/// The fixture's trace with `calls` calls (a long CALLS block), as connection `#id`.
fn long_trace(id: &str, calls: usize) -> crate::lab::Trace {
    let mut t = fixture_trace();
    t.conn = id.parse::<ConnId>().unwrap();
    t.calls = (0..calls)
        .map(|i| Call {
            at: std::time::Duration::from_millis(i as u64),
            end: End::Client,
            call: format!("send(64 B) #{i}"),
            result: CallResult::Ok,
            took: std::time::Duration::ZERO,
            detail: None,
        })
        .collect();
    t
}

fn app_with_traces() -> super::app::App {
    let mut app = app_with_fixture(false);
    key(&mut app, KeyCode::Char('L'));
    let p = app.lab.as_mut().unwrap();
    p.push_trace(long_trace("#1", 3));
    p.push_trace(long_trace("#2", 40));
    app
}

#[test]
fn a_long_trace_scrolls_by_keys_and_wheel_and_older_traces_stay_reachable() {
    let mut app = app_with_traces();
    let screen = draw(&mut app, 120, 40);
    assert!(screen.contains("trace 2/2"), "{screen}");
    assert!(screen.contains("lab connection #2"), "{screen}");
    assert!(!screen.contains("send(64 B) #39"), "{screen}");

    // PgDn to the end of the trace: its last call comes into view, its head goes.
    for _ in 0..20 {
        key(&mut app, KeyCode::PageDown);
    }
    let end = draw(&mut app, 120, 40);
    assert!(end.contains("send(64 B) #39"), "{end}");
    assert!(!end.contains("lab connection #2"), "{end}");
    for _ in 0..20 {
        key(&mut app, KeyCode::PageUp);
    }
    assert!(draw(&mut app, 120, 40).contains("lab connection #2"));

    // The wheel over the trace scrolls it (and not the table).
    let (x, y, _, _) = app.hit.lab_trace;
    let selected = app.selected;
    let wheel = |kind| {
        Event::Mouse(MouseEvent {
            kind,
            column: x + 2,
            row: y + 2,
            modifiers: crossterm::event::KeyModifiers::NONE,
        })
    };
    for _ in 0..20 {
        handle_event(&mut app, wheel(MouseEventKind::ScrollDown));
    }
    assert_eq!(app.selected, selected, "the table did not move");
    assert!(draw(&mut app, 120, 40).contains("send(64 B) #39"));

    // `[` shows the first close of the session, from its top; `]` comes back.
    key(&mut app, KeyCode::Char('['));
    let first = draw(&mut app, 120, 40);
    assert!(first.contains("trace 1/2"), "{first}");
    assert!(first.contains("lab connection #1"), "{first}");
    key(&mut app, KeyCode::Char(']'));
    assert!(draw(&mut app, 120, 40).contains("trace 2/2"));
}

#[test]
fn every_trace_of_the_session_is_kept() {
    let mut p = LabPanel::default();
    for i in 1..=30 {
        p.push_trace(long_trace(&format!("#{i}"), 1));
    }
    assert_eq!(p.traces.len(), 30);
    assert_eq!(p.shown_trace().map(|(n, _)| n), Some(30));
}

#[test]
fn the_panels_keys_are_whole_at_80_and_60_columns() {
    for (w, h) in [(80, 24), (60, 12)] {
        let mut app = app_with_traces();
        app.lab.as_mut().unwrap().status = Some(
            "TIME_WAIT storm of 20: done. lingertop snapshot --state time-wait shows them".into(),
        );
        let screen = draw(&mut app, w, h);
        if h >= 24 {
            for whole in [
                "w peer-never-closes",
                "x discard",
                "n linger-nonblocking",
                "W CW leak",
                "shows them",
            ] {
                assert!(screen.contains(whole), "{whole} at {w}x{h}:\n{screen}");
            }
            assert!(screen.contains("trace 2/2"), "{screen}");
        }
        insta::assert_snapshot!(format!("lab_panel_long_trace_{w}x{h}"), screen);
    }
    let mut app = app_with_traces();
    insta::assert_snapshot!("lab_panel_long_trace_120x40", draw(&mut app, 120, 40));
}
