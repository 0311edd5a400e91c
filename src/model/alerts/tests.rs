//! The rules on fixtures of connections and the tracker's history.

use std::time::Duration;

use super::*;
use crate::model::connection::{Owner, Snapshot};
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
    let p = port_pressure(&conns, RANGE);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].connections, vec![2]);
}
