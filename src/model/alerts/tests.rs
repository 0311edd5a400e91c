//! The rules on fixtures of connections and the tracker's history.

use std::time::Duration;

use super::*;
use crate::model::connection::{Owner, Snapshot};
use crate::model::netns::NetnsTable;
use crate::model::tracker::Tracker;

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
}

const RANGE: PortRange = PortRange {
    low: 32768,
    high: 60999,
};

fn owned(local: String, remote: &str, state: TcpState, inode: u32, pid: u32) -> Connection {
    let mut c = Connection::new(local.parse().unwrap(), remote.parse().unwrap(), state);
    c.inode = inode;
    c.owners = vec![Owner {
        pid,
        name: Some("java".into()),
    }]
    .into();
    c
}

fn snap(t: u64, connections: Vec<Connection>) -> Snapshot {
    Snapshot::fixture(at(t), connections)
}

/// `n` CLOSE_WAIT connections held by pid 3121.
fn close_waits(n: u32) -> Vec<Connection> {
    (0..n)
        .map(|i| {
            owned(
                format!("127.0.0.1:{}", 8000),
                &format!("127.0.0.1:{}", 40000 + i),
                TcpState::CloseWait,
                100 + i,
                3121,
            )
        })
        .collect()
}

fn run(tracker: &mut Tracker, t: u64, conns: Vec<Connection>, rules: &Rules) -> Vec<Alert> {
    let mut s = snap(t, conns);
    tracker.observe(&mut s);
    let alerts = detect(&s.connections, s.taken_at, RANGE, tracker.history(), rules);
    tracker.keep(std::sync::Arc::new(s));
    alerts
}

#[test]
fn close_wait_fires_only_past_its_age_and_names_process_and_growth() {
    let rules = Rules::default();
    let mut tr = Tracker::new(100);
    assert!(
        run(&mut tr, 0, close_waits(10), &rules).is_empty(),
        "ages unknown"
    );
    assert!(
        run(&mut tr, 20, close_waits(30), &rules).is_empty(),
        "20 s < 30 s"
    );
    let alerts = run(&mut tr, 40, close_waits(50), &rules);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let a = &alerts[0];
    assert_eq!(a.rule, RuleId::CloseWaitLingering);
    assert_eq!(a.severity, Severity::Warning);
    // Only the 10 seen since t=0 are older than 30 s.
    assert_eq!(a.count, 10);
    assert_eq!(a.pid, Some(3121));
    // 10 -> 50 over 40 s is +60/min.
    assert_eq!(a.growth_per_min, Some(60.0));
    assert!(
        a.message
            .starts_with("10 CLOSE_WAIT held by java (pid 3121) for > 30 s, +60/min"),
        "{}",
        a.message
    );
}

#[test]
fn a_kernel_age_fires_on_the_first_poll_and_the_growth_says_it_needs_two() {
    let rules = Rules::default();
    let mut tr = Tracker::new(100);
    let mut conns = close_waits(3);
    // The kernel says two of them have waited 45 s (tcp_info's last ACK), one 5 s.
    for (c, secs) in conns.iter_mut().zip([45, 45, 5]) {
        c.tracking = Some(crate::model::Tracking::from_kernel(
            at(0),
            Duration::from_secs(secs),
        ));
    }
    let alerts = run(&mut tr, 0, conns, &rules);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let a = &alerts[0];
    assert_eq!((a.rule, a.count), (RuleId::CloseWaitLingering, 2));
    assert_eq!(a.growth_per_min, None);
    assert!(
        a.message.starts_with(
            "2 CLOSE_WAIT held by java (pid 3121) for > 30 s, growth unknown (one poll)"
        ),
        "{}",
        a.message
    );
}

#[test]
fn close_wait_turns_critical_at_its_threshold() {
    let mut rules = Rules::default();
    rules.close_wait.critical = 5;
    rules.close_wait.min_age = Duration::from_secs(1);
    let mut tr = Tracker::new(100);
    run(&mut tr, 0, close_waits(5), &rules);
    let alerts = run(&mut tr, 2, close_waits(5), &rules);
    assert_eq!(alerts[0].severity, Severity::Critical);
    rules.close_wait.enabled = false;
    assert!(run(&mut tr, 3, close_waits(5), &rules).is_empty());
}

