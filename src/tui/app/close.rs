//! Closing the selected connection from the dashboard (keys `close` and `abort`): off
//! unless the dashboard was started with `--allow-close` (or `[actions] allow-close`), and
//! never in a replay; on, a confirmation says what, how, what the peer will see and every
//! process holding the socket (with the SIGPIPE warning) before anything is sent. The
//! close itself is the poll thread's ([`crate::live::Control::Close`]); its verified
//! result comes back as [`crate::live::CloseDone`] and goes to the footer.

use std::time::Duration;

use super::{App, Effect};
use crate::live::{CloseDone, CloseRequest};
use crate::model::Connection;
use crate::model::action::{CloseHow, LeftOut, Outcome, Rails};
use crate::sanitize;

/// How long the poll thread reads the sockets again for them to reach their end (as
/// `lingertop close --wait`'s default).
pub const CLOSE_WAIT_FOR: Duration = Duration::from_secs(3);

/// What the footer says when a close key is pressed and closing is off.
pub const CLOSE_OFF: &str =
    "closing is off: start with --allow-close (or [actions] allow-close = true in the config)";

/// What the footer says when a close key is pressed in a replay.
pub const CLOSE_REPLAY: &str = "closing is off in a replay: the connections shown are a recording";

/// Whether and how the close keys act.
#[derive(Clone, Debug, Default)]
pub struct CloseKeys {
    /// `--allow-close` or `[actions] allow-close`.
    pub allowed: bool,
    /// The dashboard shows a recording: the keys never act, whatever `allowed` says.
    pub replay: bool,
    /// lingertop's own sockets and the operator's SSH connection are never closed;
    /// listeners are refused.
    pub rails: Rails,
    /// Whether a process ignores SIGPIPE (`None`: unknown); the dashboard reads
    /// `/proc/PID/status`, tests give a fixture; none warns of nothing.
    pub sigpipe_of: Option<fn(u32) -> Option<bool>>,
}

/// A close waiting for `y` (or `n`/Esc).
#[derive(Clone, Debug, PartialEq)]
pub struct CloseConfirm {
    pub how: CloseHow,
    /// The popup's text, line by line (outside text already neutralised).
    pub lines: Vec<String>,
    pub request: CloseRequest,
}

impl App {
    /// The `close` (graceful) and `abort` keys: a confirmation for the selected connection,
    /// or a footer line saying why there is none.
    pub(super) fn ask_close(&mut self, how: CloseHow) {
        if self.close_keys.replay {
            self.notice = Some(CLOSE_REPLAY.to_string());
            return;
        }
        if !self.close_keys.allowed {
            self.notice = Some(CLOSE_OFF.to_string());
            return;
        }
        let row = match self.selected_row() {
            Some(r @ super::Row::Conn(_)) => r,
            Some(super::Row::Ghost(_)) => {
                self.notice = Some("nothing to close: the selected connection is gone".into());
                return;
            }
            _ => {
                self.notice = Some("nothing to close: select a connection row first".into());
                return;
            }
        };
        let Some(c) = self.conn(row).cloned() else {
            return;
        };
        let label = self.close_label(&c);
        let rails = &self.close_keys.rails;
        match rails.left_out(&c) {
            Some(LeftOut::Lingertop) => {
                self.notice = Some(format!("not closed: {label} is lingertop's own connection"));
                return;
            }
            Some(LeftOut::Ssh) => {
                self.notice = Some(format!(
                    "not closed: {label} is the SSH connection this dashboard runs over"
                ));
                return;
            }
            None => {}
        }
        if let Some(refusal) = rails.refuse(&c, how) {
            self.notice = Some(format!("not closed: {label}: {refusal}"));
            return;
        }
        let lines = self.confirm_lines(&c, &label, how);
        self.confirm = Some(CloseConfirm {
            how,
            lines,
            request: CloseRequest {
                how,
                connections: vec![c],
                labels: vec![label],
                wait: CLOSE_WAIT_FOR,
            },
        });
    }

    /// A connection as the confirmation, the record and the footer name it.
    fn close_label(&self, c: &Connection) -> String {
        let owners = if c.owners.is_empty() {
            "no process".to_string()
        } else {
            c.owners
                .iter()
                .map(|o| format!("{}[{}]", o.name.as_deref().unwrap_or("?"), o.pid))
                .collect::<Vec<_>>()
                .join(",")
        };
        let netns = self
            .shown
            .as_ref()
            .and_then(|u| u.snapshot.netns.name(c.netns()).map(str::to_string))
            .unwrap_or_else(|| "self".to_string());
        sanitize::terminal(&format!(
            "{} -> {} ({}, {owners}, netns {netns})",
            c.local(),
            c.remote(),
            c.state.name()
        ))
        .into_owned()
    }

