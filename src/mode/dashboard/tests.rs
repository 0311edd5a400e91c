//! The dashboard's loop on ratatui's `TestBackend`, fed through channels the test holds:
//! what keys make the loop do (a new interval sent back to the poll loop, the row copied as
//! OSC 52 to the clipboard writer, the lab's operations and its tick), pause, and polls,
//! checked on the frames the loop draws (insta snapshots where the frame is fixed: the
//! fixture polls have fixed times, addresses and pids). No terminal and no tmux: the tmux
//! tests keep the proof that the real terminal works end to end.

use std::cell::RefCell;
use std::future::Future;
use std::io::{self, Write};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::{Backend, ClearType, TestBackend, WindowSize};
use ratatui::buffer::Cell;
use ratatui::layout::{Position, Size};
use tokio::sync::{mpsc, watch};

use super::*;
use crate::live::Update;
use crate::tui::fixture::two_polls;
use crate::tui::theme::ThemeColors;

/// How long a test waits for a frame that must come; only a broken loop reaches it (the
/// lab's close on loopback settles in milliseconds).
const DEADLINE: Duration = Duration::from_secs(20);

/// ratatui's `TestBackend`, publishing each frame it is handed, so a test can wait for the
/// frame an event leads to while the loop holds the terminal.
struct Published {
    inner: TestBackend,
    frames: watch::Sender<String>,
}

impl Backend for Published {
    type Error = <TestBackend as Backend>::Error;

    fn draw<'a, I>(&mut self, content: I) -> Result<(), Self::Error>
    where
        I: Iterator<Item = (u16, u16, &'a Cell)>,
    {
        self.inner.draw(content)
    }
    fn hide_cursor(&mut self) -> Result<(), Self::Error> {
        self.inner.hide_cursor()
    }
    fn show_cursor(&mut self) -> Result<(), Self::Error> {
        self.inner.show_cursor()
    }
    fn get_cursor_position(&mut self) -> Result<Position, Self::Error> {
        self.inner.get_cursor_position()
    }
    fn set_cursor_position<P: Into<Position>>(&mut self, position: P) -> Result<(), Self::Error> {
        self.inner.set_cursor_position(position)
    }
    fn clear(&mut self) -> Result<(), Self::Error> {
        self.inner.clear()
    }
    fn clear_region(&mut self, clear_type: ClearType) -> Result<(), Self::Error> {
        self.inner.clear_region(clear_type)
    }
    fn size(&self) -> Result<Size, Self::Error> {
        self.inner.size()
    }
    fn window_size(&mut self) -> Result<WindowSize, Self::Error> {
        self.inner.window_size()
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        self.inner.flush()?;
        self.frames.send_replace(self.inner.to_string());
        Ok(())
    }
}

/// The outside of a dashboard loop as a test holds it: the keys it sends, the polls it
/// feeds, the frames the loop drew.
struct Screen {
    keys: mpsc::Sender<Event>,
    polls: mpsc::Sender<Message>,
    frames: watch::Receiver<String>,
}

impl Screen {
    async fn key(&self, code: KeyCode) {
        let key = Event::Key(KeyEvent::new(code, KeyModifiers::NONE));
        self.keys.send(key).await.expect("the loop reads keys");
    }

    /// Quits with `q` and waits until the loop has ended (its end of the keys is dropped):
    /// the polls stay open until then, as the live loop's do (their end is an error).
    async fn quit(self) {
        self.key(KeyCode::Char('q')).await;
        self.keys.closed().await;
    }

    async fn poll(&self, update: Arc<Update>) {
        let msg = Message::Update(update);
        self.polls.send(msg).await.expect("the loop reads polls");
    }

