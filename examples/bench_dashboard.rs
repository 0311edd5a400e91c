//! Dashboard frame benchmark: builds the app state from a poll of N connections and renders
//! frames into an off-screen buffer, printing medians. Run:
//!
//!     cargo run --release --example bench_dashboard [-- 100000]
//!
//! "take in a poll" is what happens once per poll interval (filter, sort, group the rows);
//! "frame" is what happens on every key press and tick (build the visible rows and draw).
//! The poll loop's own per-poll work over the same snapshot follows: the alert rules
//! (`detect`) and the lab recogniser (`LabRecogniser::mark`).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use lingertop::lab::LabRecogniser;
use lingertop::model::alerts::detect;
use lingertop::model::{Filter, Rules};
use lingertop::tui::app::App;
use lingertop::tui::fixture::big_poll;
use lingertop::tui::keys::{Action, Keymap};
use lingertop::tui::theme::{Theme, ThemeColors};
use lingertop::tui::ui;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let poll = big_poll(n);
    let theme = Theme::new(&ThemeColors::default(), false);
    let mut app = App::new(
        Keymap::default(),
        Duration::from_secs(1),
        300,
        Filter::default(),
    );
    let mut term = Terminal::new(TestBackend::new(120, 40)).expect("test backend");

    println!("dashboard with {n} connections, 120x40, median of runs");
    let views = ["all", "by state", "by process", "by remote"];
    for (vi, view) in views.iter().enumerate() {
        let mut take = Vec::new();
        let mut frame = Vec::new();
        for _ in 0..15 {
            let t = Instant::now();
            app.on_update(poll.clone());
            take.push(t.elapsed());
            for _ in 0..3 {
                let t = Instant::now();
                let mut hit = Default::default();
                term.draw(|f| hit = ui::render(f, &app, &theme))
                    .expect("draw");
                app.after_draw(hit);
                app.apply(Action::Down);
                frame.push(t.elapsed());
            }
        }
        println!(
            "  view {view:<11} take in a poll {:>10}   frame (build + render) {:>9}",
            ms(median(take)),
            ms(median(frame))
        );
        if vi + 1 < views.len() {
            app.apply(Action::NextView);
        }
    }

    // The poll loop's per-poll work besides the tracker, over the same snapshot.
    let snap = &poll.snapshot;
    let history = VecDeque::from([poll.sample.clone()]);
    let rules = Rules::default();
    let mut times = Vec::new();
    let mut alerts = 0;
    for _ in 0..15 {
        let t = Instant::now();
        let a = detect(
            &snap.connections,
            snap.taken_at,
            snap.ephemeral_ports,
            &history,
            &rules,
        );
        times.push(t.elapsed());
        alerts = a.len();
    }
    println!(
        "  alert rules (detect)                 {:>10}   ({alerts} alerts)",
        ms(median(times))
    );
    let mut recogniser = LabRecogniser::new(lingertop::cli::is_lab_command);
    let mut times = Vec::new();
    for _ in 0..15 {
        let mut s = lingertop::model::Snapshot::clone(snap);
        let t = Instant::now();
        recogniser.mark(&mut s, None);
        times.push(t.elapsed());
    }
    println!(
        "  lab recogniser (mark)                {:>10}",
        ms(median(times))
    );
}