#[test]
fn time_wait_total_and_per_remote_and_port_pressure() {
    let mut rules = Rules::default();
    rules.time_wait_total.warning = 100;
    rules.time_wait_per_remote.warning = 80;
    rules.port_pressure.warning = 0.003; // 90 of 28232 ports is 0.32 %
    let mut conns = Vec::new();
    for i in 0..90u16 {
        let mut c = Connection::new(
            format!("127.0.0.2:{}", 33000 + i).parse().unwrap(),
            "127.0.0.1:8080".parse().unwrap(),
            TcpState::TimeWait,
        );
        c.inode = 0;
        conns.push(c);
    }
    for i in 0..20u16 {
        conns.push(Connection::new(
            format!("127.0.0.3:{}", 33000 + i).parse().unwrap(),
            "127.0.0.1:9090".parse().unwrap(),
            TcpState::TimeWait,
        ));
    }
    let mut tr = Tracker::new(10);
    let alerts = run(&mut tr, 0, conns, &rules);
    let rules_fired: Vec<RuleId> = alerts.iter().map(|a| a.rule).collect();
    assert_eq!(
        rules_fired,
        vec![
            RuleId::TimeWaitBuildup,
            RuleId::PortPressure,
            RuleId::TimeWaitRemote
        ],
        "{alerts:?}"
    );
    assert_eq!(alerts[0].count, 110);
    let pressure = &alerts[1];
    assert_eq!(pressure.count, 90);
    assert_eq!(pressure.remote, Some("127.0.0.1:8080".parse().unwrap()));
    assert!((pressure.ratio.unwrap() - 90.0 / 28232.0).abs() < 1e-9);
    assert!(
        pressure
            .message
            .contains("from 127.0.0.2 to 127.0.0.1:8080"),
        "{}",
        pressure.message
    );
    assert_eq!(alerts[2].remote, Some("127.0.0.1:8080".parse().unwrap()));
}

#[test]
fn fin_wait_2_lingering_uses_its_own_threshold() {
    let mut rules = Rules::default();
    rules.fin_wait_2.warning = 2;
    rules.fin_wait_2.min_age = Duration::from_secs(5);
    let fw2 = |n: u32| -> Vec<Connection> {
        (0..n)
            .map(|i| {
                owned(
                    format!("127.0.0.1:{}", 40000 + i),
                    "127.0.0.1:80",
                    TcpState::FinWait2,
                    500 + i,
                    9,
                )
            })
            .collect()
    };
    let mut tr = Tracker::new(10);
    run(&mut tr, 0, fw2(1), &rules);
    assert!(run(&mut tr, 10, fw2(1), &rules).is_empty(), "1 < warning 2");
    let mut tr = Tracker::new(10);
    run(&mut tr, 0, fw2(2), &rules);
    let alerts = run(&mut tr, 10, fw2(2), &rules);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].rule, RuleId::FinWait2Lingering);
    assert!(
        alerts[0].message.starts_with("2 FIN_WAIT_2 for > 5 s"),
        "{}",
        alerts[0].message
    );
}

#[test]
fn pressure_ignores_listeners_and_server_ports() {
    let conns = vec![
        Connection::new(
            "0.0.0.0:40000".parse().unwrap(),
            "0.0.0.0:0".parse().unwrap(),
            TcpState::Listen,
        ),
        Connection::new(
            "127.0.0.1:80".parse().unwrap(),
            "127.0.0.1:40001".parse().unwrap(),
            TcpState::TimeWait,
        ),
        Connection::new(
            "127.0.0.1:40001".parse().unwrap(),
            "127.0.0.1:80".parse().unwrap(),
            TcpState::Established,
        ),
    ];
    let p = port_pressure(&conns, Ranges::new(RANGE, &NetnsTable::default()));
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].connections, vec![2]);
}

#[test]
fn close_wait_alerts_name_the_container_and_keep_namespaces_apart() {
    use crate::model::netns::{Netns, NetnsKind, NetnsTable};
    use crate::model::{Tracking, Tuple};
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
            id: 4,
            inode: 2,
            kind: NetnsKind::Container { runtime: "docker" },
            name: "orders-7f9c".into(),
            pid: Some(812),
            ports: None,
        },
    ]);
    let old = |ns, i: u16| {
        let mut c = Connection::on(
            Tuple::in_netns(
                "127.0.0.1:8000".parse().unwrap(),
                format!("127.0.0.1:{}", 40000 + i).parse().unwrap(),
                ns,
            ),
            TcpState::CloseWait,
        );
        c.owners = vec![Owner {
            pid: 812,
            name: Some("orders-api".into()),
        }]
        .into();
        c.tracking = Some(Tracking::new(at(0), at(0), true));
        c
    };
    // The same process holds 12 in the container and 11 on the host: two alerts.
    let conns: Vec<Connection> = (0..12)
        .map(|i| old(4, i))
        .chain((0..11).map(|i| old(0, i)))
        .collect();
    let history = std::collections::VecDeque::new();
    let alerts = detect_in(&conns, &table, at(600), RANGE, &history, &Rules::default());
    let mut cw: Vec<(&str, u32, Option<&str>)> = alerts
        .iter()
        .filter(|a| a.rule == RuleId::CloseWaitLingering)
        .map(|a| (a.message.as_str(), a.count, a.netns.as_deref()))
        .collect();
    cw.sort_by_key(|a| a.1);
    assert_eq!(cw.len(), 2, "{alerts:?}");
    assert!(
        cw[1].0.starts_with(
            "12 CLOSE_WAIT held by orders-api (pid 812) in container orders-7f9c for > "
        ),
        "{}",
        cw[1].0
    );
    assert_eq!(cw[1].2, Some("orders-7f9c"));
    assert!(
        cw[0]
            .0
            .starts_with("11 CLOSE_WAIT held by orders-api (pid 812) for > "),
        "{}",
        cw[0].0
    );
    assert_eq!(cw[0].2, None);
}

