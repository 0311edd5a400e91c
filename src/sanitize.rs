//! Neutralising text that comes from outside (process names, user names, host names, paths,
//! filter and config text echoed in errors) for the output it goes to.
//!
//! Any local user can name a process `\x1b]0;PWN\x07\x1b[2J` or put a newline in it, and
//! lingertop, often run as root, prints other users' process names. Each output kind has
//! one function here, and every writer of that kind calls it on every outside string:
//!
//! | output | function | what happens to a control character |
//! |---|---|---|
//! | terminal text: table cells, alert lines | [`terminal`] | shown escaped: `\x1b`, `\n`, `\u{202e}`; `\` becomes `\\` |
//! | a message on stderr, whole | [`message`] | as the terminal, but `\` stays (the message may quote an escape already) |
//! | CSV cells | [`csv_cell`] | as the terminal (one connection per line, safe to `cat`), plus a `'` before a leading `=`, `+`, `-`, `@` or `'` so a spreadsheet never runs a formula |
//! | Prometheus label values | [`prometheus_label`] | as the terminal; the encoder then escapes `\`, `"` and newline as the format asks |
//! | JSON strings | [`JsonFormatter`] | serde already writes C0 as `\u001b`; DEL, C1 and the bidi and invisible characters are written as `\u` escapes too: the decoded string is exactly the original, and the document is safe to `cat` |
//!
//! Escaped are: C0 (U+0000 to U+001F, tab and newline included), DEL, C1 (U+0080 to U+009F,
//! which some terminals obey like ESC sequences), the bidi controls (U+061C, U+200E, U+200F,
//! U+202A to U+202E, U+2066 to U+2069: they reorder what follows so a row can read as
//! something else), the line and paragraph separators U+2028/U+2029, and the invisible
//! U+200B to U+200D, U+2060 and U+FEFF (they make two names look alike). Everything else,
//! any script included, passes untouched. The terminal, CSV and Prometheus forms are
//! reversible ([`unescape`]): escaping the backslash keeps `\x1b` typed as four characters
//! apart from a real ESC.
//!
//! Prometheus: ESC is legal in a label value, but a terminal that `curl`s `/metrics` would
//! obey it, and label values are for people to read; so they are escaped like the terminal's
//! (the series of such a process is named by its visible escape, e.g. `process="a\\x1bb"` on
//! the wire). JSON keeps the data exact instead, because its consumer decodes it.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io;

/// Whether `c` must not reach an output raw.
pub fn is_unsafe(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}'
        | '\u{7f}'..='\u{9f}'
        | '\u{61c}'
        | '\u{200b}'..='\u{200f}'
        | '\u{2028}'..='\u{202e}'
        | '\u{2060}'
        | '\u{2066}'..='\u{2069}'
        | '\u{feff}')
}

/// `s` with every unsafe character (and the backslash, when `backslash`) escaped visibly;
/// borrowed when there is nothing to escape (the common case costs one scan).
fn escape(s: &str, backslash: bool) -> Cow<'_, str> {
    if !s.chars().any(|c| (backslash && c == '\\') || is_unsafe(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' if backslash => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_unsafe(c) && u32::from(c) < 0x100 => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if is_unsafe(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Outside text for a terminal: a table cell, an alert line, a message on stderr.
pub fn terminal(s: &str) -> Cow<'_, str> {
    escape(s, true)
}

/// A whole message for stderr, as composed with outside text in it (a path, a filter, a
/// config value): its unsafe characters escaped as [`terminal`] does, its backslashes left
/// as they are, since the message's own text may already show an escape (`\x1b`) and a
/// backslash in a message is no danger.
pub fn message(s: &str) -> Cow<'_, str> {
    escape(s, false)
}

