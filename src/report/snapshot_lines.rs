//! `lingertop snapshot --format ndjson`: the snapshot as JSON lines, for `jq -c` and log
//! shippers. A `"type": "snapshot"` line first (what was read, the counts, the port
//! figures), then one `"type": "alert"` line per alert, then one `"type": "connection"`
//! line per connection. Fields are named as in the JSON document, and where `watch`'s lines
//! say the same thing, as there (`time`, `matched_connections`, an alert's fields).

use std::io::{self, Write};

use serde::Serialize;

use super::json::{
    PortRangeJson, PressureJson, alert_json, connection_json, port_pressure_json,
    process_info_reason, secs,
};
use super::{SnapshotView, timestamp};
use crate::model::StateCounts;

/// A line: its type, then the fields of what it carries.
#[derive(Serialize)]
struct Line<T> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    body: T,
}

#[derive(Serialize)]
struct Head<'a> {
    time: String,
    host: &'a str,
    backend: &'static str,
    polls: u64,
    interval_secs: Option<f64>,
    process_info: &'static str,
    process_info_reason: Option<&'a str>,
    filter: &'a str,
    total_connections: usize,
    matched_connections: usize,
    counts: StateCounts,
    ephemeral_ports: PortRangeJson,
    port_pressure: Vec<PressureJson<'a>>,
}

fn line<T: Serialize, W: Write>(out: &mut W, kind: &'static str, body: T) -> io::Result<()> {
    serde_json::to_writer(&mut *out, &Line { kind, body }).map_err(io::Error::from)?;
    out.write_all(b"\n")
}

pub(super) fn write<W: Write>(v: &SnapshotView<'_>, out: &mut W) -> io::Result<()> {
    let s = v.snapshot;
    line(
        out,
        "snapshot",
        Head {
            time: timestamp(s.taken_at),
            host: &s.host,
            backend: v.backend,
            polls: v.polls,
            interval_secs: v.interval.map(secs),
            process_info: s.process_info.name(),
            process_info_reason: process_info_reason(s),
            filter: &v.filter,
            total_connections: v.total_connections,
            matched_connections: s.connections.len(),
            counts: s.counts(),
            ephemeral_ports: PortRangeJson::of(s.ephemeral_ports),
            port_pressure: port_pressure_json(v),
        },
    )?;
    for a in v.alerts {
        line(out, "alert", alert_json(a, s, v.names))?;
    }
    for c in &s.connections {
        line(
            out,
            "connection",
            connection_json(c, s.taken_at, &s.netns, v.names),
        )?;
    }
    Ok(())
}
