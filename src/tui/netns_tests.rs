//! The dashboard on a poll of several network namespaces: the NETNS column, the namespace
//! in the detail pane, the by-namespace view and its Enter, with render snapshots at
//! 120x40, 80x24 and 60x12.

use crossterm::event::KeyCode;

use super::app::{App, View};
use super::fixture::two_polls_in_netns;
use super::keys::Keymap;
use super::rows::Row;
use super::tests::{draw, key};
use crate::model::{Filter, TcpState};

fn app_in_netns() -> App {
    let mut app = App::new(
        Keymap::default(),
        std::time::Duration::from_secs(2),
        300,
        Filter::default(),
    );
    let (a, b) = two_polls_in_netns();
    app.on_update(a);
    app.on_update(b);
    app
}

fn to_view(app: &mut App, view: View) {
    while app.view != view {
        key(app, KeyCode::Tab);
    }
}

/// The header line of the table (the one naming the first column).
fn header<'a>(screen: &'a str, first: &str) -> &'a str {
    screen
        .lines()
        .find(|l| l.contains(first) && l.contains("LOCAL"))
        .unwrap_or("")
}

#[test]
fn namespace_views_at_three_sizes() {
    for (w, h) in [(120u16, 40u16), (80, 24), (60, 12)] {
        let mut app = app_in_netns();
        insta::assert_snapshot!(format!("netns_All_{w}x{h}"), draw(&mut app, w, h));
        to_view(&mut app, View::ByNetns);
        insta::assert_snapshot!(format!("netns_ByNetns_{w}x{h}"), draw(&mut app, w, h));
    }
    let mut app = app_in_netns();
    key(&mut app, KeyCode::Char('d'));
    insta::assert_snapshot!("netns_All_no_detail_120x40", draw(&mut app, 120, 40));
}

#[test]
fn the_netns_column_shows_with_several_namespaces_and_gives_way_first() {
    let mut app = app_in_netns();
    // The detail pane hidden: the table has the whole 120 columns.
    key(&mut app, KeyCode::Char('d'));
    let wide = draw(&mut app, 120, 40);
    assert!(header(&wide, "STATE").contains("NETNS"), "{wide}");
    assert!(
        wide.contains("orders-7f9c") && wide.contains(" blue "),
        "{wide}"
    );
    // At 80 columns the addresses keep their room and the column goes.
    let narrow = draw(&mut app, 80, 24);
    let h = header(&narrow, "STATE");
    assert!(h.contains("REMOTE") && !h.contains("NETNS"), "{narrow}");
    // One namespace read: no column, as before namespaces.
    let mut one = App::new(
        Keymap::default(),
        std::time::Duration::from_secs(2),
        300,
        Filter::default(),
    );
    let (a, b) = super::fixture::two_polls(false);
    one.on_update(a);
    one.on_update(b);
    let screen = draw(&mut one, 120, 40);
    assert!(!header(&screen, "STATE").contains("NETNS"), "{screen}");
}

#[test]
fn the_detail_pane_names_the_namespace_of_the_connection() {
    let mut app = app_in_netns();
    draw(&mut app, 120, 40);
    let at = app
        .rows
        .iter()
        .position(|&r| app.conn(r).is_some_and(|c| c.netns() == 3))
        .expect("a connection in the container");
    app.selected = at;
    let screen = draw(&mut app, 120, 40);
    assert!(
        screen.contains("netns   orders-7f9c (docker, pid 812)"),
        "{screen}"
    );
}

#[test]
fn the_namespace_view_counts_each_namespace_and_enter_shows_its_connections() {
    let mut app = app_in_netns();
    to_view(&mut app, View::ByNetns);
    let conns = app.shown.as_ref().unwrap().snapshot.connections.clone();
    assert_eq!(app.netns_rows.len(), 3);
    for r in &app.netns_rows {
        let mine: Vec<_> = conns.iter().filter(|c| c.netns() == r.id).collect();
        assert_eq!(r.total as usize, mine.len(), "{}", r.name);
        for s in [
            TcpState::CloseWait,
            TcpState::TimeWait,
            TcpState::Established,
        ] {
            let n = mine.iter().filter(|c| c.state == s).count();
            assert_eq!(r.counts.get(s) as usize, n, "{} {s:?}", r.name);
        }
    }
    // The worst CLOSE_WAIT first.
    let cw = |row: &Row| match row {
        Row::Netns(i) => app.netns_rows[*i].counts.get(TcpState::CloseWait),
        _ => 0,
    };
    assert!(app.rows.windows(2).all(|w| cw(&w[0]) >= cw(&w[1])));

    let blue = app
        .rows
        .iter()
        .position(|r| matches!(r, Row::Netns(i) if &*app.netns_rows[*i].name == "blue"))
        .expect("blue's row");
    let total = match app.rows[blue] {
        Row::Netns(i) => app.netns_rows[i].total as usize,
        _ => unreachable!(),
    };
    app.selected = blue;
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.view, View::All);
    assert_eq!(app.filter_text(), "netns:\"blue\"");
    let live: Vec<_> = app
        .rows
        .iter()
        .filter(|r| matches!(r, Row::Conn(_)))
        .map(|&r| app.conn(r).unwrap().netns())
        .collect();
    assert_eq!(live.len(), total);
    assert!(live.iter().all(|&ns| ns == 5), "{live:?}");
    // Esc clears it: every namespace again.
    key(&mut app, KeyCode::Esc);
    assert!(
        app.rows
            .iter()
            .any(|&r| app.conn(r).is_some_and(|c| c.netns() != 5))
    );
}
