//! Headless outputs of a snapshot: table, JSON and CSV, each written to an injected writer;
//! and of the live modes: the Prometheus exposition and the NDJSON stream.
//! The serialisable DTOs here are the documented JSON shape; no terminal code.

pub mod close;
pub mod closes_metrics;
mod csv;
mod json;
pub mod lab;
#[cfg(test)]
mod names_tests;
pub mod ndjson;
pub mod prometheus;
mod snapshot_lines;
mod table;
#[cfg(test)]
mod tests;

use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::model::alerts::Pressure;
use crate::model::{Alert, Connection, OWN_NETNS, Snapshot};
use crate::resolve::Names;

/// Kept at its old path for the dashboard; the one duration format is in `model::duration`.
pub use crate::model::duration::{fmt_age, fmt_age_from, state_age_cell};
pub use json::RowsAhead;

/// The label value of the series that sums everything outside the top N, in `serve`'s
/// exposition (`prometheus/`) and its closes part (`closes_metrics.rs`) alike.
pub const OTHER: &str = "other";

/// How many port-pressure figures a snapshot report carries (JSON and NDJSON; the table and
/// CSV none), the top ones: a snapshot needs to work out no more ([`port_pressure_top`]).
///
/// [`port_pressure_top`]: crate::model::alerts::port_pressure_top
pub const PRESSURE_LISTED: usize = 10;

/// Output formats of the snapshot (`--format`; the command line's values are [`Format::name`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Aligned text for people.
    Table,
    /// One JSON document (its shape: the guide's docs/snapshot.md#json-shape): compact, or
    /// indented with --pretty or on a terminal.
    Json,
    /// JSON lines: the snapshot first, then one line per alert and one per connection.
    Ndjson,
    /// One row per connection, with a header.
    Csv,
}

impl Format {
    /// Every format, in the order `--help` lists them.
    pub const ALL: [Format; 4] = [Format::Table, Format::Json, Format::Ndjson, Format::Csv];

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Format::Table => "table",
            Format::Json => "json",
            Format::Ndjson => "ndjson",
            Format::Csv => "csv",
        }
    }

    /// What `--help` says of it.
    pub fn about(self) -> &'static str {
        match self {
            Format::Table => "Aligned text for people",
            Format::Json => {
                "One JSON document (its shape: the guide's docs/snapshot.md#json-shape): compact, or indented with --pretty or on a terminal"
            }
            Format::Ndjson => {
                "JSON lines: the snapshot's counts, then one line per alert and one per connection, each with a \"type\""
            }
            Format::Csv => "One row per connection, with a header",
        }
    }
}

/// Output formats of the lab (`lab --format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabFormat {
    /// Aligned text for people.
    Table,
    /// JSON (its shape: the guide's docs/lab.md#the-trace-of-one-mode).
    Json,
}

impl LabFormat {
    /// Every format, in the order `--help` lists them.
    pub const ALL: [LabFormat; 2] = [LabFormat::Table, LabFormat::Json];

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            LabFormat::Table => "table",
            LabFormat::Json => "json",
        }
    }

    /// What `--help` says of it.
    pub fn about(self) -> &'static str {
        match self {
            LabFormat::Table => "Aligned text for people",
            LabFormat::Json => "JSON (its shape: the guide's docs/lab.md#the-trace-of-one-mode)",
        }
    }
}

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
    /// Remote names, when `--resolve` asked for them: every connection then has a
    /// `remote_name` (null where the address has none, or none came in time).
    pub names: Option<&'a Names>,
}

/// A remote address's name as the JSON outputs write it: absent without `--resolve`, else
/// the name or null.
pub(crate) fn remote_name<'a>(
    names: Option<&'a Names>,
    sa: &SocketAddr,
) -> Option<Option<&'a str>> {
    names.map(|n| n.get(sa.ip()))
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
    /// The remote's name, with `--resolve` (null while it has none).
    #[serde(skip_serializing_if = "Option::is_none")]
    remote_name: Option<Option<&'a str>>,
    ratio: Option<f64>,
    growth_per_min: Option<f64>,
    /// The container or namespace it is about, when not the host.
    netns: Option<&'a str>,
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
            remote_name: None,
            ratio: a.ratio,
            growth_per_min: a.growth_per_min,
            netns: a.netns.as_deref(),
        }
    }

    /// The alert's fields with its remote's name from `names` (given `--resolve`).
    pub(crate) fn named(a: &'a Alert, names: Option<&'a Names>) -> Self {
        let mut f = AlertFields::of(a);
        if let Some(sa) = &a.remote {
            f.remote_name = remote_name(names, sa);
        }
        f
    }
}

