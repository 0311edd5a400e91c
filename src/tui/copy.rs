//! Copying the selected row as text (`y`): the row's cells tab-separated in the table's
//! order (state, local, remote, process, in state, via, namespace), then the owner's
//! whole command line, every outside string neutralised ([`crate::sanitize::terminal`]:
//! a tab or newline in a process name cannot split the row, an escape in it cannot reach
//! the terminal raw). The text goes to the terminal as
//! OSC 52, which the terminal puts on its clipboard; inside tmux it goes both plainly
//! (tmux, with `set-clipboard on`, keeps it as a paste buffer and hands it on to the
//! terminal outside) and through tmux's passthrough (with `allow-passthrough on`, for a
//! tmux that keeps application clipboards out of its buffers).

use base64::Engine as _;

use super::app::App;
use super::rows::Row;
use crate::sanitize::terminal;

/// At most this much text is copied (terminals cap OSC 52; xterm's default is far above,
/// others drop a longer one whole): a row is a few hundred bytes, a command line up to
/// the 4 KiB the detail pane reads.
pub const COPY_MAX: usize = 16 * 1024;

/// The selected row as one line of tab-separated text, or why there is nothing to copy.
pub fn row_text(app: &App) -> Result<String, &'static str> {
    let row = app.selected_row().ok_or("no row selected")?;
    let command = |pid: Option<u32>| -> String {
        let cmd = pid.and_then(|p| app.command_of.and_then(|f| f(p)));
        cmd.map(|c| c.line).unwrap_or_default()
    };
    let cells: Vec<String> = match row {
        Row::Conn(_) | Row::Ghost(_) => {
            let c = app.conn(row).ok_or("the row's connection is gone")?;
            let now = app
                .shown
                .as_ref()
                .map_or_else(std::time::SystemTime::now, |u| u.snapshot.taken_at);
            let age = if matches!(row, Row::Ghost(_)) {
                "gone".to_string()
            } else {
                crate::report::state_age_cell(c, now).trim().to_string()
            };
            let owner = match c.owner() {
                Some(o) => format!("{} ({})", o.name.as_deref().unwrap_or("?"), o.pid),
                None => "-".to_string(),
            };
            let netns = app
                .shown
                .as_ref()
                .and_then(|u| u.snapshot.netns.name(c.netns()).map(str::to_string))
                .unwrap_or_default();
            // The VIA column's words: how the owner was known when it does not hold it.
            let via = crate::model::Attribution::short(c.attribution);
            vec![
                c.state.name().to_string(),
                c.local().to_string(),
                c.remote().to_string(),
                owner,
                age,
                via.to_string(),
                netns,
                command(c.owner().map(|o| o.pid)),
            ]
        }
        Row::Process(i) => {
            let p = app.procs.get(i).ok_or("the row's process is gone")?;
            vec![
                p.name.clone(),
                p.pid.map_or("-".to_string(), |x| x.to_string()),
                p.total.to_string(),
                command(p.pid),
            ]
        }
        Row::Remote(i) => {
            let r = app.remotes.get(i).ok_or("the row's endpoint is gone")?;
            vec![
                r.remote.to_string(),
                r.time_wait.to_string(),
                r.total.to_string(),
            ]
        }
        Row::Netns(i) => {
            let n = app.netns_rows.get(i).ok_or("the row's namespace is gone")?;
            vec![n.name.to_string(), n.kind.to_string(), n.total.to_string()]
        }
        Row::Group(..) => return Err("a group header: select a connection to copy"),
    };
    let line: Vec<String> = cells.iter().map(|c| terminal(c).into_owned()).collect();
    let mut text = line.join("\t");
    if text.len() > COPY_MAX {
        let mut cut = COPY_MAX;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    Ok(text)
}

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
