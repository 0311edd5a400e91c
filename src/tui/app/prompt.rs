//! The filter prompt (`/`): the table narrows as you type. Every keystroke whose text
//! parses is applied at once, on the poll already held; one that does not keeps the last
//! good filter and shows the parser's error at its column. Tab completes keys and values
//! (cycling when several fit), Up and Down walk the history, Left/Right/Home/End move the
//! cursor, Enter keeps the filter and Esc gives back the one applied before the prompt
//! opened.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::App;
use crate::model::filter::{Completion, Known, complete};
use crate::model::{Filter, NetnsKind};

/// The most values of one kind Tab offers from the poll (a host with thousands of
/// process names must not make each Tab scan them all twice).
const KNOWN_MAX: usize = 500;

/// Tab's state between presses: the candidates and which one the line shows.
#[derive(Clone, Debug)]
pub struct TabCycle {
    pub completion: Completion,
    pub at: usize,
    /// The line after the cursor, kept as it was while the word before it is completed.
    rest: String,
    /// The line as Tab left it: a press on another line starts a new completion.
    produced: String,
}

/// The byte offset of character `i` of `s` (its length past the end).
fn byte_at(s: &str, i: usize) -> usize {
    s.char_indices().nth(i).map_or(s.len(), |(b, _)| b)
}

impl App {
    /// Opens the prompt holding the filter applied now.
    pub(super) fn open_prompt(&mut self) {
        let text = self.filter.to_string();
        self.input_cursor = text.chars().count();
        self.input = Some(text);
        self.filter_before_prompt = Some(self.filter.clone());
        self.input_error = None;
        self.input_error_at = None;
        self.tab = None;
        self.filter_history.reset();
    }

    /// Handles a key typed into the filter prompt. Returns false when no prompt is open, or
    /// for Ctrl-C (which closes it, then quits).
    pub fn on_input_key(&mut self, key: &KeyEvent) -> bool {
        let Some(text) = self.input.clone() else {
            return false;
        };
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if !matches!(key.code, KeyCode::Up | KeyCode::Down) {
            self.filter_history.reset();
        }
        if !matches!(key.code, KeyCode::Tab | KeyCode::BackTab) {
            self.tab = None;
        }
        let at = self.input_cursor.min(text.chars().count());
        let (before, after) = text.split_at(byte_at(&text, at));
        match key.code {
            KeyCode::Esc => self.close_prompt(false),
            // Ctrl-C always quits (issue 15 item 2): the prompt gives back the filter from
            // before it opened and lets the key through to the keymap.
            KeyCode::Char('c') if ctrl => {
                self.close_prompt(false);
                return false;
            }
            KeyCode::Enter => self.close_prompt(true),
            KeyCode::Left => self.input_cursor = at.saturating_sub(1),
            KeyCode::Right => self.input_cursor = (at + 1).min(text.chars().count()),
            KeyCode::Home => self.input_cursor = 0,
            KeyCode::Char('a') if ctrl => self.input_cursor = 0,
            KeyCode::End => self.input_cursor = text.chars().count(),
            KeyCode::Char('e') if ctrl => self.input_cursor = text.chars().count(),
            KeyCode::Backspace if at > 0 => {
                let cut = byte_at(before, at - 1);
                self.set_line_at(format!("{}{after}", &before[..cut]), at - 1);
            }
            KeyCode::Delete if !after.is_empty() => {
                let next = byte_at(after, 1);
                self.set_line_at(format!("{before}{}", &after[next..]), at);
            }
            // As a shell: Ctrl-U kills back to the start, Ctrl-W the word before the cursor.
            KeyCode::Char('u') if ctrl => self.set_line_at(after.to_string(), 0),
            KeyCode::Char('w') if ctrl => {
                let kept = before.trim_end();
                let cut = kept.rfind(' ').map_or(0, |i| i + 1);
                let head = &before[..cut];
                self.set_line_at(format!("{head}{after}"), head.chars().count());
            }
            KeyCode::Up => {
                if let Some(older) = self.filter_history.older(&text) {
                    let older = older.to_string();
                    self.set_line(older);
                }
            }
            KeyCode::Down => {
                if let Some(newer) = self.filter_history.newer() {
                    self.set_line(newer);
                }
            }
            KeyCode::Tab => self.complete_line(&text, at, true),
            KeyCode::BackTab => self.complete_line(&text, at, false),
            KeyCode::Char(c) if !ctrl => {
                self.set_line_at(format!("{before}{c}{after}"), at + 1);
            }
            _ => {}
        }
        true
    }