    fn confirm_lines(&self, c: &Connection, label: &str, how: CloseHow) -> Vec<String> {
        let mut lines = vec![
            format!("{} close of 1 connection:", capitalised(how.name())),
            format!("  {label}"),
            String::new(),
            match how {
                CloseHow::Graceful => {
                    "How: the FIN the application never sent, by shutdown(SHUT_WR) on a duplicate of its owner's descriptor".to_string()
                }
                CloseHow::Abort => {
                    "How: the kernel destroys the socket (SOCK_DESTROY), a RST to the peer".to_string()
                }
            },
            format!("The peer sees: {}", how.peer_sees()),
            format!("The application: {}", how.application_sees()),
        ];
        if c.owners.is_empty() {
            lines.push("Held by: no process".to_string());
        } else {
            lines.push("Held by (the close acts for every one of them):".to_string());
            for o in c.owners.iter() {
                let name = sanitize::terminal(o.name.as_deref().unwrap_or("?")).into_owned();
                lines.push(format!("  {name}[{}]", o.pid));
            }
        }
        if how == CloseHow::Graceful {
            let sigpipe = self.close_keys.sigpipe_of;
            for o in c.owners.iter() {
                if sigpipe.and_then(|f| f(o.pid)) == Some(false) {
                    let name = sanitize::terminal(o.name.as_deref().unwrap_or("?")).into_owned();
                    lines.push(format!(
                        "Warning: {name}[{}] does not ignore SIGPIPE: after a graceful close its next write on the connection kills it",
                        o.pid
                    ));
                }
            }
        }
        lines
    }

    /// Which close the close keys allow on `c`, for the detail pane; `None` while the keys
    /// are off (no `--allow-close`, or a replay).
    pub fn close_allows(&self, c: &Connection) -> Option<String> {
        if !self.close_keys.allowed || self.close_keys.replay {
            return None;
        }
        let keys = |a| self.keymap.keys_of(a);
        let rails = &self.close_keys.rails;
        Some(match rails.left_out(c) {
            Some(LeftOut::Lingertop) => "never: lingertop's own".to_string(),
            Some(LeftOut::Ssh) => "never: the SSH connection you are on".to_string(),
            None => match (
                rails.refuse(c, CloseHow::Graceful),
                rails.refuse(c, CloseHow::Abort),
            ) {
                (None, None) => format!(
                    "{} graceful (FIN), {} abort (RST)",
                    keys(crate::tui::keys::Action::Close),
                    keys(crate::tui::keys::Action::Abort)
                ),
                (Some(why), None) => format!(
                    "{} abort (RST) only; graceful refused: {}",
                    keys(crate::tui::keys::Action::Abort),
                    why.code()
                ),
                (_, Some(why)) => format!("refused: {}", why.code()),
            },
        })
    }

    /// A key while the confirmation is open: `y` sends the close, `n` or Esc cancels, any
    /// other key is ignored (the confirmation keeps the screen). `None`: no confirmation.
    pub fn on_confirm_key(&mut self, k: &crossterm::event::KeyEvent) -> Option<Effect> {
        use crossterm::event::{KeyCode, KeyModifiers};
        let confirm = self.confirm.as_ref()?;
        let effect = match k.code {
            KeyCode::Char('y' | 'Y') => {
                let c = self.confirm.take()?;
                self.notice = Some(format!(
                    "{} close of {}: sent, verifying...",
                    c.how,
                    c.request.labels.join(", ")
                ));
                Effect::Close(Box::new(c.request))
            }
            KeyCode::Char('n' | 'N') | KeyCode::Esc => {
                self.notice = Some(format!("{} close cancelled: nothing closed", confirm.how));
                self.confirm = None;
                Effect::None
            }
            KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => Effect::Quit,
            _ => Effect::None,
        };
        Some(effect)
    }

    /// The verified result of a close, for the footer.
    pub fn on_closed(&mut self, done: CloseDone) {
        let text = match done.results.as_slice() {
            [(what, outcome)] => format!("{} close of {what}: {outcome}", done.how),
            many => {
                let reached = many.iter().filter(|(_, o)| o.reached()).count();
                let refused = many
                    .iter()
                    .filter(|(_, o)| matches!(o, Outcome::Refused { .. }))
                    .count();
                format!(
                    "{} close of {} connections: {reached} closed, {refused} refused, {} still there",
                    done.how,
                    many.len(),
                    many.len() - reached - refused
                )
            }
        };
        self.notice = Some(sanitize::terminal(&text).into_owned());
    }
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}
