//! Render snapshots of every view and the help overlay at 120x40 and 80x24 (ratatui's
//! `TestBackend` + `insta`), and key handling from key events to state, all without a
//! terminal. Fixture polls have fixed times, addresses and pids: nothing volatile to redact.

use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use super::app::{App, Effect, View};
use super::fixture::two_polls;
use super::handle_event;
use super::keys::Keymap;
use super::rows::Row;
use super::theme::{Theme, ThemeColors};
use super::ui;
use crate::model::{Filter, TcpState};

pub(super) fn app_with_fixture(partial: bool) -> App {
    let mut app = App::new(
        Keymap::default(),
        std::time::Duration::from_secs(2),
        300,
        Filter::default(),
    );
    let (a, b) = two_polls(partial);
    app.on_update(a);
    app.on_update(b);
    app
}

pub(super) fn draw(app: &mut App, w: u16, h: u16) -> String {
    let theme = Theme::new(&ThemeColors::default(), false);
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    // Twice: the first frame tells the app its page size.
    for _ in 0..2 {
        let mut hit = Default::default();
        t.draw(|f| hit = ui::render(f, app, &theme)).unwrap();
        app.after_draw(hit);
    }
    t.backend().to_string()
}

pub(super) fn key(app: &mut App, code: KeyCode) -> Effect {
    handle_event(app, Event::Key(KeyEvent::new(code, KeyModifiers::NONE)))
}

fn type_text(app: &mut App, s: &str) {
    for c in s.chars() {
        key(app, KeyCode::Char(c));
    }
}

#[test]
fn the_header_says_when_established_was_last_read() {
    let mut app = app_with_fixture(false);
    let (_, b) = two_polls(false);
    let mut u = (*b).clone();
    let mut snap = (*u.snapshot).clone();
    snap.unread = Some(crate::model::Unread {
        states: vec![TcpState::Established],
        last_read: Some(snap.taken_at - std::time::Duration::from_secs(4)),
        found_owners: Vec::new(),
    });
    u.snapshot = std::sync::Arc::new(snap);
    app.on_update(std::sync::Arc::new(u));
    let screen = draw(&mut app, 120, 40);
    assert!(screen.contains("ESTABLISHED as of 4s ago"), "{screen}");
    // A complete poll says nothing of it.
    app.on_update(b);
    assert!(!draw(&mut app, 120, 40).contains("as of"));
}

/// The fixture with 5-digit counts and 4- and 5-digit deltas in the strip, as on a busy
/// host (issue 15 item 1): ESTABLISHED 48211 +14925, TIME_WAIT 19371 -2090, CLOSE_WAIT
/// 33664 -1299, LISTEN 12 -2...
fn app_with_big_counts() -> App {
    let mut app = app_with_fixture(false);
    let now: [(TcpState, u32, u32); 10] = [
        (TcpState::Established, 48211, 33286),
        (TcpState::SynSent, 111, 97),
        (TcpState::SynRecv, 146, 56),
        (TcpState::FinWait1, 2048, 2048),
        (TcpState::FinWait2, 10457, 99),
        (TcpState::TimeWait, 19371, 21461),
        (TcpState::CloseWait, 33664, 34963),
        (TcpState::LastAck, 12, 14),
        (TcpState::Closing, 0, 0),
        (TcpState::Listen, 99999, 85074),
    ];
    let mut u = (**app.latest.as_ref().unwrap()).clone();
    let mut prev = crate::model::StateCounts::default();
    for (state, n, before) in now {
        u.sample.counts.0[state.index()] = n;
        prev.0[state.index()] = before;
    }
    app.latest = Some(std::sync::Arc::new(u));
    app.prev_counts = Some(prev);
    app
}

/// Issue 15 item 9: by-state group headers say how many in full (`1 connection`,
/// `14250 connections`), never clipped, however wide the addresses are.
#[test]
fn group_headers_are_never_clipped_and_say_1_connection() {
    let mut app = app_with_fixture(false);
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.view, View::ByState);
    let screen = draw(&mut app, 120, 40);
    assert!(screen.contains("▼ LAST_ACK    1 connection "), "{screen}");
    assert!(!screen.contains("1 connections"), "{screen}");

    let mut app = App::new(
        Keymap::default(),
        std::time::Duration::from_secs(2),
        300,
        Filter::default(),
    );
    app.on_update(super::fixture::big_poll(15000));
    key(&mut app, KeyCode::Tab);
    // Fold ESTABLISHED (the first group, selected) so TIME_WAIT's header is on screen.
    key(&mut app, KeyCode::Enter);
    let tw = app
        .latest
        .as_ref()
        .unwrap()
        .sample
        .counts
        .get(TcpState::TimeWait);
    for (w, h) in [(120u16, 40u16), (80, 24)] {
        let screen = draw(&mut app, w, h);
        let header = screen
            .lines()
            .find(|l| l.contains("▼ TIME_WAIT"))
            .unwrap_or_else(|| panic!("no TIME_WAIT group:\n{screen}"));
        let words: Vec<&str> = header.trim_matches('"').split_whitespace().collect();
        assert_eq!(words[2], tw.to_string(), "{header}");
        assert!(
            words
                .get(3)
                .is_none_or(|w| ["connections", "conns"].contains(w)),
            "clipped: {header}"
        );
    }
}

