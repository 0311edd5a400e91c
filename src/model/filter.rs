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
mod tests {
    use super::*;
    use crate::model::connection::Owner;

    fn c(local: &str, remote: &str, state: TcpState, owner: Option<(u32, &str)>) -> Connection {
        let mut c = Connection::new(local.parse().unwrap(), remote.parse().unwrap(), state);
        if let Some((pid, name)) = owner {
            c.owners = vec![Owner {
                pid,
                name: Some(name.into()),
            }]
            .into();
        }
        c
    }

    fn keeps(filter: &str, conns: &[Connection]) -> Vec<usize> {
        let f = Filter::parse(filter).unwrap();
        conns
            .iter()
            .enumerate()
            .filter(|(_, c)| f.matches(c))
            .map(|(i, _)| i)
            .collect()
    }

    fn fixture() -> Vec<Connection> {
        vec![
            c(
                "127.0.0.1:5000",
                "127.0.0.1:41000",
                TcpState::CloseWait,
                Some((10, "java")),
            ),
            c(
                "[::1]:443",
                "[::1]:50000",
                TcpState::Established,
                Some((20, "nginx")),
            ),
            c("10.1.2.3:50001", "10.9.9.9:5432", TcpState::TimeWait, None),
            c(
                "[::ffff:127.0.0.1]:8080",
                "[::ffff:127.0.0.1]:40000",
                TcpState::TimeWait,
                None,
            ),
            c(
                "0.0.0.0:22",
                "0.0.0.0:0",
                TcpState::Listen,
                Some((1, "sshd")),
            ),
        ]
    }

    #[test]
    fn terms_combine_with_and_values_with_or() {
        let f = fixture();
        assert_eq!(keeps("state:close-wait,TIME_WAIT", &f), vec![0, 2, 3]);
        assert_eq!(keeps("state:time-wait port:5432", &f), vec![2]);
        assert_eq!(keeps("", &f), vec![0, 1, 2, 3, 4]);
        assert_eq!(keeps("!state:listen !s:time-wait", &f), vec![0, 1]);
    }

    #[test]
    fn ports_match_either_side_unless_told() {
        let f = fixture();
        assert_eq!(keeps("port:443", &f), vec![1]);
        assert_eq!(keeps("port:41000", &f), vec![0]);
        assert_eq!(keeps("lport:41000", &f), Vec::<usize>::new());
        assert_eq!(keeps("rport:40000-50000", &f), vec![0, 1, 3]);
    }

    #[test]
    fn addresses_with_ports_prefixes_and_mapped_v4() {
        let f = fixture();
        assert_eq!(keeps("local:127.0.0.1", &f), vec![0, 3]);
        assert_eq!(keeps("local:127.0.0.1:8080", &f), vec![3]);
        assert_eq!(keeps("local:[::1]:443", &f), vec![1]);
        assert_eq!(keeps("local:::1", &f), vec![1]);
        assert_eq!(keeps("remote:10.0.0.0/8", &f), vec![2]);
        assert_eq!(keeps("local:*:22", &f), vec![4]);
    }

    #[test]
    fn processes_pids_and_free_text() {
        let f = fixture();
        assert_eq!(keeps("proc:JAV", &f), vec![0]);
        assert_eq!(keeps("pid:20,1", &f), vec![1, 4]);
        assert_eq!(keeps("nginx", &f), vec![1]);
        assert_eq!(keeps("10.9.9.9", &f), vec![2]);
        assert_eq!(keeps("::1", &f), vec![1]);
    }

    #[test]
    fn errors_say_what_is_allowed() {
        for (text, needle) in [
            ("state:close-wiat", "close-wait"),
            ("colour:red", "keys are state"),
            ("port:http", "not a port"),
            ("port:90-80", "backwards"),
            ("remote:nowhere", "ADDR[:PORT]"),
            ("local:10.0.0.0/40", "0-32"),
            ("pid:-3", "whole number"),
            ("state:", "no value"),
            ("!", "nothing after"),
        ] {
            let e = Filter::parse(text).unwrap_err().to_string();
            assert!(e.contains(needle), "{text}: {e}");
            assert!(!e.contains('\n'), "one line: {e}");
        }
    }

    #[test]
    fn lab_sockets_are_selected_or_left_out() {
        let mut f = fixture();
        f[1].lab = true;
        assert_eq!(keeps("lab:yes", &f), vec![1]);
        assert_eq!(keeps("lab:no state:listen", &f), vec![4]);
        assert!(
            Filter::parse("lab:maybe")
                .unwrap_err()
                .to_string()
                .contains("yes or no")
        );
    }

