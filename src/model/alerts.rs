//! Buildup detection: rules over a snapshot (and the tracker's history) that say when
//! CLOSE_WAIT, TIME_WAIT or the other close states pile up or linger, in words a person acts on.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustc_hash::FxHashMap;
use serde::Serialize;

use super::connection::{Connection, PortRange};
use super::state::TcpState;
use super::tracker::Sample;

/// How bad an alert is. Ordered: `Warning < Critical`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Critical,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// Which rule raised an alert.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuleId {
    CloseWaitLingering,
    TimeWaitBuildup,
    TimeWaitRemote,
    PortPressure,
    FinWait1Lingering,
    FinWait2Lingering,
    LastAckLingering,
    ClosingLingering,
}

impl RuleId {
    /// Every rule, so exporters can show a zero for the rules that are quiet.
    pub const ALL: [RuleId; 8] = [
        RuleId::CloseWaitLingering,
        RuleId::TimeWaitBuildup,
        RuleId::TimeWaitRemote,
        RuleId::PortPressure,
        RuleId::FinWait1Lingering,
        RuleId::FinWait2Lingering,
        RuleId::LastAckLingering,
        RuleId::ClosingLingering,
    ];

    pub fn name(self) -> &'static str {
        match self {
            RuleId::CloseWaitLingering => "close-wait-lingering",
            RuleId::TimeWaitBuildup => "time-wait-buildup",
            RuleId::TimeWaitRemote => "time-wait-remote",
            RuleId::PortPressure => "port-pressure",
            RuleId::FinWait1Lingering => "fin-wait-1-lingering",
            RuleId::FinWait2Lingering => "fin-wait-2-lingering",
            RuleId::LastAckLingering => "last-ack-lingering",
            RuleId::ClosingLingering => "closing-lingering",
        }
    }
}

/// Connections lingering in one state: alert when at least `warning` (or `critical`)
/// connections have been in `state` for `min_age` or longer.
#[derive(Clone, Debug, PartialEq)]
pub struct LingerRule {
    pub enabled: bool,
    pub min_age: Duration,
    pub warning: u32,
    pub critical: u32,
}

/// Count thresholds: alert when a count reaches `warning` (or `critical`).
#[derive(Clone, Debug, PartialEq)]
pub struct CountRule {
    pub enabled: bool,
    pub warning: u32,
    pub critical: u32,
}

/// Ratio thresholds in `0.0..=1.0`.
#[derive(Clone, Debug, PartialEq)]
pub struct RatioRule {
    pub enabled: bool,
    pub warning: f64,
    pub critical: f64,
}

/// Every rule's thresholds; `Default` is the shipped configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Rules {
    /// Window over which CLOSE_WAIT growth per process is measured.
    pub growth_window: Duration,
    pub close_wait: LingerRule,
    pub time_wait_total: CountRule,
    pub time_wait_per_remote: CountRule,
    pub port_pressure: RatioRule,
    pub fin_wait_1: LingerRule,
    pub fin_wait_2: LingerRule,
    pub last_ack: LingerRule,
    pub closing: LingerRule,
}

impl Default for Rules {
    fn default() -> Self {
        let linger = |secs, warning, critical| LingerRule {
            enabled: true,
            min_age: Duration::from_secs(secs),
            warning,
            critical,
        };
        Rules {
            growth_window: Duration::from_secs(60),
            close_wait: linger(30, 1, 100),
            time_wait_total: CountRule {
                enabled: true,
                warning: 10_000,
                critical: 50_000,
            },
            time_wait_per_remote: CountRule {
                enabled: true,
                warning: 2_000,
                critical: 10_000,
            },
            port_pressure: RatioRule {
                enabled: true,
                warning: 0.5,
                critical: 0.8,
            },
            fin_wait_1: linger(30, 10, 500),
            fin_wait_2: linger(60, 10, 500),
            last_ack: linger(30, 10, 500),
            closing: linger(30, 10, 500),
        }
    }
}