/// Issue 15 item 4: the sort arrow is on the column the rows are ordered by, points the
/// way they go, and is never cut off, for every column of every view.
#[test]
fn the_sort_arrow_is_right_and_always_visible() {
    let mut app = app_with_fixture(false);
    for view in View::ALL {
        assert_eq!(app.view, view);
        for i in 0..view.columns().len() * 2 {
            let screen = draw(&mut app, 120, 40);
            let header = screen
                .lines()
                .find(|l| l.contains(view.columns()[0]) && (l.contains('▲') || l.contains('▼')))
                .unwrap_or_else(|| panic!("{view:?} step {i}: no arrow in the header:\n{screen}"));
            let v = View::ALL.iter().position(|v| *v == view).unwrap();
            let (col, desc) = super::ui::sort_mark_of(view, app.sort[v], app.sort_desc[v]);
            let name = view.columns()[col];
            let arrow = if desc { '▼' } else { '▲' };
            assert!(
                header.contains(&format!("{name} {arrow}")),
                "{view:?} sorted on {name}: {header}"
            );
            key(&mut app, KeyCode::Char(if i % 2 == 0 { 'S' } else { 's' }));
        }
        key(&mut app, KeyCode::Tab);
    }
    // The process view's default order is worst CLOSE_WAIT first: the arrow says so.
    let mut app = app_with_fixture(false);
    for _ in 0..2 {
        key(&mut app, KeyCode::Tab);
    }
    assert_eq!(app.view, View::ByProcess);
    let screen = draw(&mut app, 120, 40);
    assert!(
        screen.contains("CLOSE_W ▼") && !screen.contains("PROCESS ▲"),
        "{screen}"
    );
}

/// Issue 15 item 10: the box shows the worst alerts and says how many there are; `a`
/// opens the list, which reaches every alert, worst first, one after the other.
#[test]
fn the_alerts_box_reaches_every_alert() {
    let mut app = app_with_fixture(false);
    let messages: Vec<String> = app
        .latest
        .as_ref()
        .unwrap()
        .alerts
        .iter()
        .map(|a| a.message.clone())
        .collect();
    assert_eq!(messages.len(), 4);
    let mut seen = std::collections::BTreeSet::new();
    let screen = draw(&mut app, 80, 24);
    assert!(
        screen.contains("1-2 of 4, worst first · a: list them all"),
        "{screen}"
    );
    key(&mut app, KeyCode::Char('a'));
    for _ in 0..4 {
        let screen = draw(&mut app, 80, 24);
        let selected = screen
            .lines()
            .find(|l| l.contains('›'))
            .unwrap_or_else(|| panic!("no alert selected: {screen}"));
        for (i, m) in messages.iter().enumerate() {
            // The 80-column screen cuts long messages: their start is enough.
            let start: String = m.chars().take(40).collect();
            if selected.contains(&start) {
                seen.insert(i);
            }
        }
        key(&mut app, KeyCode::Down);
    }
    assert_eq!(seen.len(), 4, "every alert selected once: {seen:?}");
    key(&mut app, KeyCode::Char('a'));
    let screen = draw(&mut app, 80, 24);
    assert!(screen.contains("1-2 of 4"), "the box again: {screen}");
}

/// Issue 15 item 1: the main view at the three sizes with a busy host's strip.
#[test]
fn the_main_view_with_five_digit_counts_at_three_sizes() {
    for (w, h) in [(120u16, 40u16), (80, 24), (60, 12)] {
        let mut app = app_with_big_counts();
        let screen = draw(&mut app, w, h);
        assert_strip_reads(&app, &screen, w);
        insta::assert_snapshot!(format!("busy_All_{w}x{h}"), screen);
    }
}

