//! The filter language, shared by `lingertop snapshot` flags, the config's default filter and
//! the dashboard's `/` prompt.
//!
//! A filter is a list of terms separated by spaces; a connection must match every term.
//! A term is `key:value[,value...]` (any one value matches) or a bare word; `!` before a term
//! negates it.
//!
//! | key | values | matches |
//! |---|---|---|
//! | `state` (`s`) | `close-wait`, `TIME_WAIT`, ... | the TCP state |
//! | `port` (`p`) | `443`, `8000-8100` | local or remote port |
//! | `lport`, `rport` | as `port` | local / remote port only |
//! | `local` (`src`), `remote` (`dst`) | `127.0.0.1`, `[::1]:80`, `::1`, `10.0.0.0/8` | address, optional port |
//! | `pid` | `1234` | owning pid (attributed owners included) |
//! | `proc` (`process`) | `nginx` | process name contains the value, any case |
//! | `user` | `www-data` | socket owner's user name, or uid |
//! | `lab` | `yes`, `no` | one of the close lab's own sockets, or not |
//! | `netns` (`ns`, `container`) | `orders-api`, `host`, `docker`, `pod` | network namespace's name contains it, any case, or its kind is it |
//! | bare word | `java` | process name, either address or the namespace's name contains it |

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use super::connection::{Connection, canonical_ip};
use super::netns::{NetnsTable, OWN_NETNS};
use super::state::TcpState;

/// A parsed filter. The empty filter matches everything.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Filter {
    terms: Vec<Term>,
}

#[derive(Clone, Debug, PartialEq)]
struct Term {
    negated: bool,
    /// The term as the user wrote it, to show the filter back.
    text: String,
    test: Test,
}

#[derive(Clone, Debug, PartialEq)]
enum Test {
    State(Vec<TcpState>),
    Port(Side, Vec<(u16, u16)>),
    Addr(Side, Vec<AddrPattern>),
    Pid(Vec<u32>),
    Process(Vec<String>),
    User(Vec<String>),
    Lab(bool),
    Netns(Vec<String>),
    Text(String),
}

#[derive(Copy, Clone, Debug, PartialEq)]
enum Side {
    Local,
    Remote,
    Either,
}

#[derive(Clone, Debug, PartialEq)]
struct AddrPattern {
    ip: IpAddr,
    /// Prefix length for `ADDR/N`; full length otherwise.
    prefix: u8,
    port: Option<u16>,
}

/// Why a filter does not parse; one line, saying where and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad filter term \"{term}\" at column {column}: {reason}")]
pub struct FilterError {
    /// The term as written (up to the next space outside quotes).
    pub term: String,
    /// 1-based column, in characters of the whole filter text, where the problem starts.
    pub column: usize,
    pub reason: String,
}

const KEYS_HELP: &str = "keys are state (s), port (p), lport, rport, local (src), remote (dst), pid, proc (process), user, netns (container), lab (e.g. state:close-wait port:443)";

impl Filter {
    /// Parses a filter expression such as `state:close-wait,time-wait port:443 !proc:sshd`.
    pub fn parse(text: &str) -> Result<Filter, FilterError> {
        let mut scanner = Scanner {
            text,
            chars: text.char_indices().collect(),
            at: 0,
        };
        let mut terms = Vec::new();
        while let Some(term) = scanner.term()? {
            terms.push(term);
        }
        Ok(Filter { terms })
    }
    /// A filter matching what both match.
    pub fn and(mut self, other: Filter) -> Filter {
        self.terms.extend(other.terms);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Whether `c` matches, its namespace unnamed: a `netns:` term then knows only `host`
    /// (lingertop's own). Outputs of a snapshot use [`Filter::matches_in`].
    pub fn matches(&self, c: &Connection) -> bool {
        self.matches_in(c, &NetnsTable::default())
    }

    /// Whether `c` matches, its namespace named by `netns` (the snapshot's table).
    pub fn matches_in(&self, c: &Connection, netns: &NetnsTable) -> bool {
        self.terms
            .iter()
            .all(|t| t.test.matches(c, netns) != t.negated)
    }

    /// Only the states this filter can match, when it restricts them (lets a backend ask
    /// the kernel for fewer sockets).
    pub fn states(&self) -> Option<Vec<TcpState>> {
        let mut allowed: Option<Vec<TcpState>> = None;
        for t in &self.terms {
            if let (Test::State(states), false) = (&t.test, t.negated) {
                allowed = Some(match allowed {
                    None => states.clone(),
                    Some(prev) => prev.into_iter().filter(|s| states.contains(s)).collect(),
                });
            }
        }
        allowed
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<&str> = self.terms.iter().map(|t| t.text.as_str()).collect();
        f.write_str(&parts.join(" "))
    }
}

impl std::str::FromStr for Filter {
    type Err = FilterError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Filter::parse(s)
    }
}

