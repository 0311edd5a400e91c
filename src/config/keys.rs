//! Key bindings as the config's `[keys]` table writes them: the bindable action names with
//! their default keys, and keys as plain data (`ctrl-c`, `G`, `pagedown`). No terminal
//! types here: the dashboard turns a [`Key`] into its own key events.

use std::str::FromStr;

/// Actions that can be bound in the config, by name, with their default keys, in the
/// order the help lists them.
pub const BINDABLE: &[(&str, &[&str])] = &[
    ("quit", &["q", "ctrl-c"]),
    ("help", &["?", "f1"]),
    ("up", &["up", "k"]),
    ("down", &["down", "j"]),
    ("page-up", &["pageup", "ctrl-b"]),
    ("page-down", &["pagedown", "ctrl-f"]),
    ("home", &["home", "g"]),
    ("end", &["end", "G"]),
    ("next-view", &["tab"]),
    ("prev-view", &["backtab"]),
    ("filter", &["/"]),
    ("clear-filter", &["esc"]),
    ("sort", &["s"]),
    ("sort-direction", &["S"]),
    ("pause", &["space"]),
    ("faster", &["+", "="]),
    ("slower", &["-"]),
    ("detail", &["d"]),
    ("toggle-group", &["enter"]),
    ("lab", &["L"]),
];

/// The default keys of the action named `name` (empty for a name not in [`BINDABLE`]).
pub fn default_keys_of(name: &str) -> Vec<Key> {
    BINDABLE
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, keys)| keys.iter().filter_map(|k| k.parse().ok()).collect())
        .unwrap_or_default()
}

/// Every bindable action with its default keys, in [`BINDABLE`] order.
pub fn default_keys() -> Vec<(String, Vec<Key>)> {
    BINDABLE
        .iter()
        .map(|(name, _)| (name.to_string(), default_keys_of(name)))
        .collect()
}

/// A key without its modifiers.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum KeyName {
    /// A character as typed: `G` is shift-g, `?` is shift-/.
    Char(char),
    Enter,
    Esc,
    Tab,
    BackTab,
    Up,
    Down,
    Left,
    Right,
    Home,
    End,
    PageUp,
    PageDown,
    Backspace,
    Delete,
    /// A function key, 1 to 12.
    F(u8),
}

/// One key with its modifiers, e.g. `ctrl-c`, `G`, `pagedown`. Shift is not a modifier of
/// its own: it is in the character (`G`, `?`) or the key (`backtab`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    pub name: KeyName,
    pub ctrl: bool,
    pub alt: bool,
}

/// A key name nobody knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "\"{0}\" is not a key; write a character (q, G, ?), a name (enter, esc, tab, backtab, space, up, down, left, right, home, end, pageup, pagedown, f1-f12), optionally with ctrl- or alt-"
)]
pub struct BadKey(pub String);

impl FromStr for Key {
    type Err = BadKey;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadKey(s.to_string());
        let (mut ctrl, mut alt) = (false, false);
        let mut rest = s;
        loop {
            let lower = rest.to_ascii_lowercase();
            if lower.starts_with("ctrl-") && rest.len() > 5 {
                ctrl = true;
                rest = &rest[5..];
            } else if lower.starts_with("alt-") && rest.len() > 4 {
                alt = true;
                rest = &rest[4..];
            } else {
                break;
            }
        }
        let mut chars = rest.chars();
        let name = match (chars.next(), chars.next()) {
            // Terminals report ctrl with the lower-case letter.
            (Some(c), None) => KeyName::Char(if ctrl { c.to_ascii_lowercase() } else { c }),
            _ => match rest.to_ascii_lowercase().as_str() {
                "enter" | "return" => KeyName::Enter,
                "esc" | "escape" => KeyName::Esc,
                "tab" => KeyName::Tab,
                "backtab" | "shift-tab" => KeyName::BackTab,
                "space" => KeyName::Char(' '),
                "up" => KeyName::Up,
                "down" => KeyName::Down,
                "left" => KeyName::Left,
                "right" => KeyName::Right,
                "home" => KeyName::Home,
                "end" => KeyName::End,
                "pageup" | "pgup" => KeyName::PageUp,
                "pagedown" | "pgdn" => KeyName::PageDown,
                "backspace" => KeyName::Backspace,
                "delete" | "del" => KeyName::Delete,
                f if f.starts_with('f') => {
                    let n: u8 = f[1..].parse().map_err(|_| bad())?;
                    if !(1..=12).contains(&n) {
                        return Err(bad());
                    }
                    KeyName::F(n)
                }
                _ => return Err(bad()),
            },
        };
        Ok(Key { name, ctrl, alt })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_with_their_modifiers() {
        let key = |s: &str| s.parse::<Key>().unwrap();
        assert_eq!(
            key("ctrl-C"),
            Key {
                name: KeyName::Char('c'),
                ctrl: true,
                alt: false
            }
        );
        assert_eq!(
            key("alt-ctrl-pgdn"),
            Key {
                name: KeyName::PageDown,
                ctrl: true,
                alt: true
            }
        );
        assert_eq!(key("G").name, KeyName::Char('G'));
        assert_eq!(key("space").name, KeyName::Char(' '));
        assert_eq!(key("F12").name, KeyName::F(12));
        for bad in ["", "f0", "f13", "fx", "ctrl-", "hyper-q", "qq"] {
            assert_eq!(bad.parse::<Key>(), Err(BadKey(bad.to_string())), "{bad:?}");
        }
    }

    #[test]
    fn every_default_key_parses() {
        for (name, keys) in BINDABLE {
            assert_eq!(default_keys_of(name).len(), keys.len(), "{name}");
        }
        assert!(default_keys_of("explode").is_empty());
    }
}
