//! Headless outputs of a snapshot: table, JSON and CSV, each written to an injected writer;
//! and of the live modes: the Prometheus exposition and the NDJSON stream.
//! The serialisable DTOs here are the documented JSON shape; no terminal code.

pub mod lab;
pub mod ndjson;
pub mod prometheus;
mod snapshot_lines;
mod table;

use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::cli::Format;
use crate::model::alerts::Pressure;
use crate::model::{Alert, Connection, PortRange, Snapshot, StateCounts, TcpState};

pub use table::fmt_age;

/// How many connections each alert lists in JSON (the count is always complete).
const ALERT_CONNECTIONS_LISTED: usize = 100;
/// How many port-pressure figures the JSON carries.
const PRESSURE_LISTED: usize = 10;

/// Everything a snapshot report shows.
pub struct SnapshotView<'a> {
    /// The snapshot, already filtered and sorted.
    pub snapshot: &'a Snapshot,
    pub backend: &'static str,
    pub polls: u64,
    pub interval: Option<Duration>,
    /// Connections before the filter.
    pub total_connections: usize,
    pub filter: String,
    pub alerts: &'a [Alert],
    pub pressure: &'a [Pressure],
}

#[derive(Serialize)]
struct JsonSnapshot<'a> {
    taken_at: String,
    host: &'a str,
    backend: &'static str,
    polls: u64,
    interval_secs: Option<f64>,
    process_info: &'static str,
    process_info_reason: Option<&'a str>,
    filter: &'a str,
    total_connections: usize,
    counts: StateCounts,
    ephemeral_ports: PortRangeJson,
    port_pressure: Vec<PressureJson>,
    alerts: Vec<AlertJson<'a>>,
    connections: ConnectionsJson<'a>,
}

/// The connections, serialised one at a time as the JSON is written rather than gathered
/// into a vector first (at 100k connections that vector alone is tens of megabytes).
struct ConnectionsJson<'a> {
    connections: &'a [Connection],
    now: SystemTime,
}

impl Serialize for ConnectionsJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            self.connections
                .iter()
                .map(|c| connection_json(c, self.now)),
        )
    }
}

#[derive(Serialize)]
struct PortRangeJson {
    low: u16,
    high: u16,
    size: u32,
}

#[derive(Serialize)]
struct PressureJson {
    local_ip: IpAddr,
    remote: String,
    in_use: u32,
    time_wait: u32,
    ratio: f64,
}

/// An alert's fields as every JSON output (snapshot, watch lines) spells them.
#[derive(Serialize)]
pub(crate) struct AlertFields<'a> {
    rule: &'static str,
    severity: &'static str,
    message: &'a str,
    count: u32,
    pid: Option<u32>,
    process: Option<&'a str>,
    local_ip: Option<IpAddr>,
    remote: Option<String>,
    ratio: Option<f64>,
    growth_per_min: Option<f64>,
}

impl<'a> AlertFields<'a> {
    pub(crate) fn of(a: &'a Alert) -> Self {
        AlertFields {
            rule: a.rule.name(),
            severity: a.severity.name(),
            message: &a.message,
            count: a.count,
            pid: a.pid,
            process: a.process.as_deref(),
            local_ip: a.local_ip,
            remote: a.remote.as_ref().map(addr),
            ratio: a.ratio,
            growth_per_min: a.growth_per_min,
        }
    }
}

#[derive(Serialize)]
struct AlertJson<'a> {
    #[serde(flatten)]
    fields: AlertFields<'a>,
    /// The first connections behind the alert (at most 100; `count` has them all).
    connections: Vec<ConnRef>,
}

#[derive(Serialize)]
struct ConnRef {
    state: TcpState,
    local: String,
    remote: String,
}

#[derive(Serialize)]
struct ConnectionJson<'a> {
    state: TcpState,
    local: AddrStr,
    remote: AddrStr,
    pid: Option<u32>,
    process: Option<&'a str>,
    /// Every process holding the socket (several after fork or fd passing).
    pids: Pids<'a>,
    user: Option<&'a str>,
    uid: Option<u32>,
    inode: u32,
    attribution: Option<&'static str>,
    state_age_secs: Option<f64>,
    /// The states seen before the current one, oldest first.
    previous_states: PreviousStates<'a>,
    /// One of the close lab's own sockets.
    lab: bool,
    /// The kernel timer on the socket (netlink backend; null when none runs).
    timer: Option<TimerJson>,
    /// Receive and send queues in bytes (for LISTEN: pending accepts and the backlog);
    /// null where the backend cannot see them.
    recv_q: Option<u32>,
    send_q: Option<u32>,
}

