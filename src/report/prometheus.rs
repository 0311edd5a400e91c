//! The Prometheus exposition of one poll, with no HTTP in it.
//!
//! [`Exposition`] is a small DTO computed once per poll from the live loop's [`Update`]: the
//! per-process, per-remote and per-destination figures are already cut to the top N with the
//! rest summed into one `other` series, so a scrape's size and the label cardinality stay
//! bounded whatever the machine does. [`render`] turns it into text through
//! `prometheus-client`: the OpenMetrics format that Prometheus asks for, or the classic
//! Prometheus text format for everything else (curl, `promtool check metrics`).

use std::fmt::{self, Write as _};
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeGaugeValue, EncodeLabelSet, EncodeMetric,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};
use rustc_hash::FxHashMap;

use crate::live::Update;
use crate::model::alerts::port_pressure;
use crate::model::state::STATE_COUNT;
use crate::model::{ProcessInfo, RuleId, Severity, TcpState};

/// The label value of the series that sums everything outside the top N.
pub const OTHER: &str = "other";
/// The `process` label of CLOSE_WAIT sockets no visible process holds.
pub const UNKNOWN_PROCESS: &str = "unknown";

/// Address families, as the `family` label spells them.
const FAMILIES: [&str; 2] = ["ipv4", "ipv6"];
const SEVERITIES: [Severity; 2] = [Severity::Warning, Severity::Critical];

/// The top N of a breakdown, largest first, and the sum of everything else.
#[derive(Clone, Debug, PartialEq)]
pub struct Ranked<K> {
    pub top: Vec<(K, u64)>,
    /// The sum of the entries outside the top N (0 when there are none).
    pub other: u64,
}

/// Keeps the `n` largest counts (ties broken by key, so the cut is stable between polls)
/// and sums the rest.
pub fn rank<K: Ord + Hash>(counts: FxHashMap<K, u64>, n: usize) -> Ranked<K> {
    let mut all: Vec<(K, u64)> = counts.into_iter().collect();
    all.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let other = all.iter().skip(n).map(|(_, v)| v).sum();
    all.truncate(n);
    Ranked { top: all, other }
}

/// A process holding CLOSE_WAIT sockets; `None` when no process is visible.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProcessKey(pub Option<(u32, Option<Arc<str>>)>);

/// Ephemeral ports used from one local address toward one destination.
#[derive(Clone, Debug, PartialEq)]
pub struct PortUse {
    pub local_ip: IpAddr,
    pub remote: SocketAddr,
    pub in_use: u64,
    /// `in_use` over the size of the ephemeral range.
    pub ratio: f64,
}

/// Everything `/metrics` shows, for one poll. Small: every breakdown is cut to top N.
#[derive(Clone, Debug, PartialEq)]
pub struct Exposition {
    pub taken_at: SystemTime,
    /// Polls that succeeded so far.
    pub polls: u64,
    /// Polls that failed so far.
    pub poll_errors: u64,
    pub poll_duration: Duration,
    pub process_info_partial: bool,
    /// Sockets per state (kernel order) and family (IPv4, IPv6).
    pub connections: [[u64; 2]; STATE_COUNT],
    pub close_wait_by_process: Ranked<ProcessKey>,
    pub time_wait_by_remote: Ranked<SocketAddr>,
    /// The top N destinations by ephemeral ports in use.
    pub ports_by_destination: Vec<PortUse>,
    /// Ephemeral ports in use toward every other destination.
    pub ports_other: u64,
    pub ephemeral_range_size: u32,
    /// The age of the oldest CLOSE_WAIT socket (a lower bound; 0 when there is none or no
    /// age is known yet).
    pub oldest_close_wait: Duration,
    /// Active alerts per rule ([`RuleId::ALL`] order) and severity (warning, critical).
    pub alerts: [[u64; 2]; RuleId::ALL.len()],
    /// When each state (kernel order) was last read from the kernel: the poll's time, but
    /// for the states a big table's live poll reads only every few polls (ESTABLISHED).
    pub state_read_at: [SystemTime; STATE_COUNT],
    /// Closes by kind and process, set by `serve` from its close source.
    pub closes: Option<Arc<super::closes_metrics::ClosesExposition>>,
}

