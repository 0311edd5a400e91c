//! The live dashboard: a tokio loop over terminal events, poll results from the collector
//! thread, a render tick and signals. The terminal is restored on every exit path: normal
//! quit, error, Ctrl-C, SIGTERM/SIGHUP/SIGINT, and panic (the message is printed after).

pub mod app;
#[doc(hidden)]
pub mod fixture;
pub mod keys;
pub mod lab_panel;
pub mod theme;
pub mod ui;

#[cfg(test)]
mod tests;

use std::io::{self, Stdout};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};
use crossterm::event::{
    self, DisableMouseCapture, EnableMouseCapture, Event, KeyEventKind, MouseButton, MouseEventKind,
};
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use tokio::sync::mpsc;

use crate::collector::Collector;
use crate::config::Config;
use crate::lab::{CloseOptions, Lab, Pending, ScenarioReport, Trace};
use crate::live::{self, Control, Message};
use crate::model::Filter;
use app::{App, Effect};
use keys::{Action, Keymap};
use lab_panel::LabRequest;
use theme::Theme;

/// Opens the dashboard and runs it until the user quits.
pub fn run(cfg: &Config, filter: Filter, collector: Collector) -> Result<()> {
    let rt = crate::runtime()?;
    rt.block_on(run_async(cfg, filter, collector))
}

/// Puts the terminal back as it was. Safe to call more than once.
fn restore_terminal() {
    let _ = disable_raw_mode();
    let _ = execute!(
        io::stdout(),
        DisableMouseCapture,
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
}

/// Holds the terminal in dashboard mode; dropping it restores the terminal.
struct TerminalGuard {
    terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl TerminalGuard {
    fn enter() -> Result<Self> {
        enable_raw_mode().context("cannot switch the terminal to raw mode")?;
        // From here on, any failure must restore what was changed.
        let guard = (|| -> Result<Terminal<CrosstermBackend<Stdout>>> {
            execute!(io::stdout(), EnterAlternateScreen, EnableMouseCapture)?;
            let mut t = Terminal::new(CrosstermBackend::new(io::stdout()))?;
            t.clear()?;
            Ok(t)
        })();
        match guard {
            Ok(terminal) => Ok(TerminalGuard { terminal }),
            Err(e) => {
                restore_terminal();
                Err(e.context("cannot set up the terminal"))
            }
        }
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// Restores the terminal before the default panic message is printed.
fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        previous(info);
        crate::say!(
            "lingertop: the dashboard crashed (message above); the terminal was restored. `lingertop snapshot` still works meanwhile."
        );
    }));
}

/// Reads terminal events on a thread of its own (crossterm's reads block) until stopped.
fn spawn_event_reader(
    tx: mpsc::Sender<Event>,
    stop: Arc<AtomicBool>,
) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("lingertop-input".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match event::poll(Duration::from_millis(100)) {
                    Ok(true) => match event::read() {
                        Ok(ev) => {
                            if tx.blocking_send(ev).is_err() {
                                return;
                            }
                        }
                        Err(_) => return,
                    },
                    Ok(false) => {}
                    Err(_) => return,
                }
            }
        })
}