/// Outside text for a CSV cell (the CSV writer still does the quoting): escaped as for the
/// terminal, and a leading `=`, `+`, `-`, `@` or `'` gets a `'` before it so a spreadsheet
/// shows the text instead of evaluating it.
pub fn csv_cell(s: &str) -> Cow<'_, str> {
    let escaped = escape(s, true);
    if escaped.starts_with(['=', '+', '-', '@', '\'']) {
        return Cow::Owned(format!("'{escaped}"));
    }
    escaped
}

/// Outside text for a Prometheus label value: escaped as for the terminal; the exposition
/// encoder adds the format's own escapes (`\\`, `\"`, `\n`) on top.
pub fn prometheus_label(s: &str) -> Cow<'_, str> {
    escape(s, true)
}

/// Undoes [`terminal`] and [`prometheus_label`] (and [`csv_cell`] once its leading `'` is
/// removed); `None` when `s` is not such an escape's output.
pub fn unescape(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            '\\' => out.push('\\'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'x' => {
                let hex: String = chars.by_ref().take(2).collect();
                out.push(char::from(u8::from_str_radix(&hex, 16).ok()?));
            }
            'u' => {
                if chars.next()? != '{' {
                    return None;
                }
                let hex: String = chars.by_ref().take_while(|&c| c != '}').collect();
                out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
            }
            _ => return None,
        }
    }
    Some(out)
}

/// A `serde_json` formatter that writes every string character [`is_unsafe`] names as a
/// `\u` escape, beside serde's own escapes of C0, `"` and `\`: the JSON decodes to exactly
/// the original text, and the raw document carries no DEL, C1 or bidi control a terminal or
/// an editor would obey. Wraps the layout formatter (compact or pretty) it is given.
pub struct JsonFormatter<F>(pub F);

impl JsonFormatter<serde_json::ser::CompactFormatter> {
    /// One line, as NDJSON needs.
    pub fn compact() -> Self {
        JsonFormatter(serde_json::ser::CompactFormatter)
    }
}

impl JsonFormatter<serde_json::ser::PrettyFormatter<'static>> {
    /// Indented, for a document people read.
    pub fn pretty() -> Self {
        JsonFormatter(serde_json::ser::PrettyFormatter::new())
    }
}

/// Serialises `value` as one compact JSON line (no newline) with [`JsonFormatter`].
pub fn json_to_writer<W: io::Write, T: serde::Serialize + ?Sized>(
    out: W,
    value: &T,
) -> serde_json::Result<()> {
    let mut ser = serde_json::Serializer::with_formatter(out, JsonFormatter::compact());
    value.serialize(&mut ser)
}

/// Serialises `value` as indented JSON with [`JsonFormatter`].
pub fn json_to_writer_pretty<W: io::Write, T: serde::Serialize + ?Sized>(
    out: W,
    value: &T,
) -> serde_json::Result<()> {
    let mut ser = serde_json::Serializer::with_formatter(out, JsonFormatter::pretty());
    value.serialize(&mut ser)
}

