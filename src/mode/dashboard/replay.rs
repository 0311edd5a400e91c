//! `lingertop replay PATH`: the dashboard over a recording. The same loop as live
//! ([`super::run_loop`]); the polls come from the recording instead of the live loop, at a
//! time cursor moved by keys the loop hands here first: `[` `]` a poll back and forth, `{`
//! `}` a minute, `t` a typed time (RFC 3339, Enter to go, Esc to give up), `p` play at 1x,
//! 10x, 60x, then stop. The header says REPLAY and the instant; the lab is off.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Result, bail};
use crossterm::event::{Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use rustc_hash::FxHashMap;
use tokio::sync::mpsc;

use crate::live::{Message, Update};
use crate::model::TcpState;
use crate::model::tracker::Sample;
use crate::record::{PollRow, Recording};

/// The speeds `p` cycles through, then stops.
const SPEEDS: [u32; 3] = [1, 10, 60];

/// The recording behind a replay and its time cursor.
pub(crate) struct Replay {
    rec: Recording,
    polls: Vec<PollRow>,
    cursor: usize,
    /// Playing: the speed, and the wall clock and recorded instant play started from.
    playing: Option<(u32, Instant, SystemTime)>,
    /// The time being typed after `t`.
    typing: Option<String>,
    /// Why the last move failed (a bad time, a read error), for the header.
    said: Option<String>,
    tx: mpsc::Sender<Message>,
}

impl Replay {
    /// Opens `path` with the cursor at the last poll at or before `at` (the first poll
    /// without it), and sends that poll.
    pub(crate) fn open(
        path: &Path,
        at: Option<SystemTime>,
        tx: mpsc::Sender<Message>,
    ) -> Result<Self> {
        let rec = Recording::open(path).map_err(|e| anyhow::anyhow!("cannot replay: {e}"))?;
        let polls = rec
            .polls()
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        if polls.is_empty() {
            bail!("{} holds no poll yet: nothing to replay", path.display());
        }
        let mut r = Replay {
            rec,
            polls,
            cursor: 0,
            playing: None,
            typing: None,
            said: None,
            tx,
        };
        let start = at.map_or(0, |t| r.index_at(t));
        r.go(start);
        Ok(r)
    }

    /// The last poll at or before `t` (the first when `t` is before every poll).
    fn index_at(&self, t: SystemTime) -> usize {
        self.polls.partition_point(|p| p.at <= t).saturating_sub(1)
    }

    fn go(&mut self, i: usize) {
        let i = i.min(self.polls.len() - 1);
        self.cursor = i;
        let poll = &self.polls[i];
        match self.rec.snapshot(poll) {
            Ok((snapshot, alerts)) => {
                let mut close_wait_by_pid: FxHashMap<u32, u32> = FxHashMap::default();
                for c in &snapshot.connections {
                    if c.state == TcpState::CloseWait {
                        if let Some(o) = c.owner() {
                            *close_wait_by_pid.entry(o.pid).or_default() += 1;
                        }
                    }
                }
                let update = Update {
                    seq: u64::try_from(i + 1).unwrap_or(u64::MAX),
                    snapshot: Arc::new(snapshot),
                    alerts,
                    transitions: Vec::new(),
                    sample: Sample {
                        at: poll.at,
                        counts: poll.counts,
                        close_wait_by_pid,
                    },
                    errors: 0,
                };
                // A full queue means the loop has not drawn the last one yet: this one
                // replaces it at the next move.
                let _ = self.tx.try_send(Message::Update(Arc::new(update)));
            }
            Err(e) => self.said = Some(format!("cannot read poll {}: {e}", poll.id)),
        }
    }

    /// Whether play is on (the loop ticks it).
    pub(crate) fn playing(&self) -> bool {
        self.playing.is_some()
    }

    /// Moves the cursor as far as the time played since play started.
    pub(crate) fn tick(&mut self) {
        let Some((speed, since, from)) = self.playing else {
            return;
        };
        let t = from + since.elapsed() * speed;
        let i = self.index_at(t);
        if i != self.cursor {
            self.go(i);
        }
        if i + 1 == self.polls.len() {
            self.playing = None;
        }
    }

    /// A key the replay takes (the cursor keys, and every key while a time is typed);
    /// `false` leaves it to the dashboard.
    pub(crate) fn on_event(&mut self, ev: &Event) -> bool {
        let Event::Key(k) = ev else { return false };
        if k.kind == KeyEventKind::Release {
            return false;
        }
        if self.typing.is_some() {
            self.on_typing(k);
            return true;
        }
        if k.modifiers
            .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT)
        {
            return false;
        }
        let minute = Duration::from_secs(60);
        let at = self.polls[self.cursor].at;
        match k.code {
            KeyCode::Char(']') => self.go(self.cursor + 1),
            KeyCode::Char('[') => self.go(self.cursor.saturating_sub(1)),
            KeyCode::Char('}') => {
                let i = self.polls.partition_point(|p| p.at < at + minute);
                self.go(i.max(self.cursor + 1));
            }
            KeyCode::Char('{') => self.go(self.index_at(at.checked_sub(minute).unwrap_or(at))),
            KeyCode::Char('t') => {
                self.typing = Some(String::new());
                self.playing = None;
            }
            KeyCode::Char('p') => {
                let next = match self.playing {
                    None => Some(SPEEDS[0]),
                    Some((s, _, _)) => SPEEDS
                        .iter()
                        .position(|&x| x == s)
                        .and_then(|i| SPEEDS.get(i + 1).copied()),
                };
                self.playing = next.map(|s| (s, Instant::now(), at));
            }
            _ => return false,
        }
        self.said = None;
        true
    }

    fn on_typing(&mut self, k: &KeyEvent) {
        let Some(text) = self.typing.as_mut() else {
            return;
        };
        match k.code {
            KeyCode::Esc => self.typing = None,
            KeyCode::Backspace => {
                text.pop();
            }
            KeyCode::Enter => {
                let typed = std::mem::take(text);
                self.typing = None;
                match crate::cli::parse_time(&typed) {
                    Ok(t) => {
                        self.said = None;
                        self.go(self.index_at(t));
                    }
                    Err(e) => self.said = Some(e),
                }
            }
            KeyCode::Char(c)
                if text.len() < 40 && (c.is_ascii_alphanumeric() || "-:.+TZ".contains(c)) =>
            {
                text.push(c);
            }
            _ => {}
        }
    }

    /// The header's words: REPLAY, the instant, where in the recording, play, the typed
    /// time or why the last move failed.
    pub(crate) fn header(&self) -> String {
        let at = humantime::format_rfc3339_millis(self.polls[self.cursor].at);
        let mut s = format!("REPLAY {at}  poll {}/{}", self.cursor + 1, self.polls.len());
        if let Some((speed, _, _)) = self.playing {
            s.push_str(&format!("  playing {speed}x"));
        }
        if !self.polls[self.cursor].read_established {
            s.push_str("  (ESTABLISHED not read at this poll)");
        }
        if let Some(t) = &self.typing {
            s.push_str(&format!("  go to time: {t}_"));
        } else if let Some(why) = &self.said {
            s.push_str(&format!("  {why}"));
        }
        s
    }
}