    /// Closes the prompt: Enter keeps the filter typed (a line that does not parse keeps
    /// the prompt open on its error), Esc restores the one from before.
    fn close_prompt(&mut self, keep: bool) {
        if keep {
            let text = self.input.clone().unwrap_or_default();
            match Filter::parse(&text) {
                Ok(f) => {
                    self.filter_history.push(&f.to_string());
                    self.filter = f;
                }
                Err(_) => return,
            }
        } else if let Some(before) = self.filter_before_prompt.take() {
            self.filter = before;
        }
        self.input = None;
        self.input_error = None;
        self.input_error_at = None;
        self.filter_before_prompt = None;
        self.tab = None;
        self.selected = 0;
        self.offset = 0;
        self.rebuild();
    }

    /// Puts `line` in the prompt, the cursor at its end, and applies it if it parses.
    fn set_line(&mut self, line: String) {
        let end = line.chars().count();
        self.set_line_at(line, end);
    }

    /// Puts `line` in the prompt with the cursor before character `cursor`, and applies
    /// it if it parses.
    fn set_line_at(&mut self, line: String, cursor: usize) {
        self.input_cursor = cursor;
        match Filter::parse(&line) {
            Ok(f) => {
                self.input_error = None;
                self.input_error_at = None;
                if f != self.filter {
                    self.filter = f;
                    self.rebuild();
                }
            }
            // Pasted text may hold control characters: shown escaped, like any message.
            Err(e) => {
                // The suggestion first: a narrow window still shows it.
                let shown = match &e.suggestion {
                    Some(s) => {
                        // Said once: the reason (the command line's message) says it too.
                        let rest = e
                            .reason
                            .replace(&format!("; did you mean {s}? ("), " (")
                            .replace(&format!("; did you mean {s}? "), "; ")
                            .replace(&format!("; did you mean {s}?"), "");
                        format!("did you mean {s}? {rest}")
                    }
                    None => e.reason.clone(),
                };
                self.input_error = Some(crate::sanitize::message(&shown).into_owned());
                self.input_error_at = Some(e.column.saturating_sub(1));
            }
        }
        self.input = Some(line);
    }

    /// Tab (`forward`) or Shift-Tab: the next or previous way to finish the word before
    /// the cursor (character `at` of `text`).
    fn complete_line(&mut self, text: &str, at: usize, forward: bool) {
        let cycling = self
            .tab
            .as_ref()
            .is_some_and(|t| t.produced == text && t.completion.candidates.len() > 1);
        if cycling {
            if let Some(t) = self.tab.as_mut() {
                let n = t.completion.candidates.len();
                t.at = if forward {
                    (t.at + 1) % n
                } else {
                    (t.at + n - 1) % n
                };
            }
        } else {
            let (before, rest) = text.split_at(byte_at(text, at));
            let Some(completion) = complete(before, &self.known_values()) else {
                self.tab = None;
                return;
            };
            let n = completion.candidates.len();
            self.tab = Some(TabCycle {
                completion,
                at: if forward { 0 } else { n - 1 },
                rest: rest.to_string(),
                produced: String::new(),
            });
        }
        let Some((head, rest)) = self
            .tab
            .as_ref()
            .map(|t| (t.completion.text(t.at), t.rest.clone()))
        else {
            return;
        };
        let line = format!("{head}{rest}");
        if let Some(t) = self.tab.as_mut() {
            t.produced = line.clone();
        }
        self.set_line_at(line, head.chars().count());
    }

    /// The process and user names and namespaces the poll shown holds, for Tab.
    fn known_values(&self) -> Known {
        let mut known = Known::default();
        let Some(u) = &self.shown else {
            return known;
        };
        let mut procs = std::collections::BTreeSet::new();
        let mut users = std::collections::BTreeSet::new();
        for c in &u.snapshot.connections {
            for o in c.owners.iter() {
                if let Some(n) = &o.name
                    && procs.len() < KNOWN_MAX
                {
                    procs.insert(n.to_string());
                }
            }
            if let Some(n) = c.user_name()
                && users.len() < KNOWN_MAX
            {
                users.insert(n.to_string());
            }
        }
        known.processes = procs.into_iter().collect();
        known.users = users.into_iter().collect();
        for ns in u.snapshot.netns.iter().take(KNOWN_MAX) {
            if ns.kind != NetnsKind::Host {
                known.netns.push(ns.name.to_string());
            }
            let kind = ns.kind.key().to_string();
            if !known.netns.contains(&kind) {
                known.netns.push(kind);
            }
        }
        known
    }
}
