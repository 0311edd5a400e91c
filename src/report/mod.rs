//! Headless outputs of a snapshot: table, JSON and CSV, each written to an injected writer;
//! and of the live modes: the Prometheus exposition and the NDJSON stream.
//! The serialisable DTOs here are the documented JSON shape; no terminal code.

mod csv;
mod json;
pub mod lab;
pub mod ndjson;
pub mod prometheus;
mod table;
#[cfg(test)]
mod tests;

use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::model::alerts::Pressure;
use crate::model::{Alert, Snapshot};

/// Kept at its old path for the dashboard; the one duration format is in `model::duration`.
pub use crate::model::duration::{fmt_age, fmt_age_from, state_age_cell};

/// Output formats of the snapshot (`--format`; the command line's values are [`Format::name`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Aligned text for people.
    Table,
    /// One JSON document (shape in the README).
    Json,
    /// One row per connection, with a header.
    Csv,
}

impl Format {
    /// Every format, in the order `--help` lists them.
    pub const ALL: [Format; 3] = [Format::Table, Format::Json, Format::Csv];

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Format::Table => "table",
            Format::Json => "json",
            Format::Csv => "csv",
        }
    }

    /// What `--help` says of it.
    pub fn about(self) -> &'static str {
        match self {
            Format::Table => "Aligned text for people",
            Format::Json => "One JSON document (shape in the README)",
            Format::Csv => "One row per connection, with a header",
        }
    }
}

/// Output formats of the lab (`lab --format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabFormat {
    /// Aligned text for people.
    Table,
    /// JSON (shape in the README).
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
            LabFormat::Json => "JSON (shape in the README)",
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

/// `127.0.0.1:80`, `[::1]:80`: the address as `ss` prints it.
pub fn addr(sa: &SocketAddr) -> String {
    sa.to_string()
}

/// RFC 3339 UTC with milliseconds.
pub fn timestamp(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// Writes the snapshot in `format`. A closed pipe is not an error of ours: the caller
/// checks for `BrokenPipe` and exits quietly.
pub fn write_snapshot(format: Format, v: &SnapshotView<'_>, out: &mut dyn Write) -> io::Result<()> {
    match format {
        Format::Json => json::write(v, out)?,
        Format::Csv => csv::write(v, out)?,
        Format::Table => table::write(v, out)?,
    }
    out.flush()
}
