//! The exposition of fixture updates, read back from the rendered text.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustc_hash::FxHashMap;

use super::encode::{FAMILIES, SEVERITIES};
use super::*;
use crate::live::Update;
use crate::model::PortRange;
use crate::model::alerts::Alert;
use crate::model::connection::{Owner, Snapshot, Tracking};
use crate::model::tracker::Sample;
use crate::model::{Connection, StateCounts};
use crate::model::{ProcessInfo, RuleId, Severity, TcpState};

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
}

fn conn(local: &str, remote: &str, state: TcpState, pid: Option<(u32, &str)>) -> Connection {
    let mut c = Connection::new(local.parse().unwrap(), remote.parse().unwrap(), state);
    if let Some((pid, name)) = pid {
        c.owners = vec![Owner {
            pid,
            name: Some(name.into()),
        }]
        .into();
    }
    c
}

fn update(connections: Vec<Connection>, alerts: Vec<Alert>) -> Update {
    let snapshot = Snapshot {
        taken_at: at(10),
        host: "fixture".into(),
        process_info: ProcessInfo::Full,
        ephemeral_ports: PortRange {
            low: 40000,
            high: 40999,
        },
        poll_duration: Duration::from_millis(25),
        connections,
        unread: None,
        netns: Default::default(),
        counters: Vec::new(),
    };
    Update {
        seq: 7,
        sample: Sample {
            at: snapshot.taken_at,
            counts: StateCounts::default(),
            close_wait_by_pid: FxHashMap::default(),
        },
        snapshot: Arc::new(snapshot),
        alerts,
        transitions: Vec::new(),
        errors: 0,
    }
}

/// The value of the sample whose line starts with `series` (name and labels).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
}

#[test]
fn rank_keeps_the_largest_and_sums_the_rest() {
    let counts: FxHashMap<&str, u64> = [("a", 5), ("b", 9), ("c", 1), ("d", 5), ("e", 2)]
        .into_iter()
        .collect();
    let r = rank(counts, 3);
    assert_eq!(r.top, vec![("b", 9), ("a", 5), ("d", 5)]);
    assert_eq!(r.other, 3);
    let r = rank(FxHashMap::from_iter([("x", 1u64)]), 3);
    assert_eq!((r.top.len(), r.other), (1, 0));
}

