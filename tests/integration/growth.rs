//! One growth definition: the dashboard's CW/MIN in its by-process view is the
//! `close-wait-lingering` alert's growth over `alerts.growth-window`, on a real leak (loopback
//! CLOSE_WAIT sockets this test holds) that grows, then stops. In-process: the real
//! collector, tracker, alert rules and dashboard state, without a terminal. It runs in a
//! process of its own (the test binary run again for this one test) so no other test's
//! sockets count toward its process's CLOSE_WAIT.

use std::time::{Duration, Instant};

use crate::common::*;
use lingertop::collector::Collector;
use lingertop::lab::LabRecogniser;
use lingertop::live::Update;
use lingertop::model::{Filter, RuleId, Rules, TcpState, Tracker};
use lingertop::tui::app::{App, View};
use lingertop::tui::keys::Keymap;

/// Set in the process that runs the test alone.
const ALONE: &str = "LT_GROWTH_ALONE";

#[test]
fn cw_per_min_is_the_alert_growth_on_a_leak_that_grows_then_stops() {
    if std::env::var_os(ALONE).is_none() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "growth::cw_per_min_is_the_alert_growth_on_a_leak_that_grows_then_stops",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ALONE, "1")
            .output()
            .expect("run the test binary again");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("1 passed"),
            "alone it failed:\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    let me = std::process::id();
    let mut rules = Rules::default();
    rules.close_wait.min_age = Duration::ZERO;
    // Long enough to hold several polls on a loaded machine.
    rules.growth_window = Duration::from_secs(8);
    let mut collector = Collector::system();
    let mut tracker = Tracker::new(300);
    let mut labs = LabRecogniser::default();
    let filter = Filter::parse(&format!("pid:{me}")).unwrap();
    let mut app = App::new(Keymap::default(), Duration::from_millis(200), 300, filter);
    app.set_growth_window(rules.growth_window);
    app.view = View::ByProcess;

    // One poll: (the alert's growth, CW/MIN) for this process.
    let mut poll = |app: &mut App| -> (Option<f64>, Option<f64>) {
        let snap = collector.poll().expect("poll");
        let u = Update::observe(&mut tracker, snap, &rules, 0, &mut labs);
        let alert = u
            .alerts
            .iter()
            .find(|a| a.rule == RuleId::CloseWaitLingering && a.pid == Some(me))
            .and_then(|a| a.growth_per_min);
        app.on_update(std::sync::Arc::new(u));
        let row = app.procs.iter().find(|p| p.pid == Some(me));
        (alert, row.and_then(|p| p.close_wait_per_min))
    };

    let l = listener(V4);
    let mut held = Vec::new();
    let mut grew = false;
    // Grows: three more CLOSE_WAIT before each of six polls.
    for _ in 0..6 {
        let mut last = None;
        for _ in 0..3 {
            let (c, s) = pair(&l);
            last = Some(addr_of(&c));
            drop(c);
            held.push(s);
        }
        let (client, server) = last.unwrap();
        wait_for_state(server, client, TcpState::CloseWait);
        let (alert, shown) = poll(&mut app);
        assert_eq!(shown, alert, "CW/MIN is the alert's growth while it grows");
        grew |= shown.is_some_and(|g| g > 0.0);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(grew, "the leak was seen growing");
    // Stops: polls until the growth window has passed the last new one (bounded).
    let stopped = Instant::now();
    let mut last = (None, None);
    while stopped.elapsed() < rules.growth_window + Duration::from_millis(500) {
        last = poll(&mut app);
        assert_eq!(
            last.1, last.0,
            "CW/MIN is the alert's growth after it stops"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        last,
        (Some(0.0), Some(0.0)),
        "steady once the window has passed"
    );
    drop(held);
}
