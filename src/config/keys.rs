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
    ("closes", &["C"]),
    ("alerts", &["a"]),
    ("copy", &["y"]),
    ("names", &["n"]),
    ("close", &["x"]),
    ("abort", &["X"]),
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

/// The key that always quits, whatever `[keys]` says: a dashboard must never be left
/// without a way out (a rebound `quit` keeps it too).
pub const ALWAYS_QUIT: &str = "ctrl-c";

/// Keys the dashboard keeps for itself: `1`..`9` and `0` toggle the quick filter on a
/// state of the strip.
pub fn reserved_of(key: &Key) -> Option<&'static str> {
    match key.name {
        KeyName::Char(c) if c.is_ascii_digit() && !key.ctrl && !key.alt => {
            Some("the quick state filter (keys 0-9)")
        }
        _ => None,
    }
}

/// The keys of `bindings` as the dashboard will use them: `quit` always has
/// [`ALWAYS_QUIT`] as well as what the config gave it.
pub fn with_fixed_keys(mut bindings: Vec<(String, Vec<Key>)>) -> Vec<(String, Vec<Key>)> {
    if let (Some(slot), Ok(ctrl_c)) = (
        bindings.iter_mut().find(|(n, _)| n == "quit"),
        ALWAYS_QUIT.parse::<Key>(),
    ) && !slot.1.contains(&ctrl_c)
    {
        slot.1.push(ctrl_c);
    }
    bindings
}

/// A key bound to two things: the message names the key and both actions, so a config
/// such as `quit = "s"` (which would take `s` from `sort`) is refused instead of leaving
/// the dashboard without a working quit.
/// The error carries the actions involved (the later one first) so the caller can point
/// at the one the file set.
pub fn check_conflicts(bindings: &[(String, Vec<Key>)]) -> Result<(), (Vec<String>, String)> {
    let mut seen: Vec<(Key, &str)> = Vec::new();
    for (name, keys) in bindings {
        for (i, key) in keys.iter().enumerate() {
            let shown = describe(key);
            if keys[..i].contains(key) {
                return Err((
                    vec![name.clone()],
                    format!("\"{shown}\" is listed twice for {name}"),
                ));
            }
            if let Some(what) = reserved_of(key) {
                return Err((
                    vec![name.clone()],
                    format!("\"{shown}\" is kept for {what}; bind {name} to another key"),
                ));
            }
            if let Some((_, other)) = seen.iter().find(|(k, _)| k == key) {
                return Err((
                    vec![name.clone(), other.to_string()],
                    format!(
                        "\"{shown}\" is bound to both {other} and {name}; give one of them another key \
                         (a [keys] entry replaces that action's default keys)"
                    ),
                ));
            }
            seen.push((*key, name));
        }
    }
    Ok(())
}

/// A key as the config writes it, for messages (`ctrl-c`, `s`, `pagedown`).
fn describe(key: &Key) -> String {
    let mut out = String::new();
    if key.ctrl {
        out.push_str("ctrl-");
    }
    if key.alt {
        out.push_str("alt-");
    }
    match key.name {
        KeyName::Char(' ') => out.push_str("space"),
        KeyName::Char(c) => out.push(c),
        KeyName::F(n) => out.push_str(&format!("f{n}")),
        other => out.push_str(&format!("{other:?}").to_ascii_lowercase()),
    }
    out
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

    fn bind(pairs: &[(&str, &[&str])]) -> Vec<(String, Vec<Key>)> {
        pairs
            .iter()
            .map(|(n, ks)| {
                (
                    n.to_string(),
                    ks.iter().map(|k| k.parse().unwrap()).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn the_defaults_conflict_with_nothing() {
        assert_eq!(check_conflicts(&with_fixed_keys(default_keys())), Ok(()));
    }

    #[test]
    fn a_key_bound_twice_names_both_actions() {
        let (key, msg) = check_conflicts(&bind(&[("quit", &["s"]), ("sort", &["s"])])).unwrap_err();
        assert_eq!(key, ["sort", "quit"]);
        assert!(
            msg.contains("\"s\"") && msg.contains("quit") && msg.contains("sort"),
            "{msg}"
        );
        let (_, msg) = check_conflicts(&bind(&[("up", &["k", "k"])])).unwrap_err();
        assert!(msg.contains("twice"), "{msg}");
        let (_, msg) = check_conflicts(&bind(&[("lab", &["5"])])).unwrap_err();
        assert!(msg.contains("quick state filter"), "{msg}");
    }

    #[test]
    fn ctrl_c_stays_with_quit_and_cannot_go_elsewhere() {
        let fixed = with_fixed_keys(bind(&[("quit", &["x"]), ("help", &["?"])]));
        assert_eq!(fixed[0].1.len(), 2, "{fixed:?}");
        let (_, msg) = check_conflicts(&with_fixed_keys(bind(&[
            ("quit", &["x"]),
            ("help", &["ctrl-c"]),
        ])))
        .unwrap_err();
        assert!(
            msg.contains("ctrl-c") && msg.contains("quit") && msg.contains("help"),
            "{msg}"
        );
    }
}