/// The strip (rows 2 to 4 of the screen) shows every state's key, and under it the
/// state's count first and its change, as separate words.
fn assert_strip_reads(app: &App, screen: &str, w: u16) {
    let rows: Vec<Vec<char>> = screen
        .lines()
        .skip(1)
        .take(3)
        .map(|l| l.trim_matches('"').chars().collect())
        .collect();
    let text = |r: usize, from: usize, to: usize| -> String {
        rows[r][from.min(rows[r].len())..to.min(rows[r].len())]
            .iter()
            .collect()
    };
    let counts = app.latest.as_ref().unwrap().sample.counts;
    let prev = app.prev_counts.unwrap();
    // Where each cell starts: its key, `[k]` or `k`, in the label row.
    let mut starts = Vec::new();
    let mut from = 0;
    for i in 0..10 {
        let key = if i == 9 {
            '0'
        } else {
            char::from(b'1' + i as u8)
        };
        let at = (from..rows[0].len())
            .find(|&x| {
                (rows[0][x] == key || (rows[0][x] == '[' && rows[0].get(x + 1) == Some(&key)))
                    && (x == 0 || rows[0][x - 1] == ' ')
            })
            .unwrap_or_else(|| panic!("{w} cols: key {key} missing in the strip:\n{screen}"));
        starts.push(at);
        from = at + 1;
    }
    starts.push(usize::from(w) + 1);
    for (i, &state) in super::app::STRIP.iter().enumerate() {
        let (a, b) = (starts[i], starts[i + 1] - 1);
        let words = format!("{} {}", text(1, a, b), text(2, a, b));
        let words: Vec<&str> = words.split_whitespace().collect();
        let n = i64::from(counts.get(state));
        let d = n - i64::from(prev.get(state));
        let count_ok = words.first().is_some_and(|w| {
            *w == n.to_string() || (w.ends_with(['k', 'M']) && !w.starts_with(['+', '-']))
        });
        assert!(
            count_ok,
            "{w} cols: {state:?}'s count {n} is not the first word under its key: {words:?}\n{screen}"
        );
        if d != 0 {
            let delta_ok = words.get(1).is_some_and(|w| {
                *w == format!("{d:+}") || (w.starts_with(['+', '-']) && w.ends_with(['k', 'M']))
            });
            assert!(
                delta_ok,
                "{w} cols: {state:?}'s change {d:+} is not its own word: {words:?}\n{screen}"
            );
        }
    }
    // The CLOSE_WAIT count, the one a leak shows in, in full at every size.
    assert!(
        rows[1].iter().collect::<String>().contains("33664"),
        "{w} cols: no CLOSE_WAIT count:\n{screen}"
    );
}

#[test]
fn every_view_and_help_at_every_size() {
    for (w, h) in [(120u16, 40u16), (80, 24), (60, 12)] {
        let mut app = app_with_fixture(false);
        for view in View::ALL {
            assert_eq!(app.view, view);
            insta::assert_snapshot!(format!("{view:?}_{w}x{h}"), draw(&mut app, w, h));
            key(&mut app, KeyCode::Tab);
        }
        key(&mut app, KeyCode::Char('?'));
        insta::assert_snapshot!(format!("help_{w}x{h}"), draw(&mut app, w, h));
    }
}

#[test]
fn partial_process_info_is_announced_with_what_to_do() {
    let mut app = app_with_fixture(true);
    let screen = draw(&mut app, 120, 40);
    assert!(
        screen.contains("process info is partial: not running as root"),
        "{screen}"
    );
    assert!(screen.contains("sudo"));
    insta::assert_snapshot!("partial_120x40", screen);
}

#[test]
fn kernel_timers_and_queues_show_where_the_backend_reads_them() {
    let mut app = App::new(
        Keymap::default(),
        std::time::Duration::from_secs(2),
        300,
        Filter::default(),
    );
    let (a, b) = super::fixture::two_polls_from(false, true);
    app.on_update(a);
    app.on_update(b);
    key(&mut app, KeyCode::Char('d')); // hide the detail pane: room for the columns
    let screen = draw(&mut app, 120, 40);
    assert!(
        screen.contains("TIMER") && screen.contains("RECV-Q SEND-Q"),
        "{screen}"
    );
    insta::assert_snapshot!("kernel_columns_120x40", screen);
    // The detail pane spells them out.
    key(&mut app, KeyCode::Char('d'));
    let screen = draw(&mut app, 120, 40);
    assert!(screen.contains("timer   ka 116min"), "{screen}");
    assert!(
        screen.contains("queues  recv-q 0 B unread, send-q 0 B"),
        "{screen}"
    );
}

/// The fixture filtered to its CLOSE_WAIT, whose receive side the peer's FIN shut.
fn close_wait_app() -> App {
    let mut app = App::new(
        Keymap::default(),
        std::time::Duration::from_secs(2),
        300,
        Filter::parse("state:close-wait").unwrap(),
    );
    let (a, b) = super::fixture::two_polls_from(false, true);
    app.on_update(a);
    app.on_update(b);
    app
}

#[test]
fn the_detail_pane_tells_the_peers_fin_from_unread_bytes() {
    // The fixture's CLOSE_WAIT has a receive queue of 1 with the receive side shut: the
    // peer's FIN, no byte.
    let mut app = close_wait_app();
    let screen = draw(&mut app, 120, 40);
    assert!(
        screen.contains("queues  recv-q peer sent FIN, 0 B"),
        "{screen}"
    );
    assert!(!screen.contains("recv-q 1 B unread"), "{screen}");
}

