//! Keys become [`Action`]s through a keymap: the config's defaults
//! (`config::keys::BINDABLE`), overridden per action by its `[keys]` table. Nothing here
//! touches the terminal.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

pub use crate::config::keys::BadKey;
use crate::config::keys::{ALWAYS_QUIT, BINDABLE, Key, KeyName, default_keys_of};

/// Everything a key can ask the dashboard to do.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Quit,
    Help,
    Up,
    Down,
    PageUp,
    PageDown,
    Home,
    End,
    NextView,
    PrevView,
    Filter,
    ClearFilter,
    Sort,
    SortDirection,
    Pause,
    Faster,
    Slower,
    Detail,
    ToggleGroup,
    /// Open or hide the close lab panel.
    Lab,
    /// Open or hide the closes panel (how connections end, from the kernel's events or
    /// counters).
    Closes,
    /// Open or leave the alerts list (move through every alert, open one, filter to it).
    Alerts,
    /// Copy the selected row as text to the clipboard (OSC 52).
    Copy,
    /// Show remote addresses by name (reverse DNS) or as addresses.
    Names,
    /// Close the selected connection gracefully (after a confirmation; only with
    /// `--allow-close`).
    Close,
    /// Abort the selected connection (RST; after a confirmation; only with `--allow-close`).
    Abort,
    /// Toggle the quick filter on the n-th state of the strip (0-based).
    QuickState(usize),
}

impl Action {
    /// The action bound by `name` in the config's `[keys]` (`config::keys::BINDABLE`).
    pub fn named(name: &str) -> Option<Action> {
        Some(match name {
            "quit" => Action::Quit,
            "help" => Action::Help,
            "up" => Action::Up,
            "down" => Action::Down,
            "page-up" => Action::PageUp,
            "page-down" => Action::PageDown,
            "home" => Action::Home,
            "end" => Action::End,
            "next-view" => Action::NextView,
            "prev-view" => Action::PrevView,
            "filter" => Action::Filter,
            "clear-filter" => Action::ClearFilter,
            "sort" => Action::Sort,
            "sort-direction" => Action::SortDirection,
            "pause" => Action::Pause,
            "faster" => Action::Faster,
            "slower" => Action::Slower,
            "detail" => Action::Detail,
            "toggle-group" => Action::ToggleGroup,
            "lab" => Action::Lab,
            "closes" => Action::Closes,
            "alerts" => Action::Alerts,
            "copy" => Action::Copy,
            "names" => Action::Names,
            "close" => Action::Close,
            "abort" => Action::Abort,
            _ => return None,
        })
    }
}

/// One key with its modifiers, e.g. `ctrl-c`, `G`, `pagedown`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct KeyBinding {
    pub code: KeyCode,
    pub mods: KeyModifiers,
}

impl KeyBinding {
    /// The binding a terminal key event stands for. Shift is not a modifier of its own:
    /// it is in the character (`G`, `?`) or the key (`backtab`), as terminals report it
    /// inconsistently.
    pub fn from_event(e: &KeyEvent) -> Self {
        let mods = e.modifiers & (KeyModifiers::CONTROL | KeyModifiers::ALT);
        KeyBinding { code: e.code, mods }
    }
}

impl From<Key> for KeyBinding {
    fn from(k: Key) -> Self {
        let code = match k.name {
            KeyName::Char(c) => KeyCode::Char(c),
            KeyName::Enter => KeyCode::Enter,
            KeyName::Esc => KeyCode::Esc,
            KeyName::Tab => KeyCode::Tab,
            KeyName::BackTab => KeyCode::BackTab,
            KeyName::Up => KeyCode::Up,
            KeyName::Down => KeyCode::Down,
            KeyName::Left => KeyCode::Left,
            KeyName::Right => KeyCode::Right,
            KeyName::Home => KeyCode::Home,
            KeyName::End => KeyCode::End,
            KeyName::PageUp => KeyCode::PageUp,
            KeyName::PageDown => KeyCode::PageDown,
            KeyName::Backspace => KeyCode::Backspace,
            KeyName::Delete => KeyCode::Delete,
            KeyName::F(n) => KeyCode::F(n),
        };
        let mut mods = KeyModifiers::NONE;
        mods.set(KeyModifiers::CONTROL, k.ctrl);
        mods.set(KeyModifiers::ALT, k.alt);
        KeyBinding { code, mods }
    }
}