/// One buildup a person should look at.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    pub rule: RuleId,
    pub severity: Severity,
    /// One line, e.g. "412 CLOSE_WAIT held by java (pid 3121) for > 30 s, +40/min".
    pub message: String,
    /// How many connections are behind the alert.
    pub count: u32,
    pub pid: Option<u32>,
    pub process: Option<Arc<str>>,
    pub local_ip: Option<IpAddr>,
    pub remote: Option<SocketAddr>,
    /// For port pressure: the fraction of the ephemeral range in use.
    pub ratio: Option<f64>,
    /// For CLOSE_WAIT: change per minute of the process's CLOSE_WAIT count over the window.
    pub growth_per_min: Option<f64>,
    /// Indices, into the slice given to [`detect`], of the connections behind the alert.
    pub connections: Vec<usize>,
}

impl Alert {
    fn new(rule: RuleId, severity: Severity, message: String, connections: Vec<usize>) -> Self {
        Alert {
            rule,
            severity,
            message,
            count: u32::try_from(connections.len()).unwrap_or(u32::MAX),
            pid: None,
            process: None,
            local_ip: None,
            remote: None,
            ratio: None,
            growth_per_min: None,
            connections,
        }
    }
}

/// Ephemeral ports used toward one destination from one local address.
#[derive(Clone, Debug, PartialEq)]
pub struct Pressure {
    pub local_ip: IpAddr,
    pub remote: SocketAddr,
    /// Connections (any non-LISTEN state) whose local port is in the ephemeral range.
    pub in_use: u32,
    pub time_wait: u32,
    /// `in_use` over the size of the ephemeral range.
    pub ratio: f64,
    pub connections: Vec<usize>,
}

/// Ephemeral-port use per (local IP -> remote IP:port), highest first. Linux lets the same
/// local port serve different destinations, so the range runs out per destination.
pub fn port_pressure(conns: &[Connection], range: PortRange) -> Vec<Pressure> {
    pressure_of(conns, 0..conns.len(), range)
}

/// [`port_pressure`] over only the connections at `indices` (indices into `conns`).
pub fn pressure_of(
    conns: &[Connection],
    indices: impl IntoIterator<Item = usize>,
    range: PortRange,
) -> Vec<Pressure> {
    let mut groups: FxHashMap<(IpAddr, SocketAddr), Pressure> = FxHashMap::default();
    for i in indices {
        let c = &conns[i];
        if c.state == TcpState::Listen || !range.contains(c.local().port()) {
            continue;
        }
        let p = groups
            .entry((c.local().ip(), c.remote()))
            .or_insert_with(|| Pressure {
                local_ip: c.local().ip(),
                remote: c.remote(),
                in_use: 0,
                time_wait: 0,
                ratio: 0.0,
                connections: Vec::new(),
            });
        p.in_use += 1;
        p.time_wait += u32::from(c.state == TcpState::TimeWait);
        p.connections.push(i);
    }
    let size = f64::from(range.len().max(1));
    let mut out: Vec<Pressure> = groups
        .into_values()
        .map(|mut p| {
            p.ratio = f64::from(p.in_use) / size;
            p
        })
        .collect();
    out.sort_by(|a, b| b.in_use.cmp(&a.in_use).then(a.remote.cmp(&b.remote)));
    out
}

fn severity_of(n: u32, warning: u32, critical: u32) -> Option<Severity> {
    if n >= critical.max(1) {
        Some(Severity::Critical)
    } else if n >= warning.max(1) {
        Some(Severity::Warning)
    } else {
        None
    }
}

/// `30 s`, `2 min`, `1 h 5 min`: short and readable.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s < 120 {
        if s == 0 && d.as_millis() > 0 {
            return format!("{} ms", d.as_millis());
        }
        format!("{s} s")
    } else if s < 7200 {
        format!("{} min", s / 60)
    } else {
        format!("{} h {} min", s / 3600, (s % 3600) / 60)
    }
}

