//! Unit tests of the parent module.

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
            ports: None,
        },
        Netns {
            id: 1,
            inode: 2,
            kind: NetnsKind::Container { runtime: "docker" },
            name: "Orders-API".into(),
            pid: Some(812),
            ports: None,
        },
        Netns {
            id: 2,
            inode: 3,
            kind: NetnsKind::Named,
            name: "blue".into(),
            pid: None,
            ports: None,
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
fn misspellings_get_what_was_meant_at_the_column_of_the_mistake() {
    let (col, reason) = error("port:1 state:listen,close-wiat");
    assert_eq!(col, 21, "{reason}");
    assert!(reason.contains("; did you mean close-wait?"), "{reason}");
    let e = Filter::parse("state:listen,close-wiat").unwrap_err();
    assert_eq!(e.suggestion.as_deref(), Some("close-wait"));
    assert_eq!(
        Filter::parse("stat:listen")
            .unwrap_err()
            .suggestion
            .as_deref(),
        Some("state:")
    );
    assert_eq!(Filter::parse("state:bogus").unwrap_err().suggestion, None);
    let (col, reason) = error("port:1 !stat:listen");
    assert_eq!(col, 9, "{reason}");
    assert!(
        reason.starts_with("unknown key \"stat\"; did you mean state:? keys are"),
        "{reason}"
    );
    assert!(!error("colour:red").1.contains("did you mean"));
    // Every key offered as a suggestion is one the scanner reads.
    for k in KEY_NAMES {
        let v = match *k {
            "lab" => "yes",
            "state" | "s" => "listen",
            "local" | "src" | "remote" | "dst" => "::1",
            _ => "1",
        };
        assert!(Filter::parse(&format!("{k}:{v}")).is_ok(), "{k}");
    }
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
    let hostile =
        prop::collection::vec(any::<char>(), 1..12).prop_map(|v| v.into_iter().collect::<String>());
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