/// Walks the filter text one term at a time, keeping the position for errors.
struct Scanner<'a> {
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

impl Scanner<'_> {
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
        }
    }

    /// The next term, `None` at the end of the text.
    fn term(&mut self) -> Result<Option<Term>, FilterError> {
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
                return Err(self.err(
                    from,
                    from + usize::from(self.text[self.byte(from)..].starts_with('!')),
                    format!("unknown key \"{other}\"; {KEYS_HELP}"),
                ));
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
fn is_separator(c: char) -> bool {
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

impl Test {
    /// One test from two of the same key's values (`state:a,b`).
    fn merge(self, other: Test) -> Test {
        match (self, other) {
            (Test::State(mut a), Test::State(b)) => {
                a.extend(b);
                Test::State(a)
            }
            (Test::Port(side, mut a), Test::Port(_, b)) => {
                a.extend(b);
                Test::Port(side, a)
            }
            (Test::Addr(side, mut a), Test::Addr(_, b)) => {
                a.extend(b);
                Test::Addr(side, a)
            }
            (Test::Pid(mut a), Test::Pid(b)) => {
                a.extend(b);
                Test::Pid(a)
            }
            (Test::Process(mut a), Test::Process(b)) => {
                a.extend(b);
                Test::Process(a)
            }
            (Test::User(mut a), Test::User(b)) => {
                a.extend(b);
                Test::User(a)
            }
            (Test::Netns(mut a), Test::Netns(b)) => {
                a.extend(b);
                Test::Netns(a)
            }
            (a, _) => a,
        }
    }
}

/// `N` or `N-M`.
fn parse_port_range(v: &str) -> Result<(u16, u16), String> {
    let port = |s: &str| {
        s.parse::<u16>()
            .map_err(|_| format!("\"{s}\" is not a port (0-65535)"))
    };
    match v.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (port(a)?, port(b)?);
            if a > b {
                return Err(format!("port range {v} is backwards; write {b}-{a}"));
            }
            Ok((a, b))
        }
        None => port(v).map(|p| (p, p)),
    }
}

/// `ADDR`, `ADDR:PORT`, `[V6]`, `[V6]:PORT`, `ADDR/PREFIX`, `*:PORT`.
fn parse_addr(v: &str) -> Result<AddrPattern, String> {
    let bad = || {
        format!(
            "\"{v}\" is not an address; use ADDR[:PORT] such as 127.0.0.1, 127.0.0.1:5000, ::1, [::1]:5000 or 10.0.0.0/8"
        )
    };
    if let Some(port) = v.strip_prefix("*:") {
        let port = port.parse::<u16>().map_err(|_| bad())?;
        return Ok(AddrPattern {
            ip: IpAddr::from([0, 0, 0, 0]),
            prefix: 0,
            port: Some(port),
        });
    }
    if let Ok(sa) = v.parse::<SocketAddr>() {
        return Ok(AddrPattern::exact(sa.ip(), Some(sa.port())));
    }
    // Brackets come in pairs and hold an IPv6 address (`[::1]`, `[fe80::/10]`).
    let bare = match (v.strip_prefix('['), v.ends_with(']')) {
        (Some(inner), true) => inner.strip_suffix(']').unwrap_or(inner),
        (None, false) => v,
        (Some(_), false) => {
            return Err(format!(
                "\"{v}\" has a '[' that is never closed; write [V6] or [V6]:PORT, e.g. [::1]:5000"
            ));
        }
        (None, true) => {
            return Err(format!(
                "\"{v}\" has a ']' that was never opened; write [V6] or [V6]:PORT, e.g. [::1]:5000"
            ));
        }
    };
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(AddrPattern::exact(ip, None));
    }
    if let Some((ip, len)) = bare.split_once('/') {
        let ip = canonical_ip(ip.parse::<IpAddr>().map_err(|_| bad())?);
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let prefix = len
            .parse::<u8>()
            .ok()
            .filter(|n| *n <= max)
            .ok_or_else(|| format!("prefix length in \"{v}\" must be 0-{max}"))?;
        return Ok(AddrPattern {
            ip,
            prefix,
            port: None,
        });
    }
    Err(bad())
}

