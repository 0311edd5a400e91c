//! `y` from the key to the text copied and the footer's confirmation, and the help at
//! 80x24 holding every key and the whole diagram.

use crossterm::event::KeyCode;

use super::app::{COPIED, Effect, View};
use super::keys::Action;
use super::tests::{app_with_fixture, draw, key};
use crate::tui::rows::Row;

fn hostile(_pid: u32) -> Option<crate::collector::ProcessCommand> {
    Some(crate::collector::ProcessCommand {
        line: "java -jar orders.jar\t--title \x1b]0;PWN\x07".into(),
        exe: None,
    })
}

#[test]
fn y_copies_the_selected_connection_tab_separated_with_its_command_line() {
    let mut app = app_with_fixture(false);
    app.command_of = Some(hostile);
    draw(&mut app, 120, 40);
    // The first row with an owner.
    let i = app
        .rows
        .iter()
        .position(|&r| app.conn(r).is_some_and(|c| c.owner().is_some()))
        .unwrap();
    app.selected = i;
    let c = app.conn(app.rows[i]).unwrap().clone();
    let Effect::Copy(text) = key(&mut app, KeyCode::Char('y')) else {
        panic!("y must copy");
    };
    let fields: Vec<&str> = text.split('\t').collect();
    let owner = c.owner().unwrap();
    assert_eq!(fields[0], c.state.name());
    assert_eq!(fields[1], c.local().to_string());
    assert_eq!(fields[2], c.remote().to_string());
    assert_eq!(
        fields[3],
        format!("{} ({})", owner.name.as_deref().unwrap(), owner.pid)
    );
    assert_eq!(fields.len(), 8, "{text:?}");
    // The command line last, its tab and escapes neutralised: one line, safe to paste.
    assert_eq!(
        *fields.last().unwrap(),
        "java -jar orders.jar\\t--title \\x1b]0;PWN\\x07"
    );
    assert!(!text.contains(['\n', '\x1b', '\x07']), "{text:?}");
    assert_eq!(app.notice.as_deref(), Some(COPIED));
    let screen = draw(&mut app, 80, 24);
    assert!(screen.contains("copied 1 row"), "{screen}");
    // The next key clears the confirmation.
    key(&mut app, KeyCode::Char('j'));
    assert_eq!(app.notice, None);
}

#[test]
fn y_copies_a_process_row_and_says_why_a_group_header_copies_nothing() {
    let mut app = app_with_fixture(false);
    app.command_of = Some(hostile);
    while app.view != View::ByProcess {
        app.apply(Action::NextView);
    }
    draw(&mut app, 120, 40);
    let Some(Row::Process(i)) = app.selected_row() else {
        panic!("a process row first");
    };
    let p = app.procs[i].clone();
    let Effect::Copy(text) = app.apply(Action::Copy) else {
        panic!("a process row copies");
    };
    assert!(
        text.starts_with(&format!("{}\t{}\t", p.name, p.pid.unwrap())),
        "{text}"
    );
    while app.view != View::ByState {
        app.apply(Action::NextView);
    }
    app.selected = 0;
    assert!(matches!(app.selected_row(), Some(Row::Group(..))));
    assert_eq!(app.apply(Action::Copy), Effect::None);
    assert!(app.notice.as_deref().unwrap().starts_with("nothing copied"));
}

#[test]
fn the_help_at_80x24_holds_every_key_and_the_whole_diagram() {
    let mut app = app_with_fixture(false);
    key(&mut app, KeyCode::Char('?'));
    let screen = draw(&mut app, 80, 24);
    for needle in [
        "↑/↓",
        "tab/S-tab",
        "s/S",
        "+/-",
        "/ ",
        "y ",
        "copy row to clipboard",
        "quit",
        "1-9",
        "(FIN both ways: CLOSING)",
        "TIME_WAIT ─ 60 s ─> CLOSED",
    ] {
        assert!(screen.contains(needle), "{needle:?} missing:\n{screen}");
    }
    assert_eq!(screen.matches("CLOSED").count(), 2, "{screen}");
    let inside: Vec<&str> = screen.lines().filter_map(|l| l.split('│').nth(1)).collect();
    assert!(inside.len() >= 20, "{screen}");
    assert!(
        inside.iter().all(|l| !l.contains('…')),
        "nothing cut:\n{screen}"
    );
}
