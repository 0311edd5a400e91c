//! The dashboard's colours as the config's `[theme]` table writes them: plain data, no
//! terminal types; the dashboard turns each [`Colour`] into its own.

use std::str::FromStr;

/// A colour: one of the 16 terminal colours, an index into the 256-colour palette, or
/// 24-bit RGB.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Colour {
    /// The terminal's own default.
    Reset,
    Black,
    Red,
    Green,
    Yellow,
    Blue,
    Magenta,
    Cyan,
    Gray,
    DarkGray,
    LightRed,
    LightGreen,
    LightYellow,
    LightBlue,
    LightMagenta,
    LightCyan,
    White,
    Indexed(u8),
    Rgb(u8, u8, u8),
}

/// Colour names after spaces, dashes and underscores are dropped and `bright` reads as
/// `light`, `grey` as `gray`.
const NAMES: &[(&str, Colour)] = &[
    ("reset", Colour::Reset),
    ("black", Colour::Black),
    ("red", Colour::Red),
    ("green", Colour::Green),
    ("yellow", Colour::Yellow),
    ("blue", Colour::Blue),
    ("magenta", Colour::Magenta),
    ("cyan", Colour::Cyan),
    ("gray", Colour::Gray),
    ("silver", Colour::Gray),
    ("darkgray", Colour::DarkGray),
    ("lightblack", Colour::DarkGray),
    ("lightred", Colour::LightRed),
    ("lightgreen", Colour::LightGreen),
    ("lightyellow", Colour::LightYellow),
    ("lightblue", Colour::LightBlue),
    ("lightmagenta", Colour::LightMagenta),
    ("lightcyan", Colour::LightCyan),
    ("white", Colour::White),
    ("lightgray", Colour::White),
    ("lightwhite", Colour::White),
];

/// Not a colour name, palette index or `#rrggbb`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadColour;

impl FromStr for Colour {
    type Err = BadColour;

    /// A name (`red`, `dark-gray`, `Bright Blue`, `grey`), an index 0-255, or `#rrggbb`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name: String = s
            .to_lowercase()
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '_'))
            .collect();
        let name = name.replace("bright", "light").replace("grey", "gray");
        if let Some((_, c)) = NAMES.iter().find(|(n, _)| *n == name) {
            return Ok(*c);
        }
        if let Ok(i) = s.parse::<u8>() {
            return Ok(Colour::Indexed(i));
        }
        let hex = s
            .strip_prefix('#')
            .filter(|h| h.len() == 6)
            .ok_or(BadColour)?;
        let byte = |at: usize| {
            hex.get(at..at + 2)
                .and_then(|b| u8::from_str_radix(b, 16).ok())
                .ok_or(BadColour)
        };
        Ok(Colour::Rgb(byte(0)?, byte(2)?, byte(4)?))
    }
}

/// Colours by role; each can be set in the config's `[theme]`.
#[derive(Clone, Debug, PartialEq)]
pub struct ThemeColors {
    pub accent: Colour,
    pub warning: Colour,
    pub critical: Colour,
    pub new: Colour,
    pub changed: Colour,
    pub vanished: Colour,
    pub selected: Colour,
    pub muted: Colour,
}

impl Default for ThemeColors {
    fn default() -> Self {
        ThemeColors {
            accent: Colour::Cyan,
            warning: Colour::Yellow,
            critical: Colour::Red,
            new: Colour::Green,
            changed: Colour::Magenta,
            vanished: Colour::DarkGray,
            selected: Colour::Blue,
            muted: Colour::Gray,
        }
    }
}

impl ThemeColors {
    /// Sets a role by its config name; false when the name is not a role.
    pub fn set(&mut self, role: &str, c: Colour) -> bool {
        let slot = match role {
            "accent" => &mut self.accent,
            "warning" => &mut self.warning,
            "critical" => &mut self.critical,
            "new" => &mut self.new,
            "changed" => &mut self.changed,
            "vanished" => &mut self.vanished,
            "selected" => &mut self.selected,
            "muted" => &mut self.muted,
            _ => return false,
        };
        *slot = c;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_parse_by_name_index_and_hex() {
        let c = |s: &str| s.parse::<Colour>();
        assert_eq!(c("red"), Ok(Colour::Red));
        assert_eq!(c("Dark-Grey"), Ok(Colour::DarkGray));
        assert_eq!(c("bright blue"), Ok(Colour::LightBlue));
        assert_eq!(c("light_gray"), Ok(Colour::White));
        assert_eq!(c("0"), Ok(Colour::Indexed(0)));
        assert_eq!(c("255"), Ok(Colour::Indexed(255)));
        assert_eq!(c("#ff8800"), Ok(Colour::Rgb(0xff, 0x88, 0x00)));
        for bad in [
            "plaid", "256", "-1", "#ff88", "#ff880", "#gg8800", "ff8800", "",
        ] {
            assert_eq!(c(bad), Err(BadColour), "{bad:?}");
        }
    }

    #[test]
    fn roles_are_set_by_their_config_names() {
        let mut t = ThemeColors::default();
        assert!(t.set("muted", Colour::Indexed(8)));
        assert_eq!(t.muted, Colour::Indexed(8));
        assert!(!t.set("background", Colour::Black));
        assert_eq!(
            t,
            ThemeColors {
                muted: Colour::Indexed(8),
                ..ThemeColors::default()
            }
        );
    }
}
