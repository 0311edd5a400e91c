//! Copying the selected row (`y`) to the terminal's clipboard: the row's text (written by
//! `App::row_text`, in `app/row_text.rs`) goes to the terminal as OSC 52, which the
//! terminal puts on its clipboard; inside tmux it goes both plainly (tmux, with
//! `set-clipboard on`, keeps it as a paste buffer and hands it on to the terminal outside)
//! and through tmux's passthrough (with `allow-passthrough on`, for a tmux that keeps
//! application clipboards out of its buffers).

use base64::Engine as _;

/// At most this much text is copied (terminals cap OSC 52; xterm's default is far above,
/// others drop a longer one whole): a row is a few hundred bytes, a command line up to
/// the 4 KiB the detail pane reads.
pub const COPY_MAX: usize = 16 * 1024;

/// The bytes that ask the terminal to put `text` on its clipboard (OSC 52, `c`: the
/// clipboard selection, BEL-terminated as xterm and tmux both read it). `in_tmux` (`$TMUX`
/// set) adds the same sequence wrapped in tmux's passthrough (`ESC P tmux;`, every ESC
/// inside doubled, `ESC \`), for a terminal behind a tmux that keeps it from its buffers.
pub fn osc52(text: &str, in_tmux: bool) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
    let plain = format!("\x1b]52;c;{b64}\x07");
    if !in_tmux {
        return plain;
    }
    let wrapped = format!("\x1bPtmux;{}\x1b\\", plain.replace('\x1b', "\x1b\x1b"));
    format!("{plain}{wrapped}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-decoder, so the test does not check the encoder against itself.
    fn decode(b64: &str) -> Vec<u8> {
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut bits = 0u32;
        let mut n = 0;
        let mut out = Vec::new();
        for c in b64.bytes().filter(|&c| c != b'=') {
            let v = alphabet
                .iter()
                .position(|&a| a == c)
                .expect("base64 alphabet") as u32;
            bits = (bits << 6) | v;
            n += 6;
            if n >= 8 {
                n -= 8;
                out.push((bits >> n) as u8);
            }
        }
        out
    }

    #[test]
    fn osc52_is_well_formed_and_carries_the_text() {
        let text = "CLOSE_WAIT\t127.0.0.1:5000\tnginx (42)\tnginx -g daemon off;";
        let s = osc52(text, false);
        let payload = s
            .strip_prefix("\x1b]52;c;")
            .and_then(|r| r.strip_suffix('\x07'))
            .unwrap_or_else(|| panic!("not OSC 52: {s:?}"));
        assert!(!payload.contains(['\x1b', '\x07', '\n']), "{payload:?}");
        assert_eq!(payload.len() % 4, 0, "padded");
        assert_eq!(decode(payload), text.as_bytes());
        assert_eq!(decode(&osc52("ü", false)[7..11]), "ü".as_bytes());
    }

    #[test]
    fn inside_tmux_it_goes_plainly_and_through_the_passthrough() {
        let plain = osc52("row", false);
        let s = osc52("row", true);
        let wrapped = s.strip_prefix(plain.as_str()).expect("the plain one first");
        let inner = wrapped
            .strip_prefix("\x1bPtmux;")
            .and_then(|r| r.strip_suffix("\x1b\\"))
            .unwrap_or_else(|| panic!("not a tmux passthrough: {wrapped:?}"));
        // Every ESC inside doubled, so tmux hands on exactly the plain sequence.
        assert_eq!(inner.replace("\x1b\x1b", "\x1b"), plain);
        assert!(!inner.replace("\x1b\x1b", "").contains('\x1b'));
    }
}