/// Runs every enabled rule over `conns` (already filtered as the user asked) at time `now`.
/// `history` is the tracker's, for growth rates. Alerts come back worst first.
pub fn detect(
    conns: &[Connection],
    now: SystemTime,
    ports: PortRange,
    history: &VecDeque<Sample>,
    rules: &Rules,
) -> Vec<Alert> {
    let mut alerts = Vec::new();
    close_wait_lingering(conns, now, history, rules, &mut alerts);
    for (rule, state, id, why) in [
        (
            &rules.fin_wait_1,
            TcpState::FinWait1,
            RuleId::FinWait1Lingering,
            "our FIN is not acknowledged, often data queued to a peer that does not read",
        ),
        (
            &rules.fin_wait_2,
            TcpState::FinWait2,
            RuleId::FinWait2Lingering,
            "we closed, the peer never sent its FIN",
        ),
        (
            &rules.last_ack,
            TcpState::LastAck,
            RuleId::LastAckLingering,
            "our FIN is sent, the peer's last ACK never came",
        ),
        (
            &rules.closing,
            TcpState::Closing,
            RuleId::ClosingLingering,
            "both sides closed at once and the final ACK is missing",
        ),
    ] {
        lingering(conns, now, rule, state, id, why, &mut alerts);
    }
    time_wait(conns, rules, &mut alerts);
    if rules.port_pressure.enabled {
        for p in port_pressure(conns, ports) {
            let sev = if p.ratio >= rules.port_pressure.critical {
                Severity::Critical
            } else if p.ratio >= rules.port_pressure.warning {
                Severity::Warning
            } else {
                break; // sorted by use: the rest are lower
            };
            let msg = format!(
                "{:.0}% of ephemeral ports in use from {} to {} ({} of {}, {} in TIME_WAIT)",
                p.ratio * 100.0,
                p.local_ip,
                p.remote,
                p.in_use,
                ports.len(),
                p.time_wait
            );
            let mut a = Alert::new(RuleId::PortPressure, sev, msg, p.connections);
            a.local_ip = Some(p.local_ip);
            a.remote = Some(p.remote);
            a.ratio = Some(p.ratio);
            alerts.push(a);
        }
    }
    alerts.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(b.count.cmp(&a.count))
            .then(a.message.cmp(&b.message))
    });
    alerts
}

fn close_wait_lingering(
    conns: &[Connection],
    now: SystemTime,
    history: &VecDeque<Sample>,
    rules: &Rules,
    alerts: &mut Vec<Alert>,
) {
    let rule = &rules.close_wait;
    if !rule.enabled {
        return;
    }
    // Per owning process; connections without an owner are grouped together.
    let mut by_pid: FxHashMap<Option<u32>, Vec<usize>> = FxHashMap::default();
    for (i, c) in conns.iter().enumerate() {
        if c.state == TcpState::CloseWait && c.state_age(now).is_some_and(|a| a >= rule.min_age) {
            by_pid.entry(c.owner().map(|o| o.pid)).or_default().push(i);
        }
    }
    // The oldest sample inside the window, other than the current one, anchors growth.
    let anchor = history
        .iter()
        .rev()
        .skip(1)
        .take_while(|s| now.duration_since(s.at).unwrap_or_default() <= rules.growth_window)
        .last();
    let current = history.back();
    for (pid, idx) in by_pid {
        let n = u32::try_from(idx.len()).unwrap_or(u32::MAX);
        let Some(sev) = severity_of(n, rule.warning, rule.critical) else {
            continue;
        };
        let name = conns[idx[0]].owner().and_then(|o| o.name.clone());
        let growth = match (pid, anchor, current) {
            (Some(pid), Some(a), Some(c)) => {
                let span = c.at.duration_since(a.at).unwrap_or_default().as_secs_f64();
                let then = f64::from(a.close_wait_by_pid.get(&pid).copied().unwrap_or(0));
                let now_n = f64::from(c.close_wait_by_pid.get(&pid).copied().unwrap_or(0));
                (span > 0.0).then(|| (now_n - then) * 60.0 / span)
            }
            _ => None,
        };
        let who = match (pid, &name) {
            (Some(pid), Some(name)) => format!("{name} (pid {pid})"),
            (Some(pid), None) => format!("pid {pid}"),
            (None, _) => "an unknown process (no owner visible; run as root)".to_string(),
        };
        let mut msg = format!(
            "{n} CLOSE_WAIT held by {who} for > {}",
            human_duration(rule.min_age)
        );
        if let Some(g) = growth {
            msg.push_str(&format!(", {}", rate(g)));
        }
        msg.push_str(": the peer closed and the process never called close()");
        let mut a = Alert::new(RuleId::CloseWaitLingering, sev, msg, idx);
        a.pid = pid;
        a.process = name;
        a.growth_per_min = growth;
        alerts.push(a);
    }
}