    #[test]
    fn restricts_states_for_backends() {
        let f = Filter::parse("state:close-wait,time-wait s:time-wait port:1").unwrap();
        assert_eq!(f.states(), Some(vec![TcpState::TimeWait]));
        assert_eq!(Filter::parse("!state:listen").unwrap().states(), None);
    }

    #[test]
    fn shows_back_what_was_typed() {
        let f = Filter::parse("state:close-wait   !proc:sshd")
            .unwrap()
            .and(Filter::parse("port:80").unwrap());
        assert_eq!(f.to_string(), "state:close-wait !proc:sshd port:80");
    }

    #[test]
    fn netns_terms_match_the_namespace_by_name_or_kind() {
        use crate::model::Tuple;
        use crate::model::netns::{Netns, NetnsKind};
        let ends = (
            "127.0.0.1:80".parse().unwrap(),
            "127.0.0.1:4000".parse().unwrap(),
        );
        let conns: Vec<Connection> = [0, 1, 2]
            .map(|ns| Connection::on(Tuple::in_netns(ends.0, ends.1, ns), TcpState::CloseWait))
            .into();
        let table = NetnsTable::new(vec![
            Netns {
                id: 0,
                inode: 1,
                kind: NetnsKind::Host,
                name: "host".into(),
                pid: Some(1),
            },
            Netns {
                id: 1,
                inode: 2,
                kind: NetnsKind::Container { runtime: "docker" },
                name: "Orders-API".into(),
                pid: Some(812),
            },
            Netns {
                id: 2,
                inode: 3,
                kind: NetnsKind::Named,
                name: "blue".into(),
                pid: None,
            },
        ]);
        let keep = |f: &str| -> Vec<usize> {
            let f = Filter::parse(f).unwrap();
            (0..conns.len())
                .filter(|&i| f.matches_in(&conns[i], &table))
                .collect()
        };
        assert_eq!(keep("netns:orders"), [1]);
        assert_eq!(keep("container:docker"), [1]);
        assert_eq!(keep("ns:host"), [0]);
        assert_eq!(keep("!netns:host"), [1, 2]);
        assert_eq!(keep("netns:blue,orders-api"), [1, 2]);
        assert_eq!(keep("orders"), [1]);
        assert_eq!(keep("netns:green"), Vec::<usize>::new());
        // Without a table only lingertop's own namespace has a name.
        let f = Filter::parse("netns:host").unwrap();
        assert!(f.matches(&conns[0]) && !f.matches(&conns[1]));
    }

    /// The column and reason of the error `text` gives.
    fn error(text: &str) -> (usize, String) {
        let e = Filter::parse(text).unwrap_err();
        assert!(!e.to_string().contains('\n'), "one line: {e}");
        (e.column, e.reason)
    }

    #[test]
    fn what_used_to_be_misparsed_is_an_error_at_its_column() {
        for (text, column, needle) in [
            ("!!state:listen", 2, "two '!'"),
            ("(state:listen", 1, "does not group"),
            ("state:listen)", 13, "does not group"),
            ("proc:\"nginx", 6, "never closed"),
            ("state:,", 7, "empty value"),
            ("port:,", 6, "empty value"),
            ("port:80,", 9, "empty value"),
            ("state:close-wait,,listen", 18, "empty value"),
            ("local:[::1", 7, "never closed"),
            ("local:::1]", 7, "never opened"),
            ("port:80 proc:a\x1bb", 15, "bidi character \\x1b"),
            ("proc:\"a\u{202e}b\"", 8, "bidi character \\u{202e}"),
            ("proc:ng\"inx", 8, "quote inside"),
            ("proc:\"ng\"inx", 10, "after a closing quote"),
            ("proc:\"\"", 6, "empty quoted"),
            ("proc:\"a\\qb\"", 8, "unknown escape"),
            ("x colour:red", 3, "unknown key"),
            ("port:1 state:close-wiat", 14, "close-wait"),
            ("port:1,http", 8, "not a port"),
            ("lab:yes,no", 5, "yes or no"),
            // Found by cargo fuzz: the term shown stopped at the newline only outside quotes.
            ("1\"0\n", 2, "quote inside"),
        ] {
            let (col, reason) = error(text);
            assert_eq!(col, column, "{text}: {reason}");
            assert!(reason.contains(needle), "{text}: {reason}");
        }
        assert!(
            error("bogus:1").1.contains(", lab "),
            "the key list names lab"
        );
    }

    #[test]
    fn quoted_values_take_spaces_parentheses_and_the_escapes_the_table_shows() {
        let mut f = fixture();
        f[0].owners = vec![Owner {
            pid: 10,
            name: Some("\x1b]0;PWN\x07 (x)".into()),
        }]
        .into();
        assert_eq!(keeps("proc:\"\\x1b]0;pwn\"", &f), vec![0]);
        assert_eq!(keeps("\"pwn\\x07 (x)\"", &f), vec![0]);
        assert_eq!(keeps("proc:java,\"nginx\"", &f), vec![1]);
        let typed = "proc:\"a b\" !\"(sd-pam)\"";
        assert_eq!(Filter::parse(typed).unwrap().to_string(), typed);
    }