/// An address serialised as `ss` prints it (`127.0.0.1:80`, `[::1]:80`), formatted on the
/// stack: two `String`s a connection were a tenth of a large snapshot's time.
struct AddrStr(SocketAddr);

impl Serialize for AddrStr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = AddrBuf::new();
        s.serialize_str(buf.format(&self.0))
    }
}

/// A stack buffer that formats a socket address as `ss` prints it; IPv4 (nearly every row
/// of a big table) without the formatting machinery, which was a tenth of a large
/// snapshot's time.
pub(crate) struct AddrBuf {
    // The longest: "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff%4294967295]:65535".
    bytes: [u8; 64],
}

impl AddrBuf {
    pub(crate) fn new() -> Self {
        AddrBuf { bytes: [0; 64] }
    }

    /// The address as text, in this buffer.
    pub(crate) fn format(&mut self, sa: &SocketAddr) -> &str {
        let len = match sa {
            SocketAddr::V4(v4) => {
                let mut at = 0;
                for (i, octet) in v4.ip().octets().into_iter().enumerate() {
                    if i > 0 {
                        self.bytes[at] = b'.';
                        at += 1;
                    }
                    at += decimal(u32::from(octet), &mut self.bytes[at..]);
                }
                self.bytes[at] = b':';
                at + 1 + decimal(u32::from(v4.port()), &mut self.bytes[at + 1..])
            }
            SocketAddr::V6(_) => {
                let mut w = &mut self.bytes[..];
                match write!(w, "{sa}") {
                    Ok(()) => 64 - w.len(),
                    Err(_) => 0,
                }
            }
        };
        // Digits, dots, colons and brackets only.
        std::str::from_utf8(&self.bytes[..len]).unwrap_or_default()
    }
}

/// Writes `n` in decimal at the start of `out` (room for 10 digits) and returns its length.
fn decimal(mut n: u32, out: &mut [u8]) -> usize {
    let mut digits = [0u8; 10];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let len = digits.len() - i;
    out[..len].copy_from_slice(&digits[i..]);
    len
}

/// The pids of a connection's holders, serialised from the owners without a vector.
struct Pids<'a>(&'a [crate::model::Owner]);

impl Serialize for Pids<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|o| o.pid))
    }
}

/// The states a tracked connection went through, serialised without a vector.
struct PreviousStates<'a>(Option<&'a crate::model::Tracking>);

impl Serialize for PreviousStates<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(t) => s.collect_seq(t.previous().map(|(st, _)| st)),
            None => s.collect_seq(std::iter::empty::<TcpState>()),
        }
    }
}

#[derive(Serialize)]
struct TimerJson {
    /// `on`, `keepalive`, `timewait` or `persist`, as `ss -o` names them.
    kind: &'static str,
    expires_ms: u64,
    retransmits: u8,
}

/// `127.0.0.1:80`, `[::1]:80`: the address as `ss` prints it.
pub fn addr(sa: &SocketAddr) -> String {
    sa.to_string()
}

/// RFC 3339 UTC with milliseconds.
pub fn timestamp(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

fn connection_json(c: &Connection, now: SystemTime) -> ConnectionJson<'_> {
    let owner = c.owner();
    ConnectionJson {
        state: c.state,
        local: AddrStr(c.local()),
        remote: AddrStr(c.remote()),
        pid: owner.map(|o| o.pid),
        process: owner.and_then(|o| o.name.as_deref()),
        pids: Pids(&c.owners),
        user: c.user_name(),
        uid: c.uid(),
        inode: c.inode,
        attribution: c.attribution.map(|a| a.name()),
        state_age_secs: c.state_age(now).map(secs),
        previous_states: PreviousStates(c.tracking.as_ref()),
        lab: c.lab,
        timer: c.timer.map(|t| TimerJson {
            kind: t.kind.name(),
            expires_ms: u64::from(t.expires_ms),
            retransmits: t.retransmits,
        }),
        recv_q: c.recv_q(),
        send_q: c.send_q(),
    }
}

impl PortRangeJson {
    fn of(range: PortRange) -> Self {
        PortRangeJson {
            low: range.low,
            high: range.high,
            size: range.len(),
        }
    }
}

