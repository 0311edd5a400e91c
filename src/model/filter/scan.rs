//! The filter's scanner: the text one term at a time, with the column of every mistake.

use super::*;

/// Walks the filter text one term at a time, keeping the position for errors.
pub(super) struct Scanner<'a> {
    text: &'a str,
    /// Byte offset and character: columns count characters, slices need bytes.
    chars: Vec<(usize, char)>,
    /// Index into `chars`.
    at: usize,
}

/// A value as written after a key (or as a bare word), unquoted and unescaped.
struct Value {
    column: usize,
    text: String,
}

impl<'a> Scanner<'a> {
    /// A scanner at the start of `text`.
    pub(super) fn new(text: &'a str) -> Scanner<'a> {
        Scanner {
            text,
            chars: text.char_indices().collect(),
            at: 0,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).map(|&(_, c)| c)
    }

    fn byte(&self, at: usize) -> usize {
        self.chars.get(at).map_or(self.text.len(), |&(b, _)| b)
    }

    /// The term starting at character `from`: up to the next separator outside quotes.
    fn term_text(&self, from: usize) -> String {
        let mut quoted = false;
        let mut escaped = false;
        let mut to = from;
        while let Some(&(_, c)) = self.chars.get(to) {
            // A quote spans spaces only: a raw tab or newline is never inside a value, so
            // the term shown in an error stays on one line.
            if is_separator(c) && (!quoted || c != ' ') {
                break;
            }
            match (quoted, escaped, c) {
                (true, false, '\\') => escaped = true,
                (_, false, '"') => quoted = !quoted,
                _ => escaped = false,
            }
            to += 1;
        }
        self.text[self.byte(from)..self.byte(to)].to_string()
    }

    fn err(&self, term_from: usize, at: usize, reason: impl Into<String>) -> FilterError {
        FilterError {
            term: self.term_text(term_from),
            column: at + 1,
            reason: reason.into(),
            suggestion: None,
        }
    }

    /// The next term, `None` at the end of the text.
    pub(super) fn term(&mut self) -> Result<Option<Term>, FilterError> {
        while self.peek().is_some_and(is_separator) {
            self.at += 1;
        }
        let from = self.at;
        let Some(first) = self.peek() else {
            return Ok(None);
        };
        let negated = first == '!';
        if negated {
            self.at += 1;
            match self.peek() {
                None => {
                    return Err(self.err(
                        from,
                        from,
                        "nothing after '!'; put the term right after it, e.g. !state:listen",
                    ));
                }
                Some(c) if is_separator(c) => {
                    return Err(self.err(
                        from,
                        from,
                        "nothing after '!'; put the term right after it, e.g. !state:listen",
                    ));
                }
                Some('!') => {
                    return Err(self.err(
                        from,
                        self.at,
                        "two '!' in a row; one '!' negates the term, so write it once or not at all",
                    ));
                }
                _ => {}
            }
        }
        let body = self.at;
        // `key:`: letters then a colon. An IPv6 address such as `::1` or `fe80::1` is a
        // bare word, not a key.
        let key_len = self.chars[body..]
            .iter()
            .take_while(|(_, c)| c.is_ascii_alphabetic())
            .count();
        let key = &self.text[self.byte(body)..self.byte(body + key_len)];
        let keyed = key_len > 0
            && self
                .chars
                .get(body + key_len)
                .is_some_and(|&(_, c)| c == ':');
        let test = if keyed && !self.is_address_word(body) {
            self.at = body + key_len + 1;
            self.keyed(from, key)?
        } else {
            let v = self.value(from, false)?;
            Test::Text(v.text.to_lowercase())
        };
        let text = self.text[self.byte(from)..self.byte(self.at)].to_string();
        Ok(Some(Term {
            negated,
            text,
            test,
        }))
    }

    /// Whether the word at `from` is a bare IP address (`fe80::1`, `dead:beef::1`) rather
    /// than `key:value`.
    fn is_address_word(&self, from: usize) -> bool {
        let word: String = self.chars[from..]
            .iter()
            .map(|&(_, c)| c)
            .take_while(|&c| !is_separator(c))
            .collect();
        word.parse::<IpAddr>().is_ok()
    }

    /// The values after `key:` (the scanner stands just after the colon) and their test.
    fn keyed(&mut self, from: usize, key: &str) -> Result<Test, FilterError> {
        let after_colon = self.at;
        if self.peek().is_none_or(is_separator) {
            return Err(self.err(from, after_colon - 1, format!("no value after \"{key}:\"")));
        }
        let mut values = vec![self.value(from, true)?];
        while self.peek() == Some(',') {
            self.at += 1;
            values.push(self.value(from, true)?);
        }
        let each = |f: &dyn Fn(&str) -> Result<Test, String>| -> Result<Vec<Test>, FilterError> {
            values
                .iter()
                .map(|v| f(&v.text).map_err(|r| self.err(from, v.column - 1, r)))
                .collect()
        };
        // Each value is checked on its own so an error points at the value that is wrong.
        let merged = |tests: Vec<Test>| tests.into_iter().reduce(Test::merge);
        let test = match key.to_ascii_lowercase().as_str() {
            "state" | "s" => each(&|v| {
                v.parse::<TcpState>()
                    .map(|s| Test::State(vec![s]))
                    .map_err(|e| e.to_string())
            })
            .map_err(|mut e| {
                e.suggestion = values.iter().find_map(|v| {
                    let bad = v.text.parse::<TcpState>().err()?;
                    Some(bad.suggestion?.filter_name())
                });
                e
            })?,
            "port" | "p" => {
                each(&|v| parse_port_range(v).map(|r| Test::Port(Side::Either, vec![r])))?
            }
            "lport" => each(&|v| parse_port_range(v).map(|r| Test::Port(Side::Local, vec![r])))?,
            "rport" => each(&|v| parse_port_range(v).map(|r| Test::Port(Side::Remote, vec![r])))?,
            "local" | "src" => each(&|v| parse_addr(v).map(|a| Test::Addr(Side::Local, vec![a])))?,
            "remote" | "dst" => {
                each(&|v| parse_addr(v).map(|a| Test::Addr(Side::Remote, vec![a])))?
            }
            "pid" => each(&|v| {
                v.parse::<u32>()
                    .map(|p| Test::Pid(vec![p]))
                    .map_err(|_| format!("\"{v}\" is not a pid (a whole number)"))
            })?,
            "proc" | "process" => each(&|v| Ok(Test::Process(vec![v.to_lowercase()])))?,
            "user" => each(&|v| Ok(Test::User(vec![v.to_string()])))?,
            "netns" | "ns" | "container" => each(&|v| Ok(Test::Netns(vec![v.to_lowercase()])))?,
            "lab" => {
                let lab = |v: &str| match v.to_ascii_lowercase().as_str() {
                    "yes" | "true" | "1" => Some(true),
                    "no" | "false" | "0" => Some(false),
                    _ => None,
                };
                match (values.as_slice(), values.first().and_then(|v| lab(&v.text))) {
                    ([_], Some(want)) => vec![Test::Lab(want)],
                    _ => return Err(self.err(from, after_colon, "lab takes yes or no")),
                }
            }
            other => {
                let meant = crate::model::spelling::closest(other, KEY_NAMES.iter().copied());
                let hint = meant
                    .map(|k| format!("did you mean {k}:? "))
                    .unwrap_or_default();
                let mut e = self.err(
                    from,
                    from + usize::from(self.text[self.byte(from)..].starts_with('!')),
                    format!("unknown key \"{other}\"; {hint}{KEYS_HELP}"),
                );
                e.suggestion = meant.map(|k| format!("{k}:"));
                return Err(e);
            }
        };
        merged(test)
            .ok_or_else(|| self.err(from, after_colon, format!("no value after \"{key}:\"")))
    }

    /// One value: `"quoted, with \" escapes"` or plain text up to a separator (or a comma
    /// in a list).
    fn value(&mut self, from: usize, in_list: bool) -> Result<Value, FilterError> {
        let start = self.at;
        if self.peek() == Some('"') {
            return self.quoted(from);
        }
        let mut text = String::new();
        while let Some(c) = self.peek() {
            if is_separator(c) || (in_list && c == ',') {
                break;
            }
            match c {
                '"' => {
                    return Err(self.err(
                        from,
                        self.at,
                        "a quote inside a value; quote the whole value, e.g. proc:\"my app\"",
                    ));
                }
                '(' | ')' => {
                    return Err(self.err(
                        from,
                        self.at,
                        format!(
                            "'{c}' does not group here: terms are all ANDed, values after a key ORed (state:close-wait,time-wait); to search for a '{c}', quote the word, e.g. \"(sd-pam)\""
                        ),
                    ));
                }
                c if crate::sanitize::is_unsafe(c) => return Err(self.control(from, c)),
                _ => text.push(c),
            }
            self.at += 1;
        }
        if text.is_empty() {
            let what = if self.peek() == Some(',') {
                "an empty value before ','; list values as a,b (e.g. state:close-wait,time-wait)"
            } else {
                "an empty value after ','; list values as a,b (e.g. state:close-wait,time-wait)"
            };
            return Err(self.err(from, start, what));
        }
        Ok(Value {
            column: start + 1,
            text,
        })
    }

    fn control(&self, from: usize, c: char) -> FilterError {
        let shown = crate::sanitize::terminal(&c.to_string()).into_owned();
        self.err(
            from,
            self.at,
            format!(
                "control or bidi character {shown} is not allowed; to match it, quote the value and write it as {shown}, e.g. proc:\"a{shown}b\""
            ),
        )
    }

    /// A quoted value; inside, `\"` `\\` `\n` `\r` `\t` `\xNN` `\u{N}` are escapes (as the
    /// table shows a name with such characters, so it can be pasted back).
    fn quoted(&mut self, from: usize) -> Result<Value, FilterError> {
        let open = self.at;
        self.at += 1;
        let mut text = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.err(
                    from,
                    open,
                    "a quote is never closed; end the value with '\"'",
                ));
            };
            self.at += 1;
            match c {
                '"' => break,
                '\\' => {
                    let esc = self.at - 1;
                    let rest: String = self.chars[self.at..].iter().map(|&(_, c)| c).collect();
                    let (ch, used) = unescape_one(&rest).ok_or_else(|| {
                        self.err(
                            from,
                            esc,
                            "unknown escape; inside quotes use \\\" \\\\ \\n \\r \\t \\xNN or \\u{NNNN}",
                        )
                    })?;
                    text.push(ch);
                    self.at += used;
                }
                c if crate::sanitize::is_unsafe(c) => {
                    self.at -= 1;
                    return Err(self.control(from, c));
                }
                c => text.push(c),
            }
        }
        if let Some(c) = self.peek().filter(|&c| !is_separator(c) && c != ',') {
            let _ = c;
            return Err(self.err(
                from,
                self.at,
                "text after a closing quote; put it inside the quotes",
            ));
        }
        if text.is_empty() {
            return Err(self.err(
                from,
                open,
                "an empty quoted value; put text between the quotes",
            ));
        }
        Ok(Value {
            column: open + 1,
            text,
        })
    }
}

/// Spaces (and tabs, newlines) separate terms.
pub(super) fn is_separator(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// The escape after a backslash at the start of `rest`: the character and how many
/// characters of `rest` it used.
fn unescape_one(rest: &str) -> Option<(char, usize)> {
    let mut it = rest.chars();
    match it.next()? {
        '"' => Some(('"', 1)),
        '\\' => Some(('\\', 1)),
        'n' => Some(('\n', 1)),
        'r' => Some(('\r', 1)),
        't' => Some(('\t', 1)),
        'x' => {
            let hex: String = it.take(2).collect();
            let b = u8::from_str_radix(&hex, 16)
                .ok()
                .filter(|_| hex.len() == 2)?;
            Some((char::from(b), 3))
        }
        'u' => {
            if it.next()? != '{' {
                return None;
            }
            let hex: String = it.by_ref().take_while(|&c| c != '}').collect();
            if hex.is_empty() || hex.len() > 6 || rest.chars().nth(2 + hex.len()) != Some('}') {
                return None;
            }
            let c = char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?;
            Some((c, 3 + hex.len()))
        }
        _ => None,
    }
}