    #[test]
    fn bare_ipv6_addresses_are_words_not_keys() {
        let f = fixture();
        assert_eq!(keeps("::1", &f), vec![1]);
        assert!(Filter::parse("fe80::1").is_ok());
        assert!(Filter::parse("dead:beef::1").is_ok());
    }

    use proptest::prelude::*;

    /// `s` quoted for the filter language: the escapes the table uses, plus `\"`.
    fn quote(s: &str) -> String {
        format!("\"{}\"", crate::sanitize::terminal(s).replace('"', "\\\""))
    }

    /// A valid term and, for the quoted kinds, the value it must carry.
    fn term() -> impl Strategy<Value = String> {
        let state = prop::sample::subsequence(TcpState::ALL.to_vec(), 1..4).prop_map(|v| {
            let names: Vec<String> = v
                .iter()
                .map(|s| s.name().to_lowercase().replace('_', "-"))
                .collect();
            format!("state:{}", names.join(","))
        });
        let port = (any::<u16>(), any::<u16>(), any::<bool>()).prop_map(|(a, b, range)| {
            if range {
                format!("port:{}-{}", a.min(b), a.max(b))
            } else {
                format!("lport:{a}")
            }
        });
        let addr = (any::<std::net::IpAddr>(), any::<u16>(), 0u8..4).prop_map(|(ip, port, how)| {
            // A mapped address is its IPv4 form, prefix included.
            let max = if canonical_ip(ip).is_ipv4() { 32 } else { 128 };
            match how {
                0 => format!("local:{ip}"),
                1 => format!("remote:{}", SocketAddr::new(ip, port)),
                2 => format!("dst:{ip}/{}", port % (max + 1)),
                _ => format!("src:*:{port}"),
            }
        });
        let hostile = prop::collection::vec(any::<char>(), 1..12)
            .prop_map(|v| v.into_iter().collect::<String>());
        let process = hostile.clone().prop_map(|s| format!("proc:{}", quote(&s)));
        let word = hostile.prop_map(|s| quote(&s));
        let plain = "[a-z][a-z0-9._-]{0,10}".prop_map(|w| format!("user:{w}"));
        let misc = prop_oneof![
            any::<u32>().prop_map(|p| format!("pid:{p}")),
            any::<bool>().prop_map(|y| format!("lab:{}", if y { "yes" } else { "no" })),
            "[a-z][a-z0-9.]{0,8}",
        ];
        (
            any::<bool>(),
            prop_oneof![state, port, addr, process, word, plain, misc],
        )
            .prop_map(|(neg, t)| if neg { format!("!{t}") } else { t })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Printing a filter and parsing the print gives the same filter.
        #[test]
        fn parse_print_parse_is_the_same_filter(terms in prop::collection::vec(term(), 0..6), gap in "[ \t]{1,3}") {
            let text = terms.join(&gap);
            let f = Filter::parse(&text).map_err(|e| TestCaseError::fail(format!("{text:?}: {e}")))?;
            prop_assert_eq!(f.terms.len(), terms.len());
            let printed = f.to_string();
            prop_assert_eq!(Filter::parse(&printed), Ok(f), "{:?}", printed);
        }

        /// A quoted process name reaches the test exactly, whatever it holds.
        #[test]
        fn quoted_values_arrive_exactly(name in prop::collection::vec(any::<char>(), 1..12)) {
            let name: String = name.into_iter().collect();
            let f = Filter::parse(&format!("proc:{}", quote(&name))).unwrap();
            prop_assert_eq!(&f.terms[0].test, &Test::Process(vec![name.to_lowercase()]));
        }

        /// No input panics, every error is one line at a column inside the text, and what
        /// parses prints back to itself.
        #[test]
        fn any_text_parses_or_fails_cleanly(text in prop_oneof![
            any::<String>(),
            "[!:,\"()\\\\\\[\\] a-z0-9.\x1b]{0,24}",
        ]) {
            match Filter::parse(&text) {
                Ok(f) => prop_assert_eq!(Filter::parse(&f.to_string()), Ok(f)),
                Err(e) => {
                    prop_assert!(!e.to_string().contains('\n'), "{:?}", e);
                    // At most one past the end: "port:80," is missing a value there.
                    prop_assert!(e.column >= 1 && e.column <= text.chars().count() + 1, "{:?} {}", text, e);
                }
            }
        }
    }
}
