//! Colours of the dashboard, from the config's `[theme]` table. With `NO_COLOR` set, every
//! style keeps only its modifiers (bold, reversed, dim, crossed out), so meaning survives
//! without colour.

use ratatui::style::{Color, Modifier, Style};

/// Colours by role; each can be set in the config's `[theme]`.
#[derive(Clone, Debug, PartialEq)]
pub struct ThemeColors {
    pub accent: Color,
    pub warning: Color,
    pub critical: Color,
    pub new: Color,
    pub changed: Color,
    pub vanished: Color,
    pub selected: Color,
    pub muted: Color,
}

impl Default for ThemeColors {
    fn default() -> Self {
        ThemeColors {
            accent: Color::Cyan,
            warning: Color::Yellow,
            critical: Color::Red,
            new: Color::Green,
            changed: Color::Magenta,
            vanished: Color::DarkGray,
            selected: Color::Blue,
            muted: Color::Gray,
        }
    }
}

/// The config key of each role, in `[theme]`.
pub const ROLES: &[&str] = &[
    "accent", "warning", "critical", "new", "changed", "vanished", "selected", "muted",
];

impl ThemeColors {
    /// Sets a role by its config name; false when the name is not a role.
    pub fn set(&mut self, role: &str, c: Color) -> bool {
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

/// Ready-made styles.
#[derive(Clone, Debug)]
pub struct Theme {
    pub title: Style,
    pub label: Style,
    pub muted: Style,
    pub warning: Style,
    pub critical: Style,
    pub new_row: Style,
    pub changed_row: Style,
    pub vanished_row: Style,
    pub selected: Style,
    pub header_row: Style,
    pub key: Style,
}

impl Theme {
    pub fn new(c: &ThemeColors, no_color: bool) -> Self {
        let fg = |color: Color| {
            if no_color {
                Style::default()
            } else {
                Style::default().fg(color)
            }
        };
        let bold = Modifier::BOLD;
        Theme {
            title: fg(c.accent).add_modifier(bold),
            label: fg(c.accent),
            muted: fg(c.muted).add_modifier(if no_color {
                Modifier::DIM
            } else {
                Modifier::empty()
            }),
            warning: fg(c.warning).add_modifier(bold),
            critical: fg(c.critical).add_modifier(bold),
            new_row: fg(c.new).add_modifier(bold),
            changed_row: fg(c.changed).add_modifier(bold),
            vanished_row: fg(c.vanished).add_modifier(Modifier::CROSSED_OUT | Modifier::DIM),
            selected: if no_color {
                Style::default().add_modifier(Modifier::REVERSED)
            } else {
                Style::default()
                    .bg(c.selected)
                    .fg(Color::White)
                    .add_modifier(bold)
            },
            header_row: Style::default().add_modifier(bold | Modifier::UNDERLINED),
            key: fg(c.accent).add_modifier(bold),
        }
    }

    /// Whether the environment asks for no colour (<https://no-color.org>).
    pub fn no_color_env() -> bool {
        std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
    }
}
