//! The NDJSON stream of `lingertop watch`: one JSON document per line, either one per poll
//! (counts and alerts) or one per observed state transition. Each line stands alone, so a
//! consumer (`jq`, a log shipper) can start reading anywhere.

use std::io::{self, Write};

use serde::Serialize;

use super::{AlertFields, addr, remote_name, timestamp};
use crate::live::Update;
use crate::model::{
    AgeSource, Alert, Attribution, Close, CloseKind, Connection, CounterCloses, NetnsTable,
    ResetReason, StateCounts, TcpState, Transition,
};
use crate::resolve::Names;

/// What one per-poll line reports.
pub struct PollView<'a> {
    pub update: &'a Update,
    /// The filter in force, as text ("" for none).
    pub filter: &'a str,
    /// Counts over the connections matching the filter.
    pub counts: StateCounts,
    /// How many connections match the filter.
    pub matched: usize,
    /// Alerts over the connections matching the filter.
    pub alerts: &'a [Alert],
    /// Polls that failed so far.
    pub poll_errors: u64,
    /// Remote names known so far, with `--resolve`.
    pub names: Option<&'a Names>,
}

#[derive(Serialize)]
struct PollLine<'a> {
    time: String,
    seq: u64,
    host: &'a str,
    process_info: &'static str,
    filter: &'a str,
    total_connections: usize,
    matched_connections: usize,
    counts: StateCounts,
    alerts: Vec<AlertFields<'a>>,
    poll_duration_secs: f64,
    poll_errors: u64,
    /// States this poll did not read (on a big table the live modes read ESTABLISHED only
    /// every few polls): their connections and counts are as of `carried_as_of`.
    carried_states: &'a [TcpState],
    carried_as_of: Option<String>,
}

/// One observed change of one connection.
#[derive(Serialize)]
struct EventLine<'a> {
    /// The poll that saw the change (it happened since the poll before).
    time: String,
    /// `appeared`, `changed`, `vanished`, or `owner`: a connection whose owner lookup was
    /// pending (`"attribution":"pending"` on its earlier line) has its owner named now, in
    /// the same state (`from` equals `to`).
    event: &'static str,
    /// `poll`: inferred from two polls of the socket table.
    source: &'static str,
    local: String,
    remote: String,
    /// With `--resolve`: the remote's name, null until it is known (or where it has none).
    #[serde(skip_serializing_if = "Option::is_none")]
    remote_name: Option<Option<&'a str>>,
    /// The network namespace's name (`host`, a container's); null where only one is read.
    netns: Option<&'a str>,
    /// `null` when the connection appeared.
    from: Option<TcpState>,
    /// `null` when the connection vanished.
    to: Option<TcpState>,
    pid: Option<u32>,
    process: Option<&'a str>,
    attribution: Option<&'static str>,
    /// How long it has been in `to`, at least, and how that is known (`kernel`, `observed`,
    /// `first-sight`); null when it vanished or nothing is known.
    state_age_secs: Option<f64>,
    state_age_from: Option<&'static str>,
}

/// Writes one poll as one line.
pub fn write_poll(out: &mut dyn Write, v: &PollView<'_>) -> io::Result<()> {
    let s = &v.update.snapshot;
    let line = PollLine {
        time: timestamp(s.taken_at),
        seq: v.update.seq,
        host: &s.host,
        process_info: s.process_info.name(),
        filter: v.filter,
        total_connections: s.connections.len(),
        matched_connections: v.matched,
        counts: v.counts,
        alerts: v
            .alerts
            .iter()
            .map(|a| AlertFields::named(a, v.names))
            .collect(),
        poll_duration_secs: (s.poll_duration.as_secs_f64() * 1e6).round() / 1e6,
        poll_errors: v.poll_errors,
        carried_states: s.unread.as_ref().map_or(&[], |u| &u.states),
        carried_as_of: s.unread.as_ref().and_then(|u| u.last_read).map(timestamp),
    };
    crate::sanitize::json_to_writer(&mut *out, &line).map_err(io::Error::from)?;
    out.write_all(b"\n")
}

