//! The dashboard's terminal side: app state, widgets, keys, and the terminal itself (raw
//! mode and the alternate screen, restored on every exit path: normal quit, error, a
//! signal, and panic, whose message is printed after). The loop that drives it (terminal
//! events, poll results, the lab, signals) is `mode::dashboard`.

pub mod app;
mod cells;
pub mod copy;
#[cfg(any(test, feature = "test-support"))]
#[doc(hidden)]
pub mod fixture;
pub mod keys;
pub mod lab_panel;
pub mod rows;
pub mod theme;
pub mod ui;

#[cfg(test)]
mod alerts_tests;
#[cfg(test)]
mod closes_tests;
#[cfg(test)]
mod copy_tests;
#[cfg(test)]
mod filter_tests;
#[cfg(test)]
mod lab_tests;
#[cfg(test)]
mod names_tests;
#[cfg(test)]
mod netns_tests;
#[cfg(test)]
mod sort_tests;
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
use ratatui::backend::{Backend, CrosstermBackend};
use tokio::sync::mpsc;

use app::{App, Effect, HitAreas};
use keys::Action;
use theme::Theme;

/// Whether the dashboard holds the alternate screen (so restoring must clear it once).
static ON_ALTERNATE_SCREEN: AtomicBool = AtomicBool::new(false);

/// Puts the terminal back as it was. Safe to call more than once.
///
/// The alternate screen is cleared, with the cursor at its top, before it is left: tmux,
/// when the window was resized while the dashboard ran, fits the alternate screen back to
/// the size the shell's screen was saved at before restoring it, and the lines above the
/// cursor (ratatui leaves it on the last row) went into the shell's history, to reappear
/// above the prompt as a "frame drawn after restore". Empty, nothing shows. Only once: a
/// second call (the panic hook, then the guard's drop) must not clear the shell's screen.
fn restore_terminal() {
    let _ = disable_raw_mode();
    if ON_ALTERNATE_SCREEN.swap(false, Ordering::SeqCst) {
        let _ = execute!(
            io::stdout(),
            crossterm::cursor::MoveTo(0, 0),
            crossterm::terminal::Clear(crossterm::terminal::ClearType::All),
        );
    }
    let _ = execute!(
        io::stdout(),
        DisableMouseCapture,
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
}

/// Holds the terminal in dashboard mode; dropping it restores the terminal.
pub struct TerminalGuard {
    terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl TerminalGuard {
    /// Switches the terminal to raw mode on the alternate screen with mouse capture.
    pub fn enter() -> Result<Self> {
        enable_raw_mode().context("cannot switch the terminal to raw mode")?;
        // From here on, any failure must restore what was changed.
        let guard = (|| -> Result<Terminal<CrosstermBackend<Stdout>>> {
            execute!(io::stdout(), EnterAlternateScreen, EnableMouseCapture)?;
            ON_ALTERNATE_SCREEN.store(true, Ordering::SeqCst);
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

impl TerminalGuard {
    /// The terminal the dashboard draws on while the guard holds it.
    pub fn terminal(&mut self) -> &mut Terminal<CrosstermBackend<Stdout>> {
        &mut self.terminal
    }
}

/// Draws one frame of `app` on `terminal`, whatever its backend (the real terminal, or
/// ratatui's `TestBackend` in tests); returns where the clickable areas landed.
pub fn draw<B: Backend>(terminal: &mut Terminal<B>, app: &App, theme: &Theme) -> Result<HitAreas>
where
    B::Error: Send + Sync + 'static,
{
    let mut hit = HitAreas::default();
    terminal
        .draw(|f| hit = ui::render(f, app, theme))
        .context("cannot draw to the terminal")?;
    Ok(hit)
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// Restores the terminal before the default panic message is printed.
pub fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        previous(info);
        crate::stderr::say!(
            "lingertop: the dashboard crashed (message above); the terminal was restored. `lingertop snapshot` still works meanwhile."
        );
    }));
}

/// Reads terminal events on a thread of its own (crossterm's reads block) until stopped.
pub fn spawn_event_reader(
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

/// Turns one terminal event into state changes; returns what the loop must do.
pub fn handle_event(app: &mut App, ev: Event) -> Effect {
    match ev {
        Event::Key(k) if k.kind != KeyEventKind::Release => {
            if let Some(effect) = app.on_confirm_key(&k) {
                return effect;
            }
            if app.on_input_key(&k) {
                return Effect::None;
            }
            if let Some(effect) = app.on_alerts_key(&k) {
                return effect;
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
            let (lx, ly, lw, lh) = app.hit.lab_trace;
            let in_trace = m.column >= lx && m.column < lx + lw && m.row >= ly && m.row < ly + lh;
            if let (Some(p), true) = (app.lab.as_mut(), in_trace) {
                match m.kind {
                    MouseEventKind::ScrollDown => p.wheel(true),
                    MouseEventKind::ScrollUp => p.wheel(false),
                    _ => {}
                }
                return Effect::None;
            }
            if app.alerts_list.open {
                // The wheel moves through the alerts list while it has the screen.
                let sel = app.alerts_list.selected;
                match m.kind {
                    MouseEventKind::ScrollDown => app.open_alert(sel + 1),
                    MouseEventKind::ScrollUp => app.open_alert(sel.saturating_sub(1)),
                    _ => {}
                }
                return Effect::None;
            }
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
                MouseEventKind::Down(MouseButton::Left)
                    if app.header_at(m.column, m.row).is_some() =>
                {
                    if let Some(col) = app.header_at(m.column, m.row) {
                        app.click_header(col);
                    }
                }
                MouseEventKind::Down(MouseButton::Left) if in_table => {
                    app.click_table_line(usize::from(m.row - ty));
                }
                MouseEventKind::Down(MouseButton::Left) if !app.alerts_list.open => {
                    let (ax, ay, aw, ah) = app.hit.alerts_box;
                    if m.column >= ax && m.column < ax + aw && m.row >= ay && m.row < ay + ah {
                        app.open_alert(usize::from(m.row - ay));
                        return Effect::None;
                    }
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