async fn run_async(cfg: &Config, filter: Filter, collector: Collector) -> Result<()> {
    let keys: Vec<(String, Vec<keys::KeyBinding>)> = cfg.keys.clone();
    let mut app = App::new(Keymap::new(&keys), cfg.interval, cfg.history, filter);
    let theme = Theme::new(&cfg.theme, Theme::no_color_env());

    let (poll_tx, mut poll_rx) = mpsc::channel(4);
    let poller = live::spawn(collector, cfg, poll_tx).context("cannot start the poll thread")?;

    #[cfg(unix)]
    let mut signals = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::terminate()).context("cannot watch SIGTERM")?,
            signal(SignalKind::hangup()).context("cannot watch SIGHUP")?,
            signal(SignalKind::interrupt()).context("cannot watch SIGINT")?,
        )
    };

    install_panic_hook();
    let mut guard = TerminalGuard::enter()?;
    let stop = Arc::new(AtomicBool::new(false));
    let (ev_tx, mut ev_rx) = mpsc::channel(64);
    let reader =
        spawn_event_reader(ev_tx, stop.clone()).context("cannot start the input thread")?;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    // Started the first time the lab panel opens; dropped (every socket closed, every
    // thread joined) when the dashboard ends.
    let mut lab: Option<Lab> = None;
    let mut pending: Vec<PendingOp> = Vec::new();
    let mut lab_tick = tokio::time::interval(Duration::from_millis(100));
    // For the end-to-end test that a panic restores the terminal.
    let test_panic = std::env::var_os("LINGERTOP_TEST_PANIC").is_some();

    let outcome: Result<()> = async {
        loop {
            let mut hit = app::HitAreas::default();
            guard
                .terminal
                .draw(|f| hit = ui::render(f, &app, &theme))
                .context("cannot draw to the terminal")?;
            app.after_draw(hit);
            if test_panic {
                panic!("LINGERTOP_TEST_PANIC is set: panicking on purpose after the first frame");
            }

            #[cfg(unix)]
            let signal = async {
                tokio::select! {
                    _ = signals.0.recv() => {},
                    _ = signals.1.recv() => {},
                    _ = signals.2.recv() => {},
                }
            };
            #[cfg(not(unix))]
            let signal = async {
                let _ = tokio::signal::ctrl_c().await;
            };

            tokio::select! {
                ev = ev_rx.recv() => {
                    let Some(ev) = ev else { return Ok(()) };
                    match handle_event(&mut app, ev) {
                        Effect::Quit => return Ok(()),
                        Effect::SetInterval(d) => poller.send(Control::SetInterval(d)),
                        Effect::OpenLab => open_lab(&mut app, &mut lab),
                        Effect::Lab(req) => {
                            if let Some(l) = &lab {
                                run_lab_request(&mut app, l, req, &mut pending);
                                // Show the new sockets without waiting for the next poll.
                                poller.send(Control::PollNow);
                            }
                        }
                        Effect::None => {}
                    }
                }
                msg = poll_rx.recv() => match msg {
                    Some(Message::Update(u)) => {
                        app.on_update(u);
                        refresh_lab(&mut app, lab.as_ref());
                    }
                    Some(Message::PollFailed(e)) => app.on_poll_failed(e),
                    None => anyhow::bail!("the poll thread stopped"),
                },
                _ = lab_tick.tick(), if !pending.is_empty() => {
                    if collect_lab_results(&mut app, &mut pending) {
                        refresh_lab(&mut app, lab.as_ref());
                        poller.send(Control::PollNow);
                    }
                }
                _ = tick.tick() => {}
                _ = signal => return Ok(()),
            }
        }
    }
    .await;

    stop.store(true, Ordering::Relaxed);
    drop(guard);
    // Close every lab socket and stop its threads before leaving.
    drop(pending);
    drop(lab);
    drop(ev_rx);
    // The input thread is not joined: on a terminal that hung up, crossterm can keep
    // re-reading an EOF inside one call and never come back to see `stop`. It holds
    // nothing that needs cleaning up, and it ends with the process.
    drop(reader);
    drop(poll_rx);
    drop(poller);
    outcome
}

/// A lab operation still running on a lab worker.
enum PendingOp {
    Trace(Pending<Trace>, String),
    Scenario(Pending<ScenarioReport>, String),
}

fn open_lab(app: &mut App, lab: &mut Option<Lab>) {
    if lab.is_none() {
        match Lab::new() {
            Ok(l) => *lab = Some(l),
            Err(e) => {
                if let Some(p) = app.lab.as_mut() {
                    p.status = Some(format!("cannot start the lab: {e}"));
                }
                return;
            }
        }
    }
    refresh_lab(app, lab.as_ref());
}

/// Copies the lab's connections and listeners into the panel.
fn refresh_lab(app: &mut App, lab: Option<&Lab>) {
    if let (Some(p), Some(l)) = (app.lab.as_mut(), lab) {
        p.set_conns(l.connections());
        p.listeners = l.listeners();
    }
}

fn run_lab_request(app: &mut App, lab: &Lab, req: LabRequest, pending: &mut Vec<PendingOp>) {
    let status = match req {
        LabRequest::Open {
            behaviour,
            count,
            family,
        } => match lab.open(behaviour, count, family) {
            Ok(ids) => {
                refresh_lab(app, Some(lab));
                if let (Some(p), Some(last)) = (app.lab.as_mut(), ids.last()) {
                    if let Some(i) = p.conns.iter().position(|c| c.id == *last) {
                        p.selected = i;
                    }
                }
                format!(
                    "opened {} {behaviour} connections over {}",
                    ids.len(),
                    family.name()
                )
            }
            Err(e) => format!("open refused: {e}"),
        },
        LabRequest::Close { id, end, action } => {
            match lab.close(id, end, action, CloseOptions::default()) {
                Ok(p) => {
                    let label = format!("{action} on {id} {}", end.name());
                    pending.push(PendingOp::Trace(p, label.clone()));
                    format!("{label}: running, watching both ends")
                }
                Err(e) => format!("close refused: {e}"),
            }
        }
        LabRequest::Scenario {
            scenario,
            count,
            family,
        } => match lab.scenario(scenario, count, family) {
            Ok(p) => {
                let label = format!("{scenario} with {count} connections");
                pending.push(PendingOp::Scenario(p, label.clone()));
                format!("{label}: running")
            }
            Err(e) => format!("scenario refused: {e}"),
        },
        LabRequest::Discard(id) => match lab.discard(id) {
            Ok(()) => format!("{id} discarded: both ends closed"),
            Err(e) => format!("discard refused: {e}"),
        },
    };
    refresh_lab(app, Some(lab));
    if let Some(p) = app.lab.as_mut() {
        p.status = Some(status);
        p.busy = pending.len();
    }
}

