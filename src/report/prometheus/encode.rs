//! Writes an [`Exposition`] as text through `prometheus-client`: OpenMetrics, or the classic
//! Prometheus text format derived from it.

use std::fmt::{self, Write as _};
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

use super::exposition::{Exposition, UNKNOWN_PROCESS};
use crate::model::{AgeSource, RuleId, Severity, TcpState};
use crate::report::OTHER;

/// Address families, as the `family` label spells them.
pub(super) const FAMILIES: [&str; 2] = ["ipv4", "ipv6"];
pub(super) const SEVERITIES: [Severity; 2] = [Severity::Warning, Severity::Critical];

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
        sockets(e, &mut enc)?;
        ports(e, &mut enc)?;
        polls(e, &mut enc)
    }
}

/// The sockets per state and family, CLOSE_WAIT per process, TIME_WAIT per remote.
fn sockets(e: &Exposition, enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
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
                        name.as_deref().map_or(UNKNOWN_PROCESS.to_string(), |n| {
                            crate::sanitize::prometheus_label(n).into_owned()
                        }),
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
        "Time the oldest CLOSE_WAIT socket has been in that state, at least (0 when there is none): from the kernel's clocks on the netlink backend, so from the first poll on; how it is known is lingertop_close_wait_oldest_age_source.",
        Some(&Unit::Seconds),
        secs(e.oldest_close_wait),
    )?;
    gauges(
        enc,
        "lingertop_close_wait_oldest_age_source",
        "1 for how the oldest CLOSE_WAIT's age is known (kernel: a kernel clock; observed: lingertop saw the state begin; first-sight: counted from lingertop's first poll that saw it), 0 for the others; all 0 with no age.",
        None,
        [
            AgeSource::Kernel,
            AgeSource::Observed,
            AgeSource::FirstSight,
        ]
        .map(|from| {
            (
                [("from", from.name())],
                u64::from(e.oldest_close_wait_from == Some(from)),
            )
        }),
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
        "lingertop_netns_connections",
        "TCP sockets per network namespace (host, container, pod, ip netns) and state: the top N namespaces by sockets, the rest summed into netns=\"other\".",
        None,
        e.netns
            .iter()
            .map(|(name, states)| (name.to_string(), states))
            .chain(std::iter::once((OTHER.to_string(), &e.netns_other)))
            .flat_map(|(name, states)| {
                TcpState::ALL.into_iter().map(move |s| {
                    (
                        [("netns", name.clone()), ("state", s.name().to_string())],
                        states[s.index()],
                    )
                })
            }),
    )?;
    Ok(())
}

/// Ephemeral port use per destination and the size of the range.
fn ports(e: &Exposition, enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
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
    Ok(())
}

/// Alerts per rule, and the figures of the polls themselves.
fn polls(e: &Exposition, enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
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
