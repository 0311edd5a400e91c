//! The dashboard's runner: one tokio loop over terminal events, poll results from the live
//! loop, finished lab operations, a render tick and [`Shutdown`]. The terminal itself (raw
//! mode, the alternate screen, restoring it) and every widget are `tui`'s.

mod closes;
mod history;
mod lab;

use std::io::{self, IsTerminal};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::sync::mpsc;

use lab::LabSession;

use super::settings::Dashboard;
use crate::collector::Collector;
use crate::config::Config;
use crate::events::EventsMode;
use crate::live::{self, Control, Message};
use crate::model::Filter;
use crate::resolve::{Known, Resolver};
use crate::shutdown::Shutdown;
use crate::tui::app::{App, Effect, RemoteNames};
use crate::tui::keys::Keymap;
use crate::tui::theme::Theme;
use crate::tui::{TerminalGuard, handle_event, install_panic_hook, spawn_event_reader};

/// Opens the dashboard and runs it until the user quits or a signal asks it to stop.
pub fn run(cfg: Config, settings: Dashboard) -> Result<ExitCode> {
    // A dumb terminal (an editor's shell buffer, some CI consoles) cannot position the
    // cursor: the full-screen dashboard would be a stream of escape codes.
    if std::env::var_os("TERM").is_some_and(|t| t == "dumb") {
        bail!(
            "the dashboard needs a full-screen terminal and TERM=dumb cannot draw one; use `lingertop snapshot` for one table or `lingertop watch` for a line per poll"
        );
    }
    if !io::stdout().is_terminal() || !io::stdin().is_terminal() {
        bail!(
            "the dashboard needs a terminal and stdin/stdout is not one; for scripts use `lingertop snapshot` (e.g. `lingertop snapshot --format json`)"
        );
    }
    // Said before the dashboard takes the screen, so it stays readable after.
    let collector = super::open_collector(cfg.backend, &cfg.netns, false)?;
    super::runtime()?.block_on(run_async(&cfg, collector, settings.events))?;
    Ok(ExitCode::SUCCESS)
}

/// The dashboard's resolver, with names shown from the start when the config says so.
/// Without one (no /etc/resolv.conf), the `names` key says why.
fn start_names(app: &mut App, cfg: &Config) -> Option<Resolver> {
    app.names = RemoteNames::new(cfg.resolve.dashboard);
    match Resolver::system(cfg.resolve.timeout) {
        Ok(r) => Some(r),
        Err(why) => {
            if app.names.on {
                app.status = Some(why.clone());
            }
            app.names.unavailable = Some(why);
            None
        }
    }
}

/// Wakes when the resolver has a new answer; never without a resolver.
async fn names_changed(resolver: Option<&Resolver>) {
    match resolver {
        Some(r) => r.changed().await,
        None => std::future::pending().await,
    }
}

async fn run_async(cfg: &Config, collector: Collector, events: EventsMode) -> Result<()> {
    let filter = cfg.default_filter.clone();
    let mut app = App::new(Keymap::new(&cfg.keys), cfg.interval, cfg.history, filter);
    app.set_rules(&cfg.rules);
    app.command_of = Some(crate::collector::command_of);
    let history_path = history::path();
    if let Some(p) = &history_path {
        app.filter_history = history::load(p);
    }
    let resolver = start_names(&mut app, cfg);
    let theme = Theme::new(&cfg.theme, Theme::no_color_env());
    // Before the terminal is taken, so `--events on` without privilege fails readably.
    let mut closes =
        closes::PanelFeed::start(events, &cfg.netns, &mut app, cfg.interval, &cfg.rules)?;

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
    // The lab starts the first time its panel opens; dropped (every socket closed, every
    // thread joined) when the dashboard ends.
    let mut labs = LabSession::default();
    let mut lab_tick = tokio::time::interval(Duration::from_millis(100));
    // For the end-to-end test that a panic restores the terminal; not in a release build.
    #[cfg(feature = "test-support")]
    let test_panic = std::env::var_os("LINGERTOP_TEST_PANIC").is_some();

    let outcome: Result<()> = async {
        loop {
            // Names the resolver has for the rows on screen; the others are asked for and
            // wake the loop when they come. The frame shows addresses meanwhile.
            if let Some(r) = &resolver {
                for ip in app.wanted_names() {
                    if let Known::Name(name) = r.want(ip) {
                        app.names.insert(ip, name);
                    }
                }
            }
            let hit = guard.draw(&app, &theme)?;
            app.after_draw(hit);
            #[cfg(feature = "test-support")]
            if test_panic {
                panic!("LINGERTOP_TEST_PANIC is set: panicking on purpose after the first frame");
            }

            tokio::select! {
                ev = ev_rx.recv() => {
                    let Some(ev) = ev else { return Ok(()) };
                    let effect = handle_event(&mut app, ev);
                    history::save_if_changed(history_path.as_deref(), &mut app);
                    match effect {
                        Effect::Quit => return Ok(()),
                        Effect::SetInterval(d) => poller.send(Control::SetInterval(d)),
                        Effect::OpenLab => labs.open(&mut app),
                        Effect::Lab(req) => {
                            if labs.request(&mut app, req) {
                                // Show the new sockets without waiting for the next poll.
                                poller.send(Control::PollNow);
                            }
                        }
                        Effect::Copy(text) => copy_to_terminal(&mut app, &text),
                        Effect::None => {}
                    }
                }
                msg = poll_rx.recv() => match msg {
                    Some(Message::Update(u)) => {
                        app.on_update(u);
                        labs.refresh(&mut app);
                    }
                    Some(Message::PollFailed(e)) => app.on_poll_failed(e),
                    None => anyhow::bail!("the poll thread stopped"),
                },
                _ = lab_tick.tick(), if labs.busy() => {
                    if labs.collect(&mut app) {
                        poller.send(Control::PollNow);
                    }
                }
                _ = tick.tick() => closes.refresh(&mut app),
                _ = names_changed(resolver.as_ref()) => {}
                _ = shutdown.requested() => return Ok(()),
            }
        }
    }
    .await;

    stop.store(true, Ordering::Relaxed);
    drop(guard);
    // Close every lab socket and stop its threads before leaving.
    drop(labs);
    drop(ev_rx);
    // The input thread is not joined: on a terminal that hung up, crossterm can keep
    // re-reading an EOF inside one call and never come back to see `stop`. It holds
    // nothing that needs cleaning up, and it ends with the process.
    drop(reader);
    drop(poll_rx);
    drop(poller);
    outcome
}

/// Writes `text` to the terminal as OSC 52 (through tmux's passthrough too inside tmux),
/// between two frames: the sequence prints nothing and moves no cursor. A failed write
/// replaces the footer's "copied" with why.
fn copy_to_terminal(app: &mut App, text: &str) {
    use std::io::Write;
    let in_tmux = std::env::var_os("TMUX").is_some_and(|t| !t.is_empty());
    let mut out = io::stdout().lock();
    let written = out
        .write_all(crate::tui::copy::osc52(text, in_tmux).as_bytes())
        .and_then(|()| out.flush());
    if let Err(e) = written {
        app.notice = Some(format!(
            "nothing copied: cannot write to the terminal ({e})"
        ));
    }
}