/// Host (id 0), netns blue (id 3) and netns red (id 5).
fn three_namespaces() -> NetnsTable {
    use crate::model::netns::{Netns, NetnsKind};
    let ns = |id, inode, kind, name: &str| Netns {
        id,
        inode,
        kind,
        name: name.into(),
        pid: None,
        ports: None,
    };
    NetnsTable::new(vec![
        ns(0, 1, NetnsKind::Host, "host"),
        ns(3, 2, NetnsKind::Named, "blue"),
        ns(5, 3, NetnsKind::Named, "red"),
    ])
}

/// `n` TIME_WAIT in namespace `ns` from 10.0.0.1 toward 10.0.0.5:5432, client ports from
/// `port` up.
fn time_waits_in(ns: u16, n: u16, port: u16) -> Vec<Connection> {
    (0..n)
        .map(|i| {
            Connection::on(
                crate::model::Tuple::in_netns(
                    format!("10.0.0.1:{}", port + i).parse().unwrap(),
                    "10.0.0.5:5432".parse().unwrap(),
                    ns,
                ),
                TcpState::TimeWait,
            )
        })
        .collect()
}

fn only(alerts: &[Alert], rule: RuleId) -> Vec<(&str, u32, Option<&str>)> {
    alerts
        .iter()
        .filter(|a| a.rule == rule)
        .map(|a| (a.message.as_str(), a.count, a.netns.as_deref()))
        .collect()
}

#[test]
fn time_wait_rules_count_each_namespace_on_its_own_and_name_it() {
    let at_8 = CountRule {
        enabled: true,
        warning: 8,
        critical: 100,
    };
    let rules = Rules {
        time_wait_total: at_8.clone(),
        time_wait_per_remote: at_8,
        ..Rules::default()
    };
    let table = three_namespaces();
    let history = std::collections::VecDeque::new();
    // 10 in blue, 5 on the host, 5 in red: 20 host-wide, but only blue reaches 8.
    let conns: Vec<Connection> = time_waits_in(3, 10, 40000)
        .into_iter()
        .chain(time_waits_in(0, 5, 40000))
        .chain(time_waits_in(5, 5, 40000))
        .collect();
    let alerts = detect_in(&conns, &table, at(0), RANGE, &history, &rules);
    let total = only(&alerts, RuleId::TimeWaitBuildup);
    assert_eq!(total.len(), 1, "{alerts:?}");
    assert!(
        total[0]
            .0
            .starts_with("10 TIME_WAIT in netns blue (warning at 8)"),
        "{}",
        total[0].0
    );
    assert_eq!((total[0].1, total[0].2), (10, Some("blue")));
    let remote = only(&alerts, RuleId::TimeWaitRemote);
    assert_eq!(
        remote,
        vec![(
            "10 TIME_WAIT toward 10.0.0.5:5432 in netns blue",
            10,
            Some("blue")
        )]
    );

    // The host's own pile-up still says "on this host" and carries no namespace.
    let host = time_waits_in(0, 9, 40000);
    let alerts = detect_in(&host, &table, at(0), RANGE, &history, &rules);
    let total = only(&alerts, RuleId::TimeWaitBuildup);
    assert_eq!(total.len(), 1, "{alerts:?}");
    assert!(
        total[0].0.starts_with("9 TIME_WAIT on this host"),
        "{}",
        total[0].0
    );
    assert_eq!(total[0].2, None);
}