impl Exposition {
    /// Computes the exposition of `update`, keeping `top_n` series per breakdown.
    pub fn from_update(update: &Update, poll_errors: u64, top_n: usize) -> Self {
        let snap = &update.snapshot;
        let now = snap.taken_at;
        let mut connections = [[0u64; 2]; STATE_COUNT];
        let mut close_wait: FxHashMap<ProcessKey, u64> = FxHashMap::default();
        let mut time_wait: FxHashMap<SocketAddr, u64> = FxHashMap::default();
        let mut oldest_close_wait = Duration::ZERO;
        for c in &snap.connections {
            // The family of the socket as the kernel reports it: a dual-stack socket's
            // IPv4-mapped address counts as IPv6.
            let family = usize::from(c.local().is_ipv6());
            connections[c.state.index()][family] += 1;
            match c.state {
                TcpState::CloseWait => {
                    let key = ProcessKey(c.owner().map(|o| (o.pid, o.name.clone())));
                    *close_wait.entry(key).or_default() += 1;
                    if let Some(age) = c.state_age(now) {
                        oldest_close_wait = oldest_close_wait.max(age);
                    }
                }
                TcpState::TimeWait => *time_wait.entry(c.remote()).or_default() += 1,
                _ => {}
            }
        }

        let size = snap.ephemeral_ports.len();
        let pressure = port_pressure(&snap.connections, snap.ephemeral_ports);
        let ports_other = pressure
            .iter()
            .skip(top_n)
            .map(|p| u64::from(p.in_use))
            .sum();
        let ports_by_destination = pressure
            .into_iter()
            .take(top_n)
            .map(|p| PortUse {
                local_ip: p.local_ip,
                remote: p.remote,
                in_use: u64::from(p.in_use),
                ratio: p.ratio,
            })
            .collect();

        let mut alerts = [[0u64; 2]; RuleId::ALL.len()];
        for a in &update.alerts {
            if let Some(r) = RuleId::ALL.iter().position(|&id| id == a.rule) {
                alerts[r][usize::from(a.severity == Severity::Critical)] += 1;
            }
        }

        let mut state_read_at = [now; STATE_COUNT];
        if let Some(unread) = &snap.unread {
            for s in &unread.states {
                state_read_at[s.index()] = unread.last_read.unwrap_or(UNIX_EPOCH);
            }
        }

        Exposition {
            state_read_at,
            taken_at: now,
            polls: update.seq,
            poll_errors,
            poll_duration: snap.poll_duration,
            process_info_partial: matches!(snap.process_info, ProcessInfo::Partial { .. }),
            connections,
            close_wait_by_process: rank(close_wait, top_n),
            time_wait_by_remote: rank(time_wait, top_n),
            ports_by_destination,
            ports_other,
            ephemeral_range_size: size,
            oldest_close_wait,
            alerts,
            closes: None,
        }
    }
}

/// The two text formats a scraper may ask for.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum TextFormat {
    /// OpenMetrics 1.0 text, what Prometheus asks for first.
    OpenMetrics,
    /// The classic Prometheus text format 0.0.4, for every other client.
    Prometheus,
}

impl TextFormat {
    /// Picks the format an HTTP `Accept` header asks for: OpenMetrics when it lists
    /// `application/openmetrics-text` with a non-zero quality, else the classic format.
    pub fn from_accept(accept: Option<&str>) -> Self {
        let wants_openmetrics = accept.is_some_and(|a| {
            a.split(',').any(|range| {
                let mut parts = range.split(';').map(str::trim);
                let media = parts.next().unwrap_or_default();
                let q_zero = parts.any(|p| {
                    p.strip_prefix("q=")
                        .and_then(|q| q.parse::<f64>().ok())
                        .is_some_and(|q| q <= 0.0)
                });
                media.eq_ignore_ascii_case("application/openmetrics-text") && !q_zero
            })
        });
        if wants_openmetrics {
            TextFormat::OpenMetrics
        } else {
            TextFormat::Prometheus
        }
    }

    /// The `Content-Type` of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            TextFormat::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            TextFormat::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

/// Renders `e` in `format`.
pub fn render(e: &Arc<Exposition>, format: TextFormat) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(ExpositionCollector(Arc::clone(e))));
    let mut out = String::with_capacity(8 * 1024);
    // Writing into a String cannot fail, and our collector never returns an error.
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    match format {
        TextFormat::OpenMetrics => out,
        TextFormat::Prometheus => openmetrics_to_prometheus(&out),
    }
}