/// `+40/min`, `-3/min`, `steady`.
fn rate(per_min: f64) -> String {
    let r = per_min.round();
    if r == 0.0 {
        "steady".to_string()
    } else {
        format!("{r:+}/min")
    }
}

fn lingering(
    conns: &[Connection],
    now: SystemTime,
    rule: &LingerRule,
    state: TcpState,
    id: RuleId,
    why: &str,
    alerts: &mut Vec<Alert>,
) {
    if !rule.enabled {
        return;
    }
    let idx: Vec<usize> = conns
        .iter()
        .enumerate()
        .filter(|(_, c)| c.state == state && c.state_age(now).is_some_and(|a| a >= rule.min_age))
        .map(|(i, _)| i)
        .collect();
    let n = u32::try_from(idx.len()).unwrap_or(u32::MAX);
    if let Some(sev) = severity_of(n, rule.warning, rule.critical) {
        let msg = format!(
            "{n} {} for > {}: {why}",
            state.name(),
            human_duration(rule.min_age)
        );
        alerts.push(Alert::new(id, sev, msg, idx));
    }
}

fn time_wait(conns: &[Connection], rules: &Rules, alerts: &mut Vec<Alert>) {
    let tw: Vec<usize> = conns
        .iter()
        .enumerate()
        .filter(|(_, c)| c.state == TcpState::TimeWait)
        .map(|(i, _)| i)
        .collect();
    let total = &rules.time_wait_total;
    let n = u32::try_from(tw.len()).unwrap_or(u32::MAX);
    if total.enabled {
        if let Some(sev) = severity_of(n, total.warning, total.critical) {
            let limit = if sev == Severity::Critical {
                total.critical
            } else {
                total.warning
            };
            let msg = format!(
                "{n} TIME_WAIT on this host ({} at {limit}): this host closes first; many toward one destination exhaust ephemeral ports",
                sev.name()
            );
            alerts.push(Alert::new(RuleId::TimeWaitBuildup, sev, msg, tw.clone()));
        }
    }
    let per = &rules.time_wait_per_remote;
    if !per.enabled {
        return;
    }
    let mut by_remote: FxHashMap<SocketAddr, Vec<usize>> = FxHashMap::default();
    for i in tw {
        by_remote.entry(conns[i].remote()).or_default().push(i);
    }
    for (remote, idx) in by_remote {
        let n = u32::try_from(idx.len()).unwrap_or(u32::MAX);
        if let Some(sev) = severity_of(n, per.warning, per.critical) {
            let msg = format!("{n} TIME_WAIT toward {remote}");
            let mut a = Alert::new(RuleId::TimeWaitRemote, sev, msg, idx);
            a.remote = Some(remote);
            alerts.push(a);
        }
    }
}

#[cfg(test)]
mod tests {
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
}
