//! The NDJSON stream of `lingertop watch`: one JSON document per line, either one per poll
//! (counts and alerts) or one per observed state transition. Each line stands alone, so a
//! consumer (`jq`, a log shipper) can start reading anywhere.

use std::io::{self, Write};

use serde::Serialize;

use super::{AlertFields, addr, timestamp};
use crate::live::Update;
use crate::model::{AgeSource, Alert, Attribution, Connection, StateCounts, TcpState, Transition};

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
    /// `appeared`, `changed` or `vanished`.
    event: &'static str,
    local: String,
    remote: String,
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
        alerts: v.alerts.iter().map(AlertFields::of).collect(),
        poll_duration_secs: (s.poll_duration.as_secs_f64() * 1e6).round() / 1e6,
        poll_errors: v.poll_errors,
        carried_states: s.unread.as_ref().map_or(&[], |u| &u.states),
        carried_as_of: s.unread.as_ref().and_then(|u| u.last_read).map(timestamp),
    };
    serde_json::to_writer(&mut *out, &line).map_err(io::Error::from)?;
    out.write_all(b"\n")
}

/// Writes one transition as one line. `now` is the connection as the same poll saw it
/// (absent when it vanished); its owner and attribution are the most complete, else the
/// transition's owner is used.
pub fn write_event(
    out: &mut dyn Write,
    t: &Transition,
    now: Option<&Connection>,
) -> io::Result<()> {
    let owner = now.and_then(|c| c.owner()).or(t.owner.as_ref());
    let line = EventLine {
        time: timestamp(t.at),
        event: match (t.from, t.to) {
            (None, _) => "appeared",
            (_, None) => "vanished",
            _ => "changed",
        },
        local: addr(&t.local),
        remote: addr(&t.remote),
        from: t.from,
        to: t.to,
        pid: owner.map(|o| o.pid),
        process: owner.and_then(|o| o.name.as_deref()),
        attribution: match now {
            Some(c) if !c.owners.is_empty() => c.attribution.map(|a| a.name()),
            // Gone, or without an owner now: the owner is the one the tracker last saw.
            _ => owner.map(|_| Attribution::LastOwner.name()),
        },
        state_age_secs: now
            .and_then(|c| c.state_age(t.at))
            .map(|d| (d.as_secs_f64() * 1000.0).round() / 1000.0),
        state_age_from: now.and_then(|c| c.age_source(t.at)).map(AgeSource::name),
    };
    serde_json::to_writer(&mut *out, &line).map_err(io::Error::from)?;
    out.write_all(b"\n")
}