#[test]
fn the_detail_pane_shows_what_the_owner_runs_neutralised() {
    fn hostile(_pid: u32) -> Option<crate::collector::ProcessCommand> {
        Some(crate::collector::ProcessCommand {
            line: "java -jar orders.jar --title \x1b]0;PWN\x07".into(),
            exe: Some("/usr/lib/jvm/bin/java".into()),
        })
    }
    let mut app = close_wait_app();
    let without = draw(&mut app, 120, 40);
    assert!(!without.contains("cmd     "), "{without}");
    app.command_of = Some(hostile);
    let screen = draw(&mut app, 120, 40);
    // The pane wraps at spaces: each word whole, the escape shown as text.
    assert!(screen.contains("cmd     java -jar orders.jar"), "{screen}");
    assert!(screen.contains("\\x1b]0;PWN\\x07"), "{screen}");
    assert!(screen.contains("exe     /usr/lib/jvm/bin/java"), "{screen}");
    assert!(!screen.contains('\x1b'), "no escape reaches the terminal");
}

#[test]
fn tiny_windows_say_so_instead_of_drawing() {
    let mut app = app_with_fixture(false);
    let screen = draw(&mut app, 20, 5);
    assert!(screen.contains("window too"), "{screen}");
}

#[test]
fn filter_prompt_filters_rows_and_rejects_bad_filters() {
    let mut app = app_with_fixture(false);
    key(&mut app, KeyCode::Char('/'));
    assert_eq!(app.input.as_deref(), Some(""));
    type_text(&mut app, "state:close-wait");
    key(&mut app, KeyCode::Enter);
    assert!(app.input.is_none());
    assert_eq!(app.filter.to_string(), "state:close-wait");
    let states: Vec<TcpState> = app
        .rows
        .iter()
        .map(|&r| app.conn(r).unwrap().state)
        .collect();
    assert_eq!(states, vec![TcpState::CloseWait; 7]);

    key(&mut app, KeyCode::Char('/'));
    type_text(&mut app, " bogus:1");
    key(&mut app, KeyCode::Enter);
    assert!(app.input.is_some(), "a bad filter keeps the prompt open");
    assert!(app.input_error.as_deref().unwrap().contains("unknown key"));
    let screen = draw(&mut app, 120, 40);
    assert!(screen.contains("unknown key \"bogus\""), "{screen}");
    key(&mut app, KeyCode::Esc);
    assert!(app.input.is_none());
    assert_eq!(
        app.filter.to_string(),
        "state:close-wait",
        "cancel keeps the old filter"
    );
    key(&mut app, KeyCode::Esc);
    assert!(
        app.filter.is_empty(),
        "Esc outside the prompt clears the filter"
    );
}

#[test]
fn quick_state_keys_toggle_state_filters() {
    let mut app = app_with_fixture(false);
    key(&mut app, KeyCode::Char('6')); // TIME_WAIT
    assert!(
        app.rows
            .iter()
            .all(|&r| app.conn(r).unwrap().state == TcpState::TimeWait)
    );
    key(&mut app, KeyCode::Char('7')); // and CLOSE_WAIT
    let n_tw_cw = app.rows.len();
    assert!(n_tw_cw > 8);
    assert_eq!(app.filter_text(), "state:time-wait,close-wait");
    key(&mut app, KeyCode::Char('6'));
    key(&mut app, KeyCode::Char('7'));
    assert!(app.quick.is_empty());
}

#[test]
fn navigation_sort_views_and_groups() {
    let mut app = app_with_fixture(false);
    draw(&mut app, 120, 40);
    key(&mut app, KeyCode::Char('j'));
    key(&mut app, KeyCode::Down);
    assert_eq!(app.selected, 2);
    key(&mut app, KeyCode::Char('G'));
    assert_eq!(app.selected, app.rows.len() - 1);
    key(&mut app, KeyCode::Home);
    assert_eq!(app.selected, 0);

    // Sort by LOCAL, then reverse it.
    key(&mut app, KeyCode::Char('s'));
    let first_local = app.conn(app.rows[0]).unwrap().local();
    key(&mut app, KeyCode::Char('S'));
    let last_local = app.conn(app.rows[app.rows.len() - 1]).unwrap().local();
    assert_eq!(first_local, last_local);

    // By state: groups fold with Enter.
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.view, View::ByState);
    let before = app.rows.len();
    assert!(matches!(app.rows[0], Row::Group(TcpState::Established, _)));
    key(&mut app, KeyCode::Enter);
    assert!(app.rows.len() < before);
    assert!(
        matches!(app.rows[1], Row::Group(..)),
        "{:?}",
        &app.rows[..3]
    );
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.rows.len(), before);

    // By process: java holds the CLOSE_WAIT and comes first, with its growth.
    key(&mut app, KeyCode::Tab);
    let Row::Process(i) = app.rows[0] else {
        panic!("process rows")
    };
    assert_eq!(app.procs[i].name, "java");
    assert_eq!(app.procs[i].counts.get(TcpState::CloseWait), 7);
    assert_eq!(app.procs[i].close_wait_per_min, Some(1.5));

    // By remote: the TIME_WAIT destination first.
    key(&mut app, KeyCode::Tab);
    let Row::Remote(i) = app.rows[0] else {
        panic!("remote rows")
    };
    assert_eq!(app.remotes[i].remote.to_string(), "10.0.0.5:5432");
    assert_eq!(app.remotes[i].time_wait, 9);

    handle_event(
        &mut app,
        Event::Key(KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT)),
    );
    assert_eq!(app.view, View::ByProcess);
}