#[test]
fn port_pressure_counts_each_namespace_on_its_own_and_names_it() {
    let mut rules = Rules::default();
    rules.time_wait_total.enabled = false;
    rules.time_wait_per_remote.enabled = false;
    // 10 ephemeral ports; warning at half of them.
    let range = PortRange {
        low: 40000,
        high: 40009,
    };
    let table = three_namespaces();
    let history = std::collections::VecDeque::new();
    // The same pair, 6 ports in red and 4 on the host: 100% host-wide, 60% in red, 40% here.
    let conns: Vec<Connection> = time_waits_in(5, 6, 40000)
        .into_iter()
        .chain(time_waits_in(0, 4, 40000))
        .collect();
    let alerts = detect_in(&conns, &table, at(0), range, &history, &rules);
    let p = only(&alerts, RuleId::PortPressure);
    assert_eq!(
        p,
        vec![(
            "60% of ephemeral ports in use from 10.0.0.1 to 10.0.0.5:5432 in netns red (6 of 10, 6 in TIME_WAIT)",
            6,
            Some("red")
        )],
        "{alerts:?}"
    );
    assert!(
        alerts
            .iter()
            .find(|a| a.rule == RuleId::PortPressure)
            .unwrap()
            .severity
            == Severity::Warning
    );
}

#[test]
fn each_namespace_overflows_on_its_own_over_the_window() {
    use crate::model::CounterCloses;
    let rules = Rules::default();
    let table = three_namespaces();
    let counts = |host: u64, blue: u64| {
        let c = |n| CounterCloses {
            time_wait_overflow: n,
            ..CounterCloses::default()
        };
        vec![(0, c(host)), (3, c(blue))]
    };
    let window = Duration::from_secs(10);
    let mut w = OverflowWindow::default();
    // The host's counter is high but still; blue's grows by 12 in 2 s.
    w.mark(Duration::ZERO, &counts(500, 3), &table, window);
    w.mark(Duration::from_secs(2), &counts(500, 15), &table, window);
    let a = w.alerts(&table, &rules);
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!((a[0].count, a[0].netns.as_deref()), (12, Some("blue")));
    assert!(
        a[0].message.contains("in netns blue in 2s"),
        "{}",
        a[0].message
    );
    // A window later with no growth, it has ended.
    w.mark(Duration::from_secs(13), &counts(500, 15), &table, window);
    w.mark(Duration::from_secs(14), &counts(500, 15), &table, window);
    assert!(w.alerts(&table, &rules).is_empty());
}

#[test]
fn the_top_of_port_pressure_is_the_first_of_the_whole_list() {
    use crate::model::netns::{Netns, NetnsKind};
    use crate::model::{NetnsId, Tuple};
    // Namespaces with ranges of their own (one with the default), few and many destinations
    // (past the point where the top is found by sorting), IPv6 ends, listeners and server
    // ports, ties in use broken by destination.
    let ns = |id: NetnsId, ports: Option<PortRange>| Netns {
        id,
        inode: u64::from(id),
        kind: NetnsKind::Host,
        name: format!("ns{id}").into(),
        pid: None,
        ports,
    };
    let table = NetnsTable::new(vec![
        ns(0, None),
        ns(
            1,
            Some(PortRange {
                low: 40000,
                high: 40999,
            }),
        ),
        ns(
            2,
            Some(PortRange {
                low: 1024,
                high: 65535,
            }),
        ),
    ]);
    let ranges = Ranges::new(RANGE, &table);
    let mut next = crate::model::draw::from(0x853c_49e6_748f_ea9b);
    for (sockets, destinations) in [(3000, 5), (3000, 40), (20_000, 9000)] {
        let conns: Vec<Connection> = (0..sockets)
            .map(|_| {
                let local_port = 30000 + next(20000) as u16;
                let (local, remote) = if next(8) == 0 {
                    (
                        format!("[::1]:{local_port}"),
                        format!("[fe80::{:x}]:443", next(destinations)),
                    )
                } else {
                    let d = next(destinations);
                    (
                        format!("10.0.0.{}:{local_port}", d % 3),
                        format!("10.1.{}.{}:{}", d / 256 % 256, d % 256, 80 + d % 2),
                    )
                };
                let state = TcpState::ALL[next(TcpState::ALL.len() as u64) as usize];
                Connection::on(
                    Tuple::in_netns(
                        local.parse().unwrap(),
                        remote.parse().unwrap(),
                        next(4) as NetnsId,
                    ),
                    state,
                )
            })
            .collect();
        let all = port_pressure(&conns, ranges);
        assert!(all.len() > 3, "{} destinations", all.len());
        for n in [0, 1, 3, 10, all.len(), all.len() + 5] {
            let top = port_pressure_top(&conns, ranges, n);
            assert!(
                top[..] == all[..n.min(all.len())],
                "{sockets} sockets toward {destinations} destinations, top {n}"
            );
        }
    }
}
