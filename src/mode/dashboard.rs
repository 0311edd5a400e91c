//! The dashboard's runner: one tokio loop over terminal events, poll results from the live
//! loop, finished lab operations, a render tick and [`Shutdown`]. The terminal itself (raw
//! mode, the alternate screen, restoring it) and every widget are `tui`'s.

use std::io::{self, IsTerminal};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::sync::mpsc;

use super::Overrides;
use crate::collector::Collector;
use crate::config::Config;
use crate::lab::{CloseOptions, Lab, Pending, ScenarioReport, Trace};
use crate::live::{self, Control, Message};
use crate::model::Filter;
use crate::shutdown::Shutdown;
use crate::tui::app::{App, Effect};
use crate::tui::keys::Keymap;
use crate::tui::lab_panel::LabRequest;
use crate::tui::theme::Theme;
use crate::tui::{TerminalGuard, handle_event, install_panic_hook, spawn_event_reader};

/// Opens the dashboard and runs it until the user quits or a signal asks it to stop.
pub fn run(
    cfg: Config,
    over: Overrides,
    interval: Option<Duration>,
    filter: Option<&str>,
) -> Result<ExitCode> {
    if !io::stdout().is_terminal() || !io::stdin().is_terminal() {
        bail!(
            "the dashboard needs a terminal and stdin/stdout is not one; for scripts use `lingertop snapshot` (e.g. `lingertop snapshot --format json`)"
        );
    }
    let filter = filter
        .map(|expr| Filter::parse(expr).map_err(|e| anyhow::anyhow!("bad --filter: {e}")))
        .transpose()?;
    let cfg = Overrides {
        interval,
        filter,
        ..over
    }
    .over(cfg);
    // Said before the dashboard takes the screen, so it stays readable after.
    let collector = super::open_collector(cfg.backend, false)?;
    super::runtime()?.block_on(run_async(&cfg, collector))?;
    Ok(ExitCode::SUCCESS)
}

async fn run_async(cfg: &Config, collector: Collector) -> Result<()> {
    let filter = cfg.default_filter.clone();
    let mut app = App::new(Keymap::new(&cfg.keys), cfg.interval, cfg.history, filter);
    let theme = Theme::new(&cfg.theme, Theme::no_color_env());

    let (poll_tx, mut poll_rx) = mpsc::channel(4);
    let poller = live::spawn(
        collector,
        cfg,
        super::live_scope(Filter::default()),
        poll_tx,
    )
    .context("cannot start the poll thread")?;
    let mut shutdown = Shutdown::install().context("cannot install signal handlers")?;

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
    // For the end-to-end test that a panic restores the terminal; not in a release build.
    #[cfg(feature = "test-support")]
    let test_panic = std::env::var_os("LINGERTOP_TEST_PANIC").is_some();

    let outcome: Result<()> = async {
        loop {
            let hit = guard.draw(&app, &theme)?;
            app.after_draw(hit);
            #[cfg(feature = "test-support")]
            if test_panic {
                panic!("LINGERTOP_TEST_PANIC is set: panicking on purpose after the first frame");
            }

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
                _ = shutdown.requested() => return Ok(()),
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
                Some(Ok(t)) => (format!("{label}: done"), Some(t)),
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
                p.trace = Some(t);
            }
        }
    }
    if let Some(p) = app.lab.as_mut() {
        p.busy = pending.len();
    }
    done
}