#[test]
fn pause_freezes_the_table_and_counts_what_changed() {
    let mut app = App::new(
        Keymap::default(),
        std::time::Duration::from_secs(2),
        300,
        Filter::default(),
    );
    let (a, b) = two_polls(false);
    app.on_update(a.clone());
    key(&mut app, KeyCode::Char(' '));
    assert!(app.paused);
    app.on_update(b.clone());
    assert!(
        std::sync::Arc::ptr_eq(app.shown.as_ref().unwrap(), &a),
        "table frozen"
    );
    assert!(
        std::sync::Arc::ptr_eq(app.latest.as_ref().unwrap(), &b),
        "polling goes on"
    );
    assert_eq!(app.paused_polls, 1);
    assert_eq!(app.paused_changes, b.transitions.len());
    let screen = draw(&mut app, 120, 40);
    assert!(
        screen.contains(&format!(
            "PAUSED: 1 polls, {} changes since",
            b.transitions.len()
        )),
        "{screen}"
    );
    key(&mut app, KeyCode::Char(' '));
    assert!(std::sync::Arc::ptr_eq(app.shown.as_ref().unwrap(), &b));
}

#[test]
fn changes_are_marked_and_vanished_rows_fade() {
    let mut app = app_with_fixture(false);
    let ghost = app
        .rows
        .iter()
        .find(|r| matches!(r, Row::Ghost(_)))
        .copied()
        .expect("the vanished FIN_WAIT_2 stays on screen");
    assert_eq!(app.conn(ghost).unwrap().local().port(), 47001);
    assert_eq!(app.marks.len(), 4, "3 new + 1 changed: {:?}", app.marks);
    // Two more polls with nothing new: the ghost is gone.
    let (_, b) = two_polls(false);
    for _ in 0..2 {
        let mut u = (*b).clone();
        u.transitions.clear();
        app.on_update(std::sync::Arc::new(u));
    }
    assert!(!app.rows.iter().any(|r| matches!(r, Row::Ghost(_))));
    assert!(app.marks.is_empty());
}

#[test]
fn interval_keys_change_the_poll_interval_and_q_quits() {
    let mut app = app_with_fixture(false);
    assert_eq!(
        key(&mut app, KeyCode::Char('+')),
        Effect::SetInterval(std::time::Duration::from_secs(1))
    );
    assert_eq!(
        key(&mut app, KeyCode::Char('-')),
        Effect::SetInterval(std::time::Duration::from_secs(2))
    );
    key(&mut app, KeyCode::Char('?'));
    assert!(app.help);
    assert_eq!(key(&mut app, KeyCode::Char('j')), Effect::None);
    key(&mut app, KeyCode::Esc);
    assert!(!app.help);
    assert_eq!(
        handle_event(
            &mut app,
            Event::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL))
        ),
        Effect::Quit
    );
    assert_eq!(key(&mut app, KeyCode::Char('q')), Effect::Quit);
}

#[test]
fn no_color_draws_without_colours_but_keeps_emphasis() {
    use ratatui::style::{Color, Modifier};
    let mut app = app_with_fixture(false);
    let theme = Theme::new(&ThemeColors::default(), true);
    let mut t = Terminal::new(TestBackend::new(120, 40)).unwrap();
    for _ in 0..2 {
        let mut hit = Default::default();
        t.draw(|f| hit = ui::render(f, &app, &theme)).unwrap();
        app.after_draw(hit);
    }
    let buf = t.backend().buffer();
    let cells: Vec<_> = buf.content().iter().collect();
    assert!(
        cells
            .iter()
            .all(|c| c.fg == Color::Reset && c.bg == Color::Reset)
    );
    // The selected row and alerted states still stand out.
    assert!(
        cells
            .iter()
            .any(|c| c.modifier.contains(Modifier::REVERSED))
    );
    // And with colours, they are coloured.
    let coloured = Theme::new(&ThemeColors::default(), false);
    t.draw(|f| {
        ui::render(f, &app, &coloured);
    })
    .unwrap();
    assert!(
        t.backend()
            .buffer()
            .content()
            .iter()
            .any(|c| c.fg == Color::Red)
    );
}

