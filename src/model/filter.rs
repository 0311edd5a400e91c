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

/// Why a filter does not parse; one line, saying what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad filter term \"{term}\": {reason}")]
pub struct FilterError {
    pub term: String,
    pub reason: String,
}

const KEYS_HELP: &str = "keys are state, port, lport, rport, local, remote, pid, proc, user, lab, netns (e.g. state:close-wait port:443)";

impl Filter {
    /// Parses a filter expression such as `state:close-wait,time-wait port:443 !proc:sshd`.
    pub fn parse(text: &str) -> Result<Filter, FilterError> {
        let mut terms = Vec::new();
        for word in text.split_whitespace() {
            terms.push(parse_term(word)?);
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

fn parse_term(word: &str) -> Result<Term, FilterError> {
    let err = |reason: String| FilterError {
        term: word.to_string(),
        reason,
    };
    let (negated, body) = match word.strip_prefix('!') {
        Some(rest) => (true, rest),
        None => (false, word),
    };
    if body.is_empty() {
        return Err(err(format!("nothing after '!'; {KEYS_HELP}")));
    }
    let test = match body.split_once(':') {
        // An IPv6 address such as `::1` is a bare word, not a key.
        Some((key, value)) if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphabetic()) => {
            if value.is_empty() {
                return Err(err(format!("no value after \"{key}:\"")));
            }
            let values: Vec<&str> = value.split(',').filter(|v| !v.is_empty()).collect();
            match key.to_ascii_lowercase().as_str() {
                "state" | "s" => Test::State(
                    values
                        .iter()
                        .map(|v| v.parse::<TcpState>().map_err(|e| err(e.to_string())))
                        .collect::<Result<_, _>>()?,
                ),
                "port" | "p" => Test::Port(Side::Either, parse_ports(&values).map_err(err)?),
                "lport" => Test::Port(Side::Local, parse_ports(&values).map_err(err)?),
                "rport" => Test::Port(Side::Remote, parse_ports(&values).map_err(err)?),
                "local" | "src" => Test::Addr(Side::Local, parse_addrs(&values).map_err(err)?),
                "remote" | "dst" => Test::Addr(Side::Remote, parse_addrs(&values).map_err(err)?),
                "pid" => Test::Pid(
                    values
                        .iter()
                        .map(|v| {
                            v.parse::<u32>()
                                .map_err(|_| err(format!("\"{v}\" is not a pid (a whole number)")))
                        })
                        .collect::<Result<_, _>>()?,
                ),
                "proc" | "process" => {
                    Test::Process(values.iter().map(|v| v.to_lowercase()).collect())
                }
                "user" => Test::User(values.iter().map(|v| v.to_string()).collect()),
                "netns" | "ns" | "container" => {
                    Test::Netns(values.iter().map(|v| v.to_lowercase()).collect())
                }
                "lab" => match value.to_ascii_lowercase().as_str() {
                    "yes" | "true" | "1" => Test::Lab(true),
                    "no" | "false" | "0" => Test::Lab(false),
                    _ => return Err(err("lab takes yes or no".to_string())),
                },
                other => return Err(err(format!("unknown key \"{other}\"; {KEYS_HELP}"))),
            }
        }
        _ => Test::Text(body.to_lowercase()),
    };
    Ok(Term {
        negated,
        text: word.to_string(),
        test,
    })
}

fn parse_ports(values: &[&str]) -> Result<Vec<(u16, u16)>, String> {
    values
        .iter()
        .map(|v| {
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
        })
        .collect()
}

fn parse_addrs(values: &[&str]) -> Result<Vec<AddrPattern>, String> {
    values.iter().map(|v| parse_addr(v)).collect()
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
    let bare = v.trim_start_matches('[').trim_end_matches(']');
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
}
