//! The live filter prompt from key events to state and screen: the table narrows with each
//! keystroke that parses, a bad one keeps the last good filter and shows the error at its
//! column, Tab completes and cycles, Up/Down walk the history, Esc restores, Enter keeps.

use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};

use super::handle_event;
use super::tests::{app_with_fixture, draw, key};
use crate::model::TcpState;

fn type_text(app: &mut super::app::App, s: &str) {
    for c in s.chars() {
        key(app, KeyCode::Char(c));
    }
}

fn states(app: &super::app::App) -> Vec<TcpState> {
    app.rows
        .iter()
        .filter_map(|&r| app.conn(r).map(|c| c.state))
        .collect()
}

#[test]
fn the_table_narrows_with_each_keystroke_that_parses_before_enter() {
    let mut app = app_with_fixture(false);
    let all = app.rows.len();
    key(&mut app, KeyCode::Char('/'));
    type_text(&mut app, "state:close-wai");
    // `state:close-` parsed on the way (the CLOSE state); `close-wai` does not: the last
    // good filter stays applied and the error names the value's column.
    assert_eq!(app.filter.to_string(), "state:close-");
    assert_eq!(app.input_error_at, Some(6));
    key(&mut app, KeyCode::Char('t'));
    assert!(app.input.is_some(), "still typing");
    assert_eq!(app.input_error, None);
    assert_eq!(app.filter.to_string(), "state:close-wait");
    assert_eq!(states(&app), vec![TcpState::CloseWait; 7]);
    type_text(&mut app, " port:x");
    assert_eq!(
        app.filter.to_string(),
        "state:close-wait port",
        "a bare word parses"
    );
    assert_eq!(app.input_error_at, Some(22));
    assert!(app.input_error.as_deref().unwrap().contains("not a port"));
    // Esc: back to the filter from before the prompt opened (none), every row again.
    key(&mut app, KeyCode::Esc);
    assert!(app.input.is_none() && app.filter.is_empty());
    assert_eq!(app.rows.len(), all);
}

#[test]
fn a_misspelt_state_shows_the_suggestion_under_the_line_at_80x24_and_60x12() {
    let mut app = app_with_fixture(false);
    key(&mut app, KeyCode::Char('/'));
    type_text(&mut app, "port:1-65535 state:close-wiat");
    let err = app.input_error.clone().unwrap();
    assert!(
        err.starts_with("did you mean close-wait? unknown TCP state"),
        "{err}"
    );
    assert_eq!(err.matches("did you mean").count(), 1, "said once: {err}");
    assert!(err.contains("\"close-wiat\" (known: "), "{err}");
    assert_eq!(app.filter.to_string(), "port:1-65535 state:close-");
    for (w, h) in [(80u16, 24u16), (60, 12)] {
        let screen = draw(&mut app, w, h);
        insta::assert_snapshot!(format!("filter_error_{w}x{h}"), screen);
        let lines: Vec<&str> = screen.lines().collect();
        let caret = lines
            .iter()
            .rposition(|l| l.contains('^'))
            .unwrap_or_else(|| panic!("no caret:\n{screen}"));
        let prompt = lines[caret - 1];
        // The caret stands under the `c` of `close-wiat` (column 20 of the text).
        let c_at = prompt.find("close-wiat").unwrap();
        assert_eq!(lines[caret].find('^'), Some(c_at), "{screen}");
        assert!(
            lines[caret].contains("did you mean close-wait?"),
            "{screen}"
        );
        if w == 80 {
            assert!(screen.contains("(Esc: previous filter)"), "{screen}");
        }
    }
    key(&mut app, KeyCode::Esc);
    key(&mut app, KeyCode::Char('/'));
    type_text(&mut app, "stat:listen");
    let err = app.input_error.clone().unwrap();
    assert!(
        err.starts_with("did you mean state:? unknown key \"stat\"; keys are"),
        "{err}"
    );
}

#[test]
fn the_caret_follows_a_line_longer_than_the_window() {
    let mut app = app_with_fixture(false);
    key(&mut app, KeyCode::Char('/'));
    type_text(
        &mut app,
        &format!("{}state:bogus", "port:1-65535 ".repeat(6)),
    );
    let screen = draw(&mut app, 60, 12);
    let lines: Vec<&str> = screen.lines().collect();
    let caret = lines.iter().rposition(|l| l.contains('^')).unwrap();
    let prompt = lines[caret - 1];
    assert!(prompt.contains("filter: …"), "the tail shows:\n{screen}");
    let b_at = prompt.find("bogus").unwrap();
    assert_eq!(lines[caret].find('^'), Some(b_at), "{screen}");
}

