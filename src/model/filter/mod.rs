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
    /// What a misspelt state or key most likely meant (`close-wait`, `state:`); the
    /// reason says it too, the prompt puts it first.
    pub suggestion: Option<String>,
}

/// Every key the scanner knows, aliases included, for "did you mean" (the scanner's `match`
/// in `scan.rs` is the authority; a test checks each of these parses).
const KEY_NAMES: &[&str] = &[
    "state",
    "s",
    "port",
    "p",
    "lport",
    "rport",
    "local",
    "src",
    "remote",
    "dst",
    "pid",
    "proc",
    "process",
    "user",
    "lab",
    "netns",
    "ns",
    "container",
];

const KEYS_HELP: &str = "keys are state (s), port (p), lport, rport, local (src), remote (dst), pid, proc (process), user, netns (container), lab (e.g. state:close-wait port:443)";

impl Filter {
    /// Parses a filter expression such as `state:close-wait,time-wait port:443 !proc:sshd`.
    pub fn parse(text: &str) -> Result<Filter, FilterError> {
        let mut scanner = Scanner::new(text);
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

mod complete;
mod scan;
pub use complete::{Completion, Known, complete};
use scan::Scanner;

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