#[test]
fn breakdowns_are_cut_to_top_n_plus_other() {
    let mut conns = Vec::new();
    // 5 processes holding 1..=5 CLOSE_WAIT each, plus 2 with no visible owner.
    for pid in 1..=5u32 {
        for i in 0..pid {
            conns.push(conn(
                &format!("127.0.0.1:{}", 8000 + pid),
                &format!("127.0.0.1:{}", 50000 + i),
                TcpState::CloseWait,
                Some((pid, "app")),
            ));
        }
    }
    for i in 0..2 {
        conns.push(conn(
            "10.0.0.1:80",
            &format!("10.0.0.2:{}", 50000 + i),
            TcpState::CloseWait,
            None,
        ));
    }
    // 300 TIME_WAIT toward 300 distinct remotes, from ephemeral ports.
    for i in 0..300u16 {
        conns.push(conn(
            &format!("127.0.0.1:{}", 40000 + i),
            &format!("127.0.0.2:{}", 1000 + i),
            TcpState::TimeWait,
            None,
        ));
    }
    let e = Exposition::from_update(&update(conns, Vec::new()), 0, 3);
    let top: Vec<(Option<u32>, u64)> = e
        .close_wait_by_process
        .top
        .iter()
        .map(|(k, n)| (k.0.as_ref().map(|(p, _)| *p), *n))
        .collect();
    assert_eq!(top, vec![(Some(5), 5), (Some(4), 4), (Some(3), 3)]);
    assert_eq!(e.close_wait_by_process.other, 2 + 1 + 2);
    assert_eq!(e.time_wait_by_remote.top.len(), 3);
    assert_eq!(e.time_wait_by_remote.other, 297);
    assert_eq!(e.ports_by_destination.len(), 3);
    assert_eq!(e.ports_other, 297);
    assert_eq!(e.ephemeral_range_size, 1000);

    let text = render(&Arc::new(e), TextFormat::Prometheus);
    let samples = |name: &str| {
        text.lines()
            .filter(|l| l.starts_with(&format!("{name}{{")))
            .count()
    };
    assert_eq!(samples("lingertop_close_wait_connections"), 4);
    assert_eq!(samples("lingertop_time_wait_connections"), 4);
    assert_eq!(samples("lingertop_ephemeral_ports_used"), 4);
    assert_eq!(samples("lingertop_ephemeral_port_usage_ratio"), 3);
    assert_eq!(
        value(
            &text,
            r#"lingertop_close_wait_connections{pid="",process="other"}"#
        ),
        Some(5.0)
    );
    assert_eq!(
        value(
            &text,
            r#"lingertop_close_wait_connections{pid="5",process="app"}"#
        ),
        Some(5.0)
    );
    assert_eq!(
        value(&text, r#"lingertop_time_wait_connections{remote="other"}"#),
        Some(297.0)
    );
    assert_eq!(
        value(
            &text,
            r#"lingertop_connections{state="TIME_WAIT",family="ipv4"}"#
        ),
        Some(300.0)
    );
    assert_eq!(
        value(
            &text,
            r#"lingertop_ephemeral_port_usage_ratio{local_ip="127.0.0.1",remote="127.0.0.2:1000"}"#
        ),
        Some(0.001)
    );
}

#[test]
fn every_state_family_and_rule_is_present_even_at_zero() {
    let mut cw = conn(
        "[::1]:8080",
        "[::1]:50000",
        TcpState::CloseWait,
        Some((9, "java")),
    );
    cw.tracking = Some(Tracking::new(at(0), at(4), true));
    let alert = Alert {
        rule: RuleId::CloseWaitLingering,
        severity: Severity::Critical,
        message: String::new(),
        count: 1,
        pid: Some(9),
        process: None,
        local_ip: None,
        remote: None,
        ratio: None,
        growth_per_min: None,
        connections: vec![0],
        netns: None,
    };
    let e = Exposition::from_update(&update(vec![cw], vec![alert]), 3, 10);
    assert_eq!(e.oldest_close_wait, Duration::from_secs(6));
    let text = render(&Arc::new(e), TextFormat::Prometheus);
    // How the oldest age is known: lingertop saw this one enter CLOSE_WAIT.
    for (from, want) in [("kernel", 0.0), ("observed", 1.0), ("first-sight", 0.0)] {
        let series = format!(r#"lingertop_close_wait_oldest_age_source{{from="{from}"}}"#);
        assert_eq!(value(&text, &series), Some(want), "{series}");
    }
    for s in TcpState::ALL {
        for f in FAMILIES {
            let series = format!(r#"lingertop_connections{{state="{}",family="{f}"}}"#, s);
            let want = if s == TcpState::CloseWait && f == "ipv6" {
                1.0
            } else {
                0.0
            };
            assert_eq!(value(&text, &series), Some(want), "{series}");
        }
    }
    for rule in RuleId::ALL {
        for sev in SEVERITIES {
            let series = format!(
                r#"lingertop_active_alerts{{rule="{}",severity="{}"}}"#,
                rule.name(),
                sev.name()
            );
            let want = if rule == RuleId::CloseWaitLingering && sev == Severity::Critical {
                1.0
            } else {
                0.0
            };
            assert_eq!(value(&text, &series), Some(want), "{series}");
        }
    }
    assert_eq!(
        value(&text, "lingertop_close_wait_oldest_age_seconds"),
        Some(6.0)
    );
    assert_eq!(value(&text, "lingertop_poll_duration_seconds"), Some(0.025));
    assert_eq!(value(&text, "lingertop_polls_total"), Some(7.0));
    assert_eq!(value(&text, "lingertop_poll_errors_total"), Some(3.0));
    assert_eq!(
        value(&text, "lingertop_last_poll_timestamp_seconds"),
        Some(1_800_000_010.0)
    );
    assert_eq!(
        value(
            &text,
            r#"lingertop_close_wait_connections{pid="9",process="java"}"#
        ),
        Some(1.0)
    );
    for s in TcpState::ALL {
        let series = format!(r#"lingertop_state_read_timestamp_seconds{{state="{s}"}}"#);
        assert_eq!(value(&text, &series), Some(1_800_000_010.0), "{series}");
    }
}

#[test]
fn a_state_carried_from_an_earlier_read_says_when_it_was_read() {
    let mut u = update(Vec::new(), Vec::new());
    let mut snap = (*u.snapshot).clone();
    snap.unread = Some(crate::model::Unread {
        states: vec![TcpState::Established],
        last_read: Some(at(7)),
        found_owners: Vec::new(),
    });
    u.snapshot = Arc::new(snap);
    let text = render(
        &Arc::new(Exposition::from_update(&u, 0, 10)),
        TextFormat::Prometheus,
    );
    let read = |s: &str| {
        value(
            &text,
            &format!(r#"lingertop_state_read_timestamp_seconds{{state="{s}"}}"#),
        )
    };
    assert_eq!(read("ESTABLISHED"), Some(1_800_000_007.0));
    assert_eq!(read("TIME_WAIT"), Some(1_800_000_010.0));
}

#[test]
fn classic_format_names_counter_families_with_their_suffix() {
    let e = Exposition::from_update(&update(Vec::new(), Vec::new()), 0, 10);
    let e = Arc::new(e);
    let om = render(&e, TextFormat::OpenMetrics);
    assert!(om.contains("# TYPE lingertop_polls counter\n"), "{om}");
    assert!(om.contains("# UNIT lingertop_poll_duration_seconds seconds\n"));
    assert!(om.ends_with("# EOF\n"));

    let text = render(&e, TextFormat::Prometheus);
    assert!(text.contains("# HELP lingertop_polls_total Successful polls"));
    assert!(text.contains("# TYPE lingertop_polls_total counter\nlingertop_polls_total 7\n"));
    assert!(text.contains("# TYPE lingertop_poll_errors_total counter\n"));
    assert!(text.contains("# TYPE lingertop_poll_duration_seconds gauge\n"));
    assert!(
        !text.contains("# UNIT") && !text.contains("# EOF"),
        "{text}"
    );
    // Every sample line belongs to a family announced by # TYPE.
    let families: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    for l in text.lines().filter(|l| !l.starts_with('#')) {
        let name = l.split(['{', ' ']).next().unwrap();
        assert!(families.contains(&name), "{name} has no # TYPE");
    }
}

#[test]
fn accept_header_picks_the_format() {
    let prometheus_server = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    assert_eq!(
        TextFormat::from_accept(Some(prometheus_server)),
        TextFormat::OpenMetrics
    );
    for classic in [
        None,
        Some("*/*"),
        Some("text/plain"),
        Some("application/openmetrics-text;q=0, text/plain"),
    ] {
        assert_eq!(
            TextFormat::from_accept(classic),
            TextFormat::Prometheus,
            "{classic:?}"
        );
    }
}

/// Every `lingertop_*` name in `text`.
fn metric_names(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("lingertop_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        out.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

fn exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("expr" | "definition", serde_json::Value::String(s)) => out.push(s.clone()),
                    _ => exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| exprs(v, out)),
        _ => {}
    }
}

#[test]
fn the_shipped_dashboard_and_rules_use_only_exported_metrics() {
    let mut e = Exposition::from_update(&update(Vec::new(), Vec::new()), 0, 10);
    e.closes = Some(Arc::new(
        crate::report::closes_metrics::tests::both_sources(),
    ));
    let e = Arc::new(e);
    let text = render(&e, TextFormat::Prometheus);
    // Family names as the classic format announces them (some have no sample here).
    let exported: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();

    let board: serde_json::Value =
        serde_json::from_str(include_str!("../../../assets/grafana-dashboard.json"))
            .expect("the dashboard is valid JSON");
    let mut queries = Vec::new();
    exprs(&board, &mut queries);
    assert!(queries.len() >= 10, "{queries:?}");
    let rules = include_str!("../../../assets/prometheus-rules.yml");
    let mut used = metric_names(rules);
    for q in &queries {
        let names = metric_names(q);
        assert!(
            !names.is_empty(),
            "a panel query without a lingertop metric: {q}"
        );
        used.extend(names);
    }
    for name in &used {
        assert!(
            exported.contains(&name.as_str()),
            "{name} is used by the dashboard or the rules but not exported"
        );
    }
    // The metrics a person watches for leaks and port pressure are on the board.
    for name in [
        "lingertop_connections",
        "lingertop_close_wait_connections",
        "lingertop_close_wait_oldest_age_seconds",
        "lingertop_time_wait_connections",
        "lingertop_ephemeral_port_usage_ratio",
        "lingertop_active_alerts",
        "lingertop_poll_duration_seconds",
        "lingertop_poll_errors_total",
        "lingertop_process_resets_sent_total",
    ] {
        assert!(
            queries
                .iter()
                .any(|q| metric_names(q).iter().any(|n| n == name)),
            "the dashboard does not show {name}"
        );
    }
}

#[test]
fn namespaces_are_cut_to_top_n_plus_other() {
    use crate::model::{Netns, NetnsKind, NetnsTable, Tuple};
    let ends = |i: u16| {
        (
            "127.0.0.1:80".parse().unwrap(),
            format!("127.0.0.1:{}", 40000 + i).parse().unwrap(),
        )
    };
    // 5 sockets in namespace 2, 3 in 1, 1 on the host.
    let conns: Vec<Connection> = [(2, 5), (1, 3), (0, 1)]
        .into_iter()
        .flat_map(|(ns, n)| {
            (0..n).map(move |i| {
                let (l, r) = ends(i);
                Connection::on(Tuple::in_netns(l, r, ns), TcpState::CloseWait)
            })
        })
        .collect();
    let mut u = update(conns, Vec::new());
    let named = |id, name: &str| Netns {
        id,
        inode: u64::from(id) + 1,
        kind: NetnsKind::Named,
        name: name.into(),
        pid: None,
        ports: None,
    };
    let mut snap = (*u.snapshot).clone();
    snap.netns = Arc::new(NetnsTable::new(vec![
        named(0, "host"),
        named(1, "blue"),
        named(2, "green"),
    ]));
    u.snapshot = Arc::new(snap);
    let e = Exposition::from_update(&u, 0, 1);
    let text = render(&Arc::new(e), TextFormat::Prometheus);
    let cw = |ns: &str| {
        value(
            &text,
            &format!(r#"lingertop_netns_connections{{netns="{ns}",state="CLOSE_WAIT"}}"#),
        )
    };
    assert_eq!(cw("green"), Some(5.0));
    assert_eq!(cw("other"), Some(4.0));
    assert_eq!(cw("blue"), None);
    assert_eq!(cw("host"), None);
}