#[test]
fn mouse_clicks_select_rows_and_state_cells_and_the_wheel_scrolls() {
    use crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
    let mut app = app_with_fixture(false);
    draw(&mut app, 120, 40);
    let mouse = |kind, column, row| {
        Event::Mouse(MouseEvent {
            kind,
            column,
            row,
            modifiers: KeyModifiers::NONE,
        })
    };
    let (x, y, _, _) = app.hit.table;
    handle_event(
        &mut app,
        mouse(MouseEventKind::Down(MouseButton::Left), x + 2, y + 4),
    );
    assert_eq!(app.selected, 4);
    handle_event(&mut app, mouse(MouseEventKind::ScrollDown, x + 2, y + 4));
    assert_eq!(app.selected, 7);
    handle_event(&mut app, mouse(MouseEventKind::ScrollUp, x + 2, y + 4));
    assert_eq!(app.selected, 4);
    // The CLOSE_WAIT cell of the strip toggles its quick filter.
    let &(cx, cy, _, _, _) = app.hit.strip.iter().find(|c| c.4 == 6).unwrap();
    handle_event(
        &mut app,
        mouse(MouseEventKind::Down(MouseButton::Left), cx + 1, cy + 1),
    );
    assert_eq!(app.filter_text(), "state:close-wait");
}

/// Issue 15 item 12: a start filter that matches none of the lab's sockets does not hide
/// them while the panel is open, says it is set aside, and is back when the panel closes.
#[test]
fn the_lab_panel_shows_its_sockets_whatever_the_start_filter() {
    let (a, b) = two_polls(false);
    let mut b = (*b).clone();
    let mut snap = (*b.snapshot).clone();
    // Two of the fixture's connections are the lab's own.
    for c in snap.connections.iter_mut().take(2) {
        c.lab = true;
    }
    let lab_ports: Vec<u16> = snap.connections[..2]
        .iter()
        .map(|c| c.local().port())
        .collect();
    b.snapshot = std::sync::Arc::new(snap);
    let start = Filter::parse("port:19900").unwrap();
    let mut app = App::new(
        Keymap::default(),
        std::time::Duration::from_secs(2),
        300,
        start,
    );
    app.on_update(a);
    app.on_update(std::sync::Arc::new(b));
    assert!(
        app.rows.is_empty(),
        "port:19900 matches nothing in the fixture"
    );
    key(&mut app, KeyCode::Char('7'));

    assert_eq!(key(&mut app, KeyCode::Char('L')), Effect::OpenLab);
    assert_eq!(app.filter_text(), "lab:yes");
    let shown: Vec<u16> = app
        .rows
        .iter()
        .filter_map(|&r| app.conn(r))
        .map(|c| c.local().port())
        .collect();
    assert_eq!(shown, lab_ports, "{:?}", app.rows);
    let status = app.lab.as_ref().unwrap().status.clone().unwrap();
    assert!(
        status.contains("port:19900") && status.contains("set aside"),
        "{status}"
    );

    key(&mut app, KeyCode::Char('L'));
    assert_eq!(app.filter_text(), "port:19900 state:close-wait");
    assert!(app.rows.is_empty());
}

/// Issue 15 item 11: `T` and `W` run the count the panel shows, small ones too.
#[test]
fn lab_scenarios_run_the_count_shown() {
    use super::lab_panel::LabRequest;
    use crate::lab::{Family, Scenario};
    let mut app = app_with_fixture(false);
    key(&mut app, KeyCode::Char('L'));
    for (presses, count) in [(0, 1), (1, 5), (1, 20), (1, 100)] {
        for _ in 0..presses {
            key(&mut app, KeyCode::Char('c'));
        }
        assert_eq!(app.lab.as_ref().unwrap().count(), count);
        for (k, scenario) in [
            ('T', Scenario::TimeWaitStorm),
            ('W', Scenario::CloseWaitLeak),
        ] {
            assert_eq!(
                key(&mut app, KeyCode::Char(k)),
                Effect::Lab(LabRequest::Scenario {
                    scenario,
                    count,
                    family: Family::Ipv4
                })
            );
        }
    }
}