/// Writes one transition as one line. `now` is the connection as the same poll saw it
/// (absent when it vanished); its owner and attribution are the most complete, else the
/// transition's owner is used. `names`: the remote names known so far, with `--resolve`.
pub fn write_event(
    out: &mut dyn Write,
    t: &Transition,
    now: Option<&Connection>,
    netns: &NetnsTable,
    names: Option<&Names>,
) -> io::Result<()> {
    let owner = now.and_then(|c| c.owner()).or(t.owner.as_ref());
    let line = EventLine {
        time: timestamp(t.at),
        event: match (t.from, t.to) {
            (None, _) => "appeared",
            (_, None) => "vanished",
            (from, to) if from == to => "owner",
            _ => "changed",
        },
        source: "poll",
        local: addr(&t.local),
        remote: addr(&t.remote),
        remote_name: remote_name(names, &t.remote),
        netns: netns.name(t.netns),
        from: t.from,
        to: t.to,
        pid: owner.map(|o| o.pid),
        process: owner.and_then(|o| o.name.as_deref()),
        attribution: match now {
            Some(c) if !c.owners.is_empty() || c.owner_pending() => c.attribution.map(|a| a.name()),
            // Gone: as the tracker last saw it.
            None => t.attribution.map(|a| a.name()),
            // Without an owner now: the owner is the one the tracker last saw.
            _ => owner.map(|_| Attribution::LastOwner.name()),
        },
        state_age_secs: now
            .and_then(|c| c.state_age(t.at))
            .map(|d| (d.as_secs_f64() * 1000.0).round() / 1000.0),
        state_age_from: now.and_then(|c| c.age_source(t.at)).map(AgeSource::name),
    };
    crate::sanitize::json_to_writer(&mut *out, &line).map_err(io::Error::from)?;
    out.write_all(b"\n")
}

/// One close from the kernel's events.
#[derive(Serialize)]
struct CloseLine<'a> {
    /// When the kernel destroyed the socket.
    time: String,
    /// `close`.
    event: &'static str,
    /// `kernel`: from the kernel's own events, not inferred.
    source: &'static str,
    kind: CloseKind,
    /// For a reset sent: `unread-data`, `linger-0` or `other`.
    reason: Option<&'static str>,
    /// The kernel's `enum sk_rst_reason` number, for `other`.
    kernel_reason: Option<u8>,
    pid: Option<u32>,
    process: Option<&'a str>,
    /// `owner`: the process seen acting on the socket; `listener`: the owner of the
    /// listener that accepted it (it never acted on the socket itself).
    attribution: Option<&'static str>,
    local: Option<String>,
    remote: Option<String>,
    /// With `--resolve`: the remote's name, null until it is known (or where it has none).
    #[serde(skip_serializing_if = "Option::is_none")]
    remote_name: Option<Option<&'a str>>,
    /// Every state the socket went through, exactly as the kernel changed them.
    /// The network namespace's name (`host`, a container's); null where only one is read.
    netns: Option<&'a str>,
    states: &'a [TcpState],
    /// From connect or accept to destroy; `null` when the socket predates lingertop.
    lifetime_ms: Option<f64>,
    /// SO_LINGER was on: its deadline in kernel ticks.
    linger_ticks: Option<u64>,
    cookie: u64,
    /// On an `action` line: `graceful` or `abort`, as lingertop closed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    how: Option<&'static str>,
    /// On an `action` line: the lingertop process that closed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    by_pid: Option<u32>,
}