/// `127.0.0.1:80`, `[::1]:80`: the address as `ss` prints it.
pub fn addr(sa: &SocketAddr) -> String {
    sa.to_string()
}

/// [`addr`]'s text on the stack, written without the formatting machinery for IPv4
/// (`Ipv4Addr`'s `Display` was a seventh of a 100k-connection snapshot's time).
pub(crate) struct AddrText {
    bytes: [u8; 64],
    len: usize,
}

impl AddrText {
    /// `sa` as [`addr`] spells it.
    pub(crate) fn of(sa: &SocketAddr) -> AddrText {
        let mut t = AddrText {
            bytes: [0; 64],
            len: 0,
        };
        match sa {
            // At most 21 bytes (`255.255.255.255:65535`), so every index is in bounds.
            SocketAddr::V4(v4) => {
                for octet in v4.ip().octets() {
                    t.octet(octet);
                    t.bytes[t.len] = b'.';
                    t.len += 1;
                }
                // The last octet's `.` becomes the port's `:`.
                t.bytes[t.len - 1] = b':';
                t.port(v4.port());
            }
            // The longest, `[` 39 characters `%` a u32 `]:` a port, is 58 bytes.
            SocketAddr::V6(_) => {
                let _ = std::fmt::Write::write_fmt(&mut t, format_args!("{sa}"));
            }
        }
        t
    }

    /// An IPv4 octet in decimal.
    fn octet(&mut self, n: u8) {
        let at = self.len;
        if n >= 100 {
            self.bytes[at] = b'0' + n / 100;
            self.bytes[at + 1] = b'0' + n / 10 % 10;
            self.bytes[at + 2] = b'0' + n % 10;
            self.len += 3;
        } else if n >= 10 {
            self.bytes[at] = b'0' + n / 10;
            self.bytes[at + 1] = b'0' + n % 10;
            self.len += 2;
        } else {
            self.bytes[at] = b'0' + n;
            self.len += 1;
        }
    }

    /// A port in decimal.
    fn port(&mut self, n: u16) {
        let mut text = itoa::Buffer::new();
        let digits = text.format(n).as_bytes();
        self.bytes[self.len..self.len + digits.len()].copy_from_slice(digits);
        self.len += digits.len();
    }

    /// The text.
    pub(crate) fn as_str(&self) -> &str {
        // Only ASCII is ever pushed, and `write_str` copies whole strings.
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }

    /// The text's bytes (ASCII).
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl std::fmt::Write for AddrText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        if end > self.bytes.len() {
            return Err(std::fmt::Error);
        }
        self.bytes[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// RFC 3339 UTC with milliseconds.
pub fn timestamp(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// Writes the snapshot in `format`; JSON indented when `pretty`. A closed pipe is not an
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
    write_snapshot_ahead(format, pretty, v, None, out)
}

/// [`write_snapshot`], with the compact JSON's rows started ahead ([`RowsAhead`]) where
/// the caller could start them (ignored by the other forms).
pub fn write_snapshot_ahead<W: Write>(
    format: Format,
    pretty: bool,
    v: &SnapshotView<'_>,
    ahead: Option<RowsAhead<'_>>,
    out: &mut W,
) -> io::Result<()> {
    match format {
        Format::Json => json::write(v, pretty, ahead, out)?,
        Format::Ndjson => snapshot_lines::write(v, out)?,
        Format::Csv => csv::write(v, out)?,
        Format::Table => table::write(v, out)?,
    }
    out.flush()
}

/// Whether the connections shown live in more than lingertop's own network namespace: the
/// table and CSV add a namespace column only then, so a host without containers (and every
/// script reading it) sees the columns it always did.
pub(crate) fn shows_netns(connections: &[Connection]) -> bool {
    connections.iter().any(|c| c.netns() != OWN_NETNS)
}
