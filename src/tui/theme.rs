//! Colours of the dashboard, from the config's `[theme]` table. With `NO_COLOR` set, every
//! style keeps only its modifiers (bold, reversed, dim, crossed out), so meaning survives
//! without colour.

use ratatui::style::{Color, Modifier, Style};

use crate::config::theme::Colour;
pub use crate::config::theme::ThemeColors;

/// The terminal colour of a config colour.
pub fn color(c: Colour) -> Color {
    match c {
        Colour::Reset => Color::Reset,
        Colour::Black => Color::Black,
        Colour::Red => Color::Red,
        Colour::Green => Color::Green,
        Colour::Yellow => Color::Yellow,
        Colour::Blue => Color::Blue,
        Colour::Magenta => Color::Magenta,
        Colour::Cyan => Color::Cyan,
        Colour::Gray => Color::Gray,
        Colour::DarkGray => Color::DarkGray,
        Colour::LightRed => Color::LightRed,
        Colour::LightGreen => Color::LightGreen,
        Colour::LightYellow => Color::LightYellow,
        Colour::LightBlue => Color::LightBlue,
        Colour::LightMagenta => Color::LightMagenta,
        Colour::LightCyan => Color::LightCyan,
        Colour::White => Color::White,
        Colour::Indexed(i) => Color::Indexed(i),
        Colour::Rgb(r, g, b) => Color::Rgb(r, g, b),
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
        let fg = |c: Colour| {
            if no_color {
                Style::default()
            } else {
                Style::default().fg(color(c))
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
                    .bg(color(c.selected))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_colours_become_the_same_terminal_colours() {
        assert_eq!(color(Colour::DarkGray), Color::DarkGray);
        assert_eq!(color(Colour::LightCyan), Color::LightCyan);
        assert_eq!(color(Colour::Indexed(42)), Color::Indexed(42));
        assert_eq!(color(Colour::Rgb(1, 2, 3)), Color::Rgb(1, 2, 3));
        // Every name the config takes means what the terminal library calls it.
        for name in [
            "reset",
            "black",
            "red",
            "green",
            "yellow",
            "blue",
            "magenta",
            "cyan",
            "gray",
            "darkgray",
            "lightred",
            "lightgreen",
            "lightyellow",
            "lightblue",
            "lightmagenta",
            "lightcyan",
            "white",
            "bright-red",
            "grey",
            "17",
            "#102030",
        ] {
            let ours: Colour = name.parse().unwrap();
            assert_eq!(Ok(color(ours)), name.parse::<Color>(), "{name}");
        }
        let t = Theme::new(
            &ThemeColors {
                critical: Colour::Rgb(0xff, 0x88, 0x00),
                ..ThemeColors::default()
            },
            false,
        );
        assert_eq!(t.critical.fg, Some(Color::Rgb(0xff, 0x88, 0x00)));
        assert_eq!(t.selected.bg, Some(Color::Blue));
    }
}
