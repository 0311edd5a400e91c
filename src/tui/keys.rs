//! Keys become [`Action`]s through a keymap: the defaults below, overridden per action by the
//! config's `[keys]` table. Nothing here touches the terminal.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

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
    /// Toggle the quick filter on the n-th state of the strip (0-based).
    QuickState(usize),
}

/// Actions that can be bound in the config, by name, with their default keys.
pub const BINDABLE: &[(&str, Action, &[&str])] = &[
    ("quit", Action::Quit, &["q", "ctrl-c"]),
    ("help", Action::Help, &["?", "f1"]),
    ("up", Action::Up, &["up", "k"]),
    ("down", Action::Down, &["down", "j"]),
    ("page-up", Action::PageUp, &["pageup", "ctrl-b"]),
    ("page-down", Action::PageDown, &["pagedown", "ctrl-f"]),
    ("home", Action::Home, &["home", "g"]),
    ("end", Action::End, &["end", "G"]),
    ("next-view", Action::NextView, &["tab"]),
    ("prev-view", Action::PrevView, &["backtab"]),
    ("filter", Action::Filter, &["/"]),
    ("clear-filter", Action::ClearFilter, &["esc"]),
    ("sort", Action::Sort, &["s"]),
    ("sort-direction", Action::SortDirection, &["S"]),
    ("pause", Action::Pause, &["space"]),
    ("faster", Action::Faster, &["+", "="]),
    ("slower", Action::Slower, &["-"]),
    ("detail", Action::Detail, &["d"]),
    ("toggle-group", Action::ToggleGroup, &["enter"]),
    ("lab", Action::Lab, &["L"]),
];

/// The names of every bindable action, for error messages.
pub fn action_names() -> String {
    BINDABLE
        .iter()
        .map(|(n, _, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
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

/// A key name nobody knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "\"{0}\" is not a key; write a character (q, G, ?), a name (enter, esc, tab, backtab, space, up, down, left, right, home, end, pageup, pagedown, f1-f12), optionally with ctrl- or alt-"
)]
pub struct BadKey(pub String);

impl FromStr for KeyBinding {
    type Err = BadKey;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadKey(s.to_string());
        let mut mods = KeyModifiers::NONE;
        let mut rest = s;
        loop {
            let lower = rest.to_ascii_lowercase();
            if lower.starts_with("ctrl-") && rest.len() > 5 {
                mods |= KeyModifiers::CONTROL;
                rest = &rest[5..];
            } else if lower.starts_with("alt-") && rest.len() > 4 {
                mods |= KeyModifiers::ALT;
                rest = &rest[4..];
            } else {
                break;
            }
        }
        let mut chars = rest.chars();
        let code = match (chars.next(), chars.next()) {
            (Some(c), None) => KeyCode::Char(if mods.contains(KeyModifiers::CONTROL) {
                c.to_ascii_lowercase()
            } else {
                c
            }),
            _ => match rest.to_ascii_lowercase().as_str() {
                "enter" | "return" => KeyCode::Enter,
                "esc" | "escape" => KeyCode::Esc,
                "tab" => KeyCode::Tab,
                "backtab" | "shift-tab" => KeyCode::BackTab,
                "space" => KeyCode::Char(' '),
                "up" => KeyCode::Up,
                "down" => KeyCode::Down,
                "left" => KeyCode::Left,
                "right" => KeyCode::Right,
                "home" => KeyCode::Home,
                "end" => KeyCode::End,
                "pageup" | "pgup" => KeyCode::PageUp,
                "pagedown" | "pgdn" => KeyCode::PageDown,
                "backspace" => KeyCode::Backspace,
                "delete" | "del" => KeyCode::Delete,
                f if f.starts_with('f') => {
                    let n: u8 = f[1..].parse().map_err(|_| bad())?;
                    if !(1..=12).contains(&n) {
                        return Err(bad());
                    }
                    KeyCode::F(n)
                }
                _ => return Err(bad()),
            },
        };
        Ok(KeyBinding { code, mods })
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
    pub fn new(overrides: &[(String, Vec<KeyBinding>)]) -> Self {
        let mut listed = Vec::new();
        for (name, action, defaults) in BINDABLE {
            let keys = overrides
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, k)| k.clone())
                .unwrap_or_else(|| defaults.iter().filter_map(|k| k.parse().ok()).collect());
            listed.push((*name, *action, keys));
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
        assert_eq!(k.action(&ev(KeyCode::Char('x'), KeyModifiers::NONE)), None);
    }

    #[test]
    fn overrides_replace_an_actions_keys() {
        let k = Keymap::new(&[("quit".into(), vec!["x".parse().unwrap()])]);
        assert_eq!(
            k.action(&ev(KeyCode::Char('x'), KeyModifiers::NONE)),
            Some(Action::Quit)
        );
        assert_eq!(k.action(&ev(KeyCode::Char('q'), KeyModifiers::NONE)), None);
        assert_eq!(k.keys_of(Action::Quit), "x");
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