/// Rewrites prometheus-client's OpenMetrics text into the classic Prometheus text format.
/// The two differ, for what we emit, only in that OpenMetrics names a counter family
/// without its `_total` suffix in `# HELP`/`# TYPE`, and has `# UNIT` and `# EOF` lines;
/// a classic parser (promtool) would see a counter's samples as an untyped metric without
/// help text. The crate only writes OpenMetrics, so the classic form is derived here.
pub fn openmetrics_to_prometheus(text: &str) -> String {
    let counters: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(text.len() + 16 * counters.len());
    for line in text.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        let header = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| line.strip_prefix(p).map(|rest| (p, rest)));
        if let Some((prefix, rest)) = header {
            let name = rest.split(' ').next().unwrap_or_default();
            if counters.contains(&name) {
                let _ = writeln!(out, "{prefix}{name}_total{}", &rest[name.len()..]);
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[derive(Debug)]
struct ExpositionCollector(Arc<Exposition>);

/// Writes one gauge family with a sample per `(labels, value)`.
fn gauges<L, V>(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    rows: impl IntoIterator<Item = (L, V)>,
) -> fmt::Result
where
    L: EncodeLabelSet,
    V: EncodeGaugeValue,
{
    let mut family = enc.encode_descriptor(name, help, unit, MetricType::Gauge)?;
    for (labels, v) in rows {
        ConstGauge::new(v).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Writes one unlabelled gauge.
fn gauge<V: EncodeGaugeValue>(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    v: V,
) -> fmt::Result {
    let g = ConstGauge::new(v);
    g.encode(enc.encode_descriptor(name, help, unit, g.metric_type())?)
}

/// Writes one unlabelled counter (the encoder appends `_total`).
fn counter(enc: &mut DescriptorEncoder<'_>, name: &str, help: &str, v: u64) -> fmt::Result {
    let c = ConstCounter::new(v);
    c.encode(enc.encode_descriptor(name, help, None, c.metric_type())?)
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

impl Collector for ExpositionCollector {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> fmt::Result {
        let e = &*self.0;
        let enc = &mut enc;

        gauges(
            enc,
            "lingertop_connections",
            "TCP sockets on this host per state and address family.",
            None,
            TcpState::ALL.iter().flat_map(|s| {
                FAMILIES.iter().enumerate().map(move |(f, fam)| {
                    (
                        [("state", s.name()), ("family", fam)],
                        e.connections[s.index()][f],
                    )
                })
            }),
        )?;

        let cw = &e.close_wait_by_process;
        gauges(
            enc,
            "lingertop_close_wait_connections",
            "CLOSE_WAIT sockets per owning process (the peer closed, the process never called close()): the top N processes, the rest summed into process=\"other\".",
            None,
            cw.top
                .iter()
                .map(|(k, n)| {
                    let (pid, name) = match &k.0 {
                        Some((pid, name)) => (
                            pid.to_string(),
                            name.as_deref().unwrap_or(UNKNOWN_PROCESS).to_string(),
                        ),
                        None => (String::new(), UNKNOWN_PROCESS.to_string()),
                    };
                    ([("pid", pid), ("process", name)], *n)
                })
                .chain(std::iter::once((
                    [("pid", String::new()), ("process", OTHER.to_string())],
                    cw.other,
                ))),
        )?;

        gauge(
            enc,
            "lingertop_close_wait_oldest_age",
            "Time the oldest CLOSE_WAIT socket has been in that state, a lower bound measured from the first poll that saw it (0 when there is none).",
            Some(&Unit::Seconds),
            secs(e.oldest_close_wait),
        )?;

        let tw = &e.time_wait_by_remote;
        gauges(
            enc,
            "lingertop_time_wait_connections",
            "TIME_WAIT sockets per remote endpoint (IP:port): the top N endpoints, the rest summed into remote=\"other\".",
            None,
            tw.top
                .iter()
                .map(|(r, n)| ([("remote", r.to_string())], *n))
                .chain(std::iter::once(([("remote", OTHER.to_string())], tw.other))),
        )?;

        gauges(
            enc,
            "lingertop_ephemeral_ports_used",
            "Local ephemeral ports in use (TIME_WAIT included) from one local IP toward one remote IP:port: the top N destinations, the rest summed into remote=\"other\".",
            None,
            e.ports_by_destination
                .iter()
                .map(|p| {
                    (
                        [
                            ("local_ip", p.local_ip.to_string()),
                            ("remote", p.remote.to_string()),
                        ],
                        p.in_use,
                    )
                })
                .chain(std::iter::once((
                    [("local_ip", String::new()), ("remote", OTHER.to_string())],
                    e.ports_other,
                ))),
        )?;

        gauges(
            enc,
            "lingertop_ephemeral_port_usage_ratio",
            "Fraction (0 to 1) of the ephemeral port range in use from one local IP toward one remote IP:port, for the top N destinations; connect() fails toward a destination at 1.",
            None,
            e.ports_by_destination.iter().map(|p| {
                (
                    [
                        ("local_ip", p.local_ip.to_string()),
                        ("remote", p.remote.to_string()),
                    ],
                    p.ratio,
                )
            }),
        )?;

        gauge(
            enc,
            "lingertop_ephemeral_port_range_size",
            "Number of ports in the local ephemeral range (net.ipv4.ip_local_port_range on Linux).",
            None,
            u64::from(e.ephemeral_range_size),
        )?;

        gauges(
            enc,
            "lingertop_active_alerts",
            "lingertop's own alerts active at the last poll, per rule and severity.",
            None,
            RuleId::ALL.iter().enumerate().flat_map(|(r, rule)| {
                SEVERITIES.iter().enumerate().map(move |(s, sev)| {
                    (
                        [("rule", rule.name()), ("severity", sev.name())],
                        e.alerts[r][s],
                    )
                })
            }),
        )?;

        gauge(
            enc,
            "lingertop_poll_duration",
            "Time the last poll of the socket table took.",
            Some(&Unit::Seconds),
            secs(e.poll_duration),
        )?;
        gauges(
            enc,
            "lingertop_state_read_timestamp",
            "Unix time this state's sockets were last read from the kernel: the last poll's, but on a big table the live modes read ESTABLISHED only every few polls (collector.established-every) and carry it between reads; 0 before the first read.",
            Some(&Unit::Seconds),
            TcpState::ALL.iter().map(|s| {
                (
                    [("state", s.name())],
                    e.state_read_at[s.index()]
                        .duration_since(UNIX_EPOCH)
                        .map(secs)
                        .unwrap_or_default(),
                )
            }),
        )?;
        gauge(
            enc,
            "lingertop_last_poll_timestamp",
            "Unix time of the last successful poll; scrapes never trigger one.",
            Some(&Unit::Seconds),
            e.taken_at
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(secs)
                .unwrap_or_default(),
        )?;
        counter(
            enc,
            "lingertop_polls",
            "Successful polls of the socket table since start.",
            e.polls,
        )?;
        counter(
            enc,
            "lingertop_poll_errors",
            "Polls of the socket table that failed since start.",
            e.poll_errors,
        )?;
        gauge(
            enc,
            "lingertop_process_info_partial",
            "1 when some sockets show no process (not root, or another PID namespace), else 0.",
            None,
            u64::from(e.process_info_partial),
        )?;
        if let Some(c) = &e.closes {
            c.encode(enc)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::Update;
    use crate::model::alerts::Alert;
    use crate::model::connection::{Owner, PortRange, Snapshot, Tracking};
    use crate::model::tracker::Sample;
    use crate::model::{Connection, StateCounts};

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
        };
        let e = Exposition::from_update(&update(vec![cw], vec![alert]), 3, 10);
        assert_eq!(e.oldest_close_wait, Duration::from_secs(6));
        let text = render(&Arc::new(e), TextFormat::Prometheus);
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
                        ("expr" | "definition", serde_json::Value::String(s)) => {
                            out.push(s.clone())
                        }
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
        e.closes = Some(Arc::new(super::super::closes_metrics::tests::both_sources()));
        let e = Arc::new(e);
        let text = render(&e, TextFormat::Prometheus);
        // Family names as the classic format announces them (some have no sample here).
        let exported: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split(' ').next())
            .collect();

        let board: serde_json::Value =
            serde_json::from_str(include_str!("../../assets/grafana-dashboard.json"))
                .expect("the dashboard is valid JSON");
        let mut queries = Vec::new();
        exprs(&board, &mut queries);
        assert!(queries.len() >= 10, "{queries:?}");
        let rules = include_str!("../../assets/prometheus-rules.yml");
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
        ] {
            assert!(
                queries
                    .iter()
                    .any(|q| metric_names(q).iter().any(|n| n == name)),
                "the dashboard does not show {name}"
            );
        }
    }
}
