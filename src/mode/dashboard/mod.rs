//! The dashboard's runner: one tokio loop ([`run_loop`]) over terminal events, poll results
//! from the live loop, finished lab operations, a render tick and [`Shutdown`]. The loop is
//! generic over ratatui's backend and takes everything outside the dashboard as one value
//! ([`Io`]), so its effects are tested on a `TestBackend` (`tests.rs`); [`run`] wires it to
//! the real terminal. The terminal itself (raw mode, the alternate screen, restoring it)
//! and every widget are `tui`'s.

mod closes;
mod history;
mod lab;
mod replay;

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use crossterm::event::Event;
use ratatui::Terminal;
use ratatui::backend::Backend;
use tokio::sync::mpsc;

use lab::LabSession;

use super::settings::Dashboard;
use crate::collector::Collector;
use crate::config::Config;
use crate::live::{self, Control, Message};
use crate::model::Filter;
use crate::resolve::{Known, Resolver};
use crate::shutdown::Shutdown;
use crate::tui::app::{App, CloseKeys, Effect, RemoteNames};
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
    super::runtime()?.block_on(run_async(&cfg, collector, settings))?;
    Ok(ExitCode::SUCCESS)
}

/// Opens the dashboard over the recording at `path`, its cursor at `at` (the first poll
/// without it), and runs it until the user quits or a signal asks it to stop.
pub fn run_replay(
    cfg: Config,
    path: &std::path::Path,
    at: Option<std::time::SystemTime>,
) -> Result<ExitCode> {
    if std::env::var_os("TERM").is_some_and(|t| t == "dumb")
        || !io::stdout().is_terminal()
        || !io::stdin().is_terminal()
    {
        bail!(
            "replay needs a full-screen terminal; for scripts read the recording with `lingertop snapshot --from PATH --at TIME` or sqlite3"
        );
    }
    super::runtime()?.block_on(async {
        let (poll_tx, poll_rx) = mpsc::channel(2);
        // Opened before the terminal is taken, so a refusal is readable.
        let replay = replay::Replay::open(path, at, poll_tx)?;
        let mut app = new_app(&cfg);
        let mut parts = Parts {
            theme: Theme::new(&cfg.theme, Theme::no_color_env()),
            labs: LabSession::default(),
            closes: None,
            resolver: None,
            history: None,
        };
        let signals = Shutdown::install().context("cannot install signal handlers")?;
        // Nothing to control: the recording is read at the cursor.
        in_terminal(
            &mut app,
            &mut parts,
            poll_rx,
            &|_| {},
            signals,
            Some(replay),
        )
        .await
    })?;
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

async fn run_async(cfg: &Config, collector: Collector, settings: Dashboard) -> Result<()> {
    let events = settings.events;
    let mut app = new_app(cfg);
    app.command_of = Some(crate::collector::command_of);
    app.close_keys = CloseKeys {
        allowed: settings.allow_close,
        replay: false,
        rails: settings.rails,
        sigpipe_of: sigpipe_of(),
    };
    let history = history::path();
    if let Some(p) = &history {
        app.filter_history = history::load(p);
    }
    let resolver = start_names(&mut app, cfg);
    // Before the terminal is taken, so `--events on` without privilege fails readably.
    let closes = closes::PanelFeed::start(events, &cfg.netns, &mut app, cfg.interval, &cfg.rules)?;
    let event_owners = closes.owners();
    let mut parts = Parts {
        theme: Theme::new(&cfg.theme, Theme::no_color_env()),
        // The lab starts the first time its panel opens; dropped (every socket closed,
        // every thread joined) when the dashboard ends.
        labs: LabSession::default(),
        closes: Some(closes),
        resolver,
        history,
    };

    let (poll_tx, poll_rx) = mpsc::channel(4);
    let poller = live::spawn(
        collector,
        cfg,
        super::live_scope(Filter::default(), event_owners),
        poll_tx,
    )
    .context("cannot start the poll thread")?;
    let signals = Shutdown::install().context("cannot install signal handlers")?;

    let outcome = in_terminal(
        &mut app,
        &mut parts,
        poll_rx,
        &|c| poller.send(c),
        signals,
        None,
    )
    .await;
    // Close every lab socket and stop its threads before leaving.
    drop(parts);
    drop(poller);
    outcome
}

/// Runs the loop in the real terminal, taken for the time of the call and given back on
/// every path out (a panic included), with the polls and their control.
async fn in_terminal(
    app: &mut App,
    parts: &mut Parts,
    polls: mpsc::Receiver<Message>,
    control: &dyn Fn(Control),
    signals: Shutdown,
    replay: Option<replay::Replay>,
) -> Result<()> {
    install_panic_hook();
    let mut guard = TerminalGuard::enter()?;
    let stop = Arc::new(AtomicBool::new(false));
    let (ev_tx, ev_rx) = mpsc::channel(64);
    let reader =
        spawn_event_reader(ev_tx, stop.clone()).context("cannot start the input thread")?;
    let mut stdout = io::stdout();
    let outcome = run_loop(
        app,
        parts,
        Io {
            terminal: guard.terminal(),
            events: ev_rx,
            polls,
            control,
            clipboard: &mut stdout,
            in_tmux: std::env::var_os("TMUX").is_some_and(|t| !t.is_empty()),
            signals: Some(signals),
            replay,
        },
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    drop(guard);
    // The input thread is not joined: on a terminal that hung up, crossterm can keep
    // re-reading an EOF inside one call and never come back to see `stop`. It holds
    // nothing that needs cleaning up, and it ends with the process.
    drop(reader);
    outcome
}

/// Whether a process ignores SIGPIPE, from `/proc/PID/status` (Linux only).
fn sigpipe_of() -> Option<fn(u32) -> Option<bool>> {
    #[cfg(target_os = "linux")]
    return Some(crate::collector::close::ignores_sigpipe);
    #[cfg(not(target_os = "linux"))]
    None
}

/// The app as the config starts it: its keys, interval, history, filter and rules.
fn new_app(cfg: &Config) -> App {
    let mut app = App::new(
        Keymap::new(&cfg.keys),
        cfg.interval,
        cfg.history,
        cfg.default_filter.clone(),
    );
    app.set_rules(&cfg.rules);
    app
}

/// Everything outside the dashboard that its loop reads and writes, as one value
/// (bandwhich's `OsInputOutput`): the same loop runs on the real terminal and, in tests, on
/// ratatui's `TestBackend` with channels the test holds; fed by the live loop today, it
/// can be fed by a recording.
pub(crate) struct Io<'a, B: Backend> {
    /// Where the frames are drawn.
    pub terminal: &'a mut Terminal<B>,
    /// The terminal's events: keys, the mouse, resizes. Closed: the loop ends.
    pub events: mpsc::Receiver<Event>,
    /// The polls to show: the live loop's messages. Closed: the loop ends with an error.
    pub polls: mpsc::Receiver<Message>,
    /// The control channel back to whatever sends the polls (a new interval, a poll now).
    pub control: &'a dyn Fn(Control),
    /// Where a copied row goes as OSC 52: the terminal's own output.
    pub clipboard: &'a mut dyn Write,
    /// Whether the dashboard runs inside tmux: OSC 52 also goes through its passthrough.
    pub in_tmux: bool,
    /// The signals that end the dashboard (INT, TERM, HUP); none in tests.
    pub signals: Option<Shutdown>,
    /// A replay: the recording that sends the polls, which takes its cursor keys first;
    /// none live.
    pub replay: Option<replay::Replay>,
}

/// The dashboard's own parts its loop drives beside the app.
pub(crate) struct Parts {
    pub theme: Theme,
    /// The close lab behind the lab panel.
    pub labs: LabSession,
    /// The closes panel's feed; none leaves the panel empty.
    pub closes: Option<closes::PanelFeed>,
    /// Reverse DNS of the rows' remote ends, where there is a resolver.
    pub resolver: Option<Resolver>,
    /// Where the filter history is kept; none keeps it in memory.
    pub history: Option<PathBuf>,
}

/// The dashboard's loop: a frame, then whichever comes first of a terminal event (turned
/// into an [`Effect`] the loop carries out), a poll, the lab's tick while an operation runs,
/// the closes panel's tick, a name resolved, or a signal. Returns when the user quits, the
/// events end or a signal comes.
pub(crate) async fn run_loop<B: Backend>(
    app: &mut App,
    parts: &mut Parts,
    mut io: Io<'_, B>,
) -> Result<()>
where
    B::Error: Send + Sync + 'static,
{
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut lab_tick = tokio::time::interval(Duration::from_millis(100));
    let mut play_tick = tokio::time::interval(Duration::from_millis(100));
    // For the end-to-end test that a panic restores the terminal; not in a release build.
    #[cfg(feature = "test-support")]
    let test_panic = std::env::var_os("LINGERTOP_TEST_PANIC").is_some();
    loop {
        // Names the resolver has for the rows on screen; the others are asked for and
        // wake the loop when they come. The frame shows addresses meanwhile.
        if let Some(r) = &parts.resolver {
            for ip in app.wanted_names() {
                if let Known::Name(name) = r.want(ip) {
                    app.names.insert(ip, name);
                }
            }
        }
        app.replay = io.replay.as_ref().map(replay::Replay::header);
        app.close_keys.replay = io.replay.is_some();
        let hit = crate::tui::draw(io.terminal, app, &parts.theme)?;
        app.after_draw(hit);
        #[cfg(feature = "test-support")]
        if test_panic {
            panic!("LINGERTOP_TEST_PANIC is set: panicking on purpose after the first frame");
        }

        tokio::select! {
            ev = io.events.recv() => {
                let Some(ev) = ev else { return Ok(()) };
                // The time cursor's keys, unless the filter prompt is taking the keys.
                if let Some(r) = io.replay.as_mut() {
                    if app.input.is_none() && r.on_event(&ev) {
                        continue;
                    }
                }
                let effect = handle_event(app, ev);
                history::save_if_changed(parts.history.as_deref(), app);
                match effect {
                    Effect::Quit => return Ok(()),
                    Effect::SetInterval(d) => (io.control)(Control::SetInterval(d)),
                    // A replay shows what was: nothing it does may open or close a socket.
                    Effect::OpenLab | Effect::Lab(_) if io.replay.is_some() => {
                        app.notice = Some("the lab is off in a replay".into());
                    }
                    Effect::OpenLab => parts.labs.open(app),
                    Effect::Lab(req) => {
                        if parts.labs.request(app, req) {
                            // Show the new sockets without waiting for the next poll.
                            (io.control)(Control::PollNow);
                        }
                    }
                    Effect::Copy(text) => copy_to(io.clipboard, io.in_tmux, app, &text),
                    Effect::Close(_) if io.replay.is_some() => {
                        app.notice = Some("closing is off in a replay".into());
                    }
                    Effect::Close(req) => (io.control)(Control::Close(req)),
                    Effect::None => {}
                }
            }
            msg = io.polls.recv() => match msg {
                Some(Message::Update(u)) => {
                    app.on_update(u);
                    parts.labs.refresh(app);
                }
                Some(Message::PollFailed(e)) => app.on_poll_failed(e),
                Some(Message::Closed(done)) => app.on_closed(done),
                None => anyhow::bail!("the poll thread stopped"),
            },
            _ = lab_tick.tick(), if parts.labs.busy() => {
                if parts.labs.collect(app) {
                    (io.control)(Control::PollNow);
                }
            }
            _ = tick.tick() => {
                if let Some(closes) = parts.closes.as_mut() {
                    closes.refresh(app);
                }
            }
            _ = play_tick.tick(), if io.replay.as_ref().is_some_and(replay::Replay::playing) => {
                if let Some(r) = io.replay.as_mut() {
                    r.tick();
                }
            }
            _ = names_changed(parts.resolver.as_ref()) => {}
            _ = signalled(io.signals.as_mut()) => return Ok(()),
        }
    }
}

/// Wakes when a signal asks the dashboard to stop; never without signals.
async fn signalled(signals: Option<&mut Shutdown>) {
    match signals {
        Some(s) => {
            s.requested().await;
        }
        None => std::future::pending().await,
    }
}

/// Writes `text` to the terminal's output `out` as OSC 52 (through tmux's passthrough too
/// `in_tmux`), between two frames: the sequence prints nothing and moves no cursor. A
/// failed write replaces the footer's "copied" with why.
fn copy_to(out: &mut dyn Write, in_tmux: bool, app: &mut App, text: &str) {
    let written = out
        .write_all(crate::tui::copy::osc52(text, in_tmux).as_bytes())
        .and_then(|()| out.flush());
    if let Err(e) = written {
        app.notice = Some(format!(
            "nothing copied: cannot write to the terminal ({e})"
        ));
    }
}

#[cfg(test)]
mod tests;