// It starts a real lab for the handles it acts on: unix only, as the lab is.
#[cfg(unix)]
#[test]
fn lab_panel_keys_ask_for_lab_operations_on_the_selected_connection() {
    use super::lab_panel::LabRequest;
    use crate::lab::{Behaviour, CloseMode as LabAction, End, Family, Lab};
    let mut app = app_with_fixture(false);
    assert_eq!(key(&mut app, KeyCode::Char('L')), Effect::OpenLab);
    assert!(app.lab.is_some());
    assert!(
        app.rows.is_empty(),
        "the fixture has no lab sockets: {:?}",
        app.rows
    );
    assert_eq!(app.filter_text(), "lab:yes");

    // Without connections, a close key says what to do.
    assert_eq!(key(&mut app, KeyCode::Char('a')), Effect::None);
    assert!(
        app.lab
            .as_ref()
            .unwrap()
            .status
            .as_deref()
            .unwrap()
            .contains("press o")
    );

    // A real lab on loopback supplies the handles.
    let lab = Lab::new().unwrap();
    let ids = lab.open(Behaviour::Normal, 2, Family::Ipv4).unwrap();
    app.lab.as_mut().unwrap().set_conns(lab.connections());
    key(&mut app, KeyCode::Down);
    assert_eq!(
        key(&mut app, KeyCode::Char('a')),
        Effect::Lab(LabRequest::Close {
            id: ids[1],
            end: End::Client,
            action: LabAction::Abort
        })
    );
    key(&mut app, KeyCode::Char('e'));
    key(&mut app, KeyCode::Up);
    assert_eq!(
        key(&mut app, KeyCode::Char('g')),
        Effect::Lab(LabRequest::Close {
            id: ids[0],
            end: End::Server,
            action: LabAction::Graceful
        })
    );
    key(&mut app, KeyCode::Char('b'));
    key(&mut app, KeyCode::Char('c'));
    key(&mut app, KeyCode::Char('f'));
    assert_eq!(
        key(&mut app, KeyCode::Char('o')),
        Effect::Lab(LabRequest::Open {
            behaviour: Behaviour::NeverClose,
            count: 5,
            family: Family::Ipv6
        })
    );
    let screen = draw(&mut app, 120, 40);
    assert!(screen.contains("Close lab"), "{screen}");
    assert!(
        screen.contains(&format!("{} normal server", ids[0])),
        "{screen}"
    );

    // Esc hides the panel; the table shows every connection again; L brings it back as it was.
    key(&mut app, KeyCode::Esc);
    assert!(app.lab.is_none());
    assert!(!app.rows.is_empty());
    key(&mut app, KeyCode::Char('L'));
    assert_eq!(app.lab.as_ref().unwrap().conns.len(), 2);
}

/// The packed all-IPv4 sort key orders rows exactly as the general key does: state, then
/// the sorted-on address (reversed when descending), then the other one; ties stay in order.
#[test]
fn packed_ipv4_sort_matches_the_general_order() {
    use std::net::SocketAddr;
    let key = |sa: &SocketAddr, rev: bool| -> (bool, u128, u16) {
        let k = match sa {
            SocketAddr::V4(a) => (false, u128::from(u32::from(*a.ip())), a.port()),
            SocketAddr::V6(a) => (true, u128::from(*a.ip()), a.port()),
        };
        if rev { (!k.0, !k.1, !k.2) } else { k }
    };
    let u = super::fixture::big_poll(3000);
    let conns = &u.snapshot.connections;
    let mut app = App::new(
        Keymap::default(),
        std::time::Duration::from_secs(2),
        300,
        Filter::default(),
    );
    app.on_update(u.clone());
    for view in [View::All, View::ByState] {
        app.view = view;
        let v = View::ALL.iter().position(|x| *x == view).unwrap();
        let by_state = view == View::ByState;
        for col in 0..=2 {
            for desc in [false, true] {
                app.sort[v] = col;
                app.sort_desc[v] = desc;
                app.rebuild();
                let got: Vec<usize> = app
                    .rows
                    .iter()
                    .filter_map(|r| match r {
                        Row::Conn(i) => Some(*i),
                        _ => None,
                    })
                    .collect();
                let mut want: Vec<usize> = (0..conns.len()).collect();
                want.sort_by_key(|&i| {
                    let c = &conns[i];
                    let s = c.state as u8;
                    let head = if by_state { s } else { 0 };
                    match col {
                        1 => (head, key(&c.local(), desc), key(&c.remote(), false)),
                        2 => (head, key(&c.remote(), desc), key(&c.local(), false)),
                        _ => (
                            if desc && !by_state { u8::MAX - s } else { s },
                            key(&c.local(), false),
                            key(&c.remote(), false),
                        ),
                    }
                });
                assert_eq!(got, want, "{view:?} column {col} desc {desc}");
            }
        }
    }
}