#[test]
fn tab_completes_keys_and_states_and_cycles_both_ways() {
    let mut app = app_with_fixture(false);
    key(&mut app, KeyCode::Char('/'));
    type_text(&mut app, "st");
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.input.as_deref(), Some("state:"));
    type_text(&mut app, "clo");
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.input.as_deref(), Some("state:close"));
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.input.as_deref(), Some("state:close-wait"));
    assert_eq!(
        app.filter.to_string(),
        "state:close-wait",
        "applied at once"
    );
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.input.as_deref(), Some("state:closing"));
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.input.as_deref(), Some("state:close"), "round again");
    handle_event(
        &mut app,
        Event::Key(KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT)),
    );
    assert_eq!(app.input.as_deref(), Some("state:closing"));
    let screen = draw(&mut app, 120, 40);
    assert!(screen.contains("Tab: close close-wait closing"), "{screen}");
    // Typing ends the cycle; the next Tab completes the new word.
    type_text(&mut app, " pr");
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.input.as_deref(), Some("state:closing proc:"));
    key(&mut app, KeyCode::Tab);
    let line = app.input.clone().unwrap();
    assert!(
        line.starts_with("state:closing proc:") && line.len() > 19,
        "{line}"
    );
}

#[test]
fn enter_keeps_the_filter_and_up_down_recall_the_history() {
    let mut app = app_with_fixture(false);
    let ctrl_u = Event::Key(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL));
    for f in ["state:time-wait", "port:443", "state:time-wait"] {
        key(&mut app, KeyCode::Char('/'));
        handle_event(&mut app, ctrl_u.clone());
        type_text(&mut app, f);
        key(&mut app, KeyCode::Enter);
        assert!(app.input.is_none());
        assert_eq!(app.filter.to_string(), f);
    }
    assert_eq!(
        app.filter_history.entries().collect::<Vec<_>>(),
        ["port:443", "state:time-wait"],
        "deduplicated, newest last"
    );
    // A filter that does not parse is not kept, and Enter leaves the prompt open on it.
    key(&mut app, KeyCode::Char('/'));
    handle_event(&mut app, ctrl_u.clone());
    type_text(&mut app, "proc:");
    key(&mut app, KeyCode::Enter);
    assert!(app.input.is_some());
    key(&mut app, KeyCode::Up);
    assert_eq!(app.input.as_deref(), Some("state:time-wait"));
    assert_eq!(
        app.filter.to_string(),
        "state:time-wait",
        "recalled and applied"
    );
    key(&mut app, KeyCode::Up);
    assert_eq!(app.input.as_deref(), Some("port:443"));
    key(&mut app, KeyCode::Up);
    assert_eq!(app.input.as_deref(), Some("port:443"), "the oldest stays");
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    assert_eq!(
        app.input.as_deref(),
        Some("proc:"),
        "the line typed comes back"
    );
    key(&mut app, KeyCode::Esc);
    assert_eq!(
        app.filter.to_string(),
        "state:time-wait",
        "Esc: the filter before"
    );
    assert_eq!(app.filter_history.entries().count(), 2);
}

#[test]
fn the_cursor_edits_inside_the_line_and_tab_completes_the_word_before_it() {
    let mut app = app_with_fixture(false);
    key(&mut app, KeyCode::Char('/'));
    type_text(&mut app, "port:443");
    key(&mut app, KeyCode::Home);
    type_text(&mut app, "st");
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.input.as_deref(), Some("state:port:443"));
    type_text(&mut app, "listen ");
    assert_eq!(app.input.as_deref(), Some("state:listen port:443"));
    assert_eq!(
        app.filter.to_string(),
        "state:listen port:443",
        "applied at once"
    );
    assert_eq!(app.input_cursor, 13);
    // The cursor shows on the character it stands on.
    let screen = draw(&mut app, 120, 40);
    assert!(
        screen.contains("filter: state:listen port:443  Enter keeps"),
        "{screen}"
    );
    key(&mut app, KeyCode::Left);
    key(&mut app, KeyCode::Backspace);
    assert_eq!(app.input.as_deref(), Some("state:liste port:443"));
    assert!(
        app.input_error.is_some(),
        "listen lost its n: {:?}",
        app.input
    );
    assert_eq!(
        app.filter.to_string(),
        "state:listen port:443",
        "the last good one"
    );
    key(&mut app, KeyCode::Delete);
    key(&mut app, KeyCode::Char('n'));
    key(&mut app, KeyCode::Char(' '));
    assert_eq!(app.input.as_deref(), Some("state:listen port:443"));
    key(&mut app, KeyCode::End);
    key(&mut app, KeyCode::Right);
    assert_eq!(app.input_cursor, 21, "not past the end");
    // Ctrl-W drops the word before the cursor; Ctrl-U everything before it.
    let ctrl = |c| Event::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL));
    handle_event(&mut app, ctrl('w'));
    assert_eq!(app.input.as_deref(), Some("state:listen "));
    key(&mut app, KeyCode::Home);
    key(&mut app, KeyCode::Right);
    handle_event(&mut app, ctrl('u'));
    assert_eq!(app.input.as_deref(), Some("tate:listen "));
    assert_eq!(app.input_cursor, 0);
}

#[test]
fn ctrl_c_in_the_prompt_quits_and_leaves_the_filter_from_before() {
    let mut app = app_with_fixture(false);
    key(&mut app, KeyCode::Char('/'));
    type_text(&mut app, "state:listen");
    let ctrl_c = Event::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
    assert_eq!(handle_event(&mut app, ctrl_c), super::app::Effect::Quit);
    assert!(app.input.is_none(), "the prompt closed");
    assert!(
        app.filter.is_empty(),
        "the typed filter was not kept: {}",
        app.filter
    );
}