impl<F: serde_json::ser::Formatter> serde_json::ser::Formatter for JsonFormatter<F> {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        // Plain ASCII (nearly every string lingertop writes) goes out in one piece.
        if fragment.bytes().all(|b| b < 0x7f) {
            return w.write_all(fragment.as_bytes());
        }
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if is_unsafe(c) {
                w.write_all(&fragment.as_bytes()[start..i])?;
                // Every unsafe character is in the Basic Multilingual Plane: one \u each.
                write!(w, "\\u{:04x}", u32::from(c))?;
                start = i + c.len_utf8();
            }
        }
        w.write_all(&fragment.as_bytes()[start..])
    }

    // The layout is the wrapped formatter's.
    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn end_object_key<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_key(w)
    }
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_value(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PWN: &str = "\x1b]0;PWN\x07\x1b[2J";

    #[test]
    fn terminal_escapes_visibly_and_leaves_plain_text_alone() {
        assert_eq!(terminal(PWN), "\\x1b]0;PWN\\x07\\x1b[2J");
        assert_eq!(terminal("a\nb\r\tc\u{7f}\u{9b}"), "a\\nb\\r\\tc\\x7f\\x9b");
        assert_eq!(terminal("evil\u{202e}txt.exe"), "evil\\u{202e}txt.exe");
        assert_eq!(terminal("C:\\x1b"), "C:\\\\x1b");
        assert_eq!(message("bad \"\x1b\" (\\x1b)"), "bad \"\\x1b\" (\\x1b)");
        assert!(matches!(terminal("nginx: worker"), Cow::Borrowed(_)));
        assert_eq!(terminal("café 日本 λ"), "café 日本 λ");
    }

    #[test]
    fn csv_cells_never_start_a_formula() {
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(csv_cell("-cmd"), "'-cmd");
        assert_eq!(csv_cell("'quoted"), "''quoted");
        assert_eq!(csv_cell("java"), "java");
        assert_eq!(csv_cell("a\nb"), "a\\nb");
    }

    #[test]
    fn json_escapes_c1_del_and_bidi_but_decodes_to_the_original() {
        let s = format!("{PWN}\u{9b}2J\u{7f}\u{202e}ok λ");
        let mut out = Vec::new();
        json_to_writer(&mut out, &s).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(!text.chars().any(is_unsafe), "{text:?}");
        assert!(
            text.contains("\\u009b") && text.contains("\\u202e"),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<String>(&text).unwrap(), s);
    }

    #[test]
    fn pretty_json_keeps_its_layout() {
        let v = serde_json::json!({"a": [1, 2], "b": "x\u{85}"});
        let mut ours = Vec::new();
        json_to_writer_pretty(&mut ours, &v).unwrap();
        let plain = serde_json::to_string_pretty(&v).unwrap();
        assert_eq!(
            String::from_utf8(ours).unwrap(),
            plain.replace('\u{85}', "\\u0085")
        );
    }

    /// Strings rich in what the sanitisers must catch: controls, C1, bidi, backslashes.
    fn hostile() -> impl Strategy<Value = String> {
        let pieces = prop_oneof![
            any::<char>().prop_map(String::from),
            (0u32..0x20).prop_map(|c| char::from_u32(c).unwrap().to_string()),
            (0x7fu32..0xa0).prop_map(|c| char::from_u32(c).unwrap().to_string()),
            prop::sample::select(vec!["\u{202e}", "\u{2066}", "\u{feff}", "\u{2028}"])
                .prop_map(String::from),
            prop::sample::select(vec!["\\", "\\x1b", "\\u{", "=", "'", "-", "a", " "])
                .prop_map(String::from),
        ];
        prop::collection::vec(pieces, 0..24).prop_map(|v| v.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn terminal_output_is_safe_and_reversible(s in hostile()) {
            let t = terminal(&s);
            prop_assert!(!t.chars().any(is_unsafe), "{:?}", t);
            prop_assert_eq!(unescape(&t), Some(s.clone()));
            let p = prometheus_label(&s);
            prop_assert!(!p.chars().any(is_unsafe));
            prop_assert_eq!(unescape(&p), Some(s.clone()));
            prop_assert!(!message(&s).chars().any(is_unsafe));
        }

        #[test]
        fn csv_output_is_safe_and_reversible(s in hostile()) {
            let c = csv_cell(&s);
            prop_assert!(!c.chars().any(is_unsafe), "{:?}", c);
            prop_assert!(!c.starts_with(['=', '+', '-', '@']));
            let body = match c.strip_prefix('\'') {
                Some(rest) if rest.starts_with(['=', '+', '-', '@', '\'']) => rest,
                _ => &c,
            };
            prop_assert_eq!(unescape(body), Some(s));
        }

        #[test]
        fn json_output_is_safe_and_exact(s in hostile()) {
            let mut out = Vec::new();
            json_to_writer(&mut out, &s).unwrap();
            let text = String::from_utf8(out).unwrap();
            prop_assert!(!text.chars().any(is_unsafe), "{:?}", text);
            prop_assert_eq!(serde_json::from_str::<String>(&text).unwrap(), s);
        }
    }
}