/// A finished abortive close whose peer read differs from the documents.
pub(super) fn fixture_trace() -> crate::lab::Trace {
    use crate::lab::outcome::CallResult;
    use crate::lab::trace::{Call, PeerRead, Step};
    use crate::lab::{Behaviour, CloseMode as LabAction, End, ReadOutcome, TimeWaitSide, expect};
    let ms = std::time::Duration::from_millis;
    let step = |state, at| Step {
        state,
        at: ms(at),
        send_queue: 0,
    };
    let call = |at, call: &str, detail: Option<&str>| Call {
        at: ms(at),
        end: End::Client,
        call: call.into(),
        result: CallResult::Ok,
        took: std::time::Duration::ZERO,
        detail: detail.map(Into::into),
    };
    crate::lab::Trace {
        conn: "#3".parse().unwrap(),
        end: End::Client,
        action: LabAction::Abort,
        behaviour: Behaviour::Normal,
        linger: None,
        closer: (
            "127.0.0.1:40000".parse().unwrap(),
            "127.0.0.1:7000".parse().unwrap(),
        ),
        calls: vec![
            call(0, "setsockopt(SO_LINGER, on, 0 s)", None),
            call(1, "close()", Some("RST sent")),
        ],
        close_result: CallResult::Ok,
        close_blocked: std::time::Duration::from_micros(150),
        closer_states: vec![step(Some(TcpState::Established), 0), step(None, 2)],
        peer_states: vec![step(Some(TcpState::Established), 0), step(None, 3)],
        peer_read: PeerRead {
            outcome: ReadOutcome::Eof,
            at: ms(3),
            probe: false,
            bytes_after_close: 0,
            then: None,
        },
        closer_read: None,
        bytes_queued: None,
        time_wait: TimeWaitSide::None,
        settled: true,
        duration: ms(5),
        observer: "sock_diag",
        polls: 9,
        documented: expect::documented(LabAction::Abort, false, std::time::Duration::ZERO, false),
        deviation: Some("the peer read EOF where the documents say ECONNRESET".into()),
    }
}

/// The panel shows what `lingertop lab` prints for the trace, verdict first: the printed
/// table's blocks (split on its blank lines) in the order head, verdict, states, calls.
#[test]
fn a_finished_trace_shows_in_the_panel_verdict_first() {
    use super::lab_panel::trace_lines;
    let t = fixture_trace();
    let mut table = Vec::new();
    crate::report::lab::write_trace(crate::report::LabFormat::Table, &t, &mut table).unwrap();
    let table = String::from_utf8(table).unwrap();
    let blocks: Vec<Vec<&str>> = table
        .split("\n\n")
        .map(|b| b.lines().map(str::trim_start).collect())
        .collect();
    assert_eq!(blocks.len(), 4, "{table}");
    let mut want: Vec<&str> = Vec::new();
    for b in [&blocks[0], &blocks[3], &blocks[2], &blocks[1]] {
        want.extend(b.iter());
        want.push("");
    }
    let lines = trace_lines(&t);
    let got: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(got, want);
    assert!(got[0].starts_with("lab connection #3: client 127.0.0.1:40000"));
    assert!(got[3].starts_with("close()"), "{got:?}");
    assert!(
        got.iter().position(|l| l.starts_with("STATES")) < got.iter().position(|l| *l == "CALLS")
    );
    // Only the deviation line is marked, and it carries the observation.
    let marked: Vec<&str> = lines
        .iter()
        .filter(|l| l.deviation)
        .map(|l| l.text.as_str())
        .collect();
    assert_eq!(marked.len(), 1);
    assert!(marked[0].starts_with("deviation") && marked[0].contains("ECONNRESET"));

    // Drawn: the trace replaces the hint, the deviation in the warning colour.
    let mut app = app_with_fixture(false);
    key(&mut app, KeyCode::Char('L'));
    let hint = draw(&mut app, 120, 40);
    assert!(
        hint.contains("the trace of the last close appears here"),
        "{hint}"
    );
    app.lab.as_mut().unwrap().push_trace(t);
    let theme = Theme::new(&ThemeColors::default(), false);
    let mut term = Terminal::new(TestBackend::new(120, 40)).unwrap();
    term.draw(|f| {
        ui::render(f, &app, &theme);
    })
    .unwrap();
    let buf = term.backend().buffer();
    let row_of = |needle: &str| {
        (0..buf.area.height).find(|&y| {
            let text: String = (0..buf.area.width)
                .map(|x| buf[(x, y)].symbol().to_string())
                .collect();
            text.contains(needle)
        })
    };
    // The colour of the first cell of `needle` on line `y` (cells, not bytes: the panel
    // draws non-ASCII symbols).
    let colour_at = |y: u16, needle: &str| {
        let cells: Vec<&str> = (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect();
        let x = (0..cells.len())
            .find(|&x| cells[x..].concat().starts_with(needle))
            .unwrap();
        buf[(u16::try_from(x).unwrap(), y)].fg
    };
    let dev = row_of("deviation").expect("the deviation line is drawn");
    assert_eq!(colour_at(dev, "deviation"), ratatui::style::Color::Yellow);
    let mode = row_of("mode abort").expect("the head is drawn");
    assert_ne!(colour_at(mode, "mode abort"), ratatui::style::Color::Yellow);
    assert!(row_of("the trace of the last close appears here").is_none());
}