/// The trace as the panel shows it: the verdict first (what close returned, what the peer
/// read, where TIME_WAIT stayed, the deviation), then the states, then the calls.
fn panel_trace(table: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(table);
    let blocks: Vec<&str> = text.split("\n\n").collect();
    let order: Vec<&str> = match blocks.as_slice() {
        [head, calls, states, verdict, rest @ ..] => {
            let mut v = vec![*head, *verdict];
            v.extend_from_slice(rest);
            v.extend([*states, *calls]);
            v
        }
        _ => blocks,
    };
    order
        .iter()
        .flat_map(|b| {
            b.lines()
                .map(|l| l.trim_start().to_string())
                .chain([String::new()])
        })
        .collect()
}

/// Takes in the results of finished lab operations; true when any finished.
fn collect_lab_results(app: &mut App, pending: &mut Vec<PendingOp>) -> bool {
    let mut done = false;
    let mut i = 0;
    while i < pending.len() {
        let (status, trace) = match &pending[i] {
            PendingOp::Trace(p, label) => match p.try_take() {
                None => {
                    i += 1;
                    continue;
                }
                Some(Ok(t)) => {
                    let mut buf = Vec::new();
                    let _ =
                        crate::report::lab::write_trace(crate::cli::LabFormat::Table, &t, &mut buf);
                    (format!("{label}: done"), Some(panel_trace(&buf)))
                }
                Some(Err(e)) => (format!("{label}: {e}"), None),
            },
            PendingOp::Scenario(p, label) => match p.try_take() {
                None => {
                    i += 1;
                    continue;
                }
                Some(Ok(r)) => (
                    format!("{label}: done. {}", crate::report::lab::scenario_next(&r)),
                    None,
                ),
                Some(Err(e)) => (format!("{label}: {e}"), None),
            },
        };
        pending.remove(i);
        done = true;
        if let Some(p) = app.lab.as_mut() {
            p.status = Some(status);
            if let Some(t) = trace {
                p.trace = t;
            }
        }
    }
    if let Some(p) = app.lab.as_mut() {
        p.busy = pending.len();
    }
    done
}

/// Turns one terminal event into state changes; returns what the loop must do.
pub fn handle_event(app: &mut App, ev: Event) -> Effect {
    match ev {
        Event::Key(k) if k.kind != KeyEventKind::Release => {
            if app.on_input_key(&k) {
                return Effect::None;
            }
            if !app.help {
                if let Some(effect) = app.on_lab_key(&k) {
                    return effect;
                }
            }
            match app.keymap.action(&k) {
                Some(a) => app.apply(a),
                None => Effect::None,
            }
        }
        Event::Mouse(m) => {
            let (tx, ty, tw, th) = app.hit.table;
            let in_table = m.column >= tx && m.column < tx + tw && m.row >= ty && m.row < ty + th;
            match m.kind {
                MouseEventKind::ScrollDown => {
                    for _ in 0..3 {
                        app.apply(Action::Down);
                    }
                }
                MouseEventKind::ScrollUp => {
                    for _ in 0..3 {
                        app.apply(Action::Up);
                    }
                }
                MouseEventKind::Down(MouseButton::Left) if in_table => {
                    app.click_table_line(usize::from(m.row - ty));
                }
                MouseEventKind::Down(MouseButton::Left) => {
                    let cell = app.hit.strip.iter().find(|(x, y, w, h, _)| {
                        m.column >= *x && m.column < x + w && m.row >= *y && m.row < y + h
                    });
                    if let Some(&(_, _, _, _, i)) = cell {
                        return app.apply(Action::QuickState(i));
                    }
                }
                _ => {}
            }
            Effect::None
        }
        _ => Effect::None,
    }
}