impl AddrPattern {
    fn exact(ip: IpAddr, port: Option<u16>) -> Self {
        let ip = canonical_ip(ip);
        AddrPattern {
            ip,
            prefix: if ip.is_ipv4() { 32 } else { 128 },
            port,
        }
    }

    fn matches(&self, sa: &SocketAddr) -> bool {
        if self.port.is_some_and(|p| p != sa.port()) {
            return false;
        }
        if self.prefix == 0 {
            return true;
        }
        match (self.ip, canonical_ip(sa.ip())) {
            (IpAddr::V4(p), IpAddr::V4(a)) => {
                let mask = u32::MAX << (32 - u32::from(self.prefix));
                u32::from(p) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(p), IpAddr::V6(a)) => {
                let mask = u128::MAX << (128 - u32::from(self.prefix));
                u128::from(p) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// The name of `c`'s namespace, lowercased, and its kind's key (`host` for lingertop's own
/// where the table does not know it).
fn netns_of(c: &Connection, netns: &NetnsTable) -> Option<(String, &'static str)> {
    match netns.get(c.netns()) {
        Some(n) => Some((n.name.to_lowercase(), n.kind.key())),
        None => (c.netns() == OWN_NETNS).then(|| ("host".to_string(), "host")),
    }
}

impl Test {
    fn matches(&self, c: &Connection, netns: &NetnsTable) -> bool {
        match self {
            Test::State(states) => states.contains(&c.state),
            Test::Port(side, ranges) => {
                let hit = |p: u16| ranges.iter().any(|&(a, b)| (a..=b).contains(&p));
                match side {
                    Side::Local => hit(c.local().port()),
                    Side::Remote => hit(c.remote().port()),
                    Side::Either => hit(c.local().port()) || hit(c.remote().port()),
                }
            }
            Test::Addr(side, pats) => {
                let sa = if *side == Side::Remote {
                    &c.remote()
                } else {
                    &c.local()
                };
                pats.iter().any(|p| p.matches(sa))
            }
            Test::Pid(pids) => c.owners.iter().any(|o| pids.contains(&o.pid)),
            Test::Process(names) => c.owners.iter().any(|o| {
                o.name.as_deref().is_some_and(|n| {
                    let n = n.to_lowercase();
                    names.iter().any(|want| n.contains(want.as_str()))
                })
            }),
            Test::User(users) => users.iter().any(|u| {
                c.user_name() == Some(u.as_str())
                    || c.uid().is_some_and(|uid| u.parse::<u32>() == Ok(uid))
            }),
            Test::Lab(want) => c.lab == *want,
            Test::Netns(wants) => netns_of(c, netns).is_some_and(|(name, kind)| {
                wants.iter().any(|w| name.contains(w.as_str()) || kind == w)
            }),
            Test::Text(t) => {
                c.owners.iter().any(|o| {
                    o.name
                        .as_deref()
                        .is_some_and(|n| n.to_lowercase().contains(t.as_str()))
                }) || c.local().to_string().contains(t.as_str())
                    || c.remote().to_string().contains(t.as_str())
                    || netns
                        .get(c.netns())
                        .is_some_and(|n| n.name.to_lowercase().contains(t.as_str()))
            }
        }
    }
}

#[cfg(test)]
mod tests;