/// Writes one close from the kernel's events as one line (`event: "close"`, or
/// `event: "action"` for a close a lingertop process made from outside: `pid` and
/// `process` are then still the socket's owner, `by_pid` the lingertop that closed it); `time` is when it happened.
/// `names`: the remote names known so far, with `--resolve`.
pub fn write_close(
    out: &mut dyn Write,
    c: &Close,
    netns: Option<&str>,
    time: std::time::SystemTime,
    names: Option<&Names>,
) -> io::Result<()> {
    let line = CloseLine {
        time: timestamp(time),
        event: if c.action.is_some() {
            "action"
        } else {
            "close"
        },
        source: "kernel",
        kind: c.kind,
        reason: c.reason.map(ResetReason::name),
        kernel_reason: match c.reason {
            Some(ResetReason::Other(n)) => Some(n),
            _ => None,
        },
        pid: c.owner.as_ref().map(|o| o.pid),
        process: c.owner.as_ref().map(|o| &*o.name),
        attribution: c.owner.as_ref().map(|_| {
            if c.owner_via_listener {
                "listener"
            } else {
                "owner"
            }
        }),
        local: c.local.as_ref().map(addr),
        remote: c.remote.as_ref().map(addr),
        remote_name: c.remote.as_ref().and_then(|r| remote_name(names, r)),
        netns,
        states: &c.states,
        lifetime_ms: c.lifetime_ns.map(|n| (n as f64 / 1e3).round() / 1e3),
        linger_ticks: c.linger_ticks,
        cookie: c.cookie,
        how: c.action.as_ref().map(|_| match c.kind {
            CloseKind::ResetSent => "abort",
            _ => "graceful",
        }),
        by_pid: c.action.as_ref().map(|a| a.pid),
    };
    serde_json::to_writer(&mut *out, &line).map_err(io::Error::from)?;
    out.write_all(b"\n")
}

/// The kernel's counters of closes, since start and since the previous line.
#[derive(Serialize)]
struct CountersLine<'a> {
    time: String,
    /// `closes`.
    event: &'static str,
    /// `counters`: /proc/net/snmp and /proc/net/netstat of this network namespace.
    source: &'static str,
    since_start: &'a CounterCloses,
    since_last: &'a CounterCloses,
    secs_since_last: f64,
}

/// Writes the counters' closes as one line.
pub fn write_counters(
    out: &mut dyn Write,
    time: std::time::SystemTime,
    since_start: &CounterCloses,
    since_last: &CounterCloses,
    secs_since_last: f64,
) -> io::Result<()> {
    let line = CountersLine {
        time: timestamp(time),
        event: "closes",
        source: "counters",
        since_start,
        since_last,
        secs_since_last: (secs_since_last * 1e3).round() / 1e3,
    };
    serde_json::to_writer(&mut *out, &line).map_err(io::Error::from)?;
    out.write_all(b"\n")
}

/// Says that the kernel side dropped records (ring buffer full): the closes written since are
/// incomplete by about that many events.
pub fn write_lost(out: &mut dyn Write, time: std::time::SystemTime, lost: u64) -> io::Result<()> {
    let line = serde_json::json!({
        "time": timestamp(time),
        "event": "lost",
        "source": "kernel",
        "lost_events": lost,
    });
    serde_json::to_writer(&mut *out, &line).map_err(io::Error::from)?;
    out.write_all(b"\n")
}

/// One close rule's alert starting, changing severity (`firing`) or ending (`resolved`) in
/// `watch --events`, with the fields snapshot and poll lines give alerts.
#[derive(Serialize)]
struct AlertLine<'a> {
    time: String,
    /// `alert`.
    event: &'static str,
    /// `kernel` (its events) or `counters`, where the closes behind it came from.
    source: &'static str,
    /// `firing` or `resolved`.
    state: &'static str,
    #[serde(flatten)]
    alert: AlertFields<'a>,
}

/// Writes one close alert's change as one line.
pub fn write_alert(
    out: &mut dyn Write,
    time: std::time::SystemTime,
    source: &'static str,
    state: &'static str,
    a: &Alert,
) -> io::Result<()> {
    let line = AlertLine {
        time: timestamp(time),
        event: "alert",
        source,
        state,
        alert: AlertFields::of(a),
    };
    serde_json::to_writer(&mut *out, &line).map_err(io::Error::from)?;
    out.write_all(b"\n")
}