    /// The first frame, the current one included, in which `holds`; fails at [`DEADLINE`]
    /// with the last frame drawn.
    async fn until(&mut self, what: &str, holds: impl Fn(&str) -> bool) -> String {
        let frames = &mut self.frames;
        let wait = async {
            loop {
                {
                    let frame = frames.borrow_and_update();
                    if holds(&frame) {
                        return frame.clone();
                    }
                }
                if frames.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        match tokio::time::timeout(DEADLINE, wait).await {
            Ok(frame) => frame,
            Err(_) => panic!(
                "no frame with {what} within {DEADLINE:?}; the last one:\n{}",
                *self.frames.borrow()
            ),
        }
    }
}

/// What the loop sent back to the poll loop.
type Sent = Rc<RefCell<Vec<Control>>>;

/// Runs the dashboard loop over `app` on a `w`x`h` `TestBackend`, beside `script`, which
/// drives it through a [`Screen`] and ends it (`q`, or by dropping the screen); returns
/// what the loop returned and every control message it sent back.
fn run_dashboard<F, Fut>(
    app: &mut App,
    (w, h): (u16, u16),
    in_tmux: bool,
    clipboard: &mut dyn Write,
    script: F,
) -> (Result<()>, Vec<Control>)
where
    F: FnOnce(Screen, Sent) -> Fut,
    Fut: Future<Output = ()>,
{
    let (frames_tx, frames) = watch::channel(String::new());
    let mut terminal = Terminal::new(Published {
        inner: TestBackend::new(w, h),
        frames: frames_tx,
    })
    .expect("a test terminal");
    let (keys, events) = mpsc::channel(16);
    let (polls, poll_rx) = mpsc::channel(4);
    let sent = Sent::default();
    let log = Rc::clone(&sent);
    let control = move |c| log.borrow_mut().push(c);
    let mut parts = Parts {
        theme: Theme::new(&ThemeColors::default(), false),
        labs: LabSession::default(),
        closes: None,
        resolver: None,
        history: None,
    };
    let io = Io {
        terminal: &mut terminal,
        events,
        polls: poll_rx,
        control: &control,
        clipboard,
        in_tmux,
        signals: None,
        replay: None,
    };
    let script = script(
        Screen {
            keys,
            polls,
            frames,
        },
        Rc::clone(&sent),
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let (outcome, ()) =
        runtime.block_on(async { tokio::join!(run_loop(app, &mut parts, io), script) });
    // Every lab socket closed and every lab thread joined, as when the dashboard ends.
    drop(parts);
    let sent = sent.borrow().clone();
    (outcome, sent)
}

fn new_app() -> App {
    App::new(
        Keymap::default(),
        Duration::from_secs(2),
        300,
        Filter::default(),
    )
}

#[test]
fn faster_and_slower_send_the_new_interval_back_to_the_poll_loop() {
    let mut app = new_app();
    let (_, b) = two_polls(false);
    let (outcome, sent) = run_dashboard(
        &mut app,
        (80, 24),
        false,
        &mut io::sink(),
        |mut s, sent| async move {
            s.poll(b).await;
            s.until("the poll every 2s", |f| f.contains("every 2 s"))
                .await;
            s.key(KeyCode::Char('+')).await;
            s.until("every 1 s", |f| f.contains("every 1 s")).await;
            assert_eq!(
                *sent.borrow(),
                [Control::SetInterval(Duration::from_secs(1))]
            );
            s.key(KeyCode::Char('-')).await;
            s.key(KeyCode::Char('-')).await;
            let frame = s.until("every 5 s", |f| f.contains("every 5 s")).await;
            insta::assert_snapshot!("interval_slower_80x24", frame);
            s.quit().await;
        },
    );
    outcome.expect("the loop ends on q");
    assert_eq!(
        sent,
        [1, 2, 5].map(|s| Control::SetInterval(Duration::from_secs(s)))
    );
    assert_eq!(app.interval, Duration::from_secs(5));
}

#[test]
fn pause_freezes_the_table_counts_what_arrives_and_shows_it_on_resume() {
    let mut app = new_app();
    let (a, b) = two_polls(false);
    // Connections only the second poll has.
    let only_in_b = ["10.0.0.44:41999", "10.0.0.9:40001"];
    let (outcome, sent) = run_dashboard(
        &mut app,
        (120, 40),
        false,
        &mut io::sink(),
        |mut s, _| async move {
            s.poll(a).await;
            s.until("the first poll", |f| f.contains("LIVE")).await;
            s.key(KeyCode::Char(' ')).await;
            s.until("paused", |f| f.contains("PAUSED: 0 polls")).await;
            s.poll(b).await;
            let frame = s
                .until("a poll counted", |f| f.contains("PAUSED: 1 polls"))
                .await;
            for conn in only_in_b {
                assert!(!frame.contains(conn), "paused, yet {conn} shows:\n{frame}");
            }
            insta::assert_snapshot!("paused_with_a_poll_waiting_120x40", frame);
            s.key(KeyCode::Char(' ')).await;
            let frame = s.until("live again", |f| f.contains("LIVE")).await;
            for conn in only_in_b {
                assert!(frame.contains(conn), "resumed, yet no {conn}:\n{frame}");
            }
            s.quit().await;
        },
    );
    outcome.expect("the loop ends on q");
    assert!(sent.is_empty(), "pause is the dashboard's own: {sent:?}");
    assert!(!app.paused);
}

#[test]
fn the_lab_tick_collects_a_finished_close_and_asks_for_a_poll() {
    let mut app = new_app();
    let (_, b) = two_polls(false);
    let (outcome, sent) = run_dashboard(
        &mut app,
        (120, 40),
        false,
        &mut io::sink(),
        |mut s, sent| async move {
            s.poll(b).await;
            s.key(KeyCode::Char('L')).await;
            s.until("the lab listening", |f| f.contains("listening 127.0.0.1:"))
                .await;
            assert!(sent.borrow().is_empty(), "opening the panel polls nothing");
            // Five normal connections (`c` steps the count from 1), then abort the last.
            s.key(KeyCode::Char('c')).await;
            s.key(KeyCode::Char('o')).await;
            s.until("the connections open", |f| {
                f.contains("opened 5 normal connections")
            })
            .await;
            assert_eq!(
                *sent.borrow(),
                [Control::PollNow],
                "new sockets: a poll now"
            );
            s.key(KeyCode::Char('a')).await;
            // Only the lab's tick takes the finished close in: no key, no poll arrives.
            let frame = s
                .until("the trace", |f| f.contains("abort on #5 client: done"))
                .await;
            assert!(frame.contains("peer read     econnreset"), "{frame}");
            assert!(frame.contains("TIME_WAIT     none"), "{frame}");
            s.quit().await;
        },
    );
    outcome.expect("the loop ends on q");
    // The open, the close's request, and the tick that collected the close.
    assert_eq!(sent, [const { Control::PollNow }; 3]);
    let panel = app.lab.as_ref().expect("the lab panel is open");
    assert_eq!(panel.busy, 0, "nothing left running");
}

/// The row `y` copies, read back from the OSC 52 written to the clipboard writer.
fn copied(clipboard: &[u8]) -> String {
    let text = String::from_utf8(clipboard.to_vec()).expect("OSC 52 is ASCII");
    let b64 = text
        .strip_prefix("\x1b]52;c;")
        .and_then(|r| r.split('\x07').next())
        .unwrap_or_else(|| panic!("not OSC 52: {text:?}"));
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("base64");
    String::from_utf8(bytes).expect("the row is text")
}

#[test]
fn y_writes_the_selected_row_to_the_clipboard_writer_as_osc52() {
    for in_tmux in [false, true] {
        let mut app = new_app();
        let (_, b) = two_polls(false);
        let mut clipboard = Vec::new();
        let (outcome, sent) = run_dashboard(
            &mut app,
            (80, 24),
            in_tmux,
            &mut clipboard,
            |mut s, _| async move {
                s.poll(b).await;
                s.until("the poll", |f| f.contains("LIVE")).await;
                s.key(KeyCode::Char('y')).await;
                s.until("the confirmation", |f| f.contains("copied 1 row"))
                    .await;
                s.quit().await;
            },
        );
        outcome.expect("the loop ends on q");
        assert!(sent.is_empty(), "{sent:?}");
        let row = app.row_text().expect("a row is selected");
        assert_eq!(copied(&clipboard), row, "in tmux: {in_tmux}");
        let c = app.conn(app.rows[app.selected]).expect("a connection row");
        assert!(
            row.starts_with(&format!(
                "{}\t{}\t{}\t",
                c.state.name(),
                c.local(),
                c.remote()
            )),
            "{row:?}"
        );
        // Inside tmux the same sequence goes a second time through its passthrough.
        let text = String::from_utf8(clipboard).unwrap();
        assert_eq!(text.contains("\x1bPtmux;"), in_tmux, "{text:?}");
    }
}

/// A terminal whose output cannot be written (it hung up).
struct HungUp;

impl Write for HungUp {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::from(io::ErrorKind::BrokenPipe))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_copy_the_terminal_cannot_take_says_why_in_the_footer() {
    let mut app = new_app();
    let (_, b) = two_polls(false);
    let (outcome, _) = run_dashboard(
        &mut app,
        (80, 24),
        false,
        &mut HungUp,
        |mut s, _| async move {
            s.poll(b).await;
            s.until("the poll", |f| f.contains("LIVE")).await;
            s.key(KeyCode::Char('y')).await;
            let frame = s
                .until("why nothing was copied", |f| {
                    f.contains("nothing copied: cannot write to the terminal")
                })
                .await;
            assert!(!frame.contains("copied 1 row"), "{frame}");
            s.quit().await;
        },
    );
    outcome.expect("the loop ends on q");
}

#[test]
fn the_loop_ends_with_an_error_when_its_polls_stop() {
    let mut app = new_app();
    let (outcome, _) = run_dashboard(
        &mut app,
        (80, 24),
        false,
        &mut io::sink(),
        |mut s, _| async move {
            s.until("a first frame", |f| !f.trim().is_empty()).await;
            let Screen { keys, polls, .. } = s;
            drop(polls);
            // The keys stay open until the loop has ended: only the polls stopped.
            keys.closed().await;
        },
    );
    let e = outcome.expect_err("the loop cannot go on without polls");
    assert_eq!(e.to_string(), "the poll thread stopped");
}

/// `u` with a socket cookie on every connection, as the netlink backend reads them (the
/// fixture's are 0, which the rails refuse to close: no identity to check).
fn with_cookies(u: &Update) -> Arc<Update> {
    let mut u = u.clone();
    let mut snap = (*u.snapshot).clone();
    for c in &mut snap.connections {
        c.cookie = u64::from(c.inode) + 1000;
    }
    u.snapshot = Arc::new(snap);
    Arc::new(u)
}

/// A dashboard showing only the fixture's CLOSE_WAIT rows (the first one selected).
fn close_wait_app(allowed: bool) -> App {
    let mut app = new_app();
    app.filter = Filter::parse("state:close-wait").expect("a filter");
    app.close_keys = crate::tui::app::CloseKeys {
        allowed,
        replay: false,
        rails: crate::model::action::Rails::default(),
        // Every holder keeps SIGPIPE's default action: the warning must show.
        sigpipe_of: Some(|_| Some(false)),
    };
    app
}

#[test]
fn without_allow_close_the_close_keys_say_how_to_turn_them_on_and_send_nothing() {
    let mut app = close_wait_app(false);
    let (_, b) = two_polls(false);
    let (outcome, sent) = run_dashboard(
        &mut app,
        (120, 40),
        false,
        &mut io::sink(),
        |mut s, _| async move {
            s.poll(with_cookies(&b)).await;
            let frame = s
                .until("a CLOSE_WAIT row", |f| f.contains("10.0.0.44:41999"))
                .await;
            assert!(
                !frame.contains("close   "),
                "keys off, no close line:\n{frame}"
            );
            for key in ['x', 'X'] {
                s.key(KeyCode::Char(key)).await;
                let frame = s
                    .until("how to enable closing", |f| f.contains("--allow-close"))
                    .await;
                assert!(!frame.contains("are you sure"), "{frame}");
            }
            s.quit().await;
        },
    );
    outcome.expect("the loop ends on q");
    assert!(
        sent.is_empty(),
        "nothing may reach the poll thread: {sent:?}"
    );
    assert!(app.confirm.is_none());
}

#[test]
fn with_allow_close_a_confirmation_comes_first_n_cancels_and_y_sends_the_close() {
    let mut app = close_wait_app(true);
    let (_, b) = two_polls(false);
    let b = with_cookies(&b);
    let (outcome, sent) = run_dashboard(
        &mut app,
        (120, 40),
        false,
        &mut io::sink(),
        |mut s, sent| async move {
            s.poll(Arc::clone(&b)).await;
            s.until("a CLOSE_WAIT row", |f| f.contains("10.0.0.44:41999"))
                .await;
            s.key(KeyCode::Char('x')).await;
            let frame = s
                .until("the confirmation", |f| f.contains("are you sure"))
                .await;
            for said in [
                "graceful close: are you sure",
                "shutdown(SHUT_WR)",
                "The peer sees: an orderly EOF",
                "does not ignore SIGPIPE",
            ] {
                assert!(frame.contains(said), "no {said:?} in:\n{frame}");
            }
            insta::assert_snapshot!("close_confirmation_120x40", frame);
            // While it waits, other keys do nothing: `q` does not quit.
            s.key(KeyCode::Char('q')).await;
            s.key(KeyCode::Char('n')).await;
            let frame = s
                .until("the cancel", |f| f.contains("nothing closed"))
                .await;
            assert!(!frame.contains("are you sure"), "{frame}");
            assert!(sent.borrow().is_empty(), "n sends nothing");

            s.key(KeyCode::Char('X')).await;
            s.until("the abort's confirmation", |f| {
                f.contains("abort close: are you sure") && f.contains("RST")
            })
            .await;
            s.key(KeyCode::Char('y')).await;
            s.until("the close sent", |f| f.contains("verifying")).await;
            let req = match sent.borrow().as_slice() {
                [Control::Close(req)] => req.clone(),
                other => panic!("one close expected, sent {other:?}"),
            };
            assert_eq!(req.how, crate::model::action::CloseHow::Abort);
            assert_eq!(req.connections.len(), 1);
            assert_eq!(req.connections[0].state, crate::model::TcpState::CloseWait);
            assert_ne!(req.connections[0].cookie, 0);
            // The poll thread's verified answer goes to the footer.
            let done = crate::live::CloseDone {
                how: req.how,
                results: vec![(req.labels[0].clone(), crate::model::action::Outcome::Closed)],
            };
            s.polls
                .send(Message::Closed(done))
                .await
                .expect("the loop reads polls");
            let frame = s.until("the result", |f| f.contains("): closed")).await;
            assert!(frame.contains("abort close of"), "{frame}");
            s.quit().await;
        },
    );
    outcome.expect("the loop ends on q");
    assert_eq!(sent.len(), 1, "{sent:?}");
}

#[test]
fn a_listener_is_refused_before_any_confirmation() {
    let mut app = close_wait_app(true);
    app.filter = Filter::parse("state:listen").expect("a filter");
    let (_, b) = two_polls(false);
    let (outcome, sent) = run_dashboard(
        &mut app,
        (120, 40),
        false,
        &mut io::sink(),
        |mut s, _| async move {
            s.poll(with_cookies(&b)).await;
            let frame = s
                .until("a LISTEN row", |f| f.contains("0.0.0.0:8080"))
                .await;
            // The detail pane says which close the row allows: none.
            assert!(frame.contains("close   refused: listen"), "{frame}");
            s.key(KeyCode::Char('X')).await;
            let frame = s.until("the refusal", |f| f.contains("not closed:")).await;
            assert!(frame.contains("a listening socket"), "{frame}");
            s.quit().await;
        },
    );
    outcome.expect("the loop ends on q");
    assert!(sent.is_empty(), "{sent:?}");
}