impl FromStr for KeyBinding {
    type Err = BadKey;

    /// A key as the config writes it (see [`Key`]).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse::<Key>().map(KeyBinding::from)
    }
}

impl fmt::Display for KeyBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mods.contains(KeyModifiers::CONTROL) {
            f.write_str("ctrl-")?;
        }
        if self.mods.contains(KeyModifiers::ALT) {
            f.write_str("alt-")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("space"),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::Enter => f.write_str("enter"),
            KeyCode::Esc => f.write_str("esc"),
            KeyCode::Tab => f.write_str("tab"),
            KeyCode::BackTab => f.write_str("shift-tab"),
            KeyCode::Up => f.write_str("↑"),
            KeyCode::Down => f.write_str("↓"),
            KeyCode::Left => f.write_str("←"),
            KeyCode::Right => f.write_str("→"),
            KeyCode::Home => f.write_str("home"),
            KeyCode::End => f.write_str("end"),
            KeyCode::PageUp => f.write_str("pgup"),
            KeyCode::PageDown => f.write_str("pgdn"),
            KeyCode::F(n) => write!(f, "f{n}"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// Maps key bindings to actions.
#[derive(Clone, Debug)]
pub struct Keymap {
    map: HashMap<KeyBinding, Action>,
    /// Keys per action, for the help overlay, in `BINDABLE` order.
    listed: Vec<(&'static str, Action, Vec<KeyBinding>)>,
}

impl Keymap {
    /// The default keys, with `overrides` (action name -> keys) replacing an action's keys.
    /// Names and keys were validated when the config was read.
    pub fn new(overrides: &[(String, Vec<Key>)]) -> Self {
        let mut listed = Vec::new();
        for (name, _) in BINDABLE {
            let Some(action) = Action::named(name) else {
                continue;
            };
            let keys = overrides
                .iter()
                .find(|(n, _)| n == name)
                .map_or_else(|| default_keys_of(name), |(_, k)| k.clone());
            let keys: Vec<KeyBinding> = keys.into_iter().map(KeyBinding::from).collect();
            listed.push((*name, action, keys));
        }
        let mut map = HashMap::new();
        for i in 0..9 {
            let c = char::from(b'1' + i as u8);
            map.insert(
                KeyBinding {
                    code: KeyCode::Char(c),
                    mods: KeyModifiers::NONE,
                },
                Action::QuickState(i),
            );
        }
        map.insert(
            KeyBinding {
                code: KeyCode::Char('0'),
                mods: KeyModifiers::NONE,
            },
            Action::QuickState(9),
        );
        for (_, action, keys) in &listed {
            for k in keys {
                map.insert(*k, *action);
            }
        }
        // Last, so no binding can take it: the config refuses one that tries
        // (`config::keys::check_conflicts`), and this holds for any other caller too.
        if let Ok(ctrl_c) = ALWAYS_QUIT.parse::<KeyBinding>() {
            map.insert(ctrl_c, Action::Quit);
        }
        Keymap { map, listed }
    }

    pub fn action(&self, e: &KeyEvent) -> Option<Action> {
        self.map.get(&KeyBinding::from_event(e)).copied()
    }

    /// The keys of an action, as shown in help and hints (`q, ctrl-c`).
    pub fn keys_of(&self, action: Action) -> String {
        self.listed
            .iter()
            .find(|(_, a, _)| *a == action)
            .map(|(_, _, keys)| {
                keys.iter()
                    .map(|k| k.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    }
}

impl Default for Keymap {
    fn default() -> Self {
        Keymap::new(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(code: KeyCode, mods: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, mods)
    }

    #[test]
    fn defaults_cover_the_documented_keys() {
        let k = Keymap::default();
        assert_eq!(
            k.action(&ev(KeyCode::Char('q'), KeyModifiers::NONE)),
            Some(Action::Quit)
        );
        assert_eq!(
            k.action(&ev(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(Action::Quit)
        );
        assert_eq!(
            k.action(&ev(KeyCode::Char('j'), KeyModifiers::NONE)),
            Some(Action::Down)
        );
        assert_eq!(
            k.action(&ev(KeyCode::Char('G'), KeyModifiers::SHIFT)),
            Some(Action::End)
        );
        assert_eq!(
            k.action(&ev(KeyCode::Char('S'), KeyModifiers::SHIFT)),
            Some(Action::SortDirection)
        );
        assert_eq!(
            k.action(&ev(KeyCode::BackTab, KeyModifiers::SHIFT)),
            Some(Action::PrevView)
        );
        assert_eq!(
            k.action(&ev(KeyCode::Char(' '), KeyModifiers::NONE)),
            Some(Action::Pause)
        );
        assert_eq!(
            k.action(&ev(KeyCode::Char('7'), KeyModifiers::NONE)),
            Some(Action::QuickState(6))
        );
        assert_eq!(
            k.action(&ev(KeyCode::Char('x'), KeyModifiers::NONE)),
            Some(Action::Close)
        );
        assert_eq!(
            k.action(&ev(KeyCode::Char('X'), KeyModifiers::NONE)),
            Some(Action::Abort)
        );
        assert_eq!(k.action(&ev(KeyCode::Char('z'), KeyModifiers::NONE)), None);
    }

    #[test]
    fn overrides_replace_an_actions_keys() {
        let k = Keymap::new(&[("quit".into(), vec!["z".parse().unwrap()])]);
        assert_eq!(
            k.action(&ev(KeyCode::Char('z'), KeyModifiers::NONE)),
            Some(Action::Quit)
        );
        assert_eq!(k.action(&ev(KeyCode::Char('q'), KeyModifiers::NONE)), None);
        assert_eq!(k.keys_of(Action::Quit), "z");
    }

    #[test]
    fn ctrl_c_quits_whatever_the_bindings() {
        let k = Keymap::new(&[
            ("quit".into(), vec!["x".parse().unwrap()]),
            ("help".into(), vec!["ctrl-c".parse().unwrap()]),
        ]);
        assert_eq!(
            k.action(&ev(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(Action::Quit)
        );
    }

    #[test]
    fn every_bindable_name_is_an_action_and_every_action_but_quick_states_has_a_name() {
        let named: Vec<Action> = BINDABLE
            .iter()
            .map(|(n, _)| Action::named(n).unwrap_or_else(|| panic!("{n} is no action")))
            .collect();
        let listed: Vec<Action> = Keymap::default().listed.iter().map(|l| l.1).collect();
        assert_eq!(listed, named);
        for a in named.iter() {
            assert_eq!(named.iter().filter(|b| *b == a).count(), 1, "{a:?} twice");
        }
        // `Action` has one variant per name plus QuickState.
        assert_eq!(named.len(), 26);
        assert_eq!(Action::named("explode"), None);
    }

    #[test]
    fn key_names_parse_and_print_back() {
        for s in ["q", "ctrl-c", "alt-x", "enter", "f5", "pagedown", "G", "?"] {
            let k: KeyBinding = s.parse().unwrap();
            let again: KeyBinding = k.to_string().replace("pgdn", "pagedown").parse().unwrap();
            assert_eq!(k, again, "{s}");
        }
        assert!("ctrl-".parse::<KeyBinding>().is_err());
        assert!("f13".parse::<KeyBinding>().is_err());
        assert!(
            "hyper-q"
                .parse::<KeyBinding>()
                .unwrap_err()
                .to_string()
                .contains("not a key")
        );
    }
}