fn process_info_reason(s: &Snapshot) -> Option<&str> {
    match &s.process_info {
        crate::model::ProcessInfo::Partial { reason } => Some(reason),
        crate::model::ProcessInfo::Full => None,
    }
}

/// The top destinations by ephemeral ports in use.
fn port_pressure_json(v: &SnapshotView<'_>) -> Vec<PressureJson> {
    v.pressure
        .iter()
        .take(PRESSURE_LISTED)
        .map(|p| PressureJson {
            local_ip: p.local_ip,
            remote: addr(&p.remote),
            in_use: p.in_use,
            time_wait: p.time_wait,
            ratio: p.ratio,
        })
        .collect()
}

/// An alert with the first connections behind it.
fn alert_json<'a>(a: &'a Alert, s: &Snapshot) -> AlertJson<'a> {
    AlertJson {
        fields: AlertFields::of(a),
        connections: a
            .connections
            .iter()
            .take(ALERT_CONNECTIONS_LISTED)
            .map(|&i| {
                let c = &s.connections[i];
                ConnRef {
                    state: c.state,
                    local: addr(&c.local()),
                    remote: addr(&c.remote()),
                }
            })
            .collect(),
    }
}

fn to_json<'a>(v: &'a SnapshotView<'a>) -> JsonSnapshot<'a> {
    let s = v.snapshot;
    JsonSnapshot {
        taken_at: timestamp(s.taken_at),
        host: &s.host,
        backend: v.backend,
        polls: v.polls,
        interval_secs: v.interval.map(secs),
        process_info: s.process_info.name(),
        process_info_reason: process_info_reason(s),
        filter: &v.filter,
        total_connections: v.total_connections,
        counts: s.counts(),
        ephemeral_ports: PortRangeJson::of(s.ephemeral_ports),
        port_pressure: port_pressure_json(v),
        alerts: v.alerts.iter().map(|a| alert_json(a, s)).collect(),
        connections: ConnectionsJson {
            connections: &s.connections,
            now: s.taken_at,
        },
    }
}

/// Writes the snapshot in `format`; JSON indented when `pretty` (for a person at a
/// terminal), else compact (a third of the bytes, for scripts). A closed pipe is not an
/// error of ours: the caller checks for `BrokenPipe` and exits quietly.
///
/// Generic over the writer, so serde's many small writes go straight into the caller's
/// buffer rather than through a `dyn Write` call each (a fifth of a large snapshot's time).
pub fn write_snapshot<W: Write>(
    format: Format,
    pretty: bool,
    v: &SnapshotView<'_>,
    out: &mut W,
) -> io::Result<()> {
    match format {
        Format::Json if pretty => {
            serde_json::to_writer_pretty(&mut *out, &to_json(v)).map_err(io::Error::from)?;
            writeln!(out)?;
        }
        Format::Json => {
            serde_json::to_writer(&mut *out, &to_json(v)).map_err(io::Error::from)?;
            writeln!(out)?;
        }
        Format::Ndjson => snapshot_lines::write(v, out)?,
        Format::Csv => write_csv(v, out)?,
        Format::Table => table::write(v, out)?,
    }
    out.flush()
}

/// An optional CSV cell: empty when absent.
fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn write_csv<W: Write>(v: &SnapshotView<'_>, out: &mut W) -> io::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    let now = v.snapshot.taken_at;
    w.write_record([
        "state",
        "local",
        "remote",
        "pid",
        "process",
        "user",
        "attribution",
        "state_age_secs",
        "inode",
        "lab",
        "timer",
        "timer_expires_ms",
        "retransmits",
        "recv_q",
        "send_q",
    ])?;
    for c in &v.snapshot.connections {
        let j = connection_json(c, now);
        w.write_record([
            j.state.name().to_string(),
            addr(&j.local.0),
            addr(&j.remote.0),
            j.pid.map(|p| p.to_string()).unwrap_or_default(),
            j.process.unwrap_or_default().to_string(),
            j.user.unwrap_or_default().to_string(),
            j.attribution.unwrap_or_default().to_string(),
            j.state_age_secs.map(|a| a.to_string()).unwrap_or_default(),
            j.inode.to_string(),
            j.lab.to_string(),
            opt(j.timer.as_ref().map(|t| t.kind)),
            opt(j.timer.as_ref().map(|t| t.expires_ms)),
            opt(j.timer.as_ref().map(|t| t.retransmits)),
            opt(j.recv_q),
            opt(j.send_q),
        ])?;
    }
    w.flush()
}
