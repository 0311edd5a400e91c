//! Remote names in the dashboard: the `n` key, the table and the by-remote view showing
//! a name where one has come and the address meanwhile, the detail pane, and a hostile
//! PTR name neutralised. The resolver is the runner's: here names are given as it would.

use std::net::IpAddr;
use std::sync::Arc;

use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};

use super::app::{App, View};
use super::handle_event;
use super::rows::Row;
use super::tests::{app_with_fixture, draw};

fn press(app: &mut App, c: char) {
    handle_event(
        app,
        Event::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)),
    );
}

fn db() -> IpAddr {
    "10.0.0.5".parse().unwrap()
}

#[test]
fn n_toggles_names_and_the_table_shows_an_address_until_its_name_comes() {
    let mut app = app_with_fixture(false);
    draw(&mut app, 120, 40);
    assert!(app.wanted_names().is_empty(), "names off: nothing asked");
    press(&mut app, 'n');
    assert!(app.names.on);
    let wanted = app.wanted_names();
    assert!(wanted.contains(&db()), "{wanted:?}");
    // A listener's remote (0.0.0.0, ::) has nothing to ask about.
    assert!(!wanted.iter().any(|ip| ip.is_unspecified()), "{wanted:?}");
    // Asked, not answered yet: the address stays.
    let screen = draw(&mut app, 120, 40);
    assert!(screen.contains("10.0.0.5:5432"), "{screen}");
    assert!(
        screen.contains("· names"),
        "the title says names are on: {screen}"
    );

    app.names.insert(db(), Arc::from("db-primary.example"));
    let screen = draw(&mut app, 120, 40);
    // Beside the detail pane the name is cut, its port kept, the local address whole.
    assert!(
        screen
            .lines()
            .any(|l| l.contains("10.0.0.2:46000") && l.contains("db-primary.…:5432")),
        "{screen}"
    );
    let table: String = screen.lines().skip(10).collect::<Vec<_>>().join("\n");
    assert!(!table.contains("10.0.0.5:5432"), "{screen}");
    // Another address with no name yet keeps its address.
    assert!(screen.contains("10.0.0.9:40100"), "{screen}");
    press(&mut app, 'd');
    let screen = draw(&mut app, 120, 40);
    assert!(screen.contains("db-primary.example:5432"), "{screen}");
    press(&mut app, 'd');

    press(&mut app, 'n');
    assert!(app.wanted_names().is_empty(), "names off: nothing asked");
    let screen = draw(&mut app, 120, 40);
    assert!(
        screen.contains("10.0.0.5:5432"),
        "names off again: {screen}"
    );
    assert!(!screen.contains("db-primary"), "{screen}");
}

#[test]
fn the_by_remote_view_groups_by_address_and_shows_the_name() {
    let mut app = app_with_fixture(false);
    press(&mut app, 'n');
    app.names.insert(db(), Arc::from("db-primary.example"));
    while app.view != View::ByRemote {
        handle_event(
            &mut app,
            Event::Key(KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE)),
        );
    }
    let screen = draw(&mut app, 120, 40);
    assert!(screen.contains("db-primary.example:5432"), "{screen}");
    // One row per address still: the name does not merge or split groups.
    let remotes: Vec<_> = app.remotes.iter().map(|r| r.remote).collect();
    let db_rows = remotes.iter().filter(|r| r.ip() == db()).count();
    assert_eq!(db_rows, 1, "{remotes:?}");
    // The runner asks for the rows' addresses.
    assert!(app.wanted_names().contains(&db()));
}

#[test]
fn the_detail_pane_names_the_remote_and_a_hostile_name_is_neutralised() {
    let mut app = app_with_fixture(false);
    press(&mut app, 'n');
    draw(&mut app, 120, 40);
    let i = app
        .rows
        .iter()
        .position(|&r| {
            matches!(r, Row::Conn(_)) && app.conn(r).is_some_and(|c| c.remote().ip() == db())
        })
        .expect("a connection to 10.0.0.5");
    app.selected = i;
    app.names
        .insert(db(), Arc::from("evil\u{1b}]0;PWNED\u{7}.example"));
    let screen = draw(&mut app, 120, 40);
    assert!(!screen.contains('\u{1b}'), "{screen}");
    assert!(screen.contains("evil\\x1b]0;PWNED"), "{screen}");
    assert!(
        screen
            .lines()
            .any(|l| l.contains("name") && l.contains("evil\\x1b")),
        "the detail pane's name line: {screen}"
    );
}

#[test]
fn names_are_unavailable_without_a_resolver_and_the_key_says_why() {
    let mut app = app_with_fixture(false);
    app.names.unavailable = Some("cannot read the resolver configuration".into());
    press(&mut app, 'n');
    assert_eq!(
        app.status.as_deref(),
        Some("cannot read the resolver configuration")
    );
}
