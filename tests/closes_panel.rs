//! The dashboard's closes panel from the kernel's real events: in a network namespace this
//! test creates, one child process makes M SO_LINGER {1, 0} resets to a server that is
//! another child; the panel's state and its drawing must show M resets sent by the client's
//! pid and M received by the server's, and nothing the other way round (passive
//! transitions run in the peer's task on loopback: the owner must not follow the task).
//! Needs root (a namespace and eBPF); skips with a message otherwise.

mod common;

use std::time::{Duration, Instant};

use common::netns::{Netns, privileged};
use common::resets::{CLIENT, SERVER, first_line, python, wait};
use lingertop::events::{EventOptions, KernelEvents};
use lingertop::model::CloseSource;
use lingertop::model::close_stats::CloseStats;
use lingertop::tui::app::App;
use lingertop::tui::keys::Keymap;
use lingertop::tui::theme::{Theme, ThemeColors};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

const M: usize = 25;

#[test]
fn the_panel_attributes_linger0_resets_to_the_child_that_sent_them() {
    if !privileged("the_panel_attributes_linger0_resets_to_the_child_that_sent_them") {
        return;
    }
    let ns = Netns::new("panel").expect("a network namespace");
    let ev = KernelEvents::start(&EventOptions {
        netns: Some(ns.inode() as u32),
        queue: 4096,
        ..EventOptions::default()
    })
    .expect("root loads the kernel's events");
    let mut server = python(&ns, SERVER, &[M.to_string()]);
    let port = first_line(&mut server);
    let client = python(&ns, CLIENT, &[M.to_string(), port]);
    let (server_pid, client_pid) = (server.id(), client.id());
    wait(client);
    wait(server);

    // The dashboard's state, fed as its runner feeds it.
    let mut app = App::new(
        Keymap::default(),
        Duration::from_secs(2),
        300,
        lingertop::model::Filter::default(),
    );
    let mut stats = CloseStats::new(CloseSource::Kernel, None, Duration::from_secs(2));
    stats.mark(Duration::ZERO);
    let deadline = Instant::now() + Duration::from_secs(10);
    // Until both ends' resets are in: the ring is drained every 50 ms, so the received
    // side can still be on its way when the sent side is all read.
    while (stats.tally.all.reset_sent < M as u64 || stats.tally.all.reset_received < M as u64)
        && Instant::now() < deadline
    {
        if let Some(c) = ev.next_timeout(Duration::from_millis(200)) {
            stats.add_closes([&c]);
        }
    }
    let more: Vec<_> = ev.drain().collect();
    stats.add_closes(&more);
    stats.mark(Duration::from_secs(1));
    app.closes = Some(stats);
    let s = app.closes.as_ref().unwrap();
    let sent_received = |pid| s.resets_of(pid).map(|r| (r.sent, r.received));
    assert_eq!(sent_received(client_pid), Some((M as u64, 0)), "client");
    assert_eq!(sent_received(server_pid), Some((0, M as u64)), "server");
    let c = s.tally.process(client_pid).unwrap();
    assert_eq!(c.counts.reset_sent_linger0, M as u64);
    assert_eq!(s.lost, 0);

    // The reset storm rule fires from these real resets: M in one second is M/s for the
    // client (sent) and the server (received), over a warning of M/2.
    let mut rules = lingertop::model::Rules::default();
    rules.reset_storm.window = Duration::from_secs(1);
    rules.reset_storm.warning = (M / 2) as u32;
    rules.reset_storm.critical = (M * 10) as u32;
    let alerts = lingertop::model::alerts::close_alerts(s, &rules);
    let mut pids: Vec<u32> = alerts.iter().filter_map(|a| a.pid).collect();
    pids.sort();
    let mut want = vec![client_pid, server_pid];
    want.sort();
    assert_eq!(pids, want, "{alerts:?}");
    assert!(
        alerts
            .iter()
            .all(|a| a.rule == lingertop::model::RuleId::ResetStorm && a.count == M as u32),
        "{alerts:?}"
    );

    // And the panel says so.
    app.closes_panel = true;
    let theme = Theme::new(&ThemeColors::default(), false);
    let mut t = Terminal::new(TestBackend::new(120, 40)).unwrap();
    t.draw(|f| {
        lingertop::tui::ui::render(f, &app, &theme);
    })
    .unwrap();
    let screen = t.backend().to_string();
    let row = |pid: u32| {
        screen
            .lines()
            .find(|l| l.contains(&format!(" {pid} ")))
            .unwrap_or_else(|| panic!("no row for pid {pid}:\n{screen}"))
            // The test backend quotes each line; the panel's right column follows the bar.
            .trim_matches('"')
            .rsplit('│')
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    // SENT UNREAD LNGR-0 OTHER RECV: the last five cells of a resetter's row.
    let client_row = row(client_pid);
    let n = client_row.len();
    let (m, zero) = (M.to_string(), "0".to_string());
    assert_eq!(
        client_row[n - 5..],
        [
            m.clone(),
            zero.clone(),
            m.clone(),
            zero.clone(),
            zero.clone()
        ],
        "{screen}"
    );
    let server_row = row(server_pid);
    let n = server_row.len();
    assert_eq!(
        server_row[n - 5..],
        [zero.clone(), zero.clone(), zero.clone(), zero, m],
        "{screen}"
    );
}
